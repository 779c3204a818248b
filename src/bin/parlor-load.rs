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
//! Every run is bounded by `--duration`, stops by itself, prints a table,
//! optionally writes one JSON object (`--json FILE`), and exits non-zero
//! when answers fall short of what was sent.

use std::{
    cell::RefCell,
    collections::HashMap,
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

/// Load tester for Parlor's WebSocket protocol.
#[derive(Parser)]
#[command(version, about)]
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
    #[arg(long, default_value_t = 1000)]
    sessions: u32,
    /// How long to hold them, in seconds (the measuring time).
    #[arg(long, default_value_t = 30)]
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
    /// Rooms.
    #[arg(long, default_value_t = 100)]
    rooms: u32,
    /// Members per room.
    #[arg(long, default_value_t = 10)]
    members: u32,
    /// Broadcasts per second per member.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// `state` messages per second in each room (sent by its first member),
    /// to load the store with snapshots; 0 sends none.
    #[arg(long, default_value_t = 0.0)]
    states: f64,
}

/// Options every scenario takes.
#[derive(Args, Clone)]
struct Common {
    /// The server's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// How long to measure, in seconds, after every session is connected.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 500)]
    ramp: u32,
    /// Also write the report as one JSON object to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The server's process id: its RSS and CPU are read from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Spread connections over this many source addresses 127.0.0.1…K, so
    /// no one address runs out of ports.
    #[arg(long, default_value_t = 8)]
    sources: u8,
}

#[derive(Args)]
struct GamesArgs {
    #[command(flatten)]
    common: Common,
    /// tictactoe, connect4 or match3.
    #[arg(long, default_value = "connect4")]
    game: String,
    /// Games in play at once.
    #[arg(long, default_value_t = 100)]
    games: u32,
    /// Moves per second in each game.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
}

#[derive(Args)]
struct EchoArgs {
    #[command(flatten)]
    common: Common,
    /// Sessions.
    #[arg(long, default_value_t = 100)]
    sessions: u32,
    /// Echoes per second per session.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
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
    /// Sessions that connected.
    connected: u64,
    /// Sessions that failed to connect or dropped, by reason.
    failures: Vec<String>,
    /// Error frames received, by code.
    errors: Vec<String>,
    /// When measuring began (after the ramp).
    measuring_since: Option<Instant>,
}

type Shared = Rc<RefCell<Tally>>;

/// The report, printed as a table and optionally written as JSON.
#[derive(Serialize, Deserialize)]
struct Report {
    scenario: String,
    url: String,
    sessions: u64,
    connected: u64,
    failed: usize,
    failures: Vec<String>,
    seconds: f64,
    sent: u64,
    answered: u64,
    missing: u64,
    per_second: f64,
    rtt_ms: Percentiles,
    games_finished: u64,
    duplicated: u64,
    evicted: u64,
    errors: Vec<String>,
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
    /// (after − before) ÷ sessions, bytes.
    bytes_per_session: u64,
    /// CPU used while measuring, percent of one core.
    cpu_percent: f64,
}

impl Report {
    fn empty(scenario: &str, url: &str) -> Report {
        Report {
            scenario: scenario.to_string(),
            url: url.to_string(),
            sessions: 0,
            connected: 0,
            failed: 0,
            failures: Vec::new(),
            seconds: 0.0,
            sent: 0,
            answered: 0,
            missing: 0,
            per_second: 0.0,
            rtt_ms: Percentiles {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
            },
            games_finished: 0,
            duplicated: 0,
            evicted: 0,
            errors: Vec::new(),
            server: None,
        }
    }

    /// Adds a worker's idle report to this one.
    fn absorb(&mut self, worker: Report) {
        self.sessions += worker.sessions;
        self.connected += worker.connected;
        self.failed += worker.failed;
        self.evicted += worker.evicted;
        self.failures.extend(worker.failures);
        self.failures.sort();
        self.failures.dedup();
    }
}

#[derive(Serialize, Deserialize)]
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

fn raise_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => eprintln!("parlor-load: open-file limit {limit}"),
        Err(err) => eprintln!("parlor-load: cannot raise the open-file limit: {err}"),
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
        connected: 0,
        failures: Vec::new(),
        errors: Vec::new(),
        measuring_since: None,
    }))
}

/// Starts `sessions` session tasks at the ramp rate, measures for the
/// duration, and stops them all.
async fn drive<F, Fut>(common: &Common, sessions: u32, tally: &Shared, session: F) -> f64
where
    F: Fn(u32, TokioInstant) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    SOURCES.with(|sources| sources.set(common.sources.max(1)));
    let before = common.server_pid.and_then(sample);
    let progress = tokio::task::spawn_local(progress(tally.clone()));
    let ramp_gap = Duration::from_secs_f64(1.0 / f64::from(common.ramp.max(1)));
    let ramp_end = TokioInstant::now() + ramp_gap * sessions;
    let measure_from = ramp_end + SETTLE;
    let stop_at = measure_from + Duration::from_secs(common.duration);
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
    let measuring = common.server_pid.and_then(sample);
    sleep_until(stop_at).await;
    let seconds = started.elapsed().as_secs_f64();
    let after = common.server_pid.and_then(sample);
    if let (Some(before), Some(measuring), Some(after)) = (before, measuring, after) {
        tally.borrow_mut().server = Some(usage(before, measuring, after, sessions, seconds));
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
            tally.failures.len(),
            tally.sent,
            tally.answered,
            tally.rtt.value_at_quantile(0.99) as f64 / 1000.0
        ));
    }
}

/// One reading of the server's /proc: (RSS KiB, CPU ticks).
fn sample(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    let rss: u64 = rss.trim().trim_end_matches("kB").trim().parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at state.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((rss, ticks))
}

/// Clock ticks a second, as /proc counts CPU time (USER_HZ on Linux).
const TICKS_PER_SEC: f64 = 100.0;

fn usage(
    before: (u64, u64),
    measuring: (u64, u64),
    after: (u64, u64),
    sessions: u32,
    seconds: f64,
) -> ServerUsage {
    let grown = after.0.saturating_sub(before.0) * 1024;
    ServerUsage {
        rss_kib_before: before.0,
        rss_kib_after: after.0,
        bytes_per_session: grown / u64::from(sessions.max(1)),
        cpu_percent: (after.1.saturating_sub(measuring.1)) as f64
            / TICKS_PER_SEC
            / seconds.max(f64::EPSILON)
            * 100.0,
    }
}

async fn run_games(args: GamesArgs) -> Report {
    let tally = new_tally();
    let solo = args.game == "match3";
    let sessions = if solo { args.games } else { args.games * 2 };
    let gap = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let seconds = drive(&args.common, sessions, &tally, |n, stop_at| {
        let (url, game, tally) = (args.common.url.clone(), args.game.clone(), tally.clone());
        async move { player(url, n, game, gap, stop_at, tally).await }
    })
    .await;
    report("games", &args.common, u64::from(sessions), seconds, &tally)
}

async fn run_chat(args: ChatArgs) -> Report {
    let tally = new_tally();
    let sessions = args.rooms * args.members;
    let gap = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let others = u64::from(args.members.saturating_sub(1));
    let state_gap = (args.states > 0.0).then(|| Duration::from_secs_f64(1.0 / args.states));
    let seconds = drive(&args.common, sessions, &tally, |n, stop_at| {
        let (url, tally) = (args.common.url.clone(), tally.clone());
        let room = format!("load-{}", n % args.rooms);
        // The first member of each room publishes its state.
        let pace = Pace {
            gap,
            state_gap: state_gap.filter(|_| n < args.rooms),
            stop_at,
        };
        async move { chatter(url, room, n, pace, others, tally).await }
    })
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
    common.duration = args.hold;
    if args.worker {
        // The parent reads the server; a worker only holds sessions.
        common.server_pid = None;
    }
    let seconds = drive(&common, args.sessions, &tally, |n, _| {
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
    while let Some(Ok(_)) = socket.next().await {}
    let mut tally = tally.borrow_mut();
    if tally.measuring_since.is_some() {
        tally.evicted += 1;
    }
    tally.failures.push("closed by the server".to_string());
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
            Ok(child) => children.push((child, json)),
            Err(err) => eprintln!("parlor-load: cannot start a worker: {err}"),
        }
    }
    // The parent reads the server over the workers' measuring window.
    let ramp = Duration::from_secs_f64(f64::from(per_process) / f64::from(ramp_each));
    let before = args.common.server_pid.and_then(sample);
    tokio::time::sleep(ramp + SETTLE).await;
    let measuring = args.common.server_pid.and_then(sample);
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let after = args.common.server_pid.and_then(sample);
    let mut merged = Report::empty("idle", &args.common.url);
    for (mut child, json) in children {
        let _ = child.wait().await;
        let text = std::fs::read_to_string(&json).ok();
        let worker: Option<Report> = text.and_then(|text| serde_json::from_str(&text).ok());
        let _ = std::fs::remove_file(&json);
        match worker {
            Some(worker) => merged.absorb(worker),
            None => merged.failures.push("a worker process failed".to_string()),
        }
    }
    merged.seconds = args.hold as f64;
    if let (Some(before), Some(measuring), Some(after)) = (before, measuring, after) {
        merged.server = Some(usage(
            before,
            measuring,
            after,
            args.sessions,
            args.hold as f64,
        ));
    }
    merged
}

async fn run_echo(args: EchoArgs) -> Report {
    let tally = new_tally();
    let gap = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let seconds = drive(&args.common, args.sessions, &tally, |n, stop_at| {
        let (url, tally) = (args.common.url.clone(), tally.clone());
        async move { echoer(url, n, gap, stop_at, tally).await }
    })
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
            .map_err(|err| err.to_string())?;
    Ok(socket)
}

async fn open(url: &str, n: u32, tally: &Shared) -> Option<Socket> {
    match dial(url, n).await {
        Ok(socket) => {
            tally.borrow_mut().connected += 1;
            Some(socket)
        }
        Err(err) => {
            tally.borrow_mut().failures.push(short_reason(&err));
            None
        }
    }
}

fn short_reason(reason: &str) -> String {
    reason
        .split(':')
        .next()
        .unwrap_or(reason)
        .trim()
        .to_string()
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

/// One player: queues, plays legal moves every `gap` when it is its turn,
/// and queues again when a game ends, until `stop_at`.
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
                let Some(request) = table.legal_move() else { continue };
                count_sent(&tally);
                pending = Some(Instant::now());
                next_move = TokioInstant::now() + gap;
                if socket.send(Message::text(request.to_string())).await.is_err() {
                    return;
                }
            }
            frame = socket.next() => {
                let Some(event) = event_of(frame, &tally) else { return };
                let Some(event) = event else { continue };
                match table.apply(&event) {
                    Some(Happened::MyMove) => {
                        if let Some(sent_at) = pending.take() {
                            count_answer(&tally, sent_at);
                        }
                    }
                    Some(Happened::Over) => {
                        tally.borrow_mut().games_finished += 1;
                        pending = None;
                        if socket.send(Message::text(find.clone())).await.is_err() {
                            return;
                        }
                    }
                    Some(Happened::Error(code)) => {
                        pending = None;
                        tally.borrow_mut().errors.push(code);
                    }
                    None => {}
                }
            }
        }
    }
}

/// A frame read from the server as JSON: `None` when the connection ended
/// (counted as a failure), `Some(None)` for a frame that is not a JSON text.
fn event_of(
    frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    tally: &Shared,
) -> Option<Option<Value>> {
    let Some(Ok(frame)) = frame else {
        tally
            .borrow_mut()
            .failures
            .push("dropped by the server".to_string());
        return None;
    };
    let Message::Text(text) = frame else {
        return Some(None);
    };
    Some(serde_json::from_str(&text).ok())
}

/// What a frame meant to a player.
enum Happened {
    /// The server accepted this player's move.
    MyMove,
    /// The game ended (counted once, by the first seat).
    Over,
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
                None
            }
            "moved" if text("game_id") == self.game_id => {
                self.turn = text("turn");
                self.board = event["board"].clone();
                (text("seat").as_deref() == Some(self.me.as_str())).then_some(Happened::MyMove)
            }
            "game_over" if text("game_id") == self.game_id => {
                self.game_id = None;
                self.first_seat.then_some(Happened::Over)
            }
            "error" => Some(Happened::Error(text("code").unwrap_or_default())),
            _ => None,
        }
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

/// One chat member: joins `room`, answers state requests, broadcasts
/// `{t, n, from, m}` every `gap` and times every broadcast it receives
/// (`m` marks broadcasts sent while measuring).
/// How often a chat member sends, and until when.
struct Pace {
    /// Between broadcasts.
    gap: Duration,
    /// Between `state` messages, for members that send them.
    state_gap: Option<Duration>,
    /// When sending stops.
    stop_at: TokioInstant,
}

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
                        tally.borrow_mut().errors.push(code);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Counts one delivered broadcast: latency if it was sent while measuring,
/// and a duplicate if its sequence number is not past the last one seen.
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
    let last = last_seen.insert(from, sequence).unwrap_or(0);
    let mut tally = tally.borrow_mut();
    if sequence <= last {
        tally.duplicated += 1;
    }
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
    let mut failures = tally.failures.clone();
    failures.sort();
    failures.dedup();
    let mut errors = tally.errors.clone();
    errors.sort();
    errors.dedup();
    Report {
        scenario: scenario.to_string(),
        url: common.url.clone(),
        sessions,
        connected: tally.connected,
        failed: tally.failures.len(),
        failures,
        seconds,
        sent: tally.sent,
        answered: tally.answered,
        missing: tally
            .expected
            .max(tally.sent)
            .saturating_sub(tally.answered),
        per_second: tally.answered as f64 / seconds.max(f64::EPSILON),
        rtt_ms: Percentiles {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            max: tally.rtt.max() as f64 / 1000.0,
        },
        games_finished: tally.games_finished,
        duplicated: tally.duplicated,
        evicted: tally.evicted,
        errors,
        server: tally.server,
    }
}

fn finish(report: &Report, json: Option<PathBuf>) -> ExitCode {
    println!("scenario        {}", report.scenario);
    println!(
        "sessions        {} ({} connected, {} failed {:?})",
        report.sessions, report.connected, report.failed, report.failures
    );
    println!("measured        {:.1} s", report.seconds);
    println!(
        "sent / answered {} / {} ({} missing), {:.0}/s",
        report.sent, report.answered, report.missing, report.per_second
    );
    let rtt = &report.rtt_ms;
    println!(
        "round trip ms   p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
        rtt.p50, rtt.p90, rtt.p99, rtt.max
    );
    if report.scenario == "games" {
        println!("games finished  {}", report.games_finished);
    }
    if report.scenario == "chat" {
        println!("duplicated      {}", report.duplicated);
    }
    if report.scenario == "idle" {
        println!("evicted         {}", report.evicted);
    }
    if let Some(server) = &report.server {
        println!(
            "server          RSS {} -> {} KiB ({} bytes a session), CPU {:.1} % of a core while measuring",
            server.rss_kib_before, server.rss_kib_after, server.bytes_per_session, server.cpu_percent
        );
    }
    if !report.errors.is_empty() {
        println!("error codes     {:?}", report.errors);
    }
    if let Some(path) = json {
        let written = serde_json::to_string_pretty(report).map(|json| std::fs::write(&path, json));
        if !matches!(written, Ok(Ok(()))) {
            eprintln!("parlor-load: cannot write {}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let idle = report.scenario == "idle";
    let shortfall = (report.answered == 0 && !idle)
        || report.evicted > 0
        || report.missing > 0
        || report.duplicated > 0
        || report.connected < report.sessions;
    if shortfall {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
