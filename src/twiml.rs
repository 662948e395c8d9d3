//! A small model of the TwiML documents this server sends back to Twilio.
//!
//! A call is steered by answering each voice webhook with a `<Response>`
//! holding a list of verbs (`<Say>`, `<Gather>`, `<Dial>`, ...). Only the
//! verbs and attributes the phone line uses are modelled, with attribute
//! names spelled exactly as Twilio documents them. Rendering goes through
//! quick-xml, which escapes text and attribute values, so prompt text and
//! URLs never need escaping by hand; characters XML cannot carry at all
//! are left out, so any text renders to a well-formed document.

use std::borrow::Cow;
use std::io;

use quick_xml::Writer;
use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// The `Content-Type` Twilio expects on a TwiML webhook answer.
pub const CONTENT_TYPE: &str = "text/xml";

/// Turns a string of digits into text that speech engines read one digit
/// at a time, e.g. `"123456"` becomes `"1, 2, 3, 4, 5, 6"`.
///
/// Left alone, Amazon Polly reads `123456` as "one hundred twenty-three
/// thousand ...", and digits separated only by spaces may still be grouped
/// as a number, year or phone number by the text normaliser. A comma after
/// every digit stops that and adds a short pause, which also gives the
/// caller time to write the digits down. Whitespace in the input is
/// dropped; any other character (e.g. a letter in a reference code) is
/// spoken on its own like a digit.
pub fn speak_digits(digits: &str) -> String {
    let mut spoken = String::with_capacity(digits.len() * 3);
    for ch in digits.chars().filter(|ch| !ch.is_whitespace()) {
        if !spoken.is_empty() {
            spoken.push_str(", ");
        }
        spoken.push(ch);
    }
    spoken
}

/// A complete TwiML document: the verbs Twilio executes in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The verbs, in the order Twilio runs them.
    pub verbs: Vec<Verb>,
}

impl Response {
    /// An empty response; Twilio hangs up after running it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a verb in place, for responses built up conditionally.
    pub fn push(&mut self, verb: impl Into<Verb>) -> &mut Self {
        self.verbs.push(verb.into());
        self
    }

    /// Appends any verb (builder style).
    pub fn verb(mut self, verb: impl Into<Verb>) -> Self {
        self.push(verb);
        self
    }

    /// Appends a `<Say>`.
    pub fn say(self, say: Say) -> Self {
        self.verb(say)
    }

    /// Appends a `<Play>`.
    pub fn play(self, play: Play) -> Self {
        self.verb(play)
    }

    /// Appends a `<Pause>` of `seconds`.
    pub fn pause(self, seconds: u32) -> Self {
        self.verb(Pause::new(seconds))
    }

    /// Appends a `<Gather>`.
    pub fn gather(self, gather: Gather) -> Self {
        self.verb(gather)
    }

    /// Appends a `<Redirect>`.
    pub fn redirect(self, redirect: Redirect) -> Self {
        self.verb(redirect)
    }

    /// Appends a `<Hangup>`.
    pub fn hangup(self) -> Self {
        self.verb(Verb::Hangup)
    }

    /// Appends an `<Enqueue>`.
    pub fn enqueue(self, enqueue: Enqueue) -> Self {
        self.verb(enqueue)
    }

    /// Appends a `<Dial>`.
    pub fn dial(self, dial: Dial) -> Self {
        self.verb(dial)
    }

    /// Serialises the document, starting with the XML declaration.
    pub fn render(&self) -> String {
        let mut writer = Writer::new(Vec::new());
        // `io::Write for Vec<u8>` never returns an error (running out of
        // memory aborts instead), so this branch cannot be taken.
        self.write_document(&mut writer)
            .expect("writing TwiML into a Vec<u8> cannot fail");
        let bytes = writer.into_inner();
        // Every byte written came from a `&str`, so the buffer is UTF-8; the
        // lossy fallback only keeps this function free of panics.
        String::from_utf8(bytes)
            .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
    }

    fn write_document(&self, w: &mut Sink) -> io::Result<()> {
        let decl = BytesDecl::new("1.0", Some("UTF-8"), None);
        w.write_event(Event::Decl(decl))?;
        let empty = self.verbs.is_empty();
        write_parent(w, BytesStart::new("Response"), empty, |w| {
            self.verbs.iter().try_for_each(|verb| verb.write(w))
        })
    }
}

/// One top-level TwiML verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// `<Say>`: speak text.
    Say(Say),
    /// `<Play>`: play an audio file.
    Play(Play),
    /// `<Pause>`: stay silent for a while.
    Pause(Pause),
    /// `<Gather>`: collect keypad digits while prompting.
    Gather(Gather),
    /// `<Redirect>`: fetch the next TwiML from another URL.
    Redirect(Redirect),
    /// `<Hangup>`: end the call.
    Hangup,
    /// `<Enqueue>`: put the caller in a call queue.
    Enqueue(Enqueue),
    /// `<Dial>`: connect the caller to a conference or queue.
    Dial(Dial),
}

impl Verb {
    fn write(&self, w: &mut Sink) -> io::Result<()> {
        match self {
            Verb::Say(say) => say.write(w),
            Verb::Play(play) => play.write(w),
            Verb::Pause(pause) => pause.write(w),
            Verb::Gather(gather) => gather.write(w),
            Verb::Redirect(redirect) => redirect.write(w),
            Verb::Hangup => write_empty(w, "Hangup", &[]),
            Verb::Enqueue(enqueue) => enqueue.write(w),
            Verb::Dial(dial) => dial.write(w),
        }
    }
}

/// The HTTP method Twilio uses to request a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
}

impl Method {
    /// The attribute value Twilio expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// `<Say>`: text read by Twilio's text-to-speech.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Say {
    /// What to say.
    pub text: String,
    /// `voice`, e.g. `Polly.Joanna`; Twilio's default when `None`.
    pub voice: Option<String>,
    /// `language`, e.g. `en-US`; Twilio's default when `None`.
    pub language: Option<String>,
}

impl Say {
    /// A `<Say>` in Twilio's default voice and language.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            voice: None,
            language: None,
        }
    }

    /// Sets the `voice` attribute.
    pub fn voice(mut self, voice: impl Into<String>) -> Self {
        self.voice = Some(voice.into());
        self
    }

    /// Sets the `language` attribute.
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    fn write(&self, w: &mut Sink) -> io::Result<()> {
        let attrs = [
            ("voice", self.voice.clone()),
            ("language", self.language.clone()),
        ];
        write_text(w, "Say", &attrs, &self.text)
    }
}

/// `<Play>`: an audio file fetched and played by Twilio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    /// The audio URL.
    pub url: String,
    /// `loop`: how many times to play; `0` repeats until the call moves on.
    pub loop_count: Option<u32>,
}

impl Play {
    /// Plays `url` once.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            loop_count: None,
        }
    }

    /// Sets the `loop` attribute.
    pub fn loop_count(mut self, count: u32) -> Self {
        self.loop_count = Some(count);
        self
    }

    fn write(&self, w: &mut Sink) -> io::Result<()> {
        let attrs = [("loop", self.loop_count.map(|n| n.to_string()))];
        write_text(w, "Play", &attrs, &self.url)
    }
}

/// `<Pause>`: silence for a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// `length` in seconds.
    pub length: u32,
}

impl Pause {
    /// A pause of `seconds`.
    pub fn new(seconds: u32) -> Self {
        Self { length: seconds }
    }

    fn write(&self, w: &mut Sink) -> io::Result<()> {
        write_empty(w, "Pause", &[("length", Some(self.length.to_string()))])
    }
}

/// `<Gather>`: plays its children while collecting keypad digits, then
/// POSTs them to `action`.
///
/// Input is always DTMF only, the method always `POST`, and
/// `actionOnEmptyResult` always `true`: without it, a silent caller would
/// fall through to the next verb instead of reaching the server, and the
/// server could not count no-input attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gather {
    /// `action`: where the digits are posted.
    pub action: String,
    /// `numDigits`: submit as soon as this many digits are entered.
    pub num_digits: Option<u32>,
    /// `finishOnKey`: the key that submits early (`""` disables it).
    pub finish_on_key: Option<String>,
    /// `timeout`: seconds of silence before submitting.
    pub timeout: Option<u32>,
    /// What the caller hears while Twilio listens.
    pub children: Vec<GatherChild>,
}

impl Gather {
    /// A gather posting to `action`, with no prompt yet.
    pub fn new(action: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            num_digits: None,
            finish_on_key: None,
            timeout: None,
            children: Vec::new(),
        }
    }

    /// Sets `numDigits`.
    pub fn num_digits(mut self, count: u32) -> Self {
        self.num_digits = Some(count);
        self
    }

    /// Sets `finishOnKey`.
    pub fn finish_on_key(mut self, key: impl Into<String>) -> Self {
        self.finish_on_key = Some(key.into());
        self
    }

    /// Sets `timeout` in seconds.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout = Some(seconds);
        self
    }

    /// Appends a nested `<Say>`, `<Play>` or `<Pause>`.
    pub fn child(mut self, child: impl Into<GatherChild>) -> Self {
        self.children.push(child.into());
        self
    }

    fn write(&self, w: &mut Sink) -> io::Result<()> {
        let attrs = [
            ("input", Some("dtmf".to_owned())),
            ("action", Some(self.action.clone())),
            ("method", Some(Method::Post.as_str().to_owned())),
            ("numDigits", self.num_digits.map(|n| n.to_string())),
            ("finishOnKey", self.finish_on_key.clone()),
            ("timeout", self.timeout.map(|n| n.to_string())),
            ("actionOnEmptyResult", Some("true".to_owned())),
        ];
        let empty = self.children.is_empty();
        write_parent(w, start("Gather", &attrs), empty, |w| {
            self.children.iter().try_for_each(|child| child.write(w))
        })
    }
}

/// A verb Twilio allows inside `<Gather>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatherChild {
    /// Nested `<Say>`.
    Say(Say),
    /// Nested `<Play>`.
    Play(Play),
    /// Nested `<Pause>`.
    Pause(Pause),
}

impl GatherChild {
    fn write(&self, w: &mut Sink) -> io::Result<()> {
        match self {
            GatherChild::Say(say) => say.write(w),
            GatherChild::Play(play) => play.write(w),
            GatherChild::Pause(pause) => pause.write(w),
        }
    }
}

/// `<Redirect>`: continue the call with TwiML from another URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The URL to fetch.
    pub url: String,
    /// `method` used to fetch it.
    pub method: Method,
}

impl Redirect {
    /// Redirects to `url` with `method`.
    pub fn new(url: impl Into<String>, method: Method) -> Self {
        Self {
            url: url.into(),
            method,
        }
    }

    fn write(&self, w: &mut Sink) -> io::Result<()> {
        let attrs = [("method", Some(self.method.as_str().to_owned()))];
        write_text(w, "Redirect", &attrs, &self.url)
    }
}

/// `<Enqueue>`: place the caller in a named queue until an agent answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueue {
    /// The queue name.
    pub queue: String,
    /// `waitUrl`: TwiML (usually hold music) run while waiting.
    pub wait_url: Option<String>,
    /// `action`: requested when the caller leaves the queue.
    pub action: Option<String>,
    /// `method` used for `action`.
    pub method: Option<Method>,
}

impl Enqueue {
    /// Enqueues into `queue` with Twilio's default hold music.
    pub fn new(queue: impl Into<String>) -> Self {
        Self {
            queue: queue.into(),
            wait_url: None,
            action: None,
            method: None,
        }
    }

    /// Sets `waitUrl`.
    pub fn wait_url(mut self, url: impl Into<String>) -> Self {
        self.wait_url = Some(url.into());
        self
    }

    /// Sets `action` and the `method` used to request it.
    pub fn action(mut self, url: impl Into<String>, method: Method) -> Self {
        self.action = Some(url.into());
        self.method = Some(method);
        self
    }

    fn write(&self, w: &mut Sink) -> io::Result<()> {
        let attrs = [
            ("waitUrl", self.wait_url.clone()),
            ("action", self.action.clone()),
            ("method", self.method.map(|m| m.as_str().to_owned())),
        ];
        write_text(w, "Enqueue", &attrs, &self.queue)
    }
}

/// `<Dial>`: connect the caller to a conference room or a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// `action`: requested when the dialled leg ends.
    pub action: Option<String>,
    /// `timeout`: seconds to wait for an answer.
    pub timeout: Option<u32>,
    /// Who to connect to.
    pub target: DialTarget,
}

impl Dial {
    /// Dials `target` with Twilio's defaults.
    pub fn new(target: impl Into<DialTarget>) -> Self {
        Self {
            action: None,
            timeout: None,
            target: target.into(),
        }
    }

    /// Sets `action`.
    pub fn action(mut self, url: impl Into<String>) -> Self {
        self.action = Some(url.into());
        self
    }

    /// Sets `timeout` in seconds.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout = Some(seconds);
        self
    }

    fn write(&self, w: &mut Sink) -> io::Result<()> {
        let attrs = [
            ("action", self.action.clone()),
            ("timeout", self.timeout.map(|n| n.to_string())),
        ];
        write_parent(w, start("Dial", &attrs), false, |w| match &self.target {
            DialTarget::Conference(conference) => conference.write(w),
            DialTarget::Queue(queue) => queue.write(w),
        })
    }
}

/// The noun nested in a `<Dial>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// `<Conference>`.
    Conference(Conference),
    /// `<Queue>`.
    Queue(Queue),
}

impl From<Conference> for DialTarget {
    fn from(conference: Conference) -> Self {
        DialTarget::Conference(conference)
    }
}

impl From<Queue> for DialTarget {
    fn from(queue: Queue) -> Self {
        DialTarget::Queue(queue)
    }
}

/// When a `<Conference>` beeps as participants come and go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beep {
    /// `true`: on enter and on exit.
    Always,
    /// `false`: never.
    Never,
    /// `onEnter`.
    OnEnter,
    /// `onExit`.
    OnExit,
}

impl Beep {
    /// The attribute value Twilio expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Beep::Always => "true",
            Beep::Never => "false",
            Beep::OnEnter => "onEnter",
            Beep::OnExit => "onExit",
        }
    }
}

/// `<Conference>` inside `<Dial>`: a named room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    /// The room name.
    pub room: String,
    /// `waitUrl`: TwiML run until the conference starts (`""` for silence).
    pub wait_url: Option<String>,
    /// `startConferenceOnEnter`.
    pub start_conference_on_enter: Option<bool>,
    /// `endConferenceOnExit`.
    pub end_conference_on_exit: Option<bool>,
    /// `beep`.
    pub beep: Option<Beep>,
}

impl Conference {
    /// Joins `room` with Twilio's defaults.
    pub fn new(room: impl Into<String>) -> Self {
        Self {
            room: room.into(),
            wait_url: None,
            start_conference_on_enter: None,
            end_conference_on_exit: None,
            beep: None,
        }
    }

    /// Sets `waitUrl`.
    pub fn wait_url(mut self, url: impl Into<String>) -> Self {
        self.wait_url = Some(url.into());
        self
    }

    /// Sets `startConferenceOnEnter`.
    pub fn start_conference_on_enter(mut self, start: bool) -> Self {
        self.start_conference_on_enter = Some(start);
        self
    }

    /// Sets `endConferenceOnExit`.
    pub fn end_conference_on_exit(mut self, end: bool) -> Self {
        self.end_conference_on_exit = Some(end);
        self
    }

    /// Sets `beep`.
    pub fn beep(mut self, beep: Beep) -> Self {
        self.beep = Some(beep);
        self
    }

    fn write(&self, w: &mut Sink) -> io::Result<()> {
        let flag = |value: Option<bool>| value.map(|b| b.to_string());
        let attrs = [
            ("waitUrl", self.wait_url.clone()),
            (
                "startConferenceOnEnter",
                flag(self.start_conference_on_enter),
            ),
            ("endConferenceOnExit", flag(self.end_conference_on_exit)),
            ("beep", self.beep.map(|b| b.as_str().to_owned())),
        ];
        write_text(w, "Conference", &attrs, &self.room)
    }
}

/// `<Queue>` inside `<Dial>`: answer the caller at the head of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// The queue name.
    pub name: String,
    /// `url`: TwiML played to the dequeued caller before connecting.
    pub url: Option<String>,
}

impl Queue {
    /// Dequeues from `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: None,
        }
    }

    /// Sets `url`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    fn write(&self, w: &mut Sink) -> io::Result<()> {
        write_text(w, "Queue", &[("url", self.url.clone())], &self.name)
    }
}

macro_rules! verb_from {
    ($($ty:ident),*) => {
        $(impl From<$ty> for Verb {
            fn from(value: $ty) -> Self {
                Verb::$ty(value)
            }
        })*
    };
}

verb_from!(Say, Play, Pause, Gather, Redirect, Enqueue, Dial);

impl From<Say> for GatherChild {
    fn from(say: Say) -> Self {
        GatherChild::Say(say)
    }
}

impl From<Play> for GatherChild {
    fn from(play: Play) -> Self {
        GatherChild::Play(play)
    }
}

impl From<Pause> for GatherChild {
    fn from(pause: Pause) -> Self {
        GatherChild::Pause(pause)
    }
}

/// Every gather child is also valid at the top level, so prompts built
/// for a `<Gather>` can be spoken on their own too.
impl From<GatherChild> for Verb {
    fn from(child: GatherChild) -> Self {
        match child {
            GatherChild::Say(say) => Verb::Say(say),
            GatherChild::Play(play) => Verb::Play(play),
            GatherChild::Pause(pause) => Verb::Pause(pause),
        }
    }
}

type Sink = Writer<Vec<u8>>;

/// Attributes in document order; `None` values are left out, so optional
/// attributes need no special casing at the call sites.
type Attrs<'a> = [(&'a str, Option<String>)];

fn start<'a>(name: &'a str, attrs: &Attrs<'_>) -> BytesStart<'a> {
    let mut element = BytesStart::new(name);
    for (key, value) in attrs {
        if let Some(value) = value {
            element.push_attribute((*key, xml_chars(value).as_ref()));
        }
    }
    element
}

/// XML 1.0 cannot carry most C0 control characters, U+FFFE or U+FFFF,
/// not even as character references: one of them makes the whole answer
/// malformed, and the provider drops the call with an application error.
/// Speech and URLs have no use for them, and names read out in prompts
/// come from the database, which does not keep them out, so they are left
/// out here.
fn xml_chars(text: &str) -> Cow<'_, str> {
    if text.chars().all(is_xml_char) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().filter(|c| is_xml_char(*c)).collect())
    }
}

fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..)
}

fn write_empty(w: &mut Sink, name: &str, attrs: &Attrs<'_>) -> io::Result<()> {
    w.write_event(Event::Empty(start(name, attrs)))
}

fn write_text(w: &mut Sink, name: &str, attrs: &Attrs<'_>, text: &str) -> io::Result<()> {
    w.write_event(Event::Start(start(name, attrs)))?;
    // Only `<`, `>` and `&` need escaping in element text; leaving quotes
    // and apostrophes as they are keeps the prompts readable in logs and
    // fixtures.
    w.write_event(Event::Text(BytesText::from_escaped(partial_escape(
        xml_chars(text),
    ))))?;
    w.write_event(Event::End(BytesEnd::new(name)))
}

/// Writes `element` around whatever `children` writes; with `empty` set it
/// collapses to `<Name/>` instead, keeping the output minimal.
fn write_parent(
    w: &mut Sink,
    element: BytesStart<'_>,
    empty: bool,
    children: impl FnOnce(&mut Sink) -> io::Result<()>,
) -> io::Result<()> {
    if empty {
        return w.write_event(Event::Empty(element));
    }
    let end = element.to_end().into_owned();
    w.write_event(Event::Start(element))?;
    children(w)?;
    w.write_event(Event::End(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

    /// Renders `verb` alone and strips the declaration and `<Response>`
    /// wrapper, so each test compares just the verb.
    fn render_one(verb: impl Into<Verb>) -> String {
        let xml = Response::new().verb(verb).render();
        let body = xml
            .strip_prefix(DECL)
            .and_then(|rest| rest.strip_prefix("<Response>"))
            .and_then(|rest| rest.strip_suffix("</Response>"));
        body.unwrap_or_else(|| panic!("unexpected document: {xml}"))
            .to_owned()
    }

    #[test]
    fn an_empty_response_is_a_declaration_and_an_empty_root() {
        assert_eq!(Response::new().render(), format!("{DECL}<Response/>"));
    }

    #[test]
    fn verbs_render_inside_the_root_in_order() {
        let xml = Response::new().say(Say::new("Bye")).hangup().render();
        assert_eq!(
            xml,
            format!("{DECL}<Response><Say>Bye</Say><Hangup/></Response>")
        );
    }

    #[test]
    fn push_appends_in_place() {
        let mut response = Response::new();
        response.push(Verb::Hangup).push(Pause::new(1));
        assert_eq!(
            response.verbs,
            vec![Verb::Hangup, Verb::Pause(Pause::new(1))]
        );
    }

    #[test]
    fn say_renders_voice_and_language() {
        let say = Say::new("Hello").voice("Polly.Joanna").language("en-US");
        assert_eq!(
            render_one(say),
            r#"<Say voice="Polly.Joanna" language="en-US">Hello</Say>"#
        );
    }

    #[test]
    fn say_without_options_has_no_attributes() {
        assert_eq!(render_one(Say::new("Hi")), "<Say>Hi</Say>");
    }

    #[test]
    fn play_renders_the_url_and_loop() {
        let play = Play::new("https://example.com/a.mp3").loop_count(2);
        assert_eq!(
            render_one(play),
            r#"<Play loop="2">https://example.com/a.mp3</Play>"#
        );
    }

    #[test]
    fn pause_renders_its_length() {
        assert_eq!(render_one(Pause::new(3)), r#"<Pause length="3"/>"#);
    }

    #[test]
    fn gather_renders_fixed_and_optional_attributes_with_children() {
        let gather = Gather::new("/voice/user-id")
            .num_digits(4)
            .finish_on_key("#")
            .timeout(7)
            .child(Say::new("Enter it"))
            .child(Pause::new(1))
            .child(Play::new("https://example.com/b.mp3"));
        assert_eq!(
            render_one(gather),
            concat!(
                r#"<Gather input="dtmf" action="/voice/user-id" method="POST" "#,
                r##"numDigits="4" finishOnKey="#" timeout="7" "##,
                r#"actionOnEmptyResult="true">"#,
                "<Say>Enter it</Say>",
                r#"<Pause length="1"/>"#,
                "<Play>https://example.com/b.mp3</Play>",
                "</Gather>"
            )
        );
    }

    #[test]
    fn gather_without_children_or_options_is_an_empty_element() {
        assert_eq!(
            render_one(Gather::new("/g")),
            concat!(
                r#"<Gather input="dtmf" action="/g" method="POST" "#,
                r#"actionOnEmptyResult="true"/>"#
            )
        );
    }

    #[test]
    fn gather_can_disable_finish_on_key_with_an_empty_value() {
        let xml = render_one(Gather::new("/g").finish_on_key(""));
        assert!(xml.contains(r#" finishOnKey="" "#), "{xml}");
    }

    #[test]
    fn redirect_renders_url_and_method() {
        assert_eq!(
            render_one(Redirect::new("/voice/start", Method::Post)),
            r#"<Redirect method="POST">/voice/start</Redirect>"#
        );
        assert_eq!(
            render_one(Redirect::new("/x", Method::Get)),
            r#"<Redirect method="GET">/x</Redirect>"#
        );
    }

    #[test]
    fn hangup_is_an_empty_element() {
        assert_eq!(render_one(Verb::Hangup), "<Hangup/>");
    }

    #[test]
    fn enqueue_renders_queue_name_and_options() {
        let enqueue = Enqueue::new("support")
            .wait_url("/voice/hold")
            .action("/voice/left-queue", Method::Post);
        assert_eq!(
            render_one(enqueue),
            concat!(
                r#"<Enqueue waitUrl="/voice/hold" action="/voice/left-queue" "#,
                r#"method="POST">support</Enqueue>"#
            )
        );
        assert_eq!(render_one(Enqueue::new("q")), "<Enqueue>q</Enqueue>");
    }

    #[test]
    fn dial_renders_a_nested_conference() {
        let conference = Conference::new("room-42")
            .wait_url("")
            .start_conference_on_enter(true)
            .end_conference_on_exit(false)
            .beep(Beep::OnEnter);
        let dial = Dial::new(conference).action("/voice/dial-done").timeout(20);
        assert_eq!(
            render_one(dial),
            concat!(
                r#"<Dial action="/voice/dial-done" timeout="20">"#,
                r#"<Conference waitUrl="" startConferenceOnEnter="true" "#,
                r#"endConferenceOnExit="false" beep="onEnter">room-42</Conference>"#,
                "</Dial>"
            )
        );
    }

    #[test]
    fn dial_renders_a_nested_queue() {
        let dial = Dial::new(Queue::new("support").url("/voice/whisper"));
        assert_eq!(
            render_one(dial),
            r#"<Dial><Queue url="/voice/whisper">support</Queue></Dial>"#
        );
    }

    #[test]
    fn beep_values_match_twilio() {
        let values = [Beep::Always, Beep::Never, Beep::OnEnter, Beep::OnExit].map(Beep::as_str);
        assert_eq!(values, ["true", "false", "onEnter", "onExit"]);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            render_one(Say::new(r#"Tom & "Jerry" <3"#)),
            r#"<Say>Tom &amp; "Jerry" &lt;3</Say>"#
        );
    }

    #[test]
    fn attribute_values_are_escaped() {
        let play = Play::new("https://e.com/?a=1&b=<2>");
        assert_eq!(
            render_one(play),
            "<Play>https://e.com/?a=1&amp;b=&lt;2&gt;</Play>"
        );
        let say = Say::new("x").voice(r#"a"b&c<d"#);
        assert_eq!(
            render_one(say),
            r#"<Say voice="a&quot;b&amp;c&lt;d">x</Say>"#
        );
    }

    #[test]
    fn characters_xml_cannot_carry_are_left_out() {
        let say = Say::new("A\u{0}B\u{7}C\u{1b}D\u{fffe}E\u{ffff}F\tG\nH").voice("P\u{1}x");
        assert_eq!(render_one(say), "<Say voice=\"Px\">ABCDEF\tG\nH</Say>");
    }

    #[test]
    fn non_ascii_text_passes_through_as_utf8() {
        let say = Say::new("Para español, oprima nueve. ¿Sí? 🙂").language("es-US");
        assert_eq!(
            render_one(say),
            r#"<Say language="es-US">Para español, oprima nueve. ¿Sí? 🙂</Say>"#
        );
    }

    #[test]
    fn gather_children_convert_to_top_level_verbs() {
        let child = GatherChild::from(Say::new("a"));
        assert_eq!(Verb::from(child), Verb::Say(Say::new("a")));
    }

    #[test]
    fn speak_digits_separates_every_digit_with_a_comma() {
        assert_eq!(speak_digits("123456"), "1, 2, 3, 4, 5, 6");
        assert_eq!(speak_digits("7"), "7");
        assert_eq!(speak_digits(""), "");
        assert_eq!(speak_digits(" 12 3 "), "1, 2, 3");
    }

    #[test]
    fn content_type_is_text_xml() {
        assert_eq!(CONTENT_TYPE, "text/xml");
    }
}
