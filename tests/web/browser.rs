//! The pages in headless Chromium, driven over WebDriver (chromedriver):
//! a provider signs in with a link, views and renews their PIN and sees
//! both in the audit log, approves a case; a staff member sees their
//! pending request; an agent watches the queue update live and claims a
//! caller routed through the real phone flow. A screenshot of each page
//! goes to `target/screenshots/`.
//!
//! Where Chromium or chromedriver is missing the test says so on standard
//! error and passes; set `CHROMIUM` and `CHROMEDRIVER` to use other paths.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use pinline::domain::account::{Role, User};
use pinline::domain::case::CaseStatus;
use pinline::registry::Origin;
use serde_json::json;

use crate::harness::Site;

/// The browser's own time zone: the page's script should pick it up.
const BROWSER_ZONE: &str = "America/Chicago";

fn tool(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// Printed past the test harness's capture, so a skip is always visible.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn screenshot_dir() -> PathBuf {
    let target = option_env!("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// chromedriver on a free local port, ended when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(driver: &PathBuf) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .env("TZ", BROWSER_ZONE)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(&status).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            child,
            url,
            _profile: tempfile::tempdir().unwrap(),
        }
    }

    async fn connect(&self, chromium: &PathBuf) -> Client {
        let profile = format!("--user-data-dir={}", self._profile.path().display());
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1200,1600",
            &profile,
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium, "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

/// The browser, with the waits a page needs.
struct Page<'a> {
    client: &'a Client,
    site: &'a Site,
    shots: PathBuf,
}

impl Page<'_> {
    async fn goto(&self, path: &str) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.site.base)
        };
        self.client.goto(&url).await.unwrap();
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Waits until `css` matches an element whose text contains `text`.
    async fn wait_text(&self, css: &str, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(found) = element.text().await
                && found.contains(text)
            {
                return found;
            }
            if Instant::now() > deadline {
                let source = self.client.source().await.unwrap_or_default();
                panic!("no {css} with {text:?} in:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait(&self, css: &str) {
        self.wait_text(css, "").await;
    }

    async fn click(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        element.click().await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        element.text().await.unwrap()
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        element.send_keys(text).await.unwrap();
    }

    /// The audit log's rows as (event, channel), newest first.
    async fn audit_rows(&self) -> Vec<(String, String)> {
        let rows = self
            .client
            .find_all(Locator::Css("#audit tbody tr"))
            .await
            .unwrap();
        let mut out = Vec::new();
        for row in rows {
            let event = row.attr("data-event").await.unwrap().unwrap_or_default();
            let channel = row.attr("data-channel").await.unwrap().unwrap_or_default();
            out.push((event, channel));
        }
        out
    }

    async fn sign_out(&self) {
        self.click("header.site form[action=\"/logout\"] button")
            .await;
        self.wait_text("h1", "Sign in").await;
    }
}

struct People {
    provider: User,
    other_provider: User,
    staff: User,
    caller: User,
}

fn people(site: &Site) -> People {
    let practice = "Bayview Pediatrics";
    People {
        provider: site.user(practice, Role::Provider, "Dr. Rosa Diaz", "+14155550401"),
        other_provider: site.user(practice, Role::Provider, "Dr. Kim Park", "+14155550404"),
        staff: site.user(practice, Role::Staff, "Sam Ortiz", "+14155550402"),
        caller: site.user(practice, Role::Staff, "Lee Chen", "+14155550403"),
    }
}

#[tokio::test]
async fn people_use_the_pages_in_chromium() {
    let (chromium, driver) = (
        tool("CHROMIUM", "/usr/bin/chromium"),
        tool("CHROMEDRIVER", "/usr/bin/chromedriver"),
    );
    if !chromium.exists() || !driver.exists() {
        say(&format!(
            "browser tests SKIPPED: {} or {} not found (apt-get install chromium chromium-driver)",
            chromium.display(),
            driver.display()
        ));
        return;
    }
    let started = Instant::now();
    let site = Site::start().await;
    let driver = Driver::start(&driver).await;
    let client = driver.connect(&chromium).await;
    let page = Page {
        client: &client,
        site: &site,
        shots: screenshot_dir(),
    };
    let outcome = std::panic::AssertUnwindSafe(scenarios(&page))
        .catch_unwind()
        .await;
    if outcome.is_err() {
        page.shot("failure").await;
    }
    let shots = page.shots.clone();
    let _ = client.close().await;
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    say(&format!(
        "browser tests: ran in headless Chromium in {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    ));
}

async fn scenarios(page: &Page<'_>) {
    let site = page.site;
    let people = people(site);
    let origin = Origin::cli();
    let (for_provider, _) = site
        .registry
        .open_case(people.staff.user_id, people.provider.user_id, &origin)
        .unwrap();
    let (still_pending, _) = site
        .registry
        .open_case(people.staff.user_id, people.other_provider.user_id, &origin)
        .unwrap();

    provider_views_renews_and_approves(page, &people, &for_provider.case_number.to_string()).await;
    staff_sees_pending_requests(page, &people, &still_pending.case_number.to_string()).await;
    agent_watches_and_claims(page, &people).await;
}

async fn provider_views_renews_and_approves(page: &Page<'_>, people: &People, case: &str) {
    let site = page.site;
    page.goto(&site.login_link(&people.provider)).await;
    page.shot("01-sign-in-link").await;
    page.click("#sign-in").await;
    page.wait_text("h1", "Account Settings › Profile").await;
    // The page's script reloads it once in the browser's own zone.
    page.wait_text("#audit caption", BROWSER_ZONE).await;
    let hidden = page.client.find(Locator::Css("#pin-value")).await.unwrap();
    assert_eq!(
        hidden.attr("data-state").await.unwrap().as_deref(),
        Some("hidden")
    );
    assert!(page.text("#footer-pin").await.contains("••••"));
    page.shot("02-account").await;

    page.click("#view-pin").await;
    page.wait("#pin-value[data-state=\"shown\"]").await;
    let first = page.text("#pin-value").await;
    assert!(
        first.len() == 4 && first.bytes().all(|b| b.is_ascii_digit()),
        "{first}"
    );
    assert_eq!(
        page.text("#footer-pin").await,
        first,
        "the footer shows it too"
    );
    assert_eq!(page.audit_rows().await[0], ("viewed".into(), "web".into()));
    page.shot("03-pin-viewed").await;

    page.click("#new-pin").await;
    page.wait_text(".notice", "new Support PIN").await;
    let second = page.text("#pin-value").await;
    assert_ne!(second, first, "a new PIN");
    let rows = page.audit_rows().await;
    assert_eq!(rows[0], ("viewed".into(), "web".into()));
    assert_eq!(rows[1], ("generated".into(), "web".into()));
    assert!(
        page.text("#audit tbody tr:nth-child(2)")
            .await
            .contains("requested")
    );
    page.shot("04-new-pin").await;

    page.click(&format!(
        "#awaiting li[data-case=\"{case}\"] button[value=\"approve\"]"
    ))
    .await;
    page.wait_text(".notice", &format!("You approved case {case}"))
        .await;
    assert_eq!(page.count(&format!("li[data-case=\"{case}\"]")).await, 0);
    let number = case.parse().unwrap();
    assert_eq!(
        site.registry.case(&number).unwrap().status,
        CaseStatus::Approved
    );
    page.shot("05-case-approved").await;

    page.client.set_window_size(390, 844).await.unwrap();
    page.goto(&format!("/users/{}", people.provider.user_id))
        .await;
    page.wait_text("h1", "Profile").await;
    page.shot("06-account-phone").await;
    page.client.set_window_size(1200, 1600).await.unwrap();

    assert_eq!(
        site.pin(&people.provider),
        second,
        "the page showed the real PIN"
    );
    page.sign_out().await;
    page.wait_text(".notice", "signed out").await;
}

async fn staff_sees_pending_requests(page: &Page<'_>, people: &People, case: &str) {
    page.goto(&page.site.login_link(&people.staff)).await;
    page.click("#sign-in").await;
    page.wait_text("h1", "Staff Account Information").await;
    page.wait_text("#audit caption", BROWSER_ZONE).await;
    let pending = page
        .text(&format!("#pending li[data-case=\"{case}\"]"))
        .await;
    assert!(pending.contains("Dr. Kim Park"), "{pending}");
    assert_eq!(page.count("#awaiting").await, 0, "staff approve nothing");
    page.shot("07-staff-account").await;
    page.sign_out().await;
}

async fn agent_watches_and_claims(page: &Page<'_>, people: &People) {
    let site = page.site;
    let verified = site.route_verified(&people.caller).await;
    let (agent, passcode) = site.agent("Ana Lopez");

    page.goto("/agent/login").await;
    page.type_into("#agent_id", &agent).await;
    page.type_into("#passcode", &passcode).await;
    page.shot("08-agent-sign-in").await;
    page.click("#agent-sign-in").await;
    page.wait_text("h1", "Agent console").await;
    page.wait(&format!("li.caller[data-call=\"{verified}\"]"))
        .await;
    page.wait_text("#class-verified", "Verified (1)").await;
    page.shot("09-console").await;

    // A caller routed now shows up without a reload.
    page.client
        .execute("window.pinlineMarker = 42; return null;", vec![])
        .await
        .unwrap();
    let unverified = site.route_unverified("+14155550499").await;
    page.wait(&format!("li.caller[data-call=\"{unverified}\"]"))
        .await;
    page.wait_text("#queue-summary", "1 unverified").await;
    let marker = page
        .client
        .execute("return window.pinlineMarker || null;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!(42), "the page was not reloaded");
    page.shot("10-console-live").await;

    page.click("#claim").await;
    let mine = page.wait_text("#my-caller", "Lee Chen").await;
    assert!(
        mine.contains("claimed by you") && mine.contains("own account"),
        "{mine}"
    );
    let snapshot = site.registry.queue_snapshot().unwrap();
    let claimed = snapshot
        .calls
        .iter()
        .find(|c| c.call_sid == verified)
        .unwrap();
    assert_eq!(claimed.claimed_by.map(|a| a.to_string()), Some(agent));
    let pin = site.pin(&people.caller);
    let source = page.client.source().await.unwrap();
    assert!(
        !source.contains(&format!(">{pin}<")),
        "an agent never sees a PIN"
    );
    page.shot("11-claimed").await;
}
