//! The web pages: providers and staff view and renew their Support PIN,
//! read its audit log and answer their cases; agents watch the queue and
//! claim callers.
//!
//! Pages are rendered on the server (maud) and work without JavaScript;
//! two small scripts served from the binary only add the browser's time
//! zone and live queue updates. Handlers here check who is signed in and
//! the form token, call the registry on a blocking thread, and render:
//! sessions and sign-in codes live in `registry::web`, their SQL in
//! `storage::web`.
//!
//! Every response carries a strict Content-Security-Policy (scripts and
//! styles from this origin only, no inline code), `X-Frame-Options: DENY`
//! and, unless it is a static file, `Cache-Control: no-store`, since most
//! pages show a PIN, a PIN's history or the queue.

mod account;
mod auth;
mod console;
mod error;
mod login;
mod time;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::registry::Registry;
use crate::server::AppState;
use error::PageError;

/// The policy every page is served under: nothing from elsewhere, no
/// inline script or style, no framing, forms only to this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The pages' routes, to merge into the server's router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(login::home))
        .route("/login", get(login::page).post(login::submit))
        .route("/login/{code}", get(login::link))
        .route("/logout", post(login::logout))
        .route("/account", get(account::mine))
        .route("/users/{user_id}", get(account::page))
        .route("/users/{user_id}/pin/view", post(account::view_pin))
        .route("/users/{user_id}/pin/new", post(account::new_pin))
        .route("/users/{user_id}/cases/{case_number}", post(account::reply))
        .route(
            "/agent/login",
            get(login::agent_page).post(login::agent_submit),
        )
        .route("/agent", get(console::page))
        .route("/agent/events", get(console::events))
        .route("/agent/claim", post(console::claim))
        .route("/static/{file}", get(asset))
        .layer(middleware::from_fn(security_headers))
}

/// Runs `work` on the registry on a blocking thread; a fault becomes a
/// 503 page, logged once here.
async fn blocking<T, F>(app: &AppState, work: F) -> Result<T, PageError>
where
    T: Send + 'static,
    F: FnOnce(&Registry) -> crate::error::Result<T> + Send + 'static,
{
    let ivr = Arc::clone(&app.ivr);
    match tokio::task::spawn_blocking(move || work(ivr.registry())).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(PageError::from(error)),
        Err(_) => {
            tracing::error!("web: a blocking task failed");
            Err(PageError::Unavailable)
        }
    }
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Keeps a sign-in link's code out of any Referer header.
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The stylesheet and scripts, compiled into the binary.
async fn asset(Path(file): Path<String>) -> Response {
    let (content_type, body) = match file.as_str() {
        "pinline.css" => (
            "text/css; charset=utf-8",
            include_str!("static/pinline.css"),
        ),
        "tz.js" => (
            "text/javascript; charset=utf-8",
            include_str!("static/tz.js"),
        ),
        "console.js" => (
            "text/javascript; charset=utf-8",
            include_str!("static/console.js"),
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
