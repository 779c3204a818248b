//! The operators' API through the real server (PROTOCOL.md, *Operators*):
//! off without `admin.token`, 401 without the right token, the sessions
//! listed, a kick, and a game ended.

use serde_json::{json, Value};

use crate::support::{Client, Ending, TestServer};

const TOKEN: &str = "open-sesame-4f1c";

fn with_token() -> TestServer {
    TestServer::with(|config| config.admin.token = TOKEN.to_string())
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

async fn admin_get(server: &TestServer, path: &str) -> Value {
    let reply = server.fetch(path, &[("Authorization", &bearer())]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    serde_json::from_str(&reply.body).expect("JSON")
}

async fn admin_post(server: &TestServer, path: &str) -> (u16, Value) {
    let reply = server.post(path, &[("Authorization", &bearer())]).await;
    (
        reply.status,
        serde_json::from_str(&reply.body).expect("JSON"),
    )
}

/// Two players quick-matched into tic-tac-toe; the first queued is X.
async fn pair(server: &TestServer) -> (Client, Value, Client, Value) {
    let (mut x, x_welcome) = server.connect().await;
    let (mut o, o_welcome) = server.connect().await;
    x.ask(json!({"type":"find_game","game":"tictactoe"})).await;
    o.ask(json!({"type":"find_game","game":"tictactoe"})).await;
    x.recv_type("game_start").await;
    o.recv_type("game_start").await;
    (x, x_welcome, o, o_welcome)
}

#[tokio::test]
async fn without_a_token_the_operators_api_is_not_there() {
    let server = TestServer::start();
    let list = server.fetch("/api/admin/sessions", &[]).await;
    assert_eq!(
        (list.status, list.body.as_str()),
        (404, r#"{"error":"not_found"}"#)
    );
    let kick = server
        .post(
            "/api/admin/sessions/s_x/kick",
            &[("Authorization", "Bearer ")],
        )
        .await;
    assert_eq!(kick.status, 404);
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_401() {
    let server = with_token();
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", TOKEN)],
    ] {
        let reply = server.fetch("/api/admin/sessions", &headers).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (401, r#"{"error":"unauthorized"}"#),
            "{headers:?}"
        );
        let kick = server.post("/api/admin/games/g_x/end", &headers).await;
        assert_eq!(kick.status, 401);
    }
}

#[tokio::test]
async fn sessions_are_listed_with_their_rooms_games_and_presence() {
    let server = with_token();
    let (mut ada, ada_welcome) = server.connect_with("name=Ada").await;
    ada.ask(json!({"type":"join_room","room":"den","kind":"chat"}))
        .await;
    let (_x, x_welcome, _o, _) = pair(&server).await;
    let sessions = admin_get(&server, "/api/admin/sessions").await;
    let list = sessions.as_array().expect("a list");
    assert_eq!(list.len(), 3, "{sessions}");
    let ada_row = list
        .iter()
        .find(|row| row["session"] == ada_welcome["session"])
        .expect("Ada listed");
    assert_eq!(
        (
            &ada_row["name"],
            &ada_row["connected"],
            &ada_row["rooms"],
            &ada_row["node"]
        ),
        (&json!("Ada"), &json!(true), &json!(["den"]), &Value::Null)
    );
    assert!(ada_row["since"].as_str().unwrap().ends_with('Z'));
    let x_row = list
        .iter()
        .find(|row| row["session"] == x_welcome["session"])
        .expect("X listed");
    assert_eq!(x_row["games"].as_array().map(Vec::len), Some(1));
    let one = admin_get(&server, "/api/admin/sessions?limit=1").await;
    assert_eq!(one.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_kicked_session_is_closed_4003_leaves_kicked_forfeits_and_cannot_resume() {
    let server = with_token();
    let (mut x, x_welcome, mut o, _) = pair(&server).await;
    let (mut bob, _) = server.connect().await;
    bob.ask(json!({"type":"join_room","room":"den"})).await;
    bob.recv_type("room_state").await;
    x.send(json!({"type":"join_room","room":"den"})).await;
    bob.recv_type("member_joined").await;
    let asked = bob.recv_type("state_request").await;
    bob.send(json!({"type":"state","room":"den","data":null,"for":asked["for"]}))
        .await;
    x.recv_type("room_joined").await;
    x.recv_type("room_state").await;

    let session = x_welcome["session"].as_str().unwrap();
    let (status, body) = admin_post(&server, &format!("/api/admin/sessions/{session}/kick")).await;
    assert_eq!((status, body), (200, json!({"ok":true})));
    assert_eq!(x.ending().await, Ending::Closed(4003));
    let left = bob.recv_type("member_left").await;
    assert_eq!(
        (&left["session"], &left["reason"]),
        (&x_welcome["session"], &json!("kicked"))
    );
    let over = o.recv_type("game_over").await;
    assert_eq!(
        (&over["result"], &over["winner"]),
        (&json!("forfeit"), &json!("O"))
    );
    // Its token is void.
    let token = x_welcome["resume"].as_str().unwrap();
    let (mut again, welcome) = server.connect_with(&format!("resume={token}")).await;
    assert_ne!(welcome["session"], x_welcome["session"]);
    assert_eq!(again.recv_type("error").await["code"], "not_found");
    let (status, _) = admin_post(&server, &format!("/api/admin/sessions/{session}/kick")).await;
    assert_eq!(status, 404, "gone now");
}

#[tokio::test]
async fn an_operator_ends_a_game_abandoned_and_it_is_recorded() {
    let server = with_token();
    let (mut x, _, mut o, _) = pair(&server).await;
    let games = server.get_json("/api/games").await;
    let game = games[0]["game_id"].as_str().unwrap().to_string();
    let (status, body) = admin_post(&server, &format!("/api/admin/games/{game}/end")).await;
    assert_eq!((status, body), (200, json!({"ok":true})));
    for player in [&mut x, &mut o] {
        let over = player.recv_type("game_over").await;
        assert_eq!(
            (&over["result"], &over["winner"]),
            (&json!("abandoned"), &Value::Null)
        );
    }
    let record = server.get_json(&format!("/api/history/{game}")).await;
    assert_eq!(record["result"], "abandoned");
    let (status, body) = admin_post(&server, &format!("/api/admin/games/{game}/end")).await;
    assert_eq!((status, body), (404, json!({"error":"not_found"})));
    let (status, _) = admin_post(&server, "/api/admin/games/g_nothing/end").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_closed_room_tells_its_members_routes_them_nowhere_and_keeps_its_snapshot() {
    let server = with_token();
    let (mut ada, _) = server.connect().await;
    let (mut bob, _) = server.connect().await;
    ada.ask(json!({"type":"join_room","room":"den"})).await;
    ada.recv_type("room_state").await;
    let kept = json!({"pinned":"the agenda"});
    ada.send(json!({"type":"state","room":"den","data":kept}))
        .await;
    bob.send(json!({"type":"join_room","room":"den"})).await;
    ada.recv_type("member_joined").await;
    let asked = ada.recv_type("state_request").await;
    ada.send(json!({"type":"state","room":"den","data":kept,"for":asked["for"]}))
        .await;
    bob.recv_type("room_joined").await;
    bob.recv_type("room_state").await;

    let (status, body) = admin_post(&server, "/api/admin/rooms/den/close").await;
    assert_eq!((status, body), (200, json!({"ok":true})));
    for member in [&mut ada, &mut bob] {
        let left = member.recv_type("room_left").await;
        assert_eq!(
            left,
            json!({"type":"room_left","room":"den","reason":"closed"})
        );
    }
    // Nobody is routed to it any more.
    let refused = ada
        .ask(json!({"type":"broadcast","room":"den","data":"hello?"}))
        .await;
    assert_eq!(refused["code"], "not_in_room", "{refused}");
    assert_eq!(server.get_json("/api/rooms").await, json!([]));
    let sessions = admin_get(&server, "/api/admin/sessions").await;
    for row in sessions.as_array().unwrap() {
        assert_eq!(row["rooms"], json!([]), "{row}");
    }
    let (status, _) = admin_post(&server, "/api/admin/rooms/den/close").await;
    assert_eq!(status, 404);
    // Its snapshot is kept: the next to open it gets it.
    let (mut cleo, _) = server.connect().await;
    let joined = cleo.ask(json!({"type":"join_room","room":"den"})).await;
    assert_eq!(
        joined["members"].as_array().map(Vec::len),
        Some(1),
        "{joined}"
    );
    let state = cleo.recv_type("room_state").await;
    assert_eq!((&state["data"], &state["from"]), (&kept, &Value::Null));
}

#[tokio::test]
async fn the_stats_are_a_ring_of_samples_and_the_page_is_there_only_with_a_token() {
    let server = with_token();
    let stats = admin_get(&server, "/api/admin/stats").await;
    assert_eq!(stats["interval_ms"], 2000);
    let first = &stats["samples"][0];
    for field in [
        "at_ms",
        "sessions",
        "frames_in_per_s",
        "frames_out_per_s",
        "rooms",
        "games",
        "evictions",
        "slow_drops",
    ] {
        assert!(first.get(field).is_some(), "{field} in {first}");
    }
    assert_eq!(server.fetch("/api/admin/stats", &[]).await.status, 401);
    let page = server.fetch("/admin", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("admin.js"), "the operators' page");
    let off = TestServer::start();
    assert_eq!(off.fetch("/admin", &[]).await.status, 404);
    assert_eq!(off.fetch("/admin.html", &[]).await.status, 404);
    assert_eq!(off.fetch("/api/admin/stats", &[]).await.status, 404);
}
