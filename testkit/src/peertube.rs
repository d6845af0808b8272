//! An in-process stand-in for PeerTube's REST API, for tests and the push
//! benchmark: OAuth as PeerTube does it (client only for the right Host,
//! password and refresh grants, expiring tokens → 401), 400 for unregistered
//! category ids, 404 for unknown videos, and injectable 429 / 500 / slow
//! answers. It counts requests so a test can check the client's rate.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use companion::peertube::video_id::VideoUuid;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A failure to inject into the next video request(s).
#[derive(Debug, Clone, Copy)]
pub enum Inject {
    TooMany { retry_after_secs: u64 },
    ServerError,
    Slow(Duration),
}

#[derive(Debug, Clone)]
pub struct StandInConfig {
    pub hostname: String,
    pub username: String,
    pub password: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// Added to every video request.
    pub latency: Duration,
    /// Whether peertube-plugin-recon-domains is "installed" (categories 100–117 + its route).
    pub plugin: bool,
}

impl Default for StandInConfig {
    fn default() -> Self {
        StandInConfig {
            hostname: "stream.echo6.co".into(),
            username: "root".into(),
            password: "test-password".into(),
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(7 * 86_400),
            latency: Duration::ZERO,
            plugin: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeVideo {
    pub category: Option<i64>,
    pub remote: bool,
}

/// Everything the stand-in holds and counts.
#[derive(Debug, Default)]
pub struct Inner {
    pub cfg: Option<StandInConfig>,
    pub videos: HashMap<String, FakeVideo>,
    pub categories: BTreeMap<i64, String>,
    pub plugin_fingerprint: Option<String>,
    access: HashMap<String, Instant>,
    refresh: HashMap<String, Instant>,
    pub inject: VecDeque<Inject>,
    /// After this many applied PUTs, further PUTs are applied but never answered.
    pub stall_after_puts: Option<usize>,
    pub stalled: bool,
    /// PUTs refuse every category (the plugin vanished after the preflight).
    pub refuse_put_categories: bool,
    pub request_times: Vec<Instant>,
    pub puts: HashMap<String, u32>,
    pub put_total: usize,
    pub video_gets: u64,
    pub logins: u32,
    pub refreshes: u32,
    pub oauth_client_refusals: u32,
    pub unauthorized: u32,
    seq: u64,
}

pub type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

const CLIENT_ID: &str = "standin-client-id";
const CLIENT_SECRET: &str = "standin-client-secret";

fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "error": msg, "status": status.as_u16() }))).into_response()
}

/// Counts the request; applies latency and any injected failure.
async fn enter(s: &Shared, video_request: bool) -> Option<Response> {
    let (latency, inject) = {
        let mut i = lock(s);
        i.request_times.push(Instant::now());
        let inject = if video_request { i.inject.pop_front() } else { None };
        (if video_request { i.cfg.as_ref().map(|c| c.latency).unwrap_or_default() } else { Duration::ZERO }, inject)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match inject {
        Some(Inject::TooMany { retry_after_secs }) => {
            Some((StatusCode::TOO_MANY_REQUESTS, [("retry-after", retry_after_secs.to_string())], "Too many requests, please try again later.").into_response())
        }
        Some(Inject::ServerError) => Some(error(StatusCode::INTERNAL_SERVER_ERROR, "injected failure")),
        Some(Inject::Slow(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        None => None,
    }
}

fn authorized(s: &Shared, headers: &HeaderMap) -> bool {
    let mut i = lock(s);
    let tok = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string);
    let ok = tok.and_then(|t| i.access.get(&t).copied()).is_some_and(|exp| exp > Instant::now());
    if !ok {
        i.unauthorized += 1;
    }
    ok
}

async fn oauth_client(State(s): State<Shared>, headers: HeaderMap) -> Response {
    enter(&s, false).await;
    let mut i = lock(&s);
    let want = i.cfg.as_ref().map(|c| c.hostname.clone()).unwrap_or_default();
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default().to_string();
    if host != want {
        i.oauth_client_refusals += 1;
        return error(StatusCode::FORBIDDEN, &format!("Getting client tokens for host {host} is forbidden"));
    }
    Json(json!({ "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET })).into_response()
}

fn issue(i: &mut Inner) -> Value {
    let cfg = i.cfg.clone().unwrap_or_default();
    i.seq += 1;
    let access = format!("access-{}-{}", i.seq, rand::random::<u64>());
    let refresh = format!("refresh-{}-{}", i.seq, rand::random::<u64>());
    i.access.insert(access.clone(), Instant::now() + cfg.access_ttl);
    i.refresh.insert(refresh.clone(), Instant::now() + cfg.refresh_ttl);
    json!({
        "token_type": "Bearer",
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": cfg.access_ttl.as_secs(),
        "refresh_token_expires_in": cfg.refresh_ttl.as_secs(),
    })
}

async fn token(State(s): State<Shared>, Form(f): Form<HashMap<String, String>>) -> Response {
    enter(&s, false).await;
    let mut i = lock(&s);
    let cfg = i.cfg.clone().unwrap_or_default();
    if f.get("client_id").map(String::as_str) != Some(CLIENT_ID) || f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET) {
        return error(StatusCode::BAD_REQUEST, "Invalid client: client is invalid");
    }
    match f.get("grant_type").map(String::as_str) {
        Some("password") => {
            i.logins += 1;
            if f.get("username") != Some(&cfg.username) || f.get("password") != Some(&cfg.password) {
                return error(StatusCode::BAD_REQUEST, "Invalid grant: user credentials are invalid");
            }
            Json(issue(&mut i)).into_response()
        }
        Some("refresh_token") => {
            i.refreshes += 1;
            let r = f.get("refresh_token").cloned().unwrap_or_default();
            match i.refresh.remove(&r) {
                Some(exp) if exp > Instant::now() => Json(issue(&mut i)).into_response(),
                _ => error(StatusCode::BAD_REQUEST, "Invalid grant: refresh token is invalid"),
            }
        }
        _ => error(StatusCode::BAD_REQUEST, "Unsupported grant type"),
    }
}

async fn categories(State(s): State<Shared>) -> Response {
    enter(&s, false).await;
    let i = lock(&s);
    let m: serde_json::Map<String, Value> = i.categories.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    Json(Value::Object(m)).into_response()
}

async fn plugin_route(State(s): State<Shared>) -> Response {
    enter(&s, false).await;
    let i = lock(&s);
    if !i.cfg.as_ref().is_some_and(|c| c.plugin) {
        return error(StatusCode::NOT_FOUND, "Not found");
    }
    let cats: Vec<Value> = shared_constants::all().map(|d| json!({"id": d.id, "label": d.label})).collect();
    Json(json!({
        "version": "standin",
        "fingerprint": i.plugin_fingerprint.clone().unwrap_or_else(shared_constants::fingerprint),
        "categories": cats,
        "refused": [],
    }))
    .into_response()
}

fn key(id: &str) -> Option<String> {
    VideoUuid::parse(id).map(|u| u.to_string())
}

async fn get_video(State(s): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(r) = enter(&s, true).await {
        return r;
    }
    if !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Token is invalid or expired");
    }
    let mut i = lock(&s);
    i.video_gets += 1;
    let Some(k) = key(&id) else { return error(StatusCode::NOT_FOUND, "Video not found") };
    let Some(v) = i.videos.get(&k).copied() else { return error(StatusCode::NOT_FOUND, "Video not found") };
    let label = v.category.and_then(|c| i.categories.get(&c).cloned()).unwrap_or_else(|| "Unknown".into());
    Json(json!({
        "uuid": k,
        "shortUUID": VideoUuid::parse(&k).map(|u| u.short()),
        "category": { "id": v.category, "label": label },
    }))
    .into_response()
}

async fn put_video(State(s): State<Shared>, Path(id): Path<String>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = enter(&s, true).await {
        return r;
    }
    if !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Token is invalid or expired");
    }
    let stall = {
        let mut i = lock(&s);
        let Some(k) = key(&id) else { return error(StatusCode::NOT_FOUND, "Video not found") };
        let Some(v) = i.videos.get(&k).copied() else { return error(StatusCode::NOT_FOUND, "Video not found") };
        if v.remote {
            return error(StatusCode::FORBIDDEN, "Cannot update a remote video");
        }
        let cat = match body.get("category") {
            Some(Value::Null) => None,
            Some(c) => match c.as_i64() {
                Some(c) if i.categories.contains_key(&c) && !i.refuse_put_categories => Some(c),
                _ => return error(StatusCode::BAD_REQUEST, "Incorrect request parameters: category"),
            },
            None => v.category,
        };
        i.videos.insert(k.clone(), FakeVideo { category: cat, ..v });
        *i.puts.entry(k).or_default() += 1;
        i.put_total += 1;
        let stall = i.stall_after_puts.is_some_and(|n| i.put_total > n);
        if stall {
            i.stalled = true;
        }
        stall
    };
    if stall {
        // Applied but never answered: the client is killed while waiting.
        std::future::pending::<()>().await;
    }
    StatusCode::NO_CONTENT.into_response()
}

/// A running stand-in on 127.0.0.1, served from its own thread and runtime so
/// blocking and async callers alike can use it.
pub struct StandIn {
    pub url: String,
    pub state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    pub fn start(cfg: StandInConfig) -> std::io::Result<StandIn> {
        let mut inner = Inner::default();
        for id in 1..=18i64 {
            inner.categories.insert(id, format!("Built-in {id}"));
        }
        if cfg.plugin {
            for d in shared_constants::all() {
                inner.categories.insert(i64::from(d.id), d.label.to_string());
            }
        }
        inner.cfg = Some(cfg);
        let state: Shared = Arc::new(Mutex::new(inner));
        let app = Router::new()
            .route("/api/v1/oauth-clients/local", get(oauth_client))
            .route("/api/v1/users/token", axum::routing::post(token))
            .route("/api/v1/videos/categories", get(categories))
            .route("/api/v1/videos/{id}", get(get_video).put(put_video))
            .route("/plugins/recon-domains/router/taxonomy", get(plugin_route))
            .with_state(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("stand-in runtime: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                // Not a graceful shutdown: a stalled handler would hold it forever.
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = rx => {}
                }
            });
            // Stalled handlers never finish: don't wait for them.
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        Ok(StandIn { url: format!("http://{addr}"), state, shutdown: Some(tx), thread: Some(thread) })
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut lock(&self.state))
    }

    pub fn add_video(&self, uuid: &VideoUuid, category: Option<i64>, remote: bool) {
        self.with(|i| i.videos.insert(uuid.to_string(), FakeVideo { category, remote }));
    }

    pub fn category(&self, uuid: &VideoUuid) -> Option<Option<i64>> {
        self.with(|i| i.videos.get(uuid.as_str()).map(|v| v.category))
    }

    pub fn set_category(&self, uuid: &VideoUuid, category: Option<i64>) {
        self.with(|i| {
            if let Some(v) = i.videos.get_mut(uuid.as_str()) {
                v.category = category;
            }
        });
    }

    pub fn inject(&self, what: Inject, times: usize) {
        self.with(|i| i.inject.extend(std::iter::repeat_n(what, times)));
    }

    /// Forgets every token: the next authenticated call gets 401.
    pub fn expire_tokens(&self) {
        self.with(|i| i.access.clear());
    }

    pub fn expire_refresh_tokens(&self) {
        self.with(|i| i.refresh.clear());
    }

    /// Most requests that arrived within any window of `window`.
    pub fn max_requests_in(&self, window: Duration) -> usize {
        let mut t = self.with(|i| i.request_times.clone());
        t.sort();
        let mut best = 0;
        let mut j = 0;
        for k in 0..t.len() {
            while t[k] - t[j] >= window {
                j += 1;
            }
            best = best.max(k - j + 1);
        }
        best
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
