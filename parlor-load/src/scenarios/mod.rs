//! What every scenario shares: the rate a gap comes from, and `drive`, which
//! ramps sessions up, measures for the run's time and stops them, with a
//! live progress line meanwhile. One module per scenario.

pub(crate) mod chat;
pub(crate) mod churn;
pub(crate) mod echo;
pub(crate) mod games;
pub(crate) mod idle;

use std::time::{Duration, Instant};

use tokio::time::{sleep_until, Instant as TokioInstant};

use crate::{
    client::SOURCES,
    report::Shared,
    usage::{cpu_percent, sample, server_sample, usage},
    Common,
};

thread_local! {
    /// Set when several scenarios run at once (`soak`): no progress line.
    pub(crate) static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How long after the last connection opens measuring begins, so that every
/// session has joined what it joins.
const SETTLE: Duration = Duration::from_secs(1);

/// How long answers may still arrive after sending stops.
const DRAIN: Duration = Duration::from_secs(1);

/// The time between two events at `rate` a second (`rate` is within
/// `crate::RATE_RANGE`).
fn gap(rate: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate)
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
    let ramp_gap = gap(f64::from(common.ramp));
    let ramp_end = TokioInstant::now() + ramp_gap * sessions;
    let measure_from = ramp_end + SETTLE;
    let stop_at = measure_from + Duration::from_secs(seconds);
    let line = if QUIET.with(std::cell::Cell::get) {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new_spinner()
    };
    let progress = tokio::task::spawn_local(progress(
        tally.clone(),
        line.clone(),
        measure_from.into_std(),
        stop_at.into_std(),
    ));
    // Sessions stop sending at `stop_at` and keep reading until aborted here.
    let mut tasks = Vec::new();
    let mut ramp = tokio::time::interval(ramp_gap);
    ramp.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for n in 0..sessions {
        ramp.tick().await;
        tasks.push(tokio::task::spawn_local(session(n, stop_at)));
    }
    sleep_until(measure_from).await;
    if tally.borrow().connected == 0 {
        line.finish_and_clear();
        nothing_connected(common, tally);
    }
    tally.borrow_mut().measuring_since = Some(Instant::now());
    let started = Instant::now();
    let measuring = server_sample(common);
    let load_measuring = sample("/proc/self");
    let sampler = tokio::task::spawn_local(sample_server(common.server_pid, tally.clone()));
    sleep_until(stop_at).await;
    sampler.abort();
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
    // The report starts on a line of its own.
    line.finish_and_clear();
    for task in tasks {
        task.abort();
    }
    seconds
}

/// Nobody connected by the end of the ramp: says so, with why, and stops
/// the run (exit code 2) rather than measure nothing.
fn nothing_connected(common: &Common, tally: &Shared) -> ! {
    let tally = tally.borrow();
    let why: Vec<String> = tally
        .failures
        .iter()
        .map(|(reason, count)| format!("{count} × {reason}"))
        .collect();
    eprintln!(
        "parlor-load: no session connected to {}{}; stopping early. Is the server running there?",
        common.urls_shown(),
        if why.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.join(", "))
        }
    );
    std::process::exit(2)
}

/// Reads the server's CPU and memory every second while measuring, into
/// the timeline (with `--server-pid`).
async fn sample_server(pid: Option<u32>, tally: Shared) {
    let Some(pid) = pid else { return };
    let proc_dir = format!("/proc/{pid}");
    let mut last = sample(&proc_dir);
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.tick().await;
    loop {
        every.tick().await;
        let Some((rss, ticks)) = sample(&proc_dir) else {
            return;
        };
        if let Some((_, before)) = last {
            let mut tally = tally.borrow_mut();
            if let Some(since) = tally.measuring_since {
                let cpu = cpu_percent(ticks.saturating_sub(before), 1.0);
                tally.timeline.server(since, cpu, rss);
            }
        }
        last = Some((rss, ticks));
    }
}

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// A live progress line on stderr until aborted: the phase, how long it has
/// run and how long is left, and the counts so far.
async fn progress(
    tally: Shared,
    line: indicatif::ProgressBar,
    measure_from: Instant,
    stop_at: Instant,
) {
    line.enable_steady_tick(PROGRESS_EVERY);
    let started = Instant::now();
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        let tally = tally.borrow();
        let now = Instant::now();
        let (phase, left) = if tally.measuring_since.is_some() {
            ("measuring", stop_at.saturating_duration_since(now))
        } else {
            ("connecting", measure_from.saturating_duration_since(now))
        };
        let elapsed = now.duration_since(started).as_secs();
        let total_left = stop_at.saturating_duration_since(now).as_secs();
        line.set_message(format!(
            "{elapsed} s elapsed, {total_left} s left ({phase}, {} s to go): {} connected, {} failed, {} sent, {} answered, p99 {:.2} ms",
            left.as_secs(),
            tally.connected,
            tally.failures.values().sum::<u64>(),
            tally.sent,
            tally.answered,
            tally.rtt.value_at_quantile(0.99) as f64 / 1000.0
        ));
    }
}
