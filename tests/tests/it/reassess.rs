//! `--reassess` after RECON rewrites concept files in place: it names exactly what RECON's own rules now decide differently (Python reference on a cleared copy), fixes recon.db, the next push fixes PeerTube, rollback restores both, people's rows stay; the service counts stale assignments without opening a concept file. (Qdrant: `reassess_qdrant.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use crate::server_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use companion::cli::Ctx;
use companion::config::{Config, Transport};
use companion::context::{Context, Env};
use companion::demo::{self, DemoSpec};
use companion::engine::reassess::{reassess, ReassessSummary};
use companion::peertube::video_id::{self, VideoUuid};
use companion::server::{stale, state::AppState};
use rusqlite::Connection;
use testkit::peertube::{StandIn, StandInConfig};
use testkit::world::push_args;

pub(crate) const SOURCE: &str = "stream.echo6.co";
pub(crate) const MACHINE: &str = "('assigned','tied_pass_2','tied_manual','needs_reprocess','no_concepts')";

type Row = (Option<String>, Option<String>, Option<String>, Option<String>);

/// Every document's four domain columns.
pub(crate) fn columns(db: &Path) -> BTreeMap<String, Row> {
    let c = Connection::open(db).unwrap();
    let mut s = c.prepare("SELECT hash, recon_domain, recon_domain_status, recon_domain_assigned_at, peertube_category_pushed_at FROM documents").unwrap();
    let rows = s.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))).unwrap().collect::<Result<_, _>>().unwrap();
    rows
}

/// Complete PeerTube documents (what a backfill selects), in hash order.
pub(crate) fn complete_videos(db: &Path) -> Vec<String> {
    let c = Connection::open(db).unwrap();
    let mut s =
        c.prepare("SELECT d.hash FROM documents d JOIN catalogue c ON c.hash = d.hash WHERE d.status = 'complete' AND c.source = ?1 ORDER BY d.hash").unwrap();
    let rows = s.query_map([SOURCE], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
    rows
}

/// (status, domain) of the rows the machine decided.
pub(crate) fn decided(db: &Path) -> BTreeMap<String, (String, Option<String>)> {
    columns(db).into_iter().filter_map(|(h, (d, s, _, _))| s.filter(|s| MACHINE.contains(&format!("'{s}'"))).map(|s| (h, (s, d)))).collect()
}

/// RECON's rules on today's data, independently of our code: a copy of the db
/// with every machine-decided row cleared, run through the Python reference's
/// backfill and tiebreaker.
fn python_oracle(db: &Path, concepts: &Path, scratch: &Path) -> BTreeMap<String, (String, Option<String>)> {
    let copy = scratch.join("oracle.db");
    std::fs::copy(db, &copy).unwrap();
    // The WAL may hold what the copy lacks: checkpoint first.
    let c = Connection::open(db).unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    drop(c);
    std::fs::copy(db, &copy).unwrap();
    let c = Connection::open(&copy).unwrap();
    c.execute(
        &format!(
            "UPDATE documents SET recon_domain = NULL, recon_domain_status = NULL, recon_domain_assigned_at = NULL, peertube_category_pushed_at = NULL
             WHERE recon_domain_status IN {MACHINE}"
        ),
        [],
    )
    .unwrap();
    drop(c);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/recon_reference.py");
    for pass in ["backfill", "tiebreaker"] {
        let out = Command::new("python3")
            .arg(&script)
            .args(["--db", &copy.display().to_string(), "--concepts", &concepts.display().to_string(), pass])
            .output()
            .expect("python3 must be installed");
        assert!(out.status.success(), "reference {pass}: {}", String::from_utf8_lossy(&out.stderr));
    }
    decided(&copy)
}

struct Lib {
    dir: tempfile::TempDir,
    cfg: Config,
    env: Env,
    standin: StandIn,
}

impl Lib {
    /// Demo data assigned by backfill + tiebreaker and pushed to a PeerTube stand-in.
    fn new(docs: usize, seed: u64) -> Lib {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        demo::generate(&data, &DemoSpec { seed, ..DemoSpec::demo(docs) }).unwrap();
        let standin = StandIn::start(StandInConfig::default()).unwrap();
        let mut cfg =
            Config { recon_db: data.join("recon.db"), concepts_dir: data.join("concepts"), reports_dir: dir.path().join("reports"), ..Default::default() };
        let pw_env = format!("RECON_COMPANION_TEST_PW_{:016X}", rand::random::<u64>());
        std::env::set_var(&pw_env, "test-password");
        cfg.peertube.url = standin.url.clone();
        cfg.peertube.host_header = Some(SOURCE.into());
        cfg.peertube.password_env = pw_env;
        cfg.peertube.token_cache = Some(dir.path().join("cache/token.json"));
        cfg.peertube.rate_per_sec = 500.0;
        cfg.peertube.timeout_secs = 5;
        let mut env = Env::from_config(&cfg);
        env.progress = false;
        let lib = Lib { dir, cfg, env, standin };
        for (_, path) in lib.catalogue() {
            if let Ok(v) = video_id::from_path(&path) {
                lib.standin.add_video(&v, None, false);
            }
        }
        companion::engine::backfill(&lib.env, None, false).unwrap();
        companion::engine::tiebreaker(&lib.env, None, false).unwrap();
        assert_eq!(lib.push(), 0);
        lib
    }

    fn db(&self) -> PathBuf {
        self.cfg.recon_db.clone()
    }

    fn ctx(&self) -> Ctx {
        Ctx { context: Context { cfg: self.cfg.clone(), env: self.env.clone() }, json: false }
    }

    fn push(&self) -> i32 {
        companion::cli::assign::assign_categories(&self.ctx(), &push_args(false, None, Transport::Api)).unwrap()
    }

    fn catalogue(&self) -> Vec<(String, String)> {
        let c = Connection::open(self.db()).unwrap();
        let mut s = c.prepare("SELECT hash, path FROM catalogue WHERE source = ?1").unwrap();
        let rows = s.query_map([SOURCE], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap();
        rows
    }

    /// PeerTube's category of every video of a document.
    fn peertube(&self) -> BTreeMap<String, Option<i64>> {
        self.catalogue().into_iter().filter_map(|(h, p)| video_id::from_path(&p).ok().map(|v: VideoUuid| (h, self.standin.category(&v).flatten()))).collect()
    }

    fn windows(&self, hash: &str) -> Vec<PathBuf> {
        let mut w: Vec<PathBuf> = std::fs::read_dir(self.cfg.concepts_dir.join(hash))
            .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("window_"))).collect())
            .unwrap_or_default();
        w.sort();
        w
    }

    /// Rewrites every window of `hash` in place (as RECON's enricher does) with `concepts`' domains.
    fn rewrite(&self, hash: &str, domains: &[&str]) {
        let body = serde_json::Value::Array(domains.iter().map(|d| serde_json::json!({ "title": "t", "domain": d })).collect()).to_string();
        let ws = self.windows(hash);
        assert!(!ws.is_empty(), "{hash} has windows");
        for w in ws {
            std::fs::write(&w, &body).unwrap();
        }
    }

    fn last_run(&self, command: &str) -> String {
        let c = Connection::open(self.db()).unwrap();
        c.query_row("SELECT run_id FROM companion_runs WHERE command = ?1 ORDER BY rowid DESC LIMIT 1", [command], |r| r.get(0)).unwrap()
    }

    fn state(&self) -> AppState {
        AppState::new(self.cfg.clone(), self.env.clone(), server_support::FakePusher::new(&self.db())).unwrap()
    }
}

pub(crate) fn other_label(not: Option<&str>, k: usize) -> &'static str {
    shared_constants::DOMAINS.iter().map(|d| d.label).filter(|l| Some(*l) != not).nth(k % 17).unwrap()
}

/// Runs stale checks until the rolling re-check has gone round the library once.
pub(crate) fn stale_round(st: &AppState, decided_rows: usize) -> stale::StaleView {
    let mut v = stale::check(st);
    for _ in 0..decided_rows.div_ceil(stale::SLICE as usize) {
        v = stale::check(st);
    }
    assert_eq!(v.last_error, None);
    v
}

#[test]
fn files_rewritten_in_place_are_reassessed_as_recon_would_pushed_and_rolled_back() {
    let lib = Lib::new(500, 11);
    let db = lib.db();
    let before = decided(&db);
    let n_decided = before.len();
    // A person's choice, which no reassessment may touch even when its files change.
    let (manual, _) = before.iter().find(|(_, (s, _))| s == "assigned").map(|(h, v)| (h.clone(), v.clone())).unwrap();
    Connection::open(&db).unwrap().execute("UPDATE documents SET recon_domain_status = 'manual_assigned' WHERE hash = ?1", [&manual]).unwrap();
    let st = lib.state();

    // Nothing changed: the stale count is 0 and no concept file is opened.
    // Proof: the files' contents are replaced by what would change every
    // result, their mtimes put back; a check that read them would flag them.
    let assigned: Vec<String> = before.iter().filter(|(h, (s, _))| s == "assigned" && **h != manual).map(|(h, _)| h.clone()).collect();
    let hidden: Vec<(PathBuf, Vec<u8>, SystemTime)> = assigned
        .iter()
        .take(30)
        .flat_map(|h| lib.windows(h))
        .map(|w| {
            let m = std::fs::metadata(&w).unwrap().modified().unwrap();
            (w.clone(), std::fs::read(&w).unwrap(), m)
        })
        .collect();
    for (w, _, m) in &hidden {
        std::fs::write(w, "[]").unwrap();
        std::fs::File::open(w).unwrap().set_modified(*m).unwrap();
    }
    let quiet = stale_round(&st, n_decided);
    println!("stale check with nothing changed ({n_decided} decided rows): {:?}", quiet.last_cost);
    assert_eq!((quiet.stale, quiet.last_cost.concept_files_read), (0, 0), "{quiet:?}");
    assert!(quiet.last_cost.rows_rechecked > 0 && quiet.last_cost.dir_entries_stat > 0, "{quiet:?}");
    for (w, body, m) in &hidden {
        std::fs::write(w, body).unwrap();
        std::fs::File::open(w).unwrap().set_modified(*m).unwrap();
    }

    // RECON changes concepts of 40 assigned documents (and the manual one):
    // another winner, a tie, nothing valid, and the same winner again.
    let mut touched = BTreeSet::new();
    for (k, h) in assigned.iter().take(40).enumerate() {
        let cur = before[h].1.as_deref();
        match k % 4 {
            0 => lib.rewrite(h, &[other_label(cur, k); 3]),
            1 => lib.rewrite(h, &[other_label(cur, k), other_label(cur, k + 1)]),
            2 => lib.rewrite(h, &[]),
            _ => lib.rewrite(h, &[cur.unwrap(); 2]),
        }
        touched.insert(h.clone());
    }
    lib.rewrite(&manual, &[other_label(before[&manual].1.as_deref(), 3); 3]);
    // A video a person overrode in PeerTube: its files change too, and it stays as it is.
    let over = assigned[46].clone();
    lib.rewrite(&over, &[other_label(before[&over].1.as_deref(), 5); 3]);
    Connection::open(&db)
        .unwrap()
        .execute(
            "INSERT INTO companion_overrides(video, hash, category, recorded_at, run_id) VALUES ('v-over', ?1, 3, '2026-12-01T00:00:00+00:00', 'r')",
            [&over],
        )
        .unwrap();
    // And RECON re-enriched one document without changing what it decides.
    let reenriched = assigned[45].clone();
    Connection::open(&db).unwrap().execute("UPDATE documents SET enriched_at = ?2 WHERE hash = ?1", [&reenriched, &companion::recon::db::now()]).unwrap();
    let seen = stale_round(&st, n_decided);
    assert_eq!(seen.by_recheck, 40, "the 40 rewritten (not the manual row, not the override): {seen:?}");
    assert_eq!((seen.by_recon_times, seen.stale), (1, 41), "{seen:?}");

    // The dry run names exactly what RECON's rules now decide differently.
    let oracle = python_oracle(&db, &lib.cfg.concepts_dir, lib.dir.path());
    let now_decided = decided(&db);
    let expected: BTreeSet<String> =
        now_decided.iter().filter(|(h, v)| **h != over && oracle.get(*h).is_some_and(|o| o != *v)).map(|(h, _)| h.clone()).collect();
    assert_ne!(oracle.get(&over), now_decided.get(&over), "RECON's rules alone would change the overridden video");
    assert!(expected.len() >= 30, "the mutations change most of the 40: {}", expected.len());
    let untouched_changed: Vec<_> = expected.difference(&touched).collect();
    println!("changed without their own files changing (a channel-mate changed): {}", untouched_changed.len());
    let cols_before = columns(&db);
    let dry: ReassessSummary = reassess(&lib.env, None, true).unwrap();
    assert_eq!(columns(&db), cols_before, "a dry run writes nothing");
    let named: BTreeSet<String> = dry.items.iter().map(|i| i.hash.clone()).collect();
    assert_eq!(named, expected, "dry run vs RECON's rules");
    assert!(!named.contains(&manual) && !named.contains(&over));
    for i in &dry.items {
        let (s, d) = &oracle[&i.hash];
        assert_eq!((&i.new_status, &i.new_domain), (s, d), "{}", i.hash);
    }
    for kind in ["other_winner", "now_tied", "now_without_concepts"] {
        assert!(dry.by_kind.get(kind).copied().unwrap_or(0) > 0, "{kind}: {:?}", dry.by_kind);
    }
    assert_eq!(dry.pass.selected as usize, n_decided - 2, "all but the manual row and the override");
    assert_eq!(dry.confirmed, 10 + 1, "the 10 rewritten with the same winner and the re-enriched one");

    // The real run writes exactly that, and clears the push of every moved domain.
    let pt_before = lib.peertube();
    let real = reassess(&lib.env, None, false).unwrap();
    let run = real.pass.run_id.clone().unwrap();
    println!("whole-library reassessment: {} rows in {} ms (dry run {} ms)", real.pass.selected, real.pass.elapsed_ms, dry.pass.elapsed_ms);
    assert_eq!(real.changed, dry.changed);
    let after = columns(&db);
    for (h, (d, s, _, pushed)) in &after {
        if let Some((os, od)) = oracle.get(h).filter(|_| now_decided.contains_key(h) && *h != over) {
            assert_eq!((s.as_ref(), d), (Some(os), od), "{h}");
        }
        let moved = cols_before[h].0 != *d;
        assert_eq!(pushed.is_none(), moved || cols_before[h].3.is_none(), "{h}: pushed_at cleared iff the domain moved");
    }
    assert_eq!(after[&manual], cols_before[&manual], "manual_assigned untouched");
    assert_eq!(after[&over], cols_before[&over], "the overridden video untouched");
    assert_eq!(stale_round(&st, n_decided).stale, 0, "nothing stale after the reassessment");

    // The next push corrects PeerTube: every row with a domain shows it.
    assert_eq!(lib.push(), 0);
    let push_run = lib.last_run("push-pending");
    let pt_after = lib.peertube();
    for (h, (d, _, _, _)) in columns(&db) {
        if let (Some(d), Some(cat)) = (d, pt_after.get(&h)) {
            let id = shared_constants::DOMAINS.iter().find(|x| x.label == d).unwrap().id;
            assert_eq!(*cat, Some(i64::from(id)), "{h}");
        }
    }
    assert_ne!(pt_after, pt_before);

    // Undo newest first: the push, then the reassessment.
    for r in [&push_run, &run] {
        assert_eq!(companion::cli::runs::rollback_cmd(&lib.ctx(), r, false, false, None).unwrap(), 0, "rollback {r}");
    }
    assert_eq!(columns(&db), cols_before, "recon.db as before the reassessment");
    assert_eq!(lib.peertube(), pt_before, "PeerTube as before the reassessment");
}
