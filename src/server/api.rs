//! The JSON API for other systems: here, the case system's inbound
//! replies. Authenticated by a bearer token compared in constant time.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::AppState;
use crate::domain::account::UserId;
use crate::domain::audit::{Actor, Channel};
use crate::domain::case::{CaseNumber, Decision};
use crate::error::Error;
use crate::registry::{Origin, ReplyOutcome};

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
    let answered = tokio::task::spawn_blocking(move || {
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
    .await
    .map_err(|_| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily unavailable".into(),
        )
    })?;
    let (outcome, case) = answered?;
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
