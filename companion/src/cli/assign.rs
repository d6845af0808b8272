//! `assign-categories`: the passes (backfill, tiebreaker, reprocess, push) and the status view.

use super::{peertube, Ctx};
use crate::config::Transport;
use crate::engine::{self, PassSummary};
use crate::error::Result;
use crate::output::{self, pct};
use clap::Args;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("pass").args(["backfill", "tiebreaker_pass", "reprocess_missing", "push_pending", "reassess"])))]
pub struct AssignArgs {
    /// Pass 1 over complete PeerTube documents without a domain.
    #[arg(long)]
    pub backfill: bool,
    /// Passes 2 and 3 over tied_pass_1 documents (channel tiebreaker, mega-channel rule).
    #[arg(long)]
    pub tiebreaker_pass: bool,
    /// Quarantine (never delete) needs_reprocess concept dirs, reset and re-queue the documents.
    #[arg(long)]
    pub reprocess_missing: bool,
    /// Push assigned domains to PeerTube (oldest assignment first).
    #[arg(long)]
    pub push_pending: bool,
    /// Recompute every row the machine decided (never manual_assigned or a PeerTube override) with today's rules and source; report what changes, by kind; write it in one journaled run (the next push corrects PeerTube).
    #[arg(long)]
    pub reassess: bool,
    /// Change nothing; print what would happen.
    #[arg(long)]
    pub dry_run: bool,
    /// At most N documents (oldest first).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Push transport (default: the config's peertube.transport). api: PeerTube's REST API — validated, audit-logged, runs plugin hooks, federates the change to followers. db: straight into PeerTube's PostgreSQL — much faster, compare-and-set, but NO federation to followers (remote instances see the change only when they next refresh the video), NO PeerTube-side plugin hooks and NO audit log entry.
    #[arg(long, value_parser = super::transport_parser())]
    pub via: Option<Transport>,
    /// Rows per PostgreSQL transaction with --via db.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
}

pub fn assign_categories(ctx: &Ctx, a: &AssignArgs) -> Result<i32> {
    if a.backfill {
        let s = engine::backfill(&ctx.env, a.limit, a.dry_run)?;
        print_pass(ctx, &s)?;
        return Ok(0);
    }
    if a.tiebreaker_pass {
        let s = engine::tiebreaker(&ctx.env, a.limit, a.dry_run)?;
        print_pass(ctx, &s)?;
        return Ok(0);
    }
    if a.reprocess_missing {
        let s = engine::reprocess(&ctx.env, a.limit, a.dry_run)?;
        if ctx.json {
            output::print_json(&s)?;
        } else {
            let rows = s.items.iter().map(|i| {
                vec![
                    i.hash.clone(),
                    i.title.clone().unwrap_or_default().chars().take(40).collect(),
                    i.concept_dir.as_ref().map(|_| i.files.to_string()).unwrap_or_else(|| "no dir".into()),
                    i.quarantined_to.clone().or_else(|| i.error.clone()).unwrap_or_else(|| {
                        if s.dry_run {
                            "would quarantine + queue".into()
                        } else {
                            "queued".into()
                        }
                    }),
                ]
            });
            println!("{}", output::table(&["hash", "title", "files", "action"], rows));
            println!(
                "{}{} selected, {} queued, {} dirs ({} files) quarantined, {} refused",
                if s.dry_run { "DRY RUN: " } else { "" },
                s.selected,
                s.queued,
                s.dirs_quarantined,
                s.files_quarantined,
                s.refused
            );
            if let (Some(id), Some(q)) = (&s.run_id, &s.quarantine_dir) {
                println!("run {id}: quarantine {q}; undo with `recon-companion rollback --run {id}`");
            }
        }
        return Ok(if s.refused > 0 { 1 } else { 0 });
    }
    if a.push_pending {
        return peertube::push_pending(ctx, a);
    }
    if a.reassess {
        let s = engine::reassess::reassess(&ctx.env, a.limit, a.dry_run)?;
        super::reassess::print(ctx, &s)?;
        return Ok(0);
    }
    status(ctx)
}

pub fn print_pass(ctx: &Ctx, s: &PassSummary) -> Result<()> {
    if ctx.json {
        return output::print_json(s);
    }
    let qdrant = s.source == "qdrant";
    let order = ["assigned", "tied_pass_1", "tied_pass_2", "tied_manual", "needs_reprocess", "no_concepts"];
    let optional = |st: &str| st == "tied_pass_2" || st == "tied_manual" || (st == "no_concepts" && !qdrant);
    let rows = order.iter().filter(|st| s.tally.by_status.contains_key(**st) || !optional(st)).map(|st| {
        let n = s.tally.by_status.get(*st).copied().unwrap_or(0);
        let share = if s.selected == 0 { 0.0 } else { n as f64 * 100.0 / s.selected as f64 };
        vec![st.to_string(), n.to_string(), pct(share)]
    });
    println!("{}{} — {} documents selected", if s.dry_run { "DRY RUN " } else { "" }, s.command, s.selected);
    println!("{}", output::table(&["status", "documents", "of selected"], rows));
    if s.command == "backfill" {
        let p = &s.percent;
        // Expected shares of the runbook: [(assigned, tied), (no_concepts, needs_reprocess)];
        // the files era has no no_concepts row.
        let (title, rows) = if qdrant {
            // RECON's production dry run after its switch to Qdrant (3b37d96):
            // 20,453 assigned, 1,392 tied, 298 no_concepts, 0 needs_reprocess.
            ("runbook benchmark (Qdrant era)", [("~93.6%", "~6.4%"), ("~1.3%", "0%")])
        } else {
            ("runbook benchmark", [("~94.8%", "~5.2%"), ("", "~19.5%")])
        };
        let [(assigned, tied), (no_concepts, needs_reprocess)] = rows;
        let mut table = vec![
            vec!["assigned (% of concept-bearing)".to_string(), pct(p.assigned_of_concept_bearing), assigned.into()],
            vec!["tied (% of concept-bearing)".to_string(), pct(p.tied_of_concept_bearing), tied.into()],
        ];
        if !no_concepts.is_empty() {
            table.push(vec!["no_concepts (% of all)".to_string(), pct(p.no_concepts_of_all), no_concepts.into()]);
        }
        table.push(vec!["needs_reprocess (% of all)".to_string(), pct(p.needs_reprocess_of_all), needs_reprocess.into()]);
        println!("{}", output::table(&[title, "this run", "expected"], table));
    }
    if !s.tally.by_domain.is_empty() {
        let mut d: Vec<_> = s.tally.by_domain.iter().collect();
        d.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        println!("{}", output::table(&["domain", "documents"], d.into_iter().map(|(k, v)| vec![k.clone(), v.to_string()])));
    }
    if qdrant {
        let st = &s.source_stats;
        println!(
            "qdrant: {} documents, strategy {}, {} requests ({} retries), {} answered from counts already read; {} documents failed (needs_reprocess or left for the next run){}",
            st.documents,
            st.strategy.as_deref().unwrap_or("-"),
            st.requests,
            st.retries,
            st.memo_hits,
            s.errors,
            st.first_error.as_ref().map(|e| format!("; first error: {e}")).unwrap_or_default()
        );
        if let Some(saved) = &st.saved_counts {
            println!("qdrant saved counts: {saved}");
        }
    }
    let sk = &s.skipped;
    println!(
        "concept files read: {}; skipped files: {} unreadable, {} not UTF-8, {} malformed, {} not an array; items skipped: {} not objects; no concept dir: {}{}",
        s.concept_files,
        sk.unreadable,
        sk.not_utf8,
        sk.malformed,
        sk.not_array,
        sk.non_object_items,
        s.no_concept_dir,
        if s.bad_hashes.is_empty() { String::new() } else { format!("; invalid hashes (not used as paths): {}", s.bad_hashes.len()) }
    );
    if !s.dry_run {
        println!("written {} rows, {} unchanged, {} changed concurrently (left alone) in {} ms", s.written, s.unchanged, s.changed_concurrently, s.elapsed_ms);
        if let Some(id) = &s.run_id {
            println!("run {id}; report {}; undo with `recon-companion rollback --run {id}`", s.report.clone().unwrap_or_default());
        }
    } else {
        println!("nothing written ({} ms)", s.elapsed_ms);
    }
    Ok(())
}

pub fn status(ctx: &Ctx) -> Result<i32> {
    let v = engine::status(&ctx.env)?;
    if ctx.json {
        output::print_json(&v)?;
        return Ok(0);
    }
    println!(
        "{}",
        output::kv(vec![
            ("complete PeerTube documents", v.complete_stream_documents.to_string()),
            ("unassigned (domain NULL)", v.unassigned.to_string()),
            ("categorized", v.categorized.to_string()),
            ("assigned, not yet pushed", v.unpushed.to_string()),
            ("pushed", v.pushed.to_string()),
            ("migration applied", if v.migrated { "yes".into() } else { "no (run `migrate`)".to_string() }),
        ])
    );
    println!("{}", output::table(&["status", "documents"], v.by_status.iter().map(|(k, n)| vec![k.clone(), n.to_string()])));
    println!("{}", output::table(&["domain", "documents"], v.by_domain.iter().map(|(k, n)| vec![k.clone(), n.to_string()])));
    Ok(0)
}
