//! The per-session message rate limit: a token bucket of `limits.burst`
//! tokens refilled at `limits.msgs_per_sec`, plus the two rules PROTOCOL.md
//! fixes around it: at most one `rate_limited` error a second, and a session
//! still over the limit after ten seconds is closed (1008).

use std::time::{Duration, Instant};

/// At most one `rate_limited` error per this period.
const ERROR_PERIOD: Duration = Duration::from_secs(1);

/// A session whose frames keep being dropped for this long is closed.
const ABUSE_PERIOD: Duration = Duration::from_secs(10);

/// Drops closer together than this belong to one run of abuse; a longer
/// pause without a drop means the session came back under the limit.
const CALM_PERIOD: Duration = Duration::from_secs(1);

/// What to do with one incoming frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: handle it.
    Allow,
    /// Over the limit: drop it, and answer `rate_limited` if `notify`.
    Drop {
        /// Whether this drop should be answered with an error frame.
        notify: bool,
    },
    /// Over the limit for ten seconds: close the connection.
    Close,
}

/// One session's token bucket and abuse tracking.
#[derive(Debug)]
pub struct RateLimiter {
    /// Tokens now in the bucket.
    tokens: f64,
    /// The bucket's size.
    burst: f64,
    /// Tokens added per second.
    refill_per_sec: f64,
    /// When the bucket was last refilled.
    refilled_at: Instant,
    /// When the current run of dropped frames began.
    over_since: Instant,
    /// When the last frame was dropped.
    dropped_at: Option<Instant>,
    /// When the last `rate_limited` error was sent.
    notified_at: Option<Instant>,
}

impl RateLimiter {
    /// A full bucket of `burst` tokens refilled at `msgs_per_sec`.
    pub fn new(msgs_per_sec: u32, burst: u32, now: Instant) -> RateLimiter {
        RateLimiter {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            refill_per_sec: f64::from(msgs_per_sec),
            refilled_at: now,
            over_since: now,
            dropped_at: None,
            notified_at: None,
        }
    }

    /// Takes a token for a frame arriving at `now`, or says why not.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill_per_sec).min(self.burst);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        let calm = self
            .dropped_at
            .is_none_or(|at| now.saturating_duration_since(at) > CALM_PERIOD);
        if calm {
            self.over_since = now;
        }
        self.dropped_at = Some(now);
        if now.saturating_duration_since(self.over_since) >= ABUSE_PERIOD {
            return Verdict::Close;
        }
        let notify = self
            .notified_at
            .is_none_or(|at| now.saturating_duration_since(at) >= ERROR_PERIOD);
        if notify {
            self.notified_at = Some(now);
        }
        Verdict::Drop { notify }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn burst_passes_then_drops_with_one_error() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 3, start);
        for _ in 0..3 {
            assert_eq!(limiter.check(start), Verdict::Allow);
        }
        assert_eq!(limiter.check(start), Verdict::Drop { notify: true });
        assert_eq!(limiter.check(start), Verdict::Drop { notify: false });
    }

    #[test]
    fn tokens_refill_at_the_rate() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 1, start);
        assert_eq!(limiter.check(start), Verdict::Allow);
        assert!(matches!(
            limiter.check(start + ms(50)),
            Verdict::Drop { .. }
        ));
        assert_eq!(limiter.check(start + ms(150)), Verdict::Allow);
    }

    #[test]
    fn at_most_one_error_a_second() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1, 1, start);
        limiter.check(start);
        assert_eq!(
            limiter.check(start + ms(10)),
            Verdict::Drop { notify: true }
        );
        // 490 ms after the error the bucket holds 0.5 tokens: still dropped, no new error yet.
        assert_eq!(
            limiter.check(start + ms(500)),
            Verdict::Drop { notify: false }
        );
    }

    #[test]
    fn sustained_abuse_closes() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1, 1, start);
        let mut now = start;
        let mut verdict = Verdict::Allow;
        // Ten frames a second against a refill of one: always over the limit.
        while now < start + ms(11_000) && verdict != Verdict::Close {
            now += ms(100);
            verdict = limiter.check(now);
        }
        assert_eq!(verdict, Verdict::Close);
    }

    #[test]
    fn a_calm_second_ends_the_abuse() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1, 1, start);
        limiter.check(start);
        assert!(matches!(
            limiter.check(start + ms(100)),
            Verdict::Drop { .. }
        ));
        assert_eq!(limiter.check(start + ms(12_000)), Verdict::Allow);
        // Twelve seconds after the first drop, but after a calm spell: a new run.
        assert_eq!(
            limiter.check(start + ms(12_050)),
            Verdict::Drop { notify: true }
        );
    }
}
