//! A pinline server under test: the real router over real HTTP on a
//! temporary database with a clock the test moves, callers routed through
//! the real phone flow, and a cookie-keeping HTTP visitor.

use std::collections::HashMap;
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
use reqwest::header::HeaderMap;

pub const TOKEN: &str = "test-auth-token";

pub struct Site {
    pub _dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub registry: Arc<Registry>,
    pub base: String,
    pub client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Site {
    /// A server whose pages are served over plain http.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A server that believes it is reached at `public_url` (cookies then
    /// follow its scheme), still listening on plain http.
    pub async fn start_with(public_url: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.db");
        let clock = Arc::new(ManualClock::new(
            DateTime::parse_from_rfc3339("2026-05-04T15:00:00Z")
                .unwrap()
                .to_utc(),
        ));
        let registry = Arc::new(
            Registry::new(
                Db::open(&path).unwrap(),
                Ok(SecretKey::generate()),
                Ok(SecretKey::generate()),
                LockPolicy::default(),
                clock.clone(),
            )
            .unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let prompts = Arc::new(
            PromptCatalog::load(
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("voice-prompts"),
            )
            .unwrap(),
        );
        let ivr = Ivr::new(
            registry.clone(),
            prompts,
            IvrConfig::new(&base),
            clock.clone(),
        );
        let state = AppState::new(ivr, TOKEN, public_url.unwrap_or(&base));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server::run(listener, state, async {
            let _ = stopped.await;
        }));
        Self {
            _dir: dir,
            clock,
            registry,
            base,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            _stop: stop,
        }
    }

    /// A user in `practice` (created if need be).
    pub fn user(&self, practice: &str, role: Role, name: &str, phone: &str) -> User {
        crate::support::add_user(&self.registry, practice, role, name, phone)
    }

    /// A new agent: (agent ID, passcode).
    pub fn agent(&self, name: &str) -> (String, String) {
        let (agent, passcode) = self.registry.add_agent(name).unwrap();
        (agent.agent_id.to_string(), passcode)
    }

    /// A fresh sign-in link for `user`.
    pub fn login_link(&self, user: &User) -> String {
        let code = self.registry.issue_login_code(user.user_id).unwrap();
        format!("{}/login/{}", self.base, code.as_str())
    }

    /// The PIN, read as an operator would (audited `viewed`, channel cli).
    pub fn pin(&self, user: &User) -> String {
        self.registry
            .view_pin(user.user_id, &Origin::cli())
            .unwrap()
            .reveal()
            .to_owned()
    }

    /// Events about `user` on channel `channel`, newest first.
    pub fn events_on(&self, user: &User, channel: &str) -> Vec<String> {
        self.registry
            .audit_events(user.user_id, 1000, 0)
            .unwrap()
            .into_iter()
            .filter(|e| e.channel == channel)
            .map(|e| e.event)
            .collect()
    }

    pub fn visitor(&self) -> Visitor<'_> {
        Visitor {
            site: self,
            cookies: HashMap::new(),
        }
    }

    /// A caller who verifies with their PIN and asks for help with their
    /// own account, through the real phone flow; returns the CallSid.
    pub async fn route_verified(&self, user: &User) -> String {
        let pin = self.pin(user);
        let mut call = Call::new(self, user.phones[0].as_str());
        call.start().await;
        call.press(&format!("{}#", user.user_id)).await;
        call.press(&pin).await;
        let routed = call.press("1").await;
        assert!(routed.contains("<Conference"), "{routed}");
        call.sid
    }

    /// A caller who fails three times and is routed unverified.
    pub async fn route_unverified(&self, from: &str) -> String {
        let mut call = Call::new(self, from);
        call.start().await;
        for _ in 0..3 {
            call.press("12#").await;
        }
        assert!(call.last.contains("<Conference"), "{}", call.last);
        call.sid
    }
}

/// One answer, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn location(&self) -> &str {
        self.header("location")
    }

    /// The session's form token, from the first form that carries it.
    pub fn csrf(&self) -> String {
        field(&self.body, "csrf")
    }
}

/// The value of the first hidden field named `name`.
pub fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

/// A browser reduced to cookies and requests.
pub struct Visitor<'a> {
    pub site: &'a Site,
    pub cookies: HashMap<String, String>,
}

impl Visitor<'_> {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn read(&mut self, response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        for value in headers.get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let body = response.text().await.unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.site.base)
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let response = self
            .site
            .client
            .get(self.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        let response = self
            .site
            .client
            .post(self.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    /// Opens a sign-in link and presses Sign in.
    pub async fn use_link(&mut self, link: &str) -> Reply {
        let page = self.get(link).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let code = field(&page.body, "code");
        let token = field(&page.body, "form_token");
        self.post("/login", &[("code", &code), ("form_token", &token)])
            .await
    }

    /// Signs in as `user` and returns their page.
    pub async fn sign_in(&mut self, user: &User) -> Reply {
        let link = self.site.login_link(user);
        let signed = self.use_link(&link).await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
        assert_eq!(signed.location(), "/account");
        let mine = self.get("/account").await;
        assert_eq!(mine.location(), format!("/users/{}", user.user_id));
        self.get(mine.location()).await
    }

    /// Signs in as an agent; returns the answer to the sign-in form.
    pub async fn sign_in_agent(&mut self, agent: &str, passcode: &str) -> Reply {
        let page = self.get("/agent/login").await;
        let token = field(&page.body, "form_token");
        self.post(
            "/agent/login",
            &[
                ("agent_id", agent),
                ("passcode", passcode),
                ("form_token", &token),
            ],
        )
        .await
    }
}

/// One simulated phone call, following the action URLs the server gives.
pub struct Call<'a> {
    site: &'a Site,
    pub sid: String,
    from: String,
    pub last: String,
}

impl<'a> Call<'a> {
    pub fn new(site: &'a Site, from: &str) -> Self {
        let key = SecretKey::generate();
        let n = u128::from_le_bytes(key.bytes()[..16].try_into().unwrap());
        Self {
            site,
            sid: format!("CA{n:032x}"),
            from: from.to_owned(),
            last: String::new(),
        }
    }

    async fn post(&mut self, url: &str, extra: &[(&str, &str)]) -> String {
        let mut params: Vec<(String, String)> = [
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("CallSid", self.sid.as_str()),
            ("From", self.from.as_str()),
            ("To", "+18005550100"),
            ("CallStatus", "in-progress"),
            ("Direction", "inbound"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        params.sort();
        let signature = pinline::signature::sign(TOKEN.as_bytes(), url, &params);
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &params {
            form.append_pair(k, v);
        }
        let response = self
            .site
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(form.finish())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        self.last = response.text().await.unwrap();
        self.last.clone()
    }

    pub async fn start(&mut self) -> String {
        let url = format!("{}/voice/incoming", self.site.base);
        self.post(&url, &[]).await
    }

    /// Answers the current gather with `digits`.
    pub async fn press(&mut self, digits: &str) -> String {
        let url = action(&self.last);
        self.post(&url, &[("Digits", digits)]).await
    }
}

/// The action URL of the response's gather.
fn action(twiml: &str) -> String {
    let start = twiml
        .find("action=\"")
        .map(|i| i + 8)
        .unwrap_or_else(|| panic!("no action in {twiml}"));
    let end = start + twiml[start..].find('"').unwrap();
    twiml[start..end].replace("&amp;", "&")
}
