//! A test world around the PeerTube stand-in: a temp dir with a RECON db of assigned documents, the stand-in holding their videos, optionally a scratch PostgreSQL database with PeerTube's `video` table.

pub use crate::peertube::{FakeVideo, Inject, Inner, StandIn, StandInConfig};

use crate::fixture::{self, FixtureDoc, ScratchPg};
use companion::cli::assign::AssignArgs;
use companion::cli::Ctx;
use companion::config::Config;
use companion::config::Transport;
use companion::context::Context;
use companion::context::Env;
use companion::journal::{self, Entry};
use companion::peertube::video_id::VideoUuid;
use std::collections::HashMap;
use std::path::PathBuf;

pub struct World {
    pub dir: tempfile::TempDir,
    pub standin: StandIn,
    pub pg: Option<ScratchPg>,
    pub docs: Vec<FixtureDoc>,
    pub cfg: Config,
    pub env: Env,
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

impl World {
    /// `n` assigned documents; their videos exist in the stand-in (category
    /// `prior(i)`), and in PostgreSQL too when `with_pg`.
    pub fn new(n: usize, seed: u64, with_pg: bool, standin: StandInConfig, prior: impl Fn(usize) -> Option<i64>) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let password = standin.password.clone();
        let standin = StandIn::start(standin).expect("stand-in");
        let db = dir.path().join("recon.db");
        let docs = fixture::recon_db(&db, n, seed).expect("fixture recon.db");
        for (i, d) in docs.iter().enumerate() {
            standin.add_video(&d.video, prior(i), false);
        }
        let pw_env = format!("RECON_COMPANION_TEST_PW_{:016X}", rand::random::<u64>());
        std::env::set_var(&pw_env, password);
        let mut cfg = Config { recon_db: db, reports_dir: dir.path().join("reports"), concepts_dir: dir.path().join("concepts"), ..Default::default() };
        cfg.peertube.url = standin.url.clone();
        cfg.peertube.host_header = Some("stream.echo6.co".into());
        cfg.peertube.password_env = pw_env;
        cfg.peertube.token_cache = Some(dir.path().join("cache/token.json"));
        cfg.peertube.rate_per_sec = 200.0;
        // Tests reason about "requests in flight" (a kill with N writes stalled): pin the bound.
        cfg.peertube.concurrency = 4;
        cfg.peertube.timeout_secs = 5;
        cfg.peertube.db_password_env = "RECON_COMPANION_TEST_NO_SUCH_PG_PASSWORD".into();
        let pg = if with_pg {
            let pg = rt().block_on(async {
                let pg = ScratchPg::create().await.expect("scratch PostgreSQL database (is PostgreSQL on 127.0.0.1:5432?)");
                let c = pg.connect().await.expect("connect");
                let videos: Vec<_> = docs.iter().enumerate().map(|(i, d)| (d.video.clone(), prior(i).map(|c| c as i32), false)).collect();
                companion::peertube::db::insert_videos(&c, &videos).await.expect("insert videos");
                // Count every category write, to prove nothing is written twice.
                c.batch_execute(
                    "CREATE TABLE category_writes(uuid uuid, old integer, new integer, at timestamptz DEFAULT clock_timestamp());
                     CREATE FUNCTION note_write() RETURNS trigger AS $$ BEGIN
                       IF OLD.category IS DISTINCT FROM NEW.category THEN
                         INSERT INTO category_writes(uuid, old, new) VALUES (NEW.uuid, OLD.category, NEW.category);
                       END IF; RETURN NEW; END $$ LANGUAGE plpgsql;
                     CREATE TRIGGER video_category_writes AFTER UPDATE ON video FOR EACH ROW EXECUTE FUNCTION note_write();",
                )
                .await
                .expect("trigger");
                pg
            });
            cfg.peertube.db_url = Some(pg.url.clone());
            Some(pg)
        } else {
            None
        };
        let mut env = Env::from_config(&cfg);
        env.progress = false;
        World { dir, standin, pg, docs, cfg, env }
    }

    pub fn ctx(&self) -> Ctx {
        Ctx { context: Context { cfg: self.cfg.clone(), env: self.env.clone() }, json: false }
    }

    pub fn db_path(&self) -> PathBuf {
        self.cfg.recon_db.clone()
    }

    /// Runs SQL against the scratch PeerTube database.
    pub fn pg_exec(&self, sql: &str) {
        let pg = self.pg.as_ref().expect("world without PostgreSQL");
        rt().block_on(async { pg.connect().await.expect("connect").batch_execute(sql).await.expect(sql) });
    }

    /// uuid → (category, remote) of every video in PostgreSQL.
    pub fn pg_videos(&self) -> HashMap<VideoUuid, Option<i32>> {
        self.pg_by_video("SELECT uuid::text, category FROM video")
    }

    /// Category writes per video, counted by the trigger.
    pub fn pg_writes(&self) -> HashMap<VideoUuid, i64> {
        self.pg_by_video("SELECT uuid::text, count(*) FROM category_writes GROUP BY 1")
    }

    /// `sql`'s rows (uuid text, value) as uuid → value.
    fn pg_by_video<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> HashMap<VideoUuid, T> {
        let pg = self.pg.as_ref().expect("world without PostgreSQL");
        rt().block_on(async {
            let c = pg.connect().await.expect("connect");
            c.query(sql, &[]).await.expect("select").iter().map(|r| (VideoUuid::parse(r.get::<_, &str>(0)).expect("uuid"), r.get(1))).collect()
        })
    }

    pub fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db_path()).expect("open recon.db")
    }

    pub fn pushed_at(&self, hash: &str) -> Option<String> {
        self.conn().query_row("SELECT peertube_category_pushed_at FROM documents WHERE hash = ?1", [hash], |r| r.get(0)).expect("documents row")
    }

    pub fn pushed_count(&self) -> i64 {
        self.conn().query_row("SELECT count(*) FROM documents WHERE peertube_category_pushed_at IS NOT NULL", [], |r| r.get(0)).expect("count")
    }

    pub fn entries(&self, run_id: &str) -> Vec<Entry> {
        journal::entries(&self.conn(), run_id).expect("journal")
    }

    pub fn all_video_entries(&self) -> Vec<(String, String, String)> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT run_id, key, state FROM companion_journal WHERE kind = 'video' ORDER BY id").expect("prepare");
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).expect("query").collect::<Result<Vec<_>, _>>().expect("rows");
        rows
    }
}

impl World {
    /// An API client logged in as the stand-in's moderator (a person, not the companion).
    pub fn moderator(&self) -> companion::peertube::api::ApiClient {
        let (user, password) = self.standin.with(|i| i.cfg.as_ref().and_then(|c| c.moderator.clone())).expect("stand-in without a moderator");
        let env = format!("RECON_COMPANION_TEST_MOD_PW_{:016X}", rand::random::<u64>());
        std::env::set_var(&env, password);
        let mut cfg = self.cfg.clone();
        cfg.peertube.username = user;
        cfg.peertube.password_env = env;
        cfg.peertube.token_cache = Some(self.dir.path().join("cache/moderator-token.json"));
        companion::peertube::api::ApiClient::from_config(&cfg).expect("moderator client")
    }

    /// A person sets `video`'s category in PeerTube: a PUT as the moderator
    /// (the plugin's hook sees it), mirrored into PostgreSQL as PeerTube's own
    /// update would be when the world has one.
    /// `rt` is the runtime the client's connections live on (one per client).
    pub fn person_sets(&self, rt: &tokio::runtime::Runtime, client: &companion::peertube::api::ApiClient, video: &VideoUuid, category: Option<i64>) {
        rt.block_on(client.set_category(video, category)).expect("moderator PUT");
        if self.pg.is_some() {
            let c = category.map(|c| c.to_string()).unwrap_or_else(|| "NULL".into());
            self.pg_exec(&format!("UPDATE video SET category = {c} WHERE uuid = '{video}'"));
        }
    }
}

impl World {
    /// The moderator sets what `choice(i, doc)` says on each document's video
    /// (`None`: left alone); video → what was set.
    pub fn people_set(&self, rt: &tokio::runtime::Runtime, choice: impl Fn(usize, &FixtureDoc) -> Option<Option<i64>>) -> HashMap<String, Option<i64>> {
        let moderator = self.moderator();
        let mut chosen = HashMap::new();
        for (i, d) in self.docs.iter().enumerate() {
            if let Some(c) = choice(i, d) {
                self.person_sets(rt, &moderator, &d.video, c);
                chosen.insert(d.video.to_string(), c);
            }
        }
        chosen
    }
}

pub fn push_args(dry_run: bool, limit: Option<u64>, via: Transport) -> AssignArgs {
    AssignArgs {
        backfill: false,
        tiebreaker_pass: false,
        reprocess_missing: false,
        push_pending: true,
        reassess: false,
        dry_run,
        limit,
        via: Some(via),
        batch_size: None,
    }
}
