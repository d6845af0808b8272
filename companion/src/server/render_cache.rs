//! Rendered review pages and API pages per snapshot generation and query: under
//! load every request for the same page reuses one rendering; a new snapshot
//! empties the cache. Per-session parts (the CSRF token) are a placeholder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Stands for the session's CSRF token in cached HTML (hex tokens never contain it).
pub const CSRF_PLACEHOLDER: &str = "@@CSRF@@";
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
        assert_eq!(calls, 3 + 1);
    }
}
