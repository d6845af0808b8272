//! The companion's configuration: defaults ← TOML file ← `RECON_COMPANION_*` env ← CLI flags.
//!
//! Secrets (PeerTube passwords) never live here: the config names the env var or
//! file that holds them, and [`read_secret`] fetches them at use time.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::recon::qdrant::QdrantSettings;
use crate::recon::source::{ConceptSource, SourceKind};

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

/// Top-level keys and sections an env var may address; anything else with our
/// prefix (the password variables, `RECON_COMPANION_CONFIG`, …) is not config.
const ENV_KEYS: &[&str] = &[
    "recon_db",
    "concepts_dir",
    "reports_dir",
    "quarantine_dir",
    "peertube_source",
    "mega_channel_threshold",
    "mega_channel_by_size",
    "mega_channel_skip",
    "concept_source",
    "peertube",
    "server",
    "qdrant",
];

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
    if let Some(f) = &file {
        // figment's own parse error loses the file name; check syntax here first.
        let text = std::fs::read_to_string(f).map_err(|e| Error::Config(format!("config file {}: {e}", f.display())))?;
        if let Err(e) = text.parse::<toml::Table>() {
            return Err(Error::Config(format!("config file {}: {e}", f.display())));
        }
        figment = figment.merge(Toml::file_exact(f));
    }
    let env_provider = EnvVars::new(env);
    figment = figment.merge(env_provider.clone());

    let mut config: Config = figment.extract().map_err(|e| figment_error(e, file.as_deref()))?;

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

/// One `RECON_COMPANION_*` variable mapped to a config key.
#[derive(Debug, Clone)]
struct EnvVar {
    name: String,
    key: String,
    value: String,
}

/// A figment provider over a snapshot of the environment.
#[derive(Debug, Clone)]
struct EnvVars {
    vars: Vec<EnvVar>,
    ignored: Vec<String>,
}

impl EnvVars {
    fn new(env: &[(String, String)]) -> Self {
        let mut vars = Vec::new();
        let mut ignored = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
            let key = rest.to_ascii_lowercase().split(ENV_NESTING).collect::<Vec<_>>().join(".");
            let top = key.split('.').next().unwrap_or_default();
            if ENV_KEYS.contains(&top) && !key.split('.').any(str::is_empty) {
                vars.push(EnvVar { name: name.clone(), key, value: value.clone() });
            } else {
                ignored.push(name.clone());
            }
        }
        // Deterministic precedence and output whatever order the OS lists them in.
        vars.sort_by(|a, b| a.name.cmp(&b.name));
        ignored.sort();
        EnvVars { vars, ignored }
    }
}

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("`{ENV_PREFIX}*` environment variable(s)")).interpolater(|_: &Profile, keys: &[&str]| {
            format!("{ENV_PREFIX}{}", keys.iter().map(|k| k.to_ascii_uppercase()).collect::<Vec<_>>().join(ENV_NESTING))
        })
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for v in &self.vars {
            // Same value syntax as figment's Env provider: numbers, bools, [arrays], strings.
            let parsed: Value = match v.value.parse() {
                Ok(val) => val,
                Err(never) => match never {},
            };
            let parts: Vec<&str> = v.key.split('.').collect();
            insert_nested(&mut dict, &parts, parsed);
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn insert_nested(dict: &mut Dict, keys: &[&str], value: Value) {
    match keys {
        [] => {}
        [last] => {
            dict.insert((*last).to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = dict.entry((*first).to_string()).or_insert_with(|| Value::from(Dict::new()));
            if entry.as_dict().is_none() {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_nested(inner, rest, value);
            }
        }
    }
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

    /// The configured concept source.
    pub fn concept_source(&self) -> ConceptSource {
        self.source_of(self.concept_source)
    }

    /// A given kind of source with this config's settings (`compare-sources` uses both).
    pub fn source_of(&self, kind: SourceKind) -> ConceptSource {
        match kind {
            SourceKind::Files => ConceptSource::Files,
            SourceKind::Qdrant => ConceptSource::Qdrant { settings: self.qdrant.clone(), memo: None },
        }
    }

    /// The config with derived paths filled in, as the program will use it.
    pub fn effective(&self) -> Config {
        let mut c = self.clone();
        c.quarantine_dir = Some(self.quarantine_dir());
        c.peertube.token_cache = Some(self.token_cache());
        c
    }

    /// A copy safe to print: password hashes, caller token hashes and any
    /// password inside the PostgreSQL URL are replaced with [`MASK`].
    pub fn masked(&self) -> Config {
        let mut c = self.clone();
        if c.server.password_hash.is_some() {
            c.server.password_hash = Some(MASK.into());
        }
        for caller in c.server.callers.values_mut() {
            caller.token_sha256 = MASK.into();
        }
        if let Some(url) = &c.peertube.db_url {
            c.peertube.db_url = Some(mask_url_password(url));
        }
        c.peertube.url = mask_url_password(&c.peertube.url);
        c.server.public_url = mask_url_password(&c.server.public_url);
        c.qdrant.url = mask_url_password(&c.qdrant.url);
        c.qdrant.api_key = None;
        c
    }

    /// The effective config as TOML with secrets masked, for `recon-companion config`.
    pub fn to_toml_masked(&self) -> String {
        // Serializing plain structs of strings, numbers and maps cannot fail;
        // say so in the output rather than panic if it ever does.
        toml::to_string_pretty(&self.effective().masked()).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// Checks values serde accepts but the program cannot use. The message
    /// starts with the dotted key, then `:`.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let pt = &self.peertube;
        let sv = &self.server;
        if self.peertube_source.trim().is_empty() {
            return Err("peertube_source: must not be empty".into());
        }
        if pt.concurrency == 0 {
            return Err("peertube.concurrency: must be at least 1".into());
        }
        if !(pt.rate_per_sec.is_finite() && pt.rate_per_sec > 0.0) {
            return Err(format!("peertube.rate_per_sec: must be a positive number, got {}", pt.rate_per_sec));
        }
        if pt.max_consecutive_failures == 0 {
            return Err("peertube.max_consecutive_failures: must be at least 1".into());
        }
        if pt.timeout_secs == 0 {
            return Err("peertube.timeout_secs: must be at least 1".into());
        }
        if pt.batch_size == 0 {
            return Err("peertube.batch_size: must be at least 1".into());
        }
        check_url("peertube.url", &pt.url, &["http", "https"])?;
        if let Some(db) = &pt.db_url {
            check_url("peertube.db_url", db, &["postgres", "postgresql"])?;
        }
        if let Some(h) = &pt.host_header {
            if h.trim().is_empty() || h.contains(char::is_whitespace) {
                return Err(format!("peertube.host_header: not a host name: {h:?}"));
            }
        }
        if pt.password_env.trim().is_empty() {
            return Err("peertube.password_env: must name an environment variable".into());
        }
        if pt.db_password_env.trim().is_empty() {
            return Err("peertube.db_password_env: must name an environment variable".into());
        }
        if sv.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("server.bind: not an address:port: {:?}", sv.bind));
        }
        if let Some(h) = &sv.password_hash {
            // Only the shape: the hash itself must not appear in a message.
            if !h.starts_with("$argon2") || h.split('$').count() < 5 {
                return Err("server.password_hash: not an argon2 PHC string (make one with `recon-companion hash-password`)".into());
            }
        }
        for (name, caller) in &sv.callers {
            if caller.token_sha256.len() != 64 || !caller.token_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("server.callers.{name}.token_sha256: must be 64 hex characters (sha256 of the token)"));
            }
        }
        if sv.session_ttl_secs == 0 {
            return Err("server.session_ttl_secs: must be at least 1".into());
        }
        if sv.poll_interval_secs == 0 {
            return Err("server.poll_interval_secs: must be at least 1".into());
        }
        if sv.tiebreaker_interval_secs == 0 {
            return Err("server.tiebreaker_interval_secs: must be at least 1".into());
        }
        check_url("server.public_url", &sv.public_url, &["http", "https"])?;
        for p in &sv.trusted_proxies {
            if crate::server::auth::parse_net(p).is_none() {
                return Err(format!("server.trusted_proxies: not an address or CIDR network: {p:?}"));
            }
        }
        for (key, v) in [
            ("login_max_failures", u64::from(sv.login_max_failures)),
            ("login_window_secs", sv.login_window_secs),
            ("login_max_concurrent", u64::from(sv.login_max_concurrent)),
            ("request_timeout_secs", sv.request_timeout_secs),
            ("max_body_bytes", sv.max_body_bytes),
        ] {
            if v == 0 {
                return Err(format!("server.{key}: must be at least 1"));
            }
        }
        let q = &self.qdrant;
        check_url("qdrant.url", &q.url, &["http", "https"])?;
        if q.collection.trim().is_empty() {
            return Err("qdrant.collection: must not be empty".into());
        }
        if q.page_size == 0 {
            return Err("qdrant.page_size: must be at least 1".into());
        }
        if q.hashes_per_request == 0 {
            return Err("qdrant.hashes_per_request: must be at least 1".into());
        }
        if q.timeout.is_zero() {
            return Err("qdrant.timeout_secs: must be at least 1".into());
        }
        if q.api_key_env.trim().is_empty() {
            return Err("qdrant.api_key_env: must name an environment variable".into());
        }
        Ok(())
    }
}

fn check_url(key: &str, value: &str, schemes: &[&str]) -> std::result::Result<(), String> {
    match reqwest::Url::parse(value) {
        Ok(u) if schemes.contains(&u.scheme()) && u.has_host() => Ok(()),
        Ok(u) => Err(format!("{key}: expected a {} URL with a host, got scheme {:?}", schemes.join("/"), u.scheme())),
        Err(e) => Err(format!("{key}: not a URL ({e})")),
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:********@host/…`; anything else unchanged.
fn mask_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_string() };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else { return url.to_string() };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else { return url.to_string() };
    format!("{}{}:{MASK}{}", &url[..rest_start], &userinfo[..colon], &rest[at..])
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_when_no_file_and_no_env() {
        let dir = tempfile::tempdir().unwrap();
        let search = [dir.path().join("absent.toml")];
        let loaded = load_from(None, &CliOverrides::default(), &[], &search).unwrap();
        let c = &loaded.config;
        assert_eq!(c, &Config::default());
        assert!(loaded.file.is_none());
        assert_eq!(c.recon_db, PathBuf::from("/opt/recon/data/recon.db"));
        assert_eq!(c.mega_channel_threshold, 500);
        assert_eq!(c.mega_channel_skip, vec!["Transcript".to_string()]);
        assert_eq!(c.peertube.transport, Transport::Api);
        assert_eq!(c.peertube.concurrency, 4);
        assert_eq!(c.server.bind, "127.0.0.1:8787");
        assert_eq!(c.server.session_ttl_secs, 43_200);
        assert_eq!(c.quarantine_dir(), PathBuf::from("/opt/recon/data/companion-quarantine"));
        assert_eq!(c.token_cache(), PathBuf::from("/opt/recon/data/companion-reports/peertube-token.json"));
        assert!(loaded.describe().contains("no config file"));
    }

    #[test]
    fn file_overrides_defaults_and_search_order() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("local.toml");
        let system = dir.path().join("system.toml");
        fs::write(&system, "peertube_source = \"system.example\"\n").unwrap();
        let search = [local.clone(), system.clone()];
        let loaded = load_from(None, &CliOverrides::default(), &[], &search).unwrap();
        assert_eq!(loaded.file.as_deref(), Some(system.as_path()));
        assert_eq!(loaded.config.peertube_source, "system.example");

        fs::write(
            &local,
            r#"
recon_db = "/data/r.db"
mega_channel_threshold = 42
mega_channel_skip = ["Transcript", "Shorts"]
quarantine_dir = "/q"

[peertube]
transport = "db"
db_url = "postgres://peertube@127.0.0.1/peertube_prod"
host_header = "stream.echo6.co"

[server]
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"
[server.callers.recon]
token_sha256 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
"#,
        )
        .unwrap();
        let loaded = load_from(None, &CliOverrides::default(), &[], &search).unwrap();
        let c = &loaded.config;
        assert_eq!(loaded.file.as_deref(), Some(local.as_path()));
        assert_eq!(c.peertube_source, "stream.echo6.co", "system file must not be merged too");
        assert_eq!(c.recon_db, PathBuf::from("/data/r.db"));
        assert_eq!(c.concepts_dir, PathBuf::from("/opt/recon/data/concepts"));
        assert_eq!(c.mega_channel_threshold, 42);
        assert_eq!(c.mega_channel_skip.len(), 2);
        assert_eq!(c.quarantine_dir(), PathBuf::from("/q"));
        assert_eq!(c.peertube.transport, Transport::Db);
        assert_eq!(c.peertube.host_header.as_deref(), Some("stream.echo6.co"));
        assert_eq!(c.peertube.concurrency, 4);
        assert_eq!(c.server.callers.len(), 1);
        assert!(c.is_mega_channel("Shorts", 1));
        assert!(!c.is_mega_channel("Other", 42));
        assert!(c.is_mega_channel("Other", 43));

        // An explicit path wins over the search list.
        let explicit = dir.path().join("explicit.toml");
        fs::write(&explicit, "reports_dir = \"/r\"\n").unwrap();
        let loaded = load_from(Some(&explicit), &CliOverrides::default(), &[], &search).unwrap();
        assert_eq!(loaded.config.reports_dir, PathBuf::from("/r"));
        assert_eq!(loaded.config.recon_db, PathBuf::from("/opt/recon/data/recon.db"));
        assert_eq!(loaded.config.quarantine_dir(), PathBuf::from("/companion-quarantine"));
        assert!(loaded.describe().contains(&explicit.display().to_string()));
    }

    #[test]
    fn explicit_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope.toml");
        let err = load_from(Some(&p), &CliOverrides::default(), &[], &[]).unwrap_err();
        assert!(matches!(err, Error::Config(_)));
        assert!(err.to_string().contains(&p.display().to_string()), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn env_overrides_file_and_ignores_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        fs::write(&f, "recon_db = \"/file.db\"\nconcepts_dir = \"/file-concepts\"\n[peertube]\nurl = \"http://file:9000\"\n").unwrap();
        let vars = env(&[
            ("RECON_COMPANION_RECON_DB", "/env.db"),
            ("RECON_COMPANION_PEERTUBE__URL", "http://env:9000"),
            ("RECON_COMPANION_PEERTUBE__CONCURRENCY", "8"),
            ("RECON_COMPANION_PEERTUBE__TRANSPORT", "db"),
            ("RECON_COMPANION_MEGA_CHANNEL_SKIP", "[\"A\", \"B\"]"),
            ("RECON_COMPANION_SERVER__COOKIE_SECURE", "true"),
            ("RECON_COMPANION_PEERTUBE_PASSWORD", "hunter2"),
            ("RECON_COMPANION_CONFIG", "/x.toml"),
            ("OTHER_VAR", "1"),
        ]);
        let loaded = load_from(Some(&f), &CliOverrides::default(), &vars, &[]).unwrap();
        let c = &loaded.config;
        assert_eq!(c.recon_db, PathBuf::from("/env.db"));
        assert_eq!(c.concepts_dir, PathBuf::from("/file-concepts"));
        assert_eq!(c.peertube.url, "http://env:9000");
        assert_eq!(c.peertube.concurrency, 8);
        assert_eq!(c.peertube.transport, Transport::Db);
        assert_eq!(c.mega_channel_skip, vec!["A".to_string(), "B".to_string()]);
        assert!(c.server.cookie_secure);
        assert!(loaded.env_vars.contains(&"RECON_COMPANION_PEERTUBE__URL".to_string()));
        assert_eq!(loaded.env_ignored, vec!["RECON_COMPANION_CONFIG".to_string(), "RECON_COMPANION_PEERTUBE_PASSWORD".to_string()]);
        let described = loaded.describe();
        assert!(described.contains("RECON_COMPANION_RECON_DB"));
        assert!(!described.contains("hunter2"), "env values must never be described");
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let vars = env(&[("RECON_COMPANION_PEERTUBE__CONCURRENCY", "lots")]);
        let err = load_from(None, &CliOverrides::default(), &vars, &[]).unwrap_err().to_string();
        assert!(err.contains("RECON_COMPANION_PEERTUBE__CONCURRENCY") && err.contains("peertube.concurrency"), "{err}");
        assert!(err.contains("environment"), "{err}");
    }

    #[test]
    fn cli_overrides_win_over_env_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        fs::write(&f, "recon_db = \"/file.db\"\nreports_dir = \"/file-reports\"\n").unwrap();
        let vars = env(&[("RECON_COMPANION_RECON_DB", "/env.db"), ("RECON_COMPANION_CONCEPTS_DIR", "/env-c")]);
        let o = CliOverrides { recon_db: Some("/cli.db".into()), concepts_dir: None, reports_dir: Some("/cli/reports".into()) };
        let loaded = load_from(Some(&f), &o, &vars, &[]).unwrap();
        assert_eq!(loaded.config.recon_db, PathBuf::from("/cli.db"));
        assert_eq!(loaded.config.concepts_dir, PathBuf::from("/env-c"));
        assert_eq!(loaded.config.reports_dir, PathBuf::from("/cli/reports"));
        // Derived paths follow the overridden reports dir.
        assert_eq!(loaded.config.quarantine_dir(), PathBuf::from("/cli/companion-quarantine"));
        assert_eq!(loaded.config.token_cache(), PathBuf::from("/cli/reports/peertube-token.json"));
        assert_eq!(loaded.cli_flags, vec!["--recon-db".to_string(), "--reports-dir".to_string()]);
    }

    #[test]
    fn bad_toml_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("broken.toml");
        fs::write(&f, "recon_db = \"/x.db\nthis is not toml\n").unwrap();
        let err = load_from(Some(&f), &CliOverrides::default(), &[], &[]).unwrap_err().to_string();
        assert!(err.contains(&f.display().to_string()), "{err}");
    }

    #[test]
    fn bad_value_names_the_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("typed.toml");
        fs::write(&f, "[peertube]\nconcurrency = \"four\"\n").unwrap();
        let err = load_from(Some(&f), &CliOverrides::default(), &[], &[]).unwrap_err().to_string();
        assert!(err.contains(&f.display().to_string()), "{err}");
        assert!(err.contains("peertube.concurrency"), "{err}");

        fs::write(&f, "[peertube]\nconcurency = 4\n").unwrap();
        let err = load_from(Some(&f), &CliOverrides::default(), &[], &[]).unwrap_err().to_string();
        assert!(err.contains("concurency"), "unknown keys are reported: {err}");
        assert!(err.contains(&f.display().to_string()), "{err}");

        fs::write(&f, "[peertube]\ntransport = \"carrier-pigeon\"\n").unwrap();
        let err = load_from(Some(&f), &CliOverrides::default(), &[], &[]).unwrap_err().to_string();
        assert!(err.contains("carrier-pigeon") && err.contains("peertube.transport"), "{err}");
    }

    #[test]
    fn semantic_validation_names_key_and_source() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("v.toml");
        fs::write(&f, "[peertube]\nconcurrency = 0\n").unwrap();
        let err = load_from(Some(&f), &CliOverrides::default(), &[], &[]).unwrap_err().to_string();
        assert!(err.contains("peertube.concurrency") && err.contains(&f.display().to_string()), "{err}");

        for bad in [
            "[server]\nbind = \"localhost\"\n",
            "[server.callers.x]\ntoken_sha256 = \"abc\"\n",
            "[server]\npassword_hash = \"plaintext\"\n",
            "[peertube]\ndb_url = \"mysql://x@y/z\"\n",
            "[peertube]\nrate_per_sec = 0.0\n",
        ] {
            fs::write(&f, bad).unwrap();
            assert!(load_from(Some(&f), &CliOverrides::default(), &[], &[]).is_err(), "accepted {bad:?}");
        }
        // The password hash itself never appears in the error.
        fs::write(&f, "[server]\npassword_hash = \"s3cret-plaintext\"\n").unwrap();
        let err = load_from(Some(&f), &CliOverrides::default(), &[], &[]).unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn masking_hides_every_secret() {
        let mut c = Config::default();
        c.server.password_hash = Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$SECRETHASH".into());
        c.server.callers.insert("recon".into(), CallerConfig { token_sha256: "ab".repeat(32) });
        c.peertube.db_url = Some("postgres://peertube:dbpass@127.0.0.1:5432/peertube_prod".into());
        c.peertube.url = "http://admin:urlpass@192.168.1.170:9000/".into();
        let out = c.to_toml_masked();
        for secret in ["SECRETHASH", &"ab".repeat(32), "dbpass", "urlpass"] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
        assert!(out.contains("postgres://peertube:********@127.0.0.1:5432/peertube_prod"), "{out}");
        assert!(out.contains("http://admin:********@192.168.1.170:9000/"), "{out}");
        assert!(out.contains("[server.callers.recon]"), "{out}");
        // The printed config shows derived paths and parses back into a Config.
        assert!(out.contains("companion-quarantine") && out.contains("peertube-token.json"), "{out}");
        let back: Config = toml::from_str(&out).unwrap();
        assert_eq!(back.recon_db, c.recon_db);
        assert_eq!(back.server.password_hash.as_deref(), Some(MASK));
        // The original is untouched.
        assert!(c.server.password_hash.as_deref().unwrap().contains("SECRETHASH"));
        // URLs without a password are left alone.
        assert_eq!(mask_url_password("postgres://peertube@127.0.0.1/db"), "postgres://peertube@127.0.0.1/db");
        assert_eq!(mask_url_password("http://h/p?x=a:b@c"), "http://h/p?x=a:b@c");
    }

    #[test]
    fn default_config_round_trips_through_toml() {
        let text = toml::to_string_pretty(&Config::default()).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, Config::default());
        // Every serialized top-level key can also be set from the environment.
        let table: toml::Table = text.parse().unwrap();
        for key in table.keys() {
            assert!(ENV_KEYS.contains(&key.as_str()), "{key} missing from ENV_KEYS");
        }
    }

    #[test]
    fn example_config_parses() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/recon-companion.example.toml");
        let loaded = load_from(Some(&example), &CliOverrides::default(), &[], &[]).unwrap();
        assert_eq!(loaded.config.peertube_source, "stream.echo6.co");
    }

    #[test]
    fn qdrant_source_section_and_mega_switch() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("q.toml");
        fs::write(&f, "concept_source = \"qdrant\"\n[qdrant]\nurl = \"http://10.0.0.5:6333\"\ncollection = \"c\"\npage_size = 500\nhashes_per_request = 64\napi_key_file = \"/etc/k\"\n").unwrap();
        let c = load_from(Some(&f), &CliOverrides::default(), &[], &[]).unwrap().config;
        assert_eq!(c.concept_source, SourceKind::Qdrant);
        assert_eq!(
            (c.qdrant.url.as_str(), c.qdrant.collection.as_str(), c.qdrant.page_size, c.qdrant.hashes_per_request),
            ("http://10.0.0.5:6333", "c", 500, 64)
        );
        // Qdrant: the skip list alone, unless the threshold is switched back on.
        assert_eq!(c.effective_mega_threshold(), u64::MAX);
        assert_eq!(Config { mega_channel_by_size: Some(true), ..c.clone() }.effective_mega_threshold(), 500);
        assert_eq!(Config::default().effective_mega_threshold(), 500);
        assert_eq!(Config { mega_channel_by_size: Some(false), ..Config::default() }.effective_mega_threshold(), u64::MAX);
        // The api key never comes from the file, and never shows.
        fs::write(&f, "[qdrant]\napi_key = \"secret\"\n").unwrap();
        assert!(load_from(Some(&f), &CliOverrides::default(), &[], &[]).is_err());
        let mut m = Config::default();
        m.qdrant.api_key = Some("k3y-value".into());
        m.qdrant.url = "http://u:pw@h:6333".into();
        let out = m.to_toml_masked();
        assert!(!out.contains("k3y-value") && !out.contains("pw@"), "{out}");
        let vars = env(&[("RECON_COMPANION_CONCEPT_SOURCE", "qdrant"), ("RECON_COMPANION_QDRANT__COLLECTION", "x")]);
        let c = load_from(None, &CliOverrides::default(), &vars, &[]).unwrap().config;
        assert_eq!((c.concept_source, c.qdrant.collection.as_str()), (SourceKind::Qdrant, "x"));
        fs::write(&f, "[qdrant]\npage_size = 0\n").unwrap();
        assert!(load_from(Some(&f), &CliOverrides::default(), &[], &[]).is_err());
    }

    #[test]
    fn transport_parses() {
        assert_eq!("API".parse::<Transport>().unwrap(), Transport::Api);
        assert_eq!("db".parse::<Transport>().unwrap(), Transport::Db);
        assert!("ftp".parse::<Transport>().is_err());
        assert_eq!(Transport::Db.to_string(), "db");
    }

    #[test]
    fn read_secret_env_then_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        fs::write(&f, "  from-file\n").unwrap();
        // A variable name no other test or program uses.
        let name = "RECON_COMPANION_TEST_READ_SECRET_7F3A";
        std::env::remove_var(name);
        assert_eq!(read_secret(name, None).unwrap(), None);
        assert_eq!(read_secret(name, Some(&f)).unwrap().as_deref(), Some("from-file"));
        std::env::set_var(name, " from-env \n");
        assert_eq!(read_secret(name, Some(&f)).unwrap().as_deref(), Some("from-env"));
        std::env::set_var(name, "");
        assert_eq!(read_secret(name, Some(&f)).unwrap().as_deref(), Some("from-file"));
        std::env::remove_var(name);
        let missing = dir.path().join("missing-pw");
        let err = read_secret(name, Some(&missing)).unwrap_err().to_string();
        assert!(err.contains(&missing.display().to_string()), "{err}");
        fs::write(&f, "\n").unwrap();
        assert!(read_secret(name, Some(&f)).is_err());
    }
}
