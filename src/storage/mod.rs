//! SQLite storage: the only module that holds SQL.
//!
//! Reads use connections from an r2d2 pool, on blocking threads (async
//! callers go through `tokio::task::spawn_blocking`). Every write in the
//! process goes through one connection, taken in turns under a mutex:
//! SQLite's busy handler polls with sleeps of up to 100 ms, which would
//! leave the lock idle between writers of one process, and one connection
//! keeps its page cache warm. The phone line's steps reach it through
//! [`Db::submit`], which runs many in one transaction on a dedicated
//! thread (`writer`); everything else through [`Db::write`], one
//! transaction each. Writes open with `BEGIN IMMEDIATE`, so a writer in
//! another process queues on the busy timeout instead of failing at once
//! when its read lock cannot be upgraded, and commits are made durable in
//! groups (`durability`).

pub mod accounts;
pub mod agents;
pub mod audit;
pub mod calls;
pub mod cases;
pub mod durability;
pub mod meta;
pub mod pins;
pub mod queue;
mod schema;
pub mod server_lock;
pub mod web;
mod writer;

pub use writer::{Durability, Pending};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, TransactionBehavior};

/// How long a write waits for another writer (in this process or
/// another) before giving up. Short, because a caller on the phone is
/// waiting: past it the webhook answers with an apology and an agent.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(1500);

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
    /// Another write held the database past the busy timeout.
    #[error("the database stayed busy past {BUSY_TIMEOUT:?}")]
    Busy,
    /// A commit could not be made durable.
    #[error("cannot flush the database log to disk: {0}")]
    Sync(std::io::Error),
    /// The transaction a step was batched into failed.
    #[error(transparent)]
    Batch(Arc<StorageError>),
    /// A step panicked; its savepoint was rolled back.
    #[error("a database step panicked")]
    Panicked,
    /// The writer thread has stopped.
    #[error("the database writer has stopped")]
    WriterGone,
    /// The writer thread could not be started.
    #[error("cannot start the database writer: {0}")]
    Thread(std::io::Error),
}

/// A handle on one SQLite database file; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
    /// The write connection, held by whoever has an open write
    /// transaction in this process.
    turn: writer::Turn,
    sync: Arc<durability::GroupSync>,
    batches: Arc<writer::Writer>,
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
        drop(conn);
        let turn = Arc::new(parking_lot::Mutex::new(writer::open_write_connection(
            path, configure,
        )?));
        let sync = Arc::new(durability::GroupSync::new(path));
        let mut checkpointing = Connection::open(path)?;
        configure(&mut checkpointing)?;
        let batches = writer::Writer::start(turn.clone(), sync.clone(), checkpointing)?;
        Ok(Self {
            pool,
            path: path.to_owned(),
            turn,
            sync,
            batches: Arc::new(batches),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection for reads; writes go through [`Db::write`] or
    /// [`Db::submit`].
    pub fn conn(&self) -> Result<Conn, StorageError> {
        Ok(self.pool.get()?)
    }

    /// Runs `work` in a `BEGIN IMMEDIATE` transaction, committing when it
    /// returns `Ok` and rolling back otherwise. Returns only once the
    /// commit is on disk.
    pub fn write<T, E>(&self, work: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StorageError>,
    {
        let value = {
            let mut conn = self
                .turn
                .try_lock_for(BUSY_TIMEOUT)
                .ok_or(StorageError::Busy)?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(StorageError::from)?;
            let value = work(&tx)?;
            tx.commit().map_err(StorageError::from)?;
            value
        };
        self.sync.after_commit().map_err(StorageError::Sync)?;
        Ok(value)
    }

    /// Queues `work` for the batching writer, which runs it in its own
    /// savepoint inside a transaction shared with whatever else was
    /// submitted meanwhile. The answer resolves once the commit is on
    /// disk; if the caller stops waiting first, `work` does not run.
    pub fn submit<T, E, F>(&self, work: F) -> Pending<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        self.batches.submit(Durability::OnDisk, work)
    }

    /// [`Db::submit`], answered as `durability` says.
    pub fn submit_with<T, E, F>(&self, durability: Durability, work: F) -> Pending<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        self.batches.submit(durability, work)
    }

    /// How many batches the batching writer has committed, for tests and
    /// figures.
    pub fn batches_committed(&self) -> u64 {
        self.batches.commits()
    }

    /// How many group fsyncs have run, for tests and figures.
    pub fn flushes(&self) -> u64 {
        self.sync.flushes()
    }
}

/// Settings every connection needs. `synchronous=NORMAL` leaves the
/// log's fsync to [`Db::write`], which shares one among every transaction
/// committed meanwhile: FULL would fsync each commit alone, holding the
/// write lock through it.
fn configure(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_use_wal_and_foreign_keys_and_writes_are_flushed() {
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
        let busy: i64 = conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(busy, BUSY_TIMEOUT.as_millis() as i64);
        assert_eq!(mode, "wal");
        assert_eq!(sync, 1, "1 is NORMAL: the fsync is the group's");
        assert_eq!(fk, 1);
        drop(conn);
        let before = db.flushes();
        db.write(|tx| {
            tx.execute("INSERT INTO meta VALUES ('k', 'v')", [])
                .map_err(StorageError::from)
        })
        .unwrap();
        assert_eq!(
            db.flushes(),
            before + 1,
            "a lone write is flushed before it returns"
        );
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
