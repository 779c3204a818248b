//! What clients send: every request as a serde type, and the parser that
//! turns a text frame into one.
//!
//! A frame is parsed once into a [`serde_json::Value`] so that its `id` and
//! `type` can be read even when the rest of it is wrong; the typed request is
//! then taken from that value, with [`serde_path_to_error`] naming the field
//! that failed.

use serde::Deserialize;
use serde_json::Value;

use super::{BotLevel, ErrorCode, GameKind, Refusal, RequestId, Role, RoomKind};

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
    /// `play_bot`: play the computer.
    PlayBot(PlayBot),
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
            "play_bot" => ClientMsg::PlayBot(fields(value)?),
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
    /// The wanted name, checked by [`valid_name`](super::valid_name).
    pub name: String,
}

/// `{"type":"find_game","game":"connect4"}`, and likewise `cancel_find`
/// and `create_game`.
#[derive(Debug, Deserialize)]
pub struct GameChoice {
    /// The kind of game.
    pub game: GameKind,
}

/// `{"type":"play_bot","game":"connect4","level":"hard","first":"you"}`
#[derive(Debug, Clone, Deserialize)]
pub struct PlayBot {
    /// The kind of game (two-player kinds only).
    pub game: GameKind,
    /// How well the bot plays; medium when absent.
    #[serde(default)]
    pub level: BotLevel,
    /// Who moves first; the player when absent.
    #[serde(default)]
    pub first: First,
}

/// `play_bot.first`: who takes the first seat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum First {
    /// The player.
    #[default]
    You,
    /// The bot.
    Bot,
    /// Either, by chance.
    Random,
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

/// `{"type":"join_room","room":"poetry","kind":"chat","role":"member"}`
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct JoinRoom {
    /// The room's name.
    pub room: String,
    /// The room's kind; when absent, an existing room's kind, or chat for
    /// a new room.
    pub kind: Option<RoomKind>,
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

/// Parses one text frame into a [`Request`], or the refusal to send back.
pub fn parse_request(text: &str) -> Result<Request, Refusal> {
    let value: Value = serde_json::from_str(text).map_err(|err| {
        Refusal::unreferenced(ErrorCode::BadJson, format!("the frame is not JSON: {err}"))
    })?;
    let Value::Object(object) = &value else {
        let message = "the frame is not a JSON object";
        return Err(Refusal::unreferenced(ErrorCode::BadJson, message));
    };
    let id = match object.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::Number(number)) => Some(RequestId::Number(number.clone())),
        Some(Value::String(text)) => Some(RequestId::Text(text.clone())),
        Some(_) => {
            let message = "`id` must be a string or a number";
            return Err(Refusal::unreferenced(ErrorCode::BadRequest, message));
        }
    };
    let Some(Value::String(kind)) = object.get("type") else {
        let message = "`type` is missing or not a string";
        return Err(Refusal::unreferenced(ErrorCode::BadRequest, message).with_id(id.as_ref()));
    };
    let kind = kind.clone();
    match ClientMsg::from_value(&kind, value) {
        Ok(msg) => Ok(Request { id, kind, msg }),
        Err(err) => {
            let message = match err.path().to_string().as_str() {
                "." => format!("{kind}: {}", err.inner()),
                path => format!("{kind}: `{path}`: {}", err.inner()),
            };
            Err(Refusal::new(ErrorCode::BadRequest, &kind, message).with_id(id.as_ref()))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(text: &str) -> Result<Request, Refusal> {
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
        assert_eq!((err.code, err.request), (ErrorCode::BadJson, None));
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
        assert_eq!(err.request.as_deref(), Some("set_name"));
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
}
