//! RECON's SQLite database: opening it beside RECON's own writers, the feature's
//! migration, the companion's own `companion_*` tables, and the queries the
//! engine needs. No other RECON table is ever touched.
//!
//! This file opens the database and migrates it; the queries live in the
//! modules below, by who runs them, and are re-exported here so every
//! `recon::db::X` path names them.

mod counts;
mod documents;
mod journal_layout;
mod lookup;
mod overrides;
mod reassess;
mod revert;
mod review;
mod sessions;
mod state;

pub use counts::*;
pub use documents::*;
pub use journal_layout::*;
pub use lookup::*;
pub use overrides::*;
pub use reassess::*;
pub use revert::*;
pub use review::*;
pub use sessions::*;
pub use state::*;

use crate::error::{DbContext, Error, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// The four nullable columns the feature adds to `documents`.
pub const FEATURE_COLUMNS: [&str; 4] = ["recon_domain", "recon_domain_status", "recon_domain_assigned_at", "peertube_category_pushed_at"];
pub const FEATURE_INDEX: &str = "idx_documents_recon_domain_status";

/// RECON's own `documents` columns: `migrate --check` fails if one went missing.
/// (`organized_at` and `catalogue.path_updated_at` came with later RECON
/// migrations, so an older db may lack them legitimately.)
pub const RECON_DOCUMENT_COLUMNS: [&str; 18] = [
    "hash",
    "filename",
    "path",
    "size_bytes",
    "page_count",
    "book_title",
    "book_author",
    "collection",
    "status",
    "pages_extracted",
    "concepts_extracted",
    "vectors_inserted",
    "discovered_at",
    "extracted_at",
    "enriched_at",
    "embedded_at",
    "error_message",
    "retry_count",
];
pub const RECON_CATALOGUE_COLUMNS: [&str; 8] = ["hash", "filename", "path", "size_bytes", "source", "category", "status", "discovered_at"];

/// RECON waits 5 s on a busy database; we wait longer since our writes are the
/// ones that can be retried without anyone noticing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// The companion's own tables (created by `migrate`).
pub(crate) const COMPANION_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS companion_runs (
    run_id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    args TEXT NOT NULL,
    state TEXT NOT NULL,            -- running | done | failed | rolled_back
    started_at TEXT NOT NULL,
    finished_at TEXT,
    summary TEXT,
    report_path TEXT,
    rolled_back_by TEXT,
    pid INTEGER
);
CREATE TABLE IF NOT EXISTS companion_journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,             -- document | video | concept_dir
    key TEXT NOT NULL,
    old TEXT,
    new TEXT,
    state TEXT NOT NULL,            -- applied | pending | failed | rolled_back
    at TEXT NOT NULL,
    note TEXT,
    doc INTEGER                     -- the documents rowid of a set-based write's row (journal_layout)
);
CREATE INDEX IF NOT EXISTS companion_journal_run ON companion_journal(run_id, id);
CREATE TABLE IF NOT EXISTS companion_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS companion_sessions (
    id_sha256 TEXT PRIMARY KEY,     -- sha256 of the cookie's id: the table alone logs nobody in
    data TEXT NOT NULL,             -- JSON of the session's values
    expires_at INTEGER NOT NULL     -- unix seconds
);
";

fn sqlite_err(path: &Path) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
    move |source| Error::Sqlite { path: path.to_path_buf(), source }
}

fn configure(conn: &Connection, path: &Path) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite_err(path))?;
    Ok(())
}

/// Opens RECON's database for writing. It must exist: creating an empty
/// recon.db by a typo in a path would hide the mistake.
pub fn open(path: &Path) -> Result<Connection> {
    let conn = open_with(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    // RECON runs in WAL mode; make sure we never switch a WAL db back to rollback mode.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(sqlite_err(path))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "recon db is not in WAL mode");
    } else {
        // In WAL mode NORMAL skips the fsync per commit (the WAL is synced at
        // checkpoints): still atomic and consistent after a crash, and it keeps
        // a 22K-row backfill from spending seconds in fsync.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sqlite_err(path))?;
    }
    Ok(conn)
}

/// Opens RECON's database read-only (dry runs, status, explain): nothing can be written.
pub fn open_readonly(path: &Path) -> Result<Connection> {
    open_with(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
}

/// Opens an existing recon.db with `mode` (read-write or read-only) and our busy timeout.
fn open_with(path: &Path, mode: OpenFlags) -> Result<Connection> {
    if !path.is_file() {
        return Err(Error::NotFound(format!("recon db {}", path.display())));
    }
    let conn = Connection::open_with_flags(path, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI).map_err(sqlite_err(path))?;
    configure(&conn, path)?;
    Ok(conn)
}

/// Starts a write transaction that takes the write lock at once, so a busy
/// database shows up here (and waits) instead of failing half-way.
pub fn write_tx(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("recon::db::write_tx")
}

pub(super) fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})")).ctx("recon::db::columns")?;
    let cols = stmt.query_map([], |r| r.get::<_, String>(1)).ctx("recon::db::columns")?.collect::<Result<Vec<_>, _>>().ctx("recon::db::columns")?;
    Ok(cols)
}

pub(super) fn has_index(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.query_row("SELECT 1 FROM sqlite_master WHERE type='index' AND name=?1", [name], |_| Ok(())).optional().ctx("recon::db::has_index")?.is_some())
}

/// What the migration check found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MigrationState {
    pub missing_feature_columns: Vec<String>,
    pub index_present: bool,
    pub missing_recon_columns: Vec<String>,
    pub companion_tables: bool,
    /// The journal has its `doc` column and lookup indexes ([`JOURNAL_INDEXES`]).
    pub journal_layout: bool,
}

impl MigrationState {
    pub fn feature_applied(&self) -> bool {
        self.missing_feature_columns.is_empty() && self.index_present
    }
    pub fn ok(&self) -> bool {
        self.feature_applied() && self.missing_recon_columns.is_empty() && self.companion_tables && self.journal_layout
    }
}

pub fn migration_state(conn: &Connection) -> Result<MigrationState> {
    let doc_cols = columns(conn, "documents")?;
    if doc_cols.is_empty() {
        return Err(Error::NotMigrated("no `documents` table: is this RECON's recon.db?".into()));
    }
    let cat_cols = columns(conn, "catalogue")?;
    let missing = |want: &[&str], have: &[String]| -> Vec<String> {
        let mut out: Vec<String> = want.iter().filter(|w| !have.iter().any(|h| h == *w)).map(|w| w.to_string()).collect();
        out.dedup();
        out
    };
    let mut missing_recon = missing(&RECON_DOCUMENT_COLUMNS, &doc_cols);
    missing_recon.extend(missing(&RECON_CATALOGUE_COLUMNS, &cat_cols).into_iter().map(|c| format!("catalogue.{c}")));
    let companion_tables = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ('companion_runs','companion_journal','companion_state','companion_overrides')",
            [],
            |r| r.get::<_, i64>(0),
        )
        .ctx("recon::db::migration_state")?
        == 4;
    Ok(MigrationState {
        missing_feature_columns: missing(&FEATURE_COLUMNS, &doc_cols),
        index_present: has_index(conn, FEATURE_INDEX)?,
        missing_recon_columns: missing_recon,
        companion_tables,
        journal_layout: journal_layout(conn)?,
    })
}

/// True when the feature's columns exist (dry runs on an unmigrated db treat them as NULL).
pub fn feature_columns_present(conn: &Connection) -> Result<bool> {
    Ok(migration_state(conn)?.missing_feature_columns.is_empty())
}

/// Applies the feature's migration and the companion's tables. Idempotent, and
/// safe when RECON's Python applies the same columns first or at the same time:
/// a "duplicate column" from a racing writer counts as done.
pub fn migrate(conn: &mut Connection) -> Result<Vec<String>> {
    let mut applied = Vec::new();
    let tx = write_tx(conn)?;
    let have = columns(&tx, "documents")?;
    if have.is_empty() {
        return Err(Error::NotMigrated("no `documents` table: is this RECON's recon.db?".into()));
    }
    for col in FEATURE_COLUMNS {
        if !have.iter().any(|h| h == col) {
            match tx.execute(&format!("ALTER TABLE documents ADD COLUMN {col} TEXT"), []) {
                Ok(_) => applied.push(format!("documents.{col}")),
                Err(e) if e.to_string().contains("duplicate column") => {}
                Err(e) => return Err(e).ctx("recon::db::migrate: adding a feature column"),
            }
        }
    }
    if !has_index(&tx, FEATURE_INDEX)? {
        tx.execute(&format!("CREATE INDEX IF NOT EXISTS {FEATURE_INDEX} ON documents(recon_domain_status)"), []).ctx("recon::db::migrate")?;
        applied.push(FEATURE_INDEX.to_string());
    }
    let had_tables =
        tx.query_row("SELECT count(*) FROM sqlite_master WHERE name='companion_journal'", [], |r| r.get::<_, i64>(0)).ctx("recon::db::migrate")? > 0;
    tx.execute_batch(COMPANION_SCHEMA).ctx("recon::db::migrate")?;
    tx.execute_batch(OVERRIDES_SCHEMA).ctx("recon::db::migrate: companion_overrides")?;
    if !had_tables {
        applied.push("companion_* tables".into());
    }
    if upgrade_journal(&tx)? && had_tables {
        applied.push("companion_journal.doc and its lookup indexes".into());
    }
    tx.commit().ctx("recon::db::migrate")?;
    Ok(applied)
}

/// Applies the migration if needed (as RECON does at start-up) and returns what it did.
pub fn ensure_migrated(conn: &mut Connection) -> Result<Vec<String>> {
    if migration_state(conn)?.ok() {
        return Ok(Vec::new());
    }
    migrate(conn)
}

/// Timestamps the companion writes: UTC, ISO 8601 with microseconds, like
/// Python's `datetime.now(timezone.utc).isoformat()`.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// Retries a closure on SQLITE_BUSY/LOCKED beyond the busy timeout (RECON's
/// Python holds write locks for whole enrichment batches at times).
pub fn retry_busy<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut delay = Duration::from_millis(50);
    for attempt in 0.. {
        match f() {
            Err(e) if attempt < 8 && e.is_busy() => {
                tracing::warn!(attempt, "recon db busy, retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
    unreachable!("loop returns")
}

/// The longest a companion write transaction holds recon.db's write lock
/// before it commits and lets others in.
pub const LOCK_BUDGET: Duration = Duration::from_millis(60);

/// The pause between two of our write transactions. RECON's writers wait
/// in SQLite's default busy handler, which retries 1, 2, 5, 10, 15, 20, 25,
/// 25, 25 ms apart in its first 128 ms: a pause longer than 25 ms after a
/// transaction of at most [`LOCK_BUDGET`] is always seen by a waiting
/// writer's next retry (back-to-back transactions made its retries land
/// inside our next one: 0.43 s to 1.24 s waits seen during a backfill).
pub const LOCK_GAP: Duration = Duration::from_millis(30);

/// How long a gap is held open at most while other connections keep
/// committing in it: several of RECON's writers may be waiting, each retrying
/// on its own clock, and one of them in the lock hides the gap from the
/// others (with one 30 ms gap, 3 writers saw waits of 229–430 ms: SQLite's
/// handler had moved on to its 50 and 100 ms sleeps).
pub const LOCK_GAP_MAX: Duration = Duration::from_millis(100);

/// A gap ends once this long passes with no other connection committing:
/// longer than any sleep of the busy handler's first 128 ms.
const QUIET_SLICE: Duration = Duration::from_millis(26);

/// Rows of a row-at-a-time transaction before its first one is timed (a
/// row with its journal line and checks costs tens of µs).
const FIRST_ROWS: usize = 200;

/// Writes `items` a row at a time, paced as [`write_paced_sets`] paces its
/// ranges (short transactions sized to the lock budget, a gap between them);
/// `row` writes one item inside the open transaction and counts what it did
/// in the three counters, which are summed over committed transactions.
pub fn write_paced<T>(
    conn: &mut Connection,
    items: &[T],
    what: &'static str,
    mut row: impl FnMut(&Connection, &T, &mut [u64; 3]) -> Result<()>,
) -> Result<[u64; 3]> {
    paced_with_checkpoints(conn, items.len(), FIRST_ROWS, what, &mut |tx, range| {
        let mut counts = [0u64; 3];
        for item in &items[range] {
            row(tx, item, &mut counts)?;
        }
        Ok(counts)
    })
}

/// Rows of a set-based transaction (`write_paced_sets`) before its first
/// one is timed; later ones are sized from the measured time per row.
const FIRST_SET_ROWS: usize = 1000;
/// The most rows one set-based transaction takes, however fast it goes.
const MAX_SET_ROWS: usize = 20_000;

/// Writes `len` items a range at a time (`chunk` writes `items[range]`
/// inside the open transaction, a few statements per range): each
/// transaction is sized from the previous one's time per row to hold the lock
/// about two thirds of [`LOCK_BUDGET`], with [`LOCK_GAP`] between them.
///
/// The WAL is checkpointed by us in each gap, not by SQLite at a commit: a
/// commit that checkpoints returns only after copying the pages back, which
/// would count as lock time in the sizing, and a checkpoint holds no write
/// lock, so RECON's writers go on meanwhile.
pub fn write_paced_sets(
    conn: &mut Connection,
    len: usize,
    what: &'static str,
    mut chunk: impl FnMut(&Connection, std::ops::Range<usize>) -> Result<[u64; 3]>,
) -> Result<[u64; 3]> {
    paced_with_checkpoints(conn, len, FIRST_SET_ROWS, what, &mut chunk)
}

/// What a paced loop calls to write `items[range]` inside its open transaction.
type RangeWriter<'a> = dyn FnMut(&Connection, std::ops::Range<usize>) -> Result<[u64; 3]> + 'a;

/// The one pacing loop, with SQLite's automatic checkpoints off while it runs.
fn paced_with_checkpoints(conn: &mut Connection, len: usize, first: usize, what: &'static str, chunk: &mut RangeWriter<'_>) -> Result<[u64; 3]> {
    let auto: i64 = conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)).ctx(what)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0).ctx(what)?;
    let res = paced_sets(conn, len, first, what, chunk);
    let restored = conn.pragma_update(None, "wal_autocheckpoint", auto).ctx(what);
    let total = res?;
    restored?;
    Ok(total)
}

fn paced_sets(conn: &mut Connection, len: usize, first: usize, what: &'static str, chunk: &mut RangeWriter<'_>) -> Result<[u64; 3]> {
    let mut total = [0u64; 3];
    let (mut start, mut rows) = (0usize, first);
    while start < len {
        let end = (start + rows).min(len);
        let (counts, elapsed) = retry_busy(|| {
            let tx = write_tx(conn)?;
            let t = std::time::Instant::now();
            let counts = chunk(&tx, start..end)?;
            tx.commit().ctx(what)?;
            Ok((counts, t.elapsed()))
        })?;
        tracing::debug!(what, rows = end - start, ms = elapsed.as_secs_f64() * 1e3, "set-based transaction");
        for (t, c) in total.iter_mut().zip(counts) {
            *t += c;
        }
        let per_row = elapsed.as_secs_f64() / (end - start) as f64;
        let fit = (LOCK_BUDGET.as_secs_f64() * 2.0 / 3.0 / per_row.max(1e-7)) as usize;
        rows = fit.clamp(1, MAX_SET_ROWS);
        start = end;
        let gap = std::time::Instant::now();
        let mut seen = data_version(conn, what)?;
        // PASSIVE: copies what it can without waiting on anyone; a busy
        // answer only means someone else is checkpointing.
        let _: (i64, i64, i64) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).ctx(what)?;
        if start < len {
            std::thread::sleep(LOCK_GAP.saturating_sub(gap.elapsed()));
            // Someone wrote in the gap: others may still be waiting.
            loop {
                let now = data_version(conn, what)?;
                if gap_is_over(seen, now, gap.elapsed()) {
                    break;
                }
                seen = now;
                std::thread::sleep(QUIET_SLICE);
            }
        }
    }
    Ok(total)
}

/// Whether a gap held for `held` may end, given SQLite's commit counter
/// before (`seen`) and after (`now`) the last quiet slice: nobody committed
/// in it, or one more slice would pass [`LOCK_GAP_MAX`].
fn gap_is_over(seen: i64, now: i64, held: Duration) -> bool {
    now == seen || held + QUIET_SLICE > LOCK_GAP_MAX
}

/// SQLite's counter of commits by other connections (`PRAGMA data_version`).
fn data_version(conn: &Connection, what: &'static str) -> Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0)).ctx(what)
}

/// Whether recon.db has a table `name` (explain reads an unmigrated db too).
pub fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |_| Ok(()))
        .optional()
        .ctx_in(conn, "looking for table", Some(name))?
        .is_some())
}

#[cfg(test)]
mod pacing_tests {
    use super::*;

    /// A writer with RECON's settings (busy timeout 5 s, SQLite's default
    /// busy handler) that starts while a long paced write is under way gets
    /// its write in before that write ends, and nothing of ours is lost.
    #[test]
    fn a_waiting_writer_gets_in_between_paced_transactions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("recon.db");
        let mut conn = Connection::open(&path).expect("open");
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY); CREATE TABLE recon(seen INTEGER);").expect("schema");
        let items: Vec<i64> = (0..6000).collect();
        let p2 = path.clone();
        let recon = std::thread::spawn(move || {
            let c = Connection::open(&p2).expect("open");
            c.busy_timeout(Duration::from_secs(5)).expect("busy timeout");
            // Start once our write is under way.
            while c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).expect("count") == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            c.execute("INSERT INTO recon(seen) SELECT count(*) FROM t", []).expect("RECON's write never fails");
        });
        let n = write_paced(&mut conn, &items, "test", |tx, id, n| {
            tx.execute("INSERT INTO t(id) VALUES (?1)", [id]).ctx("test")?;
            // Make each row slow enough that the whole write spans many budgets.
            std::thread::sleep(Duration::from_micros(100));
            n[0] += 1;
            Ok(())
        })
        .expect("paced write");
        recon.join().expect("RECON's writer");
        assert_eq!(n, [6000, 0, 0]);
        let ours: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).expect("count");
        assert_eq!(ours, 6000, "every row of ours committed");
        let seen: i64 = conn.query_row("SELECT seen FROM recon", [], |r| r.get(0)).expect("RECON's row");
        assert!(seen > 0 && seen < 6000, "RECON's writer got in between our transactions, not after them all (it saw {seen} of our 6000 rows)");
    }

    /// A gap ends after a quiet slice, and is held open while others commit
    /// in it, but never past its maximum.
    #[test]
    fn a_gap_is_held_open_while_others_commit_and_no_longer_than_its_maximum() {
        assert!(gap_is_over(7, 7, LOCK_GAP), "nobody committed: the gap ends");
        assert!(!gap_is_over(7, 8, LOCK_GAP), "someone committed: others may be waiting");
        assert!(!gap_is_over(7, 9, LOCK_GAP_MAX - QUIET_SLICE), "one more slice still fits");
        assert!(gap_is_over(7, 9, LOCK_GAP_MAX - QUIET_SLICE + Duration::from_millis(1)), "one more slice would pass the maximum");
        // Sleeping slice after slice while others keep committing ends in time.
        let (mut held, mut slices) = (LOCK_GAP, 0);
        while !gap_is_over(slices, slices + 1, held) {
            held += QUIET_SLICE;
            slices += 1;
        }
        assert!(slices >= 1 && held <= LOCK_GAP_MAX, "held {held:?} over {slices} slices");
    }
}
