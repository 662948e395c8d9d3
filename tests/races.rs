//! One PIN tried at once from many calls on the server and from the CLI in
//! other processes: exactly one try succeeds.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

mod support;

const TOKEN: &str = "race-test-token";

fn pinline(db: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pinline"));
    command
        .arg("--db")
        .arg(db)
        .env_remove("PINLINE_PIN_KEY")
        .env_remove("PINLINE_AUDIT_KEY");
    command
}

fn run(db: &Path, args: &[&str]) -> String {
    let out = pinline(db).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn post(client: &reqwest::Client, url: &str, sid: &str, digits: Option<&str>) -> String {
    let mut params = vec![
        ("CallSid".to_owned(), sid.to_owned()),
        ("From".to_owned(), "+15550001111".to_owned()),
    ];
    if let Some(d) = digits {
        params.push(("Digits".to_owned(), d.to_owned()));
    }
    support::signed_post(client, TOKEN, url, &params)
        .await
        .expect("a 200 answer")
}

fn action(twiml: &str) -> String {
    support::action(twiml).expect("a gather")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pin_tried_from_many_calls_and_processes_at_once_succeeds_once() {
    const CALLS: usize = 12;
    const PROCESSES: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("race.db");
    run(&db, &["key", "init"]);
    run(&db, &["practice", "add", "Race"]);
    let user = run(
        &db,
        &[
            "user",
            "add",
            "--practice",
            "Race",
            "--role",
            "staff",
            "--name",
            "R",
        ],
    );
    let agent: serde_json::Value =
        serde_json::from_str(&run(&db, &["agent", "add", "--name", "A", "--json"])).unwrap();
    let agent = agent["agent_id"].to_string();
    let pin = run(&db, &["pin", "show", &user]);

    let mut server = pinline(&db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(a) = line.strip_prefix("pinline listening on ") {
            break a.to_owned();
        }
    };

    // Bring every call to the PIN prompt first, so that the tries race.
    let client = reqwest::Client::new();
    let mut at_pin = Vec::new();
    for n in 0..CALLS {
        let sid = format!("CA{n:032x}");
        let greeting = post(&client, &format!("{base}/voice/incoming"), &sid, None).await;
        let ask = post(&client, &action(&greeting), &sid, Some(&format!("{user}#"))).await;
        at_pin.push((sid, action(&ask)));
    }
    let mut processes: Vec<_> = (0..PROCESSES)
        .map(|_| {
            pinline(&db)
                .args([
                    "pin",
                    "verify",
                    &user,
                    "--agent",
                    &agent,
                    "--channel",
                    "email",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut tries = tokio::task::JoinSet::new();
    for (sid, url) in at_pin {
        let (client, pin) = (client.clone(), pin.clone());
        tries.spawn(async move {
            post(&client, &url, &sid, Some(&pin))
                .await
                .contains("You're verified")
        });
    }
    for process in &mut processes {
        process
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{pin}\n").as_bytes())
            .unwrap();
    }
    let phone_successes = tries.join_all().await.into_iter().filter(|ok| *ok).count();
    let cli_successes = processes
        .into_iter()
        .map(|p| p.wait_with_output().unwrap())
        .filter(|out| out.status.success())
        .count();
    let _ = server.kill();
    let _ = server.wait();

    assert_eq!(
        phone_successes + cli_successes,
        1,
        "phone {phone_successes}, CLI {cli_successes}"
    );
    let events: serde_json::Value =
        serde_json::from_str(&run(&db, &["audit", &user, "--json", "--limit", "1000"])).unwrap();
    let validated = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "validated")
        .count();
    assert_eq!(validated, 1);
    assert!(run(&db, &["audit", "verify"]).starts_with("ok:"));
}
