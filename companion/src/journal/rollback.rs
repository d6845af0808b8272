//! The seam a rollback restores PeerTube categories through: the engine calls it, peertube's transports implement it.

use super::Entry;
use crate::error::Result;
use serde::Serialize;
use serde_json::Value;

/// Restores PeerTube categories for a run's `video` entries (implemented by the push transports).
pub trait VideoRestorer {
    /// Puts each entry's `old` category back; returns (restored, conflicts, failed) with messages.
    fn restore(&mut self, entries: &[Entry], force: bool, dry_run: bool) -> Result<VideoRestore>;
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VideoRestore {
    pub restored: u64,
    pub conflicts: Vec<String>,
    pub failed: Vec<String>,
    /// Journal entries of the rollback run itself (kind video): (key, old, new).
    pub changes: Vec<(String, Value, Value)>,
}
