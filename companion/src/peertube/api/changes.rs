//! The plugin's log of category changes people made (`GET /plugins/recon-domains/router/changes`, authenticated): who set which category on which video, and when.

use super::{classify, ApiClient, ApiError};
use crate::peertube::video_id::VideoUuid;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::collections::HashMap;

/// Route of the plugin's change log (plugin-js/main.js registers `/changes` on its router).
pub const CHANGES_ROUTE: &str = "/plugins/recon-domains/router/changes";

/// One change the plugin's `action:api.video.updated` hook recorded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PeopleChange {
    pub video: String,
    pub category: Option<i64>,
    pub user: Option<String>,
    pub at: Option<String>,
}

impl PeopleChange {
    /// The change as the people rules take it.
    pub fn seen(&self) -> crate::peertube::people::Seen {
        crate::peertube::people::Seen { category: self.category, user: self.user.clone(), at: self.at.clone() }
    }
}

impl ApiClient {
    /// Changes made by accounts other than `ours` (the plugin leaves that one
    /// out, and so does this call); `None` when the plugin has no such route
    /// (not installed, or a version without the hook).
    pub async fn people_changes(&self, ours: &str) -> std::result::Result<Option<Vec<PeopleChange>>, ApiError> {
        let path = format!("{CHANGES_ROUTE}?exclude={}", form_escape(ours));
        let (status, body) = self.authed(Method::GET, &path, None).await?;
        match status {
            s if s.is_success() => {
                #[derive(Deserialize)]
                struct Answer {
                    changes: Vec<PeopleChange>,
                }
                let a: Answer = serde_json::from_slice(&body).map_err(|e| ApiError::Other(format!("GET {CHANGES_ROUTE}: {e}")))?;
                Ok(Some(a.changes.into_iter().filter(|c| c.user.as_deref() != Some(ours)).collect()))
            }
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(classify(s, &format!("GET {CHANGES_ROUTE}"), &body)),
        }
    }

    /// The newest change per video by accounts other than `ours`, or `None`
    /// when the plugin keeps no log or it cannot be read (logged, saying what
    /// the caller does `instead`): callers go on without it.
    pub async fn latest_people_changes(&self, ours: &str, instead: &str) -> Option<HashMap<VideoUuid, PeopleChange>> {
        match self.people_changes(ours).await {
            Ok(Some(changes)) => Some(latest_per_video(changes)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the plugin's change log; {instead}");
                None
            }
        }
    }
}

/// The newest change per video (the log is in time order).
pub fn latest_per_video(changes: Vec<PeopleChange>) -> HashMap<VideoUuid, PeopleChange> {
    let mut out = HashMap::new();
    for c in changes {
        if let Some(v) = VideoUuid::parse(&c.video) {
            out.insert(v, c);
        }
    }
    out
}

/// The plugin's change log as read: the newest change per video.
pub type ChangeLog = HashMap<VideoUuid, PeopleChange>;

/// Videos whose newest change in `now` is not the one `before` showed: changed by people since.
pub fn changed_since(before: &ChangeLog, now: &ChangeLog) -> Vec<VideoUuid> {
    now.iter().filter(|(v, c)| before.get(*v) != Some(*c)).map(|(v, _)| v.clone()).collect()
}

/// Percent-escapes a query value (account names are short ASCII, but any byte is escaped safely).
fn form_escape(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_change_wins_and_names_are_escaped() {
        let v = "9c9de5e8-0a1e-484a-b099-e80766180a6d";
        let ch = |c: Option<i64>| PeopleChange { video: v.into(), category: c, user: Some("mod".into()), at: None };
        let m = latest_per_video(vec![ch(Some(3)), ch(None), PeopleChange { video: "junk".into(), category: None, user: None, at: None }]);
        assert_eq!(m.len(), 1);
        assert_eq!(m.values().next().map(|c| c.category), Some(None));
        assert_eq!(form_escape("root user&x"), "root%20user%26x");
    }

    #[test]
    fn only_videos_whose_newest_change_differs_are_read_again() {
        let (a, b, c) = ("9c9de5e8-0a1e-484a-b099-e80766180a6d", "1c9de5e8-0a1e-484a-b099-e80766180a6d", "2c9de5e8-0a1e-484a-b099-e80766180a6d");
        let ch = |v: &str, cat: i64, at: &str| PeopleChange { video: v.into(), category: Some(cat), user: Some("mod".into()), at: Some(at.into()) };
        let before = latest_per_video(vec![ch(a, 3, "t1"), ch(b, 4, "t1")]);
        // b set again (same category, later), c new, a untouched.
        let now = latest_per_video(vec![ch(a, 3, "t1"), ch(b, 4, "t1"), ch(b, 4, "t2"), ch(c, 5, "t2")]);
        let mut changed: Vec<String> = changed_since(&before, &now).iter().map(|v| v.to_string()).collect();
        changed.sort();
        assert_eq!(changed, vec![b.to_string(), c.to_string()]);
        assert!(changed_since(&now, &now).is_empty());
    }
}
