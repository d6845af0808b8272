//! `demo` and `bench`: generated RECON data, and the runbook walked or timed on it.

use super::{assign, migrate, Ctx};
use crate::error::{Error, Result};
use crate::output;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the data dir (default ./demo-data).
    #[arg(long, default_value = "demo-data")]
    pub dir: PathBuf,
    /// Number of documents.
    #[arg(long, default_value_t = 3000)]
    pub docs: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Only write the data; don't walk the runbook on it.
    #[arg(long)]
    pub no_walkthrough: bool,
    /// Overwrite an existing dir.
    #[arg(long)]
    pub force: bool,
    /// Also write qdrant-points.jsonl: the matching Qdrant points (testkit's stand-in loads them with `load_jsonl`).
    #[arg(long)]
    pub qdrant_points: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Where to build the set (reused if present with the same size).
    #[arg(long, default_value = "target/bench-data")]
    pub dir: PathBuf,
    /// Number of videos (production: 22000).
    #[arg(long, default_value_t = 22_000)]
    pub docs: usize,
}

pub fn demo(ctx: &Ctx, a: &DemoArgs) -> Result<i32> {
    if a.dir.exists() {
        if !a.force {
            return Err(Error::Refused(format!("{} exists; pass --force to overwrite it", a.dir.display())));
        }
        std::fs::remove_dir_all(&a.dir).map_err(|e| Error::io(&a.dir, e))?;
    }
    let spec = crate::demo::DemoSpec { seed: a.seed, ..crate::demo::DemoSpec::demo(a.docs) };
    let summary = crate::demo::generate(&a.dir, &spec)?;
    let mut env = ctx.env.clone();
    env.recon_db = a.dir.join("recon.db");
    env.concepts_dir = a.dir.join("concepts");
    env.reports_dir = a.dir.join("reports");
    env.quarantine_dir = a.dir.join("quarantine");
    if ctx.json {
        output::print_json(&summary)?;
    } else {
        println!("wrote demo RECON data dir {}: {}", a.dir.display(), serde_json::to_string(&summary)?);
    }
    if a.qdrant_points {
        let p = crate::demo::qdrant::write_points(&a.dir, &ctx.env.source)?;
        println!(
            "wrote {} Qdrant points ({} documents, {} of them only in Qdrant, {} other-source points) to {}",
            p.points, p.documents, p.qdrant_only, p.other_source_points, p.path
        );
    }
    if a.no_walkthrough {
        return Ok(0);
    }
    let sub = Ctx { context: crate::context::Context { cfg: ctx.cfg.clone(), env }, json: ctx.json };
    let args = |backfill: bool, tiebreaker_pass: bool, dry_run: bool| assign::AssignArgs {
        backfill,
        tiebreaker_pass,
        reprocess_missing: false,
        push_pending: false,
        reassess: false,
        dry_run,
        limit: None,
        via: None,
        batch_size: None,
    };
    println!("\n== runbook step 4: dry run ==");
    assign::assign_categories(&sub, &args(true, false, true))?;
    println!("\n== step 3: migrate ==");
    migrate::migrate(&sub, false)?;
    println!("\n== step 4: backfill ==");
    assign::assign_categories(&sub, &args(true, false, false))?;
    println!("\n== step 4: tiebreaker ==");
    assign::assign_categories(&sub, &args(false, true, false))?;
    println!("\n== status ==");
    assign::status(&sub)?;
    let d = a.dir.display();
    println!("\nTry next: recon-companion --recon-db {d}/recon.db --concepts-dir {d}/concepts --reports-dir {d}/reports runs");
    Ok(0)
}
