//! Telling a person's change in PeerTube from drift (pure): what PeerTube holds, what we last wrote there (the journal), whether a person was seen making it (the plugin's log), and what to do about it — adopt a RECON domain, or record an override.

use serde::Serialize;

/// Why a pushed document's video is not what recon.db expects, when it is ours to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// recon.db says pushed; PeerTube has no such local video (deleted, replaced, remote).
    MissingInPeertube,
    /// PeerTube holds another category, and no person was seen setting it.
    DifferentCategory,
    /// recon.db says pushed; PeerTube's category is empty, and no person was seen clearing it.
    PushedButEmpty,
    /// Our last write to the video is still pending or failed.
    PushFailed,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::MissingInPeertube => "video missing in PeerTube",
            DriftKind::DifferentCategory => "different category",
            DriftKind::PushedButEmpty => "pushed but empty",
            DriftKind::PushFailed => "push failed",
        }
    }
    pub const ALL: [DriftKind; 4] = [DriftKind::MissingInPeertube, DriftKind::DifferentCategory, DriftKind::PushedButEmpty, DriftKind::PushFailed];
}

/// One video as PeerTube shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerTubeSide {
    /// No such video (deleted or replaced by a re-upload with a new uuid).
    Missing,
    /// Another instance's video.
    Remote,
    /// A local video and its category.
    Local(Option<i64>),
}

/// State of our newest journal entry for a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteState {
    Applied,
    Pending,
    Failed,
}

/// Our newest write of a video's category, from the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastWrite {
    pub category: Option<i64>,
    pub state: WriteState,
}

/// A change the plugin saw a person (not our account) make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seen {
    pub category: Option<i64>,
    pub user: Option<String>,
    pub at: Option<String>,
}

/// What a pushed document's video is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    InSync,
    /// A person's earlier choice is recorded as an override: left alone.
    Overridden,
    /// A person set this category (or cleared it): theirs, not drift.
    Person {
        to: Option<i64>,
    },
    /// Ours to fix (`reconcile --repair`, except a missing video).
    Drift(DriftKind),
}

/// Classifies one pushed document whose expected category is `expected`.
///
/// A person's change is a PeerTube value that differs from our last applied
/// write (no pending or failed write of ours after it) on a local video, or a
/// value the plugin saw a person set. A value equal to our last write but not
/// to recon.db's domain is ours (the domain changed since the push): drift.
pub fn classify(expected: i64, overridden: bool, pt: PeerTubeSide, last: Option<LastWrite>, seen: Option<&Seen>) -> Verdict {
    if overridden {
        return Verdict::Overridden;
    }
    let current = match pt {
        PeerTubeSide::Missing | PeerTubeSide::Remote => return Verdict::Drift(DriftKind::MissingInPeertube),
        PeerTubeSide::Local(c) => c,
    };
    if current == Some(expected) {
        return Verdict::InSync;
    }
    let ours_pending = last.is_some_and(|l| l.state != WriteState::Applied);
    // A person saving the value we wrote (the edit form sends the category with
    // every other change) has not chosen against us.
    let ours_now = last.is_some_and(|l| l.state == WriteState::Applied && l.category == current);
    if !ours_pending && !ours_now && seen.is_some_and(|s| s.category == current) {
        return Verdict::Person { to: current };
    }
    match last {
        Some(LastWrite { category, state: WriteState::Applied }) if category != current => Verdict::Person { to: current },
        Some(LastWrite { state: WriteState::Pending | WriteState::Failed, .. }) => Verdict::Drift(DriftKind::PushFailed),
        _ if current.is_none() => Verdict::Drift(DriftKind::PushedButEmpty),
        _ => Verdict::Drift(DriftKind::DifferentCategory),
    }
}

/// The category a person chose that writing `category` over PeerTube's
/// `current` would overwrite: `Some(to)` where [`classify`] calls the value a
/// person's — before our first write too, when the plugin saw them set it. A
/// push leaves those videos to the adopt step.
pub fn persons_choice(category: i64, current: Option<i64>, last: Option<LastWrite>, seen: Option<&Seen>) -> Option<Option<i64>> {
    match classify(category, false, PeerTubeSide::Local(current), last, seen) {
        Verdict::Person { to } => Some(to),
        _ => None,
    }
}

/// What taking a person's change does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// One of our 18: the document becomes `manual_assigned` with this domain.
    Adopt { domain: String },
    /// A built-in category or none: the video is overridden, pushes leave it alone.
    Override,
}

/// The action for a person's new category (pure).
pub fn action_for(to: Option<i64>) -> Action {
    match to.and_then(|c| u16::try_from(c).ok()).and_then(shared_constants::by_id) {
        Some(d) => Action::Adopt { domain: d.label.to_string() },
        None => Action::Override,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPLIED_105: Option<LastWrite> = Some(LastWrite { category: Some(105), state: WriteState::Applied });

    #[test]
    fn a_person_changes_what_we_wrote() {
        let local = PeerTubeSide::Local;
        assert_eq!(classify(105, false, local(Some(105)), APPLIED_105, None), Verdict::InSync);
        assert_eq!(classify(105, false, local(Some(110)), APPLIED_105, None), Verdict::Person { to: Some(110) });
        assert_eq!(classify(105, false, local(Some(3)), APPLIED_105, None), Verdict::Person { to: Some(3) });
        assert_eq!(classify(105, false, local(None), APPLIED_105, None), Verdict::Person { to: None });
        // Recorded as an override earlier: whatever PeerTube holds, left alone.
        assert_eq!(classify(105, true, local(Some(3)), APPLIED_105, None), Verdict::Overridden);
        assert_eq!(classify(105, true, PeerTubeSide::Missing, APPLIED_105, None), Verdict::Overridden);
    }

    #[test]
    fn real_drift_stays_drift() {
        let local = PeerTubeSide::Local;
        assert_eq!(classify(105, false, PeerTubeSide::Missing, APPLIED_105, None), Verdict::Drift(DriftKind::MissingInPeertube));
        assert_eq!(classify(105, false, PeerTubeSide::Remote, APPLIED_105, None), Verdict::Drift(DriftKind::MissingInPeertube));
        // Our write is pending or failed: not a person's.
        for state in [WriteState::Pending, WriteState::Failed] {
            let last = Some(LastWrite { category: Some(105), state });
            assert_eq!(classify(105, false, local(Some(110)), last, None), Verdict::Drift(DriftKind::PushFailed));
        }
        // PeerTube holds our last write, but recon.db's domain changed since: ours to push.
        let last = Some(LastWrite { category: Some(110), state: WriteState::Applied });
        assert_eq!(classify(105, false, local(Some(110)), last, None), Verdict::Drift(DriftKind::DifferentCategory));
        // No journal entry of ours and nobody seen: unknown origin, drift as before.
        assert_eq!(classify(105, false, local(Some(110)), None, None), Verdict::Drift(DriftKind::DifferentCategory));
        assert_eq!(classify(105, false, local(None), None, None), Verdict::Drift(DriftKind::PushedButEmpty));
    }

    #[test]
    fn the_plugin_names_the_person() {
        let seen = Seen { category: Some(110), user: Some("moderator".into()), at: Some("2026-12-02T05:00:00Z".into()) };
        // Without a journal entry of ours, the plugin's record is what tells.
        assert_eq!(classify(105, false, PeerTubeSide::Local(Some(110)), None, Some(&seen)), Verdict::Person { to: Some(110) });
        // The plugin saw another value than PeerTube holds now: it tells nothing about this one.
        assert_eq!(classify(105, false, PeerTubeSide::Local(Some(111)), None, Some(&seen)), Verdict::Drift(DriftKind::DifferentCategory));
        // A write of ours still pending wins over an older record.
        let pending = Some(LastWrite { category: Some(105), state: WriteState::Pending });
        assert_eq!(classify(105, false, PeerTubeSide::Local(Some(110)), pending, Some(&seen)), Verdict::Drift(DriftKind::PushFailed));
    }

    #[test]
    fn a_push_leaves_a_persons_choice_alone_before_and_after_our_first_write() {
        let seen = |c: Option<i64>| Seen { category: c, user: Some("moderator".into()), at: Some("2026-12-03T05:00:00Z".into()) };
        // Never written by us: the plugin's record is what tells, whatever the person chose.
        assert_eq!(persons_choice(105, Some(110), None, Some(&seen(Some(110)))), Some(Some(110)));
        assert_eq!(persons_choice(105, Some(3), None, Some(&seen(Some(3)))), Some(Some(3)));
        assert_eq!(persons_choice(105, None, None, Some(&seen(None))), Some(None));
        // The uploader's category nobody touched since the plugin came: ours to replace.
        assert_eq!(persons_choice(105, Some(3), None, None), None);
        assert_eq!(persons_choice(105, Some(3), None, Some(&seen(Some(4)))), None, "the record is of another value");
        // Already what we would write: nothing to protect.
        assert_eq!(persons_choice(105, Some(105), None, Some(&seen(Some(105)))), None);
        // Written by us before (the domain changed since): a different value is a person's.
        assert_eq!(persons_choice(107, Some(110), APPLIED_105, None), Some(Some(110)));
        // Still our earlier write, even where a person saved the form with it unchanged.
        assert_eq!(persons_choice(107, Some(105), APPLIED_105, None), None);
        assert_eq!(persons_choice(107, Some(105), APPLIED_105, Some(&seen(Some(105)))), None);
        // Our own interrupted write: ours to finish.
        let pending = Some(LastWrite { category: Some(107), state: WriteState::Pending });
        assert_eq!(persons_choice(107, Some(110), pending, Some(&seen(Some(110)))), None);
    }

    #[test]
    fn actions() {
        assert_eq!(action_for(Some(110)), Action::Adopt { domain: "Preservation & Storage".into() });
        assert_eq!(action_for(Some(100)), Action::Adopt { domain: "Agriculture & Livestock".into() });
        assert_eq!(action_for(Some(117)), Action::Adopt { domain: "Wilderness Skills".into() });
        assert_eq!(action_for(Some(3)), Action::Override);
        assert_eq!(action_for(Some(118)), Action::Override);
        assert_eq!(action_for(None), Action::Override);
    }
}
