//! The memo of Qdrant counts already read: kept within a process, and in a file for the next runs while `recon::saved_counts` says they still hold.

use std::collections::HashMap;
use std::path::PathBuf;

use super::answered;
use crate::config::qdrant::QdrantSettings;
use crate::recon::concepts::DocScan;
use crate::recon::qdrant::{CollectionInfo, DocCounts};
use crate::recon::saved_counts::{self, Origin, SavedCounts, SavedDoc};
use crate::recon::source::SourceStats;

/// Qdrant counts already read, so a later pass asks Qdrant nothing twice:
/// within this process, and (with a [`CountStore`]) in the next runs, while
/// [`saved_counts::check`] says the collection has not changed.
///
/// After a `scroll_all` the memo holds every document of the collection
/// (`whole_collection`): a document absent from it has no points, so a later
/// pass (the tiebreaker's channel-mates, which the backfill did not select)
/// costs no request at all.
#[derive(Debug, Default)]
pub struct CountMemo {
    pub(super) scans: HashMap<String, DocScan>,
    pub(super) whole_collection: bool,
    /// The state of the collection the counts describe (`None` while empty).
    pub(super) origin: Option<Origin>,
    store: Option<CountStore>,
    /// The store's file has been read (once per process).
    loaded: bool,
    /// `origin` came from the file: the store's age rule applies to it, not
    /// to counts this process read itself.
    from_file: bool,
}

/// Counts kept between runs: the file and how long they stay usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountStore {
    pub path: PathBuf,
    pub max_age_secs: u64,
}

impl CountMemo {
    /// An empty memo kept in `store`.
    pub fn with_store(store: CountStore) -> CountMemo {
        CountMemo { store: Some(store), ..CountMemo::default() }
    }

    /// Whether the memo may answer later runs without proof (`reuse_counts_secs`
    /// opted in), so that a long-running service keeps it between ticks.
    pub fn keeps_between_runs(&self) -> bool {
        self.store.as_ref().is_some_and(|s| s.max_age_secs > 0)
    }

    /// Whether the memo is saved in a file for the next runs.
    pub fn saves_counts(&self) -> bool {
        self.store.is_some()
    }

    pub(super) fn clear(&mut self) {
        self.scans.clear();
        self.whole_collection = false;
        self.origin = None;
        self.from_file = false;
    }

    /// Reads the store's file once; a bad file is reported and read again from Qdrant.
    pub(super) fn load(&mut self, settings: &QdrantSettings, stats: &mut SourceStats) {
        let Some(store) = self.store.as_ref().filter(|_| !self.loaded) else { return };
        self.loaded = true;
        match saved_counts::load(&store.path) {
            Ok(Some(saved)) => {
                // Age and point count are checked with Qdrant's answer before any use (`confirm`).
                if let Err(why) = saved_counts::same_collection((&saved.url, &saved.collection), (&settings.url, &settings.collection)) {
                    stats.saved_counts = Some(format!("not reused: {why}"));
                    return;
                }
                self.scans = saved.docs.into_iter().map(|(h, d)| (h, answered(Some(&DocCounts { counts: d.counts, points: d.points })))).collect();
                self.whole_collection = saved.whole_collection;
                self.origin = Some(saved.origin);
                self.from_file = true;
            }
            Ok(None) => {}
            Err(e) => stats.saved_counts = Some(format!("not reused: {e}")),
        }
    }

    /// Keeps the memo only if it still describes the collection as `info` shows it.
    pub(super) fn confirm(&mut self, info: &CollectionInfo, stats: &mut SourceStats) {
        let Some(origin) = self.origin.as_ref() else { return };
        let max_age = self.store.as_ref().filter(|_| self.from_file).map(|s| s.max_age_secs).unwrap_or(u64::MAX);
        match saved_counts::still_fresh(origin, info.points_count, info.write_marks.as_deref(), saved_counts::unix_now(), max_age) {
            Ok(reuse) => {
                let age = saved_counts::unix_now().saturating_sub(origin.read_at);
                stats.saved_counts_age_secs = Some(age);
                let why = match reuse {
                    saved_counts::Reuse::Unchanged => "Qdrant took no write since",
                    saved_counts::Reuse::YoungEnough => "within qdrant.reuse_counts_secs",
                };
                stats.saved_counts = Some(format!("reused counts read {age} s ago, {why} ({} documents)", self.scans.len()));
            }
            Err(why) => {
                stats.saved_counts = Some(format!("not reused: {why}"));
                self.clear();
            }
        }
    }

    /// Writes the memo to the store; a failure is reported, never fatal (the counts are only a cache).
    pub(super) fn save(&self, settings: &QdrantSettings, stats: &mut SourceStats) {
        let (Some(store), Some(origin)) = (&self.store, self.origin.clone()) else { return };
        let docs = self.scans.iter().filter(|(_, s)| s.failed.is_none()).map(|(h, s)| (h.clone(), SavedDoc { points: s.points, counts: s.totals })).collect();
        let saved = SavedCounts {
            format: saved_counts::FORMAT,
            url: settings.url.clone(),
            collection: settings.collection.clone(),
            origin,
            whole_collection: self.whole_collection,
            docs,
        };
        if let Err(e) = saved_counts::save(&store.path, &saved) {
            stats.saved_counts = Some(format!("counts not saved for the next run: {e}"));
        }
    }
}
