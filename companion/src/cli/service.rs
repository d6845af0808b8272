//! The service's commands besides `serve`: the kill switch and `hash-password`.

use super::Ctx;
use crate::error::{Error, Result};
use crate::recon::db as recondb;
use crate::server::{auth, pause};
use serde_json::json;
use std::io::{BufRead, IsTerminal};

/// `pause-push` / `resume-push`: the same switch the dashboard's button sets;
/// it works while a CLI run holds the writer lock.
pub fn set_push_paused(ctx: &Ctx, paused: bool) -> Result<i32> {
    let mut conn = recondb::open(&ctx.env.recon_db)?;
    if !recondb::migration_state(&conn)?.companion_tables {
        let _lock = crate::journal::lock::WriterLock::acquire(&ctx.env.recon_db, "recon-companion pause-push (migration)")?;
        recondb::ensure_migrated(&mut conn)?;
    }
    pause::set(&conn, paused)?;
    let at = pause::changed_at(&conn)?.unwrap_or_default();
    if ctx.json {
        crate::output::print_json(&json!({ "push_paused": paused, "changed_at": at }))?;
    } else if paused {
        println!("pushes PAUSED ({at}): the service assigns but sends nothing to PeerTube until `recon-companion resume-push`");
    } else {
        println!("pushes resumed ({at})");
    }
    Ok(0)
}

/// `hash-password`: reads the password (prompt without echo on a terminal,
/// else the first line of stdin) and prints its argon2id PHC string.
pub fn hash_password() -> Result<i32> {
    let password = if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("Password: ").map_err(|e| Error::io("<tty>", e))?;
        let b = rpassword::prompt_password("Again: ").map_err(|e| Error::io("<tty>", e))?;
        if a != b {
            return Err(Error::Refused("the two passwords differ".into()));
        }
        a
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| Error::io("<stdin>", e))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        return Err(Error::Refused("empty password".into()));
    }
    println!("{}", auth::hash_password(&password)?);
    Ok(0)
}
