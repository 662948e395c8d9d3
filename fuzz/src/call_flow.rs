//! The caller's and the agent's state machines fed arbitrary event
//! sequences, each reply rendered to TwiML: nothing panics, no caller is
//! verified but by a PIN check that said so, the gather a state awaits is
//! the one its TwiML asks for, and every state survives storage as JSON.
//!
//! Input format: tokens separated by whitespace, so seeds read like
//! calls. A first token `agent` drives the agent line instead.
//!
//! - `.` is a gather that timed out; `repeat` a stale webhook; `restart`
//!   a call whose state lapsed; `hangup` the provider's final status.
//! - Any other token is keys pressed, sent to the gather the call awaits.
//! - When the machine asks for a check, the next token may answer it:
//!   `pin-ok`, `pin-ok-staff` (else the PIN is wrong); `assist`,
//!   `pending` (else refused); `case` (else no such case); `changed`
//!   (else the decision is recorded); on the agent line `sign-ok`,
//!   `offer`, `offer-verified` (else nobody waits) and `bridged` (else
//!   the caller left). `pin-ok:Name` and the like set the name the check
//!   returns, as a database could hold it.

use std::iter::Peekable;
use std::str::SplitAsciiWhitespace;
use std::sync::OnceLock;

use pinline::agent_flow::{self, AgentDecision, AgentPhase, AgentState, Offer};
use pinline::domain::account::UserId;
use pinline::domain::agent::AgentId;
use pinline::domain::case::CaseNumber;
use pinline::flow::{
    self, CallState, CaseSummary, Decision, Gather, Input, LanguageTag, MAX_FAILED_TRIES,
    MAX_MENU_MISSES, MAX_SILENT_GATHERS, Next, OnBehalf, Phase, PinOutcome, QueueClass,
    QueueContext, Reply, Subject, SubjectRuling, VerifiedCaller,
};
use pinline::ivr::render::{self, Target};
use pinline::prompts::{Language, PromptCatalog};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::xml::{Element, parse_twiml};

const BASE_URL: &str = "https://pinline.example.com";
const CALL_SID: &str = "CA0123456789abcdef0123456789abcdef";
/// A name as a database could hold it: markup and quotes the TwiML must
/// escape, and a control character XML cannot carry.
const NAME: &str = "Ann O'Neil <\"Bo\"> & Co\u{7}";
/// Long calls add little; short ones keep executions fast.
const MAX_EVENTS: usize = 200;

type Tokens<'a> = Peekable<SplitAsciiWhitespace<'a>>;

fn catalog() -> &'static PromptCatalog {
    static CATALOG: OnceLock<PromptCatalog> = OnceLock::new();
    CATALOG.get_or_init(|| PromptCatalog::embedded().expect("the shipped prompt files load"))
}

pub fn check(data: &[u8]) {
    let script = String::from_utf8_lossy(data);
    let mut tokens = script.split_ascii_whitespace().peekable();
    if tokens.next_if_eq(&"agent").is_some() {
        AgentCall::new().run(&mut tokens);
    } else {
        CallerCall::new().run(&mut tokens);
    }
}

/// Takes the next token if it is one of `words`, alone or as
/// `word:name`; returns the word and the name.
fn answer<'a>(tokens: &mut Tokens<'a>, words: &[&'static str]) -> Option<(&'static str, &'a str)> {
    let token = *tokens.peek()?;
    let (word, name) = token.split_once(':').unwrap_or((token, NAME));
    let word = *words.iter().find(|w| **w == word)?;
    tokens.next();
    Some((word, name))
}

fn input(token: &str) -> Input<'_> {
    if token == "." {
        Input::Silence
    } else {
        Input::Digits(token)
    }
}

/// One caller's call, with what the checks returned so far.
struct CallerCall {
    state: CallState,
    /// The caller the last successful PIN check vouched for, until the
    /// call restarts or ends.
    granted: Option<VerifiedCaller>,
    step: u32,
}

impl CallerCall {
    fn new() -> Self {
        let (state, reply) = flow::start();
        let mut call = Self {
            state,
            granted: None,
            step: 0,
        };
        call.answered(&reply);
        call
    }

    fn run(&mut self, tokens: &mut Tokens<'_>) {
        for _ in 0..MAX_EVENTS {
            let Some(token) = tokens.next() else { break };
            match token {
                "repeat" => {
                    let reply = flow::repeat(&self.state);
                    self.answered(&reply);
                }
                "restart" => {
                    let (state, reply) = flow::restart(&self.state);
                    assert_eq!(
                        state.language, self.state.language,
                        "a restart keeps the language"
                    );
                    assert_eq!(state.verified, None, "a restart keeps a verification");
                    self.granted = None;
                    self.state = state;
                    self.answered(&reply);
                }
                "hangup" => {
                    flow::end(&mut self.state);
                    self.granted = None;
                    self.check_state();
                }
                keys => self.keys(keys, tokens),
            }
        }
    }

    fn keys(&mut self, keys: &str, tokens: &mut Tokens<'_>) {
        let before = self.state.clone();
        let (state, reply) = match flow::on_input(&before, input(keys)) {
            Decision::Reply(state, reply) => (*state, reply),
            Decision::CheckPin { user_id } => {
                assert_eq!(before.phase, Phase::Awaiting(Gather::Pin));
                assert_eq!(before.claimed_user_id.as_ref(), Some(&user_id));
                let outcome = match answer(tokens, &["pin-ok", "pin-ok-staff"]) {
                    Some((word, name)) => {
                        let role = if word == "pin-ok" {
                            "provider"
                        } else {
                            "staff"
                        };
                        let caller = verified_caller(&user_id, name, role);
                        self.granted = Some(caller.clone());
                        PinOutcome::Verified(caller)
                    }
                    None => PinOutcome::Rejected,
                };
                flow::on_pin_outcome(&before, outcome)
            }
            Decision::RuleOnSubject { user_id } => {
                assert_eq!(before.phase, Phase::Awaiting(Gather::SubjectId));
                assert!(
                    before.verified.is_some(),
                    "an unverified caller asked about someone"
                );
                let user_id = UserId::parse(&user_id).expect("only well-formed IDs are ruled on");
                let ruling = match answer(tokens, &["assist", "pending"]) {
                    Some((word, name)) => {
                        let pending = word == "pending";
                        let request = OnBehalf {
                            subject: Subject {
                                user_id,
                                name: name.to_owned(),
                                role: "staff".to_owned(),
                            },
                            allowed: format!("provider for {name}"),
                            case_number: pending.then(|| "482913".to_owned()),
                            pending,
                        };
                        if pending {
                            SubjectRuling::Pending(request)
                        } else {
                            SubjectRuling::Assist(request)
                        }
                    }
                    None => SubjectRuling::Refused,
                };
                flow::on_subject_ruling(&before, ruling)
            }
            Decision::FindCase { case_number } => {
                assert_eq!(before.phase, Phase::Awaiting(Gather::CaseNumber));
                assert!(CaseNumber::parse(&case_number).is_ok(), "{case_number:?}");
                let case = answer(tokens, &["case"]).map(|(_, name)| CaseSummary {
                    case_number,
                    requestor_name: name.to_owned(),
                    subject_name: name.to_owned(),
                });
                flow::on_case_lookup(&before, case)
            }
            Decision::DecideCase {
                case_number,
                approve,
            } => {
                assert_eq!(before.phase, Phase::Awaiting(Gather::ApprovalChoice));
                let reviewed = before
                    .case_under_review
                    .as_ref()
                    .expect("a case is under review");
                assert_eq!(case_number, reviewed.case_number);
                assert_eq!(approve, keys.trim_end_matches('#') == "1");
                let decided = answer(tokens, &["changed"]).is_none().then_some(approve);
                flow::on_case_decided(&before, decided)
            }
        };
        if !matches!(before.phase, Phase::Awaiting(_)) {
            assert_eq!(state, before, "input changed a call that awaited none");
        }
        if state.language != before.language {
            assert_eq!(before.phase, Phase::Awaiting(Gather::UserId));
            assert_eq!(keys.trim_end_matches('#'), "9");
            assert_eq!(state.language, LanguageTag::EsUs);
        }
        self.state = state;
        self.answered(&reply);
    }

    /// Checks the state, and that `reply` fits it and renders.
    fn answered(&mut self, reply: &Reply) {
        self.check_state();
        match (&reply.next, self.state.phase) {
            (Next::Gather(asked), Phase::Awaiting(awaited)) => assert_eq!(*asked, awaited),
            (Next::Route(routed), Phase::Routed(class)) => assert_eq!(*routed, class),
            (Next::Hangup, Phase::Ended) => {}
            (next, phase) => panic!("the reply does {next:?} while the call is {phase:?}"),
        }
        self.step += 1;
        let target = Target {
            base_url: BASE_URL,
            call_sid: CALL_SID,
            step: self.step,
        };
        check_rendered(reply, self.state.language.into(), target);
    }

    fn check_state(&self) {
        let state = &self.state;
        assert!(state.failed_tries <= MAX_FAILED_TRIES, "{state:?}");
        assert!(state.silent_gathers <= MAX_SILENT_GATHERS, "{state:?}");
        assert!(state.menu_misses <= MAX_MENU_MISSES, "{state:?}");
        if let Some(verified) = &state.verified {
            assert_eq!(
                Some(verified),
                self.granted.as_ref(),
                "verified without a PIN check that said so"
            );
        }
        let needs_verification = matches!(
            state.phase,
            Phase::Awaiting(
                Gather::Menu | Gather::SubjectId | Gather::CaseNumber | Gather::ApprovalChoice
            ) | Phase::Routed(QueueClass::Verified | QueueClass::ApprovalPending)
        );
        if needs_verification {
            assert!(state.verified.is_some(), "{:?} unverified", state.phase);
        }
        let provider = state
            .verified
            .as_ref()
            .is_some_and(|v| v.role == "provider");
        match state.phase {
            Phase::Awaiting(Gather::Pin) => {
                let claimed = state
                    .claimed_user_id
                    .as_deref()
                    .expect("a user ID before the PIN");
                assert!(UserId::parse(claimed).is_ok(), "{claimed:?}");
            }
            Phase::Awaiting(Gather::CaseNumber) => assert!(provider, "only providers decide"),
            Phase::Awaiting(Gather::ApprovalChoice) => {
                assert!(provider, "only providers decide");
                assert!(state.case_under_review.is_some());
            }
            Phase::Awaiting(
                Gather::AgentId | Gather::Passcode | Gather::AgentChoice | Gather::AgentNext,
            ) => panic!("a caller at an agent-line gather: {:?}", state.phase),
            Phase::Routed(QueueClass::Unverified) => assert_eq!(state.verified, None),
            Phase::Routed(QueueClass::ApprovalPending) => {
                assert!(state.on_behalf.as_ref().is_some_and(|r| r.pending));
            }
            Phase::Ended => {
                assert_eq!(state.verified, None, "verification outlived the call");
                assert_eq!(state.claimed_user_id, None);
                assert_eq!(state.on_behalf, None);
                assert_eq!(state.case_under_review, None);
            }
            _ => {}
        }
        match (state.queue_context(), state.phase) {
            (None, Phase::Routed(_)) => panic!("a routed call without context"),
            (Some(context), Phase::Routed(class)) => check_context(&context, class, state),
            (Some(_), phase) => panic!("queue context at {phase:?}"),
            (None, _) => {}
        }
        round_trip(state);
    }
}

fn check_context(context: &QueueContext, class: QueueClass, state: &CallState) {
    assert_eq!(context.class, class);
    assert_eq!(context.verified, state.verified.is_some());
    assert_eq!(context.caller, state.verified);
    if !context.verified {
        assert_eq!(
            context.on_behalf_of, None,
            "an unverified caller asked about someone"
        );
    }
}

fn verified_caller(user_id: &str, name: &str, role: &str) -> VerifiedCaller {
    VerifiedCaller {
        user_id: UserId::parse(user_id).expect("PINs are checked for well-formed IDs"),
        name: name.to_owned(),
        role: role.to_owned(),
        practice: format!("{name} Practice"),
        verified_at: "2026-01-01T00:00:00Z".to_owned(),
        caller_id_matched: name.len().is_multiple_of(2),
        stir_verstat: Some("TN-Validation-Passed-A".to_owned()),
    }
}

/// One agent's call on the agent line.
struct AgentCall {
    state: AgentState,
    step: u32,
    callers: u32,
}

impl AgentCall {
    fn new() -> Self {
        let (state, reply) = agent_flow::start();
        let mut call = Self {
            state,
            step: 0,
            callers: 0,
        };
        call.answered(&reply);
        call
    }

    fn run(&mut self, tokens: &mut Tokens<'_>) {
        for _ in 0..MAX_EVENTS {
            let Some(token) = tokens.next() else { break };
            match token {
                "repeat" => {
                    let reply = agent_flow::repeat(&self.state);
                    self.answered(&reply);
                }
                "restart" => {
                    let (state, reply) = agent_flow::start();
                    self.state = state;
                    self.answered(&reply);
                }
                "hangup" => {
                    agent_flow::end(&mut self.state);
                    self.check_state();
                }
                keys => self.keys(keys, tokens),
            }
        }
    }

    fn keys(&mut self, keys: &str, tokens: &mut Tokens<'_>) {
        let before_phase = self.state.phase;
        let mut decision = agent_flow::on_input(&self.state, input(keys));
        let mut preface = None;
        // Each check the machine asks for is answered from the script,
        // until it has something to say.
        for _ in 0..8 {
            match decision {
                AgentDecision::Reply(state, reply) => {
                    self.state = *state;
                    self.answered(&reply);
                    return;
                }
                AgentDecision::SignIn { state, agent_id } => {
                    assert_eq!(before_phase, AgentPhase::Awaiting(Gather::Passcode));
                    let agent = answer(tokens, &["sign-ok"]).and(AgentId::parse(&agent_id).ok());
                    decision = agent_flow::on_sign_in(&state, agent);
                }
                AgentDecision::ClaimNext(state) => {
                    assert!(state.agent.is_some(), "a caller claimed for nobody");
                    let offer = answer(tokens, &["offer", "offer-verified"])
                        .map(|(word, name)| self.offer(word == "offer-verified", name));
                    if let Some(offer) = &offer {
                        assert!(!state.passed.contains(&offer.call_sid));
                    }
                    let (state, reply) = agent_flow::on_claim(&state, offer, preface.take());
                    self.state = state;
                    self.answered(&reply);
                    return;
                }
                AgentDecision::Connect(state, call_sid) => {
                    let offered = self
                        .state
                        .offer
                        .as_ref()
                        .expect("connecting a caller on offer");
                    assert_eq!(call_sid, offered.call_sid);
                    let bridged = answer(tokens, &["bridged"]).is_some();
                    if !bridged {
                        preface = Some(pinline::prompts::PromptKey::AgentCallerLeft);
                    }
                    decision = agent_flow::on_connect(&state, bridged);
                }
                AgentDecision::Pass(state, call_sid) => {
                    let offered = self
                        .state
                        .offer
                        .as_ref()
                        .expect("passing a caller on offer");
                    assert_eq!(call_sid, offered.call_sid);
                    let state = agent_flow::on_pass(&state, &call_sid);
                    assert!(state.passed.contains(&call_sid));
                    assert_eq!(state.offer, None);
                    decision = AgentDecision::ClaimNext(Box::new(state));
                }
            }
        }
        panic!("the agent line asked for checks without end");
    }

    fn offer(&mut self, verified: bool, name: &str) -> Offer {
        self.callers += 1;
        let caller = verified.then(|| verified_caller("12345678", name, "provider"));
        Offer {
            call_sid: format!("CAcaller{}", self.callers),
            context: QueueContext {
                class: if verified {
                    QueueClass::Verified
                } else {
                    QueueClass::Unverified
                },
                verified,
                caller,
                on_behalf_of: None,
                allowed: if verified { "own account" } else { "nothing" }.to_owned(),
                case_number: None,
                approval_pending: false,
            },
            waited_secs: i64::from(self.callers) * 47,
        }
    }

    fn answered(&mut self, reply: &Reply) {
        self.check_state();
        match (&reply.next, self.state.phase) {
            (Next::Gather(asked), AgentPhase::Awaiting(awaited)) => assert_eq!(*asked, awaited),
            (Next::JoinCaller(_), AgentPhase::Awaiting(Gather::AgentNext)) => {}
            (Next::Hangup, AgentPhase::Ended) => {}
            (next, phase) => panic!("the reply does {next:?} while the agent is {phase:?}"),
        }
        self.step += 1;
        let target = Target {
            base_url: BASE_URL,
            call_sid: CALL_SID,
            step: self.step,
        };
        check_rendered(reply, Language::EnUs, target);
    }

    fn check_state(&self) {
        let state = &self.state;
        match state.phase {
            AgentPhase::Awaiting(Gather::AgentId | Gather::Passcode) => {}
            AgentPhase::Awaiting(Gather::AgentChoice) => {
                assert!(state.agent.is_some(), "a caller offered to nobody");
                assert!(state.offer.is_some(), "a choice without an offer");
            }
            AgentPhase::Awaiting(Gather::AgentNext) => {
                assert!(state.agent.is_some(), "waiting for callers signed out");
            }
            AgentPhase::Awaiting(other) => panic!("the agent line at a caller's gather {other:?}"),
            AgentPhase::Ended => assert_eq!(state.offer, None),
        }
        if state.phase == AgentPhase::Awaiting(Gather::Passcode) {
            assert!(
                state.typed_agent_id.is_some(),
                "a passcode asked before the ID"
            );
        }
        round_trip(state);
    }
}

/// Calls are stored as JSON between webhooks: a state must read back as
/// itself.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(state: &T) {
    let json = serde_json::to_string(state).expect("states serialise");
    let back: T = serde_json::from_str(&json).expect("stored states read back");
    assert_eq!(&back, state, "changed on its way through storage: {json}");
}

/// Renders `reply` and checks the TwiML does what the reply says.
fn check_rendered(reply: &Reply, language: Language, target: Target<'_>) {
    for prompt in &reply.prompts {
        let mut given: Vec<&str> = prompt.args.iter().map(|(name, _)| *name).collect();
        let mut wanted = prompt.key.placeholders().to_vec();
        given.sort_unstable();
        wanted.sort_unstable();
        assert_eq!(given, wanted, "{} with the wrong placeholders", prompt.key);
    }
    let xml = render::render(reply, language, catalog(), target);
    let root = parse_twiml(&xml).unwrap_or_else(|why| panic!("{why}: {xml:?}"));
    let verbs: Vec<&str> = root.children.iter().map(|v| v.name.as_str()).collect();
    let room_of = |sid: &str| {
        root.descendants()
            .into_iter()
            .any(|e| e.name == "Conference" && e.text == render::room(sid))
    };
    match &reply.next {
        Next::Gather(gather) => {
            let action = format!("{}{}?step={}", target.base_url, gather.path(), target.step);
            assert_eq!(verbs, ["Gather", "Redirect"], "{xml}");
            let asked: &Element = &root.children[0];
            assert_eq!(asked.attribute("action"), Some(action.as_str()), "{xml}");
            assert_eq!(asked.children.len(), reply.prompts.len(), "{xml}");
            assert_eq!(root.children[1].text, action, "{xml}");
        }
        Next::Route(_) => {
            assert!(room_of(target.call_sid), "{xml}");
            assert_eq!(verbs.last(), Some(&"Hangup"), "{xml}");
        }
        Next::JoinCaller(caller) => {
            assert!(room_of(caller), "{xml}");
            assert_eq!(verbs.last(), Some(&"Redirect"), "{xml}");
        }
        Next::Hangup => assert_eq!(verbs.last(), Some(&"Hangup"), "{xml}"),
    }
}
