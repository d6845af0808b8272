//! The api transport against the PeerTube stand-in: OAuth, preflight, retries,
//! rate limit, systemic abort, a run killed mid-way, rollback.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use companion::cli::peertube as push;
use companion::config::Transport;
use companion::engine::rollback;
use companion::journal::EntryState;
use companion::peertube::push::{self as pusher, PushOptions};
use std::time::{Duration, Instant};
use testkit::fixture;
use testkit::world::*;

fn prior(i: usize) -> Option<i64> {
    // A mix of no category and PeerTube built-ins, so rollbacks have something to restore.
    match i % 3 {
        0 => None,
        1 => Some(5),
        _ => Some(((i % 18) + 1) as i64),
    }
}

#[test]
fn push_all_then_rollback_restores_previous_categories() {
    let w = World::new(30, 1, false, StandInConfig::default(), prior);
    fixture::add_doc_without_watch_path(&w.db_path(), "0123456789abcdef0123456789abcdef", "Medical").unwrap();
    let ctx = w.ctx();

    // Dry run: counts by domain, writes nothing, talks to nobody.
    assert_eq!(push::push_pending(&ctx, &push_args(true, None, Transport::Api)).unwrap(), 0);
    assert_eq!(w.standin.with(|i| i.put_total), 0);
    let dry = pusher::dry_run(&w.env, &PushOptions { limit: None, dry_run: true, transport: Transport::Api, batch_size: 10, command: "push-pending".into() })
        .unwrap();
    assert_eq!(dry.selected, 31);
    assert_eq!(dry.by_domain.values().sum::<u64>(), 30);
    assert_eq!(dry.unpushable.len(), 1);
    assert!(dry.unpushable[0].1.contains("/w/"), "{:?}", dry.unpushable);

    let code = push::push_pending(&ctx, &push_args(false, None, Transport::Api)).unwrap();
    assert_eq!(code, 0, "the unpushable document is reported, not a failure");
    for d in &w.docs {
        assert_eq!(w.standin.category(&d.video), Some(Some(d.category)), "{}", d.video);
        assert!(w.pushed_at(&d.hash).is_some());
    }
    assert_eq!(w.pushed_at("0123456789abcdef0123456789abcdef"), None, "no /w/: stays unpushed");
    // One login (Host header accepted), one PUT per video.
    assert_eq!(w.standin.with(|i| (i.logins, i.oauth_client_refusals)), (1, 0));
    assert!(w.standin.with(|i| i.puts.values().all(|n| *n == 1)));
    let cache = w.cfg.token_cache();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!std::fs::read_to_string(&cache).unwrap().contains("test-password"), "the password is never cached");

    // A second push finds nothing to do but the unpushable document.
    let run_id = companion::journal::list_runs(&w.conn(), 1).unwrap()[0].run_id.clone();
    assert_eq!(push::push_pending(&ctx, &push_args(false, None, Transport::Api)).unwrap(), 0);
    assert_eq!(w.standin.with(|i| i.put_total), 30);

    // Journal: per video old = previous category, new = our id.
    let entries = w.entries(&run_id);
    let videos: Vec<_> = entries.iter().filter(|e| e.kind == companion::journal::Kind::Video).collect();
    assert_eq!(videos.len(), 30);
    for (i, d) in w.docs.iter().enumerate() {
        let e = videos.iter().find(|e| e.key == d.video.as_str()).unwrap();
        assert_eq!(e.state, EntryState::Applied);
        assert_eq!(e.old["category"].as_i64(), prior(i));
        assert_eq!(e.new["category"].as_i64(), Some(d.category));
        assert_eq!(e.new["hash"].as_str(), Some(d.hash.as_str()));
    }

    // Someone edits one video in PeerTube: the rollback refuses it unless forced.
    w.standin.set_category(&w.docs[0].video, Some(110));
    let s = rollback::rollback(&w.env, &run_id, false, false, companion::peertube::restore::restorer(&ctx.cfg, Transport::Api).unwrap()).unwrap();
    assert_eq!(s.videos_restored, 29);
    assert_eq!(s.conflicts.len(), 1, "{:?}", s.conflicts);
    assert_eq!(w.standin.category(&w.docs[0].video), Some(Some(110)), "a later edit is not overwritten");
    for (i, d) in w.docs.iter().enumerate().skip(1) {
        assert_eq!(w.standin.category(&d.video), Some(prior(i)));
        assert_eq!(w.pushed_at(&d.hash), None, "pushed timestamp cleared");
    }
}

#[test]
fn expired_tokens_refresh_then_login_again() {
    let w = World::new(12, 2, false, StandInConfig::default(), |_| None);
    let ctx = w.ctx();
    assert_eq!(push::push_pending(&ctx, &push_args(false, Some(4), Transport::Api)).unwrap(), 0);
    assert_eq!(w.standin.with(|i| (i.logins, i.refreshes)), (1, 0));
    // Access token expired: a 401, then a refresh; the cached token was reused first.
    w.standin.expire_tokens();
    assert_eq!(push::push_pending(&ctx, &push_args(false, Some(4), Transport::Api)).unwrap(), 0);
    let (logins, refreshes, unauth) = w.standin.with(|i| (i.logins, i.refreshes, i.unauthorized));
    assert_eq!((logins, refreshes), (1, 1));
    assert!(unauth >= 1);
    // Both expired: the refresh fails and the client logs in again.
    w.standin.expire_tokens();
    w.standin.expire_refresh_tokens();
    assert_eq!(push::push_pending(&ctx, &push_args(false, None, Transport::Api)).unwrap(), 0);
    assert_eq!(w.standin.with(|i| i.logins), 2);
    assert_eq!(w.pushed_count(), 12);
}

#[test]
fn wrong_password_and_missing_host_header_are_named() {
    let w = World::new(3, 3, false, StandInConfig::default(), |_| None);
    let mut ctx = w.ctx();
    ctx.cfg.peertube.host_header = None;
    let err = push::push_pending(&ctx, &push_args(false, None, Transport::Api)).unwrap_err().to_string();
    assert!(err.contains("host_header"), "{err}");
    let mut ctx = w.ctx();
    std::env::set_var(&ctx.cfg.peertube.password_env, "wrong");
    let err = push::push_pending(&ctx, &push_args(false, None, Transport::Api)).unwrap_err().to_string();
    assert!(err.contains("refused") && !err.contains("wrong\""), "{err}");
    ctx.cfg.peertube.password_env = "RECON_COMPANION_TEST_UNSET_PW_VAR".into();
    let err = push::push_pending(&ctx, &push_args(false, None, Transport::Api)).unwrap_err().to_string();
    assert!(err.contains("RECON_COMPANION_TEST_UNSET_PW_VAR"), "{err}");
    assert_eq!(w.pushed_count(), 0);
}

#[test]
fn retries_429_500_slow_and_never_exceeds_the_rate() {
    let w = World::new(40, 4, false, StandInConfig::default(), |_| None);
    let mut ctx = w.ctx();
    ctx.cfg.peertube.rate_per_sec = 15.0;
    ctx.cfg.peertube.concurrency = 4;
    ctx.cfg.peertube.timeout_secs = 1;
    w.standin.inject(Inject::TooMany { retry_after_secs: 1 }, 2);
    w.standin.inject(Inject::ServerError, 3);
    w.standin.inject(Inject::Slow(Duration::from_millis(1500)), 1); // > timeout: retried
    w.standin.inject(Inject::Slow(Duration::from_millis(200)), 2);
    let t = Instant::now();
    let s = companion::peertube::push::dry_run(
        &w.env,
        &PushOptions { limit: None, dry_run: true, transport: Transport::Api, batch_size: 1, command: "push-pending".into() },
    )
    .unwrap();
    assert_eq!(s.selected, 40);
    let rt = rt();
    let opts = PushOptions { limit: None, dry_run: false, transport: Transport::Api, batch_size: 1, command: "push-pending".into() };
    let s = rt.block_on(pusher::push(&ctx.cfg, &ctx.env, &opts, None)).unwrap();
    assert_eq!(s.pushed, 40, "{s:?}");
    assert_eq!(s.failed, 0);
    assert!(s.http_retries >= 6, "{s:?}");
    assert!(t.elapsed() >= Duration::from_secs(1), "Retry-After honoured");
    let max = w.standin.max_requests_in(Duration::from_secs(1));
    assert!(max <= 15, "{max} requests within one second, limit 15");
    assert!(max >= 10, "the limiter is not needlessly slow: {max}");
}

#[test]
fn plugin_missing_refuses_before_pushing_and_aborts_as_systemic() {
    // Not installed: the preflight refuses, naming the ids.
    let w = World::new(20, 5, false, StandInConfig { plugin: false, ..Default::default() }, |_| None);
    let err = push::push_pending(&w.ctx(), &push_args(false, None, Transport::Api)).unwrap_err().to_string();
    assert!(err.contains("100") && err.contains("plugin"), "{err}");
    assert_eq!(push::verify_peertube(&w.ctx()).unwrap(), 1);
    assert_eq!(w.standin.with(|i| i.put_total), 0);

    // Vanished after the preflight: every PUT is a 400 → abort after 5 in a row.
    let w = World::new(40, 6, false, StandInConfig::default(), |_| None);
    w.standin.with(|i| i.refuse_put_categories = true);
    let rt = rt();
    let opts = PushOptions { limit: None, dry_run: false, transport: Transport::Api, batch_size: 1, command: "push-pending".into() };
    let s = rt.block_on(pusher::push(&w.cfg, &w.env, &opts, None)).unwrap();
    let why = s.aborted.clone().expect("aborted");
    assert!(why.contains("plugin") && why.contains("400"), "{why}");
    assert!(s.failed >= 5 && s.failed <= 5 + w.cfg.peertube.concurrency as u64, "{s:?}");
    assert_eq!(s.pushed, 0);
    assert_eq!(w.pushed_count(), 0);
    let run = companion::journal::list_runs(&w.conn(), 1).unwrap()[0].clone();
    assert_eq!(run.state, "aborted");
    assert!(w.entries(&run.run_id).iter().all(|e| e.state == EntryState::Failed), "definite failures are closed, not left pending");
}

#[test]
fn unknown_videos_are_reported_not_systemic() {
    let w = World::new(12, 7, false, StandInConfig::default(), |_| None);
    // Seven videos in a row are unknown to PeerTube.
    w.standin.with(|i| {
        for d in &w.docs[..7] {
            i.videos.remove(d.video.as_str());
        }
    });
    let code = push::push_pending(&w.ctx(), &push_args(false, None, Transport::Api)).unwrap();
    assert_eq!(code, 1, "failures make the exit code 1");
    let run = companion::journal::list_runs(&w.conn(), 1).unwrap()[0].clone();
    assert_eq!(run.state, "done", "404s never abort the run");
    let s = run.summary.unwrap();
    assert_eq!(s["not_found"], 7);
    assert_eq!(s["pushed"], 5);
    for d in &w.docs[..7] {
        assert_eq!(w.pushed_at(&d.hash), None);
    }
}

#[test]
fn verify_peertube_passes_fails_and_never_skips() {
    let w = World::new(1, 8, false, StandInConfig::default(), |_| None);
    assert_eq!(push::verify_peertube(&w.ctx()).unwrap(), 0);
    w.standin.with(|i| i.plugin_fingerprint = Some("0000000000000000".into()));
    assert_eq!(push::verify_peertube(&w.ctx()).unwrap(), 1);
    w.standin.with(|i| {
        i.plugin_fingerprint = None;
        i.categories.insert(107, "Navigation ".into());
    });
    assert_eq!(push::verify_peertube(&w.ctx()).unwrap(), 1);
    // Unreachable is an error (exit 1), never a pass.
    let mut ctx = w.ctx();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ctx.cfg.peertube.url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    ctx.cfg.peertube.max_retries = 1;
    let err = push::verify_peertube(&ctx).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("cannot reach"), "{err}");
}

#[test]
fn killed_mid_way_then_rerun_pushes_nothing_twice_and_loses_nothing() {
    let w = World::new(30, 9, false, StandInConfig::default(), prior);
    // After 7 PUTs, PeerTube applies further PUTs but never answers: the
    // process dies with writes landed that recon.db has not confirmed.
    w.standin.with(|i| i.stall_after_puts = Some(7));
    let rt = rt();
    let opts = PushOptions { limit: None, dry_run: false, transport: Transport::Api, batch_size: 1, command: "push-pending".into() };
    rt.block_on(async {
        let push = pusher::push(&w.cfg, &w.env, &opts, None);
        tokio::pin!(push);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            tokio::select! {
                r = &mut push => panic!("the push finished although PeerTube stalled: {:?}", r.map(|s| s.pushed)),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            if w.standin.with(|i| i.stalled) && w.standin.with(|i| i.put_total) >= 7 + w.cfg.peertube.concurrency {
                break;
            }
            assert!(Instant::now() < deadline, "stand-in never stalled");
        }
        // Dropping the future here is the kill.
    });
    let first = companion::journal::list_runs(&w.conn(), 1).unwrap()[0].run_id.clone();
    let pending_before: Vec<_> = w.all_video_entries().into_iter().filter(|e| e.2 == "pending").collect();
    assert!(!pending_before.is_empty(), "the kill left pending entries");
    let landed = w.standin.with(|i| i.put_total);

    w.standin.with(|i| i.stall_after_puts = None);
    let code = push::push_pending(&w.ctx(), &push_args(false, None, Transport::Api)).unwrap();
    assert_eq!(code, 0);
    // Nothing lost, nothing pushed twice.
    for d in &w.docs {
        assert_eq!(w.standin.category(&d.video), Some(Some(d.category)));
        assert!(w.pushed_at(&d.hash).is_some(), "{} not marked pushed", d.hash);
    }
    let puts = w.standin.with(|i| i.puts.clone());
    assert!(puts.values().all(|n| *n == 1), "a video was written twice: {puts:?}");
    assert_eq!(w.standin.with(|i| i.put_total), 30);
    assert!(landed > 7);
    // Journal complete: one applied entry per video, none left pending.
    let all = w.all_video_entries();
    assert!(all.iter().all(|e| e.2 != "pending"), "{all:?}");
    for d in &w.docs {
        assert_eq!(all.iter().filter(|e| e.1 == d.video.as_str() && e.2 == "applied").count(), 1, "{}", d.video);
    }
    let second = companion::journal::list_runs(&w.conn(), 1).unwrap()[0].clone();
    assert!(second.summary.as_ref().unwrap()["recovered"].as_u64().unwrap() >= 1, "{:?}", second.summary);

    // Rolling back both runs (newest first) restores every original category.
    let ctx = w.ctx();
    for run in [&second.run_id, &first] {
        let s = rollback::rollback(&w.env, run, false, false, companion::peertube::restore::restorer(&ctx.cfg, Transport::Api).unwrap()).unwrap();
        assert!(s.failed.is_empty() && s.conflicts.is_empty(), "{s:?}");
    }
    for (i, d) in w.docs.iter().enumerate() {
        assert_eq!(w.standin.category(&d.video), Some(prior(i)), "video {i}");
        assert_eq!(w.pushed_at(&d.hash), None);
    }
}

#[test]
fn only_videos_that_change_get_a_request() {
    // Every third video already holds its category: no request may reach PeerTube for it.
    let w = World::new(30, 20, false, StandInConfig::default(), |_| None);
    for (i, d) in w.docs.iter().enumerate() {
        if i % 3 == 0 {
            w.standin.set_category(&d.video, Some(d.category));
        }
    }
    // A private/unlisted/unpublished video is in the admin's list like any other:
    // the stand-in lists every local video for the include/privacy flags we send.
    let rt = rt();
    let opts = PushOptions { limit: None, dry_run: false, transport: Transport::Api, batch_size: 500, command: "push-pending".into() };
    let s = rt.block_on(pusher::push(&w.cfg, &w.env, &opts, None)).unwrap();
    assert_eq!((s.pushed, s.already_set, s.failed), (20, 10, 0), "{s:?}");
    assert_eq!(s.snapshot, "video list");
    let (puts, gets, lists) = w.standin.with(|i| (i.puts.clone(), i.video_gets, i.list_requests));
    assert_eq!(puts.len(), 20);
    assert!(puts.values().all(|n| *n == 1), "{puts:?}");
    for (i, d) in w.docs.iter().enumerate() {
        assert_eq!(puts.contains_key(d.video.as_str()), i % 3 != 0, "video {i}");
        assert_eq!(w.standin.category(&d.video), Some(Some(d.category)));
        assert!(w.pushed_at(&d.hash).is_some());
    }
    assert_eq!((gets, lists), (0, 1), "one list page instead of a GET per video");
    // The journal still has every change with its old value, and the already-right ones as applied no-ops.
    let entries = w.entries(s.run_id.as_deref().unwrap());
    let videos: Vec<_> = entries.iter().filter(|e| e.kind == companion::journal::Kind::Video).collect();
    assert_eq!(videos.len(), 30);
    assert!(videos.iter().all(|e| e.state == EntryState::Applied));
    assert!(s.concurrency_reached >= 1 && s.concurrency_reached <= w.cfg.peertube.concurrency, "{s:?}");
}

#[test]
fn serialization_500s_are_retried_nothing_lost_nothing_written_twice() {
    let standin = StandInConfig {
        ceiling_per_sec: Some(150.0),
        serialization: Some(testkit::peertube::Serialization { min_in_flight: 2, probability: 0.3, seed: 3 }),
        ..Default::default()
    };
    let w = World::new(60, 21, false, standin, |_| None);
    let mut cfg = w.cfg.clone();
    // Fixed concurrency, so PUTs overlap and collide.
    cfg.peertube.adaptive = false;
    cfg.peertube.rate_per_sec = 10_000.0;
    cfg.peertube.max_retries = 8;
    let rt = rt();
    let opts = PushOptions { limit: None, dry_run: false, transport: Transport::Api, batch_size: 500, command: "push-pending".into() };
    let s = rt.block_on(pusher::push(&cfg, &w.env, &opts, None)).unwrap();
    let (refused, puts) = w.standin.with(|i| (i.serialization_failures, i.puts.clone()));
    assert!(refused > 0, "the stand-in never collided: raise the probability");
    assert_eq!(s.serialization_retries, refused, "every serialization 500 was seen and retried: {s:?}");
    assert!(s.http_retries >= refused);
    assert_eq!((s.pushed, s.failed), (60, 0), "{s:?}");
    assert!(puts.values().all(|n| *n == 1) && puts.len() == 60, "a refused PUT is not a write; each video written once: {puts:?}");
    for d in &w.docs {
        assert_eq!(w.standin.category(&d.video), Some(Some(d.category)));
    }
}

#[test]
fn adaptive_concurrency_backs_off_on_500s_and_stays_under_the_bound() {
    let standin = StandInConfig { ceiling_per_sec: Some(300.0), ..Default::default() };
    let w = World::new(80, 22, false, standin, |_| None);
    w.standin.inject(Inject::ServerError, 4);
    let rt = rt();
    let opts = PushOptions { limit: None, dry_run: false, transport: Transport::Api, batch_size: 500, command: "push-pending".into() };
    let s = rt.block_on(pusher::push(&w.cfg, &w.env, &opts, None)).unwrap();
    assert_eq!((s.pushed, s.failed), (80, 0), "{s:?}");
    assert!(s.http_retries >= 4, "{s:?}");
    let max = w.standin.with(|i| i.max_puts_in_flight);
    assert!(max <= w.cfg.peertube.concurrency, "{max} PUTs in flight, bound {}", w.cfg.peertube.concurrency);
    assert!(s.concurrency_reached <= w.cfg.peertube.concurrency && s.concurrency_final >= 1, "{s:?}");
}

#[test]
fn non_admin_is_rate_limited_and_cannot_list_every_video() {
    let standin = StandInConfig { admin: false, user_rate_limit: (12, Duration::from_secs(1)), ..Default::default() };
    let w = World::new(16, 23, false, standin, |_| None);
    let rt = rt();
    let opts = PushOptions { limit: None, dry_run: false, transport: Transport::Api, batch_size: 500, command: "push-pending".into() };
    let s = rt.block_on(pusher::push(&w.cfg, &w.env, &opts, None)).unwrap();
    assert_eq!(s.snapshot, "per-video GET", "the list is refused (401) to a non-admin");
    assert_eq!((s.pushed, s.failed), (16, 0), "{s:?}");
    let limited = w.standin.with(|i| i.rate_limited);
    assert!(limited >= 1, "over 12 requests per second a non-admin gets 429");
    assert!(s.http_retries >= limited, "each 429 retried after Retry-After: {s:?}");
    assert!(w.standin.with(|i| i.puts.values().all(|n| *n == 1)));
}

#[test]
fn rollback_uses_the_transport_the_run_used_unless_told() {
    let w = World::new(6, 24, false, StandInConfig::default(), prior);
    assert_eq!(push::push_pending(&w.ctx(), &push_args(false, None, Transport::Api)).unwrap(), 0);
    let run_id = companion::journal::list_runs(&w.conn(), 1).unwrap()[0].run_id.clone();
    assert_eq!(companion::peertube::restore::run_transport(&w.conn(), &run_id).unwrap(), Some(Transport::Api));
    // The config now defaults to db (no db_url set): a rollback that followed the
    // config would fail; the run's own transport (api) restores everything.
    let mut ctx = w.ctx();
    ctx.cfg.peertube.transport = Transport::Db;
    assert_eq!(companion::cli::runs::rollback_cmd(&ctx, &run_id, false, false, None).unwrap(), 0);
    for (i, d) in w.docs.iter().enumerate() {
        assert_eq!(w.standin.category(&d.video), Some(prior(i)));
    }
    // An explicit --via wins over the run's transport.
    assert_eq!(push::push_pending(&w.ctx(), &push_args(false, None, Transport::Api)).unwrap(), 0);
    let run_id = companion::journal::list_runs(&w.conn(), 1).unwrap()[0].run_id.clone();
    let err = companion::cli::runs::rollback_cmd(&w.ctx(), &run_id, false, false, Some(Transport::Db)).unwrap_err();
    assert!(err.to_string().contains("db_url"), "{err}");
}

#[test]
fn an_old_snapshot_is_checked_through_the_change_log_not_read_again() {
    let standin = StandInConfig { ceiling_per_sec: Some(150.0), ..StandInConfig::default() };
    let mut w = World::new(400, 5, false, standin, prior);
    w.cfg.peertube.snapshot_max_age_secs = 1;
    let edited = w.docs[350].video.clone();
    let (probe, v) = (w.standin.state.clone(), edited.clone());
    // A moderator edits a video of the second chunk while the first is written
    // (200 PUTs at 150/s outlast the 1 s snapshot age).
    let person = std::thread::spawn(move || loop {
        let mut i = probe.lock().unwrap();
        if i.put_total >= 20 {
            i.videos.get_mut(v.as_str()).unwrap().category = Some(110);
            let at = companion::recon::db::now();
            i.plugin_changes.push(testkit::peertube::PluginChange { video: v.to_string(), category: Some(110), user: "moderator".into(), at });
            return;
        }
        drop(i);
        std::thread::sleep(Duration::from_millis(5));
    });
    assert_eq!(push::push_pending(&w.ctx(), &push_args(false, None, Transport::Api)).unwrap(), 0);
    person.join().unwrap();
    let (lists, gets) = w.standin.with(|i| (i.list_requests, i.video_gets));
    assert_eq!(lists, 4, "400 videos: 4 pages, read once");
    assert_eq!(gets, 1, "only the edited video is read again");
    // Read again, the video shows the moderator's choice: left to people, not overwritten.
    let run_id = companion::journal::list_runs(&w.conn(), 1).unwrap()[0].run_id.clone();
    assert!(w.entries(&run_id).iter().all(|e| e.key != edited.as_str()), "no write of the edited video journaled");
    assert_eq!(w.standin.category(&edited), Some(Some(110)));
    assert_eq!(w.pushed_at(&w.docs[350].hash), None, "left for the adopt step");
    assert!(w.standin.with(|i| !i.puts.contains_key(edited.as_str()) && i.puts.len() == 399 && i.puts.values().all(|n| *n == 1)));
}

#[test]
fn serialization_500s_do_not_shrink_the_adaptive_gate() {
    let standin =
        StandInConfig { serialization: Some(testkit::peertube::Serialization { min_in_flight: 1, probability: 0.4, seed: 11 }), ..Default::default() };
    let w = World::new(20, 23, false, standin, |_| None);
    let rt = rt();
    let client = companion::peertube::api::ApiClient::from_config(&w.cfg).unwrap();
    rt.block_on(async {
        client.ensure_login().await.unwrap();
        for d in &w.docs {
            client.set_category(&d.video, Some(d.category)).await.unwrap();
        }
    });
    let refused = w.standin.with(|i| i.serialization_failures);
    assert!(refused > 0, "the stand-in never collided: raise the probability");
    assert_eq!(client.stats.serialization_failures.load(std::sync::atomic::Ordering::Relaxed), refused);
    assert_eq!(client.gate.decreases(), 0, "a collision is not load");
    assert!(w.standin.with(|i| i.puts.len() == 20 && i.puts.values().all(|n| *n == 1)));
}
