//! `parlor-load fuzz`: many connections at once, each sending one case of
//! bad input (mutated requests, invalid UTF-8, reserved opcodes, orphan
//! continuations, oversized control frames, deep JSON nesting, unmasked
//! frames, raw garbage, broken handshakes), each answer checked against
//! PROTOCOL.md; then the server is checked as a whole: `/healthz` answers,
//! every fuzzing connection is gone from its count, a well-behaved client
//! is still served, and (with `--server-pid`) its memory grew by less than
//! `--max-rss-growth-mib`.
//!
//! Modules:
//! - `cases`: the kinds of bad input, their bytes and what each must get.
//! - `mutate`: requests that are almost right.
//! - `wire`: one fuzzing connection: the handshake, the case, the answer.
//! - `checks`: the server as a whole, after the fuzzing.

mod cases;
mod checks;
mod mutate;
mod wire;

use std::{collections::BTreeMap, path::PathBuf, process::ExitCode, rc::Rc, time::Duration};

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;
use strum::IntoEnumIterator;
use tokio::time::Instant;

pub(crate) use self::{
    cases::Case,
    wire::{connection, Target},
};
use self::{
    checks::{check_server, ServerChecks},
    wire::Verdict,
};
use crate::{client::SOURCES, report::verdict, usage::sample};

/// Source addresses 127.0.0.1… the connections are spread over, so that no
/// one address runs out of ports.
const SOURCE_ADDRESSES: u8 = 8;

/// `limits.max_frame_bytes`' default.
pub(crate) const DEFAULT_FRAME_LIMIT: u64 = 65_536;

/// Most connections that may fail to open, as a share of those opened: a
/// few may meet a full backlog under the fuzzer's churn, more is a fault.
const MAX_CONNECT_FAILURES: f64 = 0.01;

/// At most this many unexpected answers are shown, whole, per case.
const EXAMPLES: usize = 3;

/// `parlor-load fuzz`'s options.
#[derive(clap::Args)]
pub(crate) struct FuzzArgs {
    /// The server's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// How long to fuzz, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=crate::MAX_SECONDS))]
    duration: u64,
    /// Connections open at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Only these cases (repeat the option for several); default: all.
    #[arg(long = "case", value_enum)]
    cases: Vec<Case>,
    /// Seed of the random input (each connection draws from seed + its
    /// number); default: a random one, printed, so a run can be repeated.
    #[arg(long)]
    seed: Option<u64>,
    /// The server's process id: its resident memory is read from /proc
    /// before and after.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's `limits.max_frame_bytes`: the cases are sized by it.
    #[arg(long, default_value_t = DEFAULT_FRAME_LIMIT, value_parser = clap::value_parser!(u64).range(1024..=1 << 30))]
    max_frame_bytes: u64,
    /// Most the server's resident memory may grow, in MiB.
    #[arg(long, default_value_t = 64)]
    max_rss_growth_mib: u64,
    /// Also write the report as one JSON object to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// How one case fared.
#[derive(Default, Serialize)]
struct CaseTally {
    /// Connections that sent it.
    sent: u64,
    /// Answered as PROTOCOL.md says.
    as_expected: u64,
    /// Answered otherwise.
    unexpected: u64,
    /// How the server answered, counted (`close 1002`, `open`, `HTTP 400`…).
    answers: BTreeMap<String, u64>,
    /// A few unexpected answers, described.
    examples: Vec<String>,
}

/// What `fuzz` reports.
#[derive(Serialize)]
struct FuzzReport {
    url: String,
    seed: u64,
    seconds: u64,
    connections: u64,
    /// Connections that could not be opened (counted by reason).
    connect_failures: BTreeMap<String, u64>,
    cases: BTreeMap<Case, CaseTally>,
    /// Error codes the server sent, counted.
    errors: BTreeMap<String, u64>,
    server: ServerChecks,
    rss_kib_before: Option<u64>,
    rss_kib_after: Option<u64>,
    max_rss_growth_mib: u64,
    /// Why the run failed; empty when it passed.
    failures: Vec<String>,
}

/// Runs the fuzzer, prints the report and says whether the server held.
pub(crate) async fn run_fuzz(args: FuzzArgs) -> ExitCode {
    let seed = args.seed.unwrap_or_else(|| rand::thread_rng().gen());
    let target = match Target::new(&args.url, args.max_frame_bytes as usize) {
        Ok(target) => target,
        Err(err) => {
            eprintln!("parlor-load fuzz: {err}");
            return ExitCode::FAILURE;
        }
    };
    SOURCES.with(|sources| sources.set(SOURCE_ADDRESSES));
    eprintln!(
        "parlor-load fuzz: {} connections at once for {} s against {}, seed {seed}",
        args.connections, args.duration, args.url
    );
    let proc_dir = args.server_pid.map(|pid| format!("/proc/{pid}"));
    let rss_before = proc_dir.as_deref().and_then(sample).map(|(rss, _)| rss);
    let stop_at = Instant::now() + Duration::from_secs(args.duration);
    let cases: Rc<[Case]> = if args.cases.is_empty() {
        Case::iter().collect()
    } else {
        args.cases.clone().into()
    };
    let workers: Vec<_> = (0..args.connections)
        .map(|n| {
            let (target, cases) = (target.clone(), cases.clone());
            let seed = seed.wrapping_add(u64::from(n));
            tokio::task::spawn_local(worker(target, cases, n, seed, stop_at))
        })
        .collect();
    let mut report = FuzzReport {
        url: args.url.clone(),
        seed,
        seconds: args.duration,
        connections: 0,
        connect_failures: BTreeMap::new(),
        cases: Case::iter()
            .map(|case| (case, CaseTally::default()))
            .collect(),
        errors: BTreeMap::new(),
        server: ServerChecks::default(),
        rss_kib_before: rss_before,
        rss_kib_after: None,
        max_rss_growth_mib: args.max_rss_growth_mib,
        failures: Vec::new(),
    };
    for worker in workers {
        match worker.await {
            Ok(verdicts) => add(&mut report, verdicts),
            Err(err) => report
                .failures
                .push(format!("a fuzzing task failed: {err}")),
        }
    }
    report.server = check_server(&args.url).await;
    report.rss_kib_after = proc_dir.as_deref().and_then(sample).map(|(rss, _)| rss);
    judge(&mut report);
    print(&report);
    verdict(&report, &report.failures, args.json.as_deref())
}

/// One of the connections open at once: a case after another (drawn from
/// `cases`) until
/// `stop_at`; returns how each went.
async fn worker(
    target: Target,
    cases: Rc<[Case]>,
    n: u32,
    seed: u64,
    stop_at: Instant,
) -> Vec<Verdict> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut verdicts = Vec::new();
    let mut k = 0u32;
    while Instant::now() < stop_at {
        let case = cases[rng.gen_range(0..cases.len())];
        verdicts.push(connection(&target, n.wrapping_add(k), case, &mut rng).await);
        k = k.wrapping_add(1);
    }
    verdicts
}

/// Adds a worker's verdicts to the report.
fn add(report: &mut FuzzReport, verdicts: Vec<Verdict>) {
    for verdict in verdicts {
        let Some(case) = verdict.case else {
            *report
                .connect_failures
                .entry(verdict.answer.clone())
                .or_default() += 1;
            continue;
        };
        report.connections += 1;
        for code in verdict.errors {
            *report.errors.entry(code).or_default() += 1;
        }
        let tally = report.cases.entry(case).or_default();
        tally.sent += 1;
        *tally.answers.entry(verdict.answer.clone()).or_default() += 1;
        match verdict.unexpected {
            None => tally.as_expected += 1,
            Some(why) => {
                tally.unexpected += 1;
                if tally.examples.len() < EXAMPLES {
                    tally.examples.push(why);
                }
            }
        }
    }
}

/// Fills `report.failures`.
fn judge(report: &mut FuzzReport) {
    let mut failures = Vec::new();
    for (case, tally) in &report.cases {
        if tally.unexpected > 0 {
            failures.push(format!(
                "{}: {} of {} answered against PROTOCOL.md, e.g. {}",
                <&str>::from(case),
                tally.unexpected,
                tally.sent,
                tally.examples.join("; ")
            ));
        }
    }
    if report.connections == 0 {
        failures.push(format!("no connection could be opened to {}", report.url));
    }
    let connect_failures: u64 = report.connect_failures.values().sum();
    if connect_failures as f64 > report.connections as f64 * MAX_CONNECT_FAILURES {
        failures.push(format!(
            "{connect_failures} connections could not be opened: {:?}",
            report.connect_failures
        ));
    }
    if let Some(internal) = report.errors.get("internal") {
        failures.push(format!("{internal} `internal` errors: the server faulted"));
    }
    failures.extend(report.server.failures());
    if let (Some(before), Some(after)) = (report.rss_kib_before, report.rss_kib_after) {
        let growth_mib = after.saturating_sub(before) / 1024;
        if growth_mib > report.max_rss_growth_mib {
            failures.push(format!(
                "the server's memory grew by {growth_mib} MiB ({before} KiB to {after} KiB), more than {} MiB",
                report.max_rss_growth_mib
            ));
        }
    }
    report.failures = failures;
}

/// The report as a table on stdout.
fn print(report: &FuzzReport) {
    println!(
        "fuzz: {} connections in {} s against {} (seed {})",
        report.connections, report.seconds, report.url, report.seed
    );
    println!(
        "{:<18} {:>7} {:>9} {:>10}  answers",
        "case", "sent", "expected", "unexpected"
    );
    for (case, tally) in &report.cases {
        let answers: Vec<String> = tally
            .answers
            .iter()
            .map(|(answer, count)| format!("{answer} ×{count}"))
            .collect();
        println!(
            "{:<18} {:>7} {:>9} {:>10}  {}",
            <&str>::from(case),
            tally.sent,
            tally.as_expected,
            tally.unexpected,
            answers.join(", ")
        );
    }
    for (reason, count) in &report.connect_failures {
        println!("could not connect ×{count}: {reason}");
    }
    let errors: Vec<String> = report
        .errors
        .iter()
        .map(|(code, count)| format!("{code} ×{count}"))
        .collect();
    println!("error frames: {}", errors.join(", "));
    println!("after: {}", report.server.summary());
    if let (Some(before), Some(after)) = (report.rss_kib_before, report.rss_kib_after) {
        println!("server memory: {before} KiB before, {after} KiB after");
    }
    if report.failures.is_empty() {
        println!("PASS: every answer as PROTOCOL.md says, and the server still serves");
    } else {
        for failure in &report.failures {
            println!("FAIL: {failure}");
        }
    }
}
