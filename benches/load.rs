//! Load benchmark of whole verified calls against a running `pinline
//! serve` on loopback, next to a bare axum handler that answers a TwiML
//! document of the same size with no storage.
//!
//! Run: `cargo bench --bench load` (options after `--`: `--closed 50`,
//! `--open 200`, `--pause-ms 20,50,100` (one open-loop run for each
//! pause, the first being the target's), `--seconds 10`, `--slices 5`,
//! `--waiting 1000`, and `--server PATH` to load another build of
//! `pinline` than this one's).
//!
//! The closed-loop runs take turns in slices (bare, floor, pinline, bare,
//! …) so that all three see the same machine: on a shared machine the
//! bare rate alone can move by a third from one minute to the next.
//! The bare and floor servers also take the first open-loop load, so that
//! pinline's latencies there stand beside what the HTTP stack alone, and
//! the least durable storage, allow.
//! Figures and their reading are in docs/PERFORMANCE.md.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinline::clock::SystemClock;
use pinline::crypto::{PinCipher, SecretKey};
use pinline::domain::account::{NewUser, PhoneNumber, Role, UserId};
use pinline::domain::lock::LockPolicy;
use pinline::registry::{ImportRow, Origin, Registry};
use pinline::storage::{Db, Durability};
use tokio::sync::Mutex;

const TOKEN: &str = "load-test-token";
const BARE_ENV: &str = "PINLINE_LOAD_BARE";
/// Set (to a database path) for the floor server: the bare handler plus
/// one committed row per request.
const FLOOR_ENV: &str = "PINLINE_LOAD_FLOOR";

struct Options {
    closed: usize,
    open: usize,
    pauses: Vec<Duration>,
    seconds: u64,
    slices: u32,
    waiting: usize,
    server: std::path::PathBuf,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let text = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let value =
        |name: &str, default: u64| text(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    Options {
        closed: value("--closed", 50) as usize,
        open: value("--open", 200) as usize,
        pauses: text("--pause-ms")
            .map_or("20,50,100", String::as_str)
            .split(',')
            .filter_map(|ms| ms.trim().parse().ok())
            .map(Duration::from_millis)
            .collect(),
        seconds: value("--seconds", 10),
        slices: value("--slices", 5).max(1) as u32,
        waiting: value("--waiting", 1000) as usize,
        server: text("--server").map_or_else(|| env!("CARGO_BIN_EXE_pinline").into(), Into::into),
    }
}

fn main() {
    if std::env::var_os(BARE_ENV).is_some() {
        bare_server(std::env::var_os(FLOOR_ENV).map(std::path::PathBuf::from));
        return;
    }
    let opts = options();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("load.db");
    let (pin_key, audit_key) = (SecretKey::generate(), SecretKey::generate());
    let users = opts.closed.max(opts.open).max(opts.waiting);
    let ids = seed(&db, &pin_key, &audit_key, users);

    let server = Server::pinline(&opts.server, &db, &pin_key, &audit_key);
    let bare = Server::bare(None);
    let floor = Server::bare(Some(&dir.path().join("floor.db")));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .build()
            .expect("an HTTP client");
        let pins = Arc::new(Pins::open(&db, &pin_key));
        let duration = Duration::from_secs(opts.seconds);

        let slice = duration / opts.slices;
        let (mut bare_cpu, mut floor_cpu, mut closed_cpu) =
            (Cpu::new(&bare), Cpu::new(&floor), Cpu::new(&server));
        let (mut bare_done, mut floor_done) = (0u64, 0u64);
        let mut closed = Tally::default();
        for _ in 0..opts.slices {
            bare_done += bare_cpu
                .during(hammer(&client, &bare.base, opts.closed, Duration::ZERO, slice))
                .await
                .answered();
            floor_done += floor_cpu
                .during(hammer(&client, &floor.base, opts.closed, Duration::ZERO, slice))
                .await
                .answered();
            let part = closed_cpu
                .during(calls(&client, &server.base, &ids, &pins, opts.closed, Duration::ZERO, slice))
                .await;
            closed.merge(part);
        }
        let measured = slice.as_secs_f64() * f64::from(opts.slices);
        let bare_rate = bare_done as f64 / measured;
        let floor_rate = floor_done as f64 / measured;
        println!("bare axum handler, {} connections: {bare_rate:.0} requests/s", opts.closed);
        bare_cpu.print(bare_done as f64, "request");
        println!(
            "floor (bare plus one committed 1 KiB row per request, two in five on disk before the answer), {} connections: {floor_rate:.0} requests/s = {:.3} of bare",
            opts.closed,
            floor_rate / bare_rate
        );
        floor_cpu.print(floor_done as f64, "request");
        closed.print(&format!("closed loop, {} callers, no pauses", opts.closed));
        closed_cpu.print(closed.webhooks as f64, "webhook");
        let per_call = closed.webhooks as f64 / closed.calls.max(1) as f64;
        let ceiling = bare_rate / per_call;
        println!(
            "  calls/s {:.0} = {:.0} % of bare requests/s ÷ {per_call:.0} webhooks per call (target ≥ 50 %)",
            closed.calls_per_sec(),
            100.0 * closed.calls_per_sec() / ceiling
        );
        println!("  webhooks/s pinline ÷ bare requests/s: {:.3}", closed.webhooks_per_sec() / bare_rate);

        // The open loop at the target's pause against the two servers
        // without pinline: what the machine's HTTP stack and its disk
        // allow any server at that load.
        if let Some(&pause) = opts.pauses.first().filter(|_| opts.open > 0) {
            for (name, other) in [("bare", &bare), ("floor", &floor)] {
                let mut cpu = Cpu::new(other);
                let open = cpu
                    .during(hammer(&client, &other.base, opts.open, pause, duration))
                    .await;
                open.print(&format!("{name}, {} clients pausing {} ms between requests", opts.open, pause.as_millis()));
                cpu.print(open.webhooks as f64, "request");
            }
        }
        for &pause in opts.pauses.iter().filter(|_| opts.open > 0) {
            let mut cpu = Cpu::new(&server);
            let open = cpu
                .during(calls(&client, &server.base, &ids, &pins, opts.open, pause, duration))
                .await;
            open.print(&format!("{} callers pausing {} ms between webhooks", opts.open, pause.as_millis()));
            cpu.print(open.webhooks as f64, "webhook");
        }
        if opts.waiting == 0 {
            return;
        }

        let parked = park(&client, &server.base, &ids, &pins, opts.waiting).await;
        let (rss, peak) = server.memory();
        println!(
            "{parked} callers waiting in the queue: server RSS {:.1} MiB, peak {:.1} MiB (target < 64 MiB)",
            rss as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    });
}

/// Creates a practice and `n` users in one transaction; returns their IDs.
fn seed(db: &Path, pin_key: &SecretKey, audit_key: &SecretKey, n: usize) -> Vec<UserId> {
    let registry = Registry::new(
        Db::open(db).expect("the database"),
        Ok(pin_key.clone()),
        Ok(audit_key.clone()),
        LockPolicy::default(),
        Arc::new(SystemClock),
    )
    .expect("a registry");
    registry.add_practice("Load").expect("a practice");
    let rows: Vec<ImportRow> = (0..n)
        .map(|i| ImportRow {
            line: i + 2,
            practice: "Load".into(),
            user: NewUser {
                user_id: None,
                role: Role::Staff,
                name: format!("Caller {i}"),
                email: None,
                phones: vec![PhoneNumber::parse(&format!("+1555{:07}", i)).expect("a phone")],
            },
        })
        .collect();
    let added = registry
        .import_users(&rows, false, &Origin::cli())
        .expect("users");
    added.into_iter().map(|(_, u)| u.user_id).collect()
}

/// Reads current PINs straight from the database, as only a benchmark
/// holding the key may: viewing through the registry would add audited
/// writes that are not part of the load being measured.
struct Pins {
    conn: std::sync::Mutex<rusqlite::Connection>,
    cipher: PinCipher,
}

impl Pins {
    fn open(db: &Path, key: &SecretKey) -> Self {
        let conn = rusqlite::Connection::open(db).expect("a reader");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("a busy timeout");
        Self {
            conn: std::sync::Mutex::new(conn),
            cipher: PinCipher::new(key),
        }
    }

    fn current(&self, user: UserId) -> String {
        let conn = self.conn.lock().expect("the reader");
        let row = pinline::storage::pins::get(&conn, user)
            .expect("a read")
            .expect("a PIN");
        let pin = self
            .cipher
            .open(user, row.version, &row.sealed)
            .expect("a PIN that opens");
        pin.reveal().to_owned()
    }
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn pinline(binary: &Path, db: &Path, pin_key: &SecretKey, audit_key: &SecretKey) -> Self {
        let mut command = Command::new(binary);
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--caller-failures-per-hour",
                "1000000",
            ])
            .arg("--db")
            .arg(db)
            .env("PINLINE_PIN_KEY", pin_key.to_base64())
            .env("PINLINE_AUDIT_KEY", audit_key.to_base64())
            .env("TWILIO_AUTH_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .env_remove("PINLINE_PUBLIC_URL");
        Self::spawn(command, "pinline listening on http://")
    }

    /// The bare server; with `floor`, the floor server on that database.
    fn bare(floor: Option<&Path>) -> Self {
        let mut command = Command::new(std::env::current_exe().expect("this benchmark"));
        command.env(BARE_ENV, "1");
        if let Some(db) = floor {
            command.env(FLOOR_ENV, db);
        }
        Self::spawn(command, "bare listening on http://")
    }

    fn spawn(mut command: Command, banner: &str) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("a server process");
        let mut lines = BufReader::new(child.stdout.take().expect("its output")).lines();
        let address = loop {
            let line = lines.next().expect("the server to start").expect("a line");
            if let Some(address) = line.strip_prefix(banner) {
                break address.to_owned();
            }
        };
        Self {
            child,
            base: format!("http://{address}"),
        }
    }

    /// Resident and peak resident memory, in KiB.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

/// CPU time used by a server and by this load generator over the runs
/// against it: unlike rates, it hardly depends on what else shares the
/// machine.
struct Cpu {
    server: String,
    used: (f64, f64),
}

impl Cpu {
    fn new(server: &Server) -> Self {
        Self {
            server: server.child.id().to_string(),
            used: (0.0, 0.0),
        }
    }

    /// Runs `run`, adding the CPU time used meanwhile.
    async fn during<T>(&mut self, run: impl std::future::Future<Output = T>) -> T {
        let started = (cpu_seconds(&self.server), cpu_seconds("self"));
        let out = run.await;
        self.used.0 += cpu_seconds(&self.server) - started.0;
        self.used.1 += cpu_seconds("self") - started.1;
        out
    }

    fn print(&self, requests: f64, what: &str) {
        let (server, generator) = self.used;
        let per = |seconds: f64| seconds * 1e6 / requests.max(1.0);
        println!(
            "  CPU per {what}: server {:.0} µs, load generator {:.0} µs",
            per(server),
            per(generator)
        );
    }
}

/// User plus system CPU seconds of process `pid` (or `self`).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name, in parentheses, may hold spaces; fields count
    // from after it. utime and stime are fields 14 and 15, in ticks.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TwiML document the size of pinline's PIN prompt, answered with no
/// storage: the ceiling of what the HTTP stack alone can do here. With
/// `floor`, each request first commits a 1 KiB row (one of 10,000, in
/// turn) through pinline's batching writer on that database. A request to
/// `/twiml?disk` is answered once its row is on disk, as the PIN entry and
/// the status callback are; the others at its commit, as steps that audit
/// nothing are. That is the least a call's webhooks can cost with its
/// verification durable before the answer.
fn bare_server(floor: Option<std::path::PathBuf>) {
    use axum::routing::post;
    use std::sync::atomic::{AtomicU64, Ordering};
    let twiml: &'static str = Box::leak(
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Gather input=\"dtmf\" \
             action=\"http://127.0.0.1:8080/voice/pin?step=2\" method=\"POST\" numDigits=\"4\" \
             timeout=\"6\" actionOnEmptyResult=\"true\"><Say voice=\"Polly.Joanna\" \
             language=\"en-US\">{}</Say></Gather><Redirect method=\"POST\">\
             http://127.0.0.1:8080/voice/pin?step=2</Redirect></Response>",
            "Thank you. Now please enter your four-digit Support PIN."
        )
        .into_boxed_str(),
    );
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let db = floor.map(|path| Arc::new(Db::open(&path).expect("the floor's database")));
    let written = Arc::new(AtomicU64::new(0));
    let row = Arc::new("x".repeat(1024));
    runtime.block_on(async move {
        let app = axum::Router::new().route(
            "/twiml",
            post(move |uri: axum::http::Uri| async move {
                if let Some(db) = &db {
                    let key = written.fetch_add(1, Ordering::Relaxed) % 10_000;
                    let row = row.clone();
                    let durability = if uri.query() == Some("disk") {
                        Durability::OnDisk
                    } else {
                        Durability::OnDiskIfAudited
                    };
                    db.submit_with(durability, move |conn| {
                        pinline::storage::meta::set(conn, &format!("floor-{key}"), &row)?;
                        Ok::<_, pinline::storage::StorageError>(())
                    })
                    .await
                    .expect("a committed row");
                }
                ([("content-type", "text/xml")], twiml)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        println!(
            "bare listening on http://{}",
            listener.local_addr().expect("an address")
        );
        axum::serve(listener, app).await.expect("the bare server");
    });
}

/// `connections` clients posting to a bare or floor server for `duration`,
/// each pausing `pause` before a request. Each request is built, signed
/// and read as pinline's are, so that the runs differ only in the server;
/// two in five go to `/twiml?disk`, which only the floor tells apart.
async fn hammer(
    client: &reqwest::Client,
    base: &str,
    connections: usize,
    pause: Duration,
    duration: Duration,
) -> Tally {
    // Two requests in five wait for the disk, as in a call.
    let (url, on_disk) = (format!("{base}/twiml"), format!("{base}/twiml?disk"));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..connections {
        let (client, base, url, on_disk) = (
            client.clone(),
            base.to_owned(),
            url.clone(),
            on_disk.clone(),
        );
        tasks.spawn(async move {
            stagger(i, connections, pause).await;
            let mut tally = Tally::default();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let mut caller = Caller {
                    client: &client,
                    base: &base,
                    sid: call_sid(i, n),
                    from: format!("+1555{i:07}"),
                    pause,
                    tally: &mut tally,
                };
                if matches!(n % 5, 2 | 4) {
                    caller.post("?disk", &on_disk, Some("1234")).await;
                } else {
                    caller.post("plain", &url, Some("1234")).await;
                }
            }
            tally
        });
    }
    let mut total = Tally::default();
    for tally in tasks.join_all().await {
        total.merge(tally);
    }
    total.elapsed = started.elapsed();
    total
}

#[derive(Default)]
struct Tally {
    calls: u64,
    webhooks: u64,
    errors: u64,
    elapsed: Duration,
    latencies: BTreeMap<&'static str, Vec<Duration>>,
}

impl Tally {
    fn calls_per_sec(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn answered(&self) -> u64 {
        self.webhooks - self.errors
    }

    fn webhooks_per_sec(&self) -> f64 {
        self.webhooks as f64 / self.elapsed.as_secs_f64()
    }

    fn merge(&mut self, other: Tally) {
        self.elapsed += other.elapsed;
        self.calls += other.calls;
        self.webhooks += other.webhooks;
        self.errors += other.errors;
        for (step, mut l) in other.latencies {
            self.latencies.entry(step).or_default().append(&mut l);
        }
    }

    fn print(&self, title: &str) {
        println!("{title}:");
        if self.calls == 0 {
            println!(
                "  {:.0} requests/s, {} errors",
                self.webhooks_per_sec(),
                self.errors
            );
        } else {
            println!(
                "  {:.0} calls/s, {:.0} webhooks/s, {} errors",
                self.calls_per_sec(),
                self.webhooks_per_sec(),
                self.errors
            );
        }
        let mut all: Vec<Duration> = self.latencies.values().flatten().copied().collect();
        for (step, latencies) in self
            .latencies
            .iter()
            .chain([(&"all", &std::mem::take(&mut all))])
        {
            let mut sorted = latencies.clone();
            sorted.sort();
            let at = |q: f64| {
                sorted
                    .get(((sorted.len() as f64 - 1.0) * q) as usize)
                    .copied()
                    .unwrap_or_default()
            };
            println!(
                "  {step:<9} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} requests)",
                at(0.50).as_secs_f64() * 1e3,
                at(0.99).as_secs_f64() * 1e3,
                sorted.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
                sorted.len()
            );
        }
    }
}

/// One caller's signed webhooks, following the action URLs.
struct Caller<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    sid: String,
    from: String,
    /// Think time before each webhook, as a caller listens and keys in.
    pause: Duration,
    tally: &'a mut Tally,
}

impl Caller<'_> {
    async fn post(
        &mut self,
        step: &'static str,
        url: &str,
        digits: Option<&str>,
    ) -> Option<String> {
        let mut params = vec![
            ("CallSid".to_owned(), self.sid.clone()),
            ("From".to_owned(), self.from.clone()),
            ("To".to_owned(), "+18005550100".to_owned()),
            ("CallStatus".to_owned(), "in-progress".to_owned()),
        ];
        if let Some(d) = digits {
            params.push(("Digits".to_owned(), d.to_owned()));
        }
        let body = form(&params);
        let signature = pinline::signature::sign(TOKEN.as_bytes(), url, &params);
        self.think().await;
        let started = Instant::now();
        let response = self
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(body)
            .send()
            .await;
        let text = match response {
            Ok(r) if r.status().is_success() => r.text().await.ok(),
            _ => None,
        };
        self.tally
            .latencies
            .entry(step)
            .or_default()
            .push(started.elapsed());
        self.tally.webhooks += 1;
        if text.is_none() {
            self.tally.errors += 1;
        }
        text
    }

    async fn think(&self) {
        // A zero sleep would still wait for the timer's next tick.
        if !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
    }

    /// Incoming, user ID, PIN, menu 1 (queued); true when routed.
    async fn call_into_queue(&mut self, user: UserId, pin: &str) -> bool {
        let incoming = format!("{}/voice/incoming", self.base);
        let Some(greeting) = self.post("incoming", &incoming, None).await else {
            return false;
        };
        let Some(ask) = self
            .post("user_id", &action(&greeting), Some(&format!("{user}#")))
            .await
        else {
            return false;
        };
        let Some(menu) = self.post("pin", &action(&ask), Some(pin)).await else {
            return false;
        };
        if !menu.contains("press 1") {
            self.tally.errors += 1;
            return false;
        }
        self.post("menu", &action(&menu), Some("1"))
            .await
            .is_some_and(|routed| routed.contains("<Conference"))
    }

    async fn hang_up(&mut self) {
        let url = format!("{}/voice/status", self.base);
        let params = [
            ("CallSid".to_owned(), self.sid.clone()),
            ("From".to_owned(), self.from.clone()),
            ("CallStatus".to_owned(), "completed".to_owned()),
        ];
        let signature = pinline::signature::sign(TOKEN.as_bytes(), &url, &params);
        self.think().await;
        let started = Instant::now();
        let ok = self
            .client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(form(&params))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        self.tally
            .latencies
            .entry("status")
            .or_default()
            .push(started.elapsed());
        self.tally.webhooks += 1;
        if !ok {
            self.tally.errors += 1;
        }
    }
}

/// Spreads the first requests of `of` clients that pause `pause` evenly
/// over one pause, as callers' calls begin at no common instant. Started
/// together, they would keep arriving in bursts of all of them at once,
/// and every latency would include the queue of its own burst.
async fn stagger(i: usize, of: usize, pause: Duration) {
    if !pause.is_zero() {
        let share = u32::try_from(i).unwrap_or(u32::MAX);
        let whole = u32::try_from(of.max(1)).unwrap_or(u32::MAX);
        tokio::time::sleep(pause * share / whole).await;
    }
}

fn form(params: &[(String, String)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        out.append_pair(k, v);
    }
    out.finish()
}

fn action(twiml: &str) -> String {
    let start = twiml.find("action=\"").map_or(0, |i| i + 8);
    let end = start + twiml[start..].find('"').unwrap_or(0);
    twiml[start..end].to_owned()
}

fn call_sid(caller: usize, n: u64) -> String {
    format!("CA{caller:016x}{n:016x}")
}

/// `callers` callers making whole verified calls for `duration`, each
/// pausing `pause` between webhooks.
async fn calls(
    client: &reqwest::Client,
    base: &str,
    ids: &[UserId],
    pins: &Arc<Pins>,
    callers: usize,
    pause: Duration,
    duration: Duration,
) -> Tally {
    static ROUND: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let round = ROUND.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let deadline = started + duration;
    let total = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, &user) in ids.iter().take(callers).enumerate() {
        let (client, base, pins, total) =
            (client.clone(), base.to_owned(), pins.clone(), total.clone());
        tasks.spawn(async move {
            stagger(i, callers, pause).await;
            let mut tally = Tally::default();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let pins = pins.clone();
                let pin = tokio::task::spawn_blocking(move || pins.current(user))
                    .await
                    .expect("a PIN");
                let mut caller = Caller {
                    client: &client,
                    base: &base,
                    sid: call_sid(i, (round << 40) | n),
                    from: format!("+1555{i:07}"),
                    pause,
                    tally: &mut tally,
                };
                let routed = caller.call_into_queue(user, &pin).await;
                caller.hang_up().await;
                if routed {
                    tally.calls += 1;
                }
            }
            total.lock().await.merge(tally);
        });
    }
    tasks.join_all().await;
    let mut tally = std::mem::take(&mut *total.lock().await);
    tally.elapsed = started.elapsed();
    tally
}

/// Routes `n` callers into the queue and leaves them waiting.
async fn park(
    client: &reqwest::Client,
    base: &str,
    ids: &[UserId],
    pins: &Arc<Pins>,
    n: usize,
) -> usize {
    let mut parked = 0;
    let mut tally = Tally::default();
    for (i, &user) in ids.iter().take(n).enumerate() {
        let pins2 = pins.clone();
        let pin = tokio::task::spawn_blocking(move || pins2.current(user))
            .await
            .expect("a PIN");
        let mut caller = Caller {
            client,
            base,
            sid: call_sid(i, u64::MAX),
            from: format!("+1555{i:07}"),
            pause: Duration::ZERO,
            tally: &mut tally,
        };
        if caller.call_into_queue(user, &pin).await {
            parked += 1;
        }
    }
    parked
}
