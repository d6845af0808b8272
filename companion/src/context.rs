//! What every command and the service start from: the validated config and the
//! environment derived from it (paths, source, mega-channel rule). `cli` and
//! `server` both build one; nothing here knows about flags.

use crate::assign::Status;
use crate::config::SourceKind;
use crate::config::{Config, Transport};
use crate::error::{Error, Result};
use crate::recon::concepts::DocScan;
use crate::recon::source::{ConceptSource, CountStore, SourceCounts};
use std::io::IsTerminal;
use std::path::PathBuf;

#[cfg(test)]
mod tests;

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

/// The live concept sources a config describes (built here, above both `config` and `recon`).
impl Config {
    /// The configured concept source. Qdrant counts are reused within the
    /// process (one command: the tiebreaker's channel-mates after pass 1),
    /// and by the next runs while Qdrant proves the collection unchanged
    /// (`qdrant.reuse_unchanged_counts`) or, without proof, when
    /// `qdrant.reuse_counts_secs` opts in (see `recon::saved_counts`); the
    /// service drops the memo unless that opt-in asks it to keep one
    /// (`ConceptSource::for_service`).
    pub fn concept_source(&self) -> ConceptSource {
        match self.source_of(self.concept_source) {
            ConceptSource::Qdrant { settings, .. } if settings.reuse_unchanged_counts || settings.reuse_counts_secs > 0 => {
                let store = CountStore { path: self.qdrant_counts_file(), max_age_secs: settings.reuse_counts_secs };
                ConceptSource::Qdrant { settings, memo: None }.with_saved_counts(store)
            }
            other => other.with_memo(),
        }
    }

    /// A given kind of source with this config's settings, reading fresh
    /// counts every time (`compare-sources`, and `explain`'s second source).
    pub fn source_of(&self, kind: SourceKind) -> ConceptSource {
        match kind {
            SourceKind::Files => ConceptSource::Files,
            SourceKind::Qdrant => ConceptSource::Qdrant { settings: self.qdrant.clone(), memo: None },
        }
    }
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
    /// Where every concept count comes from (files or Qdrant).
    pub concepts: ConceptSource,
    /// The other source, when both are configured: `explain` shows its counts
    /// beside the configured one's (fresh reads, no saved counts).
    pub second_source: Option<ConceptSource>,
}

impl Env {
    pub fn from_config(cfg: &crate::config::Config) -> Env {
        Env {
            recon_db: cfg.recon_db.clone(),
            concepts_dir: cfg.concepts_dir.clone(),
            reports_dir: cfg.reports_dir.clone(),
            quarantine_dir: cfg.quarantine_dir(),
            source: cfg.peertube_source.clone(),
            mega_threshold: cfg.effective_mega_threshold(),
            mega_skip: cfg.mega_channel_skip.clone(),
            progress: std::io::stderr().is_terminal(),
            concepts: cfg.concept_source(),
            second_source: match cfg.concept_source {
                SourceKind::Qdrant => Some(cfg.source_of(SourceKind::Files)),
                SourceKind::Files if cfg.qdrant_configured => Some(cfg.source_of(SourceKind::Qdrant)),
                SourceKind::Files => None,
            },
        }
    }

    /// Concept counts of `hashes` from the configured source (the one seam).
    pub fn counts(&self, hashes: &[String], what: &str) -> Result<SourceCounts> {
        self.concepts.counts(&self.concepts_dir, hashes, self.progress, what)
    }

    /// [`Env::counts`] one document at a time, in input order (see [`ConceptSource::counts_each`]).
    pub fn counts_each(&self, hashes: &[String], what: &str, each: impl FnMut(usize, DocScan)) -> Result<crate::recon::source::SourceStats> {
        self.concepts.counts_each(&self.concepts_dir, hashes, self.progress, what, each)
    }

    /// Like [`Env::counts`] but never failing (read-only views): a source-wide
    /// error shows as each document's `failed`.
    pub fn scan_docs(&self, hashes: &[String]) -> Vec<DocScan> {
        self.concepts.scan_docs(&self.concepts_dir, hashes)
    }

    /// Status of a document the source answered for with no valid label.
    pub fn no_counts_status(&self) -> Status {
        self.concepts.no_counts_status()
    }
}
