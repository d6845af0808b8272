//! The db transport: batches of compare-and-set writes straight into PeerTube's PostgreSQL.

use super::guard::Guard;
use super::{journal_pending, lock, record_already_set, refuse, unique_batches, Job, PushSummary};
use crate::config::Config;
use crate::error::Result;
use crate::peertube::api::ApiClient;
use crate::peertube::db::PgVideos;
use crate::peertube::ledger::{Intent, Ledger};
use crate::peertube::video_id::VideoUuid;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub(super) async fn push_db(
    cfg: &Config,
    batch_size: usize,
    client: &ApiClient,
    ledger: Arc<Mutex<Ledger>>,
    mut guard: Guard,
    jobs: Vec<Job>,
    s: &mut PushSummary,
) -> Result<()> {
    let mut pg = PgVideos::connect(cfg).await?;
    let pb = crate::support::progress::progress_bar(std::io::IsTerminal::is_terminal(&std::io::stderr()), jobs.len() as u64, "push");
    for batch in unique_batches(jobs, batch_size) {
        let uuids: Vec<&VideoUuid> = batch.iter().map(|j| &j.video).collect();
        let t = Instant::now();
        guard.refresh_if_old(cfg, client).await;
        let current = pg.current(&uuids).await?;
        s.phase("pg_read", t);
        let t = Instant::now();
        let mut already = Vec::new();
        let mut writes = Vec::new();
        // The journal lock is released before any await below.
        let ids = {
            let mut l = lock(&ledger);
            for j in &batch {
                match current.get(&j.video) {
                    None => refuse(s, &mut l, j, false)?,
                    Some(v) if v.remote => refuse(s, &mut l, j, true)?,
                    Some(v) if v.category.map(i64::from) == Some(j.category) => already.push(j.intent(Some(j.category))),
                    Some(v) => {
                        let cur = v.category.map(i64::from);
                        match guard.persons_choice(j, cur, l.wrote(&j.video)) {
                            Some(to) => s.left_to_people.push(guard.left(j, to)),
                            None => writes.push(j.intent(cur)),
                        }
                    }
                }
            }
            if !already.is_empty() {
                record_already_set(s, &mut l, &already)?;
            }
            journal_pending(&mut l, &writes)?
        };
        if !writes.is_empty() {
            s.phase("journal_pending", t);
            let t = Instant::now();
            let rows: Vec<(VideoUuid, Option<i32>, Option<i32>)> =
                writes.iter().map(|i| (i.video.clone(), i.old.and_then(|c| i32::try_from(c).ok()), i32::try_from(i.category).ok())).collect();
            // On an error here the entries stay pending: the transaction either
            // committed or not, and the next run reads PeerTube to tell.
            let written = pg.compare_and_set(&rows).await?;
            s.phase("pg_write", t);
            let t = Instant::now();
            let mut l = lock(&ledger);
            let done: Vec<(i64, &Intent)> = ids.iter().copied().zip(writes.iter()).filter(|(_, i)| written.contains(&i.video)).collect();
            for m in l.applied(&done)? {
                s.mark(m);
            }
            s.pushed += done.len() as u64;
            let lost: Vec<(i64, String)> = ids
                .iter()
                .copied()
                .zip(writes.iter())
                .filter(|(_, i)| !written.contains(&i.video))
                .map(|(id, i)| {
                    s.changed_in_peertube += 1;
                    s.note_failure(format!("{} (doc {}): changed in PeerTube between read and write; left alone", i.video, i.hash));
                    (id, "compare-and-set lost: the video's category changed in PeerTube meanwhile; not overwritten".to_string())
                })
                .collect();
            l.failed(&lost)?;
            s.phase("journal_confirm", t);
        }
        pb.inc(batch.len() as u64);
    }
    pb.finish_and_clear();
    Ok(())
}
