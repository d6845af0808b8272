//! The recomputation behind `explain`: one document's files counted again, the
//! engine's own rules applied (`assign`, `engine::decide_tie`), the tie's channel
//! detail, and whether the stored result is stale.

use super::model::{Contributor, Decided, DomainCount, Explanation, HistoryEntry, SkippedFile, Staleness, Stored, TieDetail, WindowCounts};
use super::sources::source_comparison;
use super::target::{parse_target, resolve};
use crate::assign::Counts;
use crate::assign::{self, Outcome, Rule, Status};
use crate::context::Env;
use crate::engine::{self, Channels, CountCache};
use crate::error::{Error, Result};
use crate::journal::{self, Kind};
use crate::output::pct;
use crate::recon::concepts::{self, DocScan, SkipReason};
use crate::recon::db::{self as recondb, Candidate, DocumentView};
use rusqlite::Connection;
use shared_constants::{COUNT, DOMAINS};
use std::collections::{HashMap, HashSet};

/// Channel-mates listed as the tiebreaker's top contributors.
pub const TOP_CONTRIBUTORS: usize = 5;
/// Journal entries shown per document.
const HISTORY: u64 = 5;

fn title(v: &DocumentView) -> Option<String> {
    v.book_title.clone().filter(|t| !t.trim().is_empty()).or_else(|| v.cat_filename.clone()).or_else(|| v.doc_filename.clone())
}

fn stored(v: &DocumentView) -> Stored {
    let c = &v.columns;
    Stored {
        domain: c.recon_domain.clone(),
        status: c.recon_domain_status.clone(),
        assigned_at: c.recon_domain_assigned_at.clone(),
        pushed_at: c.peertube_category_pushed_at.clone(),
    }
}

fn history(conn: &Connection, hash: &str) -> Result<Vec<HistoryEntry>> {
    if !recondb::has_table(conn, "companion_journal")? {
        return Ok(Vec::new());
    }
    let field = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Ok(journal::history(conn, Kind::Documents, hash, HISTORY)?
        .into_iter()
        .map(|(run_id, at, old, new, state)| HistoryEntry {
            from_status: field(&old, "recon_domain_status"),
            from_domain: field(&old, "recon_domain"),
            to_status: field(&new, "recon_domain_status"),
            to_domain: field(&new, "recon_domain"),
            run_id,
            at,
            state,
        })
        .collect())
}

/// The engine's caches, filled lazily: a document's files are read once, a
/// channel's members only when a tied document in a non-mega channel needs them.
pub(super) struct Work<'a> {
    env: Env,
    conn: &'a Connection,
    migrated: bool,
    channels: Channels,
    loaded: HashSet<String>,
    cache: CountCache,
    /// Per channel: counts summed over all its members (as `decide_tie` expects).
    sums: HashMap<String, Counts>,
}

impl<'a> Work<'a> {
    pub(super) fn new(env: &Env, conn: &'a Connection) -> Result<Work<'a>> {
        Ok(Work {
            env: Env { progress: false, ..env.clone() },
            conn,
            migrated: recondb::feature_columns_present(conn)?,
            channels: Channels { members: HashMap::new(), channel_of: HashMap::new() },
            loaded: HashSet::new(),
            cache: CountCache { scans: HashMap::new() },
            sums: HashMap::new(),
        })
    }
    /// Reads documents' files in parallel, skipping those already read.
    pub(super) fn scan(&mut self, hashes: &[String]) {
        let missing: Vec<String> = hashes.iter().filter(|h| !self.cache.scans.contains_key(*h)).cloned().collect();
        let scans = self.env.scan_docs(&missing);
        self.cache.scans.extend(missing.into_iter().zip(scans.into_iter().map(Box::new)));
    }

    /// The channel's PeerTube catalogue rows (its size decides mega-ness).
    fn load_channel(&mut self, ch: &str) -> Result<()> {
        if !self.loaded.insert(ch.to_string()) {
            return Ok(());
        }
        let mut members = recondb::channel_members(self.conn, &self.env.source, ch)?;
        members.sort_unstable();
        for m in &members {
            self.channels.channel_of.insert(m.clone(), ch.to_string());
        }
        self.channels.members.insert(ch.to_string(), members);
        Ok(())
    }

    fn sum_channel(&mut self, ch: &str) {
        if self.sums.contains_key(ch) {
            return;
        }
        let members = self.channels.members.get(ch).cloned().unwrap_or_default();
        self.scan(&members);
        let sum = self.cache.channel_others(&members, "");
        self.sums.insert(ch.to_string(), sum);
    }

    fn doc_scan(&self, hash: &str) -> Option<&DocScan> {
        self.cache.scans.get(hash).map(Box::as_ref)
    }
}

// ---------------------------------------------------------------------------
// Assembling an explanation.
fn dc(i: usize, count: u64) -> DomainCount {
    DomainCount { id: DOMAINS[i].id, domain: DOMAINS[i].label, count }
}

fn nonzero(c: &Counts) -> Vec<DomainCount> {
    (0..COUNT).filter(|&i| c[i] > 0).map(|i| dc(i, c[i])).collect()
}

fn ranked(c: &Counts) -> Vec<DomainCount> {
    let mut v = nonzero(c);
    v.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
    v
}

pub(super) fn counts_from(list: &[DomainCount]) -> Counts {
    let mut c = [0u64; COUNT];
    for d in list {
        if let Some(i) = shared_constants::index_of_id(d.id) {
            c[i] = d.count;
        }
    }
    c
}

/// "A", "A and B", "A, B and C".
pub(super) fn join_labels<S: AsRef<str>>(labels: &[S]) -> String {
    match labels {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => {
            format!("{} and {}", init.iter().map(|s| s.as_ref()).collect::<Vec<_>>().join(", "), last.as_ref())
        }
    }
}

fn labels_of(idx: &[usize]) -> Vec<&'static str> {
    idx.iter().map(|&i| DOMAINS[i].label).collect()
}

/// An outcome as the operator would say it.
fn describe(o: &Outcome) -> String {
    let d = o.domain_label().unwrap_or("-");
    match o.rule {
        Rule::NoValidDomain => "needs_reprocess (no valid domain)".to_string(),
        Rule::ClearWinner => format!("assigned / {d}"),
        Rule::Tie => format!("tied_pass_1 (a tie between {})", join_labels(&labels_of(&o.tied))),
        Rule::Channel => format!("tied_pass_2 / {d} (the channel decides the tie)"),
        Rule::MegaChannel => format!("tied_manual / {d} (mega-channel: alphabetical fallback, for review)"),
        Rule::AlphabeticalFallback => format!("tied_manual / {d} (the channel does not settle the tie: alphabetical fallback, for review)"),
    }
}

/// Compares the stored result with what the algorithm would store today:
/// `assigned`, `tied_pass_1` and `needs_reprocess` come from pass 1 (the
/// tiebreaker has not run on them), `tied_pass_2` and `tied_manual` from the
/// tiebreaker; a person's choice (`manual_assigned`) is never stale.
pub fn staleness(stored_status: Option<&str>, stored_domain: Option<&str>, pass1: &Outcome, tiebroken: &Outcome) -> Staleness {
    let Some(raw) = stored_status else {
        return Staleness {
            stale: false,
            compared_with: None,
            message: format!("Nothing stored yet; backfill and tiebreaker would store {}.", describe(tiebroken)),
        };
    };
    let Some(status) = Status::parse(raw) else {
        return Staleness {
            stale: false,
            compared_with: None,
            message: format!("Stored status {raw:?} is not one of the feature's statuses; not compared with the files."),
        };
    };
    let (expected, against) = match status {
        Status::ManualAssigned => {
            return Staleness {
                stale: false,
                compared_with: None,
                message: format!(
                    "Chosen by a person in the dashboard ({}), so never recomputed; the files alone would give {}.",
                    stored_domain.unwrap_or("-"),
                    describe(tiebroken)
                ),
            };
        }
        Status::Assigned | Status::TiedPass1 | Status::NeedsReprocess | Status::NoConcepts => (pass1, "pass1"),
        Status::TiedPass2 | Status::TiedManual => (tiebroken, "tiebreaker"),
    };
    let stale = match status {
        // needs_reprocess stores no domain; it is stale once the files have one.
        Status::NeedsReprocess => expected.status != Status::NeedsReprocess,
        _ => expected.status != status || expected.domain_label() != stored_domain,
    };
    let stored = match stored_domain {
        Some(d) => format!("{raw} / {d}"),
        None => raw.to_string(),
    };
    let mut message = if stale {
        format!("STALE: stored {stored}, but the files now give {}", describe(expected))
    } else {
        format!("Up to date: the files still give {}", describe(expected))
    };
    if expected.status == Status::TiedPass1 && tiebroken.status != Status::TiedPass1 {
        message.push_str(&format!("; the tiebreaker would then store {}", describe(tiebroken)));
    }
    message.push('.');
    if stale {
        message.push_str(" The files changed after the result was stored (or it was stored by other means).");
    }
    Staleness { stale, compared_with: Some(against), message }
}

fn skip_kind(r: &SkipReason) -> (&'static str, String) {
    match r {
        SkipReason::Unreadable(e) => ("unreadable", e.clone()),
        SkipReason::NotUtf8 => ("not_utf8", "not valid UTF-8 (RECON's Python crashes on it; skipped as unreadable)".into()),
        SkipReason::Malformed(m) => ("malformed", format!("not JSON as Python reads it: {m}")),
        SkipReason::NotArray => ("not_array", "valid JSON, but not an array of concepts".into()),
    }
}

fn tie_detail(w: &Work<'_>, hash: &str, channel: Option<&str>, doc: &Counts, o: &Outcome) -> Result<TieDetail> {
    let tied = o.tied.clone();
    let size = channel.map(|c| w.channels.size(c)).unwrap_or(0);
    let mega = w.channels.is_mega(&w.env, channel);
    let mega_reason = match channel {
        Some(ch) if mega => Some(if w.env.mega_skip.iter().any(|s| s == ch) {
            format!("{ch:?} is on the mega-channel skip list")
        } else {
            format!("{size} PeerTube videos, more than the threshold of {}", w.env.mega_threshold)
        }),
        _ => None,
    };
    let mut detail = TieDetail {
        tied: labels_of(&tied),
        tied_count: tied.first().map(|&i| doc[i]).unwrap_or(0),
        channel: channel.map(str::to_string),
        channel_size: size,
        mega,
        mega_reason,
        channel_counts: None,
        channel_margin: None,
        mates_counted: 0,
        top_contributors: Vec::new(),
    };
    let Some(ch) = channel.filter(|_| !mega) else { return Ok(detail) };
    let members: &[String] = w.channels.members.get(ch).map(Vec::as_slice).unwrap_or(&[]);
    // Same sum as the tiebreaker's: every member but the document itself.
    let others = w.cache.channel_others(members, hash);
    detail.channel_counts = Some(tied.iter().map(|&i| dc(i, others[i])).collect());
    detail.mates_counted = members.iter().filter(|m| m.as_str() != hash).count() as u64;
    if o.rule == Rule::Channel {
        if let Some(win) = o.domain {
            let best_other = tied.iter().filter(|&&i| i != win).map(|&i| others[i]).max().unwrap_or(0);
            detail.channel_margin = Some(others[win].saturating_sub(best_other));
        }
    }
    let mut contrib: Vec<(u64, &String, Vec<DomainCount>)> = members
        .iter()
        .filter(|m| m.as_str() != hash)
        .filter_map(|m| {
            let t = w.cache.totals(m)?;
            let counts: Vec<DomainCount> = tied.iter().map(|&i| dc(i, t[i])).collect();
            let total = counts.iter().fold(0u64, |n, d| n.saturating_add(d.count));
            (total > 0).then_some((total, m, counts))
        })
        .collect();
    contrib.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    contrib.truncate(TOP_CONTRIBUTORS);
    for (total, m, counts) in contrib {
        detail.top_contributors.push(Contributor { hash: m.clone(), title: recondb::document_title(w.conn, m)?, counts, total });
    }
    Ok(detail)
}

fn reason(scan: &DocScan, skipped_files: usize, outcome: &Outcome, tie: Option<&TieDetail>) -> String {
    let totals = &scan.totals;
    let total = crate::assign::total(totals);
    match outcome.rule {
        Rule::NoValidDomain if scan.bad_hash => {
            "The hash is not one safe path component (1 to 128 ASCII letters and digits), so its concept dir is never read: no valid domain (needs_reprocess)."
                .into()
        }
        Rule::NoValidDomain if !scan.dir_found => "No concept dir: nothing to count, so it needs reprocessing.".into(),
        Rule::NoValidDomain => {
            format!("No concept in its {} window file(s) ({skipped_files} skipped) carries a valid domain, so it needs reprocessing.", scan.windows.len())
        }
        Rule::ClearWinner => {
            let Some(win) = outcome.domain else { return describe(outcome) };
            let (share, margin) = assign::margin(totals, win);
            let runner = (0..COUNT).filter(|&i| i != win && totals[i] > 0).max_by_key(|&i| (totals[i], std::cmp::Reverse(i)));
            match runner {
                Some(r) => format!(
                    "Clear winner: {} has {} of {total} valid-domain concepts ({}), {margin} more than the runner-up {} ({}).",
                    DOMAINS[win].label,
                    totals[win],
                    pct(share * 100.0),
                    DOMAINS[r].label,
                    totals[r]
                ),
                None => format!("Clear winner: {} is the only valid domain ({} concept(s)).", DOMAINS[win].label, totals[win]),
            }
        }
        Rule::Tie => describe(outcome),
        Rule::Channel | Rule::MegaChannel | Rule::AlphabeticalFallback => {
            let Some(t) = tie else { return describe(outcome) };
            let tie_s = format!("{} tie at {} concept(s) each", join_labels(&t.tied), t.tied_count);
            let d = outcome.domain_label().unwrap_or("-");
            let chan_counts = || {
                t.channel_counts.as_ref().map(|cc| cc.iter().map(|c| format!("{} {}", c.domain, c.count)).collect::<Vec<_>>().join(", ")).unwrap_or_default()
            };
            let ch = t.channel.as_deref().unwrap_or("");
            match outcome.rule {
                Rule::Channel => format!(
                    "{tie_s}; the channel {ch:?} decides: its {} other video(s) count {} → {d} (tied_pass_2).",
                    t.mates_counted,
                    chan_counts()
                ),
                Rule::MegaChannel => format!(
                    "{tie_s}; {ch:?} is a mega-channel ({}), so its counts say nothing about one video: the alphabetically first tied domain, {d}, is stored for review (tied_manual).",
                    t.mega_reason.as_deref().unwrap_or("")
                ),
                _ if t.channel.is_none() => format!(
                    "{tie_s}; the document has no channel to break the tie, so the alphabetically first tied domain, {d}, is stored for review (tied_manual)."
                ),
                _ => format!(
                    "{tie_s}; the channel {ch:?} does not settle it ({}), so the alphabetically first tied domain, {d}, is stored for review (tied_manual).",
                    chan_counts()
                ),
            }
        }
    }
}

pub(super) fn explain_hash(w: &mut Work<'_>, hash: &str) -> Result<Explanation> {
    let row = recondb::document_view(w.conn, hash, w.migrated)?;
    if !row.in_documents && !row.in_catalogue {
        return Err(Error::NotFound(format!("document {hash}: no documents or catalogue row")));
    }
    w.scan(&[hash.to_string()]);
    let scan = w.doc_scan(hash).cloned().unwrap_or_default();
    let own = scan.dir_found.then_some(scan.totals);
    let pass1 = assign::pass1_as(own.as_ref(), w.env.no_counts_status());
    let (outcome, tie) = if pass1.status == Status::TiedPass1 {
        if let Some(ch) = row.category.as_deref() {
            w.load_channel(ch)?;
            // A mega-channel's members are never read: the rule ignores them.
            if !w.channels.is_mega(&w.env, Some(ch)) {
                w.sum_channel(ch);
            }
        }
        let cand = Candidate { hash: hash.to_string(), channel: row.category.clone(), doc: None };
        let o = engine::decide_tie(&w.env, &w.channels, &w.cache, &w.sums, &cand);
        let tie = tie_detail(w, hash, row.category.as_deref(), &scan.totals, &o)?;
        (o, Some(tie))
    } else {
        (pass1.clone(), None)
    };

    let mut windows = Vec::new();
    let mut skipped_files = Vec::new();
    let (mut non_obj, mut no_valid) = (0u64, 0u64);
    for win in &scan.windows {
        match &win.result {
            Ok(fc) => {
                non_obj = non_obj.saturating_add(fc.non_objects);
                no_valid = no_valid.saturating_add(fc.no_valid_domain);
                windows.push(WindowCounts {
                    file: win.name.clone(),
                    items: fc.items,
                    counts: nonzero(&fc.counts),
                    counted: crate::assign::total(&fc.counts),
                    non_object_items: fc.non_objects,
                    no_valid_domain_items: fc.no_valid_domain,
                });
            }
            Err(r) => {
                let (kind, reason) = skip_kind(r);
                skipped_files.push(SkippedFile { file: win.name.clone(), kind, reason });
            }
        }
    }
    let staleness = staleness(row.columns.recon_domain_status.as_deref(), row.columns.recon_domain.as_deref(), &pass1, &outcome);
    let concept_dir = concepts::concept_dir(&w.env.concepts_dir, hash).ok().map(|p| p.display().to_string());
    Ok(Explanation {
        hash: hash.to_string(),
        title: title(&row),
        channel: row.category.clone(),
        source: row.source.clone(),
        video_url: row.path.clone(),
        document_status: row.doc_status.clone(),
        in_documents: row.in_documents,
        in_catalogue: row.in_catalogue,
        migrated: w.migrated,
        stored: stored(&row),
        concept_dir,
        concept_dir_found: scan.dir_found,
        reason: reason(&scan, skipped_files.len(), &outcome, tie.as_ref()),
        windows,
        skipped_files,
        skipped_non_object_items: non_obj,
        skipped_no_valid_domain_items: no_valid,
        totals: ranked(&scan.totals),
        total_valid: scan.total(),
        pass1: Decided::from(&pass1),
        outcome: Decided::from(&outcome),
        rule: outcome.rule,
        tie,
        stale: staleness.stale,
        staleness,
        history: history(w.conn, hash)?,
        sources: source_comparison(&w.env, hash, &scan),
    })
}

/// Explains one document: `target` is a hash, a PeerTube video uuid (36 or 22
/// characters) or a URL containing `/w/{uuid}`. Reads only the document's
/// files, and its channel-mates' files only when it is tied in a non-mega channel.
pub fn explain(env: &Env, conn: &Connection, target: &str) -> Result<Explanation> {
    let t = parse_target(target)?;
    let hash = resolve(conn, &t)?;
    let mut w = Work::new(env, conn)?;
    explain_hash(&mut w, &hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::assign::counts_by_id as c;

    #[test]
    fn staleness_rules() {
        let medical = assign::pass1(Some(&c(&[(106, 3), (111, 1)])));
        let tie = assign::pass1(Some(&c(&[(106, 2), (111, 2)])));
        let none = assign::pass1(None);
        let resolved = Outcome { status: Status::TiedPass2, domain: Some(11), tied: vec![6, 11], rule: Rule::Channel };
        assert!(!staleness(Some("assigned"), Some("Medical"), &medical, &medical).stale);
        assert!(staleness(Some("assigned"), Some("Security"), &medical, &medical).stale);
        let s = staleness(Some("assigned"), Some("Medical"), &tie, &resolved);
        assert!(s.stale && s.message.contains("tied_pass_2 / Security"), "{}", s.message);
        assert!(!staleness(Some("tied_pass_2"), Some("Security"), &tie, &resolved).stale);
        assert!(staleness(Some("tied_pass_2"), Some("Medical"), &tie, &resolved).stale);
        assert_eq!(staleness(Some("tied_pass_2"), Some("Security"), &tie, &resolved).compared_with, Some("tiebreaker"));
        assert!(!staleness(Some("tied_pass_1"), None, &tie, &resolved).stale);
        assert!(staleness(Some("tied_pass_1"), None, &medical, &medical).stale);
        assert!(!staleness(Some("needs_reprocess"), None, &none, &none).stale);
        assert!(staleness(Some("needs_reprocess"), None, &medical, &medical).stale);
        let m = staleness(Some("manual_assigned"), Some("Water Systems"), &medical, &medical);
        assert!(!m.stale && m.message.contains("person"));
        assert!(!staleness(None, None, &medical, &medical).stale);
        assert!(!staleness(Some("bogus"), None, &medical, &medical).stale);
    }

    #[test]
    fn join_labels_reads_naturally() {
        assert_eq!(join_labels(&["A"]), "A");
        assert_eq!(join_labels(&["A", "B"]), "A and B");
        assert_eq!(join_labels(&["A", "B", "C"]), "A, B and C");
    }
}
