//! The soak's own sessions, beside the chat, games and churn scenarios:
//! canvas members moving, people playing the computer, slow readers that
//! must still get every message in order, and connections sending bad
//! frames (the fuzzer's cases).

use std::{cell::RefCell, collections::BTreeMap, rc::Rc, time::Duration};

use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::{sleep, sleep_until, Instant};

use crate::{
    client::{dial, next_json, send_json, Socket, NO_FRAME},
    fuzz::{connection, Case, Target, DEFAULT_FRAME_LIMIT},
    scenarios::games::{Happened, Table},
};

/// How long a slow reader reads, then how long it stops reading.
const SLOW_READS: Duration = Duration::from_secs(2);
const SLOW_PAUSE: Duration = Duration::from_secs(3);

/// Bytes of padding in each message to a slow reader: a pause then leaves
/// more waiting (about 240 KiB) than the sockets hold, so the server's own
/// queue holds the rest.
const SLOW_PADDING: usize = 4_000;

/// Broadcasts a second into each slow reader's room.
const SLOW_RATE: u64 = 20;

/// How often a canvas member moves.
const CANVAS_MOVE: Duration = Duration::from_millis(100);

/// How long a bot-game player waits before each move.
const THINK: Duration = Duration::from_millis(200);

/// Pause between two bad connections of one bad-frame sender.
const BAD_GAP: Duration = Duration::from_millis(200);

/// Unexpected answers to bad frames kept, whole, for the report.
const EXAMPLES: usize = 20;

/// How long answers may take at the end (a resign's `game_over`, the last
/// messages to a slow reader).
const PATIENCE: Duration = Duration::from_secs(5);

/// What the soak's own sessions count.
#[derive(Default, Serialize)]
pub(crate) struct PartsTally {
    /// Frames canvas members received.
    pub(crate) canvas_frames: u64,
    /// Bot games begun, and their `game_over` results counted.
    pub(crate) bot_games: u64,
    pub(crate) bot_results: BTreeMap<String, u64>,
    /// Bot games that ended against the rules, or never ended.
    pub(crate) bot_games_wrong: Vec<String>,
    /// Messages slow readers got, and the ones they never got.
    pub(crate) slow_received: u64,
    pub(crate) slow_lost: u64,
    /// Bad connections, and the ones answered against PROTOCOL.md.
    pub(crate) bad_connections: u64,
    pub(crate) bad_unexpected: Vec<String>,
    /// Sessions that failed or were dropped, by why.
    pub(crate) failures: BTreeMap<String, u64>,
}

impl PartsTally {
    fn fail(&mut self, why: String) {
        *self.failures.entry(why).or_default() += 1;
    }

    /// What went wrong, one line each.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .failures
            .iter()
            .map(|(why, count)| format!("{count} × {why}"))
            .collect();
        problems.extend(self.bot_games_wrong.iter().cloned());
        if self.slow_lost > 0 {
            problems.push(format!("slow readers lost {} messages", self.slow_lost));
        }
        problems.extend(self.bad_unexpected.iter().take(5).cloned());
        problems
    }
}

pub(crate) type Parts = Rc<RefCell<PartsTally>>;

/// How many of each part.
pub(crate) struct Mix {
    pub(crate) canvas_rooms: u32,
    pub(crate) canvas_members: u32,
    pub(crate) bot_players: u32,
    pub(crate) slow_readers: u32,
    pub(crate) bad_senders: u32,
}

/// Runs every part until `stop_at`; returns what they counted.
pub(crate) async fn run_parts(url: String, mix: Mix, stop_at: Instant) -> PartsTally {
    let tally = Parts::default();
    let mut tasks = Vec::new();
    let mut n = 1_000_000;
    let mut next = || {
        n += 1;
        n
    };
    for room in 0..mix.canvas_rooms {
        for _ in 0..mix.canvas_members {
            let (url, tally, n) = (url.clone(), tally.clone(), next());
            tasks.push(tokio::task::spawn_local(canvas(
                url, n, room, stop_at, tally,
            )));
        }
    }
    for _ in 0..mix.bot_players {
        let (url, tally, n) = (url.clone(), tally.clone(), next());
        tasks.push(tokio::task::spawn_local(bot_player(url, n, stop_at, tally)));
    }
    for room in 0..mix.slow_readers {
        let (url, tally, n) = (url.clone(), tally.clone(), next());
        tasks.push(tokio::task::spawn_local(slow_room(
            url, n, room, stop_at, tally,
        )));
    }
    match Target::new(&url, DEFAULT_FRAME_LIMIT as usize) {
        Ok(target) => {
            for k in 0..mix.bad_senders {
                let (target, tally, n) = (target.clone(), tally.clone(), next());
                tasks.push(tokio::task::spawn_local(bad_sender(
                    target, n, k, stop_at, tally,
                )));
            }
        }
        Err(err) => tally.borrow_mut().fail(err),
    }
    for task in tasks {
        if let Err(err) = task.await {
            tally
                .borrow_mut()
                .fail(format!("a soak task failed: {err}"));
        }
    }
    // Every task has ended, so nothing else holds the tally.
    tally.take()
}

/// Dials, counting a failure as `part`'s.
async fn connect(url: &str, n: u32, part: &str, tally: &Parts) -> Option<Socket> {
    match dial(url, n).await {
        Ok(socket) => Some(socket),
        Err(err) => {
            tally.borrow_mut().fail(format!("{part}: {err}"));
            None
        }
    }
}

async fn send(socket: &mut Socket, request: Value) -> bool {
    send_json(socket, &request).await.is_ok()
}

/// A canvas member: joins its room (three zombies) and moves every
/// `CANVAS_MOVE` until `stop_at`, reading the room's ticks.
async fn canvas(url: String, n: u32, room: u32, stop_at: Instant, tally: Parts) {
    let Some(mut socket) = connect(&url, n, "canvas", &tally).await else {
        return;
    };
    let room = format!("soak-canvas-{room}");
    if !send(
        &mut socket,
        json!({"type":"join_room","room":room,"kind":"canvas","zombies":3}),
    )
    .await
    {
        return tally
            .borrow_mut()
            .fail("canvas: could not join".to_string());
    }
    let mut rng = StdRng::from_entropy();
    let mut next_move = Instant::now() + CANVAS_MOVE;
    loop {
        tokio::select! {
            () = sleep_until(next_move) => {
                if Instant::now() >= stop_at {
                    let _ = socket.close(None).await;
                    return;
                }
                next_move += CANVAS_MOVE;
                let (x, y): (u32, u32) = (rng.gen_range(0..=1000), rng.gen_range(0..=1000));
                if !send(&mut socket, json!({"type":"pos","room":room,"x":x,"y":y})).await {
                    return tally.borrow_mut().fail("canvas: could not send".to_string());
                }
            }
            event = next_json(&mut socket, stop_at + PATIENCE) => match event {
                Ok(event) if event["type"] == "error" => {
                    return tally.borrow_mut().fail(format!("canvas: error {}", event["code"]));
                }
                Ok(_) => tally.borrow_mut().canvas_frames += 1,
                Err(why) => return tally.borrow_mut().fail(format!("canvas: {why}")),
            }
        }
    }
}

/// A person playing tic-tac-toe against the computer, game after game,
/// at a random level and seat; every game must end as the rules say, and
/// one in play at `stop_at` is resigned and must end `forfeit`.
async fn bot_player(url: String, n: u32, stop_at: Instant, tally: Parts) {
    let Some(mut socket) = connect(&url, n, "bot games", &tally).await else {
        return;
    };
    let mut rng = StdRng::from_entropy();
    let mut table = Table::default();
    let mut playing = false;
    let mut move_at: Option<Instant> = None;
    loop {
        if !playing {
            if Instant::now() >= stop_at {
                let _ = socket.close(None).await;
                return;
            }
            let level = ["easy", "medium", "hard"].choose(&mut rng).copied();
            let first = ["you", "bot"].choose(&mut rng).copied();
            let request = json!({"type":"play_bot","game":"tictactoe","level":level,"first":first});
            if !send(&mut socket, request).await {
                return tally
                    .borrow_mut()
                    .fail("bot games: could not send".to_string());
            }
            playing = true;
        }
        let resign_at = stop_at.max(Instant::now());
        let wake = move_at.unwrap_or(resign_at).min(resign_at);
        tokio::select! {
            () = sleep_until(wake), if table.my_turn() || (table.in_game() && Instant::now() >= stop_at) => {
                let request = if Instant::now() >= stop_at {
                    table.resign()
                } else {
                    move_at = None;
                    match table.legal_move() {
                        Some(request) => request,
                        None => continue,
                    }
                };
                if !send(&mut socket, request).await {
                    return tally.borrow_mut().fail("bot games: could not send".to_string());
                }
                if Instant::now() >= stop_at {
                    return finish_resigned(&mut socket, &mut table, &tally).await;
                }
            }
            event = next_json(&mut socket, Instant::now().max(stop_at) + PATIENCE) => {
                let event = match event {
                    Ok(event) => event,
                    Err(why) => return tally.borrow_mut().fail(format!("bot games: {why}")),
                };
                match table.apply(&event) {
                    Some(Happened::Started) => {
                        tally.borrow_mut().bot_games += 1;
                        move_at = Some(Instant::now() + THINK);
                    }
                    Some(Happened::Moved { .. }) => move_at = Some(Instant::now() + THINK),
                    Some(Happened::Over { .. }) => {
                        check_over(&event, false, &tally);
                        playing = false;
                    }
                    Some(Happened::Error(code)) => {
                        return tally.borrow_mut().fail(format!("bot games: error {code}"));
                    }
                    None => {}
                }
            }
        }
    }
}

/// After resigning at the end: the game must end `forfeit` (or have ended
/// on its own just before).
async fn finish_resigned(socket: &mut Socket, table: &mut Table, tally: &Parts) {
    let until = Instant::now() + PATIENCE;
    loop {
        match next_json(socket, until).await {
            Ok(event) => {
                if event["type"] == "error" && event["code"] == "game_over" {
                    // The game ended on its own; its game_over came first.
                    return;
                }
                if let Some(Happened::Over { .. }) = table.apply(&event) {
                    check_over(&event, true, tally);
                    let _ = socket.close(None).await;
                    return;
                }
            }
            Err(why) => {
                let wrong = format!("a resigned bot game never ended: {why}");
                return tally.borrow_mut().bot_games_wrong.push(wrong);
            }
        }
    }
}

/// Counts a bot game's `game_over`, and says whether it ended as the rules
/// say: a win has a winner and a line, a draw neither; a resign (when
/// `resigned`) is a forfeit the bot wins.
fn check_over(event: &Value, resigned: bool, tally: &Parts) {
    let result = event["result"].as_str().unwrap_or("?").to_string();
    let has_line = event["line"]
        .as_array()
        .is_some_and(|line| !line.is_empty());
    let right = match result.as_str() {
        "win" => event["winner"].is_string() && has_line,
        "draw" => event["winner"].is_null() && !has_line,
        "forfeit" => resigned && event["winner"].is_string(),
        _ => false,
    };
    let mut tally = tally.borrow_mut();
    *tally.bot_results.entry(result).or_default() += 1;
    if !right {
        tally
            .bot_games_wrong
            .push(format!("a bot game ended against the rules: {event}"));
    }
}

/// A room with a sender broadcasting numbered messages and a reader that
/// reads for `SLOW_READS`, then stops for `SLOW_PAUSE`: it must get every
/// message, in order, and never be dropped.
async fn slow_room(url: String, n: u32, room: u32, stop_at: Instant, tally: Parts) {
    let room = format!("soak-slow-{room}");
    let Some(mut reader) = connect(&url, n, "slow reader", &tally).await else {
        return;
    };
    let Some(mut sender) = connect(&url, n + 1, "slow reader's sender", &tally).await else {
        return;
    };
    for socket in [&mut reader, &mut sender] {
        let joined = send(
            socket,
            json!({"type":"join_room","room":room,"kind":"chat"}),
        )
        .await;
        let state = wait_for(socket, "room_state").await;
        if !joined || state.is_err() {
            return tally
                .borrow_mut()
                .fail(format!("slow reader: could not join ({state:?})"));
        }
    }
    let sender_tally = tally.clone();
    let sending = tokio::task::spawn_local(async move {
        let mut sent = 0u64;
        let pad = "x".repeat(SLOW_PADDING);
        let mut every = tokio::time::interval(Duration::from_millis(1000 / SLOW_RATE));
        // After a stall, no burst to catch up (it could pass the rate limit).
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while Instant::now() < stop_at {
            every.tick().await;
            if !send(
                &mut sender,
                json!({"type":"broadcast","room":room,"data":{"n":sent,"pad":pad}}),
            )
            .await
            {
                sender_tally
                    .borrow_mut()
                    .fail("slow reader's sender: could not send".to_string());
                break;
            }
            sent += 1;
        }
        // Its socket stays open until the reader has read.
        (sent, sender)
    });
    let mut expected = 0u64;
    let drain_until = stop_at + PATIENCE;
    'reading: loop {
        let reads_until = (Instant::now() + SLOW_READS).min(drain_until);
        loop {
            match next_json(&mut reader, reads_until).await {
                Ok(event) if event["type"] == "message" => {
                    let got = event["data"]["n"].as_u64().unwrap_or(u64::MAX);
                    let mut tally = tally.borrow_mut();
                    tally.slow_received += 1;
                    if got != expected {
                        tally.slow_lost += got.saturating_sub(expected);
                        tally.fail(format!("slow reader: got {got} after {expected}"));
                    }
                    expected = got + 1;
                }
                Ok(_) => {}
                Err(why) if why == NO_FRAME => break,
                Err(why) => {
                    tally.borrow_mut().fail(format!("slow reader: {why}"));
                    break 'reading;
                }
            }
        }
        if Instant::now() >= drain_until {
            break;
        }
        if Instant::now() < stop_at {
            sleep(SLOW_PAUSE).await;
        }
    }
    if let Ok((sent, _sender)) = sending.await {
        tally.borrow_mut().slow_lost += sent.saturating_sub(expected);
    }
}

/// The next event of type `kind`, within `PATIENCE`.
async fn wait_for(socket: &mut Socket, kind: &str) -> Result<Value, String> {
    let until = Instant::now() + PATIENCE;
    loop {
        let event = next_json(socket, until).await?;
        if event["type"] == kind {
            return Ok(event);
        }
    }
}

/// Counts a bad connection, and keeps the first `EXAMPLES` answers that
/// were not what PROTOCOL.md says.
fn count_bad(tally: &Parts, case: Case, unexpected: Option<String>) {
    let mut tally = tally.borrow_mut();
    tally.bad_connections += 1;
    if let Some(why) = unexpected.filter(|_| tally.bad_unexpected.len() < EXAMPLES) {
        tally
            .bad_unexpected
            .push(format!("bad frames: {case:?}: {why}"));
    }
}

/// Connection after connection of the fuzzer's bad input, a `BAD_GAP`
/// apart, each answer checked against PROTOCOL.md.
async fn bad_sender(target: Target, n: u32, k: u32, stop_at: Instant, tally: Parts) {
    let mut rng = StdRng::seed_from_u64(u64::from(k));
    let cases: Vec<Case> = <Case as strum::IntoEnumIterator>::iter().collect();
    let mut attempt = 0u32;
    while Instant::now() < stop_at {
        let case = cases[rng.gen_range(0..cases.len())];
        let verdict = connection(&target, n.wrapping_add(attempt), case, &mut rng).await;
        attempt = attempt.wrapping_add(1);
        count_bad(&tally, case, verdict.unexpected);
        sleep(BAD_GAP).await;
    }
}
