//! [`Config::validate`]: the checks on values serde accepts but the program cannot use.

use super::Config;

impl Config {
    /// Checks values serde accepts but the program cannot use. The message
    /// starts with the dotted key, then `:`.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let pt = &self.peertube;
        let sv = &self.server;
        if self.peertube_source.trim().is_empty() {
            return Err("peertube_source: must not be empty".into());
        }
        at_least_one("peertube.concurrency", pt.concurrency)?;
        if !(pt.rate_per_sec.is_finite() && pt.rate_per_sec > 0.0) {
            return Err(format!("peertube.rate_per_sec: must be a positive number, got {}", pt.rate_per_sec));
        }
        at_least_one("peertube.max_consecutive_failures", pt.max_consecutive_failures)?;
        at_least_one("peertube.timeout_secs", pt.timeout_secs)?;
        at_least_one("peertube.batch_size", pt.batch_size)?;
        check_url("peertube.url", &pt.url, &["http", "https"])?;
        if let Some(db) = &pt.db_url {
            check_url("peertube.db_url", db, &["postgres", "postgresql"])?;
        }
        if let Some(h) = &pt.host_header {
            if h.trim().is_empty() || h.contains(char::is_whitespace) {
                return Err(format!("peertube.host_header: not a host name: {h:?}"));
            }
        }
        names_a_variable("peertube.password_env", &pt.password_env)?;
        names_a_variable("peertube.db_password_env", &pt.db_password_env)?;
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
        at_least_one("server.session_ttl_secs", sv.session_ttl_secs)?;
        at_least_one("server.poll_interval_secs", sv.poll_interval_secs)?;
        at_least_one("server.tiebreaker_interval_secs", sv.tiebreaker_interval_secs)?;
        check_url("server.public_url", &sv.public_url, &["http", "https"])?;
        for p in &sv.trusted_proxies {
            if super::parse_net(p).is_none() {
                return Err(format!("server.trusted_proxies: not an address or CIDR network: {p:?}"));
            }
        }
        at_least_one("server.login_max_failures", sv.login_max_failures)?;
        at_least_one("server.login_window_secs", sv.login_window_secs)?;
        at_least_one("server.login_max_concurrent", sv.login_max_concurrent)?;
        at_least_one("server.request_timeout_secs", sv.request_timeout_secs)?;
        at_least_one("server.max_body_bytes", sv.max_body_bytes)?;
        let q = &self.qdrant;
        check_url("qdrant.url", &q.url, &["http", "https"])?;
        if q.collection.trim().is_empty() {
            return Err("qdrant.collection: must not be empty".into());
        }
        at_least_one("qdrant.page_size", q.page_size)?;
        at_least_one("qdrant.hashes_per_request", q.hashes_per_request)?;
        at_least_one("qdrant.timeout_secs", q.timeout)?;
        names_a_variable("qdrant.api_key_env", &q.api_key_env)?;
        Ok(())
    }
}

/// `{key}: must be at least 1` when `v` is zero.
fn at_least_one<T: PartialEq + Default>(key: &str, v: T) -> std::result::Result<(), String> {
    if v == T::default() {
        return Err(format!("{key}: must be at least 1"));
    }
    Ok(())
}

/// `{key}: must name an environment variable` when `name` is blank.
fn names_a_variable(key: &str, name: &str) -> std::result::Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("{key}: must name an environment variable"));
    }
    Ok(())
}

fn check_url(key: &str, value: &str, schemes: &[&str]) -> std::result::Result<(), String> {
    match reqwest::Url::parse(value) {
        Ok(u) if schemes.contains(&u.scheme()) && u.has_host() => Ok(()),
        Ok(u) => Err(format!("{key}: expected a {} URL with a host, got scheme {:?}", schemes.join("/"), u.scheme())),
        Err(e) => Err(format!("{key}: not a URL ({e})")),
    }
}
