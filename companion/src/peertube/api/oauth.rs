//! OAuth as an admin: the client from `oauth-clients/local`, password grant, refresh on 401, and the token cached on disk (mode 0600).

use super::{classify, snippet_bytes, unix_now, ApiClient, ApiError, ApiSettings, EXPIRY_SLACK_SECS};
use crate::config;
use crate::error::{Error, Result};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::Ordering;

/// A cached OAuth token pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Token {
    base_url: String,
    username: String,
    client_id: String,
    client_secret: String,
    access_token: String,
    refresh_token: String,
    /// Unix seconds.
    expires_at: i64,
    refresh_expires_at: i64,
}

#[derive(Default)]
pub(super) struct AuthState {
    pub(super) token: Option<Token>,
    /// Bumped at every renewal, so concurrent 401s renew once.
    pub(super) generation: u64,
}

/// Writes the token cache readable by its owner only.
fn save_token(path: &Path, t: &Token) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(serde_json::to_string(t)?.as_bytes()).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

pub(super) fn load_token(path: &Path, s: &ApiSettings) -> Option<Token> {
    let text = std::fs::read_to_string(path).ok()?;
    let t: Token = serde_json::from_str(&text).ok()?;
    (t.base_url == s.base_url && t.username == s.username).then_some(t)
}

impl ApiClient {
    async fn oauth_client(&self) -> std::result::Result<(String, String), ApiError> {
        let path = "/api/v1/oauth-clients/local";
        let (status, body) = self.exchange(Method::GET, path, None, None, None, false).await?;
        if status == StatusCode::FORBIDDEN {
            return Err(ApiError::Auth(format!(
                "GET {path} answered 403 ({}): PeerTube hands out its OAuth client only to requests whose Host is its own hostname — set peertube.host_header (the runbook uses stream.echo6.co)",
                snippet_bytes(&body)
            )));
        }
        if !status.is_success() {
            return Err(classify(status, &format!("GET {path}"), &body));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| ApiError::Other(format!("GET {path}: {e}")))?;
        match (v.get("client_id").and_then(Value::as_str), v.get("client_secret").and_then(Value::as_str)) {
            (Some(id), Some(secret)) => Ok((id.to_string(), secret.to_string())),
            _ => Err(ApiError::Other(format!("GET {path}: no client_id/client_secret in the answer"))),
        }
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> std::result::Result<Value, (StatusCode, String)> {
        let (status, body) = self
            .exchange(Method::POST, "/api/v1/users/token", None, None, Some(form), false)
            .await
            .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        if !status.is_success() {
            return Err((status, snippet_bytes(&body)));
        }
        serde_json::from_slice(&body).map_err(|e| (status, format!("token answer is not JSON: {e}")))
    }

    fn token_from(&self, v: &Value, client: (String, String)) -> std::result::Result<Token, ApiError> {
        let now = unix_now();
        let access = v.get("access_token").and_then(Value::as_str);
        let refresh = v.get("refresh_token").and_then(Value::as_str);
        let (Some(access), Some(refresh)) = (access, refresh) else {
            return Err(ApiError::Other("token answer lacks access_token/refresh_token".into()));
        };
        Ok(Token {
            base_url: self.s.base_url.clone(),
            username: self.s.username.clone(),
            client_id: client.0,
            client_secret: client.1,
            access_token: access.to_string(),
            refresh_token: refresh.to_string(),
            expires_at: now + v.get("expires_in").and_then(Value::as_i64).unwrap_or(3600),
            refresh_expires_at: now + v.get("refresh_token_expires_in").and_then(Value::as_i64).unwrap_or(86_400),
        })
    }

    async fn login(&self) -> std::result::Result<Token, ApiError> {
        let password = config::read_secret(&self.s.password_env, self.s.password_file.as_deref())
            .map_err(|e| ApiError::Other(e.to_string()))?
            .ok_or_else(|| ApiError::Auth(format!("no PeerTube password: export {} or set peertube.password_file", self.s.password_env)))?;
        let client = self.oauth_client().await?;
        self.stats.logins.fetch_add(1, Ordering::Relaxed);
        let form = [
            ("client_id", client.0.as_str()),
            ("client_secret", client.1.as_str()),
            ("grant_type", "password"),
            ("username", self.s.username.as_str()),
            ("password", password.as_str()),
        ];
        match self.token_request(&form).await {
            Ok(v) => self.token_from(&v, client),
            // The body may echo nothing secret, but keep it short anyway.
            Err((status, body)) => Err(ApiError::Auth(format!(
                "login as {:?} refused (HTTP {status}): {body} — check the password in {} / peertube.password_file",
                self.s.username, self.s.password_env
            ))),
        }
    }

    async fn refresh(&self, t: &Token) -> Option<Token> {
        if t.refresh_expires_at <= unix_now() {
            return None;
        }
        self.stats.refreshes.fetch_add(1, Ordering::Relaxed);
        let form = [
            ("client_id", t.client_id.as_str()),
            ("client_secret", t.client_secret.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", t.refresh_token.as_str()),
        ];
        match self.token_request(&form).await {
            Ok(v) => self.token_from(&v, (t.client_id.clone(), t.client_secret.clone())).ok(),
            Err((status, _)) => {
                tracing::info!(%status, "token refresh refused; logging in again");
                None
            }
        }
    }

    /// Renews the token unless another task already did since `seen_generation`.
    async fn renew(&self, seen_generation: Option<u64>) -> std::result::Result<(String, u64), ApiError> {
        let mut st = self.auth.lock().await;
        if let (Some(g), Some(t)) = (seen_generation, &st.token) {
            if st.generation != g {
                return Ok((t.access_token.clone(), st.generation));
            }
        }
        let refreshed = match st.token.clone() {
            Some(t) => self.refresh(&t).await,
            None => None,
        };
        let token = match refreshed {
            Some(t) => t,
            None => self.login().await?,
        };
        if let Err(e) = save_token(&self.s.token_cache, &token) {
            tracing::warn!(error = %e, "cannot write the token cache");
        }
        st.generation += 1;
        let out = (token.access_token.clone(), st.generation);
        st.token = Some(token);
        Ok(out)
    }

    /// A usable access token and its generation.
    async fn access_token(&self) -> std::result::Result<(String, u64), ApiError> {
        {
            let st = self.auth.lock().await;
            if let Some(t) = &st.token {
                if t.expires_at - EXPIRY_SLACK_SECS > unix_now() {
                    return Ok((t.access_token.clone(), st.generation));
                }
            }
        }
        self.renew(None).await
    }

    /// An authenticated call; a 401 renews the token once (refresh, else login).
    pub(super) async fn authed(&self, method: Method, path: &str, body: Option<&Value>) -> std::result::Result<(StatusCode, Vec<u8>), ApiError> {
        let (mut token, mut generation) = self.access_token().await?;
        let mut renewed = false;
        loop {
            let (status, bytes) = self.exchange(method.clone(), path, Some(&token), body, None, true).await?;
            if status == StatusCode::UNAUTHORIZED && !renewed {
                (token, generation) = self.renew(Some(generation)).await?;
                renewed = true;
                continue;
            }
            return Ok((status, bytes));
        }
    }

    /// Logs in (or reuses the cached token) so auth problems show before any push.
    pub async fn ensure_login(&self) -> std::result::Result<(), ApiError> {
        self.access_token().await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn token_cache_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/token.json");
        let t = Token {
            base_url: "http://x".into(),
            username: "root".into(),
            client_id: "c".into(),
            client_secret: "s".into(),
            access_token: "a".into(),
            refresh_token: "r".into(),
            expires_at: 1,
            refresh_expires_at: 2,
        };
        save_token(&p, &t).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        // A world-readable file left by someone else is replaced by a private one.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        save_token(&p, &t).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let s = ApiSettings {
            base_url: "http://x".into(),
            host_header: None,
            username: "root".into(),
            password_env: "X".into(),
            password_file: None,
            token_cache: p.clone(),
            rate_per_sec: 1.0,
            timeout: Duration::from_secs(1),
            max_retries: 0,
            concurrency: 1,
            adaptive: true,
        };
        assert!(load_token(&p, &s).is_some());
        let other = ApiSettings { username: "someone-else".into(), ..s };
        assert!(load_token(&p, &other).is_none(), "a token for another user is not reused");
    }
}
