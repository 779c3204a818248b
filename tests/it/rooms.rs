//! Rooms through the real server: chat, stage, canvas, the source of truth,
//! limits, leaving in every way, and rejoining on resume.

use std::{num::NonZero, time::Duration};

use serde_json::{json, Value};

use crate::support::{Client, TestServer};

/// Joins `room` of `kind` and returns (`room_joined`, `room_state`).
async fn join(client: &mut Client, room: &str, kind: &str) -> (Value, Value) {
    join_as(client, json!({"type":"join_room","room":room,"kind":kind})).await
}

async fn join_as(client: &mut Client, request: Value) -> (Value, Value) {
    let joined = client.ask(request).await;
    assert_eq!(joined["type"], "room_joined", "{joined}");
    let state = client.recv_type("room_state").await;
    (joined, state)
}

/// A member answers the state request the server sends it with `data`.
async fn answer_state_request(member: &mut Client, room: &str, data: Value) -> String {
    let request = member.recv_type("state_request").await;
    assert_eq!(request["room"], room);
    let newcomer = request["for"].as_str().unwrap().to_string();
    member
        .send(json!({"type":"state","room":room,"data":data,"for":newcomer}))
        .await;
    newcomer
}

/// The next frame of type `kind`, skipping member announcements (and a
/// `room_joined` not waited for) on the way.
async fn next_of(client: &mut Client, kind: &str) -> Value {
    loop {
        let frame = client.recv().await;
        if frame["type"] == kind {
            return frame;
        }
        let skippable = frame["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("member_") || t == "room_joined");
        assert!(skippable, "expected {kind}, got {frame}");
    }
}

fn session(welcome: &Value) -> String {
    welcome["session"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_first_joiner_gets_an_empty_room() {
    let server = TestServer::start();
    let (mut ada, welcome) = server.connect().await;
    let (joined, state) = join(&mut ada, "poetry", "chat").await;
    assert_eq!(joined["kind"], "chat");
    assert_eq!(joined["you"], welcome["session"]);
    let me = json!({"session":welcome["session"],"name":welcome["name"],"color":welcome["color"],"role":"member"});
    assert_eq!(joined["members"], json!([me]));
    assert_eq!(
        state,
        json!({"type":"room_state","room":"poetry","data":null,"from":null})
    );
}

#[tokio::test]
async fn a_newcomer_gets_state_from_the_source_of_truth() {
    let server = TestServer::start();
    let (mut ada, ada_welcome) = server.connect().await;
    let (mut bob, bob_welcome) = server.connect().await;
    join(&mut ada, "poetry", "chat").await;
    let joined = bob.ask(json!({"type":"join_room","room":"poetry"})).await;
    assert_eq!(joined["members"].as_array().unwrap().len(), 2);
    let announced = ada.recv_type("member_joined").await;
    assert_eq!(announced["member"]["session"], bob_welcome["session"]);
    let newcomer = answer_state_request(&mut ada, "poetry", json!({"words":["moon"]})).await;
    assert_eq!(newcomer, session(&bob_welcome));
    let state = bob.recv_type("room_state").await;
    assert_eq!(
        state,
        json!({"type":"room_state","room":"poetry","data":{"words":["moon"]},"from":ada_welcome["session"]})
    );
}

#[tokio::test]
async fn broadcast_reaches_everyone_else_and_direct_only_its_target() {
    let server = TestServer::start();
    let (mut ada, ada_welcome) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    let (mut cy, cy_welcome) = server.connect().await;
    join(&mut ada, "hall", "chat").await;
    bob.ask(json!({"type":"join_room","room":"hall"})).await;
    ada.recv_type("member_joined").await;
    answer_state_request(&mut ada, "hall", json!(1)).await;
    bob.recv_type("room_state").await;
    cy.ask(json!({"type":"join_room","room":"hall"})).await;
    ada.recv_type("member_joined").await;
    bob.recv_type("member_joined").await;
    // Nobody has been active yet: the earliest joiner is asked.
    answer_state_request(&mut ada, "hall", json!(2)).await;
    cy.recv_type("room_state").await;
    ada.send(json!({"type":"broadcast","room":"hall","data":"hello"}))
        .await;
    let expected =
        json!({"type":"message","room":"hall","from":ada_welcome["session"],"data":"hello"});
    assert_eq!(bob.recv_type("message").await, expected);
    assert_eq!(cy.recv_type("message").await, expected);
    ada.send(
        json!({"type":"direct","room":"hall","to":cy_welcome["session"],"data":{"psst":true}}),
    )
    .await;
    let direct = cy.recv_type("message").await;
    assert_eq!(
        (direct["direct"].as_bool(), &direct["data"]),
        (Some(true), &json!({"psst":true}))
    );
    bob.idle(Duration::from_millis(200)).await;
    ada.idle(Duration::from_millis(100)).await;
    let missing = ada
        .ask(json!({"type":"direct","room":"hall","to":"s_nobody","data":1,"id":4}))
        .await;
    assert_eq!(
        (
            missing["code"].as_str(),
            missing["ref"].as_str(),
            missing["id"].as_i64()
        ),
        (Some("not_found"), Some("direct"), Some(4))
    );
}

#[tokio::test]
async fn room_messages_need_membership() {
    let server = TestServer::start();
    let (mut ada, _) = server.connect().await;
    for request in [
        json!({"type":"broadcast","room":"nowhere","data":1}),
        json!({"type":"direct","room":"nowhere","to":"s_x","data":1}),
        json!({"type":"state","room":"nowhere","data":1}),
        json!({"type":"pos","room":"nowhere","x":1,"y":1}),
        json!({"type":"leave_room","room":"nowhere"}),
    ] {
        let error = ada.ask(request.clone()).await;
        assert_eq!(
            (error["code"].as_str(), &error["ref"]),
            (Some("not_in_room"), &request["type"])
        );
    }
}

#[tokio::test]
async fn bad_joins_are_bad_requests() {
    let server = TestServer::start();
    let (mut ada, _) = server.connect().await;
    for request in [
        json!({"type":"join_room","room":""}),
        json!({"type":"join_room","room":"has space"}),
        json!({"type":"join_room","room":"x".repeat(65)}),
        json!({"type":"join_room","room":"ok","kind":"ballroom"}),
        json!({"type":"join_room","room":"ok","role":"host"}),
        json!({"type":"join_room","room":"ok","kind":"stage","role":"member"}),
        json!({"type":"join_room","room":"ok","kind":"canvas","zombies":21}),
        json!({"type":"join_room","room":"ok","kind":"canvas","zombies":-1}),
    ] {
        let error = ada.ask(request.clone()).await;
        assert_eq!(error["code"], "bad_request", "{request}");
    }
    join(&mut ada, "ok.room-1_a", "canvas").await;
    let (mut bob, _) = server.connect().await;
    let error = bob
        .ask(json!({"type":"join_room","room":"ok.room-1_a","kind":"chat"}))
        .await;
    assert_eq!(error["code"], "bad_request");
    assert!(
        error["message"].as_str().unwrap().contains("canvas"),
        "{error}"
    );
}

#[tokio::test]
async fn a_full_room_suggests_others_of_its_kind() {
    let server = TestServer::with(|config| config.rooms.max_members = NonZero::new(2).unwrap());
    let (mut ada, _) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    let (mut cy, _) = server.connect().await;
    join(&mut ada, "a1", "chat").await;
    bob.ask(json!({"type":"join_room","room":"a1"})).await;
    join(&mut cy, "a2", "chat").await;
    let (mut dee, _) = server.connect().await;
    join(&mut dee, "a3", "canvas").await;
    let (mut eve, _) = server.connect().await;
    let full = eve
        .ask(json!({"type":"join_room","room":"a1","id":"j"}))
        .await;
    assert_eq!(
        full,
        json!({"type":"error","code":"room_full","message":full["message"],"ref":"join_room","suggestions":["a2"],"id":"j"})
    );
}

#[tokio::test]
async fn a_session_has_a_room_limit() {
    let server = TestServer::with(|config| config.rooms.max_per_session = NonZero::new(2).unwrap());
    let (mut ada, _) = server.connect().await;
    join(&mut ada, "one", "chat").await;
    join(&mut ada, "two", "chat").await;
    assert_eq!(
        ada.ask(json!({"type":"join_room","room":"three"})).await["code"],
        "too_many_rooms"
    );
    ada.ask(json!({"type":"leave_room","room":"one"})).await;
    join(&mut ada, "three", "chat").await;
}

#[tokio::test]
async fn joining_again_answers_again_and_tells_nobody() {
    let server = TestServer::start();
    let (mut ada, _) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    join(&mut ada, "den", "chat").await;
    bob.ask(json!({"type":"join_room","room":"den"})).await;
    ada.recv_type("member_joined").await;
    answer_state_request(&mut ada, "den", json!("s")).await;
    bob.recv_type("room_state").await;
    let (joined, state) = join(&mut bob, "den", "chat").await;
    assert_eq!(joined["members"].as_array().unwrap().len(), 2);
    assert_eq!(state["data"], "s");
    ada.idle(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn leaving_in_every_way_is_announced_with_its_reason() {
    let server = TestServer::with(|config| {
        config.heartbeat.interval_ms = NonZero::new(200).unwrap();
        config.heartbeat.timeout_ms = NonZero::new(800).unwrap();
        config.rooms.away_grace_ms = 300;
    });
    let (mut host, _) = server.connect().await;
    join(&mut host, "lounge", "chat").await;
    for reason in ["left", "disconnected", "timeout"] {
        let (mut guest, welcome) = server.connect().await;
        guest.ask(json!({"type":"join_room","room":"lounge"})).await;
        host.recv_type("member_joined").await;
        answer_state_request(&mut host, "lounge", json!(null)).await;
        guest.recv_type("room_state").await;
        match reason {
            "left" => {
                let left = guest
                    .ask(json!({"type":"leave_room","room":"lounge","id":1}))
                    .await;
                assert_eq!(left, json!({"type":"room_left","room":"lounge","id":1}));
            }
            "disconnected" => drop(guest),
            // The guest stops reading (so answers no Pings) and is evicted,
            // while the host goes on reading below.
            _ => std::mem::forget(guest),
        }
        if reason != "left" {
            // A drop is away first, for `rooms.away_grace_ms`.
            let away = loop {
                let frame = host.recv().await;
                if frame["type"] == "member_away" {
                    break frame;
                }
            };
            assert_eq!(
                away,
                json!({"type":"member_away","room":"lounge","session":welcome["session"],"reason":reason})
            );
        }
        let gone = host.recv_type("member_left").await;
        assert_eq!(
            gone,
            json!({"type":"member_left","room":"lounge","session":welcome["session"],"reason":reason})
        );
    }
}

#[tokio::test]
async fn a_silent_source_of_truth_is_skipped_then_the_snapshot_serves() {
    let server = TestServer::with(|config| {
        config.rooms.state_request_timeout_ms = NonZero::new(300).unwrap()
    });
    let (mut ada, ada_welcome) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    join(&mut ada, "board", "chat").await;
    bob.ask(json!({"type":"join_room","room":"board"})).await;
    ada.recv_type("member_joined").await;
    answer_state_request(&mut ada, "board", json!("v1")).await;
    bob.recv_type("room_state").await;
    // Bob becomes the most recently active member and publishes a snapshot.
    bob.send(json!({"type":"state","room":"board","data":"v2"}))
        .await;
    let (mut cy, _) = server.connect().await;
    cy.ask(json!({"type":"join_room","room":"board"})).await;
    // Bob is asked first and stays silent; then Ada is asked and answers.
    assert_eq!(next_of(&mut bob, "state_request").await["room"], "board");
    next_of(&mut ada, "member_joined").await;
    answer_state_request(&mut ada, "board", json!("from ada")).await;
    let state = cy.recv_type("room_state").await;
    assert_eq!(
        (&state["data"], &state["from"]),
        (&json!("from ada"), &ada_welcome["session"])
    );
    // Nobody answers the next newcomer: the snapshot is served.
    let (mut dee, _) = server.connect().await;
    dee.ask(json!({"type":"join_room","room":"board"})).await;
    let state = dee.recv_type("room_state").await;
    assert_eq!(
        (&state["data"], &state["from"]),
        (&json!("from ada"), &Value::Null)
    );
    assert!(
        server
            .metric("parlor_state_requests_total{outcome=\"timed_out\"}")
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn transient_states_answer_but_never_become_the_snapshot() {
    let server = TestServer::with(|config| {
        config.rooms.state_request_timeout_ms = NonZero::new(200).unwrap()
    });
    let (mut ada, _) = server.connect().await;
    join(&mut ada, "sketch", "chat").await;
    ada.send(json!({"type":"state","room":"sketch","data":"kept"}))
        .await;
    ada.send(json!({"type":"state","room":"sketch","data":"wiggle","action":"cursor"}))
        .await;
    let (mut bob, _) = server.connect().await;
    bob.ask(json!({"type":"join_room","room":"sketch"})).await;
    ada.recv_type("member_joined").await;
    ada.recv_type("state_request").await;
    // Ada lets the request time out: Bob gets the snapshot, not the cursor.
    let state = bob.recv_type("room_state").await;
    assert_eq!(
        (&state["data"], &state["from"]),
        (&json!("kept"), &Value::Null)
    );
}

#[tokio::test]
async fn a_rooms_snapshot_outlives_its_members() {
    let server = TestServer::start();
    let (mut ada, _) = server.connect().await;
    join(&mut ada, "garden", "chat").await;
    ada.send(json!({"type":"state","room":"garden","data":{"roses":3}}))
        .await;
    ada.ask(json!({"type":"leave_room","room":"garden"})).await;
    assert_eq!(server.get_json("/api/rooms").await, json!([]));
    let (_, state) = join(&mut ada, "garden", "chat").await;
    assert_eq!(state["data"], json!({"roses":3}));
}

#[tokio::test]
async fn a_stage_routes_controllers_to_hosts_and_hosts_to_everyone() {
    let server = TestServer::start();
    let (mut tv, _) = server.connect().await;
    let (mut phone1, p1) = server.connect().await;
    let (mut phone2, _) = server.connect().await;
    let (joined, _) = join_as(
        &mut tv,
        json!({"type":"join_room","room":"quiz","kind":"stage","role":"host"}),
    )
    .await;
    assert_eq!(joined["members"][0]["role"], "host");
    for phone in [&mut phone1, &mut phone2] {
        let joined = phone
            .ask(json!({"type":"join_room","room":"quiz","kind":"stage"}))
            .await;
        assert_eq!(
            joined["members"].as_array().unwrap().last().unwrap()["role"],
            "controller"
        );
    }
    // Drain joins and state requests: the TV answers for both phones.
    for _ in 0..2 {
        loop {
            let frame = tv.recv().await;
            if frame["type"] == "state_request" {
                tv.send(json!({"type":"state","room":"quiz","data":"lobby","for":frame["for"]}))
                    .await;
                break;
            }
        }
    }
    next_of(&mut phone1, "room_state").await;
    next_of(&mut phone2, "room_state").await;
    phone1
        .send(json!({"type":"broadcast","room":"quiz","data":{"button":"A"}}))
        .await;
    assert_eq!(tv.recv_type("message").await["from"], p1["session"]);
    phone2.idle(Duration::from_millis(200)).await;
    tv.send(json!({"type":"broadcast","room":"quiz","data":"question 1"}))
        .await;
    assert_eq!(phone1.recv_type("message").await["data"], "question 1");
    assert_eq!(phone2.recv_type("message").await["data"], "question 1");
}

#[tokio::test]
async fn a_canvas_sends_frames_and_its_zombies_hunt() {
    let server = TestServer::start();
    let (mut ada, ada_welcome) = server.connect().await;
    let (joined, _) = join_as(
        &mut ada,
        json!({"type":"join_room","room":"arena","kind":"canvas","zombies":3}),
    )
    .await;
    assert_eq!(joined["kind"], "canvas");
    // The board at once, right after the room's state.
    let board = ada.recv().await;
    assert_eq!(
        (&board["type"], &board["players"]),
        (&json!("frame"), &json!([]))
    );
    assert_eq!(board["zombies"].as_array().unwrap().len(), 3);
    ada.send(json!({"type":"pos","room":"arena","x":500,"y":-20}))
        .await;
    let frame = ada.recv_type("frame").await;
    assert_eq!(
        frame["players"],
        json!([{"session":ada_welcome["session"],"x":500.0,"y":0.0,"color":ada_welcome["color"]}])
    );
    assert_eq!(frame["zombies"].as_array().unwrap().len(), 3);
    let distance = |frame: &Value| {
        frame["zombies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|z| {
                let (x, y) = (z["x"].as_f64().unwrap() - 500.0, z["y"].as_f64().unwrap());
                x.hypot(y)
            })
            .sum::<f64>()
    };
    let first = distance(&frame);
    let mut later = first;
    for _ in 0..5 {
        later = distance(&ada.recv_type("frame").await);
    }
    assert!(later < first, "zombies close in: {first} then {later}");
    let (mut bob, _) = server.connect().await;
    bob.ask(json!({"type":"join_room","room":"arena","kind":"canvas"}))
        .await;
    let seen = loop {
        let frame = bob.recv().await;
        if frame["type"] == "frame" {
            break frame;
        }
    };
    assert_eq!(seen["players"][0]["session"], ada_welcome["session"]);
}

#[tokio::test]
async fn pos_outside_a_canvas_is_a_bad_request() {
    let server = TestServer::start();
    let (mut ada, _) = server.connect().await;
    join(&mut ada, "talk", "chat").await;
    let error = ada
        .ask(json!({"type":"pos","room":"talk","x":1,"y":2}))
        .await;
    assert_eq!(
        (error["code"].as_str(), error["ref"].as_str()),
        (Some("bad_request"), Some("pos"))
    );
}

#[tokio::test]
async fn a_new_name_is_announced_to_the_rooms() {
    let server = TestServer::start();
    let (mut ada, ada_welcome) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    join(&mut ada, "club", "chat").await;
    bob.ask(json!({"type":"join_room","room":"club"})).await;
    ada.recv_type("member_joined").await;
    answer_state_request(&mut ada, "club", json!(0)).await;
    bob.recv_type("room_state").await;
    ada.ask(json!({"type":"set_name","name":"Ada L."})).await;
    let updated = bob.recv_type("member_updated").await;
    assert_eq!(updated["member"]["session"], ada_welcome["session"]);
    assert_eq!(updated["member"]["name"], "Ada L.");
}

#[tokio::test]
async fn a_session_resumed_without_its_count_is_resynced_in_its_rooms() {
    let server = TestServer::start();
    let (mut ada, ada_welcome) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    join(&mut bob, "cafe", "chat").await;
    ada.ask(json!({"type":"join_room","room":"cafe"})).await;
    bob.recv_type("member_joined").await;
    answer_state_request(&mut bob, "cafe", json!("menu")).await;
    ada.recv_type("room_state").await;
    drop(ada);
    assert_eq!(bob.recv_type("member_away").await["reason"], "disconnected");
    let token = ada_welcome["resume"].as_str().unwrap();
    let (mut back, _) = server.connect_with(&format!("resume={token}")).await;
    let resumed = back.recv_type("resumed").await;
    assert_eq!(
        (&resumed["rooms"], &resumed["recovered"]),
        (&json!(["cafe"]), &json!(false))
    );
    assert_eq!(back.recv_type("room_joined").await["room"], "cafe");
    assert_eq!(back.recv_type("room_state").await["data"], "menu");
    assert_eq!(
        bob.recv_type("member_back").await["session"],
        ada_welcome["session"]
    );
}

#[tokio::test]
async fn messages_sent_right_after_joining_are_delivered_in_order() {
    let server = TestServer::start();
    let (mut ada, _) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    join(&mut ada, "fast", "chat").await;
    bob.send(json!({"type":"join_room","room":"fast"})).await;
    for n in 0..5 {
        bob.send(json!({"type":"broadcast","room":"fast","data":n}))
            .await;
    }
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let frame = ada.recv().await;
        if frame["type"] == "message" {
            seen.push(frame["data"].clone());
        }
    }
    assert_eq!(seen, [0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn rooms_are_listed_and_counted() {
    let server = TestServer::start();
    let (mut ada, _) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    join(&mut ada, "b-room", "chat").await;
    join(&mut bob, "a-room", "canvas").await;
    let rooms = server.get_json("/api/rooms").await;
    assert_eq!(
        rooms,
        json!([{"room":"a-room","kind":"canvas","members":1},{"room":"b-room","kind":"chat","members":1}])
    );
    assert_eq!(server.metric("parlor_rooms{kind=\"chat\"}").await, 1.0);
    assert_eq!(server.metric("parlor_room_members").await, 2.0);
}

#[tokio::test]
async fn join_leave_join_sent_at_once_lands_in_the_new_membership() {
    let server = TestServer::start();
    let (mut ada, _) = server.connect().await;
    for request in [
        json!({"type":"join_room","room":"flicker"}),
        json!({"type":"leave_room","room":"flicker"}),
        json!({"type":"join_room","room":"flicker"}),
        json!({"type":"direct","room":"flicker","to":"s_nobody","data":1,"id":"d"}),
    ] {
        ada.send(request).await;
    }
    let answer = loop {
        let frame = ada.recv().await;
        if frame["id"] == "d" {
            break frame;
        }
    };
    assert_eq!(
        answer["code"], "not_found",
        "the direct reached the room: {answer}"
    );
}

#[tokio::test]
async fn rejoining_during_ones_own_state_request_gets_one_state() {
    let server = TestServer::with(|config| {
        config.rooms.state_request_timeout_ms = NonZero::new(300).unwrap()
    });
    let (mut ada, _) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    join(&mut ada, "echo", "chat").await;
    bob.ask(json!({"type":"join_room","room":"echo"})).await;
    let again = bob.ask(json!({"type":"join_room","room":"echo"})).await;
    assert_eq!(again["type"], "room_joined");
    bob.recv_type("room_state").await;
    bob.idle(Duration::from_millis(500)).await;
}

/// A member that, while `answering` is set, answers every state request at
/// once with its own name; it runs until aborted.
fn responder(
    mut member: Client,
    room: &'static str,
    name: &'static str,
    answering: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    tokio::spawn(async move {
        while let Some(Ok(frame)) = member.ws.next().await {
            let Message::Text(text) = frame else {
                continue;
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["type"] == "state_request"
                && answering.load(std::sync::atomic::Ordering::SeqCst)
            {
                let state = json!({"type":"state","room":room,"data":name,"for":frame["for"]});
                let _ = member.ws.send(Message::text(state.to_string())).await;
            }
        }
    })
}

#[tokio::test]
async fn the_order_is_active_members_first_then_joiners_oldest_first() {
    use std::sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    };
    let server = TestServer::with(|config| {
        config.rooms.state_request_timeout_ms = NonZero::new(150).unwrap()
    });
    let (mut ada, _) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    let (mut cy, _) = server.connect().await;
    // Ada answers Bob's join (and so is active); Bob then broadcasts (and
    // is the most recent); Cy joins last and stays quiet.
    join(&mut ada, "queue", "chat").await;
    bob.send(json!({"type":"join_room","room":"queue"})).await;
    answer_state_request_after_joins(&mut ada, "queue", json!("ada")).await;
    next_of(&mut bob, "room_state").await;
    bob.send(json!({"type":"broadcast","room":"queue","data":"hi"}))
        .await;
    next_of(&mut ada, "message").await;
    cy.send(json!({"type":"join_room","room":"queue"})).await;
    answer_state_request_after_joins(&mut bob, "queue", json!("bob")).await;
    next_of(&mut cy, "room_state").await;
    // Bob answered Cy, so Bob is the most recent. The order is Bob, Ada,
    // then Cy: whoever of them answers first is the first one asked.
    let answering = [(); 3].map(|_| Arc::new(AtomicBool::new(true)));
    let tasks = [
        responder(ada, "queue", "ada", answering[0].clone()),
        responder(bob, "queue", "bob", answering[1].clone()),
        responder(cy, "queue", "cy", answering[2].clone()),
    ];
    let (mut first_asked, mut newcomers) = (Vec::new(), Vec::new());
    for silent in 0..3 {
        // Round 0: everyone answers; round 1: Bob is silent; round 2: Bob
        // and Ada are.
        if silent > 0 {
            answering[silent % 2].store(false, Ordering::SeqCst);
        }
        let (mut newcomer, _) = server.connect().await;
        newcomer
            .send(json!({"type":"join_room","room":"queue"}))
            .await;
        first_asked.push(next_of(&mut newcomer, "room_state").await["data"].clone());
        // The newcomer stays, after Cy, never active.
        newcomers.push(newcomer);
    }
    for task in tasks {
        task.abort();
    }
    assert_eq!(first_asked, [json!("bob"), json!("ada"), json!("cy")]);
}

#[tokio::test]
async fn when_the_asked_member_leaves_the_next_is_asked_at_once() {
    let server = TestServer::with(|config| {
        config.rooms.state_request_timeout_ms = NonZero::new(60_000).unwrap()
    });
    let (mut ada, _) = server.connect().await;
    let (mut bob, bob_welcome) = server.connect().await;
    join(&mut ada, "relay", "chat").await;
    bob.ask(json!({"type":"join_room","room":"relay"})).await;
    answer_state_request_after_joins(&mut ada, "relay", json!(0)).await;
    bob.recv_type("room_state").await;
    let (mut cy, _) = server.connect().await;
    cy.send(json!({"type":"join_room","room":"relay"})).await;
    // Ada answered last, so she is asked first; she leaves instead.
    next_of(&mut ada, "state_request").await;
    ada.ask(json!({"type":"leave_room","room":"relay"})).await;
    answer_state_request_after_joins(&mut bob, "relay", json!("bob's")).await;
    let state = next_of(&mut cy, "room_state").await;
    assert_eq!(state["from"], bob_welcome["session"]);
}

#[tokio::test]
async fn a_late_reply_only_updates_the_snapshot() {
    let server = TestServer::with(|config| {
        config.rooms.state_request_timeout_ms = NonZero::new(150).unwrap()
    });
    let (mut ada, _) = server.connect().await;
    join(&mut ada, "late", "chat").await;
    let (mut bob, _) = server.connect().await;
    bob.send(json!({"type":"join_room","room":"late"})).await;
    let request = next_of(&mut ada, "state_request").await;
    let state = next_of(&mut bob, "room_state").await;
    assert_eq!(state["from"], Value::Null, "Ada was too slow");
    ada.send(json!({"type":"state","room":"late","data":"too late","for":request["for"]}))
        .await;
    bob.idle(Duration::from_millis(300)).await;
    let (mut cy, _) = server.connect().await;
    cy.send(json!({"type":"join_room","room":"late"})).await;
    let state = next_of(&mut cy, "room_state").await;
    assert_eq!(
        (&state["data"], &state["from"]),
        (&json!("too late"), &Value::Null)
    );
}

#[tokio::test]
async fn a_takeover_moves_the_rooms_to_the_new_connection() {
    let server = TestServer::start();
    let (mut ada, ada_welcome) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    join(&mut bob, "hub", "chat").await;
    ada.ask(json!({"type":"join_room","room":"hub"})).await;
    answer_state_request_after_joins(&mut bob, "hub", json!("x")).await;
    ada.recv_type("room_state").await;
    let token = ada_welcome["resume"].as_str().unwrap();
    let (mut newer, _) = server.connect_with(&format!("resume={token}")).await;
    assert_eq!(ada.ending().await, crate::support::Ending::Closed(4001));
    assert_eq!(newer.recv_type("resumed").await["rooms"], json!(["hub"]));
    newer.recv_type("room_joined").await;
    assert_eq!(newer.recv_type("room_state").await["data"], "x");
    newer
        .send(json!({"type":"broadcast","room":"hub","data":"back"}))
        .await;
    // Nobody saw the older connection go: the next frame is the message.
    assert_eq!(bob.recv_type("message").await["data"], "back");
}

/// Like [`answer_state_request`], skipping member announcements first.
async fn answer_state_request_after_joins(member: &mut Client, room: &str, data: Value) {
    let request = next_of(member, "state_request").await;
    member
        .send(json!({"type":"state","room":room,"data":data,"for":request["for"]}))
        .await;
}

#[tokio::test]
async fn rooms_on_different_workers_reach_members_on_any_worker() {
    // Rooms start on the workers in turn, and connections land on either:
    // with two workers, some deliveries cross threads and some do not.
    let server = TestServer::with(|config| config.server.workers = 2);
    let mut members = Vec::new();
    for _ in 0..3 {
        let (client, welcome) = server.connect().await;
        members.push((client, session(&welcome)));
    }
    let rooms = ["north", "south", "east", "west"];
    for room in rooms {
        join(&mut members[0].0, room, "chat").await;
        for index in 1..members.len() {
            members[index]
                .0
                .ask(json!({"type":"join_room","room":room}))
                .await;
            answer_state_request_after_joins(&mut members[0].0, room, json!(room)).await;
            assert_eq!(
                next_of(&mut members[index].0, "room_state").await["data"],
                room
            );
        }
    }
    for room in rooms {
        for sender in 0..members.len() {
            members[sender]
                .0
                .send(json!({"type":"broadcast","room":room,"data":sender}))
                .await;
            let from = members[sender].1.clone();
            for (receiver, (client, _)) in members.iter_mut().enumerate() {
                if receiver != sender {
                    let message = next_of(client, "message").await;
                    assert_eq!(
                        (message["room"].as_str(), message["from"].as_str()),
                        (Some(room), Some(from.as_str()))
                    );
                    assert_eq!(message["data"], sender);
                }
            }
        }
    }
}

/// Bob's join of Ada's chat room, after whatever `first` sent: Ada serves
/// the state, then Bob's broadcast must reach her.
async fn bob_gets_in(ada: &mut Client, bob: &mut Client) {
    answer_state_request_after_joins(ada, "den", json!("served")).await;
    assert_eq!(next_of(bob, "room_state").await["data"], "served");
    bob.send(json!({"type":"broadcast","room":"den","data":"in"}))
        .await;
    assert_eq!(next_of(ada, "message").await["data"], "in");
}

#[tokio::test]
async fn a_refused_join_then_a_good_one_sent_at_once_gets_in() {
    let server = TestServer::start();
    let (mut ada, _) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    join(&mut ada, "den", "chat").await;
    // The first join names the wrong kind; the second, sent before the
    // refusal comes back, is right.
    bob.send_together(&[
        json!({"type":"join_room","room":"den","kind":"stage"}),
        json!({"type":"join_room","room":"den","kind":"chat"}),
    ])
    .await;
    assert_eq!(bob.recv_type("error").await["code"], "bad_request");
    assert_eq!(bob.recv_type("room_joined").await["room"], "den");
    bob_gets_in(&mut ada, &mut bob).await;
}

#[tokio::test]
async fn a_stale_refusal_does_not_undo_a_later_join() {
    let server = TestServer::start();
    let (mut ada, _) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    join(&mut ada, "den", "chat").await;
    // Refused, left, joined again: all sent before any answer.
    bob.send_together(&[
        json!({"type":"join_room","room":"den","kind":"stage"}),
        json!({"type":"leave_room","room":"den"}),
        json!({"type":"join_room","room":"den","kind":"chat"}),
    ])
    .await;
    assert_eq!(bob.recv_type("error").await["code"], "bad_request");
    let leave = bob.recv_type("error").await;
    assert_eq!(
        (leave["code"].as_str(), leave["ref"].as_str()),
        (Some("not_in_room"), Some("leave_room"))
    );
    assert_eq!(bob.recv_type("room_joined").await["room"], "den");
    bob_gets_in(&mut ada, &mut bob).await;
}

#[tokio::test]
async fn a_join_without_kind_takes_the_rooms_kind_or_makes_a_chat() {
    let server = TestServer::start();
    let (mut ada, _) = server.connect().await;
    join_as(
        &mut ada,
        json!({"type":"join_room","room":"tv","kind":"stage","role":"host"}),
    )
    .await;
    let (mut bob, _) = server.connect().await;
    bob.send(json!({"type":"join_room","room":"tv"})).await;
    answer_state_request_after_joins(&mut ada, "tv", json!({"screen":1})).await;
    let joined = next_of(&mut bob, "room_joined").await;
    assert_eq!(joined["kind"], "stage");
    let me = joined["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|member| member["session"] == joined["you"])
        .cloned()
        .unwrap();
    assert_eq!(me["role"], "controller", "a stage's default role");
    assert_eq!(
        next_of(&mut bob, "room_state").await["data"],
        json!({"screen":1})
    );
    let (fresh, _) = join_as(&mut bob, json!({"type":"join_room","room":"lobby-chat"})).await;
    assert_eq!(fresh["kind"], "chat");
    let wrong = bob
        .ask(json!({"type":"join_room","room":"tv","kind":"canvas"}))
        .await;
    assert_eq!(wrong["code"], "bad_request");
    assert!(
        wrong["message"].as_str().unwrap().contains("stage"),
        "{wrong}"
    );
}

#[tokio::test]
async fn a_canvas_newcomer_learns_the_tick_and_sees_the_board_at_once() {
    let server = TestServer::with(|config| {
        config.rooms.canvas_tick_hz = NonZero::new(7).unwrap();
    });
    let (mut ada, ada_welcome) = server.connect().await;
    let (joined, _) = join(&mut ada, "field", "canvas").await;
    assert_eq!(joined["tick_hz"], 7);
    let empty = ada.recv_type("frame").await;
    assert_eq!(
        (&empty["players"], &empty["zombies"]),
        (&json!([]), &json!([]))
    );
    ada.send(json!({"type":"pos","room":"field","x":10,"y":20}))
        .await;
    ada.recv_type("frame").await;
    let (mut bob, _) = server.connect().await;
    bob.send(json!({"type":"join_room","room":"field"})).await;
    answer_state_request_after_joins(&mut ada, "field", json!(null)).await;
    next_of(&mut bob, "room_state").await;
    // Nothing moves, yet the newcomer's next frame is the board.
    let board = bob.recv().await;
    assert_eq!(board["type"], "frame", "{board}");
    assert_eq!(board["players"][0]["session"], ada_welcome["session"]);
    let (chat, _) = join(&mut bob, "talk", "chat").await;
    assert!(chat.get("tick_hz").is_none(), "{chat}");
}

#[tokio::test]
async fn a_board_room_routes_like_chat_and_never_keeps_a_moving_state() {
    let server = TestServer::with(|config| {
        config.rooms.state_request_timeout_ms = NonZero::new(200).unwrap();
    });
    let (mut ada, _) = server.connect().await;
    let (joined, state) = join(&mut ada, "poems", "board").await;
    assert_eq!(
        (&joined["kind"], &joined["members"][0]["role"]),
        (&json!("board"), &json!("member"))
    );
    assert_eq!(state["data"], Value::Null);
    let placed = json!({"words":[{"id":0,"text":"moon","x":0.1,"y":0.2}]});
    ada.send(json!({"type":"state","room":"poems","action":"move_word","data":placed}))
        .await;
    let dragging = json!({"words":[{"id":0,"text":"moon","x":0.5,"y":0.5}]});
    ada.send(json!({"type":"state","room":"poems","action":"moving","data":dragging}))
        .await;
    let (mut grace, _) = server.connect().await;
    let host = grace
        .ask(json!({"type":"join_room","room":"poems","kind":"board","role":"host"}))
        .await;
    assert_eq!(
        host["code"], "bad_request",
        "a board has members only: {host}"
    );
    grace
        .send(json!({"type":"join_room","room":"poems","kind":"board"}))
        .await;
    // Ada does not answer in time: Grace gets the snapshot, the dropped tile.
    next_of(&mut ada, "state_request").await;
    grace.recv_type("room_joined").await;
    let state = grace.recv_type("room_state").await;
    assert_eq!((&state["data"], &state["from"]), (&placed, &Value::Null));
    grace
        .send(json!({"type":"broadcast","room":"poems","data":{"drag":{"id":0,"x":0.3,"y":0.3}}}))
        .await;
    let relayed = next_of(&mut ada, "message").await;
    assert_eq!(relayed["data"]["drag"]["x"], 0.3);
    let rooms = server.get_json("/api/rooms").await;
    assert_eq!(rooms[0]["kind"], "board", "{rooms}");
}
