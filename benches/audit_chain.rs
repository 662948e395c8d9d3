//! How long `audit verify` takes over a large log, and whether a PIN
//! validation slows as the log grows.
//!
//! Run: `cargo bench --bench audit_chain` (optionally `-- 1000000` for the
//! number of events). Prints plain figures; see docs/PERFORMANCE.md.

use std::sync::Arc;
use std::time::Instant;

use pinline::clock::SystemClock;
use pinline::crypto::SecretKey;
use pinline::domain::account::{NewUser, Role};
use pinline::domain::audit::{Actor, Channel, EventKind, NewEvent};
use pinline::domain::lock::LockPolicy;
use pinline::registry::{Attempt, Origin, Registry};
use pinline::storage::{Db, StorageError};

fn main() {
    let events: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    for size in [10_000, events] {
        measure(size);
    }
}

fn measure(size: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let audit_key = SecretKey::generate();
    let registry = Registry::new(
        Db::open(&path).unwrap(),
        Ok(SecretKey::generate()),
        Ok(audit_key.clone()),
        LockPolicy::default(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let practice = registry.add_practice("Bench").unwrap();
    let user = registry
        .add_user(
            &practice.practice_id.to_string(),
            &NewUser {
                user_id: None,
                role: Role::Staff,
                name: "Bench User".into(),
                email: None,
                phones: vec![],
            },
            &Origin::cli(),
        )
        .unwrap();

    let started = Instant::now();
    fill(registry.db(), audit_key.bytes(), user.user_id, size);
    let filled = started.elapsed();

    let started = Instant::now();
    let head = registry.verify_audit(None).unwrap().unwrap();
    let verified = started.elapsed();

    let id = user.user_id.to_string();
    let rounds = 200;
    let started = Instant::now();
    for _ in 0..rounds {
        let pin = registry.view_pin(user.user_id, &Origin::cli()).unwrap();
        let attempt = Attempt {
            user_id: &id,
            digits: pin.reveal(),
            origin: Origin::cli(),
            note: None,
        };
        registry.validate_pin(&attempt).unwrap();
    }
    let per_round = started.elapsed() / rounds;

    println!(
        "events {:>9}: filled in {:>6.2} s, verify {:>6.2} s ({:.0} events/s), \
         view + validate with rotation {:>6.2} ms",
        head.count,
        filled.as_secs_f64(),
        verified.as_secs_f64(),
        head.count as f64 / verified.as_secs_f64(),
        per_round.as_secs_f64() * 1e3
    );
}

/// Appends events in batches (the real append path, many per
/// transaction), spread over many subjects like a real log.
fn fill(db: &Db, key: &[u8; 32], user: pinline::domain::account::UserId, size: u64) {
    let mut done = 1; // the user's `generated`
    while done < size {
        let batch = (size - done).min(50_000);
        db.write(|tx| -> Result<(), StorageError> {
            for n in 0..batch {
                let subject = if n % 100 == 0 { Some(user) } else { None };
                let event = NewEvent {
                    at: chrono::Utc::now(),
                    subject,
                    actor: Actor::System,
                    channel: Channel::Phone,
                    call_sid: Some(format!("CA{:032}", done + n)),
                    kind: EventKind::ValidationFailed,
                    detail: "unknown user ID 12345678".into(),
                };
                pinline::storage::audit::append(tx, key, &event)?;
            }
            Ok(())
        })
        .unwrap();
        done += batch;
    }
}
