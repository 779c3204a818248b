//! parlor-load: a load tester for Parlor (and any server speaking the same
//! protocol subset).
//!
//! Run with `cargo run --release --bin parlor-load -- games --games 1000`
//! against a server started with `cargo run --release`.
//!
//! Scenarios:
//! - `idle`: opens sessions that only answer Pings and holds them; reports
//!   connected, failed by reason and evicted, and with `--server-pid` the
//!   server's memory per session and CPU while idle. Past one process's
//!   open-file limit it runs itself as several worker processes.
//! - `games`: pairs sessions through the lobby's quick match and plays legal
//!   moves at a steady rate; reports move round trips (a move sent until its
//!   own `moved` comes back) and games finished.
//! - `echo`: sessions send `echo` at a steady rate; reports round trips.
//! - `chat`: members of many chat rooms broadcast timestamped messages;
//!   reports offered and delivered messages a second, missing and duplicated
//!   deliveries, and delivery latency.
//!
//! Every run is bounded in time (`--duration`, or `--hold` for `idle`),
//! stops by itself, prints a table, optionally writes one JSON object
//! (`--json FILE`), and exits non-zero when answers fall short of what was
//! sent or any session failed to connect or was dropped.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    process::ExitCode,
    rc::Rc,
    time::{Duration, Instant},
};

use clap::{Args, Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rand::{seq::SliceRandom, Rng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::time::{sleep_until, Instant as TokioInstant};
use tokio_tungstenite::tungstenite::Message;

/// How long after the last connection opens measuring begins, so that every
/// session has joined what it joins.
const SETTLE: Duration = Duration::from_secs(1);

/// How long answers may still arrive after sending stops.
const DRAIN: Duration = Duration::from_secs(1);

/// Longest time a run may measure or hold, in seconds (a day), so every
/// deadline stays representable.
const MAX_SECONDS: u64 = 86_400;

/// Slowest and fastest rates accepted, per second: gaps between 1000 s and
/// 1 µs, never zero.
const RATE_RANGE: std::ops::RangeInclusive<f64> = 0.001..=1_000_000.0;

/// Most connections opened a second while ramping (a gap of 1 µs).
const MAX_RAMP: i64 = 1_000_000;

/// parlor-load: opens many WebSocket sessions against a Parlor server (or
/// any server speaking the same protocol subset) and measures round trips,
/// deliveries, and the server's memory and CPU.
#[derive(Parser)]
#[command(version, long_about = None)]
struct Cli {
    /// Which load to run.
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Idle sessions that only answer Pings; memory and CPU per session.
    Idle(IdleArgs),
    /// Quick-match games playing legal moves; move round-trip percentiles.
    Games(GamesArgs),
    /// Sessions sending `echo`; round-trip percentiles.
    Echo(EchoArgs),
    /// Chat rooms whose members broadcast; delivery rate and latency.
    Chat(ChatArgs),
}

#[derive(Args)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Sessions to open.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    sessions: u32,
    /// How long to hold them, in seconds (the measuring time).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    hold: u64,
    /// Most sessions one process opens; more are spread over worker
    /// processes. Default: this process's open-file limit less a margin.
    #[arg(long)]
    per_process: Option<u32>,
    /// Run as one worker of a larger idle run (set by the parent).
    #[arg(long, hide = true)]
    worker: bool,
}

#[derive(Args)]
struct ChatArgs {
    #[command(flatten)]
    common: Common,
    /// How long to measure, in seconds, after every session is connected.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    duration: u64,
    /// Rooms.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rooms: u32,
    /// Members per room.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    members: u32,
    /// Broadcasts per second per member.
    #[arg(long, default_value_t = 5.0, value_parser = rate)]
    rate: f64,
    /// `state` messages per second in each room (sent by its first member),
    /// to load the store with snapshots; 0 sends none.
    #[arg(long, default_value_t = 0.0, value_parser = rate_or_zero)]
    states: f64,
}

/// Options every scenario takes.
#[derive(Args, Clone)]
struct Common {
    /// The server's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=MAX_RAMP))]
    ramp: u32,
    /// Also write the report as one JSON object to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The server's process id: its RSS and CPU are read from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Spread connections over this many source addresses 127.0.0.1…K, so
    /// no one address runs out of ports.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..))]
    sources: u8,
}

#[derive(Args)]
struct GamesArgs {
    #[command(flatten)]
    common: Common,
    /// How long to measure, in seconds, after every session is connected.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    duration: u64,
    /// Which game to play.
    #[arg(long, default_value = "connect4", value_parser = ["tictactoe", "connect4", "match3"])]
    game: String,
    /// Games in play at once.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    games: u32,
    /// Moves per second in each game (not per player): the player to move
    /// moves 1/rate seconds after the game's previous move, or its start.
    #[arg(long, default_value_t = 1.0, value_parser = rate)]
    rate: f64,
}

#[derive(Args)]
struct EchoArgs {
    #[command(flatten)]
    common: Common,
    /// How long to measure, in seconds, after every session is connected.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    duration: u64,
    /// Sessions.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    sessions: u32,
    /// Echoes per second per session.
    #[arg(long, default_value_t = 1.0, value_parser = rate)]
    rate: f64,
}

/// Parses a rate a second within `RATE_RANGE`, so its gap is never zero
/// nor too long to represent.
fn rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text.parse().map_err(|err| format!("{err}"))?;
    if RATE_RANGE.contains(&rate) {
        Ok(rate)
    } else {
        Err(format!(
            "must be between {} and {}",
            RATE_RANGE.start(),
            RATE_RANGE.end()
        ))
    }
}

/// Like `rate`, also accepting 0 (none).
fn rate_or_zero(text: &str) -> Result<f64, String> {
    if text.parse::<f64>() == Ok(0.0) {
        Ok(0.0)
    } else {
        rate(text).map_err(|err| format!("{err}, or 0"))
    }
}

/// The time between two events at `rate` a second (`rate` is within
/// `RATE_RANGE`).
fn gap(rate: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate)
}

/// What every session records, shared within this single-threaded process.
struct Tally {
    /// Round trips in microseconds.
    rtt: Histogram<u64>,
    /// Requests sent while measuring.
    sent: u64,
    /// Requests answered while measuring.
    answered: u64,
    /// Games that reached `game_over`.
    games_finished: u64,
    /// Deliveries expected for the broadcasts sent (chat).
    expected: u64,
    /// Deliveries seen twice or out of order (chat).
    duplicated: u64,
    /// Sessions the server closed while measuring (idle).
    evicted: u64,
    /// The server's usage, when its pid is known.
    server: Option<ServerUsage>,
    /// This process's CPU while measuring, percent of one core.
    load_cpu_percent: Option<f64>,
    /// Sessions that connected.
    connected: u64,
    /// Sessions that failed to connect or were dropped, counted by reason.
    failures: BTreeMap<String, u64>,
    /// Error frames received, counted by code.
    errors: BTreeMap<String, u64>,
    /// When measuring began (after the ramp).
    measuring_since: Option<Instant>,
}

impl Tally {
    /// Counts a session that failed to connect or was dropped.
    fn fail(&mut self, reason: String) {
        *self.failures.entry(reason).or_default() += 1;
    }

    /// Counts an error frame.
    fn error(&mut self, code: String) {
        *self.errors.entry(code).or_default() += 1;
    }
}

type Shared = Rc<RefCell<Tally>>;

/// The report, printed as a table and optionally written as JSON.
#[derive(Serialize, Deserialize, Default)]
struct Report {
    scenario: String,
    url: String,
    /// Sessions asked for.
    sessions: u64,
    connected: u64,
    /// Sessions that failed to connect or were dropped.
    failed: u64,
    /// `failed`, counted by reason.
    failures: BTreeMap<String, u64>,
    /// The measuring time.
    seconds: f64,
    /// Requests (chat: broadcasts) sent while measuring.
    sent: u64,
    /// Answers (chat: first deliveries) to what was sent while measuring.
    answered: u64,
    /// Answers due: one a request; chat: one a broadcast per other member.
    expected: u64,
    missing: u64,
    /// `answered` a second (chat: deliveries a second).
    per_second: f64,
    /// `expected` a second (chat: deliveries offered a second).
    expected_per_second: f64,
    rtt_ms: Percentiles,
    games_finished: u64,
    duplicated: u64,
    evicted: u64,
    /// Error frames, counted by code.
    errors: BTreeMap<String, u64>,
    /// This load generator's CPU while measuring, percent of one core
    /// (summed over worker processes): near 100 it, not the server, was
    /// the limit.
    load_cpu_percent: Option<f64>,
    /// The server's memory and CPU, with `--server-pid`.
    server: Option<ServerUsage>,
}

/// What /proc says of the server while measuring.
#[derive(Serialize, Deserialize, Clone, Copy, Default)]
struct ServerUsage {
    /// Resident memory before the sessions connected, KiB.
    rss_kib_before: u64,
    /// Resident memory at the end of measuring, KiB.
    rss_kib_after: u64,
    /// (after − before) ÷ sessions connected, bytes.
    bytes_per_session: u64,
    /// CPU used while measuring, percent of one core.
    cpu_percent: f64,
}

impl Report {
    /// Adds a worker's idle report to this one.
    fn absorb(&mut self, worker: Report) {
        self.sessions += worker.sessions;
        self.connected += worker.connected;
        self.failed += worker.failed;
        self.evicted += worker.evicted;
        for (reason, count) in worker.failures {
            *self.failures.entry(reason).or_default() += count;
        }
        if let Some(cpu) = worker.load_cpu_percent {
            *self.load_cpu_percent.get_or_insert(0.0) += cpu;
        }
    }

    /// Counts `sessions` sessions of a worker process that failed as a whole.
    fn lose(&mut self, sessions: u32, reason: String) {
        self.sessions += u64::from(sessions);
        self.failed += u64::from(sessions);
        *self.failures.entry(reason).or_default() += u64::from(sessions);
    }
}

#[derive(Serialize, Deserialize, Default)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("parlor-load: cannot start a runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    raise_file_limit();
    let json = match &cli.scenario {
        Scenario::Idle(args) => args.common.json.clone(),
        Scenario::Games(args) => args.common.json.clone(),
        Scenario::Echo(args) => args.common.json.clone(),
        Scenario::Chat(args) => args.common.json.clone(),
    };
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&runtime, async {
        match cli.scenario {
            Scenario::Idle(args) => run_idle(args).await,
            Scenario::Games(args) => run_games(args).await,
            Scenario::Echo(args) => run_echo(args).await,
            Scenario::Chat(args) => run_chat(args).await,
        }
    });
    finish(&report, json)
}

/// Raises the soft open-file limit to the hard one, and says what it got.
fn raise_file_limit() {
    let (soft, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok(limits) => limits,
        Err(err) => {
            eprintln!("parlor-load: cannot read the open-file limit: {err}");
            return;
        }
    };
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(raised) => eprintln!(
            "parlor-load: open-file limit was soft {soft}, hard {hard}; soft now {raised}"
        ),
        Err(err) => eprintln!(
            "parlor-load: open-file limit soft {soft}, hard {hard}; cannot raise it: {err}"
        ),
    }
}

fn new_tally() -> Shared {
    Rc::new(RefCell::new(Tally {
        rtt: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
        sent: 0,
        answered: 0,
        games_finished: 0,
        expected: 0,
        duplicated: 0,
        evicted: 0,
        server: None,
        load_cpu_percent: None,
        connected: 0,
        failures: BTreeMap::new(),
        errors: BTreeMap::new(),
        measuring_since: None,
    }))
}

/// Starts `sessions` session tasks at the ramp rate, measures for
/// `seconds`, and stops them all.
async fn drive<F, Fut>(
    common: &Common,
    seconds: u64,
    sessions: u32,
    tally: &Shared,
    session: F,
) -> f64
where
    F: Fn(u32, TokioInstant) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    SOURCES.with(|sources| sources.set(common.sources));
    let before = server_sample(common);
    let progress = tokio::task::spawn_local(progress(tally.clone()));
    let ramp_gap = gap(f64::from(common.ramp));
    let ramp_end = TokioInstant::now() + ramp_gap * sessions;
    let measure_from = ramp_end + SETTLE;
    let stop_at = measure_from + Duration::from_secs(seconds);
    // Sessions stop sending at `stop_at` and keep reading until aborted here.
    let mut tasks = Vec::new();
    let mut ramp = tokio::time::interval(ramp_gap);
    ramp.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for n in 0..sessions {
        ramp.tick().await;
        tasks.push(tokio::task::spawn_local(session(n, stop_at)));
    }
    sleep_until(measure_from).await;
    tally.borrow_mut().measuring_since = Some(Instant::now());
    let started = Instant::now();
    let measuring = server_sample(common);
    let load_measuring = sample("/proc/self");
    sleep_until(stop_at).await;
    let seconds = started.elapsed().as_secs_f64();
    let after = server_sample(common);
    let load_after = sample("/proc/self");
    let connected = tally.borrow().connected;
    if let (Some(before), Some(measuring), Some(after)) = (before, measuring, after) {
        tally.borrow_mut().server = Some(usage(before, measuring, after, connected, seconds));
    }
    if let (Some((_, from)), Some((_, to))) = (load_measuring, load_after) {
        tally.borrow_mut().load_cpu_percent = Some(cpu_percent(to.saturating_sub(from), seconds));
    }
    // Answers still in flight may arrive for this long; later ones count as missing.
    tokio::time::sleep(DRAIN).await;
    progress.abort();
    for task in tasks {
        task.abort();
    }
    seconds
}

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// A live progress line on stderr until aborted.
async fn progress(tally: Shared) {
    let line = indicatif::ProgressBar::new_spinner();
    line.enable_steady_tick(PROGRESS_EVERY);
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        let tally = tally.borrow();
        let phase = if tally.measuring_since.is_some() {
            "measuring"
        } else {
            "connecting"
        };
        line.set_message(format!(
            "{phase}: {} connected, {} failed, {} sent, {} answered, p99 {:.2} ms",
            tally.connected,
            tally.failures.values().sum::<u64>(),
            tally.sent,
            tally.answered,
            tally.rtt.value_at_quantile(0.99) as f64 / 1000.0
        ));
    }
}

/// One reading of the server's /proc, with `--server-pid`.
fn server_sample(common: &Common) -> Option<(u64, u64)> {
    sample(&format!("/proc/{}", common.server_pid?))
}

/// One reading of a process's /proc folder (`/proc/PID` or `/proc/self`):
/// (RSS KiB, CPU ticks).
fn sample(proc_dir: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("{proc_dir}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    let rss: u64 = rss.trim().trim_end_matches("kB").trim().parse().ok()?;
    let stat = std::fs::read_to_string(format!("{proc_dir}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at state.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((rss, ticks))
}

/// Clock ticks a second, as /proc counts CPU time: USER_HZ, which Linux
/// fixes at 100 for user space (sysconf(_SC_CLK_TCK) would need libc,
/// which is not a dependency of this binary).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU `ticks` over `seconds`, as percent of one core.
fn cpu_percent(ticks: u64, seconds: f64) -> f64 {
    ticks as f64 / TICKS_PER_SEC / seconds.max(f64::EPSILON) * 100.0
}

/// The server's usage from samples before the ramp, when measuring began
/// and when it ended; memory is shared among the sessions `connected`.
fn usage(
    before: (u64, u64),
    measuring: (u64, u64),
    after: (u64, u64),
    connected: u64,
    seconds: f64,
) -> ServerUsage {
    let grown = after.0.saturating_sub(before.0) * 1024;
    ServerUsage {
        rss_kib_before: before.0,
        rss_kib_after: after.0,
        bytes_per_session: grown / connected.max(1),
        cpu_percent: cpu_percent(after.1.saturating_sub(measuring.1), seconds),
    }
}

async fn run_games(args: GamesArgs) -> Report {
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
            let (url, game, tally) = (args.common.url.clone(), args.game.clone(), tally.clone());
            async move { player(url, n, game, gap, stop_at, tally).await }
        },
    )
    .await;
    report("games", &args.common, u64::from(sessions), seconds, &tally)
}

async fn run_chat(args: ChatArgs) -> Report {
    let tally = new_tally();
    let sessions = args.rooms * args.members;
    let broadcast_gap = gap(args.rate);
    let others = u64::from(args.members - 1);
    let state_gap = (args.states > 0.0).then(|| gap(args.states));
    let seconds = drive(
        &args.common,
        args.duration,
        sessions,
        &tally,
        |n, stop_at| {
            let (url, tally) = (args.common.url.clone(), tally.clone());
            let room = format!("load-{}", n % args.rooms);
            // The first member of each room publishes its state.
            let pace = Pace {
                gap: broadcast_gap,
                state_gap: state_gap.filter(|_| n < args.rooms),
                stop_at,
            };
            async move { chatter(url, room, n, pace, others, tally).await }
        },
    )
    .await;
    report("chat", &args.common, u64::from(sessions), seconds, &tally)
}

/// Open files a worker keeps free beyond its sessions (stdio, the runtime).
const FILE_MARGIN: u64 = 64;

async fn run_idle(args: IdleArgs) -> Report {
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    let per_process = args
        .per_process
        .unwrap_or_else(|| u32::try_from(limit.saturating_sub(FILE_MARGIN)).unwrap_or(u32::MAX))
        .max(1);
    if args.sessions > per_process && !args.worker {
        return run_idle_workers(&args, per_process).await;
    }
    let tally = new_tally();
    let mut common = args.common.clone();
    if args.worker {
        // The parent reads the server; a worker only holds sessions.
        common.server_pid = None;
    }
    let seconds = drive(&common, args.hold, args.sessions, &tally, |n, _| {
        let (url, tally) = (common.url.clone(), tally.clone());
        async move { idler(url, n, tally).await }
    })
    .await;
    report("idle", &common, u64::from(args.sessions), seconds, &tally)
}

/// Holds one session, answering Pings, until aborted; counts it evicted if
/// the server closes it while measuring.
async fn idler(url: String, n: u32, tally: Shared) {
    let Some(mut socket) = open(&url, n, &tally).await else {
        return;
    };
    // `event_of` counts the drop as a failure, with its reason.
    while event_of(socket.next().await, &tally).is_some() {}
    let mut tally = tally.borrow_mut();
    if tally.measuring_since.is_some() {
        tally.evicted += 1;
    }
}

/// Runs an idle load too big for one process as several worker processes
/// (this same binary), each holding its share, and adds up their reports.
async fn run_idle_workers(args: &IdleArgs, per_process: u32) -> Report {
    let workers = args.sessions.div_ceil(per_process);
    let ramp_each = (args.common.ramp / workers).max(1);
    let dir = std::env::temp_dir();
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("parlor-load"));
    eprintln!(
        "parlor-load: {} sessions over {workers} worker processes",
        args.sessions
    );
    let mut merged = Report {
        scenario: "idle".to_string(),
        url: args.common.url.clone(),
        ..Report::default()
    };
    let mut children = Vec::new();
    for worker in 0..workers {
        let share = per_process.min(args.sessions - worker * per_process);
        let json = dir.join(format!("parlor-load-{}-{worker}.json", std::process::id()));
        let child = tokio::process::Command::new(&exe)
            .args(["idle", "--worker", "--url", &args.common.url])
            .args([
                "--sessions",
                &share.to_string(),
                "--hold",
                &args.hold.to_string(),
            ])
            .args([
                "--ramp",
                &ramp_each.to_string(),
                "--sources",
                &args.common.sources.to_string(),
            ])
            .arg("--json")
            .arg(&json)
            .stdout(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(child) => children.push((child, json, share)),
            Err(err) => merged.lose(share, format!("worker process did not start: {err}")),
        }
    }
    // The parent reads the server over the workers' measuring window.
    let ramp = Duration::from_secs_f64(f64::from(per_process) / f64::from(ramp_each));
    let before = server_sample(&args.common);
    tokio::time::sleep(ramp + SETTLE).await;
    let measuring = server_sample(&args.common);
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let after = server_sample(&args.common);
    for (mut child, json, share) in children {
        let _ = child.wait().await;
        let text = std::fs::read_to_string(&json).ok();
        let worker: Option<Report> = text.and_then(|text| serde_json::from_str(&text).ok());
        let _ = std::fs::remove_file(&json);
        match worker {
            Some(worker) => merged.absorb(worker),
            None => merged.lose(share, "worker process did not report".to_string()),
        }
    }
    merged.seconds = args.hold as f64;
    if let (Some(before), Some(measuring), Some(after)) = (before, measuring, after) {
        let seconds = args.hold as f64;
        merged.server = Some(usage(before, measuring, after, merged.connected, seconds));
    }
    merged
}

async fn run_echo(args: EchoArgs) -> Report {
    let tally = new_tally();
    let gap = gap(args.rate);
    let seconds = drive(
        &args.common,
        args.duration,
        args.sessions,
        &tally,
        |n, stop_at| {
            let (url, tally) = (args.common.url.clone(), tally.clone());
            async move { echoer(url, n, gap, stop_at, tally).await }
        },
    )
    .await;
    report(
        "echo",
        &args.common,
        u64::from(args.sessions),
        seconds,
        &tally,
    )
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

thread_local! {
    /// How many source addresses connections are spread over.
    static SOURCES: std::cell::Cell<u8> = const { std::cell::Cell::new(1) };
}

/// Connects session `n`, from source address 127.0.0.(1 + n mod K) when
/// the server is on loopback.
async fn dial(url: &str, n: u32) -> Result<Socket, String> {
    let uri: tokio_tungstenite::tungstenite::http::Uri =
        url.parse().map_err(|err| format!("bad url: {err}"))?;
    let host = uri.host().unwrap_or("127.0.0.1");
    let port = uri.port_u16().unwrap_or(80);
    let server: std::net::SocketAddr = format!("{}:{port}", host.replace("localhost", "127.0.0.1"))
        .parse()
        .map_err(|_| format!("{host} is not an IP address"))?;
    let socket = tokio::net::TcpSocket::new_v4().map_err(|err| err.to_string())?;
    if server.ip().is_loopback() {
        let sources = u32::from(SOURCES.with(std::cell::Cell::get));
        let source = std::net::Ipv4Addr::new(127, 0, 0, 1 + (n % sources) as u8);
        socket
            .bind((source, 0).into())
            .map_err(|err| format!("bind: {err}"))?;
    }
    let stream = socket
        .connect(server)
        .await
        .map_err(|err| format!("connect: {err}"))?;
    // Nagle's algorithm would hold small frames back for the peer's delayed ACK.
    stream.set_nodelay(true).map_err(|err| err.to_string())?;
    let (socket, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .map_err(|err| match err {
                // Its Display would add the reason phrase, or nothing useful.
                tokio_tungstenite::tungstenite::Error::Http(response) => {
                    format!("HTTP {}", response.status().as_u16())
                }
                err => format!("handshake: {err}"),
            })?;
    Ok(socket)
}

async fn open(url: &str, n: u32, tally: &Shared) -> Option<Socket> {
    match dial(url, n).await {
        Ok(socket) => {
            tally.borrow_mut().connected += 1;
            Some(socket)
        }
        Err(err) => {
            tally.borrow_mut().fail(err);
            None
        }
    }
}

/// Counts a request sent, if measuring.
fn count_sent(tally: &Shared) {
    let mut tally = tally.borrow_mut();
    if tally.measuring_since.is_some() {
        tally.sent += 1;
    }
}

/// Counts an answer to a request sent at `sent_at`, if it was sent while measuring.
fn count_answer(tally: &Shared, sent_at: Instant) {
    let mut tally = tally.borrow_mut();
    if tally.measuring_since.is_some_and(|since| sent_at >= since) {
        tally.answered += 1;
        let micros = u64::try_from(sent_at.elapsed().as_micros()).unwrap_or(u64::MAX);
        let _ = tally.rtt.record(micros.max(1));
    }
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

/// A frame read from the server as JSON: `None` when the connection ended
/// (counted as a failure, with how it ended), `Some(None)` for a frame that
/// is not a JSON text.
fn event_of(
    frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    tally: &Shared,
) -> Option<Option<Value>> {
    let reason = match frame {
        Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).ok()),
        Some(Ok(Message::Close(Some(close)))) => {
            format!("closed by the server ({})", u16::from(close.code))
        }
        Some(Ok(Message::Close(None))) => "closed by the server".to_string(),
        Some(Ok(_)) => return Some(None),
        Some(Err(err)) => format!("dropped: {err}"),
        None => "dropped by the server".to_string(),
    };
    tally.borrow_mut().fail(reason);
    None
}

/// What a frame meant to a player.
enum Happened {
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
struct Table {
    game_id: Option<String>,
    game: String,
    me: String,
    turn: Option<String>,
    board: Value,
    first_seat: bool,
}

impl Table {
    fn my_turn(&self) -> bool {
        self.game_id.is_some() && self.turn.as_deref() == Some(self.me.as_str())
    }

    fn apply(&mut self, event: &Value) -> Option<Happened> {
        let text = |key: &str| event[key].as_str().map(str::to_string);
        match event["type"].as_str()? {
            "game_start" => {
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
    fn resign(&self) -> Value {
        json!({"type":"resign","game_id":self.game_id})
    }

    /// A random legal move on the board as last seen.
    fn legal_move(&self) -> Option<Value> {
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
                let (from, to) = match3_swap(&self.board, rng.gen_range(0..64))?;
                json!({"from": from, "to": to})
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

/// A swap of neighbours that makes a line, searching from cell `start`.
fn match3_swap(board: &Value, start: usize) -> Option<([usize; 2], [usize; 2])> {
    let gem = |r: usize, c: usize| board[r][c].as_u64();
    let grid: Vec<Vec<u64>> = (0..8)
        .map(|r| (0..8).map(|c| gem(r, c).unwrap_or(99)).collect())
        .collect();
    (0..64).map(|n| (n + start) % 64).find_map(|n| {
        let (r, c) = (n / 8, n % 8);
        [(r, c + 1), (r + 1, c)]
            .into_iter()
            .filter(|&(r2, c2)| r2 < 8 && c2 < 8)
            .find(|&(r2, c2)| swap_makes_line(&grid, (r, c), (r2, c2)))
            .map(|(r2, c2)| ([r, c], [r2, c2]))
    })
}

fn swap_makes_line(grid: &[Vec<u64>], a: (usize, usize), b: (usize, usize)) -> bool {
    let mut grid = grid.to_vec();
    let kept = grid[a.0][a.1];
    grid[a.0][a.1] = grid[b.0][b.1];
    grid[b.0][b.1] = kept;
    let across = (0..8)
        .any(|r| (0..6).any(|c| grid[r][c] == grid[r][c + 1] && grid[r][c] == grid[r][c + 2]));
    let down = (0..6)
        .any(|r| (0..8).any(|c| grid[r][c] == grid[r + 1][c] && grid[r][c] == grid[r + 2][c]));
    across || down
}

/// One echo session: sends `echo` every `gap` with its send time, until `stop_at`.
async fn echoer(url: String, n: u32, gap: Duration, stop_at: TokioInstant, tally: Shared) {
    let Some(mut socket) = open(&url, n, &tally).await else {
        return;
    };
    let origin = Instant::now();
    let jitter = Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..gap.as_secs_f64()));
    let mut next = TokioInstant::now() + jitter;
    loop {
        tokio::select! {
            () = sleep_until(next), if next < stop_at => {
                next += gap;
                count_sent(&tally);
                let micros = origin.elapsed().as_micros() as u64;
                let request = json!({"type":"echo","data":micros}).to_string();
                if socket.send(Message::text(request)).await.is_err() {
                    return;
                }
            }
            frame = socket.next() => {
                let Some(event) = event_of(frame, &tally) else { return };
                let Some(event) = event else { continue };
                if event["type"] == "echo" {
                    if let Some(micros) = event["data"].as_u64() {
                        count_answer(&tally, origin + Duration::from_micros(micros));
                    }
                }
            }
        }
    }
}

/// How often a chat member sends, and until when.
struct Pace {
    /// Between broadcasts.
    gap: Duration,
    /// Between `state` messages, for members that send them.
    state_gap: Option<Duration>,
    /// When sending stops.
    stop_at: TokioInstant,
}

/// One chat member: joins `room`, answers state requests, broadcasts
/// `{t, n, from, m}` every `gap` and times every broadcast it receives
/// (`m` marks broadcasts sent while measuring).
async fn chatter(url: String, room: String, me: u32, pace: Pace, others: u64, tally: Shared) {
    let Pace {
        gap,
        state_gap,
        stop_at,
    } = pace;
    let mut next_state = TokioInstant::now() + state_gap.unwrap_or_default();
    let mut states = 0u64;
    let Some(mut socket) = open(&url, me, &tally).await else {
        return;
    };
    let join = json!({"type":"join_room","room":room,"kind":"chat"}).to_string();
    if socket.send(Message::text(join)).await.is_err() {
        return;
    }
    let origin = ORIGIN.with(|origin| *origin);
    let jitter = Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..gap.as_secs_f64()));
    let mut next = TokioInstant::now() + jitter;
    let mut sequence = 0u64;
    let mut last_seen: HashMap<u64, u64> = HashMap::new();
    loop {
        tokio::select! {
            () = sleep_until(next_state), if state_gap.is_some() && next_state < stop_at => {
                next_state += state_gap.unwrap_or_default();
                states += 1;
                let state = json!({"type":"state","room":room,"data":{"version":states}}).to_string();
                if socket.send(Message::text(state)).await.is_err() {
                    return;
                }
            }
            () = sleep_until(next), if next < stop_at => {
                next += gap;
                let measuring = tally.borrow().measuring_since.is_some();
                if measuring {
                    let mut tally = tally.borrow_mut();
                    tally.sent += 1;
                    tally.expected += others;
                }
                sequence += 1;
                let micros = origin.elapsed().as_micros() as u64;
                let data = json!({"t": micros, "n": sequence, "from": me, "m": measuring});
                let request = json!({"type":"broadcast","room":room,"data":data}).to_string();
                if socket.send(Message::text(request)).await.is_err() {
                    return;
                }
            }
            frame = socket.next() => {
                let Some(event) = event_of(frame, &tally) else { return };
                let Some(event) = event else { continue };
                match event["type"].as_str() {
                    Some("message") => record_delivery(&event["data"], origin, &mut last_seen, &tally),
                    Some("state_request") => {
                        let reply = json!({"type":"state","room":room,"data":null,"for":event["for"]});
                        if socket.send(Message::text(reply.to_string())).await.is_err() {
                            return;
                        }
                    }
                    Some("error") => {
                        let code = event["code"].as_str().unwrap_or_default().to_string();
                        tally.borrow_mut().error(code);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Counts one delivered broadcast: a duplicate if its sequence number is
/// not past the last one seen from its sender, else a delivery (with its
/// latency) if it was sent while measuring.
fn record_delivery(
    data: &Value,
    origin: Instant,
    last_seen: &mut HashMap<u64, u64>,
    tally: &Shared,
) {
    let (Some(sent), Some(sequence), Some(from)) = (
        data["t"].as_u64(),
        data["n"].as_u64(),
        data["from"].as_u64(),
    ) else {
        return;
    };
    let mut tally = tally.borrow_mut();
    let last = last_seen.entry(from).or_default();
    if sequence <= *last {
        tally.duplicated += 1;
        return;
    }
    *last = sequence;
    if data["m"] == true {
        tally.answered += 1;
        let micros = (origin.elapsed().as_micros() as u64)
            .saturating_sub(sent)
            .max(1);
        let _ = tally.rtt.record(micros);
    }
}

thread_local! {
    /// The instant every timestamp in this process counts from.
    static ORIGIN: Instant = Instant::now();
}

fn report(
    scenario: &'static str,
    common: &Common,
    sessions: u64,
    seconds: f64,
    tally: &Shared,
) -> Report {
    let tally = tally.borrow();
    let ms = |quantile: f64| tally.rtt.value_at_quantile(quantile) as f64 / 1000.0;
    let per_second = |count: u64| count as f64 / seconds.max(f64::EPSILON);
    // Chat counts deliveries due per broadcast; the others one answer a request.
    let expected = if scenario == "chat" {
        tally.expected
    } else {
        tally.sent
    };
    Report {
        scenario: scenario.to_string(),
        url: common.url.clone(),
        sessions,
        connected: tally.connected,
        failed: tally.failures.values().sum(),
        failures: tally.failures.clone(),
        seconds,
        sent: tally.sent,
        answered: tally.answered,
        expected,
        missing: expected.saturating_sub(tally.answered),
        per_second: per_second(tally.answered),
        expected_per_second: per_second(expected),
        rtt_ms: Percentiles {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            max: tally.rtt.max() as f64 / 1000.0,
        },
        games_finished: tally.games_finished,
        duplicated: tally.duplicated,
        evicted: tally.evicted,
        errors: tally.errors.clone(),
        load_cpu_percent: tally.load_cpu_percent,
        server: tally.server,
    }
}

fn finish(report: &Report, json: Option<PathBuf>) -> ExitCode {
    print_table(report);
    if let Some(path) = json {
        let written = serde_json::to_string_pretty(report).map(|json| std::fs::write(&path, json));
        if !matches!(written, Ok(Ok(()))) {
            eprintln!("parlor-load: cannot write {}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if shortfall(report) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Whether the run fell short: a session failed or was dropped, an answer
/// or delivery is missing or doubled, or nothing came back at all.
fn shortfall(report: &Report) -> bool {
    // Idle sends nothing; chat with one member a room has no one to deliver to.
    let answers_due = match report.scenario.as_str() {
        "idle" => false,
        "chat" => report.expected > 0,
        _ => true,
    };
    (answers_due && report.answered == 0)
        || report.failed > 0
        || report.evicted > 0
        || report.missing > 0
        || report.duplicated > 0
        || report.connected < report.sessions
}

fn print_table(report: &Report) {
    println!("scenario        {}", report.scenario);
    println!(
        "sessions        {} ({} connected, {} failed)",
        report.sessions, report.connected, report.failed
    );
    for (reason, count) in &report.failures {
        println!("  failed        {count} × {reason}");
    }
    println!("measured        {:.1} s", report.seconds);
    let rtt = &report.rtt_ms;
    let percentiles = format!(
        "p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
        rtt.p50, rtt.p90, rtt.p99, rtt.max
    );
    if report.scenario == "chat" {
        println!("broadcasts      {} sent", report.sent);
        println!(
            "deliveries      {} offered ({:.0}/s), {} delivered ({:.0}/s), {} missing, {} duplicated",
            report.expected,
            report.expected_per_second,
            report.answered,
            report.per_second,
            report.missing,
            report.duplicated
        );
        println!("latency ms      {percentiles}");
    } else if report.scenario != "idle" {
        println!(
            "sent / answered {} / {} ({} missing), {:.0}/s offered, {:.0}/s answered",
            report.sent,
            report.answered,
            report.missing,
            report.expected_per_second,
            report.per_second
        );
        println!("round trip ms   {percentiles}");
    }
    if report.scenario == "games" {
        println!("games finished  {}", report.games_finished);
    }
    if report.scenario == "idle" {
        println!("evicted         {}", report.evicted);
    }
    if let Some(cpu) = report.load_cpu_percent {
        println!("load generator  CPU {cpu:.1} % of a core while measuring");
    }
    if let Some(server) = &report.server {
        println!(
            "server          RSS {} -> {} KiB ({} bytes a session), CPU {:.1} % of a core while measuring",
            server.rss_kib_before, server.rss_kib_after, server.bytes_per_session, server.cpu_percent
        );
    }
    for (code, count) in &report.errors {
        println!("error frames    {count} × {code}");
    }
}
