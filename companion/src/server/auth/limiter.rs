//! Failed logins per client address, the cap on password checks at once, and which address a request comes from (trusted proxies, `X-Forwarded-For`).

use axum::http::HeaderMap;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins per client address: after `max` attempts that did not succeed
/// within `window`, the address is refused (without checking the password) until
/// the oldest expires. An attempt counts *before* its password check, so a burst
/// of parallel guesses from one address gets `max` checks, not one per request.
/// IPv6 addresses count per /64 (one host usually holds a whole /64).
pub struct LoginLimiter {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    /// Service-wide cap on argon2 verifications running at once (each takes
    /// ~19 MiB and a core for a moment): a flood from many addresses queues here.
    verifications: tokio::sync::Semaphore,
}

/// How long a login waits for a free verification slot before it is refused.
pub const VERIFY_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// The key an address is counted under.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl LoginLimiter {
    pub fn new(max: usize, window: Duration) -> LoginLimiter {
        LoginLimiter::with_concurrency(max, window, 2)
    }

    pub fn with_concurrency(max: usize, window: Duration, concurrent: usize) -> LoginLimiter {
        LoginLimiter { max: max.max(1), window, failures: Mutex::new(HashMap::new()), verifications: tokio::sync::Semaphore::new(concurrent.max(1)) }
    }

    fn wait_of(&self, q: &mut VecDeque<Instant>, now: Instant) -> Option<Duration> {
        while q.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            q.pop_front();
        }
        if q.len() >= self.max {
            let oldest = *q.front()?;
            return Some(self.window.saturating_sub(now.duration_since(oldest)).max(Duration::from_secs(1)));
        }
        None
    }

    /// `Some(wait)` when the address must wait before trying again.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let q = map.get_mut(&limit_key(ip))?;
        self.wait_of(q, now)
    }

    /// Checks and counts one attempt at once (no gap for a parallel burst to
    /// slip through): `Err(wait)` when the address is over its limit.
    pub fn try_attempt(&self, ip: IpAddr, now: Instant) -> std::result::Result<(), Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::forget_expired(&mut map, self.window, now);
        let q = map.entry(limit_key(ip)).or_default();
        if let Some(wait) = self.wait_of(q, now) {
            return Err(wait);
        }
        q.push_back(now);
        Ok(())
    }

    fn forget_expired(map: &mut HashMap<IpAddr, VecDeque<Instant>>, window: Duration, now: Instant) {
        // Forget addresses whose failures all expired, so the map stays small.
        if map.len() > 10_000 {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
    }

    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::forget_expired(&mut map, self.window, now);
        map.entry(limit_key(ip)).or_default().push_back(now);
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&limit_key(ip));
    }

    /// A verification slot, waiting at most `wait`; `None` when the service is
    /// saturated (the caller answers 503 instead of queueing without bound).
    pub async fn verification_slot(&self, wait: Duration) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(wait, self.verifications.acquire()).await.ok()?.ok()
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy
/// (entries further left are whatever the client chose to send).
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = peer.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(str::trim).collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => continue,
            Ok(ip) => return ip,
            // A garbled entry: nothing left of it can be believed.
            Err(_) => return peer,
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_net;

    #[test]
    fn limiter_blocks_after_max_failures_in_window() {
        let l = LoginLimiter::new(5, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..5 {
            assert!(l.blocked(ip, t0 + Duration::from_secs(i)).is_none());
            l.failed(ip, t0 + Duration::from_secs(i));
        }
        let wait = l.blocked(ip, t0 + Duration::from_secs(10)).expect("blocked");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(l.blocked(other, t0 + Duration::from_secs(10)).is_none(), "per address");
        assert!(l.blocked(ip, t0 + Duration::from_secs(61)).is_none(), "the oldest failure expired");
        l.succeeded(ip);
        assert!(l.blocked(ip, t0 + Duration::from_secs(11)).is_none());
    }
    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = vec![parse_net("127.0.0.1").unwrap(), parse_net("10.0.0.0/8").unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.2.3".parse().unwrap());
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        // From the proxy: the right-most address that is not a proxy (the left one is the client's own claim).
        assert_eq!(client_ip(Some(local), &h, &trusted), "203.0.113.9".parse::<IpAddr>().unwrap());
        // From anyone else the header is ignored.
        assert_eq!(client_ip(Some(stranger), &h, &trusted), stranger);
        assert_eq!(client_ip(Some(local), &h, &[]), local, "no trusted proxies: the peer");
        // No header, or garbage in it: the peer.
        assert_eq!(client_ip(Some(local), &HeaderMap::new(), &trusted), local);
        h.insert("x-forwarded-for", "not-an-ip".parse().unwrap());
        assert_eq!(client_ip(Some(local), &h, &trusted), local);
        assert!(parse_net("10.0.0.0/33").is_none() && parse_net("localhost").is_none());
    }

    #[test]
    fn attempts_count_before_the_check_and_per_address() {
        let l = LoginLimiter::with_concurrency(5, Duration::from_secs(60), 2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        // A burst of 100 parallel attempts: five get through to a password check.
        let passed = (0..100).filter(|_| l.try_attempt(ip, t0).is_ok()).count();
        assert_eq!(passed, 5);
        assert!(l.try_attempt("192.0.2.2".parse().unwrap(), t0).is_ok(), "another address is not affected");
        // IPv6 counts per /64: rotating the low bits does not help.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        for i in 0..5 {
            assert!(l.try_attempt(v6(&format!("2001:db8::{i}")), t0).is_ok());
        }
        assert!(l.try_attempt(v6("2001:db8::ffff"), t0).is_err());
        assert!(l.try_attempt(v6("2001:db8:0:1::1"), t0).is_ok(), "another /64");
        l.succeeded(ip);
        assert!(l.try_attempt(ip, t0).is_ok());
    }

    #[tokio::test]
    async fn verification_slots_are_capped() {
        let l = LoginLimiter::with_concurrency(5, Duration::from_secs(60), 2);
        let a = l.verification_slot(Duration::from_millis(10)).await;
        let b = l.verification_slot(Duration::from_millis(10)).await;
        assert!(a.is_some() && b.is_some());
        assert!(l.verification_slot(Duration::from_millis(10)).await.is_none(), "a third waits, then is refused");
        drop(a);
        assert!(l.verification_slot(Duration::from_millis(10)).await.is_some());
    }
}
