//! Before a write: whether PeerTube's value is a person's choice — the plugin saw them set it, or it is not what we last wrote — so a push leaves the video to the adopt step instead of overwriting it.

use super::Job;
use crate::config::Config;
use crate::peertube::api::{changed_since, ApiClient, ChangeLog, PeopleChange};
use crate::peertube::people::{self, LastWrite};
use crate::peertube::video_id::VideoUuid;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Our last writes (the journal at the run's start) and the plugin's log
/// (read again when older than `max_age`). Cheap to clone into write tasks.
#[derive(Clone)]
pub(super) struct Guard {
    last: Arc<HashMap<String, LastWrite>>,
    log: Option<Arc<ChangeLog>>,
    read: Instant,
    max_age: Duration,
}

/// The plugin's change log now, or `None` when it keeps none (or cannot be read).
async fn change_log(cfg: &Config, client: &ApiClient) -> Option<ChangeLog> {
    client.latest_people_changes(&cfg.peertube.username, "a person's change before our first write is not told from the uploader's category").await
}

impl Guard {
    /// `last`: our last writes of the run's videos (`ledger::last_writes_of`).
    pub async fn open(cfg: &Config, client: &ApiClient, last: HashMap<String, LastWrite>) -> Guard {
        let log = change_log(cfg, client).await.map(Arc::new);
        Guard { last: Arc::new(last), log, read: Instant::now(), max_age: Duration::from_secs(cfg.peertube.snapshot_max_age_secs.max(1)) }
    }

    /// Reads the log again now; the videos people changed since the last read,
    /// or `None` when there is no log to read.
    pub async fn refresh(&mut self, cfg: &Config, client: &ApiClient) -> Option<Vec<VideoUuid>> {
        let before = self.log.clone()?;
        let now = change_log(cfg, client).await?;
        let changed = changed_since(&before, &now);
        self.log = Some(Arc::new(now));
        self.read = Instant::now();
        Some(changed)
    }

    /// Reads the log again when it is older than the snapshot age (a long
    /// push sees a person's change made while it runs).
    pub async fn refresh_if_old(&mut self, cfg: &Config, client: &ApiClient) {
        if self.log.is_some() && self.read.elapsed() > self.max_age {
            self.refresh(cfg, client).await;
        }
    }

    /// The person's choice that writing `j` over `current` would overwrite
    /// (see [`people::persons_choice`]); `written_now`: this run already
    /// journaled a write of the video (a repeat), so its value is ours.
    pub fn persons_choice(&self, j: &Job, current: Option<i64>, written_now: bool) -> Option<Option<i64>> {
        if written_now || current == Some(j.category) {
            return None;
        }
        let seen = self.log.as_ref().and_then(|l| l.get(&j.video)).map(PeopleChange::seen);
        people::persons_choice(j.category, current, self.last.get(j.video.as_str()).copied(), seen.as_ref())
    }

    /// The summary's entry for a video left to people: its hash, and what PeerTube holds and who set it.
    pub fn left(&self, j: &Job, to: Option<i64>) -> (String, String) {
        let holds = to.map_or_else(|| "no category".to_string(), |c| format!("category {c}"));
        let who = match self.log.as_ref().and_then(|l| l.get(&j.video)) {
            Some(PeopleChange { user: Some(u), at: Some(at), .. }) => format!("set by {u} at {at}"),
            Some(PeopleChange { user: Some(u), .. }) => format!("set by {u}"),
            _ => "not what we last wrote".to_string(),
        };
        (j.doc.hash.clone(), format!("{} (doc {}): PeerTube holds {holds}, {who}", j.video, j.doc.hash))
    }
}
