//! Small RECON databases with assigned PeerTube documents, and matching
//! videos, for the push tests and the push benchmark.

use companion::error::DbContext;
use companion::error::{Error, Result};
use companion::peertube::video_id::VideoUuid;
use companion::recon::db as recondb;
use companion::recon::schema::RECON_SCHEMA;
use rand::{Rng, SeedableRng};
use rusqlite::{params, Connection};
use std::path::Path;

/// One fixture document and its video.
#[derive(Debug, Clone)]
pub struct FixtureDoc {
    pub hash: String,
    pub video: VideoUuid,
    pub domain: String,
    pub category: i64,
    pub path: String,
}

/// Writes `recon.db` at `path` with `n` complete PeerTube documents, each with
/// a domain (mostly `assigned`, every 20th `tied_manual` with its fallback) and
/// an assignment time in insertion order; every third path uses the short uuid.
pub fn recon_db(path: &Path, n: usize, seed: u64) -> Result<Vec<FixtureDoc>> {
    let mut conn = Connection::open(path).map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    conn.execute_batch("PRAGMA journal_mode=WAL;").ctx("testkit::fixture::recon_db")?;
    conn.execute_batch(RECON_SCHEMA).ctx("testkit::fixture::recon_db")?;
    recondb::migrate(&mut conn)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut docs = Vec::with_capacity(n);
    let tx = conn.transaction().ctx("testkit::fixture::recon_db")?;
    for i in 0..n {
        let hash = format!("{:032x}", rng.gen::<u128>());
        let video = VideoUuid::parse(&format!("{:032x}", rng.gen::<u128>()).chars().enumerate().fold(String::new(), |mut s, (k, c)| {
            if [8, 12, 16, 20].contains(&k) {
                s.push('-');
            }
            s.push(c);
            s
        }))
        .ok_or_else(|| Error::Other("fixture uuid".into()))?;
        // Skewed like production: a few domains hold most videos.
        let d = &shared_constants::DOMAINS[(rng.gen::<f64>().powi(2) * 18.0) as usize % 18];
        let id_in_path = if i % 3 == 0 { video.short() } else { video.to_string() };
        let url = format!("https://stream.echo6.co/w/{id_in_path}");
        let status = if i % 20 == 19 { "tied_manual" } else { "assigned" };
        let at = format!("2026-04-28T00:{:02}:{:02}.{:06}+00:00", (i / 60_000_000) % 60, (i / 1_000_000) % 60, i % 1_000_000);
        tx.execute(
            "INSERT INTO catalogue(hash, filename, path, source, category, status) VALUES (?1, ?2, ?3, 'stream.echo6.co', ?4, 'complete')",
            params![hash, format!("video-{i}.mp4"), url, format!("channel-{}", i % 37)],
        )
        .ctx("testkit::fixture::recon_db")?;
        tx.execute(
            "INSERT INTO documents(hash, filename, path, book_title, status, recon_domain, recon_domain_status, recon_domain_assigned_at)
             VALUES (?1, ?2, ?3, ?4, 'complete', ?5, ?6, ?7)",
            params![hash, format!("video-{i}.mp4"), url, format!("Video {i}"), d.label, status, at],
        )
        .ctx("testkit::fixture::recon_db")?;
        docs.push(FixtureDoc { hash, video, domain: d.label.to_string(), category: i64::from(d.id), path: url });
    }
    tx.commit().ctx("testkit::fixture::recon_db")?;
    Ok(docs)
}

/// Adds a PeerTube document whose catalogue path has no `/w/{uuid}`.
pub fn add_doc_without_watch_path(path: &Path, hash: &str, domain: &str) -> Result<()> {
    let conn = recondb::open(path)?;
    let url = format!("https://stream.echo6.co/videos/embed/{hash}");
    conn.execute(
        "INSERT INTO catalogue(hash, filename, path, source, category, status) VALUES (?1, 'x.mp4', ?2, 'stream.echo6.co', 'odd', 'complete')",
        params![hash, url],
    )
    .ctx("testkit::fixture::add_doc_without_watch_path")?;
    conn.execute(
        "INSERT INTO documents(hash, filename, path, status, recon_domain, recon_domain_status, recon_domain_assigned_at)
         VALUES (?1, 'x.mp4', ?2, 'complete', ?3, 'assigned', '2000-01-01T00:00:00.000000+00:00')",
        params![hash, url, domain],
    )
    .ctx("testkit::fixture::add_doc_without_watch_path")?;
    Ok(())
}

/// PostgreSQL server tests and the benchmark use: env
/// `RECON_COMPANION_TEST_PG_URL`, else local trust auth as user postgres.
pub fn test_pg_admin_url() -> String {
    std::env::var("RECON_COMPANION_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A scratch database with PeerTube's `video` table, dropped on drop.
pub struct ScratchPg {
    pub admin_url: String,
    pub name: String,
    pub url: String,
}

async fn admin(url: &str) -> Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

impl ScratchPg {
    pub async fn create() -> Result<ScratchPg> {
        let admin_url = test_pg_admin_url();
        let name = format!("recon_push_test_{:016x}", rand::random::<u64>());
        admin(&admin_url).await?.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let url = with_dbname(&admin_url, &name)?;
        let scratch = ScratchPg { admin_url, name, url };
        scratch.connect().await?.batch_execute(companion::peertube::db::VIDEO_TABLE_DDL).await?;
        Ok(scratch)
    }

    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        admin(&self.url).await
    }
}

impl Drop for ScratchPg {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside a runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(async {
                    if let Ok(c) = admin(&url).await {
                        let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                    }
                });
            }
        })
        .join();
    }
}

/// `scheme://user@host:port/olddb?opts` → the same URL naming `db`.
pub fn with_dbname(url: &str, db: &str) -> Result<String> {
    let start = url.find("://").map(|p| p + 3).ok_or_else(|| Error::Config(format!("not a URL: {url}")))?;
    let (main, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let base = match main[start..].find('/') {
        Some(p) => &main[..start + p],
        None => main,
    };
    Ok(format!("{base}/{db}{query}"))
}

/// A temporary directory removed on drop (the benchmark runs outside tests).
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Result<TempDir> {
        let p = std::env::temp_dir().join(format!("{prefix}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        Ok(TempDir(p))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dbname_in_url() {
        assert_eq!(super::with_dbname("postgres://postgres@127.0.0.1:5432/postgres", "x").unwrap(), "postgres://postgres@127.0.0.1:5432/x");
        assert_eq!(super::with_dbname("postgres://u@h", "x").unwrap(), "postgres://u@h/x");
        assert_eq!(super::with_dbname("postgresql://u@h/db?sslmode=disable", "x").unwrap(), "postgresql://u@h/x?sslmode=disable");
    }
}
