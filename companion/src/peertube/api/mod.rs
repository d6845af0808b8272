//! PeerTube's REST API as an admin: OAuth (client from `oauth-clients/local`, password grant, refresh on 401, fresh login when the refresh fails, token cached on disk with mode 0600), an optional Host header, a rate cap, adaptive concurrency, the paged list of local videos, and retries (`support::retry`) on 429, 5xx — PeerTube's "could not serialize access" 500 included — and timeouts, honouring Retry-After.

mod changes;
mod oauth;
mod videos;

pub use changes::{changed_since, latest_per_video, ChangeLog, PeopleChange, CHANGES_ROUTE};
pub use videos::list_path;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::peertube::adaptive::{Adaptive, Outcome};
use crate::peertube::limiter::RateLimiter;
use crate::support::retry::{retry, RetryPolicy, Verdict};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

/// Route of the plugin's taxonomy answer (plugin-js/main.js registers `/taxonomy` on its router).
pub const PLUGIN_ROUTE: &str = "/plugins/recon-domains/router/taxonomy";
/// Renew the access token this long before PeerTube says it expires.
const EXPIRY_SLACK_SECS: i64 = 30;
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
const RETRY_AFTER_CAP: Duration = Duration::from_secs(120);
/// Videos per page of `GET /api/v1/videos` (PeerTube's maximum `count`).
pub const LIST_PAGE: usize = 100;
/// `include` flags that show an admin every local video: NOT_PUBLISHED_STATE
/// (1) | BLACKLISTED (2) | BLOCKED_OWNER (4) (PeerTube's `VideoInclude`).
/// PeerTube answers 401 to `include`/`privacyOneOf` without the SEE_ALL_VIDEOS right.
pub const LIST_INCLUDE: u32 = 1 | 2 | 4;
/// Every privacy: public, unlisted, private, internal, password-protected.
pub const LIST_PRIVACIES: [u8; 5] = [1, 2, 3, 4, 5];
/// What PostgreSQL says in the body of the 500 PeerTube sends when two
/// concurrent updates collide in its SERIALIZABLE transaction.
const SERIALIZATION_FAILURE: &str = "could not serialize";
/// Wait before retrying a PUT refused with that 500.
const SERIALIZATION_RETRY: Duration = Duration::from_millis(20);

/// Why an API call failed, sorted by what it says about the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 404: the video (or route) does not exist.
    NotFound(String),
    /// 400 on a category update: no plugin registered the id.
    BadCategory(String),
    /// 401/403 that a fresh token did not cure, or a login PeerTube refused.
    Auth(String),
    /// 429/5xx/timeouts/connection errors after every retry.
    Unavailable(String),
    /// Anything else (other 4xx, unreadable answers, missing password).
    Other(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::NotFound(m) => write!(f, "not found: {m}"),
            ApiError::BadCategory(m) => write!(f, "category refused (400): {m}"),
            ApiError::Auth(m) => write!(f, "authentication: {m}"),
            ApiError::Unavailable(m) => write!(f, "PeerTube unavailable: {m}"),
            ApiError::Other(m) => f.write_str(m),
        }
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Error {
        Error::PeerTube(e.to_string())
    }
}

/// Everything the client needs from the config.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub base_url: String,
    pub host_header: Option<String>,
    pub username: String,
    pub password_env: String,
    pub password_file: Option<PathBuf>,
    pub token_cache: PathBuf,
    pub rate_per_sec: f64,
    pub timeout: Duration,
    pub max_retries: u32,
    /// Upper bound on requests in flight.
    pub concurrency: usize,
    pub adaptive: bool,
}

impl ApiSettings {
    pub fn from_config(cfg: &Config) -> ApiSettings {
        let p = &cfg.peertube;
        ApiSettings {
            base_url: p.url.trim_end_matches('/').to_string(),
            host_header: p.host_header.clone(),
            username: p.username.clone(),
            password_env: p.password_env.clone(),
            password_file: p.password_file.clone(),
            token_cache: cfg.token_cache(),
            rate_per_sec: p.rate_per_sec,
            timeout: Duration::from_secs(p.timeout_secs),
            max_retries: p.max_retries,
            concurrency: p.concurrency.max(1),
            adaptive: p.adaptive,
        }
    }
}

/// Request counters, for reports and the benchmark.
#[derive(Debug, Default)]
pub struct ApiStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub logins: AtomicU64,
    pub refreshes: AtomicU64,
    /// PeerTube's "could not serialize access" 500s (each retried).
    pub serialization_failures: AtomicU64,
}

pub struct ApiClient {
    http: reqwest::Client,
    s: ApiSettings,
    limiter: RateLimiter,
    /// Gates authenticated calls (the video traffic); OAuth and public GETs pass freely.
    pub gate: Adaptive,
    auth: Mutex<AuthState>,
    pub stats: ApiStats,
}

/// One failed attempt: whether to retry, and the error if not.
struct Attempt {
    verdict: Verdict,
    err: ApiError,
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Retry-After in seconds (HTTP dates are rare from PeerTube's limiter; they fall back to backoff).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = v.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs).min(RETRY_AFTER_CAP))
}

use oauth::{load_token, AuthState};

impl ApiClient {
    pub fn new(s: ApiSettings) -> Result<ApiClient> {
        let http = reqwest::Client::builder().timeout(s.timeout).connect_timeout(s.timeout.min(Duration::from_secs(10))).pool_max_idle_per_host(32).build()?;
        let token = load_token(&s.token_cache, &s);
        Ok(ApiClient {
            http,
            limiter: RateLimiter::new(s.rate_per_sec),
            gate: Adaptive::new(s.concurrency, s.adaptive),
            auth: Mutex::new(AuthState { token, generation: 0 }),
            stats: ApiStats::default(),
            s,
        })
    }

    pub fn from_config(cfg: &Config) -> Result<ApiClient> {
        ApiClient::new(ApiSettings::from_config(cfg))
    }

    pub fn base_url(&self) -> &str {
        &self.s.base_url
    }

    /// One HTTP exchange through the rate cap (and the adaptive gate when
    /// `gated`), retried by the companion's retry helper on 429/5xx/timeouts.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
        form: Option<&[(&str, &str)]>,
        gated: bool,
    ) -> std::result::Result<(StatusCode, Vec<u8>), ApiError> {
        let url = format!("{}{}", self.s.base_url, path);
        let policy = RetryPolicy { retries: self.s.max_retries, min_delay: BACKOFF_BASE, max_delay: BACKOFF_CAP, max_retry_after: RETRY_AFTER_CAP };
        let r = retry(&policy, |a: &Attempt| a.verdict, || self.attempt(&method, path, &url, bearer, body, form, gated)).await;
        self.stats.retries.fetch_add(u64::from(r.retries), Ordering::Relaxed);
        r.result.map_err(|a| match (a.verdict, a.err) {
            (Verdict::Fail, e) => e,
            (_, e) => ApiError::Unavailable(format!("{e} (after {} attempts)", r.retries + 1)),
        })
    }

    /// One try of [`ApiClient::exchange`]; it takes the same arguments (the
    /// repeated parameter list is deliberate: a struct for them would be built
    /// once per call only to be taken apart here).
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        url: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
        form: Option<&[(&str, &str)]>,
        gated: bool,
    ) -> std::result::Result<(StatusCode, Vec<u8>), Attempt> {
        // The gate first: the rate cap must be the last wait before sending, or
        // requests it spaced out could bunch up behind the gate.
        let slot = if gated { Some(self.gate.acquire().await) } else { None };
        self.limiter.acquire().await;
        let finish = |slot: Option<crate::peertube::adaptive::Slot<'_>>, o: Outcome| {
            if let Some(s) = slot {
                s.finish(o);
            }
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = self.http.request(method.clone(), url);
        if let Some(h) = &self.s.host_header {
            req = req.header(reqwest::header::HOST, h);
        }
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(f) = form {
            req = req.form(f);
        }
        let started = Instant::now();
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                    let ra = retry_after(resp.headers());
                    let text = resp.text().await.unwrap_or_default();
                    let why = format!("{method} {path}: HTTP {status} {}", snippet(&text));
                    if status == StatusCode::INTERNAL_SERVER_ERROR && text.contains(SERIALIZATION_FAILURE) {
                        // The update did not happen; a retry succeeds (seen on PeerTube 8.0.1).
                        // A collision of two transactions, not a sign of load: the gate
                        // keeps its limit and the retry goes out soon, not after a backoff.
                        self.stats.serialization_failures.fetch_add(1, Ordering::Relaxed);
                        finish(slot, Outcome::Neutral);
                        return Err(Attempt { verdict: Verdict::RetryAfter(ra.unwrap_or(SERIALIZATION_RETRY)), err: ApiError::Unavailable(why) });
                    }
                    finish(slot, Outcome::Congested(ra));
                    tracing::debug!(%why, "retryable answer");
                    return Err(Attempt { verdict: ra.map_or(Verdict::Retry, Verdict::RetryAfter), err: ApiError::Unavailable(why) });
                }
                match resp.bytes().await {
                    Ok(bytes) => {
                        // Only writes sample latency: list pages and reads cost PeerTube differently.
                        finish(slot, if status.is_success() && *method == Method::PUT { Outcome::Ok(started.elapsed()) } else { Outcome::Neutral });
                        Ok((status, bytes.to_vec()))
                    }
                    Err(e) => {
                        finish(slot, Outcome::Neutral);
                        Err(Attempt { verdict: Verdict::Fail, err: ApiError::Unavailable(format!("{method} {path}: reading the answer: {e}")) })
                    }
                }
            }
            Err(e) if e.is_timeout() || e.is_connect() || e.is_request() => {
                finish(slot, Outcome::Congested(None));
                Err(Attempt { verdict: Verdict::Retry, err: ApiError::Unavailable(format!("{method} {path}: {e}")) })
            }
            Err(e) => {
                finish(slot, Outcome::Neutral);
                Err(Attempt { verdict: Verdict::Fail, err: ApiError::Other(format!("{method} {path}: {e}")) })
            }
        }
    }

    /// An anonymous GET answering JSON (categories, the plugin route).
    pub async fn get_public(&self, path: &str) -> std::result::Result<Value, ApiError> {
        let (status, body) = self.exchange(Method::GET, path, None, None, None, false).await?;
        match status {
            s if s.is_success() => {
                serde_json::from_slice(&body).map_err(|e| ApiError::Other(format!("GET {path}: answer is not JSON ({e}): {}", snippet_bytes(&body))))
            }
            StatusCode::NOT_FOUND => Err(ApiError::NotFound(format!("GET {path}"))),
            s => Err(classify(s, &format!("GET {path}"), &body)),
        }
    }
}

fn classify(status: StatusCode, what: &str, body: &[u8]) -> ApiError {
    let msg = format!("{what}: HTTP {status} {}", snippet_bytes(body));
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ApiError::Auth(msg),
        StatusCode::NOT_FOUND => ApiError::NotFound(msg),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => ApiError::Unavailable(msg),
        _ => ApiError::Other(msg),
    }
}

fn snippet(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s.to_string()
    }
}

fn snippet_bytes(b: &[u8]) -> String {
    snippet(&String::from_utf8_lossy(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(reqwest::header::RETRY_AFTER, "100000".parse().unwrap());
        assert_eq!(retry_after(&h), Some(RETRY_AFTER_CAP));
        h.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
