//! The extractor every `/voice/` handler takes: a form-encoded POST whose
//! signature proves it came from the telephony provider.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::signature::WebhookAuth;

/// The largest body accepted. Twilio's requests are a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A verified webhook: its parameters, in order, names may repeat.
#[derive(Debug, Clone)]
pub struct Webhook {
    params: Vec<(String, String)>,
    /// The call this webhook is about.
    pub call_sid: String,
}

impl Webhook {
    /// The single value of `name`, if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a webhook was refused. Each maps to one status code; none says
/// more than the status does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not `application/x-www-form-urlencoded`.
    NotForm,
    /// Body over [`MAX_BODY_BYTES`].
    TooLarge,
    /// Unreadable body, missing CallSid or ambiguous parameters.
    Malformed,
    /// Missing or wrong signature.
    Forged,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            Refusal::NotForm => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected application/x-www-form-urlencoded\n",
            ),
            Refusal::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"),
            Refusal::Malformed => (StatusCode::BAD_REQUEST, "malformed webhook\n"),
            Refusal::Forged => (StatusCode::FORBIDDEN, "invalid signature\n"),
        };
        (status, text).into_response()
    }
}

/// Parameters whose repetition would make the request ambiguous.
pub const SINGLE_VALUED: &[&str] = &["CallSid", "Digits", "From", "CallStatus"];

impl FromRequest<AppState> for Webhook {
    type Rejection = Refusal;

    async fn from_request(mut req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let path = req.uri().path().to_owned();
        let url = format!(
            "{}{}",
            state.public_url,
            req.uri().path_and_query().map_or("", |p| p.as_str())
        );
        // Taken, not cloned: reading the body needs none of them.
        let headers = std::mem::take(req.headers_mut());
        // Checked before the body is read too, so that a request that is
        // not a form is refused without buffering what it sent.
        if !is_form(&headers) {
            return Err(Refusal::NotForm);
        }
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Refusal::TooLarge
            } else {
                Refusal::Malformed
            }
        })?;
        verify_form(&url, &headers, &body, &state.webhook_auth).inspect_err(|refusal| {
            if *refusal == Refusal::Forged {
                // The parameters are the caller's keypad input and phone
                // number: never logged, not even here.
                tracing::warn!(
                    path,
                    "rejected a webhook with a missing or invalid signature"
                );
            }
        })
    }
}

/// Judges a webhook whose body has been read in full: `url` is the public
/// URL the provider called (path and query included), as it signed it.
///
/// This is everything the extractor decides except the body size limit,
/// kept free of HTTP plumbing so it can be driven with arbitrary input.
pub fn verify_form(
    url: &str,
    headers: &HeaderMap,
    body: &[u8],
    auth: &WebhookAuth,
) -> Result<Webhook, Refusal> {
    if !is_form(headers) {
        return Err(Refusal::NotForm);
    }
    if std::str::from_utf8(body).is_err() {
        return Err(Refusal::Malformed);
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();

    // One valid signature proves the request came from the provider:
    // forging it takes the token. Every header is tried, since a
    // provider may send both (SignalWire adds its own beside Twilio's
    // for compatibility) and need not sign both with the same secret.
    let signed = headers
        .get_all("x-twilio-signature")
        .iter()
        .chain(headers.get_all("x-signalwire-signature"))
        .filter_map(|sig| sig.to_str().ok())
        .any(|sig| auth.verify(url, &params, sig));
    if !signed {
        return Err(Refusal::Forged);
    }

    for name in SINGLE_VALUED {
        if params.iter().filter(|(k, _)| k == name).count() > 1 {
            return Err(Refusal::Malformed);
        }
    }
    let call_sid = params
        .iter()
        .find(|(k, _)| k == "CallSid")
        .map(|(_, v)| v.clone())
        .filter(|sid| is_call_sid(sid))
        .ok_or(Refusal::Malformed)?;
    Ok(Webhook { params, call_sid })
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Providers' call IDs are short ASCII tokens (`CA` + 32 hex digits at
/// Twilio, UUIDs elsewhere); anything else is refused before it reaches a
/// log line or the database.
fn is_call_sid(sid: &str) -> bool {
    (2..=64).contains(&sid.len())
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_sids_are_short_ascii_tokens() {
        assert!(is_call_sid("CA0123456789abcdef0123456789abcdef"));
        assert!(is_call_sid("3f2a-77b1-4c1e"));
        for bad in ["", "C", "CA 12", "CA<script>", &"A".repeat(65), "CA\u{e9}"] {
            assert!(!is_call_sid(bad), "{bad:?}");
        }
    }

    #[test]
    fn only_form_bodies_are_accepted() {
        let mut headers = HeaderMap::new();
        assert!(!is_form(&headers));
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(!is_form(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        assert!(is_form(&headers));
    }
}
