//! Who may have a database to themselves: a running server, or a command
//! that a running server would not survive.
//!
//! A server loads the Support PIN key once, at start. Re-encrypting every
//! PIN under a new key beside it would leave it unable to open any of them,
//! so every PIN check would fail until a restart; and two servers on one
//! database would have two writers contending for SQLite's single write
//! lock. Both take the same advisory lock on a file beside the database,
//! which the kernel releases when the process ends, however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Held for as long as it lives.
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
}

impl ServerLock {
    /// The lock file for the database at `db`.
    pub fn path(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".serve.lock");
        PathBuf::from(name)
    }

    /// Takes the lock for the database at `db`, or `None` if another
    /// process holds it.
    pub fn try_acquire(db: &Path) -> std::io::Result<Option<Self>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(Self::path(db))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ServerLock;

    #[test]
    fn one_holder_at_a_time_and_free_again_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        let held = ServerLock::try_acquire(&db).unwrap();
        assert!(held.is_some());
        assert!(ServerLock::try_acquire(&db).unwrap().is_none());
        let other = dir.path().join("q.db");
        assert!(
            ServerLock::try_acquire(&other).unwrap().is_some(),
            "another database is another lock"
        );
        drop(held);
        assert!(ServerLock::try_acquire(&db).unwrap().is_some());
    }
}
