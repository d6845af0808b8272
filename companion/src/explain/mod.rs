//! `explain` and `spot-check`: read-only answers to "why this domain?", recomputed with the engine's own rules.

mod compute;
mod model;
mod render;
mod sources;
mod spot_check;
mod target;

pub use compute::{explain, staleness, TOP_CONTRIBUTORS};
pub use model::{
    Class, Contributor, Decided, DomainCount, Explanation, HistoryEntry, SkippedFile, SourceComparison, SourceRow, SourceSide, SpotCheck, SpotSummary,
    Staleness, Stored, TieDetail, Verdict, WindowCounts,
};
pub use render::{render_spot_text, render_text};
pub use spot_check::{spot_check, verdict, NARROW_MARGIN_MAX, NARROW_RULE, NARROW_SHARE_BELOW};
pub use target::{parse_target, resolve, Target};
