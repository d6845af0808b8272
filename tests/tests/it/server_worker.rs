//! The service's worker: a document RECON completes is assigned and pushed
//! within two poll intervals (fake pusher, and the real pusher against the
//! PeerTube stand-in); the kill switch, the writer lock, retries, the tiebreaker.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use crate::server_support;

use companion::peertube::video_id::VideoUuid;
use companion::server::push_queue::PeerTubePusher;
use companion::server::push_queue::RETRY_KEY;
use companion::server::worker;
use server_support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::peertube::{StandIn, StandInConfig};

/// A PeerTube document RECON is still working on, with a clear winner (domain 8).
fn add_in_progress(d: &Data, i: usize) -> String {
    let h = hash_of(0xf00d_0000, i);
    insert_doc(&d.conn(), &h, &format!("New video {i}"), "Gamma", "enriching", None, None, "2026-02-01T00:00:00");
    write_concepts(&d.concepts, &h, &[(8, 4), (9, 1)]);
    h
}

fn complete(d: &Data, h: &str) {
    d.conn().execute("UPDATE documents SET status = 'complete' WHERE hash = ?1", [h]).unwrap();
}

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if f() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn completed_document_is_pushed_within_two_poll_intervals() {
    let d = data(2, 2);
    let h = add_in_progress(&d, 0);
    let mut cfg = d.config();
    cfg.server.poll_interval_secs = 1;
    let p = FakePusher::new(&d.db);
    let st = state(&d, cfg, p.clone());
    let w = worker::spawn(st.clone()).unwrap();
    // Let the first tick pass: the document is not complete, so nothing happens.
    assert!(wait_for(Duration::from_secs(5), || st.worker_status().ticks >= 1).is_some());
    assert_eq!(d.columns(&h), (None, None, None));
    complete(&d, &h);
    let interval = st.poll_interval;
    let took = wait_for(interval * 3, || p.hashes().contains(&h));
    w.stop();
    let took = took.expect("pushed");
    assert!(took <= interval * 2, "pushed after {took:?}, more than two poll intervals of {interval:?}");
    let (dom, status, pushed) = d.columns(&h);
    assert_eq!((dom.as_deref(), status.as_deref()), (Some(label(8)), Some("assigned")));
    assert!(pushed.is_some());
    // Journaled in a run of its own, so it can be rolled back.
    let runs: Vec<String> = d.conn().prepare("SELECT command FROM companion_runs").unwrap().query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
    assert!(runs.contains(&"worker-assign".to_string()), "{runs:?}");
    assert!(st.worker_fresh());
}

#[test]
fn real_pusher_against_the_peertube_stand_in() {
    let standin = StandIn::start(StandInConfig::default()).unwrap();
    let d = data(1, 0);
    let h = add_in_progress(&d, 1);
    let video = VideoUuid::parse(&uuid_of(&h)).unwrap();
    standin.add_video(&video, None, false);
    let pw = d.dir.path().join("pt-password");
    std::fs::write(&pw, "test-password\n").unwrap();
    let mut cfg = d.config();
    cfg.server.poll_interval_secs = 1;
    cfg.peertube.url = standin.url.clone();
    cfg.peertube.host_header = Some("stream.echo6.co".into());
    cfg.peertube.password_env = "RECON_COMPANION_TEST_UNSET_PASSWORD_VAR".into();
    cfg.peertube.password_file = Some(pw);
    cfg.peertube.token_cache = Some(d.dir.path().join("token.json"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let pusher = Arc::new(PeerTubePusher::new(cfg.clone(), d.env(), rt.handle().clone()));
    let st = state(&d, cfg, pusher);
    worker::check_peertube_now(&st);
    assert!(st.peertube_check().ok, "{}", st.peertube_check().detail);
    let w = worker::spawn(st.clone()).unwrap();
    assert!(wait_for(Duration::from_secs(5), || st.worker_status().ticks >= 1).is_some());
    complete(&d, &h);
    let want = i64::from(shared_constants::DOMAINS[8].id);
    let took = wait_for(st.poll_interval * 3, || standin.category(&video) == Some(Some(want)));
    w.stop();
    let took = took.expect("PeerTube got the category");
    assert!(took <= st.poll_interval * 2, "{took:?}");
    assert!(d.columns(&h).2.is_some(), "pushed timestamp set");
    let cmds: Vec<String> =
        d.conn().prepare("SELECT command FROM companion_runs ORDER BY started_at").unwrap().query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
    assert!(cmds.contains(&"worker-push".to_string()), "{cmds:?}");
}

#[test]
fn kill_switch_stops_pushes_but_not_assignment() {
    let d = data(0, 0);
    let p = FakePusher::new(&d.db);
    let st = state(&d, d.config(), p.clone());
    companion::server::pause::set(&d.conn(), true).unwrap();
    let h = add_in_progress(&d, 2);
    complete(&d, &h);
    let t = worker::tick(&st).unwrap();
    assert_eq!(t.assigned, 1);
    assert!(t.paused);
    assert!(p.hashes().is_empty());
    assert_eq!(d.columns(&h).1.as_deref(), Some("assigned"));
    // The owed push survives a restart (persisted queue) and goes out on resume.
    let st2 = state(&d, d.config(), p.clone());
    assert!(st2.retry.lock().unwrap().entries.contains_key(&h));
    companion::server::pause::set(&d.conn(), false).unwrap();
    let t = worker::tick(&st2).unwrap();
    assert_eq!(t.pushed, 1, "{t:?}");
    assert_eq!(p.hashes(), vec![h]);
}

#[test]
fn tick_is_skipped_while_a_cli_run_holds_the_writer_lock() {
    let d = data(0, 0);
    let p = FakePusher::new(&d.db);
    let st = state(&d, d.config(), p.clone());
    let h = add_in_progress(&d, 3);
    complete(&d, &h);
    let lock = companion::journal::lock::WriterLock::acquire(&d.db, "recon-companion backfill (cli)").unwrap();
    let t = worker::tick(&st).unwrap();
    assert!(t.skipped.as_deref().is_some_and(|s| s.contains("backfill (cli)")), "{t:?}");
    assert_eq!(d.columns(&h), (None, None, None), "nothing written under someone else's lock");
    drop(lock);
    let t = worker::tick(&st).unwrap();
    assert_eq!((t.assigned, t.pushed), (1, 1));
}

#[test]
fn failed_pushes_are_retried_with_backoff() {
    let d = data(0, 0);
    let p = FakePusher::new(&d.db);
    let st = state(&d, d.config(), p.clone());
    *p.fail.lock().unwrap() = Some("PeerTube answered 502".into());
    let h = add_in_progress(&d, 4);
    complete(&d, &h);
    let t = worker::tick(&st).unwrap();
    assert_eq!((t.assigned, t.pushed, t.push_failed), (1, 0, 1));
    let e = st.retry.lock().unwrap().entries[&h].clone();
    assert_eq!(e.attempts, 1);
    assert!(e.next_at > std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64, "not due again at once");
    let stored: String = d.conn().query_row("SELECT value FROM companion_state WHERE key = ?1", [RETRY_KEY], |r| r.get(0)).unwrap();
    assert!(stored.contains(&h) && stored.contains("502"), "{stored}");
    *p.fail.lock().unwrap() = None;
    // Not due yet: nothing tried.
    assert_eq!(worker::tick(&st).unwrap().pushed, 0);
    // Due: pushed, and the queue empties.
    st.retry.lock().unwrap().entries.get_mut(&h).unwrap().next_at = 0;
    assert_eq!(worker::tick(&st).unwrap().pushed, 1);
    assert!(st.retry.lock().unwrap().is_empty());
}

#[test]
fn scheduled_tiebreaker_resolves_ties_and_pushes_channel_winners() {
    let d = data(0, 0);
    let conn = d.conn();
    // Channel "Delta": a tied video (domains 10 and 11) and two mates leaning to 11.
    let tied = hash_of(0x7777_0000, 0);
    insert_doc(&conn, &tied, "Tied in Delta", "Delta", "complete", None, Some("tied_pass_1"), "2026-03-01T00:00:00");
    write_concepts(&d.concepts, &tied, &[(10, 2), (11, 2)]);
    for i in 1..3 {
        let m = hash_of(0x7777_0000, i);
        insert_doc(&conn, &m, &format!("Mate {i}"), "Delta", "complete", Some(label(11)), Some("assigned"), "2026-03-01T00:00:00");
        write_concepts(&d.concepts, &m, &[(11, 3)]);
    }
    let p = FakePusher::new(&d.db);
    let st = state(&d, d.config(), p.clone());
    let t = worker::tick(&st).unwrap();
    assert!(t.tiebroken);
    assert_eq!(d.columns(&tied).1.as_deref(), Some("tied_pass_2"));
    assert_eq!(d.columns(&tied).0.as_deref(), Some(label(11)));
    assert_eq!(p.hashes(), vec![tied.clone()]);
    // Not again before its interval.
    assert!(!worker::tick(&st).unwrap().tiebroken);
}

#[test]
fn a_large_batch_is_assigned_but_left_for_the_staged_push() {
    let d = data(0, 0);
    let p = FakePusher::new(&d.db);
    let st = state(&d, d.config(), p.clone());
    let n = worker::AUTO_PUSH_MAX + 1;
    for i in 0..n {
        let h = add_in_progress(&d, 100 + i);
        complete(&d, &h);
    }
    let t = worker::tick(&st).unwrap();
    assert_eq!(t.assigned, n as u64);
    assert_eq!(t.pushed, 0, "a backfill-sized batch waits for --push-pending --limit");
    assert!(p.hashes().is_empty());
    assert!(st.retry.lock().unwrap().is_empty());
}
