//! The generator's own tests: RECON's schema, engineered outcomes, malformed
//! kinds, determinism.

use super::plan::{plan, Kind};
use super::render::{py_str, str_list, MALFORMED};
use super::*;
use rusqlite::Connection;

fn small(docs: usize, seed: u64) -> DemoSpec {
    DemoSpec { seed, ..DemoSpec::demo(docs) }
}

fn table_columns(conn: &Connection, table: &str) -> Vec<String> {
    let mut st = conn.prepare(&format!("PRAGMA table_info({table})")).unwrap();
    let cols = st.query_map([], |r| r.get::<_, String>(1)).unwrap();
    cols.map(|c| c.unwrap()).collect()
}

fn dump(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT hash||'|'||filename||'|'||path||'|'||IFNULL(source,'')||'|'||IFNULL(category,'<null>')||'|'||status||'|'||discovered_at FROM catalogue ORDER BY hash",
        "SELECT hash||'|'||status||'|'||discovered_at||'|'||concepts_extracted||'|'||IFNULL(book_title,'') FROM documents ORDER BY hash",
    ] {
        let mut st = conn.prepare(sql).unwrap();
        out.extend(st.query_map([], |r| r.get::<_, String>(0)).unwrap().map(|r| r.unwrap()));
    }
    out
}

/// Removes the deep `context` values (serde_json without `unbounded_depth`
/// stops at 128 levels) after checking they are balanced, and maps Python's
/// non-finite tokens to numbers; then parses strictly, trailing data refused.
fn parse_py(text: &str) -> Option<serde_json::Value> {
    let mut t = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(p) = rest.find(",\n    \"context\": ") {
        t.push_str(&rest[..p]);
        let after = &rest[p..];
        let open = after.find('[')?;
        let mut depth = 0usize;
        let mut end = None;
        for (i, c) in after[open..].char_indices() {
            match c {
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(open + i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end?..];
    }
    t.push_str(rest);
    let t = t.replace(": NaN", ": 0").replace(": Infinity", ": 0");
    serde_json::from_str(&t).ok()
}

/// Pass 1 with Python's reading rules for the kinds this module writes.
fn pass1(dir: &Path) -> Option<[u32; 18]> {
    let rd = fs::read_dir(dir).ok()?;
    let mut counts = [0u32; 18];
    for e in rd {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("window_") && name.ends_with(".json")) {
            continue;
        }
        let bytes = fs::read(e.path()).unwrap();
        let Ok(text) = std::str::from_utf8(&bytes) else { continue };
        let Some(v) = parse_py(text) else { continue };
        let Some(items) = v.as_array() else { continue };
        for it in items {
            let Some(obj) = it.as_object() else { continue };
            match obj.get("domain") {
                Some(serde_json::Value::String(s)) => {
                    if let Some(i) = shared_constants::index_of_label(s) {
                        counts[i] += 1;
                    }
                }
                Some(serde_json::Value::Array(a)) => {
                    for s in a.iter().filter_map(|x| x.as_str()) {
                        if let Some(i) = shared_constants::index_of_label(s) {
                            counts[i] += 1;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Some(counts)
}

#[test]
fn small_demo_has_recon_schema_and_engineered_outcomes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let s = generate(&dir, &small(600, 7)).unwrap();
    let conn = Connection::open(dir.join("recon.db")).unwrap();

    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(
        table_columns(&conn, "catalogue"),
        ["hash", "filename", "path", "size_bytes", "source", "category", "status", "discovered_at", "path_updated_at"]
    );
    let doc_cols = table_columns(&conn, "documents");
    assert_eq!(doc_cols.len(), 19);
    assert_eq!(doc_cols.first().map(String::as_str), Some("hash"));
    assert_eq!(doc_cols.last().map(String::as_str), Some("organized_at"));
    assert!(!doc_cols.iter().any(|c| c.starts_with("recon_domain") || c.starts_with("peertube_")), "feature columns must not be pre-applied");
    let idx: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND name='idx_documents_status'", [], |r| r.get(0)).unwrap();
    assert_eq!(idx, 1);
    for other in ["pages", "settings", "processing_log"] {
        let n: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {other}"), [], |r| r.get(0)).unwrap();
        assert!(n > 0, "{other} is empty");
    }

    let count = |sql: &str| -> u64 { conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64 };
    assert_eq!(count("SELECT COUNT(*) FROM documents"), s.docs);
    assert_eq!(s.stream_docs, 600);
    assert_eq!(count("SELECT COUNT(*) FROM documents d JOIN catalogue c ON c.hash = d.hash WHERE c.source = 'stream.echo6.co'"), 600);
    assert_eq!(s.non_stream_docs, 18);
    assert_eq!(
        count("SELECT COUNT(*) FROM documents d JOIN catalogue c ON c.hash = d.hash WHERE c.source = 'stream.echo6.co' AND d.status = 'complete'"),
        s.complete
    );
    assert!(s.complete > 540 && s.complete < 600, "{s:?}");
    assert_eq!(count("SELECT COUNT(*) FROM catalogue WHERE source = 'stream.echo6.co' AND category IS NULL"), 2);
    assert_eq!(count("SELECT COUNT(*) FROM catalogue WHERE category = 'Transcript'"), s.transcript_size);
    assert_eq!(s.transcript_size, 252);
    assert!(count("SELECT COUNT(DISTINCT discovered_at) FROM documents") > s.docs * 9 / 10);
    assert!(count("SELECT COUNT(*) FROM documents WHERE status IN ('queued','enriching','failed')") > 0);
    assert!(
        count("SELECT COUNT(*) FROM catalogue WHERE length(path) - length(replace(path, '/w/', '')) = 3 AND length(substr(path, instr(path, '/w/') + 3)) = 22")
            > 0
    );
    assert!(count("SELECT COUNT(*) FROM catalogue WHERE length(substr(path, instr(path, '/w/') + 3)) = 36") > 0);
    // Every video id is PeerTube's: a short one decodes to a uuid.
    let mut st = conn.prepare("SELECT path FROM catalogue WHERE path LIKE '%/w/%'").unwrap();
    let paths: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
    assert!(paths.iter().all(|p| crate::peertube::video_id::from_path(p).is_ok()), "a video id that PeerTube's codec cannot read");
    assert_eq!(count("SELECT COUNT(*) FROM documents WHERE length(hash) != 32 OR hash GLOB '*[^0-9a-f]*'"), 0);

    // Rates as asked, exactly as planned.
    let re = s.engineered_reprocess as f64 / s.complete as f64;
    assert!((re - 0.20).abs() < 0.01, "{re}");
    let tie = s.engineered_ties as f64 / s.concept_bearing as f64;
    assert!((tie - 0.05).abs() < 0.01, "{tie}");
    assert_eq!(s.expected_assigned + s.engineered_ties, s.concept_bearing);

    // Every complete video's files give exactly the planned pass-1 outcome.
    let mut st = conn
        .prepare("SELECT d.hash FROM documents d JOIN catalogue c ON c.hash = d.hash WHERE c.source = 'stream.echo6.co' AND d.status = 'complete'")
        .unwrap();
    let hashes: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
    let (mut assigned, mut tied, mut reprocess) = (0u64, 0u64, 0u64);
    for h in &hashes {
        match pass1(&dir.join("concepts").join(h)) {
            None => reprocess += 1,
            Some(c) => {
                let top = *c.iter().max().unwrap();
                let n_top = c.iter().filter(|&&n| n == top).count();
                if top == 0 {
                    reprocess += 1
                } else if n_top == 1 {
                    assigned += 1
                } else {
                    tied += 1
                }
            }
        }
    }
    assert_eq!((assigned, tied, reprocess), (s.expected_assigned, s.engineered_ties, s.engineered_reprocess));

    // Files: pretty-printed like Python, with the oddities asked for.
    assert!(s.windows_written > 1000);
    assert!(s.bytes_written > 0);
    let all: Vec<Vec<u8>> = walk(&dir.join("concepts"));
    let text_of = |needle: &[u8]| all.iter().filter(|b| b.windows(needle.len()).any(|w| w == needle)).count();
    assert!(text_of(b"\"confidence\": NaN") > 0);
    assert!(text_of("café".as_bytes()) + text_of("°C".as_bytes()) + text_of("Zürich".as_bytes()) > 0);
    assert!(text_of(b"\"domain\": [") > 0);
    assert!(text_of(b"\"domain\": \"Comms\"") + text_of(b"\"domain\": \"medical\"") + text_of(b"\"domain\": \"Survival\"") > 0);
    assert!(text_of(b"\"domain\": null") > 0);
    assert!(all.iter().any(|b| b.as_slice() == b"[]"));
    assert!(s.malformed_files > 0);
    let sample = all.iter().find(|b| b.starts_with(b"[\n  {\n    \"title\": ")).expect("a pretty-printed window");
    assert!(sample.ends_with(b"\n  }\n]"));
}

fn walk(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for d in fs::read_dir(dir).unwrap() {
        let p = d.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(fs::read(&p).unwrap());
        }
    }
    out
}

#[test]
fn malformed_kinds_all_appear_when_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = DemoSpec { malformed_rate: 0.5, ..small(120, 3) };
    let s = generate(tmp.path(), &spec).unwrap();
    for k in MALFORMED {
        assert!(s.malformed_by_kind.get(k.name()).copied().unwrap_or(0) > 0, "{} missing: {s:?}", k.name());
    }
    let all = walk(&tmp.path().join("concepts"));
    assert!(all.iter().any(|b| b.starts_with(b"\xEF\xBB\xBF[")));
    assert!(all.iter().any(|b| std::str::from_utf8(b).is_err()));
    assert!(all.iter().any(|b| b.starts_with(b"{\n  \"title\"")));
    // Nesting beyond 128 levels, still well-formed once the limit is lifted.
    let deep = all.iter().find(|b| b.windows(6).any(|w| w == b"\"deep\"")).expect("deep file");
    let text = String::from_utf8_lossy(deep).replace(": NaN", ": 0").replace(": Infinity", ": 0");
    assert!(parse_py(&text).is_some_and(|v| v.is_array()));
    assert!(serde_json::from_str::<serde_json::Value>(&text).is_err(), "serde_json's default limit must reject it");
}

#[test]
fn transcript_is_a_mega_channel_at_2000_docs() {
    let spec = small(2000, 1);
    let p = plan(&spec);
    let transcript = p.channels.iter().find(|c| c.name.as_deref() == Some("Transcript")).unwrap();
    assert!(transcript.size > 500, "{}", transcript.size);
    let sizes: Vec<usize> = p.channels.iter().filter(|c| c.name.is_some()).map(|c| c.size).collect();
    assert!(sizes.iter().any(|&n| (100..=400).contains(&n)), "{sizes:?}");
    assert!(sizes.iter().filter(|&&n| n <= 30).count() > 20, "{sizes:?}");
    assert_eq!(p.docs.iter().filter(|d| d.kind == Kind::Stream).count(), 2000);
    // Always present, even tiny.
    assert!(plan(&small(5, 1)).channels.iter().any(|c| c.name.as_deref() == Some("Transcript")));
    let prod = DemoSpec::production();
    assert_eq!(prod.docs, 22_000);
    assert_eq!(prod.transcript_docs, 9_200);
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let c = tmp.path().join("c");
    let sa = generate(&a, &small(150, 11)).unwrap();
    let sb = generate(&b, &small(150, 11)).unwrap();
    generate(&c, &small(150, 12)).unwrap();
    let rows = |d: &Path| dump(&Connection::open(d.join("recon.db")).unwrap());
    assert_eq!(rows(&a), rows(&b));
    assert_ne!(rows(&a), rows(&c));
    assert_eq!(walk(&a.join("concepts")).len(), walk(&b.join("concepts")).len());
    assert_eq!(sa.bytes_written, sb.bytes_written);
    // Byte-identical files under the same names.
    for e in fs::read_dir(a.join("concepts")).unwrap().take(20) {
        let name = e.unwrap().file_name();
        for f in fs::read_dir(a.join("concepts").join(&name)).unwrap() {
            let f = f.unwrap();
            let other = b.join("concepts").join(&name).join(f.file_name());
            assert_eq!(fs::read(f.path()).unwrap(), fs::read(other).unwrap());
        }
    }
}

#[test]
fn refuses_to_overwrite_and_rejects_bad_specs() {
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path(), &small(20, 1)).unwrap();
    assert!(matches!(generate(tmp.path(), &small(20, 1)), Err(Error::Refused(_))));
    let other = tmp.path().join("x");
    assert!(generate(&other, &DemoSpec { windows_per_doc: (3, 2), ..small(20, 1) }).is_err());
    assert!(generate(&other, &DemoSpec { tie_rate: 1.5, ..small(20, 1) }).is_err());
    assert!(generate(&other, &DemoSpec { docs: 0, ..small(20, 1) }).is_err());
}

/// Production size (~600 MB on disk): opt in with
/// `cargo test --release -p recon-companion --lib demo::tests::production_size -- --ignored --nocapture`.
#[test]
#[ignore = "writes ~600 MB; run explicitly to measure"]
fn production_size_generation() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let s = generate(tmp.path(), &DemoSpec::production()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    eprintln!("{}", serde_json::to_string_pretty(&s).unwrap());
    eprintln!("production demo: {secs:.1} s, {:.0} MB/s", s.bytes_written as f64 / 1e6 / secs);
    assert_eq!(s.stream_docs, 22_000);
    assert_eq!(s.transcript_size, 9_200);
    assert!((120_000..=180_000).contains(&s.files_written), "{}", s.files_written);
    assert!((500_000_000..=700_000_000).contains(&s.bytes_written), "{}", s.bytes_written);
    assert!(secs < 120.0, "{secs}");
}

#[test]
fn python_style_strings() {
    let mut b = Vec::new();
    py_str(&mut b, "a\"b\\c\nd\te\u{1}é水");
    assert_eq!(String::from_utf8(b).unwrap(), "\"a\\\"b\\\\c\\nd\\te\\u0001é水\"");
    let mut l = Vec::new();
    str_list(&mut l, 1, &["x", "y"]);
    assert_eq!(String::from_utf8(l).unwrap(), "[\n    \"x\",\n    \"y\"\n  ]");
}
