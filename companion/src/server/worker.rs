//! The background worker: every poll interval it assigns what RECON finished
//! since (pass 1), runs the tiebreaker on its schedule, and pushes what it owes
//! PeerTube — new clear winners at once, failures again after a backoff —
//! unless the kill switch is on. Each step takes the writer lock for a short
//! while and the tick is skipped when a CLI run holds it.

use crate::assign::{self, Status};
use crate::engine;
use crate::error::{Error, Result};
use crate::journal::run::Run;
use crate::recon::db as recondb;
use crate::server::pause;
use crate::server::queries;
use crate::server::state::{AppState, PEERTUBE_CHECK_EVERY};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Documents assigned per tick at most (one run; written in short transactions).
pub const ASSIGN_PER_TICK: u64 = 2000;
/// A tick that assigns more than this is a backfill, not RECON's trickle (the
/// service started before the runbook's backfill, or RECON caught up on a
/// batch): those assignments are not pushed automatically but left for the
/// staged `--push-pending --limit N` of the runbook.
pub const AUTO_PUSH_MAX: usize = 200;
/// Documents per push call: the kill switch is re-read between chunks.
pub const PUSH_CHUNK: usize = 20;

pub enum Msg {
    Kick,
    Stop,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    pub assigned: u64,
    pub by_status: BTreeMap<String, u64>,
    pub tiebroken: bool,
    pub pushed: u64,
    pub push_failed: u64,
    pub paused: bool,
    /// The writer lock's holder when the tick was skipped.
    pub skipped: Option<String>,
}

pub struct WorkerHandle {
    tx: mpsc::Sender<Msg>,
    join: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    pub fn stop(mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Starts the worker thread; it ticks at once, then every poll interval.
pub fn spawn(st: AppState) -> Result<WorkerHandle> {
    let (tx, rx) = mpsc::channel();
    *st.kick.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx.clone());
    st.worker.lock().unwrap_or_else(|p| p.into_inner()).started = true;
    let join = std::thread::Builder::new()
        .name("recon-worker".into())
        .spawn(move || run(st, rx))
        .map_err(|e| Error::Other(format!("starting the worker thread: {e}")))?;
    Ok(WorkerHandle { tx, join: Some(join) })
}

fn run(st: AppState, rx: mpsc::Receiver<Msg>) {
    let checking = Arc::new(AtomicBool::new(false));
    loop {
        maybe_check_peertube(&st, &checking);
        let started = Instant::now();
        let res = tick(&st);
        record(&st, &res, started);
        match rx.recv_timeout(st.poll_interval) {
            Ok(Msg::Kick) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}

fn record(st: &AppState, res: &Result<Tick>, started: Instant) {
    let mut w = st.worker.lock().unwrap_or_else(|p| p.into_inner());
    w.ticks += 1;
    w.last_tick = Some(Instant::now());
    w.last_tick_at = Some(recondb::now());
    match res {
        Ok(t) => {
            w.assigned_total += t.assigned;
            w.pushed_total += t.pushed;
            w.push_failed_total += t.push_failed;
            w.last_error = None;
            let result = if t.skipped.is_some() { "skipped" } else { "ok" };
            w.last_result = Some(match &t.skipped {
                Some(holder) => format!("skipped: writer lock held by {holder}"),
                None => "ok".into(),
            });
            st.metrics.count_tick(result);
            if t.assigned > 0 || t.pushed > 0 || t.push_failed > 0 {
                tracing::info!(
                    assigned = t.assigned,
                    pushed = t.pushed,
                    push_failed = t.push_failed,
                    paused = t.paused,
                    ms = started.elapsed().as_millis() as u64,
                    "worker tick"
                );
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "worker tick failed");
            w.last_error = Some(e.to_string());
            w.last_result = Some("error".into());
            st.metrics.count_tick("error");
        }
    }
}

/// Checks PeerTube on its own thread (it may take a timeout's worth) when due.
fn maybe_check_peertube(st: &AppState, checking: &Arc<AtomicBool>) {
    let due = st.peertube_check().at.is_none_or(|t| t.elapsed() >= PEERTUBE_CHECK_EVERY);
    if !due || checking.swap(true, Ordering::AcqRel) {
        return;
    }
    let st = st.clone();
    let flag = checking.clone();
    let spawned = std::thread::Builder::new().name("recon-peertube-check".into()).spawn(move || {
        check_peertube_now(&st);
        flag.store(false, Ordering::Release);
    });
    if spawned.is_err() {
        checking.store(false, Ordering::Release);
    }
}

/// Asks the pusher whether PeerTube is reachable and in parity; stores the answer for /readyz.
pub fn check_peertube_now(st: &AppState) {
    let r = st.pusher.check();
    let mut c = st.peertube.lock().unwrap_or_else(|p| p.into_inner());
    c.at = Some(Instant::now());
    c.checked_at = Some(recondb::now());
    match r {
        Ok(detail) => {
            c.ok = true;
            c.detail = detail;
        }
        Err(e) => {
            c.ok = false;
            c.detail = e.to_string();
        }
    }
    st.metrics.peertube_ready.set(i64::from(c.ok));
}

fn locked(e: &Error) -> Option<String> {
    match e {
        Error::Locked(who) => Some(who.clone()),
        _ => None,
    }
}

/// One pass of the worker. Public so tests can drive it without the thread.
pub fn tick(st: &AppState) -> Result<Tick> {
    let mut t = Tick::default();
    let env = &st.env;
    let conn = recondb::open_readonly(&env.recon_db)?;
    if !recondb::migration_state(&conn)?.ok() {
        let _gate = st.writer_gate();
        let mut w = recondb::open(&env.recon_db)?;
        match crate::journal::lock::WriterLock::acquire(&env.recon_db, "recon-companion serve (migration)") {
            Ok(_lock) => {
                recondb::ensure_migrated(&mut w)?;
            }
            Err(e) => match locked(&e) {
                Some(who) => {
                    t.skipped = Some(who);
                    return Ok(t);
                }
                None => return Err(e),
            },
        }
    }

    // 1. What RECON finished since the last tick.
    let news = queries::new_documents(&conn, &env.source, ASSIGN_PER_TICK)?;
    let mut wrote = false;
    if !news.is_empty() {
        let _gate = st.writer_gate();
        let mut w = recondb::open(&env.recon_db)?;
        let run = match Run::begin(env, &mut w, "worker-assign", json!({ "documents": news.len() })) {
            Ok(r) => r,
            Err(e) => {
                return match locked(&e) {
                    Some(who) => {
                        t.skipped = Some(who);
                        Ok(t)
                    }
                    None => Err(e),
                };
            }
        };
        // A source-wide failure (Qdrant down) ends the tick before any write;
        // the next tick selects the same documents again.
        let scans = match env.counts(&news, "worker") {
            Ok(c) => c.scans,
            Err(e) => {
                let _ = run.finish(env, &w, "failed", &json!({ "error": e.to_string() }));
                return Err(e);
            }
        };
        let no_counts = env.no_counts_status();
        let changes: Vec<(String, assign::Outcome)> =
            news.iter().zip(&scans).map(|(h, s)| (h.clone(), assign::pass1_as(s.dir_found.then_some(&s.totals), no_counts))).collect();
        drop(scans);
        for (_, o) in &changes {
            *t.by_status.entry(o.status.as_str().to_string()).or_default() += 1;
        }
        match queries::write_new_outcomes(&mut w, &run.id, &changes) {
            Ok((written, conflicts)) => {
                run.finish(
                    env,
                    &w,
                    "done",
                    &json!({ "selected": changes.len(), "written": written, "changed_concurrently": conflicts, "by_status": t.by_status }),
                )?;
                t.assigned = written;
            }
            Err(e) => {
                let _ = run.finish(env, &w, "failed", &json!({ "error": e.to_string() }));
                return Err(e);
            }
        }
        let winners: Vec<&String> = changes.iter().filter(|(_, o)| o.status == Status::Assigned).map(|(h, _)| h).collect();
        if winners.len() > AUTO_PUSH_MAX {
            tracing::warn!(
                assigned = winners.len(),
                max = AUTO_PUSH_MAX,
                "large batch assigned: not pushed automatically; push it in stages with `assign-categories --push-pending --limit N`"
            );
        } else {
            let now = chrono::Utc::now().timestamp();
            let mut q = st.retry.lock().unwrap_or_else(|p| p.into_inner());
            for h in winners {
                q.add(h, now);
            }
        }
        wrote = true;
    }

    // 2. The tiebreaker, on its schedule, only when something is tied.
    let due = st.worker_status().last_tiebreak.is_none_or(|t| t.elapsed() >= st.tiebreaker_interval);
    if due {
        if queries::count_status(&conn, Status::TiedPass1)? > 0 {
            let _gate = st.writer_gate();
            match engine::tiebreaker(env, None, false) {
                Ok(summary) => {
                    t.tiebroken = true;
                    wrote = true;
                    if let Some(run_id) = &summary.run_id {
                        let hashes = queries::pushable_from_run(&conn, run_id)?;
                        let now = chrono::Utc::now().timestamp();
                        let mut q = st.retry.lock().unwrap_or_else(|p| p.into_inner());
                        for h in hashes {
                            q.add(&h, now);
                        }
                    }
                }
                Err(e) => match locked(&e) {
                    Some(who) => {
                        t.skipped = Some(who);
                        return Ok(t);
                    }
                    None => return Err(e),
                },
            }
        }
        st.worker.lock().unwrap_or_else(|p| p.into_inner()).last_tiebreak = Some(Instant::now());
    }
    if wrote {
        st.snapshot.invalidate();
    }

    // 3. Pushes owed, unless the kill switch is on.
    let now = chrono::Utc::now().timestamp();
    let due = st.retry.lock().unwrap_or_else(|p| p.into_inner()).due(now);
    let paused = pause::is_paused(&conn)?;
    st.note_paused(paused);
    t.paused = paused;
    if !due.is_empty() && !paused {
        let mut changed = false;
        for chunk in due.chunks(PUSH_CHUNK) {
            // Re-read between chunks: the switch stops a long backlog at once.
            if pause::is_paused(&conn)? {
                t.paused = true;
                st.note_paused(true);
                break;
            }
            let mut pending = Vec::with_capacity(chunk.len());
            {
                let mut q = st.retry.lock().unwrap_or_else(|p| p.into_inner());
                for h in chunk {
                    if queries::push_pending(&conn, h)? {
                        pending.push(h.clone());
                    } else {
                        // Pushed meanwhile (CLI) or no longer assigned: nothing owed.
                        q.succeeded(h);
                        changed = true;
                    }
                }
            }
            if pending.is_empty() {
                continue;
            }
            let _gate = st.writer_gate();
            let results = match st.pusher.push(&pending) {
                Ok(r) => r,
                Err(e) => {
                    if let Some(who) = locked(&e) {
                        t.skipped = Some(who);
                        break;
                    }
                    tracing::warn!(error = %e, n = pending.len(), "push failed");
                    pending.iter().map(|h| crate::server::push_queue::PushResult::failed(h, e.to_string(), false)).collect()
                }
            };
            let now = chrono::Utc::now().timestamp();
            let mut q = st.retry.lock().unwrap_or_else(|p| p.into_inner());
            for r in results {
                changed = true;
                if r.ok {
                    t.pushed += 1;
                    q.succeeded(&r.hash);
                } else {
                    t.push_failed += 1;
                    q.failed(&r.hash, r.message.as_deref(), r.permanent, now);
                }
            }
        }
        st.metrics.count_push(true, t.pushed);
        st.metrics.count_push(false, t.push_failed);
        if changed {
            crate::server::ops::save_retry(st, &conn);
            st.snapshot.invalidate();
        }
    } else if wrote {
        // New entries were queued (maybe while paused): keep them across a restart.
        crate::server::ops::save_retry(st, &conn);
    }
    Ok(t)
}
