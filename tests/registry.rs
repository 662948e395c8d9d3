//! The Support PIN lifecycle against a real SQLite file.

use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, Utc};
use pinline::clock::ManualClock;
use pinline::crypto::SecretKey;
use pinline::domain::account::{NewUser, Role, User, UserId};
use pinline::domain::audit::{Actor, Channel};
use pinline::domain::lock::LockPolicy;
use pinline::registry::{Attempt, Origin, Registry, Rejection, Verdict};
use pinline::storage::Db;

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    pin_key: SecretKey,
    audit_key: SecretKey,
    clock: Arc<ManualClock>,
    registry: Registry,
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z")
        .unwrap()
        .to_utc()
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pinline.db");
        let (pin_key, audit_key) = (SecretKey::generate(), SecretKey::generate());
        let clock = Arc::new(ManualClock::new(start()));
        let registry = open(&path, &pin_key, &audit_key, clock.clone());
        Self {
            _dir: dir,
            path,
            pin_key,
            audit_key,
            clock,
            registry,
        }
    }

    /// Another registry on the same file, as another process would have.
    fn reopen(&self) -> Registry {
        open(
            &self.path,
            &self.pin_key,
            &self.audit_key,
            self.clock.clone(),
        )
    }

    fn user(&self, role: Role) -> User {
        let practice = match self.registry.practices().unwrap().first() {
            Some(p) => p.clone(),
            None => self.registry.add_practice("Test Practice").unwrap(),
        };
        let user = NewUser {
            user_id: None,
            role,
            name: "Pat Example".into(),
            email: None,
            phones: vec![],
        };
        self.registry
            .add_user(&practice.practice_id.to_string(), &user, &Origin::cli())
            .unwrap()
    }

    fn pin(&self, user: &User) -> String {
        self.registry
            .view_pin(user.user_id, &Origin::cli())
            .unwrap()
            .reveal()
            .to_owned()
    }

    fn try_pin(&self, user_id: &str, digits: &str) -> Verdict {
        self.registry
            .validate_pin(&attempt(user_id, digits))
            .unwrap()
    }

    fn events(&self, user: &User) -> Vec<String> {
        let mut events: Vec<String> = self
            .registry
            .audit_events(user.user_id, 1000, 0)
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
        events.reverse();
        events
    }
}

fn open(
    path: &std::path::Path,
    pin: &SecretKey,
    audit: &SecretKey,
    clock: Arc<ManualClock>,
) -> Registry {
    Registry::new(
        Db::open(path).unwrap(),
        Ok(pin.clone()),
        Ok(audit.clone()),
        LockPolicy::default(),
        clock,
    )
    .unwrap()
}

fn attempt<'a>(user_id: &'a str, digits: &'a str) -> Attempt<'a> {
    Attempt {
        user_id,
        digits,
        origin: Origin {
            actor: Actor::System,
            channel: Channel::Phone,
            call_sid: Some("CA00000000000000000000000000000001".into()),
        },
        note: None,
    }
}

fn wrong(pin: &str) -> String {
    let n: u32 = pin.parse().unwrap();
    format!("{:04}", (n + 1) % 10_000)
}

#[test]
fn the_right_pin_verifies_once_and_rotates() {
    let f = Fixture::new();
    let user = f.user(Role::Provider);
    let id = user.user_id.to_string();
    let pin = f.pin(&user);

    assert!(matches!(f.try_pin(&id, &pin), Verdict::Verified(u) if u.user_id == user.user_id));
    let next = f.pin(&user);
    assert_ne!(pin, next, "the PIN rotates on success");
    assert_eq!(
        f.try_pin(&id, &pin),
        Verdict::Rejected(Rejection::WrongPin { locked_now: false })
    );
    assert!(matches!(f.try_pin(&id, &next), Verdict::Verified(_)));
    assert_eq!(
        f.events(&user),
        [
            "generated",
            "viewed",
            "validated",
            "generated",
            "viewed",
            "validation_failed",
            "validated",
            "generated"
        ]
    );
}

#[test]
fn rotation_is_recorded_with_its_reason() {
    let f = Fixture::new();
    let user = f.user(Role::Staff);
    let pin = f.pin(&user);
    f.try_pin(&user.user_id.to_string(), &pin);
    let newest = &f.registry.audit_events(user.user_id, 1, 0).unwrap()[0];
    assert_eq!(newest.event, "generated");
    assert_eq!(newest.detail, "rotated after validation");
    assert_eq!(newest.channel, "phone");
    assert_eq!(
        newest.call_sid.as_deref(),
        Some("CA00000000000000000000000000000001")
    );
}

#[test]
fn five_failures_in_a_row_lock_until_the_owner_renews() {
    let f = Fixture::new();
    let user = f.user(Role::Staff);
    let id = user.user_id.to_string();
    let pin = f.pin(&user);
    for n in 1..=4 {
        assert_eq!(
            f.try_pin(&id, &wrong(&pin)),
            Verdict::Rejected(Rejection::WrongPin { locked_now: false }),
            "failure {n}"
        );
    }
    assert_eq!(
        f.try_pin(&id, &wrong(&pin)),
        Verdict::Rejected(Rejection::WrongPin { locked_now: true })
    );
    assert!(f.registry.is_locked(user.user_id).unwrap());
    assert_eq!(f.events(&user).iter().filter(|e| *e == "locked").count(), 1);

    // Time does not lift the lock, and the right PIN is refused.
    f.clock.advance(Duration::days(365));
    assert_eq!(f.try_pin(&id, &pin), Verdict::Rejected(Rejection::Locked));

    f.registry.renew_pin(user.user_id, &Origin::cli()).unwrap();
    assert!(!f.registry.is_locked(user.user_id).unwrap());
    let renewed = f.pin(&user);
    assert!(matches!(f.try_pin(&id, &renewed), Verdict::Verified(_)));
}

#[test]
fn a_success_resets_the_streak_but_not_the_rolling_count() {
    let f = Fixture::new();
    let user = f.user(Role::Provider);
    let id = user.user_id.to_string();
    // 4 failures then a success, twice: 8 failures, never 5 in a row.
    for _ in 0..2 {
        let pin = f.pin(&user);
        for _ in 0..4 {
            f.try_pin(&id, &wrong(&pin));
        }
        assert!(matches!(f.try_pin(&id, &pin), Verdict::Verified(_)));
        f.clock.advance(Duration::days(1));
    }
    let pin = f.pin(&user);
    f.try_pin(&id, &wrong(&pin));
    f.try_pin(&id, &wrong(&pin));
    assert!(
        !f.registry.is_locked(user.user_id).unwrap(),
        "10 failures in the window"
    );
    assert_eq!(
        f.try_pin(&id, &wrong(&pin)),
        Verdict::Rejected(Rejection::WrongPin { locked_now: true }),
        "the 11th failure in 30 days locks"
    );
}

#[test]
fn failures_older_than_the_window_no_longer_count() {
    let f = Fixture::new();
    let user = f.user(Role::Provider);
    let id = user.user_id.to_string();
    for _ in 0..2 {
        let pin = f.pin(&user);
        for _ in 0..4 {
            f.try_pin(&id, &wrong(&pin));
        }
        f.try_pin(&id, &pin);
    }
    f.clock.advance(Duration::days(31));
    let pin = f.pin(&user);
    for _ in 0..4 {
        f.try_pin(&id, &wrong(&pin));
    }
    assert!(!f.registry.is_locked(user.user_id).unwrap());
}

#[test]
fn lock_thresholds_follow_the_policy() {
    let f = Fixture::new();
    let user = f.user(Role::Provider);
    let strict = Registry::new(
        Db::open(&f.path).unwrap(),
        Ok(f.pin_key.clone()),
        Ok(f.audit_key.clone()),
        LockPolicy {
            max_consecutive_failures: 2,
            ..LockPolicy::default()
        },
        f.clock.clone(),
    )
    .unwrap();
    let id = user.user_id.to_string();
    let pin = f.pin(&user);
    strict.validate_pin(&attempt(&id, &wrong(&pin))).unwrap();
    assert_eq!(
        strict.validate_pin(&attempt(&id, &wrong(&pin))).unwrap(),
        Verdict::Rejected(Rejection::WrongPin { locked_now: true })
    );
}

#[test]
fn unknown_and_malformed_user_ids_are_rejected_like_wrong_pins() {
    let f = Fixture::new();
    let user = f.user(Role::Provider);
    let pin = f.pin(&user);
    let mut unknown = user.user_id.to_stored() + 1;
    while UserId::from_stored(unknown).is_some_and(|id| f.registry.user(id).is_ok()) {
        unknown += 1;
    }
    for id in [
        unknown.to_string(),
        "12".into(),
        "abc".into(),
        "9".repeat(40),
    ] {
        assert_eq!(
            f.try_pin(&id, &pin),
            Verdict::Rejected(Rejection::UnknownUser),
            "{id}"
        );
    }
    // Recorded without a subject, and the real user is untouched.
    assert_eq!(f.registry.audit_head().unwrap().count, 6);
    assert!(!f.registry.is_locked(user.user_id).unwrap());
    assert!(f.registry.verify_audit(None).unwrap().is_ok());
}

#[test]
fn concurrent_validations_of_one_pin_succeed_exactly_once() {
    const TRIES: usize = 16;
    let f = Fixture::new();
    let user = f.user(Role::Staff);
    let id = user.user_id.to_string();
    let pin = f.pin(&user);
    let barrier = Arc::new(Barrier::new(TRIES));
    let registries: Vec<Registry> = (0..TRIES).map(|_| f.reopen()).collect();
    let verdicts: Vec<Verdict> = std::thread::scope(|scope| {
        let handles: Vec<_> = registries
            .iter()
            .map(|registry| {
                let (barrier, id, pin) = (barrier.clone(), &id, &pin);
                scope.spawn(move || {
                    barrier.wait();
                    registry.validate_pin(&attempt(id, pin)).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let successes = verdicts
        .iter()
        .filter(|v| matches!(v, Verdict::Verified(_)))
        .count();
    assert_eq!(successes, 1, "{verdicts:?}");
    assert!(f.registry.verify_audit(None).unwrap().is_ok());
}

#[test]
fn renewing_records_generated_and_changes_the_pin() {
    let f = Fixture::new();
    let user = f.user(Role::Staff);
    let before = f.pin(&user);
    f.registry.renew_pin(user.user_id, &Origin::cli()).unwrap();
    assert_ne!(before, f.pin(&user));
    let events = f.registry.audit_events(user.user_id, 10, 0).unwrap();
    assert_eq!(events[1].event, "generated");
    assert_eq!(events[1].detail, "requested");
}

#[test]
fn a_pin_row_moved_to_another_user_does_not_decrypt() {
    let f = Fixture::new();
    let (a, b) = (f.user(Role::Staff), f.user(Role::Staff));
    let conn = rusqlite::Connection::open(&f.path).unwrap();
    conn.execute(
        "UPDATE support_pins SET nonce = (SELECT nonce FROM support_pins WHERE user_id = ?1),
             ciphertext = (SELECT ciphertext FROM support_pins WHERE user_id = ?1)
         WHERE user_id = ?2",
        [a.user_id.to_stored(), b.user_id.to_stored()],
    )
    .unwrap();
    assert!(f.registry.view_pin(b.user_id, &Origin::cli()).is_err());
}

#[test]
fn the_database_files_hold_no_pin_in_clear() {
    let f = Fixture::new();
    let users: Vec<User> = (0..60).map(|_| f.user(Role::Staff)).collect();
    let pins: Vec<String> = users.iter().map(|u| f.pin(u)).collect();
    let files = read_db_files(&f.path);

    // Four-digit runs occur in user IDs and timestamps; a PIN equal to one
    // of those proves nothing either way and is skipped.
    let public = public_text(&f.path);
    let checked: Vec<&String> = pins
        .iter()
        .filter(|p| !public.contains(p.as_str()))
        .collect();
    assert!(
        checked.len() >= 20,
        "too few PINs to check: {}",
        checked.len()
    );
    for pin in &checked {
        assert!(
            !contains(&files, pin.as_bytes()),
            "PIN found in clear in the database files"
        );
    }

    // The same search finds a PIN stored in clear, so it can fail.
    let conn = rusqlite::Connection::open(&f.path).unwrap();
    conn.execute("CREATE TABLE leak (pin TEXT)", []).unwrap();
    conn.execute("INSERT INTO leak VALUES (?1)", [checked[0].as_str()])
        .unwrap();
    assert!(contains(&read_db_files(&f.path), checked[0].as_bytes()));
}

fn read_db_files(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        if let Ok(mut data) = std::fs::read(file) {
            bytes.append(&mut data);
        }
    }
    assert!(!bytes.is_empty());
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every text and number the schema stores openly, concatenated.
fn public_text(path: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut out = String::new();
    for sql in [
        "SELECT group_concat(user_id || ' ' || name || ' ' || created_at, ' ') FROM users",
        "SELECT group_concat(at || ' ' || coalesce(subject_user_id, '') || ' ' || actor || ' ' || detail || ' ' || coalesce(call_sid, ''), ' ') FROM audit_events",
        "SELECT group_concat(key_id || ' ' || generated_at || ' ' || failures_since, ' ') FROM support_pins",
        "SELECT group_concat(key || ' ' || value, ' ') FROM meta",
        "SELECT group_concat(name || ' ' || created_at, ' ') FROM practices",
    ] {
        let text: Option<String> = conn.query_row(sql, [], |r| r.get(0)).unwrap();
        out.push_str(&text.unwrap_or_default());
        out.push(' ');
    }
    out
}

#[test]
fn a_different_key_is_refused_at_start_up() {
    let f = Fixture::new();
    f.user(Role::Staff);
    let err = Registry::new(
        Db::open(&f.path).unwrap(),
        Ok(SecretKey::generate()),
        Ok(f.audit_key.clone()),
        LockPolicy::default(),
        f.clock.clone(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("is not the key this database uses"),
        "{err}"
    );
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn key_rotation_keeps_every_pin_and_the_chain() {
    let f = Fixture::new();
    let users: Vec<User> = (0..5).map(|_| f.user(Role::Staff)).collect();
    let before: Vec<String> = users.iter().map(|u| f.pin(u)).collect();
    let new_key = SecretKey::generate();
    assert_eq!(f.registry.rotate_pin_key(&new_key, || Ok(())).unwrap(), 5);

    let rotated = open(&f.path, &new_key, &f.audit_key, f.clock.clone());
    let after: Vec<String> = users
        .iter()
        .map(|u| {
            rotated
                .view_pin(u.user_id, &Origin::cli())
                .unwrap()
                .reveal()
                .to_owned()
        })
        .collect();
    assert_eq!(before, after);
    assert!(rotated.verify_audit(None).unwrap().is_ok());
    assert!(
        Registry::new(
            Db::open(&f.path).unwrap(),
            Ok(f.pin_key.clone()),
            Ok(f.audit_key.clone()),
            LockPolicy::default(),
            f.clock.clone(),
        )
        .is_err(),
        "the old key no longer fits"
    );
}

#[test]
fn a_failed_key_rotation_changes_nothing() {
    let f = Fixture::new();
    let user = f.user(Role::Staff);
    let before = f.pin(&user);
    let head = f.registry.audit_head().unwrap();
    let failed = f.registry.rotate_pin_key(&SecretKey::generate(), || {
        Err(pinline::error::Error::Invalid("disk full".into()))
    });
    assert!(failed.is_err());
    assert_eq!(f.pin(&user), before);
    assert_eq!(
        f.registry.audit_head().unwrap().count,
        head.count + 1,
        "only the view"
    );
}

#[test]
fn import_adds_all_rows_or_none() {
    use pinline::registry::ImportRow;
    let f = Fixture::new();
    f.registry.add_practice("Lakeside").unwrap();
    let row = |line, practice: &str, name: &str| ImportRow {
        line,
        practice: practice.into(),
        user: NewUser {
            user_id: None,
            role: Role::Staff,
            name: name.into(),
            email: None,
            phones: vec![],
        },
    };
    let bad = [row(2, "Lakeside", "A"), row(3, "Nowhere", "B")];
    let err = f
        .registry
        .import_users(&bad, false, &Origin::cli())
        .unwrap_err();
    assert!(err.to_string().starts_with("line 3:"), "{err}");
    assert!(f.registry.users().unwrap().is_empty());
    assert_eq!(f.registry.audit_head().unwrap().count, 0);

    let added = f.registry.import_users(&bad, true, &Origin::cli()).unwrap();
    assert_eq!(added.len(), 2);
    assert_eq!(f.registry.practices().unwrap().len(), 2);
}
