//! Turns a flow [`Reply`] into the TwiML document the telephony provider
//! executes.

use crate::flow::{Gather, Next, Prompt, QueueClass, Reply};
use crate::prompts::{Language, PromptCatalog};
use crate::twiml::{self, Enqueue, Method, Redirect, Response};

/// Seconds a gather waits for the first (and each further) key.
pub const GATHER_TIMEOUT_SECS: u32 = 6;

/// The queue every routed call joins.
pub const SUPPORT_QUEUE: &str = "support";

/// Renders `reply`, pointing its gather (if any) at step `step` under
/// `base_url` (the server's public address, no trailing slash).
pub fn render(
    reply: &Reply,
    language: Language,
    prompts: &PromptCatalog,
    base_url: &str,
    step: u32,
) -> String {
    let mut response = Response::new();
    match reply.next {
        Next::Gather(gather) => {
            let action = format!("{base_url}{}?step={step}", gather.path());
            let mut verb = configure(twiml::Gather::new(action.clone()), gather);
            for prompt in &reply.prompts {
                verb = verb.child(prompts.gather_child(language, prompt.key, &args(prompt)));
            }
            // Providers without `actionOnEmptyResult` fall through to
            // here on silence; the redirect reports it the same way.
            response.push(verb);
            response.push(Redirect::new(action, Method::Post));
        }
        Next::Route(class) => {
            speak(&mut response, reply, language, prompts);
            response.push(route(class));
        }
        Next::Hangup => {
            speak(&mut response, reply, language, prompts);
            response.push(twiml::Verb::Hangup);
        }
    }
    response.render()
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
        Gather::UserId | Gather::SubjectId | Gather::CaseNumber => verb.finish_on_key("#"),
        Gather::Pin => verb.num_digits(4),
        Gather::Menu | Gather::ApprovalChoice => verb.num_digits(1),
    }
}

fn route(_class: QueueClass) -> Enqueue {
    // Every class shares one queue for now; the agent sees the class in
    // the call's context.
    Enqueue::new(SUPPORT_QUEUE)
}

/// An apology and the agent queue, for when a step cannot be handled:
/// never a verified route, since nothing could be checked.
pub fn fallback(prompts: &PromptCatalog, language: Language) -> String {
    let reply = Reply {
        prompts: vec![crate::prompts::PromptKey::ApologyTransfer.into()],
        next: Next::Route(QueueClass::Unverified),
    };
    render(&reply, language, prompts, "", 0)
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
