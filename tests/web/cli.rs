//! `pinline user login-link` against a temporary database.

use std::process::Command;

use pinline::clock::SystemClock;
use pinline::domain::lock::LockPolicy;
use pinline::keys::{KeyError, KeyKind};
use pinline::registry::Registry;
use pinline::storage::Db;

fn pinline(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pinline"))
        .args(args)
        .current_dir(dir)
        .env_remove("PINLINE_DB")
        .env_remove("PINLINE_PIN_KEY")
        .env_remove("PINLINE_AUDIT_KEY")
        .env("PINLINE_PUBLIC_URL", "https://support.example/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn login_link_prints_a_one_time_url_and_stores_only_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    pinline(dir.path(), &["key", "init"]);
    pinline(dir.path(), &["practice", "add", "Bayview"]);
    let user = pinline(
        dir.path(),
        &[
            "user",
            "add",
            "--practice",
            "Bayview",
            "--role",
            "staff",
            "--name",
            "Sam",
        ],
    );
    let user = user.trim();
    let printed = pinline(dir.path(), &["user", "login-link", user]);
    let lines: Vec<&str> = printed.lines().collect();
    let code = lines[0]
        .strip_prefix("https://support.example/login/")
        .unwrap_or_else(|| panic!("{printed}"));
    assert_eq!(code.len(), 16);
    assert_eq!(lines[1].replace('-', ""), code);
    assert!(lines[2].starts_with("Works once, until "), "{printed}");

    let json = pinline(dir.path(), &["user", "login-link", user, "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["user_id"].to_string(), user);
    assert!(
        json["url"]
            .as_str()
            .unwrap()
            .starts_with("https://support.example/login/")
    );

    // The secret part of the code is nowhere in the database files.
    let secret = &code[6..];
    for name in ["pinline.db", "pinline.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(name)) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(secret), "{name} holds the code");
        }
    }

    let missing = |kind| {
        Err(KeyError::Missing {
            kind,
            path: dir.path().join("none"),
        })
    };
    let registry = Registry::new(
        Db::open(&dir.path().join("pinline.db")).unwrap(),
        missing(KeyKind::Pin),
        missing(KeyKind::Audit),
        LockPolicy::default(),
        std::sync::Arc::new(SystemClock),
    )
    .unwrap();
    assert!(registry.redeem_login_code(code).unwrap().is_some());
    assert!(
        registry.redeem_login_code(code).unwrap().is_none(),
        "single use"
    );
}

#[test]
fn login_link_for_an_unknown_user_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    pinline(dir.path(), &["key", "init"]);
    pinline(dir.path(), &["practice", "add", "Bayview"]);
    let out = Command::new(env!("CARGO_BIN_EXE_pinline"))
        .args(["user", "login-link", "12345678"])
        .current_dir(dir.path())
        .env_remove("PINLINE_DB")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user with ID 12345678"));
    assert!(out.stdout.is_empty());
}
