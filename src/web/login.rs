//! Signing in and out: users with a one-time link or code that the host
//! product mints (`pinline user login-link`), agents with their agent ID
//! and passcode. Each sign-in starts a new session and ends the one the
//! browser had, so a session ID never outlives a change of identity.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::Markup;
use serde::Deserialize;

use super::auth::{self, signin_token, signin_token_ok};
use super::error::PageError;
use super::{blocking, view};
use crate::registry::web::{Principal, SessionCookie, SessionLookup, WebSession};
use crate::server::AppState;

/// What a sign-in page was sent back with.
#[derive(Debug, Default, Deserialize)]
pub(super) struct NoticeQuery {
    #[serde(default)]
    expired: Option<String>,
    #[serde(default)]
    signed_out: Option<String>,
}

impl NoticeQuery {
    fn notice(&self) -> Option<&'static str> {
        if self.expired.is_some() {
            Some("You were signed out after 15 minutes without activity. Please sign in again.")
        } else if self.signed_out.is_some() {
            Some("You are signed out.")
        } else {
            None
        }
    }
}

/// A user's sign-in form. Holds a secret, so no `Debug`.
#[derive(Deserialize)]
pub(super) struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    form_token: String,
}

/// An agent's sign-in form. Holds a secret, so no `Debug`.
#[derive(Deserialize)]
pub(super) struct AgentForm {
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    passcode: String,
    #[serde(default)]
    form_token: String,
}

/// A form that carries only the session's token.
#[derive(Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    pub(super) csrf: String,
}

const CODE_REFUSED: &str = "That sign-in code does not work. Codes work once, for 10 minutes: \
     ask for a new sign-in link.";
const AGENT_REFUSED: &str = "That agent ID and passcode do not match, or the agent is locked \
     out. After 5 wrong passcodes, ask an operator for a new passcode.";

/// `GET /`: wherever the browser's session belongs.
pub(super) async fn home(State(app): State<AppState>, headers: HeaderMap) -> Redirect {
    match auth::lookup(&app, &headers, false).await {
        Ok(SessionLookup::Active(session)) => match session.principal {
            Principal::User(_) => Redirect::to("/account"),
            Principal::Agent(_) => Redirect::to("/agent"),
        },
        _ => Redirect::to("/login"),
    }
}

/// `GET /login`: the form for a sign-in code.
pub(super) async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let token = signin_token(&app, &headers);
    let page = view::login::code_page(&token.token, None, query.notice(), None);
    with_cookie(StatusCode::OK, page, token.set_cookie)
}

/// `GET /login/{code}`: a sign-in link. It only shows a button: spending
/// the code on a GET would let a mail scanner's preview sign in, or burn
/// the code before its owner clicks.
pub(super) async fn link(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    let token = signin_token(&app, &headers);
    let page = view::login::code_page(&token.token, Some(&code), None, None);
    with_cookie(StatusCode::OK, page, token.set_cookie)
}

/// `POST /login`: spends a sign-in code.
pub(super) async fn submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, PageError> {
    if !signin_token_ok(&app, &headers, &form.form_token) {
        return Err(PageError::StaleForm);
    }
    let previous = auth::request_session(&app, &headers);
    let code = form.code;
    let signed = blocking(&app, move |registry| {
        if let Some(previous) = previous {
            registry.end_web_session(&previous)?;
        }
        registry.redeem_login_code(&code)
    })
    .await?;
    match signed {
        Some((cookie, session)) => Ok(signed_in(&app, &cookie, &session, "/account")),
        None => {
            tracing::info!("web sign-in refused: code not valid");
            let token = signin_token(&app, &headers);
            let page = view::login::code_page(&token.token, None, None, Some(CODE_REFUSED));
            Ok(with_cookie(
                StatusCode::UNAUTHORIZED,
                page,
                token.set_cookie,
            ))
        }
    }
}

/// `GET /agent/login`: the agents' sign-in form.
pub(super) async fn agent_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let token = signin_token(&app, &headers);
    let page = view::login::agent_page(&token.token, query.notice(), None);
    with_cookie(StatusCode::OK, page, token.set_cookie)
}

/// `POST /agent/login`: checks an agent ID and passcode, throttled and
/// locked as on the agent line.
pub(super) async fn agent_submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<AgentForm>,
) -> Result<Response, PageError> {
    if !signin_token_ok(&app, &headers, &form.form_token) {
        return Err(PageError::StaleForm);
    }
    let previous = auth::request_session(&app, &headers);
    let (agent_id, passcode) = (form.agent_id, form.passcode);
    let signed = blocking(&app, move |registry| {
        if let Some(previous) = previous {
            registry.end_web_session(&previous)?;
        }
        registry.sign_in_agent(&agent_id, &passcode)
    })
    .await?;
    match signed {
        Some((cookie, session)) => Ok(signed_in(&app, &cookie, &session, "/agent")),
        None => {
            tracing::info!("web agent sign-in refused");
            let token = signin_token(&app, &headers);
            let page = view::login::agent_page(&token.token, None, Some(AGENT_REFUSED));
            Ok(with_cookie(
                StatusCode::UNAUTHORIZED,
                page,
                token.set_cookie,
            ))
        }
    }
}

/// `POST /logout`: ends the session.
pub(super) async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Result<Response, PageError> {
    let mut to = "/login?signed_out=1";
    if let SessionLookup::Active(session) = auth::lookup(&app, &headers, false).await? {
        if !session.csrf_matches(&form.csrf) {
            return Err(PageError::StaleForm);
        }
        if let Principal::Agent(_) = session.principal {
            to = "/agent/login?signed_out=1";
        }
        if let Some(cookie) = auth::request_session(&app, &headers) {
            blocking(&app, move |registry| registry.end_web_session(&cookie)).await?;
        }
        log_principal("web sign-out", &session);
    }
    let mut response = Redirect::to(to).into_response();
    if let Some(clear) = auth::clear_session_cookie(&app) {
        response.headers_mut().insert(header::SET_COOKIE, clear);
    }
    Ok(response)
}

fn signed_in(app: &AppState, cookie: &SessionCookie, session: &WebSession, to: &str) -> Response {
    log_principal("web sign-in", session);
    let mut response = Redirect::to(to).into_response();
    match auth::session_cookie(app, cookie) {
        Some(value) => {
            response.headers_mut().insert(header::SET_COOKIE, value);
            response
        }
        None => PageError::Unavailable.into_response(),
    }
}

fn log_principal(what: &str, session: &WebSession) {
    match session.principal {
        Principal::User(user) => tracing::info!(%user, "{what}"),
        Principal::Agent(agent) => tracing::info!(%agent, "{what}"),
    }
}

fn with_cookie(status: StatusCode, page: Markup, cookie: Option<HeaderValue>) -> Response {
    let mut response = (status, page).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}
