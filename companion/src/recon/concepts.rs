//! Reads documents' concept dirs (`{root}/{hash}/window_*.json`) and counts their domain labels, in parallel.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::Error;
use crate::recon::pyjson::{Counts, FileCounts, Invalid};

/// True for exactly 32 lowercase hex characters (an MD5 as RECON writes it).
pub fn is_valid_hash(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The concept dir of a document; the hash comes from the database or the
/// API, so it is checked before it can become a path component.
pub fn concept_dir(root: &Path, hash: &str) -> Result<PathBuf, Error> {
    if is_valid_hash(hash) {
        Ok(root.join(hash))
    } else {
        Err(Error::BadHash(hash.to_string()))
    }
}

/// Why a window file contributed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The read failed (a directory named like a window, permissions, I/O).
    Unreadable(String),
    NotUtf8,
    Malformed(String),
    NotArray,
}

impl From<Invalid> for SkipReason {
    fn from(i: Invalid) -> Self {
        match i {
            Invalid::NotUtf8 => SkipReason::NotUtf8,
            Invalid::Malformed(m) => SkipReason::Malformed(m),
            Invalid::NotArray => SkipReason::NotArray,
        }
    }
}

/// One window file's outcome.
#[derive(Debug, Clone)]
pub struct WindowScan {
    pub name: String,
    pub result: Result<FileCounts, SkipReason>,
}

/// Everything read from one document's concept dir.
#[derive(Debug, Clone, Default)]
pub struct DocScan {
    pub dir_found: bool,
    pub bad_hash: bool,
    /// Sorted by file name.
    pub windows: Vec<WindowScan>,
    /// Sum of the counts of the valid windows.
    pub totals: Counts,
    /// Bytes of window JSON read (for throughput figures).
    pub bytes: u64,
    /// Qdrant source: points matching the document's hash (0 for files).
    pub points: u64,
    /// Qdrant source: the request for this document failed after retries
    /// (`dir_found` is then false: nothing was counted, `needs_reprocess`).
    pub failed: Option<String>,
}

impl DocScan {
    /// Sum of all valid-label counts (0 → `needs_reprocess`).
    pub fn total(&self) -> u32 {
        self.totals.iter().sum()
    }

    /// What was skipped in this document, by kind.
    pub fn skipped(&self) -> SkipStats {
        let mut s = SkipStats::default();
        for w in &self.windows {
            match &w.result {
                Ok(fc) => {
                    s.non_object_items += u64::from(fc.non_objects);
                    s.no_valid_domain_items += u64::from(fc.no_valid_domain);
                }
                Err(SkipReason::Unreadable(_)) => s.unreadable += 1,
                Err(SkipReason::NotUtf8) => s.not_utf8 += 1,
                Err(SkipReason::Malformed(_)) => s.malformed += 1,
                Err(SkipReason::NotArray) => s.not_array += 1,
            }
        }
        s
    }
}

/// Skipped files (first four) and skipped items in valid files (last two).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SkipStats {
    pub unreadable: u64,
    pub not_utf8: u64,
    pub malformed: u64,
    pub not_array: u64,
    pub non_object_items: u64,
    pub no_valid_domain_items: u64,
}

impl SkipStats {
    pub fn add(&mut self, other: &SkipStats) {
        self.unreadable += other.unreadable;
        self.not_utf8 += other.not_utf8;
        self.malformed += other.malformed;
        self.not_array += other.not_array;
        self.non_object_items += other.non_object_items;
        self.no_valid_domain_items += other.no_valid_domain_items;
    }

    pub fn files_skipped(&self) -> u64 {
        self.unreadable + self.not_utf8 + self.malformed + self.not_array
    }
}

/// RECON's selection: every entry named `window_*.json` (so `meta.json` is not
/// a window). Compared on raw bytes so a non-UTF-8 name still matches, as
/// Python's `os.listdir` + `startswith`/`endswith` would.
fn is_window_name(name: &std::ffi::OsStr) -> bool {
    let b = name.as_encoded_bytes();
    b.starts_with(b"window_") && b.ends_with(b".json")
}

/// Scans one document's concept dir. Never fails: problems are recorded per
/// file. An invalid hash is never turned into a path (`bad_hash`).
pub fn scan_doc(root: &Path, hash: &str) -> DocScan {
    let mut scan = DocScan::default();
    let Ok(dir) = concept_dir(root, hash) else {
        scan.bad_hash = true;
        return scan;
    };
    let mut names = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            scan.dir_found = true;
            for entry in entries {
                match entry {
                    Ok(e) if is_window_name(&e.file_name()) => names.push(e.file_name()),
                    Ok(_) => {}
                    // The entry's name is unknown; still count the failure.
                    Err(err) => scan.windows.push(WindowScan { name: String::new(), result: Err(SkipReason::Unreadable(err.to_string())) }),
                }
            }
        }
        // Missing, or not a directory: "no dir". Checked only on failure, to
        // save a stat per document on the hot path.
        Err(_) if !dir.is_dir() => return scan,
        // The dir exists but cannot be listed: nothing counts, but say why.
        Err(err) => {
            scan.dir_found = true;
            scan.windows.push(WindowScan { name: String::new(), result: Err(SkipReason::Unreadable(format!("{}: {err}", dir.display()))) });
        }
    }
    names.sort();
    for name in names {
        // One read per file; a reusable buffer without the size stat was
        // measured no faster here (open/read/close dominate).
        let result = match std::fs::read(dir.join(&name)) {
            Ok(bytes) => {
                scan.bytes += bytes.len() as u64;
                // Python's json raises RecursionError past ~990 levels: RECON
                // never counts such a file, so neither do we.
                crate::recon::pyjson::scan_window_max_depth(&bytes, crate::recon::pyjson::PYTHON_MAX_DEPTH).map_err(SkipReason::from)
            }
            Err(err) => Err(SkipReason::Unreadable(err.to_string())),
        };
        if let Ok(fc) = &result {
            for (t, c) in scan.totals.iter_mut().zip(fc.counts) {
                *t += c;
            }
        }
        scan.windows.push(WindowScan { name: name.to_string_lossy().into_owned(), result });
    }
    scan.windows.sort_by(|a, b| a.name.cmp(&b.name));
    scan
}

/// Scans many documents in parallel (rayon); results in input order.
pub fn scan_docs(root: &Path, hashes: &[String]) -> Vec<DocScan> {
    hashes.par_iter().map(|h| scan_doc(root, h)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const H1: &str = "0123456789abcdef0123456789abcdef";
    const H2: &str = "fedcba9876543210fedcba9876543210";

    fn idx(l: &str) -> usize {
        shared_constants::index_of_label(l).expect("label")
    }

    #[test]
    fn hash_validation() {
        assert!(is_valid_hash(H1));
        for bad in [
            "",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "../../../../etc/passwd",
            "0123456789abcdef/123456789abcdef",
            "0123456789abcdeg0123456789abcdef",
            "0123456789abcdef0123456789abcd\u{e9}",
        ] {
            assert!(!is_valid_hash(bad), "{bad:?}");
            assert!(matches!(concept_dir(Path::new("/c"), bad), Err(Error::BadHash(_))));
        }
        assert_eq!(concept_dir(Path::new("/c"), H1).ok(), Some(PathBuf::from(format!("/c/{H1}"))));
    }

    #[test]
    fn scans_windows_and_skips_by_kind() {
        let root = tempfile::tempdir().expect("tempdir");
        let d = root.path().join(H1);
        fs::create_dir(&d).expect("mkdir");
        fs::write(d.join("window_0001.json"), r#"[{"domain": "Medical"}, {"domain": "Medical"}, 3]"#).expect("w");
        fs::write(d.join("window_0002.json"), r#"[{"domain": ["Security", "Medical"]}, {"domain": "old"}]"#).expect("w");
        fs::write(d.join("window_0003.json"), b"[\"\xff\"]").expect("w");
        fs::write(d.join("window_0004.json"), r#"[{"domain": "Medical"}"#).expect("w");
        fs::write(d.join("window_0005.json"), r#"{"domain": "Medical"}"#).expect("w");
        fs::create_dir(d.join("window_0006.json")).expect("mkdir");
        fs::write(d.join("window_0007.json"), "[]").expect("w");
        // Not windows.
        fs::write(d.join("meta.json"), r#"[{"domain": "Medical"}]"#).expect("w");
        fs::write(d.join("window_0008.json.bak"), r#"[{"domain": "Medical"}]"#).expect("w");
        fs::write(d.join("Window_0009.json"), r#"[{"domain": "Medical"}]"#).expect("w");
        fs::write(d.join("windows_0010.json"), r#"[{"domain": "Medical"}]"#).expect("w");

        let s = scan_doc(root.path(), H1);
        assert!(s.dir_found && !s.bad_hash);
        let names: Vec<&str> = s.windows.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(
            names,
            ["window_0001.json", "window_0002.json", "window_0003.json", "window_0004.json", "window_0005.json", "window_0006.json", "window_0007.json"]
        );
        let mut want = [0u32; shared_constants::COUNT];
        want[idx("Medical")] = 3;
        want[idx("Security")] = 1;
        assert_eq!(s.totals, want);
        assert_eq!(s.total(), 4);
        assert_eq!(s.skipped(), SkipStats { unreadable: 1, not_utf8: 1, malformed: 1, not_array: 1, non_object_items: 1, no_valid_domain_items: 1 });
        assert_eq!(s.skipped().files_skipped(), 4);
        assert!(matches!(s.windows[2].result, Err(SkipReason::NotUtf8)));
        assert!(matches!(s.windows[5].result, Err(SkipReason::Unreadable(_))));
    }

    #[test]
    fn missing_empty_and_bad() {
        let root = tempfile::tempdir().expect("tempdir");
        let s = scan_doc(root.path(), H1);
        assert!(!s.dir_found && !s.bad_hash && s.windows.is_empty() && s.total() == 0);

        fs::create_dir(root.path().join(H2)).expect("mkdir");
        let s = scan_doc(root.path(), H2);
        assert!(s.dir_found && s.windows.is_empty() && s.total() == 0);

        // A traversal attempt pointing at a real dir with windows is refused.
        let evil = root.path().join("evil");
        fs::create_dir(&evil).expect("mkdir");
        fs::write(evil.join("window_0001.json"), r#"[{"domain": "Medical"}]"#).expect("w");
        let s = scan_doc(&root.path().join(H2), "../evil");
        assert!(s.bad_hash && !s.dir_found && s.total() == 0);
    }

    #[test]
    fn scan_docs_keeps_order_and_stats_add() {
        let root = tempfile::tempdir().expect("tempdir");
        for (h, label, n) in [(H1, "Medical", 2usize), (H2, "Logistics", 5)] {
            let d = root.path().join(h);
            fs::create_dir(&d).expect("mkdir");
            let items = vec![format!("{{\"domain\": \"{label}\"}}"); n].join(",");
            fs::write(d.join("window_0001.json"), format!("[{items}, 1]")).expect("w");
        }
        let hashes = vec![H2.to_string(), "nope".to_string(), H1.to_string()];
        let scans = scan_docs(root.path(), &hashes);
        assert_eq!(scans.len(), 3);
        assert_eq!(scans[0].totals[idx("Logistics")], 5);
        assert!(scans[1].bad_hash);
        assert_eq!(scans[2].totals[idx("Medical")], 2);
        let mut all = SkipStats::default();
        for s in &scans {
            all.add(&s.skipped());
        }
        assert_eq!(all.non_object_items, 2);
        assert_eq!(all.files_skipped(), 0);
    }
}
