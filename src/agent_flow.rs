//! The agent line as a pure state machine: sign in with agent ID and
//! passcode, hear who the next caller is, connect or pass, and take the
//! next one without redialling.
//!
//! As with the caller's flow, nothing here does I/O: checking the
//! passcode, claiming a caller and connecting are decisions the IVR carries
//! out before feeding the result back.

use serde::{Deserialize, Serialize};

use crate::domain::agent::AgentId;
use crate::flow::{Gather, Input, Next, Prompt, QueueContext, Reply};
use crate::prompts::PromptKey;

/// Failed sign-ins in one call after which the agent line hangs up.
pub const MAX_FAILED_SIGN_INS: u8 = 3;

/// A waiting caller offered to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The caller's CallSid.
    pub call_sid: String,
    /// What the agent is told.
    pub context: QueueContext,
    /// Seconds the caller has waited.
    pub waited_secs: i64,
}

/// Where an agent's call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentPhase {
    /// Waiting for the gather named.
    Awaiting(Gather),
    /// Over.
    Ended,
}

/// Everything the agent line remembers between webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// Where the call stands.
    pub phase: AgentPhase,
    /// The agent ID keyed in, while the passcode is awaited.
    pub typed_agent_id: Option<String>,
    /// Set once signed in.
    pub agent: Option<AgentId>,
    /// Failed sign-ins in this call.
    pub failed_sign_ins: u8,
    /// Silent gathers in a row.
    pub silent_gathers: u8,
    /// The caller on offer.
    pub offer: Option<Offer>,
    /// Callers this agent passed back since their last call, not offered
    /// again until then.
    pub passed: Vec<String>,
}

/// The machine's answer to an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentDecision {
    /// The new state and what to say.
    Reply(Box<AgentState>, Reply),
    /// Check this agent ID and passcode, then call [`on_sign_in`].
    SignIn {
        /// The state so far.
        state: Box<AgentState>,
        /// As keyed in.
        agent_id: String,
    },
    /// Claim the next caller for the signed-in agent (skipping those in
    /// `state.passed`), then call [`on_claim`].
    ClaimNext(Box<AgentState>),
    /// Connect the offered caller, then call [`on_connect`].
    Connect(Box<AgentState>, String),
    /// Give the offered caller back to the queue, then claim the next.
    Pass(Box<AgentState>, String),
}

fn reply(prompts: impl IntoIterator<Item = Prompt>, next: Next) -> Reply {
    Reply {
        prompts: prompts.into_iter().collect(),
        next,
    }
}

fn answer(state: AgentState, reply: Reply) -> AgentDecision {
    AgentDecision::Reply(Box::new(state), reply)
}

/// An agent dials in.
pub fn start() -> (AgentState, Reply) {
    let state = AgentState {
        phase: AgentPhase::Awaiting(Gather::AgentId),
        typed_agent_id: None,
        agent: None,
        failed_sign_ins: 0,
        silent_gathers: 0,
        offer: None,
        passed: Vec::new(),
    };
    (
        state,
        reply(
            [PromptKey::AgentGreeting.into()],
            Next::Gather(Gather::AgentId),
        ),
    )
}

/// What the agent hears about the offered caller, then the choice.
pub fn whisper(offer: &Offer) -> Vec<Prompt> {
    let c = &offer.context;
    let mut prompts = Vec::new();
    match &c.caller {
        Some(caller) => prompts.push(Prompt {
            key: PromptKey::WhisperVerified,
            args: vec![
                ("name", caller.name.clone()),
                ("role", caller.role.clone()),
                ("practice", caller.practice.clone()),
            ],
        }),
        None => prompts.push(PromptKey::WhisperUnverified.into()),
    }
    if let Some(subject) = &c.on_behalf_of {
        prompts.push(if c.approval_pending {
            Prompt {
                key: PromptKey::WhisperPending,
                args: vec![
                    ("subject", subject.name.clone()),
                    (
                        "case_number",
                        c.case_number
                            .clone()
                            .map(|n| crate::twiml::speak_digits(&n))
                            .unwrap_or_default(),
                    ),
                ],
            }
        } else {
            Prompt {
                key: PromptKey::WhisperOnBehalf,
                args: vec![
                    ("subject", subject.name.clone()),
                    ("allowed", c.allowed.clone()),
                ],
            }
        });
    }
    if let Some(caller) = &c.caller {
        prompts.push(if caller.caller_id_matched {
            PromptKey::WhisperCallerIdMatched.into()
        } else {
            PromptKey::WhisperCallerIdUnmatched.into()
        });
    }
    prompts.push(Prompt {
        key: PromptKey::WhisperWait,
        args: vec![("wait", wait_words(offer.waited_secs))],
    });
    prompts.push(PromptKey::AgentChoice.into());
    prompts
}

/// A wait as an agent would say it.
pub fn wait_words(secs: i64) -> String {
    match secs.max(0) {
        0..60 => "less than a minute".to_owned(),
        60..120 => "1 minute".to_owned(),
        s => format!("{} minutes", s / 60),
    }
}

/// The machine's answer to `input` at the gather the agent's call awaits.
pub fn on_input(state: &AgentState, input: Input<'_>) -> AgentDecision {
    let AgentPhase::Awaiting(gather) = state.phase else {
        return answer(
            state.clone(),
            reply([PromptKey::Goodbye.into()], Next::Hangup),
        );
    };
    let mut next = state.clone();
    let keys = match input {
        Input::Silence => return silence(next, gather),
        Input::Digits(keys) => keys.trim_end_matches('#'),
    };
    next.silent_gathers = 0;
    match gather {
        Gather::AgentId => {
            next.typed_agent_id = Some(keys.to_owned());
            next.phase = AgentPhase::Awaiting(Gather::Passcode);
            answer(
                next,
                reply(
                    [PromptKey::AgentPasscodePrompt.into()],
                    Next::Gather(Gather::Passcode),
                ),
            )
        }
        Gather::Passcode => {
            let agent_id = next.typed_agent_id.take().unwrap_or_default();
            AgentDecision::SignIn {
                state: Box::new(next),
                agent_id,
            }
        }
        Gather::AgentChoice => match (&state.offer, keys) {
            (Some(offer), "1") => AgentDecision::Connect(Box::new(next), offer.call_sid.clone()),
            (Some(offer), "2") => AgentDecision::Pass(Box::new(next), offer.call_sid.clone()),
            (Some(offer), _) => {
                let mut prompts = vec![PromptKey::MenuInvalid.into()];
                prompts.extend(whisper(offer));
                answer(next, reply(prompts, Next::Gather(Gather::AgentChoice)))
            }
            (None, _) => AgentDecision::ClaimNext(Box::new(next)),
        },
        Gather::AgentNext => AgentDecision::ClaimNext(Box::new(next)),
        _ => answer(next, reply([PromptKey::Goodbye.into()], Next::Hangup)),
    }
}

fn silence(mut state: AgentState, gather: Gather) -> AgentDecision {
    match gather {
        // Idle agents are checked for callers on every timeout.
        Gather::AgentNext => AgentDecision::ClaimNext(Box::new(state)),
        // An agent who says nothing to an offer passes it on, so the
        // caller is not held by someone who stepped away.
        Gather::AgentChoice => match state.offer.clone() {
            Some(offer) if state.silent_gathers >= 1 => {
                state.silent_gathers = 0;
                AgentDecision::Pass(Box::new(state), offer.call_sid)
            }
            Some(offer) => {
                state.silent_gathers += 1;
                answer(
                    state,
                    reply(whisper(&offer), Next::Gather(Gather::AgentChoice)),
                )
            }
            None => AgentDecision::ClaimNext(Box::new(state)),
        },
        _ => {
            state.silent_gathers += 1;
            if state.silent_gathers >= crate::flow::MAX_SILENT_GATHERS {
                state.phase = AgentPhase::Ended;
                return answer(state, reply([PromptKey::Goodbye.into()], Next::Hangup));
            }
            let ask = match gather {
                Gather::Passcode => PromptKey::AgentPasscodePrompt,
                _ => PromptKey::AgentGreeting,
            };
            answer(
                state,
                reply(
                    [PromptKey::NoInputReprompt.into(), ask.into()],
                    Next::Gather(gather),
                ),
            )
        }
    }
}

/// After the passcode check: `Some` when it matched.
pub fn on_sign_in(state: &AgentState, agent: Option<AgentId>) -> AgentDecision {
    let mut next = state.clone();
    if let Some(agent) = agent {
        next.agent = Some(agent);
        next.failed_sign_ins = 0;
        return AgentDecision::ClaimNext(Box::new(next));
    }
    next.failed_sign_ins += 1;
    if next.failed_sign_ins >= MAX_FAILED_SIGN_INS {
        next.phase = AgentPhase::Ended;
        return answer(
            next,
            reply(
                [
                    PromptKey::AgentNotRecognized.into(),
                    PromptKey::Goodbye.into(),
                ],
                Next::Hangup,
            ),
        );
    }
    next.phase = AgentPhase::Awaiting(Gather::AgentId);
    answer(
        next,
        reply(
            [
                PromptKey::AgentNotRecognized.into(),
                PromptKey::AgentGreeting.into(),
            ],
            Next::Gather(Gather::AgentId),
        ),
    )
}

/// After claiming: the caller on offer, or `None` when nobody waits.
pub fn on_claim(
    state: &AgentState,
    offer: Option<Offer>,
    preface: Option<PromptKey>,
) -> (AgentState, Reply) {
    let mut next = state.clone();
    let mut prompts: Vec<Prompt> = preface.into_iter().map(Prompt::from).collect();
    match offer {
        Some(offer) => {
            prompts.extend(whisper(&offer));
            next.offer = Some(offer);
            next.phase = AgentPhase::Awaiting(Gather::AgentChoice);
            (next, reply(prompts, Next::Gather(Gather::AgentChoice)))
        }
        None => {
            next.offer = None;
            next.phase = AgentPhase::Awaiting(Gather::AgentNext);
            prompts.push(PromptKey::AgentQueueEmpty.into());
            (next, reply(prompts, Next::Gather(Gather::AgentNext)))
        }
    }
}

/// After trying to connect the offered caller: `true` when bridged.
pub fn on_connect(state: &AgentState, connected: bool) -> AgentDecision {
    let mut next = state.clone();
    let offer = next.offer.take();
    match (connected, offer) {
        (true, Some(offer)) => {
            next.passed.clear();
            next.phase = AgentPhase::Awaiting(Gather::AgentNext);
            answer(
                next,
                reply(
                    [PromptKey::AgentConnecting.into()],
                    Next::JoinCaller(offer.call_sid),
                ),
            )
        }
        _ => AgentDecision::ClaimNext(Box::new(next)),
    }
}

/// After passing the offered caller back.
pub fn on_pass(state: &AgentState, call_sid: &str) -> AgentState {
    let mut next = state.clone();
    next.offer = None;
    if !next.passed.iter().any(|s| s == call_sid) {
        next.passed.push(call_sid.to_owned());
    }
    next
}

/// What to say when a webhook does not fit the agent's call: where it
/// stands, again.
pub fn repeat(state: &AgentState) -> Reply {
    let AgentPhase::Awaiting(gather) = state.phase else {
        return reply([PromptKey::Goodbye.into()], Next::Hangup);
    };
    let prompts = match (gather, &state.offer) {
        (Gather::AgentChoice, Some(offer)) => whisper(offer),
        (Gather::AgentId, _) => vec![PromptKey::AgentGreeting.into()],
        (Gather::Passcode, _) => vec![PromptKey::AgentPasscodePrompt.into()],
        _ => vec![PromptKey::AgentQueueEmpty.into()],
    };
    let mut all = vec![PromptKey::RepeatStep.into()];
    all.extend(prompts);
    reply(all, Next::Gather(gather))
}

/// Ends the agent's call.
pub fn end(state: &mut AgentState) {
    state.phase = AgentPhase::Ended;
    state.offer = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::UserId;
    use crate::flow::{QueueClass, Subject, VerifiedCaller};

    fn agent() -> AgentId {
        AgentId::parse("424242").unwrap()
    }

    fn keys_of(reply: &Reply) -> Vec<PromptKey> {
        reply.prompts.iter().map(|p| p.key).collect()
    }

    fn offer(context: QueueContext) -> Offer {
        Offer {
            call_sid: "CA1".into(),
            context,
            waited_secs: 130,
        }
    }

    fn caller(matched: bool) -> VerifiedCaller {
        VerifiedCaller {
            user_id: UserId::parse("12345678").unwrap(),
            name: "Sam Ortiz".into(),
            role: "staff".into(),
            practice: "Bayview".into(),
            verified_at: "2026-01-01T00:00:00Z".into(),
            caller_id_matched: matched,
            stir_verstat: None,
        }
    }

    fn context(caller: Option<VerifiedCaller>, on_behalf: Option<(&str, bool)>) -> QueueContext {
        QueueContext {
            class: if caller.is_some() {
                QueueClass::Verified
            } else {
                QueueClass::Unverified
            },
            verified: caller.is_some(),
            caller,
            on_behalf_of: on_behalf.map(|(name, _)| Subject {
                user_id: UserId::parse("87654321").unwrap(),
                name: name.into(),
                role: "provider".into(),
            }),
            allowed: "approved by Dr. Rosa Diaz in case 314159".into(),
            case_number: on_behalf.map(|_| "314159".into()),
            approval_pending: on_behalf.is_some_and(|(_, pending)| pending),
        }
    }

    fn signed_in() -> AgentState {
        let (state, _) = start();
        let AgentDecision::Reply(state, _) = on_input(&state, Input::Digits("424242")) else {
            panic!("expected the passcode prompt");
        };
        match on_sign_in(&state, Some(agent())) {
            AgentDecision::ClaimNext(state) => *state,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn signing_in_asks_for_id_then_passcode_then_claims() {
        let (state, greeting) = start();
        assert_eq!(keys_of(&greeting), [PromptKey::AgentGreeting]);
        let AgentDecision::Reply(state, ask) = on_input(&state, Input::Digits("424242")) else {
            panic!()
        };
        assert_eq!(ask.next, Next::Gather(Gather::Passcode));
        assert_eq!(
            on_input(&state, Input::Digits("11112222")),
            AgentDecision::SignIn {
                state: Box::new(AgentState {
                    phase: AgentPhase::Awaiting(Gather::Passcode),
                    typed_agent_id: None,
                    ..(*state).clone()
                }),
                agent_id: "424242".into()
            }
        );
        assert_eq!(signed_in().agent, Some(agent()));
    }

    #[test]
    fn three_failed_sign_ins_hang_up() {
        let mut state = start().0;
        for n in 1..=3 {
            match on_sign_in(&state, None) {
                AgentDecision::Reply(next, reply) if n < 3 => {
                    assert_eq!(reply.next, Next::Gather(Gather::AgentId));
                    state = *next;
                }
                AgentDecision::Reply(_, reply) => assert_eq!(reply.next, Next::Hangup),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_offer_whispers_the_context_then_asks_to_connect_or_pass() {
        let (state, reply) = on_claim(
            &signed_in(),
            Some(offer(context(Some(caller(true)), None))),
            None,
        );
        assert_eq!(
            keys_of(&reply),
            [
                PromptKey::WhisperVerified,
                PromptKey::WhisperCallerIdMatched,
                PromptKey::WhisperWait,
                PromptKey::AgentChoice
            ]
        );
        assert_eq!(reply.prompts[2].args[0].1, "2 minutes");
        assert_eq!(
            on_input(&state, Input::Digits("1")),
            AgentDecision::Connect(Box::new(state.clone()), "CA1".into())
        );
        assert_eq!(
            on_input(&state, Input::Digits("2")),
            AgentDecision::Pass(Box::new(state.clone()), "CA1".into())
        );
    }

    #[test]
    fn whispers_differ_for_each_kind_of_caller() {
        let approved = whisper(&offer(context(
            Some(caller(false)),
            Some(("Dr. Rosa Diaz", false)),
        )));
        let keys: Vec<_> = approved.iter().map(|p| p.key).collect();
        assert_eq!(
            keys[..3],
            [
                PromptKey::WhisperVerified,
                PromptKey::WhisperOnBehalf,
                PromptKey::WhisperCallerIdUnmatched
            ]
        );
        assert!(
            approved[1]
                .args
                .iter()
                .any(|(_, v)| v.contains("approved by Dr. Rosa Diaz"))
        );
        let pending = whisper(&offer(context(
            Some(caller(true)),
            Some(("Dr. Rosa Diaz", true)),
        )));
        assert_eq!(pending[1].key, PromptKey::WhisperPending);
        let unverified = whisper(&offer(context(None, None)));
        assert_eq!(unverified[0].key, PromptKey::WhisperUnverified);
        assert!(
            unverified
                .iter()
                .all(|p| p.key != PromptKey::WhisperCallerIdMatched)
        );
    }

    #[test]
    fn connecting_joins_the_callers_room_and_a_failed_connect_claims_again() {
        let (state, _) = on_claim(&signed_in(), Some(offer(context(None, None))), None);
        match on_connect(&state, true) {
            AgentDecision::Reply(next, reply) => {
                assert_eq!(reply.next, Next::JoinCaller("CA1".into()));
                assert_eq!(next.phase, AgentPhase::Awaiting(Gather::AgentNext));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            on_connect(&state, false),
            AgentDecision::ClaimNext(_)
        ));
    }

    #[test]
    fn passing_remembers_the_caller_and_silence_twice_passes() {
        let (state, _) = on_claim(&signed_in(), Some(offer(context(None, None))), None);
        assert_eq!(on_pass(&state, "CA1").passed, ["CA1"]);
        let AgentDecision::Reply(once, _) = on_input(&state, Input::Silence) else {
            panic!("the first silence repeats the offer");
        };
        assert!(
            matches!(on_input(&once, Input::Silence), AgentDecision::Pass(_, sid) if sid == "CA1")
        );
    }

    #[test]
    fn an_empty_queue_waits_and_checks_again() {
        let (state, reply) = on_claim(&signed_in(), None, None);
        assert_eq!(keys_of(&reply), [PromptKey::AgentQueueEmpty]);
        assert!(matches!(
            on_input(&state, Input::Silence),
            AgentDecision::ClaimNext(_)
        ));
        assert!(matches!(
            on_input(&state, Input::Digits("1")),
            AgentDecision::ClaimNext(_)
        ));
    }

    #[test]
    fn waits_read_naturally() {
        assert_eq!(wait_words(5), "less than a minute");
        assert_eq!(wait_words(61), "1 minute");
        assert_eq!(wait_words(600), "10 minutes");
    }
}
