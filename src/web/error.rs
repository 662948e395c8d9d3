//! What a page answers when it cannot show what was asked: one enum, and
//! one place that turns it into a response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::view;
use crate::error::Error;

/// Why a page is not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageError {
    /// Nobody is signed in (or the session timed out): to the sign-in
    /// page for users, or for agents.
    SignIn {
        /// The agents' sign-in page.
        agent: bool,
        /// Say that the session timed out.
        expired: bool,
    },
    /// Not this person's to see or do. The same words whether the page
    /// exists or not, so nothing about other accounts can be learned.
    Forbidden,
    /// The form token was missing or wrong.
    StaleForm,
    /// The request was understood, but what it asks is no longer possible.
    Conflict(&'static str),
    /// A fault, logged where it happened.
    Unavailable,
}

impl From<Error> for PageError {
    fn from(error: Error) -> Self {
        match error {
            // Unknown users and cases are never told apart from other
            // people's.
            Error::UnknownUser(_) | Error::UnknownCase(_) => PageError::Forbidden,
            error => {
                tracing::error!(%error, "web page failed");
                PageError::Unavailable
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::SignIn { agent, expired } => {
                let base = if agent { "/agent/login" } else { "/login" };
                let to = if expired {
                    format!("{base}?expired=1")
                } else {
                    base.to_owned()
                };
                return Redirect::to(&to).into_response();
            }
            PageError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Not available",
                "You do not have access to this page.",
            ),
            PageError::StaleForm => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form is out of date. Go back, reload the page and try again.",
            ),
            PageError::Conflict(message) => {
                (StatusCode::CONFLICT, "Not possible any more", message)
            }
            PageError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Something went wrong on our side. Please try again in a minute.",
            ),
        };
        (status, view::message_page(title, message)).into_response()
    }
}
