//! Games survive a restart (PROTOCOL.md, *Persistence*): a SIGTERM or a
//! `kill -9` mid-game, a new server on the same store, and both players
//! resume and finish the game.

use std::{net::SocketAddr, time::Duration};

use serde_json::{json, Value};

use crate::support::{http_get, spawn_binary, Client, ServerProcess, PATIENCE};

/// A server process keeping its data in `path`.
fn server_on(path: &std::path::Path) -> ServerProcess {
    spawn_binary(&[], &[("PARLOR_STORE__PATH", path.to_str().unwrap())])
}

/// A player: its connection and its latest `welcome`.
pub(crate) struct Player {
    pub(crate) client: Client,
    pub(crate) welcome: Value,
}

impl Player {
    pub(crate) async fn join(server: &ServerProcess) -> Player {
        let mut client = Client::open(&format!("ws://{}/ws", server.addr)).await;
        let welcome = client.recv_type("welcome").await;
        Player { client, welcome }
    }

    /// Resumes this player's session on `server` with its token and count.
    pub(crate) async fn resume(&mut self, server: &ServerProcess) -> Value {
        self.resume_at(server.addr).await
    }

    /// Resumes this player's session on the server at `addr`; returns its
    /// `resumed`.
    pub(crate) async fn resume_at(&mut self, addr: SocketAddr) -> Value {
        let url = format!(
            "ws://{addr}/ws?resume={}&received={}",
            self.welcome["resume"].as_str().unwrap(),
            self.client.counted
        );
        let counted = self.client.counted;
        self.client = Client::open(&url).await;
        self.client.counted = counted;
        let welcome = self.client.recv_type("welcome").await;
        assert_eq!(welcome["session"], self.welcome["session"]);
        self.welcome = welcome;
        self.client.recv_type("resumed").await
    }

    async fn play(&mut self, game_id: &Value, column: u64) -> Value {
        let moved = self
            .client
            .ask(json!({"type":"move","game_id":game_id,"column":column}))
            .await;
        assert_eq!(moved["type"], "moved", "{moved}");
        moved
    }
}

/// Starts a connect four quick match; returns (red, yellow, game id).
pub(crate) async fn start_game(server: &ServerProcess) -> (Player, Player, Value) {
    let mut red = Player::join(server).await;
    let mut yellow = Player::join(server).await;
    red.client
        .ask(json!({"type":"find_game","game":"connect4"}))
        .await;
    yellow
        .client
        .ask(json!({"type":"find_game","game":"connect4"}))
        .await;
    let start = red.client.recv_type("game_start").await;
    assert_eq!(start["you"], "red");
    yellow.client.recv_type("game_start").await;
    let id = start["game_id"].clone();
    (red, yellow, id)
}

/// Plays `moves` (the mover, 0 for red, and the column), each seen by the
/// other player before the next.
async fn plays(red: &mut Player, yellow: &mut Player, id: &Value, moves: &[(u8, u64)]) {
    for &(mover, column) in moves {
        let (mover, other) = if mover == 0 {
            (&mut *red, &mut *yellow)
        } else {
            (&mut *yellow, &mut *red)
        };
        mover.play(id, column).await;
        other.client.recv_type("moved").await;
    }
}

/// Red plays column 0, yellow column 1, red column 0: three moves.
async fn three_moves(red: &mut Player, yellow: &mut Player, id: &Value) {
    plays(red, yellow, id, &[(0, 0), (1, 1), (0, 0)]).await;
}

/// Both players resume on the new server, see the game as it was, and
/// red wins it in column 0.
async fn resume_and_finish(
    server: &ServerProcess,
    red: &mut Player,
    yellow: &mut Player,
    id: &Value,
) {
    for player in [&mut *red, &mut *yellow] {
        let resumed = player.resume(server).await;
        assert_eq!(
            (&resumed["games"], &resumed["recovered"]),
            (&json!([id]), &json!(false)),
            "{resumed}"
        );
        let state = player.client.recv_type("game_state").await;
        assert_eq!(state["moves"].as_array().unwrap().len(), 3, "{state}");
        assert_eq!(
            (&state["status"], &state["turn"]),
            (&json!("playing"), &json!("yellow"))
        );
    }
    assert_eq!(
        red.client.recv_type("opponent_back").await["seat"],
        "yellow"
    );
    plays(red, yellow, id, &[(1, 1), (0, 0), (1, 1), (0, 0)]).await;
    let over = red.client.recv_type("game_over").await;
    assert_eq!(
        (&over["result"], &over["winner"]),
        (&json!("win"), &json!("red"))
    );
    let record = finished(server, id).await;
    assert_eq!(record["moves"].as_array().unwrap().len(), 7, "{record}");
}

/// The record of game `id` once the server has recorded it as finished
/// (asked again until it has, within the tests' patience).
async fn finished(server: &ServerProcess, id: &Value) -> Value {
    let path = format!("/api/history/{}", id.as_str().unwrap());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, body) = http_get(server.addr, &path).await;
        if status == 200 {
            return serde_json::from_str(&body).unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "game {id} never recorded: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the server process to exit; returns how it exited.
pub(crate) async fn exited(mut server: ServerProcess) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || server.child.wait().expect("the server exits"))
        .await
        .expect("waiting thread")
}

/// Three moves into a game, the server is stopped by `stop`; a new one on
/// the same store lets both players resume and finish the game.
async fn survives(stop: impl FnOnce(&mut ServerProcess)) {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("parlor.db");
    let mut server = server_on(&path);
    let (mut red, mut yellow, id) = start_game(&server).await;
    three_moves(&mut red, &mut yellow, &id).await;
    stop(&mut server);
    exited(server).await;
    let server = server_on(&path);
    resume_and_finish(&server, &mut red, &mut yellow, &id).await;
}

#[tokio::test]
async fn a_game_in_play_goes_on_after_a_sigterm_restart() {
    survives(|server| server.terminate()).await;
}

#[tokio::test]
async fn a_game_in_play_goes_on_after_kill_9() {
    // Every accepted move is written before anyone hears of it.
    survives(|server| server.child.kill().expect("kill -9")).await;
}

#[tokio::test]
async fn a_restored_game_nobody_comes_back_to_is_abandoned_after_the_grace() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("parlor.db");
    let grace = ("PARLOR_GAMES__RECONNECT_GRACE_MS", "400");
    let db = ("PARLOR_STORE__PATH", path.to_str().unwrap());
    let server = spawn_binary(&[], &[db, grace]);
    let (mut red, mut yellow, id) = start_game(&server).await;
    three_moves(&mut red, &mut yellow, &id).await;
    server.terminate();
    exited(server).await;
    let server = spawn_binary(&[], &[db, grace]);
    let record = finished(&server, &id).await;
    assert_eq!(
        (&record["result"], &record["winner"]),
        (&json!("abandoned"), &Value::Null)
    );
    // Its token no longer resumes anything.
    let resumed = red.resume_refused(&server).await;
    assert_eq!(resumed["code"], "not_found");
}

impl Player {
    /// Tries a resume the server should refuse; returns its error.
    async fn resume_refused(&mut self, server: &ServerProcess) -> Value {
        let url = format!(
            "ws://{}/ws?resume={}",
            server.addr,
            self.welcome["resume"].as_str().unwrap()
        );
        let mut client = Client::open(&url).await;
        let welcome = client.recv_type("welcome").await;
        assert_ne!(welcome["session"], self.welcome["session"]);
        client.recv_type("error").await
    }
}

#[tokio::test]
async fn a_count_from_before_a_restart_never_recovers() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("parlor.db");
    let mut server = server_on(&path);
    let (mut red, mut yellow, id) = start_game(&server).await;
    // Both have counted `queued` and `game_start`: 2 frames. A game with
    // no move yet is written without anyone waiting: give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.child.kill().expect("kill -9");
    exited(server).await;
    let server = server_on(&path);
    assert_eq!(red.resume(&server).await["recovered"], false);
    red.client.recv_type("game_state").await;
    red.play(&id, 0).await;
    // The new server has numbered 2 frames for yellow too (opponent_back,
    // moved): yellow's count from before the restart must not match them.
    let resumed = yellow.resume(&server).await;
    assert_eq!(resumed["recovered"], false, "{resumed}");
    let state = yellow.client.recv_type("game_state").await;
    assert_eq!(state["moves"].as_array().unwrap().len(), 1);
    yellow.play(&id, 1).await;
}

#[tokio::test]
async fn a_game_against_the_bot_goes_on_after_kill_9() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("parlor.db");
    let db = ("PARLOR_STORE__PATH", path.to_str().unwrap());
    let quick = ("PARLOR_GAMES__BOT_DELAY_MS", "0");
    let mut server = spawn_binary(&[], &[db, quick]);
    let mut player = Player::join(&server).await;
    let start = player
        .client
        .ask(json!({"type":"play_bot","game":"connect4","level":"easy"}))
        .await;
    let id = start["game_id"].clone();
    player.play(&id, 0).await;
    assert_eq!(player.client.recv_type("moved").await["seat"], "yellow");
    server.child.kill().expect("kill -9");
    exited(server).await;
    let server = spawn_binary(&[], &[db, quick]);
    let resumed = player.resume(&server).await;
    assert_eq!(resumed["games"], json!([id]), "{resumed}");
    let state = player.client.recv_type("game_state").await;
    assert_eq!(state["players"][1]["bot"], true, "{state}");
    assert_eq!(state["turn"], "red");
    // The bot, brought back with its game, answers the next move.
    player.play(&id, 0).await;
    let answer = player.client.recv_type("moved").await;
    assert_eq!(
        (&answer["seat"], &answer["game_id"]),
        (&json!("yellow"), &id)
    );
}
