//! Hostile and malformed webhooks against the real router, and a SIGTERM
//! while webhooks are in flight against the real binary.
//!
//! The matrix sends every request over a raw TCP connection, so that
//! bodies, encodings, methods and headers reach the server exactly as
//! written, not as an HTTP client would tidy them. After each row it
//! compares a snapshot of every table: bad input must write nothing.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use pinline::domain::account::Role;

use super::harness::{Line, MENU, TOKEN, action, snapshot, well_formed_twiml};

/// Whether a row may change the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writes {
    Nothing,
    May,
}

/// What a row's signature header carries.
#[derive(Debug, Clone)]
enum Sign {
    /// Right for the URL and the parameters the server will decode.
    Right,
    /// No signature header at all.
    Missing,
    /// The header present with an empty value.
    Empty,
    /// A value of the right length that is not base64.
    Garbage,
    /// Right, but keyed with another token.
    Token(&'static str),
    /// Right for another path and query.
    Url(String),
    /// Right for another parameter set.
    Params(Vec<(String, String)>),
    /// Both headers; the flags say which one is right.
    Both { twilio: bool, signalwire: bool },
    /// Only the SignalWire header, right.
    SignalWire,
    /// The Twilio header twice, the first right and the second wrong.
    Twice,
}

/// One request as it goes on the wire.
#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    target: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    sign: Sign,
    /// A Content-Length larger than the body, after which the client
    /// stops sending.
    truncate_by: usize,
}

impl Req {
    fn post(target: impl Into<String>, params: &[(String, String)]) -> Self {
        Self {
            method: "POST",
            target: target.into(),
            content_type: Some("application/x-www-form-urlencoded"),
            body: super::harness::encode(params).into_bytes(),
            sign: Sign::Right,
            truncate_by: 0,
        }
    }

    fn raw(target: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::post(target, &[])
        }
    }

    fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }

    fn sign(mut self, sign: Sign) -> Self {
        self.sign = sign;
        self
    }

    fn content_type(mut self, content_type: Option<&'static str>) -> Self {
        self.content_type = content_type;
        self
    }
}

/// What a 200 answer must (or must not) contain.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Any status other than 200, or a 200 without TwiML.
    Status(u16),
    /// 200 with well-formed TwiML containing the fragment.
    Has(&'static str),
    /// 200 with well-formed TwiML without the fragment.
    Lacks(&'static str),
}

struct Row {
    name: String,
    req: Req,
    expect: Expect,
    writes: Writes,
}

fn row(name: impl Into<String>, req: Req, expect: Expect, writes: Writes) -> Row {
    Row {
        name: name.into(),
        req,
        expect,
        writes,
    }
}

/// Sends `req` to the server at `address` (host:port) and returns the
/// status (0 if the connection closed without one) and the body.
fn send(address: &str, base: &str, req: &Req) -> (u16, String) {
    let url = format!("{base}{}", req.target);
    let decoded: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
    let sign = |token: &str, url: &str, params: &[(String, String)]| {
        pinline::signature::sign(token.as_bytes(), url, params)
    };
    let right = sign(TOKEN, &url, &decoded);
    let wrong = sign("another-token", &url, &decoded);
    let headers: Vec<(&str, String)> = match &req.sign {
        Sign::Right => vec![("X-Twilio-Signature", right)],
        Sign::Missing => vec![],
        Sign::Empty => vec![("X-Twilio-Signature", String::new())],
        Sign::Garbage => vec![("X-Twilio-Signature", "!".repeat(28))],
        Sign::Token(token) => vec![("X-Twilio-Signature", sign(token, &url, &decoded))],
        Sign::Url(target) => vec![(
            "X-Twilio-Signature",
            sign(TOKEN, &format!("{base}{target}"), &decoded),
        )],
        Sign::Params(params) => vec![("X-Twilio-Signature", sign(TOKEN, &url, params))],
        Sign::Both { twilio, signalwire } => vec![
            (
                "X-Twilio-Signature",
                if *twilio {
                    right.clone()
                } else {
                    wrong.clone()
                },
            ),
            (
                "X-SignalWire-Signature",
                if *signalwire { right } else { wrong },
            ),
        ],
        Sign::SignalWire => vec![("X-SignalWire-Signature", right)],
        Sign::Twice => vec![("X-Twilio-Signature", right), ("X-Twilio-Signature", wrong)],
    };
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        req.method,
        req.target,
        req.body.len() + req.truncate_by
    );
    if let Some(content_type) = req.content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer (413, 415) and close before reading it all;
    // what it answered is what is checked, so a failed write is fine.
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(&req.body));
    if req.truncate_by > 0 {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The parameters a provider sends for `sid`, with `extra` replacing or
/// adding names.
fn params(sid: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("CallSid", sid),
        ("From", "+14155550190"),
        ("To", "+18005550100"),
        ("CallStatus", "in-progress"),
        ("Direction", "inbound"),
    ]
    .iter()
    .filter(|(k, _)| !extra.iter().any(|(name, _)| name == k))
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    params
}

fn without(mut params: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
    params.retain(|(k, _)| k != name);
    params
}

fn with(mut params: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    params.push((name.into(), value.into()));
    params
}

fn path_of(url: &str, base: &str) -> String {
    url.strip_prefix(base).unwrap().to_owned()
}

fn fresh_sid(n: u32) -> String {
    format!("CA{n:032x}")
}

const METACHARACTERS: &[(&str, &str)] = &[
    ("sql", "'; DROP TABLE calls;--"),
    ("say", "<Say>hello</Say>"),
    ("cdata", "]]><Hangup/>"),
    ("entity", "&amp;&lt;&#x41;"),
    ("quotes", "\"'\"'"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_hostile_or_malformed_webhook_gets_a_500_or_writes_what_it_should_not() {
    let line = Line::start().await;
    let user = line.user(Role::Staff, "+14155550190");
    let pin = line.pin(&user);
    let uid = format!("{}#", user.user_id);
    let base = line.base().to_owned();
    let address = base.strip_prefix("http://").unwrap().to_owned();

    // Calls standing at each step, so that every step can be replayed,
    // reordered and ended.
    let mut fresh = line.call("+14155550190");
    fresh.start().await;
    let fresh_uid = path_of(&action(&fresh.last), &base);

    let mut at_pin = line.call("+14155550190");
    at_pin.start().await;
    let at_pin_uid = path_of(&action(&at_pin.last), &base);
    at_pin.press(&uid).await;
    let at_pin_pin = path_of(&action(&at_pin.last), &base);

    let mut at_menu = line.call("+14155550190");
    at_menu.start().await;
    at_menu.press(&uid).await;
    let at_menu_pin = path_of(&action(&at_menu.last), &base);
    assert!(at_menu.press(&pin).await.contains(MENU));
    let at_menu_menu = path_of(&action(&at_menu.last), &base);
    let pin = line.pin(&user);

    let mut routed = line.call("+14155550190");
    routed.verify(&user, &pin).await;
    let routed_menu = path_of(&action(&routed.last), &base);
    routed.press("1").await;
    let pin = line.pin(&user);

    let mut ended = line.call("+14155550190");
    ended.verify(&user, &pin).await;
    let ended_menu = path_of(&action(&ended.last), &base);
    assert_eq!(ended.status("completed").await.as_u16(), 204);

    let p = |sid: &str, extra: &[(&str, &str)]| params(sid, extra);
    let (f, b, m, r, e) = (
        fresh.sid.as_str(),
        at_pin.sid.as_str(),
        at_menu.sid.as_str(),
        routed.sid.as_str(),
        ended.sid.as_str(),
    );
    let incoming = "/voice/incoming";
    let status = "/voice/status";
    let retry_uid = "user-id?step=1";
    use Expect::{Has, Lacks, Status};
    use Writes::{May, Nothing};

    let mut rows = vec![
        // Replays of every step: the stored answer again, nothing redone.
        row(
            "incoming replayed",
            Req::post(
                incoming,
                &p(f, &[("StirVerstat", "TN-Validation-Passed-A")]),
            ),
            Has(retry_uid),
            Nothing,
        ),
        row(
            "user-id replayed",
            Req::post(&at_pin_uid, &p(b, &[("Digits", &uid)])),
            Has("/voice/pin?step=2"),
            Nothing,
        ),
        row(
            "pin replayed does not validate twice",
            Req::post(&at_menu_pin, &p(m, &[("Digits", &pin)])),
            Has(MENU),
            Nothing,
        ),
        row(
            "menu replayed does not enqueue twice",
            Req::post(&routed_menu, &p(r, &[("Digits", "1")])),
            Has("<Conference"),
            Nothing,
        ),
        row(
            "completed status replayed",
            Req::post(status, &p(e, &[("CallStatus", "completed")])),
            Status(204),
            Nothing,
        ),
        row(
            "completed status for an unknown call",
            Req::post(status, &p(&fresh_sid(1), &[("CallStatus", "completed")])),
            Status(204),
            Nothing,
        ),
        row(
            "non-final status",
            Req::post(status, &p(f, &[("CallStatus", "ringing")])),
            Status(204),
            Nothing,
        ),
        row(
            "unknown status word",
            Req::post(status, &p(f, &[("CallStatus", "'; DROP TABLE calls;--")])),
            Status(204),
            Nothing,
        ),
        // Out of order: the current question again.
        row(
            "pin step before the user id",
            Req::post("/voice/pin?step=1", &p(f, &[("Digits", "1234")])),
            Has(retry_uid),
            Nothing,
        ),
        row(
            "menu step while the pin is awaited",
            Req::post("/voice/menu?step=2", &p(b, &[("Digits", "1")])),
            Has("/voice/pin?step=2"),
            Nothing,
        ),
        row(
            "a step from the future",
            Req::post("/voice/user-id?step=9", &p(f, &[("Digits", &uid)])),
            Has(retry_uid),
            Nothing,
        ),
        row(
            "step zero",
            Req::post("/voice/user-id?step=0", &p(f, &[("Digits", &uid)])),
            Lacks("Enqueue"),
            Nothing,
        ),
        row(
            "the largest step number",
            Req::post("/voice/user-id?step=4294967295", &p(f, &[("Digits", &uid)])),
            Has(retry_uid),
            Nothing,
        ),
        row(
            "user-id step for a call never started",
            Req::post(&fresh_uid, &p(&fresh_sid(2), &[("Digits", &uid)])),
            Has("/voice/incoming"),
            Nothing,
        ),
        row(
            "agent gather for a caller's call",
            Req::post("/voice/agent-id?step=1", &p(f, &[("Digits", "1234#")])),
            Has(retry_uid),
            Nothing,
        ),
        // The step query parameter.
        row(
            "step missing",
            Req::post("/voice/user-id", &p(f, &[("Digits", &uid)])),
            Status(400),
            Nothing,
        ),
        row(
            "step not a number",
            Req::post("/voice/user-id?step=one", &p(f, &[("Digits", &uid)])),
            Status(400),
            Nothing,
        ),
        row(
            "step negative",
            Req::post("/voice/user-id?step=-1", &p(f, &[("Digits", &uid)])),
            Status(400),
            Nothing,
        ),
        row(
            "step past u32",
            Req::post("/voice/user-id?step=4294967296", &p(f, &[("Digits", &uid)])),
            Status(400),
            Nothing,
        ),
        row(
            "step given twice",
            Req::post("/voice/user-id?step=1&step=2", &p(f, &[("Digits", &uid)])),
            Status(400),
            Nothing,
        ),
        row(
            "step percent-garbled",
            Req::post("/voice/user-id?step=%ZZ", &p(f, &[("Digits", &uid)])),
            Status(400),
            Nothing,
        ),
        // Calls that ended.
        row(
            "menu answer after completed",
            Req::post(&ended_menu, &p(e, &[("Digits", "1")])),
            Has("<Hangup"),
            Nothing,
        ),
        row(
            "user-id answer after completed",
            Req::post("/voice/user-id?step=1", &p(e, &[("Digits", &uid)])),
            Has("<Hangup"),
            Nothing,
        ),
        row(
            "incoming after completed",
            Req::post(incoming, &p(e, &[])),
            Has("<Hangup"),
            Nothing,
        ),
        row(
            "hold loop after completed",
            Req::post("/voice/hold", &p(e, &[])),
            Lacks("<Gather"),
            Nothing,
        ),
        row(
            "failed status after completed",
            Req::post(status, &p(e, &[("CallStatus", "failed")])),
            Status(204),
            Nothing,
        ),
        // Digits.
        row(
            "huge digits",
            Req::post(&at_pin_pin, &p(b, &[("Digits", &"1".repeat(60_000))])),
            Has("/voice/pin?step=2"),
            Nothing,
        ),
        row(
            "33 digits",
            Req::post(&at_pin_pin, &p(b, &[("Digits", &"7".repeat(33))])),
            Has("/voice/pin?step=2"),
            Nothing,
        ),
        row(
            "arabic-indic digits",
            Req::post(&at_pin_pin, &p(b, &[("Digits", "١٢٣٤")])),
            Has("/voice/pin?step=2"),
            Nothing,
        ),
        row(
            "fullwidth digits",
            Req::post(&at_pin_pin, &p(b, &[("Digits", "１２３４")])),
            Has("/voice/pin?step=2"),
            Nothing,
        ),
        row(
            "digits with a NUL",
            Req::raw(
                at_pin_pin.clone(),
                format!("CallSid={b}&From=%2B14155550190&Digits=12%0034"),
            ),
            Has("/voice/pin?step=2"),
            Nothing,
        ),
        row(
            "digits given twice",
            Req::post(
                &at_pin_pin,
                &with(p(b, &[("Digits", "1234")]), "Digits", "5678"),
            ),
            Status(400),
            Nothing,
        ),
        // Missing and repeated parameters.
        row(
            "CallSid missing",
            Req::post(incoming, &without(p(f, &[]), "CallSid")),
            Status(400),
            Nothing,
        ),
        row(
            "CallSid empty",
            Req::post(incoming, &p("", &[])),
            Status(400),
            Nothing,
        ),
        row(
            "CallSid given twice",
            Req::post(incoming, &with(p(f, &[]), "CallSid", &fresh_sid(3))),
            Status(400),
            Nothing,
        ),
        row(
            "CallSid too long",
            Req::post(incoming, &p(&"A".repeat(65), &[])),
            Status(400),
            Nothing,
        ),
        row(
            "From given twice",
            Req::post(incoming, &with(p(&fresh_sid(4), &[]), "From", "+1415555")),
            Status(400),
            Nothing,
        ),
        row(
            "CallStatus given twice",
            Req::post(
                status,
                &with(
                    p(f, &[("CallStatus", "completed")]),
                    "CallStatus",
                    "ringing",
                ),
            ),
            Status(400),
            Nothing,
        ),
        row(
            "From missing on a new call",
            Req::post(incoming, &without(p(&fresh_sid(5), &[]), "From")),
            Has(retry_uid),
            May,
        ),
        row(
            "From missing on a pin retry",
            Req::post(&at_menu_pin, &without(p(m, &[("Digits", &pin)]), "From")),
            Has(MENU),
            Nothing,
        ),
        row(
            "an empty body",
            Req::raw(incoming, ""),
            Status(400),
            Nothing,
        ),
        // Bodies and encodings.
        row(
            "body over the limit",
            Req::post(
                incoming,
                &p(&fresh_sid(6), &[("Padding", &"x".repeat(70_000))]),
            ),
            Status(413),
            Nothing,
        ),
        row(
            "body shorter than its Content-Length",
            Req {
                truncate_by: 40,
                ..Req::post(incoming, &p(&fresh_sid(7), &[]))
            },
            Status(400),
            Nothing,
        ),
        row(
            "body cut short after signing",
            Req::raw(
                at_pin_pin.clone(),
                format!("CallSid={b}&From=%2B14155550190&Digits=12"),
            )
            .sign(Sign::Params(p(b, &[("Digits", "1234")]))),
            Status(403),
            Nothing,
        ),
        row(
            "invalid UTF-8 in the body",
            Req::raw(
                incoming,
                [b"CallSid=CA\xff\xfe&From=".as_slice(), b"\xc3"].concat(),
            ),
            Status(400),
            Nothing,
        ),
        row(
            "percent-encoded invalid UTF-8 in Digits",
            Req::raw(at_pin_pin.clone(), format!("CallSid={b}&Digits=%FF%FE%C3")),
            Has("/voice/pin?step=2"),
            Nothing,
        ),
        row(
            "bad percent escapes in Digits",
            Req::raw(at_pin_pin.clone(), format!("CallSid={b}&Digits=%ZZ12%4")),
            Has("/voice/pin?step=2"),
            Nothing,
        ),
        row(
            "bad percent escapes in CallSid",
            Req::raw(incoming, "CallSid=CA%ZZ%&From=%2B1"),
            Status(400),
            Nothing,
        ),
        row(
            "JSON content type",
            Req::post(incoming, &p(&fresh_sid(8), &[])).content_type(Some("application/json")),
            Status(415),
            Nothing,
        ),
        row(
            "no content type",
            Req::post(incoming, &p(&fresh_sid(9), &[])).content_type(None),
            Status(415),
            Nothing,
        ),
        // Signatures.
        row(
            "signed for another path",
            Req::post(&at_pin_pin, &p(b, &[("Digits", "1234")]))
                .sign(Sign::Url("/voice/user-id?step=2".into())),
            Status(403),
            Nothing,
        ),
        row(
            "menu answer signed for the pin step",
            Req::post(&at_menu_menu, &p(m, &[("Digits", "1")]))
                .sign(Sign::Url(at_menu_pin.clone())),
            Status(403),
            Nothing,
        ),
        row(
            "signed for another step",
            Req::post(&at_pin_pin, &p(b, &[("Digits", "1234")]))
                .sign(Sign::Url("/voice/pin?step=3".into())),
            Status(403),
            Nothing,
        ),
        row(
            "signed with another token",
            Req::post(incoming, &p(&fresh_sid(10), &[])).sign(Sign::Token("stolen")),
            Status(403),
            Nothing,
        ),
        row(
            "signed for other digits",
            Req::post(&at_pin_pin, &p(b, &[("Digits", "1234")]))
                .sign(Sign::Params(p(b, &[("Digits", "9999")]))),
            Status(403),
            Nothing,
        ),
        row(
            "a stale signature from another call",
            Req::post(incoming, &p(&fresh_sid(11), &[])).sign(Sign::Params(p(f, &[]))),
            Status(403),
            Nothing,
        ),
        row(
            "signature missing",
            Req::post(incoming, &p(&fresh_sid(12), &[])).sign(Sign::Missing),
            Status(403),
            Nothing,
        ),
        row(
            "signature empty",
            Req::post(incoming, &p(&fresh_sid(13), &[])).sign(Sign::Empty),
            Status(403),
            Nothing,
        ),
        row(
            "signature not base64",
            Req::post(incoming, &p(&fresh_sid(14), &[])).sign(Sign::Garbage),
            Status(403),
            Nothing,
        ),
        row(
            "Twilio signature wrong, SignalWire right: one valid signature is enough",
            Req::post(incoming, &p(&fresh_sid(15), &[])).sign(Sign::Both {
                twilio: false,
                signalwire: true,
            }),
            Has("<Gather"),
            May,
        ),
        row(
            "Twilio signature right, SignalWire wrong",
            Req::post(incoming, &p(&fresh_sid(16), &[])).sign(Sign::Both {
                twilio: true,
                signalwire: false,
            }),
            Has("<Gather"),
            May,
        ),
        row(
            "Twilio signature twice, the second wrong",
            Req::post(incoming, &p(&fresh_sid(19), &[])).sign(Sign::Twice),
            Has("<Gather"),
            May,
        ),
        row(
            "SignalWire signature alone, on a replay",
            Req::post(incoming, &p(f, &[])).sign(Sign::SignalWire),
            Has(retry_uid),
            Nothing,
        ),
        row(
            "an unsigned status callback",
            Req::post(status, &p(m, &[("CallStatus", "completed")])).sign(Sign::Missing),
            Status(403),
            Nothing,
        ),
        // Methods and paths.
        row(
            "GET on incoming",
            Req::post(incoming, &[]).method("GET"),
            Status(405),
            Nothing,
        ),
        row(
            "PUT on a gather",
            Req::post(&fresh_uid, &p(f, &[("Digits", &uid)])).method("PUT"),
            Status(405),
            Nothing,
        ),
        row(
            "DELETE on status",
            Req::post(status, &p(m, &[("CallStatus", "completed")])).method("DELETE"),
            Status(405),
            Nothing,
        ),
        row(
            "GET on hold",
            Req::post("/voice/hold", &[]).method("GET"),
            Status(405),
            Nothing,
        ),
        row(
            "an unknown voice path",
            Req::post("/voice/admin", &p(f, &[])),
            Status(404),
            Nothing,
        ),
        row(
            "a path with dot segments",
            Req::post("/voice/../voice/incoming", &p(&fresh_sid(17), &[])),
            Status(404),
            Nothing,
        ),
        row(
            "a path in capitals",
            Req::post("/VOICE/INCOMING", &p(&fresh_sid(18), &[])),
            Status(404),
            Nothing,
        ),
    ];

    // Metacharacters: in CallSid refused; in Digits on a live gather and in
    // From, To or StirVerstat on a replay they change nothing; on a new
    // call they are stored as given and never reach the TwiML.
    for (n, (what, value)) in (100..).zip(METACHARACTERS) {
        rows.push(row(
            format!("{what} in CallSid"),
            Req::post(incoming, &p(value, &[])),
            Status(400),
            Nothing,
        ));
        rows.push(row(
            format!("{what} in Digits"),
            Req::post(&at_pin_pin, &p(b, &[("Digits", value)])),
            Has("/voice/pin?step=2"),
            Nothing,
        ));
        rows.push(row(
            format!("{what} in From, To and StirVerstat on a replay"),
            Req::post(
                incoming,
                &p(f, &[("From", value), ("To", value), ("StirVerstat", value)]),
            ),
            Has(retry_uid),
            Nothing,
        ));
        rows.push(row(
            format!("{what} in From, To and StirVerstat on a new call"),
            Req::post(
                incoming,
                &p(
                    &fresh_sid(n),
                    &[("From", value), ("To", value), ("StirVerstat", value)],
                ),
            ),
            Lacks(value),
            May,
        ));
    }

    let mut failures = Vec::new();
    for row in &rows {
        let before = snapshot(&line);
        let (address, base, req) = (address.clone(), base.clone(), row.req.clone());
        let (status, body) = tokio::task::spawn_blocking(move || send(&address, &base, &req))
            .await
            .unwrap();
        let after = snapshot(&line);
        let mut wrong = Vec::new();
        if status >= 500 || status == 0 {
            wrong.push(format!("status {status}"));
        }
        match row.expect {
            Status(expected) if status != expected => {
                wrong.push(format!("status {status}, expected {expected}"));
            }
            Status(_) => {}
            Has(fragment) | Lacks(fragment) => {
                if status != 200 {
                    wrong.push(format!("status {status}, expected 200"));
                } else if let Err(why) = well_formed_twiml(&body) {
                    wrong.push(why);
                } else if matches!(row.expect, Has(_)) != body.contains(fragment) {
                    wrong.push(format!("{:?} {fragment:?}", row.expect));
                }
                if body.contains("Enqueue") {
                    wrong.push("the fallback answer: the step failed".into());
                }
            }
        }
        if row.writes == Nothing && before != after {
            let changed: Vec<_> = after
                .iter()
                .filter(|(table, value)| before.get(*table) != Some(value))
                .map(|(table, _)| table.as_str())
                .collect();
            wrong.push(format!("wrote to {changed:?}"));
        }
        if !wrong.is_empty() {
            failures.push(format!("{}: {} [{body}]", row.name, wrong.join("; ")));
        }
    }
    assert!(rows.len() >= 40, "{} rows", rows.len());
    assert!(
        rows.iter().filter(|r| r.writes == Nothing).count() * 10 >= rows.len() * 9,
        "most rows must write nothing"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // What the new calls stored is the text as given, not interpreted.
    let conn = rusqlite::Connection::open(&line.path).unwrap();
    for (n, (_, value)) in (100..).zip(METACHARACTERS) {
        let stored: (String, String, String) = conn
            .query_row(
                "SELECT from_number, to_number, stir_verstat FROM calls WHERE call_sid = ?1",
                [fresh_sid(n)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            stored,
            (value.to_string(), value.to_string(), value.to_string())
        );
    }
}

#[test]
fn sigterm_finishes_requests_in_flight_refuses_new_ones_and_exits_within_ten_seconds() {
    use std::process::Command;

    use crate::support::{Served, pinline, serve};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pinline.db");
    let pinline = |args: &[&str]| pinline(&db, args);
    pinline(&["key", "init"]);
    pinline(&["practice", "add", "Harbor Health"]);
    let user = pinline(&[
        "user",
        "add",
        "--practice",
        "Harbor Health",
        "--role",
        "staff",
        "--name",
        "Robin Hart",
    ]);
    // A user with a PIN, so the server starts on a database shaped like a
    // live one (keys recorded, PINs sealed), not an empty file.
    assert!(user.trim().bytes().all(|b| b.is_ascii_digit()), "{user}");

    let stderr = dir.path().join("serve.log");
    let mut served = Served::spawn(
        serve(&db, TOKEN)
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .stderr(std::fs::File::create(&stderr).unwrap()),
    );
    let address = served.base.strip_prefix("http://").unwrap().to_owned();
    let base = format!("http://{address}");

    // Requests in flight: headers and half the body sent, the rest after
    // the signal. Each is a new call, whose row must be committed.
    let mut in_flight = Vec::new();
    for n in 0..6u32 {
        let sid = fresh_sid(n + 1);
        let params = params(&sid, &[]);
        let body = super::harness::encode(&params);
        let signature =
            pinline::signature::sign(TOKEN.as_bytes(), &format!("{base}/voice/incoming"), &params);
        let mut stream = TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let (start, rest) = body.split_at(body.len() / 2);
        write!(
            stream,
            "POST /voice/incoming HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {signature}\r\n\
             Content-Length: {}\r\n\r\n{start}",
            body.len()
        )
        .unwrap();
        in_flight.push((sid, stream, rest.to_owned()));
    }
    // A client that stops halfway through its body and never returns, and
    // one idle keep-alive connection: neither may hold the process open.
    let mut stalled = TcpStream::connect(&address).unwrap();
    write!(
        stalled,
        "POST /voice/incoming HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\nCallSid="
    )
    .unwrap();
    let mut idle = TcpStream::connect(&address).unwrap();
    write!(idle, "GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    let mut health = [0u8; 64];
    let read = idle.read(&mut health).unwrap();
    assert!(
        String::from_utf8_lossy(&health[..read]).starts_with("HTTP/1.1 200"),
        "the server answers before the signal"
    );
    std::thread::sleep(Duration::from_millis(300));

    let signalled = Instant::now();
    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));

    for (sid, mut stream, rest) in in_flight {
        stream.write_all(rest.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "{sid} in flight: {response}"
        );
        let body = response.split_once("\r\n\r\n").unwrap().1;
        well_formed_twiml(body).unwrap();
        assert!(body.contains("/voice/user-id?step=1"), "{body}");
    }

    assert!(
        TcpStream::connect(&address).is_err(),
        "a new connection after the signal is refused"
    );

    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    drop(stalled);

    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let calls: i64 = conn
        .query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
        .unwrap();
    assert_eq!(calls, 6, "every request answered was committed");
}
