//! The phone call flow as a pure state machine: given a call's state and
//! what the caller just did, what the call says next and where it goes.
//!
//! No I/O happens here. Checking a PIN is the one thing the flow cannot do
//! itself, so entering a PIN yields [`Decision::CheckPin`]; the caller of
//! the machine validates and reports back with [`on_pin_outcome`].

use serde::{Deserialize, Serialize};

use crate::domain::account::UserId;
use crate::prompts::{Language, PromptKey};

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
}

impl Gather {
    /// The route that receives this gather's digits.
    pub fn path(self) -> &'static str {
        match self {
            Gather::UserId => "/voice/user-id",
            Gather::Pin => "/voice/pin",
            Gather::Menu => "/voice/menu",
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
    /// Did not prove anything; the agent must not discuss any account.
    Unverified,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Collect digits (the prompts play inside the gather, so callers can
    /// key ahead).
    Gather(Gather),
    /// Hand the call to the agent queue.
    Route(QueueClass),
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
    Reply(CallState, Reply),
    /// A PIN was entered for this user ID: validate it, then call
    /// [`on_pin_outcome`].
    CheckPin {
        /// As keyed in at the user-ID gather.
        user_id: String,
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

fn ask(gather: Gather) -> Prompt {
    match gather {
        Gather::UserId => PromptKey::UserIdPrompt.into(),
        Gather::Pin => PromptKey::PinPrompt.into(),
        Gather::Menu => PromptKey::Menu.into(),
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
    let prompts = [PromptKey::ApologyRestart.into(), ask(Gather::UserId)];
    (state, reply(prompts, Next::Gather(Gather::UserId)))
}

/// What to say when a webhook arrives that does not fit the call's state
/// (a stale or reordered request): repeat where the call stands, changing
/// nothing.
pub fn repeat(state: &CallState) -> Reply {
    match state.phase {
        Phase::Awaiting(gather) => reply(
            [PromptKey::RepeatStep.into(), ask(gather)],
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
        return Decision::Reply(state.clone(), repeat(state));
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
            }
        }
    };
    Decision::Reply(next, answer)
}

fn silence(state: &mut CallState, gather: Gather) -> Reply {
    state.silent_gathers += 1;
    if state.silent_gathers >= MAX_SILENT_GATHERS {
        end(state);
        return reply([PromptKey::NoInputGoodbye.into()], Next::Hangup);
    }
    reply(
        [PromptKey::NoInputReprompt.into(), ask(gather)],
        Next::Gather(gather),
    )
}

fn user_id_entered(state: &mut CallState, digits: &str) -> Reply {
    if digits == "9" {
        state.language = LanguageTag::EsUs;
        return reply([ask(Gather::UserId)], Next::Gather(Gather::UserId));
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
        return reply([invalid, ask(Gather::UserId)], Next::Gather(Gather::UserId));
    }
    // Whether the ID exists is not said here: every well-formed ID is
    // asked for its PIN, and only the pair is judged.
    state.claimed_user_id = Some(digits.to_owned());
    state.phase = Phase::Awaiting(Gather::Pin);
    reply([ask(Gather::Pin)], Next::Gather(Gather::Pin))
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
                [PromptKey::Verified.into(), ask(Gather::Menu)],
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
        [PromptKey::NotVerifiedRetry.into(), ask(Gather::UserId)],
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
        "2" | "3" => reply(
            [PromptKey::OptionUnavailable.into(), ask(Gather::Menu)],
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
                [PromptKey::MenuInvalid.into(), ask(Gather::Menu)],
                Next::Gather(Gather::Menu),
            )
        }
    }
}

/// Ends the call: the verified state goes with it.
pub fn end(state: &mut CallState) {
    state.phase = Phase::Ended;
    state.verified = None;
    state.claimed_user_id = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(state: &CallState, digits: &str) -> (CallState, Reply) {
        match on_input(state, Input::Digits(digits)) {
            Decision::Reply(s, r) => (s, r),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn silent(state: &CallState) -> (CallState, Reply) {
        match on_input(state, Input::Silence) {
            Decision::Reply(s, r) => (s, r),
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
        let (_, reply) = keys(&verified, "2");
        assert_eq!(
            keys_of(&reply),
            [PromptKey::OptionUnavailable, PromptKey::Menu]
        );
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
