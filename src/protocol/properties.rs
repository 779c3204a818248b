//! Property tests of the request parser (issue: hardening): any JSON value
//! or byte string yields a typed request or the right error, never a panic.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{parse_request, ClientMsg};
use crate::protocol::ErrorCode;

/// Every request `type` the protocol names, and a few it does not.
const TYPES: &[&str] = &[
    "set_name",
    "echo",
    "find_game",
    "cancel_find",
    "create_game",
    "play_bot",
    "join_game",
    "watch_game",
    "move",
    "resign",
    "join_room",
    "leave_room",
    "broadcast",
    "direct",
    "state",
    "pos",
    "dance",
    "",
    "MOVE",
];

/// Any JSON value, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A request-shaped object: a known (or unknown) `type`, maybe an `id`,
/// and fields with the protocol's names holding any values.
fn request() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec![
        "name",
        "data",
        "game",
        "level",
        "first",
        "join_key",
        "watch_key",
        "game_id",
        "cell",
        "column",
        "from",
        "to",
        "room",
        "kind",
        "role",
        "zombies",
        "to",
        "x",
        "y",
        "action",
        "for",
    ]);
    (
        prop::sample::select(TYPES),
        prop::option::of(json()),
        prop::collection::vec((field, json()), 0..6),
    )
        .prop_map(|(kind, id, fields)| {
            let mut object = Map::new();
            object.insert("type".into(), Value::String(kind.into()));
            if let Some(id) = id {
                object.insert("id".into(), id);
            }
            for (name, value) in fields {
                object.insert(name.into(), value);
            }
            Value::Object(object)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes_parse_or_are_refused_as_bad_json_or_bad_request(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(refusal) = parse_request(&text) {
            prop_assert!(matches!(refusal.code, ErrorCode::BadJson | ErrorCode::BadRequest));
        }
    }

    #[test]
    fn any_json_value_parses_or_gets_the_right_error(value in json()) {
        let text = value.to_string();
        match parse_request(&text) {
            Ok(request) => {
                prop_assert!(value.is_object());
                prop_assert_eq!(Some(&Value::String(request.kind.clone())), value.get("type"));
            }
            Err(refusal) if !value.is_object() => prop_assert_eq!(refusal.code, ErrorCode::BadJson),
            Err(refusal) => prop_assert_eq!(refusal.code, ErrorCode::BadRequest),
        }
    }

    #[test]
    fn a_request_with_any_fields_is_typed_or_a_bad_request_that_names_it(value in request()) {
        let kind = value["type"].as_str().unwrap_or_default().to_string();
        let id_ok = matches!(value.get("id"), None | Some(Value::Null | Value::Number(_) | Value::String(_)));
        match parse_request(&value.to_string()) {
            Ok(request) => {
                prop_assert!(id_ok);
                prop_assert_eq!(&request.kind, &kind);
                let known = TYPES[..TYPES.len() - 3].contains(&kind.as_str());
                prop_assert_eq!(matches!(request.msg, ClientMsg::Unknown), !known);
            }
            Err(refusal) => {
                prop_assert_eq!(refusal.code, ErrorCode::BadRequest);
                // A good id is echoed and the type named; a bad id is neither.
                if id_ok {
                    prop_assert_eq!(refusal.request.as_deref(), Some(kind.as_str()));
                } else {
                    prop_assert_eq!(refusal.request, None);
                }
            }
        }
    }
}
