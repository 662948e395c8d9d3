//! Prompt-file parsing: any text either fails to load with an error or
//! loads into a catalog whose every prompt, in every language, renders to
//! well-formed TwiML with its placeholders filled and no stray braces.

use pinline::prompts::{Language, PromptCatalog, PromptKey};
use pinline::twiml::{Gather, Response, Verb};

use super::twiml::carried;
use super::xml::parse_twiml;

/// A placeholder value a database could hold: markup, an entity, a
/// character XML cannot carry, and no braces (which only templates use).
pub const HOSTILE_VALUE: &str = "<Say>&amp; \"Ann\" O'Neil ]]>\u{7}";

/// Loads the bytes as both languages' prompt file and renders the result.
pub fn check(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match PromptCatalog::from_sources(source, source) {
        Ok(catalog) => render_all(&catalog),
        Err(error) => {
            // Start-up prints the error and its causes; none may panic.
            let mut shown = error.to_string();
            let mut cause = std::error::Error::source(&error);
            while let Some(inner) = cause {
                shown.push_str(&inner.to_string());
                cause = inner.source();
            }
            assert!(!shown.is_empty());
        }
    }
}

/// Renders every prompt of `catalog`, alone and inside a `<Gather>`.
pub fn render_all(catalog: &PromptCatalog) {
    for &language in Language::all() {
        for &key in PromptKey::all() {
            let args: Vec<(&str, &str)> = key
                .placeholders()
                .iter()
                .map(|name| (*name, HOSTILE_VALUE))
                .collect();
            let verb = catalog.verb(language, key, &args);
            match &verb {
                Verb::Say(say) => {
                    assert!(!say.text.trim().is_empty(), "{language} {key} says nothing");
                    assert!(
                        !say.text.contains(['{', '}']),
                        "{language} {key} left a brace: {:?}",
                        say.text
                    );
                }
                Verb::Play(play) => {
                    assert!(
                        !play.url.trim().is_empty(),
                        "{language} {key} plays nothing"
                    );
                }
                other => panic!("{language} {key} is neither <Say> nor <Play>: {other:?}"),
            }
            let alone = Response::new().verb(verb.clone()).render();
            let root = parse_twiml(&alone)
                .unwrap_or_else(|why| panic!("{language} {key}: {why}: {alone:?}"));
            let [element] = root.children.as_slice() else {
                panic!("{language} {key}: expected one verb: {alone}");
            };
            let said = match &verb {
                Verb::Say(say) => &say.text,
                Verb::Play(play) => &play.url,
                _ => unreachable!("checked above"),
            };
            assert_eq!(element.text, carried(said), "{alone}");

            let child = catalog.gather_child(language, key, &args);
            let gathered = Response::new()
                .gather(Gather::new("/voice/menu").child(child))
                .render();
            let root = parse_twiml(&gathered)
                .unwrap_or_else(|why| panic!("{language} {key} in a gather: {why}: {gathered:?}"));
            assert_eq!(
                root.children[0].children.as_slice(),
                std::slice::from_ref(element),
                "a prompt says the same inside a gather"
            );
        }
    }
}
