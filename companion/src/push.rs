//! Pushing domains to PeerTube (placeholder until the push transports land).

use crate::cli::{AssignArgs, Ctx, Via};
use crate::error::{Error, Result};
use crate::rollback::VideoRestorer;

pub fn push_pending(_ctx: &Ctx, _a: &AssignArgs) -> Result<i32> {
    Err(Error::Other("--push-pending is not available in this build yet".into()))
}

/// The transport that can restore PeerTube categories during a rollback, if configured.
pub fn restorer(_ctx: &Ctx, _via: Option<Via>) -> Result<Option<Box<dyn VideoRestorer>>> {
    Ok(None)
}
