//! Turns a flow [`Reply`] into the TwiML document the telephony provider
//! executes.

use crate::flow::{Gather, Next, Prompt, QueueClass, Reply};
use crate::prompts::{Language, PromptCatalog, PromptKey};
use crate::twiml::{self, Beep, Conference, Dial, Method, Redirect, Response};

/// Seconds a gather waits for the first (and each further) key.
pub const GATHER_TIMEOUT_SECS: u32 = 6;

/// Where a reply is rendered for: the call it answers and the address
/// its URLs are built on.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The server's public address, no trailing slash.
    pub base_url: &'a str,
    /// The call answered; names its conference room when routed.
    pub call_sid: &'a str,
    /// The step number the reply's gather will carry.
    pub step: u32,
}

/// Renders `reply` for `target`.
pub fn render(
    reply: &Reply,
    language: Language,
    prompts: &PromptCatalog,
    target: Target<'_>,
) -> String {
    let mut response = Response::new();
    match &reply.next {
        Next::Gather(gather) => {
            let children = reply
                .prompts
                .iter()
                .map(|p| prompts.gather_child(language, p.key, &args(p)));
            push_gather(&mut response, *gather, children, target);
        }
        Next::Route(_) => {
            speak(&mut response, reply, language, prompts);
            response.push(wait_for_agent(target));
            // The caller's conference ends when the agent hangs up.
            response.push(prompts.verb(language, PromptKey::Goodbye, &[]));
            response.push(twiml::Verb::Hangup);
        }
        Next::JoinCaller(caller_sid) => {
            speak(&mut response, reply, language, prompts);
            response.push(join_caller(caller_sid));
            let after = prompts.gather_child(language, PromptKey::AgentCallEnded, &[]);
            push_gather(&mut response, Gather::AgentNext, [after], target);
        }
        Next::Hangup => {
            speak(&mut response, reply, language, prompts);
            response.push(twiml::Verb::Hangup);
        }
    }
    response.render()
}

fn push_gather(
    response: &mut Response,
    gather: Gather,
    children: impl IntoIterator<Item = twiml::GatherChild>,
    target: Target<'_>,
) {
    let action = format!("{}{}?step={}", target.base_url, gather.path(), target.step);
    let mut verb = configure(twiml::Gather::new(action.clone()), gather);
    for child in children {
        verb = verb.child(child);
    }
    // Providers without `actionOnEmptyResult` fall through to here on
    // silence; the redirect reports it the same way.
    response.push(verb);
    response.push(Redirect::new(action, Method::Post));
}

/// The conference room a waiting caller sits in, named after their call.
pub fn room(call_sid: &str) -> String {
    format!("pinline-{call_sid}")
}

/// The caller's side: alone in their own room, hearing the hold loop,
/// until the agent who claimed them joins. A room per caller (rather than
/// `<Enqueue>`) is what lets pinline put one chosen caller through to one
/// chosen agent.
fn wait_for_agent(target: Target<'_>) -> Dial {
    let conference = Conference::new(room(target.call_sid))
        .wait_url(format!("{}/voice/hold", target.base_url))
        .start_conference_on_enter(false)
        .end_conference_on_exit(true)
        .beep(Beep::Never);
    Dial::new(conference)
}

/// The agent's side: joining (and so starting) the caller's room.
fn join_caller(caller_sid: &str) -> Dial {
    let conference = Conference::new(room(caller_sid))
        .start_conference_on_enter(true)
        .end_conference_on_exit(true)
        .beep(Beep::Never);
    Dial::new(conference)
}

fn speak(response: &mut Response, reply: &Reply, language: Language, prompts: &PromptCatalog) {
    for prompt in &reply.prompts {
        response.push(prompts.verb(language, prompt.key, &args(prompt)));
    }
}

fn args(prompt: &Prompt) -> Vec<(&str, &str)> {
    prompt.args.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn configure(verb: twiml::Gather, gather: Gather) -> twiml::Gather {
    let verb = verb.timeout(GATHER_TIMEOUT_SECS);
    match gather {
        Gather::UserId
        | Gather::SubjectId
        | Gather::CaseNumber
        | Gather::AgentId
        | Gather::Passcode => verb.finish_on_key("#"),
        Gather::Pin => verb.num_digits(4),
        Gather::Menu | Gather::ApprovalChoice | Gather::AgentChoice => verb.num_digits(1),
        // Between callers the agent may wait a while before the next check.
        Gather::AgentNext => verb.num_digits(1).timeout(AGENT_IDLE_SECS),
    }
}

/// Seconds an idle agent waits before the queue is checked again.
pub const AGENT_IDLE_SECS: u32 = 15;

/// The hold loop a waiting caller hears: their place in line, music, and
/// a redirect to itself, since a conference's wait document goes silent
/// when it ends.
pub fn hold(
    prompts: &PromptCatalog,
    language: Language,
    base_url: &str,
    position: Option<u32>,
) -> String {
    let mut response = Response::new();
    if let Some(position) = position {
        let n = position.to_string();
        response.push(prompts.verb(language, PromptKey::HoldPosition, &[("position", &n)]));
    }
    response.push(prompts.verb(language, PromptKey::HoldMusic, &[]));
    response.push(Redirect::new(
        format!("{base_url}/voice/hold"),
        Method::Post,
    ));
    response.render()
}

/// An apology and the agent queue, for when a step cannot be handled:
/// never a verified route, since nothing could be checked.
pub fn fallback(prompts: &PromptCatalog, language: Language) -> String {
    let reply = Reply {
        prompts: vec![PromptKey::ApologyTransfer.into()],
        next: Next::Route(QueueClass::Unverified),
    };
    // Nothing is stored for this call, so no agent could claim it from
    // pinline's queue; the provider's own queue is the best left.
    let mut response = Response::new();
    for prompt in &reply.prompts {
        response.push(prompts.verb(language, prompt.key, &args(prompt)));
    }
    response.push(twiml::Enqueue::new(FALLBACK_QUEUE));
    response.render()
}

/// The provider-side queue used when pinline's own cannot be reached. Its
/// name is all that marks its callers: whoever answers them there must
/// treat them as unverified.
pub const FALLBACK_QUEUE: &str = "unverified";

/// The agent line's answer when a step cannot be handled: an apology and
/// the end of the call. Never the caller's fallback: an agent who cannot
/// sign in must not end up queued as a caller, nor reach one.
pub fn agent_fallback(prompts: &PromptCatalog) -> String {
    let mut response = Response::new();
    response.push(prompts.verb(Language::EnUs, PromptKey::ApologyGoodbye, &[]));
    response.push(twiml::Verb::Hangup);
    response.render()
}

/// An apology and a fresh start, for a webhook about a call pinline has
/// no record of.
pub fn restart_at_incoming(prompts: &PromptCatalog, base_url: &str) -> String {
    let mut response = Response::new();
    response.push(prompts.verb(
        Language::EnUs,
        crate::prompts::PromptKey::ApologyRestart,
        &[],
    ));
    response.push(Redirect::new(
        format!("{base_url}/voice/incoming"),
        Method::Post,
    ));
    response.render()
}
