//! Whether a document's concept files changed after a time, from file system metadata alone (no concept file is opened), and the parsing of recon.db's times.
//!
//! RECON's enricher writes a window with Python's `open(path, "w")`: an
//! in-place rewrite truncates the file and keeps its directory entry, so the
//! directory's mtime does not move (only adding, removing or renaming a
//! window does that); the file's own mtime does. Both are looked at.

use std::path::Path;
use std::time::SystemTime;

use crate::recon::hash::is_valid_hash;

/// Parses a recon.db time: ours (RFC 3339, `2026-04-28T00:00:00.000000+00:00`)
/// or SQLite's `CURRENT_TIMESTAMP` / Python's `isoformat()` without a zone
/// (`2026-04-28 00:00:00`, `2026-04-28T00:00:00.123`), read as UTC.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc).into());
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().into());
        }
    }
    None
}

/// What the metadata of one document's concept dir says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirTimes {
    /// The newest mtime of the dir and its `window_*.json` files (None: no dir).
    pub newest: Option<SystemTime>,
    /// Directory entries looked at (stat calls; no file is opened).
    pub entries: u64,
}

/// The newest mtime of `{root}/{hash}` and its windows.
pub fn dir_times(root: &Path, hash: &str) -> DirTimes {
    let mut t = DirTimes::default();
    if !is_valid_hash(hash) {
        return t;
    }
    let dir = root.join(hash);
    let Ok(meta) = std::fs::metadata(&dir) else { return t };
    let mut newest = meta.modified().ok();
    t.entries = 1;
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with("window_") && name.ends_with(".json")) {
                continue;
            }
            t.entries += 1;
            if let Some(m) = e.metadata().ok().and_then(|m| m.modified().ok()) {
                newest = newest.max(Some(m));
            }
        }
    }
    t.newest = newest;
    t
}

/// Whether the concept dir of `hash` changed after `since` (a recon.db time;
/// an unparsable or missing time counts as changed: it cannot be ruled out).
pub fn files_changed_since(root: &Path, hash: &str, since: Option<&str>) -> (bool, DirTimes) {
    let t = dir_times(root, hash);
    let changed = match (since.and_then(parse_time), t.newest) {
        (Some(since), Some(newest)) => newest > since,
        // No dir: nothing newer than the assignment to read.
        (Some(_), None) => false,
        (None, _) => true,
    };
    (changed, t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_ours_sqlites_and_pythons() {
        let a = parse_time("2026-04-28T00:00:01.000000+00:00").unwrap();
        let b = parse_time("2026-04-28 00:00:01").unwrap();
        let c = parse_time("2026-04-28T02:00:01.5+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(c, a + Duration::from_millis(500));
        assert!(parse_time("2026-04-28T00:00:01.25").unwrap() > a);
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn in_place_rewrite_is_seen_through_the_file_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("abc");
        std::fs::create_dir(&d).unwrap();
        let w = d.join("window_0001.json");
        std::fs::write(&w, "[]").unwrap();
        std::fs::write(d.join("meta.json"), "{}").unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        for p in [&w, &d] {
            std::fs::File::open(p).unwrap().set_modified(old).unwrap();
        }
        let before = chrono::DateTime::<chrono::Utc>::from(old + Duration::from_secs(60)).to_rfc3339();
        let (changed, t) = files_changed_since(dir.path(), "abc", Some(&before));
        assert!(!changed);
        assert_eq!(t.entries, 2, "the dir and its one window (meta.json is not a window)");
        // Rewritten in place: the directory's mtime stays, the file's moves.
        std::fs::write(&w, r#"[{"domain":"Medical"}]"#).unwrap();
        std::fs::File::open(&d).unwrap().set_modified(old).unwrap();
        assert!(files_changed_since(dir.path(), "abc", Some(&before)).0);
        assert!(!files_changed_since(dir.path(), "nodir", Some(&before)).0);
        assert!(files_changed_since(dir.path(), "abc", None).0);
    }
}
