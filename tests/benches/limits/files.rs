//! The files section: `recon-companion` processes against `recon_reference.py` on fresh copies of the generated library, RECON's writers during ours, the backfill's peak RSS.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use companion::demo::bench::{ensure_data, run_measured, ChildRun};
use serde_json::Value;

use super::{cores, workspace, Row};

/// Builds the release binary (the bench is in another package, so no `CARGO_BIN_EXE_`) and returns its path.
pub fn release_binary() -> PathBuf {
    let ws = workspace();
    eprintln!("building recon-companion (release)…");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    // Without the variables cargo sets for this bench: ring's build script
    // tracks CARGO_PKG_NAME and CARGO_MANIFEST_DIR, so with them the two
    // builds would rebuild ring (and all above it) for each other every run.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_CFG_", "CARGO_PRIMARY_PACKAGE", "OUT_DIR"].iter().any(|p| k.starts_with(p)) {
            cmd.env_remove(k);
        }
    }
    let t = Instant::now();
    let st = cmd.args(["build", "--release", "-q", "-p", "recon-companion"]).current_dir(&ws).status().expect("run cargo build");
    eprintln!("built in {:.0} s", t.elapsed().as_secs_f64());
    assert!(st.success(), "cargo build --release -p recon-companion failed");
    ws.join("target/release/recon-companion")
}

/// A fresh copy of `pristine` at `to` (any old WAL files removed).
fn fresh_copy(pristine: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", to.display()));
    }
    std::fs::copy(pristine, to).unwrap_or_else(|e| panic!("copy {} to {}: {e}", pristine.display(), to.display()));
}

/// Our runbook commands on one db, each as a process.
struct Ours {
    exe: PathBuf,
    concepts: PathBuf,
    reports: PathBuf,
}

impl Ours {
    fn run(&self, db: &Path, args: &[&str]) -> (Value, ChildRun) {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("--json").arg("--recon-db").arg(db).arg("--concepts-dir").arg(&self.concepts).arg("--reports-dir").arg(&self.reports).args(args);
        let r = run_measured(cmd).unwrap_or_else(|e| panic!("recon-companion {args:?}: {e}"));
        let v = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("recon-companion {args:?} printed no JSON: {e}"));
        (v, r)
    }
}

/// `recon_reference.py --db X --concepts C <cmd>`: its counts and the run.
fn reference(db: &Path, concepts: &Path, cmd: &str) -> (Value, ChildRun) {
    let mut c = Command::new("python3");
    c.arg(workspace().join("tests/python/recon_reference.py")).arg("--db").arg(db).arg("--concepts").arg(concepts).arg(cmd);
    let r = run_measured(c).unwrap_or_else(|e| panic!("recon_reference.py {cmd}: {e}"));
    let v: Value = serde_json::from_str(&r.stdout).expect("recon_reference.py JSON");
    (v["counts"].clone(), r)
}

/// A running `recon_writers.py`.
struct Writers {
    child: std::process::Child,
}

impl Writers {
    /// Starts `recon_writers.py` on `db` and waits until it has written a few rows.
    fn start(db: &Path) -> Writers {
        let conn = rusqlite::Connection::open(db).expect("open writers' db");
        let count = || -> i64 { conn.query_row("SELECT count(*) FROM bench_recon_writes", [], |r| r.get(0)).unwrap_or(0) };
        let before = count();
        let child = Command::new("python3")
            .arg(workspace().join("tests/python/recon_writers.py"))
            .arg("--db")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start recon_writers.py");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n = count() - before;
            if n >= 20 {
                break;
            }
            assert!(Instant::now() < deadline, "recon_writers.py wrote {n} rows in 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        Writers { child }
    }

    /// Closes its stdin and reads its JSON line.
    fn stop(mut self) -> Value {
        drop(self.child.stdin.take());
        let mut text = String::new();
        self.child.stdout.take().expect("writers' stdout").read_to_string(&mut text).expect("read writers' JSON");
        let st = self.child.wait().expect("wait for recon_writers.py");
        assert!(st.success(), "recon_writers.py failed: {st}");
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("recon_writers.py printed {text:?}: {e}"))
    }
}

fn secs(v: f64) -> String {
    format!("{v:.2} s")
}

/// The statuses our summary tallied.
fn our_counts(v: &Value) -> Value {
    v["tally"]["by_status"].clone()
}

/// Items 3 and 5 on `videos` videos.
pub fn section(videos: usize) -> Vec<Row> {
    let ws = workspace();
    let exe = release_binary();
    let dir = if videos == 22_000 { ws.join("target/bench-data") } else { ws.join(format!("target/bench-data-{videos}")) };
    let data = ensure_data(&dir, videos).expect("generate the bench's data");
    let pristine = data.join("recon.db");
    let work = dir.join("limits");
    std::fs::create_dir_all(&work).expect("limits work dir");
    let ours = Ours { exe, concepts: data.join("concepts"), reports: work.join("reports") };
    let at = |name: &str| work.join(name);

    eprintln!("ours: dry run (page cache), migrate, backfill, tiebreaker…");
    let db = at("ours.db");
    fresh_copy(&pristine, &db);
    ours.run(&db, &["assign-categories", "--backfill", "--dry-run"]);
    let (_, migrate) = ours.run(&db, &["migrate"]);
    let (back, backfill) = ours.run(&db, &["assign-categories", "--backfill"]);
    let (tie, tiebreak) = ours.run(&db, &["assign-categories", "--tiebreaker-pass"]);

    eprintln!("recon_reference.py: backfill, tiebreaker…");
    let rdb = at("reference.db");
    fresh_copy(&pristine, &rdb);
    let (rback_counts, rback) = reference(&rdb, &ours.concepts, "backfill");
    let (rtie_counts, rtie) = reference(&rdb, &ours.concepts, "tiebreaker");
    let same_back = our_counts(&back) == rback_counts;
    let same_tie = our_counts(&tie) == rtie_counts;
    if !same_back || !same_tie {
        eprintln!("counts differ: ours {} / {}, reference {rback_counts} / {rtie_counts}", our_counts(&back), our_counts(&tie));
    }

    eprintln!("RECON's writers alone, then during our migrate + backfill + tiebreaker…");
    let wdb = at("writers.db");
    fresh_copy(&pristine, &wdb);
    let alone = Writers::start(&wdb);
    std::thread::sleep(Duration::from_secs_f64(backfill.seconds + tiebreak.seconds + migrate.seconds));
    let alone = alone.stop();
    let w = Writers::start(&wdb);
    ours.run(&wdb, &["migrate"]);
    ours.run(&wdb, &["assign-categories", "--backfill"]);
    ours.run(&wdb, &["assign-categories", "--tiebreaker-pass"]);
    let during = w.stop();
    eprintln!("writers alone {alone}; during ours {during}");

    let floor = read_floor(&pristine, &ours.concepts);
    eprintln!("reading alone: {floor:?}");

    let end_to_end = migrate.seconds + backfill.seconds;
    let ratio = rback.seconds / end_to_end;
    let tie_ratio = rtie.seconds / tiebreak.seconds;
    let n = format!("{videos} videos");
    let ms = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let max_ms = ms(&during, "max_ms");
    let errors = during["errors"].as_u64().unwrap_or(u64::MAX);
    let rss_size =
        if videos >= 220_000 { format!("at {videos} videos") } else { format!("at {videos} videos (target's 220,000 not measured; `--library 220000`)") };
    vec![
        Row::new(
            "3 files",
            format!("backfill end to end (migrate + backfill, journal and report), {n}; same counts as the reference: {same_back}"),
            format!("{} ({} + {}) = {ratio:.1}×", secs(end_to_end), secs(migrate.seconds), secs(backfill.seconds)),
            format!("{} (recon_reference.py backfill)", secs(rback.seconds)),
            "≥ 20× RECON",
            Some(ratio >= 20.0 && same_back),
        ),
        Row::new(
            "3 files",
            format!(
                "floor: the backfill's window files only read (open, read, close as ours does; nothing parsed or written) on {} cores: {} files, {:.0} MB, {:.2} CPU-s",
                cores(),
                floor.totals.files,
                floor.totals.bytes as f64 / 1e6,
                floor.cpu
            ),
            format!("{}: no backfill of these files beats {:.1}× RECON here", secs(floor.seconds), rback.seconds / floor.seconds),
            format!("{} (the 20× line)", secs(rback.seconds / 20.0)),
            "—",
            None,
        ),
        Row::new(
            "3 files",
            format!("tiebreaker after the backfill, {n}; same counts: {same_tie}"),
            format!("{} = {tie_ratio:.1}×", secs(tiebreak.seconds)),
            format!("{} (recon_reference.py tiebreaker)", secs(rtie.seconds)),
            "— (none of its own in #16)",
            None,
        ),
        Row::new(
            "3 files",
            format!("RECON's longest write wait (3 writer threads, {} writes) during our migrate + backfill + tiebreaker", during["writes"]),
            format!("{max_ms:.0} ms"),
            format!("{:.0} ms (the writers alone, as long)", ms(&alone, "max_ms")),
            "< 250 ms",
            Some(max_ms < 250.0),
        ),
        Row::new(
            "3 files",
            "RECON's write wait p99 / p50 during ours",
            format!("{:.1} / {:.1} ms", ms(&during, "p99_ms"), ms(&during, "p50_ms")),
            format!("{:.1} / {:.1} ms (alone)", ms(&alone, "p99_ms"), ms(&alone, "p50_ms")),
            "—",
            None,
        ),
        Row::new(
            "3 files",
            "of RECON's writes, the longest wait for the write lock / the longest own commit (WAL append, fsync, checkpoint)",
            format!("{:.0} / {:.0} ms", ms(&during, "lock_max_ms"), ms(&during, "commit_max_ms")),
            format!("{:.0} / {:.0} ms (alone)", ms(&alone, "lock_max_ms"), ms(&alone, "commit_max_ms")),
            "—",
            None,
        ),
        Row::new(
            "3 files",
            format!("RECON's write errors during ours {}", during["error_kinds"]),
            errors.to_string(),
            format!("{} (alone)", alone["errors"]),
            "0",
            Some(errors == 0),
        ),
        Row::new(
            "5 files",
            format!("backfill peak RSS {rss_size}"),
            format!("{:.0} MB (tiebreaker {:.0} MB)", backfill.peak_rss_mb, tiebreak.peak_rss_mb),
            format!("{:.0} MB (recon_reference.py)", rback.peak_rss_mb),
            "< 250 MB at 220,000 videos",
            (videos >= 220_000).then_some(backfill.peak_rss_mb < 250.0),
        ),
    ]
}

/// Reading alone, the floor under any backfill of these files.
#[derive(Debug)]
struct ReadFloor {
    totals: companion::recon::concepts::ReadTotals,
    /// Wall seconds on all cores (the best of 3, page cache warm).
    seconds: f64,
    /// This process's CPU seconds (user + kernel) for that run.
    cpu: f64,
}

/// Every window file of the documents the backfill selects, read through the companion's own reader, nothing parsed.
fn read_floor(db: &Path, concepts: &Path) -> ReadFloor {
    let conn = rusqlite::Connection::open(db).expect("open the pristine db");
    let source = companion::config::Config::default().peertube_source;
    let hashes: Vec<String> =
        companion::recon::db::backfill_candidates(&conn, &source, None, false).expect("the backfill's selection").into_iter().map(|c| c.hash).collect();
    let own = || testkit::qdrant_bench::process_cpu_seconds(std::process::id()).unwrap_or(f64::NAN);
    let mut best: Option<ReadFloor> = None;
    for _ in 0..3 {
        let (c0, t) = (own(), Instant::now());
        let totals = companion::recon::concepts::read_windows(concepts, &hashes);
        let run = ReadFloor { totals, seconds: t.elapsed().as_secs_f64(), cpu: own() - c0 };
        if best.as_ref().is_none_or(|b| run.seconds < b.seconds) {
            best = Some(run);
        }
    }
    best.expect("three runs")
}
