//! Passes 2 and 3 over `tied_pass_1` documents: channel facts and every needed document's counts built once per run.

use super::run::{abort_pass, finish_pass, open_for, Change};
use super::summary::{percentages, PassSummary};
use crate::assign::{self, ChannelView, Outcome, Status};
use crate::context::Env;
use crate::error::Result;
use crate::recon::concepts::DocScan;
use crate::recon::db::{self as recondb, Candidate};
use crate::recon::pyjson::Counts;
use crate::recon::source::SourceStats;
use rusqlite::Connection;
use shared_constants::COUNT;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// Channel facts for the tiebreaker, built once per run.
pub struct Channels {
    /// PeerTube catalogue rows per channel.
    pub members: HashMap<String, Vec<String>>,
    /// Channel of every PeerTube catalogue row.
    pub channel_of: HashMap<String, String>,
}

impl Channels {
    pub fn load(conn: &Connection, source: &str) -> Result<Channels> {
        let mut members: HashMap<String, Vec<String>> = HashMap::new();
        let mut channel_of = HashMap::new();
        for (hash, ch) in recondb::stream_catalogue(conn, source)? {
            if let Some(ch) = ch {
                members.entry(ch.clone()).or_default().push(hash.clone());
                channel_of.insert(hash, ch);
            }
        }
        Ok(Channels { members, channel_of })
    }

    pub fn size(&self, channel: &str) -> u64 {
        self.members.get(channel).map(|m| m.len() as u64).unwrap_or(0)
    }

    pub fn is_mega(&self, env: &Env, channel: Option<&str>) -> bool {
        assign::is_mega(channel, channel.map(|c| self.size(c)).unwrap_or(0), env.mega_threshold, &env.mega_skip)
    }
}

/// Counts of a set of documents computed once per run: every document's files
/// are read at most once, whatever the number of ties in its channel.
pub struct CountCache {
    pub scans: HashMap<String, DocScan>,
}

impl CountCache {
    /// Reads every document once from the configured source; also returns the source's report.
    pub fn build(env: &Env, hashes: Vec<String>, what: &str) -> Result<(CountCache, SourceStats)> {
        let counts = env.counts(&hashes, what)?;
        Ok((CountCache { scans: hashes.into_iter().zip(counts.scans).collect() }, counts.stats))
    }

    /// True when a document's counts could not be read (a failed Qdrant request).
    pub fn failed(&self, hash: &str) -> bool {
        self.scans.get(hash).is_some_and(|s| s.failed.is_some())
    }

    pub fn totals(&self, hash: &str) -> Option<&Counts> {
        self.scans.get(hash).and_then(|s| s.dir_found.then_some(&s.totals))
    }

    /// Sum over a channel's members other than `except`.
    pub fn channel_others(&self, members: &[String], except: &str) -> Counts {
        let mut sum = [0u32; COUNT];
        for m in members {
            if m == except {
                continue;
            }
            if let Some(c) = self.totals(m) {
                for i in 0..COUNT {
                    sum[i] += c[i];
                }
            }
        }
        sum
    }
}

/// Per-channel sums, so each tied video costs O(18) instead of O(channel size).
pub fn channel_sums(cache: &CountCache, channels: &Channels, wanted: &HashSet<String>) -> HashMap<String, Counts> {
    wanted
        .iter()
        .map(|ch| {
            let members = channels.members.get(ch).map(Vec::as_slice).unwrap_or(&[]);
            (ch.clone(), cache.channel_others(members, ""))
        })
        .collect()
}

/// The tiebreaker's decision for one tied document, given the run's caches.
pub fn decide_tie(env: &Env, channels: &Channels, cache: &CountCache, sums: &HashMap<String, Counts>, c: &Candidate) -> Outcome {
    let ch = c.channel.as_deref();
    let mega = channels.is_mega(env, ch);
    let own = cache.totals(&c.hash);
    let sum = ch.and_then(|ch| sums.get(ch));
    let mut others = sum.copied().unwrap_or([0; COUNT]);
    // The doc itself is excluded from its channel's counts only if it is a member
    // (and only from a real sum: mega-channels have none, their counts stay zero).
    if let (Some(ch), Some(own), Some(_)) = (ch, own, sum) {
        if channels.channel_of.get(&c.hash).map(String::as_str) == Some(ch) {
            for i in 0..COUNT {
                others[i] -= own[i];
            }
        }
    }
    assign::tiebreak_as(own, ChannelView { mega, others: &others }, env.no_counts_status())
}

/// The documents whose counts the tiebreaker needs (tied ones, then the members
/// of their non-mega channels, each once) and those channels.
fn needed(env: &Env, channels: &Channels, cands: &[Candidate]) -> (Vec<String>, HashSet<String>) {
    let mut wanted_channels = HashSet::new();
    let mut needed: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for c in cands {
        if seen.insert(c.hash.clone()) {
            needed.push(c.hash.clone());
        }
        if let Some(ch) = c.channel.as_deref() {
            if !channels.is_mega(env, Some(ch)) && wanted_channels.insert(ch.to_string()) {
                for m in channels.members.get(ch).into_iter().flatten() {
                    if seen.insert(m.clone()) {
                        needed.push(m.clone());
                    }
                }
            }
        }
    }
    (needed, wanted_channels)
}

/// Passes 2 and 3 over every `tied_pass_1` document.
pub fn tiebreaker(env: &Env, limit: Option<u64>, dry_run: bool) -> Result<PassSummary> {
    let started = Instant::now();
    let mut summary = PassSummary { command: "tiebreaker".into(), dry_run, source: env.concepts.kind().as_str().into(), ..Default::default() };
    let (mut conn, run) = open_for(env, "tiebreaker", limit, dry_run)?;
    let cands = if recondb::feature_columns_present(&conn)? { recondb::tied_candidates(&conn, limit)? } else { Vec::new() };
    summary.selected = cands.len() as u64;
    let channels = Channels::load(&conn, &env.source)?;
    // Only non-mega channels need their members' counts.
    let (needed, wanted_channels) = needed(env, &channels, &cands);
    let (cache, stats) = match CountCache::build(env, needed, "tiebreaker") {
        Ok(c) => c,
        Err(e) => return Err(abort_pass(env, &conn, run, &mut summary, e, started)),
    };
    summary.source_stats = stats;
    // A channel with a member whose counts failed has no trustworthy sum: its
    // tied videos stay tied_pass_1 for the next run (never a silent zero).
    let incomplete: HashSet<&str> =
        wanted_channels.iter().filter(|ch| channels.members.get(*ch).is_some_and(|ms| ms.iter().any(|m| cache.failed(m)))).map(String::as_str).collect();
    let sums = channel_sums(&cache, &channels, &wanted_channels);
    let mut changes = Vec::with_capacity(cands.len());
    for c in &cands {
        if let Some(scan) = cache.scans.get(&c.hash) {
            summary.note_scan(&c.hash, scan);
        }
        let outcome = decide_tie(env, &channels, &cache, &sums, c);
        let needs_channel = matches!(outcome.status, Status::TiedPass2 | Status::TiedManual) && outcome.rule != assign::Rule::MegaChannel;
        if needs_channel && c.channel.as_deref().is_some_and(|ch| incomplete.contains(ch)) {
            if !cache.failed(&c.hash) {
                summary.errors += 1;
            }
            summary.tally.add(&Outcome { status: Status::TiedPass1, domain: None, tied: outcome.tied, rule: assign::Rule::Tie });
            continue;
        }
        summary.tally.add(&outcome);
        changes.push(Change { hash: c.hash.clone(), outcome });
    }
    summary.percent = percentages(&summary.tally, summary.selected);
    finish_pass(env, &mut conn, run, &changes, |cur| cur.recon_domain_status.as_deref() == Some(Status::TiedPass1.as_str()), &mut summary, started)?;
    Ok(summary)
}
