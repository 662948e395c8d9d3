//! Invariants over random sequences of webhooks, operator actions and
//! clock jumps, run against the phone line over a real SQLite file:
//!
//! - a call is verified only after the right current PIN of an unlocked
//!   user was entered in that call;
//! - a PIN validates at most once, and the stored PIN changes when it does;
//! - every PIN check leaves exactly one `validated` or `validation_failed`
//!   event, and the audit chain verifies.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration};
use pinline::clock::ManualClock;
use pinline::crypto::{PinCipher, SecretKey};
use pinline::domain::account::{NewUser, Role, UserId};
use pinline::domain::lock::LockPolicy;
use pinline::flow::{CallState, Gather};
use pinline::ivr::{Ivr, IvrConfig, VoiceRequest};
use pinline::prompts::PromptCatalog;
use pinline::registry::{Origin, Registry};
use pinline::storage::Db;
use proptest::prelude::*;

/// Who a keyed-in user ID belongs to.
#[derive(Debug, Clone, Copy)]
enum Who {
    User(usize),
    Unknown,
}

/// What a keyed-in PIN is, for the user the call claimed.
#[derive(Debug, Clone, Copy)]
enum PinKind {
    Right,
    Wrong,
    /// The PIN that was right before the last rotation.
    Stale,
}

#[derive(Debug, Clone)]
enum Op {
    Incoming(usize),
    UserId(usize, Who),
    Pin(usize, PinKind),
    /// A user ID then a PIN, as a caller usually keys them.
    Attempt(usize, Who, PinKind),
    Keys(usize, u8),
    Silence(usize),
    Replay(usize),
    Hangup(usize),
    Renew(usize),
    Advance(i64),
}

const CALLS: usize = 2;
const USERS: usize = 2;

fn op() -> impl Strategy<Value = Op> {
    let call = 0..CALLS;
    let who = prop_oneof![4 => (0..USERS).prop_map(Who::User), 1 => Just(Who::Unknown)];
    let pin = prop_oneof![3 => Just(PinKind::Right), 2 => Just(PinKind::Wrong), 1 => Just(PinKind::Stale)];
    prop_oneof![
        3 => call.clone().prop_map(Op::Incoming),
        4 => (call.clone(), who.clone()).prop_map(|(c, w)| Op::UserId(c, w)),
        3 => (call.clone(), pin.clone()).prop_map(|(c, p)| Op::Pin(c, p)),
        6 => (call.clone(), who.clone(), pin).prop_map(|(c, w, p)| Op::Attempt(c, w, p)),
        2 => (call.clone(), 0..10u8).prop_map(|(c, k)| Op::Keys(c, k)),
        1 => call.clone().prop_map(Op::Silence),
        2 => call.clone().prop_map(Op::Replay),
        1 => call.clone().prop_map(Op::Hangup),
        1 => (0..USERS).prop_map(Op::Renew),
        1 => (0..20i64).prop_map(Op::Advance),
    ]
}

/// A call's last request: its gather (`None` for the incoming webhook),
/// step and keys, kept to replay it.
type LastRequest = (Option<Gather>, u32, Option<String>);

struct World {
    _dir: tempfile::TempDir,
    db_path: std::path::PathBuf,
    registry: Arc<Registry>,
    ivr: Ivr,
    clock: Arc<ManualClock>,
    cipher: PinCipher,
    users: Vec<UserId>,
    /// Per call: its SID and the last request (gather, step, digits).
    calls: Vec<(String, Option<LastRequest>)>,
    /// Per call: the user ID keyed in last.
    claimed: HashMap<usize, Option<UserId>>,
    /// Per user: the PIN before the last rotation.
    previous: HashMap<UserId, String>,
    /// Verifications the model expects, and PIN checks made.
    expected_successes: usize,
    pin_checks: usize,
}

impl World {
    fn new(round: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("p.db");
        let pin_key = SecretKey::generate();
        let clock = Arc::new(ManualClock::new(
            DateTime::parse_from_rfc3339("2026-07-01T08:00:00Z")
                .unwrap()
                .to_utc(),
        ));
        let registry = Arc::new(
            Registry::new(
                Db::open(&db_path).unwrap(),
                Ok(pin_key.clone()),
                Ok(SecretKey::generate()),
                LockPolicy::default(),
                clock.clone(),
            )
            .unwrap(),
        );
        let practice = registry.add_practice("Props").unwrap();
        let users = (0..USERS)
            .map(|i| {
                let new = NewUser {
                    user_id: None,
                    role: if i == 0 { Role::Provider } else { Role::Staff },
                    name: format!("User {i}"),
                    email: None,
                    phones: vec![],
                };
                registry
                    .add_user(&practice.practice_id.to_string(), &new, &Origin::cli())
                    .unwrap()
                    .user_id
            })
            .collect();
        let mut config = IvrConfig::new("https://pinline.example.org");
        config.caller_failures_per_hour = u32::MAX;
        let prompts = Arc::new(PromptCatalog::embedded().unwrap());
        let ivr = Ivr::new(registry.clone(), prompts, config, clock.clone());
        let calls = (0..CALLS)
            .map(|c| (format!("CA{round:016x}{c:016x}"), None))
            .collect();
        Self {
            _dir: dir,
            db_path,
            registry,
            ivr,
            clock,
            cipher: PinCipher::new(&pin_key),
            users,
            calls,
            claimed: HashMap::new(),
            previous: HashMap::new(),
            expected_successes: 0,
            pin_checks: 0,
        }
    }

    fn current_pin(&self, user: UserId) -> String {
        let conn = rusqlite::Connection::open(&self.db_path).unwrap();
        let row = pinline::storage::pins::get(&conn, user).unwrap().unwrap();
        self.cipher
            .open(user, row.version, &row.sealed)
            .unwrap()
            .reveal()
            .to_owned()
    }

    fn state(&self, call: usize) -> Option<CallState> {
        let conn = rusqlite::Connection::open(&self.db_path).unwrap();
        conn.query_row(
            "SELECT state FROM calls WHERE call_sid = ?1",
            [&self.calls[call].0],
            |r| r.get::<_, String>(0),
        )
        .ok()
        .map(|json| serde_json::from_str(&json).unwrap())
    }

    fn request(&self, call: usize, digits: Option<String>) -> VoiceRequest {
        VoiceRequest {
            call_sid: self.calls[call].0.clone(),
            from: Some("+15550009999".into()),
            to: None,
            digits,
            stir_verstat: None,
        }
    }

    /// Answers the call's current gather (as the provider would, at the
    /// URL the last answer named).
    fn answer(&mut self, call: usize, digits: Option<String>) -> Option<String> {
        let state = self.state(call)?;
        let pinline::flow::Phase::Awaiting(gather) = state.phase else {
            return None;
        };
        let step = self.step(call)?;
        // Any keys at the PIN gather are a PIN check, whichever op typed
        // them; silence is not.
        let keys = digits.as_deref().unwrap_or("").trim_end_matches('#');
        if gather == Gather::Pin && !keys.is_empty() && !self.lapsed(call) {
            self.pin_checks += 1;
        }
        let twiml = self
            .ivr
            .gather(&self.request(call, digits.clone()), gather, step)
            .unwrap()
            .twiml;
        self.calls[call].1 = Some((Some(gather), step, digits));
        Some(twiml)
    }

    fn step(&self, call: usize) -> Option<u32> {
        let conn = rusqlite::Connection::open(&self.db_path).unwrap();
        conn.query_row(
            "SELECT step FROM calls WHERE call_sid = ?1",
            [&self.calls[call].0],
            |r| r.get(0),
        )
        .ok()
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Incoming(c) => {
                self.ivr.incoming(&self.request(c, None)).unwrap();
                self.calls[c].1 = Some((None, 0, None));
            }
            Op::UserId(c, who) => {
                let (text, user) = match who {
                    Who::User(u) => (self.users[u].to_string(), Some(self.users[u])),
                    Who::Unknown => ("98765432".to_owned(), None),
                };
                if self.awaiting(c) == Some(Gather::UserId) {
                    self.claimed.insert(c, user);
                }
                self.answer(c, Some(format!("{text}#")));
            }
            Op::Pin(c, kind) => self.enter_pin(c, kind),
            Op::Attempt(c, who, kind) => {
                self.apply(&Op::UserId(c, who));
                self.enter_pin(c, kind);
            }
            Op::Keys(c, k) => {
                self.answer(c, Some(k.to_string()));
            }
            Op::Silence(c) => {
                self.answer(c, None);
            }
            Op::Replay(c) => {
                if let Some((gather, step, digits)) = self.calls[c].1.clone() {
                    let request = self.request(c, digits);
                    match gather {
                        None => self.ivr.incoming(&request).unwrap(),
                        Some(g) => self.ivr.gather(&request, g, step).unwrap(),
                    };
                }
            }
            Op::Hangup(c) => {
                self.ivr.status(&self.calls[c].0, "completed").unwrap();
            }
            Op::Renew(u) => {
                let user = self.users[u];
                self.previous.insert(user, self.current_pin(user));
                self.registry.renew_pin(user, &Origin::cli()).unwrap();
            }
            Op::Advance(minutes) => self.clock.advance(Duration::minutes(minutes)),
        }
    }

    fn awaiting(&self, call: usize) -> Option<Gather> {
        match self.state(call)?.phase {
            pinline::flow::Phase::Awaiting(g) => Some(g),
            _ => None,
        }
    }

    fn enter_pin(&mut self, c: usize, kind: PinKind) {
        let at_pin = self.awaiting(c) == Some(Gather::Pin);
        let claimed = self.claimed.get(&c).copied().flatten();
        let right = claimed.map(|u| self.current_pin(u));
        let digits = match (kind, &right, claimed) {
            (PinKind::Right, Some(pin), _) => pin.clone(),
            (PinKind::Stale, _, Some(u)) => self
                .previous
                .get(&u)
                .cloned()
                .unwrap_or_else(|| "0000".into()),
            (_, Some(pin), _) => format!("{:04}", (pin.parse::<u32>().unwrap() + 1) % 10_000),
            _ => "4321".to_owned(),
        };
        let locked = claimed.is_some_and(|u| self.registry.is_locked(u).unwrap());
        let lapsed = self.lapsed(c);
        let expect_success =
            at_pin && !lapsed && !locked && right.as_deref() == Some(digits.as_str());
        let before = claimed.map(|u| self.current_pin(u));
        self.answer(c, Some(digits.clone()));
        let verified = self.state(c).and_then(|s| s.verified).map(|v| v.user_id);
        if expect_success {
            self.expected_successes += 1;
            let user = claimed.unwrap();
            assert_eq!(
                verified,
                Some(user),
                "the right PIN of an unlocked user verifies"
            );
            assert_ne!(self.current_pin(user), digits, "a used PIN is replaced");
            self.previous.insert(user, before.unwrap());
        } else if at_pin {
            assert_eq!(verified, None, "verified without the right current PIN");
        }
    }

    /// Whether the call has been idle long enough to start over.
    fn lapsed(&self, call: usize) -> bool {
        let conn = rusqlite::Connection::open(&self.db_path).unwrap();
        let updated: Option<String> = conn
            .query_row(
                "SELECT updated_at FROM calls WHERE call_sid = ?1",
                [&self.calls[call].0],
                |r| r.get(0),
            )
            .ok();
        updated.is_some_and(|t| {
            let t = DateTime::parse_from_rfc3339(&t).unwrap().to_utc();
            pinline::clock::Clock::now(&*self.clock) - t > Duration::minutes(15)
        })
    }

    fn check_log(&self) {
        let conn = rusqlite::Connection::open(&self.db_path).unwrap();
        let count = |event: &str| -> usize {
            conn.query_row(
                "SELECT count(*) FROM audit_events WHERE event = ?1 AND channel = 'phone'",
                [event],
                |r| r.get::<_, i64>(0),
            )
            .unwrap() as usize
        };
        assert_eq!(
            count("validated"),
            self.expected_successes,
            "one event per success, no more"
        );
        assert_eq!(
            count("validated") + count("validation_failed"),
            self.pin_checks,
            "one event per PIN check"
        );
        assert!(
            self.registry.verify_audit(None).unwrap().is_ok(),
            "the chain verifies"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_webhook_sequences_keep_the_verification_invariants(ops in prop::collection::vec(op(), 1..40)) {
        static ROUND: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let round = ROUND.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut world = World::new(round);
        for op in &ops {
            world.apply(op);
        }
        world.check_log();
    }
}
