//! The state-changing passes over recon.db — backfill, tiebreaker, reprocess —
//! tying together concept scans (`concepts`), the rules (`assign`), the database
//! (`recondb`), the journal, the writer lock and the run report.

pub mod journal;
pub mod lock;
pub mod report;
pub mod rollback;

use crate::assign::{self, ChannelView, Outcome, Status};
use crate::context::Env;
use crate::error::{Error, Result};
use crate::recon::concepts::{self, DocScan, SkipStats};
use crate::recon::db::{self as recondb, Candidate, DomainColumns};
use crate::recon::pyjson::Counts;
use crate::support::progress::progress_bar;
use journal::{EntryState, Kind};
use lock::WriterLock;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{json, Value};
use shared_constants::{COUNT, DOMAINS};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Rows written per transaction: short enough that RECON's writers (busy
/// timeout 5 s) never wait long, large enough to avoid per-row commits.
const WRITE_BATCH: usize = 1000;

/// Scans many documents in parallel, in chunks so the progress bar moves.
pub fn scan_with_progress(env: &Env, hashes: &[String], what: &str) -> Vec<DocScan> {
    let pb = progress_bar(env.progress, hashes.len() as u64, what);
    let mut out = Vec::with_capacity(hashes.len());
    for chunk in hashes.chunks(2048) {
        out.extend(concepts::scan_docs(&env.concepts_dir, chunk));
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    out
}

/// Tally of outcomes by status and domain.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub by_status: BTreeMap<String, u64>,
    pub by_domain: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, o: &Outcome) {
        *self.by_status.entry(o.status.as_str().to_string()).or_default() += 1;
        if let Some(l) = o.domain_label() {
            *self.by_domain.entry(l.to_string()).or_default() += 1;
        }
    }
    pub fn status(&self, s: Status) -> u64 {
        self.by_status.get(s.as_str()).copied().unwrap_or(0)
    }
}

/// What a pass did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassSummary {
    pub command: String,
    pub dry_run: bool,
    pub run_id: Option<String>,
    pub report: Option<String>,
    pub selected: u64,
    pub tally: Tally,
    /// Documents whose concept dir is missing (or whose hash is not a valid md5).
    pub no_concept_dir: u64,
    pub bad_hashes: Vec<String>,
    pub skipped: SkipStats,
    /// Rows actually changed (journaled).
    pub written: u64,
    /// Rows whose stored result already matched.
    pub unchanged: u64,
    /// Rows someone else changed between our read and our write: left alone.
    pub changed_concurrently: u64,
    pub elapsed_ms: u64,
    /// Runbook benchmarks: assigned/tied as % of concept-bearing, needs_reprocess as % of all.
    pub percent: Percentages,
    pub concept_bytes: u64,
    pub concept_files: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentages {
    pub assigned_of_concept_bearing: f64,
    pub tied_of_concept_bearing: f64,
    pub needs_reprocess_of_all: f64,
}

fn percentages(t: &Tally, selected: u64) -> Percentages {
    let assigned = t.status(Status::Assigned) + t.status(Status::TiedPass2);
    let tied = t.status(Status::TiedPass1) + t.status(Status::TiedManual);
    let bearing = assigned + tied;
    let pct = |n: u64, d: u64| if d == 0 { 0.0 } else { (n as f64) * 100.0 / (d as f64) };
    Percentages {
        assigned_of_concept_bearing: pct(assigned, bearing),
        tied_of_concept_bearing: pct(tied, bearing),
        needs_reprocess_of_all: pct(t.status(Status::NeedsReprocess), selected),
    }
}

fn counts_of(scan: &DocScan) -> Option<&Counts> {
    scan.dir_found.then_some(&scan.totals)
}

/// A change the engine wants to make to one document's domain columns.
struct Change {
    hash: String,
    outcome: Outcome,
}

/// Guard for a state-changing run: lock, run row, report on finish.
pub struct Run {
    pub id: String,
    pub command: String,
    pub args: Value,
    started_at: String,
    _lock: WriterLock,
}

impl Run {
    /// Takes the writer lock, applies the migration if needed and records the run.
    pub fn begin(env: &Env, conn: &mut Connection, command: &str, args: Value) -> Result<Run> {
        let lock = WriterLock::acquire(&env.recon_db, &format!("recon-companion {command}"))?;
        let applied = recondb::ensure_migrated(conn)?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied migration");
        }
        let id = recondb::retry_busy(|| journal::start_run(conn, command, &args))?;
        Ok(Run { id, command: command.to_string(), args, started_at: recondb::now(), _lock: lock })
    }

    /// Records the end of the run and writes its report.
    pub fn finish(self, env: &Env, conn: &Connection, outcome: &str, counts: &Value) -> Result<PathBuf> {
        let rep = report::Report {
            run_id: self.id.clone(),
            command: self.command.clone(),
            arguments: self.args.clone(),
            dry_run: false,
            started_at: self.started_at.clone(),
            finished_at: recondb::now(),
            outcome: outcome.to_string(),
            counts: counts.clone(),
        };
        let path = report::write(&env.reports_dir, &rep)?;
        let p = path.display().to_string();
        recondb::retry_busy(|| journal::finish_run(conn, &self.id, outcome, counts, Some(&p)))?;
        Ok(path)
    }
}

/// Writes outcomes in short transactions, each row compare-and-set against what
/// the selection saw (`guard`), journaled with old and new values.
fn write_outcomes(conn: &mut Connection, run_id: &str, changes: &[Change], guard: impl Fn(&DomainColumns) -> bool, summary: &mut PassSummary) -> Result<()> {
    for batch in changes.chunks(WRITE_BATCH) {
        let (written, unchanged, conflicts) = recondb::retry_busy(|| {
            let tx = recondb::write_tx(conn)?;
            let (mut w, mut u, mut c) = (0u64, 0u64, 0u64);
            {
                let now = recondb::now();
                for ch in batch {
                    let Some(cur) = recondb::domain_columns(&tx, &ch.hash)? else {
                        c += 1;
                        continue;
                    };
                    if !guard(&cur) {
                        c += 1;
                        continue;
                    }
                    let new_domain = ch.outcome.domain_label().map(str::to_string);
                    let new_status = Some(ch.outcome.status.as_str().to_string());
                    if cur.recon_domain == new_domain && cur.recon_domain_status == new_status {
                        u += 1;
                        continue;
                    }
                    let new = DomainColumns {
                        recon_domain: new_domain,
                        recon_domain_status: new_status,
                        recon_domain_assigned_at: Some(now.clone()),
                        peertube_category_pushed_at: cur.peertube_category_pushed_at.clone(),
                    };
                    recondb::set_domain_columns(&tx, &ch.hash, &new)?;
                    journal::record(&tx, run_id, Kind::Documents, &ch.hash, &serde_json::to_value(&cur)?, &serde_json::to_value(&new)?, EntryState::Applied)?;
                    w += 1;
                }
            }
            tx.commit()?;
            Ok((w, u, c))
        })?;
        summary.written += written;
        summary.unchanged += unchanged;
        summary.changed_concurrently += conflicts;
    }
    Ok(())
}

fn note_scan(summary: &mut PassSummary, hash: &str, scan: &DocScan) {
    if scan.bad_hash {
        summary.bad_hashes.push(hash.to_string());
    }
    if !scan.dir_found {
        summary.no_concept_dir += 1;
    }
    summary.skipped.add(&scan.skipped());
    summary.concept_files += scan.windows.len() as u64;
    summary.concept_bytes += scan.bytes;
}

/// A dry run reads through a read-only connection and starts no run; a real
/// one takes the lock, migrates and records the run.
fn open_for(env: &Env, command: &str, limit: Option<u64>, dry_run: bool) -> Result<(Connection, Option<Run>)> {
    if dry_run {
        return Ok((recondb::open_readonly(&env.recon_db)?, None));
    }
    let mut conn = recondb::open(&env.recon_db)?;
    let run = Run::begin(env, &mut conn, command, json!({ "limit": limit }))?;
    Ok((conn, Some(run)))
}

/// Pass 1 over the backfill selection. Dry runs open the db read-only and work on
/// an unmigrated db (the missing columns count as NULL).
pub fn backfill(env: &Env, limit: Option<u64>, dry_run: bool) -> Result<PassSummary> {
    let started = Instant::now();
    let mut summary = PassSummary { command: "backfill".into(), dry_run, ..Default::default() };
    let (mut conn, run) = open_for(env, "backfill", limit, dry_run)?;
    let migrated = recondb::feature_columns_present(&conn)?;
    let cands = recondb::backfill_candidates(&conn, &env.source, limit, migrated)?;
    summary.selected = cands.len() as u64;
    let hashes: Vec<String> = cands.iter().map(|c| c.hash.clone()).collect();
    let scans = scan_with_progress(env, &hashes, "backfill");
    let mut changes = Vec::with_capacity(cands.len());
    for (c, scan) in cands.iter().zip(&scans) {
        note_scan(&mut summary, &c.hash, scan);
        let outcome = assign::pass1(counts_of(scan));
        summary.tally.add(&outcome);
        changes.push(Change { hash: c.hash.clone(), outcome });
    }
    drop(scans);
    summary.percent = percentages(&summary.tally, summary.selected);
    if let Some(run) = run {
        summary.run_id = Some(run.id.clone());
        let res = write_outcomes(&mut conn, &run.id, &changes, |cur| cur.recon_domain.is_none(), &mut summary);
        summary.elapsed_ms = started.elapsed().as_millis() as u64;
        let outcome = if res.is_ok() { "done" } else { "failed" };
        let path = run.finish(env, &conn, outcome, &serde_json::to_value(&summary)?)?;
        summary.report = Some(path.display().to_string());
        res?;
    }
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(summary)
}

/// Channel facts for the tiebreaker, built once per run.
pub struct Channels {
    /// PeerTube catalogue rows per channel.
    pub members: HashMap<String, Vec<String>>,
    /// Channel of every PeerTube catalogue row.
    pub channel_of: HashMap<String, String>,
}

impl Channels {
    pub fn load(conn: &Connection, source: &str) -> Result<Channels> {
        let mut members: HashMap<String, Vec<String>> = HashMap::new();
        let mut channel_of = HashMap::new();
        for (hash, ch) in recondb::stream_catalogue(conn, source)? {
            if let Some(ch) = ch {
                members.entry(ch.clone()).or_default().push(hash.clone());
                channel_of.insert(hash, ch);
            }
        }
        Ok(Channels { members, channel_of })
    }

    pub fn size(&self, channel: &str) -> u64 {
        self.members.get(channel).map(|m| m.len() as u64).unwrap_or(0)
    }

    pub fn is_mega(&self, env: &Env, channel: Option<&str>) -> bool {
        assign::is_mega(channel, channel.map(|c| self.size(c)).unwrap_or(0), env.mega_threshold, &env.mega_skip)
    }
}

/// Counts of a set of documents computed once per run: every document's files
/// are read at most once, whatever the number of ties in its channel.
pub struct CountCache {
    pub scans: HashMap<String, DocScan>,
}

impl CountCache {
    pub fn build(env: &Env, hashes: Vec<String>, what: &str) -> CountCache {
        let scans = scan_with_progress(env, &hashes, what);
        CountCache { scans: hashes.into_iter().zip(scans).collect() }
    }

    pub fn totals(&self, hash: &str) -> Option<&Counts> {
        self.scans.get(hash).and_then(counts_of)
    }

    /// Sum over a channel's members other than `except`.
    pub fn channel_others(&self, members: &[String], except: &str) -> Counts {
        let mut sum = [0u32; COUNT];
        for m in members {
            if m == except {
                continue;
            }
            if let Some(c) = self.totals(m) {
                for i in 0..COUNT {
                    sum[i] += c[i];
                }
            }
        }
        sum
    }
}

/// Per-channel sums, so each tied video costs O(18) instead of O(channel size).
fn channel_sums(cache: &CountCache, channels: &Channels, wanted: &HashSet<String>) -> HashMap<String, Counts> {
    wanted
        .iter()
        .map(|ch| {
            let members = channels.members.get(ch).map(Vec::as_slice).unwrap_or(&[]);
            (ch.clone(), cache.channel_others(members, ""))
        })
        .collect()
}

/// The tiebreaker's decision for one tied document, given the run's caches.
pub fn decide_tie(env: &Env, channels: &Channels, cache: &CountCache, sums: &HashMap<String, Counts>, c: &Candidate) -> Outcome {
    let ch = c.channel.as_deref();
    let mega = channels.is_mega(env, ch);
    let own = cache.totals(&c.hash);
    let sum = ch.and_then(|ch| sums.get(ch));
    let mut others = sum.copied().unwrap_or([0; COUNT]);
    // The doc itself is excluded from its channel's counts only if it is a member
    // (and only from a real sum: mega-channels have none, their counts stay zero).
    if let (Some(ch), Some(own), Some(_)) = (ch, own, sum) {
        if channels.channel_of.get(&c.hash).map(String::as_str) == Some(ch) {
            for i in 0..COUNT {
                others[i] -= own[i];
            }
        }
    }
    assign::tiebreak(own, ChannelView { mega, others: &others })
}

/// Passes 2 and 3 over every `tied_pass_1` document.
pub fn tiebreaker(env: &Env, limit: Option<u64>, dry_run: bool) -> Result<PassSummary> {
    let started = Instant::now();
    let mut summary = PassSummary { command: "tiebreaker".into(), dry_run, ..Default::default() };
    let (mut conn, run) = open_for(env, "tiebreaker", limit, dry_run)?;
    let cands = if recondb::feature_columns_present(&conn)? { recondb::tied_candidates(&conn, limit)? } else { Vec::new() };
    summary.selected = cands.len() as u64;
    let channels = Channels::load(&conn, &env.source)?;
    // Only non-mega channels need their members' counts.
    let mut wanted_channels = HashSet::new();
    let mut needed: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for c in &cands {
        if seen.insert(c.hash.clone()) {
            needed.push(c.hash.clone());
        }
        if let Some(ch) = c.channel.as_deref() {
            if !channels.is_mega(env, Some(ch)) && wanted_channels.insert(ch.to_string()) {
                for m in channels.members.get(ch).into_iter().flatten() {
                    if seen.insert(m.clone()) {
                        needed.push(m.clone());
                    }
                }
            }
        }
    }
    let cache = CountCache::build(env, needed, "tiebreaker");
    let sums = channel_sums(&cache, &channels, &wanted_channels);
    let mut changes = Vec::with_capacity(cands.len());
    for c in &cands {
        if let Some(scan) = cache.scans.get(&c.hash) {
            note_scan(&mut summary, &c.hash, scan);
        }
        let outcome = decide_tie(env, &channels, &cache, &sums, c);
        summary.tally.add(&outcome);
        changes.push(Change { hash: c.hash.clone(), outcome });
    }
    summary.percent = percentages(&summary.tally, summary.selected);
    if let Some(run) = run {
        summary.run_id = Some(run.id.clone());
        let res = write_outcomes(&mut conn, &run.id, &changes, |cur| cur.recon_domain_status.as_deref() == Some(Status::TiedPass1.as_str()), &mut summary);
        summary.elapsed_ms = started.elapsed().as_millis() as u64;
        let outcome = if res.is_ok() { "done" } else { "failed" };
        let path = run.finish(env, &conn, outcome, &serde_json::to_value(&summary)?)?;
        summary.report = Some(path.display().to_string());
        res?;
    }
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(summary)
}

/// One `needs_reprocess` document as the reprocess pass sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ReprocessItem {
    pub hash: String,
    pub title: Option<String>,
    pub concept_dir: Option<String>,
    pub files: u64,
    pub quarantined_to: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReprocessSummary {
    pub dry_run: bool,
    pub run_id: Option<String>,
    pub report: Option<String>,
    pub selected: u64,
    pub queued: u64,
    pub dirs_quarantined: u64,
    pub files_quarantined: u64,
    pub refused: u64,
    pub items: Vec<ReprocessItem>,
    pub quarantine_dir: Option<String>,
}

/// Columns of `documents` the reprocess reset touches (RECON's reset plus ours);
/// also the only `documents` columns a rollback may write.
pub const RESET_COLUMNS: [&str; 11] = [
    "status",
    "concepts_extracted",
    "vectors_inserted",
    "recon_domain",
    "recon_domain_status",
    "recon_domain_assigned_at",
    "peertube_category_pushed_at",
    "error_message",
    "extracted_at",
    "enriched_at",
    "embedded_at",
];

fn row_values(conn: &Connection, table: &str, cols: &[&str], hash: &str) -> Result<Option<serde_json::Map<String, Value>>> {
    let sql = format!("SELECT {} FROM {table} WHERE hash = ?1", cols.join(", "));
    let row = conn
        .query_row(&sql, [hash], |r| {
            let mut m = serde_json::Map::new();
            for (i, c) in cols.iter().enumerate() {
                let v: rusqlite::types::Value = r.get(i)?;
                m.insert((*c).to_string(), sql_to_json(v));
            }
            Ok(m)
        })
        .optional()?;
    Ok(row)
}

pub fn sql_to_json(v: rusqlite::types::Value) -> Value {
    use rusqlite::types::Value as V;
    match v {
        V::Null => Value::Null,
        V::Integer(i) => json!(i),
        V::Real(f) => json!(f),
        V::Text(s) => json!(s),
        V::Blob(b) => json!(hex::encode(b)),
    }
}

fn count_files(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()).count() as u64).unwrap_or(0)
}

/// Reprocess: moves each `needs_reprocess` document's concept dir into a per-run
/// quarantine (never deletes), resets the document as RECON did and queues it
/// (documents *and* catalogue rows, fixing RECON's stranded-at-catalogued bug).
pub fn reprocess(env: &Env, limit: Option<u64>, dry_run: bool) -> Result<ReprocessSummary> {
    let mut summary = ReprocessSummary { dry_run, ..Default::default() };
    let (mut conn, run) = open_for(env, "reprocess", limit, dry_run)?;
    if !recondb::feature_columns_present(&conn)? {
        return Ok(summary);
    }
    let limit_sql = limit.map(|l| l as i64).unwrap_or(-1);
    let rows: Vec<(String, Option<String>)> = {
        let mut stmt = conn.prepare(
            "SELECT hash, COALESCE(book_title, filename) FROM documents WHERE recon_domain_status = 'needs_reprocess'
             ORDER BY discovered_at, rowid LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit_sql], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
        rows
    };
    summary.selected = rows.len() as u64;
    let qdir = run.as_ref().map(|r| env.quarantine_dir.join(&r.id));
    summary.quarantine_dir = qdir.as_ref().map(|p| p.display().to_string());
    for (hash, title) in rows {
        let mut item = ReprocessItem { hash: hash.clone(), title, concept_dir: None, files: 0, quarantined_to: None, error: None };
        let dir = match concepts::concept_dir(&env.concepts_dir, &hash) {
            Ok(d) => d,
            Err(e) => {
                item.error = Some(e.to_string());
                summary.refused += 1;
                summary.items.push(item);
                continue;
            }
        };
        let has_dir = dir.is_dir();
        if has_dir {
            item.concept_dir = Some(dir.display().to_string());
            item.files = count_files(&dir);
        }
        if let (Some(run), Some(qdir)) = (&run, &qdir) {
            if let Err(e) = reprocess_one(&mut conn, &run.id, &hash, has_dir.then_some(dir.as_path()), qdir, &mut item) {
                item.error = Some(e.to_string());
                summary.refused += 1;
                summary.items.push(item);
                let counts = serde_json::to_value(&summary)?;
                run_finish_failed(run, env, &conn, &counts);
                return Err(e);
            }
            summary.queued += 1;
            if item.quarantined_to.is_some() {
                summary.dirs_quarantined += 1;
                summary.files_quarantined += item.files;
            }
        }
        summary.items.push(item);
    }
    if let Some(run) = run {
        summary.run_id = Some(run.id.clone());
        let path = run.finish(env, &conn, "done", &serde_json::to_value(&summary)?)?;
        summary.report = Some(path.display().to_string());
    }
    Ok(summary)
}

fn run_finish_failed(run: &Run, env: &Env, conn: &Connection, counts: &Value) {
    let rep = report::Report {
        run_id: run.id.clone(),
        command: run.command.clone(),
        arguments: run.args.clone(),
        dry_run: false,
        started_at: run.started_at.clone(),
        finished_at: recondb::now(),
        outcome: "failed".into(),
        counts: counts.clone(),
    };
    let path = report::write(&env.reports_dir, &rep).ok().map(|p| p.display().to_string());
    let _ = journal::finish_run(conn, &run.id, "failed", counts, path.as_deref());
}

fn reprocess_one(conn: &mut Connection, run_id: &str, hash: &str, dir: Option<&Path>, qdir: &Path, item: &mut ReprocessItem) -> Result<()> {
    // 1. Journal the move as pending *before* it happens, so a crash between the
    //    move and the row reset still leaves a record of where the dir went.
    let mut move_entry = None;
    if let Some(dir) = dir {
        std::fs::create_dir_all(qdir).map_err(|e| Error::io(qdir, e))?;
        let dest = qdir.join(hash);
        let old = json!({ "path": dir.display().to_string() });
        let new = json!({ "path": dest.display().to_string(), "files": item.files });
        let id = recondb::retry_busy(|| journal::record(conn, run_id, Kind::ConceptDir, hash, &old, &new, EntryState::Pending))?;
        tracing::info!(hash, from = %dir.display(), to = %dest.display(), files = item.files, "quarantining concept dir");
        eprintln!("quarantine {hash}: {} ({} files) -> {}", dir.display(), item.files, dest.display());
        std::fs::rename(dir, &dest).map_err(|e| Error::io(dir, e))?;
        item.quarantined_to = Some(dest.display().to_string());
        move_entry = Some(id);
    }
    // 2. Reset and queue in one transaction with its journal entries.
    recondb::retry_busy(|| {
        let tx = recondb::write_tx(conn)?;
        let old_doc = row_values(&tx, "documents", &RESET_COLUMNS, hash)?.ok_or_else(|| Error::NotFound(format!("document {hash}")))?;
        let mut new_doc = old_doc.clone();
        for c in RESET_COLUMNS {
            new_doc.insert(c.to_string(), Value::Null);
        }
        new_doc.insert("status".into(), json!("queued"));
        new_doc.insert("concepts_extracted".into(), json!(0));
        new_doc.insert("vectors_inserted".into(), json!(0));
        tx.execute(
            "UPDATE documents SET status = 'queued', concepts_extracted = 0, vectors_inserted = 0,
                 recon_domain = NULL, recon_domain_status = NULL, recon_domain_assigned_at = NULL,
                 peertube_category_pushed_at = NULL, error_message = NULL, extracted_at = NULL,
                 enriched_at = NULL, embedded_at = NULL WHERE hash = ?1",
            [hash],
        )?;
        journal::record(&tx, run_id, Kind::Documents, hash, &Value::Object(old_doc), &Value::Object(new_doc), EntryState::Applied)?;
        if let Some(old_cat) = row_values(&tx, "catalogue", &["status"], hash)? {
            tx.execute("UPDATE catalogue SET status = 'queued' WHERE hash = ?1", [hash])?;
            journal::record(&tx, run_id, Kind::Catalogue, hash, &Value::Object(old_cat), &json!({"status": "queued"}), EntryState::Applied)?;
        }
        if let Some(id) = move_entry {
            journal::set_state(&tx, id, EntryState::Applied, None)?;
        }
        tx.commit()?;
        Ok(())
    })
}

/// Status view: what the runbook's "check overall status" shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusView {
    pub migrated: bool,
    pub complete_stream_documents: u64,
    pub unassigned: u64,
    pub unpushed: u64,
    pub pushed: u64,
    pub by_status: BTreeMap<String, u64>,
    pub by_domain: Vec<(String, u64)>,
    pub categorized: u64,
}

pub fn status(env: &Env) -> Result<StatusView> {
    let conn = recondb::open_readonly(&env.recon_db)?;
    let migrated = recondb::feature_columns_present(&conn)?;
    let mut v = StatusView { migrated, ..Default::default() };
    v.complete_stream_documents = conn.query_row(
        "SELECT count(*) FROM documents d JOIN catalogue c ON c.hash = d.hash WHERE d.status = 'complete' AND c.source = ?1",
        [&env.source],
        |r| r.get::<_, i64>(0),
    )? as u64;
    if !migrated {
        v.unassigned = v.complete_stream_documents;
        return Ok(v);
    }
    v.unassigned = conn.query_row(
        "SELECT count(*) FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.status = 'complete' AND c.source = ?1 AND d.recon_domain IS NULL",
        [&env.source],
        |r| r.get::<_, i64>(0),
    )? as u64;
    v.unpushed = conn.query_row(
        "SELECT count(*) FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.recon_domain IS NOT NULL AND d.peertube_category_pushed_at IS NULL AND c.source = ?1",
        [&env.source],
        |r| r.get::<_, i64>(0),
    )? as u64;
    v.pushed = conn.query_row("SELECT count(*) FROM documents WHERE peertube_category_pushed_at IS NOT NULL", [], |r| r.get::<_, i64>(0))? as u64;
    let mut stmt = conn.prepare("SELECT recon_domain_status, count(*) FROM documents WHERE recon_domain_status IS NOT NULL GROUP BY 1 ORDER BY 1")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (s, n) = row?;
        if Status::parse(&s).is_some_and(Status::is_categorized) {
            v.categorized += n as u64;
        }
        v.by_status.insert(s, n as u64);
    }
    let mut stmt = conn.prepare("SELECT recon_domain, count(*) FROM documents WHERE recon_domain IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (d, n) = row?;
        v.by_domain.push((d, n as u64));
    }
    // Show every domain, zeros included, so a missing one is visible.
    for d in DOMAINS.iter() {
        if !v.by_domain.iter().any(|(l, _)| l == d.label) {
            v.by_domain.push((d.label.to_string(), 0));
        }
    }
    Ok(v)
}
