//! What a run looked like second by second, for `--report`: round trips,
//! deliveries offered and delivered, and the server's CPU and memory.

use std::time::Instant;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// One second of measuring, as it is recorded.
pub(crate) struct Second {
    /// Round trips in microseconds (two significant figures: small).
    rtt: Histogram<u64>,
    /// Deliveries due (chat) or requests sent.
    offered: u64,
    /// Answers or deliveries that arrived.
    delivered: u64,
    /// The server's CPU over the second, percent of one core.
    server_cpu: Option<f64>,
    /// The server's resident memory, KiB.
    server_rss_kib: Option<u64>,
}

impl Second {
    fn new() -> Second {
        Second {
            rtt: Histogram::new_with_bounds(1, 60_000_000, 2).expect("valid histogram bounds"),
            offered: 0,
            delivered: 0,
            server_cpu: None,
            server_rss_kib: None,
        }
    }
}

/// Every second of measuring so far.
#[derive(Default)]
pub(crate) struct Timeline {
    seconds: Vec<Second>,
}

/// One second as the report shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SecondSummary {
    /// Seconds since measuring began.
    pub(crate) second: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) offered: u64,
    pub(crate) delivered: u64,
    pub(crate) server_cpu: Option<f64>,
    pub(crate) server_rss_mib: Option<f64>,
}

/// The most seconds kept (a run is at most `MAX_SECONDS` long).
const MOST_SECONDS: usize = 86_400;

impl Timeline {
    /// The second `now` falls in, counted from `since`.
    fn at(&mut self, since: Instant, now: Instant) -> Option<&mut Second> {
        let index = usize::try_from(now.saturating_duration_since(since).as_secs()).ok()?;
        if index >= MOST_SECONDS {
            return None;
        }
        while self.seconds.len() <= index {
            self.seconds.push(Second::new());
        }
        self.seconds.get_mut(index)
    }

    /// `count` more deliveries due (or requests sent) now.
    pub(crate) fn offered(&mut self, since: Instant, count: u64) {
        if let Some(second) = self.at(since, Instant::now()) {
            second.offered += count;
        }
    }

    /// An answer or delivery now, after `micros`.
    pub(crate) fn delivered(&mut self, since: Instant, micros: u64) {
        if let Some(second) = self.at(since, Instant::now()) {
            second.delivered += 1;
            let _ = second.rtt.record(micros.max(1));
        }
    }

    /// The server's CPU (percent of a core) and memory now.
    pub(crate) fn server(&mut self, since: Instant, cpu: f64, rss_kib: u64) {
        if let Some(second) = self.at(since, Instant::now()) {
            second.server_cpu = Some(cpu);
            second.server_rss_kib = Some(rss_kib);
        }
    }

    /// The seconds as the report shows them.
    pub(crate) fn summary(&self) -> Vec<SecondSummary> {
        self.seconds
            .iter()
            .enumerate()
            .map(|(second, s)| {
                let ms = |q: f64| s.rtt.value_at_quantile(q) as f64 / 1000.0;
                SecondSummary {
                    second,
                    p50_ms: ms(0.5),
                    p90_ms: ms(0.9),
                    p99_ms: ms(0.99),
                    offered: s.offered,
                    delivered: s.delivered,
                    server_cpu: s.server_cpu,
                    server_rss_mib: s.server_rss_kib.map(|kib| kib as f64 / 1024.0),
                }
            })
            .collect()
    }
}

/// The round trips of `rtt` in buckets that double from 0.1 ms: (upper
/// bound in ms, count), for the distribution chart.
pub(crate) fn distribution(rtt: &Histogram<u64>) -> Vec<(f64, u64)> {
    let mut buckets = Vec::new();
    let mut low = 0u64;
    let mut high = 100u64;
    while low <= rtt.max() && high <= 60_000_000 {
        let count = rtt.count_between(low, high.saturating_sub(1));
        buckets.push((high as f64 / 1000.0, count));
        low = high;
        high *= 2;
    }
    buckets
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn seconds_fill_in_order_and_the_distribution_covers_every_round_trip() {
        let since = Instant::now() - Duration::from_millis(2500);
        let mut timeline = Timeline::default();
        timeline.offered(since, 3);
        timeline.delivered(since, 1500);
        timeline.delivered(since, 2500);
        let summary = timeline.summary();
        assert_eq!(summary.len(), 3, "seconds 0 and 1 are there, empty");
        assert_eq!((summary[2].offered, summary[2].delivered), (3, 2));
        assert!(
            summary[2].p99_ms >= 2.4 && summary[2].p99_ms <= 2.6,
            "{:?}",
            summary[2]
        );
        let mut rtt = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for micros in [50, 150, 900, 12_000] {
            rtt.record(micros).unwrap();
        }
        let buckets = distribution(&rtt);
        assert_eq!(buckets.iter().map(|(_, n)| n).sum::<u64>(), 4);
        assert_eq!(buckets[0], (0.1, 1));
    }
}
