//! Pass 1 over the backfill selection: count each document's concepts once, apply the rules, write in short transactions.

use super::run::{abort_pass, finish_pass, open_for, Change};
use super::summary::{percentages, PassSummary};
use crate::assign;
use crate::config::SourceKind;
use crate::context::Env;
use crate::error::{Error, Result};
use crate::journal::batch::Guard;
use crate::recon::db as recondb;
use std::time::Instant;

/// Pass 1 over the backfill selection. Dry runs open the db read-only and work on
/// an unmigrated db (the missing columns count as NULL). With the Qdrant source
/// the selection also takes `needs_reprocess` rows (a failed request is
/// transient), as RECON's Qdrant version does.
pub fn backfill(env: &Env, limit: Option<u64>, dry_run: bool) -> Result<PassSummary> {
    let started = Instant::now();
    let kind = env.concepts.kind();
    let mut summary = PassSummary { command: "backfill".into(), dry_run, source: kind.as_str().into(), ..Default::default() };
    let (mut conn, run) = open_for(env, "backfill", limit, dry_run)?;
    let migrated = recondb::feature_columns_present(&conn)?;
    let cands = recondb::backfill_selection(&conn, &env.source, limit, migrated, kind == SourceKind::Qdrant)?;
    summary.selected = cands.len() as u64;
    let docs: Vec<Option<i64>> = cands.iter().map(|c| c.doc).collect();
    let hashes: Vec<String> = cands.into_iter().map(|c| c.hash).collect();
    let no_counts = env.no_counts_status();
    let mut outcomes = Vec::with_capacity(hashes.len());
    // Each scan is reduced to its outcome and statistics as it arrives: at
    // 220,000 videos the scans' window lists alone would be hundreds of MB.
    let counted = env.counts_each(&hashes, "backfill", |i, scan| {
        summary.note_scan(&hashes[i], &scan);
        let outcome = assign::pass1_as(scan.dir_found.then_some(&scan.totals), no_counts);
        summary.tally.add(&outcome);
        outcomes.push(outcome);
    });
    summary.source_stats = match counted {
        Ok(stats) if outcomes.len() == hashes.len() => stats,
        Ok(_) => {
            let e = Error::Other(format!("backfill: the concept source answered for {} of {} documents", outcomes.len(), hashes.len()));
            return Err(abort_pass(env, &conn, run, &mut summary, e, started));
        }
        Err(e) => return Err(abort_pass(env, &conn, run, &mut summary, e, started)),
    };
    let changes: Vec<Change> = hashes.into_iter().zip(outcomes).zip(docs).map(|((hash, outcome), doc)| Change { hash, outcome, doc }).collect();
    summary.percent = percentages(&summary.tally, summary.selected);
    finish_pass(env, &mut conn, run, &changes, Guard::DomainUnset, &mut summary, started)?;
    Ok(summary)
}
