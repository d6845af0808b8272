//! The db transport against a real PostgreSQL with PeerTube's `video` table:
//! compare-and-set batches, unknown and remote videos, a killed run, rollback,
//! reconcile (each drift kind, repair) and the emergency reset.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use companion::cli::peertube as push;
use companion::config::Transport;
use companion::engine::rollback;
use companion::peertube::db::PgVideos;
use companion::peertube::push::{self as pusher, PushOptions};
use companion::peertube::video_id::VideoUuid;
use std::time::Duration;
use testkit::world::*;

fn prior(i: usize) -> Option<i64> {
    if i.is_multiple_of(2) {
        None
    } else {
        Some(((i % 18) + 1) as i64)
    }
}

fn last_run(w: &World) -> companion::journal::RunRow {
    companion::journal::list_runs(&w.conn(), 1).unwrap()[0].clone()
}

#[test]
fn db_push_batches_unknown_remote_and_rollback() {
    let w = World::new(40, 11, true, StandInConfig::default(), prior);
    // Two videos are remote, two do not exist in PeerTube's database.
    let remote: Vec<String> = w.docs[3..5].iter().map(|d| format!("'{}'", d.video)).collect();
    let gone: Vec<String> = w.docs[10..12].iter().map(|d| format!("'{}'", d.video)).collect();
    w.pg_exec(&format!("UPDATE video SET remote = true WHERE uuid IN ({}); DELETE FROM video WHERE uuid IN ({});", remote.join(","), gone.join(",")));
    let mut ctx = w.ctx();
    let mut args = push_args(false, None, Transport::Db);
    args.batch_size = Some(7);
    ctx.cfg.peertube.batch_size = 7;
    let code = push::push_pending(&ctx, &args).unwrap();
    assert_eq!(code, 1, "unknown and remote videos are failures");
    let run = last_run(&w);
    let s = run.summary.clone().unwrap();
    assert_eq!((s["pushed"].as_u64(), s["remote"].as_u64(), s["not_found"].as_u64()), (Some(36), Some(2), Some(2)), "{s}");
    let videos = w.pg_videos();
    for (i, d) in w.docs.iter().enumerate() {
        match i {
            3 | 4 => assert_eq!(videos[&d.video], prior(i).map(|c| c as i32), "remote untouched"),
            10 | 11 => assert!(!videos.contains_key(&d.video)),
            _ => assert_eq!(videos[&d.video], Some(d.category as i32)),
        }
        assert_eq!(w.pushed_at(&d.hash).is_some(), !matches!(i, 3 | 4 | 10 | 11), "doc {i}");
    }
    // Short uuids in the paths (every third document) were matched too.
    assert!(w.docs.iter().step_by(3).all(|d| d.path.len() < 60));
    let writes = w.pg_writes();
    assert!(writes.values().all(|n| *n == 1));

    let s = rollback::rollback(&w.env, &run.run_id, false, false, companion::peertube::restore::restorer(&ctx.cfg, Transport::Db).unwrap()).unwrap();
    assert!(s.failed.is_empty() && s.conflicts.is_empty(), "{s:?}");
    let videos = w.pg_videos();
    for (i, d) in w.docs.iter().enumerate() {
        if !matches!(i, 10 | 11) {
            assert_eq!(videos[&d.video], prior(i).map(|c| c as i32), "doc {i}");
        }
        assert_eq!(w.pushed_at(&d.hash), None);
    }
}

#[test]
fn compare_and_set_never_overwrites_a_concurrent_edit() {
    let w = World::new(3, 12, true, StandInConfig::default(), |_| None);
    let (a, b) = (w.docs[0].video.clone(), w.docs[1].video.clone());
    w.pg_exec(&format!("UPDATE video SET category = 7 WHERE uuid = '{a}'"));
    let written = rt().block_on(async {
        let mut pg = PgVideos::connect(&w.cfg).await.unwrap();
        // Both expected "no category"; only b still has none.
        pg.compare_and_set(&[(a.clone(), None, Some(105)), (b.clone(), None, Some(106))]).await.unwrap()
    });
    assert!(written.contains(&b) && !written.contains(&a));
    let v = w.pg_videos();
    assert_eq!(v[&a], Some(7));
    assert_eq!(v[&b], Some(106));
    // The short uuid is accepted by the db transport's lookups.
    let short = VideoUuid::parse(&b.short()).unwrap();
    let cur = rt().block_on(async { PgVideos::connect(&w.cfg).await.unwrap().current(&[&short]).await.unwrap() });
    assert_eq!(cur[&b].category, Some(106));
}

#[test]
fn db_run_killed_mid_way_then_rerun() {
    let w = World::new(3000, 13, true, StandInConfig::default(), prior);
    let opts = PushOptions { limit: None, dry_run: false, transport: Transport::Db, batch_size: 25, command: "push-pending".into() };
    let rt = rt();
    // Kill after a while: the future is dropped wherever it is.
    let killed = rt.block_on(async { tokio::time::timeout(Duration::from_millis(400), pusher::push(&w.cfg, &w.env, &opts, None)).await.is_err() });
    let first = last_run(&w).run_id;
    let after_kill = w.pushed_count();
    assert!(killed && after_kill < 3000, "the run finished before the kill ({after_kill}); raise the size");
    assert_eq!(push::push_pending(&w.ctx(), &push_args(false, None, Transport::Db)).unwrap(), 0);
    let videos = w.pg_videos();
    for d in &w.docs {
        assert_eq!(videos[&d.video], Some(d.category as i32));
        assert!(w.pushed_at(&d.hash).is_some());
    }
    let writes = w.pg_writes();
    let changed = w.docs.iter().enumerate().filter(|(i, d)| prior(*i) != Some(d.category)).count();
    assert_eq!(writes.len(), changed, "every video needing a change was written");
    assert!(writes.values().all(|n| *n == 1), "a video was written twice");
    assert!(w.all_video_entries().iter().all(|e| e.2 != "pending"));
    let second = last_run(&w).run_id;
    let ctx = w.ctx();
    for run in [&second, &first] {
        let s = rollback::rollback(&w.env, run, false, false, companion::peertube::restore::restorer(&ctx.cfg, Transport::Db).unwrap()).unwrap();
        assert!(s.failed.is_empty() && s.conflicts.is_empty(), "{s:?}");
    }
    let videos = w.pg_videos();
    for (i, d) in w.docs.iter().enumerate() {
        assert_eq!(videos[&d.video], prior(i).map(|c| c as i32), "doc {i}");
    }
    assert_eq!(w.pushed_count(), 0);
}

#[test]
fn reconcile_finds_each_drift_kind_and_repairs() {
    let w = World::new(20, 14, true, StandInConfig::default(), |_| None);
    let ctx = w.ctx();
    assert_eq!(push::push_pending(&ctx, &push_args(false, None, Transport::Db)).unwrap(), 0);
    assert_eq!(push::reconcile(&ctx, false, None).unwrap(), 0, "in sync right after the push");
    let (missing, different, empty) = (&w.docs[0], &w.docs[1], &w.docs[2]);
    let other = if different.category == 110 { 111 } else { 110 };
    w.pg_exec(&format!(
        "DELETE FROM video WHERE uuid = '{}'; UPDATE video SET category = {other} WHERE uuid = '{}'; UPDATE video SET category = NULL WHERE uuid = '{}';",
        missing.video, different.video, empty.video
    ));
    let rep = rt().block_on(companion::peertube::reconcile::reconcile(&w.cfg, &w.env, false, Transport::Db)).unwrap();
    assert_eq!(rep.in_sync, 17);
    assert_eq!(rep.drift.len(), 3);
    let kind = |d: &companion::peertube::video_id::VideoUuid| rep.drift.iter().find(|x| x.video == d.as_str()).map(|x| x.kind);
    use companion::peertube::reconcile::DriftKind::*;
    assert_eq!(kind(&missing.video), Some(MissingInPeertube));
    assert_eq!(kind(&different.video), Some(DifferentCategory));
    assert_eq!(kind(&empty.video), Some(PushedButEmpty));
    assert_eq!(rep.without_category, 1);
    assert_eq!(rep.distribution.iter().map(|x| x.2).sum::<i64>(), 18);
    assert_eq!(push::reconcile(&ctx, false, None).unwrap(), 1, "drift → exit 1");

    // Repair re-pushes the two it can; the missing video stays reported.
    assert_eq!(push::reconcile(&ctx, true, Some(Transport::Db)).unwrap(), 1);
    let v = w.pg_videos();
    assert_eq!(v[&different.video], Some(different.category as i32));
    assert_eq!(v[&empty.video], Some(empty.category as i32));
    let repair = last_run(&w);
    assert_eq!(repair.command, "reconcile-repair");
    let rep = rt().block_on(companion::peertube::reconcile::reconcile(&w.cfg, &w.env, false, Transport::Db)).unwrap();
    assert_eq!(rep.drift.len(), 1);
    // The repair itself can be undone.
    let s = rollback::rollback(&w.env, &repair.run_id, false, false, companion::peertube::restore::restorer(&ctx.cfg, Transport::Db).unwrap()).unwrap();
    assert_eq!(s.videos_restored, 2, "{s:?}");
    let v = w.pg_videos();
    assert_eq!(v[&different.video], Some(other));
    assert_eq!(v[&empty.video], None);
}

#[test]
fn reset_needs_confirmation_is_journaled_and_rolls_back() {
    let w = World::new(20, 15, true, StandInConfig::default(), |_| None);
    let ctx = w.ctx();
    assert_eq!(push::push_pending(&ctx, &push_args(false, None, Transport::Db)).unwrap(), 0);
    // A remote video with a RECON category is never the instance's to reset.
    let remote = VideoUuid::parse("00000000-0000-4000-8000-000000000001").unwrap();
    rt().block_on(async {
        let c = w.pg.as_ref().unwrap().connect().await.unwrap();
        companion::peertube::db::insert_videos(&c, &[(remote.clone(), Some(105), true)]).await.unwrap();
    });
    let err = push::reset_categories(&ctx, false, false).unwrap_err();
    assert!(err.to_string().contains("--yes-reset-all"), "{err}");
    let dry = rt().block_on(companion::peertube::reconcile::reset(&w.cfg, &w.env, true, false)).unwrap();
    assert_eq!((dry.videos, dry.remote_skipped, dry.pushed_timestamps), (20, 1, 20));
    assert_eq!(w.pushed_count(), 20, "dry run changes nothing");

    assert_eq!(push::reset_categories(&ctx, false, true).unwrap(), 0);
    let v = w.pg_videos();
    assert!(w.docs.iter().all(|d| v[&d.video].is_none()));
    assert_eq!(v[&remote], Some(105));
    assert_eq!(w.pushed_count(), 0);

    let reset_run = last_run(&w);
    assert_eq!(reset_run.command, "reset-peertube-categories");
    let s = rollback::rollback(&w.env, &reset_run.run_id, false, false, companion::peertube::restore::restorer(&ctx.cfg, Transport::Db).unwrap()).unwrap();
    assert!(s.failed.is_empty() && s.conflicts.is_empty(), "{s:?}");
    let v = w.pg_videos();
    assert!(w.docs.iter().all(|d| v[&d.video] == Some(d.category as i32)));
    assert_eq!(w.pushed_count(), 20);
}

#[test]
fn rollback_of_a_db_push_goes_through_the_database() {
    let w = World::new(25, 16, true, StandInConfig::default(), prior);
    // The config's default transport stays the API.
    assert_eq!(w.cfg.peertube.transport, Transport::Api);
    assert_eq!(push::push_pending(&w.ctx(), &push_args(false, None, Transport::Db)).unwrap(), 0);
    let run = last_run(&w);
    assert_eq!(companion::peertube::restore::run_transport(&w.conn(), &run.run_id).unwrap(), Some(Transport::Db));
    assert_eq!(companion::cli::runs::rollback_cmd(&w.ctx(), &run.run_id, false, false, None).unwrap(), 0);
    let videos = w.pg_videos();
    for (i, d) in w.docs.iter().enumerate() {
        assert_eq!(videos[&d.video], prior(i).map(|c| c as i32), "doc {i}");
    }
    assert_eq!(w.standin.with(|i| (i.put_attempts, i.video_gets, i.list_requests)), (0, 0, 0), "nothing went through the API");
    // The reset's entries record the db transport too.
    assert_eq!(push::push_pending(&w.ctx(), &push_args(false, None, Transport::Db)).unwrap(), 0);
    assert_eq!(push::reset_categories(&w.ctx(), false, true).unwrap(), 0);
    let reset = last_run(&w);
    assert_eq!(companion::peertube::restore::run_transport(&w.conn(), &reset.run_id).unwrap(), Some(Transport::Db));
}

#[test]
fn api_push_reads_current_categories_from_postgresql_when_configured() {
    let w = World::new(20, 17, true, StandInConfig::default(), |_| None);
    // PeerTube's database is the truth: half the videos already hold their category there.
    for d in w.docs.iter().step_by(2) {
        w.pg_exec(&format!("UPDATE video SET category = {} WHERE uuid = '{}'", d.category, d.video));
        w.standin.set_category(&d.video, Some(d.category));
    }
    let rt = rt();
    let opts = PushOptions { limit: None, dry_run: false, transport: Transport::Api, batch_size: 500, command: "push-pending".into() };
    let s = rt.block_on(pusher::push(&w.cfg, &w.env, &opts, None)).unwrap();
    assert_eq!(s.snapshot, "postgresql");
    assert_eq!((s.pushed, s.already_set, s.failed), (10, 10, 0), "{s:?}");
    let (puts, gets, lists) = w.standin.with(|i| (i.puts.clone(), i.video_gets, i.list_requests));
    assert_eq!((puts.len(), gets, lists), (10, 0, 0), "one PUT per changing video, nothing else");
}
