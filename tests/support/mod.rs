//! Shared by the test binaries: running the `pinline` binary's commands,
//! starting `pinline serve`, signed Twilio-style form posts, reading
//! TwiML's next URL, and adding users to a registry.

// Each test binary uses its own part of this.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Runs `pinline ARGS --db DB` with keys from the files beside the
/// database, checks that it succeeded, and returns its standard output.
pub fn pinline(db: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pinline"))
        .args(args)
        .arg("--db")
        .arg(db)
        .env_remove("PINLINE_PIN_KEY")
        .env_remove("PINLINE_AUDIT_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `pinline serve` on a free port over `db`, checking webhooks against
/// `token`, with keys from the files beside the database; add to it, then
/// [`Served::spawn`] it.
pub fn serve(db: &Path, token: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pinline"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .env("TWILIO_AUTH_TOKEN", token)
        .env_remove("PINLINE_PUBLIC_URL")
        .env_remove("PINLINE_PIN_KEY")
        .env_remove("PINLINE_AUDIT_KEY");
    command
}

/// A running `pinline serve`, killed if the test ends before it exits.
pub struct Served {
    pub child: Child,
    /// `http://ADDRESS`.
    pub base: String,
}

impl Served {
    /// Starts `command` (from [`serve`]) and waits until it listens.
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("the server starts").unwrap();
            if let Some(address) = line.strip_prefix("pinline listening on ") {
                break address.to_owned();
            }
        };
        Self { child, base }
    }

    /// `kill -9`.
    pub fn kill_hard(mut self) {
        Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts `params` to `url` signed with `token`, as Twilio would; the
/// body of a 2xx answer, or `None` (an error status, or no answer).
pub async fn signed_post(
    client: &reqwest::Client,
    token: &str,
    url: &str,
    params: &[(String, String)],
) -> Option<String> {
    let signature = pinline::signature::sign(token.as_bytes(), url, params);
    let body = {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            form.append_pair(k, v);
        }
        form.finish()
    };
    let response = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", signature)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

/// The action URL of a TwiML answer's gather.
pub fn action(twiml: &str) -> Option<String> {
    let start = twiml.find("action=\"")? + 8;
    let end = start + twiml[start..].find('"')?;
    Some(twiml[start..end].to_owned())
}

/// Adds a user with one phone number to `practice`, creating the practice
/// if need be.
pub fn add_user(
    registry: &pinline::registry::Registry,
    practice: &str,
    role: pinline::domain::account::Role,
    name: &str,
    phone: &str,
) -> pinline::domain::account::User {
    use pinline::domain::account::{NewUser, PhoneNumber};
    let found = registry
        .practices()
        .unwrap()
        .into_iter()
        .find(|p| p.name == practice);
    let practice = match found {
        Some(p) => p,
        None => registry.add_practice(practice).unwrap(),
    };
    let new = NewUser {
        user_id: None,
        role,
        name: name.into(),
        email: None,
        phones: vec![PhoneNumber::parse(phone).unwrap()],
    };
    registry
        .add_user(
            &practice.practice_id.to_string(),
            &new,
            &pinline::registry::Origin::cli(),
        )
        .unwrap()
}
