//! An in-process stand-in for PeerTube's REST API, for tests and the push benchmark: OAuth as PeerTube does it (expiring tokens → 401) for the admin and a moderator (each PUT logged with its account), the admin's paged video list, the plugin's change-log hook and its authenticated route, 400/404 like PeerTube, a throughput ceiling with queueing latency and federation after-work, serialization 500s under concurrency, 429 for non-admins over the rate limit, injectable failures, and request counters.
//!
//! One file over 500 lines on purpose: one stand-in server whose handlers share
//! one state (`Inner`) behind one lock; split, every part would reach into it.

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
use tokio::sync::Semaphore;

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
    /// The server's capacity for video requests: each holds PeerTube's single
    /// worker (its Node process) for 1/ceiling s, so answers queue and latency
    /// grows with the requests in flight while throughput stays flat.
    pub ceiling_per_sec: Option<f64>,
    /// A list page costs this many video requests of the worker's time.
    pub list_page_cost: f64,
    /// Federation work each applied PUT queues ("Processing video federation"):
    /// it takes the same worker for this long shortly after the answer, so a
    /// burst of writes slows the requests behind it.
    pub federation_per_put: Option<Duration>,
    /// PUTs answered 500 "could not serialize access" (not applied) when at
    /// least `min_in_flight` PUTs are in flight, with this probability.
    pub serialization: Option<Serialization>,
    /// Whether the user is an admin. Non-admins are rate-limited (429 with
    /// Retry-After past `user_rate_limit`) and may not list every video (401).
    pub admin: bool,
    /// PeerTube's API limit for non-admins: this many requests per window.
    pub user_rate_limit: (usize, Duration),
    /// A second account (a moderator: edits videos, is not rate-limited here) as (username, password).
    pub moderator: Option<(String, String)>,
    /// With `plugin`: the plugin's `action:api.video.updated` hook records each
    /// category change with its account, served on its authenticated `/changes` route.
    pub plugin_changes: bool,
}

/// How often concurrent PUTs collide in PeerTube's SERIALIZABLE transaction.
#[derive(Debug, Clone, Copy)]
pub struct Serialization {
    pub min_in_flight: usize,
    pub probability: f64,
    pub seed: u64,
}

impl Serialization {
    /// As seen on PeerTube 8.0.1: from 4 in flight, 19 of ~900 PUTs.
    pub fn peertube_8() -> Serialization {
        Serialization { min_in_flight: 4, probability: 0.021, seed: 7 }
    }
}

impl StandInConfig {
    /// A real PeerTube 8.0.1 on 2 cores, as measured: about 45 PUTs/s whatever
    /// the requests in flight (1/55 s of the worker per PUT + 4 ms of federation
    /// after it: a guess at the split, the real one was not measured),
    /// serialization 500s from 4 in flight.
    pub fn peertube_8_on_2_cores() -> StandInConfig {
        StandInConfig {
            ceiling_per_sec: Some(55.0),
            federation_per_put: Some(Duration::from_millis(4)),
            latency: Duration::from_millis(2),
            serialization: Some(Serialization::peertube_8()),
            ..StandInConfig::default()
        }
    }
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
            ceiling_per_sec: None,
            list_page_cost: 3.0,
            federation_per_put: None,
            serialization: None,
            admin: true,
            user_rate_limit: (50, Duration::from_secs(10)),
            moderator: Some(("moderator".into(), "moderator-password".into())),
            plugin_changes: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeVideo {
    pub category: Option<i64>,
    pub remote: bool,
}

/// One PUT that reached a video: which account sent it, and the category it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecord {
    pub video: String,
    pub user: String,
    pub category: Option<i64>,
    /// Whether PeerTube applied it.
    pub applied: bool,
}

/// A category change as the plugin's hook records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginChange {
    pub video: String,
    pub category: Option<i64>,
    pub user: String,
    pub at: String,
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
    /// Upload order of the videos (the list's `sort=createdAt`).
    pub order: Vec<String>,
    /// PeerTube's single worker, when a ceiling is set.
    worker: Option<Arc<Semaphore>>,
    rng: Option<rand::rngs::StdRng>,
    pub puts_in_flight: usize,
    pub max_puts_in_flight: usize,
    /// PUTs refused with the serialization 500 (nothing applied).
    pub serialization_failures: u64,
    /// PUT requests that reached the handler, answered or not.
    pub put_attempts: u64,
    pub list_requests: u64,
    pub rate_limited: u64,
    user_requests: VecDeque<Instant>,
    /// After this many applied PUTs, further PUTs are applied but never answered.
    pub stall_after_puts: Option<usize>,
    pub stalled: bool,
    /// PUTs refuse every category (the plugin vanished after the preflight).
    pub refuse_put_categories: bool,
    pub request_times: Vec<Instant>,
    /// When each PUT reached the handler.
    pub put_times: Vec<Instant>,
    pub puts: HashMap<String, u32>,
    pub put_total: usize,
    pub video_gets: u64,
    pub logins: u32,
    pub refreshes: u32,
    pub oauth_client_refusals: u32,
    pub unauthorized: u32,
    seq: u64,
    /// Account of each access token.
    token_user: HashMap<String, String>,
    /// Every PUT that got past authentication, in order, with its account.
    pub put_log: Vec<PutRecord>,
    /// The plugin hook's log (when `plugin && plugin_changes`).
    pub plugin_changes: Vec<PluginChange>,
    pub changes_requests: u64,
}

impl Inner {
    /// How long after `t` the first PUT since then arrived.
    pub fn first_put_after(&self, t: Instant) -> Option<Duration> {
        self.put_times.iter().find(|p| **p >= t).map(|p| p.duration_since(t))
    }
}

pub type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// How soon after an applied PUT its federation job takes the worker.
const FEDERATION_DELAY: Duration = Duration::from_millis(20);

const CLIENT_ID: &str = "standin-client-id";
const CLIENT_SECRET: &str = "standin-client-secret";

fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "error": msg, "status": status.as_u16() }))).into_response()
}

/// Counts the request; applies the rate limit for non-admins, latency, the
/// worker's queue (`cost` video requests of its time) and any injected failure.
async fn enter(s: &Shared, video_request: bool) -> Option<Response> {
    enter_costing(s, video_request, 1.0, video_request).await
}

/// `injectable`: whether this request consumes an injected failure (list pages
/// do not, so injections keep landing on single-video requests as tests expect).
async fn enter_costing(s: &Shared, video_request: bool, cost: f64, injectable: bool) -> Option<Response> {
    let (latency, inject, worker, service, limited) = {
        let mut i = lock(s);
        let now = Instant::now();
        i.request_times.push(now);
        let cfg = i.cfg.clone().unwrap_or_default();
        // PeerTube's API rate limit exempts admins; others get 429 past it.
        let limited = if !cfg.admin && video_request {
            let (n, window) = cfg.user_rate_limit;
            while i.user_requests.front().is_some_and(|t| now.duration_since(*t) >= window) {
                i.user_requests.pop_front();
            }
            if i.user_requests.len() >= n {
                i.rate_limited += 1;
                i.user_requests.front().map(|t| window.saturating_sub(now.duration_since(*t)))
            } else {
                i.user_requests.push_back(now);
                None
            }
        } else {
            None
        };
        let inject = if injectable { i.inject.pop_front() } else { None };
        let service = cfg.ceiling_per_sec.filter(|c| *c > 0.0).map(|c| Duration::from_secs_f64(cost / c));
        (if video_request { cfg.latency } else { Duration::ZERO }, inject, if video_request { i.worker.clone() } else { None }, service, limited)
    };
    if let Some(wait) = limited {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        return Some((StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())], "Too many requests, please try again later.").into_response());
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let (Some(w), Some(d)) = (worker, service) {
        // One request at a time holds the worker: the rest queue.
        if let Ok(_permit) = w.acquire_owned().await {
            tokio::time::sleep(d).await;
        }
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
    user_of(s, headers).is_some()
}

/// The account behind the request's bearer token, if valid (else counted as unauthorized).
fn user_of(s: &Shared, headers: &HeaderMap) -> Option<String> {
    let mut i = lock(s);
    let tok = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string);
    let user = tok.filter(|t| i.access.get(t).is_some_and(|exp| *exp > Instant::now())).and_then(|t| i.token_user.get(&t).cloned());
    if user.is_none() {
        i.unauthorized += 1;
    }
    user
}

/// The plugin's `GET /plugins/recon-domains/router/changes`: the hook's log,
/// for an authenticated admin or moderator only, without `exclude`'s account.
async fn plugin_changes(State(s): State<Shared>, headers: HeaderMap, axum::extract::RawQuery(q): axum::extract::RawQuery) -> Response {
    enter(&s, false).await;
    let on = lock(&s).cfg.as_ref().is_some_and(|c| c.plugin && c.plugin_changes);
    if !on {
        return error(StatusCode::NOT_FOUND, "Not found");
    }
    // Both accounts of the stand-in are admin or moderator; anyone else has no token.
    if user_of(&s, &headers).is_none() {
        return error(StatusCode::UNAUTHORIZED, "Authentication required");
    }
    let params = form_urlencoded_pairs(&q.unwrap_or_default());
    let exclude = params.iter().find(|(k, _)| k == "exclude").map(|(_, v)| percent_decode(v));
    let since = params.iter().find(|(k, _)| k == "since").map(|(_, v)| percent_decode(v));
    let mut i = lock(&s);
    i.changes_requests += 1;
    let changes: Vec<Value> = i
        .plugin_changes
        .iter()
        .filter(|c| exclude.as_deref() != Some(c.user.as_str()) && since.as_deref().is_none_or(|t| c.at.as_str() > t))
        .map(|c| json!({ "video": c.video, "category": c.category, "user": c.user, "at": c.at }))
        .collect();
    Json(json!({ "changes": changes })).into_response()
}

fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut k = 0;
    while k < b.len() {
        match (b[k], b.get(k + 1..k + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(x)) => {
                out.push(x);
                k += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                k += 1;
            }
            (c, _) => {
                out.push(c);
                k += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

fn issue(i: &mut Inner, user: &str) -> Value {
    let cfg = i.cfg.clone().unwrap_or_default();
    i.seq += 1;
    let access = format!("access-{}-{}", i.seq, rand::random::<u64>());
    let refresh = format!("refresh-{}-{}", i.seq, rand::random::<u64>());
    i.access.insert(access.clone(), Instant::now() + cfg.access_ttl);
    i.refresh.insert(refresh.clone(), Instant::now() + cfg.refresh_ttl);
    i.token_user.insert(access.clone(), user.to_string());
    i.token_user.insert(refresh.clone(), user.to_string());
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
            let (user, pass) = (f.get("username").cloned().unwrap_or_default(), f.get("password").cloned().unwrap_or_default());
            let known = (user == cfg.username && pass == cfg.password) || cfg.moderator.as_ref().is_some_and(|(u, p)| *u == user && *p == pass);
            if !known {
                return error(StatusCode::BAD_REQUEST, "Invalid grant: user credentials are invalid");
            }
            Json(issue(&mut i, &user)).into_response()
        }
        Some("refresh_token") => {
            i.refreshes += 1;
            let r = f.get("refresh_token").cloned().unwrap_or_default();
            let user = i.token_user.get(&r).cloned().unwrap_or_else(|| cfg.username.clone());
            match i.refresh.remove(&r) {
                Some(exp) if exp > Instant::now() => Json(issue(&mut i, &user)).into_response(),
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

/// `GET /api/v1/videos` as PeerTube answers an admin asking with
/// `isLocal=true&include=…&privacyOneOf=…`: local videos, oldest first, paged.
async fn list_videos(State(s): State<Shared>, headers: HeaderMap, axum::extract::RawQuery(q): axum::extract::RawQuery) -> Response {
    let cost = lock(&s).cfg.as_ref().map(|c| c.list_page_cost).unwrap_or(1.0);
    if let Some(r) = enter_costing(&s, true, cost, false).await {
        return r;
    }
    let q = q.unwrap_or_default();
    let params: Vec<(String, String)> = form_urlencoded_pairs(&q);
    let get = |k: &str| params.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let wants_all = get("include").is_some() || get("privacyOneOf").is_some();
    let authed = headers.contains_key("authorization");
    if authed && !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Token is invalid or expired");
    }
    let mut i = lock(&s);
    i.list_requests += 1;
    let admin = i.cfg.as_ref().is_some_and(|c| c.admin);
    if wants_all && !(authed && admin) {
        return error(StatusCode::UNAUTHORIZED, "You are not allowed to see all videos, specify a custom include, auto tags or state filter");
    }
    let start: usize = get("start").and_then(|v| v.parse().ok()).unwrap_or(0);
    let count: usize = get("count").and_then(|v| v.parse().ok()).unwrap_or(15).min(100);
    let local_only = get("isLocal").as_deref() == Some("true");
    let rows: Vec<(String, FakeVideo)> =
        i.order.iter().filter_map(|k| Some((k.clone(), *i.videos.get(k)?))).filter(|(_, v)| !(local_only && v.remote)).collect();
    let data: Vec<Value> = rows
        .iter()
        .skip(start)
        .take(count)
        .map(|(k, v)| {
            let label = v.category.and_then(|c| i.categories.get(&c).cloned()).unwrap_or_else(|| "Unknown".into());
            json!({ "uuid": k, "shortUUID": VideoUuid::parse(k).map(|u| u.short()), "isLocal": !v.remote, "category": { "id": v.category, "label": label } })
        })
        .collect();
    Json(json!({ "total": rows.len(), "data": data })).into_response()
}

fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Leaves the in-flight count of PUTs when the handler ends (answered or dropped).
struct PutInFlight(Shared);

impl Drop for PutInFlight {
    fn drop(&mut self) {
        let mut i = lock(&self.0);
        i.puts_in_flight = i.puts_in_flight.saturating_sub(1);
    }
}

async fn put_video(State(s): State<Shared>, Path(id): Path<String>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let _in_flight = {
        let mut i = lock(&s);
        i.put_attempts += 1;
        i.put_times.push(Instant::now());
        i.puts_in_flight += 1;
        i.max_puts_in_flight = i.max_puts_in_flight.max(i.puts_in_flight);
        PutInFlight(s.clone())
    };
    if let Some(r) = enter(&s, true).await {
        return r;
    }
    let Some(user) = user_of(&s, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "Token is invalid or expired");
    };
    let asked = body.get("category").map(|c| c.as_i64());
    {
        let mut i = lock(&s);
        i.put_log.push(PutRecord { video: key(&id).unwrap_or_else(|| id.clone()), user: user.clone(), category: asked.flatten(), applied: false });
    }
    let stall = {
        let mut i = lock(&s);
        // PeerTube's SERIALIZABLE update collides with concurrent ones now and then.
        if let Some(ser) = i.cfg.as_ref().and_then(|c| c.serialization) {
            if i.puts_in_flight >= ser.min_in_flight {
                let hit = i.rng.as_mut().is_some_and(|r| rand::Rng::gen_bool(r, ser.probability.clamp(0.0, 1.0)));
                if hit {
                    i.serialization_failures += 1;
                    return error(StatusCode::INTERNAL_SERVER_ERROR, "could not serialize access due to read/write dependencies among transactions");
                }
            }
        }
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
        if let Some(last) = i.put_log.iter_mut().rev().find(|r| r.video == k && r.user == user) {
            last.applied = true;
        }
        // The plugin's hook sees every update that carries a category, with its account.
        let hook = i.cfg.as_ref().is_some_and(|c| c.plugin && c.plugin_changes);
        if hook && asked.is_some() {
            let at = companion::recon::db::now();
            i.plugin_changes.push(PluginChange { video: k.clone(), category: cat, user: user.clone(), at });
        }
        *i.puts.entry(k).or_default() += 1;
        i.put_total += 1;
        if let (Some(fed), Some(w)) = (i.cfg.as_ref().and_then(|c| c.federation_per_put), i.worker.clone()) {
            // PeerTube's job queue picks the work up right after the answer.
            tokio::spawn(async move {
                tokio::time::sleep(FEDERATION_DELAY).await;
                if let Ok(_permit) = w.acquire_owned().await {
                    tokio::time::sleep(fed).await;
                }
            });
        }
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
        if cfg.ceiling_per_sec.is_some() {
            inner.worker = Some(Arc::new(Semaphore::new(1)));
        }
        inner.rng = cfg.serialization.map(|ser| <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(ser.seed));
        inner.cfg = Some(cfg);
        let state: Shared = Arc::new(Mutex::new(inner));
        let app = Router::new()
            .route("/api/v1/oauth-clients/local", get(oauth_client))
            .route("/api/v1/users/token", axum::routing::post(token))
            .route("/api/v1/videos", get(list_videos))
            .route("/api/v1/videos/categories", get(categories))
            .route("/api/v1/videos/{id}", get(get_video).put(put_video))
            .route("/plugins/recon-domains/router/taxonomy", get(plugin_route))
            .route("/plugins/recon-domains/router/changes", get(plugin_changes))
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
        self.with(|i| {
            if i.videos.insert(uuid.to_string(), FakeVideo { category, remote }).is_none() {
                i.order.push(uuid.to_string());
            }
        });
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

    /// PUTs any account sent for `video` (applied or not).
    pub fn puts_for(&self, video: &VideoUuid) -> Vec<PutRecord> {
        self.with(|i| i.put_log.iter().filter(|r| r.video == video.as_str()).cloned().collect())
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
