//! Invariants over random sequences of webhooks, operator actions and
//! clock jumps, run against the phone line over a real SQLite file:
//!
//! - a call is verified only after the right current PIN of an unlocked
//!   user was entered in that call;
//! - a PIN validates at most once, and the stored PIN changes when it does;
//! - every PIN check leaves exactly one `validated` or `validation_failed`
//!   event, and every lock, view, new PIN, approval request, decision and
//!   claim exactly one event of its own; the audit chain verifies;
//! - a failed PIN check is answered alike whatever failed (an unknown user
//!   ID, a wrong or stale PIN, a locked user), byte for byte apart from the
//!   step numbers in its URLs and the call's own SID.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration};
use pinline::clock::ManualClock;
use pinline::crypto::{PinCipher, SecretKey};
use pinline::domain::account::{NewUser, Role, UserId};
use pinline::domain::lock::LockPolicy;
use pinline::flow::{CallState, Gather};
use pinline::ivr::{Hook, Ivr, IvrConfig, VoiceRequest};
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
    View(usize),
    /// The staff member asks for help with the provider's account.
    OpenCase,
    /// The provider decides the newest case: approve or decline.
    Decide(bool),
    /// An agent claims the next caller waiting.
    Claim,
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
        1 => (0..USERS).prop_map(Op::View),
        1 => Just(Op::OpenCase),
        1 => any::<bool>().prop_map(Op::Decide),
        1 => Just(Op::Claim),
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
    /// Steps go through the batching writer, as the server submits them.
    ivr: Arc<Ivr>,
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
    /// Events each kind of action must have left, by event name.
    expected: HashMap<&'static str, usize>,
    /// The audit log's counts before the sequence began.
    baseline: HashMap<String, usize>,
    /// The answer to a failed PIN check, by the call's failed tries and
    /// language before it, with step numbers blanked.
    failure_answers: HashMap<(u8, String), String>,
    agent: pinline::domain::agent::AgentId,
    newest_case: Option<pinline::domain::case::CaseNumber>,
    /// The caller the agent's claim is on, if any.
    held: Option<String>,
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
        let agent = registry.add_agent("Props Agent").unwrap().0.agent_id;
        let mut config = IvrConfig::new("https://pinline.example.org");
        config.caller_failures_per_hour = u32::MAX;
        let prompts = Arc::new(PromptCatalog::embedded().unwrap());
        let ivr = Arc::new(Ivr::new(registry.clone(), prompts, config, clock.clone()));
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
            expected: HashMap::new(),
            baseline: HashMap::new(),
            failure_answers: HashMap::new(),
            agent,
            newest_case: None,
            held: None,
        }
        .with_baseline()
    }

    fn with_baseline(mut self) -> Self {
        self.baseline = self.event_counts();
        self
    }

    fn event_counts(&self) -> HashMap<String, usize> {
        let conn = rusqlite::Connection::open(&self.db_path).unwrap();
        let mut stmt = conn
            .prepare("SELECT event, count(*) FROM audit_events GROUP BY event")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn expect(&mut self, event: &'static str) {
        *self.expected.entry(event).or_default() += 1;
    }

    /// A case's events concern two accounts, and go into each one's log:
    /// one about the staff member asking, one about the account asked for.
    fn expect_for_both(&mut self, event: &'static str) {
        self.expect(event);
        self.expect(event);
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
        self.answer_with_report(call, digits).map(|r| r.twiml)
    }

    fn answer_with_report(
        &mut self,
        call: usize,
        digits: Option<String>,
    ) -> Option<pinline::ivr::StepReport> {
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
        let report = self
            .ivr
            .answer(
                self.request(call, digits.clone()),
                Hook::Gather { gather, step },
            )
            .wait()
            .unwrap();
        if let Some(check) = report.check {
            if check.succeeded {
                self.expect("validated");
                self.expect("generated");
            } else {
                self.expect("validation_failed");
            }
            if check.locked_now {
                self.expect("locked");
            }
        }
        self.calls[call].1 = Some((Some(gather), step, digits));
        Some(report)
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
                self.ivr
                    .answer(self.request(c, None), Hook::Incoming)
                    .wait()
                    .unwrap();
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
                    let hook = match gather {
                        None => Hook::Incoming,
                        Some(gather) => Hook::Gather { gather, step },
                    };
                    self.ivr.answer(request, hook).wait().unwrap();
                }
            }
            Op::Hangup(c) => {
                self.ivr
                    .end_call(self.calls[c].0.clone(), "completed".into())
                    .wait()
                    .unwrap();
            }
            Op::Renew(u) => {
                let user = self.users[u];
                self.previous.insert(user, self.current_pin(user));
                self.registry.renew_pin(user, &Origin::cli()).unwrap();
                self.expect("generated");
            }
            Op::View(u) => {
                self.registry
                    .view_pin(self.users[u], &Origin::cli())
                    .unwrap();
                self.expect("viewed");
            }
            Op::OpenCase => {
                // Refused while an approval still holds: nothing to ask.
                if let Ok((case, reused)) =
                    self.registry
                        .open_case(self.users[1], self.users[0], &Origin::cli())
                {
                    if !reused {
                        self.expect_for_both("approval_requested");
                    }
                    self.newest_case = Some(case.case_number);
                }
            }
            Op::Decide(approve) => {
                if let Some(number) = self.newest_case.clone() {
                    let decision = if approve {
                        pinline::domain::case::Decision::Approve
                    } else {
                        pinline::domain::case::Decision::Decline
                    };
                    let outcome = self.registry.reply_to_case(
                        &number,
                        self.users[0],
                        decision,
                        None,
                        &Origin::cli(),
                    );
                    match outcome {
                        Ok(pinline::registry::ReplyOutcome::Approved) => {
                            self.expect_for_both("approval_granted")
                        }
                        Ok(pinline::registry::ReplyOutcome::Declined) => {
                            self.expect_for_both("approval_declined")
                        }
                        // A decision the case's status no longer takes.
                        Ok(pinline::registry::ReplyOutcome::RecordedOnly) | Err(_) => {}
                    }
                }
            }
            Op::Claim => {
                // An agent who already holds a claim gets the same caller
                // back, which is no new claim.
                let claimed = self
                    .registry
                    .claim_next(self.agent, &Origin::cli())
                    .unwrap();
                let sid = claimed.map(|c| c.call_sid);
                if sid.is_some() && sid != self.held {
                    self.expect("claimed");
                }
                self.held = sid;
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
        let asked = self.state(c);
        let answer = self.answer(c, Some(digits.clone()));
        if at_pin && !lapsed && !expect_success {
            let (Some(asked), Some(answer)) = (asked, answer) else {
                panic!("a PIN check with no call or no answer");
            };
            let key = (asked.failed_tries, format!("{:?}", asked.language));
            // The call's own SID names its conference room.
            let blanked = blank_steps(&answer).replace(&self.calls[c].0, "CALL");
            let first = self
                .failure_answers
                .entry(key)
                .or_insert_with(|| blanked.clone());
            assert_eq!(
                *first, blanked,
                "failed PIN checks are answered alike, whatever failed"
            );
        }
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
        let now = self.event_counts();
        for event in [
            "validated",
            "validation_failed",
            "locked",
            "viewed",
            "generated",
            "approval_requested",
            "approval_granted",
            "approval_declined",
            "claimed",
        ] {
            let logged = now.get(event).copied().unwrap_or(0)
                - self.baseline.get(event).copied().unwrap_or(0);
            assert_eq!(
                logged,
                self.expected.get(event).copied().unwrap_or(0),
                "one `{event}` event per action"
            );
        }
        assert!(
            self.registry.verify_audit(None).unwrap().is_ok(),
            "the chain verifies"
        );
    }
}

/// `twiml` with the step numbers in its URLs blanked: they count the
/// call's own requests, and say nothing about what was checked.
fn blank_steps(twiml: &str) -> String {
    let mut out = String::with_capacity(twiml.len());
    let mut rest = twiml;
    while let Some(at) = rest.find("step=") {
        out.push_str(&rest[..at + 5]);
        rest = rest[at + 5..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push('#');
    }
    out.push_str(rest);
    out
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
