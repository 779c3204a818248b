//! Resume tokens: the same session back after a drop, takeover of a live
//! session, and unknown tokens.

use std::num::NonZero;

use serde_json::json;

use crate::support::{Ending, TestServer};

#[tokio::test]
async fn a_dropped_session_comes_back_with_its_token() {
    let server = TestServer::start();
    let (mut client, welcome) = server.connect().await;
    client.ask(json!({"type":"set_name","name":"Ada"})).await;
    drop(client);
    server.wait_for_sessions(0).await;
    let token = welcome["resume"].as_str().unwrap();
    let (mut back, again) = server.connect_with(&format!("resume={token}")).await;
    assert_eq!(again["session"], welcome["session"]);
    assert_eq!(
        (again["name"].as_str(), &again["color"]),
        (Some("Ada"), &welcome["color"])
    );
    assert_ne!(
        again["resume"], welcome["resume"],
        "a resume hands out a new token"
    );
    let resumed = back.recv_type("resumed").await;
    // Without `received`, nothing is recovered: the one numbered frame so
    // far was the `profile`.
    assert_eq!(
        resumed,
        json!({"type":"resumed","session":welcome["session"],"games":[],"rooms":[],
               "recovered":false,"last":1})
    );
}

#[tokio::test]
async fn a_used_token_is_void() {
    let server = TestServer::start();
    let (client, welcome) = server.connect().await;
    drop(client);
    let token = welcome["resume"].as_str().unwrap();
    let (_back, _) = server.connect_with(&format!("resume={token}")).await;
    let (mut third, fresh) = server.connect_with(&format!("resume={token}")).await;
    assert_ne!(fresh["session"], welcome["session"]);
    assert_eq!(third.recv_type("error").await["code"], "not_found");
}

#[tokio::test]
async fn an_unknown_token_gets_a_fresh_session_and_not_found() {
    let server = TestServer::start();
    let (mut client, welcome) = server.connect_with("resume=not-a-real-token").await;
    assert!(welcome["session"].as_str().unwrap().starts_with("s_"));
    let error = client.recv_type("error").await;
    assert_eq!(
        (error["code"].as_str(), error["ref"].as_str()),
        (Some("not_found"), Some("resume"))
    );
}

#[tokio::test]
async fn a_token_of_a_live_session_takes_it_over_with_4001() {
    let server = TestServer::start();
    let (mut older, welcome) = server.connect().await;
    let token = welcome["resume"].as_str().unwrap();
    let (_newer, again) = server.connect_with(&format!("resume={token}")).await;
    assert_eq!(again["session"], welcome["session"]);
    assert_eq!(older.ending().await, Ending::Closed(4001));
    server.wait_for_sessions(1).await;
}

#[tokio::test]
async fn a_held_session_expires_after_the_grace() {
    let server =
        TestServer::with(|config| config.games.reconnect_grace_ms = NonZero::new(200).unwrap());
    let (client, welcome) = server.connect().await;
    drop(client);
    server.wait_for_sessions(0).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let token = welcome["resume"].as_str().unwrap();
    let (mut late, fresh) = server.connect_with(&format!("resume={token}")).await;
    assert_ne!(fresh["session"], welcome["session"]);
    assert_eq!(late.recv_type("error").await["code"], "not_found");
}

#[tokio::test]
async fn a_resume_sends_game_state_before_room_joined() {
    // Games and rooms run on the workers in turn: with two workers they
    // answer a resume from different threads. (The race this guards against
    // is rare; the order is what PROTOCOL.md promises.)
    let server = TestServer::with(|config| config.server.workers = 2);
    for _ in 0..5 {
        let (mut x, _) = server.connect().await;
        let (mut o, o_welcome) = server.connect().await;
        x.ask(json!({"type":"find_game","game":"tictactoe"})).await;
        o.ask(json!({"type":"find_game","game":"tictactoe"})).await;
        x.recv_type("game_start").await;
        o.recv_type("game_start").await;
        o.ask(json!({"type":"join_room","room":"lounge"})).await;
        o.recv_type("room_state").await;
        drop(o);
        x.recv_type("opponent_away").await;
        let token = o_welcome["resume"].as_str().unwrap();
        let (mut back, _) = server.connect_with(&format!("resume={token}")).await;
        let kinds = ["resumed", "game_state", "room_joined", "room_state"];
        for kind in kinds {
            back.recv_type(kind).await;
        }
        drop(back);
        drop(x);
        server.wait_for_sessions(0).await;
    }
}
