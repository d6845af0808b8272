//! PeerTube's REST API as an admin: OAuth (client from `oauth-clients/local`, password grant, refresh on 401, fresh login when the refresh fails, token cached on disk with mode 0600), an optional Host header, a rate cap, adaptive concurrency, the paged list of local videos, and retries (`support::retry`) on 429, 5xx — PeerTube's "could not serialize access" 500 included — and timeouts, honouring Retry-After.

use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::peertube::adaptive::{Adaptive, Outcome};
use crate::peertube::limiter::RateLimiter;
use crate::peertube::video_id::VideoUuid;
use crate::support::retry::{retry, RetryPolicy, Verdict};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
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

/// A cached OAuth token pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Token {
    base_url: String,
    username: String,
    client_id: String,
    client_secret: String,
    access_token: String,
    refresh_token: String,
    /// Unix seconds.
    expires_at: i64,
    refresh_expires_at: i64,
}

#[derive(Default)]
struct AuthState {
    token: Option<Token>,
    /// Bumped at every renewal, so concurrent 401s renew once.
    generation: u64,
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

/// Writes the token cache readable by its owner only.
fn save_token(path: &Path, t: &Token) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(serde_json::to_string(t)?.as_bytes()).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

fn load_token(path: &Path, s: &ApiSettings) -> Option<Token> {
    let text = std::fs::read_to_string(path).ok()?;
    let t: Token = serde_json::from_str(&text).ok()?;
    (t.base_url == s.base_url && t.username == s.username).then_some(t)
}

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
                    if status == StatusCode::INTERNAL_SERVER_ERROR && text.contains(SERIALIZATION_FAILURE) {
                        // The update did not happen; a retry succeeds (seen on PeerTube 8.0.1).
                        self.stats.serialization_failures.fetch_add(1, Ordering::Relaxed);
                    }
                    finish(slot, Outcome::Congested(ra));
                    let why = format!("{method} {path}: HTTP {status} {}", snippet(&text));
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

    async fn oauth_client(&self) -> std::result::Result<(String, String), ApiError> {
        let path = "/api/v1/oauth-clients/local";
        let (status, body) = self.exchange(Method::GET, path, None, None, None, false).await?;
        if status == StatusCode::FORBIDDEN {
            return Err(ApiError::Auth(format!(
                "GET {path} answered 403 ({}): PeerTube hands out its OAuth client only to requests whose Host is its own hostname — set peertube.host_header (the runbook uses stream.echo6.co)",
                snippet_bytes(&body)
            )));
        }
        if !status.is_success() {
            return Err(classify(status, &format!("GET {path}"), &body));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| ApiError::Other(format!("GET {path}: {e}")))?;
        match (v.get("client_id").and_then(Value::as_str), v.get("client_secret").and_then(Value::as_str)) {
            (Some(id), Some(secret)) => Ok((id.to_string(), secret.to_string())),
            _ => Err(ApiError::Other(format!("GET {path}: no client_id/client_secret in the answer"))),
        }
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> std::result::Result<Value, (StatusCode, String)> {
        let (status, body) = self
            .exchange(Method::POST, "/api/v1/users/token", None, None, Some(form), false)
            .await
            .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        if !status.is_success() {
            return Err((status, snippet_bytes(&body)));
        }
        serde_json::from_slice(&body).map_err(|e| (status, format!("token answer is not JSON: {e}")))
    }

    fn token_from(&self, v: &Value, client: (String, String)) -> std::result::Result<Token, ApiError> {
        let now = unix_now();
        let access = v.get("access_token").and_then(Value::as_str);
        let refresh = v.get("refresh_token").and_then(Value::as_str);
        let (Some(access), Some(refresh)) = (access, refresh) else {
            return Err(ApiError::Other("token answer lacks access_token/refresh_token".into()));
        };
        Ok(Token {
            base_url: self.s.base_url.clone(),
            username: self.s.username.clone(),
            client_id: client.0,
            client_secret: client.1,
            access_token: access.to_string(),
            refresh_token: refresh.to_string(),
            expires_at: now + v.get("expires_in").and_then(Value::as_i64).unwrap_or(3600),
            refresh_expires_at: now + v.get("refresh_token_expires_in").and_then(Value::as_i64).unwrap_or(86_400),
        })
    }

    async fn login(&self) -> std::result::Result<Token, ApiError> {
        let password = config::read_secret(&self.s.password_env, self.s.password_file.as_deref())
            .map_err(|e| ApiError::Other(e.to_string()))?
            .ok_or_else(|| ApiError::Auth(format!("no PeerTube password: export {} or set peertube.password_file", self.s.password_env)))?;
        let client = self.oauth_client().await?;
        self.stats.logins.fetch_add(1, Ordering::Relaxed);
        let form = [
            ("client_id", client.0.as_str()),
            ("client_secret", client.1.as_str()),
            ("grant_type", "password"),
            ("username", self.s.username.as_str()),
            ("password", password.as_str()),
        ];
        match self.token_request(&form).await {
            Ok(v) => self.token_from(&v, client),
            // The body may echo nothing secret, but keep it short anyway.
            Err((status, body)) => Err(ApiError::Auth(format!(
                "login as {:?} refused (HTTP {status}): {body} — check the password in {} / peertube.password_file",
                self.s.username, self.s.password_env
            ))),
        }
    }

    async fn refresh(&self, t: &Token) -> Option<Token> {
        if t.refresh_expires_at <= unix_now() {
            return None;
        }
        self.stats.refreshes.fetch_add(1, Ordering::Relaxed);
        let form = [
            ("client_id", t.client_id.as_str()),
            ("client_secret", t.client_secret.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", t.refresh_token.as_str()),
        ];
        match self.token_request(&form).await {
            Ok(v) => self.token_from(&v, (t.client_id.clone(), t.client_secret.clone())).ok(),
            Err((status, _)) => {
                tracing::info!(%status, "token refresh refused; logging in again");
                None
            }
        }
    }

    /// Renews the token unless another task already did since `seen_generation`.
    async fn renew(&self, seen_generation: Option<u64>) -> std::result::Result<(String, u64), ApiError> {
        let mut st = self.auth.lock().await;
        if let (Some(g), Some(t)) = (seen_generation, &st.token) {
            if st.generation != g {
                return Ok((t.access_token.clone(), st.generation));
            }
        }
        let refreshed = match st.token.clone() {
            Some(t) => self.refresh(&t).await,
            None => None,
        };
        let token = match refreshed {
            Some(t) => t,
            None => self.login().await?,
        };
        if let Err(e) = save_token(&self.s.token_cache, &token) {
            tracing::warn!(error = %e, "cannot write the token cache");
        }
        st.generation += 1;
        let out = (token.access_token.clone(), st.generation);
        st.token = Some(token);
        Ok(out)
    }

    /// A usable access token and its generation.
    async fn access_token(&self) -> std::result::Result<(String, u64), ApiError> {
        {
            let st = self.auth.lock().await;
            if let Some(t) = &st.token {
                if t.expires_at - EXPIRY_SLACK_SECS > unix_now() {
                    return Ok((t.access_token.clone(), st.generation));
                }
            }
        }
        self.renew(None).await
    }

    /// An authenticated call; a 401 renews the token once (refresh, else login).
    async fn authed(&self, method: Method, path: &str, body: Option<&Value>) -> std::result::Result<(StatusCode, Vec<u8>), ApiError> {
        let (mut token, mut generation) = self.access_token().await?;
        let mut renewed = false;
        loop {
            let (status, bytes) = self.exchange(method.clone(), path, Some(&token), body, None, true).await?;
            if status == StatusCode::UNAUTHORIZED && !renewed {
                (token, generation) = self.renew(Some(generation)).await?;
                renewed = true;
                continue;
            }
            return Ok((status, bytes));
        }
    }

    /// Logs in (or reuses the cached token) so auth problems show before any push.
    pub async fn ensure_login(&self) -> std::result::Result<(), ApiError> {
        self.access_token().await.map(|_| ())
    }

    /// A video's current category (`None` = no category).
    pub async fn video_category(&self, video: &VideoUuid) -> std::result::Result<Option<i64>, ApiError> {
        let path = format!("/api/v1/videos/{video}");
        let (status, body) = self.authed(Method::GET, &path, None).await?;
        match status {
            s if s.is_success() => {
                let v: Value = serde_json::from_slice(&body).map_err(|e| ApiError::Other(format!("GET {path}: {e}")))?;
                Ok(category_id(&v))
            }
            StatusCode::NOT_FOUND => Err(ApiError::NotFound(format!("video {video}"))),
            s => Err(classify(s, &format!("GET {path}"), &body)),
        }
    }

    /// Sets a video's category (`None` clears it).
    pub async fn set_category(&self, video: &VideoUuid, category: Option<i64>) -> std::result::Result<(), ApiError> {
        let path = format!("/api/v1/videos/{video}");
        let body = json!({ "category": category });
        let (status, bytes) = self.authed(Method::PUT, &path, Some(&body)).await?;
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(ApiError::NotFound(format!("video {video}"))),
            StatusCode::BAD_REQUEST => Err(ApiError::BadCategory(format!(
                "PUT {path} {{\"category\": {}}}: {}",
                category.map(|c| c.to_string()).unwrap_or_else(|| "null".into()),
                snippet_bytes(&bytes)
            ))),
            s => Err(classify(s, &format!("PUT {path}"), &bytes)),
        }
    }

    /// One page of every local video an admin may see — unlisted, private,
    /// internal, password-protected, unpublished, blocked ones included
    /// (`GET /api/v1/videos?isLocal=true&include=7&privacyOneOf=1..5&nsfw=both`,
    /// oldest first so uploads during the read only append): (total, uuid → category).
    pub async fn local_videos_page(&self, start: usize) -> std::result::Result<(u64, Vec<(VideoUuid, Option<i64>)>), ApiError> {
        let path = list_path(start);
        let (status, body) = self.authed(Method::GET, &path, None).await?;
        if !status.is_success() {
            return Err(classify(status, &format!("GET {path}"), &body));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| ApiError::Other(format!("GET {path}: answer is not JSON ({e})")))?;
        let total = v.get("total").and_then(Value::as_u64).unwrap_or(0);
        let data = v.get("data").and_then(Value::as_array).ok_or_else(|| ApiError::Other(format!("GET {path}: no data array in the answer")))?;
        Ok((total, data.iter().filter_map(|d| Some((VideoUuid::parse(d.get("uuid")?.as_str()?)?, category_id(d)))).collect()))
    }

    /// Every local video's category, read page by page (pages after the first
    /// in parallel through the gate). `None` when reading them would cost more
    /// requests than `worth` per-video reads: the caller reads those instead.
    pub async fn local_videos(self: &std::sync::Arc<Self>, worth: usize) -> std::result::Result<Option<HashMap<VideoUuid, Option<i64>>>, ApiError> {
        let (total, first) = self.local_videos_page(0).await?;
        let pages = (total as usize).div_ceil(LIST_PAGE);
        if pages > worth.max(1) {
            return Ok(None);
        }
        let mut out: HashMap<VideoUuid, Option<i64>> = first.into_iter().collect();
        let mut set = tokio::task::JoinSet::new();
        for page in 1..pages {
            let c = self.clone();
            set.spawn(async move { c.local_videos_page(page * LIST_PAGE).await });
        }
        while let Some(r) = set.join_next().await {
            let (_, rows) = r.map_err(|e| ApiError::Other(format!("video list task: {e}")))??;
            out.extend(rows);
        }
        Ok(Some(out))
    }

    /// `GET /api/v1/videos/categories` as id → label.
    pub async fn categories(&self) -> std::result::Result<BTreeMap<String, String>, ApiError> {
        let v = self.get_public("/api/v1/videos/categories").await?;
        let obj = v.as_object().ok_or_else(|| ApiError::Other("categories: answer is not a JSON object".into()))?;
        Ok(obj.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect())
    }
}

/// The list query of [`ApiClient::local_videos_page`].
pub fn list_path(start: usize) -> String {
    let privacies: String = LIST_PRIVACIES.iter().map(|p| format!("&privacyOneOf={p}")).collect();
    format!("/api/v1/videos?isLocal=true&include={LIST_INCLUDE}{privacies}&nsfw=both&sort=createdAt&skipCount=false&start={start}&count={LIST_PAGE}")
}

/// A video's category id as PeerTube shows it (`{"id": 105, "label": …}`, or a bare number).
fn category_id(v: &Value) -> Option<i64> {
    match v.get("category") {
        Some(Value::Object(c)) => c.get("id").and_then(Value::as_i64),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
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
    fn list_query_asks_for_every_local_video() {
        let p = list_path(200);
        for part in [
            "isLocal=true",
            "include=7",
            "privacyOneOf=1&",
            "privacyOneOf=2&",
            "privacyOneOf=3&",
            "privacyOneOf=4&",
            "privacyOneOf=5&",
            "nsfw=both",
            "start=200",
            "count=100",
        ] {
            assert!(p.contains(part), "{part} missing from {p}");
        }
        assert_eq!(category_id(&json!({"category": {"id": 105, "label": "x"}})), Some(105));
        assert_eq!(category_id(&json!({"category": {"id": null, "label": "Unknown"}})), None);
        assert_eq!(category_id(&json!({"category": 7})), Some(7));
    }

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

    #[test]
    fn token_cache_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/token.json");
        let t = Token {
            base_url: "http://x".into(),
            username: "root".into(),
            client_id: "c".into(),
            client_secret: "s".into(),
            access_token: "a".into(),
            refresh_token: "r".into(),
            expires_at: 1,
            refresh_expires_at: 2,
        };
        save_token(&p, &t).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        // A world-readable file left by someone else is replaced by a private one.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        save_token(&p, &t).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let s = ApiSettings {
            base_url: "http://x".into(),
            host_header: None,
            username: "root".into(),
            password_env: "X".into(),
            password_file: None,
            token_cache: p.clone(),
            rate_per_sec: 1.0,
            timeout: Duration::from_secs(1),
            max_retries: 0,
            concurrency: 1,
            adaptive: true,
        };
        assert!(load_token(&p, &s).is_some());
        let other = ApiSettings { username: "someone-else".into(), ..s };
        assert!(load_token(&p, &other).is_none(), "a token for another user is not reused");
    }
}
