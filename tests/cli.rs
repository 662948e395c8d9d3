//! The `pinline` binary against a temporary database: output, exit
//! status, and that bad input writes nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

struct Pinline {
    dir: tempfile::TempDir,
}

impl Pinline {
    /// A fresh directory with keys and one practice.
    fn new() -> Self {
        let p = Self::bare();
        p.ok(&["key", "init"]);
        p.ok(&["practice", "add", "Harbor Health"]);
        p
    }

    fn bare() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("pinline.db")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pinline"));
        cmd.args(args).current_dir(self.dir.path());
        for var in [
            "TWILIO_AUTH_TOKEN",
            "PINLINE_PUBLIC_URL",
            "PINLINE_DB",
            "PINLINE_PIN_KEY",
            "PINLINE_AUDIT_KEY",
            "PINLINE_PIN_KEY_FILE",
            "PINLINE_AUDIT_KEY_FILE",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command with `stdin` as its standard input.
    fn with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail with status 2 and one error line.
    fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing on stdout");
        stderr.lines().next().unwrap().to_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn add_user(&self, role: &str) -> String {
        self.ok(&[
            "user",
            "add",
            "--practice",
            "Harbor Health",
            "--role",
            role,
            "--name",
            "Robin Hart",
        ])
        .trim()
        .to_owned()
    }

    /// What a write would change: the users and the audit head.
    fn state(&self) -> (String, String) {
        (
            self.ok(&["user", "list", "--json"]),
            self.ok(&["audit", "head"]),
        )
    }

    fn sql(&self, sql: &str) {
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        conn.execute_batch(
            "DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete;",
        )
        .unwrap();
        conn.execute_batch(sql).unwrap();
    }
}

#[test]
fn practice_add_prints_the_id_or_json() {
    let p = Pinline::new();
    assert_eq!(p.ok(&["practice", "add", "Second Street"]).trim(), "2");
    let made = p.json(&["practice", "add", "Third", "--json"]);
    assert_eq!(made["practice_id"], 3);
    let listed = p.json(&["practice", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let line = p.refused(&["practice", "add", "harbor health"]);
    assert!(line.contains("exists already"), "{line}");
}

#[test]
fn user_add_prints_the_new_user_id_and_list_shows_it() {
    let p = Pinline::new();
    let id = p.add_user("provider");
    assert!(
        id.len() >= 6 && id.bytes().all(|b| b.is_ascii_digit()),
        "{id}"
    );
    let made = p.json(&[
        "user",
        "add",
        "--practice",
        "1",
        "--role",
        "staff",
        "--name",
        "Kim Noor",
        "--email",
        "kim@example.org",
        "--phone",
        "+14155550101",
        "--phone",
        "+14155550102",
        "--json",
    ]);
    assert!(made["user_id"].as_u64().is_some());
    assert_eq!(made["phones"].as_array().unwrap().len(), 2);
    let list = p.json(&["user", "list", "--json"]);
    let ids: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].to_string())
        .collect();
    assert!(ids.contains(&id));
    assert!(p.ok(&["user", "list"]).contains("Kim Noor"));
}

#[test]
fn pin_show_prints_four_digits_alone_and_is_audited() {
    let p = Pinline::new();
    let id = p.add_user("staff");
    let pin = p.ok(&["pin", "show", &id]);
    assert_eq!(pin.len(), 5, "{pin:?}");
    assert!(pin.trim_end().bytes().all(|b| b.is_ascii_digit()));
    let events = p.json(&["audit", &id, "--json"]);
    let newest = &events[0];
    assert_eq!(newest["event"], "viewed");
    assert_eq!(newest["channel"], "cli");
    assert!(newest["at"].as_str().unwrap().ends_with('Z'));
    assert!(newest.get("call_sid").is_some());
    assert_eq!(events[1]["event"], "generated");
}

#[test]
fn pin_new_replaces_the_pin_and_records_generated() {
    let p = Pinline::new();
    let id = p.add_user("staff");
    let before = p.ok(&["pin", "show", &id]);
    p.ok(&["pin", "new", &id]);
    assert_ne!(before, p.ok(&["pin", "show", &id]));
    let events = p.json(&["audit", &id, "--json"]);
    assert_eq!(events[1]["event"], "generated");
    assert_eq!(events[1]["detail"], "requested");
}

#[test]
fn bad_input_is_one_error_line_with_status_2_and_writes_nothing() {
    let p = Pinline::new();
    let id = p.add_user("staff");
    let before = p.state();
    let cases: &[(&[&str], &str)] = &[
        (&["pin", "show", "12345678"], "no user with ID 12345678"),
        (&["pin", "new", "99999999"], "no user"),
        (&["pin", "show", "12ab"], "not 6 to 10 digits"),
        (
            &[
                "user",
                "add",
                "--practice",
                "1",
                "--role",
                "staff",
                "--name",
                "X",
                "--phone",
                "5550100",
            ],
            "E.164",
        ),
        (
            &[
                "user",
                "add",
                "--practice",
                "1",
                "--role",
                "janitor",
                "--name",
                "X",
            ],
            "unknown role",
        ),
        (
            &[
                "user",
                "add",
                "--practice",
                "Nowhere",
                "--role",
                "staff",
                "--name",
                "X",
            ],
            "no practice",
        ),
        (
            &[
                "user",
                "add",
                "--practice",
                "1",
                "--role",
                "staff",
                "--name",
                " ",
            ],
            "needs a name",
        ),
        (
            &[
                "user",
                "add",
                "--practice",
                "1",
                "--role",
                "staff",
                "--name",
                "X",
                "--email",
                "nope",
            ],
            "email",
        ),
        (
            &[
                "user",
                "add",
                "--practice",
                "1",
                "--role",
                "staff",
                "--name",
                "X",
                "--user-id",
                &id,
            ],
            "taken",
        ),
        (&["audit", "55555555"], "no user"),
        (&["audit"], "give a user ID"),
        (&["audit", "verify", "--head", "xyz"], "not a tag"),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, expected) in cases {
        let line = p.refused(args);
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    assert_eq!(p.state(), before);
}

#[test]
fn a_missing_key_names_its_variable_and_writes_nothing() {
    let p = Pinline::bare();
    p.ok(&["practice", "add", "Harbor Health"]);
    let line = p.refused(&[
        "user",
        "add",
        "--practice",
        "1",
        "--role",
        "staff",
        "--name",
        "X",
    ]);
    assert!(line.contains("PINLINE_PIN_KEY"), "{line}");
    assert_eq!(p.ok(&["user", "list"]), "");
    std::fs::remove_file(p.db().with_extension("pin.key")).ok();
    p.ok(&["key", "init"]);
    std::fs::remove_file(p.db().with_extension("audit.key")).unwrap();
    let line = p.refused(&["audit", "verify"]);
    assert!(line.contains("PINLINE_AUDIT_KEY"), "{line}");
}

#[test]
fn a_wrong_key_is_refused_with_a_clear_error() {
    let p = Pinline::new();
    let id = p.add_user("staff");
    let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let out = p
        .command(&["pin", "show", &id])
        .env("PINLINE_PIN_KEY", other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PINLINE_PIN_KEY") && stderr.contains("not the key"),
        "{stderr}"
    );
    let out = p
        .command(&["pin", "show", &id])
        .env("PINLINE_PIN_KEY", "short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not hold a Support PIN key"),
        "{stderr}"
    );
}

#[test]
fn commands_on_a_missing_database_create_nothing() {
    let p = Pinline::bare();
    let line = p.refused(&["user", "list", "--db", "typo.db"]);
    assert!(line.contains("no database at typo.db"), "{line}");
    assert!(!p.dir.path().join("typo.db").exists());
}

#[test]
fn audit_head_and_verify_agree_on_a_clean_log() {
    let p = Pinline::new();
    let id = p.add_user("provider");
    p.ok(&["pin", "show", &id]);
    let head = p.ok(&["audit", "head"]);
    let (tag, count) = head.trim().split_once(' ').unwrap();
    assert_eq!(count, "2");
    let verified = p.ok(&["audit", "verify", "--head", tag]);
    assert!(verified.contains("2 events verified"), "{verified}");
    let json = p.json(&["audit", "head", "--json"]);
    assert_eq!(json["tag"], tag);
}

fn broken(p: &Pinline, args: &[&str]) -> String {
    let out = p.run(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn audit_verify_names_the_first_tampered_event() {
    let p = Pinline::new();
    let id = p.add_user("provider");
    for _ in 0..4 {
        p.ok(&["pin", "show", &id]);
    }
    p.sql("UPDATE audit_events SET detail = 'nothing to see' WHERE seq = 3");
    assert!(broken(&p, &["audit", "verify"]).contains("event 3 does not match"));

    let p = Pinline::new();
    let id = p.add_user("provider");
    for _ in 0..4 {
        p.ok(&["pin", "show", &id]);
    }
    p.sql("DELETE FROM audit_events WHERE seq = 2");
    assert!(broken(&p, &["audit", "verify"]).contains("events 2 to 2 are missing"));
}

#[test]
fn audit_verify_with_the_head_catches_a_cut_tail() {
    let p = Pinline::new();
    let id = p.add_user("provider");
    for _ in 0..3 {
        p.ok(&["pin", "show", &id]);
    }
    let head = p.ok(&["audit", "head"]);
    let tag = head.split(' ').next().unwrap().to_owned();
    p.sql("DELETE FROM audit_events WHERE seq >= 3");
    p.ok(&["audit", "verify"]);
    let out = broken(&p, &["audit", "verify", "--head", &tag]);
    assert!(out.contains("tail was cut"), "{out}");
}

#[test]
fn import_prints_one_object_per_user_after_commit() {
    let p = Pinline::new();
    let csv = p.dir.path().join("users.csv");
    std::fs::write(
        &csv,
        "practice,role,name,email,phones\n\
         Harbor Health,provider,Dana Wu,dana@example.org,+14155550123;+14155550124\n\
         1,staff,Lee Park,,+14155550125\n",
    )
    .unwrap();
    let out = p.ok(&["user", "import", csv.to_str().unwrap()]);
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["user_id"].as_u64().is_some()));
    let id = rows[0]["user_id"].to_string();
    assert_eq!(p.ok(&["pin", "show", &id]).trim().len(), 4);
    let listed = p.json(&["user", "list", "--json"]);
    let dana = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "Dana Wu")
        .unwrap();
    assert_eq!(
        dana["phones"],
        serde_json::json!(["+14155550123", "+14155550124"]),
        "kept as written"
    );
    let lee = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "Lee Park")
        .unwrap();
    assert_eq!(
        lee["phones"],
        serde_json::json!(["+14155550125"]),
        "a lone number is not read as an integer"
    );

    let jsonl = p.dir.path().join("more.jsonl");
    std::fs::write(
        &jsonl,
        "{\"practice\":\"Harbor Health\",\"role\":\"staff\",\"name\":\"Ari\",\"phones\":[\"+14155550125\"]}\n",
    )
    .unwrap();
    assert_eq!(
        p.ok(&["user", "import", jsonl.to_str().unwrap()])
            .lines()
            .count(),
        1
    );
}

#[test]
fn an_import_with_a_bad_row_names_its_line_and_writes_nothing() {
    let p = Pinline::new();
    let before = p.state();
    let csv = p.dir.path().join("users.csv");
    std::fs::write(
        &csv,
        "practice,role,name,email,phones\nHarbor Health,staff,Ok One,,\nHarbor Health,staff,Bad Phone,,555\n",
    )
    .unwrap();
    let line = p.refused(&["user", "import", csv.to_str().unwrap()]);
    assert!(line.contains("line 3") && line.contains("E.164"), "{line}");
    let jsonl = p.dir.path().join("users.jsonl");
    std::fs::write(&jsonl, "{\"practice\":\"1\",\"role\":\"staff\",\"name\":\"A\"}\n{\"practice\":\"Elsewhere\",\"role\":\"staff\",\"name\":\"B\"}\n").unwrap();
    let line = p.refused(&["user", "import", jsonl.to_str().unwrap()]);
    assert!(
        line.contains("line 2") && line.contains("Elsewhere"),
        "{line}"
    );
    std::fs::write(&jsonl, "{\"practice\":\"1\",\"role\":\"staff\"\n").unwrap();
    assert!(
        p.refused(&["user", "import", jsonl.to_str().unwrap()])
            .contains("line 1")
    );
    assert_eq!(p.state(), before);
}

#[test]
fn key_rotate_keeps_pins_and_the_chain() {
    let p = Pinline::new();
    let id = p.add_user("staff");
    let pin = p.ok(&["pin", "show", &id]);
    let key_file = p.db().with_extension("pin.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    p.ok(&["key", "rotate"]);
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), old_key);
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(p.ok(&["pin", "show", &id]), pin);
    p.ok(&["audit", "verify"]);
    let out = p
        .command(&["key", "rotate"])
        .env("PINLINE_PIN_KEY", old_key.trim())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "the old key no longer fits");
}

#[test]
fn key_rotate_with_an_environment_key_needs_an_output_file() {
    let p = Pinline::new();
    let id = p.add_user("staff");
    let key = std::fs::read_to_string(p.db().with_extension("pin.key")).unwrap();
    std::fs::remove_file(p.db().with_extension("pin.key")).unwrap();
    let out = p
        .command(&["key", "rotate"])
        .env("PINLINE_PIN_KEY", key.trim())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));
    let out_file = p.dir.path().join("new.key");
    let out = p
        .command(&["key", "rotate", "--out", out_file.to_str().unwrap()])
        .env("PINLINE_PIN_KEY", key.trim())
        .output()
        .unwrap();
    assert!(out.status.success());
    let new_key = std::fs::read_to_string(&out_file).unwrap();
    let shown = p
        .command(&["pin", "show", &id])
        .env("PINLINE_PIN_KEY", new_key.trim())
        .output()
        .unwrap();
    assert!(shown.status.success());
}

struct Server {
    child: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_demo(p: &Pinline) -> (Server, Vec<String>, String) {
    let mut child = p
        .command(&["serve", "--demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut server = Server { child, stdout };
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            server.stdout.read_line(&mut line).unwrap() > 0,
            "server exited: {lines:?}"
        );
        if let Some(address) = line.trim().strip_prefix("pinline listening on http://") {
            let address = address.to_owned();
            return (server, lines, address);
        }
        lines.push(line);
    }
}

fn get(address: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn demo_users(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (id, pin) = (words.next()?, words.next()?);
            (id.len() == 8 && pin.len() == 4 && pin.bytes().all(|b| b.is_ascii_digit()))
                .then(|| (id.to_owned(), pin.to_owned()))
        })
        .collect()
}

#[test]
fn serve_demo_seeds_once_creates_private_keys_and_answers_health_checks() {
    let p = Pinline::bare();
    let (server, lines, address) = serve_demo(&p);
    let users = demo_users(&lines);
    assert_eq!(users.len(), 3, "{lines:?}");
    assert!(get(&address, "/healthz").starts_with("HTTP/1.1 200"));
    for key in ["pin.key", "audit.key"] {
        let mode = std::fs::metadata(p.db().with_extension(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    // The CLI works on the database while the server runs.
    assert_eq!(p.ok(&["pin", "show", &users[0].0]).trim(), users[0].1);
    drop(server);

    let (_server, lines, _) = serve_demo(&p);
    let again = demo_users(&lines);
    assert_eq!(again, users, "same users, same PINs: seeded once");
    let list = p.json(&["user", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 3);
}

#[test]
fn key_rotate_is_refused_while_a_server_serves_the_database() {
    let p = Pinline::bare();
    let (server, lines, address) = serve_demo(&p);
    let (id, _) = demo_users(&lines).swap_remove(0);
    let key_file = p.db().with_extension("pin.key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    let pin = p.ok(&["pin", "show", &id]);

    let refusal = p.refused(&["key", "rotate"]);
    assert!(
        refusal.contains("a pinline server is serving") && refusal.contains("stop it before"),
        "{refusal}"
    );
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    assert_eq!(
        p.ok(&["pin", "show", &id]),
        pin,
        "still sealed under the key the server has"
    );
    assert!(get(&address, "/healthz").starts_with("HTTP/1.1 200"));

    drop(server);
    p.ok(&["key", "rotate"]);
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), key);
    assert_eq!(p.ok(&["pin", "show", &id]), pin);
}

#[test]
fn a_second_server_on_the_same_database_is_refused() {
    let p = Pinline::bare();
    let (server, _, address) = serve_demo(&p);
    let mut second = p
        .command(&["serve", "--demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waited = std::time::Instant::now();
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if waited.elapsed() > std::time::Duration::from_secs(10) {
            let _ = second.kill();
            panic!("a second server started on the same database");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut refusal = String::new();
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut refusal)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{refusal}");
    assert!(refusal.contains("one server per database"), "{refusal}");
    assert_eq!(refusal.lines().count(), 1, "{refusal}");
    assert!(
        get(&address, "/healthz").starts_with("HTTP/1.1 200"),
        "the first still serves"
    );
    drop(server);
    drop(serve_demo(&p));
}

#[test]
fn serve_refuses_to_start_with_a_wrong_key() {
    let p = Pinline::bare();
    drop(serve_demo(&p));
    let out = p
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("TWILIO_AUTH_TOKEN", "token")
        .env(
            "PINLINE_PIN_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the key this database uses"));
}

#[test]
fn serve_refuses_to_start_without_a_webhook_token() {
    let p = Pinline::new();
    let out = p
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TWILIO_AUTH_TOKEN"));
}

#[test]
fn serve_demo_generates_prints_and_keeps_a_webhook_token() {
    let p = Pinline::bare();
    let token_line = |lines: &[String]| {
        lines
            .iter()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Webhook token (TWILIO_AUTH_TOKEN for `pinline call`): ")
            })
            .map(str::to_owned)
            .expect("the demo prints its token")
    };
    let (server, lines, _) = serve_demo(&p);
    let token = token_line(&lines);
    drop(server);
    let file = p.db().with_extension("twilio-token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (_server, lines, _) = serve_demo(&p);
    assert_eq!(token_line(&lines), token);
}

#[test]
fn serve_refuses_a_prompt_file_missing_a_key_and_names_it() {
    let p = Pinline::new();
    let prompts = p.dir.path().join("prompts");
    std::fs::create_dir(&prompts).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("voice-prompts");
    let english = std::fs::read_to_string(source.join("en-US.toml")).unwrap();
    let without_menu: String = english
        .lines()
        .filter(|l| !l.starts_with("menu ="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(prompts.join("en-US.toml"), without_menu).unwrap();
    std::fs::copy(source.join("es-US.toml"), prompts.join("es-US.toml")).unwrap();
    let out = p
        .command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--prompts",
            prompts.to_str().unwrap(),
        ])
        .env("TWILIO_AUTH_TOKEN", "token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing prompt `menu`"), "{stderr}");

    let with_unknown = format!("{english}\nbogus_prompt = \"Hello.\"\n");
    std::fs::write(prompts.join("en-US.toml"), with_unknown).unwrap();
    let out = p
        .command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--prompts",
            prompts.to_str().unwrap(),
        ])
        .env("TWILIO_AUTH_TOKEN", "token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown prompt `bogus_prompt`"), "{stderr}");
}

/// A practice with a provider and two staff members: (provider, staff,
/// other staff).
fn practice_with_staff(p: &Pinline) -> (String, String, String) {
    let add = |role: &str, name: &str| {
        p.ok(&[
            "user",
            "add",
            "--practice",
            "1",
            "--role",
            role,
            "--name",
            name,
        ])
        .trim()
        .to_owned()
    };
    (
        add("provider", "Dr. Rosa Diaz"),
        add("staff", "Sam Ortiz"),
        add("staff", "Lee Chen"),
    )
}

#[test]
fn case_open_prints_the_number_and_reuses_an_open_case() {
    let p = Pinline::new();
    let (provider, staff, _) = practice_with_staff(&p);
    let number = p.ok(&[
        "case",
        "open",
        "--requestor",
        &staff,
        "--on-behalf-of",
        &provider,
    ]);
    let number = number.trim();
    assert_eq!(number.len(), 6, "{number}");
    let json = p.json(&[
        "case",
        "open",
        "--requestor",
        &staff,
        "--on-behalf-of",
        &provider,
        "--json",
    ]);
    assert_eq!(json["case_number"], number);
    assert_eq!(json["reused"], true);
    let shown = p.json(&["case", "show", number, "--json"]);
    assert_eq!(shown["case_number"], number);
    assert_eq!(shown["status"], "awaiting_approval");
    assert_eq!(shown["approvers"][0]["user_id"].to_string(), provider);
    let listed = p.json(&["case", "list", "--status", "awaiting_approval", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let none = p.json(&["case", "list", "--status", "approved", "--json"]);
    assert!(none.as_array().unwrap().is_empty());
    let events = p.json(&["audit", &provider, "--json"]);
    assert_eq!(events[0]["event"], "approval_requested");
}

#[test]
fn case_reply_by_an_approver_decides_and_by_anyone_else_is_only_recorded() {
    let p = Pinline::new();
    let (provider, staff, other) = practice_with_staff(&p);
    let number = p.ok(&[
        "case",
        "open",
        "--requestor",
        &staff,
        "--on-behalf-of",
        &provider,
    ]);
    let number = number.trim();
    let said = p.ok(&[
        "case",
        "reply",
        number,
        "--from",
        &other,
        "--approve",
        "--text",
        "sure",
    ]);
    assert!(
        said.contains("not an approver") && said.contains("approves nothing"),
        "{said}"
    );
    assert_eq!(
        p.json(&["case", "show", number, "--json"])["status"],
        "awaiting_approval"
    );
    let json = p.json(&[
        "case",
        "reply",
        number,
        "--from",
        &provider,
        "--approve",
        "--json",
    ]);
    assert_eq!(json["outcome"], "approved");
    assert_eq!(json["status"], "approved");
    let shown = p.json(&["case", "show", number, "--json"]);
    assert!(shown["expires_at"].is_string());
    let kinds: Vec<&str> = shown["trail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["opened", "reply", "approved"]);
    let events = p.json(&["audit", &staff, "--json"]);
    assert_eq!(events[0]["event"], "approval_granted");
}

#[test]
fn case_commands_refuse_bad_input_with_status_2_and_write_nothing() {
    let p = Pinline::new();
    let (provider, staff, _) = practice_with_staff(&p);
    let number = p.ok(&[
        "case",
        "open",
        "--requestor",
        &staff,
        "--on-behalf-of",
        &provider,
    ]);
    let number = number.trim().to_owned();
    p.ok(&["case", "close", &number]);
    let before = (
        p.state(),
        p.ok(&["case", "show", &number, "--json"]),
        p.ok(&["case", "list", "--json"]),
    );
    let cases: &[(&[&str], &str)] = &[
        (&["case", "show", "999999"], "no case 999999"),
        (&["case", "show", "12"], "not six digits"),
        (
            &["case", "reply", "999999", "--from", &provider, "--approve"],
            "no case",
        ),
        (
            &["case", "reply", &number, "--from", "55555555", "--approve"],
            "no user with ID 55555555",
        ),
        (
            &["case", "reply", &number, "--from", &provider, "--approve"],
            "is closed",
        ),
        (&["case", "reply", &number, "--from", &provider], "required"),
        (
            &[
                "case",
                "reply",
                &number,
                "--from",
                &provider,
                "--approve",
                "--decline",
            ],
            "cannot be used",
        ),
        (&["case", "close", &number], "closed already"),
        (
            &[
                "case",
                "open",
                "--requestor",
                &provider,
                "--on-behalf-of",
                &staff,
            ],
            "no approval is needed",
        ),
        (
            &[
                "case",
                "open",
                "--requestor",
                &staff,
                "--on-behalf-of",
                "55555555",
            ],
            "no user",
        ),
        (&["case", "list", "--status", "open"], "unknown case status"),
    ];
    for (args, expected) in cases {
        let line = p.refused(args);
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    let after = (
        p.state(),
        p.ok(&["case", "show", &number, "--json"]),
        p.ok(&["case", "list", "--json"]),
    );
    assert_eq!(after, before);
}

#[test]
fn a_case_across_practices_cannot_be_opened() {
    let p = Pinline::new();
    let (provider, _, _) = practice_with_staff(&p);
    p.ok(&["practice", "add", "Elsewhere"]);
    let outsider = p.ok(&[
        "user",
        "add",
        "--practice",
        "Elsewhere",
        "--role",
        "staff",
        "--name",
        "Kit",
    ]);
    let line = p.refused(&[
        "case",
        "open",
        "--requestor",
        outsider.trim(),
        "--on-behalf-of",
        &provider,
    ]);
    assert!(line.contains("different practices"), "{line}");
}

#[test]
fn agent_add_prints_an_id_and_a_passcode_once_and_list_shows_the_agent() {
    let p = Pinline::new();
    let made = p.json(&["agent", "add", "--name", "Ana Reyes", "--json"]);
    let id = made["agent_id"].to_string();
    let passcode = made["passcode"].as_str().unwrap();
    assert_eq!(id.len(), 6);
    assert_eq!(passcode.len(), 8);
    assert!(p.ok(&["agent", "list"]).contains("Ana Reyes"));
    let listed = p.json(&["agent", "list", "--json"]);
    assert_eq!(listed[0]["agent_id"].to_string(), id);
    assert_eq!(listed[0]["locked"], false);
    assert!(
        !p.ok(&["agent", "list", "--json"]).contains(passcode),
        "shown once"
    );
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    let hash: String = conn
        .query_row("SELECT passcode_hash FROM agents", [], |r| r.get(0))
        .unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains(passcode));
}

#[test]
fn agent_tokens_are_issued_hashed_and_revocable() {
    let p = Pinline::new();
    let id = p.json(&["agent", "add", "--name", "Ben", "--json"])["agent_id"].to_string();
    let issued = p.json(&["agent", "token", &id, "--json"]);
    let token = issued["token"].as_str().unwrap();
    let token_id = issued["token_id"].as_str().unwrap();
    assert!(token.starts_with(&format!("pl_{token_id}_")));
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    let stored: Vec<u8> = conn
        .query_row("SELECT token_hash FROM agent_tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored.len(), 32, "a hash, not the token");
    p.ok(&["agent", "revoke", token_id]);
    assert!(
        p.refused(&["agent", "revoke", token_id])
            .contains("no live token")
    );
    assert!(
        p.refused(&["agent", "token", "999999"])
            .contains("no agent")
    );
    assert!(
        p.refused(&["agent", "token", "12"])
            .contains("not six digits")
    );
}

#[test]
fn pin_verify_reads_the_pin_from_stdin_and_rotates_it_on_success() {
    let p = Pinline::new();
    let user = p.add_user("staff");
    let agent = p.json(&["agent", "add", "--name", "Cy", "--json"])["agent_id"].to_string();
    let pin = p.ok(&["pin", "show", &user]);
    let verify = |stdin: &str| {
        p.with_stdin(
            &[
                "pin",
                "verify",
                &user,
                "--agent",
                &agent,
                "--channel",
                "email",
            ],
            stdin,
        )
    };
    let wrong = format!("{:04}\n", (pin.trim().parse::<u32>().unwrap() + 1) % 10_000);
    let out = verify(&wrong);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "not verified");
    let out = verify(&pin);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "verified");
    assert_ne!(p.ok(&["pin", "show", &user]), pin, "rotated");
    let events = p.json(&["audit", &user, "--json"]);
    let validated = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "validated")
        .unwrap();
    assert_eq!(validated["channel"], "email");
    assert_eq!(validated["actor"], format!("agent:{agent}"));

    let before = p.state();
    let out = p
        .command(&[
            "pin",
            "verify",
            &user,
            "--agent",
            "999999",
            "--channel",
            "email",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = p
        .command(&[
            "pin",
            "verify",
            &user,
            "--agent",
            &agent,
            "--channel",
            "fax",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(p.state(), before);
}

#[test]
fn the_database_comes_from_pinline_db_when_no_flag_is_given() {
    let p = Pinline::bare();
    let elsewhere = p.dir.path().join("elsewhere.db");
    let out = p
        .command(&["practice", "add", "Via Env"])
        .env("PINLINE_DB", &elsewhere)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(elsewhere.exists());
    assert!(!p.db().exists(), "the default file was not used");
}

#[test]
fn lock_thresholds_can_be_set_on_the_command_line() {
    let p = Pinline::new();
    let user = p.add_user("staff");
    let agent = p.json(&["agent", "add", "--name", "Ana", "--json"])["agent_id"].to_string();
    let pin = p.ok(&["pin", "show", &user]);
    let wrong = format!("{:04}\n", (pin.trim().parse::<u32>().unwrap() + 1) % 10_000);
    for _ in 0..2 {
        let args = [
            "--lock-after",
            "2",
            "pin",
            "verify",
            &user,
            "--agent",
            &agent,
            "--channel",
            "email",
        ];
        assert_eq!(p.with_stdin(&args, &wrong).status.code(), Some(1));
    }
    let events = p.json(&["audit", &user, "--json"]);
    assert_eq!(
        events[0]["event"], "locked",
        "locked after 2, not the default 5"
    );
    assert!(
        p.refused(&["--lock-after", "0", "pin", "show", &user])
            .contains("at least 1")
    );
}
