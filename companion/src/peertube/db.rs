//! PeerTube's PostgreSQL: read videos' categories and write them with
//! compare-and-set, a batch per transaction. Only local videos (`remote =
//! false`) are ever written.

use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::peertube::video_id::VideoUuid;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

/// One `video` row as the companion sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoRow {
    pub category: Option<i32>,
    pub remote: bool,
}

pub struct PgVideos {
    client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PgVideos {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Rows per `= ANY($1)` lookup.
const LOOKUP_CHUNK: usize = 5_000;

fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("peertube.db_tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(cfg))
}

impl PgVideos {
    /// Connects with the config's URL; the password comes from the env var or file only.
    pub async fn connect(cfg: &Config) -> Result<PgVideos> {
        let p = &cfg.peertube;
        let url = p
            .db_url
            .as_deref()
            .ok_or_else(|| Error::Config("peertube.db_url is not set: the db transport needs PeerTube's PostgreSQL URL (without the password)".into()))?;
        let password = config::read_secret(&p.db_password_env, p.db_password_file.as_deref())?;
        PgVideos::connect_url(url, password.as_deref(), p.db_tls).await
    }

    pub async fn connect_url(url: &str, password: Option<&str>, tls: bool) -> Result<PgVideos> {
        let mut pg = tokio_postgres::Config::from_str(url).map_err(|e| Error::Config(format!("peertube.db_url: {e}")))?;
        if let Some(pw) = password {
            pg.password(pw);
        }
        pg.application_name("recon-companion");
        let (client, task) = if tls {
            let (client, conn) = pg.connect(tls_connector()?).await?;
            (
                client,
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::warn!(error = %e, "postgres connection closed");
                    }
                }),
            )
        } else {
            let (client, conn) = pg.connect(tokio_postgres::NoTls).await?;
            (
                client,
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::warn!(error = %e, "postgres connection closed");
                    }
                }),
            )
        };
        Ok(PgVideos { client, task })
    }

    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }

    /// Current category and remote flag of each uuid that exists.
    pub async fn current(&self, uuids: &[&VideoUuid]) -> Result<HashMap<VideoUuid, VideoRow>> {
        let mut out = HashMap::with_capacity(uuids.len());
        for chunk in uuids.chunks(LOOKUP_CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(|u| u.as_str()).collect();
            let rows = self.client.query("SELECT uuid::text, category, remote FROM video WHERE uuid = ANY($1::text[]::uuid[])", &[&ids]).await?;
            for r in rows {
                let id: String = r.get(0);
                if let Some(u) = VideoUuid::parse(&id) {
                    out.insert(u, VideoRow { category: r.get(1), remote: r.get(2) });
                }
            }
        }
        Ok(out)
    }

    /// Sets `new` on every (uuid, expected, new) whose video is local and still
    /// holds `expected`, in one transaction; returns the uuids written. Uuids
    /// must be distinct.
    pub async fn compare_and_set(&mut self, rows: &[(VideoUuid, Option<i32>, Option<i32>)]) -> Result<HashSet<VideoUuid>> {
        let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        let old: Vec<Option<i32>> = rows.iter().map(|r| r.1).collect();
        let new: Vec<Option<i32>> = rows.iter().map(|r| r.2).collect();
        let tx = self.client.transaction().await?;
        let written = tx
            .query(
                "UPDATE video AS v SET category = u.new, \"updatedAt\" = now()
                 FROM unnest($1::text[], $2::int4[], $3::int4[]) AS u(id, old, new)
                 WHERE v.uuid = u.id::uuid AND v.remote = false AND v.category IS NOT DISTINCT FROM u.old
                 RETURNING v.uuid::text",
                &[&ids, &old, &new],
            )
            .await?;
        tx.commit().await?;
        Ok(written.iter().filter_map(|r| VideoUuid::parse(r.get::<_, &str>(0))).collect())
    }

    /// Runbook step 6: videos per category ≥ 100, biggest first.
    pub async fn distribution(&self) -> Result<Vec<(i32, i64)>> {
        let rows =
            self.client.query("SELECT category, count(*) FROM video WHERE category >= 100 GROUP BY category ORDER BY count(*) DESC, category", &[]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Runbook step 6: videos without a category.
    pub async fn without_category(&self) -> Result<i64> {
        Ok(self.client.query_one("SELECT count(*) FROM video WHERE category IS NULL", &[]).await?.get(0))
    }

    /// Every video with a category ≥ 100 (the emergency reset's selection).
    pub async fn with_recon_category(&self) -> Result<Vec<(VideoUuid, i32, bool)>> {
        let rows = self.client.query("SELECT uuid::text, category, remote FROM video WHERE category >= 100 ORDER BY id", &[]).await?;
        Ok(rows.iter().filter_map(|r| Some((VideoUuid::parse(r.get::<_, &str>(0))?, r.get(1), r.get(2)))).collect())
    }
}

/// PeerTube 8's `video` table, trimmed of nothing the companion reads or writes
/// (tests and the benchmark create it in a scratch database).
pub const VIDEO_TABLE_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS "videoChannel" (id serial PRIMARY KEY, name varchar(255) NOT NULL);
CREATE TABLE IF NOT EXISTS video (
    id serial PRIMARY KEY,
    uuid uuid NOT NULL,
    name varchar(255) NOT NULL,
    category integer,
    licence integer,
    language varchar(10),
    privacy integer NOT NULL,
    nsfw boolean NOT NULL,
    "nsfwFlags" integer NOT NULL DEFAULT 0,
    description varchar(10000),
    duration integer NOT NULL,
    views integer NOT NULL DEFAULT 0,
    likes integer NOT NULL DEFAULT 0,
    dislikes integer NOT NULL DEFAULT 0,
    comments integer NOT NULL DEFAULT 0,
    remote boolean NOT NULL,
    "isLive" boolean NOT NULL DEFAULT false,
    url varchar(2000) NOT NULL UNIQUE,
    "commentsPolicy" integer NOT NULL,
    "downloadEnabled" boolean NOT NULL,
    "waitTranscoding" boolean NOT NULL,
    state integer NOT NULL,
    "publishedAt" timestamptz NOT NULL,
    "originallyPublishedAt" timestamptz,
    "inputFileUpdatedAt" timestamptz,
    "createdAt" timestamptz NOT NULL,
    "updatedAt" timestamptz NOT NULL,
    "channelId" integer REFERENCES "videoChannel"(id)
);
CREATE UNIQUE INDEX IF NOT EXISTS video_uuid ON video(uuid);
CREATE INDEX IF NOT EXISTS video_category ON video(category) WHERE category IS NOT NULL;
"#;

/// Inserts videos (uuid, category, remote) the way PeerTube would hold them.
pub async fn insert_videos(client: &tokio_postgres::Client, videos: &[(VideoUuid, Option<i32>, bool)]) -> Result<()> {
    for chunk in videos.chunks(5_000) {
        let ids: Vec<&str> = chunk.iter().map(|v| v.0.as_str()).collect();
        let cats: Vec<Option<i32>> = chunk.iter().map(|v| v.1).collect();
        let remote: Vec<bool> = chunk.iter().map(|v| v.2).collect();
        client
            .execute(
                r#"INSERT INTO video (uuid, name, category, privacy, nsfw, duration, remote, url, "commentsPolicy",
                       "downloadEnabled", "waitTranscoding", state, "publishedAt", "createdAt", "updatedAt")
                   SELECT u.id::uuid, 'video ' || u.id, u.cat, 1, false, 60, u.remote,
                          'https://stream.echo6.co/videos/watch/' || u.id, 1, true, false, 1,
                          now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'
                   FROM unnest($1::text[], $2::int4[], $3::bool[]) AS u(id, cat, remote)"#,
                &[&ids, &cats, &remote],
            )
            .await?;
    }
    Ok(())
}
