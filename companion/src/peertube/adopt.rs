//! People win: surveys every pushed document (and every unpushed one whose video a person set first) against PeerTube (its PostgreSQL, or the API's list of local videos), our last writes (the journal) and the plugin's change log, then takes people's changes in one journaled run — a RECON domain adopted as `manual_assigned`, anything else recorded as an override — and hands a video back to the machine.

use crate::config::{Config, Transport};
use crate::context::Env;
use crate::error::{DbContext, Error, Result};
use crate::journal::run::Run;
use crate::journal::{self, EntryState, Kind};
use crate::peertube::api::{self, ApiClient, ChangeLog};
use crate::peertube::db::PgVideos;
use crate::peertube::ledger::{self, PushDoc};
use crate::peertube::people::{self, Action, PeerTubeSide, Seen, Verdict};
use crate::peertube::video_id::VideoUuid;
use crate::recon::db::{self as recondb, DomainColumns, Override};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// One pushed document, classified.
#[derive(Debug, Clone)]
pub struct Surveyed {
    pub doc: PushDoc,
    pub video: VideoUuid,
    pub expected: i64,
    /// PeerTube's category now (`None`: none, or no such local video).
    pub actual: Option<i64>,
    /// What we last wrote to the video.
    pub last_write: Option<i64>,
    pub verdict: Verdict,
    pub seen: Option<Seen>,
    /// recon.db records its push; false for a document still owed one whose
    /// video a person set first (surveyed only then).
    pub pushed: bool,
}

/// Every pushed document (and each unpushed one a person set first) against PeerTube, and PeerTube's totals.
#[derive(Debug, Default)]
pub struct Survey {
    pub items: Vec<Surveyed>,
    /// Pushed documents whose path or domain gives no video.
    pub unpushable: Vec<(String, String)>,
    /// Where PeerTube's categories came from (`postgresql`, `video list`).
    pub read_from: String,
    /// Whether the plugin's change log answered (who and when are known).
    pub plugin_log: bool,
    /// (category ≥ 100, videos), biggest first.
    pub distribution: Vec<(i32, i64)>,
    pub without_category: i64,
    /// Every pushed video was read (else only those the plugin's log named; no totals then).
    pub full: bool,
    /// The plugin's log as this survey read it (the next scoped survey compares against it).
    pub log: Option<ChangeLog>,
}

/// A person's change, as reported and taken.
#[derive(Debug, Clone, Serialize)]
pub struct PersonItem {
    pub hash: String,
    pub video: String,
    /// recon.db's domain before.
    pub domain: String,
    /// What we had written to PeerTube (for a video not written yet, what we would have).
    pub ours: Option<i64>,
    /// What the person set (`None`: cleared).
    pub to: Option<i64>,
    #[serde(flatten)]
    pub action: Action,
    pub by: Option<String>,
    pub at: Option<String>,
}

impl PersonItem {
    fn of(s: &Surveyed, to: Option<i64>) -> PersonItem {
        PersonItem {
            hash: s.doc.hash.clone(),
            video: s.video.to_string(),
            domain: s.doc.domain.clone(),
            ours: if s.pushed { s.last_write } else { Some(s.expected) },
            to,
            action: people::action_for(to),
            by: s.seen.as_ref().and_then(|x| x.user.clone()),
            at: s.seen.as_ref().and_then(|x| x.at.clone()),
        }
    }
}

/// What taking people's changes did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdoptSummary {
    pub dry_run: bool,
    pub run_id: Option<String>,
    pub report: Option<String>,
    pub adopted: Vec<PersonItem>,
    pub overridden: Vec<PersonItem>,
    /// Rows that changed in recon.db since the survey: left for the next one.
    pub changed_meanwhile: u64,
}

impl Survey {
    /// People's changes found by the survey.
    pub fn people(&self) -> Vec<PersonItem> {
        self.items
            .iter()
            .filter_map(|s| match s.verdict {
                Verdict::Person { to } => Some(PersonItem::of(s, to)),
                _ => None,
            })
            .collect()
    }
}

/// PeerTube's side of the survey: each video's state, the distribution, the videos without category, and the source's name.
type PeerTubeView = (HashMap<VideoUuid, PeerTubeSide>, Vec<(i32, i64)>, i64, &'static str);

/// PeerTube's PostgreSQL when `db_url` is set and it answers.
async fn connect_pg(cfg: &Config) -> Option<PgVideos> {
    cfg.peertube.db_url.as_ref()?;
    match PgVideos::connect(cfg).await {
        Ok(pg) => Some(pg),
        // The API can still tell: a read-only helper must not stop the survey.
        Err(e) => {
            tracing::warn!(error = %e, "cannot read PeerTube's PostgreSQL; asking its API instead");
            None
        }
    }
}

/// `ids`' states from PostgreSQL's rows.
async fn pg_sides(pg: &PgVideos, ids: &[&VideoUuid]) -> Result<HashMap<VideoUuid, PeerTubeSide>> {
    let rows = pg.current(ids).await?;
    Ok(ids
        .iter()
        .map(|v| {
            let side = match rows.get(*v) {
                None => PeerTubeSide::Missing,
                Some(r) if r.remote => PeerTubeSide::Remote,
                Some(r) => PeerTubeSide::Local(r.category.map(i64::from)),
            };
            ((*v).clone(), side)
        })
        .collect())
}

/// A few videos' states (a survey scoped to what the plugin's log names): one
/// PostgreSQL query, else one GET each; no totals.
async fn read_some(cfg: &Config, client: &Arc<ApiClient>, ids: &[&VideoUuid]) -> Result<(HashMap<VideoUuid, PeerTubeSide>, &'static str)> {
    if let Some(pg) = connect_pg(cfg).await {
        return Ok((pg_sides(&pg, ids).await?, "postgresql"));
    }
    let mut map = HashMap::with_capacity(ids.len());
    for v in ids {
        let side = match client.video_category(v).await {
            Ok(c) => PeerTubeSide::Local(c),
            Err(api::ApiError::NotFound(_)) => PeerTubeSide::Missing,
            Err(e) => return Err(Error::PeerTube(format!("reading video {v} in PeerTube: {e}"))),
        };
        map.insert((*v).clone(), side);
    }
    Ok((map, "per-video GET"))
}

async fn read_peertube(cfg: &Config, client: &Arc<ApiClient>, ids: &[&VideoUuid]) -> Result<PeerTubeView> {
    if let Some(pg) = connect_pg(cfg).await {
        return Ok((pg_sides(&pg, ids).await?, pg.distribution().await?, pg.without_category().await?, "postgresql"));
    }
    // No db_url: the admin's list of every local video (remote ones are not in it).
    let list = client.local_videos(usize::MAX).await.map_err(|e| Error::PeerTube(format!("reading PeerTube's list of local videos: {e}")))?.unwrap_or_default();
    let mut dist: BTreeMap<i32, i64> = BTreeMap::new();
    let mut without = 0;
    for c in list.values() {
        match c.and_then(|c| i32::try_from(c).ok()) {
            Some(c) if c >= 100 => *dist.entry(c).or_default() += 1,
            Some(_) => {}
            None => without += 1,
        }
    }
    let mut distribution: Vec<(i32, i64)> = dist.into_iter().collect();
    distribution.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let map = ids.iter().map(|v| ((*v).clone(), list.get(*v).map_or(PeerTubeSide::Missing, |c| PeerTubeSide::Local(*c)))).collect();
    Ok((map, distribution, without, "video list"))
}

/// Which videos a survey reads.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every pushed video (and each unpushed one the log or the journal knows).
    All,
    /// Only the videos whose newest entry in the plugin's log is not the one
    /// in this earlier read of it (all of them when the log cannot be read now).
    ChangedSince(&'a ChangeLog),
}

/// Surveys every pushed document, and the documents still owed a push whose
/// video a person set (the plugin saw it, or it is not what we last wrote);
/// read-only on both sides.
pub async fn survey(cfg: &Config, env: &Env) -> Result<Survey> {
    survey_in(cfg, env, Scope::All).await
}

/// [`survey`] within `scope`.
pub async fn survey_in(cfg: &Config, env: &Env, scope: Scope<'_>) -> Result<Survey> {
    let client = Arc::new(ApiClient::from_config(cfg)?);
    // Who and when, if the plugin keeps its change log; without it the comparison alone tells.
    // Read before PeerTube's categories: a change landing between the two is seen next time.
    let log = client.latest_people_changes(&cfg.peertube.username, "people's changes are found by comparison only").await;
    let only: Option<HashSet<VideoUuid>> = match (scope, &log) {
        (Scope::ChangedSince(before), Some(now)) => Some(api::changed_since(before, now).into_iter().collect()),
        _ => None,
    };
    let mut out = Survey { plugin_log: log.is_some(), full: only.is_none(), ..Survey::default() };
    if only.as_ref().is_some_and(HashSet::is_empty) {
        // Nobody changed anything since: the log's one request was all.
        out.log = log;
        return Ok(out);
    }
    let (docs, pending, last, overridden) = {
        let conn = recondb::open_readonly(&env.recon_db)?;
        if !recondb::feature_columns_present(&conn)? {
            return Ok(Survey::default());
        }
        let tables = recondb::migration_state(&conn)?.companion_tables || recondb::has_table(&conn, "companion_journal")?;
        let last = match (&only, tables) {
            (_, false) => HashMap::new(),
            (Some(o), true) => ledger::last_writes_of(&conn, &o.iter().collect::<Vec<_>>())?,
            (None, true) => ledger::last_writes(&conn)?,
        };
        let overridden: HashSet<String> = recondb::list_overrides(&conn)?.into_iter().map(|o| o.hash).collect();
        (ledger::select_pushed(&conn, &env.source)?, ledger::select_pending(&conn, &env.source, None)?, last, overridden)
    };
    let no_log = ChangeLog::new();
    let seen = log.as_ref().unwrap_or(&no_log);
    let wanted = |v: &VideoUuid| only.as_ref().is_none_or(|o| o.contains(v));
    let mut targets = Vec::with_capacity(docs.len());
    for d in docs {
        match ledger::target_of(&d) {
            Ok((v, c)) if wanted(&v) => targets.push((d, v, c, true)),
            Ok(_) => {}
            Err(why) => out.unpushable.push((d.hash.clone(), why.to_string())),
        }
    }
    // Owed a push, but a person may have set the video first: only those the
    // log or our journal knows can tell (the push reports the unpushable).
    for d in pending {
        if let Ok((v, c)) = ledger::target_of(&d) {
            if wanted(&v) && (seen.contains_key(&v) || last.contains_key(v.as_str())) {
                targets.push((d, v, c, false));
            }
        }
    }
    let ids: Vec<&VideoUuid> = targets.iter().map(|t| &t.1).collect();
    let current = if only.is_some() {
        if ids.is_empty() {
            // The log named none of our videos.
            out.log = log;
            return Ok(out);
        }
        let (current, from) = read_some(cfg, &client, &ids).await?;
        out.read_from = from.to_string();
        current
    } else {
        let (current, distribution, without, from) = read_peertube(cfg, &client, &ids).await?;
        out.read_from = from.to_string();
        out.distribution = distribution;
        out.without_category = without;
        current
    };
    for (doc, video, expected, pushed) in targets {
        let pt = current.get(&video).copied().unwrap_or(PeerTubeSide::Missing);
        let lw = last.get(video.as_str()).copied();
        let seen = seen.get(&video).map(api::PeopleChange::seen);
        let verdict = people::classify(expected, overridden.contains(&doc.hash), pt, lw, seen.as_ref());
        if !pushed && !matches!(verdict, Verdict::Person { .. }) {
            // Just owed a push: the push's business, not the survey's.
            continue;
        }
        let actual = match pt {
            PeerTubeSide::Local(c) => c,
            _ => None,
        };
        out.items.push(Surveyed { doc, video, expected, actual, last_write: lw.and_then(|l| l.category), verdict, seen, pushed });
    }
    out.log = log;
    Ok(out)
}

/// Takes the survey's people's changes: one run (`command`), journaled so
/// `rollback --run` undoes it. Dry: only says what it would take. No run is
/// started when there is nothing to take.
pub fn take(cfg: &Config, env: &Env, survey: &Survey, dry_run: bool, command: &str) -> Result<AdoptSummary> {
    let mut s = AdoptSummary { dry_run, ..Default::default() };
    let found: Vec<(&Surveyed, PersonItem)> = survey
        .items
        .iter()
        .filter_map(|x| match x.verdict {
            Verdict::Person { to } => Some((x, PersonItem::of(x, to))),
            _ => None,
        })
        .collect();
    if dry_run || found.is_empty() {
        for (_, p) in found {
            match p.action {
                Action::Adopt { .. } => s.adopted.push(p),
                Action::Override => s.overridden.push(p),
            }
        }
        return Ok(s);
    }
    let transport = match cfg.peertube.transport {
        Transport::Api => "api",
        Transport::Db => "db",
    };
    let mut conn = recondb::open(&env.recon_db)?;
    let run = Run::begin(env, &mut conn, command, json!({ "transport": transport, "people": found.len() }))?;
    s.run_id = Some(run.id.clone());
    let res = write_all(&mut conn, &run.id, transport, &found, &mut s);
    let outcome = if res.is_ok() { "done" } else { "failed" };
    let mut counts = json!({ "adopted": s.adopted.len(), "overridden": s.overridden.len(), "changed_meanwhile": s.changed_meanwhile });
    if let Err(e) = &res {
        counts["error"] = json!(e.to_string());
    }
    let path = run.finish(env, &conn, outcome, &counts)?;
    s.report = Some(path.display().to_string());
    res?;
    Ok(s)
}

fn write_all(conn: &mut rusqlite::Connection, run_id: &str, transport: &str, found: &[(&Surveyed, PersonItem)], s: &mut AdoptSummary) -> Result<()> {
    for chunk in found.chunks(500) {
        let done = recondb::retry_busy(|| {
            let tx = recondb::write_tx(conn)?;
            let mut done = Vec::with_capacity(chunk.len());
            for (x, p) in chunk {
                if write_one(&tx, run_id, transport, x, p)? {
                    done.push(p.clone());
                }
            }
            tx.commit().ctx_key("committing people's changes of run", run_id)?;
            Ok(done)
        })?;
        s.changed_meanwhile += (chunk.len() - done.len()) as u64;
        for p in done {
            match p.action {
                Action::Adopt { .. } => s.adopted.push(p),
                Action::Override => s.overridden.push(p),
            }
        }
    }
    Ok(())
}

/// One person's change in the run's transaction; false when the row changed since the survey.
fn write_one(tx: &rusqlite::Connection, run_id: &str, transport: &str, x: &Surveyed, p: &PersonItem) -> Result<bool> {
    let Some(cur) = recondb::domain_columns(tx, &x.doc.hash)? else { return Ok(false) };
    if cur.recon_domain.as_deref() != Some(x.doc.domain.as_str()) || cur.peertube_category_pushed_at.is_some() != x.pushed {
        return Ok(false);
    }
    let now = recondb::now();
    let who = match (&p.by, &p.at) {
        (Some(u), Some(at)) => format!("set in PeerTube by {u} at {at}"),
        (Some(u), None) => format!("set in PeerTube by {u}"),
        _ => "set in PeerTube by a person (not our account)".to_string(),
    };
    match &p.action {
        Action::Adopt { domain } => {
            let new = DomainColumns {
                recon_domain: Some(domain.clone()),
                recon_domain_status: Some(crate::assign::Status::ManualAssigned.as_str().to_string()),
                recon_domain_assigned_at: Some(p.at.clone().unwrap_or_else(|| now.clone())),
                // PeerTube already holds it: nothing to push.
                peertube_category_pushed_at: Some(now.clone()),
            };
            journal::write_domain_columns(tx, run_id, &x.doc.hash, &cur, &new)?;
        }
        Action::Override => {
            let before = recondb::get_override(tx, x.video.as_str())?;
            let o = Override {
                video: x.video.to_string(),
                hash: x.doc.hash.clone(),
                category: p.to,
                changed_by: p.by.clone(),
                changed_at: p.at.clone(),
                recorded_at: now.clone(),
                run_id: run_id.to_string(),
            };
            recondb::put_override(tx, &o)?;
            let old = before.map(serde_json::to_value).transpose()?.unwrap_or(Value::Null);
            let id = journal::record(tx, run_id, Kind::Override, x.video.as_str(), &old, &serde_json::to_value(&o)?, EntryState::Applied)?;
            journal::set_state(tx, id, EntryState::Applied, Some(&who))?;
        }
    }
    // PeerTube's value is now what we agree with: the next survey measures
    // against it, and a rollback of this run puts our old category back — for
    // a video we had not written yet, the machine's (the operator overruling
    // the person, as for any other adoption).
    let ours = if x.pushed { x.last_write } else { Some(x.expected) };
    let id = journal::record(
        tx,
        run_id,
        Kind::Video,
        x.video.as_str(),
        &json!({ "category": ours, "hash": x.doc.hash, "transport": transport }),
        &json!({ "category": p.to, "hash": x.doc.hash, "domain": x.doc.domain, "transport": transport, "by": p.by, "person": true }),
        EntryState::Applied,
    )?;
    journal::set_state(tx, id, EntryState::Applied, Some(&format!("{who}; taken, not written")))?;
    Ok(true)
}

/// What handing a document back did.
#[derive(Debug, Clone, Serialize)]
pub struct HandBack {
    pub run_id: String,
    pub hash: String,
    pub override_removed: bool,
    pub before: DomainColumns,
}

/// Hands document `hash` back to the machine: removes its video's override,
/// and clears its domain columns so the next backfill (the service's next
/// tick) recomputes it and the push after writes PeerTube. Journaled (`hand-back`).
pub fn hand_back(env: &Env, hash: &str) -> Result<HandBack> {
    let mut conn = recondb::open(&env.recon_db)?;
    let run = Run::begin(env, &mut conn, "hand-back", json!({ "hash": hash }))?;
    let res = recondb::retry_busy(|| {
        let tx = recondb::write_tx(&mut conn)?;
        let cur = recondb::domain_columns(&tx, hash)?.ok_or_else(|| Error::NotFound(format!("document {hash}")))?;
        let overrides: Vec<Override> = recondb::list_overrides(&tx)?.into_iter().filter(|o| o.hash == hash).collect();
        for o in &overrides {
            recondb::delete_override(&tx, &o.video)?;
            journal::record(&tx, &run.id, Kind::Override, &o.video, &serde_json::to_value(o)?, &Value::Null, EntryState::Applied)?;
        }
        journal::write_domain_columns(&tx, &run.id, hash, &cur, &DomainColumns::default())?;
        tx.commit().ctx_key("committing the hand-back of", hash)?;
        Ok(HandBack { run_id: run.id.clone(), hash: hash.to_string(), override_removed: !overrides.is_empty(), before: cur })
    });
    let counts = match &res {
        Ok(h) => json!({ "hash": hash, "override_removed": h.override_removed }),
        Err(e) => json!({ "hash": hash, "error": e.to_string() }),
    };
    run.finish(env, &conn, if res.is_ok() { "done" } else { "failed" }, &counts)?;
    res
}
