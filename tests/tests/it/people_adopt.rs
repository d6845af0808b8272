//! People win: a moderator changes 20 pushed videos in PeerTube (10 to other
//! RECON domains, 5 to built-in categories, 5 cleared); `reconcile --adopt` (or
//! the service's worker) takes them — 10 `manual_assigned`, 10 overrides — and
//! no later push, repair or worker tick sends a request for any of them;
//! `rollback --run` of the adoption restores the rows. API only, and with
//! PeerTube's PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use companion::cli::peertube as cli;
use companion::config::Transport;
use companion::engine::rollback;
use companion::journal;
use companion::peertube::people::Action;
use companion::peertube::reconcile::{reconcile_with, ReconcileOptions, ReconcileReport};
use companion::recon::db as recondb;
use companion::server::push_queue::PeerTubePusher;
use companion::server::state::AppState;
use companion::server::worker;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use testkit::fixture::FixtureDoc;
use testkit::world::*;

use crate::server_support;

const N: usize = 40;

/// What the person sets on the i-th of the 20 (None for the other 20).
fn person_choice(i: usize, d: &FixtureDoc) -> Option<Option<i64>> {
    match i {
        // Another of our 18.
        0..10 => Some(Some(100 + (d.category - 100 + 1 + i as i64 % 5) % 18)),
        // A built-in category.
        10..15 => Some(Some((i % 18) as i64 + 1)),
        // Cleared.
        15..20 => Some(None),
        _ => None,
    }
}

struct Scene {
    w: World,
    rt: tokio::runtime::Runtime,
    via: Transport,
    /// video → what the person set.
    chosen: HashMap<String, Option<i64>>,
    /// hash → the machine's status before anything (the fixture mixes them).
    machine_status: HashMap<String, Option<String>>,
}

impl Scene {
    fn new(seed: u64, with_pg: bool, cfg: StandInConfig) -> Scene {
        let mut w = World::new(N, seed, with_pg, cfg, |_| None);
        let via = if with_pg { Transport::Db } else { Transport::Api };
        // The operator's configured transport: what a rollback of the adoption writes PeerTube through.
        w.cfg.peertube.transport = via;
        assert_eq!(cli::push_pending(&w.ctx(), &push_args(false, None, via)).unwrap(), 0);
        assert_eq!(w.pushed_count(), N as i64);
        let machine_status = w
            .docs
            .iter()
            .map(|d| (d.hash.clone(), w.conn().query_row("SELECT recon_domain_status FROM documents WHERE hash = ?1", [&d.hash], |r| r.get(0)).unwrap()))
            .collect();
        let rt = rt();
        let chosen = w.people_set(&rt, person_choice);
        assert_eq!(chosen.len(), 20);
        Scene { w, rt, via, chosen, machine_status }
    }

    fn reconcile(&self, repair: bool, adopt: bool, dry_run: bool) -> ReconcileReport {
        self.rt.block_on(reconcile_with(&self.w.cfg, &self.w.env, ReconcileOptions { repair, adopt, dry_run, via: self.via })).unwrap()
    }

    /// PUTs the companion's account sent for the 20.
    fn our_puts_to_the_20(&self) -> usize {
        let ours = self.w.cfg.peertube.username.clone();
        self.w.standin.with(|i| i.put_log.iter().filter(|r| r.user == ours && self.chosen.contains_key(&r.video)).count())
    }

    /// Category writes PostgreSQL saw for the 20 (the push's and the person's: 2 each).
    fn pg_writes_to_the_20(&self) -> i64 {
        let writes = self.w.pg_writes();
        self.w.docs.iter().filter(|d| self.chosen.contains_key(d.video.as_str())).map(|d| writes.get(&d.video).copied().unwrap_or(0)).sum()
    }

    fn status(&self, hash: &str) -> (Option<String>, Option<String>, Option<String>) {
        self.w
            .conn()
            .query_row("SELECT recon_domain, recon_domain_status, peertube_category_pushed_at FROM documents WHERE hash = ?1", [hash], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap()
    }

    /// The 10 are manual_assigned with the person's domain, the 10 others overrides.
    fn assert_taken(&self, by: Option<&str>) {
        let overrides = recondb::list_overrides(&self.w.conn()).unwrap();
        assert_eq!(overrides.len(), 10, "{overrides:?}");
        for (i, d) in self.w.docs.iter().enumerate() {
            let (domain, status, pushed) = self.status(&d.hash);
            match person_choice(i, d) {
                Some(Some(c)) if c >= 100 => {
                    let label = shared_constants::by_id(c as u16).unwrap().label;
                    assert_eq!((domain.as_deref(), status.as_deref()), (Some(label), Some("manual_assigned")), "doc {i}");
                    assert!(pushed.is_some(), "PeerTube holds it already: nothing to push");
                }
                Some(c) => {
                    let o = overrides.iter().find(|o| o.hash == d.hash).unwrap_or_else(|| panic!("no override for doc {i}"));
                    assert_eq!(o.category, c);
                    assert_eq!(o.changed_by.as_deref(), by);
                    assert_eq!((domain.as_deref(), status), (Some(d.domain.as_str()), self.machine_status[&d.hash].clone()), "the row itself is untouched");
                }
                None => assert_eq!((domain.as_deref(), status), (Some(d.domain.as_str()), self.machine_status[&d.hash].clone())),
            }
        }
    }

    /// A push, a repair and a worker tick later: not one request for the 20.
    fn assert_left_alone(&self) {
        let (puts_before, pg_before) = (self.our_puts_to_the_20(), if self.w.pg.is_some() { self.pg_writes_to_the_20() } else { 0 });
        // The machine owes the overridden videos a push again (as a reassessment that changed their domain would leave them).
        self.w
            .conn()
            .execute(
                &format!("UPDATE documents SET peertube_category_pushed_at = NULL WHERE {}", recondb::OVERRIDDEN_SQL.replace("d.hash", "documents.hash")),
                [],
            )
            .unwrap();
        let s = companion::peertube::push::dry_run(
            &self.w.env,
            &companion::peertube::push::PushOptions { limit: None, dry_run: true, transport: self.via, batch_size: 10, command: "push-pending".into() },
        )
        .unwrap();
        assert_eq!(s.selected, 0, "overridden videos are never selected");
        assert_eq!(cli::push_pending(&self.w.ctx(), &push_args(false, None, self.via)).unwrap(), 0);

        // The service's worker, with every one of the 20 queued as if owed.
        let st = AppState::new(
            self.w.cfg.clone(),
            self.w.env.clone(),
            Arc::new(PeerTubePusher::new(self.w.cfg.clone(), self.w.env.clone(), self.rt.handle().clone())),
        )
        .unwrap();
        worker::check_peertube_now(&st);
        assert!(st.peertube_check().ok, "{}", st.peertube_check().detail);
        {
            let mut q = st.retry.lock().unwrap();
            for d in self.w.docs.iter().filter(|d| self.chosen.contains_key(d.video.as_str())) {
                q.add(&d.hash, 0);
            }
        }
        let before = self.w.standin.with(|i| (i.list_requests, i.changes_requests, i.put_log.len()));
        let t = worker::tick(&st).unwrap();
        assert_eq!(t.adopted, 0, "nothing new to take");
        assert_eq!(t.skipped, None);
        // The cost of looking, per tick: the plugin's log once, and PeerTube's
        // categories in one PostgreSQL query or one list page per 100 local videos.
        let after = self.w.standin.with(|i| (i.list_requests, i.changes_requests, i.put_log.len()));
        let pages = if self.w.pg.is_some() { 0 } else { N.div_ceil(100) as u64 };
        assert_eq!((after.0 - before.0, after.1 - before.1, after.2 - before.2), (pages, 1, 0));

        // Real drift on an untouched document (its domain changed after the push): the repair fixes that one only.
        let other = &self.w.docs[30];
        let new_label = shared_constants::by_id((100 + (other.category - 100 + 1) % 18) as u16).unwrap().label;
        self.w.conn().execute("UPDATE documents SET recon_domain = ?2 WHERE hash = ?1", [other.hash.as_str(), new_label]).unwrap();
        let rep = self.reconcile(true, false, false);
        assert!(rep.people.is_empty(), "{:?}", rep.people);
        assert_eq!(rep.drift.len(), 1, "{:?}", rep.drift);
        assert_eq!(rep.drift[0].hash, other.hash);
        let repair = rep.repair.expect("a repair ran");
        assert_eq!(repair.pushed, 1, "{repair:?}");

        assert_eq!(self.our_puts_to_the_20(), puts_before, "no PUT of ours reached any of the 20");
        if self.w.pg.is_some() {
            assert_eq!(self.pg_writes_to_the_20(), pg_before, "no write reached any of the 20 in PostgreSQL");
        }
        for d in self.w.docs.iter().filter(|d| self.chosen.contains_key(d.video.as_str())) {
            let now = if self.w.pg.is_some() { self.w.pg_videos()[&d.video].map(i64::from) } else { self.w.standin.category(&d.video).unwrap() };
            assert_eq!(now, self.chosen[d.video.as_str()], "the person's value stays");
        }
    }
}

fn adopt_and_roll_back(with_pg: bool, seed: u64) {
    let sc = Scene::new(seed, with_pg, StandInConfig::default());
    // Reported apart from drift, with who and when from the plugin.
    let rep = sc.reconcile(false, false, false);
    assert_eq!(rep.read_from, if with_pg { "postgresql" } else { "video list" });
    assert!(rep.plugin_log);
    assert_eq!(rep.people.len(), 20, "{:?}", rep.drift);
    assert!(rep.drift.is_empty(), "{:?}", rep.drift);
    assert_eq!(rep.in_sync, 20);
    assert!(rep.people.iter().all(|p| p.by.as_deref() == Some("moderator") && p.at.is_some()));
    assert_eq!(cli::reconcile_cmd(&sc.w.ctx(), false, false, false, None).unwrap(), 1, "untaken changes → exit 1");

    // Dry run first: what would be adopted or overridden; nothing written.
    let runs_before = journal::list_runs(&sc.w.conn(), 1000).unwrap().len();
    let dry = sc.reconcile(false, true, true).adopt.unwrap();
    assert!(dry.dry_run && dry.run_id.is_none());
    assert_eq!((dry.adopted.len(), dry.overridden.len()), (10, 10));
    assert!(dry.adopted.iter().all(|p| matches!(p.action, Action::Adopt { .. })));
    assert_eq!(journal::list_runs(&sc.w.conn(), 1000).unwrap().len(), runs_before);
    assert!(recondb::list_overrides(&sc.w.conn()).unwrap().is_empty());

    let taken = sc.reconcile(false, true, false).adopt.unwrap();
    assert_eq!((taken.adopted.len(), taken.overridden.len(), taken.changed_meanwhile), (10, 10, 0));
    let run_id = taken.run_id.clone().unwrap();
    sc.assert_taken(Some("moderator"));
    let again = sc.reconcile(false, false, false);
    assert!(again.people.is_empty() && again.drift.is_empty(), "{:?} {:?}", again.people, again.drift);
    assert_eq!((again.in_sync, again.overridden), (30, 10));

    sc.assert_left_alone();

    // Undo the adoption: rows back to the machine's, overrides gone, and PeerTube
    // back to what we had written (only where it still holds the person's value).
    let ctx = sc.w.ctx();
    let restorer = companion::peertube::restore::restorer_for_run(&ctx.cfg, &sc.w.conn(), &run_id, None).unwrap();
    let s = rollback::rollback(&sc.w.env, &run_id, false, false, restorer).unwrap();
    assert!(s.conflicts.is_empty() && s.failed.is_empty(), "{s:?}");
    assert_eq!((s.rows_restored, s.overrides_restored, s.videos_restored), (10, 10, 20), "{s:?}");
    assert!(recondb::list_overrides(&sc.w.conn()).unwrap().is_empty());
    for (i, d) in sc.w.docs.iter().enumerate().take(10) {
        let (domain, status, _) = sc.status(&d.hash);
        assert_eq!((domain.as_deref(), status), (Some(d.domain.as_str()), sc.machine_status[&d.hash].clone()), "doc {i}");
    }
    let after = sc.reconcile(false, false, false);
    assert!(after.people.is_empty(), "{:?}", after.people);
    assert_eq!(after.overridden, 0);
}

#[test]
fn adopt_api_only_then_nothing_is_sent_and_rollback_restores() {
    adopt_and_roll_back(false, 181);
}

#[test]
fn adopt_with_postgresql_then_nothing_is_sent_and_rollback_restores() {
    adopt_and_roll_back(true, 182);
}

#[test]
fn without_the_plugin_log_the_comparison_still_tells() {
    let sc = Scene::new(183, false, StandInConfig { plugin_changes: false, ..StandInConfig::default() });
    let rep = sc.reconcile(false, true, false);
    assert!(!rep.plugin_log);
    assert_eq!(rep.people.len(), 20);
    assert!(rep.people.iter().all(|p| p.by.is_none()));
    sc.assert_taken(None);
}

#[test]
fn the_worker_takes_them_within_two_polls() {
    let sc = Scene::new(184, false, StandInConfig::default());
    let st =
        AppState::new(sc.w.cfg.clone(), sc.w.env.clone(), Arc::new(PeerTubePusher::new(sc.w.cfg.clone(), sc.w.env.clone(), sc.rt.handle().clone()))).unwrap();
    // The service checks PeerTube on its own thread beside its first tick.
    let mut taken = 0;
    for _poll in 0..2 {
        worker::check_peertube_now(&st);
        taken += worker::tick(&st).unwrap().adopted;
    }
    assert_eq!(taken, 20);
    sc.assert_taken(Some("moderator"));
    let runs = journal::list_runs(&sc.w.conn(), 10).unwrap();
    assert!(runs.iter().any(|r| r.command == "worker-adopt"), "{runs:?}");
    sc.assert_left_alone();
}

#[test]
fn handing_back_returns_the_video_to_the_machine() {
    let sc = Scene::new(185, false, StandInConfig::default());
    sc.reconcile(false, true, false);
    let o = recondb::list_overrides(&sc.w.conn()).unwrap().remove(0);
    let h = companion::peertube::adopt::hand_back(&sc.w.env, &o.hash).unwrap();
    assert!(h.override_removed);
    assert!(!recondb::is_overridden(&sc.w.conn(), &o.hash).unwrap());
    assert_eq!(sc.status(&o.hash), (None, None, None), "cleared: the next backfill recomputes it");
    // Journaled: the hand-back can be undone too.
    let s = rollback::rollback(&sc.w.env, &h.run_id, false, false, None).unwrap();
    assert_eq!((s.rows_restored, s.overrides_restored), (1, 1), "{s:?}");
    assert!(recondb::is_overridden(&sc.w.conn(), &o.hash).unwrap());
}

#[test]
fn the_plugin_route_needs_a_token() {
    let w = World::new(1, 186, false, StandInConfig::default(), |_| None);
    let addr = w.standin.url.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(s, "GET /plugins/recon-domains/router/changes HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert_eq!(w.standin.with(|i| i.changes_requests), 0);
}

#[test]
fn the_dashboard_lists_overrides_and_hands_one_back() {
    let mut sc = Scene::new(187, false, StandInConfig::default());
    sc.reconcile(false, true, false);
    sc.w.cfg.server.password_hash = Some(companion::server::auth::hash_password_cheap(server_support::PASSWORD).unwrap());
    let st =
        AppState::new(sc.w.cfg.clone(), sc.w.env.clone(), Arc::new(PeerTubePusher::new(sc.w.cfg.clone(), sc.w.env.clone(), sc.rt.handle().clone()))).unwrap();
    let overrides = recondb::list_overrides(&sc.w.conn()).unwrap();
    let o = overrides[0].clone();
    let page_rt = rt();
    page_rt.block_on(async {
        let mut c = server_support::Client::new(&st);
        // Not logged in: no list.
        assert_eq!(c.get("/peertube/overrides").await.status.as_u16(), 303);
        c.login(server_support::PASSWORD).await;
        let page = c.get("/peertube/overrides").await;
        assert_eq!(page.status.as_u16(), 200, "{}", page.body);
        assert_eq!(page.body.matches("Hand back to the machine").count(), 10);
        assert!(page.body.contains(&o.video) && page.body.contains("moderator"), "{}", page.body);
        // Without the CSRF token the form is refused.
        let refused = c.post_form(&format!("/peertube/overrides/{}/hand-back", o.hash), &[]).await;
        assert_eq!(refused.status.as_u16(), 403, "{}", refused.body);
        assert!(recondb::is_overridden(&sc.w.conn(), &o.hash).unwrap());
        let csrf = c.csrf.clone().expect("csrf");
        let done = c.post_form(&format!("/peertube/overrides/{}/hand-back", o.hash), &[("csrf", &csrf)]).await;
        assert_eq!(done.status.as_u16(), 303, "{}", done.body);
        let page = c.get("/peertube/overrides").await;
        assert_eq!(page.body.matches("Hand back to the machine").count(), 9);
    });
    assert!(!recondb::is_overridden(&sc.w.conn(), &o.hash).unwrap());
    assert_eq!(sc.status(&o.hash), (None, None, None));
    let runs = journal::list_runs(&sc.w.conn(), 5).unwrap();
    assert_eq!(runs[0].command, "hand-back");
}
