//! Unit tests of reading concept dirs: listing, reading, scanning, the reads alone.

use super::*;
use std::fs;

const H1: &str = "0123456789abcdef0123456789abcdef";
const H2: &str = "fedcba9876543210fedcba9876543210";

fn idx(l: &str) -> usize {
    shared_constants::index_of_label(l).expect("label")
}

#[test]
fn hash_validation() {
    // The rule lives in `recon::hash` (tested there); concept_dir follows it.
    // Once refused here as "not 32 lowercase hex", now one safe path
    // component each: used as written, case kept.
    for good in [
        H1,
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "0123456789abcdeg0123456789abcdef",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x",
    ] {
        assert!(is_valid_hash(good), "{good:?}");
        assert_eq!(concept_dir(Path::new("/c"), good).ok(), Some(PathBuf::from(format!("/c/{good}"))));
    }
    let too_long = "a".repeat(129);
    for bad in [
        "",
        too_long.as_str(),
        ".",
        "..",
        "../../../../etc/passwd",
        "0123456789abcdef/123456789abcdef",
        "0123456789abcdef\\123456789abcdef",
        "0123456789abcdef0123456789abcd\u{e9}",
        "0123456789abcdef0123456789abcdef\0",
        " 0123456789abcdef0123456789abcdef",
        "0123456789abcdef 0123456789abcdef",
    ] {
        assert!(!is_valid_hash(bad), "{bad:?}");
        assert!(matches!(concept_dir(Path::new("/c"), bad), Err(Error::BadHash(_))));
    }
}

#[test]
fn any_safe_component_has_its_dir_read_case_kept() {
    let root = tempfile::tempdir().expect("tempdir");
    let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let long = "Ab9".repeat(42) + "xy"; // 128 characters
    for (h, label) in [(sha, "Medical"), ("AbC", "Security"), ("x", "Logistics"), (long.as_str(), "Navigation")] {
        let d = root.path().join(h);
        fs::create_dir(&d).expect("mkdir");
        fs::write(d.join("window_0001.json"), format!("[{{\"domain\": \"{label}\"}}]")).expect("w");
    }
    for (h, label) in [(sha, "Medical"), ("AbC", "Security"), ("x", "Logistics"), (long.as_str(), "Navigation")] {
        let s = scan_doc(root.path(), h);
        assert!(s.dir_found && !s.bad_hash, "{h}");
        assert_eq!((s.total(), s.totals[idx(label)]), (1, 1), "{h}");
    }
    // Case is kept: "abc" is another (missing) dir, not "AbC"'s.
    let s = scan_doc(root.path(), "abc");
    assert!(!s.dir_found && !s.bad_hash && s.total() == 0);
}

#[test]
fn refused_hashes_never_reach_the_file_system() {
    // Each refused hash names a real dir full of windows (where one can be
    // made): none is read, and each is reported as a bad hash.
    let root = tempfile::tempdir().expect("tempdir");
    let concepts = root.path().join("concepts");
    let window = |d: &Path| {
        fs::create_dir_all(d).expect("mkdir");
        fs::write(d.join("window_0001.json"), r#"[{"domain": "Medical"}]"#).expect("w");
    };
    for name in ["a b", " ab", "ab\t", "caf\u{e9}", "a.b", "a-b", "a\\b"] {
        window(&concepts.join(name));
    }
    window(&concepts); // "." would read the concepts dir itself
    window(root.path()); // ".." its parent
    window(&concepts.join("a").join("b")); // "a/b"
    let too_long = "a".repeat(129);
    window(&concepts.join(&too_long));
    for bad in ["a b", " ab", "ab\t", "caf\u{e9}", "a.b", "a-b", "a\\b", ".", "..", "a/b", "/", "", "a\0b", too_long.as_str()] {
        let s = scan_doc(&concepts, bad);
        assert!(s.bad_hash && !s.dir_found && s.windows.is_empty() && s.total() == 0 && s.bytes == 0, "{bad:?}");
    }
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
    let mut want = [0u64; shared_constants::COUNT];
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
fn a_reused_buffer_holds_each_file_alone() {
    let root = tempfile::tempdir().expect("tempdir");
    let d = root.path().join(H1);
    fs::create_dir(&d).expect("mkdir");
    // Larger than one read step, then a short file: a stale tail of the
    // first would make the second malformed or count twice.
    let big = format!("[{}]", vec![r#"{"domain": "Medical"}"#; 8000].join(","));
    assert!(big.len() > READ_STEP);
    fs::write(d.join("window_0001.json"), &big).expect("w");
    fs::write(d.join("window_0002.json"), r#"[{"domain": "Security"}]"#).expect("w");
    std::os::unix::fs::symlink(d.join("window_0002.json"), d.join("window_0003.json")).expect("symlink");
    // A concept "dir" that is a file is no dir, as before.
    fs::write(root.path().join(H2), "not a dir").expect("w");
    let mut buf = Vec::new();
    let s = scan_doc_with(root.path(), H1, &mut buf);
    assert_eq!(s.totals[idx("Medical")], 8000);
    assert_eq!(s.totals[idx("Security")], 2, "the symlinked window is read like its target");
    assert_eq!(s.bytes, big.len() as u64 + 2 * r#"[{"domain": "Security"}]"#.len() as u64);
    assert_eq!(s.skipped().files_skipped(), 0);
    let f = scan_doc_with(root.path(), H2, &mut buf);
    assert!(!f.dir_found && f.windows.is_empty());
    // A buffer grown past KEPT_MAX by one file is not kept for the next.
    let huge = format!("[{}]", vec![r#"{"domain": "Medical"}"#; KEPT_MAX / 20].join(","));
    fs::write(d.join("window_0004.json"), &huge).expect("w");
    let s = scan_doc_with(root.path(), H1, &mut buf);
    assert_eq!(s.totals[idx("Medical")], 8000 + (KEPT_MAX / 20) as u64);
    assert!(buf.capacity() > KEPT_MAX);
    let small = root.path().join("small");
    fs::create_dir(&small).expect("mkdir");
    fs::write(small.join("window_0001.json"), r#"[{"domain": "Security"}]"#).expect("w");
    let s = scan_doc_with(root.path(), "small", &mut buf);
    assert_eq!(s.totals[idx("Security")], 1);
    assert!(buf.capacity() <= KEPT_MAX, "kept {} bytes", buf.capacity());
}

#[test]
fn read_windows_reads_what_a_scan_reads() {
    let root = tempfile::tempdir().expect("tempdir");
    let d = root.path().join(H1);
    fs::create_dir(&d).expect("mkdir");
    fs::write(d.join("window_0001.json"), r#"[{"domain": "Medical"}]"#).expect("w");
    fs::write(d.join("window_0002.json"), "not json").expect("w");
    fs::write(d.join("meta.json"), "{}").expect("w");
    let hashes = [H1.to_string(), H2.to_string(), "../x".to_string()];
    let scanned: u64 = scan_docs(root.path(), &hashes).iter().map(|s| s.bytes).sum();
    let read = read_windows(root.path(), &hashes);
    assert_eq!(read, ReadTotals { files: 2, bytes: scanned });
    assert_eq!(scanned, (r#"[{"domain": "Medical"}]"#.len() + "not json".len()) as u64, "meta.json is no window");
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
    let hashes = vec![H2.to_string(), "no/pe".to_string(), H1.to_string()];
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
