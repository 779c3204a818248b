//! Many nodes on one Redis (PROTOCOL.md, *Running several nodes*): real
//! nodes in this process, a real `redis-server` of the test's own, real
//! WebSocket clients on different nodes.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{
    redis::{Admin, Redis},
    support::{Client, TestServer},
};

/// How long a test waits for the nodes to see each other.
const SETTLE: Duration = Duration::from_secs(10);

/// A node of the cluster on `redis`, named `id`, with quick heartbeats.
fn node(redis: &Redis, id: &str) -> TestServer {
    node_with(redis, id, |_| {})
}

fn node_with(
    redis: &Redis,
    id: &str,
    tweak: impl FnOnce(&mut parlor::config::Config),
) -> TestServer {
    let url = redis.url();
    let id = id.to_string();
    TestServer::with(move |config| {
        config.cluster.redis_url = url;
        config.cluster.node_id = id;
        config.cluster.heartbeat_ms = std::num::NonZero::new(100).unwrap();
        config.cluster.node_timeout_ms = std::num::NonZero::new(1000).unwrap();
        config.cluster.request_timeout_ms = std::num::NonZero::new(1000).unwrap();
        config.rooms.state_request_timeout_ms = std::num::NonZero::new(100).unwrap();
        // The tests send faster than a person: no rate limit in the way.
        config.limits.msgs_per_sec = std::num::NonZero::new(100_000).unwrap();
        config.limits.burst = std::num::NonZero::new(100_000).unwrap();
        tweak(config);
    })
}

/// A Redis and two nodes on it, `one` and `two` (each changed by
/// `tweak`), once they see each other.
async fn two_nodes(tweak: impl Fn(&mut parlor::config::Config)) -> (Redis, TestServer, TestServer) {
    let redis = Redis::start();
    let one = node_with(&redis, "one", &tweak);
    let two = node_with(&redis, "two", &tweak);
    // Each knows the other live (a node finds owners only among those).
    until_nodes(&one, 2).await;
    until_nodes(&two, 2).await;
    (redis, one, two)
}

/// Waits until `server`'s `/healthz` says `nodes` nodes live and Redis ok.
async fn until_nodes(server: &TestServer, nodes: u64) -> Value {
    let deadline = Instant::now() + SETTLE;
    loop {
        let health = server.get_json("/healthz").await;
        if health["cluster"]["nodes"] == nodes && health["cluster"]["redis"] == "ok" {
            return health;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes never saw each other: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Joins `room` and returns (`room_joined`, `room_state`), skipping member
/// announcements on the way.
async fn join(client: &mut Client, room: &str) -> (Value, Value) {
    client.send(json!({"type":"join_room","room":room})).await;
    let joined = next_of(client, "room_joined").await;
    let state = next_of(client, "room_state").await;
    (joined, state)
}

/// The next frame of type `kind`, skipping member announcements and state
/// requests (left unanswered: the newcomer gets the snapshot after
/// `rooms.state_request_timeout_ms`).
pub(crate) async fn next_of(client: &mut Client, kind: &str) -> Value {
    loop {
        let frame = client.recv().await;
        if frame["type"] == kind {
            return frame;
        }
        let skippable = frame["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("member_") || t == "state_request");
        assert!(skippable, "expected {kind}, got {frame}");
    }
}

/// Reads `count` `message` frames, skipping member announcements; returns
/// their data.
async fn messages(client: &mut Client, count: usize) -> Vec<Value> {
    let mut seen = Vec::with_capacity(count);
    while seen.len() < count {
        seen.push(next_of(client, "message").await["data"].clone());
    }
    seen
}

fn session(welcome: &Value) -> String {
    welcome["session"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn healthz_names_the_node_and_counts_the_live_nodes() {
    let redis = Redis::start();
    let one = node(&redis, "one");
    let two = node(&redis, "two");
    let health = until_nodes(&one, 2).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["node"], "one");
    let health = until_nodes(&two, 2).await;
    assert_eq!(health["node"], "two");
}

#[tokio::test]
async fn a_single_node_says_nothing_of_a_cluster() {
    let server = TestServer::start();
    let health = server.get_json("/healthz").await;
    assert_eq!(health, json!({"status":"ok","sessions":0}));
}

#[tokio::test]
async fn two_senders_on_two_nodes_and_two_listeners_on_two_nodes_see_one_order() {
    let (_redis, one, two) = two_nodes(|_| {}).await;
    let (mut ada, _) = one.connect().await;
    let (mut bob, _) = two.connect().await;
    let (mut cleo, _) = one.connect().await;
    let (mut dan, _) = two.connect().await;
    let (joined, _) = join(&mut ada, "lounge").await;
    assert_eq!(joined["members"].as_array().unwrap().len(), 1);
    let (joined, _) = join(&mut bob, "lounge").await;
    assert_eq!(joined["members"].as_array().unwrap().len(), 2, "{joined}");
    join(&mut cleo, "lounge").await;
    let (joined, _) = join(&mut dan, "lounge").await;
    assert_eq!(joined["members"].as_array().unwrap().len(), 4, "{joined}");
    const EACH: usize = 60;
    for n in 0..EACH {
        ada.send(json!({"type":"broadcast","room":"lounge","data":{"from":"ada","n":n}}))
            .await;
        bob.send(json!({"type":"broadcast","room":"lounge","data":{"from":"bob","n":n}}))
            .await;
    }
    let cleo_saw = messages(&mut cleo, 2 * EACH).await;
    let dan_saw = messages(&mut dan, 2 * EACH).await;
    assert_eq!(cleo_saw, dan_saw, "listeners on two nodes saw two orders");
    for from in ["ada", "bob"] {
        let theirs: Vec<u64> = cleo_saw
            .iter()
            .filter(|data| data["from"] == from)
            .map(|data| data["n"].as_u64().unwrap())
            .collect();
        assert_eq!(
            theirs,
            (0..EACH as u64).collect::<Vec<_>>(),
            "{from}'s order"
        );
    }
    // Each sender sees the other's, in the same relative order as the listeners.
    let ada_saw = messages(&mut ada, EACH).await;
    let bob_saw = messages(&mut bob, EACH).await;
    let from = |saw: &[Value], who: &str| -> Vec<Value> {
        saw.iter()
            .filter(|data| data["from"] == who)
            .cloned()
            .collect()
    };
    assert_eq!(ada_saw, from(&cleo_saw, "bob"));
    assert_eq!(bob_saw, from(&cleo_saw, "ada"));
}

#[tokio::test]
async fn a_newcomer_on_another_node_gets_the_state_of_the_most_recently_active_member() {
    let (_redis, one, two) = two_nodes(|_| {}).await;
    let (mut ada, ada_welcome) = one.connect().await;
    join(&mut ada, "poetry").await;
    let (mut bob, bob_welcome) = two.connect().await;
    join(&mut bob, "poetry").await;
    next_of(&mut ada, "member_joined").await;
    // Bob, on the other node, is now the most recently active.
    bob.send(json!({"type":"broadcast","room":"poetry","data":"hi"}))
        .await;
    assert_eq!(
        next_of(&mut ada, "message").await["from"],
        session(&bob_welcome)
    );
    let (mut cleo, cleo_welcome) = one.connect().await;
    cleo.send(json!({"type":"join_room","room":"poetry"})).await;
    let asked = next_of(&mut bob, "state_request").await;
    assert_eq!(asked["for"], session(&cleo_welcome));
    bob.send(json!({"type":"state","room":"poetry","data":{"words":["moon"]},"for":asked["for"]}))
        .await;
    let (joined, state) = (
        next_of(&mut cleo, "room_joined").await,
        next_of(&mut cleo, "room_state").await,
    );
    assert_eq!(joined["members"].as_array().unwrap().len(), 3);
    assert_eq!(state["data"], json!({"words":["moon"]}));
    assert_eq!(state["from"], session(&bob_welcome));
    let _ = ada_welcome;
}

#[tokio::test]
async fn direct_messages_and_leaves_cross_nodes() {
    let (_redis, one, two) = two_nodes(|_| {}).await;
    let (mut ada, ada_welcome) = one.connect().await;
    let (mut bob, bob_welcome) = two.connect().await;
    join(&mut ada, "den").await;
    join(&mut bob, "den").await;
    next_of(&mut ada, "member_joined").await;
    ada.send(json!({"type":"direct","room":"den","to":session(&bob_welcome),"data":"psst"}))
        .await;
    let direct = next_of(&mut bob, "message").await;
    assert_eq!(direct["from"], session(&ada_welcome));
    assert_eq!(direct["data"], "psst");
    assert_eq!(direct["direct"], true);
    let left = bob
        .ask(json!({"type":"leave_room","room":"den","id":7}))
        .await;
    assert_eq!(left, json!({"type":"room_left","room":"den","id":7}));
    let gone = next_of(&mut ada, "member_left").await;
    assert_eq!(gone["session"], session(&bob_welcome));
    assert_eq!(gone["reason"], "left");
    // A room message for a room it left is refused.
    let refused = bob
        .ask(json!({"type":"broadcast","room":"den","data":1,"id":8}))
        .await;
    assert_eq!(refused["code"], "not_in_room", "{refused}");
}

#[tokio::test]
async fn a_member_that_drops_on_another_node_is_away_then_gone() {
    let redis = Redis::start();
    let one = node_with(&redis, "one", |config| config.rooms.away_grace_ms = 300);
    let two = node_with(&redis, "two", |config| config.rooms.away_grace_ms = 300);
    until_nodes(&one, 2).await;
    until_nodes(&two, 2).await;
    let (mut ada, _) = one.connect().await;
    let (mut bob, bob_welcome) = two.connect().await;
    join(&mut ada, "den").await;
    join(&mut bob, "den").await;
    next_of(&mut ada, "member_joined").await;
    drop(bob);
    let away = next_of(&mut ada, "member_away").await;
    assert_eq!(away["session"], session(&bob_welcome));
    let left = next_of(&mut ada, "member_left").await;
    assert_eq!(left["session"], session(&bob_welcome));
    assert_eq!(left["reason"], "disconnected");
}

#[tokio::test]
async fn a_room_is_full_for_members_of_every_node() {
    let (_redis, one, two) = two_nodes(|config| {
        config.rooms.max_members = std::num::NonZero::new(2).unwrap();
    })
    .await;
    let (mut ada, _) = one.connect().await;
    let (mut bob, _) = two.connect().await;
    let (mut cleo, _) = two.connect().await;
    join(&mut ada, "tiny").await;
    join(&mut bob, "tiny").await;
    let refused = cleo
        .ask(json!({"type":"join_room","room":"tiny","id":1}))
        .await;
    assert_eq!(refused["code"], "room_full", "{refused}");
    assert_eq!(refused["id"], 1);
}

/// The id of the Redis connection subscribed to `channels` channels (the
/// node listening to a room of another node's has two: its own and the
/// room's).
fn subscriber_with(redis: &Redis, channels: usize) -> String {
    let clients = redis.bulk(&["CLIENT", "LIST"]);
    let wanted = format!(" sub={channels} ");
    let line = clients
        .lines()
        .find(|line| line.contains(&wanted))
        .unwrap_or_else(|| panic!("no client subscribed to {channels} channels:\n{clients}"));
    let id = line
        .split(' ')
        .find_map(|field| field.strip_prefix("id="))
        .expect("an id");
    id.to_string()
}

/// Ada on node one talks in a room; Bob listens on node two, whose Redis
/// connection is cut while she talks, and kept from coming back (Redis
/// turns new clients away) for a while; `meanwhile` runs while it is cut.
/// Returns what Bob saw, and node two.
async fn talk_through_a_cut(meanwhile: impl Fn(&mut Admin)) -> (Vec<Value>, TestServer, Client) {
    let (redis, one, two) = two_nodes(|_| {}).await;
    let (mut ada, _) = one.connect().await;
    let (mut bob, _) = two.connect().await;
    // Cleo, on node one, shows when node one's room has taken a message.
    let (mut cleo, _) = one.connect().await;
    join(&mut ada, "stream").await;
    join(&mut bob, "stream").await;
    join(&mut cleo, "stream").await;
    let mut admin = redis.admin();
    const SENT: usize = 300;
    let (cut_at, back_at) = (SENT / 3, SENT / 2);
    for n in 0..SENT {
        if n == cut_at {
            let id = subscriber_with(&redis, 2);
            // Node one and this connection: nobody else gets in.
            assert_eq!(admin.command(&["CONFIG", "SET", "maxclients", "2"]), "+OK");
            assert_eq!(admin.command(&["CLIENT", "KILL", "ID", &id]), ":1");
            meanwhile(&mut admin);
        }
        if n == back_at {
            // Everything sent while node two was cut off is published
            // before it may come back: node one's room has taken it (Cleo
            // got it), and the room's log has stopped growing.
            while next_of(&mut cleo, "message").await["data"] != n - 1 {}
            let mut steady = 0;
            let mut last = String::new();
            while steady < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let length = admin.command(&["XLEN", "parlor:{room:stream}:log"]);
                steady = if length == last { steady + 1 } else { 0 };
                last = length;
            }
            assert_eq!(
                admin.command(&["CONFIG", "SET", "maxclients", "10000"]),
                "+OK"
            );
        }
        ada.send(json!({"type":"broadcast","room":"stream","data":n}))
            .await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut saw = Vec::new();
    loop {
        let frame = bob.recv().await;
        match frame["type"].as_str() {
            Some("message") => {
                saw.push(frame["data"].clone());
                if frame["data"] == SENT - 1 {
                    break;
                }
            }
            Some("room_joined" | "room_state") => saw.push(json!(frame["type"])),
            _ => {}
        }
    }
    (saw, two, bob)
}

#[tokio::test]
async fn frames_lost_by_pub_sub_are_repaired_from_the_rooms_log() {
    let (saw, two, _bob) = talk_through_a_cut(|_| {}).await;
    let expected: Vec<Value> = (0..300).map(|n| json!(n)).collect();
    assert_eq!(saw, expected, "every frame, once, in order");
    assert!(two.metric("parlor_cluster_gap_repairs_total").await >= 1.0);
    assert_eq!(two.metric("parlor_cluster_resyncs_total").await, 0.0);
}

#[tokio::test]
async fn a_gap_the_log_no_longer_holds_resyncs_the_members() {
    // The log is lost (overwritten by something that is not a stream):
    // the gap cannot be read back.
    let (saw, two, _bob) = talk_through_a_cut(|admin| {
        admin.command(&["SET", "parlor:{room:stream}:log", "not a stream"]);
    })
    .await;
    let resynced = saw
        .iter()
        .position(|frame| frame == "room_joined")
        .expect("a resync");
    assert_eq!(saw[resynced + 1], "room_state");
    let numbers: Vec<u64> = saw.iter().filter_map(Value::as_u64).collect();
    assert!(
        numbers.windows(2).all(|pair| pair[0] < pair[1]),
        "in order, no duplicate"
    );
    assert!(two.metric("parlor_cluster_resyncs_total").await >= 1.0);
}

#[tokio::test]
async fn with_redis_down_local_rooms_go_on_and_the_rest_is_unavailable_until_it_is_back() {
    let mut redis = Redis::start();
    let one = node(&redis, "one");
    until_nodes(&one, 1).await;
    let (mut ada, _) = one.connect().await;
    let (mut cleo, _) = one.connect().await;
    join(&mut ada, "local").await;
    join(&mut cleo, "local").await;
    redis.kill();
    let deadline = Instant::now() + SETTLE;
    loop {
        let health = one.get_json("/healthz").await;
        if health["status"] == "degraded" {
            assert_eq!(health["cluster"]["redis"], "down");
            break;
        }
        assert!(Instant::now() < deadline, "never degraded: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ada.send(json!({"type":"broadcast","room":"local","data":"still here"}))
        .await;
    assert_eq!(next_of(&mut cleo, "message").await["data"], "still here");
    let asked = Instant::now();
    ada.send(json!({"type":"join_room","room":"faraway","id":3}))
        .await;
    let refused = next_of(&mut ada, "error").await;
    assert_eq!(refused["code"], "unavailable", "{refused}");
    assert_eq!(refused["id"], 3);
    assert!(asked.elapsed() < Duration::from_secs(3), "answered in time");
    redis.restart();
    until_nodes(&one, 1).await;
    let (joined, _) = join(&mut ada, "faraway").await;
    assert_eq!(joined["room"], "faraway");
}

#[tokio::test]
async fn every_node_lists_every_nodes_rooms_and_suggests_them_when_one_is_full() {
    let (_redis, one, two) = two_nodes(|config| {
        config.rooms.max_members = std::num::NonZero::new(2).unwrap();
    })
    .await;
    let (mut ada, _) = one.connect().await;
    let (mut bob, _) = two.connect().await;
    let (mut cleo, _) = two.connect().await;
    join(&mut ada, "attic").await;
    join(&mut bob, "basement").await;
    join(&mut cleo, "basement").await;
    let expected = json!([
        {"room":"attic","kind":"chat","members":1},
        {"room":"basement","kind":"chat","members":2},
    ]);
    for server in [&one, &two] {
        let deadline = Instant::now() + SETTLE;
        loop {
            let rooms = server.get_json("/api/rooms").await;
            if rooms == expected {
                break;
            }
            assert!(Instant::now() < deadline, "{rooms}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The basement's owner, node two, suggests the attic, on node one.
    let (mut dan, _) = one.connect().await;
    let refused = dan
        .ask(json!({"type":"join_room","room":"basement","id":2}))
        .await;
    assert_eq!(refused["code"], "room_full", "{refused}");
    assert_eq!(refused["suggestions"], json!(["attic"]), "{refused}");
}

/// A free port on 127.0.0.1 that two more after it are likely free too.
fn free_ports(count: u16) -> u16 {
    loop {
        let first = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("its address")
            .port();
        if first > u16::MAX - count {
            continue;
        }
        let all_free = (first..first + count)
            .all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
        if all_free {
            return first;
        }
    }
}

#[tokio::test]
async fn local_cluster_sh_starts_redis_and_the_nodes_and_stops_them_all() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let port = free_ports(2);
    let mut script = std::process::Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/local-cluster.sh"
        ))
        .args(["2", "--port", &port.to_string(), "--dir"])
        .arg(dir.path())
        .env("PARLOR_BIN", env!("CARGO_BIN_EXE_parlor"))
        .env("PARLOR_CLUSTER__HEARTBEAT_MS", "100")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the script starts");
    let mut nodes = Vec::new();
    for (n, port) in [port, port + 1].into_iter().enumerate() {
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + SETTLE;
        let health = loop {
            if std::net::TcpStream::connect(addr).is_ok() {
                let (status, body) = crate::support::http_get(addr, "/healthz").await;
                let health: Value = serde_json::from_str(&body).unwrap_or_default();
                if status == 200 && health["cluster"]["nodes"] == 2 {
                    break health;
                }
            }
            assert!(Instant::now() < deadline, "node {n} never saw the other");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(health["node"], format!("node-{}", n + 1));
        nodes.push(addr);
    }
    // A room across the two nodes.
    let mut ada = Client::open(&format!("ws://{}/ws", nodes[0])).await;
    let mut bob = Client::open(&format!("ws://{}/ws", nodes[1])).await;
    ada.recv_type("welcome").await;
    bob.recv_type("welcome").await;
    join(&mut ada, "together").await;
    join(&mut bob, "together").await;
    ada.send(json!({"type":"broadcast","room":"together","data":"hello"}))
        .await;
    assert_eq!(next_of(&mut bob, "message").await["data"], "hello");
    // SIGTERM stops everything.
    let pid = script.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = script.wait().expect("the script ends");
    assert!(status.success(), "{status}");
    for addr in nodes {
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{addr} still open"
        );
    }
    for log in ["node-1.log", "node-2.log", "redis.log"] {
        assert!(dir.path().join(log).exists(), "{log}");
    }
}

#[tokio::test]
async fn when_a_rooms_node_is_killed_its_room_carries_on_on_a_survivor_from_its_snapshot() {
    let redis = Redis::start();
    let url = redis.url();
    let doomed = crate::support::spawn_binary(
        &[],
        &[
            ("PARLOR_CLUSTER__REDIS_URL", &url),
            ("PARLOR_CLUSTER__NODE_ID", "doomed"),
            ("PARLOR_CLUSTER__HEARTBEAT_MS", "100"),
            ("PARLOR_CLUSTER__NODE_TIMEOUT_MS", "1000"),
            ("PARLOR_CLUSTER__REQUEST_TIMEOUT_MS", "1000"),
            ("PARLOR_ROOMS__STATE_REQUEST_TIMEOUT_MS", "100"),
            ("PARLOR_STORE__SAVE_DEBOUNCE_MS", "0"),
        ],
    );
    let two = node(&redis, "two");
    let three = node(&redis, "three");
    until_nodes(&two, 3).await;
    let mut ada = Client::open(&format!("ws://{}/ws", doomed.addr)).await;
    let ada_welcome = ada.recv_type("welcome").await;
    join(&mut ada, "garden").await;
    ada.send(json!({"type":"state","room":"garden","data":{"words":["moon"]}}))
        .await;
    let (mut bob, bob_welcome) = two.connect().await;
    let (mut cleo, _) = three.connect().await;
    let (mut dan, _) = three.connect().await;
    for client in [&mut bob, &mut cleo, &mut dan] {
        join(client, "garden").await;
    }
    // The owner dies without a word.
    let killed_at = Instant::now();
    drop(doomed);
    // Every survivor's member gets the room again, from the last snapshot.
    for client in [&mut bob, &mut cleo, &mut dan] {
        let joined = next_of(client, "room_joined").await;
        assert_eq!(joined["room"], "garden");
        let state = next_of(client, "room_state").await;
        assert_eq!(state["data"], json!({"words":["moon"]}), "{state}");
    }
    assert!(
        killed_at.elapsed() < Duration::from_millis(1000 + 2000),
        "carried on within cluster.node_timeout_ms + 2 s: {:?}",
        killed_at.elapsed()
    );
    // And it goes on: one order for all, whichever node took it.
    bob.send(json!({"type":"broadcast","room":"garden","data":"still here"}))
        .await;
    for client in [&mut cleo, &mut dan] {
        let message = next_of(client, "message").await;
        assert_eq!(message["from"], session(&bob_welcome));
        assert_eq!(message["data"], "still here");
    }
    // The dead node is reaped: its sessions may resume elsewhere for the
    // reconnect grace, and are forgotten after.
    let record = format!("parlor:{{session:{}}}", session(&ada_welcome));
    let deadline = Instant::now() + SETTLE;
    loop {
        let ttl = redis.command(&["PTTL", &record]).unwrap_or_default();
        let gone = redis
            .command(&["ZSCORE", "parlor:nodes", "doomed"])
            .unwrap_or_default();
        let ttl: i64 = ttl.trim_start_matches(':').parse().unwrap_or(-3);
        if ttl > 0 && gone == "$-1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not reaped: PTTL {ttl}, score {gone}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_node_stopping_hands_its_rooms_over_at_once() {
    // Nodes are taken for dead only after a long silence: the room moves
    // because it is handed over, not because its node went quiet.
    let (_redis, leaving, two) = slow_to_give_up().await;
    let mut ada = Client::open(&format!("ws://{}/ws", leaving.addr)).await;
    ada.recv_type("welcome").await;
    join(&mut ada, "porch").await;
    ada.send(json!({"type":"state","room":"porch","data":{"lamp":"on"}}))
        .await;
    let (mut bob, _) = two.connect().await;
    let (mut cleo, cleo_welcome) = two.connect().await;
    join(&mut bob, "porch").await;
    join(&mut cleo, "porch").await;
    let stopped_at = Instant::now();
    leaving.terminate();
    for client in [&mut bob, &mut cleo] {
        assert_eq!(next_of(client, "room_joined").await["room"], "porch");
        let state = next_of(client, "room_state").await;
        assert_eq!(state["data"], json!({"lamp":"on"}), "{state}");
    }
    assert!(
        stopped_at.elapsed() < Duration::from_secs(5),
        "handed over, not timed out: {:?}",
        stopped_at.elapsed()
    );
    cleo.send(json!({"type":"broadcast","room":"porch","data":"who's there"}))
        .await;
    let message = next_of(&mut bob, "message").await;
    assert_eq!(message["from"], session(&cleo_welcome));
}

/// A Redis, a node `leaving` as a child process (so that it can be sent
/// SIGTERM) and an in-process node `two`, both taking a node for dead
/// only after 30 s of silence.
async fn slow_to_give_up() -> (Redis, crate::support::ServerProcess, TestServer) {
    let redis = Redis::start();
    let url = redis.url();
    let env = [
        ("PARLOR_CLUSTER__REDIS_URL", url.as_str()),
        ("PARLOR_CLUSTER__NODE_ID", "leaving"),
        ("PARLOR_CLUSTER__HEARTBEAT_MS", "100"),
        ("PARLOR_CLUSTER__NODE_TIMEOUT_MS", "30000"),
        ("PARLOR_ROOMS__STATE_REQUEST_TIMEOUT_MS", "100"),
    ];
    let leaving = crate::support::spawn_binary(&[], &env);
    let two = node_with(&redis, "two", |config| {
        config.cluster.node_timeout_ms = std::num::NonZero::new(30_000).unwrap();
    });
    until_nodes(&two, 2).await;
    (redis, leaving, two)
}

/// Node `id` as a child process (so that it can be killed), with quick
/// heartbeats.
fn node_process(redis: &Redis, id: &str) -> crate::support::ServerProcess {
    node_process_timed_out_after(redis, id, "1000")
}

/// Like [`node_process`], taken for dead after `node_timeout_ms`.
fn node_process_timed_out_after(
    redis: &Redis,
    id: &str,
    node_timeout_ms: &str,
) -> crate::support::ServerProcess {
    let url = redis.url();
    crate::support::spawn_binary(
        &[],
        &[
            ("PARLOR_CLUSTER__REDIS_URL", &url),
            ("PARLOR_CLUSTER__NODE_ID", id),
            ("PARLOR_CLUSTER__HEARTBEAT_MS", "100"),
            ("PARLOR_CLUSTER__NODE_TIMEOUT_MS", node_timeout_ms),
            ("PARLOR_CLUSTER__REQUEST_TIMEOUT_MS", "1000"),
            ("PARLOR_ROOMS__STATE_REQUEST_TIMEOUT_MS", "100"),
        ],
    )
}

/// Resumes `welcome`'s session on `server`.
async fn resume_on(server: &TestServer, welcome: &Value) -> (Client, Value) {
    let token = welcome["resume"].as_str().unwrap();
    server.connect_with(&format!("resume={token}")).await
}

#[tokio::test]
async fn a_session_of_a_dead_node_resumes_on_another_and_gets_its_rooms_back() {
    let redis = Redis::start();
    let doomed = node_process(&redis, "doomed");
    let two = node(&redis, "two");
    until_nodes(&two, 2).await;
    let (mut bob, _) = two.connect().await;
    join(&mut bob, "den").await;
    let mut ada = Client::open(&format!("ws://{}/ws", doomed.addr)).await;
    let welcome = ada.recv_type("welcome").await;
    join(&mut ada, "den").await;
    next_of(&mut bob, "member_joined").await;
    drop(doomed);
    // The room sees her go with her node...
    let left = next_of(&mut bob, "member_left").await;
    assert_eq!(left["session"], welcome["session"]);
    // ...and come back on another.
    let (mut again, back) = resume_on(&two, &welcome).await;
    assert_eq!(back["session"], welcome["session"], "the same session");
    assert_eq!(back["name"], welcome["name"]);
    assert_ne!(back["resume"], welcome["resume"], "a new token");
    let resumed = again.recv_type("resumed").await;
    assert_eq!(resumed["recovered"], false);
    assert_eq!(resumed["rooms"], json!(["den"]));
    let (joined, _) = (next_of(&mut again, "room_joined").await, ());
    assert_eq!(joined["members"].as_array().unwrap().len(), 2, "{joined}");
    let rejoined = next_of(&mut bob, "member_joined").await;
    assert_eq!(rejoined["member"]["session"], welcome["session"]);
}

#[tokio::test]
async fn resuming_on_another_node_while_connected_takes_the_session_over() {
    let (_redis, one, two) = two_nodes(|_| {}).await;
    let (mut bob, _) = two.connect().await;
    join(&mut bob, "den").await;
    let (mut ada, welcome) = one.connect().await;
    join(&mut ada, "den").await;
    next_of(&mut bob, "member_joined").await;
    let (mut again, back) = resume_on(&two, &welcome).await;
    assert_eq!(back["session"], welcome["session"]);
    assert_eq!(again.recv_type("resumed").await["recovered"], false);
    assert_eq!(ada.ending().await, crate::support::Ending::Closed(4001));
    assert_eq!(next_of(&mut again, "room_joined").await["room"], "den");
    again
        .send(json!({"type":"broadcast","room":"den","data":"moved"}))
        .await;
    assert_eq!(next_of(&mut bob, "message").await["data"], "moved");
    // The old token is spent...
    let (mut stranger, refused) = resume_on(&one, &welcome).await;
    assert_ne!(refused["session"], welcome["session"]);
    assert_eq!(stranger.recv_type("error").await["code"], "not_found");
    // ...and the new one takes the session back to node one.
    let (mut home, home_welcome) = resume_on(&one, &back).await;
    assert_eq!(home_welcome["session"], welcome["session"]);
    assert_eq!(home.recv_type("resumed").await["recovered"], false);
    assert_eq!(again.ending().await, crate::support::Ending::Closed(4001));
    assert_eq!(next_of(&mut home, "room_joined").await["room"], "den");
}

#[tokio::test]
async fn a_token_given_to_two_nodes_at_once_resumes_on_one_only() {
    let redis = Redis::start();
    let one = node(&redis, "one");
    let two = node(&redis, "two");
    let three = node(&redis, "three");
    for node in [&one, &two, &three] {
        until_nodes(node, 3).await;
    }
    let (mut ada, welcome) = one.connect().await;
    let ((mut first, on_two), (mut second, on_three)) =
        tokio::join!(resume_on(&two, &welcome), resume_on(&three, &welcome));
    let same = [&on_two, &on_three]
        .iter()
        .filter(|back| back["session"] == welcome["session"])
        .count();
    assert_eq!(same, 1, "one node resumes it: {on_two} {on_three}");
    let (winner, loser) = if on_two["session"] == welcome["session"] {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    assert_eq!(winner.recv_type("resumed").await["recovered"], false);
    assert_eq!(loser.recv_type("error").await["code"], "not_found");
    assert_eq!(ada.ending().await, crate::support::Ending::Closed(4001));
}

/// Sends `signal` to process `pid`.
pub(crate) fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test]
async fn a_node_paused_past_the_node_timeout_gives_up_the_rooms_it_lost_when_it_wakes() {
    let redis = Redis::start();
    let sleeper = node_process(&redis, "sleeper");
    let two = node(&redis, "two");
    until_nodes(&two, 2).await;
    let mut ada = Client::open(&format!("ws://{}/ws", sleeper.addr)).await;
    let ada_welcome = ada.recv_type("welcome").await;
    join(&mut ada, "garden").await;
    let (mut bob, bob_welcome) = two.connect().await;
    join(&mut bob, "garden").await;
    // The room's node stops for longer than the node timeout: node two
    // takes the room over.
    signal(sleeper.child.id(), "-STOP");
    assert_eq!(next_of(&mut bob, "room_joined").await["room"], "garden");
    next_of(&mut bob, "room_state").await;
    // Reaped meanwhile: Ada's record may now resume elsewhere, for a grace.
    let record = format!("parlor:{{session:{}}}", session(&ada_welcome));
    let deadline = Instant::now() + SETTLE;
    loop {
        let ttl = redis.command(&["PTTL", &record]).unwrap_or_default();
        if ttl
            .trim_start_matches(':')
            .parse::<i64>()
            .is_ok_and(|ttl| ttl > 0)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Ada's record was not reaped: {ttl}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It wakes up: it no longer runs the room; Ada joins it on node two.
    signal(sleeper.child.id(), "-CONT");
    let joined = next_of(&mut ada, "room_joined").await;
    assert_eq!(joined["room"], "garden");
    next_of(&mut ada, "room_state").await;
    let arrived = next_of(&mut bob, "member_joined").await;
    assert_eq!(arrived["member"]["session"], ada_welcome["session"]);
    // One room, one order: each hears the other.
    ada.send(json!({"type":"broadcast","room":"garden","data":"awake"}))
        .await;
    assert_eq!(next_of(&mut bob, "message").await["data"], "awake");
    bob.send(json!({"type":"broadcast","room":"garden","data":"welcome back"}))
        .await;
    let message = next_of(&mut ada, "message").await;
    assert_eq!(message["from"], session(&bob_welcome));
    // Awake, it keeps its sessions' records again.
    let deadline = Instant::now() + SETTLE;
    while redis.command(&["PTTL", &record]).as_deref() != Some(":-1") {
        assert!(Instant::now() < deadline, "Ada's record still expires");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn with_redis_down_a_message_to_a_room_on_another_node_is_unavailable() {
    let (mut redis, one, two) = two_nodes(|_| {}).await;
    let (mut bob, _) = two.connect().await;
    join(&mut bob, "far").await;
    let (mut ada, _) = one.connect().await;
    join(&mut ada, "far").await;
    redis.kill();
    let deadline = Instant::now() + SETTLE;
    while one.get_json("/healthz").await["status"] != "degraded" {
        assert!(Instant::now() < deadline, "never degraded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = ada
        .ask(json!({"type":"broadcast","room":"far","data":"hello?","id":5}))
        .await;
    assert_eq!(refused["code"], "unavailable", "{refused}");
    assert_eq!(refused["id"], 5);
}

#[tokio::test]
async fn after_redis_restarts_empty_a_room_across_nodes_resyncs_its_members_elsewhere() {
    let (mut redis, one, two) = two_nodes(|_| {}).await;
    let (mut ada, _) = one.connect().await;
    let (mut bob, _) = two.connect().await;
    join(&mut ada, "hall").await;
    join(&mut bob, "hall").await;
    redis.kill();
    let deadline = Instant::now() + SETTLE;
    while one.get_json("/healthz").await["status"] != "degraded" {
        assert!(Instant::now() < deadline, "never degraded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Lost with Redis (dropped, not queued): Bob cannot have it...
    ada.send(json!({"type":"broadcast","room":"hall","data":"while down"}))
        .await;
    let deadline = Instant::now() + SETTLE;
    while one.metric("parlor_cluster_publish_failures_total").await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the frame for Bob was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.restart();
    until_nodes(&one, 2).await;
    until_nodes(&two, 2).await;
    // ...so once the room is claimed again, his node has him resynced.
    let deadline = Instant::now() + SETTLE;
    let (mut resynced, mut heard) = (false, false);
    let mut n = 0;
    while !(resynced && heard) {
        assert!(
            Instant::now() < deadline,
            "resynced {resynced}, heard {heard}"
        );
        n += 1;
        ada.send(json!({"type":"broadcast","room":"hall","data":n}))
            .await;
        let until = tokio::time::Instant::now() + Duration::from_millis(200);
        while let Ok(frame) = tokio::time::timeout_at(until, bob.recv()).await {
            match frame["type"].as_str() {
                Some("room_joined") => resynced = true,
                Some("message") => {
                    assert_ne!(frame["data"], "while down");
                    heard |= frame["data"].is_u64();
                }
                _ => {}
            }
        }
    }
    assert!(two.metric("parlor_cluster_resyncs_total").await >= 1.0);
}

/// Pairs `first` and `second` (in that order) in a quick match of
/// `game`; returns the first's `game_start`.
async fn quick_match(first: &mut Client, second: &mut Client, game: &str) -> Value {
    first.ask(json!({"type":"find_game","game":game})).await;
    second.ask(json!({"type":"find_game","game":game})).await;
    let start = first.recv_type("game_start").await;
    second.recv_type("game_start").await;
    start
}

/// Plays tic-tac-toe moves `cells` alternately, `x` first, each move seen
/// by both players; returns the last `moved`.
async fn play_cells(x: &mut Client, o: &mut Client, game: &Value, cells: &[u8]) -> Value {
    let mut last = Value::Null;
    for (n, cell) in cells.iter().enumerate() {
        let (mover, other) = if n % 2 == 0 {
            (&mut *x, &mut *o)
        } else {
            (&mut *o, &mut *x)
        };
        let moved = mover
            .ask(json!({"type":"move","game_id":game,"cell":cell}))
            .await;
        assert_eq!(moved["type"], "moved", "move {n}: {moved}");
        assert_eq!(other.recv_type("moved").await["move"], moved["move"]);
        last = moved;
    }
    last
}

#[tokio::test]
async fn a_quick_match_pairs_players_on_two_nodes_who_play_it_to_the_end() {
    let (_redis, one, two) = two_nodes(|_| {}).await;
    let (mut ada, _) = one.connect().await;
    let (mut bob, _) = two.connect().await;
    let queued = ada
        .ask(json!({"type":"find_game","game":"tictactoe","id":1}))
        .await;
    assert_eq!(queued, json!({"type":"queued","game":"tictactoe","id":1}));
    assert_eq!(
        bob.ask(json!({"type":"find_game","game":"tictactoe"}))
            .await["type"],
        "queued"
    );
    let x_start = ada.recv_type("game_start").await;
    let o_start = bob.recv_type("game_start").await;
    assert_eq!(
        (&x_start["you"], &o_start["you"]),
        (&json!("X"), &json!("O"))
    );
    assert_eq!(x_start["game_id"], o_start["game_id"]);
    let game = x_start["game_id"].clone();
    // Listed on every node.
    for node in [&one, &two] {
        let games = node.get_json("/api/games").await;
        assert_eq!(games.as_array().map(Vec::len), Some(1), "{games}");
        assert_eq!(games[0]["game_id"], game);
    }
    // A spectator on a third connection, on the node that does not run it.
    let (mut cleo, _) = one.connect().await;
    let watched = cleo
        .ask(json!({"type":"watch_game","watch_key":x_start["watch_key"]}))
        .await;
    assert_eq!(
        (&watched["type"], &watched["game_id"]),
        (&json!("game_state"), &game),
        "{watched}"
    );
    let (mut dan, _) = two.connect().await;
    let watched = dan
        .ask(json!({"type":"watch_game","watch_key":x_start["watch_key"]}))
        .await;
    assert_eq!(watched["type"], "game_state", "{watched}");
    // A move out of turn is refused wherever the player is.
    let refused = bob
        .ask(json!({"type":"move","game_id":game,"cell":4}))
        .await;
    assert_eq!(refused["code"], "not_your_turn", "{refused}");
    play_cells(&mut ada, &mut bob, &game, &[0, 3, 1, 4, 2]).await;
    for client in [&mut ada, &mut bob] {
        let over = client.recv_type("game_over").await;
        assert_eq!(
            (&over["result"], &over["winner"]),
            (&json!("win"), &json!("X"))
        );
    }
    for spectator in [&mut cleo, &mut dan] {
        for cell in [0, 3, 1, 4, 2] {
            assert_eq!(spectator.recv_type("moved").await["move"]["cell"], cell);
        }
        let over = spectator.recv_type("game_over").await;
        assert_eq!(
            (&over["result"], &over["winner"]),
            (&json!("win"), &json!("X"))
        );
    }
    // Finished: listed nowhere, and a move is answered, not lost.
    for node in [&one, &two] {
        assert_eq!(node.get_json("/api/games").await, json!([]));
    }
    let late = bob
        .ask(json!({"type":"move","game_id":game,"cell":8}))
        .await;
    assert_eq!(late["type"], "error", "{late}");
    // Both may look for a new game at once: the ended game no longer counts.
    assert_eq!(
        bob.ask(json!({"type":"find_game","game":"connect4"})).await["type"],
        "queued"
    );
}

#[tokio::test]
async fn the_cluster_queue_pairs_each_player_once_and_leaves_nobody_waiting() {
    let redis = Redis::start();
    let nodes = [
        node(&redis, "one"),
        node(&redis, "two"),
        node(&redis, "three"),
    ];
    for node in &nodes {
        until_nodes(node, 3).await;
    }
    const PLAYERS: usize = 12;
    let mut clients = Vec::new();
    for n in 0..PLAYERS {
        let (client, _) = nodes[n % 3].connect().await;
        clients.push(client);
    }
    // All at once, from three nodes.
    for client in &mut clients {
        client
            .send(json!({"type":"find_game","game":"connect4"}))
            .await;
    }
    let mut games: std::collections::HashMap<String, Vec<String>> = Default::default();
    for client in &mut clients {
        assert_eq!(client.recv_type("queued").await["game"], "connect4");
        let start = client.recv_type("game_start").await;
        games
            .entry(start["game_id"].as_str().unwrap().to_string())
            .or_default()
            .push(start["you"].as_str().unwrap().to_string());
    }
    assert_eq!(games.len(), PLAYERS / 2, "{games:?}");
    for seats in games.values() {
        let mut seats = seats.clone();
        seats.sort();
        assert_eq!(seats, ["red", "yellow"]);
    }
}

#[tokio::test]
async fn a_private_game_is_joined_and_watched_from_another_node() {
    let (_redis, one, two) = two_nodes(|_| {}).await;
    let (mut host, _) = one.connect().await;
    let created = host
        .ask(json!({"type":"create_game","game":"tictactoe","id":"c"}))
        .await;
    assert_eq!(created["type"], "game_created", "{created}");
    let (mut watcher, _) = two.connect().await;
    let waiting = watcher
        .ask(json!({"type":"watch_game","watch_key":created["watch_key"],"id":"w"}))
        .await;
    assert_eq!(
        (&waiting["status"], &waiting["id"]),
        (&json!("waiting"), &json!("w")),
        "{waiting}"
    );
    assert_eq!(
        two.get_json("/api/games").await,
        json!([]),
        "private games are never listed"
    );
    let (mut guest, _) = two.connect().await;
    let wrong = guest
        .ask(json!({"type":"join_game","join_key":created["watch_key"],"id":"x"}))
        .await;
    assert_eq!(
        (&wrong["code"], &wrong["id"]),
        (&json!("not_found"), &json!("x"))
    );
    guest
        .send(json!({"type":"join_game","join_key":created["join_key"]}))
        .await;
    let o_start = guest.recv_type("game_start").await;
    let x_start = host.recv_type("game_start").await;
    assert_eq!(
        (&x_start["you"], &o_start["you"]),
        (&json!("X"), &json!("O"))
    );
    watcher.recv_type("game_start").await;
    // The key is spent: a third player on either node finds nothing.
    for node in [&one, &two] {
        let (mut late, _) = node.connect().await;
        let answer = late
            .ask(json!({"type":"join_game","join_key":created["join_key"]}))
            .await;
        assert_eq!(answer["code"], "not_found", "{answer}");
    }
    let game = x_start["game_id"].clone();
    let moved = play_cells(&mut host, &mut guest, &game, &[4, 0]).await;
    assert_eq!(moved["board"][0], "O");
    let seen = watcher.recv_type("moved").await;
    assert_eq!(seen["move"]["cell"], 4);
    assert_eq!(watcher.recv_type("moved").await["move"]["cell"], 0);
    // The guest resigns from its node; all three hear how it ended.
    guest.send(json!({"type":"resign","game_id":game})).await;
    for client in [&mut host, &mut guest, &mut watcher] {
        let over = client.recv_type("game_over").await;
        assert_eq!(
            (&over["result"], &over["winner"]),
            (&json!("forfeit"), &json!("X"))
        );
    }
}

#[tokio::test]
async fn a_private_games_keys_work_on_another_node_as_soon_as_it_is_created() {
    let (_redis, one, two) = two_nodes(|_| {}).await;
    let (mut host, _) = one.connect().await;
    let (mut watcher, _) = two.connect().await;
    let (mut guest, _) = two.connect().await;
    for round in 0..10 {
        let created = host
            .ask(json!({"type":"create_game","game":"tictactoe"}))
            .await;
        assert_eq!(created["type"], "game_created", "{created}");
        // At once, from the other node, as a friend handed the keys may.
        watcher
            .send(json!({"type":"watch_game","watch_key":created["watch_key"]}))
            .await;
        guest
            .send(json!({"type":"join_game","join_key":created["join_key"]}))
            .await;
        let watching = watcher.recv().await;
        assert_eq!(watching["type"], "game_state", "round {round}: {watching}");
        let joined = guest.recv().await;
        assert_eq!(joined["type"], "game_start", "round {round}: {joined}");
        // Done with it: the next round's frames come first.
        let game = &created["game_id"];
        skip_to(&mut host, "game_start").await;
        host.send(json!({"type":"resign","game_id":game})).await;
        for client in [&mut host, &mut guest, &mut watcher] {
            skip_to(client, "game_over").await;
        }
    }
}

/// The next frame of type `kind`, skipping any other.
async fn skip_to(client: &mut Client, kind: &str) -> Value {
    loop {
        let frame = client.recv().await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

#[tokio::test]
async fn when_a_games_node_is_killed_the_game_is_rebuilt_by_a_players_node_and_played_on() {
    let redis = Redis::start();
    let doomed = node_process(&redis, "doomed");
    let two = node(&redis, "two");
    until_nodes(&two, 2).await;
    // Ada waits on the doomed node, which then runs the game.
    let mut ada = Client::open(&format!("ws://{}/ws", doomed.addr)).await;
    let ada_welcome = ada.recv_type("welcome").await;
    assert_eq!(
        ada.ask(json!({"type":"find_game","game":"tictactoe"}))
            .await["type"],
        "queued"
    );
    let (mut bob, _) = two.connect().await;
    bob.ask(json!({"type":"find_game","game":"tictactoe"}))
        .await;
    let start = ada.recv_type("game_start").await;
    bob.recv_type("game_start").await;
    let game = start["game_id"].clone();
    play_cells(&mut ada, &mut bob, &game, &[0, 4]).await;
    drop(doomed);
    // Bob's node rebuilds the game from its seed and moves, and resyncs him.
    let state = skip_to(&mut bob, "game_state").await;
    assert_eq!(state["game_id"], game);
    assert_eq!(state["board"][0], "X", "{state}");
    assert_eq!(state["board"][4], "O", "{state}");
    assert_eq!(state["turn"], "X");
    // Ada resumes on the survivor and gets her seat back.
    let (mut ada, back) = resume_on(&two, &ada_welcome).await;
    assert_eq!(back["session"], ada_welcome["session"]);
    let resumed = ada.recv_type("resumed").await;
    assert_eq!(resumed["games"], json!([game]), "{resumed}");
    let state = skip_to(&mut ada, "game_state").await;
    assert_eq!(
        (&state["game_id"], &state["you"]),
        (&game, &json!("X")),
        "{state}"
    );
    assert_eq!(state["board"][4], "O");
    let back = skip_to(&mut bob, "opponent_back").await;
    assert_eq!(back["seat"], "X");
    // And they play it to the end.
    play_cells(&mut ada, &mut bob, &game, &[1, 8, 2]).await;
    for client in [&mut ada, &mut bob] {
        let over = skip_to(client, "game_over").await;
        assert_eq!(
            (&over["result"], &over["winner"]),
            (&json!("win"), &json!("X"))
        );
    }
    // Its record is the cluster's, with every move.
    let record = two
        .get_json(&format!("/api/history/{}", game.as_str().unwrap()))
        .await;
    assert_eq!(
        record["moves"].as_array().map(Vec::len),
        Some(5),
        "{record}"
    );
    let history = two.get_json("/api/history?game=tictactoe").await;
    assert_eq!(history[0]["game_id"], game, "{history}");
    assert_eq!(history[0].get("moves"), None, "listings carry no moves");
}

#[tokio::test]
async fn a_player_resuming_on_another_node_keeps_playing_its_game() {
    let (_redis, one, two) = two_nodes(|_| {}).await;
    let (mut ada, ada_welcome) = one.connect().await;
    let (mut bob, _) = one.connect().await;
    let start = quick_match(&mut ada, &mut bob, "tictactoe").await;
    let game = start["game_id"].clone();
    play_cells(&mut ada, &mut bob, &game, &[4]).await;
    // Ada's connection is taken over by a resume on the other node.
    let (mut moved, back) = resume_on(&two, &ada_welcome).await;
    assert_eq!(back["session"], ada_welcome["session"]);
    assert_eq!(ada.ending().await, crate::support::Ending::Closed(4001));
    let state = skip_to(&mut moved, "game_state").await;
    assert_eq!(
        (&state["game_id"], &state["you"]),
        (&game, &json!("X")),
        "{state}"
    );
    assert_eq!(
        (&state["board"][4], &state["turn"]),
        (&json!("X"), &json!("O"))
    );
    // Bob saw her go and come back, seat held.
    assert_eq!(bob.recv_type("opponent_away").await["seat"], "X");
    assert_eq!(bob.recv_type("opponent_back").await["seat"], "X");
    // The game goes on, across the nodes now.
    play_cells(&mut bob, &mut moved, &game, &[0, 2, 1, 6]).await;
    for client in [&mut moved, &mut bob] {
        let over = skip_to(client, "game_over").await;
        assert_eq!(
            (&over["result"], &over["winner"]),
            (&json!("win"), &json!("X"))
        );
    }
}

#[tokio::test]
async fn a_node_stopping_hands_its_games_over_and_its_players_resume_at_once() {
    // Taken for dead only after a long silence: the game moves because it
    // is handed over, and its player resumes because its node left.
    let (_redis, mut leaving, two) = slow_to_give_up().await;
    let mut ada = Client::open(&format!("ws://{}/ws", leaving.addr)).await;
    let ada_welcome = ada.recv_type("welcome").await;
    ada.ask(json!({"type":"find_game","game":"connect4"})).await;
    let (mut bob, _) = two.connect().await;
    bob.ask(json!({"type":"find_game","game":"connect4"})).await;
    let start = ada.recv_type("game_start").await;
    bob.recv_type("game_start").await;
    let game = start["game_id"].clone();
    for (mover, column) in [(0, 3), (1, 3), (0, 4)] {
        let (mover, other) = if mover == 0 {
            (&mut ada, &mut bob)
        } else {
            (&mut bob, &mut ada)
        };
        let moved = mover
            .ask(json!({"type":"move","game_id":game,"column":column}))
            .await;
        assert_eq!(moved["type"], "moved", "{moved}");
        other.recv_type("moved").await;
    }
    let stopped_at = Instant::now();
    leaving.terminate();
    // Bob's node takes the game over at once and resyncs him.
    let state = skip_to(&mut bob, "game_state").await;
    assert_eq!(
        (&state["game_id"], &state["turn"]),
        (&game, &json!("yellow")),
        "{state}"
    );
    assert_eq!(ada.ending().await, crate::support::Ending::Closed(1001));
    // Ada resumes on the other node once hers has gone, long before it
    // would be taken for dead.
    let status = leaving.child.wait().expect("the node exits");
    assert!(status.success(), "{status}");
    let token = ada_welcome["resume"].as_str().unwrap();
    let (mut ada, back) = loop {
        match Client::try_open(&two.ws_url(&format!("resume={token}")), &[]).await {
            Ok(mut client) => {
                let welcome = client.recv_type("welcome").await;
                break (client, welcome);
            }
            Err(status) => {
                assert_eq!(status, 503, "only 'try again'");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(back["session"], ada_welcome["session"]);
    let state = skip_to(&mut ada, "game_state").await;
    assert_eq!(
        (&state["you"], &state["turn"]),
        (&json!("red"), &json!("yellow"))
    );
    assert!(
        stopped_at.elapsed() < Duration::from_secs(10),
        "handed over and resumed, not timed out: {:?}",
        stopped_at.elapsed()
    );
    // And the game goes on.
    assert_eq!(skip_to(&mut bob, "opponent_back").await["seat"], "red");
    let moved = bob
        .ask(json!({"type":"move","game_id":game,"column":0}))
        .await;
    assert_eq!(moved["type"], "moved", "{moved}");
    assert_eq!(skip_to(&mut ada, "moved").await["move"], moved["move"]);
}

#[tokio::test]
async fn a_player_queued_on_a_dead_node_is_never_paired() {
    let redis = Redis::start();
    let doomed = node_process(&redis, "doomed");
    let two = node(&redis, "two");
    until_nodes(&two, 2).await;
    let mut ghost = Client::open(&format!("ws://{}/ws", doomed.addr)).await;
    ghost.recv_type("welcome").await;
    assert_eq!(
        ghost
            .ask(json!({"type":"find_game","game":"tictactoe"}))
            .await["type"],
        "queued"
    );
    drop(doomed);
    // Once its node is taken for dead, the queue skips it: the next two
    // players are paired with each other.
    until_nodes(&two, 1).await;
    let (mut ada, _) = two.connect().await;
    let (mut bob, _) = two.connect().await;
    ada.ask(json!({"type":"find_game","game":"tictactoe"}))
        .await;
    bob.ask(json!({"type":"find_game","game":"tictactoe"}))
        .await;
    let x = ada.recv_type("game_start").await;
    let o = bob.recv_type("game_start").await;
    assert_eq!(x["game_id"], o["game_id"]);
    assert_eq!((&x["you"], &o["you"]), (&json!("X"), &json!("O")));
}

#[tokio::test]
async fn with_redis_down_find_game_is_unavailable_and_nobody_stays_queued() {
    let (mut redis, one, _two) = two_nodes(|_| {}).await;
    let (mut ada, _) = one.connect().await;
    redis.kill();
    let started = Instant::now();
    let refused = ada
        .ask(json!({"type":"find_game","game":"connect4","id":"f"}))
        .await;
    assert_eq!(
        (&refused["code"], &refused["id"]),
        (&json!("unavailable"), &json!("f")),
        "{refused}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within cluster.request_timeout_ms: {:?}",
        started.elapsed()
    );
    // Not left queued: once Redis is back, the same player may look again.
    redis.restart();
    until_nodes(&one, 2).await;
    let queued = ada
        .ask(json!({"type":"find_game","game":"connect4","id":"g"}))
        .await;
    assert_eq!(queued["type"], "queued", "{queued}");
}

#[tokio::test]
async fn a_finder_whose_match_dies_with_its_node_before_the_game_starts_looks_again() {
    let redis = Redis::start();
    let doomed = node_process(&redis, "doomed");
    let two = node(&redis, "two");
    until_nodes(&two, 2).await;
    let mut waiting = Client::open(&format!("ws://{}/ws", doomed.addr)).await;
    waiting.recv_type("welcome").await;
    waiting
        .ask(json!({"type":"find_game","game":"tictactoe"}))
        .await;
    // The waiting player's node stops answering (still taken for alive a
    // while): the match made with it never starts, and then it dies.
    signal(doomed.child.id(), "-STOP");
    let (mut finder, _) = two.connect().await;
    assert_eq!(
        finder
            .ask(json!({"type":"find_game","game":"tictactoe"}))
            .await["type"],
        "queued"
    );
    signal(doomed.child.id(), "-KILL");
    until_nodes(&two, 1).await;
    // The finder is back in the queue: the next player is paired with it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut next, _) = two.connect().await;
    next.ask(json!({"type":"find_game","game":"tictactoe"}))
        .await;
    let x = finder.recv_type("game_start").await;
    let o = next.recv_type("game_start").await;
    assert_eq!(x["game_id"], o["game_id"]);
    assert_eq!((&x["you"], &o["you"]), (&json!("X"), &json!("O")));
}

#[tokio::test]
async fn resuming_on_another_node_with_the_count_brings_the_missed_frames_along() {
    let (_redis, one, two) = two_nodes(|_| {}).await;
    let (mut ada, _) = one.connect().await;
    let (mut bob, bob_welcome) = two.connect().await;
    // "hall" runs on node one, "den" on node two; both have both.
    join(&mut ada, "hall").await;
    join(&mut bob, "den").await;
    join(&mut bob, "hall").await;
    join(&mut ada, "den").await;
    // Bob reads all he was sent (Ada's arrival in his room, and the state
    // asked of him, left unanswered).
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(bob.recv().await["type"].as_str().unwrap().to_string());
    }
    seen.sort();
    assert_eq!(seen, ["member_joined", "state_request"]);
    // Bob's connection drops without a Close; Ada talks meanwhile.
    let counted = bob.counted;
    drop(bob);
    for _ in 0..2 {
        assert_eq!(
            next_of(&mut ada, "member_away").await["session"],
            bob_welcome["session"]
        );
    }
    for (room, n) in [("hall", 0), ("den", 1), ("hall", 2), ("den", 3)] {
        ada.send(json!({"type":"broadcast","room":room,"data":n}))
            .await;
    }
    ada.ask(json!({"type":"echo","data":"sent"})).await;
    // He comes back on the other node, saying what he counted.
    let token = bob_welcome["resume"].as_str().unwrap();
    let (mut back, again) = one
        .connect_with(&format!("resume={token}&received={counted}"))
        .await;
    assert_eq!(again["session"], bob_welcome["session"]);
    back.counted = counted;
    let resumed = back.recv_type("resumed").await;
    assert_eq!(
        (&resumed["recovered"], resumed["last"].as_u64()),
        (&json!(true), Some(counted + 4)),
        "{resumed}"
    );
    let mut rooms: Vec<String> = serde_json::from_value(resumed["rooms"].clone()).unwrap();
    rooms.sort();
    assert_eq!(rooms, ["den", "hall"]);
    // The missed frames, each room's in its order.
    let mut by_room: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for _ in 0..4 {
        let message = back.recv_type("message").await;
        let room = message["room"].as_str().unwrap().to_string();
        by_room
            .entry(room)
            .or_default()
            .push(message["data"].clone());
    }
    assert_eq!(by_room["hall"], [json!(0), json!(2)]);
    assert_eq!(by_room["den"], [json!(1), json!(3)]);
    // Still a member of both rooms, on this node now: live frames follow,
    // and his messages reach Ada.
    ada.send(json!({"type":"broadcast","room":"den","data":"live"}))
        .await;
    assert_eq!(back.recv_type("message").await["data"], "live");
    back.send(json!({"type":"broadcast","room":"hall","data":"back"}))
        .await;
    let seen = loop {
        let frame = ada.recv().await;
        assert_ne!(frame["type"], "member_left", "{frame}");
        assert_ne!(frame["type"], "member_joined", "{frame}");
        if frame["type"] == "message" {
            break frame;
        }
    };
    assert_eq!(seen["data"], "back");
    assert_eq!(seen["from"], bob_welcome["session"]);
}

#[tokio::test]
async fn a_player_taken_over_on_another_node_with_the_count_plays_on_without_a_resync() {
    let (_redis, one, two) = two_nodes(|_| {}).await;
    let (mut ada, _) = one.connect().await;
    let (mut bob, bob_welcome) = one.connect().await;
    let start = quick_match(&mut ada, &mut bob, "tictactoe").await;
    let game = start["game_id"].clone();
    play_cells(&mut ada, &mut bob, &game, &[4]).await;
    // Ada moves while Bob's new connection, on the other node, takes over.
    let counted = bob.counted;
    let token = bob_welcome["resume"].as_str().unwrap();
    let moved = ada
        .ask(json!({"type":"move","game_id":game,"cell":0}))
        .await;
    assert_eq!(moved["code"], "not_your_turn", "{moved}");
    let (mut back, again) = two
        .connect_with(&format!("resume={token}&received={counted}"))
        .await;
    assert_eq!(again["session"], bob_welcome["session"]);
    assert_eq!(bob.ending().await, crate::support::Ending::Closed(4001));
    let resumed = back.recv_type("resumed").await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    assert_eq!(resumed["games"], json!([game]));
    // His turn, from the other node now; Ada sees it, and he sees hers.
    let answer = back
        .ask(json!({"type":"move","game_id":game,"cell":0}))
        .await;
    assert_eq!(
        answer["type"], "moved",
        "no resync, the move at once: {answer}"
    );
    assert_eq!(answer["move"]["cell"], 0, "{answer}");
    assert_eq!(ada.recv_type("moved").await["move"]["cell"], 0);
    ada.send(json!({"type":"move","game_id":game,"cell":8}))
        .await;
    let seen = skip_to(&mut back, "moved").await;
    assert_eq!(seen["move"]["cell"], 8, "{seen}");
}

#[tokio::test]
async fn a_member_taken_over_on_another_node_with_the_count_talks_as_soon_as_it_is_resumed() {
    let (_redis, one, two) = two_nodes(|_| {}).await;
    let (mut ada, _) = one.connect().await;
    let (mut bob, bob_welcome) = one.connect().await;
    join(&mut ada, "hall").await;
    join(&mut bob, "hall").await;
    let token = bob_welcome["resume"].as_str().unwrap();
    let (mut back, _) = two
        .connect_with(&format!("resume={token}&received={}", bob.counted))
        .await;
    assert_eq!(bob.ending().await, crate::support::Ending::Closed(4001));
    let resumed = back.recv_type("resumed").await;
    assert_eq!(
        (&resumed["recovered"], &resumed["rooms"]),
        (&json!(true), &json!(["hall"])),
        "{resumed}"
    );
    // At once, as a client that read `resumed` may: the room has it.
    back.send(json!({"type":"broadcast","room":"hall","data":"at once"}))
        .await;
    let answer = back.ask(json!({"type":"echo","data":"after"})).await;
    assert_eq!(answer["type"], "echo", "no error first: {answer}");
    let seen = next_of(&mut ada, "message").await;
    assert_eq!(
        (&seen["data"], &seen["from"]),
        (&json!("at once"), &bob_welcome["session"]),
        "{seen}"
    );
}

#[tokio::test]
async fn a_handed_over_session_whose_frames_are_gone_resyncs_and_stays_a_member() {
    let (_redis, one, two) = two_nodes(|config| {
        config.limits.replay_frames = 2;
    })
    .await;
    let (mut ada, _) = one.connect().await;
    let (mut bob, bob_welcome) = two.connect().await;
    join(&mut ada, "hall").await;
    join(&mut bob, "hall").await;
    let counted = bob.counted;
    drop(bob);
    next_of(&mut ada, "member_away").await;
    // More than the two frames the old node keeps.
    for n in 0..5 {
        ada.send(json!({"type":"broadcast","room":"hall","data":n}))
            .await;
    }
    ada.ask(json!({"type":"echo","data":"sent"})).await;
    let token = bob_welcome["resume"].as_str().unwrap();
    let (mut back, _) = one
        .connect_with(&format!("resume={token}&received={counted}"))
        .await;
    let resumed = back.recv_type("resumed").await;
    assert_eq!(resumed["recovered"], false, "{resumed}");
    assert_eq!(resumed["rooms"], json!(["hall"]));
    let (joined, _) = (next_of(&mut back, "room_joined").await, ());
    assert_eq!(joined["members"].as_array().unwrap().len(), 2, "{joined}");
    next_of(&mut back, "room_state").await;
    // Never left: Ada sees him back, not leaving and joining.
    let frame = loop {
        let frame = ada.recv().await;
        if frame["type"] != "echo" {
            break frame;
        }
    };
    assert_eq!(frame["type"], "member_back", "{frame}");
    back.send(json!({"type":"broadcast","room":"hall","data":"back"}))
        .await;
    assert_eq!(next_of(&mut ada, "message").await["data"], "back");
}

#[tokio::test]
async fn a_bot_game_is_watched_and_listed_from_another_node_and_rebuilt_with_its_bot() {
    let redis = Redis::start();
    let doomed = node_process(&redis, "doomed");
    let two = node(&redis, "two");
    until_nodes(&two, 2).await;
    let mut ada = Client::open(&format!("ws://{}/ws", doomed.addr)).await;
    let ada_welcome = ada.recv_type("welcome").await;
    let start = ada
        .ask(json!({"type":"play_bot","game":"connect4","level":"easy"}))
        .await;
    assert_eq!(start["type"], "game_start", "{start}");
    let game = start["game_id"].clone();
    // Watched and listed from the other node, the bot marked as one.
    let (mut watcher, _) = two.connect().await;
    let state = watcher
        .ask(json!({"type":"watch_game","watch_key":start["watch_key"]}))
        .await;
    assert_eq!(state["players"][1]["bot"], true, "{state}");
    let listed = two.get_json("/api/games").await;
    assert_eq!(
        (&listed[0]["game_id"], &listed[0]["players"][1]["bot"]),
        (&game, &json!(true)),
        "{listed}"
    );
    let moved = ada
        .ask(json!({"type":"move","game_id":game,"column":0}))
        .await;
    assert_eq!(moved["type"], "moved");
    assert_eq!(skip_to(&mut ada, "moved").await["seat"], "yellow");
    assert_eq!(skip_to(&mut watcher, "moved").await["seat"], "red");
    assert_eq!(skip_to(&mut watcher, "moved").await["seat"], "yellow");
    drop(doomed);
    until_nodes(&two, 1).await;
    // Ada resumes on the survivor, which rebuilds the game with its bot.
    let (mut ada, _) = resume_on(&two, &ada_welcome).await;
    let resumed = ada.recv_type("resumed").await;
    assert_eq!(resumed["games"], json!([game]), "{resumed}");
    let state = skip_to(&mut ada, "game_state").await;
    assert_eq!(
        (&state["turn"], &state["players"][1]["bot"]),
        (&json!("red"), &json!(true)),
        "{state}"
    );
    assert_eq!(state["moves"].as_array().map(Vec::len), Some(2));
    let moved = ada
        .ask(json!({"type":"move","game_id":game,"column":0}))
        .await;
    assert_eq!(moved["type"], "moved", "{moved}");
    let answer = skip_to(&mut ada, "moved").await;
    assert_eq!(
        (&answer["seat"], &answer["game_id"]),
        (&json!("yellow"), &game)
    );
}

#[tokio::test]
async fn a_hand_over_finished_after_the_new_node_stopped_waiting_is_resumed_on_retry() {
    let redis = Redis::start();
    // The old node as a process, to be paused; nobody takes it for dead.
    let old = node_process_timed_out_after(&redis, "old", "30000");
    let two = node_with(&redis, "two", |config| {
        config.cluster.node_timeout_ms = std::num::NonZero::new(30_000).unwrap();
        config.cluster.request_timeout_ms = std::num::NonZero::new(500).unwrap();
    });
    until_nodes(&two, 2).await;
    let (mut bob, _) = two.connect().await;
    join(&mut bob, "porch").await;
    let mut ada = Client::open(&format!("ws://{}/ws", old.addr)).await;
    let welcome = ada.recv_type("welcome").await;
    join(&mut ada, "porch").await;
    next_of(&mut bob, "member_joined").await;
    let token = welcome["resume"].as_str().unwrap();
    let resume = format!("resume={token}&received={}", ada.counted);
    // The old node is too slow to hand her over in time: the new node
    // answers 503, and stops waiting.
    signal(old.child.id(), "-STOP");
    let refused = Client::try_open(&two.ws_url(&resume), &[]).await.err();
    assert_eq!(refused, Some(503));
    // Awake, the old node finishes the hand-over nobody waits for any more.
    signal(old.child.id(), "-CONT");
    assert_eq!(ada.ending().await, crate::support::Ending::Closed(4001));
    // The client's retry finds her session: the same one, in her room.
    let (mut again, back) = two.connect_with(&resume).await;
    assert_eq!(back["session"], welcome["session"], "the same session");
    let resumed = again.recv_type("resumed").await;
    assert_eq!(resumed["rooms"], json!(["porch"]), "{resumed}");
    let joined = next_of(&mut again, "room_joined").await;
    assert_eq!(joined["members"].as_array().unwrap().len(), 2, "{joined}");
    next_of(&mut again, "room_state").await;
    bob.send(json!({"type":"broadcast","room":"porch","data":"still here?"}))
        .await;
    assert_eq!(next_of(&mut again, "message").await["data"], "still here?");
}
