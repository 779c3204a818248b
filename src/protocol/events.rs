//! What the server sends: every event as a serde type, serialised once
//! ([`ServerMsg::encode`]) so that the bytes can be shared by every
//! recipient, and the bodies of the HTTP API.

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ErrorCode, GameKind, GameResult, GameStatus, LeaveReason, RequestId, Role, RoomKind};

/// A room member as rooms show them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The member's session id.
    pub session: String,
    /// The display name.
    pub name: String,
    /// The color.
    pub color: String,
    /// Member, host or controller.
    pub role: Role,
    /// Set while the member's connection is gone (PROTOCOL.md,
    /// *Reconnecting and recovery*); absent on the wire otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub away: bool,
}

/// A player on a canvas frame.
#[derive(Debug, Clone, Serialize)]
pub struct CanvasPlayer {
    /// The member's session id.
    pub session: String,
    /// Across.
    pub x: f64,
    /// Down.
    pub y: f64,
    /// The member's color.
    pub color: String,
}

/// A zombie on a canvas frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Across.
    pub x: f64,
    /// Down.
    pub y: f64,
}

/// One room in `GET /api/rooms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomListing {
    /// The room's name.
    pub room: String,
    /// Its kind.
    pub kind: RoomKind,
    /// How many members it has.
    pub members: usize,
}

/// A seated player as games show them.
#[derive(Debug, Clone, Serialize)]
pub struct PlayerInfo {
    /// The seat's name (`"X"`, `"red"`, `"solo"`, …).
    pub seat: &'static str,
    /// The player's display name.
    pub name: String,
    /// The player's color.
    pub color: String,
    /// `true` for a bot's seat; absent for people.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
}

/// One game in `GET /api/games`: a quick match in progress.
#[derive(Debug, Clone, Serialize)]
pub struct GameListing {
    /// The game.
    pub game_id: String,
    /// Its kind.
    pub game: GameKind,
    /// Its players.
    pub players: Vec<PlayerInfo>,
    /// The key that lets anyone watch.
    pub watch_key: String,
    /// When it started, RFC 3339 UTC.
    pub started_at: String,
}

/// A player as a finished game keeps it (`/api/history`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredPlayer {
    /// The seat.
    pub seat: String,
    /// The display name then.
    pub name: String,
    /// The color then.
    pub color: String,
    /// `true` for a bot's seat; absent for people.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
}

impl From<&PlayerInfo> for StoredPlayer {
    fn from(player: &PlayerInfo) -> Self {
        StoredPlayer {
            seat: player.seat.to_string(),
            name: player.name.clone(),
            color: player.color.clone(),
            bot: player.bot,
        }
    }
}

/// A finished game in `GET /api/history`: the record without seed and moves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistoryEntry {
    /// The game.
    pub game_id: String,
    /// Its kind.
    pub game: GameKind,
    /// The players, by seat.
    pub players: Vec<StoredPlayer>,
    /// How it ended.
    pub result: GameResult,
    /// The winning seat, if any.
    pub winner: Option<String>,
    /// When it started, RFC 3339 UTC.
    pub started_at: String,
    /// When it ended, RFC 3339 UTC.
    pub ended_at: String,
}

/// A finished game whole (`GET /api/history/{game_id}`): enough to list it
/// and to replay it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GameRecord {
    /// What a listing shows of it.
    #[serde(flatten)]
    pub entry: HistoryEntry,
    /// The seed of its chance (below 2^53, so JSON carries it exactly).
    pub seed: u64,
    /// Every accepted move, as `moved.move` showed it.
    pub moves: Vec<Value>,
}

/// Every event the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The first frame of every connection.
    Welcome {
        /// [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION).
        protocol: u32,
        /// The session id.
        session: String,
        /// The display name.
        name: String,
        /// `#rrggbb`.
        color: String,
        /// The secret resume token.
        resume: String,
        /// `heartbeat.interval_ms`.
        heartbeat_ms: u64,
        /// `heartbeat.timeout_ms`.
        timeout_ms: u64,
    },
    /// Sent after `welcome` when a resume token brought a session back.
    Resumed {
        /// The session id, the same as before the drop.
        session: String,
        /// Games the session sits in.
        games: Vec<String>,
        /// Rooms the session is back in.
        rooms: Vec<String>,
        /// Whether the missed frames follow (else a resync does).
        recovered: bool,
        /// The number of the last frame numbered before this connection.
        last: u64,
    },
    /// The answer to `set_name`.
    Profile {
        /// The session id.
        session: String,
        /// The new name.
        name: String,
        /// The session's color.
        color: String,
    },
    /// The answer to `echo`.
    Echo {
        /// What the client sent.
        data: Value,
    },
    /// The answer to `find_game`.
    Queued {
        /// The game queued for.
        game: GameKind,
    },
    /// The answer to `cancel_find`.
    FindCancelled {
        /// The game no longer queued for.
        game: GameKind,
    },
    /// The answer to `create_game`.
    GameCreated {
        /// The new game.
        game_id: String,
        /// Its kind.
        game: GameKind,
        /// The one-use key that takes the free seat; null for a one-player game.
        join_key: Option<String>,
        /// The key that lets anyone watch.
        watch_key: String,
    },
    /// A game has begun.
    GameStart {
        /// The game.
        game_id: String,
        /// Its kind.
        game: GameKind,
        /// The recipient's seat; absent for spectators.
        #[serde(skip_serializing_if = "Option::is_none")]
        you: Option<&'static str>,
        /// The seated players.
        players: Vec<PlayerInfo>,
        /// The seat to move.
        turn: Option<&'static str>,
        /// The board.
        board: Value,
        /// The key that lets anyone watch.
        watch_key: String,
    },
    /// A full snapshot of a game.
    GameState {
        /// The game.
        game_id: String,
        /// Its kind.
        game: GameKind,
        /// The recipient's seat; absent for spectators.
        #[serde(skip_serializing_if = "Option::is_none")]
        you: Option<&'static str>,
        /// The seated players.
        players: Vec<PlayerInfo>,
        /// The seat to move; null unless playing.
        turn: Option<&'static str>,
        /// The board.
        board: Value,
        /// Every accepted move, as `moved.move` showed it.
        moves: Vec<Value>,
        /// Waiting, playing or over.
        status: GameStatus,
        /// How it ended; null until over.
        result: Option<GameResult>,
        /// The winning seat; null unless someone won.
        winner: Option<&'static str>,
    },
    /// A move was accepted.
    Moved {
        /// The game.
        game_id: String,
        /// The seat that moved.
        seat: &'static str,
        /// The move as sent, with what the server decided added.
        #[serde(rename = "move")]
        played: Value,
        /// The board after it.
        board: Value,
        /// The seat to move next; null once over.
        turn: Option<&'static str>,
    },
    /// A game has ended.
    GameOver {
        /// The game.
        game_id: String,
        /// How it ended.
        result: GameResult,
        /// The winning seat, if any.
        winner: Option<&'static str>,
        /// The winning cells; empty when there are none.
        line: Value,
        /// The final score (match three only).
        #[serde(skip_serializing_if = "Option::is_none")]
        score: Option<u32>,
    },
    /// A player's connection dropped; the seat is held.
    OpponentAway {
        /// The game.
        game_id: String,
        /// The absent seat.
        seat: &'static str,
        /// How long the seat is held.
        grace_ms: u64,
    },
    /// An absent player is back.
    OpponentBack {
        /// The game.
        game_id: String,
        /// The seat.
        seat: &'static str,
    },
    /// The answer to `join_room`.
    RoomJoined {
        /// The room.
        room: String,
        /// Its kind.
        kind: RoomKind,
        /// The joiner's session id.
        you: String,
        /// Every member, the joiner included.
        members: Vec<MemberInfo>,
        /// A canvas room's frame rate (`rooms.canvas_tick_hz`); absent
        /// for other kinds.
        #[serde(skip_serializing_if = "Option::is_none")]
        tick_hz: Option<u32>,
    },
    /// The room's state for a joiner.
    RoomState {
        /// The room.
        room: String,
        /// The state.
        data: Value,
        /// The member who supplied it; null for the stored snapshot.
        from: Option<String>,
    },
    /// Someone joined a room.
    MemberJoined {
        /// The room.
        room: String,
        /// Who.
        member: MemberInfo,
    },
    /// Someone left a room.
    MemberLeft {
        /// The room.
        room: String,
        /// Who.
        session: String,
        /// Left, disconnected or timeout.
        reason: LeaveReason,
    },
    /// A member's connection dropped; it stays a member, away, for
    /// `rooms.away_grace_ms`.
    MemberAway {
        /// The room.
        room: String,
        /// Who.
        session: String,
        /// Disconnected or timeout.
        reason: LeaveReason,
    },
    /// An away member came back.
    MemberBack {
        /// The room.
        room: String,
        /// Who.
        session: String,
    },
    /// A member changed name.
    MemberUpdated {
        /// The room.
        room: String,
        /// The member as now.
        member: MemberInfo,
    },
    /// The answer to `leave_room`, or an operator closed the room.
    RoomLeft {
        /// The room.
        room: String,
        /// `"closed"` when an operator closed the room; absent for a leave.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
    /// A relayed `broadcast` or `direct`.
    Message {
        /// The room.
        room: String,
        /// The sender's session id.
        from: String,
        /// What it sent.
        data: Value,
        /// Set for a `direct`.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        direct: bool,
    },
    /// Asks the room's source of truth for its state, for a newcomer.
    StateRequest {
        /// The room.
        room: String,
        /// The newcomer's session id.
        #[serde(rename = "for")]
        newcomer: String,
    },
    /// A canvas frame.
    Frame {
        /// The room.
        room: String,
        /// Members that have sent a position.
        players: Vec<CanvasPlayer>,
        /// The room's zombies.
        zombies: Vec<Point>,
    },
    /// A request that could not be honoured.
    Error {
        /// What went wrong, as a code.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
        /// The `type` of the failed request.
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        request: Option<String>,
        /// For `room_full`: up to three rooms of the same kind with space.
        #[serde(skip_serializing_if = "Option::is_none")]
        suggestions: Option<Vec<String>>,
    },
}

/// A server event with the `id` of the request that caused it.
#[derive(Serialize)]
struct Reply<'a> {
    /// The event itself.
    #[serde(flatten)]
    msg: &'a ServerMsg,
    /// The request's `id`, omitted when it had none.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RequestId>,
}

impl ServerMsg {
    /// Serialises the event once, ready to be shared by every recipient.
    pub fn encode(&self) -> ByteString {
        self.encode_reply(None)
    }

    /// Serialises the event as the reply to request `id`.
    pub fn encode_reply(&self, id: Option<&RequestId>) -> ByteString {
        let reply = Reply { msg: self, id };
        // Serialising these types cannot fail: every key is a string and no
        // value is a map with non-string keys.
        let json = serde_json::to_string(&reply).expect("server messages serialise");
        ByteString::from(json)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_reply_carries_the_request_id() {
        let echo = ServerMsg::Echo { data: json!([1]) };
        let json: Value =
            serde_json::from_str(&echo.encode_reply(Some(&RequestId::Text("a".into())))).unwrap();
        assert_eq!(json, json!({"type":"echo","data":[1],"id":"a"}));
        let json: Value = serde_json::from_str(&echo.encode()).unwrap();
        assert_eq!(json, json!({"type":"echo","data":[1]}));
    }

    #[test]
    fn a_one_player_game_offers_no_join_key() {
        let created = ServerMsg::GameCreated {
            game_id: "g_1".into(),
            game: GameKind::Match3,
            join_key: None,
            watch_key: "w".into(),
        };
        let json: Value = serde_json::from_str(&created.encode()).unwrap();
        assert_eq!(json["join_key"], Value::Null);
        assert!(json.as_object().unwrap().contains_key("join_key"));
    }
}
