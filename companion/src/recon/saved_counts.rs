//! Qdrant counts kept between runs (a file beside the run reports) and the rule deciding whether they still describe the collection.
//!
//! RECON's runbook runs the backfill and the tiebreaker as separate commands.
//! Without this file the tiebreaker would read the collection again for the
//! channel sums; with it, the tiebreaker (and a real run after its dry run)
//! makes one `GET /collections/{name}` and reuses what the previous run read,
//! as long as [`check`] passes: same URL and collection, younger than
//! `qdrant.reuse_counts_secs`, and the collection still holds the same number
//! of points (RECON adds points when it enriches a document; it never edits a
//! point's `domain` in place). Failed documents are never saved.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::assign::Counts;
use crate::error::{Error, Result};

/// Version of the file layout; another version is ignored (read again).
pub const FORMAT: u32 = 1;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The collection's `points_count` when the counts were read.
    pub points_count: u64,
    /// Unix seconds when the oldest of the counts was read.
    pub read_at: u64,
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
    now: u64,
    max_age_secs: u64,
) -> std::result::Result<(), String> {
    same_collection(saved, wanted)?;
    still_fresh(origin, points_now, now, max_age_secs)
}

/// Whether a file saved from `saved` (url, collection) is about `wanted`.
pub fn same_collection(saved: (&str, &str), wanted: (&str, &str)) -> std::result::Result<(), String> {
    if saved.0.trim_end_matches('/') != wanted.0.trim_end_matches('/') || saved.1 != wanted.1 {
        return Err(format!("saved counts are from {}/{}, not {}/{}", saved.0, saved.1, wanted.0, wanted.1));
    }
    Ok(())
}

/// Whether counts read at `origin` are young enough and the collection still
/// holds `points_now` (`None`: unknown, so not fresh).
pub fn still_fresh(origin: &Origin, points_now: Option<u64>, now: u64, max_age_secs: u64) -> std::result::Result<(), String> {
    if origin.read_at > now {
        return Err("saved counts are dated in the future (clock change?)".into());
    }
    let age = now - origin.read_at;
    if age > max_age_secs {
        return Err(format!("saved counts are {age} s old (qdrant.reuse_counts_secs = {max_age_secs})"));
    }
    match points_now {
        Some(n) if n == origin.points_count => Ok(()),
        Some(n) => Err(format!("the collection now holds {n} points, {} when the counts were read", origin.points_count)),
        None => Err("Qdrant reports no points_count (optimizing?), so a change cannot be ruled out".into()),
    }
}

/// Reads the file; `Ok(None)` when there is none yet.
pub fn load(path: &Path) -> Result<Option<SavedCounts>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let saved: SavedCounts = serde_json::from_slice(&text).map_err(|e| Error::Other(format!("saved Qdrant counts {}: {e}", path.display())))?;
    if saved.format != FORMAT {
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
        Origin { points_count: 750_000, read_at: 1_000 }
    }

    #[test]
    fn same_collection_young_and_same_size_is_reused() {
        assert_eq!(check((URL, COL), ("http://q:6333/", COL), &origin(), Some(750_000), 1_600, 900), Ok(()));
    }

    #[test]
    fn each_change_is_named() {
        let e = |r: std::result::Result<(), String>| r.expect_err("must be refused");
        assert!(e(check((URL, COL), (URL, "other"), &origin(), Some(750_000), 1_000, 900)).contains("not http://q:6333/other"));
        assert!(e(check((URL, COL), ("http://r:6333", COL), &origin(), Some(750_000), 1_000, 900)).contains("saved counts are from"));
        assert!(e(check((URL, COL), (URL, COL), &origin(), Some(750_000), 1_901, 900)).contains("901 s old"));
        assert!(e(check((URL, COL), (URL, COL), &origin(), Some(750_001), 1_000, 900)).contains("750001 points, 750000 when"));
        assert!(e(check((URL, COL), (URL, COL), &origin(), None, 1_000, 900)).contains("no points_count"));
        assert!(e(check((URL, COL), (URL, COL), &origin(), Some(750_000), 999, 900)).contains("future"));
        // Reuse switched off: even a fresh file is read again.
        assert!(e(check((URL, COL), (URL, COL), &origin(), Some(750_000), 1_001, 0)).contains("1 s old"));
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
            origin: origin(),
            whole_collection: true,
            docs: HashMap::from([("abc".to_string(), SavedDoc { points: 9, counts })]),
        };
        save(&path, &s).unwrap();
        assert_eq!(load(&path).unwrap(), Some(s.clone()));
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("qdrant-counts.json"));
        let mut v = serde_json::to_value(&s).unwrap();
        v["format"] = 2.into();
        std::fs::write(&path, v.to_string()).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("format 2"));
    }
}
