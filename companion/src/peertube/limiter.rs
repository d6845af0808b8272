//! A request rate limiter that never lets more than the configured number of
//! requests start in any one-second window, with a margin so that delays on
//! the way to PeerTube cannot bunch them up past the limit on its side.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Extra width of the window the limiter enforces, beyond one second: what
/// scheduling and network jitter may eat at the receiving end.
const WINDOW_MARGIN: Duration = Duration::from_millis(40);

pub struct RateLimiter {
    spacing: Duration,
    per_window: usize,
    window: Duration,
    state: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    /// `rate_per_sec` > 0. Requests are spaced by 1/rate and at most
    /// ceil(rate) start within any 1 s + margin.
    pub fn new(rate_per_sec: f64) -> RateLimiter {
        let rate = if rate_per_sec.is_finite() && rate_per_sec > 0.0 { rate_per_sec } else { 1.0 };
        RateLimiter {
            spacing: Duration::from_secs_f64(1.0 / rate),
            per_window: (rate.floor() as usize).max(1),
            window: Duration::from_secs(1) + WINDOW_MARGIN,
            state: Mutex::new(VecDeque::new()),
        }
    }

    /// Earliest start for the next request given the recent starts (pure).
    fn next_slot(&self, starts: &VecDeque<Instant>, now: Instant) -> Instant {
        let mut at = now;
        if let Some(last) = starts.back() {
            at = at.max(*last + self.spacing);
        }
        if starts.len() >= self.per_window {
            let oldest = starts[starts.len() - self.per_window];
            at = at.max(oldest + self.window);
        }
        at
    }

    /// Waits for a slot and claims it.
    pub async fn acquire(&self) {
        let at = {
            let mut starts = self.state.lock().await;
            let now = Instant::now();
            while starts.front().is_some_and(|t| *t + self.window < now) {
                starts.pop_front();
            }
            let at = self.next_slot(&starts, now);
            starts.push_back(at);
            at
        };
        tokio::time::sleep_until(at).await;
        // A busy runtime may wake us late: record when the request really
        // starts, so later slots keep their distance from it.
        let woke = Instant::now();
        if woke > at {
            let mut starts = self.state.lock().await;
            if let Some(t) = starts.iter_mut().rev().find(|t| **t == at) {
                *t = woke;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_rate_in_any_window() {
        let lim = std::sync::Arc::new(RateLimiter::new(10.0));
        let t0 = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..45 {
            let l = lim.clone();
            handles.push(tokio::spawn(async move {
                l.acquire().await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for h in handles {
            times.push(h.await.unwrap());
        }
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u < *t + Duration::from_secs(1)).count();
            assert!(in_window <= 10, "{in_window} requests within 1 s starting at {:?}", *t - t0);
        }
        // ...and it is not needlessly slow: 45 requests at 10/s take about 4.5 s.
        let total = *times.last().unwrap() - t0;
        assert!(total < Duration::from_millis(4700), "{total:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn fractional_rates_space_requests() {
        let lim = RateLimiter::new(0.5);
        let t0 = Instant::now();
        lim.acquire().await;
        lim.acquire().await;
        assert!(Instant::now() - t0 >= Duration::from_secs(2));
    }
}
