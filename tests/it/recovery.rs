//! Nothing lost (PROTOCOL.md, *Reconnecting and recovery*): away members,
//! numbered frames, the replay ring, and resumes that recover exactly the
//! missed frames or resync.

use std::{num::NonZero, time::Duration};

use serde_json::{json, Value};

use crate::support::{Client, Ending, TestServer};

/// A server whose sessions may send a burst of 500 quickly.
fn roomy(tweak: impl FnOnce(&mut parlor::config::Config)) -> TestServer {
    TestServer::with(|config| {
        config.limits.msgs_per_sec = NonZero::new(10_000).unwrap();
        config.limits.burst = NonZero::new(10_000).unwrap();
        tweak(config);
    })
}

/// Joins `room` (a chat room) and reads its `room_joined` and `room_state`,
/// answering the state request a member already in it gets, if given.
async fn enter(client: &mut Client, room: &str, source: Option<&mut Client>) {
    let joined = client
        .ask(json!({"type":"join_room","room":room,"kind":"chat"}))
        .await;
    assert_eq!(joined["type"], "room_joined", "{joined}");
    if let Some(source) = source {
        source.recv_type("member_joined").await;
        let request = source.recv_type("state_request").await;
        source
            .send(json!({"type":"state","room":room,"data":"s","for":request["for"]}))
            .await;
    }
    client.recv_type("room_state").await;
}

fn token(welcome: &Value) -> &str {
    welcome["resume"].as_str().expect("a resume token")
}

/// Resumes `welcome`'s session, telling it `received`; returns the client
/// and its `resumed`.
async fn resume(server: &TestServer, welcome: &Value, received: Option<u64>) -> (Client, Value) {
    let query = match received {
        Some(count) => format!("resume={}&received={count}", token(welcome)),
        None => format!("resume={}", token(welcome)),
    };
    let (mut client, again) = server.connect_with(&query).await;
    assert_eq!(again["session"], welcome["session"]);
    // The client's count goes on across its connections.
    client.counted = received.unwrap_or(0);
    let resumed = client.recv_type("resumed").await;
    (client, resumed)
}

#[tokio::test]
async fn a_drop_in_a_burst_of_500_resumed_with_the_count_gets_every_frame_once_in_order() {
    let server = roomy(|config| config.limits.replay_frames = 1024);
    let (mut ada, _) = server.connect().await;
    let (mut bob, bob_welcome) = server.connect().await;
    enter(&mut ada, "burst", None).await;
    enter(&mut bob, "burst", Some(&mut ada)).await;
    let burst: Vec<Value> = (0..500)
        .map(|n| json!({"type":"broadcast","room":"burst","data":n}))
        .collect();
    ada.send_together(&burst).await;
    let mut seen = Vec::new();
    while seen.len() < 120 {
        seen.push(bob.recv_type("message").await["data"].clone());
    }
    // Gone mid-burst, without a Close: the rest is kept for the resume.
    let counted = bob.counted;
    drop(bob);
    assert_eq!(ada.recv_type("member_away").await["reason"], "disconnected");
    let (mut back, resumed) = resume(&server, &bob_welcome, Some(counted)).await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    while seen.len() < 500 {
        let frame = back.recv_type("message").await;
        seen.push(frame["data"].clone());
    }
    let expected: Vec<Value> = (0..500).map(|n| json!(n)).collect();
    assert_eq!(seen, expected, "every frame once, in order");
    // Nothing else is resent: no room_joined, no room_state.
    back.send(json!({"type":"echo","data":"after"})).await;
    assert_eq!(back.recv_type("echo").await["data"], "after");
    assert_eq!(
        ada.recv_type("member_back").await["session"],
        bob_welcome["session"]
    );
}

#[tokio::test]
async fn resumed_frames_come_after_resumed_and_before_live_ones() {
    let server = roomy(|_| {});
    let (mut ada, _) = server.connect().await;
    let (mut bob, bob_welcome) = server.connect().await;
    enter(&mut ada, "order", None).await;
    enter(&mut bob, "order", Some(&mut ada)).await;
    let counted = bob.counted;
    drop(bob);
    ada.recv_type("member_away").await;
    for n in 0..3 {
        ada.send(json!({"type":"broadcast","room":"order","data":n}))
            .await;
    }
    ada.send(json!({"type":"echo","data":"sent"})).await;
    ada.recv_type("echo").await;
    let (mut back, resumed) = resume(&server, &bob_welcome, Some(counted)).await;
    assert_eq!(
        (&resumed["recovered"], resumed["last"].as_u64()),
        (&json!(true), Some(counted + 3))
    );
    ada.send(json!({"type":"broadcast","room":"order","data":"live"}))
        .await;
    for expected in [json!(0), json!(1), json!(2), json!("live")] {
        assert_eq!(back.recv_type("message").await["data"], expected);
    }
}

#[tokio::test]
async fn a_count_above_last_resyncs() {
    let server = roomy(|_| {});
    let (mut ada, ada_welcome) = server.connect().await;
    enter(&mut ada, "above", None).await;
    drop(ada);
    let (mut back, resumed) = resume(&server, &ada_welcome, Some(1_000)).await;
    assert_eq!(resumed["recovered"], false);
    assert_eq!(
        resumed["last"], 2,
        "room_joined and room_state were numbered"
    );
    assert_eq!(back.recv_type("room_joined").await["room"], "above");
    back.recv_type("room_state").await;
    assert_eq!(back.counted, 4, "the resync is numbered on from last");
}

#[tokio::test]
async fn a_count_older_than_the_ring_resyncs() {
    let server = roomy(|config| config.limits.replay_frames = 4);
    let (mut ada, _) = server.connect().await;
    let (mut bob, bob_welcome) = server.connect().await;
    enter(&mut ada, "old", None).await;
    enter(&mut bob, "old", Some(&mut ada)).await;
    ada.send(json!({"type":"state","room":"old","data":"board"}))
        .await;
    let counted = bob.counted;
    drop(bob);
    ada.recv_type("member_away").await;
    for n in 0..10 {
        ada.send(json!({"type":"broadcast","room":"old","data":n}))
            .await;
    }
    ada.send(json!({"type":"echo"})).await;
    ada.recv_type("echo").await;
    let (mut back, resumed) = resume(&server, &bob_welcome, Some(counted)).await;
    assert_eq!(
        (&resumed["recovered"], resumed["last"].as_u64()),
        (&json!(false), Some(counted + 10))
    );
    assert_eq!(back.recv_type("room_joined").await["room"], "old");
    assert_eq!(back.recv_type("room_state").await["data"], "board");
}

#[tokio::test]
async fn an_away_member_is_listed_away_and_skipped_for_state_requests() {
    // Long enough that only a skip, not a timeout, reaches bob in time.
    let server =
        roomy(|config| config.rooms.state_request_timeout_ms = NonZero::new(60_000).unwrap());
    let (mut ada, ada_welcome) = server.connect().await;
    let (mut bob, bob_welcome) = server.connect().await;
    enter(&mut ada, "skip", None).await;
    enter(&mut bob, "skip", Some(&mut ada)).await;
    // Ada is the most recently active member: the source of truth.
    ada.send(json!({"type":"broadcast","room":"skip","data":"hi"}))
        .await;
    bob.recv_type("message").await;
    drop(ada);
    bob.recv_type("member_away").await;
    let (mut cat, _) = server.connect().await;
    let joined = cat.ask(json!({"type":"join_room","room":"skip"})).await;
    let away: Vec<(Value, Value)> = joined["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| (member["session"].clone(), member["away"].clone()))
        .collect();
    assert_eq!(
        away,
        [
            (ada_welcome["session"].clone(), json!(true)),
            (bob_welcome["session"].clone(), Value::Null),
            (joined["you"].clone(), Value::Null),
        ]
    );
    bob.recv_type("member_joined").await;
    let request = bob.recv_type("state_request").await;
    assert_eq!(request["for"], joined["you"], "the away source is skipped");
}

#[tokio::test]
async fn an_away_member_still_counts_toward_the_room_size() {
    let server = roomy(|config| config.rooms.max_members = NonZero::new(2).unwrap());
    let (mut ada, _) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    enter(&mut ada, "pair", None).await;
    enter(&mut bob, "pair", Some(&mut ada)).await;
    drop(bob);
    ada.recv_type("member_away").await;
    let (mut cat, _) = server.connect().await;
    let refused = cat.ask(json!({"type":"join_room","room":"pair"})).await;
    assert_eq!(refused["code"], "room_full", "{refused}");
}

#[tokio::test]
async fn when_the_away_grace_runs_out_the_member_leaves_and_a_resume_joins_again() {
    let server = roomy(|config| config.rooms.away_grace_ms = 300);
    let (mut ada, _) = server.connect().await;
    let (mut bob, bob_welcome) = server.connect().await;
    enter(&mut ada, "grace", None).await;
    enter(&mut bob, "grace", Some(&mut ada)).await;
    let counted = bob.counted;
    drop(bob);
    let away = ada.recv_type("member_away").await;
    let left = ada.recv_type("member_left").await;
    assert_eq!(
        (&away["reason"], &left["reason"], &left["session"]),
        (
            &json!("disconnected"),
            &json!("disconnected"),
            &bob_welcome["session"]
        )
    );
    // Every frame is still kept, but a room was lost: a resync.
    let (mut back, resumed) = resume(&server, &bob_welcome, Some(counted)).await;
    assert_eq!(
        (&resumed["recovered"], &resumed["rooms"]),
        (&json!(false), &json!(["grace"]))
    );
    assert_eq!(back.recv_type("room_joined").await["room"], "grace");
    let joined = ada.recv_type("member_joined").await;
    assert_eq!(joined["member"]["session"], bob_welcome["session"]);
    let request = ada.recv_type("state_request").await;
    ada.send(json!({"type":"state","room":"grace","data":"t","for":request["for"]}))
        .await;
    assert_eq!(back.recv_type("room_state").await["data"], "t");
}

#[tokio::test]
async fn with_no_away_grace_a_dropped_member_leaves_at_once() {
    let server = roomy(|config| config.rooms.away_grace_ms = 0);
    let (mut ada, _) = server.connect().await;
    let (mut bob, bob_welcome) = server.connect().await;
    enter(&mut ada, "now", None).await;
    enter(&mut bob, "now", Some(&mut ada)).await;
    drop(bob);
    let left = ada.recv_type("member_left").await;
    assert_eq!(
        (&left["session"], &left["reason"]),
        (&bob_welcome["session"], &json!("disconnected"))
    );
}

#[tokio::test]
async fn a_takeover_closes_the_older_connection_with_4001_and_recovers() {
    let server = roomy(|_| {});
    let (mut ada, _) = server.connect().await;
    let (mut bob, bob_welcome) = server.connect().await;
    enter(&mut ada, "take", None).await;
    enter(&mut bob, "take", Some(&mut ada)).await;
    ada.send(json!({"type":"broadcast","room":"take","data":"unread"}))
        .await;
    ada.send(json!({"type":"echo"})).await;
    ada.recv_type("echo").await;
    // Bob has not read the message: his count is behind.
    let counted = bob.counted;
    let (mut newer, resumed) = resume(&server, &bob_welcome, Some(counted)).await;
    assert_eq!(resumed["recovered"], true);
    assert_eq!(newer.recv_type("message").await["data"], "unread");
    assert_eq!(bob.ending().await, Ending::Closed(4001));
    // Nobody saw bob go: ada's next frame is the echo she asks for.
    ada.send(json!({"type":"echo","data":1})).await;
    assert_eq!(ada.recv().await["type"], "echo");
}

#[tokio::test]
async fn a_game_goes_on_across_a_drop_with_the_missed_move_recovered() {
    let server = roomy(|_| {});
    let (mut x, _) = server.connect().await;
    let (mut o, o_welcome) = server.connect().await;
    x.ask(json!({"type":"find_game","game":"tictactoe"})).await;
    o.ask(json!({"type":"find_game","game":"tictactoe"})).await;
    let start = x.recv_type("game_start").await;
    o.recv_type("game_start").await;
    let game_id = start["game_id"].clone();
    let counted = o.counted;
    drop(o);
    x.recv_type("opponent_away").await;
    x.ask(json!({"type":"move","game_id":game_id,"cell":4}))
        .await;
    let (mut back, resumed) = resume(&server, &o_welcome, Some(counted)).await;
    assert_eq!(
        (&resumed["recovered"], &resumed["games"]),
        (&json!(true), &json!([game_id]))
    );
    // The missed move, and no game_state.
    let moved = back.recv_type("moved").await;
    assert_eq!(moved["move"]["cell"], 4);
    assert_eq!(x.recv_type("opponent_back").await["seat"], "O");
    let answer = back
        .ask(json!({"type":"move","game_id":game_id,"cell":0}))
        .await;
    assert_eq!(answer["type"], "moved", "{answer}");
}

#[tokio::test]
async fn an_evicted_member_is_away_with_reason_timeout() {
    let server = roomy(|config| {
        config.heartbeat.interval_ms = NonZero::new(100).unwrap();
        config.heartbeat.timeout_ms = NonZero::new(400).unwrap();
    });
    let (mut ada, _) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    enter(&mut ada, "quiet", None).await;
    enter(&mut bob, "quiet", Some(&mut ada)).await;
    // Bob stops reading, so answers no Pings.
    let silent = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(bob);
    });
    let away = ada.recv_type("member_away").await;
    assert_eq!(away["reason"], "timeout");
    silent.abort();
}

#[tokio::test]
async fn the_away_grace_is_capped_at_the_reconnect_grace() {
    let server = roomy(|config| {
        config.rooms.away_grace_ms = 60_000;
        config.games.reconnect_grace_ms = NonZero::new(300).unwrap();
    });
    let (mut ada, _) = server.connect().await;
    let (mut bob, bob_welcome) = server.connect().await;
    enter(&mut ada, "cap", None).await;
    enter(&mut bob, "cap", Some(&mut ada)).await;
    drop(bob);
    ada.recv_type("member_away").await;
    // Well within the patience, far before the room's own grace.
    let left = ada.recv_type("member_left").await;
    assert_eq!(left["session"], bob_welcome["session"]);
}

#[tokio::test]
async fn a_room_that_no_longer_admits_a_resynced_member_answers_the_join_error() {
    let server = roomy(|config| {
        config.rooms.away_grace_ms = 200;
        config.rooms.max_members = NonZero::new(2).unwrap();
    });
    let (mut ada, _) = server.connect().await;
    let (mut bob, bob_welcome) = server.connect().await;
    enter(&mut ada, "full", None).await;
    enter(&mut bob, "full", Some(&mut ada)).await;
    let counted = bob.counted;
    drop(bob);
    ada.recv_type("member_away").await;
    ada.recv_type("member_left").await;
    let (mut cat, _) = server.connect().await;
    enter(&mut cat, "full", Some(&mut ada)).await;
    let (mut back, resumed) = resume(&server, &bob_welcome, Some(counted)).await;
    assert_eq!(resumed["recovered"], false);
    let refused = back.recv_type("error").await;
    assert_eq!(
        (&refused["code"], &refused["ref"]),
        (&json!("room_full"), &json!("join_room"))
    );
}

#[tokio::test]
async fn every_frame_for_an_away_session_is_numbered_even_past_its_outbox() {
    let server = roomy(|config| {
        config.limits.max_outbox = NonZero::new(8).unwrap();
        config.limits.replay_frames = 64;
    });
    let (mut ada, _) = server.connect().await;
    let (mut bob, bob_welcome) = server.connect().await;
    enter(&mut ada, "many", None).await;
    enter(&mut bob, "many", Some(&mut ada)).await;
    let counted = bob.counted;
    drop(bob);
    ada.recv_type("member_away").await;
    let burst: Vec<Value> = (0..20)
        .map(|n| json!({"type":"broadcast","room":"many","data":n}))
        .collect();
    ada.send_together(&burst).await;
    ada.send(json!({"type":"echo"})).await;
    ada.recv_type("echo").await;
    // More were missed than the outbox holds: a resync, not a slow client.
    let (mut back, resumed) = resume(&server, &bob_welcome, Some(counted)).await;
    assert_eq!(
        (&resumed["recovered"], resumed["last"].as_u64()),
        (&json!(false), Some(counted + 20)),
        "{resumed}"
    );
    assert_eq!(back.recv_type("room_joined").await["room"], "many");
    back.recv_type("room_state").await;
}

#[tokio::test]
async fn a_resync_sends_games_then_rooms_then_live_frames_even_while_a_room_talks() {
    let server = roomy(|config| config.server.workers = 2);
    let (mut ada, _) = server.connect().await;
    let (mut bob, bob_welcome) = server.connect().await;
    ada.ask(json!({"type":"find_game","game":"tictactoe"}))
        .await;
    bob.ask(json!({"type":"find_game","game":"tictactoe"}))
        .await;
    ada.recv_type("game_start").await;
    bob.recv_type("game_start").await;
    enter(&mut ada, "busy", None).await;
    enter(&mut bob, "busy", Some(&mut ada)).await;
    drop(bob);
    while ada.recv().await["type"] != "opponent_away" {}
    // Ada talks without pause while bob resumes.
    let talking = tokio::spawn(async move {
        for n in 0..400 {
            ada.send(json!({"type":"broadcast","room":"busy","data":n}))
                .await;
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        ada
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (mut back, resumed) = resume(&server, &bob_welcome, None).await;
    assert_eq!(resumed["recovered"], false);
    let mut kinds = Vec::new();
    for _ in 0..3 {
        kinds.push(
            back.recv().await["type"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(
        kinds,
        ["game_state", "room_joined", "room_state"],
        "the resync comes before any live frame"
    );
    assert_eq!(back.recv().await["type"], "message");
    let _ = talking.await;
}
