//! The `churn` scenario: chat members and game players whose connections
//! drop at random (no Close frame) and come back with their resume token
//! and their count of numbered frames (PROTOCOL.md, *Reconnecting and
//! recovery*). Every member checks that each sender's broadcasts and each
//! game's moves reach it exactly once and in order across its drops; the
//! report counts frames lost and duplicated (both must be 0), resumes that
//! recovered against those that resynced, and resume latency.
//!
//! Before it drops, a session sends an `echo` and waits for it (and, a
//! player, for its own move's `moved`): everything it sent has then been
//! read by the server, so a gap can only be a frame the server lost.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{json, Value};
use tokio::{
    sync::Notify,
    time::{sleep_until, Instant as TokioInstant},
};
use tokio_tungstenite::tungstenite::Message;

use super::{
    drive,
    games::{Happened, Table},
    gap,
};
use crate::{
    client::{dial, event_of, open, Socket},
    report::{new_tally, report, Report, Shared},
    ChurnArgs,
};

/// The `echo` a session sends before it drops, to know the server has read
/// everything it sent.
const BARRIER: &str = "churn";

/// One door per session: the dropper knocks on one at random.
type Doors = Rc<RefCell<Vec<Rc<Notify>>>>;

pub(crate) async fn run_churn(args: ChurnArgs) -> Report {
    let tally = new_tally();
    let chatters = args.rooms * args.members;
    let sessions = chatters + args.games * 2;
    let doors: Doors = Rc::new(RefCell::new(Vec::new()));
    let stop: Rc<Cell<Option<TokioInstant>>> = Rc::new(Cell::new(None));
    let dropper = tokio::task::spawn_local(dropper(
        doors.clone(),
        gap(args.drops),
        stop.clone(),
        tally.clone(),
    ));
    let broadcast_gap = gap(args.rate);
    let move_gap = gap(args.move_rate);
    let away = Duration::from_millis(args.away_ms);
    let seconds = drive(
        &args.common,
        args.duration,
        sessions,
        &tally,
        |n, stop_at| {
            stop.set(Some(stop_at));
            let door = Rc::new(Notify::new());
            doors.borrow_mut().push(door.clone());
            let churn = Churn {
                url: args.common.url(n / args.rooms.max(1)),
                n,
                away,
                door,
                stop_at,
                tally: tally.clone(),
            };
            let room = format!("churn-{}", n % args.rooms.max(1));
            let game = args.game.clone();
            async move {
                if n < chatters {
                    chatter(churn, room, broadcast_gap).await;
                } else {
                    player(churn, game, move_gap).await;
                }
            }
        },
    )
    .await;
    dropper.abort();
    report("churn", &args.common, u64::from(sessions), seconds, &tally)
}

/// Knocks on a random session's door every `gap` while measuring.
async fn dropper(doors: Doors, gap: Duration, stop: Rc<Cell<Option<TokioInstant>>>, tally: Shared) {
    let mut tick = tokio::time::interval(gap);
    tick.tick().await;
    loop {
        tick.tick().await;
        let measuring = tally.borrow().measuring_since.is_some();
        let before_stop = stop.get().is_some_and(|stop| TokioInstant::now() < stop);
        let doors = doors.borrow();
        if measuring && before_stop && !doors.is_empty() {
            let door = rand::thread_rng().gen_range(0..doors.len());
            doors[door].notify_one();
        }
    }
}

/// What every churning session has.
struct Churn {
    /// The server's `/ws` URL.
    url: String,
    /// The session's number (its source address).
    n: u32,
    /// How long a dropped session stays away.
    away: Duration,
    /// Knocked on when the session is to drop.
    door: Rc<Notify>,
    /// When sending stops.
    stop_at: TokioInstant,
    tally: Shared,
}

/// A session's connection, its resume token and its frame count.
struct Link {
    socket: Socket,
    token: String,
    counted: u64,
}

impl Link {
    /// Opens a new session; `None` (counted as failed) if it cannot.
    async fn open(churn: &Churn) -> Option<Link> {
        let mut socket = open(&churn.url, churn.n, &churn.tally).await?;
        let welcome = loop {
            let event = event_of(socket.next().await, &churn.tally)?;
            if let Some(event) = event.filter(|event| event["type"] == "welcome") {
                break event;
            }
        };
        Some(Link {
            socket,
            token: welcome["resume"].as_str().unwrap_or_default().to_string(),
            counted: 0,
        })
    }

    async fn send(&mut self, request: Value) -> bool {
        self.socket
            .send(Message::text(request.to_string()))
            .await
            .is_ok()
    }

    /// Counts a numbered frame (every text frame but `welcome` and `resumed`).
    fn count(&mut self, event: &Value) {
        if !matches!(event["type"].as_str(), Some("welcome" | "resumed")) {
            self.counted += 1;
        }
    }

    /// Drops the connection without a Close frame, stays away, and resumes
    /// with the count; `Some(recovered)`, or `None` if the resume failed
    /// (counted as failed).
    async fn churn(self, churn: &Churn) -> Option<(Link, bool)> {
        let Link {
            socket,
            token,
            counted,
        } = self;
        drop(socket);
        churn.tally.borrow_mut().drops += 1;
        tokio::time::sleep(churn.away).await;
        let url = format!("{}?resume={token}&received={counted}", churn.url);
        let started = Instant::now();
        let mut socket = match dial(&url, churn.n).await {
            Ok(socket) => socket,
            Err(err) => {
                churn.tally.borrow_mut().fail(format!("resume: {err}"));
                return None;
            }
        };
        let welcome = loop {
            let event = event_of(socket.next().await, &churn.tally)?;
            if let Some(event) = event.filter(|event| event["type"] == "welcome") {
                break event;
            }
        };
        let token = welcome["resume"].as_str().unwrap_or_default().to_string();
        Link::resumed(socket, token, counted, started, churn).await
    }

    /// Reads the `resumed` of a resume begun at `started`.
    async fn resumed(
        mut socket: Socket,
        token: String,
        counted: u64,
        started: Instant,
        churn: &Churn,
    ) -> Option<(Link, bool)> {
        loop {
            let Some(event) = event_of(socket.next().await, &churn.tally)? else {
                continue;
            };
            match event["type"].as_str() {
                Some("resumed") => {
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    let recovered = event["recovered"] == true;
                    let mut tally = churn.tally.borrow_mut();
                    let _ = tally.resume_rtt.record(micros.max(1));
                    if recovered {
                        tally.recovered += 1;
                    } else {
                        tally.resynced += 1;
                    }
                    let counted = if recovered {
                        counted
                    } else {
                        event["last"].as_u64().unwrap_or(0)
                    };
                    let link = Link {
                        socket,
                        token,
                        counted,
                    };
                    return Some((link, recovered));
                }
                Some("error") => {
                    let code = event["code"].as_str().unwrap_or_default().to_string();
                    churn
                        .tally
                        .borrow_mut()
                        .fail(format!("resume refused: {code}"));
                    return None;
                }
                _ => {}
            }
        }
    }
}

/// Where a session is in a drop: knocked on, waiting for its barrier.
#[derive(Default)]
struct Dropping {
    /// The door was knocked on: send nothing more, then drop.
    asked: bool,
    /// The barrier's `echo` came back.
    barrier: bool,
}

impl Dropping {
    /// The door was knocked on: sends the barrier; `false` if the
    /// connection is gone.
    async fn begin(&mut self, link: &mut Link) -> bool {
        self.asked = true;
        link.send(json!({"type":"echo","data":BARRIER})).await
    }

    /// Notes the barrier's `echo` when `event` is it.
    fn note(&mut self, event: &Value) {
        if event["type"] == "echo" && event["data"] == BARRIER {
            self.barrier = true;
        }
    }
}

/// One chat member: joins `room`, broadcasts `{n, from}` every `gap`,
/// checks every broadcast it receives, and drops and resumes when knocked.
async fn chatter(churn: Churn, room: String, gap: Duration) {
    let Some(mut link) = Link::open(&churn).await else {
        return;
    };
    if !link
        .send(json!({"type":"join_room","room":room,"kind":"chat"}))
        .await
    {
        return;
    }
    let jitter = Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..gap.as_secs_f64()));
    let mut next = TokioInstant::now() + jitter;
    let mut sequence = 0u64;
    let mut senders = Senders::default();
    let mut dropping = Dropping::default();
    loop {
        let sending = next < churn.stop_at && !dropping.asked;
        tokio::select! {
            () = sleep_until(next), if sending => {
                next += gap;
                sequence += 1;
                let data = json!({"n": sequence, "from": churn.n});
                if !link.send(json!({"type":"broadcast","room":room,"data":data})).await {
                    return;
                }
            }
            () = churn.door.notified(), if !dropping.asked => {
                if !dropping.begin(&mut link).await {
                    return;
                }
            }
            frame = link.socket.next() => {
                let Some(event) = event_of(frame, &churn.tally) else { return };
                let Some(event) = event else { continue };
                link.count(&event);
                dropping.note(&event);
                match event["type"].as_str() {
                    Some("message") => senders.check(&event["data"], &churn.tally),
                    Some("state_request") => {
                        let reply = json!({"type":"state","room":room,"data":null,"for":event["for"]});
                        if !link.send(reply).await {
                            return;
                        }
                    }
                    Some("error") => {
                        let code = event["code"].as_str().unwrap_or_default().to_string();
                        churn.tally.borrow_mut().error(code);
                    }
                    _ => {}
                }
            }
        }
        if dropping.asked && dropping.barrier {
            dropping = Dropping::default();
            let Some((resumed, recovered)) = link.churn(&churn).await else {
                return;
            };
            link = resumed;
            if !recovered {
                // A resync: what was missed is gone by design, not lost.
                senders = Senders::default();
            }
            next = TokioInstant::now();
        }
    }
}

/// The last broadcast number seen from each sender of a room.
#[derive(Default)]
struct Senders(HashMap<u64, u64>);

impl Senders {
    /// Counts a broadcast: a duplicate if not past the sender's last, lost
    /// frames for any number skipped, else one delivery.
    fn check(&mut self, data: &Value, tally: &Shared) {
        let (Some(sequence), Some(from)) = (data["n"].as_u64(), data["from"].as_u64()) else {
            return;
        };
        let mut tally = tally.borrow_mut();
        match self.0.insert(from, sequence) {
            Some(last) if sequence <= last => {
                tally.duplicated += 1;
                self.0.insert(from, last);
            }
            Some(last) => tally.lost += sequence - last - 1,
            None => {}
        }
        if tally.measuring_since.is_some() {
            tally.answered += 1;
        }
    }
}

/// One player: quick-matches `game`, moves `gap` after the game's previous
/// move, checks that every move of its game arrives once and in order, and
/// drops and resumes when knocked (not while its own move is unanswered).
async fn player(churn: Churn, game: String, gap: Duration) {
    let Some(mut link) = Link::open(&churn).await else {
        return;
    };
    let find = json!({"type":"find_game","game":game});
    if !link.send(find.clone()).await {
        return;
    }
    let mut table = Table::default();
    let mut moves_seen = 0u64;
    let mut next_move = TokioInstant::now();
    let mut pending = false;
    let mut dropping = Dropping::default();
    loop {
        let may_move =
            table.my_turn() && !pending && !dropping.asked && TokioInstant::now() < churn.stop_at;
        tokio::select! {
            () = sleep_until(next_move), if may_move => {
                next_move = TokioInstant::now() + gap;
                let request = match table.legal_move() {
                    Some(request) => {
                        pending = true;
                        request
                    }
                    None => table.resign(),
                };
                if !link.send(request).await {
                    return;
                }
            }
            () = churn.door.notified(), if !dropping.asked => {
                if !dropping.begin(&mut link).await {
                    return;
                }
            }
            frame = link.socket.next() => {
                let Some(event) = event_of(frame, &churn.tally) else { return };
                let Some(event) = event else { continue };
                link.count(&event);
                dropping.note(&event);
                match event["type"].as_str() {
                    Some("game_start") => moves_seen = 0,
                    Some("game_state") if event["you"].is_string() => {
                        moves_seen = event["moves"].as_array().map_or(0, |moves| moves.len() as u64);
                    }
                    Some("moved") => check_move(&event, &mut moves_seen, &churn.tally),
                    _ => {}
                }
                match table.apply(&event) {
                    Some(Happened::Started) => next_move = TokioInstant::now() + gap,
                    Some(Happened::Moved { mine }) => {
                        next_move = TokioInstant::now() + gap;
                        pending &= !mine;
                    }
                    Some(Happened::Over { first_seat }) => {
                        if first_seat {
                            churn.tally.borrow_mut().games_finished += 1;
                        }
                        pending = false;
                        if TokioInstant::now() < churn.stop_at && !link.send(find.clone()).await {
                            return;
                        }
                    }
                    Some(Happened::Error(code)) => {
                        pending = false;
                        churn.tally.borrow_mut().error(code);
                    }
                    None => {}
                }
            }
        }
        if dropping.asked && dropping.barrier && !pending {
            dropping = Dropping::default();
            let Some((resumed, _)) = link.churn(&churn).await else {
                return;
            };
            link = resumed;
            next_move = TokioInstant::now() + gap;
        }
    }
}

/// Counts a `moved`: its board holds one mark more than the last seen, or
/// marks were skipped (lost) or seen again (duplicated).
fn check_move(event: &Value, moves_seen: &mut u64, tally: &Shared) {
    let marks = filled(&event["board"]);
    let mut tally = tally.borrow_mut();
    if marks <= *moves_seen {
        tally.duplicated += 1;
        return;
    }
    tally.lost += marks - *moves_seen - 1;
    *moves_seen = marks;
    if tally.measuring_since.is_some() {
        tally.answered += 1;
    }
}

/// The marks on a tic-tac-toe or connect four board (its non-null cells).
fn filled(board: &Value) -> u64 {
    match board {
        Value::Array(cells) => cells.iter().map(filled).sum(),
        Value::Null => 0,
        _ => 1,
    }
}
