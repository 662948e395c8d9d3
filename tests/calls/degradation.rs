//! Storage faults made for real: a database locked past the busy timeout,
//! a full disk, a read-only file. Callers still hear valid TwiML within
//! two seconds (an apology, routed unverified), health checks and the API
//! report it, the fault is logged once, and service comes back by itself
//! with nothing half-done.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pinline::domain::account::Role;
use reqwest::StatusCode;

use crate::harness::*;

/// What a fault is to the scenario: made, then cleared.
trait Fault {
    fn clear(self: Box<Self>);
}

/// How calls arrive while the fault lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrivals {
    /// One at a time.
    Singly,
    /// Then eight at once as well, so the server must use or open a
    /// connection for each while the fault lasts.
    AndABurst,
}

/// Webhook answer times under the fault.
struct Measured {
    new_call: Duration,
    pin_step: Duration,
    burst: Option<Duration>,
}

impl std::fmt::Display for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "new call answered in {:?}, PIN step in {:?}",
            self.new_call, self.pin_step
        )?;
        match self.burst {
            Some(slowest) => write!(f, ", slowest of 8 at once in {slowest:?}"),
            None => Ok(()),
        }
    }
}

/// One scenario for every fault: a caller at the PIN step and a verified
/// caller in the queue when `make` strikes; then a new call, the right
/// PIN, a health check and a queue claim while it lasts; then the same
/// again, and eight calls at once, once it has been cleared.
async fn fault_and_recovery(
    line: &Line,
    logs: &Logs,
    arrivals: Arrivals,
    make: impl FnOnce(&Line) -> Box<dyn Fault>,
) -> Measured {
    let caller = line.user(Role::Staff, "+14155550601");
    let pin = line.pin(&caller);
    let waiting = line.user(Role::Staff, "+14155550602");
    let newcomer = line.user(Role::Staff, "+14155550603");
    let newcomer_pin = line.pin(&newcomer);
    let token = line.agent_token(&line.agent("Ana").0);

    let mut queued = line.call("+14155550602");
    queued.verify(&waiting, &line.pin(&waiting)).await;
    assert!(waits_for_agent(&queued.press("1").await));
    let mut in_progress = line.call("+14155550601");
    in_progress.start().await;
    let asks_pin = in_progress.press(&format!("{}#", caller.user_id)).await;
    let before = snapshot(line);

    // Opened (with its log, which SQLite opens at the first read) before
    // the fault, which may make files opened later read-only.
    let locker = rusqlite::Connection::open(&line.path).unwrap();
    locker.busy_timeout(Duration::ZERO).unwrap();
    locker
        .query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
        .unwrap();
    let fault = make(line);

    let mut new_call = line.call("+14155550603");
    let started = Instant::now();
    let answer = new_call.start().await;
    let new_call_took = started.elapsed();
    assert!(new_call_took < Duration::from_secs(2), "{new_call_took:?}");
    assert_fallback(&answer);

    let started = Instant::now();
    let answer = in_progress.press(&pin).await;
    let pin_step_took = started.elapsed();
    assert!(pin_step_took < Duration::from_secs(2), "{pin_step_took:?}");
    assert_fallback(&answer);

    // An agent cannot sign in either, and must not be queued as a caller.
    let mut agent = line.call("+14155550609");
    let answer = agent.dial_agent_line().await;
    well_formed_twiml(&answer).unwrap();
    assert!(
        says(&answer, "something went wrong")
            && answer.contains("<Hangup/>")
            && !answer.contains("<Enqueue")
            && !answer.contains("<Dial"),
        "{answer}"
    );

    let mut burst_took = None;
    if arrivals == Arrivals::AndABurst {
        let (slowest, answers) = burst(line, &locker).await;
        assert!(slowest < Duration::from_secs(2), "{slowest:?}");
        for answer in &answers {
            assert_fallback(answer);
        }
        burst_took = Some(slowest);
        // The API's writes take pooled connections, eight at once so that
        // the pool opens new ones while the fault lasts.
        let claims = futures_util::future::join_all(
            (0..8).map(|_| line.api("POST", "/api/v1/queue/claim", Some(&token), None)),
        )
        .await;
        for (status, _) in claims {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        }
    }

    assert_eq!(
        line.health().await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unhealthy while the fault lasts"
    );
    let (status, _) = line
        .api("POST", "/api/v1/queue/claim", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // Nothing of the refused steps stayed behind: the PIN entry did not
    // use up the PIN, count a failure or log an event, the new call has
    // no row, and the waiting caller is still unclaimed.
    assert_eq!(snapshot(line), before, "every table as it was");
    assert_eq!(
        logs.count(FAULT_LOGGED),
        1,
        "logged once for every webhook, a health check and an API call:\n{}",
        logs.text()
    );

    fault.clear();

    assert_eq!(
        line.health().await,
        StatusCode::OK,
        "healthy again once the fault has cleared:\n{}",
        logs.text()
    );
    // The provider retries the PIN step it got the fallback for; it goes
    // through with the same PIN, as if the fault had never been.
    in_progress.last = asks_pin;
    let menu = in_progress.press(&pin).await;
    assert!(
        says(&menu, "You're verified") && says(&menu, MENU),
        "{menu}"
    );
    let (status, claimed) = line
        .api("POST", "/api/v1/queue/claim", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{claimed}\n{}", logs.text());
    assert_eq!(claimed["call_sid"], queued.sid.as_str());
    // As many calls at once as the server keeps connections, so that
    // every connection, including any opened during the fault, is used.
    for answer in burst(line, &locker).await.1 {
        assert!(says(&answer, "<Gather"), "{answer}\n{}", logs.text());
    }
    let mut again = line.call("+14155550603");
    let menu = again.verify(&newcomer, &newcomer_pin).await;
    assert!(says(&menu, MENU), "{menu}");

    let conn = rusqlite::Connection::open(&line.path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    assert!(line.registry.verify_audit(None).unwrap().is_ok());
    let validated: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit_events WHERE call_sid = ?1 AND event = 'validated'",
            [&in_progress.sid],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(validated, 1, "one validation for the PIN entered twice");
    assert_eq!(logs.count(FAULT_LOGGED), 1, "{}", logs.text());
    assert_eq!(logs.count(FAULT_CLEARED), 1, "{}", logs.text());
    Measured {
        new_call: new_call_took,
        pin_step: pin_step_took,
        burst: burst_took,
    }
}

/// Eight new calls at once: the slowest answer's time, and the answers.
///
/// Another process holds the write lock for a moment as they arrive
/// (unless the fault already does), so each call holds a connection while
/// it waits: the server has to hand out, or open, a connection for each.
async fn burst(line: &Line, locker: &rusqlite::Connection) -> (Duration, Vec<String>) {
    let locked = locker.execute_batch("BEGIN IMMEDIATE").is_ok();
    let started = Instant::now();
    let calls = futures_util::future::join_all((0..8).map(|n| async move {
        let mut call = line.call(&format!("+1415555070{n}"));
        let answer = call.start().await;
        (started.elapsed(), answer)
    }));
    let unlock = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if locked {
            locker.execute_batch("ROLLBACK").unwrap();
        }
    };
    let (answers, ()) = futures_util::future::join(calls, unlock).await;
    let slowest = answers.iter().map(|(took, _)| *took).max().unwrap();
    (slowest, answers.into_iter().map(|(_, a)| a).collect())
}

#[test]
fn a_locked_database_gets_the_fallback_within_two_seconds_and_recovers() {
    struct Locked(rusqlite::Connection);
    impl Fault for Locked {
        fn clear(self: Box<Self>) {
            self.0.execute_batch("ROLLBACK").unwrap();
        }
    }
    let logs = Logs::default();
    let measured = logs.runtime().block_on(async {
        let line = Line::start().await;
        fault_and_recovery(&line, &logs, Arrivals::AndABurst, |line| {
            // Another process holds the write lock, as a long import would.
            let locker = rusqlite::Connection::open(&line.path).unwrap();
            locker.execute_batch("BEGIN IMMEDIATE").unwrap();
            Box::new(Locked(locker))
        })
        .await
    });
    eprintln!("locked: {measured}");
}

#[test]
fn a_full_disk_gets_the_fallback_within_two_seconds_and_recovers_with_the_pin_intact() {
    struct Full(PathBuf);
    impl Fault for Full {
        fn clear(self: Box<Self>) {
            std::fs::remove_file(&self.0).unwrap();
        }
    }
    let test = "a_full_disk_gets_the_fallback_within_two_seconds_and_recovers_with_the_pin_intact";
    let Some(disk) = Mount::tmpfs(test, "8m") else {
        return;
    };
    let logs = Logs::default();
    let measured = logs.runtime().block_on(async {
        let line = Line::start_in(disk.path()).await;
        fault_and_recovery(&line, &logs, Arrivals::AndABurst, |line| {
            // SQLite writes over the log's old space once a checkpoint has
            // emptied it; emptied and cut to nothing now, the log has to
            // grow at the next commit, as one that has been growing does.
            let conn = rusqlite::Connection::open(&line.path).unwrap();
            let busy: i64 = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .unwrap();
            assert_eq!(busy, 0);
            Box::new(Full(fill(disk.path())))
        })
        .await
    });
    eprintln!("disk full: {measured}");
}

#[test]
fn a_read_only_database_gets_the_fallback_within_two_seconds_and_recovers() {
    let test = "a_read_only_database_gets_the_fallback_within_two_seconds_and_recovers";
    if let Some(measured) = read_only(test, Arrivals::Singly) {
        eprintln!("read-only: {measured}");
    }
}

/// Connections opened while the file is read-only are opened read-only
/// by SQLite, and stay so: the pool must not keep them.
#[test]
fn connections_opened_while_the_database_is_read_only_do_not_outlast_it() {
    let test = "connections_opened_while_the_database_is_read_only_do_not_outlast_it";
    if let Some(measured) = read_only(test, Arrivals::AndABurst) {
        eprintln!("read-only, with a burst: {measured}");
    }
}

/// The scenario with the database and its log made immutable on ext4,
/// which refuses writes through descriptors already open for writing
/// (tmpfs does not), as a file system remounted read-only does.
fn read_only(test: &str, arrivals: Arrivals) -> Option<Measured> {
    struct ReadOnly(Vec<PathBuf>);
    impl Fault for ReadOnly {
        fn clear(self: Box<Self>) {
            immutable(&self.0, false);
        }
    }
    let disk = Mount::ext4(test, 32)?;
    let logs = Logs::default();
    let measured = logs.runtime().block_on(async {
        let line = Line::start_in(disk.path()).await;
        fault_and_recovery(&line, &logs, arrivals, |line| {
            // The database and its log, not the shared-memory index: SQLite
            // maps that into memory, and a mapped page that may not be
            // written is a SIGBUS, not an error.
            let files = vec![line.path.clone(), line.path.with_extension("db-wal")];
            immutable(&files, true);
            Box::new(ReadOnly(files))
        })
        .await
    });
    Some(measured)
}

/// Sets or clears the immutable attribute, which refuses writes even to
/// files already open for writing, and even to root.
fn immutable(files: &[PathBuf], on: bool) {
    let status = Command::new("chattr")
        .arg(if on { "+i" } else { "-i" })
        .args(files)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A file system of the test's own, unmounted however the test ends.
struct Mount {
    point: tempfile::TempDir,
    _image: Option<tempfile::TempDir>,
}

impl Mount {
    /// A tmpfs of `size` (as `mount -o size=` takes it), or `None`, said
    /// so, where this process may not mount one.
    fn tmpfs(test: &str, size: &str) -> Option<Self> {
        let point = tempfile::tempdir().unwrap();
        let options = format!("size={size}");
        run_or_skip(
            test,
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
                .arg(point.path()),
        )?;
        Some(Self {
            point,
            _image: None,
        })
    }

    /// An ext4 file system of `megabytes` in an image file, mounted
    /// through a loop device, or `None`, said so, where this process may
    /// not make one.
    fn ext4(test: &str, megabytes: u64) -> Option<Self> {
        let image_dir = tempfile::tempdir().unwrap();
        let image = image_dir.path().join("fs.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(megabytes << 20)
            .unwrap();
        run_or_skip(
            test,
            Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image),
        )?;
        let point = tempfile::tempdir().unwrap();
        run_or_skip(
            test,
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(point.path()),
        )?;
        Some(Self {
            point,
            _image: Some(image_dir),
        })
    }

    fn path(&self) -> &Path {
        self.point.path()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // Lazily: the server's files may still be open while it shuts down.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.point.path())
            .status();
    }
}

/// Runs `command`; on failure says that `test` was skipped and why.
fn run_or_skip(test: &str, command: &mut Command) -> Option<()> {
    let failed = match command.output() {
        Ok(out) if out.status.success() => return Some(()),
        Ok(out) => String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned(),
        Err(e) => e.to_string(),
    };
    // Straight to the file descriptor: the test harness captures what
    // `eprintln!` prints, and a skip should be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: cannot make the file system it needs here (root, and a loop \
         device for ext4): {command:?}: {failed}"
    );
    None
}

/// Fills the rest of the file system at `dir` with one file, whose
/// removal frees the space again.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = [0u8; 4096];
    loop {
        match file.write(&block) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return path,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

/// A step cut off by the webhook deadline was answered with the fallback,
/// so it must not take effect later: here a PIN entry that waited behind
/// another write, then for a lock released just after its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_answered_with_the_fallback_at_the_deadline_commits_nothing() {
    let line = Line::start().await;
    let caller = line.user(Role::Staff, "+14155550611");
    let pin = line.pin(&caller);
    let mut in_progress = line.call("+14155550611");
    in_progress.start().await;
    in_progress.press(&format!("{}#", caller.user_id)).await;
    let before = snapshot(&line);

    let locker = rusqlite::Connection::open(&line.path).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut ahead = line.call("+14155550612");
    let started = Instant::now();
    let (first, answer) = futures_util::future::join(ahead.start(), async {
        // Behind the new call, which waits out its busy timeout first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        in_progress.press(&pin).await
    })
    .await;
    let took = started.elapsed();
    assert_fallback(&first);
    assert_fallback(&answer);
    assert!(took < Duration::from_secs(2), "{took:?}");
    locker.execute_batch("ROLLBACK").unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let validated = line
        .events(&caller)
        .iter()
        .filter(|e| e.event == "validated")
        .count();
    assert_eq!(
        validated, 0,
        "the caller was told something went wrong, yet the PIN was used up"
    );
    assert_eq!(snapshot(&line), before, "every table as it was");
}

/// `pinline serve` loads its prompt files and keys once, at start-up:
/// deleting them under a running server changes nothing for calls in
/// progress or new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_and_key_files_deleted_while_serving_do_not_stop_calls() {
    use crate::support::{Served, action, pinline, serve};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pinline.db");
    pinline(&db, &["key", "init"]);
    pinline(&db, &["practice", "add", "Harbor Health"]);
    let add = |name: &str, phone: &str| {
        let id = pinline(
            &db,
            &[
                "user",
                "add",
                "--practice",
                "Harbor Health",
                "--role",
                "staff",
                "--name",
                name,
                "--phone",
                phone,
            ],
        );
        let id = id.trim().to_owned();
        let pin = pinline(&db, &["pin", "show", &id]).trim().to_owned();
        (id, pin)
    };
    let (robin, robin_pin) = add("Robin Hart", "+14155550621");
    let (kai, kai_pin) = add("Kai Moss", "+14155550622");
    // The prompt files, with one prompt reworded, so that hearing it shows
    // they are what the server speaks from.
    let prompts = dir.path().join("prompts");
    std::fs::create_dir(&prompts).unwrap();
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("voice-prompts")).unwrap()
    {
        let entry = entry.unwrap();
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let text = text.replace(
            "verified = \"Thank you. You're verified.\"",
            "verified = \"Thank you. You're verified on the test line.\"",
        );
        std::fs::write(prompts.join(entry.file_name()), text).unwrap();
    }
    const VERIFIED: &str = "You're verified on the test line.";
    let log = dir.path().join("serve.log");
    let served = Served::spawn(
        serve(&db, TOKEN)
            .arg("--prompts")
            .arg(&prompts)
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let client = reqwest::Client::new();

    let mut robin_call = Remote::new(&client, &served.base, "+14155550621");
    let greeting = robin_call.incoming().await;
    let asks_pin = robin_call.answer(&greeting, &format!("{robin}#")).await;
    assert!(asks_pin.contains("/voice/pin"), "{asks_pin}");

    std::fs::remove_dir_all(&prompts).unwrap();
    for key in ["pinline.pin.key", "pinline.audit.key"] {
        std::fs::remove_file(dir.path().join(key)).unwrap();
    }

    let menu = robin_call.answer(&asks_pin, &robin_pin).await;
    assert!(says(&menu, VERIFIED) && says(&menu, MENU), "{menu}");
    let routed = robin_call.answer(&menu, "1").await;
    assert!(waits_for_agent(&routed), "{routed}");
    let mut kai_call = Remote::new(&client, &served.base, "+14155550622");
    let greeting = kai_call.incoming().await;
    let asks_pin = kai_call.answer(&greeting, &format!("{kai}#")).await;
    let menu = kai_call.answer(&asks_pin, &kai_pin).await;
    assert!(says(&menu, VERIFIED), "{menu}");
    let health = client
        .get(format!("{}/healthz", served.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    drop(served);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains("ERROR") && !log.contains("WARN"), "{log}");

    /// A call to a `pinline serve` process.
    struct Remote<'a> {
        client: &'a reqwest::Client,
        base: &'a str,
        sid: String,
        from: &'a str,
    }

    impl<'a> Remote<'a> {
        fn new(client: &'a reqwest::Client, base: &'a str, from: &'a str) -> Self {
            let sid = format!("CA{:032x}", rand_u128());
            Self {
                client,
                base,
                sid,
                from,
            }
        }

        async fn incoming(&mut self) -> String {
            let url = format!("{}/voice/incoming", self.base);
            self.post(&url, None).await
        }

        /// Answers the gather in `twiml` with `digits`.
        async fn answer(&mut self, twiml: &str, digits: &str) -> String {
            let url = action(twiml).unwrap_or_else(|| panic!("no gather in {twiml}"));
            self.post(&url, Some(digits)).await
        }

        async fn post(&self, url: &str, digits: Option<&str>) -> String {
            let mut params = vec![
                ("CallSid".to_owned(), self.sid.clone()),
                ("From".to_owned(), self.from.to_owned()),
                ("To".to_owned(), "+18005550100".to_owned()),
            ];
            params.extend(digits.map(|d| ("Digits".to_owned(), d.to_owned())));
            crate::support::signed_post(self.client, TOKEN, url, &params)
                .await
                .unwrap_or_else(|| panic!("{url}: no answer"))
        }
    }
}
