//! Games through the real server: quick matches, private games, spectators,
//! every ending, every error, reconnection.

use std::{num::NonZero, time::Duration};

use parlor::game::match3::{find_valid_move, Board};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::support::{Client, TestServer};

/// Two players queue for `game`; returns each with their `game_start`,
/// the first queued (who moves first) first.
async fn pair(server: &TestServer, game: &str) -> (Client, Value, Client, Value) {
    let (mut first, _) = server.connect().await;
    let (mut second, _) = server.connect().await;
    assert_eq!(
        first
            .ask(json!({"type":"find_game","game":game,"id":1}))
            .await,
        json!({"type":"queued","game":game,"id":1})
    );
    assert_eq!(
        second.ask(json!({"type":"find_game","game":game})).await["type"],
        "queued"
    );
    let first_start = first.recv_type("game_start").await;
    let second_start = second.recv_type("game_start").await;
    (first, first_start, second, second_start)
}

/// Like [`pair`], but returns the first player's `game_start` and the
/// second player's `welcome` (for its resume token).
async fn pair_keeping_welcome(server: &TestServer, game: &str) -> (Client, Value, Client, Value) {
    let (mut first, _) = server.connect().await;
    let (mut second, welcome) = server.connect().await;
    first.ask(json!({"type":"find_game","game":game})).await;
    second.ask(json!({"type":"find_game","game":game})).await;
    let start = first.recv_type("game_start").await;
    second.recv_type("game_start").await;
    (first, start, second, welcome)
}

fn game_id(start: &Value) -> String {
    start["game_id"].as_str().expect("a game id").to_string()
}

/// Plays `moves` (each a JSON object of move fields) alternately for the two
/// players, checking that both see every `moved`.
async fn play(players: [&mut Client; 2], game_id: &str, moves: &[Value]) -> Value {
    let [first, second] = players;
    let mut last = Value::Null;
    for (n, fields) in moves.iter().enumerate() {
        let mut request = json!({"type":"move","game_id":game_id});
        request
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let (mover, other) = if n % 2 == 0 {
            (&mut *first, &mut *second)
        } else {
            (&mut *second, &mut *first)
        };
        let moved = mover.ask(request).await;
        assert_eq!(moved["type"], "moved", "move {n}: {moved}");
        assert_eq!(other.recv_type("moved").await["move"], moved["move"]);
        last = moved;
    }
    last
}

fn cells(cells: &[u8]) -> Vec<Value> {
    cells.iter().map(|cell| json!({"cell":cell})).collect()
}

fn columns(columns: &[u8]) -> Vec<Value> {
    columns
        .iter()
        .map(|column| json!({"column":column}))
        .collect()
}

#[tokio::test]
async fn tictactoe_quick_match_to_a_win() {
    let server = TestServer::start();
    let (mut x, x_start, mut o, o_start) = pair(&server, "tictactoe").await;
    assert_eq!(
        (x_start["you"].as_str(), o_start["you"].as_str()),
        (Some("X"), Some("O"))
    );
    assert_eq!(x_start["turn"], "X");
    assert_eq!(
        x_start["board"],
        json!([null, null, null, null, null, null, null, null, null])
    );
    assert_eq!(x_start["players"].as_array().unwrap().len(), 2);
    assert_eq!(x_start["watch_key"], o_start["watch_key"]);
    let id = game_id(&x_start);
    let last = play([&mut x, &mut o], &id, &cells(&[0, 3, 1, 4, 2])).await;
    assert_eq!(last["turn"], Value::Null);
    assert_eq!(last["board"][2], "X");
    for player in [&mut x, &mut o] {
        let over = player.recv_type("game_over").await;
        assert_eq!(
            over,
            json!({"type":"game_over","game_id":id,"result":"win","winner":"X","line":[0,1,2]})
        );
    }
    assert_eq!(
        server
            .metric("parlor_games_finished_total{result=\"win\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn tictactoe_draw() {
    let server = TestServer::start();
    let (mut x, start, mut o, _) = pair(&server, "tictactoe").await;
    let id = game_id(&start);
    play([&mut x, &mut o], &id, &cells(&[0, 1, 2, 4, 3, 5, 7, 6, 8])).await;
    let over = x.recv_type("game_over").await;
    assert_eq!(
        (over["result"].as_str(), &over["winner"], &over["line"]),
        (Some("draw"), &Value::Null, &json!([]))
    );
}

#[tokio::test]
async fn connect4_quick_match_to_a_win() {
    let server = TestServer::start();
    let (mut red, start, mut yellow, yellow_start) = pair(&server, "connect4").await;
    assert_eq!(
        (start["you"].as_str(), yellow_start["you"].as_str()),
        (Some("red"), Some("yellow"))
    );
    assert_eq!(start["board"].as_array().unwrap().len(), 6);
    let id = game_id(&start);
    let last = play(
        [&mut red, &mut yellow],
        &id,
        &columns(&[3, 3, 4, 4, 5, 5, 6]),
    )
    .await;
    assert_eq!(last["move"], json!({"column":6,"row":0}));
    assert_eq!(last["board"][0][6], "red");
    let over = yellow.recv_type("game_over").await;
    assert_eq!(over["winner"], "red");
    assert_eq!(over["line"], json!([[0, 3], [0, 4], [0, 5], [0, 6]]));
}

#[tokio::test]
async fn a_move_lands_on_the_lowest_free_row() {
    let server = TestServer::start();
    let (mut red, start, mut yellow, _) = pair(&server, "connect4").await;
    let moved = play([&mut red, &mut yellow], &game_id(&start), &columns(&[2, 2])).await;
    assert_eq!(moved["move"], json!({"column":2,"row":1}));
    assert_eq!(moved["seat"], "yellow");
    assert_eq!(moved["turn"], "red");
}

#[tokio::test]
async fn resigning_forfeits_to_the_opponent() {
    let server = TestServer::start();
    let (mut x, start, mut o, _) = pair(&server, "tictactoe").await;
    let over = o
        .ask(json!({"type":"resign","game_id":game_id(&start),"id":"r"}))
        .await;
    assert_eq!(
        (over["type"].as_str(), over["result"].as_str()),
        (Some("game_over"), Some("forfeit"))
    );
    assert_eq!(
        (over["winner"].as_str(), over["id"].as_str()),
        (Some("X"), Some("r"))
    );
    assert_eq!(x.recv_type("game_over").await["winner"], "X");
}

#[tokio::test]
async fn move_errors_in_protocol_order() {
    let server = TestServer::start();
    let (mut x, start, mut o, _) = pair(&server, "tictactoe").await;
    let id = game_id(&start);
    let error = |reply: Value| {
        (
            reply["code"].as_str().unwrap_or("none").to_string(),
            reply["ref"].clone(),
        )
    };
    let mv = |cell: Value| json!({"type":"move","game_id":id,"cell":cell});
    let unknown = json!({"type":"move","game_id":"g_nope","cell":0});
    assert_eq!(
        error(x.ask(unknown).await),
        ("not_found".into(), json!("move"))
    );
    assert_eq!(error(o.ask(mv(json!(0))).await).0, "not_your_turn");
    assert_eq!(error(x.ask(mv(json!(9))).await).0, "bad_request");
    assert_eq!(error(x.ask(mv(json!("zero"))).await).0, "bad_request");
    let missing = x.ask(json!({"type":"move","game_id":id})).await;
    assert_eq!(
        (missing["code"].as_str(), missing["ref"].as_str()),
        (Some("bad_request"), Some("move"))
    );
    assert!(
        missing["message"].as_str().unwrap().contains("cell"),
        "{missing}"
    );
    assert_eq!(error(x.ask(json!({"type":"move"})).await).0, "bad_request");
    play([&mut x, &mut o], &id, &cells(&[4])).await;
    assert_eq!(error(o.ask(mv(json!(4))).await).0, "illegal_move");
    o.ask(json!({"type":"resign","game_id":id})).await;
    x.recv_type("game_over").await;
    assert_eq!(error(x.ask(mv(json!(0))).await).0, "game_over");
    assert_eq!(
        error(x.ask(json!({"type":"resign","game_id":id})).await).0,
        "game_over"
    );
}

#[tokio::test]
async fn spectators_see_everything_and_cannot_play() {
    let server = TestServer::start();
    let (mut x, start, mut o, _) = pair(&server, "tictactoe").await;
    let id = game_id(&start);
    play([&mut x, &mut o], &id, &cells(&[4])).await;
    let (mut watcher, _) = server.connect().await;
    let state = watcher
        .ask(json!({"type":"watch_game","watch_key":start["watch_key"],"id":5}))
        .await;
    assert_eq!(state["type"], "game_state");
    assert!(
        state.get("you").is_none(),
        "spectators have no seat: {state}"
    );
    assert_eq!(
        (
            state["status"].as_str(),
            state["turn"].as_str(),
            state["id"].as_i64()
        ),
        (Some("playing"), Some("O"), Some(5))
    );
    assert_eq!(state["moves"], json!([{"cell":4}]));
    assert_eq!(
        (&state["result"], &state["winner"]),
        (&Value::Null, &Value::Null)
    );
    let denied = watcher
        .ask(json!({"type":"move","game_id":id,"cell":0}))
        .await;
    assert_eq!(denied["code"], "not_a_player");
    let denied = watcher.ask(json!({"type":"resign","game_id":id})).await;
    assert_eq!(denied["code"], "not_a_player");
    play([&mut o, &mut x], &id, &cells(&[0])).await;
    assert_eq!(watcher.recv_type("moved").await["move"], json!({"cell":0}));
}

#[tokio::test]
async fn a_bad_watch_key_is_not_found() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    for key in ["short", &"A".repeat(48)] {
        assert_eq!(
            client
                .ask(json!({"type":"watch_game","watch_key":key}))
                .await["code"],
            "not_found"
        );
    }
}

#[tokio::test]
async fn private_game_by_join_key_watched_before_it_starts() {
    let server = TestServer::start();
    let (mut host, _) = server.connect().await;
    let created = host
        .ask(json!({"type":"create_game","game":"connect4","id":"c"}))
        .await;
    assert_eq!(
        (created["type"].as_str(), created["id"].as_str()),
        (Some("game_created"), Some("c"))
    );
    let (join_key, watch_key) = (created["join_key"].clone(), created["watch_key"].clone());
    assert!(join_key.as_str().unwrap().len() >= 22 && join_key != watch_key);
    let (mut watcher, _) = server.connect().await;
    let waiting = watcher
        .ask(json!({"type":"watch_game","watch_key":watch_key}))
        .await;
    assert_eq!(
        (waiting["status"].as_str(), &waiting["turn"]),
        (Some("waiting"), &Value::Null)
    );
    assert_eq!(
        server.get_json("/api/games").await,
        json!([]),
        "private games are never listed"
    );
    let own = host
        .ask(json!({"type":"join_game","join_key":join_key}))
        .await;
    assert_eq!(own["code"], "bad_request");
    let (mut guest, _) = server.connect().await;
    let start = guest
        .ask(json!({"type":"join_game","join_key":join_key,"id":2}))
        .await;
    assert_eq!(
        (
            start["type"].as_str(),
            start["you"].as_str(),
            start["id"].as_i64()
        ),
        (Some("game_start"), Some("yellow"), Some(2))
    );
    assert_eq!(host.recv_type("game_start").await["you"], "red");
    let spectator_start = watcher.recv_type("game_start").await;
    assert!(spectator_start.get("you").is_none());
    let (mut late, _) = server.connect().await;
    assert_eq!(
        late.ask(json!({"type":"join_game","join_key":join_key}))
            .await["code"],
        "not_found",
        "a join key is spent once used"
    );
    play([&mut host, &mut guest], &game_id(&start), &columns(&[0])).await;
    assert_eq!(
        watcher.recv_type("moved").await["move"],
        json!({"column":0,"row":0})
    );
}

#[tokio::test]
async fn match3_starts_alone_and_scores_a_swap() {
    let server = TestServer::start();
    let (mut player, _) = server.connect().await;
    assert_eq!(
        player
            .ask(json!({"type":"find_game","game":"match3"}))
            .await["type"],
        "queued"
    );
    let start = player.recv_type("game_start").await;
    assert_eq!(
        (start["you"].as_str(), start["turn"].as_str()),
        (Some("solo"), Some("solo"))
    );
    let board = start["board"].clone();
    let (from, to) = find_swap(&board).expect("a new board has a valid move");
    let moved = player
        .ask(json!({"type":"move","game_id":game_id(&start),"from":from,"to":to}))
        .await;
    assert_eq!(moved["type"], "moved", "{moved}");
    assert_eq!(moved["move"]["moves_left"], 29);
    let steps = moved["move"]["steps"].as_array().unwrap();
    assert!(!steps.is_empty() && !steps[0]["cleared"].as_array().unwrap().is_empty());
    assert!(moved["move"]["score"].as_u64().unwrap() >= 10);
    assert_eq!(moved["board"], steps.last().unwrap()["board"]);
}

#[tokio::test]
async fn match3_refuses_bad_swaps() {
    let server = TestServer::start();
    let (mut player, _) = server.connect().await;
    let created = player
        .ask(json!({"type":"create_game","game":"match3"}))
        .await;
    assert_eq!(created["type"], "game_created");
    let start = player.recv_type("game_start").await;
    let id = game_id(&start);
    let swap = |from: Value, to: Value| json!({"type":"move","game_id":id,"from":from,"to":to});
    assert_eq!(
        player.ask(swap(json!([0, 0]), json!([2, 2]))).await["code"],
        "illegal_move"
    );
    assert_eq!(
        player.ask(swap(json!([0, 0]), json!([0, 8]))).await["code"],
        "bad_request"
    );
    assert_eq!(
        player.ask(swap(json!([0]), json!([0, 1]))).await["code"],
        "bad_request"
    );
    // A random 8×8 board always has some swap that matches nothing.
    let (from, to) = find_dud(&start["board"]).expect("a swap that matches nothing");
    assert_eq!(
        player.ask(swap(json!(from), json!(to))).await["code"],
        "illegal_move"
    );
}

/// A swap of neighbours that makes a line of three on `board`: the first
/// one match three's own search finds.
pub fn find_swap(board: &Value) -> Option<([u8; 2], [u8; 2])> {
    let board = Board::deserialize(board).expect("a match3 board of 8 rows of 8 gems");
    find_valid_move(&board).map(|swap| (swap.from, swap.to))
}

/// A swap of neighbours that makes no line.
fn find_dud(board: &Value) -> Option<([usize; 2], [usize; 2])> {
    swaps().find(|(from, to)| !makes_line(board, *from, *to))
}

fn swaps() -> impl Iterator<Item = ([usize; 2], [usize; 2])> {
    (0..8)
        .flat_map(|r| (0..8).flat_map(move |c| [([r, c], [r, c + 1]), ([r, c], [r + 1, c])]))
        .filter(|(_, to)| to[0] < 8 && to[1] < 8)
}

fn makes_line(board: &Value, from: [usize; 2], to: [usize; 2]) -> bool {
    let mut grid: Vec<Vec<u64>> = board
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|g| g.as_u64().unwrap())
                .collect()
        })
        .collect();
    let kept = grid[from[0]][from[1]];
    grid[from[0]][from[1]] = grid[to[0]][to[1]];
    grid[to[0]][to[1]] = kept;
    let across = (0..8)
        .any(|r| (0..6).any(|c| grid[r][c] == grid[r][c + 1] && grid[r][c] == grid[r][c + 2]));
    let down = (0..6)
        .any(|r| (0..8).any(|c| grid[r][c] == grid[r + 1][c] && grid[r][c] == grid[r + 2][c]));
    across || down
}

#[tokio::test]
async fn queueing_twice_cancelling_and_bad_kinds() {
    let server = TestServer::start();
    let (mut client, _) = server.connect().await;
    client
        .ask(json!({"type":"find_game","game":"connect4"}))
        .await;
    let again = client
        .ask(json!({"type":"find_game","game":"tictactoe"}))
        .await;
    assert_eq!(
        (again["code"].as_str(), again["ref"].as_str()),
        (Some("already_queued"), Some("find_game"))
    );
    assert_eq!(
        server
            .metric("parlor_queue_length{game=\"connect4\"}")
            .await,
        1.0
    );
    let cancelled = client
        .ask(json!({"type":"cancel_find","game":"connect4"}))
        .await;
    assert_eq!(
        cancelled,
        json!({"type":"find_cancelled","game":"connect4"})
    );
    assert_eq!(
        server
            .metric("parlor_queue_length{game=\"connect4\"}")
            .await,
        0.0
    );
    let again = client
        .ask(json!({"type":"cancel_find","game":"connect4"}))
        .await;
    assert_eq!(
        again["type"], "find_cancelled",
        "answered when not queued too"
    );
    let chess = client.ask(json!({"type":"find_game","game":"chess"})).await;
    assert_eq!(chess["code"], "bad_request");
    assert!(chess["message"].as_str().unwrap().contains("game"));
}

#[tokio::test]
async fn a_queued_session_that_drops_leaves_the_queue() {
    let server = TestServer::start();
    let (mut gone, _) = server.connect().await;
    gone.ask(json!({"type":"find_game","game":"tictactoe"}))
        .await;
    drop(gone);
    server.wait_for_sessions(0).await;
    let (mut waiting, _) = server.connect().await;
    waiting
        .ask(json!({"type":"find_game","game":"tictactoe"}))
        .await;
    waiting.idle(Duration::from_millis(300)).await;
    assert_eq!(
        server
            .metric("parlor_queue_length{game=\"tictactoe\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn quick_matches_are_listed_until_they_end() {
    let server = TestServer::start();
    let (_x, start, mut o, _) = pair(&server, "tictactoe").await;
    let games = server.get_json("/api/games").await;
    assert_eq!(games.as_array().unwrap().len(), 1);
    let listed = &games[0];
    assert_eq!(
        (&listed["game_id"], listed["game"].as_str()),
        (&start["game_id"], Some("tictactoe"))
    );
    assert_eq!(listed["watch_key"], start["watch_key"]);
    assert_eq!(listed["players"], start["players"]);
    assert!(listed["started_at"].as_str().unwrap().ends_with('Z'));
    o.ask(json!({"type":"resign","game_id":game_id(&start)}))
        .await;
    assert_eq!(server.get_json("/api/games").await, json!([]));
}

#[tokio::test]
async fn resume_restores_the_seat_and_tells_the_opponent() {
    let server = TestServer::start();
    let (mut x, start, mut o, o_welcome) = pair_keeping_welcome(&server, "tictactoe").await;
    let id = game_id(&start);
    play([&mut x, &mut o], &id, &cells(&[4])).await;
    drop(o);
    assert_eq!(x.recv_type("opponent_away").await["seat"], "O");
    let token = o_welcome["resume"].as_str().unwrap();
    let (mut back, welcome) = server.connect_with(&format!("resume={token}")).await;
    assert_eq!(welcome["session"], o_welcome["session"]);
    assert_eq!(back.recv_type("resumed").await["games"], json!([id]));
    let state = back.recv_type("game_state").await;
    assert_eq!(
        (state["you"].as_str(), state["turn"].as_str()),
        (Some("O"), Some("O"))
    );
    assert_eq!(state["moves"], json!([{"cell":4}]));
    assert_eq!(
        x.recv_type("opponent_back").await,
        json!({"type":"opponent_back","game_id":id,"seat":"O"})
    );
    play([&mut back, &mut x], &id, &cells(&[0])).await;
}

#[tokio::test]
async fn a_player_who_stays_away_abandons_the_game() {
    let server =
        TestServer::with(|config| config.games.reconnect_grace_ms = NonZero::new(300).unwrap());
    let (mut x, start, o, _) = pair(&server, "connect4").await;
    drop(o);
    assert_eq!(x.recv_type("opponent_away").await["grace_ms"], 300);
    let over = x.recv_type("game_over").await;
    assert_eq!(
        (over["result"].as_str(), over["winner"].as_str()),
        (Some("abandoned"), Some("red"))
    );
    assert_eq!(over["game_id"], start["game_id"]);
}

#[tokio::test]
async fn a_finished_game_lingers_then_is_gone() {
    let server = TestServer::with(|config| config.games.linger_ms = 1500);
    let (mut x, start, mut o, _) = pair(&server, "tictactoe").await;
    let id = game_id(&start);
    o.ask(json!({"type":"resign","game_id":id})).await;
    x.recv_type("game_over").await;
    let (mut watcher, _) = server.connect().await;
    let last = watcher
        .ask(json!({"type":"watch_game","watch_key":start["watch_key"]}))
        .await;
    assert_eq!(
        (
            last["status"].as_str(),
            last["result"].as_str(),
            last["winner"].as_str()
        ),
        (Some("over"), Some("forfeit"), Some("X"))
    );
    assert_eq!(
        x.ask(json!({"type":"move","game_id":id,"cell":0})).await["code"],
        "game_over"
    );
    let mut code = Value::Null;
    for _ in 0..100 {
        code = x.ask(json!({"type":"move","game_id":id,"cell":0})).await["code"].clone();
        if code == "not_found" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(code, "not_found", "after games.linger_ms the game is gone");
    let gone = watcher
        .ask(json!({"type":"watch_game","watch_key":start["watch_key"]}))
        .await;
    assert_eq!(gone["code"], "not_found");
    assert_eq!(server.metric("parlor_games{game=\"tictactoe\"}").await, 0.0);
}

#[tokio::test]
async fn games_are_counted_by_kind() {
    let server = TestServer::start();
    let (_x, _, _o, _) = pair(&server, "connect4").await;
    assert_eq!(server.metric("parlor_games{game=\"connect4\"}").await, 1.0);
}

#[tokio::test]
async fn connect4_full_board_is_a_draw() {
    let server = TestServer::start();
    let (mut red, start, mut yellow, _) = pair(&server, "connect4").await;
    // 42 moves found by a random search that never completes four in a row.
    let order = [
        5, 3, 2, 3, 1, 5, 3, 1, 0, 1, 4, 1, 2, 5, 0, 5, 6, 6, 2, 0, 6, 0, 4, 2, 3, 0, 3, 4, 2, 3,
        2, 6, 0, 4, 1, 1, 5, 4, 4, 5, 6, 6,
    ];
    play([&mut red, &mut yellow], &game_id(&start), &columns(&order)).await;
    let over = red.recv_type("game_over").await;
    assert_eq!(
        (over["result"].as_str(), &over["winner"]),
        (Some("draw"), &Value::Null)
    );
}

#[tokio::test]
async fn match3_plays_to_its_end() {
    let server = TestServer::start();
    let (mut player, _) = server.connect().await;
    player
        .ask(json!({"type":"find_game","game":"match3"}))
        .await;
    let start = player.recv_type("game_start").await;
    let id = game_id(&start);
    let mut board = start["board"].clone();
    let mut played = 0;
    let over = loop {
        let (from, to) =
            find_swap(&board).expect("the game goes on only while a move can make a line");
        let moved = player
            .ask(json!({"type":"move","game_id":id,"from":from,"to":to}))
            .await;
        played += 1;
        assert_eq!(moved["move"]["moves_left"], 30 - played, "{moved}");
        board = moved["board"].clone();
        if moved["turn"].is_null() {
            break player.recv_type("game_over").await;
        }
    };
    assert_eq!(
        (over["result"].as_str(), &over["winner"]),
        (Some("finished"), &Value::Null)
    );
    assert!(over["score"].as_u64().unwrap() >= 10 * played);
    assert!(played == 30 || find_swap(&board).is_none());
}

#[tokio::test]
async fn the_first_error_that_applies_wins() {
    let server = TestServer::start();
    let (mut x, start, mut o, _) = pair(&server, "tictactoe").await;
    let id = game_id(&start);
    play([&mut x, &mut o], &id, &cells(&[4])).await;
    // Out of turn and onto a taken cell: not_your_turn comes first.
    assert_eq!(
        x.ask(json!({"type":"move","game_id":id,"cell":4})).await["code"],
        "not_your_turn"
    );
    let (mut watcher, _) = server.connect().await;
    watcher
        .ask(json!({"type":"watch_game","watch_key":start["watch_key"]}))
        .await;
    o.ask(json!({"type":"resign","game_id":id})).await;
    x.recv_type("game_over").await;
    watcher.recv_type("game_over").await;
    // A spectator moving in a finished game: not_a_player before game_over.
    assert_eq!(
        watcher
            .ask(json!({"type":"move","game_id":id,"cell":0}))
            .await["code"],
        "not_a_player"
    );
    // Out of turn in a finished game: game_over before not_your_turn.
    assert_eq!(
        o.ask(json!({"type":"move","game_id":id,"cell":0})).await["code"],
        "game_over"
    );
}

#[tokio::test]
async fn spectators_see_away_back_and_the_end() {
    let server = TestServer::start();
    let (mut x, start, o, o_welcome) = pair_keeping_welcome(&server, "connect4").await;
    let (mut watcher, _) = server.connect().await;
    watcher
        .ask(json!({"type":"watch_game","watch_key":start["watch_key"]}))
        .await;
    drop(o);
    assert_eq!(watcher.recv_type("opponent_away").await["seat"], "yellow");
    let token = o_welcome["resume"].as_str().unwrap();
    let (mut back, _) = server.connect_with(&format!("resume={token}")).await;
    assert_eq!(watcher.recv_type("opponent_back").await["seat"], "yellow");
    back.recv_type("resumed").await;
    back.recv_type("game_state").await;
    x.ask(json!({"type":"resign","game_id":start["game_id"]}))
        .await;
    assert_eq!(watcher.recv_type("game_over").await["winner"], "yellow");
}

#[tokio::test]
async fn a_takeover_mid_game_keeps_the_seat() {
    let server = TestServer::start();
    let (mut x, start, mut o, o_welcome) = pair_keeping_welcome(&server, "tictactoe").await;
    let token = o_welcome["resume"].as_str().unwrap();
    let (mut newer, _) = server.connect_with(&format!("resume={token}")).await;
    assert_eq!(o.ending().await, crate::support::Ending::Closed(4001));
    newer.recv_type("resumed").await;
    assert_eq!(newer.recv_type("game_state").await["you"], "O");
    // The old connection's drop may reach the game before the new one's
    // return: then X sees the seat go away and come back, nothing else.
    while let Ok(frame) = tokio::time::timeout(Duration::from_millis(300), x.recv()).await {
        assert!(
            ["opponent_away", "opponent_back"].contains(&frame["type"].as_str().unwrap()),
            "{frame}"
        );
    }
    // Either way the seat belongs to the newer connection and play goes on.
    play([&mut x, &mut newer], &game_id(&start), &cells(&[0, 4])).await;
}

#[tokio::test]
async fn a_resume_after_the_game_ended_shows_it_over() {
    let server = TestServer::start();
    let (mut x, start, o, o_welcome) = pair_keeping_welcome(&server, "tictactoe").await;
    drop(o);
    x.recv_type("opponent_away").await;
    x.ask(json!({"type":"resign","game_id":start["game_id"]}))
        .await;
    let token = o_welcome["resume"].as_str().unwrap();
    let (mut back, _) = server.connect_with(&format!("resume={token}")).await;
    back.recv_type("resumed").await;
    let state = back.recv_type("game_state").await;
    assert_eq!(
        (state["status"].as_str(), state["winner"].as_str()),
        (Some("over"), Some("O"))
    );
}

#[tokio::test]
async fn both_players_away_means_no_winner() {
    let server =
        TestServer::with(|config| config.games.reconnect_grace_ms = NonZero::new(300).unwrap());
    let (x, start, o, _) = pair(&server, "tictactoe").await;
    let (mut watcher, _) = server.connect().await;
    watcher
        .ask(json!({"type":"watch_game","watch_key":start["watch_key"]}))
        .await;
    drop(x);
    drop(o);
    let over = loop {
        let frame = watcher.recv().await;
        if frame["type"] == "game_over" {
            break frame;
        }
    };
    assert_eq!(
        (over["result"].as_str(), &over["winner"]),
        (Some("abandoned"), &Value::Null)
    );
}

#[tokio::test]
async fn a_match3_game_has_no_seat_to_join_and_keeps_its_score_on_resign() {
    let server = TestServer::start();
    let (mut player, _) = server.connect().await;
    let created = player
        .ask(json!({"type":"create_game","game":"match3"}))
        .await;
    assert_eq!(created["join_key"], Value::Null, "{created}");
    let start = player.recv_type("game_start").await;
    let (from, to) = find_swap(&start["board"]).unwrap();
    let moved = player
        .ask(json!({"type":"move","game_id":game_id(&start),"from":from,"to":to}))
        .await;
    let over = player
        .ask(json!({"type":"resign","game_id":game_id(&start)}))
        .await;
    assert_eq!(
        (over["result"].as_str(), &over["winner"]),
        (Some("forfeit"), &Value::Null)
    );
    assert_eq!(over["score"], moved["move"]["score"]);
}

#[tokio::test]
async fn a_finished_private_game_cannot_be_joined() {
    let server = TestServer::start();
    let (mut host, _) = server.connect().await;
    let created = host
        .ask(json!({"type":"create_game","game":"tictactoe"}))
        .await;
    host.ask(json!({"type":"resign","game_id":created["game_id"]}))
        .await;
    let (mut guest, _) = server.connect().await;
    let join = guest
        .ask(json!({"type":"join_game","join_key":created["join_key"]}))
        .await;
    assert_eq!(join["code"], "not_found");
}

#[tokio::test]
async fn a_resume_that_takes_over_leaves_the_queue() {
    let server = TestServer::start();
    let (mut first, welcome) = server.connect().await;
    first
        .ask(json!({"type":"find_game","game":"connect4"}))
        .await;
    let token = welcome["resume"].as_str().unwrap();
    let (mut newer, _) = server.connect_with(&format!("resume={token}")).await;
    newer.recv_type("resumed").await;
    assert_eq!(
        newer
            .ask(json!({"type":"find_game","game":"connect4"}))
            .await["type"],
        "queued"
    );
}

#[tokio::test]
async fn a_guest_who_watched_then_joined_gets_each_event_once() {
    let server = TestServer::start();
    let (mut host, _) = server.connect().await;
    let created = host
        .ask(json!({"type":"create_game","game":"tictactoe"}))
        .await;
    let (mut guest, _) = server.connect().await;
    let waiting = guest
        .ask(json!({"type":"watch_game","watch_key":created["watch_key"]}))
        .await;
    assert_eq!(waiting["status"], "waiting");
    let start = guest
        .ask(json!({"type":"join_game","join_key":created["join_key"]}))
        .await;
    assert_eq!(start["type"], "game_start");
    let id = game_id(&start);
    let host_start = host.recv_type("game_start").await;
    let (mut first, mut second) = if host_start["you"] == host_start["turn"] {
        (host, guest)
    } else {
        (guest, host)
    };
    // A win in five moves; each player must see each `moved` exactly once.
    let over = play([&mut first, &mut second], &id, &cells(&[0, 3, 1, 4, 2])).await;
    assert_eq!(over["type"], "moved");
    for player in [&mut first, &mut second] {
        assert_eq!(player.recv_type("game_over").await["result"], "win");
        // An echo is a barrier: nothing of the game may come before it.
        assert_eq!(player.ask(json!({"type":"echo"})).await["type"], "echo");
    }
}

#[tokio::test]
async fn game_created_comes_before_game_start_and_its_game_is_reachable() {
    // Games start on the workers in turn, so with two workers a match three
    // game often starts on another thread than the Lobby's answer.
    let server = TestServer::with(|config| config.server.workers = 2);
    for _ in 0..20 {
        let (mut player, _) = server.connect().await;
        let created = player
            .ask(json!({"type":"create_game","game":"match3","id":7}))
            .await;
        assert_eq!(
            (created["type"].as_str(), created["id"].as_i64()),
            (Some("game_created"), Some(7))
        );
        // A request sent on `game_created` alone already finds the game.
        player
            .send(json!({"type":"resign","game_id":created["game_id"]}))
            .await;
        let start = player.recv_type("game_start").await;
        assert_eq!(start["game_id"], created["game_id"]);
        assert_eq!(player.recv_type("game_over").await["result"], "forfeit");
    }
}

#[tokio::test]
async fn connect4_bad_columns_and_a_full_column() {
    let server = TestServer::start();
    let (mut red, start, mut yellow, _) = pair(&server, "connect4").await;
    let id = game_id(&start);
    let drop_in = |column: Value| json!({"type":"move","game_id":id,"column":column});
    for column in [json!(7), json!(-1), json!("a"), json!(2.5)] {
        let error = red.ask(drop_in(column.clone())).await;
        assert_eq!(
            (error["code"].as_str(), error["ref"].as_str()),
            (Some("bad_request"), Some("move")),
            "column {column}: {error}"
        );
    }
    // Six discs fill column 3 without a line of four.
    play([&mut red, &mut yellow], &id, &columns(&[3, 3, 3, 3, 3, 3])).await;
    let full = red.ask(drop_in(json!(3))).await;
    assert_eq!(full["code"], "illegal_move", "{full}");
    // The game goes on.
    play([&mut red, &mut yellow], &id, &columns(&[0])).await;
}

#[tokio::test]
async fn a_session_waits_in_or_plays_a_limited_number_of_games() {
    let server = TestServer::with(|config| config.games.max_per_session = NonZero::new(2).unwrap());
    let (mut ada, _) = server.connect().await;
    let first = ada
        .ask(json!({"type":"create_game","game":"connect4"}))
        .await;
    ada.ask(json!({"type":"create_game","game":"tictactoe"}))
        .await;
    let (mut bob, _) = server.connect().await;
    let bobs = bob
        .ask(json!({"type":"create_game","game":"tictactoe"}))
        .await;
    for request in [
        json!({"type":"create_game","game":"match3","id":1}),
        json!({"type":"find_game","game":"connect4","id":2}),
        json!({"type":"join_game","join_key":bobs["join_key"],"id":3}),
    ] {
        let refused = ada.ask(request.clone()).await;
        assert_eq!(
            (refused["code"].as_str(), &refused["ref"], &refused["id"]),
            (Some("too_many_games"), &request["type"], &request["id"]),
            "{refused}"
        );
    }
    // Watching does not count.
    let watched = ada
        .ask(json!({"type":"watch_game","watch_key":first["watch_key"]}))
        .await;
    assert_eq!(watched["type"], "game_state");
    // A game that ended no longer counts.
    ada.ask(json!({"type":"resign","game_id":first["game_id"]}))
        .await;
    let again = ada.ask(json!({"type":"find_game","game":"connect4"})).await;
    assert_eq!(again["type"], "queued", "{again}");
    // A queued quick match counts too.
    let refused = ada.ask(json!({"type":"create_game","game":"match3"})).await;
    assert_eq!(refused["code"], "too_many_games");
}

#[tokio::test]
async fn resigning_a_private_game_still_waiting_ends_it_and_records_nothing() {
    let server = TestServer::start();
    let (mut host, _) = server.connect().await;
    let created = host
        .ask(json!({"type":"create_game","game":"tictactoe"}))
        .await;
    let early = host
        .ask(json!({"type":"move","game_id":created["game_id"],"cell":"zero"}))
        .await;
    assert_eq!(early["code"], "not_your_turn", "waiting beats a bad field");
    let over = host
        .ask(json!({"type":"resign","game_id":created["game_id"]}))
        .await;
    assert_eq!(
        (&over["type"], &over["result"], &over["winner"]),
        (&json!("game_over"), &json!("forfeit"), &Value::Null)
    );
    let (mut guest, _) = server.connect().await;
    let late = guest
        .ask(json!({"type":"join_game","join_key":created["join_key"]}))
        .await;
    assert_eq!(late["code"], "not_found");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.get_json("/api/history").await, json!([]));
}

#[tokio::test]
async fn a_move_is_refused_for_the_first_reason_in_protocol_order() {
    let server = TestServer::start();
    let (mut x, start, mut o, _) = pair(&server, "connect4").await;
    let id = game_id(&start);
    let (mut watcher, _) = server.connect().await;
    watcher
        .ask(json!({"type":"watch_game","watch_key":start["watch_key"]}))
        .await;
    let bad = json!({"type":"move","game_id":id,"column":"left"});
    assert_eq!(watcher.ask(bad.clone()).await["code"], "not_a_player");
    assert_eq!(o.ask(bad.clone()).await["code"], "not_your_turn");
    assert_eq!(x.ask(bad.clone()).await["code"], "bad_request");
    o.ask(json!({"type":"resign","game_id":id})).await;
    x.recv_type("game_over").await;
    assert_eq!(x.ask(bad).await["code"], "game_over");
}
