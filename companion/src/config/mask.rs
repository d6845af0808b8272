//! Printing the config safely: secrets and URL passwords replaced with [`MASK`].

use super::{Config, MASK};

impl Config {
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
}

/// `scheme://user:secret@host/…` → `scheme://user:********@host/…`; anything else unchanged.
pub(super) fn mask_url_password(url: &str) -> String {
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
