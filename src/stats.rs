//! Live figures for the operators' page (`GET /api/admin/stats`): every
//! [`INTERVAL`] a sample of the metrics goes into a ring of the last
//! [`KEPT`] (ten minutes): a fixed, small memory cost.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use serde::Serialize;

use crate::metrics::Metrics;

/// How often a sample is taken.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// Samples kept: ten minutes of them.
pub const KEPT: usize = 300;

/// One sample.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Open WebSocket sessions.
    pub sessions: i64,
    /// Frames received from clients per second, over the interval.
    pub frames_in_per_s: f64,
    /// Frames queued to clients per second, over the interval.
    pub frames_out_per_s: f64,
    /// Live rooms.
    pub rooms: i64,
    /// Running games.
    pub games: i64,
    /// Sessions evicted for silence during the interval.
    pub evictions: u64,
    /// Sessions dropped for not reading during the interval.
    pub slow_drops: u64,
}

/// The counters a sample is the difference of.
#[derive(Default, Clone, Copy)]
struct Counted {
    frames_in: u64,
    frames_out: u64,
    evictions: u64,
    slow_drops: u64,
}

/// The ring of samples.
#[derive(Default)]
pub struct Stats {
    ring: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    samples: VecDeque<Sample>,
    last: Option<Counted>,
}

impl Stats {
    /// Takes a sample of `metrics` now, with `open` sessions.
    pub fn sample(&self, metrics: &Metrics, open: usize) {
        let counted = Counted {
            frames_in: metrics.frames_in.get(),
            frames_out: metrics.frames_out.get(),
            evictions: metrics.evictions.get(),
            slow_drops: metrics.slow_client_drops.get(),
        };
        let Ok(mut ring) = self.ring.lock() else {
            return;
        };
        let before = ring.last.replace(counted).unwrap_or(counted);
        let per_second =
            |now: u64, then: u64| now.saturating_sub(then) as f64 / INTERVAL.as_secs_f64();
        let at_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let sample = Sample {
            at_ms,
            sessions: i64::try_from(open).unwrap_or(i64::MAX),
            frames_in_per_s: per_second(counted.frames_in, before.frames_in),
            frames_out_per_s: per_second(counted.frames_out, before.frames_out),
            rooms: metrics.rooms_live(),
            games: metrics.games_live(),
            evictions: counted.evictions.saturating_sub(before.evictions),
            slow_drops: counted.slow_drops.saturating_sub(before.slow_drops),
        };
        if ring.samples.len() == KEPT {
            ring.samples.pop_front();
        }
        ring.samples.push_back(sample);
    }

    /// The samples kept, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.ring
            .lock()
            .map(|ring| ring.samples.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Samples `metrics` and the sessions `open()` says are open every
    /// [`INTERVAL`] on the current arbiter, for as long as the server runs.
    pub fn start(self: &Arc<Self>, metrics: Arc<Metrics>, open: impl Fn() -> usize + 'static) {
        let stats = self.clone();
        actix_rt::spawn(async move {
            let mut ticks = actix_rt::time::interval(INTERVAL);
            loop {
                ticks.tick().await;
                stats.sample(&metrics, open());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_ten_minutes_and_rates_are_per_second() {
        let metrics = Metrics::new();
        let stats = Stats::default();
        stats.sample(&metrics, 0);
        metrics.frames_in.inc_by(10);
        metrics.evictions.inc();
        stats.sample(&metrics, 3);
        let samples = stats.samples();
        assert_eq!(samples[0].frames_in_per_s, 0.0);
        assert_eq!(samples[1].frames_in_per_s, 5.0);
        assert_eq!((samples[1].evictions, samples[1].sessions), (1, 3));
        for _ in 0..KEPT + 10 {
            stats.sample(&metrics, 0);
        }
        assert_eq!(stats.samples().len(), KEPT);
        assert_eq!(stats.samples().last().map(|s| s.evictions), Some(0));
    }
}
