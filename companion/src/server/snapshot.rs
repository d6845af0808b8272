//! A cached, periodically rebuilt picture of recon.db for the dashboard and the
//! API: status counts, the review queue with each video's domain counts, and
//! backlogs. Requests read it without touching SQLite or concept files; it is
//! rebuilt in the background when older than its TTL, and at once after a write.

use crate::assign::Counts;
use crate::assign::{self, Status};
use crate::context::Env;
use crate::engine::{self, StatusView};
use crate::error::Result;
use crate::recon::db as recondb;
use crate::server::queries;
use serde::Serialize;
use shared_constants::{COUNT, DOMAINS};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Top domains shown per review row.
pub const TOP_SHOWN: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct DomainCount {
    pub domain: &'static str,
    pub id: u16,
    pub count: u64,
}

/// One video waiting for a person.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewItem {
    pub hash: String,
    pub title: Option<String>,
    pub channel: Option<String>,
    /// The stored fallback domain (alphabetically first tied domain).
    pub fallback_domain: Option<String>,
    /// The domains sharing the highest count in the document's files today.
    pub tied_domains: Vec<&'static str>,
    /// Highest counts first, at most [`TOP_SHOWN`].
    pub top_domains: Vec<DomainCount>,
    pub video_url: Option<String>,
    pub assigned_at: Option<String>,
}

impl ReviewItem {
    /// The domain filter matches the fallback or any tied domain: a reviewer
    /// looking for "Medical" wants every video where it is a candidate.
    pub fn matches_domain(&self, domain: &str) -> bool {
        self.fallback_domain.as_deref() == Some(domain) || self.tied_domains.contains(&domain)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// Increases with every rebuild: keys the render cache.
    pub generation: u64,
    /// UTC time of the build.
    pub built_at: String,
    #[serde(skip)]
    pub built: Option<Instant>,
    pub status: StatusView,
    pub review: Vec<ReviewItem>,
    /// Channels in the review queue with their number of items, by name.
    pub review_channels: Vec<(String, u64)>,
    /// Complete PeerTube documents the worker has not assigned yet.
    pub new_documents: u64,
}

impl Snapshot {
    pub fn count(&self, s: Status) -> u64 {
        self.status.by_status.get(s.as_str()).copied().unwrap_or(0)
    }
}

/// PeerTube's watch URL of a catalogue path (`…/w/{uuid}`), rebased on `public_url`.
pub fn video_url(public_url: &str, path: Option<&str>) -> Option<String> {
    let v = crate::peertube::video_id::from_path(path?).ok()?;
    Some(format!("{}/w/{}", public_url.trim_end_matches('/'), v.as_str()))
}

/// Non-zero counts, highest first (ties in id order), at most `n`.
pub fn top_counts(counts: &Counts, n: usize) -> Vec<DomainCount> {
    let mut idx: Vec<usize> = (0..COUNT).filter(|&i| counts[i] > 0).collect();
    idx.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    idx.into_iter().take(n).map(|i| DomainCount { domain: DOMAINS[i].label, id: DOMAINS[i].id, count: counts[i] }).collect()
}

/// Reads recon.db and the review queue's concept files. `counts` caches each
/// document's domain counts across builds (files of a complete document rarely change).
pub fn build(env: &Env, public_url: &str, counts: &Mutex<HashMap<String, Counts>>) -> Result<Snapshot> {
    let status = engine::status(env)?;
    let mut snap = Snapshot { built_at: recondb::now(), built: Some(Instant::now()), ..Default::default() };
    if status.migrated {
        let conn = recondb::open_readonly(&env.recon_db)?;
        let rows = queries::review_rows(&conn)?;
        snap.new_documents = queries::count_new_documents(&conn, &env.source)?;
        drop(conn);
        let missing: Vec<String> = {
            let cache = counts.lock().unwrap_or_else(|p| p.into_inner());
            rows.iter().filter(|r| !cache.contains_key(&r.hash)).map(|r| r.hash.clone()).collect()
        };
        let scans = env.scan_docs(&missing);
        let mut cache = counts.lock().unwrap_or_else(|p| p.into_inner());
        // A failed Qdrant request is not cached: the next build asks again.
        for (h, s) in missing.into_iter().zip(scans).filter(|(_, s)| s.failed.is_none()) {
            cache.insert(h, if s.dir_found { s.totals } else { [0; COUNT] });
        }
        let keep: std::collections::HashSet<&str> = rows.iter().map(|r| r.hash.as_str()).collect();
        cache.retain(|h, _| keep.contains(h.as_str()));
        let mut channels: BTreeMap<String, u64> = BTreeMap::new();
        for r in rows {
            let c = cache.get(&r.hash).copied().unwrap_or([0; COUNT]);
            if let Some(ch) = &r.channel {
                *channels.entry(ch.clone()).or_default() += 1;
            }
            snap.review.push(ReviewItem {
                tied_domains: assign::top_domains(&c).into_iter().map(|i| DOMAINS[i].label).collect(),
                top_domains: top_counts(&c, TOP_SHOWN),
                video_url: video_url(public_url, r.path.as_deref()),
                hash: r.hash,
                title: r.title,
                channel: r.channel,
                fallback_domain: r.fallback,
                assigned_at: r.assigned_at,
            });
        }
        snap.review_channels = channels.into_iter().collect();
    }
    snap.status = status;
    Ok(snap)
}

/// The current snapshot and its rebuild policy.
pub struct SnapshotCache {
    current: RwLock<Arc<Snapshot>>,
    building: AtomicBool,
    stale: AtomicBool,
    generation: std::sync::atomic::AtomicU64,
    ttl: Duration,
    pub counts: Mutex<HashMap<String, Counts>>,
    pub last_error: Mutex<Option<String>>,
}

impl SnapshotCache {
    pub fn new(ttl: Duration) -> SnapshotCache {
        SnapshotCache {
            current: RwLock::new(Arc::new(Snapshot::default())),
            building: AtomicBool::new(false),
            stale: AtomicBool::new(true),
            generation: std::sync::atomic::AtomicU64::new(0),
            ttl,
            counts: Mutex::new(HashMap::new()),
            last_error: Mutex::new(None),
        }
    }

    pub fn get(&self) -> Arc<Snapshot> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Marks the snapshot out of date (after a write): the next request rebuilds it.
    pub fn invalidate(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// True when the caller should start a rebuild (and it is now marked as building).
    pub fn claim_rebuild(&self) -> bool {
        let snap = self.get();
        let old = snap.built.is_none_or(|b| b.elapsed() >= self.ttl);
        if !(old || self.stale.load(Ordering::Acquire)) {
            return false;
        }
        self.building.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Rebuilds now (blocking). Keeps the old snapshot when the build fails.
    pub fn rebuild(&self, env: &Env, public_url: &str) -> Result<Arc<Snapshot>> {
        self.stale.store(false, Ordering::Release);
        let res = build(env, public_url, &self.counts);
        self.building.store(false, Ordering::Release);
        match res {
            Ok(mut s) => {
                s.generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
                let s = Arc::new(s);
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = s.clone();
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Ok(s)
            }
            Err(e) => {
                self.stale.store(true, Ordering::Release);
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                Err(e)
            }
        }
    }
}

/// A page of the review queue after filtering.
#[derive(Debug, Clone, Serialize)]
pub struct Page<'a> {
    pub total: usize,
    pub page: usize,
    pub per_page: usize,
    pub pages: usize,
    pub items: Vec<&'a ReviewItem>,
}

pub const DEFAULT_PER_PAGE: usize = 50;
pub const MAX_PER_PAGE: usize = 500;

/// Filters by exact channel and by domain (see [`ReviewItem::matches_domain`]), then pages (1-based).
pub fn select<'a>(items: &'a [ReviewItem], channel: Option<&str>, domain: Option<&str>, page: usize, per_page: usize) -> Page<'a> {
    let per_page = per_page.clamp(1, MAX_PER_PAGE);
    let matching: Vec<&ReviewItem> =
        items.iter().filter(|i| channel.is_none_or(|c| i.channel.as_deref() == Some(c))).filter(|i| domain.is_none_or(|d| i.matches_domain(d))).collect();
    let total = matching.len();
    let pages = total.div_ceil(per_page).max(1);
    let page = page.clamp(1, pages);
    let items = matching.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    Page { total, page, per_page, pages, items }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(hash: &str, channel: &str, fallback: &str, tied: &[&'static str]) -> ReviewItem {
        ReviewItem {
            hash: hash.into(),
            title: None,
            channel: Some(channel.into()),
            fallback_domain: Some(fallback.into()),
            tied_domains: tied.to_vec(),
            top_domains: vec![],
            video_url: None,
            assigned_at: None,
        }
    }

    #[test]
    fn video_url_takes_the_last_w_segment_and_rebases() {
        assert_eq!(
            video_url("https://stream.echo6.co/", Some("https://stream.echo6.co/w/9c9de5e8-0a1e-484a-b099-e80766180a6d")).as_deref(),
            Some("https://stream.echo6.co/w/9c9de5e8-0a1e-484a-b099-e80766180a6d")
        );
        assert_eq!(
            video_url("https://p", Some("http://x/a/w/b/w/kkGMgK9ZtnKfYAgnEtQxbv")).as_deref(),
            Some("https://p/w/9c9de5e8-0a1e-484a-b099-e80766180a6d"),
            "short uuids are linked in their long form"
        );
        assert_eq!(video_url("https://p", Some("/library/book.pdf")), None);
        assert_eq!(video_url("https://p", Some("https://x/w/\"><script>")), None);
        assert_eq!(video_url("https://p", None), None);
    }

    #[test]
    fn top_counts_orders_by_count_then_id() {
        let mut c = [0u64; COUNT];
        c[3] = 5;
        c[1] = 5;
        c[7] = 9;
        let top = top_counts(&c, 2);
        assert_eq!(top.iter().map(|d| d.count).collect::<Vec<_>>(), vec![9, 5]);
        assert_eq!(top[1].domain, DOMAINS[1].label);
    }

    #[test]
    fn select_filters_and_pages_beyond_200() {
        let mut items = Vec::new();
        for i in 0..450 {
            let ch = if i % 3 == 0 { "A" } else { "B" };
            items.push(item(&format!("{i:032x}"), ch, "Medical", &["Medical", "Energy"]));
        }
        items.push(item(&format!("{:032x}", 999), "A", "Agriculture & Livestock", &["Agriculture & Livestock", "Water"]));
        let p = select(&items, None, None, 5, 100);
        assert_eq!((p.total, p.pages, p.page, p.items.len()), (451, 5, 5, 51));
        let p = select(&items, Some("A"), None, 1, 200);
        assert_eq!(p.total, 151);
        let p = select(&items, None, Some("Water"), 1, 50);
        assert_eq!(p.total, 1);
        let p = select(&items, Some("B"), Some("Energy"), 99, 50);
        assert_eq!((p.total, p.page), (300, 6));
        let p = select(&items, Some("nobody"), None, 1, 50);
        assert_eq!((p.total, p.pages, p.items.len()), (0, 1, 0));
    }
}
