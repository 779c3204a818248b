//! The `games` scenario: players queue through the lobby's quick match
//! (match three alone, the others in pairs) and move at a steady rate;
//! a move's round trip runs from sending it until its own `moved` returns.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parlor::game::match3::{find_valid_move, Board};
use rand::seq::SliceRandom;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::{sleep_until, Instant as TokioInstant};
use tokio_tungstenite::tungstenite::Message;

use super::{drive, gap};
use crate::{
    client::{event_of, open},
    report::{count_answer, count_sent, new_tally, report, Report, Shared},
    GamesArgs,
};

pub(crate) async fn run_games(args: GamesArgs) -> Report {
    let tally = new_tally();
    let solo = args.game == "match3";
    let sessions = if solo { args.games } else { args.games * 2 };
    let gap = gap(args.rate);
    let seconds = drive(
        &args.common,
        args.duration,
        sessions,
        &tally,
        |n, stop_at| {
            let (url, game, tally) = (args.common.url(n), args.game.clone(), tally.clone());
            async move { player(url, n, game, gap, stop_at, tally).await }
        },
    )
    .await;
    report("games", &args.common, u64::from(sessions), seconds, &tally)
}

/// One player: queues, and when it is its turn moves `gap` after the
/// game's previous move (or its start), so a game makes one move a `gap`;
/// queues again when a game ends, until `stop_at`.
async fn player(
    url: String,
    n: u32,
    game: String,
    gap: Duration,
    stop_at: TokioInstant,
    tally: Shared,
) {
    let Some(mut socket) = open(&url, n, &tally).await else {
        return;
    };
    let find = json!({"type":"find_game","game":game}).to_string();
    if socket.send(Message::text(find.clone())).await.is_err() {
        return;
    }
    let mut table = Table::default();
    let mut next_move = TokioInstant::now();
    let mut pending: Option<Instant> = None;
    loop {
        let my_turn = table.my_turn() && pending.is_none() && TokioInstant::now() < stop_at;
        tokio::select! {
            () = sleep_until(next_move), if my_turn => {
                // Whatever comes of this, the next try waits a gap.
                next_move = TokioInstant::now() + gap;
                let request = match table.legal_move() {
                    Some(request) => {
                        count_sent(&tally);
                        pending = Some(Instant::now());
                        request
                    }
                    None => {
                        // Resigning ends the game for both players, who queue again.
                        tally.borrow_mut().error("no legal move (resigned)".to_string());
                        table.resign()
                    }
                };
                if socket.send(Message::text(request.to_string())).await.is_err() {
                    return;
                }
            }
            frame = socket.next() => {
                let Some(event) = event_of(frame, &tally) else { return };
                let Some(event) = event else { continue };
                match table.apply(&event) {
                    Some(Happened::Started) => next_move = TokioInstant::now() + gap,
                    Some(Happened::Moved { mine }) => {
                        next_move = TokioInstant::now() + gap;
                        if mine {
                            if let Some(sent_at) = pending.take() {
                                count_answer(&tally, sent_at);
                            }
                        }
                    }
                    Some(Happened::Over { first_seat }) => {
                        if first_seat {
                            tally.borrow_mut().games_finished += 1;
                        }
                        pending = None;
                        if socket.send(Message::text(find.clone())).await.is_err() {
                            return;
                        }
                    }
                    Some(Happened::Error(code)) => {
                        pending = None;
                        tally.borrow_mut().error(code);
                    }
                    None => {}
                }
            }
        }
    }
}

/// What a frame meant to a player.
pub(crate) enum Happened {
    /// A game began for this player.
    Started,
    /// The server accepted a move in this player's game; `mine` if this
    /// player made it.
    Moved { mine: bool },
    /// The game ended; both players see it, the first seat counts it.
    Over { first_seat: bool },
    /// An error frame, with its code.
    Error(String),
}

/// A player's view of its current game.
#[derive(Default)]
pub(crate) struct Table {
    game_id: Option<String>,
    game: String,
    me: String,
    turn: Option<String>,
    board: Value,
    first_seat: bool,
}

impl Table {
    pub(crate) fn in_game(&self) -> bool {
        self.game_id.is_some()
    }

    pub(crate) fn my_turn(&self) -> bool {
        self.game_id.is_some() && self.turn.as_deref() == Some(self.me.as_str())
    }

    pub(crate) fn apply(&mut self, event: &Value) -> Option<Happened> {
        let text = |key: &str| event[key].as_str().map(str::to_string);
        match event["type"].as_str()? {
            // A resync after a resume: the game as it is now, if it goes on.
            "game_state" if event["you"].is_string() && event["status"] != "playing" => {
                self.game_id = None;
                Some(Happened::Over { first_seat: false })
            }
            "game_start" | "game_state" if event["you"].is_string() => {
                self.game_id = text("game_id");
                self.game = text("game").unwrap_or_default();
                self.me = text("you").unwrap_or_default();
                self.first_seat = event["players"][0]["seat"] == event["you"];
                self.turn = text("turn");
                self.board = event["board"].clone();
                Some(Happened::Started)
            }
            "moved" if text("game_id") == self.game_id => {
                self.turn = text("turn");
                self.board = event["board"].clone();
                let mine = text("seat").as_deref() == Some(self.me.as_str());
                Some(Happened::Moved { mine })
            }
            "game_over" if text("game_id") == self.game_id => {
                self.game_id = None;
                Some(Happened::Over {
                    first_seat: self.first_seat,
                })
            }
            "error" => Some(Happened::Error(text("code").unwrap_or_default())),
            _ => None,
        }
    }

    /// Gives up the current game.
    pub(crate) fn resign(&self) -> Value {
        json!({"type":"resign","game_id":self.game_id})
    }

    /// A legal move on the board as last seen: a random one in tic-tac-toe
    /// and connect four, the first swap that makes a line in match three.
    pub(crate) fn legal_move(&self) -> Option<Value> {
        let game_id = self.game_id.as_ref()?;
        let mut rng = rand::thread_rng();
        let fields = match self.game.as_str() {
            "tictactoe" => {
                let free: Vec<usize> = (0..9).filter(|&cell| self.board[cell].is_null()).collect();
                json!({"cell": free.choose(&mut rng)?})
            }
            "connect4" => {
                let open: Vec<usize> = (0..7)
                    .filter(|&column| self.board[5][column].is_null())
                    .collect();
                json!({"column": open.choose(&mut rng)?})
            }
            "match3" => {
                // A board of the wrong shape or with a gem past u8 has no move.
                let board = Board::deserialize(&self.board).ok()?;
                let swap = find_valid_move(&board)?;
                json!({"from": swap.from, "to": swap.to})
            }
            _ => return None,
        };
        let mut request = json!({"type":"move","game_id":game_id});
        if let (Value::Object(request), Value::Object(fields)) = (&mut request, fields) {
            request.extend(fields);
        }
        Some(request)
    }
}
