//! `explain` and `spot-check`: read-only answers to "why this domain?".

use super::Ctx;
use crate::error::Result;
use crate::explain::{explain, render_spot_text, render_text, spot_check};
use crate::output;
use crate::recon::db as recondb;

/// `recon-companion explain TARGET`. Exit 0 whenever the document was found and
/// explained — a stale result is reported, not treated as a failure, because
/// explain answers a question; `spot-check` is the gate.
pub fn explain_cmd(ctx: &Ctx, target: &str) -> Result<i32> {
    let conn = recondb::open_readonly(&ctx.env.recon_db)?;
    let e = explain(&ctx.env, &conn, target)?;
    if ctx.json {
        output::print_json(&e)?;
    } else {
        print!("{}", render_text(&e));
    }
    Ok(0)
}

/// `recon-companion spot-check`. Exits 1 when any sampled document is stale:
/// the runbook's STOP points say to halt when something is wrong, and a stored
/// domain the files no longer support is exactly that, so a script (or an
/// operator chaining commands with `&&`) stops there. Narrow verdicts are
/// judgement calls for a person and do not fail the check.
pub fn spot_check_cmd(ctx: &Ctx, status: &str, sample: usize, seed: Option<u64>) -> Result<i32> {
    let conn = recondb::open_readonly(&ctx.env.recon_db)?;
    let s = spot_check(&ctx.env, &conn, status, sample, seed)?;
    if ctx.json {
        output::print_json(&s)?;
    } else {
        print!("{}", render_spot_text(&s));
    }
    Ok(if s.summary.stale > 0 { 1 } else { 0 })
}
