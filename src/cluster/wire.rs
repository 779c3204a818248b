//! What nodes say to each other through Redis, in MessagePack (the frames
//! they carry, JSON text, go as they are, not escaped again): requests forwarded
//! to a room's owner on the owner's node channel ([`NodeMsg`]), and the
//! owner's frames for members on other nodes, published once per room
//! channel with a sequence number and a recipient filter ([`RoomMsg`]).

use serde::{Deserialize, Serialize};

use crate::{
    links::{Action, PresenceChange, ResyncPart, RoomAction},
    protocol::{GameKind, JoinRoom, LeaveReason, MemberInfo, RequestId},
};

/// `msg` as nodes send it.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(msg).map_err(|err| err.to_string())
}

/// A message as nodes send it.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|err| err.to_string())
}

/// A request forwarded to the node that owns a room.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum NodeMsg {
    /// A session on another node joins (or, already in, joins again).
    Join(ForwardedJoin),
    /// A member's room message.
    Room {
        room: String,
        session: String,
        action: RoomAction,
        id: Option<RequestId>,
    },
    /// A member leaves.
    Exit {
        room: String,
        session: String,
        reason: LeaveReason,
        id: Option<RequestId>,
    },
    /// A member's connection dropped.
    Away {
        room: String,
        session: String,
        reason: LeaveReason,
    },
    /// An away member came back.
    Back { room: String, session: String },
    /// A member changed name.
    Rename {
        room: String,
        session: String,
        name: String,
    },
    /// A node lost frames it cannot repair: send these members
    /// `room_joined` and `room_state` again.
    Resend { room: String, sessions: Vec<String> },
    /// Session `session` resumes on node `from` with the secret hashed
    /// `hash`: end it here if that is still its secret (its connection
    /// closes with 4001), and say whether it was.
    Evict {
        session: String,
        from: String,
        hash: String,
        /// Echoed in the answer.
        nonce: u64,
        /// The frames the client counted (`?received=`): with it, the
        /// session is handed over whole rather than ended ([`Carried`]).
        #[serde(default)]
        received: Option<u64>,
    },
    /// The answer to an [`NodeMsg::Evict`].
    Evicted {
        nonce: u64,
        ended: bool,
        #[serde(default)]
        carried: Option<Carried>,
    },
    /// Member `session` of room `room` (which the node this goes to runs)
    /// is on node `node` now.
    MemberMoved {
        room: String,
        session: String,
        node: String,
    },
    /// Player `session` of game `game` (which the node this goes to runs)
    /// is on node `node` now.
    PlayerMoved {
        game: String,
        session: String,
        node: String,
    },
    /// Quick match: `finder`, on node `from`, was paired with `waiting`,
    /// on the node this goes to, which starts game `game` (its channel
    /// already listened to by `from`).
    Matched {
        game: String,
        kind: GameKind,
        waiting: String,
        finder: Seat,
        from: String,
    },
    /// The answer to a [`NodeMsg::Matched`] whose waiting player had gone:
    /// `session` looks for a game again.
    Unmatched {
        game: String,
        kind: GameKind,
        session: String,
    },
    /// A join or watch of a game was refused (the session was told): its
    /// node stops listening to the game for it.
    NotLinked { game: String, session: String },
    /// Session `session`, now on node `from`, plays or watches game
    /// `game`: reach it there, and resync it.
    Rehome {
        game: String,
        session: String,
        from: String,
    },
    /// A player's or spectator's move or resignation.
    Game {
        game: String,
        session: String,
        action: Action,
        id: Option<RequestId>,
    },
    /// A player's or spectator's connection dropped or came back.
    Presence {
        game: String,
        session: String,
        change: PresenceChange,
    },
    /// `join_game` of a private game this node runs.
    JoinGame {
        game: String,
        secret: String,
        player: Seat,
        from: String,
        id: Option<RequestId>,
    },
    /// `watch_game` of a game this node runs.
    WatchGame {
        game: String,
        secret: String,
        session: String,
        from: String,
        id: Option<RequestId>,
    },
}

/// A session handed over whole from a live node: its rooms and games keep
/// it as a member (reaching it through their channels now), and the
/// frames its client missed come along (PROTOCOL.md: `recovered:true`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Carried {
    /// The frames after the client's count, in order, if the old node
    /// still kept them all; else the new node resyncs the client.
    pub frames: Option<Vec<String>>,
    /// The number of the last frame the session was sent.
    pub last: u64,
    /// Where the old node was in each channel it delivered the session's
    /// frames from (key, epoch, next seq): what the new node has from
    /// before is not delivered twice.
    pub cutoffs: Vec<(String, u64, u64)>,
    /// Its rooms, each with its owner node and kind.
    pub rooms: Vec<(crate::links::RoomSeat, String, crate::protocol::RoomKind)>,
    /// Its games, each with its owner node and, when the old node knew
    /// it, its kind.
    pub games: Vec<(String, String, Option<GameKind>)>,
}

/// A player on another node, as a game shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seat {
    pub session: String,
    pub name: String,
    pub color: String,
}

/// What the cluster keeps of a session besides its node and secret's hash,
/// so that it may resume on any node (PROTOCOL.md, *Running several
/// nodes*).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub name: String,
    pub color: String,
    /// The rooms it is in, or left while away.
    pub rooms: Vec<crate::links::RoomSeat>,
    /// The games it plays.
    #[serde(default)]
    pub games: Vec<String>,
}

/// A join forwarded to a room's owner.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForwardedJoin {
    /// The member's node.
    pub from: String,
    /// Who joins, as the room shows it.
    pub member: MemberInfo,
    /// The `join_room` as the client sent it.
    pub join: JoinRoom,
    /// The request's `id`.
    pub id: Option<RequestId>,
    /// The session's join serial, echoed in the answer.
    pub serial: u64,
    /// A resumed member's resync join.
    pub resync: bool,
    /// Whether the member is in the room already (a resync or a repeated
    /// join).
    pub already_in: bool,
}

/// The owner's frames for a room's members on other nodes: one message per
/// batch, numbered per room channel (`epoch`, `seq`) so that a node sees a
/// gap. `epoch` 0 is unnumbered (a node that does not own the room answers
/// a stray request).
#[derive(Debug, Serialize, Deserialize)]
pub struct RoomMsg {
    /// The node that sent it.
    pub owner: String,
    /// The owner's claim of the room: a new claim starts a new count.
    pub epoch: u64,
    /// The message's number in its epoch, from 1.
    pub seq: u64,
    /// What it carries, in order.
    pub items: Vec<Item>,
}

/// One thing a [`RoomMsg`] carries.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Item {
    /// A text frame for the sessions `to`.
    Frame {
        to: Vec<String>,
        text: String,
        /// An answer to the session's own request (goes out at once).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        answer: bool,
    },
    /// The frames that resync a session.
    Resynced {
        to: String,
        part: ResyncPart,
        frames: Vec<String>,
    },
    /// A session's join went through.
    Linked {
        to: String,
        serial: u64,
        /// The room's kind, for the member's node to keep.
        kind: crate::protocol::RoomKind,
        /// The member's role there.
        role: crate::protocol::Role,
    },
    /// A session's join was refused.
    Refused { to: String, serial: u64 },
    /// The owner stopped and gave the room up: a node with members claims
    /// it at once.
    Released,
    /// Session `to` plays or watches the game of this channel.
    GameLinked { to: String, kind: GameKind },
    /// The game of this channel has ended (`closed`: and stopped; its
    /// channel goes quiet).
    Ended { closed: bool },
}
