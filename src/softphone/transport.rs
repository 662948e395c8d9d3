//! Sending the softphone's webhook requests. The executor builds and signs
//! each [`Request`]; a [`Transport`] only delivers it, so unit tests can
//! answer from memory and the command uses [`HttpTransport`].

use std::future::Future;
use std::time::Duration;

use crate::twiml::Method;

/// The header Twilio signs its webhooks with.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// How long Twilio waits for a webhook to answer before giving up.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// One signed webhook request, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// GET or POST.
    pub method: Method,
    /// The URL exactly as signed; for GET it carries the parameters.
    pub url: String,
    /// The form body of a POST (empty for GET).
    pub form: Vec<(String, String)>,
    /// The `X-Twilio-Signature` value.
    pub signature: String,
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

/// Delivers requests. An `Err` is a request that got no HTTP answer at
/// all (refused connection, timeout), with the reason.
pub trait Transport {
    /// Sends `request` and returns the answer.
    fn send(&mut self, request: &Request) -> impl Future<Output = Result<Reply, String>> + Send;
}

/// The real transport: plain HTTP through reqwest. TLS is not compiled in
/// (its default stack is a heavy C build), so `https://` URLs fail with a
/// clear error; put the softphone on the server's local `http://` address.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    /// A client that, like Twilio, does not follow HTTP redirects (a 3xx is
    /// reported as an answer that is not TwiML) and gives up after
    /// [`TIMEOUT`]. Proxy variables are ignored: the softphone stands in for
    /// Twilio, which reaches the server directly.
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(TIMEOUT)
            .user_agent("TwilioProxy/1.1 (pinline softphone)")
            .build()
            .map_err(|e| reason(&e))?;
        Ok(Self { client })
    }
}

impl Transport for HttpTransport {
    async fn send(&mut self, request: &Request) -> Result<Reply, String> {
        let builder = match request.method {
            Method::Get => self.client.get(&request.url),
            Method::Post => self.client.post(&request.url).form(&request.form),
        };
        let response = builder
            .header(SIGNATURE_HEADER, &request.signature)
            .send()
            .await
            .map_err(|e| reason(&e))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| reason(&e))?;
        Ok(Reply { status, body })
    }
}

/// The error with its causes: reqwest's own message ("error sending
/// request") says nothing about why.
fn reason(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
