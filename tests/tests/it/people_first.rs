//! A person before the machine: a moderator sets 20 videos in PeerTube before
//! our first push (10 to RECON domains other than the machine's, 5 to built-in
//! categories, 5 cleared) and one to the machine's own domain. Every push
//! leaves the 20 alone and lists them; `reconcile --adopt` (or the service's
//! worker) takes them — 10 `manual_assigned`, 10 overrides — while every video
//! whose uploader category nobody touched gets its domain as before. Rolling
//! the adoption back is the operator overruling the person: PeerTube gets the
//! machine's categories. API only, and with PeerTube's PostgreSQL.

use companion::config::Transport;
use companion::engine::rollback;
use companion::peertube::push::{self, PushOptions, PushSummary};
use companion::peertube::reconcile::{reconcile_with, ReconcileOptions, ReconcileReport};
use companion::recon::db as recondb;
use companion::server::push_queue::PeerTubePusher;
use companion::server::state::AppState;
use companion::server::worker;
use std::collections::HashMap;
use std::sync::Arc;
use testkit::fixture::FixtureDoc;
use testkit::world::*;

const N: usize = 40;

/// What the person sets on the i-th video before our first push (`None`: nobody touches it).
fn person_choice(i: usize, d: &FixtureDoc) -> Option<Option<i64>> {
    match i {
        0..10 => Some(Some(100 + (d.category - 100 + 1 + i as i64 % 5) % 18)),
        // A built-in category other than the uploader's.
        10..15 => Some(Some(((i + 7) % 18) as i64 + 1)),
        15..20 => Some(None),
        // The machine's own domain: nothing to protect, nothing to write.
        20 => Some(Some(d.category)),
        _ => None,
    }
}

/// The uploader's category every video had before anyone (built-in 1–18).
fn uploader(i: usize) -> Option<i64> {
    Some((i % 18) as i64 + 1)
}

struct Scene {
    w: World,
    rt: tokio::runtime::Runtime,
    via: Transport,
    /// video → what the person set, for the 20 that differ from the machine.
    chosen: HashMap<String, Option<i64>>,
    /// PostgreSQL's category writes to the 20 once the person is done (theirs).
    persons_pg_writes: usize,
}

impl Scene {
    fn new(seed: u64, with_pg: bool) -> Scene {
        let mut w = World::new(N, seed, with_pg, StandInConfig::default(), uploader);
        let via = if with_pg { Transport::Db } else { Transport::Api };
        w.cfg.peertube.transport = via;
        let rt = rt();
        let mut chosen = w.people_set(&rt, person_choice);
        // The 21st set the machine's own domain: not among the 20.
        chosen.remove(w.docs[20].video.as_str());
        assert_eq!(w.pushed_count(), 0, "nothing pushed yet");
        let mut sc = Scene { w, rt, via, chosen, persons_pg_writes: 0 };
        sc.persons_pg_writes = sc.pg_writes_to_the_20();
        if with_pg {
            assert_eq!(sc.persons_pg_writes, 20, "each of the 20 changed once, by the person");
        }
        sc
    }

    fn push(&self) -> PushSummary {
        let opts = PushOptions { limit: None, dry_run: false, transport: self.via, batch_size: 10, command: "push-pending".into() };
        self.rt.block_on(push::push(&self.w.cfg, &self.w.env, &opts, None)).unwrap()
    }

    fn reconcile(&self, adopt: bool) -> ReconcileReport {
        self.rt.block_on(reconcile_with(&self.w.cfg, &self.w.env, ReconcileOptions { repair: false, adopt, dry_run: false, via: self.via })).unwrap()
    }

    /// PeerTube's category of a video now.
    fn category(&self, d: &FixtureDoc) -> Option<i64> {
        if self.w.pg.is_some() {
            self.w.pg_videos()[&d.video].map(i64::from)
        } else {
            self.w.standin.category(&d.video).unwrap()
        }
    }

    fn pg_writes_to_the_20(&self) -> usize {
        if self.w.pg.is_none() {
            return 0;
        }
        let writes = self.w.pg_writes();
        self.w.docs.iter().filter(|d| self.chosen.contains_key(d.video.as_str())).map(|d| writes.get(&d.video).copied().unwrap_or(0) as usize).sum()
    }

    /// Writes of ours that reached the 20: PUTs by the companion's account, or PostgreSQL writes beyond the person's.
    fn our_writes_to_the_20(&self) -> usize {
        let ours = self.w.cfg.peertube.username.clone();
        let puts = self.w.standin.with(|i| i.put_log.iter().filter(|r| r.user == ours && self.chosen.contains_key(&r.video)).count());
        puts + self.pg_writes_to_the_20() - self.persons_pg_writes
    }

    /// The push wrote every untouched video and left the 20 as the person set them.
    fn assert_first_push(&self, s: &PushSummary) {
        assert_eq!(s.left_to_people.len(), 20, "{:?}", s.left_to_people);
        let left: Vec<&String> = s.left_to_people.iter().map(|(h, _)| h).collect();
        for (i, d) in self.w.docs.iter().enumerate() {
            match person_choice(i, d) {
                Some(c) if i < 20 => {
                    assert!(left.contains(&&d.hash), "doc {i} not listed as left to people");
                    assert_eq!(self.category(d), c, "doc {i}: the person's value stays");
                    assert_eq!(self.w.pushed_at(&d.hash), None, "doc {i}: not recorded as pushed");
                }
                _ => {
                    assert_eq!(self.category(d), Some(d.category), "doc {i}: the machine's domain");
                    assert!(self.w.pushed_at(&d.hash).is_some(), "doc {i}");
                }
            }
        }
        let moderator_line = s.left_to_people.iter().find(|(h, _)| *h == self.w.docs[0].hash).unwrap();
        assert!(moderator_line.1.contains("set by moderator at "), "{}", moderator_line.1);
        assert_eq!(self.our_writes_to_the_20(), 0);
    }

    /// After the adoption: 10 manual_assigned with the person's domain (pushed: PeerTube holds it), 10 overrides.
    fn assert_taken(&self) {
        let overrides = recondb::list_overrides(&self.w.conn()).unwrap();
        assert_eq!(overrides.len(), 10, "{overrides:?}");
        for (i, d) in self.w.docs.iter().enumerate().take(20) {
            let (domain, status): (Option<String>, Option<String>) = self
                .w
                .conn()
                .query_row("SELECT recon_domain, recon_domain_status FROM documents WHERE hash = ?1", [&d.hash], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap();
            match person_choice(i, d) {
                Some(Some(c)) if c >= 100 => {
                    let label = shared_constants::by_id(c as u16).unwrap().label;
                    assert_eq!((domain.as_deref(), status.as_deref()), (Some(label), Some("manual_assigned")), "doc {i}");
                    assert!(self.w.pushed_at(&d.hash).is_some(), "doc {i}: PeerTube holds it already");
                }
                c => {
                    let o = overrides.iter().find(|o| o.hash == d.hash).unwrap_or_else(|| panic!("no override for doc {i}"));
                    assert_eq!((o.category, o.changed_by.as_deref()), (c.unwrap(), Some("moderator")));
                    assert_eq!(domain.as_deref(), Some(d.domain.as_str()), "doc {i}: the row itself is untouched");
                }
            }
        }
    }
}

fn first_push_leaves_people_alone(with_pg: bool, seed: u64) {
    let sc = Scene::new(seed, with_pg);
    let s = sc.push();
    assert_eq!((s.selected, s.pushed, s.already_set, s.failed), (N as u64, N as u64 - 21, 1, 0), "{s:?}");
    sc.assert_first_push(&s);

    // Still owed a push, still left alone: a second push sends nothing.
    let again = sc.push();
    assert_eq!((again.selected, again.pushed, again.already_set, again.left_to_people.len()), (20, 0, 0, 20), "{again:?}");
    assert_eq!(sc.our_writes_to_the_20(), 0);

    // Reported as people's changes (not drift), then taken.
    let rep = sc.reconcile(false);
    assert!(rep.plugin_log);
    assert_eq!(rep.people.len(), 20, "{:?}", rep.people);
    assert!(rep.drift.is_empty(), "{:?}", rep.drift);
    assert_eq!(rep.pushed_documents, N as u64 - 20);
    let taken = sc.reconcile(true).adopt.unwrap();
    assert_eq!((taken.adopted.len(), taken.overridden.len(), taken.changed_meanwhile), (10, 10, 0), "{taken:?}");
    sc.assert_taken();
    let after = sc.reconcile(false);
    assert!(after.people.is_empty() && after.drift.is_empty(), "{:?} {:?}", after.people, after.drift);
    // The 10 overridden were never pushed: listed as overrides, not surveyed.
    assert_eq!(after.in_sync, N as u64 - 10);
    let nothing = sc.push();
    assert_eq!((nothing.selected, nothing.left_to_people.len()), (0, 0), "{nothing:?}");
    assert_eq!(sc.our_writes_to_the_20(), 0);

    // The operator overrules the person: the machine's categories go to PeerTube.
    let run_id = taken.run_id.unwrap();
    let restorer = companion::peertube::restore::restorer_for_run(&sc.w.cfg, &sc.w.conn(), &run_id, None).unwrap();
    let r = rollback::rollback(&sc.w.env, &run_id, false, false, restorer).unwrap();
    assert!(r.conflicts.is_empty() && r.failed.is_empty(), "{r:?}");
    assert_eq!((r.rows_restored, r.overrides_restored, r.videos_restored), (10, 10, 20), "{r:?}");
    let last = sc.push();
    assert_eq!((last.selected, last.already_set, last.pushed, last.left_to_people.len()), (20, 20, 0, 0), "{last:?}");
    for d in &sc.w.docs {
        assert_eq!(sc.category(d), Some(d.category));
    }
    assert_eq!(sc.w.pushed_count(), N as i64);
}

#[test]
fn a_persons_category_before_our_first_push_is_left_alone_then_adopted_api_only() {
    first_push_leaves_people_alone(false, 191);
}

#[test]
fn a_persons_category_before_our_first_push_is_left_alone_then_adopted_with_postgresql() {
    first_push_leaves_people_alone(true, 192);
}

#[test]
fn the_worker_takes_a_persons_category_before_it_pushes() {
    let sc = Scene::new(193, false);
    let st =
        AppState::new(sc.w.cfg.clone(), sc.w.env.clone(), Arc::new(PeerTubePusher::new(sc.w.cfg.clone(), sc.w.env.clone(), sc.rt.handle().clone()))).unwrap();
    // Every document queued as owed, as new assignments are.
    {
        let mut q = st.retry.lock().unwrap();
        for d in &sc.w.docs {
            q.add(&d.hash, 0);
        }
    }
    let mut adopted = 0;
    for _poll in 0..2 {
        worker::check_peertube_now(&st);
        let t = worker::tick(&st).unwrap();
        assert_eq!(t.skipped, None);
        adopted += t.adopted;
    }
    assert_eq!(adopted, 20);
    sc.assert_taken();
    assert_eq!(sc.our_writes_to_the_20(), 0);
    for (i, d) in sc.w.docs.iter().enumerate().skip(20) {
        assert_eq!(sc.category(d), Some(d.category), "doc {i}: pushed by the worker");
    }
    assert!(st.retry.lock().unwrap().is_empty(), "nothing owed: pushed, adopted or overridden");
}

/// Between full surveys the worker's adopt step costs the plugin's log (one
/// request) and a read of each video the log names; a change the log cannot
/// show waits for the next full survey (`full_survey_secs`).
#[test]
fn between_full_surveys_the_worker_reads_only_what_the_log_names() {
    let w = World::new(N, 194, false, StandInConfig::default(), uploader);
    assert_eq!(companion::cli::peertube::push_pending(&w.ctx(), &push_args(false, None, Transport::Api)).unwrap(), 0);
    let rt = rt();
    let state = |cfg: companion::config::Config| {
        let st = AppState::new(cfg.clone(), w.env.clone(), Arc::new(PeerTubePusher::new(cfg, w.env.clone(), rt.handle().clone()))).unwrap();
        worker::check_peertube_now(&st);
        assert!(st.peertube_check().ok, "{}", st.peertube_check().detail);
        st
    };
    let st = state(w.cfg.clone());
    let cost = |st: &AppState| {
        let before = w.standin.with(|i| (i.list_requests, i.changes_requests, i.video_gets));
        let t = worker::tick(st).unwrap();
        assert_eq!(t.skipped, None);
        let after = w.standin.with(|i| (i.list_requests, i.changes_requests, i.video_gets));
        (t.adopted, after.0 - before.0, after.1 - before.1, after.2 - before.2)
    };
    // (taken, list pages, log reads, video GETs)
    assert_eq!(cost(&st), (0, 1, 1, 0), "the first poll reads every pushed video: one list page for 40");
    assert_eq!(cost(&st), (0, 0, 1, 0), "nothing changed: the log alone");

    let (moderator, d) = (w.moderator(), &w.docs[5]);
    let to = 100 + (d.category - 100 + 3) % 18;
    w.person_sets(&rt, &moderator, &d.video, Some(to));
    assert_eq!(cost(&st), (1, 0, 1, 1), "the one video the log names is read and taken");
    let status: String = w.conn().query_row("SELECT recon_domain_status FROM documents WHERE hash = ?1", [&d.hash], |r| r.get(0)).unwrap();
    assert_eq!(status, "manual_assigned");
    assert_eq!(cost(&st), (0, 0, 1, 0));

    // Set behind the plugin's back (a direct database edit): not in the log.
    let quiet = w.docs[6].video.clone();
    w.standin.state.lock().unwrap().videos.get_mut(quiet.as_str()).unwrap().category = Some(3);
    assert_eq!(cost(&st), (0, 0, 1, 0), "the log cannot show it");
    let mut every_poll = w.cfg.clone();
    every_poll.peertube.full_survey_secs = 0;
    let st = state(every_poll);
    assert_eq!(cost(&st), (1, 1, 1, 0), "a full survey finds it by comparison");
    assert_eq!(cost(&st), (0, 1, 1, 0), "full_survey_secs = 0: every poll reads every pushed video");
    assert!(recondb::is_overridden(&w.conn(), &w.docs[6].hash).unwrap());
}
