//! The 18 RECON knowledge domains as PeerTube categories: the single table both
//! the WebAssembly plugin and the native companion are built from.
//!
//! Everything else (slugs, lookups, the fingerprint) is derived from [`DOMAINS`],
//! so changing a label here changes it everywhere at once, and a build that
//! disagrees with another shows a different [`fingerprint`].
#![no_std]

extern crate alloc;

use alloc::string::String;

/// One knowledge domain: its PeerTube category id, exact label and URL-safe slug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Domain {
    pub id: u16,
    pub label: &'static str,
    pub slug: &'static str,
}

/// Number of domains in the taxonomy.
pub const COUNT: usize = 18;

/// First and last category id (PeerTube's built-in categories 1–18 stay untouched).
pub const FIRST_ID: u16 = 100;
pub const LAST_ID: u16 = FIRST_ID + COUNT as u16 - 1;

/// Version of this taxonomy table; bump when a label changes.
pub const TAXONOMY_VERSION: &str = "1";

/// The canonical table, in id order. Index `i` holds id `100 + i`.
pub const DOMAINS: [Domain; COUNT] = [
    d(100, "Agriculture & Livestock", "agriculture-livestock"),
    d(101, "Civil Organization", "civil-organization"),
    d(102, "Communications", "communications"),
    d(103, "Food Systems", "food-systems"),
    d(104, "Foundational Skills", "foundational-skills"),
    d(105, "Logistics", "logistics"),
    d(106, "Medical", "medical"),
    d(107, "Navigation", "navigation"),
    d(108, "Operations", "operations"),
    d(109, "Power Systems", "power-systems"),
    d(110, "Preservation & Storage", "preservation-storage"),
    d(111, "Security", "security"),
    d(112, "Shelter & Construction", "shelter-construction"),
    d(113, "Technology", "technology"),
    d(114, "Tools & Equipment", "tools-equipment"),
    d(115, "Vehicles", "vehicles"),
    d(116, "Water Systems", "water-systems"),
    d(117, "Wilderness Skills", "wilderness-skills"),
];

const fn d(id: u16, label: &'static str, slug: &'static str) -> Domain {
    Domain { id, label, slug }
}

/// All domains in id order.
pub fn all() -> impl ExactSizeIterator<Item = &'static Domain> + Clone {
    DOMAINS.iter()
}

/// The domain with this PeerTube category id.
pub fn by_id(id: u16) -> Option<&'static Domain> {
    index_of_id(id).map(|i| &DOMAINS[i])
}

/// Position (0..18) of a category id in [`DOMAINS`].
pub fn index_of_id(id: u16) -> Option<usize> {
    (FIRST_ID..=LAST_ID).contains(&id).then(|| usize::from(id - FIRST_ID))
}

/// The domain whose label is exactly `label` (case, ampersands and spaces matter).
pub fn by_label(label: &str) -> Option<&'static Domain> {
    index_of_label(label).map(|i| &DOMAINS[i])
}

/// Position (0..18) of an exact label in [`DOMAINS`].
pub fn index_of_label(label: &str) -> Option<usize> {
    // 18 entries: a linear scan with a cheap length check beats hashing.
    DOMAINS.iter().position(|d| d.label.len() == label.len() && d.label == label)
}

/// The domain with this slug.
pub fn by_slug(slug: &str) -> Option<&'static Domain> {
    DOMAINS.iter().find(|d| d.slug == slug)
}

/// True when `label` is one of the 18 current labels; anything else is legacy.
pub fn is_valid_domain(label: &str) -> bool {
    index_of_label(label).is_some()
}

/// True when `id` is one of our category ids (100–117).
pub fn is_our_category(id: i64) -> bool {
    (i64::from(FIRST_ID)..=i64::from(LAST_ID)).contains(&id)
}

/// The canonical text the fingerprint hashes: one `id<TAB>label<TAB>slug` line per domain.
pub fn canonical_text() -> String {
    canonical_text_of(DOMAINS.iter().map(|d| (d.id, d.label, d.slug)))
}

/// Canonical text of any table, so a copy (e.g. what PeerTube reports) can be
/// fingerprinted the same way.
pub fn canonical_text_of<'a>(rows: impl IntoIterator<Item = (u16, &'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (id, label, slug) in rows {
        push_u16(&mut out, id);
        out.push('\t');
        out.push_str(label);
        out.push('\t');
        out.push_str(slug);
        out.push('\n');
    }
    out
}

fn push_u16(out: &mut String, mut n: u16) {
    let mut buf = [0u8; 5];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
    }
}

/// FNV-1a, 64 bit: tiny, dependency-free and stable across platforms and
/// compilers, which is all a table fingerprint needs (it is not a security hash).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Fingerprint of a canonical text, as 16 lowercase hex digits.
pub fn fingerprint_of(canonical: &str) -> String {
    let h = fnv1a64(canonical.as_bytes());
    let mut s = String::with_capacity(16);
    for shift in (0..16).rev() {
        let nibble = ((h >> (shift * 4)) & 0xf) as u8;
        s.push(char::from(if nibble < 10 { b'0' + nibble } else { b'a' + nibble - 10 }));
    }
    s
}

/// Fingerprint of this build's table; two builds agree on the taxonomy exactly
/// when their fingerprints are equal.
pub fn fingerprint() -> String {
    fingerprint_of(&canonical_text())
}

/// Slug of a label: lowercase ASCII words joined by `-` (what [`DOMAINS`] stores).
pub fn slugify(label: &str) -> String {
    let mut out = String::new();
    let mut pending_dash = false;
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_contiguous_from_100() {
        for (i, d) in DOMAINS.iter().enumerate() {
            assert_eq!(usize::from(d.id), 100 + i);
        }
        assert_eq!(LAST_ID, 117);
    }

    #[test]
    fn slugs_are_derived_from_labels_and_unique() {
        for d in &DOMAINS {
            assert_eq!(slugify(d.label), d.slug, "slug of {}", d.label);
        }
        for (i, a) in DOMAINS.iter().enumerate() {
            for b in &DOMAINS[i + 1..] {
                assert_ne!(a.slug, b.slug);
                assert_ne!(a.label, b.label);
            }
        }
    }

    #[test]
    fn lookups_round_trip() {
        for d in all() {
            assert_eq!(by_id(d.id), Some(d));
            assert_eq!(by_label(d.label), Some(d));
            assert_eq!(by_slug(d.slug), Some(d));
            assert!(is_valid_domain(d.label));
            assert!(is_our_category(i64::from(d.id)));
        }
        assert_eq!(by_id(99), None);
        assert_eq!(by_id(118), None);
        assert!(!is_our_category(18));
    }

    #[test]
    fn labels_are_exact() {
        assert!(is_valid_domain("Agriculture & Livestock"));
        assert!(!is_valid_domain("agriculture & livestock"));
        assert!(!is_valid_domain("Agriculture and Livestock"));
        assert!(!is_valid_domain("Agriculture &  Livestock"));
        assert!(!is_valid_domain(" Medical"));
        assert!(!is_valid_domain(""));
    }

    #[test]
    fn fingerprint_changes_with_any_label() {
        let base = fingerprint();
        assert_eq!(base.len(), 16);
        let altered = canonical_text().replacen("Medical", "Medicals", 1);
        assert_ne!(fingerprint_of(&altered), base);
        assert_eq!(fingerprint_of(&canonical_text()), base);
    }

    #[test]
    fn fnv_known_vector() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }
}
