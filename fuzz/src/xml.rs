//! What "well-formed TwiML" means: quick-xml's reader accepts the
//! document, plus the XML 1.0 rules that reader leaves unchecked (legal
//! characters, one root, nothing left open).

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// The declaration every TwiML answer starts with.
pub const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// An element as a provider's XML parser sees it: attribute values and
/// text unescaped and normalised the way XML 1.0 says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The tag name.
    pub name: String,
    /// Attributes in document order.
    pub attributes: Vec<(String, String)>,
    /// Character data directly inside, concatenated.
    pub text: String,
    /// Child elements in order.
    pub children: Vec<Element>,
}

impl Element {
    /// The value of attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every element in the tree, this one first, depth first.
    pub fn descendants(&self) -> Vec<&Element> {
        let mut all = vec![self];
        for child in &self.children {
            all.extend(child.descendants());
        }
        all
    }
}

/// Characters XML 1.0 can carry at all. The others (most C0 controls,
/// U+FFFE, U+FFFF) make a document malformed even as character
/// references, and quick-xml's reader does not reject them.
pub fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..)
}

/// Parses `xml` as a TwiML answer: the declaration, then one `<Response>`
/// element and nothing else. Returns the root, or why it is not TwiML.
pub fn parse_twiml(xml: &str) -> Result<Element, String> {
    if let Some(bad) = xml.chars().find(|c| !is_xml_char(*c)) {
        return Err(format!("character {bad:?} is not allowed in XML 1.0"));
    }
    if !xml.starts_with(DECLARATION) {
        return Err("does not start with the XML declaration".to_owned());
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut open: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|error| format!("not well-formed at {}: {error}", reader.error_position()))?;
        match event {
            Event::Decl(_) if reader.buffer_position() as usize == DECLARATION.len() => {}
            Event::Start(start) => open.push(element(&start)?),
            Event::Empty(start) => close(element(&start)?, &mut open, &mut root)?,
            Event::End(_) => {
                let done = open.pop().ok_or("an end tag closes nothing")?;
                close(done, &mut open, &mut root)?;
            }
            Event::Text(text) => {
                let text = text.xml10_content();
                match open.last_mut() {
                    Some(parent) => parent.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(format!("text {text:?} outside the root")),
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) if is_xml_char(c) => c.to_string(),
                    Ok(Some(c)) => return Err(format!("reference to illegal character {c:?}")),
                    Ok(None) => predefined(&reference)
                        .ok_or_else(|| format!("undefined entity &{};", &*reference))?
                        .to_owned(),
                    Err(error) => return Err(format!("bad reference: {error}")),
                };
                let parent = open.last_mut().ok_or("a reference outside the root")?;
                parent.text.push_str(&resolved);
            }
            Event::Eof => break,
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    if let Some(unclosed) = open.last() {
        return Err(format!("<{}> is never closed", unclosed.name));
    }
    let root = root.ok_or("no root element")?;
    if root.name != "Response" {
        return Err(format!("root is <{}>, not <Response>", root.name));
    }
    Ok(root)
}

fn predefined(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => return None,
    })
}

fn element(start: &BytesStart<'_>) -> Result<Element, String> {
    let name = start.name().into_inner().to_owned();
    let mut attributes = Vec::new();
    // Checked iteration also refuses a repeated attribute name.
    for attribute in start.attributes().with_checks(true) {
        let attribute = attribute.map_err(|error| format!("<{name}> attribute: {error}"))?;
        let key = attribute.key.into_inner().to_owned();
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|error| format!("<{name} {key}>: {error}"))?
            .into_owned();
        attributes.push((key, value));
    }
    Ok(Element {
        name,
        attributes,
        text: String::new(),
        children: Vec::new(),
    })
}

fn close(done: Element, open: &mut [Element], root: &mut Option<Element>) -> Result<(), String> {
    match open.last_mut() {
        Some(parent) => parent.children.push(done),
        None if root.is_none() => *root = Some(done),
        None => return Err(format!("a second root element <{}>", done.name)),
    }
    Ok(())
}
