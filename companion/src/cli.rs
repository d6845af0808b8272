//! The operator CLI: clap definitions and the dispatch to each command.

use crate::config::{self, CliOverrides, Config};
use crate::engine::{self, Env, PassSummary};
use crate::error::{Error, Result};
use crate::output::{self, pct};
use crate::{journal, recondb, rollback};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "recon-companion",
    version,
    about = "Gives every PeerTube video one of RECON's 18 knowledge domains as its category, and keeps PeerTube and RECON in agreement.",
    long_about = "Gives every PeerTube video one of RECON's 18 knowledge domains as its category, and keeps PeerTube and RECON in agreement.\n\n\
Every state-changing command takes a writer lock, journals each change with its old value, writes a JSON report, and can be undone with `rollback --run ID`. \
Run any of them with --dry-run first: a dry run opens recon.db read-only.\n\n\
Exit codes: 0 done, 1 failed (or a check did not pass), 2 usage or config error.",
    after_help = "Runbook order: migrate → assign-categories --backfill --dry-run → --backfill → --tiebreaker-pass → --push-pending --limit 100 → … → reconcile.\nConfig: --config FILE, else ./recon-companion.toml, else /etc/recon-companion/config.toml; RECON_COMPANION_* env vars override the file (nested keys with __)."
)]
pub struct Cli {
    /// Config file (TOML).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// RECON's database (overrides the config's recon_db).
    #[arg(long, global = true, value_name = "FILE")]
    pub recon_db: Option<PathBuf>,
    /// RECON's concept dir (overrides the config's concepts_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub concepts_dir: Option<PathBuf>,
    /// Where run reports go (overrides the config's reports_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub reports_dir: Option<PathBuf>,
    /// Machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (-v info, -vv debug); RUST_LOG works too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the 18 categories (ids 100–117), their labels, slugs and the table's fingerprint.
    Taxonomy,
    /// Print the effective configuration (secrets masked) and where each part came from.
    Config,
    /// Add the feature's 4 columns and index to recon.db (idempotent), or --check them.
    Migrate {
        /// Only verify: exit 0 if the columns, index and every RECON column are present, 1 if not.
        #[arg(long)]
        check: bool,
    },
    /// The runbook's `assign-categories`: without a pass flag, show status.
    #[command(name = "assign-categories")]
    AssignCategories(AssignArgs),
    /// List journaled runs (newest first).
    Runs {
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// Show one run's journal entries.
        #[arg(long, value_name = "RUN_ID")]
        show: Option<String>,
    },
    /// Undo exactly what one run changed (rows, quarantined dirs, PeerTube categories).
    Rollback {
        /// The run id (see `runs`).
        #[arg(long = "run", value_name = "RUN_ID")]
        run: String,
        /// Show what would be restored; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also restore rows that changed again since the run (overwrites those changes).
        #[arg(long)]
        force: bool,
        /// Transport for PeerTube changes (default: the config's).
        #[arg(long, value_enum)]
        via: Option<Via>,
    },
    /// Write a realistic RECON data dir (recon.db + concept files) and walk the runbook on it.
    Demo(DemoArgs),
    /// Time dry run, backfill and tiebreaker on a production-sized generated set.
    Bench(BenchArgs),
    /// Check the live PeerTube: all 18 categories with our exact labels, and the plugin's fingerprint. Exit 1 on any mismatch or when unreachable.
    #[command(name = "verify-peertube")]
    VerifyPeertube,
    /// Compare recon.db's pushed domains with PeerTube's video.category (reads PeerTube's PostgreSQL: needs peertube.db_url), print the drift and the runbook's step 6 checks; --repair re-pushes drift.
    Reconcile {
        /// Re-push what drifted (journaled, can be rolled back).
        #[arg(long)]
        repair: bool,
        /// Transport for --repair (default: the config's). db skips federation to followers, PeerTube's plugin hooks and its audit log.
        #[arg(long, value_enum)]
        via: Option<Via>,
    },
    /// Emergency reset: every local video's category >= 100 back to NULL and every push timestamp cleared (journaled; undo with `rollback --run ID`). Writes PeerTube's PostgreSQL directly: no federation to followers, no plugin hooks, no audit log.
    #[command(name = "reset-peertube-categories")]
    ResetPeertubeCategories {
        #[arg(long)]
        dry_run: bool,
        /// Required to actually reset: confirms you mean every RECON category on the instance.
        #[arg(long)]
        yes_reset_all: bool,
    },
    /// Run the service: background worker, review dashboard, JSON API, health and metrics.
    Serve {
        /// Address to bind (default from config: 127.0.0.1:8787).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Kill switch: stop every push (assignment goes on). Survives restarts.
    #[command(name = "pause-push")]
    PausePush,
    /// Lift the kill switch.
    #[command(name = "resume-push")]
    ResumePush,
    /// Read a password (stdin or prompt) and print its argon2 hash for server.password_hash.
    #[command(name = "hash-password")]
    HashPassword,
    /// Explain one video's domain: counts per window, skipped files, the rule that decided, staleness.
    Explain {
        /// Document hash, PeerTube video uuid, or a /w/… URL.
        target: String,
    },
    /// Sample documents of a status and judge each assignment (clear, narrow, stale).
    #[command(name = "spot-check")]
    SpotCheck {
        #[arg(long, default_value = "assigned")]
        status: String,
        #[arg(long, default_value_t = 20)]
        sample: usize,
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// PeerTube's REST API (validated, audited, federated).
    Api,
    /// Straight into PeerTube's PostgreSQL (fast; no federation, no hooks, no audit log).
    Db,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("pass").args(["backfill", "tiebreaker_pass", "reprocess_missing", "push_pending"])))]
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
    /// Change nothing; print what would happen.
    #[arg(long)]
    pub dry_run: bool,
    /// At most N documents (oldest first).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Push transport (default: the config's peertube.transport). api: PeerTube's REST API — validated, audit-logged, runs plugin hooks, federates the change to followers. db: straight into PeerTube's PostgreSQL — much faster, compare-and-set, but NO federation to followers (remote instances see the change only when they next refresh the video), NO PeerTube-side plugin hooks and NO audit log entry.
    #[arg(long, value_enum)]
    pub via: Option<Via>,
    /// Rows per PostgreSQL transaction with --via db.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
}

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

/// Everything a command needs.
pub struct Ctx {
    pub cfg: Config,
    pub env: Env,
    pub json: bool,
}

pub fn load_ctx(cli: &Cli) -> Result<(Ctx, config::LoadedConfig)> {
    let overrides = CliOverrides {
        recon_db: cli.recon_db.clone(),
        concepts_dir: cli.concepts_dir.clone(),
        reports_dir: cli.reports_dir.clone(),
    };
    let loaded = config::load(cli.config.as_deref(), &overrides)?;
    let cfg = loaded.config.clone();
    let env = Env::from_config(&cfg);
    Ok((Ctx { cfg, env, json: cli.json }, loaded))
}

/// Runs a parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Taxonomy => return taxonomy(cli.json),
        Command::HashPassword => return crate::server::hash_password(),
        _ => {}
    }
    let (ctx, loaded) = load_ctx(&cli)?;
    match cli.command {
        Command::Taxonomy => taxonomy(ctx.json),
        Command::Config => {
            if ctx.json {
                output::print_json(&json!({ "config": ctx.cfg.masked(), "sources": loaded.describe() }))?;
            } else {
                println!("# {}", loaded.describe().replace('\n', "\n# "));
                print!("{}", ctx.cfg.to_toml_masked());
            }
            Ok(0)
        }
        Command::Migrate { check } => migrate(&ctx, check),
        Command::AssignCategories(a) => assign_categories(&ctx, &a),
        Command::Runs { limit, show } => runs(&ctx, limit, show.as_deref()),
        Command::Rollback { run, dry_run, force, via } => rollback_cmd(&ctx, &run, dry_run, force, via),
        Command::Demo(a) => demo(&ctx, &a),
        Command::Bench(a) => crate::bench::run(&a.dir, a.docs, ctx.json),
        Command::VerifyPeertube => crate::push::verify_peertube(&ctx),
        Command::Reconcile { repair, via } => crate::push::reconcile(&ctx, repair, via),
        Command::ResetPeertubeCategories { dry_run, yes_reset_all } => crate::push::reset_categories(&ctx, dry_run, yes_reset_all),
        Command::Serve { bind } => crate::server::serve(&ctx, bind),
        Command::PausePush => crate::server::set_push_paused(&ctx, true),
        Command::ResumePush => crate::server::set_push_paused(&ctx, false),
        Command::HashPassword => crate::server::hash_password(),
        Command::Explain { target } => crate::explain::explain_cmd(&ctx, &target),
        Command::SpotCheck { status, sample, seed } => crate::explain::spot_check_cmd(&ctx, &status, sample, seed),
    }
}

fn taxonomy(as_json: bool) -> Result<i32> {
    let version = format!("{}+taxonomy.{}", env!("CARGO_PKG_VERSION"), shared_constants::TAXONOMY_VERSION);
    if as_json {
        output::print_json(&json!({
            "version": version,
            "fingerprint": shared_constants::fingerprint(),
            "categories": shared_constants::DOMAINS,
        }))?;
    } else {
        println!(
            "{}",
            output::table(
                &["id", "label", "slug"],
                shared_constants::all().map(|d| vec![d.id.to_string(), d.label.to_string(), d.slug.to_string()])
            )
        );
        println!("version {version}  fingerprint {}", shared_constants::fingerprint());
    }
    Ok(0)
}

fn migrate(ctx: &Ctx, check: bool) -> Result<i32> {
    if check {
        let conn = recondb::open_readonly(&ctx.env.recon_db)?;
        let st = recondb::migration_state(&conn)?;
        if ctx.json {
            output::print_json(&json!({ "ok": st.ok(), "state": st }))?;
        } else {
            let mut rows = Vec::new();
            for c in recondb::FEATURE_COLUMNS {
                let ok = !st.missing_feature_columns.iter().any(|m| m == c);
                rows.push(vec![format!("documents.{c}"), if ok { "ok" } else { "MISSING" }.to_string()]);
            }
            rows.push(vec![recondb::FEATURE_INDEX.to_string(), if st.index_present { "ok" } else { "MISSING" }.into()]);
            rows.push(vec!["companion_* tables".into(), if st.companion_tables { "ok" } else { "MISSING" }.into()]);
            rows.push(vec![
                "RECON's own columns".into(),
                if st.missing_recon_columns.is_empty() { "ok".into() } else { format!("MISSING: {}", st.missing_recon_columns.join(", ")) },
            ]);
            println!("{}", output::table(&["check", "result"], rows));
            println!("{}", if st.ok() { "migration verified" } else { "migration NOT complete" });
        }
        return Ok(if st.ok() { 0 } else { 1 });
    }
    let mut conn = recondb::open(&ctx.env.recon_db)?;
    let _lock = crate::lock::WriterLock::acquire(&ctx.env.recon_db, "recon-companion migrate")?;
    let applied = recondb::migrate(&mut conn)?;
    let st = recondb::migration_state(&conn)?;
    if ctx.json {
        output::print_json(&json!({ "applied": applied, "ok": st.ok() }))?;
    } else if applied.is_empty() {
        println!("already migrated: nothing to do");
    } else {
        println!("applied: {}", applied.join(", "));
    }
    Ok(if st.ok() { 0 } else { 1 })
}

fn assign_categories(ctx: &Ctx, a: &AssignArgs) -> Result<i32> {
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
                    i.quarantined_to.clone().or_else(|| i.error.clone()).unwrap_or_else(|| if s.dry_run { "would quarantine + queue".into() } else { "queued".into() }),
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
        return crate::push::push_pending(ctx, a);
    }
    status(ctx)
}

fn print_pass(ctx: &Ctx, s: &PassSummary) -> Result<()> {
    if ctx.json {
        return output::print_json(s);
    }
    let order = ["assigned", "tied_pass_1", "tied_pass_2", "tied_manual", "needs_reprocess"];
    let rows = order.iter().filter(|st| s.tally.by_status.contains_key(**st) || **st != "tied_pass_2" && **st != "tied_manual").map(|st| {
        let n = s.tally.by_status.get(*st).copied().unwrap_or(0);
        let share = if s.selected == 0 { 0.0 } else { n as f64 * 100.0 / s.selected as f64 };
        vec![st.to_string(), n.to_string(), pct(share)]
    });
    println!("{}{} — {} documents selected", if s.dry_run { "DRY RUN " } else { "" }, s.command, s.selected);
    println!("{}", output::table(&["status", "documents", "of selected"], rows));
    if s.command == "backfill" {
        println!(
            "{}",
            output::table(
                &["runbook benchmark", "this run", "expected"],
                vec![
                    vec!["assigned (% of concept-bearing)".to_string(), pct(s.percent.assigned_of_concept_bearing), "~94.8%".into()],
                    vec!["tied (% of concept-bearing)".to_string(), pct(s.percent.tied_of_concept_bearing), "~5.2%".into()],
                    vec!["needs_reprocess (% of all)".to_string(), pct(s.percent.needs_reprocess_of_all), "~19.5%".into()],
                ]
            )
        );
    }
    if !s.tally.by_domain.is_empty() {
        let mut d: Vec<_> = s.tally.by_domain.iter().collect();
        d.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        println!("{}", output::table(&["domain", "documents"], d.into_iter().map(|(k, v)| vec![k.clone(), v.to_string()])));
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
        println!(
            "written {} rows, {} unchanged, {} changed concurrently (left alone) in {} ms",
            s.written, s.unchanged, s.changed_concurrently, s.elapsed_ms
        );
        if let Some(id) = &s.run_id {
            println!("run {id}; report {}; undo with `recon-companion rollback --run {id}`", s.report.clone().unwrap_or_default());
        }
    } else {
        println!("nothing written ({} ms)", s.elapsed_ms);
    }
    Ok(())
}

fn status(ctx: &Ctx) -> Result<i32> {
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

fn runs(ctx: &Ctx, limit: u64, show: Option<&str>) -> Result<i32> {
    let conn = recondb::open_readonly(&ctx.env.recon_db)?;
    if !recondb::migration_state(&conn)?.companion_tables {
        println!("no runs yet (recon.db has no companion tables)");
        return Ok(0);
    }
    if let Some(id) = show {
        let run = journal::get_run(&conn, id)?;
        let entries = journal::entries(&conn, id)?;
        if ctx.json {
            output::print_json(&json!({ "run": run, "entries": entries }))?;
        } else {
            println!("{} {} ({}) started {} — {} changes", run.run_id, run.command, run.state, run.started_at, entries.len());
            println!(
                "{}",
                output::table(
                    &["#", "kind", "key", "old", "new", "state"],
                    entries.iter().map(|e| vec![e.id.to_string(), e.kind.as_str().into(), e.key.clone(), e.old.to_string(), e.new.to_string(), e.state.as_str().into()])
                )
            );
        }
        return Ok(0);
    }
    let list = journal::list_runs(&conn, limit)?;
    if ctx.json {
        output::print_json(&list)?;
    } else {
        println!(
            "{}",
            output::table(
                &["run id", "command", "state", "started", "finished", "changes", "report"],
                list.iter().map(|r| {
                    vec![
                        r.run_id.clone(),
                        r.command.clone(),
                        match &r.rolled_back_by {
                            Some(by) => format!("{} by {by}", r.state),
                            None => r.state.clone(),
                        },
                        r.started_at.chars().take(19).collect(),
                        r.finished_at.clone().unwrap_or_default().chars().take(19).collect(),
                        r.changes.to_string(),
                        r.report_path.clone().unwrap_or_default(),
                    ]
                })
            )
        );
    }
    Ok(0)
}

fn rollback_cmd(ctx: &Ctx, run: &str, dry_run: bool, force: bool, via: Option<Via>) -> Result<i32> {
    let restorer = crate::push::restorer(ctx, via)?;
    let s = rollback::rollback(&ctx.env, run, force, dry_run, restorer)?;
    if ctx.json {
        output::print_json(&s)?;
    } else {
        println!(
            "{}",
            output::kv(vec![
                ("run rolled back", format!("{} ({})", s.target_run, s.target_command)),
                ("recon.db rows restored", s.rows_restored.to_string()),
                ("rows already at their old value", s.rows_already_restored.to_string()),
                ("concept dirs moved back", s.dirs_restored.to_string()),
                ("PeerTube videos restored", s.videos_restored.to_string()),
                ("conflicts (changed since)", s.conflicts.len().to_string()),
                ("failed", s.failed.len().to_string()),
            ])
        );
        for c in s.conflicts.iter().take(20) {
            println!("conflict: {c}");
        }
        for f in s.failed.iter().take(20) {
            println!("failed: {f}");
        }
        if dry_run {
            println!("DRY RUN: nothing changed");
        } else if let Some(id) = &s.run_id {
            println!("rollback run {id}; report {}", s.report.clone().unwrap_or_default());
        }
    }
    Ok(if s.failed.is_empty() { 0 } else { 1 })
}

fn demo(ctx: &Ctx, a: &DemoArgs) -> Result<i32> {
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
    if a.no_walkthrough {
        return Ok(0);
    }
    let sub = Ctx { cfg: ctx.cfg.clone(), env, json: ctx.json };
    let args = |backfill: bool, tiebreaker_pass: bool, dry_run: bool| AssignArgs {
        backfill,
        tiebreaker_pass,
        reprocess_missing: false,
        push_pending: false,
        dry_run,
        limit: None,
        via: None,
        batch_size: None,
    };
    println!("\n== runbook step 4: dry run ==");
    assign_categories(&sub, &args(true, false, true))?;
    println!("\n== step 3: migrate ==");
    migrate(&sub, false)?;
    println!("\n== step 4: backfill ==");
    assign_categories(&sub, &args(true, false, false))?;
    println!("\n== step 4: tiebreaker ==");
    assign_categories(&sub, &args(false, true, false))?;
    println!("\n== status ==");
    status(&sub)?;
    let d = a.dir.display();
    println!("\nTry next: recon-companion --recon-db {d}/recon.db --concepts-dir {d}/concepts --reports-dir {d}/reports runs");
    Ok(0)
}
