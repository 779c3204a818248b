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
