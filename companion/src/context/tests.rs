//! Tests of the environment a config gives: which concept sources it builds.

use super::*;
use crate::config::{load_from, CliOverrides};
use std::fs;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn a_qdrant_section_or_variable_marks_qdrant_configured_for_explain() {
    let dir = tempfile::tempdir().unwrap();
    let search = [dir.path().join("absent.toml")];
    let plain = load_from(None, &CliOverrides::default(), &[], &search).unwrap().config;
    assert!(!plain.qdrant_configured);
    assert!(Env::from_config(&plain).second_source.is_none(), "files only: nothing to compare with");

    let file = dir.path().join("c.toml");
    fs::write(&file, "[qdrant]\nurl = \"http://q:6333\"\n").unwrap();
    let with_section = load_from(Some(&file), &CliOverrides::default(), &[], &search).unwrap().config;
    assert!(with_section.qdrant_configured);
    let e = Env::from_config(&with_section);
    assert_eq!((e.concepts.kind(), e.second_source.as_ref().map(ConceptSource::kind)), (SourceKind::Files, Some(SourceKind::Qdrant)));

    let by_env = load_from(None, &CliOverrides::default(), &env(&[("RECON_COMPANION_QDRANT__URL", "http://q:6333")]), &search).unwrap().config;
    assert!(by_env.qdrant_configured);
    let unrelated = load_from(None, &CliOverrides::default(), &env(&[("RECON_COMPANION_PEERTUBE__URL", "http://p")]), &search).unwrap().config;
    assert!(!unrelated.qdrant_configured);

    // The Qdrant source compares with the files, and keeps its counts for the next run.
    let q = load_from(None, &CliOverrides::default(), &env(&[("RECON_COMPANION_CONCEPT_SOURCE", "qdrant")]), &search).unwrap().config;
    let e = Env::from_config(&q);
    assert_eq!(e.second_source.as_ref().map(ConceptSource::kind), Some(SourceKind::Files));
    // By default counts are saved for the next run, which reuses them only
    // with Qdrant's proof that nothing changed.
    assert_eq!(q.qdrant.reuse_counts_secs, 0, "no unproven reuse unless opted in");
    assert!(q.qdrant.reuse_unchanged_counts);
    assert!(matches!(&e.concepts, ConceptSource::Qdrant { memo: Some(m), .. } if !m.lock().unwrap().keeps_between_runs() && m.lock().unwrap().saves_counts()));
    let mut off = q.clone();
    off.qdrant.reuse_unchanged_counts = false;
    assert!(matches!(off.concept_source(), ConceptSource::Qdrant { memo: Some(m), .. } if !m.lock().unwrap().saves_counts()), "off: within the process only");
    assert!(matches!(e.concepts.clone().for_service(), ConceptSource::Qdrant { memo: None, .. }), "the service reads afresh each tick");
    let on = load_from(
        None,
        &CliOverrides::default(),
        &env(&[("RECON_COMPANION_CONCEPT_SOURCE", "qdrant"), ("RECON_COMPANION_QDRANT__REUSE_COUNTS_SECS", "900")]),
        &search,
    )
    .unwrap()
    .config;
    assert!(
        matches!(on.concept_source(), ConceptSource::Qdrant { memo: Some(m), .. } if m.lock().unwrap().keeps_between_runs()),
        "opted in: the memo is kept in the counts file"
    );
    assert!(matches!(on.concept_source().for_service(), ConceptSource::Qdrant { memo: Some(_), .. }), "opted in: the service keeps it too");
    assert_eq!(q.qdrant_counts_file(), PathBuf::from("/opt/recon/data/companion-reports/qdrant-counts.json"));
    assert_eq!(q.effective().qdrant.counts_file, Some(q.qdrant_counts_file()));
}
