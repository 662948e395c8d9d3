//! The TwiML writer with arbitrary text in every slot: the document is
//! always well-formed XML with a `<Response>` root, and a provider's
//! parser reads back exactly the verbs, attributes and text put in.

use arbitrary::{Arbitrary, Unstructured};
use pinline::twiml::{
    Beep, Conference, Dial, Enqueue, Gather, GatherChild, Method, Pause, Play, Queue, Redirect,
    Response, Say, Verb,
};

use super::xml::{Element, is_xml_char, parse_twiml};

/// A document to render, decoded from the fuzzer's bytes.
#[derive(Arbitrary, Debug)]
struct Document {
    verbs: Vec<VerbSpec>,
}

#[derive(Arbitrary, Debug)]
enum VerbSpec {
    Say(SaySpec),
    Play(PlaySpec),
    Pause(u32),
    Gather(GatherSpec),
    Redirect {
        url: String,
        get: bool,
    },
    Hangup,
    Enqueue {
        queue: String,
        wait_url: Option<String>,
        action: Option<(String, bool)>,
    },
    Dial {
        action: Option<String>,
        timeout: Option<u32>,
        target: TargetSpec,
    },
}

#[derive(Arbitrary, Debug)]
struct SaySpec {
    text: String,
    voice: Option<String>,
    language: Option<String>,
}

#[derive(Arbitrary, Debug)]
struct PlaySpec {
    url: String,
    loop_count: Option<u32>,
}

#[derive(Arbitrary, Debug)]
struct GatherSpec {
    action: String,
    num_digits: Option<u32>,
    finish_on_key: Option<String>,
    timeout: Option<u32>,
    children: Vec<ChildSpec>,
}

#[derive(Arbitrary, Debug)]
enum ChildSpec {
    Say(SaySpec),
    Play(PlaySpec),
    Pause(u32),
}

#[derive(Arbitrary, Debug)]
enum TargetSpec {
    Conference {
        room: String,
        wait_url: Option<String>,
        start_on_enter: Option<bool>,
        end_on_exit: Option<bool>,
        beep: Option<BeepSpec>,
    },
    Queue {
        name: String,
        url: Option<String>,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum BeepSpec {
    Always,
    Never,
    OnEnter,
    OnExit,
}

/// Renders the document the bytes describe and reads it back.
pub fn check(data: &[u8]) {
    let Ok(document) = Document::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut response = Response::new();
    let mut expected = element("Response", &[], "", Vec::new());
    for spec in &document.verbs {
        let (verb, element) = verb(spec);
        response.push(verb);
        expected.children.push(element);
    }
    let xml = response.render();
    match parse_twiml(&xml) {
        Ok(root) => assert_eq!(
            root, expected,
            "read back differs from what was written: {xml}"
        ),
        Err(why) => panic!("rendered TwiML is not well-formed ({why}): {xml:?}"),
    }
}

fn verb(spec: &VerbSpec) -> (Verb, Element) {
    match spec {
        VerbSpec::Say(say) => {
            let (say, element) = say_of(say);
            (say.into(), element)
        }
        VerbSpec::Play(play) => {
            let (play, element) = play_of(play);
            (play.into(), element)
        }
        VerbSpec::Pause(seconds) => {
            let (pause, element) = pause_of(*seconds);
            (pause.into(), element)
        }
        VerbSpec::Gather(spec) => {
            let mut gather = Gather::new(spec.action.as_str());
            gather.num_digits = spec.num_digits;
            gather.finish_on_key = spec.finish_on_key.clone();
            gather.timeout = spec.timeout;
            let mut children = Vec::new();
            for child in &spec.children {
                let (child, element): (GatherChild, Element) = match child {
                    ChildSpec::Say(say) => {
                        let (say, element) = say_of(say);
                        (say.into(), element)
                    }
                    ChildSpec::Play(play) => {
                        let (play, element) = play_of(play);
                        (play.into(), element)
                    }
                    ChildSpec::Pause(seconds) => {
                        let (pause, element) = pause_of(*seconds);
                        (pause.into(), element)
                    }
                };
                gather = gather.child(child);
                children.push(element);
            }
            let attributes = [
                ("input", Some("dtmf".to_owned())),
                ("action", Some(spec.action.clone())),
                ("method", Some("POST".to_owned())),
                ("numDigits", spec.num_digits.map(|n| n.to_string())),
                ("finishOnKey", spec.finish_on_key.clone()),
                ("timeout", spec.timeout.map(|n| n.to_string())),
                ("actionOnEmptyResult", Some("true".to_owned())),
            ];
            (gather.into(), element("Gather", &attributes, "", children))
        }
        VerbSpec::Redirect { url, get } => {
            let method = if *get { Method::Get } else { Method::Post };
            let attributes = [("method", Some(method.as_str().to_owned()))];
            (
                Redirect::new(url.as_str(), method).into(),
                element("Redirect", &attributes, url, Vec::new()),
            )
        }
        VerbSpec::Hangup => (Verb::Hangup, element("Hangup", &[], "", Vec::new())),
        VerbSpec::Enqueue {
            queue,
            wait_url,
            action,
        } => {
            let mut enqueue = Enqueue::new(queue.as_str());
            enqueue.wait_url = wait_url.clone();
            let method = action.as_ref().map(|(url, get)| {
                let method = if *get { Method::Get } else { Method::Post };
                enqueue = enqueue.clone().action(url.as_str(), method);
                method
            });
            let attributes = [
                ("waitUrl", wait_url.clone()),
                ("action", action.as_ref().map(|(url, _)| url.clone())),
                ("method", method.map(|m| m.as_str().to_owned())),
            ];
            (
                enqueue.into(),
                element("Enqueue", &attributes, queue, Vec::new()),
            )
        }
        VerbSpec::Dial {
            action,
            timeout,
            target,
        } => {
            let (target, noun) = target_of(target);
            let mut dial = Dial::new(target);
            dial.action = action.clone();
            dial.timeout = *timeout;
            let attributes = [
                ("action", action.clone()),
                ("timeout", timeout.map(|n| n.to_string())),
            ];
            (dial.into(), element("Dial", &attributes, "", vec![noun]))
        }
    }
}

fn say_of(spec: &SaySpec) -> (Say, Element) {
    let mut say = Say::new(spec.text.as_str());
    say.voice = spec.voice.clone();
    say.language = spec.language.clone();
    let attributes = [
        ("voice", spec.voice.clone()),
        ("language", spec.language.clone()),
    ];
    (say, element("Say", &attributes, &spec.text, Vec::new()))
}

fn play_of(spec: &PlaySpec) -> (Play, Element) {
    let mut play = Play::new(spec.url.as_str());
    play.loop_count = spec.loop_count;
    let attributes = [("loop", spec.loop_count.map(|n| n.to_string()))];
    (play, element("Play", &attributes, &spec.url, Vec::new()))
}

fn pause_of(seconds: u32) -> (Pause, Element) {
    let attributes = [("length", Some(seconds.to_string()))];
    (
        Pause::new(seconds),
        element("Pause", &attributes, "", Vec::new()),
    )
}

fn target_of(spec: &TargetSpec) -> (pinline::twiml::DialTarget, Element) {
    match spec {
        TargetSpec::Conference {
            room,
            wait_url,
            start_on_enter,
            end_on_exit,
            beep,
        } => {
            let beep = beep.map(|b| match b {
                BeepSpec::Always => Beep::Always,
                BeepSpec::Never => Beep::Never,
                BeepSpec::OnEnter => Beep::OnEnter,
                BeepSpec::OnExit => Beep::OnExit,
            });
            let mut conference = Conference::new(room.as_str());
            conference.wait_url = wait_url.clone();
            conference.start_conference_on_enter = *start_on_enter;
            conference.end_conference_on_exit = *end_on_exit;
            conference.beep = beep;
            let attributes = [
                ("waitUrl", wait_url.clone()),
                (
                    "startConferenceOnEnter",
                    start_on_enter.map(|b| b.to_string()),
                ),
                ("endConferenceOnExit", end_on_exit.map(|b| b.to_string())),
                ("beep", beep.map(|b| b.as_str().to_owned())),
            ];
            (
                conference.into(),
                element("Conference", &attributes, room, Vec::new()),
            )
        }
        TargetSpec::Queue { name, url } => {
            let mut queue = Queue::new(name.as_str());
            queue.url = url.clone();
            let attributes = [("url", url.clone())];
            (
                queue.into(),
                element("Queue", &attributes, name, Vec::new()),
            )
        }
    }
}

/// What a parser should read back for an element written with these
/// values: all of them, but for characters XML cannot carry. Line ends
/// and tabs survive too, since the writer escapes the ones a parser
/// would otherwise normalise.
fn element(
    name: &str,
    attributes: &[(&str, Option<String>)],
    text: &str,
    children: Vec<Element>,
) -> Element {
    Element {
        name: name.to_owned(),
        attributes: attributes
            .iter()
            .filter_map(|(key, value)| {
                let value = value.as_deref()?;
                Some(((*key).to_owned(), carried(value)))
            })
            .collect(),
        text: carried(text),
        children,
    }
}

/// The part of `text` XML 1.0 can carry.
pub fn carried(text: &str) -> String {
    text.chars().filter(|c| is_xml_char(*c)).collect()
}
