//! The agent console: the live queue by class, each caller's verification
//! context and wait, and the Claim button. It is given queue rows and
//! their context only, never a PIN.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::{Layout, csrf_field, layout, notice, sign_out};
use crate::domain::agent::AgentId;
use crate::flow::QueueContext;
use crate::registry::web::QueueSnapshot;
use crate::storage::queue::QueuedCall;
use crate::web::time::waited;

/// The classes in the order agents take them, with their headings.
const CLASSES: [(&str, &str); 3] = [
    ("verified", "Verified"),
    ("approval_pending", "Approval pending"),
    ("unverified", "Unverified"),
];

/// The whole console.
pub fn page(agent: AgentId, snapshot: &QueueSnapshot, csrf: &str, note: Option<&str>) -> Markup {
    let who = format!("Agent {agent}");
    let parts = Layout {
        heading: "Agent console",
        nav: Some(sign_out(&who, csrf)),
        reload_to: Some("/agent"),
        scripts: &["/static/console.js"],
        ..Layout::default()
    };
    layout(
        parts,
        html! {
            (notice(note))
            form.claim method="post" action="/agent/claim" {
                (csrf_field(csrf))
                button #claim type="submit" { "Claim next caller" }
            }
            p.hint {
                "Claiming here does what the agent line does: when you dial the agent line "
                "and sign in, the caller you claimed is the one offered."
            }
            p #queue-summary role="status" { (summary(snapshot)) }
            p #live .hint hidden { "Updates live." }
            noscript {
                p.hint { "Without JavaScript the queue does not update by itself: "
                    a href="/agent" { "refresh" } "." }
            }
            div #queue { (queue(snapshot, agent)) }
        },
    )
}

/// One line on the queue's depth, for the status region.
pub fn summary(snapshot: &QueueSnapshot) -> String {
    let count = |class: &str| snapshot.calls.iter().filter(|c| c.class == class).count();
    format!(
        "{} in the queue: {} verified, {} approval pending, {} unverified.",
        snapshot.calls.len(),
        count("verified"),
        count("approval_pending"),
        count("unverified")
    )
}

/// The queue itself; also what each live update replaces.
pub fn queue(snapshot: &QueueSnapshot, me: AgentId) -> Markup {
    let mine = snapshot
        .calls
        .iter()
        .find(|c| c.state == "claimed" && c.claimed_by == Some(me.to_stored()));
    html! {
        span hidden data-summary=(summary(snapshot)) {}
        @if let Some(call) = mine {
            section #my-caller .mine aria-labelledby="my-caller-heading" {
                h2 #my-caller-heading { "Your caller" }
                (caller(call, snapshot.now, me))
                p.hint { "Dial the agent line and sign in: this caller is offered first." }
            }
        }
        @for (class, title) in CLASSES {
            @let calls: Vec<&QueuedCall> =
                snapshot.calls.iter().filter(|c| c.class == class).collect();
            section.class data-class=(class) aria-labelledby={ "class-" (class) } {
                h2 #{ "class-" (class) } { (title) " (" (calls.len()) ")" }
                @if calls.is_empty() {
                    p.hint { "Nobody waiting." }
                } @else {
                    ol.callers {
                        @for call in calls {
                            li.caller data-call=(call.call_sid) data-state=(call.state) {
                                (caller(call, snapshot.now, me))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn caller(call: &QueuedCall, now: DateTime<Utc>, me: AgentId) -> Markup {
    let context: Option<QueueContext> = serde_json::from_str(&call.context).ok();
    let name = context
        .as_ref()
        .and_then(|c| c.caller.as_ref())
        .map_or("Unverified caller", |c| c.name.as_str());
    let state = match (call.state.as_str(), call.claimed_by) {
        ("claimed", Some(agent)) if agent == me.to_stored() => "claimed by you",
        ("claimed", _) => "claimed by another agent",
        _ => "waiting",
    };
    html! {
        h3 { (name) }
        dl.facts {
            dt { "Status" } dd { (state) }
            dt { "Waiting" } dd { (waited(&call.routed_at, now)) }
            @if let Some(context) = &context { (context_facts(context, now)) }
        }
    }
}

fn context_facts(context: &QueueContext, now: DateTime<Utc>) -> Markup {
    html! {
        @match &context.caller {
            Some(caller) => {
                dt { "Verified" }
                dd { "Yes, by Support PIN " (waited(&caller.verified_at, now)) " ago" }
                dt { "User" } dd { (caller.user_id) ", " (caller.role) ", " (caller.practice) }
                dt { "Caller ID" } dd {
                    @if caller.caller_id_matched { "matches a number on file" }
                    @else { "not a number on file" }
                    @if let Some(stir) = &caller.stir_verstat { " (" (stir) ")" }
                }
            }
            None => { dt { "Verified" } dd { "No" } }
        }
        @if let Some(subject) = &context.on_behalf_of {
            dt { "On behalf of" }
            dd { (subject.name) " (" (subject.role) ", " (subject.user_id) ")" }
        }
        dt { "May discuss" } dd.allowed { (context.allowed) }
        @if let Some(case) = &context.case_number {
            dt { "Case" } dd {
                (case)
                @if context.approval_pending { " (approval pending)" }
            }
        }
    }
}
