//! `reconcile` (recon.db's pushed domains against PeerTube's `video.category`,
//! plus the runbook's step 6 checks, optionally re-pushing drift) and the
//! journaled emergency reset. Both read PeerTube's PostgreSQL.

use crate::config::{Config, Transport};
use crate::context::Env;
use crate::error::DbContext;
use crate::error::{Error, Result};
use crate::journal::run::Run;
use crate::journal::{self, EntryState, Kind};
use crate::peertube::db::{PgVideos, VideoRow};
use crate::peertube::ledger::{self, PushDoc};
use crate::peertube::push::{self as pusher, Job, PushOptions, PushSummary};
use crate::peertube::video_id::VideoUuid;
use crate::recon::db::{self as recondb, DomainColumns};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// recon.db says pushed; PeerTube has no such local video.
    MissingInPeertube,
    /// PeerTube holds another category.
    DifferentCategory,
    /// recon.db says pushed; PeerTube's category is empty.
    PushedButEmpty,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::MissingInPeertube => "video missing in PeerTube",
            DriftKind::DifferentCategory => "different category",
            DriftKind::PushedButEmpty => "pushed but empty",
        }
    }
}

/// Drift of one pushed document (pure).
pub fn classify(expected: i64, row: Option<&VideoRow>) -> Option<DriftKind> {
    match row {
        None => Some(DriftKind::MissingInPeertube),
        Some(r) if r.remote => Some(DriftKind::MissingInPeertube),
        Some(r) => match r.category {
            None => Some(DriftKind::PushedButEmpty),
            Some(c) if i64::from(c) != expected => Some(DriftKind::DifferentCategory),
            Some(_) => None,
        },
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftItem {
    pub kind: DriftKind,
    pub hash: String,
    pub video: String,
    pub domain: String,
    pub expected: i64,
    pub actual: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    pub pushed_documents: u64,
    pub in_sync: u64,
    pub drift: Vec<DriftItem>,
    pub drift_counts: BTreeMap<String, u64>,
    /// Pushed documents whose path or domain gives no video.
    pub unpushable: Vec<(String, String)>,
    /// Runbook step 6: (category, label, videos) for categories ≥ 100.
    pub distribution: Vec<(i32, String, i64)>,
    pub without_category: i64,
    pub repair: Option<PushSummary>,
}

pub async fn reconcile(cfg: &Config, env: &Env, repair: bool, via: Transport) -> Result<ReconcileReport> {
    let docs: Vec<PushDoc> = {
        let conn = recondb::open_readonly(&env.recon_db)?;
        if recondb::feature_columns_present(&conn)? {
            ledger::select_pushed(&conn, &env.source)?
        } else {
            Vec::new()
        }
    };
    let pg = PgVideos::connect(cfg).await?;
    let mut rep = ReconcileReport { pushed_documents: docs.len() as u64, ..Default::default() };
    let mut targets = Vec::with_capacity(docs.len());
    for d in docs {
        match ledger::target_of(&d) {
            Ok((v, c)) => targets.push((d, v, c)),
            Err(why) => rep.unpushable.push((d.hash.clone(), why.to_string())),
        }
    }
    let ids: Vec<&VideoUuid> = targets.iter().map(|t| &t.1).collect();
    let current = pg.current(&ids).await?;
    let mut repair_jobs = Vec::new();
    for (doc, video, expected) in targets {
        let row = current.get(&video);
        match classify(expected, row) {
            None => rep.in_sync += 1,
            Some(kind) => {
                *rep.drift_counts.entry(kind.as_str().to_string()).or_default() += 1;
                rep.drift.push(DriftItem {
                    kind,
                    hash: doc.hash.clone(),
                    video: video.to_string(),
                    domain: doc.domain.clone(),
                    expected,
                    actual: row.and_then(|r| r.category).map(i64::from),
                });
                if kind != DriftKind::MissingInPeertube {
                    repair_jobs.push(Job { doc, video, category: expected, prior: None });
                }
            }
        }
    }
    rep.distribution = pg
        .distribution()
        .await?
        .into_iter()
        .map(|(c, n)| {
            let label = u16::try_from(c).ok().and_then(shared_constants::by_id).map(|d| d.label.to_string()).unwrap_or_else(|| "(not ours)".into());
            (c, label, n)
        })
        .collect();
    rep.without_category = pg.without_category().await?;
    drop(pg);
    if repair && !repair_jobs.is_empty() {
        let opts = PushOptions { limit: None, dry_run: false, transport: via, batch_size: cfg.peertube.batch_size, command: "reconcile-repair".into() };
        rep.repair = Some(pusher::push(cfg, env, &opts, Some(repair_jobs)).await?);
    }
    Ok(rep)
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ResetReport {
    pub dry_run: bool,
    pub run_id: Option<String>,
    pub report: Option<String>,
    /// Local videos with a category ≥ 100 (reset to NULL).
    pub videos: u64,
    pub by_category: BTreeMap<i32, u64>,
    /// Remote videos with a category ≥ 100: never touched.
    pub remote_skipped: u64,
    pub reset: u64,
    pub changed_concurrently: u64,
    pub pushed_timestamps: u64,
    pub pushed_cleared: u64,
}

pub async fn reset(cfg: &Config, env: &Env, dry_run: bool, yes: bool) -> Result<ResetReport> {
    if !dry_run && !yes {
        return Err(Error::Refused(
            "reset-peertube-categories sets every category >= 100 on this PeerTube back to none and clears every push timestamp: \
             run it with --dry-run to see how many, then again with --yes-reset-all"
                .into(),
        ));
    }
    let mut rep = ResetReport { dry_run, ..Default::default() };
    let mut pg = PgVideos::connect(cfg).await?;
    let all = pg.with_recon_category().await?;
    let local: Vec<(VideoUuid, i32)> = all.iter().filter(|v| !v.2).map(|v| (v.0.clone(), v.1)).collect();
    rep.remote_skipped = (all.len() - local.len()) as u64;
    rep.videos = local.len() as u64;
    for (_, c) in &local {
        *rep.by_category.entry(*c).or_default() += 1;
    }
    if dry_run {
        let conn = recondb::open_readonly(&env.recon_db)?;
        if recondb::feature_columns_present(&conn)? {
            rep.pushed_timestamps = conn
                .query_row("SELECT count(*) FROM documents WHERE peertube_category_pushed_at IS NOT NULL", [], |r| r.get::<_, i64>(0))
                .ctx("peertube::reconcile::reset")? as u64;
        }
        return Ok(rep);
    }
    let mut conn = recondb::open(&env.recon_db)?;
    let run = Run::begin(env, &mut conn, "reset-peertube-categories", json!({ "yes_reset_all": true }))?;
    rep.run_id = Some(run.id.clone());
    let res = reset_inner(cfg, &mut conn, &run.id, &mut pg, &local, &mut rep).await;
    let outcome = if res.is_ok() { "done" } else { "failed" };
    let path = run.finish(env, &conn, outcome, &serde_json::to_value(&rep)?)?;
    rep.report = Some(path.display().to_string());
    res?;
    Ok(rep)
}

async fn reset_inner(
    cfg: &Config,
    conn: &mut rusqlite::Connection,
    run_id: &str,
    pg: &mut PgVideos,
    local: &[(VideoUuid, i32)],
    rep: &mut ResetReport,
) -> Result<()> {
    for chunk in local.chunks(cfg.peertube.batch_size.max(1)) {
        let ids = recondb::retry_busy(|| {
            let tx = recondb::write_tx(conn)?;
            let mut ids = Vec::with_capacity(chunk.len());
            for (v, c) in chunk {
                ids.push(journal::record(
                    &tx,
                    run_id,
                    Kind::Video,
                    v.as_str(),
                    &json!({ "category": c, "transport": "db" }),
                    &json!({ "category": null, "transport": "db" }),
                    EntryState::Pending,
                )?);
            }
            tx.commit().ctx("peertube::reconcile::reset_inner")?;
            Ok(ids)
        })?;
        let rows: Vec<(VideoUuid, Option<i32>, Option<i32>)> = chunk.iter().map(|(v, c)| (v.clone(), Some(*c), None)).collect();
        let written = pg.compare_and_set(&rows).await?;
        recondb::retry_busy(|| {
            let tx = recondb::write_tx(conn)?;
            for (id, (v, _)) in ids.iter().zip(chunk) {
                if written.contains(v) {
                    journal::set_state(&tx, *id, EntryState::Applied, None)?;
                } else {
                    journal::set_state(&tx, *id, EntryState::Failed, Some("changed in PeerTube meanwhile; not reset"))?;
                }
            }
            tx.commit().ctx("peertube::reconcile::reset_inner")?;
            Ok(())
        })?;
        rep.reset += written.len() as u64;
        rep.changed_concurrently += (chunk.len() - written.len()) as u64;
    }
    // The pushed timestamps, journaled so the rollback restores them.
    let hashes: Vec<String> = {
        let mut stmt =
            conn.prepare("SELECT hash FROM documents WHERE peertube_category_pushed_at IS NOT NULL ORDER BY rowid").ctx("peertube::reconcile::reset_inner")?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .ctx("peertube::reconcile::reset_inner")?
            .collect::<Result<Vec<String>, _>>()
            .ctx("peertube::reconcile::reset_inner")?;
        rows
    };
    rep.pushed_timestamps = hashes.len() as u64;
    for chunk in hashes.chunks(500) {
        let n = recondb::retry_busy(|| {
            let tx = recondb::write_tx(conn)?;
            let mut n = 0u64;
            for h in chunk {
                let Some(cur) = recondb::domain_columns(&tx, h)? else { continue };
                if cur.peertube_category_pushed_at.is_none() {
                    continue;
                }
                let new = DomainColumns { peertube_category_pushed_at: None, ..cur.clone() };
                tx.execute("UPDATE documents SET peertube_category_pushed_at = NULL WHERE hash = ?1", [h]).ctx("peertube::reconcile::reset_inner")?;
                journal::record(&tx, run_id, Kind::Documents, h, &serde_json::to_value(&cur)?, &serde_json::to_value(&new)?, EntryState::Applied)?;
                n += 1;
            }
            tx.commit().ctx("peertube::reconcile::reset_inner")?;
            Ok(n)
        })?;
        rep.pushed_cleared += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_kinds() {
        let local = |c: Option<i32>| VideoRow { category: c, remote: false };
        assert_eq!(classify(105, None), Some(DriftKind::MissingInPeertube));
        assert_eq!(classify(105, Some(&VideoRow { category: Some(105), remote: true })), Some(DriftKind::MissingInPeertube));
        assert_eq!(classify(105, Some(&local(None))), Some(DriftKind::PushedButEmpty));
        assert_eq!(classify(105, Some(&local(Some(106)))), Some(DriftKind::DifferentCategory));
        assert_eq!(classify(105, Some(&local(Some(105)))), None);
    }
}
