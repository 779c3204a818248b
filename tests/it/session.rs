//! Welcome, names, echo, and what each kind of bad input gets.

use std::{
    num::NonZero,
    time::{Duration, Instant},
};

use serde_json::json;
use tokio_tungstenite::tungstenite::{
    protocol::{
        frame::{
            coding::{CloseCode, Data, OpCode},
            Frame,
        },
        CloseFrame,
    },
    Message,
};

use crate::support::{Ending, TestServer};

#[tokio::test]
async fn welcome_describes_the_session() {
    let server = TestServer::with(|config| {
        config.heartbeat.interval_ms = NonZero::new(1200).unwrap();
        config.heartbeat.timeout_ms = NonZero::new(3400).unwrap();
    });
    let (_client, welcome) = server.connect().await;
    assert_eq!(welcome["protocol"], 1);
    assert!(welcome["session"].as_str().unwrap().starts_with("s_"));
    assert!(!welcome["name"].as_str().unwrap().is_empty());
    let color = welcome["color"].as_str().unwrap();
    assert!(color.len() == 7 && color.starts_with('#'), "{color}");
    let resume = welcome["resume"].as_str().unwrap();
    assert!(
        resume.len() >= 22
            && resume
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
    assert_eq!(
        (
            welcome["heartbeat_ms"].clone(),
            welcome["timeout_ms"].clone()
        ),
        (json!(1200), json!(3400))
    );
}

#[tokio::test]
async fn sessions_get_distinct_ids_and_tokens() {
    let server = TestServer::start();
    let (_a, first) = server.connect().await;
    let (_b, second) = server.connect().await;
    assert_ne!(first["session"], second["session"]);
    assert_ne!(first["resume"], second["resume"]);
}

#[tokio::test]
async fn a_valid_name_in_the_query_is_used() {
    let server = TestServer::start();
    let (_client, welcome) = server.connect_with("name=%20Ada%20Lovelace%20").await;
    assert_eq!(welcome["name"], "Ada Lovelace");
}

#[tokio::test]
async fn an_invalid_name_in_the_query_is_replaced() {
    let server = TestServer::start();
    let long = "x".repeat(33);
    let (_client, welcome) = server.connect_with(&format!("name={long}")).await;
    let name = welcome["name"].as_str().unwrap();
    assert!(
        name != long && !name.is_empty() && name.len() <= 32,
        "{name}"
    );
}

#[tokio::test]
async fn a_name_with_control_characters_in_the_query_is_replaced() {
    let server = TestServer::start();
    let (_client, welcome) = server.connect_with("name=Ada%0ALovelace").await;
    assert_ne!(welcome["name"], "Ada\nLovelace");
    assert!(!welcome["name"].as_str().unwrap().contains('\n'));
}

#[tokio::test]
async fn a_repeated_query_key_takes_the_first() {
    let server = TestServer::start();
    let (_client, welcome) = server.connect_with("name=Ada&name=Grace&extra=1").await;
    assert_eq!(welcome["name"], "Ada");
}

#[tokio::test]
async fn a_client_close_is_answered_with_1000() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    client.ws.close(None).await.expect("close sent");
    assert_eq!(client.ending().await, Ending::Closed(1000));
    server.wait_for_sessions(0).await;
}

#[tokio::test]
async fn set_name_answers_profile() {
    let server = TestServer::start();
    let (mut client, welcome) = server.connect().await;
    let profile = client
        .ask(json!({"type":"set_name","name":"  Grace ","id":1}))
        .await;
    assert_eq!(
        profile,
        json!({"type":"profile","session":welcome["session"],"name":"Grace","color":welcome["color"],"id":1})
    );
}

#[tokio::test]
async fn set_name_refuses_a_bad_name() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    for bad in ["", "   ", "tab\there", &"y".repeat(33)] {
        let error = client
            .ask(json!({"type":"set_name","name":bad,"id":"n"}))
            .await;
        assert_eq!(error["type"], "error");
        assert_eq!(error["code"], "name_invalid", "{bad:?}");
        assert_eq!(error["ref"], "set_name");
        assert_eq!(error["id"], "n");
    }
}

#[tokio::test]
async fn echo_returns_data_and_id() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    let data = json!({"nested":[1,"two",null,{"three":3.5}]});
    let reply = client
        .ask(json!({"type":"echo","data":data,"id":"e1"}))
        .await;
    assert_eq!(reply, json!({"type":"echo","data":data,"id":"e1"}));
    let reply = client.ask(json!({"type":"echo"})).await;
    assert_eq!(reply, json!({"type":"echo","data":null}));
}

#[tokio::test]
async fn bad_json_gets_bad_json_without_ref() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    for text in ["{not json", "[1,2,3]", "\"just a string\"", "42"] {
        client.send_text(text).await;
        let error = client.recv_type("error").await;
        assert_eq!(error["code"], "bad_json", "{text}");
        assert!(error.get("ref").is_none());
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
    assert_still_open(&mut client).await;
}

#[tokio::test]
async fn unknown_type_gets_unknown_type_with_ref_and_id() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    let error = client.ask(json!({"type":"teleport","id":9})).await;
    assert_eq!(error["code"], "unknown_type");
    assert_eq!(error["ref"], "teleport");
    assert_eq!(error["id"], 9);
    assert_still_open(&mut client).await;
}

#[tokio::test]
async fn missing_type_gets_bad_request() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    for frame in [json!({"name":"x","id":2}), json!({"type":7,"id":2})] {
        let error = client.ask(frame).await;
        assert_eq!(error["code"], "bad_request");
        assert_eq!(error["id"], 2);
        assert!(error["message"].as_str().unwrap().contains("type"));
    }
    assert_still_open(&mut client).await;
}

#[tokio::test]
async fn ill_typed_field_gets_bad_request_naming_it() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    let error = client
        .ask(json!({"type":"set_name","name":["Ada"],"id":3}))
        .await;
    assert_eq!(
        (error["code"].as_str(), error["ref"].as_str()),
        (Some("bad_request"), Some("set_name"))
    );
    assert!(
        error["message"].as_str().unwrap().contains("`name`"),
        "{error}"
    );
    let error = client.ask(json!({"type":"set_name"})).await;
    assert_eq!(error["code"], "bad_request");
    assert!(
        error["message"].as_str().unwrap().contains("name"),
        "{error}"
    );
    assert_still_open(&mut client).await;
}

#[tokio::test]
async fn ill_typed_id_gets_bad_request() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    let error = client
        .ask(json!({"type":"echo","id":{"no":"objects"}}))
        .await;
    assert_eq!(error["code"], "bad_request");
    assert!(error["message"].as_str().unwrap().contains("id"));
}

#[tokio::test]
async fn binary_frame_gets_unsupported() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    client.send_frame(Message::binary(vec![1, 2, 3])).await;
    let error = client.recv_type("error").await;
    assert_eq!(error["code"], "unsupported");
    assert_still_open(&mut client).await;
}

#[tokio::test]
async fn errors_are_counted_by_code() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    client.send_text("nope").await;
    client.recv_type("error").await;
    client.ask(json!({"type":"nope"})).await;
    assert_eq!(
        server
            .metric("parlor_errors_total{code=\"bad_json\"}")
            .await,
        1.0
    );
    assert_eq!(
        server
            .metric("parlor_errors_total{code=\"unknown_type\"}")
            .await,
        1.0
    );
    assert!(server.metric("parlor_frames_in_total").await >= 2.0);
    assert!(server.metric("parlor_frames_out_total").await >= 3.0);
}

async fn assert_still_open(client: &mut crate::support::Client) {
    let reply = client.ask(json!({"type":"echo","data":"still here"})).await;
    assert_eq!(reply["data"], "still here");
}

/// Every request with a field missing, ill-typed or out of range: each gets
/// `bad_request` with its `ref` and `id`, names the field, and nothing breaks.
#[tokio::test]
async fn each_request_with_a_bad_field_gets_bad_request_naming_it() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    let cases = [
        (json!({"type":"find_game","game":"chess"}), "game"),
        (json!({"type":"find_game"}), "game"),
        (json!({"type":"cancel_find","game":7}), "game"),
        (json!({"type":"create_game","game":"chess"}), "game"),
        (json!({"type":"join_game"}), "join_key"),
        (json!({"type":"join_game","join_key":5}), "join_key"),
        (json!({"type":"watch_game"}), "watch_key"),
        (json!({"type":"move","cell":1}), "game_id"),
        (json!({"type":"resign"}), "game_id"),
        (json!({"type":"join_room"}), "room"),
        (json!({"type":"join_room","room":7}), "room"),
        (
            json!({"type":"join_room","room":"r","kind":"lobby"}),
            "kind",
        ),
        (json!({"type":"join_room","room":"r","role":"king"}), "role"),
        (
            json!({"type":"join_room","room":"r","kind":"canvas","zombies":1.5}),
            "zombies",
        ),
        (
            json!({"type":"join_room","room":"r","kind":"canvas","zombies":21}),
            "zombies",
        ),
        (json!({"type":"leave_room"}), "room"),
        (json!({"type":"broadcast","data":1}), "room"),
        (json!({"type":"direct","room":"r","data":1}), "to"),
        (json!({"type":"state","data":1}), "room"),
        (json!({"type":"pos","room":"r","x":"left","y":1}), "x"),
    ];
    for (n, (mut request, field)) in cases.into_iter().enumerate() {
        let kind = request["type"].as_str().unwrap().to_string();
        request["id"] = json!(n);
        let error = client.ask(request).await;
        assert_eq!(
            (
                error["code"].as_str(),
                error["ref"].as_str(),
                error["id"].as_u64()
            ),
            (Some("bad_request"), Some(kind.as_str()), Some(n as u64)),
            "{error}"
        );
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "case {n}: {error} should name {field}"
        );
    }
    assert_still_open(&mut client).await;
}

#[tokio::test]
async fn a_client_close_with_any_code_is_answered_with_1000() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    let close = CloseFrame {
        code: CloseCode::Library(4321),
        reason: "bye".into(),
    };
    client.ws.close(Some(close)).await.expect("close sent");
    assert_eq!(client.ending().await, Ending::Closed(1000));
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    let frame = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    client.send_frame(Message::Frame(frame)).await;
    assert_eq!(client.ending().await, Ending::Closed(1007));
}

#[tokio::test]
async fn a_websocket_protocol_error_closes_with_1002() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    // A continuation frame with no message to continue.
    let frame = Frame::message(b"orphan".to_vec(), OpCode::Data(Data::Continue), true);
    client.send_frame(Message::Frame(frame)).await;
    assert_eq!(client.ending().await, Ending::Closed(1002));
}

#[tokio::test]
async fn a_name_counts_what_people_see_and_may_not_reorder_text() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}";
    let profile = client
        .ask(json!({"type":"set_name","name":family.repeat(32)}))
        .await;
    assert_eq!(
        profile["type"], "profile",
        "32 family emoji are 32 characters"
    );
    for bad in [family.repeat(33), "abc\u{202E}def".to_string()] {
        let error = client.ask(json!({"type":"set_name","name":bad})).await;
        assert_eq!(error["code"], "name_invalid", "{bad:?}");
    }
}

#[tokio::test]
async fn with_a_write_delay_events_wait_and_answers_do_not() {
    let delay = Duration::from_millis(800);
    let server = TestServer::with(|config| config.server.write_delay_ms = 800);
    let (mut ada, _) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    for client in [&mut ada, &mut bob] {
        let joined = client
            .ask(json!({"type":"join_room","room":"slow","kind":"chat"}))
            .await;
        assert_eq!(joined["type"], "room_joined", "an answer: {joined}");
        client.recv_type("room_state").await;
    }
    ada.recv_type("member_joined").await;
    let sent = Instant::now();
    for n in 0..3 {
        ada.send(json!({"type":"broadcast","room":"slow","data":n}))
            .await;
    }
    let first = bob.recv_type("message").await;
    let waited = sent.elapsed();
    assert!(
        waited >= delay / 2,
        "an event waits for others to go with it: {waited:?}"
    );
    assert_eq!(first["data"], 0);
    assert_eq!(bob.recv_type("message").await["data"], 1);
    assert_eq!(bob.recv_type("message").await["data"], 2);
    // An answer to one's own request goes out at once, whatever waits.
    let asked = Instant::now();
    let echo = bob.ask(json!({"type":"echo","data":"now"})).await;
    assert_eq!(echo["data"], "now");
    assert!(asked.elapsed() < delay / 2, "{:?}", asked.elapsed());
}
