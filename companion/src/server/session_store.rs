//! Login sessions kept in recon.db's `companion_sessions` table (a tower-sessions
//! `SessionStore`), so a restart of the service logs nobody out; rows are keyed
//! by the SHA-256 of the session id and expire with the session.

use crate::recon::db as recondb;
use async_trait::async_trait;
use rusqlite::Connection;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

/// Expired rows are swept every this many writes (a sweep is one indexed DELETE).
const SWEEP_EVERY: u64 = 64;

#[derive(Clone)]
pub struct SqliteSessionStore {
    db: PathBuf,
    /// One write connection, opened on first use (the read pool is read-only).
    conn: Arc<Mutex<Option<Connection>>>,
    writes: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for SqliteSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSessionStore").field("db", &self.db).finish()
    }
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

/// The row key: a stolen copy of the table holds no usable cookie.
fn key_of(id: &Id) -> String {
    hex::encode(Sha256::digest(id.to_string().as_bytes()))
}

impl SqliteSessionStore {
    pub fn new(db: &Path) -> SqliteSessionStore {
        SqliteSessionStore { db: db.to_path_buf(), conn: Arc::new(Mutex::new(None)), writes: Arc::new(Default::default()) }
    }

    /// Runs `f` on the store's connection off the async threads.
    async fn with_conn<T: Send + 'static>(&self, f: impl Fn(&Connection) -> crate::error::Result<T> + Send + 'static) -> session_store::Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = me.conn.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                let c = recondb::open(&me.db)?;
                recondb::ensure_session_table(&c)?;
                *guard = Some(c);
            }
            match guard.as_ref() {
                Some(c) => {
                    let out = recondb::retry_busy(|| f(c));
                    if out.is_err() {
                        // A broken connection is reopened next time.
                        *guard = None;
                    }
                    out
                }
                None => Err(crate::error::Error::Other("session store: no connection".into())),
            }
        })
        .await
        .map_err(backend)?
        .map_err(backend)
    }

    fn encode(record: &Record) -> session_store::Result<(String, i64)> {
        let data = serde_json::to_string(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        Ok((data, record.expiry_date.unix_timestamp()))
    }

    fn should_sweep(&self) -> bool {
        self.writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed).is_multiple_of(SWEEP_EVERY)
    }
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let (data, expires) = Self::encode(record)?;
        let sweep = self.should_sweep();
        // A colliding id (as unlikely as it is) gets a new one instead of taking over a session.
        loop {
            let key = key_of(&record.id);
            let data = data.clone();
            let inserted = self
                .with_conn(move |c| {
                    if sweep {
                        recondb::session_delete_expired(c, now())?;
                    }
                    recondb::session_insert(c, &key, &data, expires)
                })
                .await?;
            if inserted {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (data, expires) = Self::encode(record)?;
        let key = key_of(&record.id);
        let sweep = self.should_sweep();
        self.with_conn(move |c| {
            if sweep {
                recondb::session_delete_expired(c, now())?;
            }
            recondb::session_upsert(c, &key, &data, expires)
        })
        .await
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let key = key_of(session_id);
        let row = self.with_conn(move |c| recondb::session_get(c, &key, now())).await?;
        let Some((data, expires)) = row else { return Ok(None) };
        let data = serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = OffsetDateTime::from_unix_timestamp(expires).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record { id: *session_id, data, expiry_date }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        let key = key_of(session_id);
        self.with_conn(move |c| recondb::session_delete(c, &key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("recon.db");
        Connection::open(&path).expect("create");
        (dir, path)
    }

    fn record(expiry: OffsetDateTime) -> Record {
        let mut data = std::collections::HashMap::new();
        data.insert("auth".to_string(), serde_json::json!({ "user": "operator", "csrf": "t" }));
        Record { id: Id::default(), data, expiry_date: expiry }
    }

    #[tokio::test]
    async fn sessions_survive_a_new_store_and_expire_and_delete() {
        let (_dir, path) = db();
        let store = SqliteSessionStore::new(&path);
        let mut r = record(OffsetDateTime::now_utc() + tower_sessions::cookie::time::Duration::hours(1));
        store.create(&mut r).await.expect("create");
        // Another store on the same db: what a restarted service sees.
        let again = SqliteSessionStore::new(&path);
        let loaded = again.load(&r.id).await.expect("load").expect("present");
        assert_eq!(loaded.data, r.data);
        assert_eq!(loaded.expiry_date.unix_timestamp(), r.expiry_date.unix_timestamp());
        // The id itself is not stored, only its hash.
        let raw: String = Connection::open(&path).expect("open").query_row("SELECT id_sha256 FROM companion_sessions", [], |x| x.get(0)).expect("row");
        assert_ne!(raw, r.id.to_string());
        again.delete(&r.id).await.expect("delete");
        assert!(store.load(&r.id).await.expect("load").is_none(), "deleted server-side");

        let mut old = record(OffsetDateTime::now_utc() - tower_sessions::cookie::time::Duration::seconds(5));
        store.create(&mut old).await.expect("create");
        assert!(store.load(&old.id).await.expect("load").is_none(), "expired");
        let n = recondb::session_delete_expired(&Connection::open(&path).expect("open"), now()).expect("sweep");
        assert_eq!(n, 1);
    }
}
