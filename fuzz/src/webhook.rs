//! The webhook check the server runs on every `/voice/` request, fed
//! arbitrary requests: it never panics, and it accepts exactly the
//! requests that are forms, UTF-8, signed with the token and
//! unambiguous, refusing the rest for the first rule they break.
//!
//! Input format, so that seeds are readable requests:
//!
//! ```text
//! /voice/pin?step=2
//! Content-Type: application/x-www-form-urlencoded
//! X-Twilio-Signature: {signed}
//!
//! CallSid=CA0123&Digits=1234
//! ```
//!
//! The first line is the path and query, then header lines up to an empty
//! line, then the body as raw bytes. A signature header whose value is
//! `{signed}` carries the right signature for the URL and the decoded
//! body, and `{signed-other}` one made with another token: the fuzzer
//! cannot forge HMACs, and without them it would never get past the
//! signature check.

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use pinline::server::webhook::{Refusal, SINGLE_VALUED, verify_form};
use pinline::signature::WebhookAuth;

/// The server's public address in these requests.
pub const PUBLIC_URL: &str = "https://pinline.example.com";
/// The token requests are signed with.
pub const TOKEN: &str = "fuzz-auth-token";
const OTHER_TOKEN: &str = "another-auth-token";
const SIGNATURE_HEADERS: [&str; 2] = ["x-twilio-signature", "x-signalwire-signature"];

/// A request as the server receives it.
pub struct Request {
    /// The URL the provider called.
    pub url: String,
    /// Its headers, as valid HTTP header values (hyper refuses others).
    pub headers: HeaderMap,
    /// The body as sent.
    pub body: Vec<u8>,
}

impl Request {
    /// Reads the input format above.
    pub fn parse(data: &[u8]) -> Self {
        let (target, rest) = split_line(data);
        let url = format!("{PUBLIC_URL}{}", String::from_utf8_lossy(target));
        let mut headers = HeaderMap::new();
        let mut rest = rest;
        let mut lines = Vec::new();
        while !rest.is_empty() {
            let (line, after) = split_line(rest);
            rest = after;
            if line.is_empty() {
                break;
            }
            lines.push(line);
        }
        let body = rest.to_vec();
        let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        for line in lines {
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            let (name, value) = line.split_at(colon);
            let value = value[1..].trim_ascii_start();
            let Ok(name) = HeaderName::from_bytes(name) else {
                continue;
            };
            let value = match value {
                b"{signed}" => WebhookAuth::new(TOKEN).sign(&url, &params).into_bytes(),
                b"{signed-other}" => WebhookAuth::new(OTHER_TOKEN)
                    .sign(&url, &params)
                    .into_bytes(),
                other => other.to_vec(),
            };
            let Ok(value) = HeaderValue::from_bytes(&value) else {
                continue;
            };
            headers.append(name, value);
        }
        Self { url, headers, body }
    }
}

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(end) => {
            let line = &data[..end];
            (line.strip_suffix(b"\r").unwrap_or(line), &data[end + 1..])
        }
        None => (data, &[]),
    }
}

pub fn check(data: &[u8]) {
    let Request { url, headers, body } = Request::parse(data);
    let auth = WebhookAuth::new(TOKEN);
    let judged = verify_form(&url, &headers, &body, &auth);
    let expected = expected(&url, &headers, &body, &auth);
    match (&judged, expected) {
        (Ok(hook), Ok(params)) => {
            let first = |name: &str| {
                params
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.as_str())
            };
            assert_eq!(Some(hook.call_sid.as_str()), first("CallSid"));
            for (name, _) in &params {
                assert_eq!(hook.param(name), first(name), "parameter {name:?}");
            }
        }
        (Err(refusal), Err(reason)) => assert_eq!(*refusal, reason),
        (judged, expected) => panic!("judged {judged:?}, the rules say {expected:?}"),
    }
}

/// The rules, in the order the server applies them.
fn expected(
    url: &str,
    headers: &HeaderMap,
    body: &[u8],
    auth: &WebhookAuth,
) -> Result<Vec<(String, String)>, Refusal> {
    let mime = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or_default().trim());
    if !mime.is_some_and(|mime| mime.eq_ignore_ascii_case("application/x-www-form-urlencoded")) {
        return Err(Refusal::NotForm);
    }
    if std::str::from_utf8(body).is_err() {
        return Err(Refusal::Malformed);
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let signed = SIGNATURE_HEADERS.iter().any(|name| {
        headers.get_all(*name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|sig| auth.verify(url, &params, sig))
        })
    });
    if !signed {
        return Err(Refusal::Forged);
    }
    let count = |name: &str| params.iter().filter(|(key, _)| key == name).count();
    if SINGLE_VALUED.iter().any(|name| count(name) > 1) {
        return Err(Refusal::Malformed);
    }
    let call_sid = params
        .iter()
        .find(|(key, _)| key == "CallSid")
        .map(|(_, value)| value.as_str());
    let short_token = |sid: &str| {
        (2..=64).contains(&sid.len())
            && sid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !call_sid.is_some_and(short_token) {
        return Err(Refusal::Malformed);
    }
    Ok(params)
}
