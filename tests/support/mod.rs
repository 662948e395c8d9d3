//! Shared by the test binaries that drive a `pinline serve` process:
//! signed Twilio-style form posts and reading TwiML's next URL.

use std::time::Duration;

/// Posts `params` to `url` signed with `token`, as Twilio would; the
/// body of a 2xx answer, or `None` (an error status, or no answer).
pub async fn signed_post(
    client: &reqwest::Client,
    token: &str,
    url: &str,
    params: &[(String, String)],
) -> Option<String> {
    let signature = pinline::signature::sign(token.as_bytes(), url, params);
    let body = {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            form.append_pair(k, v);
        }
        form.finish()
    };
    let response = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", signature)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

/// The action URL of a TwiML answer's gather.
pub fn action(twiml: &str) -> Option<String> {
    let start = twiml.find("action=\"")? + 8;
    let end = start + twiml[start..].find('"')?;
    Some(twiml[start..end].to_owned())
}
