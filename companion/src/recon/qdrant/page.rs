//! Scroll pages as Qdrant writes them, parsed without a `Value` tree: only the
//! `doc_hash` and `domain` payloads a count needs, and the counting of one point.

use super::*;
use serde::Deserialize;
use std::hash::BuildHasher;

/// A scroll answer, parsed without building a `Value` tree: only what the
/// counts need is kept (`status`, `time`, ids and vectors are skipped).
#[derive(Deserialize)]
pub(super) struct ScrollEnvelope<'a> {
    #[serde(borrow)]
    pub(super) result: Option<ScrollPage<'a>>,
}

#[derive(Deserialize)]
pub(super) struct ScrollPage<'a> {
    #[serde(borrow)]
    pub(super) points: Option<Vec<Point<'a>>>,
    /// A point id (integer or UUID string), or null on the last page.
    pub(super) next_page_offset: Option<Value>,
}

/// One scrolled point: its id and its `doc_hash` and `domain` payload fields.
#[derive(Deserialize, Default)]
pub(super) struct Point<'a> {
    #[serde(default)]
    pub(super) id: PointId,
    #[serde(borrow, default)]
    pub(super) payload: Option<PointPayload<'a>>,
}

/// A point id: `Some` for an integer, `None` for a UUID (Qdrant orders
/// UUIDs after every integer id).
#[derive(Default, Debug, PartialEq, Eq)]
pub(super) struct PointId(pub(super) Option<u64>);

impl<'de> Deserialize<'de> for PointId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PointId;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a point id")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(PointId(Some(n)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Ok(PointId(u64::try_from(n).ok()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(PointId(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
pub(super) struct PointPayload<'a> {
    #[serde(borrow, default)]
    pub(super) doc_hash: Option<DocHashes<'a>>,
    #[serde(default)]
    pub(super) domain: DomainLabels,
}

/// The hashes a `doc_hash` payload matches under Qdrant's `match`: a string,
/// or each string element of a list (other values match nothing).
#[derive(Default)]
pub(super) struct DocHashes<'a>(pub(super) Few<Cow<'a, str>>);

/// None, one or many values, one of them without a heap allocation: nearly
/// every point has one `doc_hash` and one `domain`, and a scroll of the whole
/// collection parses millions of points.
#[derive(Debug, PartialEq, Eq, Default)]
pub(super) enum Few<T> {
    #[default]
    Zero,
    One(T),
    Many(Vec<T>),
}

impl<T> Few<T> {
    pub(super) fn as_slice(&self) -> &[T] {
        match self {
            Few::Zero => &[],
            Few::One(v) => std::slice::from_ref(v),
            Few::Many(v) => v,
        }
    }

    fn push(&mut self, v: T) {
        *self = match std::mem::take(self) {
            Few::Zero => Few::One(v),
            Few::One(a) => Few::Many(vec![a, v]),
            Few::Many(mut m) => {
                m.push(v);
                Few::Many(m)
            }
        };
    }
}

impl<T> Extend<T> for Few<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for v in iter {
            self.push(v);
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for DocHashes<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DocHashes<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a doc_hash payload")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(DocHashes(Few::One(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(DocHashes(Few::One(Cow::Owned(s.to_string()))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = Few::Zero;
                while let Some(e) = seq.next_element::<StrElem<'de>>()? {
                    v.extend(e.0);
                }
                Ok(DocHashes(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(DocHashes::default())
            }
            scalars_match_nothing!(DocHashes::default());
        }
        d.deserialize_any(V)
    }
}

/// A list element: `Some` when it is a string; lists, objects and scalars are skipped.
pub(super) struct StrElem<'a>(pub(super) Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for StrElem<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrElem<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(StrElem(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(StrElem(Some(Cow::Owned(s.to_string()))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StrElem(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StrElem(None))
            }
            scalars_match_nothing!(StrElem(None));
        }
        d.deserialize_any(V)
    }
}

/// The label indices a `domain` payload counts, by [`count_domain`]'s rule,
/// read while parsing (no string is kept).
#[derive(Default, Debug, PartialEq, Eq)]
pub(super) struct DomainLabels(pub(super) Few<u8>);

impl<'de> Deserialize<'de> for DomainLabels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DomainLabels;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a domain payload")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(DomainLabels(label_index(s).map_or(Few::Zero, Few::One)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = Few::Zero;
                while let Some(e) = seq.next_element::<StrElem<'de>>()? {
                    v.extend(e.0.as_deref().and_then(label_index));
                }
                Ok(DomainLabels(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(DomainLabels::default())
            }
            scalars_match_nothing!(DomainLabels::default());
        }
        d.deserialize_any(V)
    }
}

/// A label's index as a byte (18 labels).
pub(super) fn label_index(s: &str) -> Option<u8> {
    index_of_label(s).and_then(|i| u8::try_from(i).ok())
}

/// Credits one point to each distinct wanted hash its `doc_hash` matches, the
/// way Qdrant's `match` does (string, or list element). Generic over the
/// hasher: the scrolls count into [`FastMap`]s.
pub(super) fn add_point<S: BuildHasher, W: BuildHasher>(map: &mut HashMap<String, DocCounts, S>, point: &Point<'_>, wanted: Option<&HashSet<&str, W>>) {
    let Some(payload) = &point.payload else {
        return;
    };
    let Some(DocHashes(hashes)) = &payload.doc_hash else {
        return;
    };
    let hashes = hashes.as_slice();
    for (i, h) in hashes.iter().enumerate() {
        let h: &str = h;
        // A list may repeat a hash: the point still counts once for it.
        if hashes[..i].iter().any(|e| e.as_ref() == h) {
            continue;
        }
        let e = match map.get_mut(h) {
            Some(e) => e,
            None if wanted.is_some_and(|w| !w.contains(h)) => continue,
            None => map.entry(h.to_string()).or_default(),
        };
        e.points = e.points.saturating_add(1);
        for &k in payload.domain.0.as_slice() {
            let k = usize::from(k);
            e.counts[k] = e.counts[k].saturating_add(1);
        }
    }
}

/// The maps and sets of the hot counting loop: a fast hasher for the 64-hex
/// keys looked up once or twice per point (SipHash was a tenth of a full
/// scroll's client time).
pub(super) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
pub(super) type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;
