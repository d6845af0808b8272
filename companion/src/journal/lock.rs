//! The single-writer lock: one state-changing run at a time per recon.db.
//!
//! An OS file lock (flock) beside the database: the kernel drops it when the
//! holder dies, even by kill -9, so a crash never leaves a stale lock behind.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Held for the life of a run; released on drop (or by the kernel on death).
#[derive(Debug)]
pub struct WriterLock {
    file: File,
    path: PathBuf,
}

/// The lock file for a given recon.db.
pub fn lock_path(recon_db: &Path) -> PathBuf {
    let mut name = recon_db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".companion.lock");
    recon_db.with_file_name(name)
}

impl WriterLock {
    /// Takes the lock or fails at once naming the holder (run id, pid, command, since).
    pub fn acquire(recon_db: &Path, holder: &str) -> Result<WriterLock> {
        let path = lock_path(recon_db);
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut who = String::new();
                let _ = file.read_to_string(&mut who);
                let who = who.trim();
                return Err(Error::Locked(if who.is_empty() { format!("lock file {}", path.display()) } else { who.to_string() }));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        let info = format!("{holder} (pid {}, since {})", std::process::id(), chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC"));
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| Error::io(&path, e))?;
        file.write_all(info.as_bytes()).map_err(|e| Error::io(&path, e))?;
        file.flush().map_err(|e| Error::io(&path, e))?;
        Ok(WriterLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Leave the file (deleting it would race a waiting process); just empty it.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_first_holders_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("recon.db");
        let first = WriterLock::acquire(&db, "run A backfill").expect("first lock");
        let err = WriterLock::acquire(&db, "run B").expect_err("second lock must fail");
        assert!(err.to_string().contains("run A backfill"), "{err}");
        drop(first);
        WriterLock::acquire(&db, "run B").expect("free again after drop");
    }
}
