//! Qdrant counts kept between runs (a file beside the run reports) and the rule deciding whether they still describe the collection.
//!
//! Qdrant numbers every write operation of a shard, and shows each shard's
//! last number in `/telemetry` (`recon::qdrant::parse_write_marks`): counts
//! saved with the marks they were read under are reused by the next run
//! while the marks are unchanged and nothing is queued (no write of any kind,
//! RECON's in-place `set_payload` relabelling included, reached the
//! collection), however old they are (`qdrant.reuse_unchanged_counts`, on by
//! default: the tiebreaker right after a separate backfill asks Qdrant for
//! nothing). Where the server shows no marks (a key without access to
//! `/telemetry`, a cluster, an older server) there is no proof, and saved
//! counts are reused only if the operator opted in with
//! `qdrant.reuse_counts_secs` > 0, as a cache of that age chosen knowingly
//! (a point carries no modification time, and the point count stays the same
//! under an in-place rewrite). When saved counts answer, the run's summary
//! says how old they are (`reused counts read N s ago`, and
//! `source_stats.saved_counts_age_secs` in `--json`). [`check`] always
//! refuses them for another URL or collection or when the point count moved.
//! Failed documents are never saved. Within one process the counts are
//! reused without this file, under the same rule.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::assign::Counts;
use crate::error::{Error, Result};

/// Version of the file layout; another version is ignored (read again).
/// (Version 1 files read as version 2 without write marks.)
pub const FORMAT: u32 = 2;

/// The saved file: where the counts were read, when, and what was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedCounts {
    pub format: u32,
    pub url: String,
    pub collection: String,
    #[serde(flatten)]
    pub origin: Origin,
    /// The counts come from one scroll of the whole collection: a document
    /// absent from `docs` has no points.
    pub whole_collection: bool,
    pub docs: HashMap<String, SavedDoc>,
}

/// When and from what state of the collection counts were read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The collection's `points_count` when the counts were read.
    pub points_count: u64,
    /// Unix seconds when the oldest of the counts was read.
    pub read_at: u64,
    /// Each shard's last write operation when the counts were read (`None`:
    /// the server showed none, so nothing proves them unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_marks: Option<Vec<u64>>,
}

/// Why saved counts may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// No write reached the collection since they were read.
    Unchanged,
    /// No proof either way, and younger than the opted-in age.
    YoungEnough,
}

/// One document's counted points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedDoc {
    pub points: u64,
    pub counts: Counts,
}

/// Whether counts read at `origin` from `saved_url`/`saved_collection` still
/// describe the collection now: `Err` says why not, for the run's report.
pub fn check(
    saved: (&str, &str),
    wanted: (&str, &str),
    origin: &Origin,
    points_now: Option<u64>,
    marks_now: Option<&[u64]>,
    now: u64,
    max_age_secs: u64,
) -> std::result::Result<Reuse, String> {
    same_collection(saved, wanted)?;
    still_fresh(origin, points_now, marks_now, now, max_age_secs)
}

/// Whether a file saved from `saved` (url, collection) is about `wanted`.
pub fn same_collection(saved: (&str, &str), wanted: (&str, &str)) -> std::result::Result<(), String> {
    if saved.0.trim_end_matches('/') != wanted.0.trim_end_matches('/') || saved.1 != wanted.1 {
        return Err(format!("saved counts are from {}/{}, not {}/{}", saved.0, saved.1, wanted.0, wanted.1));
    }
    Ok(())
}

/// Whether counts read at `origin` still describe a collection that now
/// holds `points_now` points (`None`: unknown) under write marks `marks_now`:
/// unchanged marks prove it at any age; without marks on both sides, only an
/// opted-in `max_age_secs` (> 0) lets them answer.
pub fn still_fresh(origin: &Origin, points_now: Option<u64>, marks_now: Option<&[u64]>, now: u64, max_age_secs: u64) -> std::result::Result<Reuse, String> {
    if origin.read_at > now {
        return Err("saved counts are dated in the future (clock change?)".into());
    }
    match points_now {
        Some(n) if n == origin.points_count => {}
        Some(n) => return Err(format!("the collection now holds {n} points, {} when the counts were read", origin.points_count)),
        None => return Err("Qdrant reports no points_count (optimizing?), so a change cannot be ruled out".into()),
    }
    match (origin.write_marks.as_deref(), marks_now) {
        (Some(then), Some(marks)) if then == marks => return Ok(Reuse::Unchanged),
        (Some(then), Some(marks)) => {
            return Err(format!("Qdrant took writes since the counts were read (operation {} → {})", marks_text(then), marks_text(marks)))
        }
        _ => {}
    }
    let age = now - origin.read_at;
    if max_age_secs == 0 {
        return Err("nothing proves the collection unchanged (Qdrant shows no write marks) and qdrant.reuse_counts_secs = 0".into());
    }
    if age > max_age_secs {
        return Err(format!("saved counts are {age} s old (qdrant.reuse_counts_secs = {max_age_secs})"));
    }
    Ok(Reuse::YoungEnough)
}

/// Write marks as the operator reads them: `41` or `41, 7` (one per shard).
pub fn marks_text(marks: &[u64]) -> String {
    marks.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

/// Reads the file; `Ok(None)` when there is none yet.
pub fn load(path: &Path) -> Result<Option<SavedCounts>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let saved: SavedCounts = serde_json::from_slice(&text).map_err(|e| Error::Other(format!("saved Qdrant counts {}: {e}", path.display())))?;
    if saved.format != FORMAT && saved.format != 1 {
        return Err(Error::Other(format!("saved Qdrant counts {}: format {} (this version reads {FORMAT})", path.display(), saved.format)));
    }
    Ok(Some(saved))
}

/// Writes the file atomically (temp file + rename): a crash leaves the old file or the new one.
pub fn save(path: &Path, saved: &SavedCounts) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "qdrant-counts.json".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let text = serde_json::to_vec(saved)?;
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://q:6333";
    const COL: &str = "recon_knowledge_hybrid";

    fn origin() -> Origin {
        Origin { points_count: 750_000, read_at: 1_000, write_marks: None }
    }

    fn marked(op: u64) -> Origin {
        Origin { write_marks: Some(vec![op]), ..origin() }
    }

    #[test]
    fn same_collection_young_and_same_size_is_reused_when_opted_in() {
        assert_eq!(check((URL, COL), ("http://q:6333/", COL), &origin(), Some(750_000), None, 1_600, 900), Ok(Reuse::YoungEnough));
    }

    #[test]
    fn unchanged_write_marks_prove_counts_of_any_age() {
        assert_eq!(check((URL, COL), (URL, COL), &marked(41), Some(750_000), Some(&[41]), 1_000_000, 0), Ok(Reuse::Unchanged));
        // An in-place payload rewrite keeps the point count but not the marks.
        let e = check((URL, COL), (URL, COL), &marked(41), Some(750_000), Some(&[42]), 1_001, 900).expect_err("a write happened");
        assert!(e.contains("operation 41 → 42"), "{e}");
        // A moved point count is named first, marks or not.
        let e = check((URL, COL), (URL, COL), &marked(41), Some(750_001), Some(&[41]), 1_001, 0).expect_err("points moved");
        assert!(e.contains("750001 points"), "{e}");
        // Marks on one side only prove nothing: the age rule decides.
        assert_eq!(check((URL, COL), (URL, COL), &marked(41), Some(750_000), None, 1_100, 900), Ok(Reuse::YoungEnough));
        assert!(check((URL, COL), (URL, COL), &origin(), Some(750_000), Some(&[41]), 1_000, 0).expect_err("no proof").contains("nothing proves"));
    }

    #[test]
    fn each_change_is_named() {
        let e = |r: std::result::Result<Reuse, String>| r.expect_err("must be refused");
        assert!(e(check((URL, COL), (URL, "other"), &origin(), Some(750_000), None, 1_000, 900)).contains("not http://q:6333/other"));
        assert!(e(check((URL, COL), ("http://r:6333", COL), &origin(), Some(750_000), None, 1_000, 900)).contains("saved counts are from"));
        assert!(e(check((URL, COL), (URL, COL), &origin(), Some(750_000), None, 1_901, 900)).contains("901 s old"));
        assert!(e(check((URL, COL), (URL, COL), &origin(), Some(750_001), None, 1_000, 900)).contains("750001 points, 750000 when"));
        assert!(e(check((URL, COL), (URL, COL), &origin(), None, None, 1_000, 900)).contains("no points_count"));
        assert!(e(check((URL, COL), (URL, COL), &origin(), Some(750_000), None, 999, 900)).contains("future"));
        // Unproven reuse not opted into: even a file of this very second is read again.
        assert!(e(check((URL, COL), (URL, COL), &origin(), Some(750_000), None, 1_000, 0)).contains("reuse_counts_secs = 0"));
    }

    #[test]
    fn file_round_trips_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/qdrant-counts.json");
        assert_eq!(load(&path).unwrap(), None);
        let mut counts = [0u64; shared_constants::COUNT];
        counts[3] = 7;
        let s = SavedCounts {
            format: FORMAT,
            url: URL.into(),
            collection: COL.into(),
            origin: marked(12),
            whole_collection: true,
            docs: HashMap::from([("abc".to_string(), SavedDoc { points: 9, counts })]),
        };
        save(&path, &s).unwrap();
        assert_eq!(load(&path).unwrap(), Some(s.clone()));
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("qdrant-counts.json"));
        let mut v = serde_json::to_value(&s).unwrap();
        v["format"] = 3.into();
        std::fs::write(&path, v.to_string()).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("format 3"));
        // A version-1 file (no write marks) still reads, as unproven counts.
        v["format"] = 1.into();
        v.as_object_mut().unwrap().remove("write_marks");
        std::fs::write(&path, v.to_string()).unwrap();
        assert_eq!(load(&path).unwrap().map(|s| s.origin.write_marks), Some(None));
    }
}
