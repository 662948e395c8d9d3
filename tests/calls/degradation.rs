//! A database that stays locked past the busy timeout: callers still hear
//! valid TwiML within two seconds (an apology, routed unverified), health
//! checks and the API report it, and service comes back by itself.

use std::time::{Duration, Instant};

use pinline::domain::account::Role;
use reqwest::StatusCode;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_gets_the_fallback_within_two_seconds_and_recovers() {
    let line = Line::start().await;
    let user = line.user(Role::Staff, "+14155550601");
    let pin = line.pin(&user);
    let token = line.agent_token(&line.agent("Ana").0);

    // Another process holds the write lock, as a long import would.
    let locker = rusqlite::Connection::open(&line.path).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let mut call = line.call("+14155550601");
    let started = Instant::now();
    let answer = call.start().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered in {:?}",
        started.elapsed()
    );
    assert!(
        says(&answer, "something went wrong") && says(&answer, "<Enqueue>"),
        "{answer}"
    );
    assert!(
        !says(&answer, "verified"),
        "never a verified route: {answer}"
    );

    let health = line
        .client
        .get(format!("{}/healthz", line.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = line
        .api("POST", "/api/v1/queue/claim", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // The lock goes away; so does the fault, with nothing left half-done.
    locker.execute_batch("ROLLBACK").unwrap();
    let health = line
        .client
        .get(format!("{}/healthz", line.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let mut again = line.call("+14155550601");
    let menu = again.verify(&user, &pin).await;
    assert!(says(&menu, MENU), "{menu}");
    let conn = rusqlite::Connection::open(&line.path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    assert!(line.registry.verify_audit(None).unwrap().is_ok());
}
