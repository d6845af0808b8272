//! The operator CLI: clap definitions and the dispatch to each command.

pub mod assign;
pub mod demo;
pub mod explain;
pub mod generate;
pub mod migrate;
pub mod peertube;
pub mod reassess;
pub mod runs;
pub mod service;
pub mod sources;
pub mod taxonomy;

use crate::config::{self, CliOverrides, Transport};
use crate::context::Context;
use crate::error::Result;
use crate::output;
use assign::AssignArgs;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use demo::{BenchArgs, DemoArgs};
use serde_json::json;
use std::ops::{Deref, DerefMut};
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
    /// Add the feature's 4 columns and index to recon.db (idempotent), --check them, or --revert them.
    Migrate {
        /// Only verify: exit 0 if the columns, index and every RECON column are present, 1 if not.
        #[arg(long, conflicts_with = "revert")]
        check: bool,
        /// Drop the 4 columns and the index again, after exporting the runs and
        /// the journal to the reports dir; refused while a run holds the writer lock.
        #[arg(long)]
        revert: bool,
        /// With --revert: show what would be exported and dropped; change nothing.
        #[arg(long, requires = "revert")]
        dry_run: bool,
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
        #[arg(long, value_parser = transport_parser())]
        via: Option<Transport>,
    },
    /// Write a realistic RECON data dir (recon.db + concept files) and walk the runbook on it.
    Demo(DemoArgs),
    /// Time dry run, backfill and tiebreaker on a production-sized generated set.
    Bench(BenchArgs),
    /// Check the live PeerTube: all 18 categories with our exact labels, and the plugin's fingerprint. Exit 1 on any mismatch or when unreachable.
    #[command(name = "verify-peertube")]
    VerifyPeertube,
    /// Compare recon.db's pushed domains with PeerTube's categories (PeerTube's PostgreSQL when peertube.db_url is set, else the API's list of local videos), print people's changes apart from drift and the runbook's step 6 checks; --adopt takes people's changes, --repair re-pushes drift (never people's changes or overrides).
    Reconcile {
        /// Re-push what drifted (journaled, can be rolled back).
        #[arg(long)]
        repair: bool,
        /// Take the categories people set in PeerTube: one of our 18 becomes `manual_assigned`, anything else an override pushes leave alone (journaled, can be rolled back).
        #[arg(long)]
        adopt: bool,
        /// With --adopt: show what would be adopted or overridden, write nothing (and no --repair).
        #[arg(long)]
        dry_run: bool,
        /// Transport for --repair (default: the config's). db skips federation to followers, PeerTube's plugin hooks and its audit log.
        #[arg(long, value_parser = transport_parser())]
        via: Option<Transport>,
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
        /// Document hash (1-128 ASCII letters/digits, case kept), PeerTube video uuid (36 or 22 chars), or a /w/… URL; one that could be both (a 22-char short uuid) is looked up as a document hash first, then as a video.
        target: String,
    },
    /// Check the Qdrant source: the collection, its point count, the doc_hash payload index, and a sample of recon.db's documents found there. Exit 1 when unusable.
    #[command(name = "verify-qdrant")]
    VerifyQdrant,
    /// For the documents a backfill would select: the domain the concept files and Qdrant each give, and where they differ (table by kind, first N; --json for all).
    #[command(name = "compare-sources")]
    CompareSources {
        /// At most N documents (oldest first, as the backfill selects them).
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// Differing documents listed in the table.
        #[arg(long, default_value_t = 20, value_name = "N")]
        show: usize,
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
    /// Write the man pages or the shell completions into DIR (for packagers: scripts/package.sh).
    #[command(hide = true)]
    Generate {
        #[arg(value_enum)]
        what: generate::Artifact,
        dir: PathBuf,
    },
}

/// `--via api|db`, parsed into the config's one [`Transport`] enum.
pub(crate) fn transport_parser() -> impl TypedValueParser<Value = Transport> {
    PossibleValuesParser::new(["api", "db"]).try_map(|s| s.parse::<Transport>())
}

/// What a command runs with: the shared [`Context`] plus the output format.
pub struct Ctx {
    pub context: Context,
    pub json: bool,
}

impl Deref for Ctx {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.context
    }
}

impl DerefMut for Ctx {
    fn deref_mut(&mut self) -> &mut Context {
        &mut self.context
    }
}

/// Loads the config (file ← env ← these flags) into a command context.
pub fn load_ctx(cli: &Cli) -> Result<(Ctx, config::LoadedConfig)> {
    let overrides = CliOverrides { recon_db: cli.recon_db.clone(), concepts_dir: cli.concepts_dir.clone(), reports_dir: cli.reports_dir.clone() };
    let loaded = config::load(cli.config.as_deref(), &overrides)?;
    let context = Context::new(loaded.config.clone());
    Ok((Ctx { context, json: cli.json }, loaded))
}

/// Runs a parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Taxonomy => return taxonomy::taxonomy(cli.json),
        Command::HashPassword => return service::hash_password(),
        Command::Generate { what, dir } => return generate::generate_cmd(what, &dir),
        _ => {}
    }
    let (ctx, loaded) = load_ctx(&cli)?;
    match cli.command {
        Command::Taxonomy => taxonomy::taxonomy(ctx.json),
        Command::Config => {
            if ctx.json {
                output::print_json(&json!({ "config": ctx.cfg.masked(), "sources": loaded.describe() }))?;
            } else {
                println!("# {}", loaded.describe().replace('\n', "\n# "));
                print!("{}", ctx.cfg.to_toml_masked());
            }
            Ok(0)
        }
        Command::Migrate { check, revert, dry_run } => {
            if revert {
                migrate::revert(&ctx, dry_run)
            } else {
                migrate::migrate(&ctx, check)
            }
        }
        Command::AssignCategories(a) => assign::assign_categories(&ctx, &a),
        Command::Runs { limit, show } => runs::runs(&ctx, limit, show.as_deref()),
        Command::Rollback { run, dry_run, force, via } => runs::rollback_cmd(&ctx, &run, dry_run, force, via),
        Command::Demo(a) => demo::demo(&ctx, &a),
        Command::Bench(a) => crate::demo::bench::run(&a.dir, a.docs, ctx.json),
        Command::VerifyPeertube => peertube::verify_peertube(&ctx),
        Command::Reconcile { repair, adopt, dry_run, via } => peertube::reconcile_cmd(&ctx, repair, adopt, dry_run, via),
        Command::ResetPeertubeCategories { dry_run, yes_reset_all } => peertube::reset_categories(&ctx, dry_run, yes_reset_all),
        Command::Serve { bind } => crate::server::serve(&ctx, bind),
        Command::PausePush => service::set_push_paused(&ctx, true),
        Command::ResumePush => service::set_push_paused(&ctx, false),
        Command::HashPassword => service::hash_password(),
        Command::Explain { target } => explain::explain_cmd(&ctx, &target),
        Command::VerifyQdrant => sources::verify_qdrant_cmd(&ctx),
        Command::CompareSources { limit, show } => sources::compare_sources_cmd(&ctx, limit, show),
        Command::SpotCheck { status, sample, seed } => explain::spot_check_cmd(&ctx, &status, sample, seed),
        Command::Generate { what, dir } => generate::generate_cmd(what, &dir),
    }
}
