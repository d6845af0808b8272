//! The engine through the CLI on generated RECON data: identical results to the
//! Python reference, dry runs that write nothing, migrations, rollback, the
//! writer lock, reprocess quarantine, kill -9 and concurrent Python writers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use crate::common;

use common::{assignments, dump, path_str, tree, Fixture};
use std::path::Path;
use std::process::Command;

fn reference(fx: &Fixture, args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/recon_reference.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--db", path_str(&fx.db()), "--concepts", path_str(&fx.concepts())])
        .args(args)
        .output()
        .expect("python3 must be installed (scripts/setup.sh installs it)");
    assert!(out.status.success(), "reference {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn migrate_with_python(fx: &Fixture) {
    // RECON's own migration, as its StatusDB._init_db() would do it.
    let py = format!(
        "import sqlite3; c=sqlite3.connect({:?}); \
         [c.execute(f'ALTER TABLE documents ADD COLUMN {{x}} TEXT') for x in \
         ['recon_domain','recon_domain_status','recon_domain_assigned_at','peertube_category_pushed_at']]; \
         c.execute('CREATE INDEX IF NOT EXISTS idx_documents_recon_domain_status ON documents(recon_domain_status)'); c.commit()",
        path_str(&fx.db())
    );
    let st = Command::new("python3").args(["-c", &py]).status().expect("python3");
    assert!(st.success());
}

#[test]
fn backfill_and_tiebreaker_match_the_reference_row_by_row() {
    for (docs, seed) in [(1200, 1), (2600, 7)] {
        let base = Fixture::demo(docs, seed);
        let ours = base.copy();
        let theirs = base.copy();
        migrate_with_python(&theirs);
        reference(&theirs, &["backfill"]);
        reference(&theirs, &["tiebreaker"]);
        ours.ok(&["assign-categories", "--backfill"]);
        ours.ok(&["assign-categories", "--tiebreaker-pass"]);
        let (a, b) = (assignments(&ours.conn()), assignments(&theirs.conn()));
        assert_eq!(a.len(), b.len());
        let diffs: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).take(10).collect();
        assert!(diffs.is_empty(), "seed {seed}: rows differ (ours, reference): {diffs:#?}");
        // The data must exercise every path, or the comparison proves little.
        for st in ["assigned", "tied_pass_2", "tied_manual", "needs_reprocess"] {
            assert!(a.iter().any(|r| r.2.as_deref() == Some(st)), "seed {seed}: no {st} row in the fixture");
        }
    }
}

#[test]
fn limited_backfill_matches_the_reference() {
    let base = Fixture::demo(900, 3);
    let ours = base.copy();
    let theirs = base.copy();
    migrate_with_python(&theirs);
    for _ in 0..3 {
        reference(&theirs, &["backfill", "--limit", "150"]);
        ours.ok(&["assign-categories", "--backfill", "--limit", "150"]);
    }
    reference(&theirs, &["tiebreaker", "--limit", "20"]);
    ours.ok(&["assign-categories", "--tiebreaker-pass", "--limit", "20"]);
    assert_eq!(assignments(&ours.conn()), assignments(&theirs.conn()));
}

#[test]
fn dry_run_writes_nothing_even_unmigrated_and_prints_the_benchmarks() {
    let fx = Fixture::demo(800, 11);
    let before = std::fs::read(fx.db()).expect("read db");
    let out = fx.ok(&["assign-categories", "--backfill", "--dry-run"]);
    assert!(out.contains("assigned (% of concept-bearing)"), "{out}");
    assert!(out.contains("needs_reprocess (% of all)"), "{out}");
    let v = fx.json(&["assign-categories", "--backfill", "--dry-run"]);
    let pct = v["percent"]["assigned_of_concept_bearing"].as_f64().expect("pct");
    assert!(pct > 80.0 && pct < 100.0, "{v}");
    assert_eq!(v["selected"].as_u64(), Some(v["tally"]["by_status"].as_object().expect("obj").values().map(|n| n.as_u64().unwrap_or(0)).sum()));
    assert_eq!(std::fs::read(fx.db()).expect("read db"), before, "dry run changed recon.db");
    let st = fx.conn().query_row("SELECT count(*) FROM pragma_table_info('documents') WHERE name='recon_domain'", [], |r| r.get::<_, i64>(0)).expect("q");
    assert_eq!(st, 0, "dry run migrated the db");
}

#[test]
fn migrate_is_idempotent_works_after_recons_own_migration_and_check_exits_1_when_missing() {
    let fx = Fixture::demo(300, 2);
    assert_eq!(fx.run(&["migrate", "--check"]).status.code(), Some(1));
    let first = fx.ok(&["migrate"]);
    assert!(first.contains("recon_domain"), "{first}");
    let again = fx.ok(&["migrate"]);
    assert!(again.contains("nothing to do"), "{again}");
    fx.ok(&["migrate", "--check"]);

    let recon_first = Fixture::demo(300, 2);
    migrate_with_python(&recon_first);
    recon_first.ok(&["migrate"]);
    recon_first.ok(&["migrate", "--check"]);
    // Our migration then RECON's own (its ALTERs are guarded by PRAGMA checks in RECON).
    let cols: i64 = recon_first
        .conn()
        .query_row("SELECT count(*) FROM pragma_table_info('documents') WHERE name LIKE 'recon_domain%' OR name = 'peertube_category_pushed_at'", [], |r| {
            r.get(0)
        })
        .expect("q");
    assert_eq!(cols, 4);
}

/// A migrated fixture backfilled once: the rows before, the run id, the run's summary.
fn backfilled(fx: &Fixture) -> (Vec<String>, String, serde_json::Value) {
    fx.ok(&["migrate"]);
    let before = dump(&fx.conn());
    let v = fx.json(&["assign-categories", "--backfill"]);
    let run = v["run_id"].as_str().expect("run id").to_string();
    (before, run, v)
}

/// A run's state as `runs` lists it.
fn run_state(fx: &Fixture, run: &str) -> serde_json::Value {
    let runs = fx.json(&["runs"]);
    runs.as_array().expect("array").iter().find(|r| r["run_id"] == run).expect("run listed")["state"].clone()
}

#[test]
fn rollback_restores_exactly_and_refuses_rows_changed_since() {
    let fx = Fixture::demo(600, 5);
    let (before, run, v) = backfilled(&fx);
    assert!(v["written"].as_u64().unwrap_or(0) > 100);
    let report = v["report"].as_str().expect("report path");
    assert!(Path::new(report).is_file());

    // Someone assigns one document by hand after the run.
    let hash: String = fx.conn().query_row("SELECT hash FROM documents WHERE recon_domain_status='assigned' LIMIT 1", [], |r| r.get(0)).expect("q");
    fx.conn().execute("UPDATE documents SET recon_domain='Medical', recon_domain_status='manual_assigned' WHERE hash=?1", [&hash]).expect("update");
    let refused = fx.run(&["rollback", "--run", &run]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains(&hash), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(
        fx.conn().query_row("SELECT count(*) FROM documents WHERE recon_domain IS NOT NULL", [], |r| r.get::<_, i64>(0)).expect("q") > 100,
        "a refused rollback must change nothing"
    );
    fx.ok(&["rollback", "--run", &run, "--force"]);
    assert_eq!(dump(&fx.conn()), before, "rollback --force did not restore every row");
    assert_eq!(run_state(&fx, &run), "rolled_back");
}

/// The journal entries every rollback has written so far.
const ROLLBACK_ENTRIES: &str = "SELECT count(*) FROM companion_journal WHERE run_id IN (SELECT run_id FROM companion_runs WHERE command = 'rollback')";

/// Another writer on `db` (RECON's 5 s busy timeout) that waits on its own
/// thread until a rollback has journaled its first restored rows, then runs `write`.
fn once_the_rollback_restores<T: Send + 'static>(
    db: std::path::PathBuf,
    write: impl FnOnce(&rusqlite::Connection) -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        let c = rusqlite::Connection::open(&db).expect("open");
        c.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while c.query_row(ROLLBACK_ENTRIES, [], |r| r.get::<_, i64>(0)).expect("count") == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        write(&c)
    })
}

#[test]
fn a_large_rollback_lets_recon_write_between_its_transactions_and_counts_rows_already_back() {
    let fx = Fixture::demo(4000, 31);
    let (before, run, v) = backfilled(&fx);
    let written = v["written"].as_u64().expect("written");
    assert!(written > 2000, "{v}");
    // As a rollback stopped half-way would leave them: 100 rows already back.
    let back = fx
        .conn()
        .execute(
            "UPDATE documents SET recon_domain = NULL, recon_domain_status = NULL, recon_domain_assigned_at = NULL
              WHERE rowid IN (SELECT rowid FROM documents WHERE recon_domain IS NOT NULL ORDER BY rowid LIMIT 100)",
            [],
        )
        .expect("put back");
    assert_eq!(back, 100);
    fx.conn().execute_batch("CREATE TABLE recon_probe(seen INTEGER);").expect("RECON's table");
    // RECON's writer, with its busy timeout, starts once the rollback has restored its first rows.
    let recon = once_the_rollback_restores(fx.db(), |c| {
        c.execute(&format!("INSERT INTO recon_probe(seen) {ROLLBACK_ENTRIES}"), []).expect("RECON's write never fails");
    });
    let r = fx.json(&["rollback", "--run", &run]);
    recon.join().expect("RECON's writer");
    assert_eq!(r["rows_already_restored"].as_u64(), Some(100), "{r}");
    assert_eq!(r["rows_restored"].as_u64(), Some(written - 100), "{r}");
    let seen: i64 = fx.conn().query_row("SELECT seen FROM recon_probe", [], |r| r.get(0)).expect("RECON's row");
    assert!(
        seen > 0 && (seen as u64) < written - 100,
        "RECON's writer got in between the rollback's transactions (it saw {seen} of {} entries)",
        written - 100
    );
    assert_eq!(dump(&fx.conn()), before, "every row restored");
    assert_eq!(run_state(&fx, &run), "rolled_back");
}

#[test]
fn a_row_a_person_changes_during_the_rollback_is_left_and_reported_and_force_finishes_it() {
    let fx = Fixture::demo(4000, 33);
    let (_, run, v) = backfilled(&fx);
    assert!(v["written"].as_u64().expect("written") > 2000, "{v}");
    // Rows are restored newest entry first: the run's oldest documents entry is written last.
    let last: String = fx
        .conn()
        .query_row("SELECT key FROM companion_journal WHERE run_id = ?1 AND kind = 'documents' ORDER BY id LIMIT 1", [&run], |r| r.get(0))
        .expect("the run's first entry");
    let key = last.clone();
    // A person assigns that document by hand once the rollback has checked
    // every row and restored its first ones (between its two passes, for this row).
    let person = once_the_rollback_restores(fx.db(), move |c| {
        let before_mine: i64 = c.query_row(ROLLBACK_ENTRIES, [], |r| r.get(0)).expect("count");
        c.execute("UPDATE documents SET recon_domain = 'Medical', recon_domain_status = 'manual_assigned' WHERE hash = ?1", [&key])
            .expect("the person's write");
        before_mine
    });
    let out = fx.run(&["--json", "rollback", "--run", &run]);
    let seen = person.join().expect("the person's writer");
    assert!(seen > 0, "the person wrote after the rollback began restoring");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "a rollback that left a row must fail: {text}");
    assert!(text.contains(&last) && text.contains("during the rollback"), "the left row is named: {text}");
    let (domain, status): (Option<String>, Option<String>) = fx
        .conn()
        .query_row("SELECT recon_domain, recon_domain_status FROM documents WHERE hash = ?1", [&last], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("the row");
    assert_eq!((domain.as_deref(), status.as_deref()), (Some("Medical"), Some("manual_assigned")), "the person's choice stands");
    let still: i64 = fx.conn().query_row("SELECT count(*) FROM documents WHERE recon_domain_status IS NOT NULL", [], |r| r.get(0)).expect("q");
    assert_eq!(still, 1, "every other row of the run is restored");
    assert_ne!(run_state(&fx, &run), "rolled_back", "a rollback that left a row does not mark the run rolled back");
    // The operator decides: --force overwrites it and finishes the rollback.
    let forced = fx.json(&["rollback", "--run", &run, "--force"]);
    assert_eq!(forced["rows_restored"].as_u64(), Some(1), "{forced}");
    assert_eq!(run_state(&fx, &run), "rolled_back");
    let left: i64 = fx.conn().query_row("SELECT count(*) FROM documents WHERE recon_domain_status IS NOT NULL", [], |r| r.get(0)).expect("q");
    assert_eq!(left, 0);
}

#[test]
fn second_concurrent_run_is_refused_naming_the_holder() {
    let fx = Fixture::demo(200, 9);
    fx.ok(&["migrate"]);
    let _held = companion::journal::lock::WriterLock::acquire(&fx.db(), "test-holder backfill").expect("lock");
    let out = fx.run(&["assign-categories", "--backfill"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("test-holder backfill"));
}

#[test]
fn reprocess_quarantines_never_deletes_and_rollback_moves_dirs_back() {
    let fx = Fixture::demo(700, 4);
    fx.ok(&["assign-categories", "--backfill"]);
    let concepts_before = tree(&fx.concepts());
    let rows_before = dump(&fx.conn());
    let dry = fx.ok(&["assign-categories", "--reprocess-missing", "--dry-run", "--limit", "10"]);
    assert!(dry.contains("DRY RUN"), "{dry}");
    assert_eq!(tree(&fx.concepts()), concepts_before, "dry run moved files");

    let v = fx.json(&["assign-categories", "--reprocess-missing", "--limit", "25"]);
    let run = v["run_id"].as_str().expect("run").to_string();
    assert_eq!(v["queued"].as_u64(), Some(25), "{v}");
    let queued: i64 = fx
        .conn()
        .query_row(
            "SELECT count(*) FROM documents d JOIN catalogue c USING(hash) WHERE d.status='queued' AND c.status='queued' AND d.recon_domain_status IS NULL",
            [],
            |r| r.get(0),
        )
        .expect("q");
    assert!(queued >= 25, "documents and catalogue rows must both be queued");
    let moved = v["dirs_quarantined"].as_u64().expect("n");
    assert!(moved > 0, "fixture has needs_reprocess docs with dirs");
    let q = fx.root().join("quarantine");
    assert_eq!(tree(&q).iter().filter(|(p, _)| p.matches('/').count() == 2 && p.ends_with('/')).count() as u64, moved);

    fx.ok(&["rollback", "--run", &run]);
    assert_eq!(tree(&fx.concepts()), concepts_before, "concept dirs not restored");
    assert_eq!(dump(&fx.conn()), rows_before, "rows not restored");
}

#[test]
fn kill_9_mid_backfill_leaves_a_consistent_db_and_a_rerun_finishes() {
    let fx = Fixture::demo(4000, 21);
    fx.ok(&["migrate"]);
    let clean = fx.copy();
    clean.ok(&["assign-categories", "--backfill"]);

    let mut child = Command::new(common::BIN)
        .args(["--recon-db", path_str(&fx.db()), "--concepts-dir", path_str(&fx.concepts())])
        .args(["--reports-dir", path_str(&fx.root().join("reports")), "assign-categories", "--backfill"])
        .spawn()
        .expect("spawn");
    // Kill once the first write batches are committed.
    let conn = fx.conn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let n: i64 = conn.query_row("SELECT count(*) FROM companion_journal", [], |r| r.get(0)).unwrap_or(0);
        if n > 0 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity");
    assert_eq!(ok, "ok");
    // Every changed row has its journal entry (same transaction).
    let changed: i64 = conn.query_row("SELECT count(*) FROM documents WHERE recon_domain_status IS NOT NULL", [], |r| r.get(0)).expect("q");
    let journaled: i64 = conn.query_row("SELECT count(DISTINCT key) FROM companion_journal WHERE kind='documents'", [], |r| r.get(0)).expect("q");
    assert_eq!(changed, journaled);
    fx.ok(&["assign-categories", "--backfill"]);
    assert_eq!(assignments(&fx.conn()), assignments(&clean.conn()));
}

#[test]
fn a_python_writer_and_a_backfill_run_together_without_lost_updates() {
    let fx = Fixture::demo(3000, 13);
    fx.ok(&["migrate"]);
    let script = r#"
import sqlite3, sys, time
db = sys.argv[1]
c = sqlite3.connect(db, timeout=30)
c.execute('PRAGMA busy_timeout=5000')
hashes = [r[0] for r in c.execute("SELECT hash FROM documents ORDER BY hash")]
n = 0
for i, h in enumerate(hashes):
    c.execute("UPDATE documents SET error_message = ?, retry_count = retry_count + 1 WHERE hash = ?", ('py-%d' % i, h))
    if i % 20 == 0:
        c.commit()
    n += 1
c.commit()
print(n)
"#;
    let py = Command::new("python3").args(["-c", script, path_str(&fx.db())]).stdout(std::process::Stdio::piped()).spawn().expect("python3");
    fx.ok(&["assign-categories", "--backfill"]);
    let out = py.wait_with_output().expect("python");
    assert!(out.status.success(), "python writer failed: {}", String::from_utf8_lossy(&out.stderr));
    let conn = fx.conn();
    let total: i64 = conn.query_row("SELECT count(*) FROM documents", [], |r| r.get(0)).expect("q");
    let py_ok: i64 = conn.query_row("SELECT count(*) FROM documents WHERE error_message LIKE 'py-%' AND retry_count >= 1", [], |r| r.get(0)).expect("q");
    assert_eq!(py_ok, total, "a Python update was lost");
    let unassigned: i64 = conn
        .query_row("SELECT count(*) FROM documents d JOIN catalogue c USING(hash) WHERE d.status='complete' AND c.source='stream.echo6.co' AND d.recon_domain_status IS NULL", [], |r| r.get(0))
        .expect("q");
    assert_eq!(unassigned, 0, "backfill lost rows");
}

#[test]
fn status_and_taxonomy_print_tables_and_json() {
    let fx = Fixture::demo(300, 8);
    fx.ok(&["assign-categories", "--backfill"]);
    let s = fx.ok(&["assign-categories"]);
    assert!(s.contains("complete PeerTube documents") && s.contains("Agriculture & Livestock"), "{s}");
    let v = fx.json(&["assign-categories"]);
    assert!(v["complete_stream_documents"].as_u64().expect("n") > 0);
    // Unassigned = domain still NULL: exactly the tied_pass_1 and needs_reprocess rows.
    let by = &v["by_status"];
    let pending = by["tied_pass_1"].as_u64().unwrap_or(0) + by["needs_reprocess"].as_u64().unwrap_or(0);
    assert_eq!(v["unassigned"].as_u64(), Some(pending), "{v}");
    let bad = fx.run(&["assign-categories", "--backfill", "--tiebreaker-pass"]);
    assert_eq!(bad.status.code(), Some(2), "conflicting flags are a usage error");
    let missing = Command::new(common::BIN).args(["--recon-db", "/nonexistent/recon.db", "assign-categories"]).output().expect("run");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/recon.db"));
}

#[test]
fn the_kill_switch_stops_cli_pushes_too() {
    let fx = Fixture::demo(200, 17);
    fx.ok(&["assign-categories", "--backfill"]);
    fx.ok(&["pause-push"]);
    let out = fx.run(&["assign-categories", "--push-pending"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("paused"), "{}", String::from_utf8_lossy(&out.stderr));
    fx.ok(&["resume-push"]);
    let out = fx.run(&["assign-categories", "--push-pending"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("paused"), "resume-push must lift the switch");
}

#[test]
fn any_safe_hash_has_its_dir_read_and_no_other_hash_becomes_a_path() {
    let base = Fixture::demo(60, 5);
    let long = "Q".repeat(128);
    let too_long = "Q".repeat(129);
    let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    // Well-formed (a sha256, mixed case, 1 and 128 characters): their dirs are read.
    let good = [(sha, "Medical"), ("AbC", "Security"), ("x", "Logistics"), (long.as_str(), "Navigation")];
    // Refused: each names a real dir of windows that must never be read.
    let bad = ["a b", "a.b", "a-b", "caf\u{e9}", "..", " x", too_long.as_str()];
    {
        let conn = base.conn();
        for (i, h) in good.iter().map(|g| g.0).chain(bad).enumerate() {
            conn.execute(
                "INSERT INTO catalogue(hash, filename, path, source, status, discovered_at) VALUES (?1, 'v.mp4', ?2, 'stream.echo6.co', 'complete', '2000-01-01 00:00:00')",
                rusqlite::params![h, format!("https://stream.echo6.co/w/odd{i}")],
            )
            .expect("catalogue");
            conn.execute("INSERT INTO documents(hash, filename, status, discovered_at) VALUES (?1, 'v.mp4', 'complete', '2000-01-01 00:00:00')", [h])
                .expect("documents");
        }
        let window = |dir: &Path, label: &str| {
            std::fs::create_dir_all(dir).expect("mkdir");
            std::fs::write(dir.join("window_0001.json"), format!(r#"[{{"domain": "{label}"}}, {{"domain": "{label}"}}]"#)).expect("window");
        };
        for (h, label) in good {
            window(&base.concepts().join(h), label);
        }
        for h in bad {
            window(&base.concepts().join(h), "Medical");
        }
    }
    let ours = base.copy();
    let theirs = base.copy();
    migrate_with_python(&theirs);
    reference(&theirs, &["backfill"]);
    let v = ours.json(&["assign-categories", "--backfill"]);
    // The Python reference follows the same rule, row by row.
    assert_eq!(assignments(&ours.conn()), assignments(&theirs.conn()));
    let rows = assignments(&ours.conn());
    let row = |h: &str| rows.iter().find(|r| r.0 == h).cloned().expect("row");
    for (h, label) in good {
        assert_eq!(row(h), (h.to_string(), Some(label.to_string()), Some("assigned".to_string())), "{h}");
    }
    for h in bad {
        assert_eq!(row(h), (h.to_string(), None, Some("needs_reprocess".to_string())), "{h:?}");
    }
    let reported: Vec<&str> = v["bad_hashes"].as_array().expect("bad_hashes").iter().filter_map(|x| x.as_str()).collect();
    for h in bad {
        assert!(reported.contains(&h), "{h:?} not reported as a bad hash: {reported:?}");
    }
    // Reprocess refuses the bad hashes and moves none of their dirs; the
    // assigned well-formed ones are not selected at all.
    let before = tree(&ours.concepts());
    // Refused documents make the run exit 1 (as before this rule); its report still lists them.
    let out = ours.run(&["--json", "assign-categories", "--reprocess-missing"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(v["refused"].as_u64(), Some(bad.len() as u64), "{v}");
    let items = v["items"].as_array().expect("items");
    for h in bad {
        let it = items.iter().find(|i| i["hash"] == h).unwrap_or_else(|| panic!("{h:?} not selected: {v}"));
        assert!(it["error"].as_str().is_some_and(|e| e.contains("invalid document hash")), "{it}");
        assert!(it["quarantined_to"].is_null());
    }
    for (h, _) in good {
        assert!(!items.iter().any(|i| i["hash"] == h), "{h} selected for reprocess");
    }
    let after = tree(&ours.concepts());
    for h in bad.iter().chain(good.iter().map(|g| &g.0)).filter(|h| **h != "..") {
        let w = format!("{h}/window_0001.json");
        assert!(before.iter().any(|(p, _)| *p == w) && after.iter().any(|(p, _)| *p == w), "{h:?} moved");
    }
    assert!(ours.root().join("window_0001.json").exists(), "\"..\" moved the data dir's window");
}
