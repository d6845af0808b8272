//! The document-hash rule: which `documents.hash` values may become a concept-dir path component.
//!
//! RECON joins whatever the column holds onto its concepts dir, so a
//! well-formed hash that is not an MD5 (a 64-hex sha256 from an older import,
//! say) still has its dir read. The companion matches that for every hash that
//! is one safe path component — ASCII letters and digits only, 1 to
//! [`MAX_HASH_LEN`] of them, case kept (the file system is case-sensitive) —
//! and refuses anything else (separators, dots, NUL, whitespace, non-ASCII,
//! empty) as a bad hash that never becomes a path.

/// The longest hash that is used as a path component.
pub const MAX_HASH_LEN: usize = 128;

/// True when `s` is one safe path component: 1 to 128 ASCII letters or digits.
/// Nothing is normalised: the hash is used exactly as given.
pub fn is_valid_hash(s: &str) -> bool {
    (1..=MAX_HASH_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn both_sides_of_the_line() {
        // Accepted: 1 and 128 characters, md5, sha256, mixed case, digits only.
        for good in [
            "a".to_string(),
            "Z".to_string(),
            "7".to_string(),
            "a".repeat(MAX_HASH_LEN),
            "0123456789abcdef0123456789abcdef".to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_string(),
            "0123456789ABCDEF0123456789abcdef".to_string(),
            "mhvXdrZT4jP5T8vBxuvm75".to_string(),
        ] {
            assert!(is_valid_hash(&good), "{good:?}");
        }
        // Refused: empty, 129 characters, anything that is not an ASCII letter or digit.
        for bad in [
            String::new(),
            "a".repeat(MAX_HASH_LEN + 1),
            ".".into(),
            "..".into(),
            "/".into(),
            "\\".into(),
            "\0".into(),
            " ".into(),
            "abc def".into(),
            " abc".into(),
            "abc\n".into(),
            "abc\t".into(),
            "a/b".into(),
            "a\\b".into(),
            "a.b".into(),
            "a\0b".into(),
            "../../etc/passwd".into(),
            "abc-def".into(),
            "abc_def".into(),
            "caf\u{e9}".into(),
            "\u{0430}bc".into(), // Cyrillic а
            "\u{ff41}".into(),   // fullwidth a
            "%2e%2e".into(),
        ] {
            assert!(!is_valid_hash(&bad), "{bad:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// The rule, restated: accepted exactly when 1..=128 ASCII alphanumerics.
        #[test]
        fn accepts_exactly_the_rule(s in "\\PC{0,140}|[A-Za-z0-9]{0,140}|[A-Za-z0-9./\\\\ \\x00-]{0,10}") {
            let want = !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric());
            prop_assert_eq!(is_valid_hash(&s), want, "{:?}", s);
        }

        /// An accepted hash is one path component that names itself.
        #[test]
        fn an_accepted_hash_is_one_normal_component(s in "[A-Za-z0-9]{1,128}") {
            prop_assert!(is_valid_hash(&s));
            let p = std::path::Path::new(&s);
            let comps: Vec<_> = p.components().collect();
            prop_assert_eq!(comps.len(), 1);
            prop_assert!(matches!(comps[0], std::path::Component::Normal(c) if c == s.as_str()));
        }
    }
}
