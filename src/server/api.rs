//! The JSON API for other systems: the case system's inbound replies
//! (one shared bearer token), and the agent desktop's screen-pop and
//! verification calls (per-agent bearer tokens, stored hashed).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use chrono::{DateTime, Utc};

use super::AppState;
use crate::domain::account::UserId;
use crate::domain::agent::AgentId;
use crate::domain::audit::{Actor, Channel};
use crate::domain::case::{CaseNumber, Decision};
use crate::error::Error;
use crate::registry::{Origin, ReplyOutcome, Verdict};
use crate::storage::queue::{self, QueuedCall};

/// An API failure: a status and a one-line reason, as JSON.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::UnknownCase(_) => StatusCode::NOT_FOUND,
            Error::UnknownUser(_) | Error::Parse(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Invalid(_) => StatusCode::CONFLICT,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %e, "API request failed");
            return ApiError(status, "temporarily unavailable".into());
        }
        ApiError(status, e.to_string())
    }
}

/// Runs blocking registry work off the async threads; a fault is a 503
/// that says no more than that.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily unavailable".into(),
        )),
    }
}

/// Checks `Authorization: Bearer …` against `expected`.
pub fn authorize(headers: &HeaderMap, expected: Option<&str>) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "case replies are not configured (set PINLINE_CASE_TOKEN)".into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or invalid bearer token".into(),
        ))
    }
}

/// A reply forwarded by the case system.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplyBody {
    from: UserId,
    decision: ReplyDecision,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ReplyDecision {
    Approve,
    Decline,
}

/// `POST /api/v1/cases/{case_number}/replies`.
pub(super) async fn case_reply(
    State(app): State<AppState>,
    Path(number): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ReplyBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    authorize(&headers, app.case_token.as_deref())?;
    let number =
        CaseNumber::parse(&number).map_err(|e| ApiError(StatusCode::NOT_FOUND, e.to_string()))?;
    let Json(body) = body.map_err(|e| ApiError(e.status(), e.body_text()))?;
    let decision = match body.decision {
        ReplyDecision::Approve => Decision::Approve,
        ReplyDecision::Decline => Decision::Decline,
    };
    let ivr = Arc::clone(&app.ivr);
    let answered = blocking(move || {
        let registry = ivr.registry();
        let origin = Origin {
            actor: Actor::User(body.from),
            channel: Channel::Case,
            call_sid: None,
        };
        let outcome =
            registry.reply_to_case(&number, body.from, decision, body.text.as_deref(), &origin)?;
        Ok::<_, Error>((outcome, registry.case(&number)?))
    })
    .await?;
    let (outcome, case) = answered;
    let word = match outcome {
        ReplyOutcome::Approved => "approved",
        ReplyOutcome::Declined => "declined",
        ReplyOutcome::RecordedOnly => "recorded_only",
    };
    tracing::info!(case = %case.case_number, outcome = word, "case reply");
    Ok(Json(json!({
        "case_number": case.case_number,
        "outcome": word,
        "status": case.status,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let mut headers = HeaderMap::new();
        assert!(authorize(&headers, Some("s3cret")).is_err());
        headers.insert(header::AUTHORIZATION, "Bearer s3cre".parse().unwrap());
        assert!(authorize(&headers, Some("s3cret")).is_err());
        headers.insert(header::AUTHORIZATION, "Basic s3cret".parse().unwrap());
        assert!(authorize(&headers, Some("s3cret")).is_err());
        headers.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(authorize(&headers, Some("s3cret")).is_ok());
        assert!(authorize(&headers, None).is_err(), "no token configured");
    }
}

/// The agent a request's bearer token belongs to; every failure is the
/// same 401, so nothing tells a revoked token from a made-up one.
async fn agent_of(app: &AppState, headers: &HeaderMap) -> Result<AgentId, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let ivr = Arc::clone(&app.ivr);
    let found = blocking(move || ivr.registry().agent_for_token(&token)).await?;
    found.ok_or_else(|| {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or invalid bearer token".into(),
        )
    })
}

fn caller_json(
    call: &QueuedCall,
    position: Option<usize>,
    now: DateTime<Utc>,
) -> serde_json::Value {
    let context: serde_json::Value = serde_json::from_str(&call.context).unwrap_or_default();
    let waited = DateTime::parse_from_rfc3339(&call.routed_at)
        .map(|t| (now - t.to_utc()).num_seconds())
        .unwrap_or(0);
    json!({
        "call_sid": call.call_sid,
        "class": call.class,
        "state": call.state,
        "position": position,
        "waited_secs": waited,
        "claimed_by": call.claimed_by,
        "context": context,
    })
}

/// `GET /api/v1/queue`: who is waiting, in the order agents get them.
pub(super) async fn queue(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    agent_of(&app, &headers).await?;
    let ivr = Arc::clone(&app.ivr);
    let calls = blocking(move || {
        let conn = ivr.registry().db().conn()?;
        Ok::<_, Error>(queue::in_queue(&conn)?)
    })
    .await?;
    let now = Utc::now();
    let mut depth = serde_json::Map::new();
    for class in ["verified", "approval_pending", "unverified"] {
        let n = calls.iter().filter(|c| c.class == class).count();
        depth.insert(class.to_owned(), n.into());
    }
    let callers: Vec<_> = calls
        .iter()
        .enumerate()
        .map(|(i, call)| caller_json(call, Some(i + 1), now))
        .collect();
    Ok(Json(json!({ "callers": callers, "depth": depth })).into_response())
}

/// `POST /api/v1/queue/claim`: the caller this agent holds, else the next
/// one, claimed for them. 204 when nobody waits.
pub(super) async fn claim(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let agent = agent_of(&app, &headers).await?;
    let ivr = Arc::clone(&app.ivr);
    let claimed = blocking(move || {
        let origin = Origin {
            actor: Actor::Agent(agent.to_stored() as u64),
            channel: Channel::Api,
            call_sid: None,
        };
        ivr.registry().claim_next(agent, &origin)
    })
    .await?;
    match claimed {
        Some(call) => {
            tracing::info!(call.sid = %call.call_sid, %agent, "caller claimed through the API");
            Ok(Json(caller_json(&call, None, Utc::now())).into_response())
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// A PIN an agent was given, to check.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VerificationBody {
    user_id: serde_json::Value,
    pin: String,
    channel: AgentChannel,
    #[serde(default)]
    call_sid: Option<String>,
}

/// Where an agent was given the PIN.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AgentChannel {
    Email,
    Case,
    Phone,
}

/// `POST /api/v1/verifications`: checks a PIN under the phone's rules.
/// The answer is only `verified` true or false, whatever the reason.
pub(super) async fn verify(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<VerificationBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let agent = agent_of(&app, &headers).await?;
    let Json(body) = body.map_err(|e| ApiError(e.status(), e.body_text()))?;
    let user_id = match &body.user_id {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let channel = match body.channel {
        AgentChannel::Email => Channel::Email,
        AgentChannel::Case => Channel::Case,
        AgentChannel::Phone => Channel::Phone,
    };
    let ivr = Arc::clone(&app.ivr);
    let verdict = blocking(move || {
        let origin = Origin {
            actor: Actor::Agent(agent.to_stored() as u64),
            channel,
            call_sid: body.call_sid.clone(),
        };
        ivr.registry().verify_for_agent(
            agent,
            &user_id,
            &body.pin,
            &origin,
            body.call_sid.as_deref(),
        )
    })
    .await?;
    let verified = matches!(verdict, Verdict::Verified(_));
    tracing::info!(%agent, verified, "PIN checked by an agent");
    Ok(Json(json!({ "verified": verified })).into_response())
}
