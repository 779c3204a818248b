//! Playing the computer through the real server (PROTOCOL.md, *Playing the
//! computer*): `play_bot` at each level, who moves first, the bot's delay,
//! a quick match that falls back to a bot, and bot games listed, watched
//! and recorded like any other.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{Client, TestServer};

/// A server whose bots answer after `delay_ms`.
fn server_with_delay(delay_ms: u64) -> TestServer {
    TestServer::with(|config| config.games.bot_delay_ms = delay_ms)
}

fn game_id(start: &Value) -> Value {
    start["game_id"].clone()
}

/// The free cells of a tic-tac-toe board.
fn free_cells(board: &Value) -> Vec<u64> {
    let cells = board.as_array().expect("a board");
    (0..9).filter(|&c| cells[c as usize].is_null()).collect()
}

/// X's or O's best cell on `board` by full minimax (the test's own
/// perfect player), `mark` to move.
fn perfect_cell(board: &[Option<char>; 9], mark: char) -> usize {
    fn line(board: &[Option<char>; 9], mark: char) -> bool {
        const LINES: [[usize; 3]; 8] = [
            [0, 1, 2],
            [3, 4, 5],
            [6, 7, 8],
            [0, 3, 6],
            [1, 4, 7],
            [2, 5, 8],
            [0, 4, 8],
            [2, 4, 6],
        ];
        LINES
            .iter()
            .any(|l| l.iter().all(|&c| board[c] == Some(mark)))
    }
    fn value(board: &mut [Option<char>; 9], mark: char) -> i32 {
        let other = if mark == 'X' { 'O' } else { 'X' };
        let mut best = None;
        for cell in 0..9 {
            if board[cell].is_some() {
                continue;
            }
            board[cell] = Some(mark);
            let v = if line(board, mark) {
                10
            } else {
                -value(board, other) * 9 / 10
            };
            board[cell] = None;
            best = Some(best.map_or(v, |b: i32| b.max(v)));
        }
        best.unwrap_or(0)
    }
    let other = if mark == 'X' { 'O' } else { 'X' };
    let mut board = *board;
    let free: Vec<usize> = (0..9).filter(|&c| board[c].is_none()).collect();
    free.into_iter()
        .max_by_key(|&c| {
            board[c] = Some(mark);
            let v = if line(&board, mark) {
                100
            } else {
                -value(&mut board, other)
            };
            board[c] = None;
            v
        })
        .expect("a free cell")
}

fn as_marks(board: &Value) -> [Option<char>; 9] {
    let mut marks = [None; 9];
    for (cell, mark) in board.as_array().expect("a board").iter().enumerate() {
        marks[cell] = mark.as_str().and_then(|m| m.chars().next());
    }
    marks
}

/// Plays a tic-tac-toe game against the bot as `me`, choosing each cell
/// with `choose`, until it ends; checks every bot move came at least
/// `delay` after the move it answers. Returns `game_over`.
async fn play_out(
    player: &mut Client,
    start: &Value,
    delay: Duration,
    mut choose: impl FnMut(&Value) -> u64,
) -> Value {
    let id = game_id(start);
    let me = start["you"].as_str().expect("you").to_string();
    let mut board = start["board"].clone();
    let mut my_turn = start["turn"] == me.as_str();
    let mut asked = None;
    loop {
        if my_turn {
            let cell = choose(&board);
            // Before the request leaves: the server's delay starts later.
            asked = Some(Instant::now());
            let moved = player
                .ask(json!({"type":"move","game_id":id,"cell":cell}))
                .await;
            assert_eq!(moved["type"], "moved", "{moved}");
            if moved["turn"].is_null() {
                return player.recv_type("game_over").await;
            }
        }
        let moved = player.recv_type("moved").await;
        assert_ne!(moved["seat"], me.as_str(), "{moved}");
        if let Some(asked) = asked {
            assert!(
                asked.elapsed() >= delay,
                "the bot answered after {:?}, before games.bot_delay_ms",
                asked.elapsed()
            );
        }
        board = moved["board"].clone();
        if moved["turn"].is_null() {
            return player.recv_type("game_over").await;
        }
        my_turn = true;
    }
}

#[tokio::test]
async fn hard_tictactoe_answers_after_the_delay_and_never_loses() {
    let delay = Duration::from_millis(150);
    let server = server_with_delay(150);
    let (mut player, _) = server.connect().await;
    for first in ["you", "bot"] {
        let start = player
            .ask(json!({"type":"play_bot","game":"tictactoe","level":"hard","first":first,"id":"b1"}))
            .await;
        assert_eq!(start["type"], "game_start", "{start}");
        assert_eq!(start["id"], "b1", "game_start answers play_bot");
        let me = if first == "you" { "X" } else { "O" };
        assert_eq!(start["you"], me);
        let bot = &start["players"][if first == "you" { 1 } else { 0 }];
        assert_eq!(
            (bot["name"].as_str(), &bot["bot"]),
            (Some("Parlor bot (hard)"), &json!(true)),
            "{start}"
        );
        let person = &start["players"][if first == "you" { 0 } else { 1 }];
        assert_eq!(person.get("bot"), None, "people have no bot field");
        // Random play by the person: the bot must win or draw.
        let mut n = 0u64;
        let over = play_out(&mut player, &start, delay, |board| {
            n += 1;
            let free = free_cells(board);
            free[(n as usize * 7) % free.len()]
        })
        .await;
        assert_ne!(over["winner"], me, "the hard bot lost: {over}");
    }
}

#[tokio::test]
async fn a_person_beats_the_easy_bot() {
    let server = server_with_delay(0);
    let (mut player, _) = server.connect().await;
    // A perfect player beats a bot that only takes wins in one in most
    // games: within twenty, surely.
    for _ in 0..20 {
        let start = player
            .ask(json!({"type":"play_bot","game":"tictactoe","level":"easy"}))
            .await;
        assert_eq!(start["you"], "X");
        let over = play_out(&mut player, &start, Duration::ZERO, |board| {
            perfect_cell(&as_marks(board), 'X') as u64
        })
        .await;
        if over["winner"] == "X" {
            let history = server.get_json("/api/history").await;
            let record = &history[0];
            assert_eq!(record["game_id"], start["game_id"]);
            assert_eq!(record["players"][1]["bot"], true, "{record}");
            assert_eq!(record["players"][0].get("bot"), None);
            return;
        }
    }
    panic!("a perfect player never beat the easy bot in twenty games");
}

#[tokio::test]
async fn the_bot_plays_connect4_and_its_game_is_listed_and_watched() {
    let server = server_with_delay(0);
    let (mut player, _) = server.connect().await;
    let start = player
        .ask(json!({"type":"play_bot","game":"connect4","level":"hard","first":"bot"}))
        .await;
    assert_eq!(start["you"], "yellow");
    let first = player.recv_type("moved").await;
    assert_eq!(first["seat"], "red");
    assert_eq!(first["move"]["column"], 3, "hard opens in the centre");
    let games = server.get_json("/api/games").await;
    assert_eq!(games[0]["game_id"], start["game_id"]);
    assert_eq!(games[0]["players"][0]["bot"], true, "{games}");
    let (mut watcher, _) = server.connect().await;
    let state = watcher
        .ask(json!({"type":"watch_game","watch_key":start["watch_key"]}))
        .await;
    assert_eq!(state["type"], "game_state");
    assert_eq!(state["players"][0]["bot"], true);
    assert_eq!(state["moves"].as_array().unwrap().len(), 1);
    // The person plays the leftmost column with room; the bot answers
    // each move, and wins.
    let mut over = None;
    let mut board = first["board"].clone();
    for _ in 0..21 {
        let column = (0..7)
            .find(|&c| board[5][c].is_null())
            .expect("a column with room");
        let moved = player
            .ask(json!({"type":"move","game_id":start["game_id"],"column":column}))
            .await;
        assert_eq!(moved["type"], "moved", "{moved}");
        assert_eq!(watcher.recv_type("moved").await["seat"], "yellow");
        if moved["turn"].is_null() {
            over = Some(player.recv_type("game_over").await);
            break;
        }
        let answer = player.recv_type("moved").await;
        assert_eq!(watcher.recv_type("moved").await["seat"], "red");
        board = answer["board"].clone();
        if answer["turn"].is_null() {
            over = Some(player.recv_type("game_over").await);
            break;
        }
    }
    let over = over.expect("the game ends");
    assert_eq!(
        (&over["result"], &over["winner"]),
        (&json!("win"), &json!("red"))
    );
    assert_eq!(watcher.recv_type("game_over").await, over);
}

#[tokio::test]
async fn resigning_against_the_bot_forfeits_to_it() {
    let server = server_with_delay(0);
    let (mut player, _) = server.connect().await;
    let start = player
        .ask(json!({"type":"play_bot","game":"tictactoe","level":"easy"}))
        .await;
    let over = player
        .ask(json!({"type":"resign","game_id":start["game_id"]}))
        .await;
    assert_eq!(
        (&over["result"], &over["winner"]),
        (&json!("forfeit"), &json!("O"))
    );
    let history = server.get_json("/api/history").await;
    assert_eq!(history[0]["players"][1]["bot"], true, "{history}");
}

#[tokio::test]
async fn play_bot_refuses_match3_bad_levels_and_too_many_games() {
    let server = TestServer::with(|config| {
        config.games.max_per_session = std::num::NonZero::new(1).unwrap();
    });
    let (mut player, _) = server.connect().await;
    let solo = player
        .ask(json!({"type":"play_bot","game":"match3","id":1}))
        .await;
    assert_eq!(
        (&solo["code"], &solo["id"]),
        (&json!("bad_request"), &json!(1))
    );
    let level = player
        .ask(json!({"type":"play_bot","game":"tictactoe","level":"genius"}))
        .await;
    assert_eq!(level["code"], "bad_request", "{level}");
    let first = player
        .ask(json!({"type":"play_bot","game":"tictactoe","first":"me"}))
        .await;
    assert_eq!(first["code"], "bad_request", "{first}");
    // Medium and first:you by default.
    let start = player
        .ask(json!({"type":"play_bot","game":"tictactoe"}))
        .await;
    assert_eq!(start["you"], "X");
    assert_eq!(start["players"][1]["name"], "Parlor bot (medium)");
    let more = player
        .ask(json!({"type":"play_bot","game":"connect4"}))
        .await;
    assert_eq!(more["code"], "too_many_games", "{more}");
}

#[tokio::test]
async fn a_player_alone_in_the_queue_is_paired_with_a_bot() {
    let server = TestServer::with(|config| {
        config.games.bot_after_ms = 300;
        config.games.bot_delay_ms = 0;
    });
    let (mut player, _) = server.connect().await;
    let asked = Instant::now();
    let queued = player
        .ask(json!({"type":"find_game","game":"connect4"}))
        .await;
    assert_eq!(queued["type"], "queued");
    let start = player.recv_type("game_start").await;
    assert!(asked.elapsed() >= Duration::from_millis(300));
    assert_eq!(start["you"], "red");
    assert_eq!(start["players"][1]["name"], "Parlor bot (medium)");
    assert_eq!(start["players"][1]["bot"], true);
    // It left the queue: a new find is queued again, not `already_queued`.
    let again = player
        .ask(json!({"type":"find_game","game":"connect4"}))
        .await;
    assert_eq!(again["type"], "queued", "{again}");
    assert_eq!(
        server
            .metric("parlor_queue_length{game=\"connect4\"}")
            .await,
        1.0
    );
    // Two people who find each other in time play each other.
    let (mut a, _) = server.connect().await;
    let (mut b, _) = server.connect().await;
    a.ask(json!({"type":"find_game","game":"tictactoe"})).await;
    b.ask(json!({"type":"find_game","game":"tictactoe"})).await;
    let start = a.recv_type("game_start").await;
    assert_eq!(start["players"][1].get("bot"), None, "{start}");
    b.recv_type("game_start").await;
    // And the first one's bot-after timer, long past, does nothing to them.
    a.idle(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_game_resigned_while_the_bot_thinks_gets_no_bot_move() {
    let server = server_with_delay(300);
    let (mut player, _) = server.connect().await;
    let start = player
        .ask(json!({"type":"play_bot","game":"connect4","level":"hard"}))
        .await;
    let id = game_id(&start);
    let moved = player
        .ask(json!({"type":"move","game_id":id,"column":3}))
        .await;
    assert_eq!(moved["type"], "moved");
    let over = player.ask(json!({"type":"resign","game_id":id})).await;
    assert_eq!(
        (&over["type"], &over["result"]),
        (&json!("game_over"), &json!("forfeit"))
    );
    // The bot's answer, due 300 ms after the move, never comes.
    player.idle(Duration::from_millis(600)).await;
}
