//! The `RECON_COMPANION_*` environment variables as a figment provider.

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::{ENV_NESTING, ENV_PREFIX};

/// Top-level keys and sections an env var may address; anything else with our
/// prefix (the password variables, `RECON_COMPANION_CONFIG`, …) is not config.
pub(super) const ENV_KEYS: &[&str] = &[
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
/// One `RECON_COMPANION_*` variable mapped to a config key.
#[derive(Debug, Clone)]
pub(super) struct EnvVar {
    pub(super) name: String,
    key: String,
    value: String,
}

/// A figment provider over a snapshot of the environment.
#[derive(Debug, Clone)]
pub(super) struct EnvVars {
    pub(super) vars: Vec<EnvVar>,
    pub(super) ignored: Vec<String>,
}

impl EnvVars {
    /// Whether a variable sets a key of `section` (`RECON_COMPANION_QDRANT__URL` sets `qdrant`).
    pub(super) fn sets_section(&self, section: &str) -> bool {
        self.vars.iter().any(|v| v.key.split('.').next() == Some(section))
    }

    pub(super) fn new(env: &[(String, String)]) -> Self {
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
