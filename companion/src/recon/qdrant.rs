//! Reads RECON's concept points from Qdrant's REST API and counts their domain labels per document, exactly as RECON does.
//!
//! One point is one concept. A point counts for each requested document hash
//! its `doc_hash` payload matches (Qdrant's `match` semantics: equal string, or
//! a list holding it), and its `domain` counts as RECON's file rule does (see
//! [`count_domain`]). Many documents share one paginated scroll (`match.any`
//! over a chunk of hashes) instead of RECON's one scroll per document.
//!
//! Failure policy: a missing collection (404), a refused api key (401/403), or
//! a server that has never answered (connection refused) is an `Err` for the
//! whole call, since every later request would fail the same way. Anything
//! else (5xx, 429, timeouts, dropped connections) is retried; a chunk that
//! still fails has its hashes reported in [`CountsBatch::failed`] and the
//! other chunks go on.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};
use shared_constants::index_of_label;

use crate::assign::Counts;
use crate::config::qdrant::{QdrantSettings, Strategy};
use crate::error::{Error, Result};
use crate::support::retry::{retry, RetryPolicy, Verdict};

impl Strategy {
    /// The concrete strategy for `docs` documents on a collection, given the
    /// estimated share of the collection's points they hold (when known).
    pub fn resolve(self, info: &CollectionInfo, docs: usize, hashes_per_request: usize, share: Option<f64>) -> Strategy {
        match self {
            Strategy::Auto if docs <= hashes_per_request.saturating_mul(2) => Strategy::Filtered,
            Strategy::Auto if info.is_indexed("doc_hash") && share.is_none_or(|s| s < 0.5) => Strategy::Filtered,
            Strategy::Auto => Strategy::ScrollAll,
            other => other,
        }
    }

    /// Whether [`resolve`](Self::resolve) needs the share estimate (one `count` request).
    pub fn wants_share(self, info: &CollectionInfo, docs: usize, hashes_per_request: usize) -> bool {
        self == Strategy::Auto && info.is_indexed("doc_hash") && docs > hashes_per_request.saturating_mul(2) && info.points_count.is_some_and(|n| n > 0)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Auto => "auto",
            Strategy::Filtered => "filtered",
            Strategy::ScrollAll => "scroll_all",
        }
    }
}

/// What `GET /collections/{name}` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionInfo {
    /// "green", "yellow", "grey" or "red".
    pub status: String,
    /// Qdrant may report null while optimizing.
    pub points_count: Option<u64>,
    /// Payload fields with an index (`payload_schema` keys).
    pub indexed_fields: BTreeSet<String>,
}

impl CollectionInfo {
    pub fn is_indexed(&self, field: &str) -> bool {
        self.indexed_fields.contains(field)
    }
}

/// One document's counted points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocCounts {
    pub counts: Counts,
    /// Points seen, with or without a valid domain.
    pub points: u64,
}

/// Counts for many documents; documents without points are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountsBatch {
    pub counts: HashMap<String, DocCounts>,
    /// (hash, error) for every hash of a chunk whose requests failed after retries.
    pub failed: Vec<(String, String)>,
    /// HTTP attempts made, retries included.
    pub requests: u64,
    pub retries: u64,
}

/// Adds what one point's `domain` payload contributes, as RECON's file rule
/// (`count_file` in `tests/python/recon_reference.py`, mirrored by
/// `pyjson::scan_window`): a string counts when it is exactly one of the 18
/// labels; a list counts each element that is such a string, duplicates
/// included (`["Medical", "Medical"]` counts Medical twice); anything else
/// counts nothing. Returns the number of labels counted.
pub fn count_domain(domain: Option<&Value>, counts: &mut Counts) -> u64 {
    let mut add = |v: &Value| match v.as_str().and_then(index_of_label) {
        Some(k) => {
            counts[k] = counts[k].saturating_add(1);
            1
        }
        None => 0,
    };
    match domain {
        Some(s @ Value::String(_)) => add(s),
        Some(Value::Array(items)) => items.iter().fold(0u64, |n, v| n.saturating_add(add(v))),
        _ => 0,
    }
}

/// Talks to one Qdrant collection.
pub struct QdrantClient {
    http: reqwest::Client,
    /// `settings.url` without a trailing slash.
    base: String,
    settings: QdrantSettings,
    policy: RetryPolicy,
    /// Set by the first HTTP answer: until then a refused connection means
    /// "no Qdrant here" (abort now), afterwards "Qdrant is restarting" (retry).
    reached: AtomicBool,
    /// A strict-mode collection's cap on `limit`, once learnt (0: none known).
    page_cap: AtomicU32,
}

/// One failed attempt, before it becomes an [`Error`].
#[derive(Debug)]
enum Failure {
    Transport {
        connect: bool,
        msg: String,
    },
    Status {
        code: u16,
        retry_after: Option<Duration>,
        msg: String,
    },
    /// A 2xx answer that is not Qdrant's envelope.
    Body(String),
}

/// HTTP attempts of one public call; atomics so the call's future stays `Send`.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    retries: AtomicU64,
}

const WITH_PAYLOAD: [&str; 2] = ["doc_hash", "domain"];

/// Visitor methods for numbers, booleans and null: such a payload value
/// matches no hash and counts no label.
macro_rules! scalars_match_nothing {
    ($none:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
    };
}

impl QdrantClient {
    pub fn new(settings: QdrantSettings) -> Result<QdrantClient> {
        let bad = |m: &str| Err(Error::Config(format!("qdrant: {m}")));
        if settings.page_size == 0 {
            return bad("page_size must be at least 1");
        }
        if settings.hashes_per_request == 0 {
            return bad("hashes_per_request must be at least 1");
        }
        if settings.timeout.is_zero() {
            return bad("timeout_secs must be at least 1");
        }
        match reqwest::Url::parse(&settings.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => return bad(&format!("url {:?} is not an http(s) URL", settings.url)),
        }
        let http = reqwest::Client::builder().timeout(settings.timeout).connect_timeout(settings.timeout.min(Duration::from_secs(10))).build()?;
        Ok(QdrantClient {
            http,
            base: settings.url.trim_end_matches('/').to_string(),
            policy: RetryPolicy { min_delay: Duration::from_millis(settings.retry_base_ms.max(1)), ..RetryPolicy::with_retries(settings.retries) },
            settings,
            reached: AtomicBool::new(false),
            page_cap: AtomicU32::new(0),
        })
    }

    /// Replaces the backoff delays (tests use milliseconds); `retries` stays
    /// `settings.retries`.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> QdrantClient {
        self.policy = RetryPolicy { retries: self.settings.retries, ..policy };
        self
    }

    pub fn settings(&self) -> &QdrantSettings {
        &self.settings
    }

    pub async fn collection_info(&self) -> Result<CollectionInfo> {
        let tally = Tally::default();
        let path = format!("/collections/{}", self.settings.collection);
        let r = self.call(&tally, Method::GET, &path, None).await.map_err(|f| self.error("reading collection info", f))?;
        let status = r.get("status").and_then(Value::as_str).unwrap_or("unknown").to_string();
        let points_count = r.get("points_count").and_then(Value::as_u64);
        let indexed_fields = r.get("payload_schema").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
        Ok(CollectionInfo { status, points_count, indexed_fields })
    }

    /// Exact number of points matching `filter` (all points when `None`).
    pub async fn count(&self, filter: Option<Value>) -> Result<u64> {
        let tally = Tally::default();
        let path = format!("/collections/{}/points/count", self.settings.collection);
        let mut body = json!({"exact": true});
        if let Some(f) = filter {
            body["filter"] = f;
        }
        let r = self.call(&tally, Method::POST, &path, Some(&body)).await.map_err(|f| self.error("counting points", f))?;
        r.get("count").and_then(Value::as_u64).ok_or_else(|| self.error("counting points", Failure::Body("answer has no `count`".into())))
    }

    /// The share of the collection's `points_count` held by `hashes`,
    /// estimated from one exact `count` over an evenly spaced sample of them
    /// (cheap where `doc_hash` is indexed, the only case it is asked).
    pub async fn estimate_share(&self, hashes: &[String], points_count: u64) -> Result<f64> {
        const SAMPLE: usize = 64;
        let step = hashes.len().div_ceil(SAMPLE).max(1);
        let sample: Vec<&String> = hashes.iter().step_by(step).collect();
        if sample.is_empty() || points_count == 0 {
            return Ok(0.0);
        }
        let n = self.count(Some(json!({"must": [{"key": "doc_hash", "match": {"any": sample}}]}))).await?;
        Ok(n as f64 / sample.len() as f64 * hashes.len() as f64 / points_count as f64)
    }

    /// Counts for `hashes` (duplicates ignored), `hashes_per_request` documents
    /// per paginated scroll; see the module doc for what fails the whole call.
    pub async fn counts_for(&self, hashes: &[String]) -> Result<CountsBatch> {
        let tally = Tally::default();
        let mut seen = HashSet::new();
        let unique: Vec<&String> = hashes.iter().filter(|h| seen.insert(h.as_str())).collect();
        let mut out = CountsBatch::default();
        let mut failed_in_a_row = 0u32;
        for chunk in unique.chunks(self.settings.hashes_per_request) {
            let wanted: HashSet<&str> = chunk.iter().map(|h| h.as_str()).collect();
            let filter = json!({"must": [{"key": "doc_hash", "match": {"any": chunk}}]});
            // Merged only when the whole chunk succeeded: a half-read chunk
            // would under-count its documents without saying so.
            let mut local = HashMap::new();
            let res = self.scroll_pages(&tally, Some(filter), |p| add_point(&mut local, p, Some(&wanted))).await;
            match res {
                Ok(()) => {
                    failed_in_a_row = 0;
                    out.counts.extend(local);
                }
                Err(f) if self.is_fatal(&f) => return Err(self.error("scrolling points by doc_hash", f)),
                Err(f) => {
                    let msg = self.error("scrolling points by doc_hash", f).to_string();
                    failed_in_a_row += 1;
                    if self.settings.max_failed_requests_in_a_row > 0 && failed_in_a_row >= self.settings.max_failed_requests_in_a_row {
                        return Err(Error::Qdrant {
                            op: "scrolling points by doc_hash".into(),
                            url: self.base.clone(),
                            msg: format!("{failed_in_a_row} requests in a row failed after retries, giving up (last: {msg})"),
                        });
                    }
                    out.failed.extend(chunk.iter().map(|h| ((*h).clone(), msg.clone())));
                }
            }
        }
        out.requests = tally.requests.load(Ordering::Relaxed);
        out.retries = tally.retries.load(Ordering::Relaxed);
        Ok(out)
    }

    /// Counts for every document of the collection from one unfiltered scroll
    /// (with the request tally, for a memo that then knows the whole
    /// collection): cheaper than [`counts_for`](Self::counts_for) when the
    /// wanted documents are most of the collection or `doc_hash` has no
    /// payload index.
    pub async fn scroll_all_batch(&self) -> Result<CountsBatch> {
        let tally = Tally::default();
        let mut counts = HashMap::new();
        self.scroll_pages(&tally, None, |p| add_point(&mut counts, p, None)).await.map_err(|f| self.error("scrolling all points", f))?;
        Ok(CountsBatch { counts, failed: Vec::new(), requests: tally.requests.load(Ordering::Relaxed), retries: tally.retries.load(Ordering::Relaxed) })
    }

    /// Counts for `hashes` from one unfiltered scroll of the whole collection
    /// (see [`Strategy::ScrollAll`]); any failure fails the call, since a
    /// half-read scroll under-counts every document.
    pub async fn scroll_counts_for(&self, hashes: &[String]) -> Result<CountsBatch> {
        let tally = Tally::default();
        let wanted: HashSet<&str> = hashes.iter().map(String::as_str).collect();
        let mut counts = HashMap::new();
        self.scroll_pages(&tally, None, |p| add_point(&mut counts, p, Some(&wanted))).await.map_err(|f| self.error("scrolling all points", f))?;
        Ok(CountsBatch { counts, failed: Vec::new(), requests: tally.requests.load(Ordering::Relaxed), retries: tally.retries.load(Ordering::Relaxed) })
    }

    /// Follows `next_page_offset` to the end, handing each point to `each`.
    /// Pages are parsed straight into [`ScrollPage`] (borrowed strings, domains
    /// counted while parsing): building a `Value` tree of every page was most
    /// of a large scroll's client time. The next page is requested before the
    /// current one is parsed (its offset is read from the answer's tail and
    /// checked against the parsed one), so Qdrant reads page N+1 while this
    /// side counts page N.
    async fn scroll_pages(&self, tally: &Tally, filter: Option<Value>, mut each: impl FnMut(&Point<'_>)) -> Result<(), Failure> {
        let path = format!("/collections/{}/points/scroll", self.settings.collection);
        let mut offset = Value::Null;
        let mut bytes = self.page(tally, &path, filter.as_ref(), &offset).await?;
        loop {
            let guess = tail_offset(&bytes).filter(|g| !g.is_null() && *g != offset);
            let (parsed, prefetched) = match &guess {
                Some(g) => {
                    // `biased`: the request is sent first, then the page is parsed while it is in flight.
                    let (fetched, parsed) = tokio::join!(biased; self.page(tally, &path, filter.as_ref(), g), async { visit_page(&bytes, &mut each) });
                    (parsed?, Some(fetched))
                }
                None => (visit_page(&bytes, &mut each)?, None),
            };
            match parsed {
                None | Some(Value::Null) => return Ok(()),
                // A server repeating an offset would otherwise loop forever.
                Some(next) if next == offset => return Err(Failure::Body(format!("next_page_offset {next} did not advance"))),
                Some(next) => {
                    bytes = match prefetched {
                        Some(fetched) if guess.as_ref() == Some(&next) => fetched?,
                        _ => self.page(tally, &path, filter.as_ref(), &next).await?,
                    };
                    offset = next;
                }
            }
        }
    }

    /// One scroll page from `offset`. A collection in strict mode caps
    /// `limit` (`max_query_limit`): the page is asked again at the cap it
    /// names, and later pages use it.
    async fn page(&self, tally: &Tally, path: &str, filter: Option<&Value>, offset: &Value) -> Result<Vec<u8>, Failure> {
        loop {
            let cap = self.page_cap.load(Ordering::Relaxed);
            let limit = if cap > 0 { self.settings.page_size.min(cap) } else { self.settings.page_size };
            let mut body = json!({
                "limit": limit,
                "offset": offset,
                "with_payload": WITH_PAYLOAD,
                "with_vector": false,
            });
            if let Some(f) = filter {
                body["filter"] = f.clone();
            }
            let answer = self.call_bytes(tally, Method::POST, path, Some(&body)).await;
            let cap = match &answer {
                Err(Failure::Status { code: 400, msg, .. }) => strict_mode_limit(msg).filter(|&c| c < limit),
                _ => None,
            };
            let Some(cap) = cap else { return answer };
            self.page_cap.store(cap, Ordering::Relaxed);
            tracing::warn!(page_size = self.settings.page_size, cap, "Qdrant caps the scroll limit (strict mode): using its cap");
        }
    }

    /// One request with retries; returns the envelope's `result`.
    async fn call(&self, tally: &Tally, method: Method, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let bytes = self.call_bytes(tally, method, path, body).await?;
        let mut v: Value = serde_json::from_slice(&bytes).map_err(|e| Failure::Body(format!("answer is not JSON ({e})")))?;
        match v.get_mut("result") {
            Some(r) => Ok(r.take()),
            None => Err(Failure::Body("answer has no `result`".into())),
        }
    }

    /// One request with retries; returns a successful answer's raw body.
    async fn call_bytes(&self, tally: &Tally, method: Method, path: &str, body: Option<&Value>) -> Result<Vec<u8>, Failure> {
        let r = retry(
            &self.policy,
            |f: &Failure| self.verdict(f),
            || {
                tally.requests.fetch_add(1, Ordering::Relaxed);
                self.attempt(method.clone(), path, body)
            },
        )
        .await;
        tally.retries.fetch_add(u64::from(r.retries), Ordering::Relaxed);
        r.result
    }

    async fn attempt(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Vec<u8>, Failure> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.settings.api_key {
            req = req.header("api-key", key);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(transport)?;
        self.reached.store(true, Ordering::Relaxed);
        let status = resp.status();
        let retry_after =
            resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        let bytes = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(Failure::Status { code: status.as_u16(), retry_after, msg: error_text(status, &bytes) });
        }
        Ok(Vec::from(bytes))
    }

    fn verdict(&self, f: &Failure) -> Verdict {
        match f {
            Failure::Transport { connect: true, .. } if !self.reached.load(Ordering::Relaxed) => Verdict::Fail,
            Failure::Transport { .. } => Verdict::Retry,
            Failure::Status { code: 429, retry_after: Some(d), .. } => Verdict::RetryAfter(*d),
            Failure::Status { code, .. } if *code == 429 || *code >= 500 => Verdict::Retry,
            Failure::Status { .. } | Failure::Body(_) => Verdict::Fail,
        }
    }

    /// Failures every other request of the call would repeat.
    fn is_fatal(&self, f: &Failure) -> bool {
        match f {
            Failure::Status { code, .. } => matches!(code, 401 | 403 | 404),
            Failure::Transport { connect, .. } => *connect && !self.reached.load(Ordering::Relaxed),
            Failure::Body(_) => false,
        }
    }

    fn error(&self, op: &str, f: Failure) -> Error {
        let url = self.base.clone();
        let msg = match f {
            Failure::Status { code: 404, .. } => return Error::QdrantCollectionMissing { collection: self.settings.collection.clone(), url },
            Failure::Status { code: code @ (401 | 403), msg, .. } => {
                let key = if self.settings.api_key.is_some() { "the api key was refused" } else { "no api key is set" };
                format!("HTTP {code} ({key}): {msg}")
            }
            Failure::Status { code, msg, .. } => format!("HTTP {code}: {msg}"),
            Failure::Transport { connect: true, msg } => format!("cannot connect: {msg}"),
            Failure::Transport { connect: false, msg } => msg,
            Failure::Body(msg) => msg,
        };
        Error::Qdrant { op: op.to_string(), url, msg }
    }
}

fn transport(e: reqwest::Error) -> Failure {
    let mut msg = if e.is_timeout() { "timed out".to_string() } else { "transport error".to_string() };
    // reqwest's own Display hides the cause (refused, reset, closed early).
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    Failure::Transport { connect: e.is_connect(), msg }
}

/// Parses one scroll answer, hands its points to `each`, and returns its `next_page_offset`.
fn visit_page(bytes: &[u8], each: &mut impl FnMut(&Point<'_>)) -> Result<Option<Value>, Failure> {
    let page: ScrollEnvelope<'_> = serde_json::from_slice(bytes).map_err(|e| Failure::Body(format!("scroll answer is not Qdrant's ({e})")))?;
    let page = page.result.ok_or_else(|| Failure::Body("answer has no `result`".into()))?;
    let points = page.points.ok_or_else(|| Failure::Body("scroll answer has no `points` list".into()))?;
    points.iter().for_each(each);
    Ok(page.next_page_offset)
}

/// The `next_page_offset` of a scroll answer read from its tail, without
/// parsing the page (Qdrant writes it after `points`); only a guess, which
/// [`visit_page`]'s answer confirms. `None` when it is not found there.
fn tail_offset(bytes: &[u8]) -> Option<Value> {
    const KEY: &[u8] = b"\"next_page_offset\":";
    let tail_start = bytes.len().saturating_sub(1024);
    let tail = &bytes[tail_start..];
    let at = tail.windows(KEY.len()).rposition(|w| w == KEY)?;
    serde_json::Deserializer::from_slice(&tail[at + KEY.len()..]).into_iter::<Value>().next()?.ok()
}

/// The cap in Qdrant's strict-mode refusal `Limit exceeded 5000 > 1000 for "limit"`.
fn strict_mode_limit(msg: &str) -> Option<u32> {
    let rest = &msg[msg.find("Limit exceeded ")? + "Limit exceeded ".len()..];
    let (_, after) = rest.split_once(" > ")?;
    let (cap, field) = after.split_once(' ')?;
    if !field.contains("\"limit\"") {
        return None;
    }
    cap.parse::<u32>().ok().filter(|&c| c > 0)
}

/// Qdrant's `status.error`, or the raw body (its auth layer answers plain text).
fn error_text(status: StatusCode, body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<Value>(body).ok().and_then(|v| v.pointer("/status/error").and_then(Value::as_str).map(str::to_string));
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let text: String = text.chars().take(300).collect();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("no body").to_string()
    } else {
        text
    }
}

mod page;
#[cfg(test)]
mod tests;

use page::*;
