//! kill -9 in the middle of a load of whole calls: every answer that was
//! sent is on disk, the database and the audit chain are intact, and calls
//! in progress go on after a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pinline::crypto::{PinCipher, SecretKey};
use pinline::domain::account::UserId;
use support::{Served, action, pinline};

mod support;

const TOKEN: &str = "crash-test-token";

/// `pinline serve` on `db`, with no limit on failures per caller.
fn start_server(db: &Path) -> Served {
    Served::spawn(
        support::serve(db, TOKEN)
            .args(["--caller-failures-per-hour", "100000"])
            .env("RUST_LOG", "warn")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::null()),
    )
}

/// What the clients were told, by CallSid: the last step answered, and
/// whether an answer said the caller was verified.
#[derive(Default)]
struct Told {
    steps: HashMap<String, (String, bool)>,
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    sid: &str,
    from: &str,
    digits: Option<&str>,
) -> Option<String> {
    let mut params = vec![
        ("CallSid".to_owned(), sid.to_owned()),
        ("From".to_owned(), from.to_owned()),
        ("To".to_owned(), "+18005550100".to_owned()),
    ];
    if let Some(d) = digits {
        params.push(("Digits".to_owned(), d.to_owned()));
    }
    support::signed_post(client, TOKEN, url, &params).await
}

fn current_pin(db: &Path, cipher: &PinCipher, user: UserId) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let row = pinline::storage::pins::get(&conn, user).unwrap().unwrap();
    cipher
        .open(user, row.version, &row.sealed)
        .unwrap()
        .reveal()
        .to_owned()
}

/// One caller making whole calls until the server stops answering.
async fn caller(
    base: String,
    db: PathBuf,
    cipher: Arc<PinCipher>,
    user: UserId,
    n: usize,
    told: Arc<Mutex<Told>>,
) {
    let client = reqwest::Client::new();
    let from = format!("+1555{n:07}");
    for round in 0.. {
        let sid = format!("CA{n:016x}{round:016x}");
        let pin = {
            let (db, cipher) = (db.clone(), cipher.clone());
            tokio::task::spawn_blocking(move || current_pin(&db, &cipher, user))
                .await
                .unwrap()
        };
        let record = |step: &str, verified: bool| {
            let mut told = told.lock().unwrap();
            let entry = told
                .steps
                .entry(sid.clone())
                .or_insert((String::new(), false));
            entry.0 = step.to_owned();
            entry.1 |= verified;
        };
        let Some(greeting) = post(
            &client,
            &format!("{base}/voice/incoming"),
            &sid,
            &from,
            None,
        )
        .await
        else {
            return;
        };
        record("incoming", false);
        let Some(ask) = post(
            &client,
            &action(&greeting).unwrap(),
            &sid,
            &from,
            Some(&format!("{user}#")),
        )
        .await
        else {
            return;
        };
        record("user_id", false);
        let Some(menu) = post(&client, &action(&ask).unwrap(), &sid, &from, Some(&pin)).await
        else {
            return;
        };
        assert!(menu.contains("You're verified"), "{menu}");
        record("pin", true);
        if post(&client, &action(&menu).unwrap(), &sid, &from, Some("1"))
            .await
            .is_none()
        {
            return;
        }
        record("menu", true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_kill_mid_load_loses_nothing_that_was_answered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    pinline(&db, &["key", "init"]);
    pinline(&db, &["practice", "add", "Crash"]);
    let csv = dir.path().join("users.csv");
    let mut rows = String::from("practice,role,name,email,phones\n");
    for i in 0..8 {
        rows.push_str(&format!("Crash,staff,Caller {i},,+1555{i:07}\n"));
    }
    std::fs::write(&csv, rows).unwrap();
    let users: Vec<UserId> = pinline(&db, &["user", "import", csv.to_str().unwrap()])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            UserId::from_stored(v["user_id"].as_i64().unwrap()).unwrap()
        })
        .collect();
    let key = std::fs::read_to_string(db.with_extension("pin.key")).unwrap();
    let cipher = Arc::new(PinCipher::new(&SecretKey::from_base64(&key).unwrap()));

    let server = start_server(&db);
    let told = Arc::new(Mutex::new(Told::default()));
    let mut callers = tokio::task::JoinSet::new();
    for (n, user) in users.iter().enumerate() {
        callers.spawn(caller(
            server.base.clone(),
            db.clone(),
            cipher.clone(),
            *user,
            n,
            told.clone(),
        ));
    }
    // Let the load run, then pull the plug in the middle of it.
    let started = Instant::now();
    while told
        .lock()
        .unwrap()
        .steps
        .values()
        .filter(|(_, v)| *v)
        .count()
        < 40
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the load never got going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill_hard();
    callers.join_all().await;
    let told = std::mem::take(&mut *told.lock().unwrap());

    // The database and the chain survived.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    assert!(pinline(&db, &["audit", "verify"]).starts_with("ok:"));

    // Every answer that was sent has its state and audit events on disk.
    let mut verified_calls = 0;
    for (sid, (step, verified)) in &told.steps {
        let stored: Option<(u32, String)> = conn
            .query_row(
                "SELECT step, state FROM calls WHERE call_sid = ?1",
                [sid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        let (stored_step, state) =
            stored.unwrap_or_else(|| panic!("call {sid} answered at {step} but not stored"));
        let answered_steps = match step.as_str() {
            "incoming" => 1,
            "user_id" => 2,
            "pin" => 3,
            _ => 4,
        };
        assert!(
            stored_step >= answered_steps,
            "{sid}: told {step}, stored step {stored_step}"
        );
        if *verified {
            verified_calls += 1;
            let validated: i64 = conn
                .query_row(
                    "SELECT count(*) FROM audit_events WHERE call_sid = ?1 AND event = 'validated'",
                    [sid],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(
                validated, 1,
                "{sid}: a verification was answered, so it is in the log"
            );
            assert!(state.contains("\"verified\":{"), "{sid}: {state}");
        }
    }
    assert!(verified_calls >= 40);

    // Calls in progress continue on the restarted server.
    let restarted = start_server(&db);
    let in_progress: Vec<(&String, &(String, bool))> = told
        .steps
        .iter()
        .filter(|(_, (step, _))| step == "incoming" || step == "user_id")
        .collect();
    let client = reqwest::Client::new();
    for (sid, _) in in_progress {
        let (step, state): (u32, String) = conn
            .query_row(
                "SELECT step, state FROM calls WHERE call_sid = ?1",
                [sid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let path = if state.contains("\"awaiting\":\"pin\"") {
            "/voice/pin"
        } else {
            "/voice/user-id"
        };
        let url = format!("{}{path}?step={step}", restarted.base);
        let answer = post(&client, &url, sid, "+15550000000", Some(""))
            .await
            .expect("an answer");
        assert!(answer.contains("<Gather"), "{sid}: {answer}");
    }
}
