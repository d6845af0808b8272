//! The real [`Pusher`]: pushes the given documents through the configured
//! transport with `peertube::pusher::push` (preflight, journal, compare-and-set),
//! then reads back from recon.db which of them are now marked pushed.

use crate::config::Config;
use crate::context::Env;
use crate::error::Result;
use crate::peertube::ledger;
use crate::peertube::push::{self as pt, PushOptions, PushSummary};
use crate::recon::db as recondb;
use crate::server::pusher::{PushResult, Pusher};
use crate::server::queries;
use std::collections::HashMap;

/// Name of the service's push runs in the journal.
pub const COMMAND: &str = "worker-push";

pub struct PeerTubePusher {
    cfg: Config,
    env: Env,
    /// The server's runtime: pushes are blocking calls from the worker thread
    /// and from `spawn_blocking`, never from async code.
    rt: tokio::runtime::Handle,
}

impl PeerTubePusher {
    pub fn new(cfg: Config, env: Env, rt: tokio::runtime::Handle) -> PeerTubePusher {
        PeerTubePusher { cfg, env, rt }
    }
}

/// The message of a failed document: the summary's failure line naming it, else the abort, else a generic one.
fn failure_message(s: &PushSummary, hash: &str) -> String {
    s.failures
        .iter()
        .find(|f| f.contains(hash))
        .cloned()
        .or_else(|| s.aborted.clone())
        .unwrap_or_else(|| format!("not pushed (run {}: {} failed)", s.run_id.clone().unwrap_or_default(), s.failed))
}

impl Pusher for PeerTubePusher {
    fn push(&self, hashes: &[String]) -> Result<Vec<PushResult>> {
        let conn = recondb::open_readonly(&self.env.recon_db)?;
        let docs = queries::push_docs(&conn, &self.env.source, hashes)?;
        let pending: std::collections::HashSet<String> = docs.iter().map(|d| d.hash.clone()).collect();
        let priors = ledger::pending_priors(&conn)?;
        let mut planned = PushSummary::default();
        let jobs = pt::plan(docs, &priors, &mut planned);
        let unpushable: HashMap<String, String> = planned.unpushable.iter().cloned().collect();
        let summary = if jobs.is_empty() {
            None
        } else {
            let opts = PushOptions {
                limit: None,
                dry_run: false,
                transport: self.cfg.peertube.transport,
                batch_size: self.cfg.peertube.batch_size.max(1),
                command: COMMAND.into(),
            };
            Some(self.rt.block_on(pt::push(&self.cfg, &self.env, &opts, Some(jobs)))?)
        };
        let mut out = Vec::with_capacity(hashes.len());
        for h in hashes {
            if let Some(why) = unpushable.get(h) {
                out.push(PushResult::failed(h, why.clone(), true));
            } else if !pending.contains(h) || !queries::push_pending(&conn, h)? {
                // Not owed (pushed meanwhile, no domain, not a PeerTube video) or pushed now.
                out.push(PushResult::ok(h));
            } else {
                let msg = summary.as_ref().map(|s| failure_message(s, h)).unwrap_or_else(|| "not pushed".into());
                out.push(PushResult::failed(h, msg, false));
            }
        }
        Ok(out)
    }

    fn check(&self) -> Result<String> {
        self.rt.block_on(pt::check_peertube(&self.cfg))?;
        Ok(format!("{}: all 18 categories and the plugin's fingerprint match", self.cfg.peertube.url))
    }
}
