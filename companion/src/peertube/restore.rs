//! Rolling PeerTube back: puts each journaled video's previous category back through the transport the run used (unless told otherwise), only where PeerTube still holds what the run wrote (unless forced); pending entries of a killed run are resolved from PeerTube's current value.

use crate::config::{Config, Transport};
use crate::error::{Error, Result};
use crate::journal::rollback::{VideoRestore, VideoRestorer};
use crate::journal::Entry;
use crate::peertube::api::{ApiClient, ApiError};
use crate::peertube::db::PgVideos;
use crate::peertube::ledger::category_of;
use crate::peertube::video_id::VideoUuid;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// One video's rollback: the category before the run and the one it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub video: VideoUuid,
    pub before: Option<i64>,
    pub wrote: Option<i64>,
}

/// Per video, the earliest "before" and the latest "wrote" of a run's entries.
pub fn wants(entries: &[Entry], restore: &mut VideoRestore) -> Vec<Want> {
    let mut order = Vec::new();
    let mut by: HashMap<VideoUuid, Want> = HashMap::new();
    for e in entries {
        let Some(video) = VideoUuid::parse(&e.key) else {
            restore.failed.push(format!("journal entry {}: {:?} is not a video uuid", e.id, e.key));
            continue;
        };
        let (before, wrote) = (category_of(&e.old), category_of(&e.new));
        match by.get_mut(&video) {
            Some(w) => w.wrote = wrote,
            None => {
                order.push(video.clone());
                by.insert(video.clone(), Want { video, before, wrote });
            }
        }
    }
    order.into_iter().filter_map(|v| by.remove(&v)).filter(|w| w.before != w.wrote).collect()
}

/// What to do with one video given its current category (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Restore,
    AlreadyBefore,
    Conflict(String),
}

pub fn decide(w: &Want, current: Option<i64>) -> Decision {
    let show = |c: Option<i64>| c.map(|c| c.to_string()).unwrap_or_else(|| "none".into());
    if current == w.wrote {
        Decision::Restore
    } else if current == w.before {
        Decision::AlreadyBefore
    } else {
        Decision::Conflict(format!("video {}: the run wrote {} but PeerTube now holds {} (changed since)", w.video, show(w.wrote), show(current)))
    }
}

pub struct Restorer {
    cfg: Config,
    transport: Transport,
    rt: tokio::runtime::Runtime,
}

impl Restorer {
    pub fn new(cfg: &Config, transport: Transport) -> Result<Restorer> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| Error::Other(format!("tokio runtime: {e}")))?;
        Ok(Restorer { cfg: cfg.clone(), transport, rt })
    }
}

impl VideoRestorer for Restorer {
    fn restore(&mut self, entries: &[Entry], force: bool, dry_run: bool) -> Result<VideoRestore> {
        let (cfg, transport) = (self.cfg.clone(), self.transport);
        self.rt.block_on(async move {
            let mut out = VideoRestore::default();
            let wants = wants(entries, &mut out);
            if wants.is_empty() {
                return Ok(out);
            }
            match transport {
                Transport::Db => restore_db(&cfg, wants, force, dry_run, &mut out).await?,
                Transport::Api => restore_api(&cfg, wants, force, dry_run, &mut out).await?,
            }
            Ok(out)
        })
    }
}

async fn restore_db(cfg: &Config, wants: Vec<Want>, force: bool, dry_run: bool, out: &mut VideoRestore) -> Result<()> {
    let mut pg = PgVideos::connect(cfg).await?;
    for chunk in wants.chunks(cfg.peertube.batch_size.max(1)) {
        let ids: Vec<&VideoUuid> = chunk.iter().map(|w| &w.video).collect();
        let current = pg.current(&ids).await?;
        let mut rows = Vec::new();
        for w in chunk {
            let Some(row) = current.get(&w.video) else {
                out.failed.push(format!("video {}: no longer in PeerTube's database", w.video));
                continue;
            };
            let cur = row.category.map(i64::from);
            match decide(w, cur) {
                Decision::AlreadyBefore => {}
                Decision::Restore => rows.push((w, cur)),
                Decision::Conflict(msg) => {
                    out.conflicts.push(msg);
                    if force {
                        rows.push((w, cur));
                    }
                }
            }
        }
        if dry_run {
            out.restored += rows.len() as u64;
            continue;
        }
        let cas: Vec<(VideoUuid, Option<i32>, Option<i32>)> =
            rows.iter().map(|(w, cur)| (w.video.clone(), cur.and_then(|c| i32::try_from(c).ok()), w.before.and_then(|c| i32::try_from(c).ok()))).collect();
        let written = pg.compare_and_set(&cas).await?;
        for (w, cur) in rows {
            if written.contains(&w.video) {
                out.restored += 1;
                out.changes.push((w.video.to_string(), json!({"category": cur, "transport": "db"}), json!({"category": w.before, "transport": "db"})));
            } else {
                out.failed.push(format!("video {}: changed in PeerTube while rolling back (or remote); not overwritten", w.video));
            }
        }
    }
    Ok(())
}

/// One video's api rollback: (want, current, decision, written) or the error.
type ApiRestoreResult = std::result::Result<(Want, Option<i64>, Decision, bool), (Want, ApiError)>;

async fn restore_api(cfg: &Config, wants: Vec<Want>, force: bool, dry_run: bool, out: &mut VideoRestore) -> Result<()> {
    let client = Arc::new(ApiClient::from_config(cfg)?);
    client.ensure_login().await.map_err(Error::from)?;
    let sem = Arc::new(tokio::sync::Semaphore::new(cfg.peertube.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for w in wants {
        let permit = sem.clone().acquire_owned().await.map_err(|e| Error::Other(e.to_string()))?;
        let c = client.clone();
        set.spawn(async move {
            let r: ApiRestoreResult = async {
                let cur = match c.video_category(&w.video).await {
                    Ok(cur) => cur,
                    Err(e) => return Err((w, e)),
                };
                let d = decide(&w, cur);
                let write = !dry_run && (d == Decision::Restore || (force && matches!(d, Decision::Conflict(_))));
                if write {
                    if let Err(e) = c.set_category(&w.video, w.before).await {
                        return Err((w, e));
                    }
                }
                Ok((w, cur, d, write))
            }
            .await;
            drop(permit);
            r
        });
    }
    while let Some(res) = set.join_next().await {
        match res.map_err(|e| Error::Other(format!("rollback task: {e}")))? {
            Ok((w, cur, d, wrote)) => {
                if let Decision::Conflict(msg) = &d {
                    out.conflicts.push(msg.clone());
                }
                let counts = wrote || (dry_run && (d == Decision::Restore || (force && matches!(d, Decision::Conflict(_)))));
                if counts {
                    out.restored += 1;
                }
                if wrote {
                    out.changes.push((w.video.to_string(), json!({"category": cur, "transport": "api"}), json!({"category": w.before, "transport": "api"})));
                }
            }
            Err((w, e)) => out.failed.push(format!("video {}: {e}", w.video)),
        }
    }
    Ok(())
}

/// The restorer a rollback hands to `engine::rollback` for PeerTube's side.
pub fn restorer(cfg: &Config, transport: Transport) -> Result<Option<Box<dyn VideoRestorer>>> {
    Ok(Some(Box::new(Restorer::new(cfg, transport)?)))
}

/// The transport a run wrote PeerTube through: push runs record it in their
/// arguments (`{"transport": "db"}`), and every video entry records it in its
/// values; `None` when the run wrote no video.
pub fn run_transport(conn: &rusqlite::Connection, run_id: &str) -> Result<Option<Transport>> {
    let run = crate::journal::get_run(conn, run_id)?;
    if let Some(t) = run.args.get("transport").and_then(serde_json::Value::as_str).and_then(|t| t.parse().ok()) {
        return Ok(Some(t));
    }
    let mut seen = None;
    // Videos only: a run's rows of recon.db (220,000 after a large backfill) are not read.
    for e in crate::journal::entries_except_rows(conn, run_id)?.iter().filter(|e| e.kind == crate::journal::Kind::Video) {
        let t = e.new.get("transport").or_else(|| e.old.get("transport")).and_then(serde_json::Value::as_str).and_then(|t| t.parse::<Transport>().ok());
        match (seen, t) {
            // A run that used both restores through the API, which checks everything.
            (Some(a), Some(b)) if a != b => return Ok(Some(Transport::Api)),
            (None, Some(b)) => seen = Some(b),
            _ => {}
        }
    }
    Ok(seen)
}

/// The restorer for rolling back `run_id`: through `explicit` when given
/// (`--via`), else the transport the run used, else the config's default.
pub fn restorer_for_run(cfg: &Config, conn: &rusqlite::Connection, run_id: &str, explicit: Option<Transport>) -> Result<Option<Box<dyn VideoRestorer>>> {
    let transport = match explicit {
        Some(t) => t,
        None => run_transport(conn, run_id)?.unwrap_or(cfg.peertube.transport),
    };
    restorer(cfg, transport)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{EntryState, Kind};

    fn entry(id: i64, key: &str, old: Option<i64>, new: Option<i64>) -> Entry {
        Entry {
            id,
            run_id: "r".into(),
            kind: Kind::Video,
            key: key.into(),
            old: json!({ "category": old }),
            new: json!({ "category": new }),
            state: EntryState::Applied,
            at: String::new(),
            note: None,
        }
    }

    #[test]
    fn earliest_before_latest_wrote_and_noops_dropped() {
        let a = "9c9de5e8-0a1e-484a-b099-e80766180a6d";
        let b = "00000000-0000-0000-0000-000000000001";
        let mut r = VideoRestore::default();
        let w = wants(
            &[entry(1, a, Some(3), Some(105)), entry(2, a, Some(105), Some(106)), entry(3, b, Some(7), Some(7)), entry(4, "junk", None, Some(1))],
            &mut r,
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].before, Some(3));
        assert_eq!(w[0].wrote, Some(106));
        assert_eq!(r.failed.len(), 1);
    }

    #[test]
    fn decisions() {
        let w = Want { video: VideoUuid::parse("9c9de5e8-0a1e-484a-b099-e80766180a6d").unwrap(), before: None, wrote: Some(105) };
        assert_eq!(decide(&w, Some(105)), Decision::Restore);
        assert_eq!(decide(&w, None), Decision::AlreadyBefore);
        assert!(matches!(decide(&w, Some(110)), Decision::Conflict(m) if m.contains("110")));
    }
}
