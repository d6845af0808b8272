//! What the operator asked about: a document hash, a PeerTube video uuid (long or
//! short) or a `/w/` URL, and the document hash it names in recon.db.

use crate::error::{Error, Result};
use crate::peertube::video_id::{self, VideoUuid};
use crate::recon::db as recondb;
use crate::recon::hash::is_valid_hash;
use rusqlite::Connection;
use std::collections::BTreeSet;

/// What the operator asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A document hash (one safe path component, case kept), and nothing else.
    Hash(String),
    /// A PeerTube video, in both the forms its catalogue path may hold.
    Video { given: String, long: Option<String>, short: Option<String> },
    /// Both: a well-formed hash that is also a PeerTube short uuid (22 base58
    /// characters). Looked up as a document hash first, then as a video.
    HashOrVideo { hash: String, long: Option<String>, short: Option<String> },
}

/// Parses what the operator typed. Nothing here becomes a path: only a valid
/// hash ever does, later, through `concepts::concept_dir`. A hash is taken
/// exactly as typed (no trimming, no case change: `recon::hash`); a uuid or URL
/// may carry surrounding whitespace.
pub fn parse_target(raw: &str) -> Result<Target> {
    let hash = is_valid_hash(raw).then(|| raw.to_string());
    let t = raw.trim();
    let id = match t.rsplit_once("/w/") {
        Some((_, rest)) => rest.split(['?', '#', '/']).next().unwrap_or(""),
        None => t,
    };
    let mut video = None;
    if id.len() == 36 {
        if let Some(v) = VideoUuid::parse(id) {
            video = Some((id.to_string(), Some(v.as_str().to_string()), Some(v.short())));
        }
    }
    // A short form above 128 bits has no long form, but a catalogue path may
    // still hold it verbatim: it is looked up as written.
    if video.is_none() && video_id::is_short_form(id) {
        video = Some((id.to_string(), video_id::short_to_uuid(id), Some(id.to_string())));
    }
    match (hash, video) {
        (Some(hash), Some((_, long, short))) => Ok(Target::HashOrVideo { hash, long, short }),
        (Some(hash), None) => Ok(Target::Hash(hash)),
        (None, Some((given, long, short))) => Ok(Target::Video { given, long, short }),
        (None, None) => Err(Error::BadTarget(format!(
            "{raw:?} is not a document hash (1 to 128 ASCII letters and digits), a PeerTube video uuid (36 characters, or the \
             22-character short form) or a URL containing /w/{{uuid}}"
        ))),
    }
}

/// Whether recon.db has a documents or catalogue row with exactly this hash.
fn is_document(conn: &Connection, hash: &str) -> Result<bool> {
    // Existence only: the feature's columns are not read.
    let row = recondb::document_view(conn, hash, false)?;
    Ok(row.in_documents || row.in_catalogue)
}

/// The hash as typed when recon.db has it; else its lowercase spelling when
/// that is a document (RECON writes MD5s in lowercase: an operator may paste
/// one in capitals). What is returned is always a stored spelling or the
/// typed one, so the concept dir read is the one RECON would read.
fn as_document(conn: &Connection, hash: &str) -> Result<Option<String>> {
    if is_document(conn, hash)? {
        return Ok(Some(hash.to_string()));
    }
    let lower = hash.to_ascii_lowercase();
    Ok((lower != hash && is_document(conn, &lower)?).then_some(lower))
}

/// The document hash a target names. A hash only: the stored spelling (see
/// `as_document`). A hash that is also a short uuid: a document when recon.db
/// has a documents or catalogue row with exactly that hash, else a video. A video is matched on
/// what follows the last `/w/` of `catalogue.path`, in either uuid form.
pub fn resolve(conn: &Connection, target: &Target) -> Result<String> {
    let (given, long, short) = match target {
        Target::Hash(h) => return Ok(as_document(conn, h)?.unwrap_or_else(|| h.clone())),
        Target::HashOrVideo { hash, long, short } => {
            // Exactly as typed: a short uuid is case-sensitive, so no lowercase try.
            if is_document(conn, hash)? {
                return Ok(hash.clone());
            }
            (hash, long.as_deref(), short.as_deref())
        }
        Target::Video { given, long, short } => (given, long.as_deref(), short.as_deref()),
    };
    let mut found = BTreeSet::new();
    for (hash, path) in recondb::catalogue_rows_naming_video(conn, long, short)? {
        let Some((_, id)) = path.as_deref().and_then(|p| p.rsplit_once("/w/")) else { continue };
        if long.is_some_and(|l| id.eq_ignore_ascii_case(l)) || short.is_some_and(|s| id == s) {
            found.insert(hash);
        }
    }
    let mut it = found.iter();
    match (it.next(), found.len()) {
        (None, _) if matches!(target, Target::HashOrVideo { .. }) => {
            Err(Error::NotFound(format!("no document has the hash {given}, and no catalogue row has a video path ending in /w/{given}")))
        }
        (None, _) => Err(Error::NotFound(format!("no catalogue row has a video path ending in /w/{given}"))),
        (Some(h), 1) => Ok(h.clone()),
        _ => Err(Error::Other(format!(
            "video {given} matches {} documents ({}): explain one of them by hash",
            found.len(),
            found.iter().cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        // A hash is kept exactly as typed (once lowercased: the rule now keeps case).
        let h = "0123456789ABCDEF0123456789abcdef";
        assert_eq!(parse_target(h).ok(), Some(Target::Hash(h.to_string())));
        // short-uuid's own test vector (flickr base58).
        let u = "a44521d0-0fb8-4ade-8002-3385545c3318";
        let want = Target::Video { given: u.to_string(), long: Some(u.to_string()), short: Some("mhvXdrZT4jP5T8vBxuvm75".into()) };
        assert_eq!(parse_target(u).ok(), Some(want.clone()));
        assert_eq!(parse_target(&format!("https://stream.echo6.co/w/{u}?start=3")).ok(), Some(want));
        match parse_target("https://x/videos/w/mhvXdrZT4jP5T8vBxuvm75/") {
            Ok(Target::Video { long, .. }) => assert_eq!(long.as_deref(), Some(u)),
            other => panic!("{other:?}"),
        }
        // Small values are padded with the alphabet's first character.
        match parse_target("00000000-0000-0000-0000-000000000001") {
            Ok(Target::Video { short, .. }) => assert_eq!(short.as_deref(), Some("1111111111111111111112")),
            other => panic!("{other:?}"),
        }
        // 22 base58 digits can exceed 128 bits: looked up as written, no long
        // form; and being alphanumeric, it is a well-formed hash too.
        match parse_target("ZZZZZZZZZZZZZZZZZZZZZZ") {
            Ok(Target::HashOrVideo { hash, long, short }) => {
                assert_eq!((hash.as_str(), long, short.as_deref()), ("ZZZZZZZZZZZZZZZZZZZZZZ", None, Some("ZZZZZZZZZZZZZZZZZZZZZZ")))
            }
            other => panic!("{other:?}"),
        }
        for bad in ["", "../../etc/passwd", "https://x/w/", "https://x/v/mhvXdrZT4jP5T8vBxuvm75", "0123456789abcdef0123456789abcde-", "a b", ".", "caf\u{e9}"] {
            assert!(matches!(parse_target(bad), Err(Error::BadTarget(_))), "{bad:?}");
        }
    }

    #[test]
    fn any_safe_component_is_a_hash_target() {
        // Once refused ("not 32 hex"); now hashes by the rule, case kept.
        let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for h in ["hello", "0123456789abcdef0123456789abcdeg", "0OIl000000000000000000", "x", sha] {
            assert_eq!(parse_target(h).ok(), Some(Target::Hash(h.to_string())), "{h:?}");
        }
        let max = "a".repeat(128);
        assert_eq!(parse_target(&max).ok(), Some(Target::Hash(max.clone())));
        assert!(matches!(parse_target(&"a".repeat(129)), Err(Error::BadTarget(_))));
        // Whitespace is never part of a hash, but a uuid may be pasted with it.
        assert!(matches!(parse_target(" hello"), Err(Error::BadTarget(_))));
        assert!(matches!(parse_target(" a44521d0-0fb8-4ade-8002-3385545c3318\n"), Ok(Target::Video { .. })));
        // A short uuid with whitespace is only a video.
        assert!(matches!(parse_target(" mhvXdrZT4jP5T8vBxuvm75"), Ok(Target::Video { .. })));
        assert!(matches!(parse_target("mhvXdrZT4jP5T8vBxuvm75"), Ok(Target::HashOrVideo { .. })));
    }
}
