//! Reverting the feature's migration.

use super::{columns, has_index, write_tx, FEATURE_COLUMNS, FEATURE_INDEX};
use crate::error::DbContext;
use crate::error::{Error, Result};
use rusqlite::Connection;

/// What reverting the feature's migration drops (present ones only).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RevertPlan {
    pub columns: Vec<String>,
    pub index: bool,
}

pub fn revert_plan(conn: &Connection) -> Result<RevertPlan> {
    let have = columns(conn, "documents")?;
    if have.is_empty() {
        return Err(Error::NotMigrated("no `documents` table: is this RECON's recon.db?".into()));
    }
    Ok(RevertPlan {
        columns: FEATURE_COLUMNS.iter().filter(|c| have.iter().any(|h| h == *c)).map(|c| c.to_string()).collect(),
        index: has_index(conn, FEATURE_INDEX)?,
    })
}

/// The original runbook's revert in one transaction: drop the index, then the
/// four columns (SQLite >= 3.35). RECON's own columns and the `companion_*`
/// tables are left alone. Returns what it dropped.
pub fn revert_migration(conn: &mut Connection) -> Result<Vec<String>> {
    let tx = write_tx(conn)?;
    let plan = revert_plan(&tx)?;
    let mut dropped = Vec::new();
    if plan.index {
        tx.execute(&format!("DROP INDEX IF EXISTS {FEATURE_INDEX}"), []).ctx("recon::db::revert::revert_migration")?;
        dropped.push(FEATURE_INDEX.to_string());
    }
    for col in &plan.columns {
        // Names come from FEATURE_COLUMNS, never from input.
        tx.execute(&format!("ALTER TABLE documents DROP COLUMN {col}"), []).ctx("recon::db::revert::revert_migration")?;
        dropped.push(format!("documents.{col}"));
    }
    tx.commit().ctx("recon::db::revert::revert_migration")?;
    Ok(dropped)
}
