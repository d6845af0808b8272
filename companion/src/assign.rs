//! The assignment rules (pass 1, channel tiebreaker, mega-channel, fallback) as
//! pure functions over domain counts: no files, no database.

use serde::Serialize;
use shared_constants::{COUNT, DOMAINS};

/// Per-label counts; index = category id - 100.
///
/// `u64`, and every addition saturating (`add_counts`, `total`): one window
/// file needs ~43 GB of `"Medical",` to pass `u32::MAX` labels (8.6 GB of `0,`
/// for `items`), but a document sums its files and a channel its documents, and
/// hostile input must never wrap. No real input reaches 2^64, so a saturated
/// `u64` never stands in for a real count and ties stay exact, which a
/// saturating `u32` could not promise.
pub type Counts = [u64; COUNT];

/// Adds `from` into `into`, saturating per label (never wraps).
pub fn add_counts(into: &mut Counts, from: &Counts) {
    for (t, c) in into.iter_mut().zip(from) {
        *t = t.saturating_add(*c);
    }
}

/// The sum of all labels' counts, saturating (never wraps).
pub fn total(c: &Counts) -> u64 {
    c.iter().fold(0u64, |a, &n| a.saturating_add(n))
}

/// Values of `documents.recon_domain_status`. Serialized exactly as stored
/// (`as_str`): serde's snake_case alone would write `tied_pass2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Assigned,
    #[serde(rename = "tied_pass_1")]
    TiedPass1,
    #[serde(rename = "tied_pass_2")]
    TiedPass2,
    TiedManual,
    NeedsReprocess,
    ManualAssigned,
    /// Qdrant source: the document has no counted concept point. Terminal:
    /// nothing to reprocess (RECON 3b37d96).
    NoConcepts,
}

impl Status {
    pub const ALL: [Status; 7] =
        [Status::Assigned, Status::TiedPass1, Status::TiedPass2, Status::TiedManual, Status::NeedsReprocess, Status::ManualAssigned, Status::NoConcepts];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Assigned => "assigned",
            Status::TiedPass1 => "tied_pass_1",
            Status::TiedPass2 => "tied_pass_2",
            Status::TiedManual => "tied_manual",
            Status::NeedsReprocess => "needs_reprocess",
            Status::ManualAssigned => "manual_assigned",
            Status::NoConcepts => "no_concepts",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// "Categorized" in the runbook's sense: a domain a person can rely on.
    pub fn is_categorized(self) -> bool {
        matches!(self, Status::Assigned | Status::TiedPass2 | Status::ManualAssigned)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which rule produced an outcome; `explain` shows it to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// No concept dir, or no valid domain in any concept.
    NoValidDomain,
    /// One domain has the highest count.
    ClearWinner,
    /// Two or more share the highest count; waits for the tiebreaker.
    Tie,
    /// The channel's other videos favour one of the tied domains.
    Channel,
    /// Mega-channel: its counts say nothing about one video; a person decides.
    MegaChannel,
    /// Still tied after the channel: alphabetically first tied domain, for review.
    AlphabeticalFallback,
}

/// Result of applying the rules to one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub status: Status,
    /// Index into [`DOMAINS`] of the stored domain (None where the column stays NULL).
    pub domain: Option<usize>,
    /// Indices of the domains sharing the highest count (empty unless tied).
    pub tied: Vec<usize>,
    pub rule: Rule,
}

impl Outcome {
    pub fn domain_label(&self) -> Option<&'static str> {
        self.domain.map(|i| DOMAINS[i].label)
    }
}

/// Indices of the domains with the highest non-zero count, in id order.
pub fn top_domains(counts: &Counts) -> Vec<usize> {
    let max = counts.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return Vec::new();
    }
    (0..COUNT).filter(|&i| counts[i] == max).collect()
}

/// The alphabetically first label among `indices` (Python's `sorted(...)[0]`:
/// code-point order, which for these ASCII labels is byte order).
pub fn alphabetical_first(indices: &[usize]) -> Option<usize> {
    indices.iter().copied().min_by_key(|&i| DOMAINS[i].label)
}

/// Pass 1. `counts` is None when the document has no concept dir.
pub fn pass1(counts: Option<&Counts>) -> Outcome {
    pass1_as(counts, Status::NeedsReprocess)
}

/// Pass 1 where the concept source decides what "counted, but nothing valid"
/// means: `needs_reprocess` for files, `no_concepts` for Qdrant. `None` (no
/// concept dir, or a failed Qdrant request) is always `needs_reprocess`.
pub fn pass1_as(counts: Option<&Counts>, no_counts: Status) -> Outcome {
    let top = counts.map(top_domains).unwrap_or_default();
    match top.len() {
        0 if counts.is_some() => Outcome { status: no_counts, domain: None, tied: vec![], rule: Rule::NoValidDomain },
        0 => Outcome { status: Status::NeedsReprocess, domain: None, tied: vec![], rule: Rule::NoValidDomain },
        1 => Outcome { status: Status::Assigned, domain: Some(top[0]), tied: vec![], rule: Rule::ClearWinner },
        _ => Outcome { status: Status::TiedPass1, domain: None, tied: top, rule: Rule::Tie },
    }
}

/// What the tiebreaker knows about a tied document's channel.
#[derive(Debug, Clone, Copy)]
pub struct ChannelView<'a> {
    /// Mega-channel (over the threshold, or on the skip list).
    pub mega: bool,
    /// Valid-domain counts summed over the channel's *other* documents.
    pub others: &'a Counts,
}

/// Passes 2 and 3 for one `tied_pass_1` document.
///
/// Counts are computed once per run, so RECON's pass 3 ("count once more and try
/// again") sees the same files and the same result: a tie that survives the
/// channel falls straight to the alphabetical fallback.
pub fn tiebreak(counts: Option<&Counts>, channel: ChannelView<'_>) -> Outcome {
    tiebreak_as(counts, channel, Status::NeedsReprocess)
}

/// [`tiebreak`] with the source's "nothing valid" status (see [`pass1_as`]).
pub fn tiebreak_as(counts: Option<&Counts>, channel: ChannelView<'_>, no_counts: Status) -> Outcome {
    let first = pass1_as(counts, no_counts);
    if first.status != Status::TiedPass1 {
        return first;
    }
    let tied = first.tied;
    let fallback = alphabetical_first(&tied);
    if channel.mega {
        return Outcome { status: Status::TiedManual, domain: fallback, tied, rule: Rule::MegaChannel };
    }
    let best = tied.iter().map(|&i| channel.others[i]).max().unwrap_or(0);
    let winners: Vec<usize> = tied.iter().copied().filter(|&i| channel.others[i] == best).collect();
    if winners.len() == 1 {
        return Outcome { status: Status::TiedPass2, domain: Some(winners[0]), tied, rule: Rule::Channel };
    }
    Outcome { status: Status::TiedManual, domain: fallback, tied, rule: Rule::AlphabeticalFallback }
}

/// Mega-channel rule: strictly more than `threshold` PeerTube rows, or listed.
pub fn is_mega(channel: Option<&str>, rows: u64, threshold: u64, skip: &[String]) -> bool {
    match channel {
        None => false,
        Some(name) => rows > threshold || skip.iter().any(|s| s == name),
    }
}

/// Share of the top domain and its margin over the runner-up (for spot checks).
pub fn margin(counts: &Counts, domain: usize) -> (f64, u64) {
    let total = total(counts);
    let own = counts[domain];
    let runner_up = (0..COUNT).filter(|&i| i != domain).map(|i| counts[i]).max().unwrap_or(0);
    let share = if total == 0 { 0.0 } else { own as f64 / total as f64 };
    (share, own.saturating_sub(runner_up))
}

/// Counts from `(category id, count)` pairs: tests read best in PeerTube ids.
#[cfg(test)]
pub(crate) fn counts_by_id(pairs: &[(u16, u64)]) -> Counts {
    let mut out = [0u64; COUNT];
    for &(id, n) in pairs {
        out[usize::from(id - 100)] = n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::counts_by_id as c;
    const NO_CHANNEL: Counts = [0; COUNT];

    #[test]
    fn pass1_paths() {
        assert_eq!(pass1(None).status, Status::NeedsReprocess);
        assert_eq!(pass1(Some(&c(&[]))).status, Status::NeedsReprocess);
        let won = pass1(Some(&c(&[(105, 3), (106, 2)])));
        assert_eq!((won.status, won.domain), (Status::Assigned, Some(5)));
        let tie = pass1(Some(&c(&[(105, 3), (106, 3), (100, 1)])));
        assert_eq!((tie.status, tie.domain, tie.tied.clone()), (Status::TiedPass1, None, vec![5, 6]));
    }

    #[test]
    fn tiebreak_recount_can_settle_or_empty() {
        let ch = ChannelView { mega: false, others: &NO_CHANNEL };
        assert_eq!(tiebreak(None, ch).status, Status::NeedsReprocess);
        let t = tiebreak(Some(&c(&[(110, 2)])), ch);
        assert_eq!((t.status, t.domain), (Status::Assigned, Some(10)));
    }

    #[test]
    fn mega_channel_takes_alphabetical_first_of_all_tied() {
        // Tools & Equipment (114) vs Medical (106) vs Logistics (105): Logistics first.
        let doc = c(&[(114, 2), (106, 2), (105, 2)]);
        let others = c(&[(114, 50)]);
        let t = tiebreak(Some(&doc), ChannelView { mega: true, others: &others });
        assert_eq!((t.status, t.domain, t.rule), (Status::TiedManual, Some(5), Rule::MegaChannel));
    }

    #[test]
    fn channel_decides_among_tied_only() {
        let doc = c(&[(114, 2), (106, 2)]);
        // The channel's biggest domain (100) is not tied: it must not win.
        let others = c(&[(100, 99), (114, 5), (106, 4)]);
        let t = tiebreak(Some(&doc), ChannelView { mega: false, others: &others });
        assert_eq!((t.status, t.domain, t.rule), (Status::TiedPass2, Some(14), Rule::Channel));
    }

    #[test]
    fn channel_tie_falls_back_to_first_of_all_tied_domains() {
        // Tied: Vehicles(115), Security(111), Agriculture(100). Channel ties 115 and 111,
        // Agriculture lost at channel level but is still the alphabetical fallback.
        let doc = c(&[(115, 1), (111, 1), (100, 1)]);
        let others = c(&[(115, 7), (111, 7), (100, 0)]);
        let t = tiebreak(Some(&doc), ChannelView { mega: false, others: &others });
        assert_eq!((t.status, t.domain, t.rule), (Status::TiedManual, Some(0), Rule::AlphabeticalFallback));
    }

    #[test]
    fn mega_threshold_is_strict() {
        let skip = vec!["Transcript".to_string()];
        assert!(!is_mega(Some("A"), 500, 500, &skip));
        assert!(is_mega(Some("A"), 501, 500, &skip));
        assert!(is_mega(Some("Transcript"), 3, 500, &skip));
        assert!(!is_mega(None, 10_000, 500, &skip));
    }

    #[test]
    fn qdrant_source_empty_is_no_concepts_and_failure_needs_reprocess() {
        assert_eq!(pass1_as(Some(&c(&[])), Status::NoConcepts).status, Status::NoConcepts);
        assert_eq!(pass1_as(None, Status::NoConcepts).status, Status::NeedsReprocess);
        let ch = ChannelView { mega: false, others: &NO_CHANNEL };
        assert_eq!(tiebreak_as(Some(&c(&[])), ch, Status::NoConcepts).status, Status::NoConcepts);
        assert!(!Status::NoConcepts.is_categorized());
    }

    #[test]
    fn status_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("Assigned"), None);
    }

    #[test]
    fn status_serializes_as_the_database_spells_it() {
        for s in Status::ALL {
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::Value::from(s.as_str())));
        }
    }

    #[test]
    fn counts_past_u32_decide_exactly() {
        // Past u32::MAX nothing wraps or saturates: the winner is the larger count.
        let big = u64::from(u32::MAX);
        let won = pass1(Some(&c(&[(105, big + 2), (106, big + 1)])));
        assert_eq!((won.status, won.domain), (Status::Assigned, Some(5)));
        let tie = pass1(Some(&c(&[(105, big + 1), (106, big + 1)])));
        assert_eq!(tie.tied, vec![5, 6]);
        let others = c(&[(105, u64::MAX), (106, u64::MAX - 1)]);
        let t = tiebreak(Some(&c(&[(105, 1), (106, 1)])), ChannelView { mega: false, others: &others });
        assert_eq!((t.status, t.domain), (Status::TiedPass2, Some(5)));
        let (share, m) = margin(&c(&[(105, u64::MAX), (106, u64::MAX)]), 5);
        assert_eq!(m, 0);
        assert!(share > 0.0 && share <= 1.0);
    }

    #[test]
    fn margin_and_share() {
        let counts = c(&[(105, 6), (106, 2), (100, 2)]);
        let (share, m) = margin(&counts, 5);
        assert!((share - 0.6).abs() < 1e-9);
        assert_eq!(m, 4);
    }
}
