//! The sign-in pages.

use maud::{Markup, html};

use super::{Layout, form_error, layout, notice};

/// The users' sign-in page. With `code` (from a sign-in link) it only
/// asks to confirm; otherwise it asks for the code.
pub fn code_page(
    form_token: &str,
    code: Option<&str>,
    note: Option<&str>,
    error: Option<&str>,
) -> Markup {
    let parts = Layout {
        heading: "Sign in",
        ..Layout::default()
    };
    layout(
        parts,
        html! {
            (notice(note))
            (form_error(error))
            form.card method="post" action="/login" {
                input type="hidden" name="form_token" value=(form_token);
                @if let Some(code) = code {
                    p { "You opened a one-time sign-in link. It works once, for 10 minutes." }
                    input type="hidden" name="code" value=(code);
                } @else {
                    label for="code" { "Sign-in code" }
                    p.hint #code-hint {
                        "The 16 characters from your sign-in link, such as K7QD-3M9X-TR2P-WF8H."
                    }
                    input #code type="text" name="code" required autocomplete="one-time-code"
                        autocapitalize="characters" spellcheck="false" aria-describedby="code-hint";
                }
                button #sign-in type="submit" { "Sign in" }
            }
            p { "Support agent? " a href="/agent/login" { "Sign in to the agent console" } "." }
        },
    )
}

/// The agents' sign-in page.
pub fn agent_page(form_token: &str, note: Option<&str>, error: Option<&str>) -> Markup {
    let parts = Layout {
        heading: "Agent sign-in",
        ..Layout::default()
    };
    layout(
        parts,
        html! {
            (notice(note))
            (form_error(error))
            form.card method="post" action="/agent/login" {
                input type="hidden" name="form_token" value=(form_token);
                label for="agent_id" { "Agent ID" }
                input #agent_id type="text" name="agent_id" required inputmode="numeric"
                    autocomplete="username";
                label for="passcode" { "Passcode" }
                input #passcode type="password" name="passcode" required inputmode="numeric"
                    autocomplete="current-password";
                button #agent-sign-in type="submit" { "Sign in" }
            }
            p { "Provider or staff member? " a href="/login" { "Sign in with your code" } "." }
        },
    )
}
