//! Reads RECON's concept points from Qdrant's REST API and counts their domain labels per document, exactly as RECON does.
//!
//! One point is one concept. A point counts for each requested document hash
//! its `doc_hash` payload matches (Qdrant's `match` semantics: equal string, or
//! a list holding it), and its `domain` counts as RECON's file rule does (see
//! [`count_domain`]). Many documents share one paginated scroll (`match.any`
//! over a chunk of hashes) instead of RECON's one scroll per document, or the
//! whole collection is read once; either way `parallel_requests` scrolls are
//! in flight at once (chunks, or slices of the id space), so Qdrant works on
//! every core. A strict-mode collection's caps (page `limit`, `match.any`
//! size, no filter on an unindexed field) are read from its config and
//! learnt from its refusals.
//!
//! Failure policy: a missing collection (404), a refused api key (401/403), or
//! a server that has never answered (connection refused) is an `Err` for the
//! whole call, since every later request would fail the same way. Anything
//! else (5xx, 429, timeouts, dropped connections) is retried; a chunk that
//! still fails has its hashes reported in [`CountsBatch::failed`] and the
//! other chunks go on.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};
use shared_constants::index_of_label;

use crate::assign::Counts;
use crate::config::qdrant::{QdrantSettings, Strategy};
use crate::error::{Error, Result};
use crate::support::retry::{retry, RetryPolicy, Verdict};

/// Below this share of the collection's points, reading the documents'
/// points through the doc_hash index costs Qdrant less than one scroll of
/// everything. Measured on Qdrant 1.19 (1.49M points, ~500-byte payloads):
/// at a share of 0.5 the indexed chunks cost 0.62 of a whole scroll's
/// server CPU, so the two meet near 0.8.
pub const FILTERED_MAX_SHARE: f64 = 0.75;

impl Strategy {
    /// The concrete strategy for `docs` documents on a collection, given the
    /// estimated share of the collection's points they hold (when known).
    pub fn resolve(self, info: &CollectionInfo, docs: usize, hashes_per_request: usize, share: Option<f64>) -> Strategy {
        match self {
            // A collection refusing doc_hash filters can only be scrolled.
            _ if info.refuses_doc_hash_filters() => Strategy::ScrollAll,
            Strategy::Auto if docs <= hashes_per_request.saturating_mul(2) => Strategy::Filtered,
            Strategy::Auto if info.is_indexed("doc_hash") && share.is_none_or(|s| s < FILTERED_MAX_SHARE) => Strategy::Filtered,
            Strategy::Auto => Strategy::ScrollAll,
            other => other,
        }
    }

    /// Whether [`resolve`](Self::resolve) needs the share estimate (one `count` request).
    pub fn wants_share(self, info: &CollectionInfo, docs: usize, hashes_per_request: usize) -> bool {
        self == Strategy::Auto
            && !info.refuses_doc_hash_filters()
            && info.is_indexed("doc_hash")
            && docs > hashes_per_request.saturating_mul(2)
            && info.points_count.is_some_and(|n| n > 0)
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
    /// `config.strict_mode_config` when strict mode is enabled.
    pub strict: Option<StrictMode>,
    /// The collection's write marks ([`parse_write_marks`]) when the caller
    /// asked for them (`None`: not asked, or no proof available).
    pub write_marks: Option<Vec<u64>>,
}

/// The limits of a strict-mode collection that shape the companion's requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StrictMode {
    /// Largest `limit` of a scroll page.
    pub max_query_limit: Option<u64>,
    /// Largest `match.any` list.
    pub condition_max_size: Option<u64>,
    /// `false`: filters on fields without a payload index are refused.
    pub unindexed_filtering_retrieve: Option<bool>,
}

impl CollectionInfo {
    pub fn is_indexed(&self, field: &str) -> bool {
        self.indexed_fields.contains(field)
    }

    /// Whether a filter on `doc_hash` would be refused (strict mode without its index).
    pub fn refuses_doc_hash_filters(&self) -> bool {
        !self.is_indexed("doc_hash") && self.strict.as_ref().is_some_and(|s| s.unindexed_filtering_retrieve == Some(false))
    }

    fn parse(r: &Value) -> CollectionInfo {
        let status = r.get("status").and_then(Value::as_str).unwrap_or("unknown").to_string();
        let points_count = r.get("points_count").and_then(Value::as_u64);
        let indexed_fields = r.get("payload_schema").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
        let strict = r.pointer("/config/strict_mode_config").filter(|s| s.get("enabled").and_then(Value::as_bool) == Some(true)).map(|s| StrictMode {
            max_query_limit: s.get("max_query_limit").and_then(Value::as_u64),
            condition_max_size: s.get("condition_max_size").and_then(Value::as_u64),
            unindexed_filtering_retrieve: s.get("unindexed_filtering_retrieve").and_then(Value::as_bool),
        });
        CollectionInfo { status, points_count, indexed_fields, strict, write_marks: None }
    }
}

/// The last operation number of each shard of `collection` (by shard id),
/// from `GET /telemetry?details_level=3`: Qdrant numbers every write
/// operation (upsert, payload change, delete) of a shard, so equal marks mean
/// no write reached the collection in between. `None` when that cannot be
/// proven from here: the collection or a shard's local state is missing, a
/// shard has replicas on other peers, or writes are still queued (their
/// effect may not be readable yet).
pub fn parse_write_marks(telemetry: &Value, collection: &str) -> Option<Vec<u64>> {
    let collections = telemetry.pointer("/collections/collections")?.as_array()?;
    let c = collections.iter().find(|c| c.get("id").and_then(Value::as_str) == Some(collection))?;
    let mut shards: Vec<(u64, u64)> = Vec::new();
    for shard in c.get("shards")?.as_array()? {
        if shard.get("remote").and_then(Value::as_array).is_some_and(|r| !r.is_empty()) {
            return None;
        }
        let queue = shard.pointer("/local/update_queue")?;
        if queue.get("length").and_then(Value::as_u64) != Some(0) {
            return None;
        }
        shards.push((shard.get("id").and_then(Value::as_u64)?, queue.get("op_num").and_then(Value::as_u64)?));
    }
    if shards.is_empty() {
        return None;
    }
    shards.sort_unstable();
    Some(shards.into_iter().map(|(_, op)| op).collect())
}

/// One document's counted points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocCounts {
    pub counts: Counts,
    /// Points seen, with or without a valid domain.
    pub points: u64,
}

/// Counts for many documents; documents without points are absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CountsBatch {
    pub counts: HashMap<String, DocCounts>,
    /// (hash, error) for every hash of a chunk whose requests failed after retries.
    pub failed: Vec<(String, String)>,
    /// HTTP attempts made, retries included.
    pub requests: u64,
    pub retries: u64,
    /// Qdrant's own time for them: the sum of the answers' `time` fields.
    pub server_seconds: f64,
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
    /// A strict-mode collection's cap on `limit`, once known (0: none).
    page_cap: AtomicU32,
    /// A strict-mode collection's cap on a `match.any` list, once known (0: none).
    any_cap: AtomicUsize,
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
            any_cap: AtomicUsize::new(0),
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

    /// The collection's state; a strict-mode collection's caps on `limit`
    /// and `match.any` are kept for the requests that follow.
    pub async fn collection_info(&self) -> Result<CollectionInfo> {
        let tally = Tally::default();
        let path = format!("/collections/{}", self.settings.collection);
        let r = self.call(&tally, Method::GET, &path, None).await.map_err(|f| self.error("reading collection info", f))?;
        let info = CollectionInfo::parse(&r);
        if let Some(s) = &info.strict {
            if let Some(cap) = s.max_query_limit.and_then(|c| u32::try_from(c).ok()).filter(|&c| c > 0) {
                self.page_cap.store(cap, Ordering::Relaxed);
            }
            if let Some(cap) = s.condition_max_size.and_then(|c| usize::try_from(c).ok()).filter(|&c| c > 0) {
                self.any_cap.store(cap, Ordering::Relaxed);
            }
        }
        Ok(info)
    }

    /// The collection's write marks ([`parse_write_marks`]); `None` when the
    /// server does not show them (an older server, a key without access to
    /// `/telemetry`, a cluster): the caller then has no proof and reads again.
    pub async fn write_marks(&self) -> Option<Vec<u64>> {
        let tally = Tally::default();
        match self.call(&tally, Method::GET, "/telemetry?details_level=3", None).await {
            Ok(t) => parse_write_marks(&t, &self.settings.collection),
            Err(f) => {
                tracing::debug!(error = %self.error("reading write marks", f), "no proof the collection is unchanged");
                None
            }
        }
    }

    fn page_limit(&self) -> u32 {
        match self.page_cap.load(Ordering::Relaxed) {
            0 => self.settings.page_size,
            cap => self.settings.page_size.min(cap),
        }
    }

    fn hashes_cap(&self) -> usize {
        match self.any_cap.load(Ordering::Relaxed) {
            0 => self.settings.hashes_per_request,
            cap => self.settings.hashes_per_request.min(cap),
        }
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
        let sample_size = self.hashes_cap().min(64);
        let step = hashes.len().div_ceil(sample_size).max(1);
        let sample: Vec<&String> = hashes.iter().step_by(step).collect();
        if sample.is_empty() || points_count == 0 {
            return Ok(0.0);
        }
        let n = self.count(Some(json!({"must": [{"key": "doc_hash", "match": {"any": sample}}]}))).await?;
        Ok(n as f64 / sample.len() as f64 * hashes.len() as f64 / points_count as f64)
    }

    /// Counts for `hashes` (duplicates ignored) from `match.any` chunks of
    /// `hashes_per_request` documents, `parallel_requests` at a time; see
    /// the module doc for what fails the whole call. A strict-mode
    /// collection refusing doc_hash filters is read with one scroll instead.
    pub async fn counts_for(&self, hashes: &[String]) -> Result<CountsBatch> {
        let tally = Tally::default();
        let mut seen = HashSet::new();
        let unique: Vec<&str> = hashes.iter().map(String::as_str).filter(|h| seen.insert(*h)).collect();
        match self.filtered_counts(&tally, &unique).await? {
            Some((counts, failed)) => Ok(tally.batch(counts, failed)),
            None => {
                tracing::warn!("Qdrant refuses filters on doc_hash without its index (strict mode): reading the whole collection instead");
                let counts = self.scroll_whole(&tally, Some(&seen)).await.map_err(|f| self.error("scrolling all points", f))?;
                Ok(tally.batch(counts, Vec::new()))
            }
        }
    }

    /// Counts for every document of the collection from one unfiltered read
    /// in `parallel_requests` slices (with the request tally, for a memo that
    /// then knows the whole collection): cheaper than
    /// [`counts_for`](Self::counts_for) when the wanted documents are most
    /// of the collection or `doc_hash` has no payload index.
    pub async fn scroll_all_batch(&self) -> Result<CountsBatch> {
        let tally = Tally::default();
        let counts = self.scroll_whole::<std::hash::RandomState>(&tally, None).await.map_err(|f| self.error("scrolling all points", f))?;
        Ok(tally.batch(counts, Vec::new()))
    }

    /// Counts for `hashes` from one unfiltered read of the whole collection
    /// (see [`Strategy::ScrollAll`]); any failure fails the call, since a
    /// half-read scroll under-counts every document.
    pub async fn scroll_counts_for(&self, hashes: &[String]) -> Result<CountsBatch> {
        let tally = Tally::default();
        let wanted: FastSet<&str> = hashes.iter().map(String::as_str).collect();
        let counts = self.scroll_whole(&tally, Some(&wanted)).await.map_err(|f| self.error("scrolling all points", f))?;
        Ok(tally.batch(counts, Vec::new()))
    }
}

mod http;
mod page;
mod scroll;
#[cfg(test)]
mod tests;

use http::*;
use page::*;
#[cfg(test)]
use scroll::*;
