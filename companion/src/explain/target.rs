//! What the operator asked about: a document hash, a PeerTube video uuid (long or
//! short) or a `/w/` URL, and the document hash it names in recon.db.

use crate::error::{Error, Result};
use crate::peertube::video_id::{self, VideoUuid};
use crate::recon::db as recondb;
use rusqlite::Connection;
use std::collections::BTreeSet;

/// What the operator asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A document hash (lowercased).
    Hash(String),
    /// A PeerTube video, in both the forms its catalogue path may hold.
    Video { given: String, long: Option<String>, short: Option<String> },
}

/// Parses what the operator typed. Nothing here becomes a path: only a valid
/// hash ever does, later, through `concepts::concept_dir`.
pub fn parse_target(raw: &str) -> Result<Target> {
    let t = raw.trim();
    if t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Target::Hash(t.to_ascii_lowercase()));
    }
    let id = match t.rsplit_once("/w/") {
        Some((_, rest)) => rest.split(['?', '#', '/']).next().unwrap_or(""),
        None => t,
    };
    if id.len() == 36 {
        if let Some(v) = VideoUuid::parse(id) {
            return Ok(Target::Video { given: id.to_string(), long: Some(v.as_str().to_string()), short: Some(v.short()) });
        }
    }
    // A short form above 128 bits has no long form, but a catalogue path may
    // still hold it verbatim: it is looked up as written.
    if video_id::is_short_form(id) {
        return Ok(Target::Video { given: id.to_string(), long: video_id::short_to_uuid(id), short: Some(id.to_string()) });
    }
    Err(Error::BadTarget(format!(
        "{raw:?} is not a document hash (32 hex characters), a PeerTube video uuid (36 characters, or the 22-character short form) \
         or a URL containing /w/{{uuid}}"
    )))
}

/// The document hash a target names. A video is matched on what follows the
/// last `/w/` of `catalogue.path`, in either uuid form.
pub fn resolve(conn: &Connection, target: &Target) -> Result<String> {
    let (given, long, short) = match target {
        Target::Hash(h) => return Ok(h.clone()),
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
        let h = "0123456789ABCDEF0123456789abcdef";
        assert_eq!(parse_target(h).ok(), Some(Target::Hash(h.to_ascii_lowercase())));
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
        // 22 base58 digits can exceed 128 bits: looked up as written, no long form.
        match parse_target("ZZZZZZZZZZZZZZZZZZZZZZ") {
            Ok(Target::Video { long, short, .. }) => assert_eq!((long, short.as_deref()), (None, Some("ZZZZZZZZZZZZZZZZZZZZZZ"))),
            other => panic!("{other:?}"),
        }
        for bad in [
            "",
            "../../etc/passwd",
            "hello",
            "https://x/w/",
            "https://x/v/mhvXdrZT4jP5T8vBxuvm75",
            "0123456789abcdef0123456789abcdeg",
            "0OIl000000000000000000",
        ] {
            assert!(matches!(parse_target(bad), Err(Error::BadTarget(_))), "{bad:?}");
        }
    }
}
