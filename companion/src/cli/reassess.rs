//! `assign-categories --reassess`: the text output (changes by kind, the changed rows) or `--json`.

use super::Ctx;
use crate::engine::reassess::ReassessSummary;
use crate::error::Result;
use crate::output;

/// Rows of the changed-documents table in the text output (all of them are in `--json`).
const SHOWN: usize = 50;

pub fn print(ctx: &Ctx, s: &ReassessSummary) -> Result<()> {
    if ctx.json {
        return output::print_json(s);
    }
    let p = &s.pass;
    println!(
        "{}reassess — {} documents the machine decided ({} source); {} would change, {} unchanged, {} left alone (counts unreadable)",
        if p.dry_run { "DRY RUN " } else { "" },
        p.selected,
        p.source,
        s.changed,
        p.unchanged,
        s.left_alone
    );
    println!("{}", output::table(&["change", "documents"], s.by_kind.iter().map(|(k, n)| vec![k.clone(), n.to_string()])));
    if !s.items.is_empty() {
        let rows = s.items.iter().take(SHOWN).map(|i| {
            vec![
                i.hash.clone(),
                i.kind.as_str().to_string(),
                format!("{} ({})", i.old_domain.as_deref().unwrap_or("-"), i.old_status),
                format!("{} ({})", i.new_domain.as_deref().unwrap_or("-"), i.new_status),
            ]
        });
        println!("{}", output::table(&["hash", "change", "stored", "today"], rows));
        if s.items.len() > SHOWN {
            println!("… and {} more (all of them with --json)", s.items.len() - SHOWN);
        }
    }
    let st = &p.source_stats;
    if p.source == "qdrant" {
        println!(
            "qdrant: {} documents, strategy {}, {} requests, {} answered from counts already read{}",
            st.documents,
            st.strategy.as_deref().unwrap_or("-"),
            st.requests,
            st.memo_hits,
            st.saved_counts.as_ref().map(|c| format!("; saved counts: {c}")).unwrap_or_default()
        );
    }
    println!("concept files read: {}; no concept dir: {}", p.concept_files, p.no_concept_dir);
    println!(
        "{} of the changes move the domain ({} pushed categories to correct); {} unchanged rows RECON worked on since are confirmed",
        s.domain_changed, s.pushes_cleared, s.confirmed
    );
    match (&p.run_id, p.dry_run) {
        (Some(id), false) => {
            println!(
                "written {} rows, {} changed concurrently (left alone) in {} ms; run {id}; report {}",
                p.written,
                p.changed_concurrently,
                p.elapsed_ms,
                p.report.clone().unwrap_or_default()
            );
            println!("next: `assign-categories --push-pending` corrects PeerTube; undo newest first: `rollback --run PUSH_RUN`, then `rollback --run {id}`");
        }
        _ => println!("nothing written ({} ms)", p.elapsed_ms),
    }
    Ok(())
}
