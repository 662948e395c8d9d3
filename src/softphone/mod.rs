//! A terminal softphone: places a call against a TwiML webhook and runs the
//! answers the way Twilio's call engine does, as far as a terminal can.
//!
//! It posts the standard call parameters, signs every request with
//! `X-Twilio-Signature`, prints what a caller would hear (`<Say>` text,
//! `<Play>` URLs), answers `<Gather>` from a [`Keypad`] with Twilio's
//! `numDigits`, `finishOnKey`, `timeout` and `actionOnEmptyResult` rules,
//! follows `action` and `<Redirect>` URLs, loops `waitUrl` TwiML while the
//! call waits in a queue or conference, and posts the status callback when
//! the call ends.
//!
//! The core is pure: [`document`] parses TwiML into verbs, and [`run`]
//! executes them over any [`Transport`] and [`Keypad`], so its tests need
//! no network and no terminal. The edges are [`HttpTransport`] and
//! [`TerminalKeypad`].
//!
//! Limits, by design: the softphone is alone on the line, so no agent ever
//! dequeues it and nobody answers a `<Dial>`. It hangs up after
//! [`CallSetup::max_wait_loops`] rounds of hold TwiML (sooner when a script
//! runs out of keys), and when it hangs up while waiting it sends only the
//! status callback, not the `<Enqueue>` or `<Dial>` action.

pub mod document;
mod engine;
pub mod keypad;
pub mod terminal;
pub mod transport;

use std::fmt;

use reqwest::Url;

pub use engine::run;
pub use keypad::{Collected, KeyPrompt, Keypad, Keys, ScriptedKeypad, collect_digits};
pub use terminal::TerminalKeypad;
pub use transport::{HttpTransport, Reply, Request, Transport};

use crate::signature::WebhookAuth;

/// The number calling, unless told otherwise.
pub const DEFAULT_FROM: &str = "+15551230001";
/// The number called, unless told otherwise.
pub const DEFAULT_TO: &str = "+18005550100";
/// The account the calls claim to come from (Twilio's format, all zeros).
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
/// The API version Twilio reports with every request.
pub const API_VERSION: &str = "2010-04-01";
/// Rounds of hold TwiML before the softphone gives up waiting.
pub const MAX_WAIT_LOOPS: usize = 3;
/// Documents fetched in one call before it is taken for a loop.
pub const MAX_DOCUMENTS: usize = 100;
/// Where the status callback goes, on the host of the call's URL.
pub const STATUS_PATH: &str = "/voice/status";

/// Everything about one call that is fixed before it starts.
#[derive(Debug, Clone)]
pub struct CallSetup {
    /// The webhook the call starts at (the number's Voice URL).
    pub url: Url,
    /// `From`.
    pub from: String,
    /// `To`.
    pub to: String,
    /// `AccountSid`.
    pub account_sid: String,
    /// `CallSid`, fresh for every call.
    pub call_sid: String,
    /// Signs every request.
    pub auth: WebhookAuth,
    /// Hold rounds before hanging up (see [`MAX_WAIT_LOOPS`]).
    pub max_wait_loops: usize,
    /// Document limit (see [`MAX_DOCUMENTS`]).
    pub max_documents: usize,
}

impl CallSetup {
    /// A call to `url` signed with `token`, from [`DEFAULT_FROM`] to
    /// [`DEFAULT_TO`], with a fresh CallSid. The URL must be absolute
    /// `http://` or `https://`.
    pub fn new(url: &str, token: &str) -> Result<Self, CallError> {
        Ok(Self {
            url: absolute_url(url)?,
            from: DEFAULT_FROM.to_owned(),
            to: DEFAULT_TO.to_owned(),
            account_sid: ACCOUNT_SID.to_owned(),
            call_sid: new_call_sid(),
            auth: WebhookAuth::new(token),
            max_wait_loops: MAX_WAIT_LOOPS,
            max_documents: MAX_DOCUMENTS,
        })
    }
}

/// A fresh CallSid in Twilio's format: `CA` and 32 lowercase hex digits.
pub fn new_call_sid() -> String {
    format!("CA{:032x}", rand::random::<u128>())
}

fn absolute_url(url: &str) -> Result<Url, CallError> {
    let bad = |reason: &str| CallError::BadUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("only http:// and https:// URLs can be called"));
    }
    Ok(parsed)
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// A `<Hangup>`.
    Hangup,
    /// The last document ran out of verbs, so Twilio hung up.
    DocumentEnded,
    /// The caller hung up: a script ran out of keys, or the terminal
    /// closed its input.
    CallerHungUp,
    /// The caller hung up while waiting in this queue.
    InQueue(String),
    /// The caller hung up while alone in this conference room.
    InConference(String),
    /// The call fetched [`CallSetup::max_documents`] documents.
    TooManyDocuments,
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::Hangup => f.write_str("<Hangup>"),
            EndReason::DocumentEnded => f.write_str("the TwiML ran out of verbs"),
            EndReason::CallerHungUp => f.write_str("the caller hung up"),
            EndReason::InQueue(queue) => write!(f, "hung up while waiting in queue {queue:?}"),
            EndReason::InConference(room) => {
                write!(f, "hung up while alone in conference {room:?}")
            }
            EndReason::TooManyDocuments => f.write_str("too many documents, taken for a loop"),
        }
    }
}

/// How a call went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSummary {
    /// The call's CallSid.
    pub call_sid: String,
    /// Why it ended.
    pub ended: EndReason,
    /// `CallDuration` as reported in the status callback, in seconds.
    pub duration_secs: u64,
    /// Requests sent, the status callback included.
    pub requests: usize,
}

/// Why a call failed. Each names the URL involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// A URL that cannot be called.
    #[error("{url:?} is not a URL the softphone can call: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why not.
        reason: String,
    },
    /// No HTTP answer at all.
    #[error("{method} {url}: no answer: {reason}")]
    Unreachable {
        /// GET or POST.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// Why.
        reason: String,
    },
    /// An answer that is not 2xx.
    #[error("{method} {url}: the server answered {status}{body}")]
    Status {
        /// GET or POST.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The status code and its reason phrase, e.g. `404 Not Found`.
        status: String,
        /// The start of the body, prefixed with `": "`, or empty.
        body: String,
    },
    /// A 2xx answer that is not valid TwiML.
    #[error("malformed TwiML from {url}: {reason}")]
    Malformed {
        /// The URL that answered it.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}
