//! The wire protocol of `docs/PROTOCOL.md` as serde types: what clients send
//! ([`ClientMsg`], in [`requests`]), what the server sends ([`ServerMsg`],
//! in [`events`]), the error codes ([`ErrorCode`]) and the one shape of a
//! refused request ([`Refusal`]). Nothing else in Parlor builds JSON by
//! hand, and this module imports nothing of the crate: it is the bottom
//! layer.
//!
//! The vocabulary every layer shares lives here too: [`GameKind`],
//! [`GameResult`], [`RoomKind`], [`Role`], [`LeaveReason`]. Their wire names
//! come from serde, and their `as_str` names and lists from strum, with one
//! rule for both, so the two can never disagree (a test checks each).

pub mod events;
pub mod requests;

#[cfg(test)]
mod properties;

use std::time::SystemTime;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use strum::{EnumIter, IntoStaticStr};
use unicode_segmentation::UnicodeSegmentation;

pub use self::{events::*, requests::*};

/// The protocol version sent in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Close code for a connection whose session a resume took over.
pub const CLOSE_TAKEN_OVER: u16 = 4001;
/// Close code of a session an operator kicked.
pub const CLOSE_KICKED: u16 = 4003;

/// Longest display name, in user-perceived characters after trimming.
pub const NAME_MAX_CHARS: usize = 32;

/// Longest room name, in characters.
pub const ROOM_NAME_MAX_CHARS: usize = 64;

/// Most zombies a canvas room may hold.
pub const MAX_ZOMBIES: u32 = 20;

/// Side of the square canvas, in canvas units.
pub const CANVAS_SIZE: f64 = 1000.0;

/// Most rooms named in a `room_full` error's `suggestions`.
pub const MAX_SUGGESTIONS: usize = 3;

/// A client's request id, echoed on every reply the request causes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// `"id": 7`
    Number(serde_json::Number),
    /// `"id": "abc"`
    Text(String),
}

/// The games Parlor hosts, as named on the wire.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, IntoStaticStr, EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum GameKind {
    /// Tic-tac-toe: two players, X moves first.
    #[serde(rename = "tictactoe")]
    #[strum(serialize = "tictactoe")]
    TicTacToe,
    /// Connect four: two players, red moves first.
    Connect4,
    /// Match three: one player.
    Match3,
}

/// How well a bot plays (`play_bot.level`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum BotLevel {
    /// A random legal move, except a win in one.
    Easy,
    /// Also blocks a win in one and prefers the centre.
    #[default]
    Medium,
    /// Perfect tic-tac-toe; an alpha-beta search at connect four.
    Hard,
}

/// How a game ended, as `game_over.result` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, IntoStaticStr, EnumIter)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum GameResult {
    /// A player made a winning line.
    Win,
    /// The board filled with no winner.
    Draw,
    /// A player resigned.
    Forfeit,
    /// A player did not come back within the reconnect grace.
    Abandoned,
    /// Match three ran out of moves.
    Finished,
}

/// The kinds of room.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    IntoStaticStr,
    EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum RoomKind {
    /// Every broadcast goes to every other member.
    #[default]
    Chat,
    /// Hosts (a screen) and controllers (phones).
    Stage,
    /// A shared board of moving players and zombies.
    Canvas,
    /// A shared board of word tiles (magnetic poetry): chat's routing; the
    /// page draws the board and publishes it with `state`.
    Board,
}

/// A member's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Role {
    /// Any member of a chat or canvas room.
    Member,
    /// A stage's screen.
    Host,
    /// A stage's phone.
    Controller,
}

/// Why a member left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaveReason {
    /// `leave_room`.
    Left,
    /// The connection closed.
    Disconnected,
    /// Evicted for silence.
    Timeout,
    /// Kicked by an operator.
    Kicked,
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

/// Every error code of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, IntoStaticStr, EnumIter)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
    /// Already waiting in or playing `games.max_per_session` games.
    TooManyGames,
    /// A fault on the server's side.
    Internal,
    /// The request needs another node or the cluster's Redis, and neither
    /// answered within `cluster.request_timeout_ms`; safe to retry.
    Unavailable,
}

impl GameKind {
    /// The kind's name on the wire.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl GameResult {
    /// The result as named on the wire.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl RoomKind {
    /// The kind's name on the wire.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The role a member gets when it names none.
    pub fn default_role(self) -> Role {
        match self {
            RoomKind::Stage => Role::Controller,
            RoomKind::Chat | RoomKind::Canvas | RoomKind::Board => Role::Member,
        }
    }

    /// Whether members of this kind may take `role`.
    pub fn allows(self, role: Role) -> bool {
        match self {
            RoomKind::Stage => matches!(role, Role::Host | Role::Controller),
            RoomKind::Chat | RoomKind::Canvas | RoomKind::Board => role == Role::Member,
        }
    }
}

impl Role {
    /// The role's name on the wire.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl ErrorCode {
    /// The code as it appears on the wire and in metrics labels.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A request turned down: one `error` frame to the asker. Every actor
/// refuses with this one type.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// What went wrong, as a code.
    pub code: ErrorCode,
    /// What went wrong, for people (it names the field for `bad_request`).
    pub message: String,
    /// The `type` of the refused request (`ref`); `None` when the frame
    /// could not be read that far.
    pub request: Option<String>,
    /// The request's `id`, echoed.
    pub id: Option<RequestId>,
    /// For `room_full`: rooms of the same kind with space.
    pub suggestions: Option<Vec<String>>,
}

impl Refusal {
    /// Refuses a request of type `request`.
    pub fn new(code: ErrorCode, request: &str, message: impl Into<String>) -> Refusal {
        Refusal {
            request: Some(request.to_string()),
            ..Refusal::unreferenced(code, message)
        }
    }

    /// Refuses a frame that names no request (it had no readable `type`,
    /// or was no request at all).
    pub fn unreferenced(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            request: None,
            id: None,
            suggestions: None,
        }
    }

    /// The same refusal, answering the request with `id`.
    pub fn with_id(mut self, id: Option<&RequestId>) -> Refusal {
        self.id = id.cloned();
        self
    }

    /// The same refusal, naming rooms that have space.
    pub fn with_suggestions(mut self, suggestions: Vec<String>) -> Refusal {
        self.suggestions = Some(suggestions);
        self
    }

    /// The `error` frame.
    pub fn encode(&self) -> ByteString {
        let error = ServerMsg::Error {
            code: self.code,
            message: self.message.clone(),
            request: self.request.clone(),
            suggestions: self.suggestions.clone(),
        };
        error.encode_reply(self.id.as_ref())
    }
}

/// A time as the protocol writes it: RFC 3339 UTC, to the second.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Whether `name` is a room name: 1 to 64 letters, digits, `-`, `_`, `.`.
pub fn valid_room_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    (1..=ROOM_NAME_MAX_CHARS).contains(&name.len()) && name.chars().all(allowed)
}

/// A display name as the protocol allows it: trimmed, 1 to
/// [`NAME_MAX_CHARS`] user-perceived characters (extended grapheme
/// clusters), no control characters and no bidirectional overrides or
/// isolates (U+202A–U+202E, U+2066–U+2069).
pub fn valid_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let length = name.graphemes(true).count();
    let fits = (1..=NAME_MAX_CHARS).contains(&length);
    let forbidden = |c: char| c.is_control() || is_bidi_control(c);
    (fits && !name.chars().any(forbidden)).then(|| name.to_string())
}

/// Bidirectional embeddings, overrides and isolates, which would let a name
/// reorder the text shown after it.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn vocabulary_names_are_the_wire_names() {
        for kind in GameKind::iter() {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        }
        for result in GameResult::iter() {
            assert_eq!(
                serde_json::to_value(result).unwrap(),
                json!(result.as_str())
            );
        }
        for kind in RoomKind::iter() {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        }
        for code in ErrorCode::iter() {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
        }
        assert_eq!(GameKind::TicTacToe.as_str(), "tictactoe");
        assert_eq!(ErrorCode::TooManyGames.as_str(), "too_many_games");
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
    fn a_name_counts_user_perceived_characters() {
        // A family emoji is one character of seven code points.
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}";
        assert!(valid_name(&family.repeat(32)).is_some());
        assert!(valid_name(&family.repeat(33)).is_none());
    }

    #[test]
    fn a_name_may_not_reorder_text() {
        assert_eq!(valid_name("evil\u{202E}gnp.exe"), None);
        assert_eq!(valid_name("a\u{2066}b"), None);
    }

    #[test]
    fn a_refusal_carries_ref_id_and_suggestions() {
        let refusal = Refusal::new(ErrorCode::RoomFull, "join_room", "room a is full")
            .with_id(Some(&RequestId::Number(3.into())))
            .with_suggestions(vec!["b".to_string()]);
        let json: serde_json::Value = serde_json::from_str(&refusal.encode()).unwrap();
        assert_eq!(
            json,
            json!({"type":"error","code":"room_full","message":"room a is full",
                   "ref":"join_room","suggestions":["b"],"id":3})
        );
        let bare = Refusal::unreferenced(ErrorCode::BadJson, "not JSON");
        let json: serde_json::Value = serde_json::from_str(&bare.encode()).unwrap();
        assert_eq!(
            json,
            json!({"type":"error","code":"bad_json","message":"not JSON"})
        );
    }
}
