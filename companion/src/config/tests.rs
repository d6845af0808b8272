//! Tests of loading, precedence, validation and masking.

use super::env::ENV_KEYS;
use super::mask::mask_url_password;
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
    assert_eq!((c.qdrant.url.as_str(), c.qdrant.collection.as_str(), c.qdrant.page_size, c.qdrant.hashes_per_request), ("http://10.0.0.5:6333", "c", 500, 64));
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
