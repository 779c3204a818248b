//! Faults on purpose, each through the real server binary: `kill -9`
//! under chat and game load, a full disk, the server stopped (SIGSTOP) for
//! longer than the heartbeat, thousands of half-open handshakes
//! (slowloris), 10,000 connects in two seconds, and a client that sends a
//! Close and never reads.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use futures_util::SinkExt;
use parlor::game::{
    connect4::{Connect4, Connect4Move},
    Rules,
};
use serde_json::{json, Value};
use tokio::{io::AsyncWriteExt, net::TcpStream, task::JoinSet, time::Instant};
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream};

use crate::{
    cluster::{next_of, signal},
    restart::{exited, start_game, Player},
    store::{
        connect, join_alone, metric, play_game, server_on, wait_for_metric, x_wins, SNAPSHOT_WRITES,
    },
    support::{
        attach, binary, http_get, spawn_binary, wait_for_sessions, Client, Ending, ServerProcess,
        PATIENCE,
    },
};

/// Chat rooms under load in the `kill -9` story, and members in each.
const ROOMS: usize = 3;
const MEMBERS: usize = 3;

/// Connect four games under load in the `kill -9` story.
const GAMES: usize = 4;

const MOVE_WRITES: &str = "parlor_store_writes_total{what=\"move\"}";
const GAME_WRITES: &str = "parlor_store_writes_total{what=\"game\"}";
const STORE_ERRORS: &str = "parlor_store_errors_total";

/// Columns for a connect four game that goes on for as long as they last
/// (up to `most`): each is legal and ends nothing.
fn endless_columns(most: usize) -> Vec<u8> {
    let mut rules = Connect4::new(0);
    let mut columns = Vec::new();
    while columns.len() < most {
        let Some(seat) = rules.turn() else { break };
        // Spread over the board, so that no line fills early.
        let first = (columns.len() * 3 % 7) as u8;
        let next = (0..7).map(|k| (first + k) % 7).find_map(|column| {
            let mut tried = rules.clone();
            let played = tried.play(seat, &Connect4Move { column }).is_ok();
            (played && tried.ending().is_none()).then_some((column, tried))
        });
        let Some((column, after)) = next else { break };
        columns.push(column);
        rules = after;
    }
    columns
}

/// A chat member under load until `stop` or until its connection fails:
/// a numbered broadcast (and, as its room's keeper, the room's state
/// `{"n": n}`) every few milliseconds, and whatever comes read meanwhile.
async fn chatter(mut client: Client, room: String, keeper: bool, stop: Arc<AtomicBool>) {
    for n in 1u64.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mut frames = vec![json!({"type":"broadcast","room":room,"data":n})];
        if keeper {
            frames.push(json!({"type":"state","room":room,"data":{"n":n}}));
        }
        for frame in frames {
            if client
                .ws
                .feed(Message::text(frame.to_string()))
                .await
                .is_err()
            {
                return;
            }
        }
        if client.ws.flush().await.is_err() {
            return;
        }
        loop {
            match client.try_recv(Duration::from_millis(10)).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// A connect four game under load until `stop`, the end of `columns`, or
/// a failed connection: the players play `columns` in turn, each move
/// seen by both before the next. Returns the players and how many moves
/// the server accepted as their mover saw (`moved`).
async fn game_under_load(
    mut red: Player,
    mut yellow: Player,
    id: Value,
    columns: Arc<Vec<u8>>,
    stop: Arc<AtomicBool>,
) -> (Player, Player, Value, usize) {
    let mut accepted = 0;
    for (n, &column) in columns.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (mover, other) = if n.is_multiple_of(2) {
            (&mut red, &mut yellow)
        } else {
            (&mut yellow, &mut red)
        };
        let request = json!({"type":"move","game_id":id,"column":column});
        if mover
            .client
            .ws
            .send(Message::text(request.to_string()))
            .await
            .is_err()
            || !seen(&mut mover.client, "moved").await
        {
            break;
        }
        accepted = n + 1;
        if !seen(&mut other.client, "moved").await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    (red, yellow, id, accepted)
}

/// Reads until a frame of type `kind`: `false` if the connection fails (or
/// goes quiet) first. An error frame fails the test.
async fn seen(client: &mut Client, kind: &str) -> bool {
    loop {
        match client.try_recv(PATIENCE).await {
            Ok(Some(frame)) if frame["type"] == kind => return true,
            Ok(Some(frame)) => assert_ne!(frame["type"], "error", "{frame}"),
            Ok(None) | Err(_) => return false,
        }
    }
}

/// Each room's stored state `n`, read from the database at `path` (by a
/// connection of its own, closed before this returns).
fn stored_states(path: &Path) -> BTreeMap<String, u64> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut statement = conn.prepare("SELECT room, data FROM snapshots").unwrap();
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .unwrap();
    rows.map(|row| {
        let (room, data) = row.unwrap();
        let data: Value = serde_json::from_str(&data).unwrap();
        (room, data["n"].as_u64().expect("a state {\"n\": n}"))
    })
    .collect()
}

/// Chat rooms under load until `stop`: `MEMBERS` members in each of
/// `ROOMS` rooms, all joined before any talks, each then a [`chatter`].
async fn chat_under_load(server: &ServerProcess, stop: &Arc<AtomicBool>) -> JoinSet<()> {
    let mut chat = JoinSet::new();
    for room in 0..ROOMS {
        let room = format!("room-{room}");
        let mut members = Vec::new();
        for _ in 0..MEMBERS {
            let mut client = connect(server).await;
            join_alone(&mut client, &room).await;
            members.push(client);
        }
        for (member, client) in members.into_iter().enumerate() {
            chat.spawn(chatter(client, room.clone(), member == 0, stop.clone()));
        }
    }
    chat
}

/// Checks, after the restart, that every room's stored state is at least
/// as new as the one `written` before the kill, and that a newcomer to the
/// room gets it.
async fn rooms_kept(server: &ServerProcess, path: &Path, written: &BTreeMap<String, u64>) {
    let stored = stored_states(path);
    assert_eq!(written.len(), ROOMS, "{written:?}");
    for (room, n) in written {
        assert!(
            stored[room] >= *n,
            "room {room}: {n} written, {stored:?} kept"
        );
        let mut newcomer = connect(server).await;
        let state = join_alone(&mut newcomer, room).await;
        assert_eq!(state, json!({"n": stored[room]}), "room {room}");
    }
}

/// A game played until the kill: its players, its id, and how many moves
/// its movers saw accepted.
type Played = (Player, Player, Value, usize);

/// Both players of `game` resume after the restart and see its moves:
/// every move accepted before the kill (and perhaps the one in flight,
/// written but not announced), as `columns` planned them; then the game
/// goes on.
async fn resumed_where_it_was(server: &ServerProcess, game: Played, columns: &[u8]) {
    let (mut red, mut yellow, id, accepted) = game;
    assert!(accepted > 0, "game {id}: no move accepted before the kill");
    let mut states = Vec::new();
    for player in [&mut red, &mut yellow] {
        let resumed = player.resume(server).await;
        assert_eq!(
            (&resumed["games"], &resumed["recovered"]),
            (&json!([id]), &json!(false)),
            "{resumed}"
        );
        states.push(player.client.recv_type("game_state").await);
    }
    assert_eq!(states[0]["moves"], states[1]["moves"]);
    let kept: Vec<u64> = states[0]["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|mv| mv["column"].as_u64().unwrap())
        .collect();
    assert!(
        (accepted..=accepted + 1).contains(&kept.len()),
        "game {id}: {accepted} moves accepted, {} kept",
        kept.len()
    );
    let planned: Vec<u64> = columns.iter().map(|&column| u64::from(column)).collect();
    assert_eq!(kept, planned[..kept.len()], "game {id}");
    red.client.recv_type("opponent_back").await;
    let (mover, other) = if kept.len().is_multiple_of(2) {
        (&mut red, &mut yellow)
    } else {
        (&mut yellow, &mut red)
    };
    assert!(
        kept.len() < columns.len(),
        "game {id}: all {} planned moves were played before the kill; plan more",
        columns.len()
    );
    let next = json!({"type":"move","game_id":id,"column":columns[kept.len()]});
    let moved = mover.client.ask(next).await;
    assert_eq!(moved["type"], "moved", "{moved}");
    other.client.recv_type("moved").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_chat_and_game_load_loses_no_accepted_move() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("parlor.db");
    let env = [
        ("PARLOR_STORE__SAVE_DEBOUNCE_MS", "50"),
        ("PARLOR_ROOMS__STATE_REQUEST_TIMEOUT_MS", "100"),
        ("PARLOR_LIMITS__MSGS_PER_SEC", "1000"),
        ("PARLOR_LIMITS__BURST", "1000"),
    ];
    let mut server = server_on(&path, &env);
    let stop = Arc::new(AtomicBool::new(false));
    let chat = chat_under_load(&server, &stop).await;
    let columns = Arc::new(endless_columns(40));
    let mut games = JoinSet::new();
    for _ in 0..GAMES {
        let (red, yellow, id) = start_game(&server).await;
        let (columns, stop) = (columns.clone(), stop.clone());
        games.spawn(game_under_load(red, yellow, id, columns, stop));
    }
    // Well under way: every room's state written, every game some moves in.
    let rooms = ROOMS as f64;
    assert!(wait_for_metric(&server, SNAPSHOT_WRITES, rooms).await >= rooms);
    let moves = (GAMES * 3) as f64;
    assert!(wait_for_metric(&server, MOVE_WRITES, moves).await >= moves);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let written = stored_states(&path);
    server.child.kill().expect("kill -9");
    exited(server).await;
    stop.store(true, Ordering::Relaxed);
    chat.join_all().await;
    let games = games.join_all().await;
    // The store opens (checked by a connection beside the new server's, so
    // that the server itself recovers the file).
    let server = server_on(&path, &env);
    let check: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    rooms_kept(&server, &path, &written).await;
    for game in games {
        resumed_where_it_was(&server, game, &columns).await;
    }
}

/// A small tmpfs mounted on a new folder; unmounted (lazily: a file still
/// open does not keep it) when dropped, also when a test fails.
struct Tmpfs {
    folder: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as mount(8) takes it), or says why not.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let folder = tempfile::tempdir().map_err(|err| err.to_string())?;
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(folder.path())
            .output()
            .map_err(|err| format!("mount does not run: {err}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        Ok(Tmpfs { folder })
    }

    fn path(&self) -> &Path {
        self.folder.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.folder.path())
            .status();
    }
}

/// Fills the file system holding `folder` with one file until a write
/// fails for want of space; returns that file.
fn fill(folder: &Path) -> PathBuf {
    let path = folder.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = [0u8; 4096];
    loop {
        match file.write(&chunk) {
            Ok(_) => {}
            Err(err) if err.raw_os_error() == Some(libc::ENOSPC) => return path,
            Err(err) => panic!("filling the disk: {err}"),
        }
    }
}

/// The `parlor` binary with `env`, its stderr collected as it comes (a
/// full pipe would stall its log, and the server with it).
fn spawn_logged(env: &[(&str, &str)]) -> (ServerProcess, Arc<Mutex<String>>) {
    let child = binary(&[], env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("parlor starts");
    let mut server = attach(child);
    let mut stderr = server.child.stderr.take().expect("piped stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let kept = log.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(read @ 1..) = stderr.read(&mut chunk) {
            kept.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..read]));
        }
    });
    (server, log)
}

#[tokio::test]
async fn a_full_disk_fails_writes_counts_and_retries_them_and_keeps_serving() {
    let disk = match Tmpfs::mount("512k") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!(
                "SKIPPED the full-disk test: cannot mount a tmpfs ({why}); it needs root or \
                 CAP_SYS_ADMIN"
            );
            return;
        }
    };
    let path = disk.path().join("parlor.db");
    let db = path.to_str().unwrap();
    let env = [
        ("PARLOR_STORE__PATH", db),
        ("PARLOR_STORE__SAVE_DEBOUNCE_MS", "50"),
    ];
    let (server, log) = spawn_logged(&env);
    let mut ada = connect(&server).await;
    join_alone(&mut ada, "vault").await;
    ada.send(json!({"type":"state","room":"vault","data":"before"}))
        .await;
    assert_eq!(wait_for_metric(&server, SNAPSHOT_WRITES, 1.0).await, 1.0);
    let filler = fill(disk.path());
    // A change of room state and a whole game, with nowhere to write them.
    let kept = "written once there is room";
    ada.send(json!({"type":"state","room":"vault","data":kept}))
        .await;
    let errors = wait_for_metric(&server, STORE_ERRORS, 1.0).await;
    assert!(errors >= 1.0, "the failed snapshot write is counted");
    let game = play_game(&server, "tictactoe", &x_wins()).await;
    assert!(wait_for_metric(&server, STORE_ERRORS, errors + 1.0).await > errors);
    assert_eq!(metric(&server, SNAPSHOT_WRITES).await, 1.0);
    assert_eq!(metric(&server, GAME_WRITES).await, 0.0);
    // Meanwhile the server serves.
    let (status, health) = http_get(server.addr, "/healthz").await;
    assert_eq!(status, 200, "{health}");
    let mut bob = connect(&server).await;
    assert_eq!(
        bob.ask(json!({"type":"echo","data":"still here"})).await["data"],
        "still here"
    );
    let mut cleo = connect(&server).await;
    join_alone(&mut bob, "chatter").await;
    assert_eq!(
        cleo.ask(json!({"type":"join_room","room":"chatter"})).await["type"],
        "room_joined"
    );
    next_of(&mut cleo, "room_state").await;
    cleo.send(json!({"type":"broadcast","room":"chatter","data":"hello"}))
        .await;
    assert_eq!(next_of(&mut bob, "message").await["data"], "hello");
    // Room again: the store's own retries write what failed.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(wait_for_metric(&server, SNAPSHOT_WRITES, 2.0).await, 2.0);
    assert_eq!(wait_for_metric(&server, GAME_WRITES, 1.0).await, 1.0);
    let settled = metric(&server, STORE_ERRORS).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        metric(&server, STORE_ERRORS).await,
        settled,
        "still failing"
    );
    server.terminate();
    let status = exited(server).await;
    assert!(status.success(), "everything was written: {status}");
    let log = log.lock().unwrap().clone();
    assert!(log.contains("disk is full"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // A new server on the same file has all of it.
    let server = server_on(&path, &[]);
    let mut dora = connect(&server).await;
    assert_eq!(join_alone(&mut dora, "vault").await, kept);
    let (status, record) = http_get(server.addr, &format!("/api/history/{game}")).await;
    assert_eq!(status, 200, "{record}");
}

/// The `broadcast` number `n` of member `from`.
fn said(from: usize, n: u64) -> Value {
    json!({"type":"broadcast","room":"plaza","data":{"from":from,"n":n}})
}

/// Reads every frame that comes within `quiet` of the last one into
/// `log`; a dropped connection is resumed with its token and count, and
/// must recover every frame. Returns how many resumes it took.
async fn pump(
    player: &mut Player,
    server: &ServerProcess,
    log: &mut Vec<Value>,
    quiet: Duration,
) -> usize {
    let mut resumes = 0;
    loop {
        match player.client.try_recv(quiet).await {
            Ok(Some(frame)) => log.push(frame),
            Ok(None) => return resumes,
            Err(ending) => {
                // An evicted peer is simply dropped (PROTOCOL.md).
                assert_eq!(ending, Ending::Dropped);
                let resumed = player.resume(server).await;
                assert_eq!(resumed["recovered"], true, "{resumed}");
                resumes += 1;
            }
        }
    }
}

/// The numbers of the messages from member `from` in `log`, in order.
fn heard(log: &[Value], from: usize) -> Vec<u64> {
    log.iter()
        .filter(|frame| frame["type"] == "message" && frame["data"]["from"] == from)
        .map(|frame| frame["data"]["n"].as_u64().unwrap())
        .collect()
}

/// The `moved` frames in `log`, as (seat, column).
fn moves_in(log: &[Value]) -> Vec<(String, u64)> {
    log.iter()
        .filter(|frame| frame["type"] == "moved")
        .map(|frame| {
            let seat = frame["seat"].as_str().unwrap().to_string();
            (seat, frame["move"]["column"].as_u64().unwrap())
        })
        .collect()
}

/// Member `from` says its next numbered message (counted in `sent`).
async fn say(member: &mut Player, from: usize, sent: &mut [u64]) {
    sent[from] += 1;
    member.client.send(said(from, sent[from])).await;
}

/// Pumps every player in turn into its log (see [`pump`]); returns how
/// many resumes each took.
async fn pump_all(
    players: &mut [Player],
    server: &ServerProcess,
    logs: &mut [Vec<Value>],
) -> Vec<usize> {
    let mut resumes = Vec::new();
    for (player, log) in players.iter_mut().zip(logs.iter_mut()) {
        resumes.push(pump(player, server, log, Duration::from_millis(200)).await);
    }
    resumes
}

#[tokio::test]
async fn sigstop_longer_than_the_heartbeat_then_sigcont_loses_nothing() {
    let env = [
        ("PARLOR_HEARTBEAT__INTERVAL_MS", "300"),
        ("PARLOR_HEARTBEAT__TIMEOUT_MS", "2000"),
        ("PARLOR_ROOMS__STATE_REQUEST_TIMEOUT_MS", "100"),
    ];
    let server = spawn_binary(&[], &env);
    let pid = server.child.id();
    // Three members of a chat room, then red and yellow playing.
    let mut players = Vec::new();
    for _ in 0..3 {
        let mut member = Player::join(&server).await;
        join_alone(&mut member.client, "plaza").await;
        players.push(member);
    }
    let (red, yellow, id) = start_game(&server).await;
    players.extend([red, yellow]);
    let (red, yellow) = (3, 4);
    let mut logs = vec![Vec::new(); players.len()];
    let mut sent = [0u64; 3];
    let column = |column: u64| json!({"type":"move","game_id":id,"column":column});
    for (from, member) in players.iter_mut().enumerate().take(3) {
        say(member, from, &mut sent).await;
        say(member, from, &mut sent).await;
    }
    players[red].client.send(column(0)).await;
    pump_all(&mut players, &server, &mut logs).await;
    signal(pid, "-STOP");
    // While the server is stopped, members 0 and 1 talk and yellow moves
    // (the kernel keeps what they send); member 2 and red are silent.
    for (from, member) in players.iter_mut().enumerate().take(2) {
        for _ in 0..3 {
            say(member, from, &mut sent).await;
        }
    }
    players[yellow].client.send(column(1)).await;
    // Longer than the heartbeat's timeout and interval together.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    signal(pid, "-CONT");
    // Every session is beaten once within the interval: the silent ones
    // are evicted now, and nobody is evicted later by surprise.
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The talkers say more while member 2 is away: kept for it.
    for (from, member) in players.iter_mut().enumerate().take(2) {
        say(member, from, &mut sent).await;
    }
    let resumes = pump_all(&mut players, &server, &mut logs).await;
    eprintln!("resumes after SIGCONT (members 0-2, red, yellow): {resumes:?}");
    for (from, member) in players.iter_mut().enumerate().take(3) {
        say(member, from, &mut sent).await;
    }
    players[red].client.send(column(0)).await;
    pump_all(&mut players, &server, &mut logs).await;
    for (to, log) in logs.iter().enumerate().take(3) {
        for (from, &count) in sent.iter().enumerate() {
            let expected: Vec<u64> = if from == to {
                Vec::new()
            } else {
                (1..=count).collect()
            };
            assert_eq!(heard(log, from), expected, "member {to} from member {from}");
        }
    }
    let played =
        [("red", 0), ("yellow", 1), ("red", 0)].map(|(seat, column)| (seat.into(), column));
    assert_eq!(moves_in(&logs[red]), played, "red's frames");
    assert_eq!(moves_in(&logs[yellow]), played, "yellow's frames");
    // The game goes on.
    let moved = players[yellow].client.ask(column(1)).await;
    assert_eq!(moved["type"], "moved", "{moved}");
    next_of(&mut players[red].client, "moved").await;
}

/// Clients in the stopped-server story: more than one wakeup of a worker
/// reports (tokio takes 1,024 events a wakeup), so that some are still
/// unread when the heartbeat's first sweep after the stop comes.
const STOPPED_CLIENTS: usize = 3_000;

/// A client that reads (answering Pings) until `go`, then sends an
/// `echo` of `n` (counted in `sent`) and reads until its answer, resuming
/// if its connection drops. Says whether the answer came, and after how
/// many resumes.
async fn echo_once(
    mut player: Player,
    server: SocketAddr,
    n: usize,
    mut go: tokio::sync::watch::Receiver<bool>,
    sent: Arc<AtomicUsize>,
) -> (bool, usize) {
    while !*go.borrow_and_update() {
        tokio::select! {
            _ = go.changed() => {}
            frame = player.client.try_recv(PATIENCE) => {
                assert!(frame.is_ok(), "client {n} lost its connection before the stop");
            }
        }
    }
    player.client.send(json!({"type":"echo","data":n})).await;
    sent.fetch_add(1, Ordering::Relaxed);
    let mut resumes = 0;
    loop {
        match player.client.try_recv(PATIENCE * 2).await {
            Ok(Some(frame)) if frame["type"] == "echo" => return (true, resumes),
            Ok(Some(_)) => {}
            Ok(None) => return (false, resumes),
            Err(_) => {
                let resumed = player.resume_at(server).await;
                assert_eq!(resumed["recovered"], true, "{resumed}");
                resumes += 1;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_past_the_heartbeat_evicts_nobody_whose_frames_wait_unread() {
    if !enough_files(STOPPED_CLIENTS as u64 + 1_000) {
        return;
    }
    let _alone = THOUSANDS.lock().await;
    // A timeout long enough that the test's own stalls on two busy cores
    // never pass it while the clients join.
    let env = [
        ("PARLOR_HEARTBEAT__INTERVAL_MS", "1000"),
        ("PARLOR_HEARTBEAT__TIMEOUT_MS", "5000"),
    ];
    let server = spawn_binary(&[], &env);
    let (go, ready) = tokio::sync::watch::channel(false);
    let sent = Arc::new(AtomicUsize::new(0));
    let mut clients = JoinSet::new();
    // One at a time: a burst of handshakes would starve the heartbeat.
    for n in 0..STOPPED_CLIENTS {
        let player = Player::join(&server).await;
        let sent = sent.clone();
        clients.spawn(echo_once(player, server.addr, n, ready.clone(), sent));
    }
    signal(server.child.id(), "-STOP");
    go.send(true).unwrap();
    // Every echo is in the server's sockets, unread, for longer than the
    // heartbeat's timeout and interval together.
    tokio::time::sleep(Duration::from_millis(7000)).await;
    while sent.load(Ordering::Relaxed) < STOPPED_CLIENTS {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(server.child.id(), "-CONT");
    let answers = clients.join_all().await;
    let lost = answers.iter().filter(|(answered, _)| !answered).count();
    let resumed = answers.iter().filter(|(_, resumes)| *resumes > 0).count();
    assert_eq!(
        (lost, resumed),
        (0, 0),
        "(echoes lost, clients evicted) of {STOPPED_CLIENTS}"
    );
}

/// Held by the tests that open thousands of sockets, so that they never
/// do at once: together they would pass this process's open-file limit.
static THOUSANDS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Raises this process's open-file limit as far as it goes; `false` (and
/// says so) if it stays below `needed`.
fn enough_files(needed: u64) -> bool {
    let raised = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    if raised < needed {
        eprintln!(
            "SKIPPED: this test needs {needed} open files and the hard limit allows {raised}; \
             raise it (ulimit -Hn)"
        );
    }
    raised >= needed
}

/// Half-open handshakes held open at once.
const SLOWLORIS: usize = 5_000;

/// One slowloris connection until `stop`: a request head that never ends,
/// one more header line a second; opened again whenever the server hangs
/// up. `open` counts those connected now.
async fn slow_handshake(addr: SocketAddr, stop: Arc<AtomicBool>, open: Arc<AtomicUsize>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(Ok(mut tcp)) = tokio::time::timeout(PATIENCE, TcpStream::connect(addr)).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let head = b"GET /ws HTTP/1.1\r\nHost: parlor\r\nUpgrade: websocket\r\n";
        if tcp.write_all(head).await.is_err() {
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let mut answer = [0u8; 256];
        while !stop.load(Ordering::Relaxed) {
            // Anything from the server (its timeout answer, or the end)
            // means it hung up.
            let answered = tokio::time::timeout(Duration::from_secs(1), tcp.readable()).await;
            if answered.is_ok()
                && !matches!(tcp.try_read(&mut answer), Err(err) if err.kind() == std::io::ErrorKind::WouldBlock)
            {
                break;
            }
            if tcp.write_all(b"X-Slow: 1\r\n").await.is_err() {
                break;
            }
        }
        open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Connects to `url` and reads the `welcome` within `patience`; the
/// client, or what went wrong.
async fn welcomed(url: String, patience: Duration) -> Result<Client, String> {
    let attempt = async {
        let (ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .map_err(|err| format!("connect: {err}"))?;
        let mut client = Client { ws, counted: 0 };
        match client.try_recv(patience).await {
            Ok(Some(frame)) if frame["type"] == "welcome" => Ok(client),
            other => Err(format!("no welcome: {other:?}")),
        }
    };
    tokio::time::timeout(patience, attempt)
        .await
        .map_err(|_| format!("no welcome within {patience:?}"))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_half_open_handshakes_do_not_keep_real_clients_out() {
    if !enough_files(SLOWLORIS as u64 + 1_000) {
        return;
    }
    let _alone = THOUSANDS.lock().await;
    // The default `server.max_sessions`: more than this machine's files.
    let server = spawn_binary(&[], &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let open = Arc::new(AtomicUsize::new(0));
    let mut slow = JoinSet::new();
    for _ in 0..SLOWLORIS {
        slow.spawn(slow_handshake(server.addr, stop.clone(), open.clone()));
    }
    // Most of them: the server hangs up on each after its request timeout,
    // and they come back, so all of them at once is seldom seen.
    let deadline = Instant::now() + Duration::from_secs(30);
    while open.load(Ordering::Relaxed) < SLOWLORIS * 9 / 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "half-open handshakes open: {}",
        open.load(Ordering::Relaxed)
    );
    let url = format!("ws://{}/ws", server.addr);
    let mut real = Vec::new();
    for n in 0..10 {
        let half_open = open.load(Ordering::Relaxed);
        let started = Instant::now();
        let client = welcomed(url.clone(), Duration::from_secs(1)).await;
        let client = client.unwrap_or_else(|err| {
            panic!("real client {n}, beside {half_open} half-open handshakes: {err}")
        });
        eprintln!("real client {n}: welcome in {:?}", started.elapsed());
        real.push(client);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    slow.join_all().await;
    drop(real);
    wait_for_sessions(server.addr, 0, PATIENCE).await;
}

/// The `parlor` binary with default settings and an open-file limit of
/// `files`, soft and hard.
fn spawn_with_files(files: u64) -> ServerProcess {
    use std::os::unix::process::CommandExt;
    let mut command = binary(&[], &[]);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: files,
                rlim_max: files,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    attach(
        command
            .stdout(Stdio::piped())
            .spawn()
            .expect("parlor starts"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_max_sessions_above_the_file_limit_200_slow_handshakes_do_not_lock_clients_out() {
    // 1,000 files take fewer sessions than `server.max_sessions` (100,000):
    // plain HTTP connections were then held to 128, all taken by slow
    // handshakes for as long as each may take to send its request.
    let server = spawn_with_files(1_000);
    let stop = Arc::new(AtomicBool::new(false));
    let open = Arc::new(AtomicUsize::new(0));
    let mut slow = JoinSet::new();
    for _ in 0..200 {
        slow.spawn(slow_handshake(server.addr, stop.clone(), open.clone()));
    }
    let deadline = Instant::now() + PATIENCE;
    while open.load(Ordering::Relaxed) < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = format!("ws://{}/ws", server.addr);
    for n in 0..3 {
        let client = welcomed(url.clone(), Duration::from_secs(1)).await;
        client.unwrap_or_else(|err| panic!("real client {n}: {err}"));
    }
    stop.store(true, Ordering::Relaxed);
    slow.join_all().await;
}

/// WebSocket connects in the burst.
const BURST: usize = 10_000;

/// TCP's `ListenOverflows` counter in this network namespace.
fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = netstat.lines().filter(|line| line.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names
        .split_whitespace()
        .position(|name| name == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_connects_in_two_seconds_are_all_served() {
    if !enough_files(BURST as u64 + 1_000) {
        return;
    }
    let _alone = THOUSANDS.lock().await;
    let server = spawn_binary(
        &[],
        &[
            ("PARLOR_SERVER__MAX_SESSIONS", "12000"),
            // Nobody reads after its welcome: nobody is evicted meanwhile.
            ("PARLOR_HEARTBEAT__INTERVAL_MS", "60000"),
            ("PARLOR_HEARTBEAT__TIMEOUT_MS", "120000"),
        ],
    );
    let url = format!("ws://{}/ws", server.addr);
    let overflows = listen_overflows();
    let started = Instant::now();
    let mut connects = JoinSet::new();
    for n in 0..BURST {
        // Fifty every 10 ms: 10,000 in two seconds.
        if n % 50 == 0 {
            tokio::time::sleep_until(started + Duration::from_millis(n as u64 / 5)).await;
        }
        connects.spawn(welcomed(url.clone(), Duration::from_secs(60)));
    }
    let burst = started.elapsed();
    let mut served = Vec::new();
    let mut failed = Vec::new();
    while let Some(connect) = connects.join_next().await {
        match connect.expect("connect task") {
            Ok(client) => served.push(client),
            Err(err) => failed.push(err),
        }
    }
    eprintln!(
        "{BURST} connects started in {burst:?}, all answered in {:?}; listen overflows {:?} → {:?}",
        started.elapsed(),
        overflows,
        listen_overflows()
    );
    assert!(
        failed.is_empty(),
        "{} of {BURST} connects failed, the first: {}",
        failed.len(),
        failed[0]
    );
    wait_for_sessions(server.addr, BURST as u64, PATIENCE).await;
    drop(served);
    wait_for_sessions(server.addr, 0, PATIENCE * 4).await;
}

/// Whether the kernel still has a TCP connection from local port `from`
/// to local port `to` (both on 127.0.0.1), in any state.
fn connected(from: u16, to: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let (from, to) = (format!(":{from:04X}"), format!(":{to:04X}"));
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace().skip(1);
        let (local, remote) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        local.ends_with(&from) && remote.ends_with(&to)
    })
}

/// A member of `room` in a task of its own: it broadcasts the data it is
/// given, reads (answering Pings) meanwhile, and hands on the data of every
/// `message` it hears. Ends when the channel it is given closes.
fn member(
    mut client: Client,
    room: &'static str,
) -> (
    tokio::sync::mpsc::UnboundedSender<Value>,
    tokio::sync::mpsc::UnboundedReceiver<Value>,
) {
    let (say, mut said) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let (tell, heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                data = said.recv() => match data {
                    Some(data) => client.send(json!({"type":"broadcast","room":room,"data":data})).await,
                    None => return,
                },
                frame = client.try_recv(PATIENCE) => match frame {
                    Ok(Some(frame)) if frame["type"] == "message" => {
                        let _ = tell.send(frame["data"].clone());
                    }
                    Ok(_) => {}
                    Err(ending) => panic!("a member of {room} lost its connection: {ending:?}"),
                },
            }
        }
    });
    (say, heard)
}

#[tokio::test]
async fn a_client_that_sends_close_and_never_reads_is_dropped() {
    let env = [
        ("PARLOR_HEARTBEAT__INTERVAL_MS", "1000"),
        ("PARLOR_HEARTBEAT__TIMEOUT_MS", "5000"),
        ("PARLOR_ROOMS__STATE_REQUEST_TIMEOUT_MS", "100"),
        ("PARLOR_LIMITS__MSGS_PER_SEC", "100000"),
        ("PARLOR_LIMITS__BURST", "100000"),
    ];
    let server = spawn_binary(&[], &env);
    let mut hall = Vec::new();
    for _ in 0..3 {
        let mut client = connect(&server).await;
        join_alone(&mut client, "hall").await;
        hall.push(client);
    }
    let mut closer = hall.pop().unwrap();
    let (_listening, mut heard) = member(hall.pop().unwrap(), "hall");
    let (talk, _) = member(hall.pop().unwrap(), "hall");
    wait_for_sessions(server.addr, 3, PATIENCE).await;
    // About 12 MB: far more than the closer's socket takes unread, far
    // fewer frames than its outbox holds. The closer reads nothing from
    // now on.
    let big = json!("z".repeat(60_000));
    for n in 0..200 {
        talk.send(big.clone()).unwrap();
        if n % 20 == 0 {
            // Messages are life: the closer is not evicted for silence.
            closer.send(json!({"type":"echo"})).await;
        }
        let data = tokio::time::timeout(PATIENCE, heard.recv()).await;
        assert_eq!(
            data.expect("the listener hears the talker"),
            Some(big.clone())
        );
    }
    let MaybeTlsStream::Plain(tcp) = closer.ws.get_ref() else {
        panic!("a plain connection");
    };
    let port = tcp.local_addr().unwrap().port();
    closer
        .ws
        .send(Message::Close(None))
        .await
        .expect("Close sent");
    let started = Instant::now();
    // Its session goes (the Close it is owed waits at most the heartbeat's
    // timeout), and so does its connection, in the server and in the kernel.
    wait_for_sessions(server.addr, 2, Duration::from_secs(30)).await;
    eprintln!(
        "the session was gone {:?} after the Close",
        started.elapsed()
    );
    let deadline = started + Duration::from_secs(30);
    while connected(server.addr.port(), port) {
        assert!(
            Instant::now() < deadline,
            "the server still holds the connection 30 s after the Close"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "the connection was gone {:?} after the Close",
        started.elapsed()
    );
    // The room goes on for the others.
    talk.send(json!("still here")).unwrap();
    let data = tokio::time::timeout(PATIENCE, heard.recv()).await;
    assert_eq!(data.expect("the room goes on"), Some(json!("still here")));
}
