//! The account page: "Account Settings › Profile" for providers, "Staff
//! Account Information" for staff, as the product modelled names them.

use chrono_tz::Tz;
use maud::{Markup, html};

use super::{Layout, csrf_field, layout, notice, sign_out};
use crate::domain::account::{Role, User};
use crate::domain::audit::StoredEvent;
use crate::domain::case::CaseNumber;
use crate::registry::CaseView;
use crate::web::time::{COMMON_ZONES, local};

/// Everything the page shows.
#[derive(Debug)]
pub struct AccountPage<'a> {
    /// Whose page.
    pub user: &'a User,
    /// One page of their audit log, newest first.
    pub events: &'a [StoredEvent],
    /// Which page of it, from 1.
    pub page: u32,
    /// Whether older events exist.
    pub more: bool,
    /// Cases awaiting this user's approval (providers).
    pub awaiting: &'a [CaseView],
    /// Cases this user asked for that await approval.
    pub pending: &'a [CaseView],
    /// The zone times are shown in.
    pub zone: Tz,
    /// The PIN, once the user pressed View.
    pub pin: Option<&'a str>,
    /// What just happened.
    pub notice: Option<Notice>,
    /// The session's form token.
    pub csrf: &'a str,
    /// Let the browser's zone be picked up.
    pub tz_auto: bool,
}

/// What just happened, said at the top of the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A new PIN was generated (and is shown).
    PinGenerated,
    /// The user approved a case.
    Approved(CaseNumber),
    /// The user declined a case.
    Declined(CaseNumber),
    /// The `tz` asked for is no IANA zone.
    UnknownZone,
}

impl Notice {
    fn text(&self) -> String {
        match self {
            Notice::PinGenerated => {
                "A new Support PIN was generated. The old one no longer works.".into()
            }
            Notice::Approved(n) => format!("You approved case {n}. Support may now help."),
            Notice::Declined(n) => format!("You declined case {n}."),
            Notice::UnknownZone => "That time zone is not known; times are shown as before.".into(),
        }
    }
}

/// The page's heading, as the product modelled names it.
pub fn heading(role: Role) -> &'static str {
    match role {
        Role::Provider => "Account Settings › Profile",
        Role::Staff => "Staff Account Information",
    }
}

/// The whole account page.
pub fn page(model: &AccountPage<'_>) -> Markup {
    let base = format!("/users/{}", model.user.user_id);
    let parts = Layout {
        heading: heading(model.user.role),
        nav: Some(sign_out(&model.user.name, model.csrf)),
        footer: Some(footer(model, &base)),
        reload_to: Some(&base),
        scripts: &["/static/tz.js"],
        tz_auto: model.tz_auto,
    };
    let text = model.notice.as_ref().map(Notice::text);
    layout(
        parts,
        html! {
            (notice(text.as_deref()))
            (profile(model.user))
            (pin_section(model, &base))
            @if model.user.role == Role::Provider {
                (awaiting(model, &base))
            }
            @if model.user.role == Role::Staff || !model.pending.is_empty() {
                (pending(model))
            }
            (audit_log(model, &base))
        },
    )
}

fn profile(user: &User) -> Markup {
    let role = match user.role {
        Role::Provider => "Provider",
        Role::Staff => "Staff",
    };
    html! {
        section aria-labelledby="profile-heading" {
            h2 #profile-heading { "Profile" }
            dl.facts {
                dt { "Name" } dd { (user.name) }
                dt { "User ID" } dd #user-id { (user.user_id) }
                dt { "Role" } dd { (role) }
                dt { "Practice" } dd { (user.practice) }
            }
        }
    }
}

/// The PIN, or four dots until View is pressed.
fn pin_value(pin: Option<&str>, id: &str) -> Markup {
    html! {
        @match pin {
            Some(pin) => span.pin #(id) data-state="shown" { (pin) },
            None => span.pin #(id) data-state="hidden" {
                span aria-hidden="true" { "••••" }
                span.visually-hidden { "hidden" }
            },
        }
    }
}

fn view_form(base: &str, csrf: &str, id: &str) -> Markup {
    html! {
        form.inline method="post" action={ (base) "/pin/view" } {
            (csrf_field(csrf))
            button #(id) type="submit" { "View" }
        }
    }
}

fn pin_section(model: &AccountPage<'_>, base: &str) -> Markup {
    html! {
        section aria-labelledby="pin-heading" {
            h2 #pin-heading { "Support PIN" }
            p.pin-line { "Your Support PIN: " (pin_value(model.pin, "pin-value")) }
            div.actions {
                (view_form(base, model.csrf, "view-pin"))
                form.inline method="post" action={ (base) "/pin/new" } {
                    (csrf_field(model.csrf))
                    button #new-pin .secondary type="submit" { "Generate New PIN" }
                }
            }
            p.hint {
                "Support asks for this PIN when you call. A new PIN appears after each "
                "successful phone verification, since a PIN works only once. Generating a "
                "new PIN also unlocks a PIN locked after wrong entries."
            }
        }
    }
}

fn awaiting(model: &AccountPage<'_>, base: &str) -> Markup {
    html! {
        section #awaiting aria-labelledby="awaiting-heading" {
            h2 #awaiting-heading { "Requests awaiting your approval" }
            @if model.awaiting.is_empty() {
                p { "No requests await your approval." }
            } @else {
            ul.cases {
                @for case in model.awaiting {
                    li data-case=(case.case_number) {
                        p {
                            strong { "Case " (case.case_number) ": " }
                            (case.requestor.name) " (" (case.requestor.role) ") asks support for "
                            "help with "
                            @if case.subject.user_id == model.user.user_id { "your account." }
                            @else { "the account of " (case.subject.name) "." }
                        }
                        p.hint { "Opened " (local(&case.created_at, model.zone)) }
                        form.inline method="post"
                            action={ (base) "/cases/" (case.case_number) } {
                            (csrf_field(model.csrf))
                            button type="submit" name="decision" value="approve"
                                aria-label={ "Approve case " (case.case_number) } { "Approve" }
                            " "
                            button.secondary type="submit" name="decision" value="decline"
                                aria-label={ "Decline case " (case.case_number) } { "Decline" }
                        }
                    }
                }
            }
            }
        }
    }
}

fn pending(model: &AccountPage<'_>) -> Markup {
    html! {
        section #pending aria-labelledby="pending-heading" {
            h2 #pending-heading { "Your requests awaiting approval" }
            @if model.pending.is_empty() {
                p { "You have no requests waiting for approval." }
            } @else {
            ul.cases {
                @for case in model.pending {
                    @let approvers: Vec<&str> =
                        case.approvers.iter().map(|a| a.name.as_str()).collect();
                    li data-case=(case.case_number) {
                        p {
                            strong { "Case " (case.case_number) ": " }
                            "help with the account of " (case.subject.name) ", waiting for "
                            (approvers.join(" or ")) "."
                        }
                        p.hint { "Opened " (local(&case.created_at, model.zone)) }
                    }
                }
            }
            }
        }
    }
}

fn audit_log(model: &AccountPage<'_>, base: &str) -> Markup {
    html! {
        section #audit aria-labelledby="audit-heading" {
            h2 #audit-heading { "Support PIN audit log" }
            form.inline.zone method="get" action=(base) {
                label for="tz" { "Time zone" }
                input #tz type="text" name="tz" list="zones" value=(model.zone.name())
                    autocomplete="off" spellcheck="false";
                datalist #zones {
                    @for zone in COMMON_ZONES { option value=(zone) {} }
                }
                button.secondary type="submit" { "Show times" }
            }
            div.scroll {
                table {
                    caption { "Newest first; times in " (model.zone.name()) "." }
                    thead { tr {
                        th scope="col" { "Time" }
                        th scope="col" { "Event" }
                        th scope="col" { "Channel" }
                        th scope="col" { "By" }
                        th scope="col" { "Detail" }
                    } }
                    tbody {
                        @for event in model.events { (event_row(event, model)) }
                    }
                }
            }
            @if model.events.is_empty() { p { "No events on this page." } }
            (pager(model, base))
        }
    }
}

fn event_row(event: &StoredEvent, model: &AccountPage<'_>) -> Markup {
    let (label, show_detail) = event_label(&event.event);
    html! {
        tr data-event=(event.event) data-channel=(event.channel) {
            td { (local(&event.at, model.zone)) }
            td { (label) }
            td { (channel_label(&event.channel)) }
            td { (actor_label(&event.actor, model.user)) }
            td { @if show_detail { (event.detail) } }
        }
    }
}

/// An event's name for people, and whether its detail is theirs to read:
/// queue events name agents, whose IDs are half of their sign-in.
fn event_label(event: &str) -> (&str, bool) {
    match event {
        "viewed" => ("Viewed", false),
        "validated" => ("Validated", true),
        "validation_failed" => ("Validation failed", true),
        "generated" => ("Generated", true),
        "locked" => ("Locked", true),
        "approval_requested" => ("Approval requested", true),
        "approval_granted" => ("Approval granted", true),
        "approval_declined" => ("Approval declined", true),
        "claimed" => ("Call taken by support", false),
        "claim_released" => ("Call back in the queue", false),
        "connected" => ("Connected to support", false),
        "left_queue" => ("Left the queue", false),
        other => (other, false),
    }
}

fn channel_label(channel: &str) -> &str {
    match channel {
        "phone" => "Phone",
        "web" => "Web",
        "api" => "Support desktop",
        "cli" => "Command line",
        "case" => "Support case",
        "email" => "Email",
        other => other,
    }
}

fn actor_label(actor: &str, user: &User) -> String {
    if actor == format!("user:{}", user.user_id) {
        return "You".into();
    }
    match actor.split_once(':') {
        Some(("user", id)) => format!("User {id}"),
        Some(("agent", _)) => "Support agent".into(),
        _ => match actor {
            "operator" => "Support operator".into(),
            "system" => "pinline".into(),
            "caller" => "Caller".into(),
            other => other.into(),
        },
    }
}

fn pager(model: &AccountPage<'_>, base: &str) -> Markup {
    html! {
        nav.pager aria-label="Audit log pages" {
            @if model.page > 1 {
                a rel="prev" href={ (base) "?page=" (model.page - 1) } { "← Newer" }
            }
            span { "Page " (model.page) }
            @if model.more {
                a rel="next" href={ (base) "?page=" (model.page + 1) } { "Older →" }
            }
        }
    }
}

fn footer(model: &AccountPage<'_>, base: &str) -> Markup {
    html! {
        div.footer-pin {
            span { "Support PIN: " (pin_value(model.pin, "footer-pin")) }
            (view_form(base, model.csrf, "footer-view-pin"))
        }
    }
}
