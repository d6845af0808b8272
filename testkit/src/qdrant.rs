//! An in-process stand-in for the part of Qdrant's REST API the companion uses (collection info, scroll, count), with request counters and injectable faults.
//!
//! Semantics follow Qdrant's documentation and server source: points come in
//! ascending id order, `next_page_offset` is the id of the first point of the
//! next page, a `match` against a list payload matches when any element
//! matches, and errors are `{"status":{"error":…},"time":…}` except the auth
//! middleware's, which (like Qdrant's) answers 401 with a plain-text body.
//! What the stand-in does not implement (range, geo, text match, UUID ids)
//! answers 400 saying so, rather than silently matching nothing. Status
//! codes, error texts (strict mode's included) and the shape of answers were
//! checked against a real Qdrant 1.19 (`tests/tests/qdrant_real.rs` runs the
//! same scenarios on one).
//!
//! One file over 500 lines on purpose: one stand-in server (routing, handlers,
//! the filter language they evaluate) over one shared state, with its own tests.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

/// How the stand-in starts; everything can also be changed while it runs.
#[derive(Debug, Clone)]
pub struct StandInConfig {
    /// Created empty at start; the collection `add_point` and friends use.
    pub collection: String,
    pub api_key: Option<String>,
    /// Payload fields with a keyword index (listed in `payload_schema`).
    pub indexed_fields: Vec<String>,
    /// Strict mode's `max_query_limit`: a scroll asking for more gets 400.
    pub max_query_limit: Option<u64>,
}

/// The strict-mode settings the stand-in enforces (Qdrant's `strict_mode_config`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StrictMode {
    /// A scroll asking for a larger `limit` gets 400.
    pub max_query_limit: Option<u64>,
    /// A `match.any`/`except` list longer than this gets 400.
    pub condition_max_size: Option<u64>,
    /// `Some(false)`: a filter on a field without a payload index gets 400.
    pub unindexed_filtering_retrieve: Option<bool>,
}

impl StrictMode {
    fn enabled(&self) -> bool {
        *self != StrictMode::default()
    }
}

impl Default for StandInConfig {
    fn default() -> Self {
        StandInConfig { collection: "recon_knowledge_hybrid".to_string(), api_key: None, indexed_fields: Vec::new(), max_query_limit: None }
    }
}

/// Request counters, for asserting request budgets.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Every request received, including those answered by an injected fault.
    pub requests: u64,
    pub scroll_requests: u64,
    pub count_requests: u64,
    pub info_requests: u64,
    /// Points returned by successful scroll responses, summed.
    pub points_returned: u64,
    /// Wall time spent inside the handler (filtering, building and serializing
    /// answers), summed: how much of a client's wait the stand-in itself is.
    pub handler_seconds: f64,
}

/// A running stand-in; stops (closing every connection) when dropped.
pub struct QdrantStandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    default_collection: String,
    server: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<StateInner>,
    requests: AtomicU64,
    scrolls: AtomicU64,
    counts: AtomicU64,
    infos: AtomicU64,
    points_returned: AtomicU64,
    handler_nanos: AtomicU64,
}

#[derive(Default)]
struct StateInner {
    collections: BTreeMap<String, Collection>,
    api_key: Option<String>,
    strict: StrictMode,
    faults: Faults,
}

#[derive(Default)]
struct Collection {
    points: BTreeMap<u64, Map<String, Value>>,
    /// field -> Qdrant data type name.
    indexes: BTreeMap<String, String>,
    /// Keyword indexes: field -> value -> ids. A filtered scroll on an
    /// indexed field reads only its points, as Qdrant's payload index does
    /// (without one, every request scans every point).
    keywords: HashMap<String, HashMap<String, BTreeSet<u64>>>,
    /// The last write operation's number, as Qdrant numbers a shard's
    /// operations (shown by `/telemetry?details_level=3`).
    op_num: u64,
}

impl Collection {
    fn insert(&mut self, id: u64, payload: Map<String, Value>) {
        self.op_num += 1;
        if let Some(old) = self.points.remove(&id) {
            for (field, index) in &mut self.keywords {
                for k in keywords_of(&old, field) {
                    if let Some(ids) = index.get_mut(&k) {
                        ids.remove(&id);
                    }
                }
            }
        }
        for (field, index) in &mut self.keywords {
            for k in keywords_of(&payload, field) {
                index.entry(k).or_default().insert(id);
            }
        }
        self.points.insert(id, payload);
    }

    fn index(&mut self, field: &str, data_type: &str) {
        self.op_num += 1;
        self.indexes.insert(field.to_string(), data_type.to_string());
        if data_type == "keyword" {
            let mut index: HashMap<String, BTreeSet<u64>> = HashMap::new();
            for (id, p) in &self.points {
                for k in keywords_of(p, field) {
                    index.entry(k).or_default().insert(*id);
                }
            }
            self.keywords.insert(field.to_string(), index);
        }
    }

    /// Ids a filter can match at all, from a keyword index on one of its
    /// `must` conditions; `None` when no index applies (scan everything).
    fn candidates(&self, filter: Option<&Filter>) -> Option<BTreeSet<u64>> {
        filter?.must.iter().find_map(|c| {
            let Condition::Field { key, matcher } = c else { return None };
            let index = self.keywords.get(key)?;
            let wanted: Vec<&str> = match matcher {
                Matcher::Value(Value::String(v)) => vec![v.as_str()],
                Matcher::Any(list, _) if list.iter().all(Value::is_string) => list.iter().filter_map(Value::as_str).collect(),
                _ => return None,
            };
            Some(wanted.iter().filter_map(|w| index.get(*w)).flatten().copied().collect())
        })
    }
}

/// The string values of `field` in a payload (a string, or strings in a list).
fn keywords_of(p: &Map<String, Value>, field: &str) -> Vec<String> {
    match p.get(field) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

#[derive(Default)]
struct Faults {
    delay: Option<(Duration, u32)>,
    /// One entry per request to answer with an error status, in order.
    statuses: VecDeque<(u16, Option<u64>)>,
    /// (needle, status): any request whose body contains needle fails, until cleared.
    sticky: Vec<(String, u16)>,
    /// Absolute scroll request numbers whose connection is closed without a response.
    drop_scrolls: BTreeSet<u64>,
}

/// Lets a handler close the connection it is serving.
#[derive(Clone)]
struct Killer(Arc<Notify>);

impl QdrantStandIn {
    /// Binds 127.0.0.1:0 and serves until dropped.
    pub async fn start(config: StandInConfig) -> QdrantStandIn {
        let shared = Arc::new(Shared::default());
        {
            let mut st = lock(&shared);
            st.api_key = config.api_key.clone();
            let mut c = Collection::default();
            for f in &config.indexed_fields {
                c.index(f, "keyword");
            }
            st.strict.max_query_limit = config.max_query_limit;
            st.collections.insert(config.collection.clone(), c);
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("stand-in: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("stand-in: local addr");
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(serve(listener, app));
        QdrantStandIn { addr, shared, default_collection: config.collection, server }
    }

    /// Base URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn collection(&self) -> &str {
        &self.default_collection
    }

    /// Creates an empty collection (no-op when it exists).
    pub fn create_collection(&self, name: &str) {
        lock(&self.shared).collections.entry(name.to_string()).or_default();
    }

    pub fn delete_collection(&self, name: &str) {
        lock(&self.shared).collections.remove(name);
    }

    /// Adds or replaces a point of the default collection; `payload` must be an object.
    pub fn add_point(&self, id: u64, payload: Value) {
        let name = self.default_collection.clone();
        self.add_point_to(&name, id, payload);
    }

    pub fn add_point_to(&self, collection: &str, id: u64, payload: Value) {
        let Value::Object(map) = payload else {
            panic!("stand-in: payload of point {id} must be a JSON object");
        };
        lock(&self.shared).collections.entry(collection.to_string()).or_default().insert(id, map);
    }

    /// Loads `{"id": u64, "payload": {...}}` lines into the default collection;
    /// returns the number of points read.
    pub fn load_jsonl(&self, path: impl AsRef<Path>) -> std::io::Result<usize> {
        let text = std::fs::read_to_string(path)?;
        let bad = |n: usize, msg: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("line {n}: {msg}"));
        let mut n = 0;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line).map_err(|e| bad(i + 1, &e.to_string()))?;
            let id = v.get("id").and_then(Value::as_u64).ok_or_else(|| bad(i + 1, "id"))?;
            let payload = v.get("payload").cloned().unwrap_or_else(|| json!({}));
            if !payload.is_object() {
                return Err(bad(i + 1, "payload is not an object"));
            }
            self.add_point(id, payload);
            n += 1;
        }
        Ok(n)
    }

    /// Strict mode's `max_query_limit` (`None`: off).
    pub fn set_max_query_limit(&self, cap: Option<u64>) {
        lock(&self.shared).strict.max_query_limit = cap;
    }

    /// Every strict-mode setting at once (`StrictMode::default()`: off).
    pub fn set_strict_mode(&self, strict: StrictMode) {
        lock(&self.shared).strict = strict;
    }

    pub fn set_api_key(&self, key: Option<&str>) {
        lock(&self.shared).api_key = key.map(str::to_string);
    }

    /// Declares a payload index (`data_type` e.g. "keyword") on the default collection.
    pub fn set_payload_index(&self, field: &str, data_type: &str) {
        let name = self.default_collection.clone();
        lock(&self.shared).collections.entry(name).or_default().index(field, data_type);
    }

    /// Delays each of the next `requests` requests by `delay` before answering.
    pub fn delay_next(&self, delay: Duration, requests: u32) {
        lock(&self.shared).faults.delay = Some((delay, requests));
    }

    /// Answers each of the next `requests` requests with `status` (e.g. 500, 503).
    pub fn fail_next(&self, status: u16, requests: u32) {
        let f = &mut lock(&self.shared).faults;
        f.statuses.extend((0..requests).map(|_| (status, None)));
    }

    /// Answers each of the next `requests` requests with 429, with `Retry-After` when given.
    pub fn rate_limit_next(&self, retry_after_secs: Option<u64>, requests: u32) {
        let f = &mut lock(&self.shared).faults;
        f.statuses.extend((0..requests).map(|_| (429, retry_after_secs)));
    }

    /// Answers every request whose raw body contains `needle` with `status`, until cleared.
    pub fn fail_matching(&self, needle: &str, status: u16) {
        lock(&self.shared).faults.sticky.push((needle.to_string(), status));
    }

    /// Closes the connection, without any response, on the `nth` scroll request
    /// from now (1 = the next one).
    pub fn drop_scroll(&self, nth: u64) {
        let at = self.shared.scrolls.load(Ordering::SeqCst) + nth;
        lock(&self.shared).faults.drop_scrolls.insert(at);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared).faults = Faults::default();
    }

    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        Stats {
            requests: s.requests.load(Ordering::SeqCst),
            scroll_requests: s.scrolls.load(Ordering::SeqCst),
            count_requests: s.counts.load(Ordering::SeqCst),
            info_requests: s.infos.load(Ordering::SeqCst),
            points_returned: s.points_returned.load(Ordering::SeqCst),
            handler_seconds: s.handler_nanos.load(Ordering::SeqCst) as f64 / 1e9,
        }
    }

    pub fn reset_stats(&self) {
        let s = &self.shared;
        for c in [&s.requests, &s.counts, &s.infos, &s.points_returned, &s.handler_nanos] {
            c.store(0, Ordering::SeqCst);
        }
        // Scroll numbering anchors pending drop faults: keep it relative.
        let done = s.scrolls.swap(0, Ordering::SeqCst);
        let f = &mut lock(s).faults;
        f.drop_scrolls = f.drop_scrolls.iter().filter(|&&n| n > done).map(|n| n - done).collect();
    }
}

impl Drop for QdrantStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, StateInner> {
    // A panicking test thread must not poison the stand-in for the others.
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accept loop over hyper directly (not `axum::serve`) so a handler can close
/// its own connection: that is how a connection dropped mid-scroll looks to a
/// client (a transport error, never an HTTP status).
async fn serve(listener: TcpListener, app: Router) {
    // Owning the connection tasks here means aborting the server closes them all.
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let Ok((stream, _)) = accepted else { continue };
        let app = app.clone();
        conns.spawn(async move {
            let kill = Arc::new(Notify::new());
            let killer = Killer(kill.clone());
            let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(killer.clone());
                let app = app.clone();
                async move { app.oneshot(req.map(Body::new)).await }
            });
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
            }
        });
    }
}

enum Endpoint {
    Root,
    Info(String),
    Scroll(String),
    Count(String),
    Telemetry,
    Unknown,
}

fn route(method: &Method, uri: &Uri) -> Endpoint {
    let parts: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    match (method, parts.as_slice()) {
        (&Method::GET, []) => Endpoint::Root,
        (&Method::GET, ["collections", name]) => Endpoint::Info(name.to_string()),
        (&Method::GET, ["telemetry"]) => Endpoint::Telemetry,
        (&Method::POST, ["collections", name, "points", "scroll"]) => Endpoint::Scroll(name.to_string()),
        (&Method::POST, ["collections", name, "points", "count"]) => Endpoint::Count(name.to_string()),
        _ => Endpoint::Unknown,
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Extension(killer): Extension<Killer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let endpoint = route(&method, &uri);
    let scroll_no = match &endpoint {
        Endpoint::Scroll(_) => Some(shared.scrolls.fetch_add(1, Ordering::SeqCst) + 1),
        Endpoint::Count(_) => {
            shared.counts.fetch_add(1, Ordering::SeqCst);
            None
        }
        Endpoint::Info(_) => {
            shared.infos.fetch_add(1, Ordering::SeqCst);
            None
        }
        _ => None,
    };

    let delay = {
        let f = &mut lock(&shared).faults;
        match &mut f.delay {
            Some((d, n)) if *n > 0 => {
                *n -= 1;
                Some(*d)
            }
            _ => None,
        }
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }

    let drop_now = scroll_no.is_some_and(|n| lock(&shared).faults.drop_scrolls.remove(&n));
    if drop_now {
        killer.0.notify_one();
        // The connection task drops this future together with the socket.
        return std::future::pending().await;
    }

    let injected = {
        let st = &mut lock(&shared);
        let body_text = String::from_utf8_lossy(&body);
        st.faults
            .statuses
            .pop_front()
            .or_else(|| st.faults.sticky.iter().find(|(needle, _)| body_text.contains(needle.as_str())).map(|&(_, status)| (status, None)))
    };
    if let Some((status, retry_after)) = injected {
        let msg = match status {
            429 => "Too many requests: injected by the stand-in",
            503 => "Service unavailable: injected by the stand-in",
            _ => "Service internal error: injected by the stand-in",
        };
        let mut resp = error(status, msg, started);
        if let Some(secs) = retry_after {
            resp.headers_mut().insert("retry-after", HeaderValue::from(secs));
        }
        return resp;
    }

    let api_key = lock(&shared).api_key.clone();
    if let Some(expected) = api_key {
        let given = headers
            .get("api-key")
            .and_then(|v| v.to_str().ok())
            .or_else(|| headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")));
        // Qdrant's auth middleware answers 401 with a plain-text body, not the JSON envelope.
        let refusal = match given {
            None => Some("Must provide an API key or an Authorization bearer token"),
            Some(k) if k != expected => Some("Invalid API key or JWT"),
            Some(_) => None,
        };
        if let Some(msg) = refusal {
            return (StatusCode::UNAUTHORIZED, msg).into_response();
        }
    }

    let work = Instant::now();
    let result = match endpoint {
        Endpoint::Root => return (StatusCode::OK, axum::Json(json!({"title": "qdrant - vector search engine", "version": "stand-in"}))).into_response(),
        Endpoint::Unknown => return StatusCode::NOT_FOUND.into_response(),
        Endpoint::Info(name) => collection_info(&shared, &name),
        Endpoint::Telemetry => Ok(telemetry(&shared, &uri).into()),
        Endpoint::Scroll(name) => check_timeout(&uri).and_then(|()| parse_body(&body)).and_then(|b| scroll(&shared, &name, &b)),
        Endpoint::Count(name) => check_timeout(&uri).and_then(|()| parse_body(&body)).and_then(|b| count(&shared, &name, &b)),
    };
    let resp = match result {
        Ok(v) => ok(v, started),
        Err((status, msg)) => error(status, &msg, started),
    };
    // `ok` serializes the body: the time covers the whole answer.
    shared.handler_nanos.fetch_add(u64::try_from(work.elapsed().as_nanos()).unwrap_or(u64::MAX), Ordering::SeqCst);
    resp
}

type Answer = Result<Answered, (u16, String)>;

/// A `result`: a value, or JSON text already serialized (large scroll pages).
enum Answered {
    Value(Value),
    Raw(Vec<u8>),
}

impl From<Value> for Answered {
    fn from(v: Value) -> Self {
        Answered::Value(v)
    }
}

fn ok(result: Answered, started: Instant) -> Response {
    let result = match result {
        Answered::Raw(text) => text,
        Answered::Value(v) => serde_json::to_vec(&v).unwrap_or_else(|_| b"null".to_vec()),
    };
    // The envelope around the result, as Qdrant writes it.
    let mut body = Vec::with_capacity(result.len() + 48);
    body.extend_from_slice(b"{\"result\":");
    body.extend_from_slice(&result);
    body.extend_from_slice(format!(",\"status\":\"ok\",\"time\":{}}}", started.elapsed().as_secs_f64()).as_bytes());
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

fn error(status: u16, msg: &str, started: Instant) -> Response {
    let body = json!({"status": {"error": msg}, "time": started.elapsed().as_secs_f64()});
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(body)).into_response()
}

fn format_error(msg: impl std::fmt::Display) -> (u16, String) {
    (400, format!("Format error in JSON body: {msg}"))
}

fn not_found(name: &str) -> (u16, String) {
    (404, format!("Not found: Collection `{name}` doesn't exist!"))
}

fn check_timeout(uri: &Uri) -> Result<(), (u16, String)> {
    for pair in uri.query().unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "timeout" && v.parse::<u64>().is_err() {
            return Err((400, "Deserialize error in query parameters: invalid digit found in string".to_string()));
        }
    }
    Ok(())
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, (u16, String)> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format_error(format!("invalid type: {other}, expected a request object"))),
        Err(e) => Err(format_error(e)),
    }
}

/// The collections part of Qdrant's `/telemetry`: one local shard each, its
/// update queue (last operation number) from `details_level` 3 on.
fn telemetry(shared: &Shared, uri: &Uri) -> Value {
    let level: u64 = uri.query().unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("details_level=")).and_then(|v| v.parse().ok()).unwrap_or(0);
    let st = lock(shared);
    let collections: Vec<Value> = st
        .collections
        .iter()
        .map(|(name, c)| {
            let mut local = json!({"variant_name": "local shard", "status": "green", "num_points": c.points.len()});
            if level >= 3 {
                local["update_queue"] = json!({"length": 0, "op_num": c.op_num});
            }
            json!({"id": name, "init_time_ms": 1, "shards": [{"id": 0, "key": null, "local": local, "remote": [], "replicate_states": {}}]})
        })
        .collect();
    json!({"id": "stand-in", "collections": {"number_of_collections": collections.len(), "collections": collections}})
}

fn collection_info(shared: &Shared, name: &str) -> Answer {
    let st = lock(shared);
    let c = st.collections.get(name).ok_or_else(|| not_found(name))?;
    let mut schema = Map::new();
    for (field, data_type) in &c.indexes {
        let points = c.points.values().filter(|p| lookup(p, field).is_some_and(|v| !v.is_null())).count();
        schema.insert(field.clone(), json!({"data_type": data_type, "params": {"type": data_type}, "points": points}));
    }
    let mut info = json!({
        "status": "green",
        "optimizer_status": "ok",
        "indexed_vectors_count": 0,
        "points_count": c.points.len(),
        "segments_count": 1,
        "config": {
            "params": {
                "vectors": {"": {"size": 1024, "distance": "Cosine"}},
                "shard_number": 1,
                "replication_factor": 1,
                "write_consistency_factor": 1,
                "on_disk_payload": true
            },
            "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000},
            "optimizer_config": {"indexing_threshold": 20000},
            "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
            "quantization_config": null
        },
        "payload_schema": schema
    });
    // A collection that never had strict mode lists no `strict_mode_config`.
    if st.strict.enabled() {
        info["config"]["strict_mode_config"] = strict_config(&st.strict);
    }
    Ok(Answered::Value(info))
}

/// `config.strict_mode_config` as Qdrant 1.19 lists it (unset fields absent).
fn strict_config(s: &StrictMode) -> Value {
    let mut m = Map::new();
    m.insert("enabled".into(), json!(s.enabled()));
    if let Some(v) = s.max_query_limit {
        m.insert("max_query_limit".into(), json!(v));
    }
    if let Some(v) = s.unindexed_filtering_retrieve {
        m.insert("unindexed_filtering_retrieve".into(), json!(v));
    }
    if let Some(v) = s.condition_max_size {
        m.insert("condition_max_size".into(), json!(v));
    }
    Value::Object(m)
}

fn count(shared: &Shared, name: &str, body: &Map<String, Value>) -> Answer {
    let filter = parse_optional_filter(body.get("filter"))?;
    if let Some(e) = body.get("exact") {
        if !e.is_boolean() && !e.is_null() {
            return Err(format_error("invalid type for `exact`, expected a boolean"));
        }
    }
    let st = lock(shared);
    let c = st.collections.get(name).ok_or_else(|| not_found(name))?;
    check_strict(&st.strict, c, filter.as_ref())?;
    let matches = |(id, p): (&u64, &Map<String, Value>)| filter.as_ref().is_none_or(|f| f.matches(*id, p));
    let n = match c.candidates(filter.as_ref()) {
        Some(ids) => ids.iter().filter_map(|id| c.points.get_key_value(id)).filter(|kv| matches(*kv)).count(),
        None => c.points.iter().filter(|kv| matches(*kv)).count(),
    };
    Ok(json!({"count": n}).into())
}

fn scroll(shared: &Shared, name: &str, body: &Map<String, Value>) -> Answer {
    let filter = parse_optional_filter(body.get("filter"))?;
    let limit = match body.get("limit") {
        None | Some(Value::Null) => 10,
        Some(v) => v.as_u64().ok_or_else(|| format_error(format!("invalid value: {v}, expected usize")))?,
    };
    if limit == 0 {
        return Err((422, "Validation error in JSON body: [scroll_request.limit: value 0 invalid, must be 1 or larger]".to_string()));
    }
    if let Some(cap) = lock(shared).strict.max_query_limit.filter(|&cap| limit > cap) {
        return Err((400, format!("Bad request: Limit exceeded {limit} > {cap} for \"limit\". Help: Reduce the \"limit\" parameter to or below {cap}.")));
    }
    let offset = match body.get("offset") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_u64().ok_or_else(|| (400, format!("stand-in supports unsigned integer point ids only, got offset {v}")))?,
    };
    let selection = PayloadSelection::parse(body.get("with_payload"))?;
    let with_vector = match body.get("with_vector").or_else(|| body.get("with_vectors")) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) | Some(Value::Array(_)) => true,
        Some(v) => return Err(format_error(format!("invalid with_vector {v}"))),
    };

    let st = lock(shared);
    let c = st.collections.get(name).ok_or_else(|| not_found(name))?;
    check_strict(&st.strict, c, filter.as_ref())?;
    // Qdrant reads limit + 1 matching points: the extra one is the next page's offset.
    let candidates = c.candidates(filter.as_ref());
    let scan: Box<dyn Iterator<Item = (&u64, &Map<String, Value>)>> = match &candidates {
        Some(ids) => Box::new(ids.range(offset..).filter_map(|id| c.points.get_key_value(id))),
        None => Box::new(c.points.range(offset..)),
    };
    let mut hits =
        scan.filter(|(id, p)| filter.as_ref().is_none_or(|f| f.matches(**id, p))).take(usize::try_from(limit).unwrap_or(usize::MAX).saturating_add(1));
    // Serialized straight from the stored maps: building a `Value` per point
    // first made the stand-in most of a large scroll's time.
    let mut points: Vec<PointView<'_>> = Vec::new();
    let mut next = Value::Null;
    for (id, p) in hits.by_ref() {
        if points.len() as u64 == limit {
            next = json!(id);
            break;
        }
        points.push(PointView { id: *id, payload: PayloadView { map: p, selection: &selection }, vector: with_vector.then(Map::new) });
    }
    shared.points_returned.fetch_add(points.len() as u64, Ordering::SeqCst);
    let text = serde_json::to_vec(&ScrollView { points, next_page_offset: next }).map_err(|e| (500, format!("Service internal error: {e}")))?;
    Ok(Answered::Raw(text))
}

/// Strict mode's refusals of a filter, in Qdrant 1.19's words.
fn check_strict(strict: &StrictMode, c: &Collection, filter: Option<&Filter>) -> Result<(), (u16, String)> {
    let Some(f) = filter else { return Ok(()) };
    let mut conditions = Vec::new();
    f.conditions(&mut conditions);
    for cond in conditions {
        let Condition::Field { key, matcher } = cond else { continue };
        if strict.unindexed_filtering_retrieve == Some(false) && !c.indexes.contains_key(key) {
            return Err((
                400,
                format!(
                    "Bad request: Index required but not found for \"{key}\" of one of the following types: [keyword]. Help: Create an index for this key or use a different filter."
                ),
            ));
        }
        let size = match matcher {
            Matcher::Any(list, _) | Matcher::Except(list) => list.len() as u64,
            Matcher::Value(_) => 1,
        };
        if let Some(cap) = strict.condition_max_size.filter(|&cap| size > cap) {
            return Err((400, format!("Bad request: Condition size limit reached ({size} > {cap}). Help: Reduce the size of your condition.")));
        }
    }
    Ok(())
}

/// A scroll result as Qdrant writes it.
#[derive(serde::Serialize)]
struct ScrollView<'a> {
    points: Vec<PointView<'a>>,
    next_page_offset: Value,
}

#[derive(serde::Serialize)]
struct PointView<'a> {
    id: u64,
    /// Absent with `with_payload: false`, as Qdrant writes it.
    #[serde(skip_serializing_if = "PayloadView::is_none")]
    payload: PayloadView<'a>,
    /// Absent, or `{}` when vectors were asked for (the stand-in stores none).
    #[serde(skip_serializing_if = "Option::is_none")]
    vector: Option<Map<String, Value>>,
}

impl PayloadView<'_> {
    fn is_none(&self) -> bool {
        matches!(self.selection, PayloadSelection::None)
    }
}

/// A point's payload as `with_payload` selects it, serialized without copying.
struct PayloadView<'a> {
    map: &'a Map<String, Value>,
    selection: &'a PayloadSelection,
}

impl serde::Serialize for PayloadView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let keep = |k: &String| match self.selection {
            PayloadSelection::None => false,
            PayloadSelection::All => true,
            PayloadSelection::Include(keys) => keys.contains(k),
            PayloadSelection::Exclude(keys) => !keys.contains(k),
        };
        if matches!(self.selection, PayloadSelection::None) {
            return s.serialize_none();
        }
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.map.iter().filter(|(k, _)| keep(k)) {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

enum PayloadSelection {
    None,
    All,
    Include(Vec<String>),
    Exclude(Vec<String>),
}

impl PayloadSelection {
    fn parse(v: Option<&Value>) -> Result<Self, (u16, String)> {
        let fields = |v: &Value| -> Result<Vec<String>, (u16, String)> {
            match v {
                Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(bad_with_payload)).collect(),
                Value::String(s) => Ok(vec![s.clone()]),
                _ => Err(bad_with_payload()),
            }
        };
        match v {
            None | Some(Value::Null) | Some(Value::Bool(true)) => Ok(PayloadSelection::All),
            Some(Value::Bool(false)) => Ok(PayloadSelection::None),
            Some(a @ Value::Array(_)) => Ok(PayloadSelection::Include(fields(a)?)),
            Some(Value::Object(o)) if o.len() == 1 => match o.iter().next() {
                Some((k, f)) if k == "include" => Ok(PayloadSelection::Include(fields(f)?)),
                Some((k, f)) if k == "exclude" => Ok(PayloadSelection::Exclude(fields(f)?)),
                _ => Err(bad_with_payload()),
            },
            _ => Err(bad_with_payload()),
        }
    }
}

fn bad_with_payload() -> (u16, String) {
    format_error("data did not match any variant of untagged enum WithPayloadInterface")
}

#[derive(Debug)]
struct Filter {
    must: Vec<Condition>,
    should: Vec<Condition>,
    must_not: Vec<Condition>,
    min_should: Option<(Vec<Condition>, usize)>,
}

#[derive(Debug)]
enum Condition {
    Field { key: String, matcher: Matcher },
    HasId(Vec<u64>),
    IsEmpty(String),
    IsNull(String),
    Nested(Filter),
}

#[derive(Debug)]
enum Matcher {
    Value(Value),
    /// Keywords in a set: a `match.any` over hundreds of hashes is the common case.
    Any(Vec<Value>, HashSet<String>),
    Except(Vec<Value>),
}

fn in_list(e: &Value, list: &[Value], keywords: Option<&HashSet<String>>) -> bool {
    match (e, keywords) {
        (Value::String(s), Some(k)) => k.contains(s),
        _ => list.iter().any(|w| scalar_eq(e, w)),
    }
}

const EXPECTED_CONDITION: &str = "Expected some form of condition, which can be a field condition \
(like {\"key\": ..., \"match\": ... }), or some other mentioned in the documentation: \
https://qdrant.tech/documentation/concepts/filtering/#filtering-conditions";

fn parse_optional_filter(v: Option<&Value>) -> Result<Option<Filter>, (u16, String)> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse_filter(v).map(Some),
    }
}

fn parse_filter(v: &Value) -> Result<Filter, (u16, String)> {
    let Value::Object(o) = v else {
        return Err(format_error(format!("invalid type: {v}, expected struct Filter")));
    };
    let list = |k: &str| -> Result<Vec<Condition>, (u16, String)> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            // Qdrant accepts one condition or a list of them.
            Some(Value::Array(a)) => a.iter().map(parse_condition).collect(),
            Some(c @ Value::Object(_)) => Ok(vec![parse_condition(c)?]),
            Some(other) => Err(format_error(format!("invalid `{k}`: {other}"))),
        }
    };
    let min_should = match o.get("min_should") {
        None | Some(Value::Null) => None,
        Some(m) => {
            let conds = m
                .get("conditions")
                .and_then(Value::as_array)
                .ok_or_else(|| format_error("min_should needs `conditions`"))?
                .iter()
                .map(parse_condition)
                .collect::<Result<Vec<_>, _>>()?;
            let n = m.get("min_count").and_then(Value::as_u64).ok_or_else(|| format_error("min_should needs `min_count`"))?;
            Some((conds, usize::try_from(n).unwrap_or(usize::MAX)))
        }
    };
    for k in o.keys() {
        if !matches!(k.as_str(), "must" | "should" | "must_not" | "min_should") {
            return Err(format_error(format!("unknown field `{k}`, expected one of `should`, `min_should`, `must`, `must_not`")));
        }
    }
    Ok(Filter { must: list("must")?, should: list("should")?, must_not: list("must_not")?, min_should })
}

fn parse_condition(v: &Value) -> Result<Condition, (u16, String)> {
    let Value::Object(o) = v else {
        return Err(format_error(EXPECTED_CONDITION));
    };
    if let Some(key) = o.get("key") {
        let key = key.as_str().ok_or_else(|| format_error(EXPECTED_CONDITION))?.to_string();
        let Some(m) = o.get("match") else {
            return Err((400, format!("stand-in implements only `match` field conditions (key `{key}`)")));
        };
        let Value::Object(m) = m else {
            return Err(format_error(EXPECTED_CONDITION));
        };
        let matcher = if let Some(v) = m.get("value") {
            if !(v.is_string() || v.is_i64() || v.is_u64() || v.is_boolean()) {
                return Err(format_error(EXPECTED_CONDITION));
            }
            Matcher::Value(v.clone())
        } else if let Some(a) = m.get("any") {
            let list = keyword_or_int_list(a)?;
            let keywords = list.iter().filter_map(Value::as_str).map(str::to_string).collect();
            Matcher::Any(list, keywords)
        } else if let Some(a) = m.get("except") {
            Matcher::Except(keyword_or_int_list(a)?)
        } else {
            return Err((400, format!("stand-in implements match value/any/except only (key `{key}`)")));
        };
        return Ok(Condition::Field { key, matcher });
    }
    if let Some(ids) = o.get("has_id") {
        let ids = ids
            .as_array()
            .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<_>>>())
            .ok_or_else(|| format_error("has_id takes a list of unsigned integer ids"))?;
        return Ok(Condition::HasId(ids));
    }
    for (name, make) in [("is_empty", Condition::IsEmpty as fn(String) -> Condition), ("is_null", Condition::IsNull)] {
        if let Some(inner) = o.get(name) {
            let key = inner.get("key").and_then(Value::as_str).ok_or_else(|| format_error(EXPECTED_CONDITION))?;
            return Ok(make(key.to_string()));
        }
    }
    if o.keys().any(|k| matches!(k.as_str(), "must" | "should" | "must_not" | "min_should")) {
        return Ok(Condition::Nested(parse_filter(v)?));
    }
    Err(format_error(EXPECTED_CONDITION))
}

fn keyword_or_int_list(a: &Value) -> Result<Vec<Value>, (u16, String)> {
    let Value::Array(a) = a else {
        return Err(format_error(EXPECTED_CONDITION));
    };
    let all_str = a.iter().all(Value::is_string);
    let all_int = a.iter().all(|v| v.is_i64() || v.is_u64());
    if !(all_str || all_int) {
        return Err(format_error(EXPECTED_CONDITION));
    }
    Ok(a.clone())
}

/// A dotted path into nested objects (`a.b`); arrays are not traversed.
fn lookup<'a>(p: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    let mut parts = key.split('.');
    let mut cur = p.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// Scalars as Qdrant compares them: keyword with keyword, integer with integer.
fn scalar_eq(stored: &Value, wanted: &Value) -> bool {
    match (stored, wanted) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => a.as_u64().is_some() && a.as_u64() == b.as_u64(),
        },
        _ => false,
    }
}

/// The stored value's elements: a list payload matches when any element does.
/// A slice, not a `Vec`: this runs for every point of every filtered scroll.
fn elements(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a.as_slice(),
        Value::Null => &[],
        other => std::slice::from_ref(other),
    }
}

impl Filter {
    /// Every condition, nested filters' included.
    fn conditions<'a>(&'a self, out: &mut Vec<&'a Condition>) {
        let min = self.min_should.iter().flat_map(|(cs, _)| cs.iter());
        for c in self.must.iter().chain(&self.should).chain(&self.must_not).chain(min) {
            match c {
                Condition::Nested(f) => f.conditions(out),
                other => out.push(other),
            }
        }
    }

    fn matches(&self, id: u64, p: &Map<String, Value>) -> bool {
        self.must.iter().all(|c| c.matches(id, p))
            && (self.should.is_empty() || self.should.iter().any(|c| c.matches(id, p)))
            && !self.must_not.iter().any(|c| c.matches(id, p))
            && self.min_should.as_ref().is_none_or(|(cs, n)| cs.iter().filter(|c| c.matches(id, p)).count() >= *n)
    }
}

impl Condition {
    fn matches(&self, id: u64, p: &Map<String, Value>) -> bool {
        match self {
            Condition::Field { key, matcher } => {
                let Some(stored) = lookup(p, key) else {
                    return false;
                };
                let els = elements(stored);
                match matcher {
                    Matcher::Value(w) => els.iter().any(|e| scalar_eq(e, w)),
                    Matcher::Any(ws, keywords) => els.iter().any(|e| in_list(e, ws, Some(keywords))),
                    Matcher::Except(ws) => els.iter().any(|e| !in_list(e, ws, None)),
                }
            }
            Condition::HasId(ids) => ids.contains(&id),
            Condition::IsEmpty(key) => match lookup(p, key) {
                None | Some(Value::Null) => true,
                Some(Value::Array(a)) => a.is_empty(),
                Some(_) => false,
            },
            Condition::IsNull(key) => matches!(lookup(p, key), Some(Value::Null)),
            Condition::Nested(f) => f.matches(id, p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(s: &QdrantStandIn, path: &str, body: Value) -> (u16, Value) {
        let r = reqwest::Client::new().post(format!("{}/collections/{}/points/{path}", s.url(), s.collection())).json(&body).send().await.expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.expect("json body"))
    }

    async fn scroll_ids(s: &QdrantStandIn, body: Value) -> (Vec<u64>, Value) {
        let (status, v) = post(s, "scroll", body).await;
        assert_eq!(status, 200, "{v}");
        let ids = v["result"]["points"].as_array().expect("points").iter().map(|p| p["id"].as_u64().expect("id")).collect();
        (ids, v["result"]["next_page_offset"].clone())
    }

    async fn fixture() -> QdrantStandIn {
        let s = QdrantStandIn::start(StandInConfig::default()).await;
        // Inserted out of order: the stand-in must still answer in id order.
        s.add_point(30, json!({"doc_hash": "b", "domain": "Medical", "source_type": "transcript"}));
        s.add_point(10, json!({"doc_hash": "a", "domain": "Security", "source_type": "transcript"}));
        s.add_point(20, json!({"doc_hash": "a", "domain": ["Medical", "Logistics"]}));
        s.add_point(40, json!({"doc_hash": "c", "domain": null}));
        s.add_point(50, json!({"other": 1}));
        s
    }

    #[tokio::test]
    async fn scroll_is_in_id_order_with_next_page_offset() {
        let s = fixture().await;
        let (ids, next) = scroll_ids(&s, json!({"limit": 2})).await;
        assert_eq!((ids, next), (vec![10, 20], json!(30)));
        let (ids, next) = scroll_ids(&s, json!({"limit": 2, "offset": 30})).await;
        assert_eq!((ids, next), (vec![30, 40], json!(50)));
        let (ids, next) = scroll_ids(&s, json!({"limit": 2, "offset": 50})).await;
        assert_eq!((ids, next), (vec![50], Value::Null));
        // Exactly `limit` left: no next page.
        let (ids, next) = scroll_ids(&s, json!({"limit": 3, "offset": 30})).await;
        assert_eq!((ids, next), (vec![30, 40, 50], Value::Null));
        // Offset between ids starts at the next id; default limit is 10.
        let (ids, _) = scroll_ids(&s, json!({"offset": 25})).await;
        assert_eq!(ids, vec![30, 40, 50]);
    }

    #[tokio::test]
    async fn filter_must_should_must_not() {
        let s = fixture().await;
        let m = |k: &str, v: Value| json!({"key": k, "match": {"value": v}});
        let (ids, _) = scroll_ids(&s, json!({"filter": {"must": [m("doc_hash", json!("a"))]}})).await;
        assert_eq!(ids, vec![10, 20]);
        // A keyword value matches a list payload when any element equals it.
        let (ids, _) = scroll_ids(&s, json!({"filter": {"must": [m("domain", json!("Medical"))]}})).await;
        assert_eq!(ids, vec![20, 30]);
        let (ids, _) = scroll_ids(&s, json!({"filter": {"should": [m("doc_hash", json!("b")), m("domain", json!("Security"))]}})).await;
        assert_eq!(ids, vec![10, 30]);
        // must_not keeps points lacking the field.
        let (ids, _) = scroll_ids(&s, json!({"filter": {"must_not": [m("source_type", json!("transcript"))]}})).await;
        assert_eq!(ids, vec![20, 40, 50]);
        let (ids, _) = scroll_ids(&s, json!({"filter": {"must": [{"key": "doc_hash", "match": {"any": ["a", "c", "zz"]}}]}})).await;
        assert_eq!(ids, vec![10, 20, 40]);
        let (ids, _) = scroll_ids(&s, json!({"filter": {"must": [{"key": "doc_hash", "match": {"any": ["a"]}}], "must_not": [{"has_id": [10]}]}})).await;
        assert_eq!(ids, vec![20]);
        let (ids, _) = scroll_ids(&s, json!({"filter": {"must": [{"is_empty": {"key": "domain"}}]}})).await;
        assert_eq!(ids, vec![40, 50]);
        // Keyword and integer never match each other.
        let (ids, _) = scroll_ids(&s, json!({"filter": {"must": [m("other", json!("1"))]}})).await;
        assert!(ids.is_empty());
        let (ids, _) = scroll_ids(&s, json!({"filter": {"must": {"should": [m("other", json!(1)), m("doc_hash", json!("c"))]}}})).await;
        assert_eq!(ids, vec![40, 50]);
        let (status, v) = post(&s, "count", json!({"filter": {"must": [m("doc_hash", json!("a"))]}, "exact": true})).await;
        assert_eq!((status, v["result"]["count"].clone()), (200, json!(2)));
    }

    #[tokio::test]
    async fn with_payload_forms() {
        let s = fixture().await;
        let first = |v: Value| v["result"]["points"][0]["payload"].clone();
        let (_, v) = post(&s, "scroll", json!({"limit": 1})).await;
        assert_eq!(first(v), json!({"doc_hash": "a", "domain": "Security", "source_type": "transcript"}));
        let (_, v) = post(&s, "scroll", json!({"limit": 1, "with_payload": false})).await;
        assert_eq!(first(v.clone()), Value::Null);
        // Qdrant 1.19 writes neither key it was not asked for.
        assert_eq!(v["result"]["points"][0].as_object().map(|o| o.len()), Some(1), "{v}");
        let (_, v) = post(&s, "scroll", json!({"limit": 1, "with_payload": ["doc_hash", "domain", "absent"]})).await;
        assert_eq!(first(v), json!({"doc_hash": "a", "domain": "Security"}));
        let (_, v) = post(&s, "scroll", json!({"limit": 1, "with_payload": {"include": ["domain"]}})).await;
        assert_eq!(first(v), json!({"domain": "Security"}));
        let (_, v) = post(&s, "scroll", json!({"limit": 1, "with_payload": {"exclude": ["domain"]}})).await;
        assert_eq!(first(v), json!({"doc_hash": "a", "source_type": "transcript"}));
        let (_, v) = post(&s, "scroll", json!({"limit": 1, "with_vectors": false})).await;
        assert_eq!(v["result"]["points"][0]["vector"], Value::Null);
        let (status, v) = post(&s, "scroll", json!({"with_payload": 3})).await;
        assert_eq!(status, 400, "{v}");
    }

    #[tokio::test]
    async fn errors_look_like_qdrant() {
        let s = fixture().await;
        let c = reqwest::Client::new();
        let r = c.get(format!("{}/collections/nope", s.url())).send().await.expect("send");
        assert_eq!(r.status().as_u16(), 404);
        let v: Value = r.json().await.expect("json");
        assert_eq!(v["status"]["error"], "Not found: Collection `nope` doesn't exist!");
        let (status, v) = post(&s, "scroll", json!({"filter": {"must": [{"bogus": 1}]}})).await;
        assert_eq!(status, 400);
        assert!(v["status"]["error"].as_str().is_some_and(|e| e.starts_with("Format error in JSON body")));
        let (status, _) = post(&s, "scroll", json!({"limit": 0})).await;
        assert_eq!(status, 422);
        s.set_max_query_limit(Some(4));
        let (status, v) = post(&s, "scroll", json!({"limit": 5})).await;
        let want = "Bad request: Limit exceeded 5 > 4 for \"limit\". Help: Reduce the \"limit\" parameter to or below 4.";
        assert_eq!((status, v["status"]["error"].as_str()), (400, Some(want)));
        assert_eq!(post(&s, "scroll", json!({"limit": 4})).await.0, 200);
        s.set_max_query_limit(None);
        s.set_strict_mode(StrictMode { condition_max_size: Some(2), unindexed_filtering_retrieve: Some(false), ..StrictMode::default() });
        let any = json!({"filter": {"must": [{"key": "doc_hash", "match": {"any": ["a", "b", "c"]}}]}});
        let (status, v) = post(&s, "scroll", any.clone()).await;
        let index = "Bad request: Index required but not found for \"doc_hash\" of one of the following types: [keyword]. Help: Create an index for this key or use a different filter.";
        assert_eq!((status, v["status"]["error"].as_str()), (400, Some(index)));
        s.set_payload_index("doc_hash", "keyword");
        let (status, v) = post(&s, "count", any).await;
        let size = "Bad request: Condition size limit reached (3 > 2). Help: Reduce the size of your condition.";
        assert_eq!((status, v["status"]["error"].as_str()), (400, Some(size)));
        let info: Value = c.get(format!("{}/collections/{}", s.url(), s.collection())).send().await.expect("send").json().await.expect("json");
        assert_eq!(info["result"]["config"]["strict_mode_config"], json!({"enabled": true, "unindexed_filtering_retrieve": false, "condition_max_size": 2}));
        s.set_strict_mode(StrictMode::default());
        let r = c.post(format!("{}/collections/{}/points/scroll", s.url(), s.collection())).body("{not json").send().await.expect("send");
        assert_eq!(r.status().as_u16(), 400);

        s.set_api_key(Some("k"));
        let r = c.get(format!("{}/collections/{}", s.url(), s.collection())).send().await.expect("send");
        assert_eq!(r.status().as_u16(), 401);
        let r = c.get(format!("{}/collections/{}", s.url(), s.collection())).header("api-key", "wrong").send().await.expect("send");
        assert_eq!(r.status().as_u16(), 401);
        let r = c.get(format!("{}/collections/{}", s.url(), s.collection())).header("api-key", "k").send().await.expect("send");
        assert_eq!(r.status().as_u16(), 200);
    }

    #[tokio::test]
    async fn collection_info_lists_indexed_fields() {
        let s = fixture().await;
        s.set_payload_index("doc_hash", "keyword");
        let v: Value = reqwest::get(format!("{}/collections/{}", s.url(), s.collection())).await.expect("send").json().await.expect("json");
        assert_eq!(v["result"]["points_count"], 5);
        assert_eq!(v["result"]["status"], "green");
        assert_eq!(v["result"]["payload_schema"]["doc_hash"]["points"], 4);
        assert_eq!(v["result"]["payload_schema"]["doc_hash"]["data_type"], "keyword");
    }

    #[tokio::test]
    async fn telemetry_numbers_each_write_as_qdrant_does() {
        let s = fixture().await;
        let op = |v: &Value| v["result"]["collections"]["collections"][0]["shards"][0]["local"]["update_queue"]["op_num"].as_u64();
        let get = |level: u32| {
            let url = format!("{}/telemetry?details_level={level}", s.url());
            async move { reqwest::get(url).await.expect("send").json::<Value>().await.expect("json") }
        };
        let before = op(&get(3).await).expect("op_num at level 3");
        assert_eq!(op(&get(2).await), None, "lower levels omit the update queue");
        s.add_point(999, json!({"doc_hash": "z", "domain": "Medical"}));
        assert_eq!(op(&get(3).await), Some(before + 1));
        s.set_payload_index("doc_hash", "keyword");
        assert_eq!(op(&get(3).await), Some(before + 2));
    }

    #[tokio::test]
    async fn faults_and_counters() {
        let s = fixture().await;
        s.rate_limit_next(Some(7), 1);
        s.fail_next(503, 1);
        let (status, _) = post(&s, "scroll", json!({})).await;
        assert_eq!(status, 429);
        let (status, _) = post(&s, "scroll", json!({})).await;
        assert_eq!(status, 503);
        s.fail_matching("\"b\"", 500);
        let (status, _) = post(&s, "count", json!({"filter": {"must": [{"key": "doc_hash", "match": {"value": "b"}}]}})).await;
        assert_eq!(status, 500);
        s.clear_faults();
        s.drop_scroll(1);
        let dropped = reqwest::Client::new().post(format!("{}/collections/{}/points/scroll", s.url(), s.collection())).json(&json!({})).send().await;
        let e = dropped.expect_err("connection closed without a response");
        assert!(e.status().is_none(), "{e}");
        let (ids, _) = scroll_ids(&s, json!({"limit": 2})).await;
        assert_eq!(ids.len(), 2);
        let st = s.stats();
        assert_eq!((st.requests, st.scroll_requests, st.count_requests, st.points_returned), (5, 4, 1, 2));
    }
}
