//! `pinline call`, the built binary, against `pinline serve --demo` running
//! as a child process on an ephemeral port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const GREETING: &str = "Thank you for calling support.";
const VERIFIED: &str = "You're verified";

/// A directory for the demo's database, keys and token.
struct Demo {
    dir: tempfile::TempDir,
}

/// `serve --demo`, killed when dropped.
struct Server {
    child: Child,
    address: String,
    /// The demo users' `(user ID, PIN)` as the server printed them.
    users: Vec<(String, String)>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("pinline.db")
    }

    /// The binary in `cwd`, with nothing from this environment leaking in.
    fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pinline"));
        cmd.args(args).current_dir(cwd);
        for var in [
            "TWILIO_AUTH_TOKEN",
            "PINLINE_PUBLIC_URL",
            "PINLINE_DB",
            "PINLINE_PIN_KEY",
            "PINLINE_AUDIT_KEY",
            "PINLINE_PIN_KEY_FILE",
            "PINLINE_AUDIT_KEY_FILE",
            "PINLINE_CASE_TOKEN",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    fn serve(&self) -> Server {
        let child = self
            .command(
                self.dir.path(),
                &["serve", "--demo", "--listen", "127.0.0.1:0"],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Owned by a `Server` at once, so a failed assertion still kills it.
        let mut server = Server {
            child,
            address: String::new(),
            users: Vec::new(),
        };
        let mut stdout = BufReader::new(server.child.stdout.take().unwrap());
        loop {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "server exited");
            if let Some(address) = line.trim().strip_prefix("pinline listening on http://") {
                server.address = address.to_owned();
                // Keep reading so the server never blocks on a full pipe.
                std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
                return server;
            }
            server.users.extend(demo_user(&line));
        }
    }

    /// `pinline call ARGS` run in the demo's directory.
    fn call(&self, args: &[&str]) -> Output {
        let mut all = vec!["call"];
        all.extend_from_slice(args);
        self.command(self.dir.path(), &all).output().unwrap()
    }
}

/// `  12345678  4821  provider  Dr. …` as `serve --demo` prints it.
fn demo_user(line: &str) -> Option<(String, String)> {
    let mut words = line.split_whitespace();
    let (id, pin) = (words.next()?, words.next()?);
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    (id.len() == 8 && pin.len() == 4 && digits(id) && digits(pin))
        .then(|| (id.to_owned(), pin.to_owned()))
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn incoming(server: &Server) -> String {
    format!("http://{}/voice/incoming", server.address)
}

#[test]
fn call_with_keys_walks_a_verified_demo_call() {
    let demo = Demo::new();
    let server = demo.serve();
    let (id, pin) = &server.users[0];
    let keys = format!("{id}#,{pin},1");
    let transcript = stdout(&demo.call(&["--url", &incoming(&server), "--keys", &keys]));
    assert!(transcript.contains(GREETING), "{transcript}");
    assert!(transcript.contains(VERIFIED), "{transcript}");
    assert!(transcript.contains("[conference pinline-"), "{transcript}");
    assert!(
        transcript.contains("> POST http://127.0.0.1:") && transcript.contains("/voice/status"),
        "{transcript}"
    );
}

#[test]
fn call_as_provider_needs_only_the_url_and_the_database() {
    let demo = Demo::new();
    let server = demo.serve();
    let elsewhere = tempfile::tempdir().unwrap();
    let db = demo.db();
    let out = demo
        .command(
            elsewhere.path(),
            &[
                "call",
                "--as",
                "provider",
                "--url",
                &incoming(&server),
                "--db",
                db.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
    let transcript = stdout(&out);
    assert!(
        transcript.contains("Calling as Dr. Avery Quinn (provider"),
        "{transcript}"
    );
    assert!(transcript.contains(GREETING), "{transcript}");
    assert!(transcript.contains(VERIFIED), "{transcript}");
}

#[test]
fn a_refused_request_exits_1_and_names_the_url() {
    let demo = Demo::new();
    let server = demo.serve();
    let url = incoming(&server);
    let out = demo.call(&["--url", &url, "--keys", "1", "--token", "not-the-token"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let expected = format!("error: POST {url}: the server answered 403 Forbidden");
    assert!(stderr.starts_with(&expected), "{stderr}");
}

#[test]
fn bad_input_exits_2_with_one_error_line() {
    let demo = Demo::new();
    // No server needed: the command refuses before calling anyone.
    for args in [
        &["--keys", "12x#", "--token", "t"][..],
        &["--url", "/voice/incoming", "--token", "t"][..],
        &["--keys", "1"][..],
    ] {
        let out = demo.call(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
