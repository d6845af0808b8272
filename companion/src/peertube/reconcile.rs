//! `reconcile` (recon.db's pushed domains against PeerTube's categories, people's
//! changes apart from drift, the runbook's step 6 checks; optionally taking
//! people's changes and re-pushing drift) and the journaled emergency reset
//! (PeerTube's PostgreSQL only).

use crate::config::{Config, Transport};
use crate::context::Env;
use crate::error::DbContext;
use crate::error::{Error, Result};
use crate::journal::run::Run;
use crate::journal::{self, EntryState, Kind};
use crate::peertube::adopt::{self, AdoptSummary, PersonItem};
use crate::peertube::db::PgVideos;
use crate::peertube::people::Verdict;
use crate::peertube::push::{self as pusher, Job, PushOptions, PushSummary};
use crate::peertube::video_id::VideoUuid;
use crate::recon::db::{self as recondb, DomainColumns};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

pub use crate::peertube::people::DriftKind;

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
    /// Ours to fix: push failed, video missing or replaced, a stale push.
    pub drift: Vec<DriftItem>,
    pub drift_counts: BTreeMap<String, u64>,
    /// Categories people set in PeerTube since our last write: theirs, never repaired.
    pub people: Vec<PersonItem>,
    /// Videos already recorded as overridden by a person: left alone.
    pub overridden: u64,
    /// Where PeerTube's categories were read (`postgresql`, `video list`).
    pub read_from: String,
    /// Whether the plugin's change log said who and when.
    pub plugin_log: bool,
    /// Pushed documents whose path or domain gives no video.
    pub unpushable: Vec<(String, String)>,
    /// Runbook step 6: (category, label, videos) for categories ≥ 100.
    pub distribution: Vec<(i32, String, i64)>,
    pub without_category: i64,
    /// `--adopt`: the people's changes taken (or, with `--dry-run`, that would be).
    pub adopt: Option<AdoptSummary>,
    pub repair: Option<PushSummary>,
}

/// What `reconcile` does beyond reporting.
#[derive(Debug, Clone, Copy)]
pub struct ReconcileOptions {
    /// Re-push what drifted (never people's changes or overrides).
    pub repair: bool,
    /// Take people's changes (adopt or override).
    pub adopt: bool,
    /// With `adopt`: only say what would be taken.
    pub dry_run: bool,
    pub via: Transport,
}

pub async fn reconcile(cfg: &Config, env: &Env, repair: bool, via: Transport) -> Result<ReconcileReport> {
    reconcile_with(cfg, env, ReconcileOptions { repair, adopt: false, dry_run: false, via }).await
}

pub async fn reconcile_with(cfg: &Config, env: &Env, o: ReconcileOptions) -> Result<ReconcileReport> {
    let survey = adopt::survey(cfg, env).await?;
    let mut rep = ReconcileReport {
        pushed_documents: (survey.items.iter().filter(|x| x.pushed).count() + survey.unpushable.len()) as u64,
        unpushable: survey.unpushable.clone(),
        read_from: survey.read_from.clone(),
        plugin_log: survey.plugin_log,
        without_category: survey.without_category,
        people: survey.people(),
        ..Default::default()
    };
    let mut repair_jobs = Vec::new();
    for x in &survey.items {
        match x.verdict {
            Verdict::InSync => rep.in_sync += 1,
            Verdict::Overridden => rep.overridden += 1,
            Verdict::Person { .. } => {}
            Verdict::Drift(kind) => {
                *rep.drift_counts.entry(kind.as_str().to_string()).or_default() += 1;
                rep.drift.push(DriftItem {
                    kind,
                    hash: x.doc.hash.clone(),
                    video: x.video.to_string(),
                    domain: x.doc.domain.clone(),
                    expected: x.expected,
                    actual: x.actual,
                });
                // Only what is ours: a missing video cannot be written, and a
                // person's change or an override never appears here.
                if kind != DriftKind::MissingInPeertube {
                    repair_jobs.push(Job { doc: x.doc.clone(), video: x.video.clone(), category: x.expected, prior: None });
                }
            }
        }
    }
    rep.distribution = survey
        .distribution
        .iter()
        .map(|(c, n)| {
            let label = u16::try_from(*c).ok().and_then(shared_constants::by_id).map(|d| d.label.to_string()).unwrap_or_else(|| "(not ours)".into());
            (*c, label, *n)
        })
        .collect();
    if o.adopt {
        rep.adopt = Some(adopt::take(cfg, env, &survey, o.dry_run, "reconcile-adopt")?);
    }
    if o.repair && !o.dry_run && !repair_jobs.is_empty() {
        let opts = PushOptions { limit: None, dry_run: false, transport: o.via, batch_size: cfg.peertube.batch_size, command: "reconcile-repair".into() };
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
