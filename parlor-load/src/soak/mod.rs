//! `parlor-load soak --minutes M`: everything at once for M minutes —
//! chat rooms with snapshots, quick-match games, churn (drops and resumes),
//! canvas rooms with zombies, games against the computer, slow readers and
//! bad frames — and then the verdict: nothing lost or doubled for resumed
//! sessions or slow readers, the server's memory and open files flat after
//! the warm-up (under 5 % growth over the last two thirds), every game
//! ended as the rules say, and every part served throughout.
//!
//! Modules:
//! - `parts`: the canvas members, bot-game players, slow readers and
//!   bad-frame senders (chat, games and churn are the scenarios' own).

mod parts;

use std::{cell::RefCell, path::PathBuf, process::ExitCode, rc::Rc, time::Duration};

use serde::Serialize;
use serde_json::Value;
use tokio::time::{sleep, Instant};

use self::parts::{run_parts, Mix, PartsTally};
use crate::{
    client::{http_get, http_url},
    report::{print_table, shortfall, verdict, Report},
    scenarios::{chat::run_chat, churn::run_churn, games::run_games, QUIET},
    ChatArgs, ChurnArgs, Common, GamesArgs,
};

/// How often the server's memory and open files are read.
const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Most the server's memory and open files may grow over the last two
/// thirds of the run.
const MAX_GROWTH: f64 = 0.05;

/// Growth below these is noise, not a trend, whatever its share: the
/// allocator's and the kernel's own steps on a small base.
const MIN_RSS_GROWTH_KIB: u64 = 4 * 1024;
const MIN_FILES_GROWTH: u64 = 16;

/// New connections a second while each part ramps up.
const RAMP: u32 = 200;

/// `parlor-load soak`'s options.
#[derive(clap::Args)]
pub(crate) struct SoakArgs {
    /// The server's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// How long to run, in minutes.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=1440))]
    minutes: u64,
    /// Scales every part of the mix; 1 is about half of what one release
    /// node on two cores serves (README, "Soak").
    #[arg(long, default_value_t = 1.0, value_parser = crate::rate)]
    load: f64,
    /// The server's process id: its memory and open files are read from
    /// /proc (without it, they are not checked).
    #[arg(long)]
    server_pid: Option<u32>,
    /// How long the games left when the load stops have to end (the
    /// server's `games.reconnect_grace_ms`, and a margin), in seconds.
    #[arg(long, default_value_t = 45)]
    settle: u64,
    /// Also write the verdict as one JSON object to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One reading of the server.
#[derive(Clone, Copy, Serialize)]
struct Reading {
    /// Seconds since the soak began.
    at: f64,
    rss_kib: u64,
    open_files: u64,
    /// CPU since the reading before, percent of one core.
    cpu_percent: f64,
}

/// The soak's verdict.
#[derive(Serialize)]
struct SoakReport {
    url: String,
    minutes: u64,
    load: f64,
    chat: Report,
    games: Report,
    churn: Report,
    parts: PartsTally,
    readings: Vec<Reading>,
    /// Growth over the last two thirds, as fractions.
    rss_growth: Option<f64>,
    open_files_growth: Option<f64>,
    /// Live games still listed once the games left had `settle` to end.
    games_left: Option<usize>,
    /// Finished games whose result PROTOCOL.md does not name.
    bad_results: Vec<String>,
    /// Why the soak failed; empty when it passed.
    failures: Vec<String>,
}

/// Runs the soak, prints its verdict and says whether the server held.
pub(crate) async fn run_soak(args: SoakArgs) -> ExitCode {
    QUIET.with(|quiet| quiet.set(true));
    let seconds = args.minutes * 60;
    let scaled = |count: u32| ((f64::from(count) * args.load).round() as u32).max(1);
    let common = Common {
        urls: vec![args.url.clone()],
        ramp: RAMP,
        json: None,
        report: None,
        server_pid: None,
        sources: 8,
    };
    eprintln!(
        "parlor-load soak: {} min at load {} against {}",
        args.minutes, args.load, args.url
    );
    let chat = ChatArgs {
        common: common.clone(),
        duration: seconds,
        rooms: scaled(100),
        members: 10,
        rate: 4.0,
        states: 0.5,
        failover: false,
    };
    let games = GamesArgs {
        common: common.clone(),
        duration: seconds,
        game: "connect4".to_string(),
        games: scaled(200),
        rate: 2.0,
    };
    let churn = ChurnArgs {
        common: common.clone(),
        duration: seconds,
        rooms: scaled(20),
        members: 5,
        rate: 2.0,
        games: scaled(20),
        game: "tictactoe".to_string(),
        move_rate: 1.0,
        drops: 4.0 * args.load,
        away_ms: 1000,
    };
    let mix = Mix {
        canvas_rooms: scaled(5),
        canvas_members: 10,
        bot_players: scaled(20),
        slow_readers: scaled(10),
        bad_senders: scaled(4),
    };
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(seconds);
    let readings = Rc::new(RefCell::new(Vec::new()));
    let sampler = tokio::task::spawn_local(read_server(args.server_pid, started, readings.clone()));
    let (chat, games, churn, parts) = tokio::join!(
        run_chat(chat),
        run_games(games),
        run_churn(churn),
        run_parts(args.url.clone(), mix, stop_at),
    );
    sampler.abort();
    // Only readings under the whole load count: the parts wind down after.
    let mut readings = readings.take();
    readings.retain(|reading| reading.at <= seconds as f64);
    let (games_left, bad_results) = settle(&args.url, Duration::from_secs(args.settle)).await;
    let mut report = SoakReport {
        url: args.url.clone(),
        minutes: args.minutes,
        load: args.load,
        rss_growth: growth(&readings, MIN_RSS_GROWTH_KIB, |reading| reading.rss_kib),
        open_files_growth: growth(&readings, MIN_FILES_GROWTH, |reading| reading.open_files),
        chat,
        games,
        churn,
        parts,
        readings,
        games_left,
        bad_results,
        failures: Vec::new(),
    };
    report.failures = judge(&report, args.server_pid.is_some());
    print(&report);
    verdict(&report, &report.failures, args.json.as_deref())
}

/// Reads the server's memory and open files every `SAMPLE_EVERY` into
/// `readings`, until aborted or the server is gone.
async fn read_server(pid: Option<u32>, started: Instant, readings: Rc<RefCell<Vec<Reading>>>) {
    let Some(pid) = pid else { return };
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    let mut ticks_before = None;
    loop {
        every.tick().await;
        let Some((reading, ticks)) = reading(pid, started, ticks_before) else {
            return;
        };
        ticks_before = Some(ticks);
        readings.borrow_mut().push(reading);
    }
}

/// One reading of `/proc/PID`, and its CPU ticks so far.
fn reading(pid: u32, started: Instant, ticks_before: Option<u64>) -> Option<(Reading, u64)> {
    let (rss_kib, ticks) = crate::usage::sample(&format!("/proc/{pid}"))?;
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    let cpu_percent = ticks_before.map_or(0.0, |before| {
        crate::usage::cpu_percent(ticks.saturating_sub(before), SAMPLE_EVERY.as_secs_f64())
    });
    let reading = Reading {
        at: started.elapsed().as_secs_f64(),
        rss_kib,
        open_files,
        cpu_percent,
    };
    Some((reading, ticks))
}

/// How much `value` grew over the last two thirds of the readings: the
/// median of the last tenth (at least three readings) against the median
/// of the tenth that begins a third of the way in, as a share; 0 when it
/// grew by less than `floor`.
fn growth(readings: &[Reading], floor: u64, value: impl Fn(&Reading) -> u64) -> Option<f64> {
    let window = (readings.len() / 10).max(3);
    let from = readings.len() / 3;
    if readings.len() < from + 2 * window {
        return None;
    }
    let median = |slice: &[Reading]| {
        let mut values: Vec<u64> = slice.iter().map(&value).collect();
        values.sort_unstable();
        values[values.len() / 2]
    };
    let early = median(&readings[from..from + window]);
    let late = median(&readings[readings.len() - window..]);
    let share = late as f64 / early.max(1) as f64 - 1.0;
    // A rise smaller than `floor` counts as none.
    Some(if late < early.saturating_add(floor) {
        share.min(0.0)
    } else {
        share
    })
}

/// Waits up to `wait` for the live games to end (their players left when
/// the load stopped, so each is forfeited or abandoned as the rules say),
/// and checks every finished game's result: the games still listed, and
/// the results PROTOCOL.md does not name.
async fn settle(url: &str, wait: Duration) -> (Option<usize>, Vec<String>) {
    let deadline = Instant::now() + wait;
    let mut left = None;
    loop {
        left = get_json(&http_url(url, "/api/games"))
            .await
            .and_then(|games| games.as_array().map(Vec::len))
            .or(left);
        if left == Some(0) || Instant::now() >= deadline {
            break;
        }
        sleep(Duration::from_secs(1)).await;
    }
    let mut bad = Vec::new();
    for game in ["tictactoe", "connect4", "match3"] {
        let history = get_json(&http_url(
            url,
            &format!("/api/history?game={game}&limit=100"),
        ))
        .await;
        for record in history
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let result = record["result"].as_str().unwrap_or("");
            let named = ["win", "draw", "forfeit", "abandoned", "finished"].contains(&result);
            let winner_right = match result {
                "win" => record["winner"].is_string(),
                "draw" => record["winner"].is_null(),
                _ => true,
            };
            if !named || !winner_right {
                bad.push(format!("{game} {}: {result}", record["game_id"]));
            }
        }
    }
    (left, bad)
}

/// GET `url` as JSON, when it answers 200.
async fn get_json(url: &str) -> Option<Value> {
    match http_get(url).await {
        Ok((200, body)) => serde_json::from_str(&body).ok(),
        _ => None,
    }
}

/// Why the soak failed, one line each.
fn judge(report: &SoakReport, with_server: bool) -> Vec<String> {
    let mut failures = Vec::new();
    for part in [&report.chat, &report.games, &report.churn] {
        if shortfall(part) {
            failures.push(format!(
                "{}: fell short ({} failed, {} missing, {} lost, {} duplicated)",
                part.scenario, part.failed, part.missing, part.lost, part.duplicated
            ));
        }
    }
    failures.extend(report.parts.problems());
    if with_server {
        for (what, growth) in [
            ("memory", report.rss_growth),
            ("open files", report.open_files_growth),
        ] {
            match growth {
                Some(growth) if growth >= MAX_GROWTH => failures.push(format!(
                    "the server's {what} grew {:.1} % over the last two thirds",
                    growth * 100.0
                )),
                Some(_) => {}
                None => failures.push(format!("too few readings of the server's {what}")),
            }
        }
    }
    match report.games_left {
        Some(0) => {}
        Some(left) => failures.push(format!("{left} games still in play after the settle")),
        None => failures.push("/api/games did not answer".to_string()),
    }
    failures.extend(
        report
            .bad_results
            .iter()
            .map(|bad| format!("a game ended as no rule says: {bad}")),
    );
    failures
}

/// The verdict on stdout: each scenario's table, then the soak's own.
fn print(report: &SoakReport) {
    for part in [&report.chat, &report.games, &report.churn] {
        print_table(part);
        println!();
    }
    let parts = &report.parts;
    println!(
        "soak: {} min at load {} against {}",
        report.minutes, report.load, report.url
    );
    println!("canvas          {} frames received", parts.canvas_frames);
    println!(
        "bot games       {} begun, results {:?}",
        parts.bot_games, parts.bot_results
    );
    println!(
        "slow readers    {} messages received, {} lost",
        parts.slow_received, parts.slow_lost
    );
    println!("bad frames      {} connections", parts.bad_connections);
    // The first reading has no reading before it to measure CPU from.
    let mut busy: Vec<f64> = report
        .readings
        .iter()
        .skip(1)
        .map(|r| r.cpu_percent)
        .collect();
    busy.sort_by(f64::total_cmp);
    if let Some(median) = busy.get(busy.len() / 2) {
        println!("server CPU      {median:.1} % of a core (median of the readings)");
    }
    if let (Some(first), Some(last)) = (report.readings.first(), report.readings.last()) {
        println!(
            "server          RSS {} -> {} KiB, open files {} -> {} (growth over the last two thirds: memory {}, files {})",
            first.rss_kib,
            last.rss_kib,
            first.open_files,
            last.open_files,
            percent(report.rss_growth),
            percent(report.open_files_growth)
        );
    }
    println!(
        "games left      {}",
        report
            .games_left
            .map_or("unknown".to_string(), |left| left.to_string())
    );
    if report.failures.is_empty() {
        println!("PASS: nothing lost, nothing grew, every game ended as the rules say");
    } else {
        for failure in &report.failures {
            println!("FAIL: {failure}");
        }
    }
}

fn percent(growth: Option<f64>) -> String {
    growth.map_or("unknown".to_string(), |growth| {
        format!("{:+.1} %", growth * 100.0)
    })
}
