//! The request rate cap (governor's GCRA): never more than the configured number of requests start in any one-second window, with a margin.
//!
//! Why GCRA keeps that guarantee: the quota allows a burst of one, so a
//! request may start only once the previous one's "theoretical arrival time"
//! has passed, and that time advances by one period per request, measured
//! from when the request really started (a late waker never earns credit for
//! the time it slept). Starts are therefore at least one period apart. The
//! period is `(1 s + margin) / floor(rate)`, so `floor(rate)` consecutive
//! starts span less than 1 s + margin and the next one falls outside: at most
//! `floor(rate)` requests start in any window of 1 s + margin, and delays on
//! the way to PeerTube (the margin) cannot bunch them past the limit on its side.

use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::Quota;
use std::num::NonZeroU32;
use std::time::Duration;

/// Extra width of the window the limiter enforces, beyond one second: what
/// scheduling and network jitter may eat at the receiving end.
pub const WINDOW_MARGIN: Duration = Duration::from_millis(40);

/// The quota for `rate_per_sec` (> 0; anything else is treated as 1/s): a burst of one, one start per period (pure).
pub fn quota(rate_per_sec: f64) -> Quota {
    let rate = if rate_per_sec.is_finite() && rate_per_sec > 0.0 { rate_per_sec } else { 1.0 };
    let per_window = rate.floor().max(1.0);
    // Fractional rates below 1/s keep their own spacing (0.5/s = one per 2 s).
    let period = Duration::from_secs_f64(1.0 / rate).max((Duration::from_secs(1) + WINDOW_MARGIN).div_f64(per_window));
    let one = NonZeroU32::MIN;
    Quota::with_period(period).unwrap_or_else(|| Quota::per_second(one)).allow_burst(one)
}

pub struct RateLimiter {
    inner: governor::RateLimiter<NotKeyed, InMemoryState, DefaultClock>,
}

impl RateLimiter {
    pub fn new(rate_per_sec: f64) -> RateLimiter {
        RateLimiter { inner: governor::RateLimiter::direct(quota(rate_per_sec)) }
    }

    /// Waits for a slot and claims it.
    pub async fn acquire(&self) {
        self.inner.until_ready().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    /// Replays `n` requests that each start as soon as the limiter allows, on a fake clock; returns their start times.
    fn starts(rate: f64, n: usize) -> Vec<Duration> {
        let clock = FakeRelativeClock::default();
        let lim = governor::RateLimiter::direct_with_clock(quota(rate), clock.clone());
        let mut now = Duration::ZERO;
        let mut out = Vec::new();
        let step = Duration::from_millis(1);
        while out.len() < n {
            if lim.check().is_ok() {
                out.push(now);
            } else {
                clock.advance(step);
                now += step;
            }
        }
        out
    }

    #[test]
    fn never_more_than_rate_in_any_window_plus_margin() {
        let t = starts(10.0, 45);
        for (i, s) in t.iter().enumerate() {
            let in_window = t[i..].iter().take_while(|u| **u < *s + Duration::from_secs(1) + WINDOW_MARGIN).count();
            assert!(in_window <= 10, "{in_window} requests within 1 s + margin starting at {s:?}");
        }
        // ...and it is not needlessly slow: 45 requests at 10/s take about 4.5 s.
        assert!(*t.last().unwrap() < Duration::from_millis(4700), "{:?}", t.last());
    }

    #[test]
    fn fractional_rates_space_requests() {
        let t = starts(0.5, 2);
        assert!(t[1] - t[0] >= Duration::from_secs(2), "{t:?}");
    }
}
