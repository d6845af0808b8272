//! `taxonomy`: the 18 categories, as the plugin registers them.

use crate::error::Result;
use crate::output;
use serde_json::json;

pub fn taxonomy(as_json: bool) -> Result<i32> {
    let version = format!("{}+taxonomy.{}", env!("CARGO_PKG_VERSION"), shared_constants::TAXONOMY_VERSION);
    if as_json {
        output::print_json(&json!({
            "version": version,
            "fingerprint": shared_constants::fingerprint(),
            "categories": shared_constants::DOMAINS,
        }))?;
    } else {
        println!(
            "{}",
            output::table(&["id", "label", "slug"], shared_constants::all().map(|d| vec![d.id.to_string(), d.label.to_string(), d.slug.to_string()]))
        );
        println!("version {version}  fingerprint {}", shared_constants::fingerprint());
    }
    Ok(0)
}
