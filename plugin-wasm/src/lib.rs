//! WebAssembly face of `shared-constants` for the PeerTube plugin: a pure Rust
//! layer (testable natively) plus thin wasm-bindgen exports over it.

use serde::Serialize;
use wasm_bindgen::prelude::*;

/// One category as the plugin hands it to PeerTube: only what `addConstant` needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Category {
    pub id: u16,
    pub label: &'static str,
}

/// The 18 categories in id order.
pub fn category_list() -> Vec<Category> {
    shared_constants::all().map(|d| Category { id: d.id, label: d.label }).collect()
}

/// The id of an exact label.
pub fn id_of_label(label: &str) -> Option<u16> {
    shared_constants::by_label(label).map(|d| d.id)
}

/// The label of an id given as a JS number; fractions, NaN and out-of-range
/// values find nothing rather than being truncated onto a real id.
pub fn label_of_number(id: f64) -> Option<&'static str> {
    if !(id.is_finite() && id.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(&id)) {
        return None;
    }
    shared_constants::by_id(id as u16).map(|d| d.label)
}

/// This crate's version and the taxonomy version, e.g. `0.1.0+taxonomy.1`.
pub fn version_string() -> String {
    format!("{}+taxonomy.{}", env!("CARGO_PKG_VERSION"), shared_constants::TAXONOMY_VERSION)
}

/// `[{id, label}, …]` in id order.
#[wasm_bindgen]
pub fn categories() -> Result<JsValue, JsError> {
    serde_wasm_bindgen::to_value(&category_list()).map_err(|e| JsError::new(&e.to_string()))
}

/// The id of an exact label, or `undefined`.
#[wasm_bindgen(js_name = categoryId)]
pub fn category_id(label: &str) -> Option<u16> {
    id_of_label(label)
}

/// The label of an id, or `undefined`.
#[wasm_bindgen]
pub fn label(id: f64) -> Option<String> {
    label_of_number(id).map(str::to_owned)
}

/// Fingerprint of the table compiled into this module (see `shared_constants::fingerprint`).
#[wasm_bindgen]
pub fn fingerprint() -> String {
    shared_constants::fingerprint()
}

/// Crate version plus taxonomy version.
#[wasm_bindgen]
pub fn version() -> String {
    version_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_matches_shared_table() {
        let list = category_list();
        assert_eq!(list.len(), shared_constants::COUNT);
        for (c, d) in list.iter().zip(shared_constants::DOMAINS.iter()) {
            assert_eq!((c.id, c.label), (d.id, d.label));
        }
        assert_eq!(list[0], Category { id: 100, label: "Agriculture & Livestock" });
        assert_eq!(list[17].id, 117);
    }

    #[test]
    fn label_lookup_rejects_non_ids() {
        assert_eq!(label_of_number(106.0), Some("Medical"));
        assert_eq!(label_of_number(106.5), None);
        assert_eq!(label_of_number(f64::NAN), None);
        assert_eq!(label_of_number(-1.0), None);
        assert_eq!(label_of_number(65_642.0), None);
        assert_eq!(label_of_number(99.0), None);
        assert_eq!(label_of_number(118.0), None);
    }

    #[test]
    fn id_lookup_is_exact() {
        assert_eq!(id_of_label("Water Systems"), Some(116));
        assert_eq!(id_of_label("water systems"), None);
        assert_eq!(id_of_label(""), None);
    }

    #[test]
    fn version_names_both_versions() {
        let v = version_string();
        assert!(v.starts_with(env!("CARGO_PKG_VERSION")), "{v}");
        assert!(v.ends_with(&format!("+taxonomy.{}", shared_constants::TAXONOMY_VERSION)), "{v}");
    }

    #[test]
    fn exported_fingerprint_is_the_shared_one() {
        assert_eq!(fingerprint(), shared_constants::fingerprint());
    }
}
