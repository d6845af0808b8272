//! Reads documents' concept dirs (`{root}/{hash}/window_*.json`) and counts their domain labels, in parallel.

use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use rayon::prelude::*;

use crate::assign::{self, Counts};
use crate::error::Error;
use crate::recon::pyjson::{FileCounts, Invalid};

pub use crate::recon::hash::is_valid_hash;

/// The concept dir of a document; the hash comes from the database or the
/// API, so it is checked (the rule in [`crate::recon::hash`]) before it can
/// become a path component. `root` may be any dir a hash names an entry of
/// (the concepts dir, a quarantine dir).
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
    /// Set when `windows` was dropped ([`DocScan::without_windows`]): how many
    /// window files there were and what they skipped.
    pub dropped_windows: Option<(u64, SkipStats)>,
}

impl DocScan {
    /// Sum of all valid-label counts (0 → `needs_reprocess`).
    pub fn total(&self) -> u64 {
        assign::total(&self.totals)
    }

    /// Window files read (valid or skipped).
    pub fn files(&self) -> u64 {
        self.dropped_windows.map_or(self.windows.len() as u64, |(n, _)| n)
    }

    /// The same scan without its per-file list (kept: totals, file count,
    /// skips): what a pass holds of documents it only sums.
    pub fn without_windows(mut self) -> DocScan {
        if self.dropped_windows.is_none() {
            self.dropped_windows = Some((self.files(), self.skipped()));
            self.windows = Vec::new();
        }
        self
    }

    /// What was skipped in this document, by kind.
    pub fn skipped(&self) -> SkipStats {
        if let Some((_, s)) = self.dropped_windows {
            return s;
        }
        let mut s = SkipStats::default();
        for w in &self.windows {
            match &w.result {
                Ok(fc) => {
                    s.non_object_items = s.non_object_items.saturating_add(fc.non_objects);
                    s.no_valid_domain_items = s.no_valid_domain_items.saturating_add(fc.no_valid_domain);
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
        self.unreadable = self.unreadable.saturating_add(other.unreadable);
        self.not_utf8 = self.not_utf8.saturating_add(other.not_utf8);
        self.malformed = self.malformed.saturating_add(other.malformed);
        self.not_array = self.not_array.saturating_add(other.not_array);
        self.non_object_items = self.non_object_items.saturating_add(other.non_object_items);
        self.no_valid_domain_items = self.no_valid_domain_items.saturating_add(other.no_valid_domain_items);
    }

    pub fn files_skipped(&self) -> u64 {
        self.unreadable.saturating_add(self.not_utf8).saturating_add(self.malformed).saturating_add(self.not_array)
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
    scan_doc_with(root, hash, &mut Vec::new())
}

/// [`scan_doc`] reading each window into `buf` (reused across calls). The
/// dir is opened once and its files through its descriptor: per file one
/// `openat` of a single name, reads, a close — no walk of the whole path and
/// no size stat (a 22,000-video dry run, 113K files: 1.51 → 1.40 CPU
/// seconds, 0.83 → 0.78 s; what is left is the kernel's per-file work and
/// the scan itself).
fn scan_doc_with(root: &Path, hash: &str, buf: &mut Vec<u8>) -> DocScan {
    let mut scan = DocScan::default();
    let Ok(dir) = concept_dir(root, hash) else {
        scan.bad_hash = true;
        return scan;
    };
    let listed = open_dir(&dir).and_then(|fd| {
        let names = window_names(&fd, &mut scan)?;
        Ok((fd, names))
    });
    let (fd, names) = match listed {
        Ok(listed) => listed,
        // Missing, or not a directory: "no dir". Checked only on failure, to
        // save a stat per document on the hot path.
        Err(_) if !dir.is_dir() => return scan,
        // The dir exists but cannot be listed: nothing counts, but say why.
        Err(err) => {
            scan.dir_found = true;
            scan.windows.push(WindowScan { name: String::new(), result: Err(SkipReason::Unreadable(format!("{}: {err}", dir.display()))) });
            return scan;
        }
    };
    scan.dir_found = true;
    for name in names {
        let result = match read_at(&fd, &name, buf) {
            Ok(()) => {
                scan.bytes = scan.bytes.saturating_add(buf.len() as u64);
                // Python's json raises RecursionError past ~990 levels: RECON
                // never counts such a file, so neither do we.
                crate::recon::pyjson::scan_window_max_depth(buf, crate::recon::pyjson::PYTHON_MAX_DEPTH).map_err(SkipReason::from)
            }
            Err(err) => Err(SkipReason::Unreadable(err.to_string())),
        };
        if let Ok(fc) = &result {
            assign::add_counts(&mut scan.totals, &fc.counts);
        }
        scan.windows.push(WindowScan { name: String::from_utf8_lossy(name.as_bytes()).into_owned(), result });
    }
    scan.windows.sort_by(|a, b| a.name.cmp(&b.name));
    scan
}

/// The dir as a descriptor its windows are opened through.
fn open_dir(dir: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?)
}

/// The dir's window names in byte order (as RECON sorts them); an entry that
/// cannot be read is recorded as an unnamed unreadable window.
///
/// Listed straight from `fd` with `getdents64` into a stack buffer: no second
/// descriptor for the listing (`Dir::read_from` opens `.` again, with an
/// `fcntl` and a `close`: three syscalls and a heap buffer per document).
fn window_names(fd: &OwnedFd, scan: &mut DocScan) -> std::io::Result<Vec<CString>> {
    let mut names = Vec::new();
    let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
    let mut dir = rustix::fs::RawDir::new(fd, &mut buf);
    while let Some(entry) = dir.next() {
        match entry {
            Ok(e) if is_window_name(std::ffi::OsStr::from_bytes(e.file_name().to_bytes())) => names.push(e.file_name().to_owned()),
            Ok(_) => {}
            // The entry's name is unknown; still count the failure, and stop
            // there, as the listing cannot go on past an error.
            Err(err) => {
                scan.windows.push(WindowScan { name: String::new(), result: Err(SkipReason::Unreadable(std::io::Error::from(err).to_string())) });
                break;
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Reads the file `name` of the dir `dir` into `buf` (cleared first).
fn read_at(dir: &OwnedFd, name: &CStr, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    if buf.capacity() > KEPT_MAX {
        // One huge window must not keep its size for every file after it.
        *buf = Vec::new();
    }
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < READ_STEP {
            buf.reserve(READ_STEP);
        }
        match rustix::io::read(&fd, rustix::buffer::spare_capacity(buf)) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The least free room a read is given: concept files are a few KB, so the
/// buffer soon holds the largest one and reads stop allocating.
const READ_STEP: usize = 64 * 1024;

/// The largest buffer kept from one file to the next.
const KEPT_MAX: usize = 4 * 1024 * 1024;

/// Scans many documents in parallel (rayon); results in input order.
pub fn scan_docs(root: &Path, hashes: &[String]) -> Vec<DocScan> {
    hashes.par_iter().map_init(Vec::new, |buf, h| scan_doc_with(root, h, buf)).collect()
}

/// Window files and bytes read by [`read_windows`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadTotals {
    pub files: u64,
    pub bytes: u64,
}

/// The reads of [`scan_docs`] without the scan: every window of `hashes`
/// opened, read and closed the same way, in parallel, nothing parsed. What
/// reading alone costs on this machine — the floor under any files pass
/// (the limits bench prints it beside the backfill). Unreadable files and
/// dirs are left out of the totals.
pub fn read_windows(root: &Path, hashes: &[String]) -> ReadTotals {
    hashes
        .par_iter()
        .map_init(Vec::new, |buf, h| {
            let mut t = ReadTotals::default();
            let Some(fd) = concept_dir(root, h).ok().and_then(|d| open_dir(&d).ok()) else { return t };
            let Ok(names) = window_names(&fd, &mut DocScan::default()) else { return t };
            for name in names {
                if read_at(&fd, &name, buf).is_ok() {
                    t.files += 1;
                    t.bytes += buf.len() as u64;
                }
            }
            t
        })
        .reduce(ReadTotals::default, |a, b| ReadTotals { files: a.files + b.files, bytes: a.bytes + b.bytes })
}

#[cfg(test)]
mod tests;
