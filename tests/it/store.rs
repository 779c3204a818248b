//! The embedded store through the real server process: finished games kept
//! and replayable, history queries, bad storage at start and at run time.

use std::time::Duration;

use parlor::game::{connect4::Connect4, match3::Match3, tictactoe::TicTacToe, Rules};
use serde_json::{json, Value};

use crate::support::{binary, http_get, spawn_binary, Client, ServerProcess};

/// A server process keeping its data in `path`.
pub(crate) fn server_on(path: &std::path::Path, extra: &[(&str, &str)]) -> ServerProcess {
    let mut env = vec![("PARLOR_STORE__PATH", path.to_str().unwrap())];
    env.extend_from_slice(extra);
    spawn_binary(&[], &env)
}

pub(crate) async fn connect(server: &ServerProcess) -> Client {
    let mut client = Client::open(&format!("ws://{}/ws", server.addr)).await;
    client.recv_type("welcome").await;
    client
}

async fn get_json(server: &ServerProcess, path: &str) -> (u16, Value) {
    let (status, body) = http_get(server.addr, path).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Plays a quick match of `game` with `moves` (move fields, alternating
/// seats) and returns its id once both saw it end.
pub(crate) async fn play_game(server: &ServerProcess, game: &str, moves: &[Value]) -> String {
    let mut first = connect(server).await;
    let mut second = connect(server).await;
    first.ask(json!({"type":"find_game","game":game})).await;
    second.ask(json!({"type":"find_game","game":game})).await;
    let start = first.recv_type("game_start").await;
    second.recv_type("game_start").await;
    let id = start["game_id"].as_str().unwrap().to_string();
    for (n, fields) in moves.iter().enumerate() {
        let (mover, other) = if n % 2 == 0 {
            (&mut first, &mut second)
        } else {
            (&mut second, &mut first)
        };
        let mut request = json!({"type":"move","game_id":id});
        request
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let moved = mover.ask(request).await;
        assert_eq!(moved["type"], "moved", "{moved}");
        // The opponent sees it too before moving next.
        other.recv_type("moved").await;
    }
    for player in [&mut first, &mut second] {
        while player.recv().await["type"] != "game_over" {}
    }
    id
}

/// Tic-tac-toe moves in which X wins along the top row.
pub(crate) fn x_wins() -> Vec<Value> {
    [0, 3, 1, 4, 2]
        .iter()
        .map(|cell| json!({"cell": cell}))
        .collect()
}

/// Replays a stored game through its rules; returns (result, winner seat).
fn replay<R: Rules>(record: &Value) -> (Value, Value) {
    let mut rules = R::new(record["seed"].as_u64().unwrap());
    for played in record["moves"].as_array().unwrap() {
        let mv: R::Move = serde_json::from_value(played.clone()).unwrap();
        let seat = rules
            .turn()
            .expect("a recorded move was played while the game went on");
        rules.play(seat, &mv).expect("a recorded move replays");
    }
    let ending = rules.ending().expect("the replay reaches the end");
    let winner = ending
        .winner
        .map_or(Value::Null, |seat| json!(R::SEATS[seat]));
    (serde_json::to_value(ending.result).unwrap(), winner)
}

async fn wait_for_history(server: &ServerProcess, query: &str, count: usize) -> Value {
    for _ in 0..100 {
        let (_, listed) = get_json(server, &format!("/api/history{query}")).await;
        if listed.as_array().is_some_and(|games| games.len() >= count) {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("history never listed {count} games for {query:?}");
}

#[tokio::test]
async fn finished_games_are_kept_listed_and_replayable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("parlor.db");
    let server = server_on(&path, &[]);
    let ttt = play_game(&server, "tictactoe", &x_wins()).await;
    let c4 = play_game(
        &server,
        "connect4",
        &[
            json!({"column":0}),
            json!({"column":1}),
            json!({"column":0}),
            json!({"column":1}),
            json!({"column":0}),
            json!({"column":1}),
            json!({"column":0}),
        ],
    )
    .await;
    let listed = wait_for_history(&server, "", 2).await;
    assert_eq!(listed[0]["game_id"], c4.as_str(), "newest first");
    assert_eq!(listed[1]["game_id"], ttt.as_str());
    assert!(listed[0].get("moves").is_none() && listed[0].get("seed").is_none());
    assert_eq!(listed[0]["players"].as_array().unwrap().len(), 2);
    drop(server);
    // A new process on the same file still has them.
    let server = server_on(&path, &[]);
    let (_, only_ttt) = get_json(&server, "/api/history?game=tictactoe").await;
    assert_eq!(only_ttt.as_array().unwrap().len(), 1);
    let (status, record) = get_json(&server, &format!("/api/history/{ttt}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (record["result"].as_str(), record["winner"].as_str()),
        (Some("win"), Some("X"))
    );
    assert_eq!(
        replay::<TicTacToe>(&record),
        (record["result"].clone(), record["winner"].clone())
    );
    let (_, record) = get_json(&server, &format!("/api/history/{c4}")).await;
    assert_eq!(replay::<Connect4>(&record), (json!("win"), json!("red")));
    assert!(
        record["started_at"].as_str().unwrap().ends_with('Z')
            && record["ended_at"].as_str().unwrap().ends_with('Z')
    );
}

#[tokio::test]
async fn a_match3_game_replays_from_its_seed() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(&dir.path().join("parlor.db"), &[]);
    let mut player = connect(&server).await;
    player
        .ask(json!({"type":"find_game","game":"match3"}))
        .await;
    let start = player.recv_type("game_start").await;
    let id = start["game_id"].as_str().unwrap();
    let mut board = start["board"].clone();
    let mut score = 0;
    for _ in 0..3 {
        let Some((from, to)) = crate::games::find_swap(&board) else {
            break;
        };
        let moved = player
            .ask(json!({"type":"move","game_id":id,"from":from,"to":to}))
            .await;
        board = moved["board"].clone();
        score = moved["move"]["score"].as_u64().unwrap();
    }
    let over = player.ask(json!({"type":"resign","game_id":id})).await;
    assert_eq!(over["score"], score);
    wait_for_history(&server, "?game=match3", 1).await;
    let (_, record) = get_json(&server, &format!("/api/history/{id}")).await;
    assert!(record["seed"].as_u64().unwrap() < 1 << 53);
    let mut rules = Match3::new(record["seed"].as_u64().unwrap());
    assert_eq!(
        serde_json::to_value(rules.board()).unwrap(),
        start["board"],
        "the seed deals the same board"
    );
    let moves = record["moves"].as_array().unwrap();
    assert!(!moves.is_empty(), "a replay of no moves proves nothing");
    for played in moves {
        rules
            .play(0, &serde_json::from_value(played.clone()).unwrap())
            .unwrap();
    }
    assert_eq!(serde_json::to_value(rules.board()).unwrap(), board);
    assert_eq!(rules.score(), score as u32);
}

#[tokio::test]
async fn history_queries_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(&dir.path().join("parlor.db"), &[]);
    assert_eq!(get_json(&server, "/api/history").await, (200, json!([])));
    assert_eq!(
        get_json(&server, "/api/history?game=chess").await,
        (400, json!({"error":"bad_request"}))
    );
    assert_eq!(
        get_json(&server, "/api/history?limit=-3").await,
        (400, json!({"error":"bad_request"}))
    );
    assert_eq!(
        get_json(&server, "/api/history/g_unknown").await,
        (404, json!({"error":"not_found"}))
    );
    for _ in 0..3 {
        play_game(&server, "tictactoe", &x_wins()).await;
    }
    wait_for_history(&server, "", 3).await;
    let (_, two) = get_json(&server, "/api/history?limit=2").await;
    assert_eq!(two.as_array().unwrap().len(), 2);
}

#[test]
fn an_unusable_store_path_stops_start_up() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let under_a_file = file.path().join("parlor.db");
    let output = binary(
        &[],
        &[("PARLOR_STORE__PATH", under_a_file.to_str().unwrap())],
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("store.path"), "{stderr}");
}

#[test]
fn a_file_that_is_not_a_database_stops_start_up() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "just some notes, not a database at all\n".repeat(200),
    )
    .unwrap();
    let output = binary(
        &[],
        &[("PARLOR_STORE__PATH", file.path().to_str().unwrap())],
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("store.path") && stderr.contains("not a database"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_locked_database_is_retried_while_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parlor.db");
    let server = server_on(&path, &[]);
    let errors_before = metric(&server, "parlor_store_errors_total").await;
    // Another process takes the write lock, as a backup tool might.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let first = play_game(&server, "tictactoe", &x_wins()).await;
    let mut errors = errors_before;
    for _ in 0..100 {
        errors = metric(&server, "parlor_store_errors_total").await;
        if errors > errors_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(errors > errors_before, "the failed write is counted");
    let mut client = connect(&server).await;
    assert_eq!(
        client
            .ask(json!({"type":"echo","data":"still serving"}))
            .await["data"],
        "still serving"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    // The next write tries the failed one again.
    play_game(&server, "tictactoe", &x_wins()).await;
    let listed = wait_for_history(&server, "", 2).await;
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|game| game["game_id"] == first.as_str()));
}

pub(crate) async fn metric(server: &ServerProcess, series: &str) -> f64 {
    crate::support::metric_value(&http_get(server.addr, "/metrics").await.1, series)
}

/// Joins `room` (alone) and returns the `room_state` data.
pub(crate) async fn join_alone(client: &mut Client, room: &str) -> Value {
    assert_eq!(
        client.ask(json!({"type":"join_room","room":room})).await["type"],
        "room_joined"
    );
    client.recv_type("room_state").await["data"].clone()
}

pub(crate) async fn wait_for_metric(server: &ServerProcess, series: &str, at_least: f64) -> f64 {
    let mut value = 0.0;
    for _ in 0..100 {
        value = metric(server, series).await;
        if value >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    value
}

pub(crate) const SNAPSHOT_WRITES: &str = "parlor_store_writes_total{what=\"snapshot\"}";

#[tokio::test]
async fn a_room_snapshot_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parlor.db");
    let server = server_on(&path, &[("PARLOR_STORE__SAVE_DEBOUNCE_MS", "50")]);
    let mut ada = connect(&server).await;
    join_alone(&mut ada, "poetry").await;
    ada.send(json!({"type":"state","room":"poetry","data":{"words":["moon","tide"]}}))
        .await;
    assert_eq!(wait_for_metric(&server, SNAPSHOT_WRITES, 1.0).await, 1.0);
    server.terminate();
    drop(server);
    let server = server_on(&path, &[]);
    let mut bob = connect(&server).await;
    assert_eq!(
        join_alone(&mut bob, "poetry").await,
        json!({"words":["moon","tide"]})
    );
}

#[tokio::test]
async fn transient_and_unchanged_states_are_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(
        &dir.path().join("parlor.db"),
        &[("PARLOR_STORE__SAVE_DEBOUNCE_MS", "50")],
    );
    let mut ada = connect(&server).await;
    join_alone(&mut ada, "sketch").await;
    ada.send(json!({"type":"state","room":"sketch","data":"drawing"}))
        .await;
    assert_eq!(wait_for_metric(&server, SNAPSHOT_WRITES, 1.0).await, 1.0);
    for action in ["cursor", "moving", "freeze"] {
        ada.send(json!({"type":"state","room":"sketch","data":"wiggle","action":action}))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    ada.send(json!({"type":"state","room":"sketch","data":"drawing","action":"redraw"}))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // An echo answered means every frame before it was handled.
    ada.ask(json!({"type":"echo"})).await;
    assert_eq!(
        metric(&server, SNAPSHOT_WRITES).await,
        1.0,
        "neither transient nor identical states are written"
    );
    ada.send(json!({"type":"state","room":"sketch","data":"drawing 2"}))
        .await;
    assert_eq!(wait_for_metric(&server, SNAPSHOT_WRITES, 2.0).await, 2.0);
}

#[tokio::test]
async fn writes_are_debounced_and_the_last_one_trails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parlor.db");
    let server = server_on(&path, &[("PARLOR_STORE__SAVE_DEBOUNCE_MS", "2000")]);
    let mut ada = connect(&server).await;
    join_alone(&mut ada, "tally").await;
    for n in 1..=20 {
        ada.send(json!({"type":"state","room":"tally","data":n}))
            .await;
    }
    assert_eq!(
        wait_for_metric(&server, SNAPSHOT_WRITES, 1.0).await,
        1.0,
        "the first write is at once"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        metric(&server, SNAPSHOT_WRITES).await,
        1.0,
        "the rest wait for the period to pass"
    );
    assert_eq!(
        wait_for_metric(&server, SNAPSHOT_WRITES, 2.0).await,
        2.0,
        "one trailing write"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(metric(&server, SNAPSHOT_WRITES).await, 2.0);
    let stored: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT data FROM snapshots WHERE room = 'tally'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(stored, "20");
}

#[tokio::test]
async fn shutdown_writes_the_pending_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parlor.db");
    let mut server = server_on(&path, &[("PARLOR_STORE__SAVE_DEBOUNCE_MS", "60000")]);
    let mut ada = connect(&server).await;
    join_alone(&mut ada, "drafts").await;
    ada.send(json!({"type":"state","room":"drafts","data":"first"}))
        .await;
    ada.send(json!({"type":"state","room":"drafts","data":"second, still pending"}))
        .await;
    ada.ask(json!({"type":"echo"})).await;
    server.terminate();
    let status = server.child.wait().unwrap();
    assert!(status.success());
    drop(server);
    let server = server_on(&path, &[]);
    let mut bob = connect(&server).await;
    assert_eq!(
        join_alone(&mut bob, "drafts").await,
        "second, still pending"
    );
}

#[tokio::test]
async fn after_kill_9_the_database_opens_with_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parlor.db");
    let mut server = server_on(&path, &[("PARLOR_STORE__SAVE_DEBOUNCE_MS", "100")]);
    let mut ada = connect(&server).await;
    join_alone(&mut ada, "ledger").await;
    ada.send(json!({"type":"state","room":"ledger","data":{"balance":42}}))
        .await;
    wait_for_metric(&server, SNAPSHOT_WRITES, 1.0).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    let check: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let server = server_on(&path, &[]);
    let mut bob = connect(&server).await;
    assert_eq!(join_alone(&mut bob, "ledger").await, json!({"balance":42}));
}

#[tokio::test]
async fn a_failed_snapshot_write_is_retried_without_further_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parlor.db");
    // Every change written at once (0): the retries still have their pace.
    let mut server = server_on(&path, &[("PARLOR_STORE__SAVE_DEBOUNCE_MS", "0")]);
    let mut ada = connect(&server).await;
    join_alone(&mut ada, "vault").await;
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    ada.send(json!({"type":"state","room":"vault","data":"kept despite the lock"}))
        .await;
    assert!(wait_for_metric(&server, "parlor_store_errors_total", 1.0).await >= 1.0);
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    // Nothing else is sent: the store's own timer retries the write.
    assert!(wait_for_metric(&server, SNAPSHOT_WRITES, 1.0).await >= 1.0);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    let server = server_on(&path, &[]);
    let mut bob = connect(&server).await;
    assert_eq!(join_alone(&mut bob, "vault").await, "kept despite the lock");
}

#[tokio::test]
async fn writes_still_failing_at_exit_are_named_and_the_exit_is_not_clean() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parlor.db");
    let server = binary(
        &[],
        &[
            ("PARLOR_STORE__PATH", path.to_str().unwrap()),
            ("PARLOR_SERVER__SHUTDOWN_TIMEOUT_MS", "500"),
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut server = crate::support::attach(server);
    let mut ada = connect(&server).await;
    join_alone(&mut ada, "doomed").await;
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    ada.send(json!({"type":"state","room":"doomed","data":1}))
        .await;
    wait_for_metric(&server, "parlor_store_errors_total", 1.0).await;
    server.terminate();
    let output = tokio::task::spawn_blocking(move || {
        let child = std::mem::replace(
            &mut server.child,
            std::process::Command::new("true").spawn().unwrap(),
        );
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    drop(blocker);
    assert!(
        !output.status.success(),
        "an exit that lost data is not clean"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("lost at exit: snapshot of room doomed"),
        "{stderr}"
    );
}

#[test]
fn a_full_disk_at_start_stops_start_up() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parlor.db");
    let mut command = binary(&[], &[("PARLOR_STORE__PATH", path.to_str().unwrap())]);
    // A file-size limit of 4 KiB stands in for a full disk: writes past it fail.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 4096,
                rlim_max: 4096,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let output = command.output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("store.path"), "{stderr}");
}
