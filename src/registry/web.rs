//! Signing in to the web pages: one-time sign-in codes for users, agent
//! sign-in by passcode, and the sessions both lead to.
//!
//! Every secret (a code, a session cookie) is a public selector that finds
//! the row plus a random secret part of which only a SHA-256 is stored, and
//! which is compared in constant time. The form token that guards a
//! session's forms against cross-site requests is derived from the
//! session's secret, so it needs no storage and changes with each sign-in.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::RngExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Registry;
use crate::domain::account::UserId;
use crate::domain::agent::AgentId;
use crate::domain::audit::format_time;
use crate::error::{Error, Result};
use crate::storage::queue::{self, QueuedCall};
use crate::storage::web::{self, LoginCodeRow, SessionRow};

/// How long a sign-in code works once issued.
pub const LOGIN_CODE_TTL: Duration = Duration::minutes(10);

/// A session with no activity for this long is over (automatic log-off).
pub const SESSION_IDLE: Duration = Duration::minutes(15);

/// A session ends this long after sign-in, however active.
pub const SESSION_MAX: Duration = Duration::hours(12);

/// Crockford's base32: no I, L, O or U, so a code read aloud or typed from
/// a screen is hard to get wrong.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Symbols in a sign-in code: a 6-symbol selector (30 bits) and a
/// 10-symbol secret (50 bits), far beyond what can be guessed in ten
/// minutes, more so since a wrong secret burns the code.
const CODE_LEN: usize = 16;
const SELECTOR_LEN: usize = 6;

/// A one-time sign-in code, shown once. Its `Debug` hides the code.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginCode {
    /// Whom it signs in.
    pub user_id: UserId,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    code: String,
}

impl fmt::Debug for LoginCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginCode")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl LoginCode {
    /// The code as it goes in a URL: 16 symbols.
    pub fn as_str(&self) -> &str {
        &self.code
    }

    /// The code in groups of four, for typing into the sign-in page.
    pub fn grouped(&self) -> String {
        let symbols: Vec<char> = self.code.chars().collect();
        symbols
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// A code as typed: any case, dashes and spaces ignored, and the letters
/// people confuse with digits read as those digits.
fn normalize_code(text: &str) -> Option<String> {
    let code: String = text
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    let well_formed = code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b));
    well_formed.then_some(code)
}

fn random_symbols(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())]))
        .collect()
}

fn random_base64<const N: usize>() -> String {
    let bytes: [u8; N] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `secret`, prefixed by what it is for, so that one kind of
/// secret's hash is never another's.
fn hash(purpose: &str, secret: &str) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(purpose.as_bytes());
    digest.update([0]);
    digest.update(secret.as_bytes());
    digest.finalize().into()
}

fn hash_matches(stored: &[u8], purpose: &str, secret: &str) -> bool {
    hash(purpose, secret).ct_eq(stored).into()
}

const CODE_PURPOSE: &str = "pinline login code";
const SESSION_PURPOSE: &str = "pinline web session";
const CSRF_PURPOSE: &str = "pinline web form token";

/// Who a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// A provider or staff member.
    User(UserId),
    /// A support agent.
    Agent(AgentId),
}

/// The value of a session cookie: `{session ID}.{secret}`. Its `Debug`
/// hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCookie(String);

impl fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionCookie(..)")
    }
}

impl SessionCookie {
    /// Wraps a cookie value as the browser sent it.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value to set in the cookie.
    pub fn value(&self) -> &str {
        &self.0
    }

    fn parts(&self) -> Option<(&str, &str)> {
        let (id, secret) = self.0.split_once('.')?;
        let plausible = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        (plausible(id) && plausible(secret)).then_some((id, secret))
    }
}

/// A live session. Its `Debug` hides the form token.
#[derive(Clone, PartialEq, Eq)]
pub struct WebSession {
    /// Who is signed in.
    pub principal: Principal,
    /// The IANA zone chosen for showing times, if any.
    pub time_zone: Option<String>,
    csrf: String,
}

impl fmt::Debug for WebSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSession")
            .field("principal", &self.principal)
            .field("time_zone", &self.time_zone)
            .finish_non_exhaustive()
    }
}

impl WebSession {
    fn new(principal: Principal, time_zone: Option<String>, secret: &str) -> Self {
        Self {
            principal,
            time_zone,
            csrf: URL_SAFE_NO_PAD.encode(hash(CSRF_PURPOSE, secret)),
        }
    }

    /// The token every form of this session carries in a hidden field.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// Whether a submitted form token is this session's, compared in
    /// constant time.
    pub fn csrf_matches(&self, given: &str) -> bool {
        self.csrf.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

/// What a cookie names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionLookup {
    /// A live session.
    Active(WebSession),
    /// A session that timed out (and is now deleted): sign in again.
    Expired,
    /// Nothing: no cookie, a forged one, or a session signed out.
    Missing,
}

/// The agent queue as a console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// Waiting and claimed callers, in the order agents get them.
    pub calls: Vec<QueuedCall>,
    /// The time the snapshot was taken, for wait times.
    pub now: DateTime<Utc>,
}

impl Registry {
    /// Issues a one-time sign-in code for `user_id`, stored hashed.
    pub fn issue_login_code(&self, user_id: UserId) -> Result<LoginCode> {
        let now = self.now();
        let expires_at = now + LOGIN_CODE_TTL;
        self.db.write(|tx| {
            if !crate::storage::accounts::user_exists(tx, user_id)? {
                return Err(Error::UnknownUser(user_id));
            }
            web::prune_login_codes(tx, &format_time(now))?;
            let code = loop {
                let candidate = random_symbols(CODE_LEN);
                if !web::login_code_exists(tx, &candidate[..SELECTOR_LEN])? {
                    break candidate;
                }
            };
            let (selector, secret) = code.split_at(SELECTOR_LEN);
            let row = LoginCodeRow {
                selector: selector.to_owned(),
                secret_hash: hash(CODE_PURPOSE, secret).to_vec(),
                user_id: user_id.to_stored(),
                expires_at: format_time(expires_at),
                used_at: None,
            };
            web::insert_login_code(tx, &row, &format_time(now))?;
            Ok(LoginCode {
                user_id,
                expires_at,
                code,
            })
        })
    }

    /// Spends a sign-in code and opens a session for its user. `None` for
    /// a code that is malformed, unknown, used, expired or wrong, alike; a
    /// wrong secret for a known selector also burns that code.
    pub fn redeem_login_code(&self, text: &str) -> Result<Option<(SessionCookie, WebSession)>> {
        let Some(code) = normalize_code(text) else {
            return Ok(None);
        };
        let (selector, secret) = code.split_at(SELECTOR_LEN);
        let now = self.now();
        self.db.write(|tx| {
            let Some(row) = web::login_code(tx, selector)? else {
                return Ok(None);
            };
            let spent = !web::use_login_code(tx, selector, &format_time(now))?;
            let expired = parse_time(&row.expires_at).is_none_or(|t| t <= now);
            if spent || expired || !hash_matches(&row.secret_hash, CODE_PURPOSE, secret) {
                return Ok(None);
            }
            let user = UserId::from_stored(row.user_id)
                .ok_or_else(|| Error::Invalid("stored sign-in code names no valid user".into()))?;
            self.open_session_in(tx, Principal::User(user)).map(Some)
        })
    }

    /// Checks an agent ID and passcode as typed (throttled and locked like
    /// the agent line) and opens a session for the agent, in one
    /// transaction. `None` whenever the agent is not let in.
    pub fn sign_in_agent(
        &self,
        agent_id: &str,
        passcode: &str,
    ) -> Result<Option<(SessionCookie, WebSession)>> {
        self.db.write(|tx| {
            let Some(agent) = self.authenticate_agent_in(tx, agent_id.trim(), passcode.trim())?
            else {
                return Ok(None);
            };
            self.open_session_in(tx, Principal::Agent(agent)).map(Some)
        })
    }

    fn open_session_in(
        &self,
        tx: &rusqlite::Connection,
        principal: Principal,
    ) -> Result<(SessionCookie, WebSession)> {
        let now = self.now();
        web::prune_sessions(
            tx,
            &format_time(now - SESSION_IDLE),
            &format_time(now - SESSION_MAX),
        )?;
        let session_id = loop {
            let candidate = random_base64::<16>();
            if !web::session_exists(tx, &candidate)? {
                break candidate;
            }
        };
        let secret = random_base64::<32>();
        let (user_id, agent_id) = match principal {
            Principal::User(id) => (Some(id.to_stored()), None),
            Principal::Agent(id) => (None, Some(id.to_stored())),
        };
        let row = SessionRow {
            secret_hash: hash(SESSION_PURPOSE, &secret).to_vec(),
            session_id: session_id.clone(),
            user_id,
            agent_id,
            created_at: format_time(now),
            last_seen_at: format_time(now),
            time_zone: None,
        };
        web::insert_session(tx, &row)?;
        let session = WebSession::new(principal, None, &secret);
        Ok((SessionCookie(format!("{session_id}.{secret}")), session))
    }

    /// The session a cookie names. With `activity`, the request counts as
    /// activity and restarts the idle timer; a live stream does not.
    pub fn web_session(&self, cookie: &SessionCookie, activity: bool) -> Result<SessionLookup> {
        let Some((id, secret)) = cookie.parts() else {
            return Ok(SessionLookup::Missing);
        };
        let now = self.now();
        self.db.write(|tx| {
            let Some(row) = web::session(tx, id)? else {
                return Ok(SessionLookup::Missing);
            };
            if !hash_matches(&row.secret_hash, SESSION_PURPOSE, secret) {
                return Ok(SessionLookup::Missing);
            }
            let idle = parse_time(&row.last_seen_at).is_none_or(|t| now - t > SESSION_IDLE);
            let old = parse_time(&row.created_at).is_none_or(|t| now - t > SESSION_MAX);
            if idle || old {
                web::delete_session(tx, id)?;
                return Ok(SessionLookup::Expired);
            }
            let Some(principal) = principal_of(&row) else {
                return Ok(SessionLookup::Missing);
            };
            if activity {
                web::touch_session(tx, id, &format_time(now))?;
            }
            Ok(SessionLookup::Active(WebSession::new(
                principal,
                row.time_zone,
                secret,
            )))
        })
    }

    /// Signs a session out. A cookie naming nothing is not an error.
    pub fn end_web_session(&self, cookie: &SessionCookie) -> Result<()> {
        self.db.write(|tx| -> Result<()> {
            if let Some(id) = owned_session_id(tx, cookie)? {
                web::delete_session(tx, id)?;
            }
            Ok(())
        })
    }

    /// Remembers the zone (an IANA name the caller has checked) in which
    /// the session's times are shown.
    pub fn set_web_time_zone(&self, cookie: &SessionCookie, zone: &str) -> Result<()> {
        self.db.write(|tx| -> Result<()> {
            if let Some(id) = owned_session_id(tx, cookie)? {
                web::set_time_zone(tx, id, zone)?;
            }
            Ok(())
        })
    }

    /// The queue as agents see it, with the registry's time.
    pub fn queue_snapshot(&self) -> Result<QueueSnapshot> {
        let calls = queue::in_queue(&*self.db.conn()?)?;
        Ok(QueueSnapshot {
            calls,
            now: self.now(),
        })
    }
}

/// The session ID in `cookie`, if the cookie's secret is that session's.
fn owned_session_id<'c>(
    tx: &rusqlite::Connection,
    cookie: &'c SessionCookie,
) -> Result<Option<&'c str>> {
    let Some((id, secret)) = cookie.parts() else {
        return Ok(None);
    };
    let owned = web::session(tx, id)?
        .is_some_and(|row| hash_matches(&row.secret_hash, SESSION_PURPOSE, secret));
    Ok(owned.then_some(id))
}

fn principal_of(row: &SessionRow) -> Option<Principal> {
    match (row.user_id, row.agent_id) {
        (Some(user), None) => UserId::from_stored(user).map(Principal::User),
        (None, Some(agent)) => AgentId::from_stored(agent).map(Principal::Agent),
        _ => None,
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_forgivingly_and_nothing_else() {
        let code = "0123-4567-89AB-CDEF";
        assert_eq!(normalize_code(code).as_deref(), Some("0123456789ABCDEF"));
        assert_eq!(
            normalize_code(" o1i2 l345 6789 abcd ").as_deref(),
            Some("011213456789ABCD")
        );
        for bad in [
            "",
            "0123456789ABCDE",
            "0123456789ABCDEFG",
            "0123456789ABCDEU",
        ] {
            assert_eq!(normalize_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hashes_are_kept_apart_by_purpose() {
        assert_ne!(hash(CODE_PURPOSE, "x"), hash(SESSION_PURPOSE, "x"));
        assert!(hash_matches(&hash(CSRF_PURPOSE, "x"), CSRF_PURPOSE, "x"));
        assert!(!hash_matches(&hash(CSRF_PURPOSE, "x"), CSRF_PURPOSE, "y"));
    }

    #[test]
    fn cookies_split_into_plausible_parts_only() {
        assert_eq!(SessionCookie::new("ab.cd").parts(), Some(("ab", "cd")));
        for bad in ["", "abcd", ".cd", "ab.", "a b.cd", "ab.c;d"] {
            assert_eq!(SessionCookie::new(bad).parts(), None, "{bad:?}");
        }
    }

    #[test]
    fn form_tokens_differ_per_session_and_compare_exactly() {
        let user = Principal::User(UserId::parse("12345678").unwrap());
        let one = WebSession::new(user, None, "secret-one");
        let two = WebSession::new(user, None, "secret-two");
        assert_ne!(one.csrf_token(), two.csrf_token());
        assert!(one.csrf_matches(one.csrf_token()));
        assert!(!one.csrf_matches(two.csrf_token()));
        assert!(!one.csrf_matches(""));
    }
}
