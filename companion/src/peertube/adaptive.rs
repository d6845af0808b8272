//! Adaptive concurrency for PeerTube requests (AIMD): grow while latency holds and nothing fails, halve on 429/5xx/timeouts, pause for Retry-After; the configured concurrency is the ceiling.

use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A sample is "holding" while it stays within this factor of the fastest seen:
/// PeerTube's throughput is flat past a few requests in flight (its Node
/// process is the limit), so more in flight only adds queueing latency.
const LATENCY_TOLERANCE: f64 = 2.5;
/// Latency differences below this say nothing about queueing (loopback jitter).
const LATENCY_FLOOR: Duration = Duration::from_millis(15);

/// What one request said about PeerTube's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered successfully in this time.
    Ok(Duration),
    /// 429, 5xx or a timeout; with the server's Retry-After if it sent one.
    Congested(Option<Duration>),
    /// Says nothing about load (4xx, cancelled, unsampled).
    Neutral,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: usize,
    slow_start: bool,
    min_latency: Option<Duration>,
    paused_until: Option<Instant>,
    last_decrease: Option<Instant>,
    reached: usize,
    decreases: u64,
}

/// The gate every PeerTube request passes.
pub struct Adaptive {
    max: usize,
    enabled: bool,
    st: Mutex<State>,
    notify: Notify,
}

/// One admitted request; finish it with what happened (dropping it counts as neutral).
pub struct Slot<'a> {
    gate: &'a Adaptive,
    started: Instant,
    done: bool,
}

impl Slot<'_> {
    pub fn finish(mut self, outcome: Outcome) {
        self.done = true;
        self.gate.release(self.started, outcome);
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.gate.release(self.started, Outcome::Neutral);
        }
    }
}

impl Adaptive {
    /// `max` requests in flight at most; `enabled = false` keeps it fixed at `max`.
    pub fn new(max: usize, enabled: bool) -> Adaptive {
        let max = max.max(1);
        let limit = if enabled { 1.0 } else { max as f64 };
        Adaptive {
            max,
            enabled,
            st: Mutex::new(State {
                limit,
                in_flight: 0,
                slow_start: true,
                min_latency: None,
                paused_until: None,
                last_decrease: None,
                reached: limit as usize,
                decreases: 0,
            }),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few numbers, consistent after every statement.
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until a request may start (below the limit, not paused).
    pub async fn acquire(&self) -> Slot<'_> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = {
                let mut st = self.lock();
                let now = Instant::now();
                match st.paused_until {
                    Some(t) if t > now => Some(t),
                    _ => {
                        if st.in_flight < (st.limit.floor() as usize).max(1) {
                            st.in_flight += 1;
                            return Slot { gate: self, started: now, done: false };
                        }
                        None
                    }
                }
            };
            match wait {
                Some(t) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t) => {}
                        _ = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    fn release(&self, started: Instant, outcome: Outcome) {
        {
            let mut st = self.lock();
            st.in_flight = st.in_flight.saturating_sub(1);
            if self.enabled {
                adjust(&mut st, self.max, started, Instant::now(), outcome);
            }
        }
        self.notify.notify_waiters();
    }

    /// The limit now.
    pub fn current(&self) -> usize {
        (self.lock().limit.floor() as usize).max(1)
    }

    /// The highest limit reached so far.
    pub fn reached(&self) -> usize {
        self.lock().reached
    }

    /// How often the limit was cut.
    pub fn decreases(&self) -> u64 {
        self.lock().decreases
    }
}

/// The AIMD step (pure given the state): slow start adds one per success,
/// then one per window of successes; a late answer takes one back per window;
/// congestion halves the limit once per window (answers to requests started
/// before the last cut describe the old limit and are ignored).
fn adjust(st: &mut State, max: usize, started: Instant, now: Instant, outcome: Outcome) {
    match outcome {
        Outcome::Neutral => {}
        Outcome::Ok(latency) => {
            let min = *st.min_latency.get_or_insert(latency);
            if latency < min {
                st.min_latency = Some(latency);
            }
            let holding = latency.as_secs_f64() <= min.as_secs_f64() * LATENCY_TOLERANCE || latency.saturating_sub(min) < LATENCY_FLOOR;
            if holding {
                st.limit += if st.slow_start { 1.0 } else { 1.0 / st.limit.max(1.0) };
            } else {
                st.slow_start = false;
                st.limit -= 1.0 / st.limit.max(1.0);
            }
        }
        Outcome::Congested(retry_after) => {
            if let Some(ra) = retry_after {
                let until = now + ra;
                st.paused_until = Some(st.paused_until.map_or(until, |p| p.max(until)));
            }
            if st.last_decrease.is_none_or(|t| started >= t) {
                st.limit /= 2.0;
                st.slow_start = false;
                st.last_decrease = Some(now);
                st.decreases += 1;
            }
        }
    }
    st.limit = st.limit.clamp(1.0, max as f64);
    st.reached = st.reached.max(st.limit.floor() as usize);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State { limit: 1.0, in_flight: 0, slow_start: true, min_latency: None, paused_until: None, last_decrease: None, reached: 1, decreases: 0 }
    }

    #[test]
    fn slow_start_grows_to_the_ceiling_and_no_further() {
        let mut st = state();
        let t = Instant::now();
        for _ in 0..20 {
            adjust(&mut st, 8, t, t, Outcome::Ok(Duration::from_millis(20)));
        }
        assert_eq!(st.limit, 8.0);
        assert_eq!(st.reached, 8);
    }

    #[test]
    fn congestion_halves_once_per_window_and_honours_retry_after() {
        let mut st = state();
        let t0 = Instant::now();
        for _ in 0..7 {
            adjust(&mut st, 16, t0, t0, Outcome::Ok(Duration::from_millis(20)));
        }
        assert_eq!(st.limit, 8.0);
        let t1 = t0 + Duration::from_millis(100);
        adjust(&mut st, 16, t0, t1, Outcome::Congested(Some(Duration::from_secs(2))));
        assert_eq!(st.limit, 4.0);
        assert_eq!(st.paused_until, Some(t1 + Duration::from_secs(2)));
        // Another failure of a request started before the cut: no second halving.
        adjust(&mut st, 16, t0, t1 + Duration::from_millis(5), Outcome::Congested(None));
        assert_eq!(st.limit, 4.0);
        // One started after it does halve, never below one.
        for _ in 0..5 {
            adjust(&mut st, 16, t1 + Duration::from_secs(3), t1 + Duration::from_secs(4), Outcome::Congested(None));
        }
        assert_eq!(st.limit, 2.0);
        let t2 = t1 + Duration::from_secs(5);
        for i in 0..10 {
            adjust(&mut st, 16, t2 + Duration::from_secs(i), t2 + Duration::from_secs(i + 1), Outcome::Congested(None));
        }
        assert_eq!(st.limit, 1.0);
        assert!(!st.slow_start, "after congestion growth is additive");
    }

    #[test]
    fn queueing_latency_stops_growth() {
        let mut st = state();
        let t = Instant::now();
        adjust(&mut st, 16, t, t, Outcome::Ok(Duration::from_millis(20)));
        adjust(&mut st, 16, t, t, Outcome::Ok(Duration::from_millis(25)));
        assert_eq!(st.limit, 3.0);
        // Four times the fastest answer (and well past the floor): PeerTube is queueing.
        adjust(&mut st, 16, t, t, Outcome::Ok(Duration::from_millis(80)));
        assert!(st.limit < 3.0 && !st.slow_start, "{st:?}");
        // Neutral answers change nothing.
        let before = st.limit;
        adjust(&mut st, 16, t, t, Outcome::Neutral);
        assert_eq!(st.limit, before);
    }

    #[tokio::test]
    async fn gate_admits_up_to_the_limit() {
        let g = Adaptive::new(4, false);
        let a = g.acquire().await;
        let b = g.acquire().await;
        let c = g.acquire().await;
        let d = g.acquire().await;
        assert_eq!(g.lock().in_flight, 4);
        let waiting = tokio::time::timeout(Duration::from_millis(20), g.acquire()).await;
        assert!(waiting.is_err(), "a fifth request waits");
        a.finish(Outcome::Neutral);
        drop(b);
        assert_eq!(g.lock().in_flight, 2);
        let _e = g.acquire().await;
        drop((c, d));
    }
}
