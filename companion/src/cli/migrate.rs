//! `migrate`: add the feature's columns and index to recon.db, or check them.

use super::Ctx;
use crate::error::Result;
use crate::output;
use crate::recon::db as recondb;
use serde_json::json;

pub fn migrate(ctx: &Ctx, check: bool) -> Result<i32> {
    if check {
        let conn = recondb::open_readonly(&ctx.env.recon_db)?;
        let st = recondb::migration_state(&conn)?;
        if ctx.json {
            output::print_json(&json!({ "ok": st.ok(), "state": st }))?;
        } else {
            let mut rows = Vec::new();
            for c in recondb::FEATURE_COLUMNS {
                let ok = !st.missing_feature_columns.iter().any(|m| m == c);
                rows.push(vec![format!("documents.{c}"), if ok { "ok" } else { "MISSING" }.to_string()]);
            }
            rows.push(vec![recondb::FEATURE_INDEX.to_string(), if st.index_present { "ok" } else { "MISSING" }.into()]);
            rows.push(vec!["companion_* tables".into(), if st.companion_tables { "ok" } else { "MISSING" }.into()]);
            rows.push(vec![
                "RECON's own columns".into(),
                if st.missing_recon_columns.is_empty() { "ok".into() } else { format!("MISSING: {}", st.missing_recon_columns.join(", ")) },
            ]);
            println!("{}", output::table(&["check", "result"], rows));
            println!("{}", if st.ok() { "migration verified" } else { "migration NOT complete" });
        }
        return Ok(if st.ok() { 0 } else { 1 });
    }
    let mut conn = recondb::open(&ctx.env.recon_db)?;
    let _lock = crate::engine::lock::WriterLock::acquire(&ctx.env.recon_db, "recon-companion migrate")?;
    let applied = recondb::migrate(&mut conn)?;
    let st = recondb::migration_state(&conn)?;
    if ctx.json {
        output::print_json(&json!({ "applied": applied, "ok": st.ok() }))?;
    } else if applied.is_empty() {
        println!("already migrated: nothing to do");
    } else {
        println!("applied: {}", applied.join(", "));
    }
    Ok(if st.ok() { 0 } else { 1 })
}
