//! `--reassess`: every row the machine decided, recomputed with today's rules and concept source; what changes, by kind; the changes written in one journaled run.
//!
//! The diff ([`classify`], [`diff_one`], [`still_holds`]) is pure, over plain
//! values; [`reassess`] does the I/O around it. Rows a person decided
//! (`manual_assigned`) or overrode in PeerTube are never selected (the SQL and
//! its overrides hook are in `recon::db::reassess`).
//!
//! Ties: a row whose counts now tie goes through the tiebreaker inside the
//! reassessment, with the same rules and caches as `--tiebreaker-pass`
//! (`engine::tiebreaker::decide_tie`, channel-mates read in this run), so a
//! reassessment never leaves `tied_pass_1` behind and PeerTube is corrected
//! by the next push without a second pass. A tie whose channel has a member
//! whose counts could not be read is left as it was (the tiebreaker would
//! leave it `tied_pass_1`), and so is every row whose own counts failed: a
//! transient Qdrant failure never changes a stored result.
//!
//! Where the domain changes, `peertube_category_pushed_at` is cleared: the
//! next `--push-pending` (or the service) writes the new category. Unchanged
//! rows that RECON worked on after their assignment (newer `enriched_at` /
//! `embedded_at`, or window files newer than it) get `recon_domain_assigned_at`
//! moved to now ("confirmed"), journaled like every write, so they stop
//! counting as stale.

use super::run::{abort_pass, open_for};
use super::summary::PassSummary;
use super::tiebreaker::{self, channel_sums, decide_tie, Channels, CountCache};
use crate::assign::{self, Outcome, Rule, Status};
use crate::config::SourceKind;
use crate::context::Env;
use crate::error::Result;
use crate::journal::run::Run;
use crate::recon::db::{self as recondb, Candidate, Decided, DomainColumns};
use crate::recon::freshness;
use rayon::prelude::*;
use rusqlite::Connection;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

/// What a recomputation does to a stored result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Unchanged,
    /// Another domain wins, the same kind of decision (clear winner or tie).
    OtherWinner,
    /// Was a clear winner, now a tie (resolved by the channel or left for review).
    NowTied,
    /// Was a tie, now a clear winner.
    NoLongerTied,
    /// Had a domain, now no valid concept (`needs_reprocess` / `no_concepts`).
    NowWithoutConcepts,
    /// Had no domain, now one.
    NowAssignable,
    /// Same domain, another status (`tied_pass_2` → `tied_manual`, `needs_reprocess` → `no_concepts`…).
    StatusOnly,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Unchanged => "unchanged",
            ChangeKind::OtherWinner => "other_winner",
            ChangeKind::NowTied => "now_tied",
            ChangeKind::NoLongerTied => "no_longer_tied",
            ChangeKind::NowWithoutConcepts => "now_without_concepts",
            ChangeKind::NowAssignable => "now_assignable",
            ChangeKind::StatusOnly => "status_only",
        }
    }
}

fn is_tie(s: Status) -> bool {
    matches!(s, Status::TiedPass1 | Status::TiedPass2 | Status::TiedManual)
}

/// The kind of change from a stored (domain, status) to a new one.
pub fn classify(old_domain: Option<&str>, old_status: Status, new_domain: Option<&str>, new_status: Status) -> ChangeKind {
    if old_domain == new_domain && old_status == new_status {
        return ChangeKind::Unchanged;
    }
    match (old_domain, new_domain) {
        (Some(_), None) if new_status == Status::TiedPass1 => ChangeKind::NowTied,
        (Some(_), None) => ChangeKind::NowWithoutConcepts,
        (None, Some(_)) => ChangeKind::NowAssignable,
        (None, None) => ChangeKind::StatusOnly,
        (Some(a), Some(b)) => match (is_tie(old_status), is_tie(new_status)) {
            (false, true) => ChangeKind::NowTied,
            (true, false) => ChangeKind::NoLongerTied,
            _ if a != b => ChangeKind::OtherWinner,
            _ => ChangeKind::StatusOnly,
        },
    }
}

/// One row whose result changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReassessItem {
    pub hash: String,
    pub kind: ChangeKind,
    pub old_domain: Option<String>,
    pub old_status: String,
    pub new_domain: Option<String>,
    pub new_status: String,
    pub rule: Rule,
    /// The domain differs: PeerTube's category is to be corrected by the next push.
    pub domain_changed: bool,
}

/// The change a new outcome makes to a stored row; `None` when it is the
/// same result (or the stored status is not one the machine decides).
pub fn diff_one(hash: &str, old: &DomainColumns, new: &Outcome) -> Option<ReassessItem> {
    let old_status = old.recon_domain_status.as_deref().and_then(Status::parse).filter(|s| *s != Status::ManualAssigned)?;
    let new_domain = new.domain_label();
    let kind = classify(old.recon_domain.as_deref(), old_status, new_domain, new.status);
    (kind != ChangeKind::Unchanged).then(|| ReassessItem {
        hash: hash.to_string(),
        kind,
        old_domain: old.recon_domain.clone(),
        old_status: old_status.as_str().to_string(),
        new_domain: new_domain.map(str::to_string),
        new_status: new.status.as_str().to_string(),
        rule: new.rule,
        domain_changed: old.recon_domain.as_deref() != new_domain,
    })
}

/// Whether a stored result still holds given pass 1 on today's counts alone
/// (the service's cheap re-check, no channel sums): a clear winner must still
/// win; a tie-resolved row must still be tied with its domain among the tied;
/// a row without a domain must still have none of the same status. Never
/// says "holds" where a full reassessment would change the row.
pub fn still_holds(old_domain: Option<&str>, old_status: Status, pass1: &Outcome) -> bool {
    match old_status {
        Status::TiedPass2 | Status::TiedManual => {
            pass1.status == Status::TiedPass1 && old_domain.is_some_and(|d| pass1.tied.iter().any(|&i| shared_constants::DOMAINS[i].label == d))
        }
        _ => classify(old_domain, old_status, pass1.domain_label(), pass1.status) == ChangeKind::Unchanged,
    }
}

/// What a reassessment found (and, unless a dry run, wrote).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReassessSummary {
    /// The shared pass report: selection, tally of the new results, source and file statistics, writes, run id.
    #[serde(flatten)]
    pub pass: PassSummary,
    /// Rows by [`ChangeKind`] (`unchanged` included).
    pub by_kind: BTreeMap<String, u64>,
    /// Rows whose result changes.
    pub changed: u64,
    /// Of those, rows whose domain changes (PeerTube to be corrected).
    pub domain_changed: u64,
    /// Rows whose `peertube_category_pushed_at` was (or would be) cleared.
    pub pushes_cleared: u64,
    /// Unchanged rows RECON worked on since their assignment: their assignment time moves to now.
    pub confirmed: u64,
    /// Rows left as they were: their counts, or a tied row's channel-mate's, could not be read.
    pub left_alone: u64,
    /// Every changed row.
    pub items: Vec<ReassessItem>,
}

fn candidate(r: &Decided) -> Candidate {
    Candidate { hash: r.hash.clone(), channel: r.channel.clone(), doc: None }
}

/// A row to write: a new result, or (None) a confirmation of the stored one.
struct Planned<'a> {
    row: &'a Decided,
    new: Option<Outcome>,
}

/// Recomputes every machine-decided row (or the `limit` oldest assignments).
pub fn reassess(env: &Env, limit: Option<u64>, dry_run: bool) -> Result<ReassessSummary> {
    let started = Instant::now();
    let kind = env.concepts.kind();
    let mut s =
        ReassessSummary { pass: PassSummary { command: "reassess".into(), dry_run, source: kind.as_str().into(), ..Default::default() }, ..Default::default() };
    let (mut conn, run) = open_for(env, "reassess", limit, dry_run)?;
    let rows = if recondb::feature_columns_present(&conn)? { recondb::reassess_selection(&conn, &env.source, limit)? } else { Vec::new() };
    s.pass.selected = rows.len() as u64;
    let channels = Channels::load(&conn, &env.source)?;
    let hashes: Vec<String> = rows.iter().map(|r| r.hash.clone()).collect();
    let (mut cache, stats) = match CountCache::build(env, hashes, "reassess") {
        Ok(c) => c,
        Err(e) => return Err(abort_pass(env, &conn, run, &mut s.pass, e, started)),
    };
    s.pass.source_stats = stats;
    let no_counts = env.no_counts_status();
    let tied: Vec<Candidate> = rows.iter().filter(|r| assign::pass1_as(cache.totals(&r.hash), no_counts).status == Status::TiedPass1).map(candidate).collect();
    // The tiebreaker's inputs: channel-mates not read yet, read once.
    let (needed, wanted) = tiebreaker::needed(env, &channels, &tied);
    let extra: Vec<String> = needed.into_iter().filter(|h| !cache.scans.contains_key(h)).collect();
    if !extra.is_empty() {
        match CountCache::build(env, extra, "reassess: channels") {
            Ok((more, st)) => {
                s.pass.source_stats.add(&st);
                cache.scans.extend(more.scans);
            }
            Err(e) => return Err(abort_pass(env, &conn, run, &mut s.pass, e, started)),
        }
    }
    let incomplete: HashSet<&str> =
        wanted.iter().filter(|ch| channels.members.get(*ch).is_some_and(|ms| ms.iter().any(|m| cache.failed(m)))).map(String::as_str).collect();
    let sums = channel_sums(&cache, &channels, &wanted);
    let recon_stale: HashSet<String> = if rows.is_empty() { HashSet::new() } else { recondb::stale_by_recon_times(&conn, &env.source)?.into_iter().collect() };

    let mut plan = Vec::new();
    let mut unchanged = Vec::new();
    for r in &rows {
        if let Some(scan) = cache.scans.get(&r.hash) {
            s.pass.note_scan(&r.hash, scan);
        }
        if cache.failed(&r.hash) {
            s.left_alone += 1;
            continue;
        }
        let first = assign::pass1_as(cache.totals(&r.hash), no_counts);
        let outcome = if first.status == Status::TiedPass1 {
            let o = decide_tie(env, &channels, &cache, &sums, &candidate(r));
            let needs_channel = matches!(o.status, Status::TiedPass2 | Status::TiedManual) && o.rule != Rule::MegaChannel;
            if needs_channel && r.channel.as_deref().is_some_and(|ch| incomplete.contains(ch)) {
                s.left_alone += 1;
                continue;
            }
            o
        } else {
            first
        };
        s.pass.tally.add(&outcome);
        match diff_one(&r.hash, &r.cols, &outcome) {
            Some(item) => {
                s.changed += 1;
                if item.domain_changed {
                    s.domain_changed += 1;
                    if r.cols.peertube_category_pushed_at.is_some() {
                        s.pushes_cleared += 1;
                    }
                }
                *s.by_kind.entry(item.kind.as_str().into()).or_default() += 1;
                s.items.push(item);
                plan.push(Planned { row: r, new: Some(outcome) });
            }
            None => {
                *s.by_kind.entry(ChangeKind::Unchanged.as_str().into()).or_default() += 1;
                unchanged.push(r);
            }
        }
    }
    // Unchanged rows RECON worked on since: confirmed (stat calls only, no file opened).
    let files = kind == SourceKind::Files;
    let root = env.concepts_dir.as_path();
    let confirm: Vec<&Decided> = unchanged
        .par_iter()
        .filter(|r| recon_stale.contains(&r.hash) || (files && freshness::files_changed_since(root, &r.hash, r.cols.recon_domain_assigned_at.as_deref()).0))
        .copied()
        .collect();
    s.confirmed = confirm.len() as u64;
    s.pass.unchanged = unchanged.len() as u64;
    plan.extend(confirm.into_iter().map(|row| Planned { row, new: None }));
    finish(env, &mut conn, run, &plan, &mut s, started)?;
    Ok(s)
}

fn finish(env: &Env, conn: &mut Connection, run: Option<Run>, plan: &[Planned<'_>], s: &mut ReassessSummary, started: Instant) -> Result<()> {
    if let Some(run) = run {
        s.pass.run_id = Some(run.id.clone());
        let res = write(conn, &run.id, plan, s);
        s.pass.elapsed_ms = started.elapsed().as_millis() as u64;
        let outcome = if res.is_ok() { "done" } else { "failed" };
        let mut counts = serde_json::to_value(&*s)?;
        if let Some(o) = counts.as_object_mut() {
            // The report keeps the counts; the rows are in the journal.
            o.remove("items");
        }
        let path = run.finish(env, conn, outcome, &counts)?;
        s.pass.report = Some(path.display().to_string());
        res?;
    }
    s.pass.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(())
}

/// Compare-and-set writes in paced transactions (`recondb::write_paced`): a row someone changed since
/// the selection read it (RECON reset it, a person assigned it, the service
/// wrote it) or that a person overrode since is left alone.
fn write(conn: &mut Connection, run_id: &str, plan: &[Planned<'_>], s: &mut ReassessSummary) -> Result<()> {
    let [w, wd, c] = recondb::write_paced(conn, plan, "engine::reassess::write", |tx, p, n| {
        let cur = recondb::domain_columns(tx, &p.row.hash)?;
        if cur.as_ref() != Some(&p.row.cols) || recondb::is_overridden(tx, &p.row.hash)? {
            n[2] += 1;
            return Ok(());
        }
        let cur = &p.row.cols;
        let now = recondb::now();
        let new = match &p.new {
            Some(o) => {
                let domain = o.domain_label().map(str::to_string);
                let changed = domain != cur.recon_domain;
                n[1] += u64::from(changed);
                DomainColumns {
                    recon_domain: domain,
                    recon_domain_status: Some(o.status.as_str().to_string()),
                    recon_domain_assigned_at: Some(now),
                    peertube_category_pushed_at: if changed { None } else { cur.peertube_category_pushed_at.clone() },
                }
            }
            None => DomainColumns { recon_domain_assigned_at: Some(now), ..cur.clone() },
        };
        crate::journal::write_domain_columns(tx, run_id, &p.row.hash, cur, &new)?;
        n[0] += 1;
        Ok(())
    })?;
    s.pass.written += w;
    let written_domain = wd;
    s.pass.changed_concurrently += c;
    tracing::info!(run = run_id, written = s.pass.written, domain_changed = written_domain, "reassessment written");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assign::counts_by_id as c;

    fn cols(domain: Option<&str>, status: &str, pushed: bool) -> DomainColumns {
        DomainColumns {
            recon_domain: domain.map(str::to_string),
            recon_domain_status: Some(status.into()),
            recon_domain_assigned_at: Some("2026-04-28T00:00:00.000000+00:00".into()),
            peertube_category_pushed_at: pushed.then(|| "2026-04-28T00:01:00.000000+00:00".to_string()),
        }
    }

    #[test]
    fn every_kind_is_named() {
        use ChangeKind::*;
        use Status::*;
        let k = classify;
        assert_eq!(k(Some("Medical"), Assigned, Some("Medical"), Assigned), Unchanged);
        assert_eq!(k(Some("Medical"), Assigned, Some("Security"), Assigned), OtherWinner);
        assert_eq!(k(Some("Medical"), TiedPass2, Some("Security"), TiedManual), OtherWinner);
        assert_eq!(k(Some("Medical"), Assigned, Some("Security"), TiedPass2), NowTied);
        assert_eq!(k(Some("Medical"), Assigned, Some("Medical"), TiedManual), NowTied);
        assert_eq!(k(Some("Medical"), Assigned, None, TiedPass1), NowTied);
        assert_eq!(k(Some("Medical"), TiedManual, Some("Medical"), Assigned), NoLongerTied);
        assert_eq!(k(Some("Medical"), Assigned, None, NeedsReprocess), NowWithoutConcepts);
        assert_eq!(k(Some("Medical"), TiedPass2, None, NoConcepts), NowWithoutConcepts);
        assert_eq!(k(None, NoConcepts, Some("Medical"), Assigned), NowAssignable);
        assert_eq!(k(None, NeedsReprocess, None, NoConcepts), StatusOnly);
        assert_eq!(k(Some("Medical"), TiedPass2, Some("Medical"), TiedManual), StatusOnly);
        assert_eq!(k(None, NoConcepts, None, NoConcepts), Unchanged);
    }

    #[test]
    fn diff_names_the_change_and_whether_peertube_must_follow() {
        let medical = assign::pass1(Some(&c(&[(106, 3), (111, 1)])));
        assert_eq!(diff_one("h", &cols(Some("Medical"), "assigned", true), &medical), None);
        let it = diff_one("h", &cols(Some("Security"), "assigned", true), &medical).expect("a change");
        assert_eq!(
            (it.kind, it.old_domain.as_deref(), it.new_domain.as_deref(), it.new_status.as_str(), it.domain_changed),
            (ChangeKind::OtherWinner, Some("Security"), Some("Medical"), "assigned", true)
        );
        let tie_kept_domain = Outcome { status: Status::TiedManual, domain: Some(6), tied: vec![6, 11], rule: Rule::AlphabeticalFallback };
        let it = diff_one("h", &cols(Some("Medical"), "assigned", true), &tie_kept_domain).expect("a change");
        assert_eq!((it.kind, it.domain_changed), (ChangeKind::NowTied, false));
        let empty = assign::pass1_as(Some(&c(&[])), Status::NoConcepts);
        let it = diff_one("h", &cols(Some("Medical"), "tied_pass_2", false), &empty).expect("a change");
        assert_eq!((it.kind, it.new_domain, it.domain_changed), (ChangeKind::NowWithoutConcepts, None, true));
        // A status the machine does not decide is never diffed.
        assert_eq!(diff_one("h", &cols(Some("Security"), "manual_assigned", true), &medical), None);
    }

    #[test]
    fn still_holds_never_hides_a_change() {
        let medical = assign::pass1(Some(&c(&[(106, 3)])));
        let tie = assign::pass1(Some(&c(&[(106, 2), (111, 2)])));
        assert!(still_holds(Some("Medical"), Status::Assigned, &medical));
        assert!(!still_holds(Some("Security"), Status::Assigned, &medical));
        assert!(!still_holds(Some("Medical"), Status::Assigned, &tie));
        assert!(still_holds(Some("Security"), Status::TiedPass2, &tie), "still tied, its domain among the tied");
        assert!(still_holds(Some("Medical"), Status::TiedManual, &tie));
        assert!(!still_holds(Some("Water Systems"), Status::TiedManual, &tie));
        assert!(!still_holds(Some("Medical"), Status::TiedPass2, &medical), "now a clear winner: assigned");
        let none = assign::pass1_as(Some(&c(&[])), Status::NoConcepts);
        assert!(still_holds(None, Status::NoConcepts, &none));
        assert!(!still_holds(None, Status::NeedsReprocess, &none));
        assert!(!still_holds(None, Status::NoConcepts, &medical));
    }
}
