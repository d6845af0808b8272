//! The PeerTube commands: `--push-pending` (with its summary: throughput, concurrency reached, retries, skipped-already-right), `verify-peertube`, `reconcile`, `reset-peertube-categories`.

use super::{assign::AssignArgs, Ctx};
use crate::config::Transport;
use crate::context::runtime;
use crate::error::{Error, Result};
use crate::output;
use crate::peertube::api::ApiClient;
use crate::peertube::preflight;
use crate::peertube::push::{self as pusher, PushOptions, PushSummary};
use crate::peertube::reconcile as drift;

pub fn print_push(ctx: &Ctx, s: &PushSummary) -> Result<()> {
    if ctx.json {
        return output::print_json(s);
    }
    let mut d: Vec<_> = s.by_domain.iter().collect();
    d.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let rows = d.into_iter().map(|(label, n)| {
        let id = shared_constants::by_label(label).map(|d| d.id.to_string()).unwrap_or_default();
        vec![id, label.clone(), n.to_string()]
    });
    println!("{}{} via {} — {} documents selected", if s.dry_run { "DRY RUN " } else { "" }, s.command, s.transport, s.selected);
    println!("{}", output::table(&["category", "domain", if s.dry_run { "would push" } else { "selected" }], rows));
    for (hash, why) in s.unpushable.iter().take(50) {
        println!("not pushable: {hash}: {why}");
    }
    if !s.unpushable.is_empty() {
        println!("{} document(s) cannot be pushed (left unpushed; fix their catalogue path or domain)", s.unpushable.len());
    }
    if s.dry_run {
        println!("nothing written");
        return Ok(());
    }
    println!(
        "{}",
        output::kv(vec![
            ("pushed", s.pushed.to_string()),
            ("already right (skipped, no request)", s.already_set.to_string()),
            ("  of which confirmed writes of an interrupted run", s.recovered.to_string()),
            ("failed", s.failed.to_string()),
            ("  unknown videos", s.not_found.to_string()),
            ("  remote videos", s.remote.to_string()),
            ("  changed in PeerTube meanwhile (not overwritten)", s.changed_in_peertube.to_string()),
            ("document's domain changed meanwhile (left unpushed)", s.document_changed.to_string()),
            ("left to people (a person's category in PeerTube; `reconcile --adopt` takes it)", s.left_to_people.len().to_string()),
            ("HTTP requests (retries)", format!("{} ({})", s.http_requests, s.http_retries)),
            ("  serialization 500s retried", s.serialization_retries.to_string()),
            ("  requests per video", format!("{:.2}", s.requests_per_video)),
            ("current categories read from", if s.snapshot.is_empty() { "-".to_string() } else { s.snapshot.clone() }),
            ("throughput", format!("{:.1} videos/s", s.videos_per_sec)),
            (
                "concurrency reached (final)",
                if s.concurrency_reached == 0 { "-".to_string() } else { format!("{} ({})", s.concurrency_reached, s.concurrency_final) }
            ),
            ("elapsed", format!("{:.2} s", s.elapsed_ms as f64 / 1000.0)),
        ])
    );
    for f in s.failures.iter().take(20) {
        println!("failed: {f}");
    }
    for (_, line) in s.left_to_people.iter().take(20) {
        println!("left to people: {line}");
    }
    if let Some(a) = &s.aborted {
        println!("ABORTED as systemic: {a}");
    }
    if let Some(id) = &s.run_id {
        println!("run {id}; report {}; undo with `recon-companion rollback --run {id}`", s.report.clone().unwrap_or_default());
    }
    Ok(())
}

pub fn push_pending(ctx: &Ctx, a: &AssignArgs) -> Result<i32> {
    // The kill switch (`pause-push`, dashboard) stops every push, the CLI's too.
    if !a.dry_run {
        let conn = crate::recon::db::open_readonly(&ctx.env.recon_db)?;
        if crate::recon::db::migration_state(&conn)?.companion_tables && crate::server::pause::is_paused(&conn)? {
            return Err(Error::Refused("pushes are paused (kill switch); run `recon-companion resume-push` first".into()));
        }
    }
    let opts = PushOptions {
        limit: a.limit,
        dry_run: a.dry_run,
        transport: ctx.transport(a.via),
        batch_size: a.batch_size.unwrap_or(ctx.cfg.peertube.batch_size).max(1),
        command: "push-pending".into(),
    };
    let s = runtime()?.block_on(pusher::push(&ctx.cfg, &ctx.env, &opts, None))?;
    print_push(ctx, &s)?;
    Ok(if s.aborted.is_some() || s.failed > 0 { 1 } else { 0 })
}

pub fn verify_peertube(ctx: &Ctx) -> Result<i32> {
    let client = ApiClient::from_config(&ctx.cfg)?;
    let p = runtime()?.block_on(preflight::run(&client)).map_err(|e| Error::PeerTube(format!("cannot reach PeerTube at {}: {e}", ctx.cfg.peertube.url)))?;
    if ctx.json {
        output::print_json(&serde_json::json!({ "ok": p.ok(), "preflight": p }))?;
    } else {
        println!(
            "{}",
            output::kv(vec![
                ("PeerTube", p.url.clone()),
                ("categories 100-117 with our labels", format!("{} of 18", p.categories_ok)),
                ("plugin fingerprint", p.plugin_fingerprint.clone().unwrap_or_else(|| "(none)".into())),
                ("our fingerprint", p.expected_fingerprint.clone()),
                ("plugin version", p.plugin_version.clone().unwrap_or_else(|| "(none)".into())),
            ])
        );
        for problem in &p.problems {
            println!("MISMATCH: {problem}");
        }
        println!("{}", if p.ok() { "PeerTube matches our taxonomy" } else { "PeerTube does NOT match our taxonomy" });
    }
    Ok(if p.ok() { 0 } else { 1 })
}

/// Keeps what this reconcile found for the service's `recon_companion_drift_videos`
/// (drift left after a repair counts). Best effort: a recon.db that is not
/// migrated or not writable only loses the metric.
fn record_drift(ctx: &Ctx, rep: &drift::ReconcileReport) {
    let found = rep.drift.len() as u64;
    let left = rep.repair.as_ref().map_or(found, |r| found.saturating_sub(r.pushed + r.already_set));
    let last = crate::server::metrics::LastReconcile { at: chrono::Utc::now().timestamp(), drift: left };
    let stored = crate::recon::db::open(&ctx.env.recon_db).and_then(|conn| crate::server::metrics::record_reconcile(&conn, last));
    if let Err(e) = stored {
        tracing::warn!("reconcile result not kept for the service's metrics: {e}");
    }
}

pub fn reconcile(ctx: &Ctx, repair: bool, via: Option<Transport>) -> Result<i32> {
    reconcile_cmd(ctx, repair, false, false, via)
}

fn print_people(title: &str, people: &[crate::peertube::adopt::PersonItem]) {
    if people.is_empty() {
        return;
    }
    let show = |c: Option<i64>| c.map(|c| c.to_string()).unwrap_or_else(|| "none".into());
    println!("{title}");
    println!(
        "{}",
        output::table(
            &["video", "document", "was", "set to", "action", "by", "at"],
            people.iter().take(50).map(|p| vec![
                p.video.clone(),
                p.hash.clone(),
                format!("{} ({})", show(p.ours), p.domain),
                show(p.to),
                match &p.action {
                    crate::peertube::people::Action::Adopt { domain } => format!("adopt: manual_assigned {domain}"),
                    crate::peertube::people::Action::Override => "override".to_string(),
                },
                p.by.clone().unwrap_or_else(|| "-".into()),
                p.at.clone().unwrap_or_else(|| "-".into()),
            ])
        )
    );
}

pub fn reconcile_cmd(ctx: &Ctx, repair: bool, adopt: bool, dry_run: bool, via: Option<Transport>) -> Result<i32> {
    let o = drift::ReconcileOptions { repair, adopt, dry_run, via: ctx.transport(via) };
    let rep = runtime()?.block_on(drift::reconcile_with(&ctx.cfg, &ctx.env, o))?;
    record_drift(ctx, &rep);
    if ctx.json {
        output::print_json(&rep)?;
    } else {
        println!(
            "{} pushed documents checked ({}{}), {} in sync, {} changed by people, {} overridden",
            rep.pushed_documents,
            rep.read_from,
            if rep.plugin_log { ", who and when from the plugin" } else { "" },
            rep.in_sync,
            rep.people.len(),
            rep.overridden
        );
        println!(
            "{}",
            output::table(
                &["drift (ours to fix)", "videos"],
                drift::DriftKind::ALL.iter().map(|k| vec![k.as_str().to_string(), rep.drift_counts.get(k.as_str()).copied().unwrap_or(0).to_string()])
            )
        );
        if !rep.drift.is_empty() {
            let show = |c: Option<i64>| c.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
            println!(
                "{}",
                output::table(
                    &["drift", "video", "document", "expected", "PeerTube"],
                    rep.drift.iter().take(50).map(|d| vec![
                        d.kind.as_str().to_string(),
                        d.video.clone(),
                        d.hash.clone(),
                        d.expected.to_string(),
                        show(d.actual)
                    ])
                )
            );
        }
        print_people("changed by people in PeerTube (theirs: never repaired; take them with --adopt):", &rep.people);
        for (h, why) in rep.unpushable.iter().take(20) {
            println!("pushed document without a video: {h}: {why}");
        }
        println!("runbook step 6 — videos per category >= 100:");
        println!("{}", output::table(&["category", "label", "videos"], rep.distribution.iter().map(|(c, l, n)| vec![c.to_string(), l.clone(), n.to_string()])));
        println!("videos without a category: {}", rep.without_category);
        if let Some(a) = &rep.adopt {
            if a.dry_run {
                println!("DRY RUN --adopt: would adopt {} and record {} override(s); nothing written", a.adopted.len(), a.overridden.len());
            } else {
                println!(
                    "adopted {} as manual_assigned, recorded {} override(s), {} changed meanwhile (left)",
                    a.adopted.len(),
                    a.overridden.len(),
                    a.changed_meanwhile
                );
                if let Some(id) = &a.run_id {
                    println!("run {id}; report {}; undo with `recon-companion rollback --run {id}`", a.report.clone().unwrap_or_default());
                }
            }
        }
        if let Some(r) = &rep.repair {
            println!("repair:");
            print_push(ctx, r)?;
        }
    }
    let unrepaired = match &rep.repair {
        Some(r) => r.failed > 0 || r.aborted.is_some() || rep.drift.iter().any(|d| d.kind == drift::DriftKind::MissingInPeertube),
        None => !rep.drift.is_empty(),
    };
    let untaken = !rep.people.is_empty() && rep.adopt.as_ref().is_none_or(|a| a.dry_run);
    Ok(if unrepaired || untaken { 1 } else { 0 })
}

pub fn reset_categories(ctx: &Ctx, dry_run: bool, yes: bool) -> Result<i32> {
    let rep = runtime()?.block_on(drift::reset(&ctx.cfg, &ctx.env, dry_run, yes))?;
    if ctx.json {
        output::print_json(&rep)?;
        return Ok(0);
    }
    println!("{}", output::table(&["category", "local videos"], rep.by_category.iter().map(|(c, n)| vec![c.to_string(), n.to_string()])));
    if dry_run {
        println!(
            "DRY RUN: would set {} local video(s) back to no category ({} remote ones are never touched) and clear {} push timestamp(s); nothing changed",
            rep.videos, rep.remote_skipped, rep.pushed_timestamps
        );
    } else {
        println!(
            "reset {} video(s) ({} changed meanwhile, left alone; {} remote untouched); cleared {} push timestamp(s)",
            rep.reset, rep.changed_concurrently, rep.remote_skipped, rep.pushed_cleared
        );
        if let Some(id) = &rep.run_id {
            println!("run {id}; report {}; undo with `recon-companion rollback --run {id}`", rep.report.clone().unwrap_or_default());
        }
    }
    Ok(0)
}
