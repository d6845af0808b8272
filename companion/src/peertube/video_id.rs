//! Video keys: the uuid in a catalogue path (`…/w/{uuid}`), and PeerTube's
//! 22-character short uuid ↔ the 36-character uuid.
//!
//! PeerTube's short uuid is the uuid's 128-bit value written in base 58 with the
//! Flickr alphabet (the npm `short-uuid` default), left-padded with the alphabet's
//! first character to 22 characters: 9c9de5e8-0a1e-484a-b099-e80766180a6d is
//! kkGMgK9ZtnKfYAgnEtQxbv.

use std::fmt;

/// `short-uuid`'s default alphabet (flickrBase58): digits, lowercase, uppercase,
/// without 0, O, I, l.
pub const ALPHABET: &[u8; 58] = b"123456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
pub const SHORT_LEN: usize = 22;

/// A video's canonical key: the lowercase hyphenated uuid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VideoUuid(String);

impl VideoUuid {
    /// Accepts a 36-char uuid (any case) or a 22-char short uuid.
    pub fn parse(s: &str) -> Option<VideoUuid> {
        let s = s.trim();
        if s.len() == 36 {
            return parse_long(s).map(|v| VideoUuid(format_long(v)));
        }
        if s.len() != SHORT_LEN {
            return None;
        }
        short_to_u128(s).map(|v| VideoUuid(format_long(v)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn short(&self) -> String {
        // Constructed only from a valid uuid.
        parse_long(&self.0).map(u128_to_short).unwrap_or_default()
    }
}

impl fmt::Display for VideoUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn parse_long(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

fn format_long(v: u128) -> String {
    let h = format!("{v:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The uuid's value in base 58, padded to 22 characters.
pub fn u128_to_short(mut v: u128) -> String {
    let mut out = [ALPHABET[0]; SHORT_LEN];
    let mut i = SHORT_LEN;
    while v > 0 && i > 0 {
        i -= 1;
        out[i] = ALPHABET[(v % 58) as usize];
        v /= 58;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// A short uuid's value; `None` for a wrong length, a character outside the
/// alphabet, or a value above 128 bits.
pub fn short_to_u128(s: &str) -> Option<u128> {
    if s.is_empty() || s.len() > SHORT_LEN {
        return None;
    }
    let mut v: u128 = 0;
    for c in s.bytes() {
        let d = ALPHABET.iter().position(|&a| a == c)? as u128;
        v = v.checked_mul(58)?.checked_add(d)?;
    }
    Some(v)
}

/// Whether `s` is written like a short uuid: 22 characters of the alphabet. Its
/// value may still exceed 128 bits (then [`short_to_uuid`] gives `None`), but a
/// catalogue path can hold it all the same, so lookups accept it as written.
pub fn is_short_form(s: &str) -> bool {
    s.len() == SHORT_LEN && s.bytes().all(|b| ALPHABET.contains(&b))
}

/// uuid → short uuid (`None` when `uuid` is not a uuid).
pub fn uuid_to_short(uuid: &str) -> Option<String> {
    parse_long(uuid.trim()).map(u128_to_short)
}

/// short uuid → uuid.
pub fn short_to_uuid(short: &str) -> Option<String> {
    if short.len() != SHORT_LEN {
        return None;
    }
    short_to_u128(short).map(format_long)
}

/// Why a catalogue path gives no video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathProblem {
    NoWatchSegment,
    BadUuid(String),
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathProblem::NoWatchSegment => f.write_str("catalogue path has no /w/{uuid}"),
            PathProblem::BadUuid(s) => write!(f, "{s:?} after /w/ is neither a uuid nor a short uuid"),
        }
    }
}

/// The video of a catalogue path: what follows the last `/w/` (a query string,
/// fragment or trailing slash is ignored).
pub fn from_path(path: &str) -> Result<VideoUuid, PathProblem> {
    let Some(pos) = path.rfind("/w/") else { return Err(PathProblem::NoWatchSegment) };
    let rest = &path[pos + 3..];
    let end = rest.find(['?', '#', '/']).unwrap_or(rest.len());
    let id = &rest[..end];
    if id.is_empty() {
        return Err(PathProblem::NoWatchSegment);
    }
    VideoUuid::parse(id).ok_or_else(|| PathProblem::BadUuid(id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "9c9de5e8-0a1e-484a-b099-e80766180a6d";
    const SHORT: &str = "kkGMgK9ZtnKfYAgnEtQxbv";

    #[test]
    fn known_peertube_pair_both_directions() {
        assert_eq!(uuid_to_short(UUID).as_deref(), Some(SHORT));
        assert_eq!(short_to_uuid(SHORT).as_deref(), Some(UUID));
        assert_eq!(uuid_to_short(&UUID.to_uppercase()).as_deref(), Some(SHORT));
    }

    #[test]
    fn extremes_and_padding() {
        assert_eq!(u128_to_short(0), "1".repeat(22));
        assert_eq!(short_to_uuid(&"1".repeat(22)).as_deref(), Some("00000000-0000-0000-0000-000000000000"));
        let max = u128_to_short(u128::MAX);
        assert_eq!(max.len(), 22);
        assert_eq!(short_to_u128(&max), Some(u128::MAX));
        // One more than u128::MAX does not fit.
        assert_eq!(short_to_u128("zzzzzzzzzzzzzzzzzzzzzz"), None);
        assert_eq!(short_to_uuid("kkGMgK9ZtnKfYAgnEtQxb0"), None, "0 is not in the alphabet");
        assert_eq!(short_to_uuid("kkGMgK9ZtnKfYAgnEtQxb"), None, "21 chars");
        assert!(is_short_form("zzzzzzzzzzzzzzzzzzzzzz") && is_short_form(SHORT));
        assert!(!is_short_form("kkGMgK9ZtnKfYAgnEtQxb0") && !is_short_form("kkGMgK9ZtnKfYAgnEtQxb"));
    }

    #[test]
    fn round_trip_many() {
        let mut v: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        for _ in 0..1000 {
            v = v.wrapping_mul(0x2545_F491_4F6C_DD1D_9E37_79B9_7F4A_7C15).wrapping_add(0x1234_5678);
            let long = format_long(v);
            let short = uuid_to_short(&long).unwrap();
            assert_eq!(short.len(), 22);
            assert_eq!(short_to_uuid(&short).unwrap(), long);
            assert_eq!(VideoUuid::parse(&short).unwrap(), VideoUuid::parse(&long).unwrap());
        }
    }

    #[test]
    fn paths() {
        let u = VideoUuid::parse(UUID).unwrap();
        assert_eq!(from_path(&format!("https://stream.echo6.co/w/{UUID}")).unwrap(), u);
        assert_eq!(from_path(&format!("https://stream.echo6.co/w/{SHORT}")).unwrap(), u);
        assert_eq!(from_path(&format!("https://x/w/old/w/{SHORT}?start=1s")).unwrap(), u);
        assert_eq!(from_path(&format!("https://x/w/{}", UUID.to_uppercase())).unwrap(), u);
        assert_eq!(from_path("https://stream.echo6.co/videos/watch/abc"), Err(PathProblem::NoWatchSegment));
        assert_eq!(from_path("https://stream.echo6.co/w/"), Err(PathProblem::NoWatchSegment));
        assert!(matches!(from_path("https://stream.echo6.co/w/not-a-uuid"), Err(PathProblem::BadUuid(_))));
        assert!(matches!(from_path("https://stream.echo6.co/w/abc"), Err(PathProblem::BadUuid(_))), "short strings are not short uuids");
        assert_eq!(u.short(), SHORT);
        assert_eq!(u.as_str(), UUID);
    }
}
