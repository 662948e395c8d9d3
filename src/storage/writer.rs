//! The batching writer: one thread, one connection, many webhooks to a
//! transaction.
//!
//! A webhook's step is a short write (a call's state, an audit event, a
//! PIN rotation), and what it costs is mostly the transaction around it:
//! taking SQLite's write lock, writing the touched pages to the log at
//! commit, and the fsync that makes the commit durable. Steps submitted
//! while the writer is busy are therefore run together, each inside its
//! own savepoint (so one step's failure undoes only that step), and
//! committed as one transaction. A second thread fsyncs the log after
//! each commit while the writer runs the next batch. A step that appended
//! to the audit log (a verification, a new PIN, anything else audited),
//! or whose submitter asked for it, is answered only once the fsync that
//! covers its commit has finished; a step that only moved a call along is
//! answered at its commit ([`Durability`]).
//!
//! One long-lived connection also keeps its page cache warm: connections
//! taking turns from a pool each find the cache stale after the others'
//! commits and read the pages again.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::task::{Context, Poll};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::durability::GroupSync;
use super::{BUSY_TIMEOUT, StorageError};

/// The most steps run in one transaction: enough to share a commit
/// among every caller of a busy line, few enough that the first of them
/// does not wait long on the last.
const MAX_BATCH: usize = 128;

/// When a submitted step is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Once an fsync that covers its commit has finished.
    OnDisk,
    /// Once committed; once on disk as well if it appended to the audit
    /// log. A commit not yet fsynced survives the process being killed
    /// (the kernel holds it), but not the machine losing power: then the
    /// call steps back to where its last durable step left it, which its
    /// step numbers already handle, while nothing audited can be lost.
    OnDiskIfAudited,
}

/// The table whose every insert must be on disk before it is reported.
const AUDIT_TABLE: &str = "audit_events";

/// A step waiting for the writer, with its type erased.
trait Job: Send {
    /// The one who submitted it has stopped waiting: its caller was
    /// answered otherwise, so it must not run.
    fn abandoned(&self) -> bool;
    /// How long its answer waits.
    fn durability(&self) -> Durability;
    /// Runs the step on `conn` inside the open transaction. Returns
    /// whether it succeeded (its savepoint is kept) and the reply to send
    /// once the transaction's fate is known.
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Box<dyn Reply>);
    /// Answers with `fault` without running.
    fn refuse(self: Box<Self>, fault: &Arc<StorageError>);
}

/// The answer to one step, held until its commit is durable.
trait Reply: Send {
    /// Sends the step's own result if `outcome` is `Ok`, else the fault.
    fn send(self: Box<Self>, outcome: Result<(), &Arc<StorageError>>);
}

struct Step<F, T, E> {
    work: F,
    durability: Durability,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Job for Step<F, T, E>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send,
    T: Send + 'static,
    E: From<StorageError> + Send + 'static,
{
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn run(self: Box<Self>, conn: &Connection) -> (bool, Box<dyn Reply>) {
        let Step { work, reply, .. } = *self;
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(StorageError::Panicked.into()));
        // Given up on while it ran: undone, as if it never had.
        let kept = result.is_ok() && !reply.is_closed();
        (kept, Box::new(Held { result, reply }))
    }

    fn refuse(self: Box<Self>, fault: &Arc<StorageError>) {
        let _ = self
            .reply
            .send(Err(StorageError::Batch(Arc::clone(fault)).into()));
    }
}

struct Held<T, E> {
    result: Result<T, E>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T: Send, E: From<StorageError> + Send> Reply for Held<T, E> {
    fn send(self: Box<Self>, outcome: Result<(), &Arc<StorageError>>) {
        let answer = match (outcome, self.result) {
            // A failed step wrote nothing that could be lost; its own error
            // says more than the batch's.
            (_, Err(e)) => Err(e),
            (Ok(()), Ok(value)) => Ok(value),
            (Err(fault), Ok(_)) => Err(StorageError::Batch(Arc::clone(fault)).into()),
        };
        // The receiver may have given up meanwhile; nothing to tell then.
        let _ = self.reply.send(answer);
    }
}

/// The one connection this process writes through, taken in turns by the
/// batching writer and by [`super::Db::write`].
///
/// It never checkpoints the log itself: a checkpoint copies pages into the
/// database file and fsyncs it, which in a commit would hold up every step
/// of the batch; a thread of its own does it instead ([`Writer::start`]).
pub(super) fn open_write_connection(
    path: &Path,
    configure: fn(&mut Connection) -> Result<(), rusqlite::Error>,
) -> Result<Connection, StorageError> {
    let mut conn = Connection::open(path)?;
    configure(&mut conn)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // A log that grew in a burst is cut back to this when it starts over.
    conn.pragma_update(None, "journal_size_limit", LOG_SIZE_LIMIT)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Bytes a log file is cut back to when it starts over.
const LOG_SIZE_LIMIT: i64 = 64 << 20;

/// How often the log is checkpointed into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Shared by everything in this process that writes.
pub(super) type Turn = Arc<parking_lot::Mutex<Connection>>;

/// The submitting side of the writer; dropping the last one stops it.
#[derive(Debug)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
    commits: Arc<AtomicU64>,
    /// Dropped with the writer, which stops the checkpointer.
    _checkpoints: mpsc::Sender<()>,
}

impl std::fmt::Debug for dyn Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Writer {
    /// Starts the writer and its flusher, writing through `turn`, and a
    /// checkpointer on the connection `checkpointing`.
    pub(super) fn start(
        turn: Turn,
        sync: Arc<GroupSync>,
        checkpointing: Connection,
    ) -> Result<Self, StorageError> {
        let audited = Arc::new(AtomicBool::new(false));
        let marks = Arc::clone(&audited);
        turn.lock().update_hook(Some(
            move |_: rusqlite::hooks::Action, _: &str, table: &str, _: i64| {
                if table == AUDIT_TABLE {
                    marks.store(true, Ordering::Relaxed);
                }
            },
        ))?;
        let (checkpoints, stop) = mpsc::channel::<()>();
        let held = Arc::clone(&turn);
        std::thread::Builder::new()
            .name("pinline-checkpointer".into())
            .spawn(move || checkpoint_loop(&checkpointing, &held, &stop))
            .map_err(StorageError::Thread)?;
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let (committed, to_flush) = mpsc::channel::<Vec<Box<dyn Reply>>>();
        let commits = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&commits);
        std::thread::Builder::new()
            .name("pinline-flusher".into())
            .spawn(move || flush_loop(&to_flush, &sync))
            .map_err(StorageError::Thread)?;
        std::thread::Builder::new()
            .name("pinline-writer".into())
            .spawn(move || write_loop(&queue, &committed, &turn, &counted, &audited))
            .map_err(StorageError::Thread)?;
        Ok(Self {
            jobs,
            commits,
            _checkpoints: checkpoints,
        })
    }

    /// Batches committed so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Queues `work`; the answer resolves as `durability` says.
    pub(super) fn submit<T, E, F>(&self, durability: Durability, work: F) -> Pending<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        // A send fails only when the writer thread is gone; the dropped
        // reply then resolves the answer with that fault.
        let _ = self.jobs.send(Box::new(Step {
            work,
            durability,
            reply,
        }));
        Pending { answer }
    }
}

/// A submitted step's answer: await it, or [`Pending::wait`] for it on a
/// thread that may block.
#[must_use = "a step's answer says whether it was committed"]
pub struct Pending<T, E> {
    answer: oneshot::Receiver<Result<T, E>>,
}

impl<T, E: From<StorageError>> Pending<T, E> {
    /// Blocks until the answer arrives. Never call it on an async worker.
    pub fn wait(self) -> Result<T, E> {
        self.answer
            .blocking_recv()
            .unwrap_or_else(|_| Err(StorageError::WriterGone.into()))
    }
}

impl<T, E: From<StorageError>> Future for Pending<T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.answer)
            .poll(cx)
            .map(|answer| answer.unwrap_or_else(|_| Err(StorageError::WriterGone.into())))
    }
}

fn write_loop(
    queue: &mpsc::Receiver<Box<dyn Job>>,
    committed: &mpsc::Sender<Vec<Box<dyn Reply>>>,
    turn: &parking_lot::Mutex<Connection>,
    commits: &AtomicU64,
    audited: &AtomicBool,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        batch.retain(|job| !job.abandoned());
        if batch.is_empty() {
            continue;
        }
        let Some(Ran {
            at_commit,
            after_sync,
        }) = run_batch(batch, turn, audited)
        else {
            continue;
        };
        commits.fetch_add(1, Ordering::Relaxed);
        at_commit.into_iter().for_each(|reply| reply.send(Ok(())));
        if after_sync.is_empty() {
            continue;
        }
        if let Err(mpsc::SendError(replies)) = committed.send(after_sync) {
            refuse_all(Vec::new(), replies, StorageError::WriterGone);
        }
    }
}

/// The replies of a batch's steps, by when they may be sent.
#[derive(Default)]
struct Ran {
    /// Once the batch has committed.
    at_commit: Vec<Box<dyn Reply>>,
    /// Once an fsync has covered the commit too.
    after_sync: Vec<Box<dyn Reply>>,
}

impl Ran {
    fn all(self) -> impl Iterator<Item = Box<dyn Reply>> {
        self.at_commit.into_iter().chain(self.after_sync)
    }
}

/// Runs `batch` as one transaction, each step in a savepoint, and returns
/// the replies to send once it has committed. On a fault of the
/// transaction itself (the lock, a savepoint, the commit) everything is
/// rolled back and every step is answered with the fault at once.
fn run_batch(
    batch: Vec<Box<dyn Job>>,
    turn: &parking_lot::Mutex<Connection>,
    audited: &AtomicBool,
) -> Option<Ran> {
    let Some(writing) = turn.try_lock_for(BUSY_TIMEOUT) else {
        refuse_all(batch, Vec::new(), StorageError::Busy);
        return None;
    };
    let conn: &Connection = &writing;
    if let Err(e) = run(conn, "BEGIN IMMEDIATE") {
        refuse_all(batch, Vec::new(), StorageError::from(e));
        return None;
    }
    // Waiting for the lock can outlast a caller's patience: a step whose
    // caller was already answered otherwise must not take effect now.
    let mut batch = batch;
    batch.retain(|job| !job.abandoned());
    let mut ran = Ran::default();
    let mut jobs = batch.into_iter();
    while let Some(job) = jobs.next() {
        if let Err(e) = run(conn, "SAVEPOINT step") {
            refuse_all(
                std::iter::once(job).chain(jobs).collect(),
                ran.all(),
                abort(conn, e),
            );
            return None;
        }
        let durability = job.durability();
        audited.store(false, Ordering::Relaxed);
        let (kept, reply) = job.run(conn);
        // A step undone wrote nothing that could be lost.
        let must_sync =
            kept && (durability == Durability::OnDisk || audited.load(Ordering::Relaxed));
        if must_sync {
            ran.after_sync.push(reply);
        } else {
            ran.at_commit.push(reply);
        }
        let undone = if kept {
            Ok(())
        } else {
            run(conn, "ROLLBACK TO step")
        };
        if let Err(e) = undone.and_then(|()| run(conn, "RELEASE step")) {
            refuse_all(jobs.collect(), ran.all(), abort(conn, e));
            return None;
        }
    }
    match run(conn, "COMMIT") {
        Ok(()) => Some(ran),
        Err(e) => {
            refuse_all(Vec::new(), ran.all(), abort(conn, e));
            None
        }
    }
}

/// Runs one statement that takes no parameters, prepared once: the same
/// few open and close every batch and step.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Answers every step of a failed batch, run or not, with `fault`.
fn refuse_all(
    not_run: Vec<Box<dyn Job>>,
    ran: impl IntoIterator<Item = Box<dyn Reply>>,
    fault: StorageError,
) {
    let fault = Arc::new(fault);
    not_run.into_iter().for_each(|job| job.refuse(&fault));
    ran.into_iter().for_each(|reply| reply.send(Err(&fault)));
}

/// Rolls back whatever is still open after a fault of the transaction.
fn abort(conn: &Connection, fault: rusqlite::Error) -> StorageError {
    if !conn.is_autocommit() {
        // Nothing more can be done if this fails too: SQLite has then
        // rolled the transaction back itself.
        let _ = conn.execute_batch("ROLLBACK");
    }
    StorageError::from(fault)
}

/// Log frames past which the checkpointer makes sure the log starts over:
/// rarely enough that holding the writer back for it is seldom felt, and
/// about the size the log is cut back to.
#[cfg(not(test))]
const RESTART_AFTER_FRAMES: i64 = LOG_SIZE_LIMIT / 4096;
/// Small in unit tests, so that they see several restarts in a second.
#[cfg(test)]
const RESTART_AFTER_FRAMES: i64 = 512;

/// Copies committed pages from the log into the database file. A
/// `PASSIVE` checkpoint takes no lock a writer or reader needs, so it
/// runs beside the commits, and does nothing when the log has nothing new.
///
/// But SQLite starts the log over only when a write begins with every
/// frame already copied, which never happens while commits keep coming:
/// each lands before the checkpoint copying the ones before it is done,
/// and the log grows by every page written, without end, as does the
/// log index every read searches. So when the log is long, a second pass
/// copies what came in during the first while holding back the writer
/// between two batches; that pass is short, and the next write then
/// starts the log over. (The counts a checkpoint returns cannot tell
/// that it fell behind: they describe the log as the checkpoint began.)
fn checkpoint_loop(
    conn: &Connection,
    turn: &parking_lot::Mutex<Connection>,
    stop: &mpsc::Receiver<()>,
) {
    let mut failing = false;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let done = checkpoint(conn).and_then(|frames| {
            if frames > RESTART_AFTER_FRAMES {
                let _writes_held = turn.lock();
                checkpoint(conn)?;
            }
            Ok(())
        });
        // Logged when it starts failing and when it recovers, not each
        // time: a full disk would otherwise log four lines a second.
        match (done, failing) {
            (Err(error), false) => {
                tracing::warn!(%error, "cannot checkpoint the database log; it grows until this clears");
                failing = true;
            }
            (Ok(()), true) => {
                tracing::info!("checkpointing the database log again");
                failing = false;
            }
            _ => {}
        }
    }
}

/// One `PASSIVE` checkpoint; returns the frames in the log as it began
/// (all of them copied, unless a reader was still using some).
fn checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}

fn flush_loop(to_flush: &mpsc::Receiver<Vec<Box<dyn Reply>>>, sync: &GroupSync) {
    while let Ok(mut replies) = to_flush.recv() {
        while let Ok(more) = to_flush.try_recv() {
            replies.extend(more);
        }
        match sync.after_commit() {
            Ok(()) => replies.into_iter().for_each(|r| r.send(Ok(()))),
            Err(e) => {
                let fault = Arc::new(StorageError::Sync(e));
                replies.into_iter().for_each(|r| r.send(Err(&fault)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Db, StorageError};
    use super::Durability;

    fn count(db: &Db) -> i64 {
        db.conn()
            .unwrap()
            .query_row("SELECT count(*) FROM meta WHERE key LIKE 'w%'", [], |r| {
                r.get(0)
            })
            .unwrap()
    }

    fn insert(key: String) -> impl FnOnce(&rusqlite::Connection) -> Result<(), StorageError> {
        move |conn| {
            conn.execute("INSERT INTO meta VALUES (?1, 'v')", [key])?;
            Ok(())
        }
    }

    /// Holds the in-process write turn, so that steps pile up behind it.
    fn piled_up(db: &Db, steps: usize) -> Vec<super::Pending<(), StorageError>> {
        let turn = db.turn.lock();
        let pending = (0..steps)
            .map(|i| db.submit(insert(format!("w{i}"))))
            .collect();
        // The writer takes its first step and then waits for the turn; give
        // it time to, so that the rest queue behind one batch.
        std::thread::sleep(Duration::from_millis(50));
        drop(turn);
        pending
    }

    #[test]
    fn steps_submitted_meanwhile_share_one_commit_and_are_durable_when_answered() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("w.db")).unwrap();
        let (commits, flushes) = (db.batches_committed(), db.flushes());
        for answer in piled_up(&db, 40) {
            answer.wait().unwrap();
        }
        assert_eq!(count(&db), 40, "every step committed");
        let used = db.batches_committed() - commits;
        assert!(
            (1..=2).contains(&used),
            "40 queued steps took {used} commits"
        );
        assert!(db.flushes() - flushes <= used, "one fsync covers a batch");
        assert!(db.flushes() > flushes, "answered only after an fsync");
    }

    fn answered<T, E>(pending: &mut super::Pending<T, E>, within: Duration) -> bool {
        let until = std::time::Instant::now() + within;
        loop {
            if !pending.answer.is_empty() {
                return true;
            }
            if std::time::Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn only_steps_that_audit_or_ask_for_it_wait_for_the_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("w.db")).unwrap();
        let stalled = db.sync.stall();
        let mut progress = db.submit_with(Durability::OnDiskIfAudited, insert("w-moved".into()));
        assert!(
            answered(&mut progress, Duration::from_secs(5)),
            "a step that audits nothing is answered at its commit"
        );
        progress.wait().unwrap();
        let mut audited = db.submit_with(Durability::OnDiskIfAudited, |conn| {
            conn.execute(
                "INSERT INTO audit_events (at, actor, channel, event, detail, tag)
                 VALUES ('2026-01-01T00:00:00Z', 'cli', 'cli', 'viewed', '', x'00')",
                [],
            )?;
            Ok::<_, StorageError>(())
        });
        let mut on_disk = db.submit(insert("w-synced".into()));
        assert!(!answered(&mut audited, Duration::from_millis(300)));
        assert!(!answered(&mut on_disk, Duration::ZERO));
        drop(stalled);
        audited.wait().unwrap();
        on_disk.wait().unwrap();
        assert_eq!(count(&db), 2);
    }

    #[test]
    fn a_failing_or_panicking_step_is_undone_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("w.db")).unwrap();
        let turn = db.turn.lock();
        let before = db.submit(insert("w-before".into()));
        let failing = db.submit(|conn| -> Result<(), StorageError> {
            conn.execute("INSERT INTO meta VALUES ('w-failed', 'v')", [])?;
            conn.execute("INSERT INTO no_such_table VALUES (1)", [])?;
            Ok(())
        });
        let panicking = db.submit(|conn| -> Result<(), StorageError> {
            conn.execute("INSERT INTO meta VALUES ('w-panicked', 'v')", [])?;
            panic!("a bug in a step");
        });
        let after = db.submit(insert("w-after".into()));
        std::thread::sleep(Duration::from_millis(50));
        drop(turn);
        before.wait().unwrap();
        assert!(matches!(failing.wait(), Err(StorageError::Sqlite(_))));
        assert!(matches!(panicking.wait(), Err(StorageError::Panicked)));
        after.wait().unwrap();
        let keys: Vec<String> = db
            .conn()
            .unwrap()
            .prepare("SELECT key FROM meta WHERE key LIKE 'w%' ORDER BY key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys, ["w-after", "w-before"]);
    }

    #[test]
    fn a_step_nobody_waits_for_any_more_does_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("w.db")).unwrap();
        let turn = db.turn.lock();
        let first = db.submit(insert("w-first".into()));
        drop(db.submit(insert("w-abandoned".into())));
        std::thread::sleep(Duration::from_millis(50));
        drop(turn);
        first.wait().unwrap();
        db.submit(insert("w-last".into())).wait().unwrap();
        assert_eq!(count(&db), 2, "the abandoned step never ran");
    }

    #[test]
    fn the_log_is_checkpointed_into_the_database_file_outside_the_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let db = Db::open(&path).unwrap();
        let autocheckpoint: i64 = db
            .turn
            .lock()
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(autocheckpoint, 0, "no commit checkpoints");
        let before = std::fs::metadata(&path).unwrap().len();
        let pending: Vec<_> = (0..400)
            .map(|i| {
                db.submit(move |conn| -> Result<(), StorageError> {
                    conn.execute(
                        "INSERT INTO meta VALUES (?1, ?2)",
                        rusqlite::params![format!("w{i}"), "x".repeat(4000)],
                    )?;
                    Ok(())
                })
            })
            .collect();
        for answer in pending {
            answer.wait().unwrap();
        }
        let deadline = std::time::Instant::now() + super::CHECKPOINT_EVERY * 20;
        let grown = loop {
            let size = std::fs::metadata(&path).unwrap().len();
            if size > before + 1_000_000 || std::time::Instant::now() > deadline {
                break size - before;
            }
            std::thread::sleep(super::CHECKPOINT_EVERY / 5);
        };
        assert!(
            grown > 1_000_000,
            "only {grown} bytes reached the database file"
        );
    }

    /// The checkpoint sequence in the log's header, which counts the
    /// times it started over.
    fn log_sequence(path: &std::path::Path) -> u32 {
        use std::io::Read;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let mut header = [0u8; 16];
        std::fs::File::open(&wal)
            .and_then(|mut f| f.read_exact(&mut header))
            .map_or(0, |()| {
                u32::from_be_bytes([header[12], header[13], header[14], header[15]])
            })
    }

    #[test]
    fn the_log_starts_over_although_commits_never_pause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let db = std::sync::Arc::new(Db::open(&path).unwrap());
        let until = std::time::Instant::now() + super::CHECKPOINT_EVERY * 12;
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let db = std::sync::Arc::clone(&db);
                std::thread::spawn(move || {
                    let mut i = 0;
                    while std::time::Instant::now() < until {
                        i += 1;
                        db.submit_with(Durability::OnDiskIfAudited, move |conn| {
                            conn.execute(
                                "INSERT OR REPLACE INTO meta VALUES (?1, ?2)",
                                rusqlite::params![format!("w{t}-{}", i % 64), "x".repeat(2000)],
                            )?;
                            Ok::<_, StorageError>(())
                        })
                        .wait()
                        .unwrap();
                    }
                    i
                })
            })
            .collect();
        let first = log_sequence(&path);
        let steps: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        let restarts = log_sequence(&path) - first;
        assert!(
            restarts >= 2,
            "the log started over {restarts} times in {steps} steps"
        );
    }

    #[test]
    fn a_database_locked_by_another_process_fails_the_batch_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let db = Db::open(&path).unwrap();
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let refused = db.submit(insert("w-refused".into())).wait();
        assert!(
            matches!(refused, Err(StorageError::Batch(_))),
            "{refused:?}"
        );
        other.execute_batch("ROLLBACK").unwrap();
        db.submit(insert("w-later".into())).wait().unwrap();
        assert_eq!(count(&db), 1);
    }
}
