//! What operators read: aligned tables for humans, JSON for machines.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};
use serde::Serialize;

/// A table with a header row; numeric-looking cells are right-aligned.
pub fn table<S: AsRef<str>>(header: &[&str], rows: impl IntoIterator<Item = Vec<S>>) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(header.iter().map(Cell::new));
    for row in rows {
        t.add_row(row.iter().map(|c| {
            let s = c.as_ref();
            let numeric = !s.is_empty() && s.trim_end_matches('%').replace(['.', ',', '-'], "").chars().all(|ch| ch.is_ascii_digit());
            let cell = Cell::new(s);
            if numeric {
                cell.set_alignment(CellAlignment::Right)
            } else {
                cell
            }
        }));
    }
    t.to_string()
}

/// Two-column key/value table.
pub fn kv<K: AsRef<str>, V: AsRef<str>>(rows: impl IntoIterator<Item = (K, V)>) -> String {
    table(&["", ""], rows.into_iter().map(|(k, v)| vec![k.as_ref().to_string(), v.as_ref().to_string()]))
}

/// Pretty JSON to stdout.
pub fn print_json<T: Serialize>(v: &T) -> crate::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn pct(p: f64) -> String {
    format!("{p:.1}%")
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_align_and_hold_every_cell() {
        let s = super::table(&["domain", "count"], vec![vec!["Medical", "12"], vec!["Logistics", "3"]]);
        assert!(s.contains("Medical") && s.contains("Logistics"));
        let lines: Vec<&str> = s.lines().collect();
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{s}");
    }
}
