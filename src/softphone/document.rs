//! Reading a TwiML document into the verbs the softphone runs.
//!
//! Parsing happens in two passes: quick-xml's reader builds a small element
//! tree (so well-formedness is checked once, in one place), then each
//! element becomes a [`Verb`] with its attributes checked and Twilio's
//! defaults filled in. Attribute and verb names are case-sensitive, as they
//! are at Twilio. Unknown verbs are kept as [`Verb::Unsupported`] so the
//! executor can say so instead of skipping them silently; a bad attribute
//! value is an error, because a document the softphone had to guess about
//! is one Twilio may refuse.

use std::fmt;

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};

use crate::twiml::Method;

/// Seconds a `<Gather>` waits for a key when it names no `timeout`.
pub const DEFAULT_GATHER_TIMEOUT_SECS: u32 = 5;

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

impl ParseError {
    fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// A parsed `<Response>`: its verbs in the order Twilio runs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The verbs, in order.
    pub verbs: Vec<Verb>,
}

/// One TwiML verb, with Twilio's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// `<Say>`: speak text.
    Say(Say),
    /// `<Play>`: play an audio file or DTMF tones.
    Play(Play),
    /// `<Pause length>`: silence, in seconds (default 1).
    Pause(u32),
    /// `<Gather>`: collect keys while prompting.
    Gather(Gather),
    /// `<Redirect>`: continue with the TwiML at another URL.
    Redirect(Redirect),
    /// `<Hangup>`: end the call.
    Hangup,
    /// `<Leave>`: leave the queue the call waits in.
    Leave,
    /// `<Enqueue>`: wait in a queue for an agent.
    Enqueue(Enqueue),
    /// `<Dial>`: connect to a conference, a queue or another phone.
    Dial(Dial),
    /// A verb the softphone does not run, by its element name.
    Unsupported(String),
}

impl Verb {
    /// The element name, e.g. `Say`.
    pub fn name(&self) -> &str {
        match self {
            Verb::Say(_) => "Say",
            Verb::Play(_) => "Play",
            Verb::Pause(_) => "Pause",
            Verb::Gather(_) => "Gather",
            Verb::Redirect(_) => "Redirect",
            Verb::Hangup => "Hangup",
            Verb::Leave => "Leave",
            Verb::Enqueue(_) => "Enqueue",
            Verb::Dial(_) => "Dial",
            Verb::Unsupported(name) => name,
        }
    }
}

/// `<Say>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Say {
    /// The text, SSML tags removed and whitespace collapsed.
    pub text: String,
    /// `language` (default `en-US`).
    pub language: String,
    /// `loop`: how many times it is spoken; 0 means until the call moves on.
    pub loops: u32,
}

/// `<Play>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    /// The audio URL as written (may be relative, may be empty with `digits`).
    pub url: String,
    /// `digits`: DTMF tones to play instead of audio.
    pub digits: Option<String>,
    /// `loop`: how many times it plays; 0 means until the call moves on.
    pub loops: u32,
}

/// `<Gather>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gather {
    /// `action` as written; `None` means the current document's URL.
    pub action: Option<String>,
    /// `method` (default POST).
    pub method: Method,
    /// `numDigits`: submit once this many keys are pressed.
    pub num_digits: Option<u32>,
    /// `finishOnKey` (default `#`); `None` when set to the empty string.
    pub finish_on_key: Option<char>,
    /// `timeout` in seconds (default 5).
    pub timeout_secs: u32,
    /// `actionOnEmptyResult`: post to the action even when nothing was
    /// pressed, instead of falling through to the next verb.
    pub action_on_empty_result: bool,
    /// Whether `input` includes `dtmf` (keys); speech alone cannot be given
    /// at a terminal.
    pub dtmf: bool,
    /// The nested verbs (Twilio allows `<Say>`, `<Play>` and `<Pause>`).
    pub children: Vec<Verb>,
}

/// `<Redirect>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The URL as written (may be relative).
    pub url: String,
    /// `method` (default POST).
    pub method: Method,
}

/// What a caller hears while waiting: a `waitUrl` and its method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// No `waitUrl`: Twilio's own hold music.
    Default,
    /// `waitUrl=""`: silence.
    Silence,
    /// TwiML to run, again and again, while waiting.
    Url {
        /// The URL as written (may be relative).
        url: String,
        /// How to request it (default POST).
        method: Method,
    },
}

/// `<Enqueue>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueue {
    /// The queue's name.
    pub queue: String,
    /// `action`: requested when the call leaves the queue.
    pub action: Option<String>,
    /// `method` for the action (default POST).
    pub method: Method,
    /// `waitUrl` and `waitUrlMethod`.
    pub hold: Hold,
}

/// `<Dial>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// `action`: requested when the dialled party hangs up or never answers.
    pub action: Option<String>,
    /// `method` for the action (default POST).
    pub method: Method,
    /// What to dial: nested nouns, or the text as a phone number.
    pub targets: Vec<DialTarget>,
}

/// One noun inside `<Dial>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// `<Conference>`: a named room, with its `waitUrl` and `waitMethod`.
    Conference {
        /// The room name.
        room: String,
        /// What plays until someone else joins.
        hold: Hold,
    },
    /// `<Queue>`: answer the caller waiting longest in a queue.
    Queue(String),
    /// `<Number>` or plain text: a phone number.
    Number(String),
    /// `<Client>`, `<Sip>` or another noun: by its element name and text.
    Other {
        /// The noun's element name.
        noun: String,
        /// Its text.
        text: String,
    },
}

/// Parses a TwiML document. The root must be `<Response>`.
pub fn parse(xml: &str) -> Result<Document, ParseError> {
    let root = read_tree(xml)?;
    if root.name != "Response" {
        return Err(ParseError::new(format!(
            "the root element is <{}>, not <Response>",
            root.name
        )));
    }
    no_loose_text(&root)?;
    let verbs = root.elements().map(verb).collect::<Result<_, _>>()?;
    Ok(Document { verbs })
}

/// An XML element, before it means anything as TwiML.
#[derive(Debug)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    Element(Element),
    Text(String),
}

fn read_tree(xml: &str) -> Result<Element, ParseError> {
    let mut reader = Reader::from_str(xml);
    let mut tree = Tree::default();
    loop {
        let event = reader.read_event().map_err(|e| {
            ParseError::new(format!(
                "not well-formed XML (at byte {}): {e}",
                reader.error_position()
            ))
        })?;
        match event {
            Event::Start(start) => tree.open(element(&start)?),
            Event::Empty(start) => tree.close(element(&start)?)?,
            Event::End(_) => tree.end()?,
            Event::Text(text) => tree.text(&text.xml10_content())?,
            Event::CData(data) => tree.text(&data.xml10_content())?,
            Event::GeneralRef(reference) => tree.text(&resolve_reference(&reference)?)?,
            Event::Eof => return tree.finish(),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
}

/// The elements still open, and the root once it has closed.
#[derive(Default)]
struct Tree {
    open: Vec<Element>,
    root: Option<Element>,
}

impl Tree {
    fn open(&mut self, element: Element) {
        self.open.push(element);
    }

    fn end(&mut self) -> Result<(), ParseError> {
        // quick-xml checks that end tags match their start tags.
        let element = self
            .open
            .pop()
            .ok_or_else(|| ParseError::new("an end tag without a start tag"))?;
        self.close(element)
    }

    fn close(&mut self, element: Element) -> Result<(), ParseError> {
        match self.open.last_mut() {
            Some(parent) => parent.children.push(Node::Element(element)),
            None if self.root.is_some() => {
                return Err(ParseError::new(format!(
                    "a second root element <{}> after </Response>",
                    element.name
                )));
            }
            None => self.root = Some(element),
        }
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), ParseError> {
        match self.open.last_mut() {
            Some(parent) => parent.children.push(Node::Text(text.to_owned())),
            None if text.trim().is_empty() => {}
            None => return Err(ParseError::new("text outside the root element")),
        }
        Ok(())
    }

    fn finish(self) -> Result<Element, ParseError> {
        if let Some(element) = self.open.last() {
            return Err(ParseError::new(format!(
                "the document ends inside <{}>",
                element.name
            )));
        }
        self.root
            .ok_or_else(|| ParseError::new("an empty document (no <Response>)"))
    }
}

fn element(start: &BytesStart<'_>) -> Result<Element, ParseError> {
    let name = start.name().as_ref().to_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| ParseError::new(format!("<{name}>: {e}")))?;
        let key = attr.key.as_ref().to_owned();
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| ParseError::new(format!("<{name} {key}>: {e}")))?;
        attrs.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
    })
}

/// `&amp;` and its four siblings, and character references; TwiML has no
/// DTD, so any other entity is an error.
fn resolve_reference(reference: &BytesRef<'_>) -> Result<String, ParseError> {
    let unknown = || ParseError::new(format!("unknown entity &{};", &**reference));
    if let Some(ch) = reference.resolve_char_ref().map_err(|_| unknown())? {
        return Ok(ch.to_string());
    }
    resolve_predefined_entity(reference)
        .map(str::to_owned)
        .ok_or_else(unknown)
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// All text inside, nested elements (SSML) included, with whitespace
    /// collapsed the way speech engines read it.
    fn text(&self) -> String {
        let mut raw = String::new();
        self.collect_text(&mut raw);
        raw.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn collect_text(&self, into: &mut String) {
        for node in &self.children {
            match node {
                Node::Text(text) => into.push_str(text),
                Node::Element(element) => {
                    // A tag like <break/> separates words.
                    into.push(' ');
                    element.collect_text(into);
                    into.push(' ');
                }
            }
        }
    }

    /// Only the element's own text, as for a phone number inside `<Dial>`.
    fn own_text(&self) -> String {
        let own: String = self
            .children
            .iter()
            .filter_map(|node| match node {
                Node::Text(text) => Some(text.as_str()),
                Node::Element(_) => None,
            })
            .collect();
        own.trim().to_owned()
    }

    fn invalid(&self, attr: &str, value: &str, expected: &str) -> ParseError {
        ParseError::new(format!(
            "<{} {attr}=\"{value}\">: expected {expected}",
            self.name
        ))
    }

    fn number(&self, attr: &str, default: u32) -> Result<u32, ParseError> {
        match self.attr(attr) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|_| self.invalid(attr, value, "a whole number")),
        }
    }

    fn flag(&self, attr: &str) -> Result<bool, ParseError> {
        match self.attr(attr).map(str::trim) {
            None => Ok(false),
            Some(value) if value.eq_ignore_ascii_case("true") => Ok(true),
            Some(value) if value.eq_ignore_ascii_case("false") => Ok(false),
            Some(value) => Err(self.invalid(attr, value, "true or false")),
        }
    }

    fn method(&self, attr: &str) -> Result<Method, ParseError> {
        match self.attr(attr).map(str::trim) {
            None => Ok(Method::Post),
            Some(value) if value.eq_ignore_ascii_case("POST") => Ok(Method::Post),
            Some(value) if value.eq_ignore_ascii_case("GET") => Ok(Method::Get),
            Some(value) => Err(self.invalid(attr, value, "GET or POST")),
        }
    }

    /// `waitUrl` and its method attribute, which Twilio names differently
    /// on `<Enqueue>` and `<Conference>`.
    fn hold(&self, method_attr: &str) -> Result<Hold, ParseError> {
        Ok(match self.attr("waitUrl").map(str::trim) {
            None => Hold::Default,
            Some("") => Hold::Silence,
            Some(url) => Hold::Url {
                url: url.to_owned(),
                method: self.method(method_attr)?,
            },
        })
    }
}

/// Text directly inside `<Response>` is not a verb; whitespace is fine.
fn no_loose_text(root: &Element) -> Result<(), ParseError> {
    for node in &root.children {
        if let Node::Text(text) = node
            && !text.trim().is_empty()
        {
            return Err(ParseError::new(format!(
                "text outside any verb: {:?}",
                text.trim()
            )));
        }
    }
    Ok(())
}

fn verb(element: &Element) -> Result<Verb, ParseError> {
    Ok(match element.name.as_str() {
        "Say" => Verb::Say(Say {
            text: element.text(),
            language: element.attr("language").unwrap_or("en-US").to_owned(),
            loops: element.number("loop", 1)?,
        }),
        "Play" => Verb::Play(Play {
            url: element.text(),
            digits: element.attr("digits").map(str::to_owned),
            loops: element.number("loop", 1)?,
        }),
        "Pause" => Verb::Pause(element.number("length", 1)?),
        "Gather" => Verb::Gather(gather(element)?),
        "Redirect" => Verb::Redirect(redirect(element)?),
        "Hangup" => Verb::Hangup,
        "Leave" => Verb::Leave,
        "Enqueue" => Verb::Enqueue(enqueue(element)?),
        "Dial" => Verb::Dial(dial(element)?),
        other => Verb::Unsupported(other.to_owned()),
    })
}

fn gather(element: &Element) -> Result<Gather, ParseError> {
    let num_digits = match element.attr("numDigits") {
        None => None,
        Some(value) => match value.trim().parse::<u32>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(element.invalid("numDigits", value, "a positive whole number")),
        },
    };
    let input = element.attr("input").unwrap_or("dtmf");
    Ok(Gather {
        action: element.attr("action").map(str::to_owned),
        method: element.method("method")?,
        num_digits,
        finish_on_key: finish_on_key(element)?,
        timeout_secs: element.number("timeout", DEFAULT_GATHER_TIMEOUT_SECS)?,
        action_on_empty_result: element.flag("actionOnEmptyResult")?,
        dtmf: input.split_whitespace().any(|kind| kind == "dtmf"),
        children: element.elements().map(verb).collect::<Result<_, _>>()?,
    })
}

/// One of `0-9`, `#` or `*`; the empty string turns the finish key off.
fn finish_on_key(element: &Element) -> Result<Option<char>, ParseError> {
    let Some(value) = element.attr("finishOnKey") else {
        return Ok(Some('#'));
    };
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (None, _) => Ok(None),
        (Some(key), None) if super::keypad::is_key(key) => Ok(Some(key)),
        _ => Err(element.invalid("finishOnKey", value, "one of 0-9, # and *, or nothing")),
    }
}

fn redirect(element: &Element) -> Result<Redirect, ParseError> {
    let url = element.text();
    if url.is_empty() {
        return Err(ParseError::new("<Redirect> without a URL"));
    }
    Ok(Redirect {
        url,
        method: element.method("method")?,
    })
}

fn enqueue(element: &Element) -> Result<Enqueue, ParseError> {
    Ok(Enqueue {
        queue: element.text(),
        action: element.attr("action").map(str::to_owned),
        method: element.method("method")?,
        hold: element.hold("waitUrlMethod")?,
    })
}

fn dial(element: &Element) -> Result<Dial, ParseError> {
    let mut targets = element
        .elements()
        .map(dial_target)
        .collect::<Result<Vec<_>, _>>()?;
    let number = element.own_text();
    if targets.is_empty() && !number.is_empty() {
        targets.push(DialTarget::Number(number));
    }
    if targets.is_empty() {
        return Err(ParseError::new("<Dial> with nothing to dial"));
    }
    Ok(Dial {
        action: element.attr("action").map(str::to_owned),
        method: element.method("method")?,
        targets,
    })
}

fn dial_target(element: &Element) -> Result<DialTarget, ParseError> {
    Ok(match element.name.as_str() {
        "Conference" => DialTarget::Conference {
            room: element.text(),
            hold: element.hold("waitMethod")?,
        },
        "Queue" => DialTarget::Queue(element.text()),
        "Number" => DialTarget::Number(element.text()),
        noun => DialTarget::Other {
            noun: noun.to_owned(),
            text: element.text(),
        },
    })
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::Default => f.write_str("Twilio's default hold music"),
            Hold::Silence => f.write_str("silence (waitUrl is empty)"),
            Hold::Url { url, method } => write!(f, "{} {url}", method.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verbs(body: &str) -> Vec<Verb> {
        parse(&format!(
            "<?xml version=\"1.0\"?><Response>{body}</Response>"
        ))
        .unwrap_or_else(|e| panic!("{body}: {e}"))
        .verbs
    }

    fn refused(xml: &str) -> String {
        match parse(xml) {
            Ok(doc) => panic!("accepted {xml}: {doc:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn reads_what_the_server_renders() {
        let xml = crate::twiml::Response::new()
            .gather(
                crate::twiml::Gather::new("/voice/pin?step=2")
                    .num_digits(4)
                    .timeout(6)
                    .child(crate::twiml::Say::new("Enter it").language("en-US")),
            )
            .redirect(crate::twiml::Redirect::new(
                "/voice/pin?step=2",
                Method::Post,
            ))
            .render();
        let parsed = parse(&xml).unwrap().verbs;
        let Verb::Gather(gather) = &parsed[0] else {
            panic!("{parsed:?}")
        };
        assert_eq!(gather.action.as_deref(), Some("/voice/pin?step=2"));
        assert_eq!(gather.num_digits, Some(4));
        assert_eq!(gather.finish_on_key, Some('#'));
        assert_eq!(gather.timeout_secs, 6);
        assert!(gather.action_on_empty_result);
        assert_eq!(gather.children.len(), 1);
        assert_eq!(parsed[1].name(), "Redirect");
    }

    #[test]
    fn gather_defaults_follow_twilio() {
        let [Verb::Gather(gather)] = &verbs("<Gather/>")[..] else {
            panic!()
        };
        assert_eq!(gather.action, None);
        assert_eq!(gather.method, Method::Post);
        assert_eq!(gather.num_digits, None);
        assert_eq!(gather.finish_on_key, Some('#'));
        assert_eq!(gather.timeout_secs, DEFAULT_GATHER_TIMEOUT_SECS);
        assert!(!gather.action_on_empty_result);
        assert!(gather.dtmf);
    }

    #[test]
    fn an_empty_finish_on_key_means_none() {
        let [Verb::Gather(gather)] = &verbs(r#"<Gather finishOnKey=""/>"#)[..] else {
            panic!()
        };
        assert_eq!(gather.finish_on_key, None);
    }

    #[test]
    fn say_text_decodes_entities_and_drops_ssml() {
        let parsed = verbs(
            "<Say language=\"es-US\" loop=\"2\">Tom &amp; &#74;erry\n  <break time=\"1s\"/>said \
             <emphasis>hi</emphasis>&lt;3</Say>",
        );
        assert_eq!(
            parsed,
            [Verb::Say(Say {
                text: "Tom & Jerry said hi <3".into(),
                language: "es-US".into(),
                loops: 2
            })]
        );
    }

    #[test]
    fn reads_queues_conferences_and_numbers() {
        let parsed = verbs(concat!(
            r#"<Enqueue waitUrl="hold" waitUrlMethod="GET" action="/left">support</Enqueue>"#,
            r#"<Dial><Conference waitUrl="">room</Conference></Dial>"#,
            r#"<Dial action="/done">+15550100</Dial>"#,
            r#"<Dial><Queue>support</Queue><Client>alice</Client></Dial>"#,
        ));
        assert_eq!(
            parsed[0],
            Verb::Enqueue(Enqueue {
                queue: "support".into(),
                action: Some("/left".into()),
                method: Method::Post,
                hold: Hold::Url {
                    url: "hold".into(),
                    method: Method::Get
                },
            })
        );
        let Verb::Dial(conference) = &parsed[1] else {
            panic!()
        };
        assert_eq!(
            conference.targets,
            [DialTarget::Conference {
                room: "room".into(),
                hold: Hold::Silence
            }]
        );
        let Verb::Dial(number) = &parsed[2] else {
            panic!()
        };
        assert_eq!(number.targets, [DialTarget::Number("+15550100".into())]);
        let Verb::Dial(queue) = &parsed[3] else {
            panic!()
        };
        assert_eq!(queue.targets[0], DialTarget::Queue("support".into()));
        assert_eq!(
            queue.targets[1],
            DialTarget::Other {
                noun: "Client".into(),
                text: "alice".into()
            }
        );
    }

    #[test]
    fn keeps_unknown_verbs_by_name() {
        assert_eq!(
            verbs("<Record/><Say>hi</Say>")[0],
            Verb::Unsupported("Record".into())
        );
    }

    #[test]
    fn an_empty_response_has_no_verbs() {
        assert!(parse("<Response/>").unwrap().verbs.is_empty());
    }

    #[test]
    fn refuses_documents_that_are_not_twiml() {
        let cases = [
            ("", "empty document"),
            ("   ", "empty document"),
            ("<Response><Say>hi</Response>", "not well-formed"),
            ("<Response><Say>hi</Say>", "ends inside <Response>"),
            ("<Html/>", "not <Response>"),
            ("<Response/><Response/>", "second root"),
            ("<Response>hello</Response>", "text outside any verb"),
            ("oops<Response/>", "outside the root"),
            ("<Response><Say>&nbsp;</Say></Response>", "unknown entity"),
            (
                "<Response><Gather numDigits=\"0\"/></Response>",
                "numDigits",
            ),
            ("<Response><Gather timeout=\"soon\"/></Response>", "timeout"),
            (
                "<Response><Gather finishOnKey=\"##\"/></Response>",
                "finishOnKey",
            ),
            (
                "<Response><Gather method=\"PUT\"/></Response>",
                "GET or POST",
            ),
            (
                "<Response><Gather actionOnEmptyResult=\"yes\"/></Response>",
                "true or false",
            ),
            ("<Response><Redirect/></Response>", "without a URL"),
            ("<Response><Dial/></Response>", "nothing to dial"),
        ];
        for (xml, expected) in cases {
            let reason = refused(xml);
            assert!(reason.contains(expected), "{xml:?}: {reason}");
        }
    }
}
