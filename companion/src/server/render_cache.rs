//! Rendered review pages and API pages per snapshot generation and query: under
//! load every request for the same page reuses one rendering; a new snapshot
//! empties the cache. Per-session parts (the CSRF token) are a placeholder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Stands for the session's CSRF token in cached HTML (hex tokens never contain it).
pub const CSRF_PLACEHOLDER: &str = "@@CSRF@@";
/// Stands for the worker's state line, which changes every tick.
pub const WORKER_PLACEHOLDER: &str = "@@WORKER@@";

/// Fills the placeholders of a cached rendering in one pass. Values are
/// inserted as they are: the caller escapes them (CSRF tokens are hex).
pub fn fill(cached: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(cached.len() + 256);
    let mut rest = cached;
    while let Some(at) = rest.find("@@") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        match values.iter().find(|(k, _)| tail.starts_with(k)) {
            Some((k, v)) => {
                out.push_str(v);
                rest = &tail[k.len()..];
            }
            None => {
                out.push_str("@@");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out
}
/// Distinct queries kept per generation: enough for every filter a reviewer uses.
const MAX_ENTRIES: usize = 256;

#[derive(Default)]
pub struct RenderCache {
    inner: Mutex<(u64, HashMap<String, Arc<String>>)>,
}

impl RenderCache {
    /// The cached value for (`generation`, `key`), else `make()`'s, cached.
    pub fn get_or_insert<E>(&self, generation: u64, key: &str, make: impl FnOnce() -> Result<String, E>) -> Result<Arc<String>, E> {
        {
            let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if g.0 == generation {
                if let Some(v) = g.1.get(key) {
                    return Ok(v.clone());
                }
            }
        }
        let v = Arc::new(make()?);
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.0 != generation {
            // Only ever move forward: a late render of an old generation is not kept.
            if generation < g.0 {
                return Ok(v);
            }
            g.0 = generation;
            g.1.clear();
        }
        if g.1.len() >= MAX_ENTRIES {
            g.1.clear();
        }
        g.1.insert(key.to_string(), v.clone());
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_every_placeholder_and_keeps_other_at_signs() {
        let t = "a@@CSRF@@b@@WORKER@@c@@CSRF@@ x@@y @@";
        assert_eq!(fill(t, &[(CSRF_PLACEHOLDER, "tok"), (WORKER_PLACEHOLDER, "ok")]), "atokbokctok x@@y @@");
        assert_eq!(fill("plain", &[(CSRF_PLACEHOLDER, "t")]), "plain");
    }

    #[test]
    fn reuses_within_a_generation_and_drops_on_a_new_one() {
        let c = RenderCache::default();
        let mut calls = 0;
        let mut make = |s: &str| {
            calls += 1;
            Ok::<_, ()>(s.to_string())
        };
        assert_eq!(*c.get_or_insert(1, "a", || make("one")).unwrap(), "one");
        assert_eq!(*c.get_or_insert(1, "a", || make("two")).unwrap(), "one");
        assert_eq!(*c.get_or_insert(2, "a", || make("three")).unwrap(), "three");
        assert_eq!(*c.get_or_insert(1, "a", || make("old")).unwrap(), "old", "an old generation renders but is not cached");
        assert_eq!(*c.get_or_insert(2, "a", || make("four")).unwrap(), "three");
        assert_eq!(calls, 3, "one, three and old were rendered");
    }
}
