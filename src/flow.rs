//! The phone call flow as a pure state machine: given a call's state and
//! what the caller just did, what the call says next and where it goes.
//!
//! No I/O happens here. Checking a PIN is the one thing the flow cannot do
//! itself, so entering a PIN yields [`Decision::CheckPin`]; the caller of
//! the machine validates and reports back with [`on_pin_outcome`].

use serde::{Deserialize, Serialize};

use crate::domain::account::UserId;
use crate::domain::case::CaseNumber;
use crate::prompts::{Language, PromptKey};
use crate::twiml::speak_digits;

/// Verification failures (wrong PIN, unknown or malformed user ID) after
/// which the call goes to an agent, unverified.
pub const MAX_FAILED_TRIES: u8 = 3;
/// Silent gathers in a row after which the call ends.
pub const MAX_SILENT_GATHERS: u8 = 2;
/// Keys that are not menu choices after which the caller is routed to an
/// agent anyway: someone pressing keys at random wants a person.
pub const MAX_MENU_MISSES: u8 = 3;

/// Which keypad question a webhook answers; each has its own URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gather {
    /// The caller's user ID, ending with `#`; `9` alone switches to Spanish.
    UserId,
    /// The four-digit Support PIN.
    Pin,
    /// The one-key menu for verified callers.
    Menu,
    /// The user ID of the person a verified caller asks about, ending
    /// with `#`.
    SubjectId,
    /// A case number a provider wants to decide, ending with `#`.
    CaseNumber,
    /// `1` to approve the case under review, `2` to decline.
    ApprovalChoice,
    /// An agent's ID on the agent line, ending with `#`.
    AgentId,
    /// An agent's passcode, ending with `#`.
    Passcode,
    /// `1` to connect the offered caller, `2` to pass them back.
    AgentChoice,
    /// Between callers: any key (or a timeout) checks the queue again.
    AgentNext,
}

impl Gather {
    /// Every gather.
    pub const ALL: [Gather; 10] = [
        Gather::UserId,
        Gather::Pin,
        Gather::Menu,
        Gather::SubjectId,
        Gather::CaseNumber,
        Gather::ApprovalChoice,
        Gather::AgentId,
        Gather::Passcode,
        Gather::AgentChoice,
        Gather::AgentNext,
    ];

    /// Whether the agent line asks it (the rest are the caller's).
    pub fn is_agent_line(self) -> bool {
        matches!(
            self,
            Gather::AgentId | Gather::Passcode | Gather::AgentChoice | Gather::AgentNext
        )
    }

    /// The gather whose route is `path`.
    pub fn from_path(path: &str) -> Option<Gather> {
        Self::ALL.into_iter().find(|g| g.path() == path)
    }

    /// The step's name in logs and metrics.
    pub fn step_name(self) -> &'static str {
        match self {
            Gather::UserId => "user_id",
            Gather::Pin => "pin",
            Gather::Menu => "menu",
            Gather::SubjectId => "subject_id",
            Gather::CaseNumber => "case_number",
            Gather::ApprovalChoice => "approval",
            Gather::AgentId => "agent_id",
            Gather::Passcode => "agent_passcode",
            Gather::AgentChoice => "agent_choice",
            Gather::AgentNext => "agent_next",
        }
    }

    /// The route that receives this gather's digits.
    pub fn path(self) -> &'static str {
        match self {
            Gather::UserId => "/voice/user-id",
            Gather::Pin => "/voice/pin",
            Gather::Menu => "/voice/menu",
            Gather::SubjectId => "/voice/subject-id",
            Gather::CaseNumber => "/voice/case-number",
            Gather::ApprovalChoice => "/voice/approval",
            Gather::AgentId => "/voice/agent-id",
            Gather::Passcode => "/voice/agent-passcode",
            Gather::AgentChoice => "/voice/agent-choice",
            Gather::AgentNext => "/voice/agent-next",
        }
    }
}

/// Where the call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for the gather named.
    Awaiting(Gather),
    /// Handed to the agent queue.
    Routed(QueueClass),
    /// Over: hung up by us or reported finished.
    Ended,
}

/// How an agent should treat a routed caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueClass {
    /// Proved who they are with their Support PIN in this call.
    Verified,
    /// Verified, but asking about someone else's account whose approval
    /// is still pending: the agent must not discuss that account.
    ApprovalPending,
    /// Did not prove anything; the agent must not discuss any account.
    Unverified,
}

impl QueueClass {
    /// The class's name in storage and for agents.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueClass::Verified => "verified",
            QueueClass::ApprovalPending => "approval_pending",
            QueueClass::Unverified => "unverified",
        }
    }
}

/// Someone whose account a caller asks about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// Their user ID.
    pub user_id: UserId,
    /// Display name.
    pub name: String,
    /// `provider` or `staff`.
    pub role: String,
}

/// A request for help with someone else's account, as ruled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnBehalf {
    /// Whose account.
    pub subject: Subject,
    /// What the agent may do, in words ("provider for own staff").
    pub allowed: String,
    /// The support case involved, if any.
    pub case_number: Option<String>,
    /// The approval is still pending.
    pub pending: bool,
}

/// A case a provider is deciding on the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSummary {
    /// The case.
    pub case_number: String,
    /// Who asks.
    pub requestor_name: String,
    /// Whose account.
    pub subject_name: String,
}

/// How a request about someone else's account was ruled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectRuling {
    /// Support may assist.
    Assist(OnBehalf),
    /// A case awaits approval (opened now or earlier).
    Pending(OnBehalf),
    /// Not possible, or no such user: the caller must not learn which.
    Refused,
}

/// What an agent is told about a routed caller before speaking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueContext {
    /// The queue class.
    pub class: QueueClass,
    /// Whether the caller proved who they are.
    pub verified: bool,
    /// Who, when verified.
    pub caller: Option<VerifiedCaller>,
    /// Whose account the call is about, when not the caller's own.
    pub on_behalf_of: Option<Subject>,
    /// What the agent may discuss, in words.
    pub allowed: String,
    /// The case involved, if any.
    pub case_number: Option<String>,
    /// An approval is still pending.
    pub approval_pending: bool,
}

impl CallState {
    /// The context for an agent, once the call is routed.
    pub fn queue_context(&self) -> Option<QueueContext> {
        let Phase::Routed(class) = self.phase else {
            return None;
        };
        let allowed = match (&self.verified, &self.on_behalf) {
            (None, _) => "nothing: the caller is not verified".to_owned(),
            (Some(_), None) => "own account".to_owned(),
            (Some(_), Some(request)) => request.allowed.clone(),
        };
        Some(QueueContext {
            class,
            verified: self.verified.is_some(),
            caller: self.verified.clone(),
            on_behalf_of: self.on_behalf.as_ref().map(|r| r.subject.clone()),
            allowed,
            case_number: self.on_behalf.as_ref().and_then(|r| r.case_number.clone()),
            approval_pending: self.on_behalf.as_ref().is_some_and(|r| r.pending),
        })
    }
}

/// A caller who proved their identity in this call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedCaller {
    /// Their user ID.
    pub user_id: UserId,
    /// Display name.
    pub name: String,
    /// `provider` or `staff`.
    pub role: String,
    /// Practice name.
    pub practice: String,
    /// When the PIN was validated (RFC 3339).
    pub verified_at: String,
    /// Whether the caller ID is one of the user's numbers on file. Never
    /// proof of anything, only context for the agent.
    pub caller_id_matched: bool,
    /// STIR/SHAKEN attestation the carrier reported, if any.
    pub stir_verstat: Option<String>,
}

/// Everything the flow remembers about one call between webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallState {
    /// Language of every prompt.
    pub language: LanguageTag,
    /// Where the call stands.
    pub phase: Phase,
    /// Failed verification tries in this call.
    pub failed_tries: u8,
    /// Silent gathers in a row.
    pub silent_gathers: u8,
    /// Non-menu keys pressed at the menu.
    pub menu_misses: u8,
    /// The user ID keyed in, while the PIN is awaited.
    pub claimed_user_id: Option<String>,
    /// Set once the caller is verified; bound to this call only.
    pub verified: Option<VerifiedCaller>,
    /// A request about someone else's account, once ruled.
    #[serde(default)]
    pub on_behalf: Option<OnBehalf>,
    /// The case a provider is deciding.
    #[serde(default)]
    pub case_under_review: Option<CaseSummary>,
}

/// [`Language`] as stored in a call's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LanguageTag {
    /// US English.
    #[serde(rename = "en-US")]
    EnUs,
    /// US Spanish.
    #[serde(rename = "es-US")]
    EsUs,
}

impl From<LanguageTag> for Language {
    fn from(tag: LanguageTag) -> Self {
        match tag {
            LanguageTag::EnUs => Language::EnUs,
            LanguageTag::EsUs => Language::EsUs,
        }
    }
}

/// One prompt to play, with its placeholder values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Which prompt.
    pub key: PromptKey,
    /// Placeholder values.
    pub args: Vec<(&'static str, String)>,
}

impl From<PromptKey> for Prompt {
    fn from(key: PromptKey) -> Self {
        Self {
            key,
            args: Vec::new(),
        }
    }
}

/// What the call hears, then what happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Prompts in order.
    pub prompts: Vec<Prompt>,
    /// What follows them.
    pub next: Next,
}

/// What follows a reply's prompts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Collect digits (the prompts play inside the gather, so callers can
    /// key ahead).
    Gather(Gather),
    /// Hand the call to the agent queue.
    Route(QueueClass),
    /// Connect an agent to the caller with this CallSid, then offer the
    /// next caller.
    JoinCaller(String),
    /// End the call.
    Hangup,
}

/// What the caller did in answer to a gather.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// Keys pressed (without the finishing `#`).
    Digits(&'a str),
    /// The gather timed out with nothing pressed.
    Silence,
}

/// The flow's answer to an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The new state and what to say.
    Reply(Box<CallState>, Reply),
    /// A PIN was entered for this user ID: validate it, then call
    /// [`on_pin_outcome`].
    CheckPin {
        /// As keyed in at the user-ID gather.
        user_id: String,
    },
    /// A verified caller asks about this user ID: rule on it, then call
    /// [`on_subject_ruling`].
    RuleOnSubject {
        /// As keyed in.
        user_id: String,
    },
    /// A provider wants to decide this case: look it up, then call
    /// [`on_case_lookup`].
    FindCase {
        /// As keyed in.
        case_number: String,
    },
    /// A provider decided the case under review: record it, then call
    /// [`on_case_decided`].
    DecideCase {
        /// The case.
        case_number: String,
        /// Approve (else decline).
        approve: bool,
    },
}

/// The result of a PIN check, as far as the flow needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinOutcome {
    /// Verified as this caller.
    Verified(VerifiedCaller),
    /// Not verified, for whatever reason (the caller must not learn which).
    Rejected,
}

fn reply(prompts: impl IntoIterator<Item = Prompt>, next: Next) -> Reply {
    Reply {
        prompts: prompts.into_iter().collect(),
        next,
    }
}

fn ask(state: &CallState, gather: Gather) -> Prompt {
    match gather {
        Gather::UserId => PromptKey::UserIdPrompt.into(),
        Gather::Pin => PromptKey::PinPrompt.into(),
        Gather::Menu => PromptKey::Menu.into(),
        Gather::SubjectId => PromptKey::SubjectIdPrompt.into(),
        Gather::CaseNumber => PromptKey::CaseNumberPrompt.into(),
        Gather::AgentId => PromptKey::AgentGreeting.into(),
        Gather::Passcode => PromptKey::AgentPasscodePrompt.into(),
        Gather::AgentChoice => PromptKey::AgentChoice.into(),
        Gather::AgentNext => PromptKey::AgentQueueEmpty.into(),
        Gather::ApprovalChoice => {
            let (requestor, subject) = state
                .case_under_review
                .as_ref()
                .map(|c| (c.requestor_name.clone(), c.subject_name.clone()))
                .unwrap_or_default();
            Prompt {
                key: PromptKey::CaseSummary,
                args: vec![("requestor", requestor), ("subject", subject)],
            }
        }
    }
}

/// A new call: greet and ask for the user ID.
pub fn start() -> (CallState, Reply) {
    let state = CallState {
        language: LanguageTag::EnUs,
        phase: Phase::Awaiting(Gather::UserId),
        failed_tries: 0,
        silent_gathers: 0,
        menu_misses: 0,
        claimed_user_id: None,
        verified: None,
        on_behalf: None,
        case_under_review: None,
    };
    let greeting = reply(
        [PromptKey::Greeting.into(), PromptKey::LanguageOffer.into()],
        Next::Gather(Gather::UserId),
    );
    (state, greeting)
}

/// A call whose state lapsed (no webhook for too long): nothing of the
/// old state survives but the language.
pub fn restart(previous: &CallState) -> (CallState, Reply) {
    let (mut state, _) = start();
    state.language = previous.language;
    let prompts = [
        PromptKey::ApologyRestart.into(),
        ask(&state, Gather::UserId),
    ];
    (state, reply(prompts, Next::Gather(Gather::UserId)))
}

/// What to say when a webhook arrives that does not fit the call's state
/// (a stale or reordered request): repeat where the call stands, changing
/// nothing.
pub fn repeat(state: &CallState) -> Reply {
    match state.phase {
        Phase::Awaiting(gather) => reply(
            [PromptKey::RepeatStep.into(), ask(state, gather)],
            Next::Gather(gather),
        ),
        Phase::Routed(class) => reply([PromptKey::ConnectingAgent.into()], Next::Route(class)),
        Phase::Ended => reply([PromptKey::ApologyGoodbye.into()], Next::Hangup),
    }
}

/// The flow's answer to `input` at the gather the call awaits. Inputs for
/// a call not awaiting a gather repeat the current position.
pub fn on_input(state: &CallState, input: Input<'_>) -> Decision {
    let Phase::Awaiting(gather) = state.phase else {
        return Decision::Reply(Box::new(state.clone()), repeat(state));
    };
    let mut next = state.clone();
    let answer = match input {
        Input::Silence => silence(&mut next, gather),
        Input::Digits(keys) => {
            next.silent_gathers = 0;
            let digits = keys.trim_end_matches('#');
            match gather {
                Gather::UserId => user_id_entered(&mut next, digits),
                Gather::Pin => match &state.claimed_user_id {
                    Some(user_id) => {
                        return Decision::CheckPin {
                            user_id: user_id.clone(),
                        };
                    }
                    // A PIN with no user ID before it verifies nobody.
                    None => reject(&mut next),
                },
                Gather::Menu => menu_choice(&mut next, digits),
                Gather::SubjectId if UserId::parse(digits).is_ok() => {
                    return Decision::RuleOnSubject {
                        user_id: digits.to_owned(),
                    };
                }
                // Malformed IDs get the answer unknown ones get.
                Gather::SubjectId => refuse_request(&mut next),
                Gather::CaseNumber if CaseNumber::parse(digits).is_ok() => {
                    return Decision::FindCase {
                        case_number: digits.to_owned(),
                    };
                }
                Gather::CaseNumber => no_such_case(&mut next),
                Gather::ApprovalChoice => match (digits, &state.case_under_review) {
                    ("1" | "2", Some(case)) => {
                        return Decision::DecideCase {
                            case_number: case.case_number.clone(),
                            approve: digits == "1",
                        };
                    }
                    (_, Some(_)) => reply(
                        [
                            PromptKey::MenuInvalid.into(),
                            ask(&next, Gather::ApprovalChoice),
                        ],
                        Next::Gather(Gather::ApprovalChoice),
                    ),
                    (_, None) => no_such_case(&mut next),
                },
                // The agent line's gathers never belong to a caller.
                Gather::AgentId | Gather::Passcode | Gather::AgentChoice | Gather::AgentNext => {
                    repeat(state)
                }
            }
        }
    };
    Decision::Reply(Box::new(next), answer)
}

fn silence(state: &mut CallState, gather: Gather) -> Reply {
    state.silent_gathers += 1;
    if state.silent_gathers >= MAX_SILENT_GATHERS {
        end(state);
        return reply([PromptKey::NoInputGoodbye.into()], Next::Hangup);
    }
    reply(
        [PromptKey::NoInputReprompt.into(), ask(state, gather)],
        Next::Gather(gather),
    )
}

fn user_id_entered(state: &mut CallState, digits: &str) -> Reply {
    if digits == "9" {
        state.language = LanguageTag::EsUs;
        return reply([ask(state, Gather::UserId)], Next::Gather(Gather::UserId));
    }
    if UserId::parse(digits).is_err() {
        state.failed_tries += 1;
        if state.failed_tries >= MAX_FAILED_TRIES {
            return transfer_unverified(state);
        }
        let invalid = Prompt {
            key: PromptKey::UserIdInvalid,
            args: vec![
                ("min_digits", UserId::MIN_DIGITS.to_string()),
                ("max_digits", UserId::MAX_DIGITS.to_string()),
            ],
        };
        return reply(
            [invalid, ask(state, Gather::UserId)],
            Next::Gather(Gather::UserId),
        );
    }
    // Whether the ID exists is not said here: every well-formed ID is
    // asked for its PIN, and only the pair is judged.
    state.claimed_user_id = Some(digits.to_owned());
    state.phase = Phase::Awaiting(Gather::Pin);
    reply([ask(state, Gather::Pin)], Next::Gather(Gather::Pin))
}

/// The flow after a PIN check.
pub fn on_pin_outcome(state: &CallState, outcome: PinOutcome) -> (CallState, Reply) {
    let mut next = state.clone();
    next.silent_gathers = 0;
    next.claimed_user_id = None;
    let answer = match outcome {
        PinOutcome::Verified(caller) => {
            next.verified = Some(caller);
            next.failed_tries = 0;
            next.phase = Phase::Awaiting(Gather::Menu);
            reply(
                [PromptKey::Verified.into(), ask(state, Gather::Menu)],
                Next::Gather(Gather::Menu),
            )
        }
        PinOutcome::Rejected => reject(&mut next),
    };
    (next, answer)
}

fn reject(state: &mut CallState) -> Reply {
    state.claimed_user_id = None;
    state.failed_tries += 1;
    if state.failed_tries >= MAX_FAILED_TRIES {
        return transfer_unverified(state);
    }
    state.phase = Phase::Awaiting(Gather::UserId);
    reply(
        [
            PromptKey::NotVerifiedRetry.into(),
            ask(state, Gather::UserId),
        ],
        Next::Gather(Gather::UserId),
    )
}

fn transfer_unverified(state: &mut CallState) -> Reply {
    state.phase = Phase::Routed(QueueClass::Unverified);
    reply(
        [PromptKey::NotVerifiedTransfer.into()],
        Next::Route(QueueClass::Unverified),
    )
}

fn menu_choice(state: &mut CallState, digits: &str) -> Reply {
    match digits {
        "1" => {
            state.phase = Phase::Routed(QueueClass::Verified);
            reply(
                [PromptKey::ConnectingAgent.into()],
                Next::Route(QueueClass::Verified),
            )
        }
        "2" => {
            state.phase = Phase::Awaiting(Gather::SubjectId);
            reply(
                [ask(state, Gather::SubjectId)],
                Next::Gather(Gather::SubjectId),
            )
        }
        "3" if state
            .verified
            .as_ref()
            .is_some_and(|v| v.role == "provider") =>
        {
            state.phase = Phase::Awaiting(Gather::CaseNumber);
            reply(
                [ask(state, Gather::CaseNumber)],
                Next::Gather(Gather::CaseNumber),
            )
        }
        "3" => reply(
            [
                PromptKey::OnlyProvidersApprove.into(),
                ask(state, Gather::Menu),
            ],
            Next::Gather(Gather::Menu),
        ),
        _ => {
            state.menu_misses += 1;
            if state.menu_misses >= MAX_MENU_MISSES {
                state.phase = Phase::Routed(QueueClass::Verified);
                return reply(
                    [PromptKey::ConnectingAgent.into()],
                    Next::Route(QueueClass::Verified),
                );
            }
            reply(
                [PromptKey::MenuInvalid.into(), ask(state, Gather::Menu)],
                Next::Gather(Gather::Menu),
            )
        }
    }
}

fn back_to_menu(state: &mut CallState, first: Prompt) -> Reply {
    state.phase = Phase::Awaiting(Gather::Menu);
    state.case_under_review = None;
    reply(
        [first, ask(state, Gather::Menu)],
        Next::Gather(Gather::Menu),
    )
}

fn refuse_request(state: &mut CallState) -> Reply {
    back_to_menu(state, PromptKey::RequestRefused.into())
}

fn no_such_case(state: &mut CallState) -> Reply {
    back_to_menu(state, PromptKey::CaseUnavailable.into())
}

/// The flow after ruling on a request about someone else's account.
pub fn on_subject_ruling(state: &CallState, ruling: SubjectRuling) -> (CallState, Reply) {
    let mut next = state.clone();
    let answer = match ruling {
        SubjectRuling::Assist(request) => {
            next.on_behalf = Some(request);
            next.phase = Phase::Routed(QueueClass::Verified);
            reply(
                [PromptKey::ConnectingAgent.into()],
                Next::Route(QueueClass::Verified),
            )
        }
        SubjectRuling::Pending(request) => {
            let case_number = request.case_number.clone().unwrap_or_default();
            next.on_behalf = Some(request);
            next.phase = Phase::Routed(QueueClass::ApprovalPending);
            let opened = Prompt {
                key: PromptKey::CaseOpened,
                args: vec![("case_number", speak_digits(&case_number))],
            };
            reply(
                [opened, PromptKey::ApprovalPendingTransfer.into()],
                Next::Route(QueueClass::ApprovalPending),
            )
        }
        SubjectRuling::Refused => refuse_request(&mut next),
    };
    (next, answer)
}

/// The flow after looking up a case a provider keyed in: `None` when
/// there is no case awaiting this provider's decision by that number.
pub fn on_case_lookup(state: &CallState, case: Option<CaseSummary>) -> (CallState, Reply) {
    let mut next = state.clone();
    let Some(case) = case else {
        let answer = no_such_case(&mut next);
        return (next, answer);
    };
    next.case_under_review = Some(case);
    next.phase = Phase::Awaiting(Gather::ApprovalChoice);
    let answer = reply(
        [ask(&next, Gather::ApprovalChoice)],
        Next::Gather(Gather::ApprovalChoice),
    );
    (next, answer)
}

/// The flow after a provider's decision was recorded (`Some(approved)`),
/// or could not be (`None`: the case changed meanwhile).
pub fn on_case_decided(state: &CallState, decided: Option<bool>) -> (CallState, Reply) {
    let mut next = state.clone();
    let said = match decided {
        Some(true) => PromptKey::CaseApproved,
        Some(false) => PromptKey::CaseDeclined,
        None => PromptKey::CaseUnavailable,
    };
    let answer = back_to_menu(&mut next, said.into());
    (next, answer)
}

/// Ends the call: the verified state goes with it.
pub fn end(state: &mut CallState) {
    state.phase = Phase::Ended;
    state.verified = None;
    state.claimed_user_id = None;
    state.on_behalf = None;
    state.case_under_review = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(state: &CallState, digits: &str) -> (CallState, Reply) {
        match on_input(state, Input::Digits(digits)) {
            Decision::Reply(s, r) => (*s, r),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn silent(state: &CallState) -> (CallState, Reply) {
        match on_input(state, Input::Silence) {
            Decision::Reply(s, r) => (*s, r),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn caller() -> VerifiedCaller {
        VerifiedCaller {
            user_id: UserId::parse("12345678").unwrap(),
            name: "Pat".into(),
            role: "provider".into(),
            practice: "Harbor".into(),
            verified_at: "2026-01-01T00:00:00Z".into(),
            caller_id_matched: true,
            stir_verstat: None,
        }
    }

    fn keys_of(reply: &Reply) -> Vec<PromptKey> {
        reply.prompts.iter().map(|p| p.key).collect()
    }

    fn at_pin() -> CallState {
        keys(&start().0, "12345678").0
    }

    #[test]
    fn a_call_starts_with_the_greeting_at_the_user_id_gather() {
        let (state, reply) = start();
        assert_eq!(state.phase, Phase::Awaiting(Gather::UserId));
        assert_eq!(
            keys_of(&reply),
            [PromptKey::Greeting, PromptKey::LanguageOffer]
        );
        assert_eq!(reply.next, Next::Gather(Gather::UserId));
    }

    #[test]
    fn nine_switches_to_spanish_and_asks_again() {
        let (state, reply) = keys(&start().0, "9");
        assert_eq!(state.language, LanguageTag::EsUs);
        assert_eq!(keys_of(&reply), [PromptKey::UserIdPrompt]);
        let (state, _) = keys(&state, "12345678");
        assert_eq!(
            state.language,
            LanguageTag::EsUs,
            "kept for the rest of the call"
        );
    }

    #[test]
    fn a_well_formed_user_id_asks_for_the_pin() {
        let (state, reply) = keys(&start().0, "12345678#");
        assert_eq!(state.phase, Phase::Awaiting(Gather::Pin));
        assert_eq!(state.claimed_user_id.as_deref(), Some("12345678"));
        assert_eq!(reply.next, Next::Gather(Gather::Pin));
    }

    #[test]
    fn a_malformed_user_id_counts_as_a_failed_try() {
        let (state, reply) = keys(&start().0, "123");
        assert_eq!(state.failed_tries, 1);
        assert_eq!(
            keys_of(&reply),
            [PromptKey::UserIdInvalid, PromptKey::UserIdPrompt]
        );
        assert_eq!(reply.prompts[0].args.len(), 2);
    }

    #[test]
    fn entering_a_pin_asks_for_a_check() {
        assert_eq!(
            on_input(&at_pin(), Input::Digits("4821")),
            Decision::CheckPin {
                user_id: "12345678".into()
            }
        );
    }

    #[test]
    fn a_verified_caller_gets_the_menu() {
        let (state, reply) = on_pin_outcome(&at_pin(), PinOutcome::Verified(caller()));
        assert_eq!(state.phase, Phase::Awaiting(Gather::Menu));
        assert_eq!(state.verified, Some(caller()));
        assert_eq!(state.claimed_user_id, None);
        assert_eq!(keys_of(&reply), [PromptKey::Verified, PromptKey::Menu]);
    }

    #[test]
    fn a_rejection_starts_over_at_the_user_id_with_one_message() {
        let (state, reply) = on_pin_outcome(&at_pin(), PinOutcome::Rejected);
        assert_eq!(state.phase, Phase::Awaiting(Gather::UserId));
        assert_eq!(state.failed_tries, 1);
        assert_eq!(
            keys_of(&reply),
            [PromptKey::NotVerifiedRetry, PromptKey::UserIdPrompt]
        );
    }

    #[test]
    fn the_third_failure_routes_unverified() {
        let mut state = start().0;
        for _ in 0..2 {
            state = keys(&state, "12345678").0;
            state = on_pin_outcome(&state, PinOutcome::Rejected).0;
        }
        state = keys(&state, "12345678").0;
        let (state, reply) = on_pin_outcome(&state, PinOutcome::Rejected);
        assert_eq!(state.phase, Phase::Routed(QueueClass::Unverified));
        assert_eq!(reply.next, Next::Route(QueueClass::Unverified));
        assert_eq!(keys_of(&reply), [PromptKey::NotVerifiedTransfer]);
        assert_eq!(state.verified, None);
    }

    #[test]
    fn two_silences_in_a_row_hang_up_but_input_resets_the_count() {
        let (state, reply) = silent(&start().0);
        assert_eq!(
            keys_of(&reply),
            [PromptKey::NoInputReprompt, PromptKey::UserIdPrompt]
        );
        let (state, _) = keys(&state, "12345678");
        let (state, reply) = silent(&state);
        assert_eq!(
            reply.next,
            Next::Gather(Gather::Pin),
            "reset by the user ID"
        );
        let (state, reply) = silent(&state);
        assert_eq!(reply.next, Next::Hangup);
        assert_eq!(keys_of(&reply), [PromptKey::NoInputGoodbye]);
        assert_eq!(state.phase, Phase::Ended);
    }

    #[test]
    fn menu_one_routes_verified_and_other_keys_reprompt() {
        let verified = on_pin_outcome(&at_pin(), PinOutcome::Verified(caller())).0;
        let (state, reply) = keys(&verified, "1");
        assert_eq!(reply.next, Next::Route(QueueClass::Verified));
        assert_eq!(state.phase, Phase::Routed(QueueClass::Verified));
        let (state, reply) = keys(&verified, "2");
        assert_eq!(keys_of(&reply), [PromptKey::SubjectIdPrompt]);
        assert_eq!(state.phase, Phase::Awaiting(Gather::SubjectId));
        let (state, reply) = keys(&verified, "7");
        assert_eq!(keys_of(&reply), [PromptKey::MenuInvalid, PromptKey::Menu]);
        let (state, _) = keys(&state, "8");
        let (_, reply) = keys(&state, "0");
        assert_eq!(
            reply.next,
            Next::Route(QueueClass::Verified),
            "three misses"
        );
    }

    #[test]
    fn a_case_number_with_no_case_goes_back_to_the_menu() {
        let verified = on_pin_outcome(&at_pin(), PinOutcome::Verified(caller())).0;
        let (at_case, _) = keys(&verified, "3");
        assert_eq!(
            on_input(&at_case, Input::Digits("482913#")),
            Decision::FindCase {
                case_number: "482913".into()
            }
        );
        let (state, reply) = on_case_lookup(&at_case, None);
        assert_eq!(
            keys_of(&reply),
            [PromptKey::CaseUnavailable, PromptKey::Menu]
        );
        assert_eq!(reply.next, Next::Gather(Gather::Menu));
        assert_eq!(
            state.phase,
            Phase::Awaiting(Gather::Menu),
            "the state says so too"
        );
    }

    #[test]
    fn a_restart_keeps_only_the_language() {
        let verified = on_pin_outcome(
            &keys(&keys(&start().0, "9").0, "12345678").0,
            PinOutcome::Verified(caller()),
        )
        .0;
        let (state, reply) = restart(&verified);
        assert_eq!(state.verified, None);
        assert_eq!(state.language, LanguageTag::EsUs);
        assert_eq!(
            keys_of(&reply),
            [PromptKey::ApologyRestart, PromptKey::UserIdPrompt]
        );
    }

    #[test]
    fn input_for_a_call_not_awaiting_a_gather_changes_nothing() {
        let mut ended = start().0;
        end(&mut ended);
        let (state, reply) = keys(&ended, "1");
        assert_eq!(state, ended);
        assert_eq!(reply.next, Next::Hangup);
    }

    #[test]
    fn states_survive_a_round_trip_through_json() {
        let verified = on_pin_outcome(&at_pin(), PinOutcome::Verified(caller())).0;
        let text = serde_json::to_string(&verified).unwrap();
        assert_eq!(serde_json::from_str::<CallState>(&text).unwrap(), verified);
    }
}
