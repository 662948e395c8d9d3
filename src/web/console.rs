//! The agent console: the queue, live over server-sent events, and the
//! Claim button, which claims as the agent line does.
//!
//! A live stream is not activity: an agent who only watches is signed out
//! after the idle timeout like anyone else, and the stream then tells the
//! page, which reloads onto the sign-in page. Each stream also ends after
//! half a minute and the browser reconnects by itself, so that a shutting
//! server never waits on a console left open.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::Stream;
use serde::Deserialize;

use super::auth::{self, AgentSession};
use super::error::PageError;
use super::login::TokenForm;
use super::{blocking, view};
use crate::domain::agent::AgentId;
use crate::domain::audit::{Actor, Channel};
use crate::registry::Origin;
use crate::registry::web::{Principal, SessionCookie, SessionLookup};
use crate::server::AppState;

/// How often a live console gets the queue.
const TICK: Duration = Duration::from_secs(2);

/// How long one stream lasts before the browser reconnects.
const STREAM_FOR: Duration = Duration::from_secs(30);

/// What a redirect to the console came back from.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ConsoleQuery {
    #[serde(default)]
    notice: Option<String>,
}

impl ConsoleQuery {
    fn notice(&self) -> Option<&'static str> {
        match self.notice.as_deref()? {
            "claimed" => Some("You claimed a caller: they are under Your caller."),
            "empty" => Some("Nobody is waiting to be claimed."),
            _ => None,
        }
    }
}

/// `GET /agent`.
pub(super) async fn page(
    State(app): State<AppState>,
    signed: AgentSession,
    Query(query): Query<ConsoleQuery>,
) -> Result<Response, PageError> {
    let snapshot = blocking(&app, |registry| registry.queue_snapshot()).await?;
    let csrf = signed.session.csrf_token();
    Ok(view::console::page(signed.agent, &snapshot, csrf, query.notice()).into_response())
}

/// `POST /agent/claim`: the caller this agent holds, else the next one.
pub(super) async fn claim(
    State(app): State<AppState>,
    signed: AgentSession,
    Form(form): Form<TokenForm>,
) -> Result<Redirect, PageError> {
    signed.check_form(&form.csrf)?;
    let agent = signed.agent;
    let origin = Origin {
        actor: Actor::Agent(agent.to_stored() as u64),
        channel: Channel::Web,
        call_sid: None,
    };
    let claimed = blocking(&app, move |registry| registry.claim_next(agent, &origin)).await?;
    match claimed {
        Some(call) => {
            tracing::info!(call.sid = %call.call_sid, %agent, "caller claimed on the web");
            Ok(Redirect::to("/agent?notice=claimed"))
        }
        None => Ok(Redirect::to("/agent?notice=empty")),
    }
}

/// `GET /agent/events`: the queue as server-sent events.
pub(super) async fn events(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let agent = match auth::lookup(&app, &headers, false).await? {
        SessionLookup::Active(session) => match session.principal {
            Principal::Agent(agent) => agent,
            Principal::User(_) => return Err(PageError::Forbidden),
        },
        SessionLookup::Expired | SessionLookup::Missing => {
            return Err(PageError::SignIn {
                agent: true,
                expired: false,
            });
        }
    };
    let cookie = auth::request_session(&app, &headers).ok_or(PageError::Forbidden)?;
    let stream = queue_stream(app, cookie, agent);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Where a stream stands between two events.
struct Live {
    app: AppState,
    cookie: SessionCookie,
    agent: AgentId,
    started: Instant,
    sent: u32,
    done: bool,
}

fn queue_stream(
    app: AppState,
    cookie: SessionCookie,
    agent: AgentId,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let live = Live {
        app,
        cookie,
        agent,
        started: Instant::now(),
        sent: 0,
        done: false,
    };
    futures_util::stream::unfold(live, |mut live| async move {
        if live.done || live.started.elapsed() >= STREAM_FOR {
            return None;
        }
        if live.sent > 0 {
            tokio::time::sleep(TICK).await;
        }
        let event = next_event(&mut live).await;
        live.sent += 1;
        Some((Ok(event), live))
    })
}

async fn next_event(live: &mut Live) -> Event {
    let cookie = live.cookie.clone();
    let agent = live.agent;
    let found = blocking(&live.app, move |registry| {
        match registry.web_session(&cookie, false)? {
            SessionLookup::Active(_) => registry.queue_snapshot().map(Some),
            _ => Ok(None),
        }
    })
    .await;
    match found {
        Ok(Some(snapshot)) => {
            let html = view::console::queue(&snapshot, agent).into_string();
            let event = Event::default().event("queue").data(html);
            if live.sent == 0 {
                event.retry(Duration::from_secs(1))
            } else {
                event
            }
        }
        Ok(None) => {
            live.done = true;
            Event::default().event("signed-out").data("1")
        }
        // Logged where it failed; the page keeps what it shows.
        Err(_) => Event::default().comment("queue unavailable"),
    }
}
