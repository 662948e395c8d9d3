//! Who is signed in: the session cookie, the extractors that require a
//! signed-in user or agent, and the token that guards the sign-in forms
//! themselves before any session exists.
//!
//! Cookies are HttpOnly and SameSite=Strict; when the public address is
//! https they are also Secure and carry the `__Host-` prefix, which a
//! browser only accepts from this host, over https, for the whole site.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use subtle::ConstantTimeEq;

use super::blocking;
use super::error::PageError;
use crate::domain::account::UserId;
use crate::domain::agent::AgentId;
use crate::registry::web::{Principal, SESSION_MAX, SessionCookie, SessionLookup, WebSession};
use crate::server::AppState;

/// Whether pages are served over https, judged by the public address.
pub fn secure(app: &AppState) -> bool {
    app.public_url.starts_with("https://")
}

fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-pinline-session"
    } else {
        "pinline-session"
    }
}

fn signin_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-pinline-signin"
    } else {
        "pinline-signin"
    }
}

/// The value of cookie `name` in the request, if sent.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn set_cookie(name: &str, value: &str, secure: bool, max_age: i64) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::try_from(text).ok()
}

/// `Set-Cookie` for a new session.
pub fn session_cookie(app: &AppState, cookie: &SessionCookie) -> Option<HeaderValue> {
    let secure = secure(app);
    let name = session_cookie_name(secure);
    set_cookie(name, cookie.value(), secure, SESSION_MAX.num_seconds())
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(app: &AppState) -> Option<HeaderValue> {
    let secure = secure(app);
    set_cookie(session_cookie_name(secure), "", secure, 0)
}

/// The session cookie the request carries.
pub fn request_session(app: &AppState, headers: &HeaderMap) -> Option<SessionCookie> {
    cookie(headers, session_cookie_name(secure(app))).map(SessionCookie::new)
}

/// What the request's session cookie names. With `activity`, the request
/// restarts the idle timer.
pub async fn lookup(
    app: &AppState,
    headers: &HeaderMap,
    activity: bool,
) -> Result<SessionLookup, PageError> {
    let Some(cookie) = request_session(app, headers) else {
        return Ok(SessionLookup::Missing);
    };
    blocking(app, move |registry| registry.web_session(&cookie, activity)).await
}

/// A signed-in provider or staff member.
#[derive(Debug, Clone)]
pub struct UserSession {
    /// Who.
    pub user: UserId,
    /// Their session.
    pub session: WebSession,
    /// The cookie that named it.
    pub cookie: SessionCookie,
}

impl UserSession {
    /// The user of a page's path if it is this user; any other path, an
    /// unknown or a malformed user ID alike, is forbidden.
    pub fn owns(&self, path_user: &str) -> Result<UserId, PageError> {
        match UserId::parse(path_user) {
            Ok(id) if id == self.user => Ok(id),
            _ => Err(PageError::Forbidden),
        }
    }

    /// Checks a submitted form token.
    pub fn check_form(&self, token: &str) -> Result<(), PageError> {
        check_form(&self.session, token)
    }
}

/// A signed-in agent.
#[derive(Debug, Clone)]
pub struct AgentSession {
    /// Who.
    pub agent: AgentId,
    /// Their session.
    pub session: WebSession,
}

impl AgentSession {
    /// Checks a submitted form token.
    pub fn check_form(&self, token: &str) -> Result<(), PageError> {
        check_form(&self.session, token)
    }
}

fn check_form(session: &WebSession, token: &str) -> Result<(), PageError> {
    if session.csrf_matches(token) {
        Ok(())
    } else {
        Err(PageError::StaleForm)
    }
}

impl FromRequestParts<AppState> for UserSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, PageError> {
        let cookie = request_session(app, &parts.headers);
        match (lookup(app, &parts.headers, true).await?, cookie) {
            (SessionLookup::Active(session), Some(cookie)) => match session.principal {
                Principal::User(user) => Ok(Self {
                    user,
                    session,
                    cookie,
                }),
                Principal::Agent(_) => Err(PageError::Forbidden),
            },
            (SessionLookup::Expired, _) => Err(PageError::SignIn {
                agent: false,
                expired: true,
            }),
            _ => Err(PageError::SignIn {
                agent: false,
                expired: false,
            }),
        }
    }
}

impl FromRequestParts<AppState> for AgentSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, PageError> {
        match lookup(app, &parts.headers, true).await? {
            SessionLookup::Active(session) => match session.principal {
                Principal::Agent(agent) => Ok(Self { agent, session }),
                Principal::User(_) => Err(PageError::Forbidden),
            },
            SessionLookup::Expired => Err(PageError::SignIn {
                agent: true,
                expired: true,
            }),
            SessionLookup::Missing => Err(PageError::SignIn {
                agent: true,
                expired: false,
            }),
        }
    }
}

/// The token of a sign-in form, and the cookie to set when it is new.
///
/// Before sign-in there is no session to tie a form to, so the form's
/// token is also set as a SameSite=Strict cookie and the two must match:
/// another site can post the form but cannot send the cookie, so nobody can
/// be signed in to someone else's account without knowing it.
#[derive(Clone)]
pub struct SigninToken {
    /// For the hidden field.
    pub token: String,
    /// `Set-Cookie`, when the browser had no token yet.
    pub set_cookie: Option<HeaderValue>,
}

/// The sign-in token the browser has, or a new one.
pub fn signin_token(app: &AppState, headers: &HeaderMap) -> SigninToken {
    let secure = secure(app);
    let name = signin_cookie_name(secure);
    if let Some(existing) = cookie(headers, name).filter(|v| plausible_token(v)) {
        return SigninToken {
            token: existing.to_owned(),
            set_cookie: None,
        };
    }
    let bytes: [u8; 32] = rand::rng().random();
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let set_cookie = set_cookie(name, &token, secure, 3600);
    SigninToken { token, set_cookie }
}

/// Whether a sign-in form's token matches the browser's cookie.
pub fn signin_token_ok(app: &AppState, headers: &HeaderMap, given: &str) -> bool {
    let Some(expected) = cookie(headers, signin_cookie_name(secure(app))) else {
        return false;
    };
    plausible_token(expected) && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

fn plausible_token(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name_among_many() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "a=1; pinline-session=x.y".parse().unwrap());
        headers.append(header::COOKIE, "xpinline-signin=z".parse().unwrap());
        assert_eq!(cookie(&headers, "pinline-session"), Some("x.y"));
        assert_eq!(cookie(&headers, "pinline-signin"), None);
    }

    #[test]
    fn set_cookie_is_http_only_strict_and_secure_when_asked() {
        let plain = set_cookie("n", "v", false, 60).unwrap();
        let plain = plain.to_str().unwrap();
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        let secure = set_cookie("n", "v", true, 60).unwrap();
        assert!(secure.to_str().unwrap().ends_with("; Secure"));
    }
}
