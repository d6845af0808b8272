//! The status view: what the runbook's "check overall status" shows.

use crate::assign::Status;
use crate::context::Env;
use crate::error::Result;
use crate::recon::db as recondb;
use serde::Serialize;
use shared_constants::DOMAINS;
use std::collections::BTreeMap;

/// Status view: what the runbook's "check overall status" shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusView {
    pub migrated: bool,
    pub complete_stream_documents: u64,
    pub unassigned: u64,
    pub unpushed: u64,
    pub pushed: u64,
    pub by_status: BTreeMap<String, u64>,
    pub by_domain: Vec<(String, u64)>,
    pub categorized: u64,
}

pub fn status(env: &Env) -> Result<StatusView> {
    let conn = recondb::open_readonly(&env.recon_db)?;
    let migrated = recondb::feature_columns_present(&conn)?;
    let mut v = StatusView { migrated, ..Default::default() };
    v.complete_stream_documents = recondb::count_complete_stream(&conn, &env.source)?;
    if !migrated {
        v.unassigned = v.complete_stream_documents;
        return Ok(v);
    }
    v.unassigned = recondb::count_unassigned_stream(&conn, &env.source)?;
    v.unpushed = recondb::count_unpushed_stream(&conn, &env.source)?;
    v.pushed = recondb::count_pushed(&conn)?;
    for (s, n) in recondb::counts_by_status(&conn)? {
        if Status::parse(&s).is_some_and(Status::is_categorized) {
            v.categorized += n;
        }
        v.by_status.insert(s, n);
    }
    v.by_domain = recondb::counts_by_domain(&conn)?;
    // Show every domain, zeros included, so a missing one is visible.
    for d in DOMAINS.iter() {
        if !v.by_domain.iter().any(|(l, _)| l == d.label) {
            v.by_domain.push((d.label.to_string(), 0));
        }
    }
    Ok(v)
}
