//! The tally every session of a run adds to, and the report made of it:
//! round-trip percentiles, a table on stdout, one JSON object with `--json`,
//! and the exit code (non-zero when the run fell short).

use std::{
    cell::RefCell, collections::BTreeMap, path::PathBuf, process::ExitCode, rc::Rc, time::Instant,
};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::{
    timeline::{distribution, SecondSummary, Timeline},
    usage::ServerUsage,
    Common,
};

/// What every session records, shared within this single-threaded process.
pub(crate) struct Tally {
    /// Round trips in microseconds.
    pub(crate) rtt: Histogram<u64>,
    /// Requests sent while measuring.
    pub(crate) sent: u64,
    /// Requests answered while measuring.
    pub(crate) answered: u64,
    /// Games that reached `game_over`.
    pub(crate) games_finished: u64,
    /// Deliveries expected for the broadcasts sent (chat).
    pub(crate) expected: u64,
    /// Deliveries seen twice or out of order (chat, churn).
    pub(crate) duplicated: u64,
    /// Frames that never arrived although the session resumed without a
    /// resync (churn).
    pub(crate) lost: u64,
    /// Connections dropped on purpose (churn).
    pub(crate) drops: u64,
    /// Resumes that got exactly the missed frames (churn).
    pub(crate) recovered: u64,
    /// Resumes that got a resync instead (churn).
    pub(crate) resynced: u64,
    /// From dialling again to `resumed`, in microseconds (churn).
    pub(crate) resume_rtt: Histogram<u64>,
    /// Sessions the server closed while measuring (idle).
    pub(crate) evicted: u64,
    /// Connections dropped under `chat --failover`, by the URL they were on.
    pub(crate) dropped_at: BTreeMap<String, u64>,
    /// Resumes on another node that got the member's room back (failover).
    pub(crate) failed_over: u64,
    /// Resumes on another node that did not (failover).
    pub(crate) room_lost: u64,
    /// The longest time a member that never dropped went without a
    /// delivery while measuring, in microseconds (failover).
    pub(crate) silence_stayed: u64,
    /// The same for members that dropped and resumed elsewhere.
    pub(crate) silence_moved: u64,
    /// The server's usage, when its pid is known.
    pub(crate) server: Option<ServerUsage>,
    /// This process's CPU while measuring, percent of one core.
    pub(crate) load_cpu_percent: Option<f64>,
    /// Sessions that connected.
    pub(crate) connected: u64,
    /// Sessions that failed to connect or were dropped, counted by reason.
    pub(crate) failures: BTreeMap<String, u64>,
    /// Error frames received, counted by code.
    pub(crate) errors: BTreeMap<String, u64>,
    /// When measuring began (after the ramp).
    pub(crate) measuring_since: Option<Instant>,
    /// Second by second, for `--report`.
    pub(crate) timeline: Timeline,
}

impl Tally {
    /// Counts a session that failed to connect or was dropped.
    pub(crate) fn fail(&mut self, reason: String) {
        *self.failures.entry(reason).or_default() += 1;
    }

    /// Counts an error frame.
    pub(crate) fn error(&mut self, code: String) {
        *self.errors.entry(code).or_default() += 1;
    }

    /// Records an answer or delivery that took `micros`, while measuring.
    pub(crate) fn record_rtt(&mut self, micros: u64) {
        let _ = self.rtt.record(micros.max(1));
        if let Some(since) = self.measuring_since {
            self.timeline.delivered(since, micros);
        }
    }

    /// `count` more deliveries due (chat) or requests sent, while measuring.
    pub(crate) fn offered(&mut self, count: u64) {
        if let Some(since) = self.measuring_since {
            self.timeline.offered(since, count);
        }
    }
}

pub(crate) type Shared = Rc<RefCell<Tally>>;

/// The report, printed as a table and optionally written as JSON.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct Report {
    pub(crate) scenario: String,
    pub(crate) url: String,
    /// Sessions asked for.
    pub(crate) sessions: u64,
    pub(crate) connected: u64,
    /// Sessions that failed to connect or were dropped.
    pub(crate) failed: u64,
    /// `failed`, counted by reason.
    pub(crate) failures: BTreeMap<String, u64>,
    /// The measuring time.
    pub(crate) seconds: f64,
    /// Requests (chat: broadcasts) sent while measuring.
    pub(crate) sent: u64,
    /// Answers (chat: first deliveries) to what was sent while measuring.
    pub(crate) answered: u64,
    /// Answers due: one a request; chat: one a broadcast per other member.
    pub(crate) expected: u64,
    pub(crate) missing: u64,
    /// `answered` a second (chat: deliveries a second).
    pub(crate) per_second: f64,
    /// `expected` a second (chat: deliveries offered a second).
    pub(crate) expected_per_second: f64,
    pub(crate) rtt_ms: Percentiles,
    pub(crate) games_finished: u64,
    pub(crate) duplicated: u64,
    pub(crate) evicted: u64,
    /// Frames lost by sessions that resumed without a resync (churn).
    #[serde(default)]
    pub(crate) lost: u64,
    /// Connections dropped on purpose (churn).
    #[serde(default)]
    pub(crate) drops: u64,
    /// Resumes that got exactly the missed frames (churn).
    #[serde(default)]
    pub(crate) recovered: u64,
    /// Resumes that got a resync (churn).
    #[serde(default)]
    pub(crate) resynced: u64,
    /// From dialling again to `resumed` (churn, chat failover).
    #[serde(default)]
    pub(crate) resume_ms: Percentiles,
    /// Chat `--failover`: connections dropped, by the URL they were on.
    #[serde(default)]
    pub(crate) dropped_at: BTreeMap<String, u64>,
    /// Chat `--failover`: resumes elsewhere that got the room back.
    #[serde(default)]
    pub(crate) failed_over: u64,
    /// Chat `--failover`: resumes elsewhere that did not.
    #[serde(default)]
    pub(crate) room_lost: u64,
    /// Chat `--failover`: the longest wait for a delivery while measuring,
    /// in ms, of members that never dropped and of those that moved.
    #[serde(default)]
    pub(crate) silence_stayed_ms: f64,
    #[serde(default)]
    pub(crate) silence_moved_ms: f64,
    /// Error frames, counted by code.
    pub(crate) errors: BTreeMap<String, u64>,
    /// This load generator's CPU while measuring, percent of one core
    /// (summed over worker processes): near 100 it, not the server, was
    /// the limit.
    pub(crate) load_cpu_percent: Option<f64>,
    /// The server's memory and CPU, with `--server-pid`.
    pub(crate) server: Option<ServerUsage>,
    /// Second by second (this process's sessions only).
    #[serde(default)]
    pub(crate) timeline: Vec<SecondSummary>,
    /// Round trips in buckets doubling from 0.1 ms: (up to ms, count).
    #[serde(default)]
    pub(crate) distribution: Vec<(f64, u64)>,
}

impl Report {
    /// Adds a worker's idle report to this one.
    pub(crate) fn absorb(&mut self, worker: Report) {
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
    pub(crate) fn lose(&mut self, sessions: u32, reason: String) {
        self.sessions += u64::from(sessions);
        self.failed += u64::from(sessions);
        *self.failures.entry(reason).or_default() += u64::from(sessions);
    }
}

#[derive(Serialize, Deserialize, Default)]
pub(crate) struct Percentiles {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

pub(crate) fn new_tally() -> Shared {
    Rc::new(RefCell::new(Tally {
        rtt: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
        sent: 0,
        answered: 0,
        games_finished: 0,
        expected: 0,
        duplicated: 0,
        lost: 0,
        drops: 0,
        recovered: 0,
        resynced: 0,
        resume_rtt: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
        evicted: 0,
        dropped_at: BTreeMap::new(),
        failed_over: 0,
        room_lost: 0,
        silence_stayed: 0,
        silence_moved: 0,
        server: None,
        load_cpu_percent: None,
        timeline: Timeline::default(),
        connected: 0,
        failures: BTreeMap::new(),
        errors: BTreeMap::new(),
        measuring_since: None,
    }))
}

/// Counts a request sent, if measuring.
pub(crate) fn count_sent(tally: &Shared) {
    let mut tally = tally.borrow_mut();
    if tally.measuring_since.is_some() {
        tally.sent += 1;
        tally.offered(1);
    }
}

/// Counts an answer to a request sent at `sent_at`, if it was sent while measuring.
pub(crate) fn count_answer(tally: &Shared, sent_at: Instant) {
    let mut tally = tally.borrow_mut();
    if tally.measuring_since.is_some_and(|since| sent_at >= since) {
        tally.answered += 1;
        let micros = u64::try_from(sent_at.elapsed().as_micros()).unwrap_or(u64::MAX);
        tally.record_rtt(micros);
    }
}

pub(crate) fn report(
    scenario: &'static str,
    common: &Common,
    sessions: u64,
    seconds: f64,
    tally: &Shared,
) -> Report {
    let tally = tally.borrow();
    let ms = |quantile: f64| tally.rtt.value_at_quantile(quantile) as f64 / 1000.0;
    let percentiles = |histogram: &Histogram<u64>| {
        let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
        Percentiles {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            max: histogram.max() as f64 / 1000.0,
        }
    };
    let per_second = |count: u64| count as f64 / seconds.max(f64::EPSILON);
    // Chat counts deliveries due per broadcast; the others one answer a request.
    let expected = if scenario == "chat" {
        tally.expected
    } else {
        tally.sent
    };
    Report {
        scenario: scenario.to_string(),
        url: common.urls_shown(),
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
        lost: tally.lost,
        drops: tally.drops,
        recovered: tally.recovered,
        resynced: tally.resynced,
        resume_ms: percentiles(&tally.resume_rtt),
        dropped_at: tally.dropped_at.clone(),
        failed_over: tally.failed_over,
        room_lost: tally.room_lost,
        silence_stayed_ms: tally.silence_stayed as f64 / 1000.0,
        silence_moved_ms: tally.silence_moved as f64 / 1000.0,
        errors: tally.errors.clone(),
        load_cpu_percent: tally.load_cpu_percent,
        server: tally.server,
        timeline: tally.timeline.summary(),
        distribution: distribution(&tally.rtt),
    }
}

pub(crate) fn finish(report: &Report, json: Option<PathBuf>, html: Option<PathBuf>) -> ExitCode {
    print_table(report);
    if let Some(path) = html {
        let command: Vec<String> = std::env::args().collect();
        if let Err(err) = crate::html::write(&path, report, &command.join(" ")) {
            eprintln!("parlor-load: cannot write {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("parlor-load: report written to {}", path.display());
    }
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

/// The exit code of a run judged by its own checks (`fuzz`, `soak`):
/// failure when `failures` has any, or when `report` cannot be written as
/// JSON to `json`.
pub(crate) fn verdict(
    report: &impl Serialize,
    failures: &[String],
    json: Option<&std::path::Path>,
) -> ExitCode {
    if let Some(path) = json {
        let written = serde_json::to_string_pretty(report)
            .map_err(|err| err.to_string())
            .and_then(|text| std::fs::write(path, text).map_err(|err| err.to_string()));
        if let Err(err) = written {
            eprintln!("parlor-load: cannot write {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Whether the run fell short: a session failed or was dropped, an answer
/// or delivery is missing or doubled, or nothing came back at all.
pub(crate) fn shortfall(report: &Report) -> bool {
    // Idle sends nothing; chat with one member a room has no one to deliver to.
    let answers_due = match report.scenario.as_str() {
        "idle" => false,
        // Killing a node loses what its members missed while away: the
        // run falls short if a member on another node dropped or a moved
        // member lost its room.
        "chat" if !report.dropped_at.is_empty() => {
            return report.failed > 0 || report.room_lost > 0 || report.duplicated > 0
        }
        "chat" => report.expected > 0,
        // Churn counts what was lost, not what was due.
        // A failed resume counts as failed; sessions still away when the
        // run ends do not.
        "churn" => {
            return report.failed > 0
                || report.lost > 0
                || report.duplicated > 0
                || report.answered == 0
        }
        _ => true,
    };
    (answers_due && report.answered == 0)
        || report.failed > 0
        || report.evicted > 0
        || report.missing > 0
        || report.duplicated > 0
        || report.connected < report.sessions
}

pub(crate) fn print_table(report: &Report) {
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
    if report.scenario == "churn" {
        println!(
            "deliveries      {} broadcasts and moves delivered ({:.0}/s)",
            report.answered, report.per_second
        );
        let away = report
            .drops
            .saturating_sub(report.recovered + report.resynced);
        println!(
            "drops           {} ({} resumed with every missed frame, {} resynced, {away} still away at the end)",
            report.drops, report.recovered, report.resynced
        );
        println!(
            "frames          {} lost, {} duplicated",
            report.lost, report.duplicated
        );
        let resume = &report.resume_ms;
        println!(
            "resume ms       p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
            resume.p50, resume.p90, resume.p99, resume.max
        );
        println!("games finished  {}", report.games_finished);
    } else if report.scenario == "chat" {
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
        if !report.dropped_at.is_empty() {
            for (url, count) in &report.dropped_at {
                println!("dropped         {count} at {url}");
            }
            println!(
                "failed over     {} got their room back on another node, {} did not",
                report.failed_over, report.room_lost
            );
            let resume = &report.resume_ms;
            println!(
                "resume ms       p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
                resume.p50, resume.p90, resume.p99, resume.max
            );
            println!(
                "longest silence {:.0} ms for members that stayed, {:.0} ms for those that moved",
                report.silence_stayed_ms, report.silence_moved_ms
            );
        }
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
