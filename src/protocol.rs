//! The wire protocol of `shared/PROTOCOL.md` as serde types: what clients send
//! ([`ClientMsg`]), what the server sends ([`ServerMsg`]), and the error codes
//! ([`ErrorCode`]). Nothing else in Parlor builds JSON by hand.
//!
//! A frame is parsed once into a [`serde_json::Value`] so that its `id` and
//! `type` can be read even when the rest of it is wrong; the typed request is
//! then taken from that value, with [`serde_path_to_error`] naming the field
//! that failed.

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::game::{GameKind, GameResult};

/// The protocol version sent in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Close code for a connection whose session a resume took over.
pub const CLOSE_TAKEN_OVER: u16 = 4001;

/// Longest display name, in characters after trimming.
pub const NAME_MAX_CHARS: usize = 32;

/// A client's request id, echoed on every reply the request causes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// `"id": 7`
    Number(serde_json::Number),
    /// `"id": "abc"`
    Text(String),
}

/// Every request a client may send.
#[derive(Debug)]
pub enum ClientMsg {
    /// `set_name`: change the display name.
    SetName(SetName),
    /// `echo`: send `data` back to the sender.
    Echo(Echo),
    /// `find_game`: queue for a quick match.
    FindGame(GameChoice),
    /// `cancel_find`: leave the quick-match queue.
    CancelFind(GameChoice),
    /// `create_game`: start a private game.
    CreateGame(GameChoice),
    /// `join_game`: take the free seat of a private game.
    JoinGame(JoinGame),
    /// `watch_game`: spectate a game.
    WatchGame(WatchGame),
    /// `move`: play a move in a game.
    Move(MoveRequest),
    /// `resign`: give a game up.
    Resign(GameTarget),
    /// `join_room`: enter (or create) a room.
    JoinRoom(JoinRoom),
    /// `leave_room`: leave a room.
    LeaveRoom(RoomTarget),
    /// `broadcast`: relay `data` to the room.
    Broadcast(Broadcast),
    /// `direct`: relay `data` to one member.
    Direct(Direct),
    /// `state`: publish the room's state, or answer a `state_request`.
    State(StateUpdate),
    /// `pos`: a position on a canvas.
    Pos(Pos),
    /// A `type` that names no request.
    Unknown,
}

impl ClientMsg {
    /// The typed request for `type` = `kind`. One line per request type: the
    /// protocol's registry of requests.
    fn from_value(kind: &str, value: Value) -> Result<ClientMsg, FieldError> {
        Ok(match kind {
            "set_name" => ClientMsg::SetName(fields(value)?),
            "echo" => ClientMsg::Echo(fields(value)?),
            "find_game" => ClientMsg::FindGame(fields(value)?),
            "cancel_find" => ClientMsg::CancelFind(fields(value)?),
            "create_game" => ClientMsg::CreateGame(fields(value)?),
            "join_game" => ClientMsg::JoinGame(fields(value)?),
            "watch_game" => ClientMsg::WatchGame(fields(value)?),
            "move" => {
                let GameTarget { game_id } = fields(&value)?;
                ClientMsg::Move(MoveRequest {
                    game_id,
                    fields: value,
                })
            }
            "resign" => ClientMsg::Resign(fields(value)?),
            "join_room" => ClientMsg::JoinRoom(fields(value)?),
            "leave_room" => ClientMsg::LeaveRoom(fields(value)?),
            "broadcast" => ClientMsg::Broadcast(fields(value)?),
            "direct" => ClientMsg::Direct(fields(value)?),
            "state" => ClientMsg::State(fields(value)?),
            "pos" => ClientMsg::Pos(fields(value)?),
            _ => ClientMsg::Unknown,
        })
    }
}

/// A request's fields that failed to deserialise, with the path to the field.
type FieldError = serde_path_to_error::Error<serde_json::Error>;

/// Deserialises a request's fields, tracking which one fails.
fn fields<'de, T: Deserialize<'de>>(
    value: impl serde::Deserializer<'de, Error = serde_json::Error>,
) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value)
}

/// Deserialises a move's fields for one game's rules, naming the field that
/// fails in the message.
pub fn move_fields<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, String> {
    fields(value).map_err(|err| match err.path().to_string().as_str() {
        "." => format!("move: {}", err.inner()),
        path => format!("move: `{path}`: {}", err.inner()),
    })
}

/// `{"type":"set_name","name":"Ada"}`
#[derive(Debug, Deserialize)]
pub struct SetName {
    /// The wanted name, checked by [`valid_name`].
    pub name: String,
}

/// `{"type":"find_game","game":"connect4"}`, and likewise `cancel_find`
/// and `create_game`.
#[derive(Debug, Deserialize)]
pub struct GameChoice {
    /// The kind of game.
    pub game: GameKind,
}

/// `{"type":"join_game","join_key":"…"}`
#[derive(Debug, Deserialize)]
pub struct JoinGame {
    /// The private game's one-use join key.
    pub join_key: String,
}

/// `{"type":"watch_game","watch_key":"…"}`
#[derive(Debug, Deserialize)]
pub struct WatchGame {
    /// The game's watch key.
    pub watch_key: String,
}

/// `{"type":"resign","game_id":"…"}`, and the `game_id` of a move.
#[derive(Debug, Deserialize)]
pub struct GameTarget {
    /// The game.
    pub game_id: String,
}

/// `{"type":"move","game_id":"…", …}`: the move's own fields depend on the
/// game, so they are kept whole for the game's rules to read.
#[derive(Debug)]
pub struct MoveRequest {
    /// The game.
    pub game_id: String,
    /// The whole request; the rules read their fields from it.
    pub fields: Value,
}

/// Longest room name, in characters.
pub const ROOM_NAME_MAX_CHARS: usize = 64;

/// Most zombies a canvas room may hold.
pub const MAX_ZOMBIES: u32 = 20;

/// Side of the square canvas, in canvas units.
pub const CANVAS_SIZE: f64 = 1000.0;

/// Most rooms named in a `room_full` error's `suggestions`.
pub const MAX_SUGGESTIONS: usize = 3;

/// Whether `name` is a room name: 1 to 64 letters, digits, `-`, `_`, `.`.
pub fn valid_room_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    (1..=ROOM_NAME_MAX_CHARS).contains(&name.len()) && name.chars().all(allowed)
}

/// The kinds of room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    /// Every broadcast goes to every other member.
    #[default]
    Chat,
    /// Hosts (a screen) and controllers (phones).
    Stage,
    /// A shared board of moving players and zombies.
    Canvas,
}

impl RoomKind {
    /// Every kind, for metrics.
    pub const ALL: [RoomKind; 3] = [RoomKind::Chat, RoomKind::Stage, RoomKind::Canvas];

    /// The kind's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Chat => "chat",
            RoomKind::Stage => "stage",
            RoomKind::Canvas => "canvas",
        }
    }

    /// The role a member gets when it names none.
    pub fn default_role(self) -> Role {
        match self {
            RoomKind::Stage => Role::Controller,
            RoomKind::Chat | RoomKind::Canvas => Role::Member,
        }
    }

    /// Whether members of this kind may take `role`.
    pub fn allows(self, role: Role) -> bool {
        match self {
            RoomKind::Stage => matches!(role, Role::Host | Role::Controller),
            RoomKind::Chat | RoomKind::Canvas => role == Role::Member,
        }
    }
}

/// A member's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Any member of a chat or canvas room.
    Member,
    /// A stage's screen.
    Host,
    /// A stage's phone.
    Controller,
}

/// `{"type":"join_room","room":"poetry","kind":"chat","role":"member"}`
#[derive(Debug, Deserialize)]
pub struct JoinRoom {
    /// The room's name.
    pub room: String,
    /// The room's kind; chat when absent.
    #[serde(default)]
    pub kind: RoomKind,
    /// The member's role; the kind's default when absent.
    pub role: Option<Role>,
    /// Zombies for a new canvas room (0 to 20).
    pub zombies: Option<i64>,
}

/// `{"type":"leave_room","room":"poetry"}`
#[derive(Debug, Deserialize)]
pub struct RoomTarget {
    /// The room.
    pub room: String,
}

/// `{"type":"broadcast","room":"poetry","data":ANY}`
#[derive(Debug, Deserialize)]
pub struct Broadcast {
    /// The room.
    pub room: String,
    /// Anything; relayed as is.
    #[serde(default)]
    pub data: Value,
}

/// `{"type":"direct","room":"poetry","to":"s_…","data":ANY}`
#[derive(Debug, Deserialize)]
pub struct Direct {
    /// The room.
    pub room: String,
    /// The member to reach.
    pub to: String,
    /// Anything; relayed as is.
    #[serde(default)]
    pub data: Value,
}

/// `{"type":"state","room":"poetry","data":ANY,"action":"move_word","for":"s_…"}`
#[derive(Debug, Deserialize)]
pub struct StateUpdate {
    /// The room.
    pub room: String,
    /// The room's state as this member sees it.
    #[serde(default)]
    pub data: Value,
    /// What changed; states whose action is in `store.ignore_actions` are
    /// transient and never become the snapshot.
    pub action: Option<String>,
    /// The newcomer this answers a `state_request` for.
    #[serde(rename = "for")]
    pub newcomer: Option<String>,
}

/// `{"type":"pos","room":"arena","x":120.5,"y":300}`
#[derive(Debug, Deserialize)]
pub struct Pos {
    /// The room.
    pub room: String,
    /// Across, clamped to 0..1000.
    pub x: f64,
    /// Down, clamped to 0..1000.
    pub y: f64,
}

/// A room member as rooms show them.
#[derive(Debug, Clone, Serialize)]
pub struct MemberInfo {
    /// The member's session id.
    pub session: String,
    /// The display name.
    pub name: String,
    /// The color.
    pub color: String,
    /// Member, host or controller.
    pub role: Role,
}

/// Why a member left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaveReason {
    /// `leave_room`.
    Left,
    /// The connection closed.
    Disconnected,
    /// Evicted for silence.
    Timeout,
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
#[derive(Debug, Clone, Serialize)]
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

/// `game_state.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GameStatus {
    /// A private game whose second seat is free.
    Waiting,
    /// Moves are being played.
    Playing,
    /// The game has ended.
    Over,
}

/// `{"type":"echo","data":ANY}`
#[derive(Debug, Deserialize)]
pub struct Echo {
    /// Anything; absent is `null`.
    #[serde(default)]
    pub data: Value,
}

/// A parsed request with the parts every reply needs.
#[derive(Debug)]
pub struct Request {
    /// The client's `id`, if it sent one.
    pub id: Option<RequestId>,
    /// The request's `type`, echoed as `ref` on errors.
    pub kind: String,
    /// The typed request.
    pub msg: ClientMsg,
}

/// Why a frame is not a request; becomes an `error` frame.
#[derive(Debug, PartialEq)]
pub struct BadRequest {
    /// The client's `id`, if one could be read.
    pub id: Option<RequestId>,
    /// The request's `type`, if one could be read.
    pub kind: Option<String>,
    /// `bad_json` or `bad_request`.
    pub code: ErrorCode,
    /// What is wrong, naming the field.
    pub message: String,
}

/// Parses one text frame into a [`Request`].
pub fn parse_request(text: &str) -> Result<Request, BadRequest> {
    let bad = |code, message: String| BadRequest {
        id: None,
        kind: None,
        code,
        message,
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|err| bad(ErrorCode::BadJson, format!("the frame is not JSON: {err}")))?;
    let Value::Object(object) = &value else {
        return Err(bad(
            ErrorCode::BadJson,
            "the frame is not a JSON object".to_string(),
        ));
    };
    let id = match object.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::Number(number)) => Some(RequestId::Number(number.clone())),
        Some(Value::String(text)) => Some(RequestId::Text(text.clone())),
        Some(_) => {
            let message = "`id` must be a string or a number".to_string();
            return Err(bad(ErrorCode::BadRequest, message));
        }
    };
    let Some(Value::String(kind)) = object.get("type") else {
        let message = "`type` is missing or not a string".to_string();
        return Err(BadRequest {
            id,
            ..bad(ErrorCode::BadRequest, message)
        });
    };
    let kind = kind.clone();
    match ClientMsg::from_value(&kind, value) {
        Ok(msg) => Ok(Request { id, kind, msg }),
        Err(err) => {
            let message = match err.path().to_string().as_str() {
                "." => format!("{kind}: {}", err.inner()),
                path => format!("{kind}: `{path}`: {}", err.inner()),
            };
            Err(BadRequest {
                id,
                kind: Some(kind),
                code: ErrorCode::BadRequest,
                message,
            })
        }
    }
}

/// A display name as the protocol allows it: trimmed, 1 to
/// [`NAME_MAX_CHARS`] characters, no control characters.
pub fn valid_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let length = name.chars().count();
    let fits = (1..=NAME_MAX_CHARS).contains(&length);
    (fits && !name.chars().any(char::is_control)).then(|| name.to_string())
}

/// Every error code of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a JSON object.
    BadJson,
    /// `type` names no request.
    UnknownType,
    /// A field is missing, ill-typed or out of range.
    BadRequest,
    /// Over the message rate.
    RateLimited,
    /// A binary frame.
    Unsupported,
    /// No such game, key, room member or resume token.
    NotFound,
    /// A spectator tried to move or resign.
    NotAPlayer,
    /// A move or resign after the game ended.
    GameOver,
    /// A move out of turn.
    NotYourTurn,
    /// The rules forbid the move.
    IllegalMove,
    /// `find_game` while already queued.
    AlreadyQueued,
    /// The room is full.
    RoomFull,
    /// Already in `rooms.max_per_session` rooms.
    TooManyRooms,
    /// A room message for a room the session is not in.
    NotInRoom,
    /// `set_name` with a name breaking the name rule.
    NameInvalid,
    /// A fault on the server's side.
    Internal,
}

impl ErrorCode {
    /// Every code, for metrics that list each one from the start.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::BadJson,
        ErrorCode::UnknownType,
        ErrorCode::BadRequest,
        ErrorCode::RateLimited,
        ErrorCode::Unsupported,
        ErrorCode::NotFound,
        ErrorCode::NotAPlayer,
        ErrorCode::GameOver,
        ErrorCode::NotYourTurn,
        ErrorCode::IllegalMove,
        ErrorCode::AlreadyQueued,
        ErrorCode::RoomFull,
        ErrorCode::TooManyRooms,
        ErrorCode::NotInRoom,
        ErrorCode::NameInvalid,
        ErrorCode::Internal,
    ];

    /// The code as it appears on the wire and in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::NotFound => "not_found",
            ErrorCode::NotAPlayer => "not_a_player",
            ErrorCode::GameOver => "game_over",
            ErrorCode::NotYourTurn => "not_your_turn",
            ErrorCode::IllegalMove => "illegal_move",
            ErrorCode::AlreadyQueued => "already_queued",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::NameInvalid => "name_invalid",
            ErrorCode::Internal => "internal",
        }
    }
}

/// Every event the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The first frame of every connection.
    Welcome {
        /// [`PROTOCOL_VERSION`].
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
        /// The one-use key that takes the free seat.
        join_key: String,
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
    /// A member changed name.
    MemberUpdated {
        /// The room.
        room: String,
        /// The member as now.
        member: MemberInfo,
    },
    /// The answer to `leave_room`.
    RoomLeft {
        /// The room.
        room: String,
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
    /// `room_full`, with rooms of the same kind that have space.
    #[serde(rename = "error")]
    RoomFull {
        /// Always `room_full`.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
        /// Always `join_room`.
        #[serde(rename = "ref")]
        request: &'static str,
        /// Up to three room names.
        suggestions: Vec<String>,
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
    /// An `error` frame answering a request of type `request`.
    pub fn error(code: ErrorCode, message: impl Into<String>, request: &str) -> ServerMsg {
        ServerMsg::Error {
            code,
            message: message.into(),
            request: Some(request.to_string()),
        }
    }

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

    fn parse(text: &str) -> Result<Request, BadRequest> {
        parse_request(text)
    }

    #[test]
    fn echo_keeps_id_and_data() {
        let request = parse(r#"{"type":"echo","id":7,"data":{"a":[1,2]}}"#).unwrap();
        assert_eq!(request.kind, "echo");
        assert_eq!(request.id, Some(RequestId::Number(7.into())));
        assert!(
            matches!(request.msg, ClientMsg::Echo(Echo { data }) if data == json!({"a":[1,2]}))
        );
    }

    #[test]
    fn echo_without_data_is_null() {
        let request = parse(r#"{"type":"echo"}"#).unwrap();
        assert!(matches!(
            request.msg,
            ClientMsg::Echo(Echo { data: Value::Null })
        ));
    }

    #[test]
    fn extra_fields_are_ignored() {
        let request = parse(r#"{"type":"set_name","name":"Ada","extra":true}"#).unwrap();
        assert!(matches!(request.msg, ClientMsg::SetName(SetName { name }) if name == "Ada"));
    }

    #[test]
    fn not_json_is_bad_json() {
        let err = parse("{nope").unwrap_err();
        assert_eq!((err.code, err.kind), (ErrorCode::BadJson, None));
    }

    #[test]
    fn json_array_is_bad_json() {
        assert_eq!(parse("[1,2]").unwrap_err().code, ErrorCode::BadJson);
    }

    #[test]
    fn unknown_type_parses_as_unknown() {
        let request = parse(r#"{"type":"dance","id":"x"}"#).unwrap();
        assert!(matches!(request.msg, ClientMsg::Unknown));
        assert_eq!(request.kind, "dance");
    }

    #[test]
    fn missing_type_is_bad_request_with_id() {
        let err = parse(r#"{"id":"q","name":"Ada"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest);
        assert_eq!(err.id, Some(RequestId::Text("q".into())));
        assert!(err.message.contains("type"), "{}", err.message);
    }

    #[test]
    fn ill_typed_field_is_named() {
        let err = parse(r#"{"type":"set_name","name":5}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest);
        assert_eq!(err.kind.as_deref(), Some("set_name"));
        assert!(err.message.contains("`name`"), "{}", err.message);
    }

    #[test]
    fn missing_field_is_named() {
        let err = parse(r#"{"type":"set_name"}"#).unwrap_err();
        assert!(err.message.contains("name"), "{}", err.message);
    }

    #[test]
    fn object_id_is_bad_request() {
        assert_eq!(
            parse(r#"{"type":"echo","id":{}}"#).unwrap_err().code,
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(valid_name("  Ada  ").as_deref(), Some("Ada"));
        assert_eq!(
            valid_name(&"é".repeat(32)).map(|n| n.chars().count()),
            Some(32)
        );
        assert_eq!(valid_name(&"x".repeat(33)), None);
        assert_eq!(valid_name("   "), None);
        assert_eq!(valid_name("a\u{7}b"), None);
    }

    #[test]
    fn error_carries_ref_and_id() {
        let msg = ServerMsg::Error {
            code: ErrorCode::NameInvalid,
            message: "too long".into(),
            request: Some("set_name".into()),
        };
        let json: Value =
            serde_json::from_str(&msg.encode_reply(Some(&RequestId::Number(3.into())))).unwrap();
        assert_eq!(
            json,
            json!({"type":"error","code":"name_invalid","message":"too long","ref":"set_name","id":3})
        );
    }

    #[test]
    fn error_codes_serialise_as_their_names() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
        }
    }
}
