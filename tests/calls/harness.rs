//! A phone line under test: the real router over real HTTP on a
//! temporary database, and simulated calls that follow its TwiML.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chrono::DateTime;
use pinline::clock::ManualClock;
use pinline::crypto::SecretKey;
use pinline::domain::account::{Role, User};
use pinline::domain::lock::LockPolicy;
use pinline::ivr::{Ivr, IvrConfig};
use pinline::prompts::PromptCatalog;
use pinline::registry::{Origin, Registry};
use pinline::server::{self, AppState};
use pinline::storage::Db;
use reqwest::StatusCode;

pub const TOKEN: &str = "test-auth-token";
pub const CASE_TOKEN: &str = "test-case-token";

pub struct Line {
    pub _dir: tempfile::TempDir,
    pub path: std::path::PathBuf,
    pub pin_key: SecretKey,
    pub audit_key: SecretKey,
    pub clock: Arc<ManualClock>,
    pub registry: Arc<Registry>,
    pub config: IvrConfig,
    pub server: Option<Running>,
    pub client: reqwest::Client,
}

pub struct Running {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Line {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut IvrConfig)) -> Self {
        Self::start_at(tempfile::tempdir().unwrap(), tune).await
    }

    /// A line whose database lives under `parent`, a file system the test
    /// can make fail.
    pub async fn start_in(parent: &std::path::Path) -> Self {
        Self::start_at(tempfile::tempdir_in(parent).unwrap(), |_| {}).await
    }

    async fn start_at(dir: tempfile::TempDir, tune: impl FnOnce(&mut IvrConfig)) -> Self {
        let path = dir.path().join("calls.db");
        let (pin_key, audit_key) = (SecretKey::generate(), SecretKey::generate());
        let clock = Arc::new(ManualClock::new(
            DateTime::parse_from_rfc3339("2026-05-04T15:00:00Z")
                .unwrap()
                .to_utc(),
        ));
        let registry = Arc::new(open_registry(&path, &pin_key, &audit_key, &clock));
        let mut config = IvrConfig::new("http://placeholder");
        tune(&mut config);
        let mut line = Self {
            _dir: dir,
            path,
            pin_key,
            audit_key,
            clock,
            registry,
            config,
            server: None,
            client: reqwest::Client::new(),
        };
        line.serve().await;
        line
    }

    /// Starts a server on the database, as a restarted process would.
    pub async fn serve(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let registry = Arc::new(open_registry(
            &self.path,
            &self.pin_key,
            &self.audit_key,
            &self.clock,
        ));
        self.registry = registry.clone();
        let prompts = Arc::new(
            PromptCatalog::load(
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("voice-prompts"),
            )
            .unwrap(),
        );
        let config = IvrConfig {
            base_url: base.clone(),
            ..self.config.clone()
        };
        let ivr = Ivr::new(registry, prompts, config, self.clock.clone());
        let state = AppState::new(ivr, TOKEN, &base).with_case_token(Some(CASE_TOKEN.into()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, state, async {
            let _ = stopped.await;
        }));
        self.server = Some(Running {
            base,
            stop: Some(stop),
            task,
        });
    }

    pub async fn restart(&mut self) {
        let mut running = self.server.take().unwrap();
        let _ = running.stop.take().unwrap().send(());
        running.task.await.unwrap().unwrap();
        self.serve().await;
    }

    pub fn base(&self) -> &str {
        &self.server.as_ref().unwrap().base
    }

    pub fn user(&self, role: Role, phone: &str) -> User {
        self.user_named("Bayview Pediatrics", role, "Morgan Ellis", phone)
    }

    /// A user in `practice` (created if need be).
    pub fn user_named(&self, practice: &str, role: Role, name: &str, phone: &str) -> User {
        crate::support::add_user(&self.registry, practice, role, name, phone)
    }

    pub fn pin(&self, user: &User) -> String {
        self.registry
            .view_pin(user.user_id, &Origin::cli())
            .unwrap()
            .reveal()
            .to_owned()
    }

    pub fn call(&self, from: &str) -> Call<'_> {
        Call {
            line: self,
            sid: format!("CA{:032x}", rand_u128()),
            from: from.to_owned(),
            last: String::new(),
        }
    }

    /// Posts a signed form to `url` (absolute), with `header` naming the
    /// signature header.
    pub async fn post_signed(
        &self,
        url: &str,
        params: &[(String, String)],
        header: &str,
        token: &str,
    ) -> (StatusCode, String) {
        let body = encode(params);
        let signature = pinline::signature::sign(token.as_bytes(), url, params);
        let response = self
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(header, signature)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.text().await.unwrap())
    }

    pub fn call_rows(&self) -> i64 {
        let conn = rusqlite::Connection::open(&self.path).unwrap();
        conn.query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
            .unwrap()
    }

    pub fn call_state(&self, sid: &str) -> String {
        let conn = rusqlite::Connection::open(&self.path).unwrap();
        conn.query_row(
            "SELECT state || '|' || step FROM calls WHERE call_sid = ?1",
            [sid],
            |r| r.get(0),
        )
        .unwrap_or_default()
    }

    /// The queue class and agent context stored for a routed call.
    pub fn queue_context(&self, sid: &str) -> Option<(String, serde_json::Value)> {
        let conn = rusqlite::Connection::open(&self.path).unwrap();
        pinline::storage::calls::queue_context(&conn, sid)
            .unwrap()
            .map(|(class, json)| (class, serde_json::from_str(&json).unwrap()))
    }

    /// Posts a case reply as the case system would.
    pub async fn case_reply(
        &self,
        case: &str,
        body: serde_json::Value,
        token: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = self
            .client
            .post(format!("{}/api/v1/cases/{case}/replies", self.base()))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// A new agent: (agent ID, passcode).
    pub fn agent(&self, name: &str) -> (String, String) {
        let (agent, passcode) = self.registry.add_agent(name).unwrap();
        (agent.agent_id.to_string(), passcode)
    }

    /// A bearer token for the agent.
    pub fn agent_token(&self, agent: &str) -> String {
        let id = agent.parse().unwrap();
        self.registry.issue_agent_token(id).unwrap().token
    }

    /// Calls the API with an optional bearer token.
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let url = format!("{}{path}", self.base());
        let mut request = match method {
            "GET" => self.client.get(url),
            _ => self.client.post(url),
        };
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// The status `/healthz` answers.
    pub async fn health(&self) -> StatusCode {
        self.client
            .get(format!("{}/healthz", self.base()))
            .send()
            .await
            .unwrap()
            .status()
    }

    pub fn events(&self, user: &User) -> Vec<pinline::domain::audit::StoredEvent> {
        self.registry.audit_events(user.user_id, 1000, 0).unwrap()
    }
}

/// What a server logged, as text lines, for tests that check how often a
/// fault is logged. Only the threads of [`Logs::runtime`] write here, so
/// the other tests running in this binary cannot add lines to it.
#[derive(Clone, Default)]
pub struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    /// A runtime (like `#[tokio::test(flavor = "multi_thread")]`'s) whose
    /// threads, blocking ones included, log here.
    pub fn runtime(&self) -> tokio::runtime::Runtime {
        let logs = self.clone();
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || logs.clone())
                .finish(),
        );
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                // Dropping the guard would end the default; the thread
                // lives no longer than the runtime, which is what we want.
                std::mem::forget(tracing::dispatcher::set_default(&dispatch));
            })
            .build()
            .unwrap()
    }

    /// How many lines contain `text`.
    pub fn count(&self, text: &str) -> usize {
        self.text().lines().filter(|l| l.contains(text)).count()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The line logged when a fault starts, and when it clears.
pub const FAULT_LOGGED: &str = "database fault:";
pub const FAULT_CLEARED: &str = "database fault cleared";

pub fn open_registry(
    path: &std::path::Path,
    pin: &SecretKey,
    audit: &SecretKey,
    clock: &Arc<ManualClock>,
) -> Registry {
    Registry::new(
        Db::open(path).unwrap(),
        Ok(pin.clone()),
        Ok(audit.clone()),
        LockPolicy::default(),
        clock.clone(),
    )
    .unwrap()
}

pub fn rand_u128() -> u128 {
    let key = SecretKey::generate();
    u128::from_le_bytes(key.bytes()[..16].try_into().unwrap())
}

pub fn encode(params: &[(String, String)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        form.append_pair(k, v);
    }
    form.finish()
}

/// One simulated phone call, following the action URLs the server gives.
pub struct Call<'a> {
    pub line: &'a Line,
    pub sid: String,
    pub from: String,
    pub last: String,
}

impl Call<'_> {
    pub fn params(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = [
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("CallSid", self.sid.as_str()),
            ("From", self.from.as_str()),
            ("To", "+18005550100"),
            ("CallStatus", "in-progress"),
            ("Direction", "inbound"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        params
    }

    pub async fn post(&mut self, url: &str, extra: &[(&str, &str)]) -> String {
        let (status, body) = self
            .line
            .post_signed(url, &self.params(extra), "X-Twilio-Signature", TOKEN)
            .await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        assert!(
            body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{body}"
        );
        self.last = body.clone();
        body
    }

    /// Dials the agent line.
    pub async fn dial_agent_line(&mut self) -> String {
        let url = format!("{}/voice/agent", self.line.base());
        self.post(&url, &[]).await
    }

    /// Dials the agent line and signs in; returns the first offer (or the
    /// empty-queue message).
    pub async fn sign_in(&mut self, agent: &str, passcode: &str) -> String {
        self.dial_agent_line().await;
        self.press(&format!("{agent}#")).await;
        self.press(&format!("{passcode}#")).await
    }

    pub async fn start(&mut self) -> String {
        let url = format!("{}/voice/incoming", self.line.base());
        self.post(&url, &[("StirVerstat", "TN-Validation-Passed-A")])
            .await
    }

    /// Answers the current gather with `digits`.
    pub async fn press(&mut self, digits: &str) -> String {
        let url = action(&self.last);
        self.post(&url, &[("Digits", digits)]).await
    }

    /// Lets the current gather time out.
    pub async fn silence(&mut self) -> String {
        let url = action(&self.last);
        self.post(&url, &[]).await
    }

    pub async fn status(&self, status: &str) -> StatusCode {
        let url = format!("{}/voice/status", self.line.base());
        let mut params = self.params(&[]);
        params.retain(|(k, _)| k != "CallStatus");
        params.push(("CallStatus".into(), status.into()));
        self.line
            .post_signed(&url, &params, "X-Twilio-Signature", TOKEN)
            .await
            .0
    }

    /// Keys in the user ID and PIN.
    pub async fn verify(&mut self, user: &User, pin: &str) -> String {
        self.start().await;
        self.press(&format!("{}#", user.user_id)).await;
        self.press(pin).await
    }
}

/// The action URL of the response's gather (or redirect).
pub fn action(twiml: &str) -> String {
    let start = twiml
        .find("action=\"")
        .map(|i| i + 8)
        .or_else(|| twiml.find("<Redirect method=\"POST\">").map(|i| i + 24))
        .unwrap_or_else(|| panic!("no action in {twiml}"));
    let end = start + twiml[start..].find(['"', '<']).unwrap();
    twiml[start..end].replace("&amp;", "&")
}

/// Whether the answer puts the caller in their own conference room to
/// wait for an agent, hearing the hold loop.
pub fn waits_for_agent(twiml: &str) -> bool {
    twiml.contains("<Conference")
        && twiml.contains("/voice/hold")
        && twiml.contains("startConferenceOnEnter=\"false\"")
}

/// What a caller hears when a step cannot be handled at all.
pub fn fallback() -> String {
    let prompts = PromptCatalog::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("voice-prompts"),
    )
    .unwrap();
    pinline::ivr::render::fallback(&prompts, pinline::prompts::Language::EnUs)
}

/// Checks that `twiml` is the fallback: an apology and the queue, with
/// nothing that says or treats the caller as verified.
pub fn assert_fallback(twiml: &str) {
    well_formed_twiml(twiml).unwrap();
    assert_eq!(twiml, fallback(), "the fallback, and nothing else");
    assert!(
        says(twiml, "something went wrong") && says(twiml, "<Enqueue>"),
        "{twiml}"
    );
    assert!(
        !says(twiml, "You're verified") && !says(twiml, "<Conference"),
        "never a verified route: {twiml}"
    );
}

pub fn says(twiml: &str, text: &str) -> bool {
    twiml.contains(text)
}

pub fn wrong(pin: &str) -> String {
    format!("{:04}", (pin.parse::<u32>().unwrap() + 1) % 10_000)
}

pub const RETRY: &str = "don't match our records";
pub const MENU: &str = "For help with your own account, press 1";

impl Call<'_> {
    pub async fn verify_again(&mut self, user: &User, pin: &str) -> String {
        self.press(&format!("{}#", user.user_id)).await;
        self.press(pin).await
    }
}

pub fn strip_steps(twiml: &str) -> String {
    let mut out = String::new();
    let mut rest = twiml;
    while let Some(i) = rest.find("step=") {
        out.push_str(&rest[..i + 5]);
        rest = rest[i + 5..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// Every table's row count and a hash of its contents.
pub fn snapshot(line: &Line) -> std::collections::BTreeMap<String, (i64, u64)> {
    let conn = rusqlite::Connection::open(&line.path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|table| {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
            let columns = stmt.column_count();
            let mut hasher = std::hash::DefaultHasher::new();
            let mut count = 0;
            let mut rows = stmt.query([]).unwrap();
            while let Some(r) = rows.next().unwrap() {
                count += 1;
                for i in 0..columns {
                    format!("{:?}", r.get_ref(i).unwrap()).hash(&mut hasher);
                }
            }
            (table, (count, hasher.finish()))
        })
        .collect()
}

/// Checks that `body` is well-formed XML whose root is `<Response>`.
pub fn well_formed_twiml(body: &str) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_str(body);
    let mut root = None;
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) => {
                if depth == 0 {
                    root.get_or_insert_with(|| e.name().0.to_owned());
                }
                depth += 1;
            }
            Ok(quick_xml::events::Event::Empty(e)) if depth == 0 => {
                root.get_or_insert_with(|| e.name().0.to_owned());
            }
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(error) => return Err(format!("not well-formed: {error}")),
        }
    }
    match root.as_deref() {
        Some("Response") => Ok(()),
        other => Err(format!("root is {other:?}, not Response")),
    }
}
