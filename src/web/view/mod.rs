//! HTML: the layout every page shares, and one module per page. maud
//! escapes every value it is given, so nothing typed or stored can become
//! markup.

pub mod account;
pub mod console;
pub mod login;

use maud::{DOCTYPE, Markup, html};

use crate::registry::web::SESSION_IDLE;

/// A page reloads itself this long after it was served: past the idle
/// timeout, so an abandoned screen stops showing a PIN or the queue and
/// lands on the sign-in page instead.
fn reload_after_secs() -> i64 {
    SESSION_IDLE.num_seconds() + 5
}

/// What the layout needs besides the main content.
#[derive(Debug, Default)]
pub struct Layout<'a> {
    /// The window title and the page's heading.
    pub heading: &'a str,
    /// Beside the brand: who is signed in and how to sign out.
    pub nav: Option<Markup>,
    /// The page footer.
    pub footer: Option<Markup>,
    /// Where the page goes when the idle timeout has passed.
    pub reload_to: Option<&'a str>,
    /// Scripts from this origin, loaded deferred.
    pub scripts: &'a [&'a str],
    /// Let the time zone script pick the browser's zone.
    pub tz_auto: bool,
}

/// A whole page around `main`.
pub fn layout(layout: Layout<'_>, main: Markup) -> Markup {
    let refresh = layout
        .reload_to
        .map(|to| format!("{};url={to}", reload_after_secs()));
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(refresh) = refresh {
                    meta http-equiv="refresh" content=(refresh);
                }
                title { (layout.heading) " · pinline" }
                link rel="stylesheet" href="/static/pinline.css";
                @for script in layout.scripts {
                    script src=(script) defer {}
                }
            }
            body data-tz-auto=[layout.tz_auto.then_some("1")] {
                a.skip href="#main" { "Skip to content" }
                header.site {
                    p.brand { "pinline" }
                    @if let Some(nav) = layout.nav {
                        nav aria-label="Session" { (nav) }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (layout.heading) }
                    (main)
                }
                @if let Some(footer) = layout.footer {
                    footer.site { (footer) }
                }
            }
        }
    }
}

/// A page that only says something: errors, refusals.
pub fn message_page(heading: &str, message: &str) -> Markup {
    let layout_parts = Layout {
        heading,
        ..Layout::default()
    };
    layout(
        layout_parts,
        html! {
            p { (message) }
            p { a href="/" { "Go to the start page" } }
        },
    )
}

/// The hidden field with the session's form token.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A sign-out button for the header.
pub fn sign_out(who: &str, csrf: &str) -> Markup {
    html! {
        span.who { (who) }
        form.inline method="post" action="/logout" {
            (csrf_field(csrf))
            button.link type="submit" { "Sign out" }
        }
    }
}

/// A notice after an action, read out by screen readers.
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p.notice role="status" { (text) }
        }
    }
}

/// An error in a form, read out at once.
pub fn form_error(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p.error role="alert" { (text) }
        }
    }
}
