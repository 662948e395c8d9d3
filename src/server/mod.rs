//! The HTTP side: the router, its shared state, and serving it until shut
//! down. Handlers parse, call the phone line or registry on a blocking
//! thread, and render; nothing here decides anything.

pub mod api;
pub mod metrics;
mod voice;
pub mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::flow::Gather;
use crate::ivr::Ivr;
use crate::signature::WebhookAuth;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The phone line (and through it the registry).
    pub ivr: Arc<Ivr>,
    /// Checks webhook signatures.
    pub webhook_auth: WebhookAuth,
    /// The address the provider calls, without a trailing slash; signed
    /// URLs are rebuilt on it.
    pub public_url: String,
    /// Counters and histograms.
    pub metrics: Arc<metrics::Metrics>,
    /// The bearer token the case system sends with replies; `None`
    /// disables that endpoint.
    pub case_token: Option<String>,
    /// Whether the database is failing, so a fault is logged once.
    pub faults: Arc<Faults>,
}

/// Logs a storage fault once when it starts and once when it clears,
/// rather than on every webhook while it lasts.
#[derive(Debug, Default)]
pub struct Faults(std::sync::atomic::AtomicBool);

impl Faults {
    /// A request failed because of `what`.
    pub fn raise(&self, what: &str) {
        if !self.0.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::error!(
                fault = what,
                "database fault: answering callers with the fallback until it clears"
            );
        }
    }

    /// A request succeeded.
    pub fn cleared(&self) {
        if self.0.swap(false, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!("database fault cleared: serving normally again");
        }
    }

    /// Whether a fault is in progress.
    pub fn active(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl AppState {
    /// State for a phone line reached at `public_url`, whose webhooks are
    /// signed with `auth_token`.
    pub fn new(ivr: Ivr, auth_token: &str, public_url: &str) -> Self {
        Self {
            ivr: Arc::new(ivr),
            webhook_auth: WebhookAuth::new(auth_token.as_bytes().to_vec()),
            public_url: public_url.trim_end_matches('/').to_owned(),
            metrics: Arc::new(metrics::Metrics::new()),
            case_token: None,
            faults: Arc::new(Faults::default()),
        }
    }

    /// Accepts case replies carrying `token`.
    pub fn with_case_token(mut self, token: Option<String>) -> Self {
        self.case_token = token.filter(|t| !t.trim().is_empty());
        self
    }
}

/// All routes.
pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .route("/voice/incoming", post(voice::incoming))
        .route("/voice/status", post(voice::status))
        .route("/voice/agent", post(voice::agent))
        .route("/voice/hold", post(voice::hold));
    let router = Gather::ALL.into_iter().fold(router, |router, gather| {
        router.route(gather.path(), post(voice::gather))
    });
    router
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/cases/{case_number}/replies", post(api::case_reply))
        .route("/api/v1/queue", get(api::queue))
        .route("/api/v1/queue/claim", post(api::claim))
        .route("/api/v1/verifications", post(api::verify))
        .merge(crate::web::router())
        .layer(DefaultBodyLimit::max(webhook::MAX_BODY_BYTES))
        .with_state(state)
}

/// 200 while the database takes a write, 503 otherwise, for load
/// balancers. A failure is the fault webhooks log, logged once; a success
/// ends it, so the end is logged even when no call comes in to notice.
async fn healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let answered = tokio::time::timeout(
        voice::WEBHOOK_DEADLINE,
        probe_write(state.ivr.registry().db()),
    )
    .await
    .map_err(|_| "the health probe passed the webhook deadline");
    match answered {
        Ok(Ok(())) => {
            state.faults.cleared();
            (StatusCode::OK, "ok\n")
        }
        Ok(Err(error)) => {
            state.faults.raise(&error.to_string());
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
        Err(error) => {
            state.faults.raise(error);
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}

/// Commits a one-row change through the writer the phone line's steps
/// go through. Taking the write lock and writing nothing is not enough: a
/// full disk and a read-only file only refuse once a page has to be
/// written, and SQLite writes no page for a value that did not change,
/// hence a fresh timestamp each time.
fn probe_write(
    db: &crate::storage::Db,
) -> crate::storage::Pending<(), crate::storage::StorageError> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    db.submit(move |tx| Ok(crate::storage::meta::set(tx, "health_probed_at", &now)?))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Queue depth is read from the database at scrape time, so it is
    // right whichever process (or restart) changed the queue.
    let ivr = Arc::clone(&state.ivr);
    let depth = tokio::task::spawn_blocking(move || {
        let conn = ivr.registry().db().conn()?;
        Ok::<_, crate::error::Error>(crate::storage::queue::depth(&conn)?)
    })
    .await;
    match depth {
        Ok(Ok(depth)) => state.metrics.set_queue_depth(&depth),
        _ => tracing::warn!("metrics: queue depth could not be read"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// How long requests in flight may take, once shutdown starts, before the
/// server stops without them: within the 10 s a process supervisor
/// usually gives before SIGKILL, and far above any webhook's run time.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(8);

/// Serves `state` on `listener` until `shutdown` completes, then lets
/// requests in flight finish for at most [`SHUTDOWN_GRACE`].
///
/// The bound is needed because graceful shutdown otherwise waits for every
/// connection: one client that stops halfway through a request would keep
/// the process alive forever. Each step commits before it answers, so a
/// request cut off here has either committed or rolled back as a whole.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use std::future::IntoFuture as _;

    let address = listener.local_addr()?;
    tracing::info!(%address, "listening");
    let (started, shutdown_started) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!(
            grace_secs = SHUTDOWN_GRACE.as_secs(),
            "shutting down: no new connections, finishing requests in flight"
        );
        let _ = started.send(());
    };
    let serving = axum::serve(listener, router(state))
        .with_graceful_shutdown(signal)
        .into_future();
    let deadline = async move {
        match shutdown_started.await {
            Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
            // The server ended without a shutdown; its own result wins.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        served = serving => {
            served?;
            tracing::info!("stopped");
        }
        () = deadline => {
            tracing::warn!(
                grace_secs = SHUTDOWN_GRACE.as_secs(),
                "stopped: connections still open after the grace period were cut off"
            );
        }
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
