//! The `/voice/` webhook handlers.
//!
//! Each one logs exactly one event, inside a span carrying the CallSid,
//! with the step, its outcome and how long it took. No parameter value but
//! the CallSid ever reaches a log line.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::Instrument;

use super::AppState;
use super::metrics::{OutcomeLabel, RouteLabel, ScopeLabel};
use super::webhook::Webhook;
use crate::flow::Gather;
use crate::ivr::{Hook, StepReport, VoiceRequest, is_final_status};
use crate::twiml;

/// The longest a webhook may take before the caller is answered with the
/// fallback instead.
pub const WEBHOOK_DEADLINE: std::time::Duration = std::time::Duration::from_millis(1800);

/// The step number every gather's action URL carries.
#[derive(Debug, Deserialize)]
pub(super) struct StepQuery {
    step: u32,
}

pub(super) async fn incoming(State(app): State<AppState>, hook: Webhook) -> Response {
    run_step(app, hook, "incoming", Hook::Incoming).await
}

/// `POST /voice/agent`: the agent line's Voice URL.
pub(super) async fn agent(State(app): State<AppState>, hook: Webhook) -> Response {
    run_step(app, hook, "agent", Hook::AgentLine).await
}

/// `POST /voice/hold`: the hold loop of a caller waiting in their room.
pub(super) async fn hold(State(app): State<AppState>, hook: Webhook) -> Response {
    let ivr = Arc::clone(&app.ivr);
    let sid = hook.call_sid.clone();
    let answered = tokio::task::spawn_blocking(move || ivr.hold(&sid)).await;
    let twiml = match answered {
        Ok(Ok(twiml)) => twiml,
        // Hold music without a position is still the right thing to hear.
        _ => {
            tracing::warn!(call.sid = %hook.call_sid, "hold loop could not read the queue");
            app.ivr.hold_without_position()
        }
    };
    ([(header::CONTENT_TYPE, twiml::CONTENT_TYPE)], twiml).into_response()
}

/// Every gather's answer: the route names the gather.
pub(super) async fn gather(
    State(app): State<AppState>,
    uri: axum::http::Uri,
    Query(q): Query<StepQuery>,
    hook: Webhook,
) -> Response {
    let Some(gather) = Gather::from_path(uri.path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let step = Hook::Gather {
        gather,
        step: q.step,
    };
    run_step(app, hook, gather.step_name(), step).await
}

pub(super) async fn status(State(app): State<AppState>, hook: Webhook) -> StatusCode {
    let started = Instant::now();
    let span = tracing::info_span!("webhook", call.sid = %hook.call_sid, step = "status");
    let status = hook.param("CallStatus").unwrap_or("").to_owned();
    let ended = if is_final_status(&status) {
        let ending = span.in_scope(|| app.ivr.end_call(hook.call_sid.clone(), status));
        tokio::time::timeout(WEBHOOK_DEADLINE, ending).await
    } else {
        Ok(Ok(false))
    };
    let _entered = span.enter();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    match ended {
        Ok(Ok(ended)) => {
            tracing::info!(
                outcome = if ended { "ended" } else { "noted" },
                elapsed_ms,
                "status callback"
            );
        }
        Ok(Err(error)) => tracing::error!(%error, elapsed_ms, "status callback failed"),
        Err(_) => tracing::error!(elapsed_ms, "status callback passed its deadline"),
    }
    // The provider ignores the body; 204 whatever happened, so it does
    // not retry a callback that cannot be stored anyway.
    StatusCode::NO_CONTENT
}

async fn run_step(app: AppState, hook: Webhook, route: &'static str, step: Hook) -> Response {
    let started = Instant::now();
    let span = tracing::info_span!("webhook", call.sid = %hook.call_sid, step = route);
    let request = VoiceRequest {
        call_sid: hook.call_sid.clone(),
        from: hook.param("From").map(str::to_owned),
        to: hook.param("To").map(str::to_owned),
        digits: hook.param("Digits").map(str::to_owned),
        stir_verstat: hook.param("StirVerstat").map(str::to_owned),
    };
    let work = span.in_scope(|| app.ivr.answer(request, step));
    // The storage layer gives up on a busy database well inside this; the
    // deadline covers anything else that stalls (a disk that hangs an
    // fsync), so the caller hears something within two seconds. A step
    // still queued when it passes is dropped unrun.
    let answered = tokio::time::timeout(WEBHOOK_DEADLINE, work).await;

    async move {
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_secs_f64() * 1e3;
        app.metrics
            .webhook_seconds
            .get_or_create(&RouteLabel { route })
            .observe(elapsed.as_secs_f64());
        let twiml = match answered {
            Ok(Ok(report)) => {
                app.faults.cleared();
                record(&app, &report);
                tracing::info!(outcome = report.outcome, elapsed_ms, "webhook answered");
                report.twiml
            }
            Ok(Err(error)) => {
                app.faults.raise(&error.to_string());
                tracing::warn!(elapsed_ms, "webhook failed; answered with the fallback");
                app.ivr.fallback_for(step)
            }
            Err(_) => {
                app.faults.raise("a webhook step passed its deadline");
                tracing::warn!(elapsed_ms, "webhook timed out; answered with the fallback");
                app.ivr.fallback_for(step)
            }
        };
        ([(header::CONTENT_TYPE, twiml::CONTENT_TYPE)], twiml).into_response()
    }
    .instrument(span)
    .await
}

fn record(app: &AppState, report: &StepReport) {
    let m = &app.metrics;
    if report.new_call {
        m.calls.inc();
    }
    if let (None, Some(waited)) = (report.check, report.waited_secs) {
        m.queue_wait_seconds.observe(waited);
    }
    let Some(check) = report.check else {
        return;
    };
    let outcome = if check.succeeded {
        "succeeded"
    } else {
        "failed"
    };
    m.verifications
        .get_or_create(&OutcomeLabel { outcome })
        .inc();
    if check.locked_now {
        m.lockouts.inc();
    }
    if check.throttled {
        m.throttled.inc();
        m.failure_rate_alerts
            .get_or_create(&ScopeLabel { scope: "caller" })
            .inc();
    }
    if check.failure_rate_exceeded {
        m.failure_rate_alerts
            .get_or_create(&ScopeLabel { scope: "all" })
            .inc();
    }
}
