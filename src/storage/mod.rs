//! SQLite storage: the only module that holds SQL.
//!
//! Connections come from an r2d2 pool, and every statement runs on a
//! blocking thread (callers in async code go through
//! `tokio::task::spawn_blocking`). Writes that read before they write open
//! with `BEGIN IMMEDIATE`, so two writers queue on the busy timeout instead
//! of one failing at once when its read lock cannot be upgraded.

pub mod accounts;
pub mod agents;
pub mod audit;
pub mod calls;
pub mod cases;
pub mod meta;
pub mod pins;
pub mod queue;
mod schema;
pub mod web;

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, TransactionBehavior};

/// How long a statement waits for another writer before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A storage fault: the database could not be reached or answered wrongly.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite refused or failed a statement.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No connection could be had from the pool.
    #[error("database pool error: {0}")]
    Pool(#[from] r2d2::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
}

/// A handle on one SQLite database file; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
}

/// A pooled connection.
pub type Conn = r2d2::PooledConnection<SqliteConnectionManager>;

impl Db {
    /// Opens (creating if needed) the database at `path` and applies any
    /// pending migrations.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let manager = SqliteConnectionManager::file(path).with_init(configure);
        let pool = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .connection_timeout(BUSY_TIMEOUT)
            .build(manager)?;
        let mut conn = pool.get()?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            pool,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection for reads and single-statement writes.
    pub fn conn(&self) -> Result<Conn, StorageError> {
        Ok(self.pool.get()?)
    }

    /// Runs `work` in a `BEGIN IMMEDIATE` transaction, committing when it
    /// returns `Ok` and rolling back otherwise.
    pub fn write<T, E>(&self, work: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StorageError>,
    {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StorageError::from)?;
        let value = work(&tx)?;
        tx.commit().map_err(StorageError::from)?;
        Ok(value)
    }

    /// Checks that the database answers, for health probes.
    pub fn ping(&self) -> Result<(), StorageError> {
        self.conn()?.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }
}

/// Settings every connection needs. `synchronous=FULL` because with
/// NORMAL a committed PIN rotation or audit event can roll back on power
/// loss in WAL mode, and an answer must only report what is durable.
fn configure(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_use_wal_full_sync_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let conn = db.conn().unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "2 is FULL");
        assert_eq!(fk, 1);
    }

    #[test]
    fn reopening_applies_no_migration_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Db::open(&path).unwrap());
        let db = Db::open(&path).unwrap();
        let version: i64 = db
            .conn()
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::VERSION);
    }
}
