//! Passes 2 and 3 over `tied_pass_1` documents: channel facts and every needed document's counts built once per run.

use super::run::{abort_pass, finish_pass, open_for, Change};
use super::summary::{percentages, PassSummary};
use crate::assign::Counts;
use crate::assign::{self, ChannelView, Outcome, Status};
use crate::context::Env;
use crate::error::Result;
use crate::journal::batch::Guard;
use crate::recon::concepts::DocScan;
use crate::recon::db::{self as recondb, Candidate};
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
    /// Boxed: a bucket is then 32 bytes, not the ~300 of a scan, so the
    /// table a 220,000-document reassessment builds (and grows by rehashing
    /// when channel-mates join) stays small; each scan is allocated once, at
    /// its own size.
    pub scans: HashMap<String, Box<DocScan>>,
}

impl CountCache {
    /// Reads every document once from the configured source; also returns the source's report.
    /// Only totals, file counts and skips are kept of each scan, not its per-file list.
    pub fn build(env: &Env, hashes: Vec<String>, what: &str) -> Result<(CountCache, SourceStats)> {
        // Scans come in input order; the hashes then move into the keys
        // rather than being copied (a 220K reassessment: 10 MB less).
        let mut boxed = Vec::with_capacity(hashes.len());
        let stats = env.counts_each(&hashes, what, |_, scan| boxed.push(Box::new(scan.without_windows())))?;
        let scans = hashes.into_iter().zip(boxed).collect();
        Ok((CountCache { scans }, stats))
    }

    /// True when a document's counts could not be read (a failed Qdrant request).
    pub fn failed(&self, hash: &str) -> bool {
        self.scans.get(hash).is_some_and(|s| s.failed.is_some())
    }

    pub fn totals(&self, hash: &str) -> Option<&Counts> {
        self.scans.get(hash).and_then(|s| s.dir_found.then_some(&s.totals))
    }

    /// Sum over a channel's members other than `except` (saturating: never wraps).
    pub fn channel_others(&self, members: &[String], except: &str) -> Counts {
        let mut sum = [0u64; COUNT];
        for m in members {
            if m == except {
                continue;
            }
            if let Some(c) = self.totals(m) {
                assign::add_counts(&mut sum, c);
            }
        }
        sum
    }
}

/// A channel's sum without one of its members, when that is exact: `None`
/// when a label's sum may have saturated (`u64::MAX`) or is below the
/// member's own count (the sum did not include it), so the caller adds the
/// other members instead of trusting a subtraction.
fn without_member(sum: &Counts, own: &Counts) -> Option<Counts> {
    let mut out = [0u64; COUNT];
    for i in 0..COUNT {
        if sum[i] == u64::MAX {
            return None;
        }
        out[i] = sum[i].checked_sub(own[i])?;
    }
    Some(out)
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
    // The subtraction is exact unless the sum saturated; then the other members
    // are added again (O(channel size), only on input no real channel reaches).
    if let (Some(ch), Some(own), Some(sum)) = (ch, own, sum) {
        if channels.channel_of.get(&c.hash).map(String::as_str) == Some(ch) {
            others = without_member(sum, own).unwrap_or_else(|| {
                let members = channels.members.get(ch).map(Vec::as_slice).unwrap_or(&[]);
                cache.channel_others(members, &c.hash)
            });
        }
    }
    assign::tiebreak_as(own, ChannelView { mega, others: &others }, env.no_counts_status())
}

/// The documents whose counts the tiebreaker needs (tied ones, then the members
/// of their non-mega channels, each once) and those channels.
pub(crate) fn needed(env: &Env, channels: &Channels, cands: &[Candidate]) -> (Vec<String>, HashSet<String>) {
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
        changes.push(Change { hash: c.hash.clone(), outcome, doc: c.doc });
    }
    summary.percent = percentages(&summary.tally, summary.selected);
    finish_pass(env, &mut conn, run, &changes, Guard::StatusIs(Status::TiedPass1.as_str()), &mut summary, started)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recon::db::Candidate;

    fn idx(l: &str) -> usize {
        shared_constants::index_of_label(l).expect("label")
    }

    fn counts(pairs: &[(&str, u64)]) -> Counts {
        let mut c = [0u64; COUNT];
        for &(l, n) in pairs {
            c[idx(l)] = n;
        }
        c
    }

    /// One channel "ch" of the given members, the tied document "t" among them.
    fn decide(docs: &[(&str, Counts)]) -> Outcome {
        let env = Env::from_config(&crate::config::Config::default());
        let names: Vec<String> = docs.iter().map(|(h, _)| h.to_string()).collect();
        let channels =
            Channels { members: HashMap::from([("ch".to_string(), names.clone())]), channel_of: names.iter().map(|h| (h.clone(), "ch".to_string())).collect() };
        let cache =
            CountCache { scans: docs.iter().map(|(h, c)| (h.to_string(), Box::new(DocScan { dir_found: true, totals: *c, ..DocScan::default() }))).collect() };
        let sums = channel_sums(&cache, &channels, &HashSet::from(["ch".to_string()]));
        decide_tie(&env, &channels, &cache, &sums, &Candidate { hash: "t".into(), channel: Some("ch".into()), doc: None })
    }

    #[test]
    fn channel_sums_past_u32_are_exact() {
        let big = u64::from(u32::MAX);
        let t = counts(&[("Medical", 1), ("Security", 1)]);
        // The mates' Medical passes u32::MAX by 2, Security by 1: Medical wins.
        let o = decide(&[("t", t), ("a", counts(&[("Medical", big), ("Security", big)])), ("b", counts(&[("Medical", 2), ("Security", 1)]))]);
        assert_eq!((o.status, o.domain, o.rule), (Status::TiedPass2, Some(idx("Medical")), assign::Rule::Channel));
        let cache = CountCache {
            scans: [("a", big), ("b", big), ("c", 2)]
                .into_iter()
                .map(|(h, n)| (h.to_string(), Box::new(DocScan { dir_found: true, totals: counts(&[("Medical", n)]), ..DocScan::default() })))
                .collect(),
        };
        let members: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(cache.channel_others(&members, "")[idx("Medical")], 2 * big + 2);
        assert_eq!(cache.channel_others(&members, "b")[idx("Medical")], big + 2);
    }

    #[test]
    fn a_saturated_channel_sum_is_never_subtracted_from() {
        // Both labels' channel sums saturate once "t" is included; subtracting
        // "t" from them would give a false tie (u64::MAX - 2 each). Adding the
        // other members gives Medical u64::MAX - 1 against Security u64::MAX - 2.
        let t = counts(&[("Medical", 2), ("Security", 2)]);
        let o = decide(&[("t", t), ("a", counts(&[("Medical", u64::MAX - 1)])), ("b", counts(&[("Security", u64::MAX - 2)]))]);
        assert_eq!((o.status, o.domain, o.rule), (Status::TiedPass2, Some(idx("Medical")), assign::Rule::Channel));
        // Sums saturate rather than wrap.
        let cache = CountCache {
            scans: [("a", u64::MAX), ("b", 1)]
                .into_iter()
                .map(|(h, n)| (h.to_string(), Box::new(DocScan { dir_found: true, totals: counts(&[("Medical", n)]), ..DocScan::default() })))
                .collect(),
        };
        assert_eq!(cache.channel_others(&["a".to_string(), "b".to_string()], "")[idx("Medical")], u64::MAX);
        assert_eq!(without_member(&counts(&[("Medical", u64::MAX)]), &counts(&[("Medical", 1)])), None);
        assert_eq!(without_member(&counts(&[("Medical", 1)]), &counts(&[("Medical", 2)])), None);
        assert_eq!(without_member(&counts(&[("Medical", 5)]), &counts(&[("Medical", 2)])), Some(counts(&[("Medical", 3)])));
    }
}
