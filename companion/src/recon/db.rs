//! RECON's SQLite database: opening it beside RECON's own writers, the feature's
//! migration, the companion's own `companion_*` tables, and the queries the
//! engine needs. No other RECON table is ever touched.

use crate::error::{Error, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
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

const COMPANION_SCHEMA: &str = "
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
    note TEXT
);
CREATE INDEX IF NOT EXISTS companion_journal_run ON companion_journal(run_id, id);
CREATE INDEX IF NOT EXISTS companion_journal_key ON companion_journal(kind, key);
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
    if !path.is_file() {
        return Err(Error::NotFound(format!("recon db {}", path.display())));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI)
        .map_err(sqlite_err(path))?;
    configure(&conn, path)?;
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
    if !path.is_file() {
        return Err(Error::NotFound(format!("recon db {}", path.display())));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI)
        .map_err(sqlite_err(path))?;
    configure(&conn, path)?;
    Ok(conn)
}

/// Starts a write transaction that takes the write lock at once, so a busy
/// database shows up here (and waits) instead of failing half-way.
pub fn write_tx(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let cols = stmt.query_map([], |r| r.get::<_, String>(1))?.collect::<Result<Vec<_>, _>>()?;
    Ok(cols)
}

fn has_index(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.query_row("SELECT 1 FROM sqlite_master WHERE type='index' AND name=?1", [name], |_| Ok(())).optional()?.is_some())
}

/// What the migration check found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MigrationState {
    pub missing_feature_columns: Vec<String>,
    pub index_present: bool,
    pub missing_recon_columns: Vec<String>,
    pub companion_tables: bool,
}

impl MigrationState {
    pub fn feature_applied(&self) -> bool {
        self.missing_feature_columns.is_empty() && self.index_present
    }
    pub fn ok(&self) -> bool {
        self.feature_applied() && self.missing_recon_columns.is_empty() && self.companion_tables
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
    let companion_tables = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ('companion_runs','companion_journal','companion_state')",
        [],
        |r| r.get::<_, i64>(0),
    )? == 3;
    Ok(MigrationState {
        missing_feature_columns: missing(&FEATURE_COLUMNS, &doc_cols),
        index_present: has_index(conn, FEATURE_INDEX)?,
        missing_recon_columns: missing_recon,
        companion_tables,
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
                Err(e) => return Err(e.into()),
            }
        }
    }
    if !has_index(&tx, FEATURE_INDEX)? {
        tx.execute(&format!("CREATE INDEX IF NOT EXISTS {FEATURE_INDEX} ON documents(recon_domain_status)"), [])?;
        applied.push(FEATURE_INDEX.to_string());
    }
    let had_tables = tx.query_row("SELECT count(*) FROM sqlite_master WHERE name='companion_journal'", [], |r| r.get::<_, i64>(0))? > 0;
    tx.execute_batch(COMPANION_SCHEMA)?;
    if !had_tables {
        applied.push("companion_* tables".into());
    }
    tx.commit()?;
    Ok(applied)
}

/// Applies the migration if needed (as RECON does at start-up) and returns what it did.
pub fn ensure_migrated(conn: &mut Connection) -> Result<Vec<String>> {
    if migration_state(conn)?.ok() {
        return Ok(Vec::new());
    }
    migrate(conn)
}

/// A document the engine may (re)assign.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub hash: String,
    pub channel: Option<String>,
}

/// Backfill selection: complete, domain NULL, PeerTube catalogue row; oldest
/// `discovered_at` first (rowid breaks ties the way SQLite's scan order does).
pub fn backfill_candidates(conn: &Connection, source: &str, limit: Option<u64>, migrated: bool) -> Result<Vec<Candidate>> {
    let domain_null = if migrated { "AND d.recon_domain IS NULL" } else { "" };
    let sql = format!(
        "SELECT d.hash, c.category FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.status = 'complete' {domain_null} AND c.source = ?1
         ORDER BY d.discovered_at, d.rowid LIMIT ?2"
    );
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![source, limit], |r| Ok(Candidate { hash: r.get(0)?, channel: r.get(1)? }))?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Every `tied_pass_1` document, whatever its source, with its catalogue channel.
pub fn tied_candidates(conn: &Connection, limit: Option<u64>) -> Result<Vec<Candidate>> {
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let mut stmt = conn.prepare(
        "SELECT d.hash, c.category FROM documents d LEFT JOIN catalogue c ON c.hash = d.hash
         WHERE d.recon_domain_status = 'tied_pass_1' ORDER BY d.discovered_at, d.rowid LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| Ok(Candidate { hash: r.get(0)?, channel: r.get(1)? }))?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// (hash, channel) of every catalogue row with the PeerTube source.
pub fn stream_catalogue(conn: &Connection, source: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut stmt = conn.prepare("SELECT hash, category FROM catalogue WHERE source = ?1")?;
    let rows = stmt.query_map([source], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The four feature columns of one document.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DomainColumns {
    pub recon_domain: Option<String>,
    pub recon_domain_status: Option<String>,
    pub recon_domain_assigned_at: Option<String>,
    pub peertube_category_pushed_at: Option<String>,
}

pub fn domain_columns(conn: &Connection, hash: &str) -> Result<Option<DomainColumns>> {
    Ok(conn
        .prepare_cached(
            "SELECT recon_domain, recon_domain_status, recon_domain_assigned_at, peertube_category_pushed_at
             FROM documents WHERE hash = ?1",
        )?
        .query_row([hash], |r| {
            Ok(DomainColumns {
                recon_domain: r.get(0)?,
                recon_domain_status: r.get(1)?,
                recon_domain_assigned_at: r.get(2)?,
                peertube_category_pushed_at: r.get(3)?,
            })
        })
        .optional()?)
}

pub fn set_domain_columns(conn: &Connection, hash: &str, c: &DomainColumns) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "UPDATE documents SET recon_domain = ?2, recon_domain_status = ?3,
                 recon_domain_assigned_at = ?4, peertube_category_pushed_at = ?5 WHERE hash = ?1",
        )?
        .execute(params![hash, c.recon_domain, c.recon_domain_status, c.recon_domain_assigned_at, c.peertube_category_pushed_at])?)
}

/// Reads a companion_state value.
pub fn state_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT value FROM companion_state WHERE key = ?1", [key], |r| r.get(0)).optional()?)
}

pub fn state_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO companion_state(key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        params![key, value, now()],
    )?;
    Ok(())
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

// ---------------------------------------------------------------------------
// explain and spot-check: read-only looks at one document, its video, its channel.

// Down here rather than at the top: this part of the file is appended to.
use crate::error::DbContext;

/// Whether recon.db has a table `name` (explain reads an unmigrated db too).
pub fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |_| Ok(()))
        .optional()
        .ctx_in(conn, "looking for table", Some(name))?
        .is_some())
}

/// (hash, path) of the catalogue rows whose path contains a video's uuid
/// (`long`, matched case-insensitively) or short uuid. A substring match only
/// narrows the scan: the caller compares the path's tail exactly.
pub fn catalogue_rows_naming_video(conn: &Connection, long: Option<&str>, short: Option<&str>) -> Result<Vec<(String, Option<String>)>> {
    let key = long.or(short);
    let mut stmt = conn
        .prepare(
            "SELECT hash, path FROM catalogue
             WHERE (?1 IS NOT NULL AND instr(lower(path), ?1) > 0) OR (?2 IS NOT NULL AND instr(path, ?2) > 0)",
        )
        .ctx_in(conn, "preparing the catalogue lookup of video", key)?;
    let rows = stmt
        .query_map(params![long, short], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx_in(conn, "reading catalogue rows of video", key)?;
    Ok(rows)
}

/// One document as `explain` shows it: its `documents` and `catalogue` rows
/// side by side (either may be missing).
#[derive(Debug, Clone, Default)]
pub struct DocumentView {
    pub in_documents: bool,
    pub in_catalogue: bool,
    pub book_title: Option<String>,
    pub doc_filename: Option<String>,
    /// `documents.status` (RECON's pipeline status).
    pub doc_status: Option<String>,
    /// All None when the feature's columns do not exist yet.
    pub columns: DomainColumns,
    pub cat_filename: Option<String>,
    pub path: Option<String>,
    pub source: Option<String>,
    pub category: Option<String>,
}

/// Reads one document's rows; `migrated`: whether the feature's columns exist.
pub fn document_view(conn: &Connection, hash: &str, migrated: bool) -> Result<DocumentView> {
    let cols =
        if migrated { "d.recon_domain, d.recon_domain_status, d.recon_domain_assigned_at, d.peertube_category_pushed_at" } else { "NULL, NULL, NULL, NULL" };
    let sql = format!(
        "SELECT d.hash IS NOT NULL, c.hash IS NOT NULL, d.book_title, d.filename, d.status, {cols},
                c.filename, c.path, c.source, c.category
         FROM (SELECT ?1 AS hash) k
         LEFT JOIN documents d ON d.hash = k.hash
         LEFT JOIN catalogue c ON c.hash = k.hash"
    );
    conn.query_row(&sql, [hash], |r| {
        Ok(DocumentView {
            in_documents: r.get(0)?,
            in_catalogue: r.get(1)?,
            book_title: r.get(2)?,
            doc_filename: r.get(3)?,
            doc_status: r.get(4)?,
            columns: DomainColumns {
                recon_domain: r.get(5)?,
                recon_domain_status: r.get(6)?,
                recon_domain_assigned_at: r.get(7)?,
                peertube_category_pushed_at: r.get(8)?,
            },
            cat_filename: r.get(9)?,
            path: r.get(10)?,
            source: r.get(11)?,
            category: r.get(12)?,
        })
    })
    .ctx_in(conn, "reading the documents and catalogue rows of", Some(hash))
}

/// A document's title: `book_title` unless blank, else the catalogue's, else
/// the documents' file name.
pub fn document_title(conn: &Connection, hash: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT COALESCE(NULLIF(trim(d.book_title), ''), c.filename, d.filename)
             FROM (SELECT ?1 AS hash) k
             LEFT JOIN documents d ON d.hash = k.hash
             LEFT JOIN catalogue c ON c.hash = k.hash",
            [hash],
            |r| r.get(0),
        )
        .optional()
        .ctx_in(conn, "reading the title of", Some(hash))?
        .flatten())
}

/// Hashes of a channel's catalogue rows with the PeerTube `source`, unordered.
pub fn channel_members(conn: &Connection, source: &str, channel: &str) -> Result<Vec<String>> {
    // No ORDER BY: SQLite would walk the hash index and fetch every row by it
    // (~50 ms on 22,000 rows) instead of one sequential scan (~4 ms).
    let mut stmt =
        conn.prepare("SELECT hash FROM catalogue WHERE source = ?1 AND category = ?2").ctx_in(conn, "preparing the members of channel", Some(channel))?;
    let rows = stmt.query_map([source, channel], |r| r.get::<_, String>(0)).and_then(|rows| rows.collect::<Result<Vec<_>, _>>()).ctx_in(
        conn,
        "reading the members of channel",
        Some(channel),
    )?;
    Ok(rows)
}

/// Every document with `status`, in hash order.
pub fn hashes_with_status(conn: &Connection, status: crate::assign::Status) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT hash FROM documents WHERE recon_domain_status = ?1 ORDER BY hash").ctx_in(
        conn,
        "preparing the documents with status",
        Some(status.as_str()),
    )?;
    let rows = stmt.query_map([status.as_str()], |r| r.get::<_, String>(0)).and_then(|rows| rows.collect::<Result<Vec<_>, _>>()).ctx_in(
        conn,
        "reading the documents with status",
        Some(status.as_str()),
    )?;
    Ok(rows)
}

// ---------------------------------------------------------------------------
// The service's reads: the worker's new documents, the review queue, pushes.

/// Complete PeerTube documents the engine has never looked at (no domain, no
/// status), oldest first. Rows with a status but no domain (`tied_pass_1`,
/// `needs_reprocess`) belong to the tiebreaker and reprocess.
pub fn new_documents(conn: &Connection, source: &str, limit: u64) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT d.hash FROM documents d JOIN catalogue c ON c.hash = d.hash
             WHERE d.status = 'complete' AND d.recon_domain IS NULL AND d.recon_domain_status IS NULL
               AND c.source = ?1
             ORDER BY d.discovered_at, d.rowid LIMIT ?2",
        )
        .ctx_in(conn, "preparing the selection of new documents", None)?;
    let rows = stmt.query_map(params![source, limit as i64], |r| r.get(0)).and_then(|rows| rows.collect::<Result<Vec<String>, _>>()).ctx_in(
        conn,
        "selecting new documents",
        None,
    )?;
    Ok(rows)
}

/// How many documents [`new_documents`] would select without a limit.
pub fn count_new_documents(conn: &Connection, source: &str) -> Result<u64> {
    Ok(conn
        .query_row(
            "SELECT count(*) FROM documents d JOIN catalogue c ON c.hash = d.hash
             WHERE d.status = 'complete' AND d.recon_domain IS NULL AND d.recon_domain_status IS NULL
               AND c.source = ?1",
            [source],
            |r| r.get::<_, i64>(0),
        )
        .ctx_in(conn, "counting new documents", None)? as u64)
}

/// Documents with `status`.
pub fn count_status(conn: &Connection, status: crate::assign::Status) -> Result<u64> {
    Ok(conn.query_row("SELECT count(*) FROM documents WHERE recon_domain_status = ?1", [status.as_str()], |r| r.get::<_, i64>(0)).ctx_in(
        conn,
        "counting documents with status",
        Some(status.as_str()),
    )? as u64)
}

/// One `tied_manual` row as the review queue lists it.
#[derive(Debug, Clone)]
pub struct ReviewRow {
    pub hash: String,
    pub title: Option<String>,
    pub channel: Option<String>,
    pub path: Option<String>,
    pub fallback: Option<String>,
    pub assigned_at: Option<String>,
}

/// Every document waiting for a person, oldest first.
pub fn review_rows(conn: &Connection) -> Result<Vec<ReviewRow>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT d.hash, COALESCE(d.book_title, c.filename, d.filename), c.category, c.path,
                    d.recon_domain, d.recon_domain_assigned_at
             FROM documents d LEFT JOIN catalogue c ON c.hash = d.hash
             WHERE d.recon_domain_status = 'tied_manual'
             ORDER BY d.discovered_at, d.rowid",
        )
        .ctx_in(conn, "preparing the review queue", None)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(ReviewRow { hash: r.get(0)?, title: r.get(1)?, channel: r.get(2)?, path: r.get(3)?, fallback: r.get(4)?, assigned_at: r.get(5)? })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx_in(conn, "reading the review queue", None)?;
    Ok(rows)
}

/// Whether `documents` has a row for `hash`.
pub fn document_exists(conn: &Connection, hash: &str) -> Result<bool> {
    Ok(conn.query_row("SELECT 1 FROM documents WHERE hash = ?1", [hash], |_| Ok(())).optional().ctx_in(conn, "looking up documents row", Some(hash))?.is_some())
}

/// A document the push rule selects (domain set, not pushed, PeerTube source).
#[derive(Debug, Clone)]
pub struct UnpushedRow {
    pub hash: String,
    pub path: String,
    pub domain: String,
    pub assigned_at: Option<String>,
}

/// The push rule's rows among `hashes`, in their order; others are left out.
pub fn unpushed_rows(conn: &Connection, source: &str, hashes: &[String]) -> Result<Vec<UnpushedRow>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT d.hash, c.path, d.recon_domain, d.recon_domain_assigned_at
             FROM documents d JOIN catalogue c ON c.hash = d.hash
             WHERE d.hash = ?1 AND d.recon_domain IS NOT NULL AND d.peertube_category_pushed_at IS NULL AND c.source = ?2",
        )
        .ctx_in(conn, "preparing the push selection", None)?;
    let mut out = Vec::with_capacity(hashes.len());
    for h in hashes {
        let row = stmt
            .query_row(params![h, source], |r| Ok(UnpushedRow { hash: r.get(0)?, path: r.get(1)?, domain: r.get(2)?, assigned_at: r.get(3)? }))
            .optional()
            .ctx_in(conn, "reading the push row of", Some(h))?;
        out.extend(row);
    }
    Ok(out)
}

// Queries of the engine's passes and status view (moved out of `engine`).

/// Columns of `documents` the reprocess reset touches (RECON's reset plus ours);
/// also the only `documents` columns a rollback may write.
pub const RESET_COLUMNS: [&str; 11] = [
    "status",
    "concepts_extracted",
    "vectors_inserted",
    "recon_domain",
    "recon_domain_status",
    "recon_domain_assigned_at",
    "peertube_category_pushed_at",
    "error_message",
    "extracted_at",
    "enriched_at",
    "embedded_at",
];

/// One row's `cols` of `table` as JSON values (journal entries), None when absent.
pub fn row_values(conn: &Connection, table: &str, cols: &[&str], hash: &str) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
    let sql = format!("SELECT {} FROM {table} WHERE hash = ?1", cols.join(", "));
    let row = conn
        .query_row(&sql, [hash], |r| {
            let mut m = serde_json::Map::new();
            for (i, c) in cols.iter().enumerate() {
                let v: rusqlite::types::Value = r.get(i)?;
                m.insert((*c).to_string(), sql_to_json(v));
            }
            Ok(m)
        })
        .optional()?;
    Ok(row)
}

pub fn sql_to_json(v: rusqlite::types::Value) -> serde_json::Value {
    use rusqlite::types::Value as V;
    use serde_json::json;
    match v {
        V::Null => serde_json::Value::Null,
        V::Integer(i) => json!(i),
        V::Real(f) => json!(f),
        V::Text(s) => json!(s),
        V::Blob(b) => json!(hex::encode(b)),
    }
}

/// (hash, title) of `needs_reprocess` documents, oldest first.
pub fn needs_reprocess_rows(conn: &Connection, limit: Option<u64>) -> Result<Vec<(String, Option<String>)>> {
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let mut stmt = conn.prepare(
        "SELECT hash, COALESCE(book_title, filename) FROM documents WHERE recon_domain_status = 'needs_reprocess'
         ORDER BY discovered_at, rowid LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// RECON's reset of a document for re-extraction, queued (not left at `catalogued`).
pub fn reset_and_queue_document(conn: &Connection, hash: &str) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE documents SET status = 'queued', concepts_extracted = 0, vectors_inserted = 0,
             recon_domain = NULL, recon_domain_status = NULL, recon_domain_assigned_at = NULL,
             peertube_category_pushed_at = NULL, error_message = NULL, extracted_at = NULL,
             enriched_at = NULL, embedded_at = NULL WHERE hash = ?1",
        [hash],
    )?)
}

pub fn queue_catalogue(conn: &Connection, hash: &str) -> Result<usize> {
    Ok(conn.execute("UPDATE catalogue SET status = 'queued' WHERE hash = ?1", [hash])?)
}

fn count(conn: &Connection, sql: &str, source: Option<&str>) -> Result<u64> {
    let n: i64 = match source {
        Some(s) => conn.query_row(sql, [s], |r| r.get(0))?,
        None => conn.query_row(sql, [], |r| r.get(0))?,
    };
    Ok(n as u64)
}

pub fn count_complete_stream(conn: &Connection, source: &str) -> Result<u64> {
    count(conn, "SELECT count(*) FROM documents d JOIN catalogue c ON c.hash = d.hash WHERE d.status = 'complete' AND c.source = ?1", Some(source))
}

pub fn count_unassigned_stream(conn: &Connection, source: &str) -> Result<u64> {
    count(
        conn,
        "SELECT count(*) FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.status = 'complete' AND c.source = ?1 AND d.recon_domain IS NULL",
        Some(source),
    )
}

pub fn count_unpushed_stream(conn: &Connection, source: &str) -> Result<u64> {
    count(
        conn,
        "SELECT count(*) FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.recon_domain IS NOT NULL AND d.peertube_category_pushed_at IS NULL AND c.source = ?1",
        Some(source),
    )
}

pub fn count_pushed(conn: &Connection) -> Result<u64> {
    count(conn, "SELECT count(*) FROM documents WHERE peertube_category_pushed_at IS NOT NULL", None)
}

/// (status, documents) for every non-NULL `recon_domain_status`, by name.
pub fn counts_by_status(conn: &Connection) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare("SELECT recon_domain_status, count(*) FROM documents WHERE recon_domain_status IS NOT NULL GROUP BY 1 ORDER BY 1")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// (domain, documents) for every non-NULL `recon_domain`, most documents first.
pub fn counts_by_domain(conn: &Connection) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare("SELECT recon_domain, count(*) FROM documents WHERE recon_domain IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

// ---------------------------------------------------------------- sessions

/// The service's login sessions (`companion_sessions`). Created on first use
/// too, since a db migrated before the table existed passes `migration_state`.
pub const SESSION_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS companion_sessions (
    id_sha256 TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS companion_sessions_expiry ON companion_sessions(expires_at);
";

pub fn ensure_session_table(conn: &Connection) -> Result<()> {
    conn.execute_batch(SESSION_SCHEMA)?;
    Ok(())
}

/// Inserts a new session; `false` when the key is taken (the caller picks another id).
pub fn session_insert(conn: &Connection, key: &str, data: &str, expires_at: i64) -> Result<bool> {
    let n = conn.execute("INSERT OR IGNORE INTO companion_sessions(id_sha256, data, expires_at) VALUES (?1, ?2, ?3)", params![key, data, expires_at])?;
    Ok(n == 1)
}

pub fn session_upsert(conn: &Connection, key: &str, data: &str, expires_at: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO companion_sessions(id_sha256, data, expires_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(id_sha256) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
        params![key, data, expires_at],
    )?;
    Ok(())
}

/// A session's data and expiry, unless it expired before `now` (unix seconds).
pub fn session_get(conn: &Connection, key: &str, now: i64) -> Result<Option<(String, i64)>> {
    Ok(conn
        .query_row("SELECT data, expires_at FROM companion_sessions WHERE id_sha256 = ?1 AND expires_at > ?2", params![key, now], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?)
}

pub fn session_delete(conn: &Connection, key: &str) -> Result<()> {
    conn.execute("DELETE FROM companion_sessions WHERE id_sha256 = ?1", [key])?;
    Ok(())
}

/// Deletes expired sessions; returns how many.
pub fn session_delete_expired(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM companion_sessions WHERE expires_at <= ?1", [now])?)
}

// ---------------------------------------------------------------- revert

/// What reverting the feature's migration drops (present ones only).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RevertPlan {
    pub columns: Vec<String>,
    pub index: bool,
}

pub fn revert_plan(conn: &Connection) -> Result<RevertPlan> {
    let have = columns(conn, "documents")?;
    if have.is_empty() {
        return Err(Error::NotMigrated("no `documents` table: is this RECON's recon.db?".into()));
    }
    Ok(RevertPlan {
        columns: FEATURE_COLUMNS.iter().filter(|c| have.iter().any(|h| h == *c)).map(|c| c.to_string()).collect(),
        index: has_index(conn, FEATURE_INDEX)?,
    })
}

/// The original runbook's revert in one transaction: drop the index, then the
/// four columns (SQLite >= 3.35). RECON's own columns and the `companion_*`
/// tables are left alone. Returns what it dropped.
pub fn revert_migration(conn: &mut Connection) -> Result<Vec<String>> {
    let tx = write_tx(conn)?;
    let plan = revert_plan(&tx)?;
    let mut dropped = Vec::new();
    if plan.index {
        tx.execute(&format!("DROP INDEX IF EXISTS {FEATURE_INDEX}"), [])?;
        dropped.push(FEATURE_INDEX.to_string());
    }
    for col in &plan.columns {
        // Names come from FEATURE_COLUMNS, never from input.
        tx.execute(&format!("ALTER TABLE documents DROP COLUMN {col}"), [])?;
        dropped.push(format!("documents.{col}"));
    }
    tx.commit()?;
    Ok(dropped)
}

/// The backfill selection, where the Qdrant source also re-selects
/// `needs_reprocess` rows (a failed request is transient there).
pub fn backfill_selection(conn: &Connection, source: &str, limit: Option<u64>, migrated: bool, reselect_needs_reprocess: bool) -> Result<Vec<Candidate>> {
    if !(migrated && reselect_needs_reprocess) {
        return backfill_candidates(conn, source, limit, migrated);
    }
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let mut stmt = conn.prepare(
        "SELECT d.hash, c.category FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.status = 'complete' AND (d.recon_domain IS NULL OR d.recon_domain_status = 'needs_reprocess') AND c.source = ?1
         ORDER BY d.discovered_at, d.rowid LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![source, limit], |r| Ok(Candidate { hash: r.get(0)?, channel: r.get(1)? }))?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Up to `n` complete PeerTube documents spread over the table (verify-qdrant's sample).
pub fn sample_complete_stream(conn: &Connection, source: &str, n: u64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT d.hash FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.status = 'complete' AND c.source = ?1 ORDER BY random() LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![source, n as i64], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
    Ok(rows)
}
