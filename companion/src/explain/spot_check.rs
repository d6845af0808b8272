//! Spot checks: a seeded random sample of one status, each document explained
//! and judged `clear`, `narrow` or `no domain`.

use super::compute::{counts_from, explain_hash, Work};
use super::model::{Class, Explanation, SpotCheck, SpotSummary, Verdict};
use crate::assign::{self, Status};
use crate::context::Env;
use crate::error::{Error, Result};
use crate::recon::db as recondb;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::Connection;
use shared_constants::{COUNT, DOMAINS};

/// A verdict is `narrow` when the domain leads the runner-up by at most this
/// many concepts: one changed concept could flip it.
pub const NARROW_MARGIN_MAX: u64 = 1;
/// … or when it holds less than this share of the document's valid-domain
/// concepts: most of the document is about something else.
pub const NARROW_SHARE_BELOW: f64 = 0.5;
/// How `narrow` is defined, shown with every spot check.
pub const NARROW_RULE: &str = "narrow = the domain leads the runner-up by at most 1 concept, or holds under 50% of the \
document's valid-domain concepts; for tied_pass_2 the document is tied by construction, so the channel's lead is judged \
instead; tied_manual is always narrow (a person must review it)";

/// Judges one explained document.
pub fn verdict(e: &Explanation) -> Verdict {
    let counts = counts_from(&e.totals);
    let idx = e.stored.domain.as_deref().and_then(shared_constants::index_of_label);
    let status = e.stored.status.as_deref().and_then(Status::parse);
    let (mut share, mut margin, mut runner_up) = (None, None, None);
    if let Some(i) = idx {
        let (s, m) = assign::margin(&counts, i);
        share = Some(s);
        margin = Some(m);
        runner_up = (0..COUNT).filter(|&j| j != i && counts[j] > 0).max_by_key(|&j| (counts[j], std::cmp::Reverse(j))).map(|j| DOMAINS[j].label);
    }
    // The stored domain's lead among the tied domains in the channel's counts.
    let channel_margin = match (&e.tie, idx) {
        (Some(t), Some(i)) => t.channel_counts.as_ref().and_then(|cc| {
            let own = cc.iter().find(|c| c.domain == DOMAINS[i].label)?.count;
            let best_other = cc.iter().filter(|c| c.domain != DOMAINS[i].label).map(|c| c.count).max().unwrap_or(0);
            Some(own.saturating_sub(best_other))
        }),
        _ => None,
    };
    let class = match (idx, status) {
        (None, _) => Class::NoDomain,
        (Some(_), Some(Status::TiedManual)) => Class::Narrow,
        (Some(_), Some(Status::TiedPass2)) => {
            if channel_margin.is_some_and(|m| m > NARROW_MARGIN_MAX) {
                Class::Clear
            } else {
                Class::Narrow
            }
        }
        (Some(_), _) => {
            if margin.is_some_and(|m| m > NARROW_MARGIN_MAX) && share.is_some_and(|s| s >= NARROW_SHARE_BELOW) {
                Class::Clear
            } else {
                Class::Narrow
            }
        }
    };
    Verdict {
        hash: e.hash.clone(),
        title: e.title.clone(),
        channel: e.channel.clone(),
        status: e.stored.status.clone(),
        domain: e.stored.domain.clone(),
        share,
        margin,
        runner_up,
        total_valid: e.total_valid,
        channel_margin,
        class,
        stale: e.stale,
        note: e.staleness.message.clone(),
    }
}

/// Draws `sample` documents of `status` (uniformly, without replacement; the
/// draw depends only on the seed and the set of hashes) and judges each.
pub fn spot_check(env: &Env, conn: &Connection, status: &str, sample: usize, seed: Option<u64>) -> Result<SpotCheck> {
    let st = Status::parse(status).ok_or_else(|| {
        Error::BadTarget(format!("unknown status {status:?}: expected one of {}", Status::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")))
    })?;
    if !recondb::feature_columns_present(conn)? {
        return Err(Error::NotMigrated("recon.db has no recon_domain columns yet, so nothing is assigned".into()));
    }
    let hashes = recondb::hashes_with_status(conn, st)?;
    // A short seed is easy to retype at a STOP point.
    let seed_given = seed.is_some();
    let seed = seed.unwrap_or_else(|| rand::thread_rng().gen_range(0..1_000_000_000));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = sample.min(hashes.len());
    let mut idx = rand::seq::index::sample(&mut rng, hashes.len(), n).into_vec();
    idx.sort_unstable();
    let picked: Vec<String> = idx.into_iter().map(|i| hashes[i].clone()).collect();

    let mut w = Work::new(env, conn)?;
    w.scan(&picked);
    let mut out = SpotCheck {
        status: st,
        available: hashes.len() as u64,
        requested: sample,
        seed,
        seed_given,
        verdicts: Vec::with_capacity(picked.len()),
        summary: SpotSummary::default(),
        narrow_rule: NARROW_RULE,
    };
    for h in &picked {
        let v = verdict(&explain_hash(&mut w, h)?);
        let s = &mut out.summary;
        s.sampled += 1;
        match v.class {
            Class::Clear => s.clear += 1,
            Class::Narrow => s.narrow += 1,
            Class::NoDomain => s.no_domain += 1,
        }
        s.stale += u64::from(v.stale);
        out.verdicts.push(v);
    }
    Ok(out)
}
