//! How actors reach each other: [`SessionHandle`], [`GameLink`],
//! [`RoomLink`], [`LobbyLink`] and [`StoreLink`], and the messages they
//! carry. Each link is a small handle over `Recipient`s, built from the
//! actor's address by the actor's owner, so no actor imports another's
//! module (ARCHITECTURE.md, *Arrows point down*): a Game reports to the
//! Lobby through the recipients it was given, a Session asks the Lobby
//! through its [`LobbyLink`].
//!
//! A [`SessionHandle`] puts frames into the session's mailbox, the one
//! queue between everyone who writes to a client and its socket; the
//! session writes whatever one wakeup brought in one system call. The
//! handle counts what is queued and not yet written: past
//! `limits.max_outbox` the client is not reading, the session hears of it
//! ([`Overflowed`]) and drops the client (1008).

use std::{
    any::Any,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
};

use actix::{dev::ToEnvelope, prelude::*};
use actix_http::ws::CloseCode;
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use serde_json::Value;

use crate::{
    metrics::Metrics,
    protocol::{
        BotLevel, GameKind, GameRecord, JoinRoom, LeaveReason, PlayBot, Refusal, RequestId, Role,
        RoomKind, ServerMsg,
    },
};

/// A frame for a session's client, queued until the session writes it.
#[derive(Debug)]
pub enum Outgoing {
    /// An event, already serialised: it may wait `server.write_delay_ms`
    /// to go out in one write with others.
    Text(ByteString),
    /// An answer to the session's own request, already serialised: it goes
    /// out at once, with everything queued before it.
    Answer(ByteString),
    /// A heartbeat Ping.
    Ping,
    /// The answer to a client's Ping.
    Pong(Bytes),
    /// A Close frame; the writer stops after it.
    Close(CloseCode),
}

impl Outgoing {
    /// Whether the frame goes out at once rather than wait to be gathered
    /// with others.
    pub fn is_urgent(&self) -> bool {
        !matches!(self, Outgoing::Text(_))
    }
}

/// A session's outbox is full: its client does not read.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Overflowed;

/// A frame for the session's client, counted by its [`SessionHandle`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Outgoing);

/// A frame the session's outbox had no room for: its client is being
/// dropped as slow, so it is not written, but it is numbered and kept like
/// any other, for the client's resume.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Keep(pub ByteString);

/// A game this session plays or watches: route its moves there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Linked(pub GameLink);

/// The Lobby admitted the session to a room: route its messages there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomLinked {
    /// How to reach the room.
    pub link: RoomLink,
    /// The join it answers; an answer to an earlier join is stale.
    pub serial: u64,
}

/// The serial of a [`RoomLinked`] that replaces the link of a room the
/// session is in already: the room moved (to this node, or away from it).
pub const RELINK: u64 = u64::MAX;

/// The serial of a [`RoomRefused`] for a room the session was in, closed
/// by an operator: the route ends whatever its state.
pub const CLOSED: u64 = u64::MAX - 2;

/// Hand the session over to another node (see [`SessionHandle::move_out`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct MoveOut {
    /// The frames the client counted.
    pub received: u64,
    /// Where the answer goes.
    pub reply: tokio::sync::oneshot::Sender<MovedOut>,
}

/// What a session handed over leaves behind for its new node.
pub struct MovedOut {
    /// The frames after the client's count, if all still kept.
    pub frames: Option<Vec<ByteString>>,
    /// The number of the last frame sent.
    pub last: u64,
    /// The games it plays or watches, with their kinds.
    pub games: Vec<(String, GameKind)>,
}

/// The frames a session handed over from another node brings along.
pub struct CarriedFrames {
    /// The frames after the client's count.
    pub frames: Vec<ByteString>,
    /// The number of the last.
    pub last: u64,
    /// The client's count.
    pub received: u64,
}

/// The links of a session handed over from another node, given with its
/// admission so that its requests reach its games and rooms from its first
/// frame (a client may move as soon as it reads `resumed`).
#[derive(Default)]
pub struct Adopted {
    pub games: Vec<GameLink>,
    pub rooms: Vec<RoomLink>,
}

/// The Lobby refused the session's join of a room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomRefused {
    pub room: String,
    /// The join it answers.
    pub serial: u64,
}

/// What a [`Resynced`] brings back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ResyncPart {
    /// A game's `game_state`, by game id.
    Game(String),
    /// A room's `room_joined` and `room_state`, by room name.
    Room(String),
}

/// The frames that resync a resumed session from one game or room: they go
/// out in the resync's order, before the live frames held meanwhile
/// (PROTOCOL.md, *Reconnecting and recovery*).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resynced {
    /// Which game or room.
    pub part: ResyncPart,
    /// Its frames, in order.
    pub frames: Vec<ByteString>,
}

/// Close the connection with this code; the session stays, away.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseSession(pub CloseCode);

/// The session is over (its grace ran out, or the Lobby does not know
/// it): close its connection, if any, with this code, and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndSession(pub CloseCode);

/// A new connection for a running session: a resume, or a takeover of a
/// connection still open (closed with 4001).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconnect {
    /// The connection, detached from the thread that accepted it: the
    /// session registers it on its own thread.
    pub io: std::net::TcpStream,
    /// Bytes the client sent after its handshake, read with it.
    pub read_ahead: BytesMut,
    /// The `101 Switching Protocols` answer, written before any frame.
    pub response: BytesMut,
    /// The connection's place among the open sessions.
    pub slot: Box<dyn Any + Send>,
    /// Who the Lobby found: the new token, the rooms.
    pub admission: Admission,
    /// `?received=`: the frames the client counted, if it said.
    pub received: Option<u64>,
}

/// How the Lobby, games and rooms reach a session: its mailbox, and the
/// count of frames queued for its client. Made once per session; cheap to
/// clone. The session outlives its connections: a frame sent while it is
/// away is kept for its resume (PROTOCOL.md, *Reconnecting and recovery*).
#[derive(Clone)]
pub struct SessionHandle(Arc<SessionReach>);

/// What a [`SessionHandle`] holds.
struct SessionReach {
    /// Frames queued for the client and not yet written, by anyone.
    queued: AtomicUsize,
    /// `limits.max_outbox`: the most frames that may be queued.
    most_queued: usize,
    /// A session on another node: its frames are counted (and its errors
    /// and frames out) where it is connected; also a bot's seat, whose
    /// frames are not counted at all.
    remote: bool,
    /// Set once the session has been told its outbox overflowed, so a
    /// fan-out to a stuck client tells it once, not once per frame.
    overflowed: AtomicBool,
    /// Frames out and errors by code.
    metrics: Arc<Metrics>,
    /// The session actor's mailbox: one address for every message, rather
    /// than a boxed `Recipient` per message type on every connection.
    mailbox: Box<dyn SessionMailbox>,
}

/// Where the frames for a session on another node go: the Backplane, which
/// publishes them once on the channel of the room or game that sends them,
/// for the session's own node to deliver (ARCHITECTURE.md, *Many nodes on
/// Redis*). Implemented by `cluster`; calls never block.
pub trait RemoteOutlet: Send + Sync {
    /// A text frame for `session`; `answer` when it answers the session's
    /// own request (it goes out at once).
    fn frame(&self, session: &Arc<str>, frame: ByteString, answer: bool);
    /// The frames that resync `session` from one game or room.
    fn resynced(&self, session: &Arc<str>, resynced: Resynced);
    /// `session` plays or watches game `game` (the outlet's): its node
    /// links it there.
    fn linked(&self, session: &Arc<str>, game: &GameLink);
}

/// A session on another node, reached through a [`RemoteOutlet`].
struct RemoteMailbox {
    /// The session's id.
    session: Arc<str>,
    /// Where its frames go.
    outlet: Arc<dyn RemoteOutlet>,
}

impl SessionMailbox for RemoteMailbox {
    fn deliver(&self, frame: Outgoing) {
        match frame {
            Outgoing::Text(text) => self.outlet.frame(&self.session, text, false),
            Outgoing::Answer(text) => self.outlet.frame(&self.session, text, true),
            // Heartbeats and closes belong to the session's own node.
            Outgoing::Ping | Outgoing::Pong(_) | Outgoing::Close(_) => {}
        }
    }

    fn keep(&self, frame: ByteString) {
        self.outlet.frame(&self.session, frame, false);
    }

    fn resynced(&self, resynced: Resynced) {
        self.outlet.resynced(&self.session, resynced);
    }

    fn overflowed(&self) {}

    fn linked(&self, link: GameLink) {
        self.outlet.linked(&self.session, &link);
    }

    // The owner's Lobby answers a remote join through the Backplane, and
    // the session's own node closes, ends and reconnects it.
    fn room_linked(&self, _: RoomLinked) {}

    fn room_refused(&self, _: RoomRefused) {}

    fn close(&self, _: CloseCode) {}

    fn end(&self, _: CloseCode) {}

    fn reconnect(&self, _: Reconnect) {}

    // Only the session's own node hands it over.
    fn move_out(&self, _: MoveOut) {}

    fn alive(&self) -> bool {
        true
    }
}

/// The messages a session actor takes from others, behind one address.
trait SessionMailbox: Send + Sync {
    /// [`Deliver`].
    fn deliver(&self, frame: Outgoing);
    /// [`Keep`].
    fn keep(&self, frame: ByteString);
    /// [`Resynced`].
    fn resynced(&self, resynced: Resynced);
    /// [`Overflowed`].
    fn overflowed(&self);
    /// [`Linked`].
    fn linked(&self, link: GameLink);
    /// [`RoomLinked`].
    fn room_linked(&self, link: RoomLinked);
    /// [`RoomRefused`].
    fn room_refused(&self, refused: RoomRefused);
    /// [`CloseSession`].
    fn close(&self, code: CloseCode);
    /// [`EndSession`].
    fn end(&self, code: CloseCode);
    /// [`Reconnect`].
    fn reconnect(&self, reconnect: Reconnect);
    /// Whether the session actor is still running.
    fn alive(&self) -> bool;
    /// [`MoveOut`].
    fn move_out(&self, msg: MoveOut);
}

impl<A> SessionMailbox for Addr<A>
where
    A: Actor<Context = Context<A>>
        + Handler<Deliver>
        + Handler<Keep>
        + Handler<Resynced>
        + Handler<Overflowed>
        + Handler<Linked>
        + Handler<RoomLinked>
        + Handler<RoomRefused>
        + Handler<CloseSession>
        + Handler<EndSession>
        + Handler<Reconnect>
        + Handler<MoveOut>,
{
    fn move_out(&self, msg: MoveOut) {
        self.do_send(msg);
    }

    fn deliver(&self, frame: Outgoing) {
        self.do_send(Deliver(frame));
    }

    fn keep(&self, frame: ByteString) {
        self.do_send(Keep(frame));
    }

    fn resynced(&self, resynced: Resynced) {
        self.do_send(resynced);
    }

    fn overflowed(&self) {
        self.do_send(Overflowed);
    }

    fn linked(&self, link: GameLink) {
        self.do_send(Linked(link));
    }

    fn room_linked(&self, link: RoomLinked) {
        self.do_send(link);
    }

    fn room_refused(&self, refused: RoomRefused) {
        self.do_send(refused);
    }

    fn close(&self, code: CloseCode) {
        self.do_send(CloseSession(code));
    }

    fn end(&self, code: CloseCode) {
        self.do_send(EndSession(code));
    }

    fn reconnect(&self, reconnect: Reconnect) {
        self.do_send(reconnect);
    }

    fn alive(&self) -> bool {
        self.connected()
    }
}

/// A bot's seat: the game's frames reach nobody (the Game actor plays
/// the bot's moves itself), and it never stops or leaves.
struct BotMailbox;

impl SessionMailbox for BotMailbox {
    fn deliver(&self, _: Outgoing) {}
    fn keep(&self, _: ByteString) {}
    fn resynced(&self, _: Resynced) {}
    fn overflowed(&self) {}
    fn linked(&self, _: GameLink) {}
    fn room_linked(&self, _: RoomLinked) {}
    fn room_refused(&self, _: RoomRefused) {}
    fn close(&self, _: CloseCode) {}
    fn end(&self, _: CloseCode) {}
    fn reconnect(&self, _: Reconnect) {}
    fn alive(&self) -> bool {
        true
    }
    fn move_out(&self, _: MoveOut) {}
}

impl SessionHandle {
    /// The handle of a bot's seat: what is sent to it goes nowhere and is
    /// not counted as frames out.
    pub fn bot(metrics: Arc<Metrics>) -> SessionHandle {
        SessionHandle(Arc::new(SessionReach {
            queued: AtomicUsize::new(0),
            most_queued: usize::MAX,
            remote: true,
            overflowed: AtomicBool::new(false),
            metrics,
            mailbox: Box::new(BotMailbox),
        }))
    }

    /// The handle of the session actor at `addr`, which may have
    /// `most_queued` frames queued for its client.
    pub fn new<A>(addr: &Addr<A>, most_queued: usize, metrics: Arc<Metrics>) -> SessionHandle
    where
        A: Actor<Context = Context<A>>
            + Handler<Deliver>
            + Handler<Keep>
            + Handler<Resynced>
            + Handler<Overflowed>
            + Handler<Linked>
            + Handler<RoomLinked>
            + Handler<RoomRefused>
            + Handler<CloseSession>
            + Handler<EndSession>
            + Handler<Reconnect>
            + Handler<MoveOut>,
    {
        SessionHandle(Arc::new(SessionReach {
            queued: AtomicUsize::new(0),
            most_queued,
            remote: false,
            overflowed: AtomicBool::new(false),
            metrics,
            mailbox: Box::new(addr.clone()),
        }))
    }

    /// The handle of session `session` on another node: its frames go to
    /// `outlet`, uncounted here (its own node counts them).
    pub fn remote(
        session: Arc<str>,
        outlet: Arc<dyn RemoteOutlet>,
        metrics: Arc<Metrics>,
    ) -> SessionHandle {
        SessionHandle(Arc::new(SessionReach {
            queued: AtomicUsize::new(0),
            most_queued: usize::MAX,
            remote: true,
            overflowed: AtomicBool::new(false),
            metrics,
            mailbox: Box::new(RemoteMailbox { session, outlet }),
        }))
    }

    /// Whether the session is on another node.
    pub fn is_remote(&self) -> bool {
        self.0.remote
    }

    /// Whether the session is still running (it stops when its grace
    /// runs out).
    pub fn alive(&self) -> bool {
        self.0.mailbox.alive()
    }

    /// A new connection starts: a full outbox will be told of again.
    pub fn rearm(&self) {
        self.0.overflowed.store(false, Ordering::Relaxed);
    }

    /// Queues an event for the client (it may wait `server.write_delay_ms`
    /// to go out with others).
    pub fn send(&self, frame: ByteString) {
        self.push(Outgoing::Text(frame));
    }

    /// Queues an answer to the session's own request: it goes out at once.
    pub fn answer(&self, frame: ByteString) {
        self.push(Outgoing::Answer(frame));
    }

    /// Queues a frame. A full outbox drops the client (the session hears of
    /// it, once), and the frame is only kept for its resume; a frame for a
    /// session that has stopped goes nowhere.
    fn push(&self, frame: Outgoing) {
        if self.is_remote() {
            self.0.mailbox.deliver(frame);
            return;
        }
        if self.reserve() {
            self.0.metrics.frames_out.inc();
            self.0.mailbox.deliver(frame);
            return;
        }
        if let Outgoing::Text(frame) | Outgoing::Answer(frame) = frame {
            self.0.mailbox.keep(frame);
        }
        if !self.0.overflowed.swap(true, Ordering::Relaxed) {
            self.0.mailbox.overflowed();
        }
    }

    /// Counts one more frame queued for the client; `false` (and nothing
    /// counted) when `limits.max_outbox` are queued already.
    pub fn reserve(&self) -> bool {
        let reach = &self.0;
        if reach.queued.fetch_add(1, Ordering::Relaxed) < reach.most_queued {
            return true;
        }
        reach.queued.fetch_sub(1, Ordering::Relaxed);
        false
    }

    /// Counts `frames` as written (or dropped): they no longer fill the
    /// outbox.
    pub fn written(&self, frames: usize) {
        if frames > 0 {
            self.0.queued.fetch_sub(frames, Ordering::Relaxed);
        }
    }

    /// Sends `msg` as the answer to request `id`.
    pub fn reply(&self, msg: &ServerMsg, id: Option<&RequestId>) {
        self.answer(msg.encode_reply(id));
    }

    /// Sends the `error` frame of a refused request, and counts it.
    pub fn refuse(&self, refusal: &Refusal) {
        if !self.is_remote() {
            self.0.metrics.error_sent(refusal.code);
        }
        self.answer(refusal.encode());
    }

    /// Sends the frames that resync the session from one game or room.
    pub fn resynced(&self, part: ResyncPart, frames: Vec<ByteString>) {
        if !self.is_remote() {
            self.0.metrics.frames_out.inc_by(frames.len() as u64);
        }
        self.0.mailbox.resynced(Resynced { part, frames });
    }

    /// Tells the session to route a game's requests to `link`.
    pub fn link_game(&self, link: GameLink) {
        self.0.mailbox.linked(link);
    }

    /// Tells the session its join of a room went through.
    pub fn link_room(&self, link: RoomLink, serial: u64) {
        self.0.mailbox.room_linked(RoomLinked { link, serial });
    }

    /// Hands the session over to another node: answers the frames after
    /// `received` (if still kept) and the last number, closes its
    /// connection with 4001 and stops, leaving its rooms and games alone
    /// (they reach it on its new node). `None` if it has stopped.
    pub fn move_out(&self, received: u64) -> impl std::future::Future<Output = Option<MovedOut>> {
        let (reply, moved) = tokio::sync::oneshot::channel();
        self.0.mailbox.move_out(MoveOut { received, reply });
        async move { moved.await.ok() }
    }

    /// Tells the session its room now goes through `link` (the room moved).
    pub fn relink_room(&self, link: RoomLink) {
        self.0.mailbox.room_linked(RoomLinked {
            link,
            serial: RELINK,
        });
    }

    /// Tells the session that `room`, which it was in, is closed.
    pub fn room_closed(&self, room: String) {
        self.0.mailbox.room_refused(RoomRefused {
            room,
            serial: CLOSED,
        });
    }

    /// Tells the session its join of `room` was refused.
    pub fn refuse_room(&self, room: String, serial: u64) {
        self.0.mailbox.room_refused(RoomRefused { room, serial });
    }

    /// Has the session close its connection with `code`.
    pub fn close(&self, code: CloseCode) {
        self.0.mailbox.close(code);
    }

    /// Ends the session: its connection, if any, closes with `code`.
    pub fn end(&self, code: CloseCode) {
        self.0.mailbox.end(code);
    }

    /// Hands the session a new connection.
    pub fn reconnect(&self, reconnect: Reconnect) {
        self.0.mailbox.reconnect(reconnect);
    }
}

/// A player taking a seat.
#[derive(Clone)]
pub struct Player {
    /// The player's session id.
    pub session: String,
    /// The display name.
    pub name: String,
    /// The color.
    pub color: String,
    /// How to reach the player.
    pub handle: SessionHandle,
    /// Set when the seat is a bot's, at that level: the game plays it.
    pub bot: Option<BotLevel>,
}

impl Player {
    /// A new bot at `level`: a seat the game plays itself.
    pub fn bot(level: BotLevel, metrics: Arc<Metrics>) -> Player {
        let level_name: &'static str = level.into();
        Player {
            session: crate::identity::new_id(crate::identity::BOT_PREFIX),
            name: format!("Parlor bot ({level_name})"),
            color: BOT_COLOR.to_string(),
            handle: SessionHandle::bot(metrics),
            bot: Some(level),
        }
    }

    /// The bot of a kept game's seat, brought back.
    pub fn bot_seat(seat: &LivePlayer, level: BotLevel, metrics: Arc<Metrics>) -> Player {
        Player {
            session: seat.session.clone(),
            name: seat.name.clone(),
            color: seat.color.clone(),
            handle: SessionHandle::bot(metrics),
            bot: Some(level),
        }
    }
}

/// Every bot's color: slate grey.
const BOT_COLOR: &str = "#64748b";

/// What a session asks of a game it plays or watches.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PlayerRequest {
    /// The asking session.
    pub session: String,
    /// A move or a resignation.
    pub action: Action,
    /// The request's `id`, echoed on the answer.
    pub id: Option<RequestId>,
}

/// What a player can do in a game.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Action {
    /// `move`, with the request's fields for the rules to read.
    Move(Value),
    /// `resign`.
    Resign,
    /// An operator ends the game (`POST /api/admin/games/{id}/end`):
    /// abandoned, with no winner, recorded. Sent by the Lobby, never a
    /// session.
    End,
}

impl Action {
    /// The request's `type`, for `ref` on errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Move(_) => "move",
            Action::Resign => "resign",
            Action::End => "end",
        }
    }
}

/// The Lobby seats a player in a waiting private game (`join_game`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TakeSeat {
    /// Who joins.
    pub player: Player,
    /// The `join_game` request's `id`.
    pub id: Option<RequestId>,
}

/// A session starts watching (`watch_game`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    /// The watching session.
    pub session: String,
    /// How to reach it.
    pub handle: SessionHandle,
    /// The `watch_game` request's `id`.
    pub id: Option<RequestId>,
}

/// A session's connection dropped or came back, or the session ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Presence {
    pub session: String,
    /// What changed.
    pub change: PresenceChange,
}

/// What changed of a session, as its games see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PresenceChange {
    /// Its connection dropped: its seats are held for the grace.
    Away,
    /// It has a connection again (back from away, or a takeover). With
    /// `resync`, it lost frames: the game sends it `game_state` and then
    /// its link (which tells the session the state is queued).
    Back {
        /// Send `game_state` (and the link after it).
        resync: bool,
    },
    /// Its grace ran out: it is no spectator any more.
    Gone,
}

/// How sessions and the Lobby reach one game, whatever its rules.
#[derive(Clone)]
pub struct GameLink {
    /// The game id.
    pub id: String,
    /// Its kind.
    pub kind: GameKind,
    /// Where its messages go.
    reach: GameReach,
}

/// Where a game's messages go.
#[derive(Clone)]
enum GameReach {
    /// The game actor, on this node.
    Here {
        /// Moves and resignations.
        requests: Recipient<PlayerRequest>,
        /// Joins of private games.
        seats: Recipient<TakeSeat>,
        /// New spectators.
        watches: Recipient<Watch>,
        /// Drops and returns.
        presence: Recipient<Presence>,
        /// Players and spectators reached anew.
        rehomes: Recipient<Rehome>,
        /// The node hands the game over.
        retire: Recipient<Retire>,
    },
    /// The game's owner node, through the Backplane: a player's or
    /// spectator's requests and presence (seats and spectators are given
    /// by the owner's Lobby).
    Remote(Arc<dyn RemoteGames>),
}

/// How a node reaches the games other nodes own: the Backplane forwards a
/// player's request or presence to the owner (ARCHITECTURE.md, *Many nodes
/// on Redis*). Implemented by `cluster`; calls never block.
pub trait RemoteGames: Send + Sync {
    /// Forwards a move or resignation to game `game`.
    fn request(&self, game: &str, msg: PlayerRequest);
    /// Tells game `game` a session dropped or came back.
    fn presence(&self, game: &str, msg: Presence);
}

impl GameLink {
    /// The link to the game actor at `addr`.
    pub fn new<A>(id: String, kind: GameKind, addr: &Addr<A>) -> GameLink
    where
        A: Actor<Context = Context<A>>
            + Handler<PlayerRequest>
            + Handler<TakeSeat>
            + Handler<Watch>
            + Handler<Presence>
            + Handler<Rehome>
            + Handler<Retire>,
    {
        GameLink {
            id,
            kind,
            reach: GameReach::Here {
                requests: addr.clone().recipient(),
                seats: addr.clone().recipient(),
                watches: addr.clone().recipient(),
                presence: addr.clone().recipient(),
                rehomes: addr.clone().recipient(),
                retire: addr.clone().recipient(),
            },
        }
    }

    /// The link to game `id`, owned by another node, reached through
    /// `remote`.
    pub fn remote(id: String, kind: GameKind, remote: Arc<dyn RemoteGames>) -> GameLink {
        GameLink {
            id,
            kind,
            reach: GameReach::Remote(remote),
        }
    }

    /// Whether the game is still there (it stops when its linger ends); a
    /// game on another node is taken to be until its owner says it ended.
    pub fn alive(&self) -> bool {
        match &self.reach {
            GameReach::Here { requests, .. } => requests.connected(),
            GameReach::Remote(_) => true,
        }
    }

    /// Sends a move or resignation.
    pub fn request(&self, msg: PlayerRequest) {
        match &self.reach {
            GameReach::Here { requests, .. } => requests.do_send(msg),
            GameReach::Remote(remote) => remote.request(&self.id, msg),
        }
    }

    /// Seats a player in a waiting game (on this node).
    pub fn take_seat(&self, msg: TakeSeat) {
        if let GameReach::Here { seats, .. } = &self.reach {
            seats.do_send(msg);
        }
    }

    /// Adds a spectator (on this node).
    pub fn watch(&self, msg: Watch) {
        if let GameReach::Here { watches, .. } = &self.reach {
            watches.do_send(msg);
        }
    }

    /// Tells the game (on this node) to reach a player or spectator
    /// through a new handle, and resync it.
    pub fn rehome(&self, msg: Rehome) {
        if let GameReach::Here { rehomes, .. } = &self.reach {
            rehomes.do_send(msg);
        }
    }

    /// Stops the game (on this node) where it is, neither ended nor
    /// recorded: its node hands it over to another, which plays it again
    /// from what the store keeps.
    pub fn retire(&self) {
        if let GameReach::Here { retire, .. } = &self.reach {
            retire.do_send(Retire);
        }
    }

    /// Like [`GameLink::rehome`], answered once the game has it.
    pub fn rehome_now(&self, msg: Rehome) -> impl std::future::Future<Output = ()> + 'static {
        let sent = match &self.reach {
            GameReach::Here { rehomes, .. } => Some(rehomes.send(msg)),
            GameReach::Remote(_) => None,
        };
        async move {
            if let Some(sent) = sent {
                let _ = sent.await;
            }
        }
    }

    /// Tells the game a session dropped or came back.
    pub fn presence(&self, msg: Presence) {
        match &self.reach {
            GameReach::Here { presence, .. } => presence.do_send(msg),
            GameReach::Remote(remote) => remote.presence(&self.id, msg),
        }
    }
}

/// A player or spectator is reached anew, through `handle` (its session
/// moved to another node, or the game did): the game links it and sends
/// it `game_state`, as to a player back from away.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Rehome {
    pub session: String,
    pub handle: SessionHandle,
    /// Link the game and send `game_state` (a game); without it, only the
    /// handle changes (the session is handed over whole).
    pub resync: bool,
}

/// Stop where the game is, neither ended nor recorded (see
/// [`GameLink::retire`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

/// A game has ended; it lingers, but is no longer listed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GameFinished {
    pub game_id: String,
}

/// A game actor has stopped; forget it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GameClosed {
    pub game_id: String,
}

/// What a member's session sends to the room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomRequest {
    /// The sender.
    pub session: String,
    /// Where to answer, even if the sender is no longer a member.
    pub reply: SessionHandle,
    /// What it asks.
    pub action: RoomAction,
    /// The request's `id`.
    pub id: Option<RequestId>,
}

/// The room messages a member can send.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum RoomAction {
    /// `broadcast`.
    Broadcast(Value),
    /// `direct`.
    Direct {
        /// The member to reach.
        to: String,
        /// What to send.
        data: Value,
    },
    /// `state`.
    State {
        /// The state.
        data: Value,
        /// What changed.
        action: Option<String>,
        /// The newcomer it answers for.
        newcomer: Option<String>,
    },
    /// `pos`.
    Pos {
        /// Across.
        x: f64,
        /// Down.
        y: f64,
    },
}

impl RoomAction {
    /// The request's `type`, for `ref` on errors.
    pub fn kind(&self) -> &'static str {
        match self {
            RoomAction::Broadcast(_) => "broadcast",
            RoomAction::Direct { .. } => "direct",
            RoomAction::State { .. } => "state",
            RoomAction::Pos { .. } => "pos",
        }
    }
}

/// How sessions reach a room.
#[derive(Clone)]
pub struct RoomLink {
    /// The room's name.
    pub name: String,
    /// Where its requests go.
    requests: RoomReach,
}

/// Where a room's requests go.
#[derive(Clone)]
enum RoomReach {
    /// The room actor, on this node.
    Here(Recipient<RoomRequest>),
    /// The room's owner node, through the Backplane.
    Remote(Arc<dyn RemoteRooms>),
}

/// How a node reaches the rooms other nodes own: the Backplane forwards a
/// member's request to the owner (ARCHITECTURE.md, *Many nodes on Redis*).
/// Implemented by `cluster`; calls never block.
pub trait RemoteRooms: Send + Sync {
    /// Forwards a member's request to room `room`.
    fn request(&self, room: &str, msg: RoomRequest);
}

impl RoomLink {
    /// The link to the room actor at `addr`.
    pub fn new<A>(name: String, addr: &Addr<A>) -> RoomLink
    where
        A: Actor<Context = Context<A>> + Handler<RoomRequest>,
    {
        RoomLink {
            name,
            requests: RoomReach::Here(addr.clone().recipient()),
        }
    }

    /// The link to room `name`, owned by another node, reached through
    /// `remote`.
    pub fn remote(name: String, remote: Arc<dyn RemoteRooms>) -> RoomLink {
        RoomLink {
            name,
            requests: RoomReach::Remote(remote),
        }
    }

    /// Sends a room message.
    pub fn request(&self, msg: RoomRequest) {
        match &self.requests {
            RoomReach::Here(requests) => requests.do_send(msg),
            RoomReach::Remote(remote) => remote.request(&self.name, msg),
        }
    }
}

/// A room has stopped; keep its snapshot for its next life.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomClosed {
    pub room: String,
    /// Its last snapshot (`null` if none).
    pub snapshot: Value,
}

/// A session's place in a room, kept across a drop so a resume can rejoin.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RoomSeat {
    /// The room's name.
    pub room: String,
    /// Its kind.
    pub kind: RoomKind,
    /// The session's role there.
    pub role: Role,
    /// The zombies it asked for, should the room need opening again.
    pub zombies: u32,
}

/// How an admission went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmitOutcome {
    /// A new session, no token given.
    New,
    /// A new session because the given token was unknown or expired.
    ResumeRefused,
    /// The token's session, back again.
    Resumed,
}

/// Who a new connection is, as the Lobby decided before its session actor
/// starts.
pub struct Admission {
    pub id: String,
    /// The display name.
    pub name: String,
    /// The color.
    pub color: String,
    /// The resume token to hand out in `welcome`.
    pub resume: String,
    /// New, refused resume, or resumed.
    pub outcome: AdmitOutcome,
    /// This connection's number (connections are numbered across the
    /// server, so a later one has a larger number).
    pub connection: u64,
    /// A resumed session's running actor, which takes the connection.
    pub running: Option<SessionHandle>,
    /// The rooms a resumed session is still in.
    pub rooms: Vec<RoomSeat>,
    /// The rooms a resumed session left while away (its away grace ran
    /// out there), to join again.
    pub lost_rooms: Vec<RoomSeat>,
    /// The games a session resumed from another node plays: not linked
    /// yet (each game's `game_state` follows `resumed`), but listed.
    pub games: Vec<String>,
    /// A session handed over whole from a live node: the frames its client
    /// missed.
    pub carried: Option<Box<CarriedFrames>>,
    /// A session handed over whole from a live node: its links.
    pub adopted: Option<Box<Adopted>>,
}

/// A session actor has started for an admitted id.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    pub id: String,
    /// How to reach the session.
    pub handle: SessionHandle,
}

/// A session's connection has ended; the session is away, held for
/// reconnection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Away {
    pub id: String,
    /// The connection that ended, so that the end of a connection already
    /// taken over does not make its successor away.
    pub connection: u64,
    /// Why: disconnected, or evicted for silence (timeout).
    pub reason: LeaveReason,
}

/// A session changed its display name.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Rename {
    pub id: String,
    /// The new, already validated, name.
    pub name: String,
}

/// A session asks the Lobby for a game: queue, cancel, create, join, watch.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LobbyRequest {
    /// The asking session.
    pub session: String,
    /// What it asks.
    pub action: LobbyAction,
    /// The request's `id`, echoed on the answer.
    pub id: Option<RequestId>,
}

/// The game requests the Lobby answers.
pub enum LobbyAction {
    /// `find_game`
    Find(GameKind),
    /// `cancel_find`
    Cancel(GameKind),
    /// `create_game`
    Create(GameKind),
    /// `join_game`, with the join key.
    Join(String),
    /// `watch_game`, with the watch key.
    Watch(String),
    /// `play_bot`
    PlayBot(PlayBot),
}

/// A session asks to join (or create) a room; the Lobby checks every field.
#[derive(Message)]
#[rtype(result = "()")]
pub struct JoinRoomRequest {
    /// The asking session.
    pub session: String,
    /// The `join_room` request as the client sent it.
    pub join: JoinRoom,
    /// The request's `id`.
    pub id: Option<RequestId>,
    /// Numbers this join among the session's joins, echoed in the answer.
    pub serial: u64,
    /// A resync's join of a room the session is still in: the room answers
    /// with [`Resynced`].
    pub resync: bool,
}

/// A session asks to leave a room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveRoomRequest {
    /// The asking session.
    pub session: String,
    pub room: String,
    /// The request's `id`.
    pub id: Option<RequestId>,
}

/// How sessions reach the Lobby.
#[derive(Clone)]
pub struct LobbyLink {
    /// New connections.
    registers: Recipient<Register>,
    /// Ended connections: the session is away.
    aways: Recipient<Away>,
    /// Name changes.
    renames: Recipient<Rename>,
    /// Game requests.
    requests: Recipient<LobbyRequest>,
    /// Room joins.
    joins: Recipient<JoinRoomRequest>,
    /// Room leaves.
    leaves: Recipient<LeaveRoomRequest>,
}

impl LobbyLink {
    /// The link to the Lobby actor at `addr`.
    pub fn new<A>(addr: &Addr<A>) -> LobbyLink
    where
        A: Actor<Context = Context<A>>
            + Handler<Register>
            + Handler<Away>
            + Handler<Rename>
            + Handler<LobbyRequest>
            + Handler<JoinRoomRequest>
            + Handler<LeaveRoomRequest>,
    {
        LobbyLink {
            registers: addr.clone().recipient(),
            aways: addr.clone().recipient(),
            renames: addr.clone().recipient(),
            requests: addr.clone().recipient(),
            joins: addr.clone().recipient(),
            leaves: addr.clone().recipient(),
        }
    }

    /// A session actor has started.
    pub fn register(&self, msg: Register) {
        self.registers.do_send(msg);
    }

    /// A session's connection has ended.
    pub fn away(&self, msg: Away) {
        self.aways.do_send(msg);
    }

    /// A session changed its name.
    pub fn rename(&self, msg: Rename) {
        self.renames.do_send(msg);
    }

    /// A game request.
    pub fn request(&self, msg: LobbyRequest) {
        self.requests.do_send(msg);
    }

    /// A room join.
    pub fn join(&self, msg: JoinRoomRequest) {
        self.joins.do_send(msg);
    }

    /// A room leave.
    pub fn leave(&self, msg: LeaveRoomRequest) {
        self.leaves.do_send(msg);
    }
}

/// Write a room's snapshot (fire and forget).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SaveSnapshot {
    pub room: String,
    /// Its kind.
    pub kind: RoomKind,
    /// The snapshot.
    pub data: Value,
}

/// Read a room's snapshot: `Ok(None)` when it has none, `Err` when it
/// could not be read (then the room must not overwrite what is stored).
#[derive(Message)]
#[rtype(result = "Result<Option<Value>, String>")]
pub struct LoadSnapshot {
    pub room: String,
}

/// Write a finished game (fire and forget).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SaveGame(pub GameRecord);

/// A game in play as the store keeps it, so that a restart loses none
/// (PROTOCOL.md, *Persistence*); its moves are kept one by one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LiveGame {
    pub game_id: String,
    /// Its kind.
    pub game: GameKind,
    /// The seed of its chance.
    pub seed: u64,
    /// The seated players, in seat order.
    pub players: Vec<LivePlayer>,
    /// Whether `/api/games` lists it (quick matches).
    pub listed: bool,
    /// The hash of its watch key's secret.
    pub watch_hash: String,
    /// A listed game's whole watch key (`/api/games` shows it to anyone);
    /// `None` for a private game, whose key is a secret.
    pub watch_key: Option<String>,
    /// When it started, RFC 3339.
    pub started_at: String,
}

/// A seated player of a [`LiveGame`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LivePlayer {
    /// The player's session id.
    pub session: String,
    /// The display name.
    pub name: String,
    /// The color.
    pub color: String,
    /// A bot's seat, at that level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<BotLevel>,
}

/// A session seated in a game in play, as the store keeps it: enough for
/// its player to resume after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSession {
    pub session: String,
    /// The display name.
    pub name: String,
    /// The color.
    pub color: String,
    /// The hash of its current resume token's secret.
    pub resume_hash: String,
}

/// An accepted move, as the store keeps it for a game in play.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredMove {
    /// The seat that played it.
    pub seat: usize,
    /// The move as the client sent it (the rules recompute the rest).
    pub mv: Value,
}

/// Keep a game that has started (fire and forget; its first move's write
/// comes after it).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SaveLiveGame(pub LiveGame);

/// Keep a game's accepted move; answered once written (or failed, then
/// kept to be tried again), so that the game announces only moves a
/// `kill -9` cannot lose.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct SaveMove {
    pub game_id: String,
    /// The move's number in the game, from 1.
    pub number: usize,
    /// The move.
    pub stored: StoredMove,
}

/// Keep (or update) a seated session's identity (fire and forget).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SaveSession(pub LiveSession);

/// How games, rooms and the Lobby reach the store.
#[derive(Clone)]
pub struct StoreLink {
    /// Finished games.
    games: Recipient<SaveGame>,
    /// Snapshot writes.
    saves: Recipient<SaveSnapshot>,
    /// Snapshot reads.
    loads: Recipient<LoadSnapshot>,
    /// Games in play.
    live_games: Recipient<SaveLiveGame>,
    /// Their moves.
    moves: Recipient<SaveMove>,
    /// Seated sessions.
    seated: Recipient<SaveSession>,
}

impl StoreLink {
    /// The link to the store actor at `addr`.
    pub fn new<A>(addr: &Addr<A>) -> StoreLink
    where
        A: Actor
            + Handler<SaveGame>
            + Handler<SaveSnapshot>
            + Handler<LoadSnapshot>
            + Handler<SaveLiveGame>
            + Handler<SaveMove>
            + Handler<SaveSession>,
        A::Context: ToEnvelope<A, SaveGame>
            + ToEnvelope<A, SaveSnapshot>
            + ToEnvelope<A, LoadSnapshot>
            + ToEnvelope<A, SaveLiveGame>
            + ToEnvelope<A, SaveMove>
            + ToEnvelope<A, SaveSession>,
    {
        StoreLink {
            games: addr.clone().recipient(),
            saves: addr.clone().recipient(),
            loads: addr.clone().recipient(),
            live_games: addr.clone().recipient(),
            moves: addr.clone().recipient(),
            seated: addr.clone().recipient(),
        }
    }

    /// Keeps a game that has started.
    pub fn save_live_game(&self, msg: SaveLiveGame) {
        self.live_games.do_send(msg);
    }

    /// Keeps an accepted move; the answer says it is written.
    pub fn save_move(&self, msg: SaveMove) -> actix::dev::RecipientRequest<SaveMove> {
        self.moves.send(msg)
    }

    /// Keeps a seated session's identity.
    pub fn save_session(&self, msg: SaveSession) {
        self.seated.do_send(msg);
    }

    /// Records a finished game.
    pub fn save_game(&self, msg: SaveGame) {
        self.games.do_send(msg);
    }

    /// Writes a snapshot.
    pub fn save_snapshot(&self, msg: SaveSnapshot) {
        self.saves.do_send(msg);
    }

    /// Reads a snapshot.
    pub fn load_snapshot(&self, msg: LoadSnapshot) -> actix::dev::RecipientRequest<LoadSnapshot> {
        self.loads.send(msg)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Stand-ins for the actors at the other end of the links, for unit
    //! tests of one actor.

    use tokio::sync::mpsc;

    use super::*;

    /// Stands in for any actor a link reaches: ignores everything, and
    /// has no stored snapshot to load.
    pub(crate) struct Nobody;

    impl Actor for Nobody {
        type Context = Context<Self>;
    }

    macro_rules! ignore {
        ($($message:ty),*) => {$(
            impl Handler<$message> for Nobody {
                type Result = ();
                fn handle(&mut self, _: $message, _: &mut Context<Self>) {}
            }
        )*};
    }

    ignore!(Overflowed, Linked, RoomLinked, RoomRefused, CloseSession);
    ignore!(GameFinished, GameClosed, RoomClosed, SaveGame, SaveSnapshot);
    ignore!(SaveLiveGame, SaveSession);

    impl Handler<SaveMove> for Nobody {
        type Result = Result<(), String>;
        fn handle(&mut self, _: SaveMove, _: &mut Context<Self>) -> Self::Result {
            Ok(())
        }
    }

    impl Handler<LoadSnapshot> for Nobody {
        type Result = Result<Option<Value>, String>;
        fn handle(&mut self, _: LoadSnapshot, _: &mut Context<Self>) -> Self::Result {
            Ok(None)
        }
    }

    /// Stands in for a session: passes on every frame it is given, and
    /// ignores everything else.
    struct Recorder(mpsc::UnboundedSender<Outgoing>);

    impl Actor for Recorder {
        type Context = Context<Self>;
    }

    impl Handler<Deliver> for Recorder {
        type Result = ();
        fn handle(&mut self, Deliver(frame): Deliver, _: &mut Context<Self>) {
            let _ = self.0.send(frame);
        }
    }

    macro_rules! ignore_recorded {
        ($($message:ty),*) => {$(
            impl Handler<$message> for Recorder {
                type Result = ();
                fn handle(&mut self, _: $message, _: &mut Context<Self>) {}
            }
        )*};
    }

    ignore_recorded!(Overflowed, Linked, RoomLinked, RoomRefused, CloseSession);
    ignore_recorded!(EndSession, Reconnect, Keep, Resynced, MoveOut);

    /// A handle whose frames arrive on the returned queue (must be called
    /// inside an actix system).
    pub(crate) fn handle() -> (SessionHandle, mpsc::UnboundedReceiver<Outgoing>) {
        let (frames_in, frames) = mpsc::unbounded_channel();
        let addr = Recorder(frames_in).start();
        let metrics = Arc::new(Metrics::new());
        // Nothing is written, so nothing is ever counted out: no bound.
        let handle = SessionHandle::new(&addr, usize::MAX, metrics);
        (handle, frames)
    }
}
