//! Run with `cargo run --release -p parlor-load -- games --games 1000`
//! against a server started with `cargo run --release`.
//!
//! parlor-load: a load tester for Parlor (and any server speaking the same
//! protocol subset).
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
//! - `churn`: chat members and game players drop at random (no Close) and
//!   resume with their frame count; reports frames lost and duplicated,
//!   resumes recovered against resynced, and resume latency.
//!
//! Every run is bounded in time (`--duration`, or `--hold` for `idle`),
//! stops by itself, prints a table, optionally writes one JSON object
//! (`--json FILE`), and exits non-zero when answers fall short of what was
//! sent or any session failed to connect or was dropped.
//!
//! Modules:
//! - `client`: dials a session's socket and reads its frames.
//! - `report`: the tally sessions share, the report, its table, its JSON and
//!   the exit code.
//! - `usage`: /proc readings of the server and of this process, and the
//!   open-file limit.
//! - `scenarios`: ramping, measuring and stopping, and one module per
//!   scenario.

mod client;
mod fuzz;
mod html;
mod report;
mod scenarios;
mod soak;
mod timeline;
mod usage;

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};

use crate::{
    report::finish,
    scenarios::{
        chat::run_chat, churn::run_churn, echo::run_echo, games::run_games, idle::run_idle,
    },
    usage::raise_file_limit,
};

/// Longest time a run may measure or hold, in seconds (a day), so every
/// deadline stays representable.
pub(crate) const MAX_SECONDS: u64 = 86_400;

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
    /// Chat members and players dropping and resuming; frames lost and
    /// duplicated, resumes and their latency.
    Churn(ChurnArgs),
    /// Bad input over many connections (mutated requests, broken frames,
    /// garbage), each answer checked against PROTOCOL.md; then the server's
    /// health, leaked connections, a well-behaved client and its memory.
    Fuzz(fuzz::FuzzArgs),
    /// Everything at once for minutes (chat, games, churn, canvas, bots,
    /// slow readers, bad frames); nothing lost, memory and open files flat,
    /// every game ended as the rules say.
    Soak(soak::SoakArgs),
}

#[derive(Args)]
struct ChurnArgs {
    #[command(flatten)]
    common: Common,
    /// How long to measure (and drop sessions), in seconds, after every
    /// session is connected.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    duration: u64,
    /// Chat rooms.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rooms: u32,
    /// Members per chat room.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    members: u32,
    /// Broadcasts per second per member.
    #[arg(long, default_value_t = 5.0, value_parser = rate)]
    rate: f64,
    /// Games in play at once (two players each); 0 plays none.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    games: u32,
    /// Which game to play.
    #[arg(long, default_value = "connect4", value_parser = ["tictactoe", "connect4"])]
    game: String,
    /// Moves per second in each game.
    #[arg(long, default_value_t = 1.0, value_parser = rate)]
    move_rate: f64,
    /// Sessions dropped per second (each a random one), while measuring.
    #[arg(long, default_value_t = 1.0, value_parser = rate)]
    drops: f64,
    /// How long a dropped session stays away before it resumes, in ms.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    away_ms: u64,
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
    /// A member whose connection drops resumes with its token on the next
    /// node (`--url`), retrying for up to 30 s, and checks that it got its
    /// room back: for killing a node of a cluster mid-run. Drops are then
    /// counted by the node the member was on, not as failures.
    #[arg(long)]
    failover: bool,
}

/// Options every scenario takes.
#[derive(Args, Clone)]
pub(crate) struct Common {
    /// The server's WebSocket URL; give it again for each node of a
    /// cluster: each room's members and each game's players are spread
    /// over the nodes in turn.
    #[arg(long = "url", default_value = "ws://127.0.0.1:8080/ws", action = clap::ArgAction::Append)]
    urls: Vec<String>,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=MAX_RAMP))]
    ramp: u32,
    /// Also write the report as one JSON object to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the report as one self-contained HTML page, with charts.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
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

impl Common {
    /// The URL of the `k`th session of a group (a room's members, a game's
    /// players, or all): the nodes in turn.
    fn url(&self, k: u32) -> String {
        // clap gives at least the default.
        self.urls[k as usize % self.urls.len()].clone()
    }

    /// Where the report is also written: `--json` and `--report`.
    fn outputs(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        (self.json.clone(), self.report.clone())
    }

    /// Every URL, as the report shows them.
    fn urls_shown(&self) -> String {
        self.urls.join(" ")
    }
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
    tokio::task::LocalSet::new().block_on(&runtime, run(cli.scenario))
}

/// Runs a scenario and reports it.
async fn run(scenario: Scenario) -> ExitCode {
    let ((json, html), report) = match scenario {
        Scenario::Idle(args) => (args.common.outputs(), run_idle(args).await),
        Scenario::Games(args) => (args.common.outputs(), run_games(args).await),
        Scenario::Echo(args) => (args.common.outputs(), run_echo(args).await),
        Scenario::Chat(args) => (args.common.outputs(), run_chat(args).await),
        Scenario::Churn(args) => (args.common.outputs(), run_churn(args).await),
        Scenario::Fuzz(args) => return fuzz::run_fuzz(args).await,
        Scenario::Soak(args) => return soak::run_soak(args).await,
    };
    finish(&report, json, html)
}
