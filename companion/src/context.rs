//! What every command and the service start from: the validated config and the
//! environment derived from it (paths, source, mega-channel rule). `cli` and
//! `server` both build one; nothing here knows about flags.

use crate::config::{Config, Transport};
use crate::error::{Error, Result};
use std::io::IsTerminal;
use std::path::PathBuf;

/// The config plus its derived environment.
#[derive(Debug, Clone)]
pub struct Context {
    pub cfg: Config,
    pub env: Env,
}

impl Context {
    pub fn new(cfg: Config) -> Context {
        let env = Env::from_config(&cfg);
        Context { cfg, env }
    }

    /// An explicit transport wins over the config's `peertube.transport`.
    pub fn transport(&self, explicit: Option<Transport>) -> Transport {
        explicit.unwrap_or(self.cfg.peertube.transport)
    }
}

/// A small runtime for the synchronous commands that talk to PeerTube.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| Error::Other(format!("tokio runtime: {e}")))
}

/// Where and how the engine works.
#[derive(Debug, Clone)]
pub struct Env {
    pub recon_db: PathBuf,
    pub concepts_dir: PathBuf,
    pub reports_dir: PathBuf,
    pub quarantine_dir: PathBuf,
    pub source: String,
    pub mega_threshold: u64,
    pub mega_skip: Vec<String>,
    /// Show a progress bar (only when stderr is a terminal).
    pub progress: bool,
}

impl Env {
    pub fn from_config(cfg: &crate::config::Config) -> Env {
        Env {
            recon_db: cfg.recon_db.clone(),
            concepts_dir: cfg.concepts_dir.clone(),
            reports_dir: cfg.reports_dir.clone(),
            quarantine_dir: cfg.quarantine_dir(),
            source: cfg.peertube_source.clone(),
            mega_threshold: cfg.mega_channel_threshold,
            mega_skip: cfg.mega_channel_skip.clone(),
            progress: std::io::stderr().is_terminal(),
        }
    }
}
