//! The one seam every concept count goes through: RECON's concept files or its Qdrant collection, chosen by `concept_source`.
//!
//! Both sources answer with one [`DocScan`] per document, in input order:
//! `dir_found` says the source answered for the document ("dir found" for
//! files, "request succeeded" for Qdrant), `totals` are its valid-label
//! counts, `failed` the error of a Qdrant request that failed after retries.
//! The rules then differ in one place only, [`ConceptSource::no_counts_status`]:
//! a document that answered with zero counts is `needs_reprocess` with files
//! and `no_concepts` with Qdrant.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use crate::assign::Status;
use crate::config::qdrant::{QdrantSettings, Strategy};
use crate::config::SourceKind;
use crate::error::{Error, Result};
use crate::recon::concepts::{self, DocScan};
use crate::recon::qdrant::{CollectionInfo, CountsBatch, QdrantClient};
use crate::recon::saved_counts::{self, Origin};
use crate::support::progress::progress_bar;

mod memo;
mod verify;
pub use memo::{CountMemo, CountStore};
pub use verify::{verify_qdrant, QdrantCheck};

/// Where concept counts come from.
/// The files source reads the `concepts_dir` it is given at each call (the
/// environment's, which commands and tests may point elsewhere).
// At most two live per process (an Env's source and its second source): the
// size of the settings costs nothing worth a Box's indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Default)]
pub enum ConceptSource {
    #[default]
    Files,
    Qdrant {
        settings: QdrantSettings,
        memo: Option<Arc<Mutex<CountMemo>>>,
    },
}

/// What one call reported about itself (request budget, failures).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceStats {
    pub source: String,
    /// Qdrant: the strategy used (`filtered` or `scroll_all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    pub documents: u64,
    /// HTTP requests made, retries included (0 for files).
    pub requests: u64,
    pub retries: u64,
    /// Qdrant's own time for those requests (the sum of its `time` fields).
    pub server_seconds: f64,
    /// Documents whose request failed after retries (they become `needs_reprocess`).
    pub failed_documents: u64,
    /// The first failure message, for the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Documents answered from counts already read (this process, or a
    /// previous run's saved counts) without a request.
    pub memo_hits: u64,
    /// Whether a previous run's counts were reused, or why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_counts: Option<String>,
    /// How old the reused counts were, in seconds, when they answered (None:
    /// nothing answered from counts read before this call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_counts_age_secs: Option<u64>,
    pub elapsed_ms: u64,
}

impl SourceStats {
    pub fn add(&mut self, o: &SourceStats) {
        if self.source.is_empty() {
            self.source = o.source.clone();
        }
        if self.strategy.is_none() {
            self.strategy = o.strategy.clone();
        }
        self.documents += o.documents;
        self.requests += o.requests;
        self.retries += o.retries;
        self.server_seconds += o.server_seconds;
        self.failed_documents += o.failed_documents;
        if self.first_error.is_none() {
            self.first_error = o.first_error.clone();
        }
        self.memo_hits += o.memo_hits;
        if o.saved_counts.is_some() {
            self.saved_counts = o.saved_counts.clone();
        }
        self.saved_counts_age_secs = self.saved_counts_age_secs.max(o.saved_counts_age_secs);
        self.elapsed_ms += o.elapsed_ms;
    }
}

/// Per-document answers (input order) and the call's statistics.
#[derive(Debug, Default)]
pub struct SourceCounts {
    pub scans: Vec<DocScan>,
    pub stats: SourceStats,
}

/// Runs a future to completion on a private runtime in a scoped thread, so the
/// synchronous engine can call Qdrant from anywhere, even from inside another
/// runtime (the service, async tests), where `block_on` would panic. Two
/// workers: the HTTP connection sends the next scroll request while this
/// thread parses the current page.
fn block_on<T: Send>(f: impl std::future::Future<Output = Result<T>> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| Error::Other(format!("tokio runtime: {e}")))?;
            rt.block_on(f)
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Other("the Qdrant request thread panicked".into())))
    })
}

impl ConceptSource {
    pub fn kind(&self) -> SourceKind {
        match self {
            ConceptSource::Files => SourceKind::Files,
            ConceptSource::Qdrant { .. } => SourceKind::Qdrant,
        }
    }

    /// The status of a document the source answered for with zero valid labels.
    pub fn no_counts_status(&self) -> Status {
        match self {
            ConceptSource::Files => Status::NeedsReprocess,
            ConceptSource::Qdrant { .. } => Status::NoConcepts,
        }
    }

    /// The same source with a per-process memo of Qdrant counts (no-op for files).
    pub fn with_memo(self) -> ConceptSource {
        match self {
            ConceptSource::Qdrant { settings, memo: None } => ConceptSource::Qdrant { settings, memo: Some(Arc::default()) },
            other => other,
        }
    }

    /// The same source reading afresh at every call (the service between ticks, its stale checks).
    pub fn without_memo(self) -> ConceptSource {
        match self {
            ConceptSource::Qdrant { settings, .. } => ConceptSource::Qdrant { settings, memo: None },
            other => other,
        }
    }

    /// The source a long-running service uses: an in-process memo would answer
    /// every later tick from counts read once, so it is dropped; a memo kept
    /// for the next runs (opted in, bounded by its age) stays.
    pub fn for_service(self) -> ConceptSource {
        match self {
            ConceptSource::Qdrant { settings, memo: Some(m) } if !m.lock().unwrap_or_else(|p| p.into_inner()).keeps_between_runs() => {
                ConceptSource::Qdrant { settings, memo: None }
            }
            other => other,
        }
    }

    /// The same source with a memo kept in `store` for the next runs (no-op for files).
    pub fn with_saved_counts(self, store: CountStore) -> ConceptSource {
        match self {
            ConceptSource::Qdrant { settings, .. } => ConceptSource::Qdrant { settings, memo: Some(Arc::new(Mutex::new(CountMemo::with_store(store)))) },
            other => other,
        }
    }

    /// Counts for `hashes`. `Err` only when the whole source is unusable
    /// (Qdrant unreachable, collection missing, api key refused, an outage
    /// mid-run): a run then aborts before writing anything.
    pub fn counts(&self, root: &Path, hashes: &[String], progress: bool, what: &str) -> Result<SourceCounts> {
        let mut scans = Vec::with_capacity(hashes.len());
        let stats = self.counts_each(root, hashes, progress, what, |_, scan| scans.push(scan))?;
        Ok(SourceCounts { scans, stats })
    }

    /// [`counts`](Self::counts) handed over one document at a time, in input
    /// order (`each(index, scan)`): the files source then holds one chunk of
    /// scans at once, so a caller keeping only what it needs of each stays
    /// small however large the library.
    pub fn counts_each(&self, root: &Path, hashes: &[String], progress: bool, what: &str, mut each: impl FnMut(usize, DocScan)) -> Result<SourceStats> {
        let started = Instant::now();
        let mut stats = match self {
            ConceptSource::Files => files_counts(root, hashes, progress, what, &mut each),
            ConceptSource::Qdrant { settings, memo } => {
                let out = qdrant_counts(settings, memo.as_deref(), hashes)?;
                for (i, scan) in out.scans.into_iter().enumerate() {
                    each(i, scan);
                }
                out.stats
            }
        };
        stats.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(stats)
    }

    /// [`counts`](Self::counts) that never fails: a source-wide error becomes
    /// every document's `failed` (for read-only views: explain, dashboard).
    pub fn scan_docs(&self, root: &Path, hashes: &[String]) -> Vec<DocScan> {
        match self.counts(root, hashes, false, "") {
            Ok(c) => c.scans,
            Err(e) => {
                let msg = e.to_string();
                hashes.iter().map(|_| DocScan { failed: Some(msg.clone()), ..DocScan::default() }).collect()
            }
        }
    }
}

/// Scans `hashes` a chunk at a time (each chunk in parallel), handing each scan to `each` in order.
fn files_counts(root: &Path, hashes: &[String], progress: bool, what: &str, each: &mut impl FnMut(usize, DocScan)) -> SourceStats {
    let pb = progress_bar(progress, hashes.len() as u64, what);
    let mut i = 0;
    for chunk in hashes.chunks(FILES_CHUNK) {
        for scan in concepts::scan_docs(root, chunk) {
            each(i, scan);
            i += 1;
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    SourceStats { source: "files".into(), documents: hashes.len() as u64, ..SourceStats::default() }
}

/// Documents scanned in parallel at once: enough to keep both cores busy,
/// few enough that their window scans stay a few MB.
const FILES_CHUNK: usize = 2048;

/// A client for `settings` with the api key read from its env var or file.
pub fn qdrant_client(settings: &QdrantSettings) -> Result<QdrantClient> {
    let mut s = settings.clone();
    if s.api_key.is_none() {
        s.api_key = crate::config::read_secret(&s.api_key_env, s.api_key_file.as_deref())?;
    }
    QdrantClient::new(s)
}

fn qdrant_counts(settings: &QdrantSettings, memo: Option<&Mutex<CountMemo>>, hashes: &[String]) -> Result<SourceCounts> {
    let mut stats = SourceStats { source: "qdrant".into(), documents: hashes.len() as u64, ..SourceStats::default() };
    // The memo stays locked for the whole call: two passes of a service never
    // read the same counts twice at once.
    let mut guard = memo.map(|m| m.lock().unwrap_or_else(|p| p.into_inner()));
    if let Some(m) = guard.as_deref_mut() {
        m.load(settings, &mut stats);
    }
    if hashes.is_empty() {
        return Ok(SourceCounts { scans: Vec::new(), stats });
    }
    let (known, missing) = partition(guard.as_deref(), hashes);
    let client = qdrant_client(settings)?;
    // One runtime for the whole call: the client's pooled connections belong to it.
    block_on(read_counts(settings, &client, guard.as_deref_mut(), hashes, known, missing, stats))
}

/// The part of [`qdrant_counts`] that talks to Qdrant.
async fn read_counts(
    settings: &QdrantSettings,
    client: &QdrantClient,
    mut memo: Option<&mut CountMemo>,
    hashes: &[String],
    mut known: HashMap<String, DocScan>,
    mut missing: Vec<String>,
    mut stats: SourceStats,
) -> Result<SourceCounts> {
    // One info request first: a missing collection or a refused key aborts
    // here with a clear cause, before any scroll; it also tells whether the
    // counts already known still describe the collection.
    let mut info = client.collection_info().await?;
    stats.requests = 1;
    // Counts kept across passes or runs are dated by the write marks too.
    if memo.is_some() {
        info.write_marks = client.write_marks().await;
        stats.requests += 1;
    }
    // Every call checks: a document RECON finished since the counts were read
    // must not be taken for one without points.
    if let Some(m) = memo.as_deref_mut() {
        m.confirm(&info, &mut stats);
        if m.origin.is_none() {
            (known, missing) = partition(Some(m), hashes);
        }
    }
    stats.memo_hits = known.len() as u64;
    if !missing.is_empty() {
        let keep_all = memo.is_some();
        let (docs, per) = (missing.len(), settings.hashes_per_request);
        let share = match (settings.strategy.wants_share(&info, docs, per), info.points_count) {
            (true, Some(points)) => {
                stats.requests += 1;
                Some(client.estimate_share(&missing, points).await?)
            }
            _ => None,
        };
        let strategy = settings.strategy.resolve(&info, docs, per, share);
        let batch = match strategy {
            // With a memo, keep every document the scroll reads anyway:
            // the next pass then asks nothing.
            Strategy::ScrollAll if keep_all => client.scroll_all_batch().await?,
            Strategy::ScrollAll => client.scroll_counts_for(&missing).await?,
            _ => client.counts_for(&missing).await?,
        };
        stats.strategy = Some(strategy.as_str().to_string());
        stats.requests += batch.requests;
        stats.retries = batch.retries;
        stats.server_seconds += batch.server_seconds;
        stats.failed_documents = batch.failed.len() as u64;
        stats.first_error = batch.failed.first().map(|(_, e)| e.clone());
        let whole = strategy == Strategy::ScrollAll && keep_all;
        merge(&mut known, &missing, batch, memo.as_deref_mut(), whole, &info);
        if let Some(m) = memo.as_deref() {
            m.save(settings, &mut stats);
        }
    }
    Ok(SourceCounts { scans: in_order(hashes, &known), stats })
}

/// Splits `hashes` into those the memo answers and those still to read.
fn partition(memo: Option<&CountMemo>, hashes: &[String]) -> (HashMap<String, DocScan>, Vec<String>) {
    let mut known = HashMap::new();
    let mut missing = Vec::new();
    for h in hashes {
        match memo.map(|m| (m.scans.get(h), m.whole_collection)) {
            Some((Some(s), _)) => {
                known.insert(h.clone(), s.clone());
            }
            // The memo saw the whole collection: no entry, no points.
            Some((None, true)) => {
                known.insert(h.clone(), answered(None));
            }
            _ => missing.push(h.clone()),
        }
    }
    (known, missing)
}

fn in_order(hashes: &[String], known: &HashMap<String, DocScan>) -> Vec<DocScan> {
    hashes.iter().map(|h| known.get(h).cloned().unwrap_or_else(|| answered(None))).collect()
}

/// A document Qdrant answered for (`dir_found`), with its counts if it has points.
fn answered(c: Option<&crate::recon::qdrant::DocCounts>) -> DocScan {
    let mut s = DocScan { dir_found: true, ..DocScan::default() };
    if let Some(c) = c {
        s.totals = c.counts;
        s.points = c.points;
    }
    s
}

/// Records the answers for `asked` (and, for a whole-collection batch, every
/// other document it holds) in the memo, dated by the collection's state in
/// `info`. Without a point count the state cannot be checked later, so
/// nothing is kept.
fn merge(
    known: &mut HashMap<String, DocScan>,
    asked: &[String],
    batch: CountsBatch,
    mut memo: Option<&mut CountMemo>,
    whole_collection: bool,
    info: &CollectionInfo,
) {
    let failed: HashMap<&str, &str> = batch.failed.iter().map(|(h, e)| (h.as_str(), e.as_str())).collect();
    if let Some(m) = memo.as_deref_mut() {
        match (m.origin.is_some(), info.points_count) {
            (true, Some(_)) => {}
            // The marks are those read before this batch: a write during it
            // moves them, so the next run reads again.
            (false, Some(points_count)) => {
                m.origin = Some(Origin { points_count, read_at: saved_counts::unix_now(), write_marks: info.write_marks.clone() });
            }
            (_, None) => {
                m.clear();
                memo = None;
            }
        }
    }
    for h in asked {
        let scan = match failed.get(h.as_str()) {
            Some(e) => DocScan { failed: Some((*e).to_string()), ..DocScan::default() },
            None => answered(batch.counts.get(h)),
        };
        // Failures are never memoised: the next pass asks again.
        if scan.failed.is_none() {
            if let Some(m) = memo.as_deref_mut() {
                m.scans.insert(h.clone(), scan.clone());
            }
        }
        known.insert(h.clone(), scan);
    }
    // A whole-collection scroll fails as a whole (never partly), so every
    // document it returned is complete.
    if let (Some(m), true) = (memo, whole_collection && batch.failed.is_empty()) {
        for (h, c) in &batch.counts {
            m.scans.entry(h.clone()).or_insert_with(|| answered(Some(c)));
        }
        m.whole_collection = true;
    }
}
