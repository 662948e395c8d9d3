//! The executor: fetches documents and runs their verbs, one call at a time.
//!
//! Control flow is explicit: each verb yields a [`Step`] (go on, fetch
//! another document, leave the queue, or end the call), and the loops that
//! fetch documents (the call itself, and each round of hold TwiML) decide
//! what a step means for them. Hold TwiML runs through its own function
//! rather than the call's, both because Twilio allows fewer verbs there
//! and so that no async function recurses.

use std::io::Write;
use std::time::Instant;

use reqwest::Url;

use super::document::{self, Dial, DialTarget, Document, Enqueue, Gather, Hold, Play, Say, Verb};
use super::keypad::{self, Collected, KeyPrompt, Keypad, Keys};
use super::transport::{Request, Transport};
use super::{API_VERSION, CallError, CallSetup, CallSummary, EndReason, STATUS_PATH};
use crate::twiml::Method;

const IN_PROGRESS: &str = "in-progress";
const COMPLETED: &str = "completed";

/// Places the call `setup` describes: requests its URL, runs the TwiML it
/// answers with, keys from `keypad`, requests through `transport`, and
/// writes what the caller hears to `out`. The status callback is posted
/// however the call ends, as Twilio does after an application error too.
///
/// Write errors on `out` are ignored: losing the transcript must not stop
/// the call half-way, before its status callback.
pub async fn run<T: Transport, K: Keypad, W: Write>(
    setup: &CallSetup,
    transport: &mut T,
    keypad: &mut K,
    out: &mut W,
) -> Result<CallSummary, CallError> {
    let mut call = Session::new(setup, transport, keypad, out);
    call.line(&format!(
        "Calling {} from {} to {} (CallSid {})",
        setup.url, setup.from, setup.to, setup.call_sid
    ));
    let ended = call.main_loop().await;
    if ended.is_err() {
        call.line("  [application error: Twilio would apologise and hang up]");
    }
    // Sent even after a failure, so the server can end the call; the
    // first error is the one reported.
    let status = call.status_callback().await;
    let summary = call.summary(ended?);
    status?;
    call.line(&format!(
        "Call ended: {} ({} s, {} requests)",
        summary.ended, summary.duration_secs, summary.requests
    ));
    Ok(summary)
}

/// A request still to make: the method, the URL, and the parameters beyond
/// the standard ones.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fetch {
    method: Method,
    url: Url,
    extra: Vec<(String, String)>,
}

impl Fetch {
    fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            extra: Vec::new(),
        }
    }

    fn with(mut self, name: &str, value: &str) -> Self {
        self.extra.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// What running one verb leads to.
#[derive(Debug)]
enum Step {
    /// On to the next verb.
    Next,
    /// Abandon this document for the one at this URL.
    Goto(Fetch),
    /// `<Leave>` while waiting in a queue.
    Leave,
    /// The call is over.
    End(EndReason),
}

/// How a wait on hold ended.
#[derive(Debug)]
enum Held {
    /// `<Leave>`: back to the verbs after `<Enqueue>`.
    Left,
    /// Nobody came, so the caller hung up.
    HungUp,
    /// The hold TwiML ended the call.
    Ended(EndReason),
}

/// Where the caller waits.
#[derive(Debug)]
enum Place {
    Queue { sid: String, since: Instant },
    Conference,
}

impl Place {
    fn queue() -> Self {
        Place::Queue {
            sid: format!("QU{:032x}", rand::random::<u128>()),
            since: Instant::now(),
        }
    }

    /// The parameters Twilio adds to a queue's `waitUrl` request. The
    /// softphone is the only caller in the queue.
    fn wait_params(&self, fetch: Fetch) -> Fetch {
        match self {
            Place::Queue { .. } => self
                .queue_params(fetch)
                .with("QueuePosition", "1")
                .with("CurrentQueueSize", "1")
                .with("AvgQueueTime", "0")
                .with("MaxQueueSize", "1000"),
            Place::Conference => fetch,
        }
    }

    /// `QueueSid` and `QueueTime`, as sent with waits and the queue action.
    fn queue_params(&self, fetch: Fetch) -> Fetch {
        match self {
            Place::Queue { sid, since } => fetch
                .with("QueueSid", sid)
                .with("QueueTime", &since.elapsed().as_secs().to_string()),
            Place::Conference => fetch,
        }
    }
}

struct Session<'a, T, K, W> {
    setup: &'a CallSetup,
    transport: &'a mut T,
    keypad: &'a mut K,
    out: &'a mut W,
    started: Instant,
    documents: usize,
    requests: usize,
    duration_secs: u64,
}

impl<'a, T: Transport, K: Keypad, W: Write> Session<'a, T, K, W> {
    fn new(setup: &'a CallSetup, transport: &'a mut T, keypad: &'a mut K, out: &'a mut W) -> Self {
        Self {
            setup,
            transport,
            keypad,
            out,
            started: Instant::now(),
            documents: 0,
            requests: 0,
            duration_secs: 0,
        }
    }

    fn summary(&self, ended: EndReason) -> CallSummary {
        CallSummary {
            call_sid: self.setup.call_sid.clone(),
            ended,
            duration_secs: self.duration_secs,
            requests: self.requests,
        }
    }

    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    async fn main_loop(&mut self) -> Result<EndReason, CallError> {
        let mut next = Fetch::new(Method::Post, self.setup.url.clone());
        loop {
            let Some(document) = self.document(&next).await? else {
                return Ok(EndReason::TooManyDocuments);
            };
            match self.run_call_verbs(&next.url, &document.verbs).await? {
                Step::Goto(fetch) => next = fetch,
                Step::End(reason) => return Ok(reason),
                // `<Leave>` outside a queue is ignored, so only running out
                // of verbs gets here: Twilio hangs up then.
                Step::Next | Step::Leave => return Ok(EndReason::DocumentEnded),
            }
        }
    }

    /// Fetches and parses the TwiML at `fetch`, or `None` once the call has
    /// fetched as many documents as it may.
    async fn document(&mut self, fetch: &Fetch) -> Result<Option<Document>, CallError> {
        if self.documents >= self.setup.max_documents {
            self.line(&format!(
                "  [giving up after {} documents: this looks like a loop]",
                self.documents
            ));
            return Ok(None);
        }
        self.documents += 1;
        let body = self.send(fetch, IN_PROGRESS).await?;
        document::parse(&body)
            .map(Some)
            .map_err(|e| CallError::Malformed {
                url: fetch.url.to_string(),
                reason: e.to_string(),
            })
    }

    /// Signs and sends one request; anything but a 2xx answer is an error.
    async fn send(&mut self, fetch: &Fetch, status: &str) -> Result<String, CallError> {
        let request = self.signed(fetch, status);
        self.line(&request_line(fetch, status));
        self.requests += 1;
        let method = fetch.method.as_str();
        let url = fetch.url.to_string();
        let reply = match self.transport.send(&request).await {
            Ok(reply) => reply,
            Err(reason) => {
                return Err(CallError::Unreachable {
                    method,
                    url,
                    reason,
                });
            }
        };
        if !(200..300).contains(&reply.status) {
            return Err(CallError::Status {
                method,
                url,
                status: status_text(reply.status),
                body: excerpt(&reply.body),
            });
        }
        Ok(reply.body)
    }

    /// The request Twilio would send: the standard parameters and the
    /// extras, in the body for POST or the query for GET, signed over the
    /// URL as sent (which for GET already holds every parameter).
    fn signed(&self, fetch: &Fetch, status: &str) -> Request {
        let mut params = self.standard_params(status);
        params.extend(fetch.extra.iter().cloned());
        let auth = &self.setup.auth;
        match fetch.method {
            Method::Post => {
                let url = fetch.url.to_string();
                Request {
                    method: Method::Post,
                    signature: auth.sign(&url, &params),
                    url,
                    form: params,
                }
            }
            Method::Get => {
                let mut url = fetch.url.clone();
                url.query_pairs_mut().extend_pairs(&params);
                let url = url.to_string();
                Request {
                    method: Method::Get,
                    signature: auth.sign(&url, &[]),
                    url,
                    form: Vec::new(),
                }
            }
        }
    }

    fn standard_params(&self, status: &str) -> Vec<(String, String)> {
        let setup = self.setup;
        [
            ("AccountSid", setup.account_sid.as_str()),
            ("CallSid", &setup.call_sid),
            ("From", &setup.from),
            ("To", &setup.to),
            ("CallStatus", status),
            ("Direction", "inbound"),
            ("ApiVersion", API_VERSION),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
    }

    async fn status_callback(&mut self) -> Result<(), CallError> {
        self.duration_secs = self.started.elapsed().as_secs();
        let url = resolve(&self.setup.url, STATUS_PATH)?;
        let fetch =
            Fetch::new(Method::Post, url).with("CallDuration", &self.duration_secs.to_string());
        self.send(&fetch, COMPLETED).await.map(drop)
    }

    async fn run_call_verbs(&mut self, url: &Url, verbs: &[Verb]) -> Result<Step, CallError> {
        for verb in verbs {
            let step = match verb {
                Verb::Enqueue(enqueue) => self.enqueue(url, enqueue).await?,
                Verb::Dial(dial) => self.dial(url, dial).await?,
                Verb::Leave => {
                    self.line("  [leave: ignored, the call is not in a queue]");
                    Step::Next
                }
                other => self.common_verb(url, other).await?,
            };
            if !matches!(step, Step::Next) {
                return Ok(step);
            }
        }
        Ok(Step::Next)
    }

    /// Runs hold TwiML. Twilio allows no `<Enqueue>` or `<Dial>` there,
    /// and `<Leave>` only in a queue.
    async fn run_wait_verbs(
        &mut self,
        url: &Url,
        verbs: &[Verb],
        place: &Place,
    ) -> Result<Step, CallError> {
        for verb in verbs {
            let step = match verb {
                Verb::Leave if matches!(place, Place::Queue { .. }) => {
                    self.line("  [leave]");
                    Step::Leave
                }
                Verb::Enqueue(_) | Verb::Dial(_) | Verb::Leave => {
                    self.line(&format!("  [unsupported <{}> while waiting]", verb.name()));
                    Step::Next
                }
                other => self.common_verb(url, other).await?,
            };
            if !matches!(step, Step::Next) {
                return Ok(step);
            }
        }
        Ok(Step::Next)
    }

    /// The verbs that work the same in a call and on hold.
    async fn common_verb(&mut self, url: &Url, verb: &Verb) -> Result<Step, CallError> {
        match verb {
            Verb::Gather(gather) => self.gather(url, gather).await,
            Verb::Redirect(redirect) => {
                self.line("  [redirect]");
                let target = resolve(url, &redirect.url)?;
                Ok(Step::Goto(Fetch::new(redirect.method, target)))
            }
            Verb::Hangup => {
                self.line("  [hangup]");
                Ok(Step::End(EndReason::Hangup))
            }
            other => {
                self.prompt_verb(url, other, "").await;
                Ok(Step::Next)
            }
        }
    }

    /// What a caller hears: `<Say>`, `<Play>`, `<Pause>`. Anything else
    /// is reported as unsupported `within` its context.
    async fn prompt_verb(&mut self, url: &Url, verb: &Verb, within: &str) {
        match verb {
            Verb::Say(say) => self.say(say),
            Verb::Play(play) => self.play(url, play),
            Verb::Pause(seconds) => {
                self.line(&format!("  [pause {seconds}s]"));
                self.keypad.pause(*seconds).await;
            }
            other => self.line(&format!("  [unsupported <{}>{within}]", other.name())),
        }
    }

    fn say(&mut self, say: &Say) {
        let text = format!("  [say {}] {}{}", say.language, say.text, loops(say.loops));
        self.line(&text);
    }

    fn play(&mut self, url: &Url, play: &Play) {
        let text = match &play.digits {
            Some(digits) => format!("  [play digits {digits}]"),
            None if play.url.is_empty() => "  [play] (no URL)".to_owned(),
            // Shown resolved, as Twilio would fetch it.
            None => {
                let audio = url
                    .join(&play.url)
                    .map_or_else(|_| play.url.clone(), |u| u.to_string());
                format!("  [play] {audio}{}", loops(play.loops))
            }
        };
        self.line(&text);
    }

    /// Runs a `<Gather>`: its prompts, then the keys, then Twilio's rules
    /// for what to post where (see [`keypad::collect_digits`]).
    async fn gather(&mut self, url: &Url, gather: &Gather) -> Result<Step, CallError> {
        for child in &gather.children {
            self.prompt_verb(url, child, " in <Gather>").await;
        }
        let prompt = KeyPrompt {
            num_digits: gather.num_digits,
            finish_on_key: gather.finish_on_key,
            timeout_secs: gather.timeout_secs,
        };
        let Some(collected) = self.listen(gather.dtmf, &prompt).await else {
            return Ok(Step::End(EndReason::CallerHungUp));
        };
        if collected.digits.is_empty() && !gather.action_on_empty_result {
            self.line("  [no digits: on to the next verb]");
            return Ok(Step::Next);
        }
        let action = match &gather.action {
            Some(action) => resolve(url, action)?,
            None => url.clone(),
        };
        let finished = collected.finished_on_key.map(String::from);
        let fetch = Fetch::new(gather.method, action)
            .with("Digits", &collected.digits)
            .with("FinishedOnKey", finished.as_deref().unwrap_or(""));
        Ok(Step::Goto(fetch))
    }

    /// The keys for one gather as Twilio reads them, or `None` if the
    /// caller hung up instead.
    async fn listen(&mut self, dtmf: bool, prompt: &KeyPrompt) -> Option<Collected> {
        let keys = if dtmf {
            self.keypad.gather(prompt).await
        } else {
            self.line("  [gather: speech only, which a terminal cannot give]");
            Keys::Silence
        };
        match keys {
            Keys::HangUp => {
                self.line(&format!("  [gather {prompt}] the caller hangs up"));
                None
            }
            Keys::Silence => {
                self.line(&format!("  [gather {prompt}] silence"));
                Some(Collected::default())
            }
            Keys::Pressed(keys) => {
                let collected = keypad::collect_digits(&keys, prompt);
                let mut text = format!("  [gather {prompt}] pressed {keys}");
                if !collected.unheard.is_empty() {
                    text.push_str(&format!(" ({:?} came after it ended)", collected.unheard));
                }
                self.line(&text);
                Some(collected)
            }
        }
    }

    async fn enqueue(&mut self, url: &Url, enqueue: &Enqueue) -> Result<Step, CallError> {
        self.line(&format!(
            "  [enqueue {}] waiting for an agent",
            enqueue.queue
        ));
        let place = Place::queue();
        match self.hold(url, &enqueue.hold, &place).await? {
            Held::HungUp => Ok(Step::End(EndReason::InQueue(enqueue.queue.clone()))),
            Held::Ended(reason) => Ok(Step::End(reason)),
            Held::Left => {
                let Some(action) = &enqueue.action else {
                    return Ok(Step::Next);
                };
                let fetch = Fetch::new(enqueue.method, resolve(url, action)?);
                Ok(Step::Goto(
                    place.queue_params(fetch.with("QueueResult", "leave")),
                ))
            }
        }
    }

    async fn dial(&mut self, url: &Url, dial: &Dial) -> Result<Step, CallError> {
        let conference = dial.targets.iter().find_map(|target| match target {
            DialTarget::Conference { room, hold } => Some((room, hold)),
            _ => None,
        });
        if let Some((room, hold)) = conference {
            return self.conference(url, room, hold).await;
        }
        for target in &dial.targets {
            self.line(&dialled(target));
        }
        self.line("  [dial ended: no-answer]");
        match &dial.action {
            None => Ok(Step::Next),
            Some(action) => {
                let fetch = Fetch::new(dial.method, resolve(url, action)?);
                Ok(Step::Goto(fetch.with("DialCallStatus", "no-answer")))
            }
        }
    }

    async fn conference(&mut self, url: &Url, room: &str, hold: &Hold) -> Result<Step, CallError> {
        self.line(&format!(
            "  [conference {room}] alone in the room, waiting for someone to join"
        ));
        match self.hold(url, hold, &Place::Conference).await? {
            Held::Ended(reason) => Ok(Step::End(reason)),
            Held::HungUp | Held::Left => Ok(Step::End(EndReason::InConference(room.to_owned()))),
        }
    }

    /// Waits on hold: loops the `waitUrl` TwiML, or for Twilio's own music
    /// or silence, hangs up at once, since nobody will come.
    async fn hold(&mut self, url: &Url, hold: &Hold, place: &Place) -> Result<Held, CallError> {
        match hold {
            Hold::Url { url: wait, method } => {
                let wait = resolve(url, wait)?;
                self.wait_loop(&wait, *method, place).await
            }
            other => {
                self.line(&format!(
                    "  [hold: {other}; nobody answers a softphone, so the caller hangs up]"
                ));
                Ok(Held::HungUp)
            }
        }
    }

    /// Requests `wait` and runs its TwiML, again each time it ends, for at
    /// most `max_wait_loops` rounds; a script that has run out of keys
    /// hangs up after the first.
    async fn wait_loop(
        &mut self,
        wait: &Url,
        method: Method,
        place: &Place,
    ) -> Result<Held, CallError> {
        // A hold document that redirects to itself (as a conference's
        // must, since its wait document goes silent when it ends) starts
        // the next round rather than an endless one; any other URL it
        // leads to is followed within the round.
        let mut start = (method, wait.clone());
        for round in 1..=self.setup.max_wait_loops {
            if round > 1 && self.keypad.exhausted() {
                self.line("  [no keys left: the caller hangs up]");
                return Ok(Held::HungUp);
            }
            let mut next = place.wait_params(Fetch::new(start.0, start.1.clone()));
            loop {
                let Some(document) = self.document(&next).await? else {
                    return Ok(Held::Ended(EndReason::TooManyDocuments));
                };
                match self
                    .run_wait_verbs(&next.url, &document.verbs, place)
                    .await?
                {
                    Step::Next => {
                        start = (method, wait.clone());
                        break;
                    }
                    Step::Goto(fetch) if fetch.url == next.url => {
                        start = (fetch.method, fetch.url);
                        break;
                    }
                    Step::Goto(fetch) => next = fetch,
                    Step::Leave => return Ok(Held::Left),
                    Step::End(reason) => return Ok(Held::Ended(reason)),
                }
            }
        }
        self.line(&format!(
            "  [still waiting after {} rounds of hold: the caller hangs up]",
            self.setup.max_wait_loops
        ));
        Ok(Held::HungUp)
    }
}

/// `> POST URL` and the parameters beyond the standard ones.
fn request_line(fetch: &Fetch, status: &str) -> String {
    let mut line = format!("> {} {}", fetch.method.as_str(), fetch.url);
    if status != IN_PROGRESS {
        line.push_str(&format!(" CallStatus={status}"));
    }
    for (name, value) in &fetch.extra {
        line.push_str(&format!(" {name}={value}"));
    }
    line
}

fn dialled(target: &DialTarget) -> String {
    match target {
        DialTarget::Queue(queue) => {
            format!("  [dial queue {queue}] no caller waits there for a softphone to answer")
        }
        DialTarget::Number(number) => {
            format!("  [dial {number}] a softphone cannot ring another phone")
        }
        DialTarget::Other { noun, text } => {
            format!("  [dial <{noun}> {text}] a softphone cannot ring it")
        }
        DialTarget::Conference { room, .. } => format!("  [dial conference {room}]"),
    }
}

fn loops(count: u32) -> String {
    match count {
        1 => String::new(),
        0 => " (repeated until the call moves on)".to_owned(),
        n => format!(" (x{n})"),
    }
}

/// Resolves a URL from TwiML against the document it came from, as
/// Twilio does with relative `action`, `waitUrl` and `<Redirect>` URLs.
fn resolve(base: &Url, raw: &str) -> Result<Url, CallError> {
    let malformed = |reason: String| CallError::Malformed {
        url: base.to_string(),
        reason,
    };
    let url = base
        .join(raw.trim())
        .map_err(|e| malformed(format!("cannot resolve the URL {raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(malformed(format!("{raw:?} is not an http(s) URL")));
    }
    Ok(url)
}

/// `404 Not Found`, or just the number for a code without a name.
fn status_text(status: u16) -> String {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason());
    match reason {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// The first line of an error body, shortened, for the error message.
fn excerpt(body: &str) -> String {
    let Some(line) = body.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return String::new();
    };
    let short: String = line.chars().take(200).collect();
    format!(": {short}")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::future::Future;

    use super::*;
    use crate::softphone::{Reply, ScriptedKeypad};

    const BASE: &str = "http://line.test";
    const TOKEN: &str = "test-token";

    /// Answers each URL (its path and query, before any GET parameters)
    /// with canned TwiML, and records what was sent.
    #[derive(Default)]
    struct Canned {
        pages: HashMap<String, Result<Reply, String>>,
        sent: Vec<Request>,
    }

    impl Canned {
        fn new(pages: &[(&str, &str)]) -> Self {
            let mut canned = Self::default();
            for (path, body) in pages {
                canned.answer(path, 200, &twiml(body));
            }
            canned
        }

        fn answer(&mut self, path: &str, status: u16, body: &str) {
            let reply = Reply {
                status,
                body: body.to_owned(),
            };
            self.pages.insert(format!("{BASE}{path}"), Ok(reply));
        }

        fn reply(&self, url: &str) -> Result<Reply, String> {
            if url.starts_with(&format!("{BASE}{STATUS_PATH}")) {
                return Ok(Reply {
                    status: 204,
                    body: String::new(),
                });
            }
            let page = self.pages.get(url).or_else(|| {
                let without_query = url.split('?').next().unwrap_or(url);
                self.pages.get(without_query)
            });
            page.cloned().unwrap_or(Ok(Reply {
                status: 404,
                body: "not found".into(),
            }))
        }
    }

    impl Transport for Canned {
        fn send(
            &mut self,
            request: &Request,
        ) -> impl Future<Output = Result<Reply, String>> + Send {
            self.sent.push(request.clone());
            std::future::ready(self.reply(&request.url))
        }
    }

    fn twiml(body: &str) -> String {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{body}</Response>")
    }

    struct Outcome {
        result: Result<CallSummary, CallError>,
        transcript: String,
        sent: Vec<Request>,
        setup: CallSetup,
    }

    impl Outcome {
        fn ended(&self) -> &EndReason {
            match &self.result {
                Ok(summary) => &summary.ended,
                Err(e) => panic!("call failed: {e}\n{}", self.transcript),
            }
        }

        fn error(&self) -> &CallError {
            match &self.result {
                Ok(summary) => panic!("call succeeded: {summary:?}\n{}", self.transcript),
                Err(e) => e,
            }
        }

        /// Each request's URL without the base, in order.
        fn paths(&self) -> Vec<String> {
            self.sent
                .iter()
                .map(|r| r.url.strip_prefix(BASE).unwrap_or(&r.url).to_owned())
                .map(|url| url.split("?AccountSid").next().unwrap_or("").to_owned())
                .collect()
        }

        fn request_to(&self, path: &str) -> &Request {
            let url = format!("{BASE}{path}");
            self.sent
                .iter()
                .find(|r| r.url == url)
                .unwrap_or_else(|| panic!("no request to {path}: {:?}", self.paths()))
        }

        fn hears(&self, text: &str) -> bool {
            self.transcript.contains(text)
        }
    }

    fn param<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
        request
            .form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn call(pages: &[(&str, &str)], keys: &[&str]) -> Outcome {
        call_on(Canned::new(pages), keys, |_| {})
    }

    fn call_on(mut transport: Canned, keys: &[&str], tune: impl FnOnce(&mut CallSetup)) -> Outcome {
        let mut setup = CallSetup::new(&format!("{BASE}/voice/incoming"), TOKEN).unwrap();
        tune(&mut setup);
        let mut keypad = ScriptedKeypad::new(keys.iter().copied());
        let mut out = Vec::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let result = runtime.block_on(run(&setup, &mut transport, &mut keypad, &mut out));
        Outcome {
            result,
            transcript: String::from_utf8(out).unwrap(),
            sent: transport.sent,
            setup,
        }
    }

    #[test]
    fn posts_the_digits_without_the_finish_key_to_the_action() {
        let outcome = call(
            &[
                ("/voice/incoming", r#"<Gather action="/voice/user-id"/>"#),
                ("/voice/user-id", "<Hangup/>"),
            ],
            &["123456#"],
        );
        let posted = outcome.request_to("/voice/user-id");
        assert_eq!(param(posted, "Digits"), Some("123456"));
        assert_eq!(param(posted, "FinishedOnKey"), Some("#"));
        assert_eq!(outcome.ended(), &EndReason::Hangup);
    }

    #[test]
    fn num_digits_cuts_the_digits_off_and_later_keys_go_unheard() {
        let outcome = call(
            &[
                (
                    "/voice/incoming",
                    r#"<Gather numDigits="4" action="/pin"/>"#,
                ),
                ("/pin", "<Hangup/>"),
            ],
            &["48219"],
        );
        let posted = outcome.request_to("/pin");
        assert_eq!(param(posted, "Digits"), Some("4821"));
        assert_eq!(param(posted, "FinishedOnKey"), Some(""));
        assert!(
            outcome.hears(r#""9" came after it ended"#),
            "{}",
            outcome.transcript
        );
    }

    #[test]
    fn an_empty_finish_on_key_makes_hash_a_digit() {
        let outcome = call(
            &[
                ("/voice/incoming", r#"<Gather finishOnKey="" action="/g"/>"#),
                ("/g", "<Hangup/>"),
            ],
            &["12#"],
        );
        assert_eq!(param(outcome.request_to("/g"), "Digits"), Some("12#"));
        assert!(outcome.hears(r#"finishOnKey="""#), "{}", outcome.transcript);
    }

    #[test]
    fn keys_without_the_finish_key_are_posted_when_the_timeout_ends_the_gather() {
        let outcome = call(
            &[
                ("/voice/incoming", r#"<Gather action="/g"/>"#),
                ("/g", "<Hangup/>"),
            ],
            &["12"],
        );
        let posted = outcome.request_to("/g");
        assert_eq!(param(posted, "Digits"), Some("12"));
        assert_eq!(param(posted, "FinishedOnKey"), Some(""));
    }

    #[test]
    fn silence_falls_through_to_the_verb_after_the_gather() {
        let outcome = call(
            &[(
                "/voice/incoming",
                r#"<Gather action="/g" timeout="3"/><Say>After the gather</Say><Hangup/>"#,
            )],
            &[""],
        );
        assert_eq!(outcome.paths(), ["/voice/incoming", "/voice/status"]);
        assert!(
            outcome.hears("timeout=3s] silence"),
            "{}",
            outcome.transcript
        );
        assert!(outcome.hears("[say en-US] After the gather"));
        assert_eq!(outcome.ended(), &EndReason::Hangup);
    }

    #[test]
    fn silence_with_action_on_empty_result_posts_empty_digits() {
        let outcome = call(
            &[
                (
                    "/voice/incoming",
                    r#"<Gather action="/g" actionOnEmptyResult="true"/><Say>Never heard</Say>"#,
                ),
                ("/g", "<Hangup/>"),
            ],
            &[""],
        );
        assert_eq!(param(outcome.request_to("/g"), "Digits"), Some(""));
        assert!(!outcome.hears("Never heard"));
    }

    #[test]
    fn the_finish_key_alone_counts_as_no_input() {
        let outcome = call(
            &[("/voice/incoming", r#"<Gather action="/g"/><Hangup/>"#)],
            &["#"],
        );
        assert_eq!(outcome.paths(), ["/voice/incoming", "/voice/status"]);
    }

    #[test]
    fn relative_urls_resolve_against_the_current_document() {
        let outcome = call(
            &[
                ("/voice/incoming", "<Redirect>menu/start</Redirect>"),
                ("/voice/menu/start", r#"<Gather action="pick?x=1"/>"#),
                // No action: the gather posts back to its own document.
                ("/voice/menu/pick?x=1", "<Gather/>"),
            ],
            &["1", "2"],
        );
        assert_eq!(
            outcome.paths(),
            [
                "/voice/incoming",
                "/voice/menu/start",
                "/voice/menu/pick?x=1",
                "/voice/menu/pick?x=1",
                "/voice/status"
            ]
        );
        assert_eq!(outcome.ended(), &EndReason::CallerHungUp);
    }

    #[test]
    fn a_redirect_abandons_the_rest_of_the_document() {
        let outcome = call(
            &[
                (
                    "/voice/incoming",
                    "<Redirect>/next</Redirect><Say>skipped</Say>",
                ),
                ("/next", "<Say>Next page</Say>"),
            ],
            &[],
        );
        assert!(outcome.hears("Next page"));
        assert!(!outcome.hears("skipped"));
        assert_eq!(outcome.ended(), &EndReason::DocumentEnded);
    }

    #[test]
    fn a_get_redirect_sends_the_parameters_in_the_signed_query() {
        let outcome = call(
            &[
                (
                    "/voice/incoming",
                    r#"<Redirect method="GET">/by-get</Redirect>"#,
                ),
                ("/by-get", "<Hangup/>"),
            ],
            &[],
        );
        let get = &outcome.sent[1];
        assert_eq!(get.method, Method::Get);
        assert!(get.form.is_empty());
        let sid = format!("CallSid={}", outcome.setup.call_sid);
        assert!(
            get.url.starts_with(&format!("{BASE}/by-get?")),
            "{}",
            get.url
        );
        assert!(get.url.contains(&sid), "{}", get.url);
        assert!(crate::signature::is_valid(
            TOKEN.as_bytes(),
            &get.url,
            &[],
            &get.signature
        ));
    }

    #[test]
    fn nested_verbs_in_a_gather_play_in_order_before_it_listens() {
        let outcome = call(
            &[(
                "/voice/incoming",
                concat!(
                    r#"<Gather action="/g"><Say language="es-US">Hola</Say>"#,
                    r#"<Play>tones/beep.mp3</Play><Pause length="2"/><Record/></Gather>"#
                ),
            )],
            &[],
        );
        let lines: Vec<&str> = outcome.transcript.lines().collect();
        let at = |text: &str| {
            lines
                .iter()
                .position(|l| l.contains(text))
                .unwrap_or_else(|| panic!("no {text:?} in {lines:?}"))
        };
        let order = [
            at("[say es-US] Hola"),
            at("[play] http://line.test/voice/tones/beep.mp3"),
            at("[pause 2s]"),
            at("[unsupported <Record> in <Gather>]"),
            at("the caller hangs up"),
        ];
        assert!(order.is_sorted(), "{lines:?}");
    }

    #[test]
    fn hangup_ends_the_call_and_the_status_callback_reports_it() {
        let outcome = call(
            &[("/voice/incoming", "<Say>Bye</Say><Hangup/><Say>Never</Say>")],
            &[],
        );
        assert_eq!(outcome.ended(), &EndReason::Hangup);
        assert!(!outcome.hears("Never"));
        let status = outcome.request_to(STATUS_PATH);
        assert_eq!(param(status, "CallStatus"), Some("completed"));
        assert_eq!(param(status, "CallDuration"), Some("0"));
    }

    #[test]
    fn the_status_callback_goes_to_the_same_host_whatever_the_path() {
        let transport = Canned::new(&[("/voice/agent", "<Hangup/>")]);
        let outcome = call_on(transport, &[], |setup| {
            setup.url = Url::parse(&format!("{BASE}/voice/agent")).unwrap();
        });
        assert_eq!(outcome.paths(), ["/voice/agent", "/voice/status"]);
    }

    #[test]
    fn a_wait_url_loops_until_its_bound() {
        let outcome = call(
            &[
                (
                    "/voice/incoming",
                    r#"<Enqueue waitUrl="hold">support</Enqueue>"#,
                ),
                ("/voice/hold", "<Say>Please hold</Say>"),
            ],
            // A key left over, so the script never runs out.
            &["9"],
        );
        assert_eq!(outcome.ended(), &EndReason::InQueue("support".into()));
        let holds = outcome
            .paths()
            .iter()
            .filter(|p| *p == "/voice/hold")
            .count();
        assert_eq!(holds, outcome.setup.max_wait_loops);
        let wait = outcome.request_to("/voice/hold");
        assert!(param(wait, "QueueSid").is_some_and(|s| s.starts_with("QU")));
        assert_eq!(param(wait, "QueuePosition"), Some("1"));
    }

    #[test]
    fn a_script_out_of_keys_stops_waiting_after_one_round() {
        let outcome = call(
            &[
                (
                    "/voice/incoming",
                    r#"<Enqueue waitUrl="/hold">support</Enqueue>"#,
                ),
                ("/hold", "<Say>Please hold</Say>"),
            ],
            &[],
        );
        assert_eq!(
            outcome.paths(),
            ["/voice/incoming", "/hold", "/voice/status"]
        );
        assert!(outcome.hears("no keys left"));
    }

    #[test]
    fn leave_in_the_hold_music_posts_the_enqueue_action() {
        let outcome = call(
            &[
                (
                    "/voice/incoming",
                    r#"<Enqueue waitUrl="/hold" action="/left">support</Enqueue><Say>not this</Say>"#,
                ),
                (
                    "/hold",
                    r#"<Gather numDigits="1" action="/choice"><Say>Press 1 to leave</Say></Gather>"#,
                ),
                ("/choice", "<Leave/>"),
                ("/left", "<Say>You left the queue</Say><Hangup/>"),
            ],
            &["1"],
        );
        let left = outcome.request_to("/left");
        assert_eq!(param(left, "QueueResult"), Some("leave"));
        assert!(param(left, "QueueTime").is_some());
        assert!(outcome.hears("You left the queue"));
        assert!(!outcome.hears("not this"));
        assert_eq!(outcome.ended(), &EndReason::Hangup);
    }

    #[test]
    fn leave_without_an_action_goes_on_after_the_enqueue() {
        let outcome = call(
            &[
                (
                    "/voice/incoming",
                    r#"<Enqueue waitUrl="/hold">q</Enqueue><Say>Back</Say>"#,
                ),
                ("/hold", "<Leave/>"),
            ],
            &[],
        );
        assert!(outcome.hears("[say en-US] Back"));
        assert_eq!(outcome.ended(), &EndReason::DocumentEnded);
    }

    #[test]
    fn enqueue_without_a_wait_url_hangs_up_in_the_queue() {
        let outcome = call(&[("/voice/incoming", "<Enqueue>support</Enqueue>")], &[]);
        assert_eq!(outcome.ended(), &EndReason::InQueue("support".into()));
        assert!(outcome.hears("Twilio's default hold music"));
    }

    #[test]
    fn a_conference_loops_its_wait_url_and_dial_queue_says_what_happens() {
        let conference = call(
            &[
                (
                    "/voice/incoming",
                    r#"<Dial><Conference waitUrl="/music">room-1</Conference></Dial>"#,
                ),
                ("/music", "<Play>http://music.test/a.mp3</Play>"),
            ],
            &["1"],
        );
        assert_eq!(
            conference.ended(),
            &EndReason::InConference("room-1".into())
        );
        let rounds = conference.paths().iter().filter(|p| *p == "/music").count();
        assert_eq!(rounds, conference.setup.max_wait_loops);

        let queue = call(
            &[
                (
                    "/voice/incoming",
                    r#"<Dial action="/after"><Queue>support</Queue></Dial>"#,
                ),
                ("/after", "<Hangup/>"),
            ],
            &[],
        );
        assert!(queue.hears("[dial queue support]"), "{}", queue.transcript);
        assert_eq!(
            param(queue.request_to("/after"), "DialCallStatus"),
            Some("no-answer")
        );
    }

    #[test]
    fn verbs_not_allowed_on_hold_are_reported() {
        let outcome = call(
            &[
                ("/voice/incoming", r#"<Enqueue waitUrl="/hold">q</Enqueue>"#),
                ("/hold", "<Dial>+15550100</Dial><Hangup/>"),
            ],
            &[],
        );
        assert!(outcome.hears("[unsupported <Dial> while waiting]"));
        assert_eq!(outcome.ended(), &EndReason::Hangup);
    }

    #[test]
    fn unsupported_verbs_are_printed_and_skipped() {
        let outcome = call(
            &[(
                "/voice/incoming",
                "<Reject/><Sms>hi</Sms><Leave/><Say>Still here</Say>",
            )],
            &[],
        );
        assert!(outcome.hears("  [unsupported <Reject>]"));
        assert!(outcome.hears("  [unsupported <Sms>]"));
        assert!(outcome.hears("[leave: ignored"));
        assert!(outcome.hears("Still here"));
    }

    #[test]
    fn malformed_twiml_is_reported_with_its_url() {
        let mut transport = Canned::default();
        transport.answer("/voice/incoming", 200, "<Response><Say>oops</Response>");
        let outcome = call_on(transport, &[], |_| {});
        let error = outcome.error();
        assert!(matches!(error, CallError::Malformed { .. }), "{error:?}");
        let shown = error.to_string();
        assert!(
            shown.starts_with("malformed TwiML from http://line.test/voice/incoming: "),
            "{shown}"
        );
        // The call still ends properly on the server's side.
        assert_eq!(outcome.paths().last().unwrap(), STATUS_PATH);
    }

    #[test]
    fn a_non_2xx_answer_is_reported_with_the_url_and_status() {
        let mut transport = Canned::new(&[("/voice/incoming", r#"<Gather action="/g"/>"#)]);
        transport.answer("/g", 500, "boom\nstack trace");
        let outcome = call_on(transport, &["1#"], |_| {});
        assert_eq!(
            outcome.error().to_string(),
            "POST http://line.test/g: the server answered 500 Internal Server Error: boom"
        );
    }

    #[test]
    fn a_server_that_does_not_answer_is_reported() {
        let mut transport = Canned::default();
        transport.pages.insert(
            format!("{BASE}/voice/incoming"),
            Err("connection refused".into()),
        );
        let outcome = call_on(transport, &[], |_| {});
        assert_eq!(
            outcome.error().to_string(),
            "POST http://line.test/voice/incoming: no answer: connection refused"
        );
    }

    #[test]
    fn a_redirect_loop_stops_at_the_document_limit() {
        let outcome = call_on(
            Canned::new(&[("/voice/incoming", "<Redirect>/voice/incoming</Redirect>")]),
            &[],
            |setup| setup.max_documents = 5,
        );
        assert_eq!(outcome.ended(), &EndReason::TooManyDocuments);
        assert_eq!(outcome.sent.len(), 6, "5 documents and the status callback");
    }

    #[test]
    fn every_request_is_signed_and_carries_the_standard_parameters() {
        let outcome = call(
            &[
                ("/voice/incoming", r#"<Gather action="/g"/>"#),
                ("/g", r#"<Enqueue waitUrl="/hold">q</Enqueue>"#),
                ("/hold", "<Say>Hold</Say>"),
            ],
            &["1#"],
        );
        assert_eq!(outcome.sent.len(), 4, "{:?}", outcome.paths());
        let sid = &outcome.setup.call_sid;
        assert!(sid.len() == 34 && sid.starts_with("CA"), "{sid}");
        assert!(
            sid[2..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        for request in &outcome.sent {
            assert!(
                crate::signature::is_valid(
                    TOKEN.as_bytes(),
                    &request.url,
                    &request.form,
                    &request.signature
                ),
                "{}",
                request.url
            );
            assert!(!crate::signature::is_valid(
                b"another-token",
                &request.url,
                &request.form,
                &request.signature
            ));
            for (name, value) in [
                ("AccountSid", crate::softphone::ACCOUNT_SID),
                ("CallSid", sid.as_str()),
                ("From", crate::softphone::DEFAULT_FROM),
                ("To", crate::softphone::DEFAULT_TO),
                ("Direction", "inbound"),
                ("ApiVersion", "2010-04-01"),
            ] {
                assert_eq!(param(request, name), Some(value), "{}", request.url);
            }
        }
        let statuses: Vec<_> = outcome
            .sent
            .iter()
            .map(|r| param(r, "CallStatus").unwrap())
            .collect();
        assert_eq!(
            statuses,
            ["in-progress", "in-progress", "in-progress", "completed"]
        );
    }

    #[test]
    fn every_call_gets_a_fresh_call_sid() {
        let first = CallSetup::new("http://x.test/voice/incoming", TOKEN).unwrap();
        let second = CallSetup::new("http://x.test/voice/incoming", TOKEN).unwrap();
        assert_ne!(first.call_sid, second.call_sid);
    }

    #[test]
    fn only_absolute_http_urls_can_be_called() {
        for url in ["/voice/incoming", "ftp://x.test/voice", "not a url"] {
            let refused = CallSetup::new(url, TOKEN).unwrap_err();
            assert!(matches!(refused, CallError::BadUrl { .. }), "{url}");
        }
    }
}
