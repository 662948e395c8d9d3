//! Group commit: every write commits without its own fsync
//! (`synchronous=NORMAL`), then waits until one fsync of the write-ahead
//! log that started after its commit has finished. One fsync thus covers
//! every transaction committed while the previous one ran, and nothing is
//! reported before it is on disk, which is the guarantee
//! `synchronous=FULL` gives at one fsync per transaction.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

/// Hands out commit tickets and flushes the log for them in groups.
#[derive(Debug)]
pub struct GroupSync {
    db: PathBuf,
    wal: PathBuf,
    state: Mutex<State>,
    flushed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Tickets taken: each is a commit that happened before it was taken.
    committed: u64,
    /// Every ticket up to this one is on disk.
    synced: u64,
    /// Someone is running an fsync now.
    syncing: bool,
    /// The log file whose directory entry is known to be on disk.
    wal_inode: Option<u64>,
    /// fsyncs run, for tests and figures.
    flushes: u64,
}

impl GroupSync {
    /// For the database at `db`, whose log is `db-wal`.
    pub fn new(db: &Path) -> Self {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        Self {
            db: db.to_owned(),
            wal: PathBuf::from(wal),
            state: Mutex::new(State::default()),
            flushed: Condvar::new(),
        }
    }

    /// Returns once everything committed before this call is on disk.
    pub fn after_commit(&self) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.committed += 1;
        let ticket = state.committed;
        loop {
            if state.synced >= ticket {
                return Ok(());
            }
            if state.syncing {
                state = self.flushed.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead a flush covering every ticket taken so far: each of
            // those commits finished before its ticket was taken.
            state.syncing = true;
            let target = state.committed;
            let known_inode = state.wal_inode;
            drop(state);
            let flushed = self.flush(known_inode);
            state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.syncing = false;
            self.flushed.notify_all();
            match flushed {
                Ok(inode) => {
                    state.synced = state.synced.max(target);
                    state.wal_inode = inode.or(state.wal_inode);
                    state.flushes += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Holds every fsync back until the result is dropped.
    #[cfg(test)]
    pub(super) fn stall(&self) -> impl Drop + '_ {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many fsyncs have run.
    pub fn flushes(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).flushes
    }

    /// fsyncs the log, and its directory when the log is a new file (so
    /// that its name survives too). Without a log, everything was
    /// checkpointed into the database file, which SQLite syncs itself when
    /// it checkpoints; syncing it again costs little and covers the rest.
    fn flush(&self, known_inode: Option<u64>) -> std::io::Result<Option<u64>> {
        match File::open(&self.wal) {
            Ok(wal) => {
                wal.sync_data()?;
                let inode = wal.metadata()?.ino();
                if known_inode != Some(inode) {
                    self.sync_directory()?;
                }
                Ok(Some(inode))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                File::open(&self.db)?.sync_data()?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn sync_directory(&self) -> std::io::Result<()> {
        let dir = self
            .db
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn concurrent_commits_share_flushes_and_each_waits_for_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("g.db");
        std::fs::write(&db, b"x").unwrap();
        std::fs::write(dir.path().join("g.db-wal"), b"y").unwrap();
        let sync = Arc::new(GroupSync::new(&db));
        let threads: Vec<_> = (0..32)
            .map(|_| {
                let sync = sync.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        sync.after_commit().unwrap();
                        // Every return is covered by a finished flush.
                        let state = sync.state.lock().unwrap();
                        assert!(state.flushes >= 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let state = sync.state.lock().unwrap();
        assert_eq!(state.committed, 640);
        assert_eq!(state.synced, 640, "every ticket synced");
        assert!(state.flushes <= 640);
    }

    #[test]
    fn a_missing_log_falls_back_to_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("g.db");
        std::fs::write(&db, b"x").unwrap();
        let sync = GroupSync::new(&db);
        sync.after_commit().unwrap();
        assert_eq!(sync.flushes(), 1);
        std::fs::remove_file(&db).unwrap();
        assert!(
            sync.after_commit().is_err(),
            "a failed flush is reported, not hidden"
        );
    }
}
