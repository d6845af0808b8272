//! The companion's configuration: defaults ← TOML file ← `RECON_COMPANION_*` env ← CLI flags.
//!
//! Secrets (PeerTube passwords) never live here: the config names the env var or
//! file that holds them, and [`read_secret`] fetches them at use time.

mod env;
mod mask;
pub mod qdrant;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use figment::providers::{Format, Serialized, Toml};
use figment::{Figment, Profile};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use qdrant::QdrantSettings;

use env::EnvVars;

/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "RECON_COMPANION_";
/// Separator between nested keys in an env var name (`RECON_COMPANION_PEERTUBE__URL`).
pub const ENV_NESTING: &str = "__";
/// Config file looked up in the working directory when `--config` is not given.
pub const LOCAL_CONFIG: &str = "recon-companion.toml";
/// System-wide config file, looked up after [`LOCAL_CONFIG`].
pub const SYSTEM_CONFIG: &str = "/etc/recon-companion/config.toml";
/// What masked secrets are replaced with.
pub const MASK: &str = "********";

/// Everything the companion can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// RECON's SQLite database.
    pub recon_db: PathBuf,
    /// RECON's concept dirs (`{concepts_dir}/{hash}/window_NNNN.json`).
    pub concepts_dir: PathBuf,
    /// Where run reports (and, by default, the token cache) go.
    pub reports_dir: PathBuf,
    /// Where `--reprocess-missing` moves concept dirs; see [`Config::quarantine_dir`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine_dir: Option<PathBuf>,
    /// `catalogue.source` of PeerTube videos.
    pub peertube_source: String,
    /// A channel with strictly more catalogue rows than this is a mega-channel.
    pub mega_channel_threshold: u64,
    /// Whether `mega_channel_threshold` applies at all. Unset: yes with the
    /// files source, no with Qdrant (RECON 299be21 kept only the skip list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mega_channel_by_size: Option<bool>,
    /// Channels always treated as mega-channels.
    pub mega_channel_skip: Vec<String>,
    /// Where concept counts come from: `files` (concept dirs) or `qdrant`.
    pub concept_source: SourceKind,
    pub peertube: PeerTubeConfig,
    pub server: ServerConfig,
    /// `[qdrant]`: used when `concept_source = "qdrant"` (and by `verify-qdrant`, `compare-sources`).
    pub qdrant: QdrantSettings,
    /// Set by the loader when the file has a `[qdrant]` section or a
    /// `RECON_COMPANION_QDRANT__*` variable is set: with the files source,
    /// `explain` then shows Qdrant's counts beside the files'.
    #[serde(skip)]
    pub qdrant_configured: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            recon_db: PathBuf::from("/opt/recon/data/recon.db"),
            concepts_dir: PathBuf::from("/opt/recon/data/concepts"),
            reports_dir: PathBuf::from("/opt/recon/data/companion-reports"),
            quarantine_dir: None,
            peertube_source: "stream.echo6.co".into(),
            mega_channel_threshold: 500,
            mega_channel_by_size: None,
            mega_channel_skip: vec!["Transcript".into()],
            concept_source: SourceKind::Files,
            peertube: PeerTubeConfig::default(),
            server: ServerConfig::default(),
            qdrant: QdrantSettings::default(),
            qdrant_configured: false,
        }
    }
}

/// How pushes reach PeerTube.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// PeerTube's REST API as an admin user.
    #[default]
    Api,
    /// Straight into PeerTube's PostgreSQL database.
    Db,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Api => "api",
            Transport::Db => "db",
        })
    }
}

impl FromStr for Transport {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "api" => Ok(Transport::Api),
            "db" => Ok(Transport::Db),
            other => Err(Error::Config(format!("unknown transport {other:?}: expected \"api\" or \"db\""))),
        }
    }
}

/// `[peertube]`: both push transports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeerTubeConfig {
    pub transport: Transport,
    /// Base URL the API is called at (may be an internal address).
    pub url: String,
    /// Host header to send when `url` is an internal address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_header: Option<String>,
    pub username: String,
    /// Env var holding the admin password (read first).
    pub password_env: String,
    /// File holding the admin password (read when the env var is unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// OAuth token cache; see [`Config::token_cache`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_cache: Option<PathBuf>,
    /// Upper bound on requests in flight; with `adaptive` the push finds PeerTube's speed below it.
    pub concurrency: usize,
    /// Upper bound on requests per second (admin tokens are exempt from PeerTube's own limits).
    pub rate_per_sec: f64,
    /// Adapt the requests in flight to PeerTube's answers (grow while latency holds, halve on 429/5xx/timeouts).
    pub adaptive: bool,
    /// The api transport learns current categories in bulk (PostgreSQL when `db_url` is set, else PeerTube's
    /// video list); a list older than this is read again before more videos are written.
    pub snapshot_max_age_secs: u64,
    /// The service looks for people's changes every poll: through the plugin's change log alone (one request,
    /// then only the videos it names), and by reading every pushed video's category once this often
    /// (changes the log cannot show: a direct database edit, the plugin off). 0 = every poll.
    pub full_survey_secs: u64,
    /// This many failures in a row abort a push run as systemic.
    pub max_consecutive_failures: u32,
    pub timeout_secs: u64,
    pub max_retries: u32,
    /// PostgreSQL URL for the `db` transport, without a password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_url: Option<String>,
    pub db_password_env: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_password_file: Option<PathBuf>,
    pub db_tls: bool,
    /// Rows per transaction for the `db` transport.
    pub batch_size: usize,
}

impl Default for PeerTubeConfig {
    fn default() -> Self {
        PeerTubeConfig {
            transport: Transport::Api,
            url: "http://192.168.1.170:9000".into(),
            host_header: None,
            username: "root".into(),
            password_env: "RECON_COMPANION_PEERTUBE_PASSWORD".into(),
            password_file: None,
            token_cache: None,
            concurrency: 4,
            rate_per_sec: 100.0,
            adaptive: true,
            snapshot_max_age_secs: 60,
            full_survey_secs: 3600,
            max_consecutive_failures: 5,
            timeout_secs: 30,
            max_retries: 5,
            db_url: None,
            db_password_env: "RECON_COMPANION_PEERTUBE_DB_PASSWORD".into(),
            db_password_file: None,
            db_tls: false,
            batch_size: 500,
        }
    }
}

/// `[server.callers.NAME]`: a machine client of the JSON API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerConfig {
    /// Lowercase hex SHA-256 of the caller's bearer token (the token itself is never stored).
    pub token_sha256: String,
}

/// `[server]`: `recon-companion serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    /// Argon2 PHC string from `recon-companion hash-password`; no login without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    pub cookie_secure: bool,
    pub session_ttl_secs: u64,
    /// Caller name (the `X-Caller-Service` header) → its token hash.
    pub callers: BTreeMap<String, CallerConfig>,
    pub poll_interval_secs: u64,
    pub tiebreaker_interval_secs: u64,
    /// PeerTube's public base URL, for links to videos.
    pub public_url: String,
    /// Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For` is
    /// believed; from anyone else the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Failed logins per client address (IPv6: per /64) within `login_window_secs`
    /// before that address is refused without a password check.
    pub login_max_failures: u32,
    pub login_window_secs: u64,
    /// Password verifications (argon2, ~19 MiB each) running at once, service-wide.
    pub login_max_concurrent: u32,
    /// A request still unanswered after this many seconds gets 408.
    pub request_timeout_secs: u64,
    /// Largest request body accepted (bytes); larger ones get 413.
    pub max_body_bytes: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8787".into(),
            password_hash: None,
            cookie_secure: false,
            session_ttl_secs: 43_200,
            callers: BTreeMap::new(),
            poll_interval_secs: 10,
            tiebreaker_interval_secs: 3_600,
            public_url: "https://stream.echo6.co".into(),
            trusted_proxies: Vec::new(),
            login_max_failures: 5,
            login_window_secs: 60,
            login_max_concurrent: 2,
            request_timeout_secs: 60,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Global CLI flags that override the file and the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliOverrides {
    pub recon_db: Option<PathBuf>,
    pub concepts_dir: Option<PathBuf>,
    pub reports_dir: Option<PathBuf>,
}

/// A loaded config and where its values came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    /// Names (never values) of the env vars applied.
    pub env_vars: Vec<String>,
    /// Names of `RECON_COMPANION_*` vars that are not config keys (secrets, typos).
    pub env_ignored: Vec<String>,
    /// Which CLI flags overrode values.
    pub cli_flags: Vec<String>,
}

impl LoadedConfig {
    /// One line per source, in precedence order, for `recon-companion config`.
    pub fn describe(&self) -> String {
        let mut out = String::from("# sources (later wins):\n#   built-in defaults\n");
        match &self.file {
            Some(p) => out.push_str(&format!("#   file {}\n", p.display())),
            None => out.push_str(&format!("#   no config file (looked for ./{LOCAL_CONFIG} and {SYSTEM_CONFIG})\n")),
        }
        if !self.env_vars.is_empty() {
            out.push_str(&format!("#   env {}\n", self.env_vars.join(", ")));
        }
        if !self.cli_flags.is_empty() {
            out.push_str(&format!("#   flags {}\n", self.cli_flags.join(", ")));
        }
        if !self.env_ignored.is_empty() {
            out.push_str(&format!("#   ignored (not config keys; nested keys use `{ENV_NESTING}`): {}\n", self.env_ignored.join(", ")));
        }
        out
    }
}

/// Load the config from the real environment and the standard file locations.
pub fn load(path: Option<&Path>, overrides: &CliOverrides) -> Result<LoadedConfig> {
    let env: Vec<(String, String)> = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
    let search = [PathBuf::from(LOCAL_CONFIG), PathBuf::from(SYSTEM_CONFIG)];
    load_from(path, overrides, &env, &search)
}

/// [`load`] with the environment and the file search list given, so tests need
/// not touch the process environment or the working directory.
pub fn load_from(path: Option<&Path>, overrides: &CliOverrides, env: &[(String, String)], search: &[PathBuf]) -> Result<LoadedConfig> {
    let file = match path {
        Some(p) => {
            if !p.is_file() {
                return Err(Error::Config(format!("config file {} does not exist", p.display())));
            }
            Some(p.to_path_buf())
        }
        None => search.iter().find(|p| p.is_file()).cloned(),
    };

    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    let mut qdrant_configured = false;
    if let Some(f) = &file {
        // figment's own parse error loses the file name; check syntax here first.
        let text = std::fs::read_to_string(f).map_err(|e| Error::Config(format!("config file {}: {e}", f.display())))?;
        match text.parse::<toml::Table>() {
            Ok(table) => qdrant_configured = table.contains_key("qdrant"),
            Err(e) => return Err(Error::Config(format!("config file {}: {e}", f.display()))),
        }
        figment = figment.merge(Toml::file_exact(f));
    }
    let env_provider = EnvVars::new(env);
    qdrant_configured |= env_provider.sets_section("qdrant");
    figment = figment.merge(env_provider.clone());

    let mut config: Config = figment.extract().map_err(|e| figment_error(e, file.as_deref()))?;
    config.qdrant_configured = qdrant_configured || config.concept_source == SourceKind::Qdrant;

    let mut cli_flags = Vec::new();
    if let Some(p) = &overrides.recon_db {
        config.recon_db = p.clone();
        cli_flags.push("--recon-db".to_string());
    }
    if let Some(p) = &overrides.concepts_dir {
        config.concepts_dir = p.clone();
        cli_flags.push("--concepts-dir".to_string());
    }
    if let Some(p) = &overrides.reports_dir {
        config.reports_dir = p.clone();
        cli_flags.push("--reports-dir".to_string());
    }

    config.validate().map_err(|msg| {
        let key = msg.split(':').next().unwrap_or_default();
        let origin = figment
            .find_metadata(key)
            .map(|md| match &md.source {
                Some(src) => format!(" (set in {src})"),
                None => format!(" (set in {})", md.name),
            })
            .unwrap_or_default();
        Error::Config(format!("{msg}{origin}"))
    })?;

    Ok(LoadedConfig { config, file, env_vars: env_provider.vars.iter().map(|v| v.name.clone()).collect(), env_ignored: env_provider.ignored, cli_flags })
}

/// One line per figment error, each naming the key and where it was set.
fn figment_error(err: figment::Error, file: Option<&Path>) -> Error {
    let mut lines = Vec::new();
    for e in err {
        let key = match e.metadata.as_ref() {
            _ if e.path.is_empty() => String::new(),
            // Env values are named by the variable the operator actually set.
            Some(md) if md.source.is_none() && md.name.contains(ENV_PREFIX) => {
                let parts: Vec<&str> = e.path.iter().map(String::as_str).collect();
                format!(" for key `{}` ({})", e.path.join("."), md.interpolate(&Profile::Default, &parts))
            }
            _ => format!(" for key `{}`", e.path.join(".")),
        };
        let origin = match e.metadata.as_ref() {
            Some(md) => match &md.source {
                Some(src) => format!(" in {src}"),
                None => format!(" in {}", md.name),
            },
            None => file.map(|f| format!(" in {}", f.display())).unwrap_or_default(),
        };
        lines.push(format!("{}{key}{origin}", e.kind));
    }
    Error::Config(lines.join("; "))
}

impl Config {
    /// Where reprocess quarantines concept dirs: the configured dir, else
    /// `companion-quarantine` next to the reports dir.
    pub fn quarantine_dir(&self) -> PathBuf {
        match &self.quarantine_dir {
            Some(p) => p.clone(),
            None => match self.reports_dir.parent() {
                Some(parent) => parent.join("companion-quarantine"),
                None => self.reports_dir.join("companion-quarantine"),
            },
        }
    }

    /// Where the PeerTube OAuth token is cached: the configured file, else
    /// `peertube-token.json` in the reports dir.
    pub fn token_cache(&self) -> PathBuf {
        match &self.peertube.token_cache {
            Some(p) => p.clone(),
            None => self.reports_dir.join("peertube-token.json"),
        }
    }

    /// Whether `channel` is a mega-channel, given its number of PeerTube catalogue rows.
    pub fn is_mega_channel(&self, channel: &str, catalogue_rows: u64) -> bool {
        catalogue_rows > self.mega_channel_threshold || self.mega_channel_skip.iter().any(|s| s == channel)
    }

    /// The mega-channel size threshold in force: `u64::MAX` (no channel is
    /// that big) when switched off, see [`Config::mega_channel_by_size`].
    pub fn effective_mega_threshold(&self) -> u64 {
        if self.mega_channel_by_size.unwrap_or(self.concept_source == SourceKind::Files) {
            self.mega_channel_threshold
        } else {
            u64::MAX
        }
    }

    /// Where Qdrant counts are kept between runs.
    pub fn qdrant_counts_file(&self) -> PathBuf {
        self.qdrant.counts_file.clone().unwrap_or_else(|| self.reports_dir.join("qdrant-counts.json"))
    }

    /// The config with derived paths filled in, as the program will use it.
    pub fn effective(&self) -> Config {
        let mut c = self.clone();
        c.quarantine_dir = Some(self.quarantine_dir());
        c.peertube.token_cache = Some(self.token_cache());
        c.qdrant.counts_file = Some(self.qdrant_counts_file());
        c
    }
}

/// `concept_source` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// `{concepts_dir}/{hash}/window_*.json` (the demo's, and RECON's before 3b37d96).
    #[default]
    Files,
    /// Payloads of RECON's Qdrant collection (RECON since 3b37d96).
    Qdrant,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Files => "files",
            SourceKind::Qdrant => "qdrant",
        }
    }
}

/// A secret from the env var `env_name` (first) or `file`, trimmed; `None` when
/// neither holds one. An empty env var counts as unset.
pub fn read_secret(env_name: &str, file: Option<&Path>) -> Result<Option<String>> {
    if let Ok(v) = std::env::var(env_name) {
        let v = v.trim();
        if !v.is_empty() {
            return Ok(Some(v.to_string()));
        }
    }
    let Some(path) = file else { return Ok(None) };
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("secret file {}: {e}", path.display())))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::Config(format!("secret file {} is empty", path.display())));
    }
    Ok(Some(text.to_string()))
}

/// An address or a CIDR network of `server.trusted_proxies`.
pub fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>().ok().or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}
