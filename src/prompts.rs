//! The catalog of everything the phone line says, per caller language.
//!
//! Prompt wording lives in `voice-prompts/<language tag>.toml` (one file
//! per [`Language`]) so it can be reviewed and changed without touching
//! the call flow. Every file must define exactly the prompts listed in
//! [`PromptKey`]; a missing or unknown prompt, a malformed entry or an
//! unknown placeholder fails [`PromptCatalog::load`], so a bad file stops
//! the server at start-up rather than a caller hearing silence.
//!
//! # File format
//!
//! ```toml
//! # Defaults for every spoken prompt in this file.
//! language = "en-US"       # <Say language="...">
//! voice = "Polly.Joanna"   # <Say voice="...">
//!
//! [prompts]
//! # A plain string is spoken with the defaults above.
//! goodbye = "Thank you for calling. Goodbye."
//! # An inline table with `say` may override `voice` and/or `language`.
//! verified = { say = "Thank you.", voice = "Polly.Matthew" }
//! # An inline table with `play` plays an audio URL instead of speaking.
//! menu = { play = "https://example.com/menu.mp3" }
//! ```
//!
//! An entry has exactly one of `say` and `play`; `voice` and `language`
//! only go with `say`. Spoken text may contain placeholders such as
//! `{min_digits}`, filled in by the caller of [`PromptCatalog::verb`]; each
//! key declares which placeholders it accepts, and `{`/`}` may only appear
//! as part of one. Audio URLs are used as written.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::twiml::{GatherChild, Play, Say, Verb};

/// A language callers can choose, with its own prompt file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// US English, the default.
    EnUs,
    /// US (Latin-American) Spanish, chosen by pressing 9 at the greeting.
    EsUs,
}

impl Language {
    /// Every language, in the order their files are loaded.
    pub fn all() -> &'static [Language] {
        &[Language::EnUs, Language::EsUs]
    }

    /// The BCP 47 tag, which also names the prompt file.
    pub fn tag(self) -> &'static str {
        match self {
            Language::EnUs => "en-US",
            Language::EsUs => "es-US",
        }
    }

    /// The language whose [`tag`](Self::tag) is `tag`, if any.
    pub fn from_tag(tag: &str) -> Option<Language> {
        Self::all().iter().copied().find(|lang| lang.tag() == tag)
    }

    /// The prompt file name, e.g. `en-US.toml`.
    pub fn file_name(self) -> String {
        format!("{}.toml", self.tag())
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// Declares [`PromptKey`] from one line per prompt, so that the variant,
/// its TOML key, its placeholders and its docs cannot drift apart.
macro_rules! prompt_keys {
    ($($variant:ident = $key:literal, [$($ph:literal),*], $doc:literal;)*) => {
        /// Every prompt the call flow can play; each prompt file must
        /// define exactly these keys.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum PromptKey {
            $(#[doc = $doc] $variant,)*
        }

        impl PromptKey {
            /// Every key, in declaration order.
            pub fn all() -> &'static [PromptKey] {
                &[$(PromptKey::$variant),*]
            }

            /// The key as written in the prompt files.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(PromptKey::$variant => $key,)*
                }
            }

            /// The placeholders this prompt's text may use; callers of
            /// [`PromptCatalog::verb`] must supply every one of them.
            pub fn placeholders(self) -> &'static [&'static str] {
                match self {
                    $(PromptKey::$variant => &[$($ph),*],)*
                }
            }
        }
    };
}

// Status messages ("that didn't match") never ask for input themselves;
// the flow follows them with the prompt that does, so each can be combined
// freely and nothing is said twice.
prompt_keys! {
    Greeting = "greeting", [], "Welcome; asks for the user ID.";
    LanguageOffer = "language_offer", [], "Offers Spanish on 9, in a Spanish voice.";
    UserIdPrompt = "user_id_prompt", [], "Asks for the user ID again (language switch, retry).";
    UserIdInvalid = "user_id_invalid", ["min_digits", "max_digits"], "Not a valid user ID.";
    PinPrompt = "pin_prompt", [], "Asks for the four-digit Support PIN.";
    NotVerifiedRetry = "not_verified_retry", [], "User ID and PIN didn't verify; try again.";
    NotVerifiedTransfer = "not_verified_transfer", [], "Verification failed; an agent will help.";
    NoInputReprompt = "no_input_reprompt", [], "Nothing was entered; the prompt repeats.";
    NoInputGoodbye = "no_input_goodbye", [], "Ends the call after repeated silence.";
    Verified = "verified", [], "The caller is verified.";
    Menu = "menu", [], "1: own account, 2: on behalf of someone, 3: approve a staff request.";
    MenuInvalid = "menu_invalid", [], "The key pressed is not a menu choice.";
    SubjectIdPrompt = "subject_id_prompt", [], "Asks for the user ID of the person the caller asks about.";
    RequestRefused = "request_refused", [], "An on-behalf-of request that can't be handled (one message for every reason).";
    CaseOpened = "case_opened", ["case_number"], "A case was opened; the provider must approve by reply or by phone.";
    ApprovalPendingTransfer = "approval_pending_transfer", [], "Hold for an agent, who can't discuss the other account yet.";
    OnlyProvidersApprove = "only_providers_approve", [], "Staff pressed 3: only providers approve.";
    CaseNumberPrompt = "case_number_prompt", [], "Asks a provider for a case number.";
    CaseSummary = "case_summary", ["requestor", "subject"], "Who asks about whose account; 1 approves, 2 declines.";
    CaseApproved = "case_approved", [], "The provider approved the request.";
    CaseDeclined = "case_declined", [], "The provider declined the request.";
    CaseUnavailable = "case_unavailable", [], "No case awaits this provider's decision by that number.";
    ConnectingAgent = "connecting_agent", [], "Hold while an agent is connected.";
    ApologyRestart = "apology_restart", [], "Something went wrong; the call starts over.";
    RepeatStep = "repeat_step", [], "A stale or reordered request; the current question repeats.";
    ApologyGoodbye = "apology_goodbye", [], "Something went wrong; the call ends.";
    ApologyTransfer = "apology_transfer", [], "Something went wrong; an agent will help, unverified.";
    Goodbye = "goodbye", [], "Normal end of the call.";
    HoldPosition = "hold_position", ["position"], "A waiting caller's place in line.";
    HoldMusic = "hold_music", [], "Music (a play URL) between position announcements.";
    AgentGreeting = "agent_greeting", [], "Agent line: asks for the agent ID.";
    AgentPasscodePrompt = "agent_passcode_prompt", [], "Asks for the agent's passcode.";
    AgentNotRecognized = "agent_not_recognized", [], "Agent ID and passcode didn't match (or locked).";
    AgentQueueEmpty = "agent_queue_empty", [], "No caller waits; press 1 or wait to check again.";
    WhisperVerified = "whisper_verified", ["name", "role", "practice"], "Whisper: who the verified caller is.";
    WhisperUnverified = "whisper_unverified", [], "Whisper: the caller proved nothing.";
    WhisperOnBehalf = "whisper_on_behalf", ["subject", "allowed"], "Whisper: whose account, and on what basis.";
    WhisperPending = "whisper_pending", ["subject", "case_number"], "Whisper: approval pending, don't discuss the account.";
    WhisperCallerIdMatched = "whisper_caller_id_matched", [], "Whisper: caller ID is a number on file.";
    WhisperCallerIdUnmatched = "whisper_caller_id_unmatched", [], "Whisper: caller ID is not on file.";
    WhisperWait = "whisper_wait", ["wait"], "Whisper: how long the caller waited.";
    AgentChoice = "agent_choice", [], "1 connects, 2 passes the caller back.";
    AgentConnecting = "agent_connecting", [], "The agent is being connected.";
    AgentCallerLeft = "agent_caller_left", [], "The offered caller hung up.";
    AgentCallEnded = "agent_call_ended", [], "After a call: press 1 for the next caller.";
}

impl PromptKey {
    fn from_name(name: &str) -> Option<PromptKey> {
        Self::all().iter().copied().find(|key| key.as_str() == name)
    }
}

impl fmt::Display for PromptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a prompt file could not be loaded. `file` is the path (or, for
/// [`PromptCatalog::from_sources`], the file name) of the offending file.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The file could not be read.
    #[error("cannot read prompt file {}", path.display())]
    Read {
        /// The file's path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not valid TOML or lacks `language`, `voice` or
    /// `[prompts]`.
    #[error("prompt file {file} is malformed")]
    Toml {
        /// The offending file.
        file: String,
        /// The parser's error, with line and column.
        source: toml::de::Error,
    },
    /// A prompt every file must define is absent.
    #[error("prompt file {file} is missing prompt `{key}`")]
    MissingKey {
        /// The offending file.
        file: String,
        /// The absent prompt.
        key: PromptKey,
    },
    /// The file defines a prompt that [`PromptKey`] does not list.
    #[error("prompt file {file} has unknown prompt `{key}`")]
    UnknownKey {
        /// The offending file.
        file: String,
        /// The key as written in the file.
        key: String,
    },
    /// An entry has both `say` and `play`.
    #[error("prompt `{key}` in {file} has both `say` and `play`; use one")]
    SayAndPlay {
        /// The offending file.
        file: String,
        /// The offending prompt.
        key: PromptKey,
    },
    /// An entry has neither `say` nor `play`.
    #[error("prompt `{key}` in {file} has neither `say` nor `play`")]
    NoSayOrPlay {
        /// The offending file.
        file: String,
        /// The offending prompt.
        key: PromptKey,
    },
    /// Spoken text uses a placeholder its key does not accept.
    #[error("prompt `{key}` in {file} uses unknown placeholder `{{{placeholder}}}`")]
    UnknownPlaceholder {
        /// The offending file.
        file: String,
        /// The offending prompt.
        key: PromptKey,
        /// The placeholder's name, without braces.
        placeholder: String,
    },
    /// Any other problem with one entry (wrong type, unknown field, empty
    /// text, stray brace, ...).
    #[error("prompt `{key}` in {file} is invalid: {reason}")]
    InvalidEntry {
        /// The offending file.
        file: String,
        /// The offending prompt.
        key: PromptKey,
        /// What is wrong.
        reason: String,
    },
}

/// Every prompt in every [`Language`], validated and ready to render.
#[derive(Debug, Clone)]
pub struct PromptCatalog {
    en_us: PromptSet,
    es_us: PromptSet,
}

impl PromptCatalog {
    /// Loads `<tag>.toml` for every language from `dir`.
    pub fn load(dir: &Path) -> Result<Self, PromptError> {
        Self::build(|language| {
            let path = dir.join(language.file_name());
            let source = fs::read_to_string(&path).map_err(|source| PromptError::Read {
                path: path.clone(),
                source,
            })?;
            PromptSet::parse(&path.display().to_string(), &source)
        })
    }

    /// The prompt files this binary was built with, for a server started
    /// away from a `voice-prompts/` folder.
    pub fn embedded() -> Result<Self, PromptError> {
        Self::from_sources(
            include_str!("../voice-prompts/en-US.toml"),
            include_str!("../voice-prompts/es-US.toml"),
        )
    }

    /// Builds the catalog from file contents already in memory (tests,
    /// embedded defaults); errors name the files as `en-US.toml` etc.
    pub fn from_sources(en_us: &str, es_us: &str) -> Result<Self, PromptError> {
        Self::build(|language| {
            let source = match language {
                Language::EnUs => en_us,
                Language::EsUs => es_us,
            };
            PromptSet::parse(&language.file_name(), source)
        })
    }

    fn build(
        mut parse: impl FnMut(Language) -> Result<PromptSet, PromptError>,
    ) -> Result<Self, PromptError> {
        Ok(Self {
            en_us: parse(Language::EnUs)?,
            es_us: parse(Language::EsUs)?,
        })
    }

    /// The prompt as a top-level verb: a `<Say>` in the file's voice and
    /// language, or a `<Play>`.
    ///
    /// `args` maps placeholder names to values and must cover exactly
    /// [`PromptKey::placeholders`]. A missing value is a bug in the caller:
    /// it is logged, and the prompt says nothing in its place rather than
    /// failing the call.
    pub fn verb(&self, language: Language, key: PromptKey, args: &[(&str, &str)]) -> Verb {
        self.gather_child(language, key, args).into()
    }

    /// The prompt as a child of `<Gather>`, so the caller can answer while
    /// it plays. Same rules as [`verb`](Self::verb).
    pub fn gather_child(
        &self,
        language: Language,
        key: PromptKey,
        args: &[(&str, &str)],
    ) -> GatherChild {
        check_args(key, args);
        self.set(language).entry(key).render(args)
    }

    fn set(&self, language: Language) -> &PromptSet {
        match language {
            Language::EnUs => &self.en_us,
            Language::EsUs => &self.es_us,
        }
    }
}

fn check_args(key: PromptKey, args: &[(&str, &str)]) {
    let expected = key.placeholders();
    let given = || args.iter().map(|(name, _)| *name);
    let fits = expected.iter().all(|name| given().any(|g| g == *name))
        && given().all(|g| expected.contains(&g));
    // A caller of the wrong shape is a bug, but the caller on the phone
    // still hears the rest of the prompt rather than a dropped call.
    if !fits {
        tracing::error!(prompt = %key, "prompt rendered with the wrong placeholders");
    }
}

/// One language's prompts, indexed by `PromptKey as usize`.
#[derive(Debug, Clone)]
struct PromptSet {
    // `PromptKey::all()` lists the variants in declaration order, and
    // `parse` fills this from it, so every key's discriminant is a valid
    // index.
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    language: String,
    voice: String,
    prompts: toml::Table,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    say: Option<String>,
    play: Option<String>,
    voice: Option<String>,
    language: Option<String>,
}

impl PromptSet {
    fn parse(file: &str, source: &str) -> Result<Self, PromptError> {
        let raw: RawFile = toml::from_str(source).map_err(|source| PromptError::Toml {
            file: file.to_owned(),
            source,
        })?;
        let mut prompts = raw.prompts;
        // Checked first so a misspelt key is reported as written, not as
        // the key it was meant to be.
        if let Some(name) = prompts
            .keys()
            .find(|name| PromptKey::from_name(name).is_none())
        {
            return Err(PromptError::UnknownKey {
                file: file.to_owned(),
                key: name.clone(),
            });
        }
        let defaults = Defaults {
            voice: raw.voice,
            language: raw.language,
        };
        let entries = PromptKey::all()
            .iter()
            .map(|&key| {
                let origin = Origin { file, key };
                let value = prompts
                    .remove(key.as_str())
                    .ok_or_else(|| origin.missing())?;
                Entry::parse(origin, value, &defaults)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    fn entry(&self, key: PromptKey) -> &Entry {
        &self.entries[key as usize]
    }
}

struct Defaults {
    voice: String,
    language: String,
}

/// Where an entry came from, for error messages.
#[derive(Clone, Copy)]
struct Origin<'a> {
    file: &'a str,
    key: PromptKey,
}

impl Origin<'_> {
    fn missing(self) -> PromptError {
        PromptError::MissingKey {
            file: self.file.to_owned(),
            key: self.key,
        }
    }

    fn invalid(self, reason: impl Into<String>) -> PromptError {
        PromptError::InvalidEntry {
            file: self.file.to_owned(),
            key: self.key,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone)]
enum Entry {
    Say {
        text: Template,
        voice: String,
        language: String,
    },
    Play {
        url: String,
    },
}

impl Entry {
    fn parse(
        origin: Origin<'_>,
        value: toml::Value,
        defaults: &Defaults,
    ) -> Result<Self, PromptError> {
        let raw = match value {
            toml::Value::String(text) => RawEntry {
                say: Some(text),
                ..RawEntry::default()
            },
            toml::Value::Table(table) => table
                .try_into()
                .map_err(|err: toml::de::Error| origin.invalid(err.message().trim()))?,
            other => {
                let found = other.type_str();
                return Err(origin.invalid(format!("expected a string or a table, found {found}")));
            }
        };
        match (raw.say, raw.play) {
            (Some(text), None) => Self::say(origin, &text, raw.voice, raw.language, defaults),
            (None, Some(url)) => {
                let has_voice = raw.voice.is_some() || raw.language.is_some();
                Self::play(origin, url, has_voice)
            }
            (Some(_), Some(_)) => Err(PromptError::SayAndPlay {
                file: origin.file.to_owned(),
                key: origin.key,
            }),
            (None, None) => Err(PromptError::NoSayOrPlay {
                file: origin.file.to_owned(),
                key: origin.key,
            }),
        }
    }

    fn say(
        origin: Origin<'_>,
        text: &str,
        voice: Option<String>,
        language: Option<String>,
        defaults: &Defaults,
    ) -> Result<Self, PromptError> {
        if text.trim().is_empty() {
            return Err(origin.invalid("`say` is empty"));
        }
        let text = Template::parse(text, origin.key.placeholders()).map_err(|err| match err {
            TemplateError::Unknown(placeholder) => PromptError::UnknownPlaceholder {
                file: origin.file.to_owned(),
                key: origin.key,
                placeholder,
            },
            TemplateError::Malformed(reason) => origin.invalid(reason),
        })?;
        Ok(Entry::Say {
            text,
            voice: voice.unwrap_or_else(|| defaults.voice.clone()),
            language: language.unwrap_or_else(|| defaults.language.clone()),
        })
    }

    fn play(origin: Origin<'_>, url: String, has_voice: bool) -> Result<Self, PromptError> {
        if has_voice {
            return Err(origin.invalid("`voice` and `language` only apply to `say`"));
        }
        if url.trim().is_empty() {
            return Err(origin.invalid("`play` is empty"));
        }
        Ok(Entry::Play { url })
    }

    fn render(&self, args: &[(&str, &str)]) -> GatherChild {
        match self {
            Entry::Say {
                text,
                voice,
                language,
            } => Say::new(text.fill(args))
                .voice(voice.as_str())
                .language(language.as_str())
                .into(),
            Entry::Play { url } => Play::new(url.as_str()).into(),
        }
    }
}

/// Spoken text split at its placeholders when the file is loaded, so
/// rendering is plain concatenation and cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Placeholder(&'static str),
}

#[derive(Debug, PartialEq, Eq)]
enum TemplateError {
    Unknown(String),
    Malformed(String),
}

impl Template {
    fn parse(text: &str, allowed: &'static [&'static str]) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(brace) = rest.find(['{', '}']) {
            let (literal, tail) = rest.split_at(brace);
            if !literal.is_empty() {
                segments.push(Segment::Text(literal.to_owned()));
            }
            let (name, after) = split_placeholder(tail)?;
            let known = allowed.iter().find(|known| **known == name);
            let known = known.ok_or_else(|| TemplateError::Unknown(name.to_owned()))?;
            segments.push(Segment::Placeholder(known));
            rest = after;
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(Self(segments))
    }

    fn fill(&self, args: &[(&str, &str)]) -> String {
        let value = |name: &str| {
            let found = args.iter().find(|(given, _)| *given == name);
            found.map_or("", |(_, value)| *value)
        };
        self.0
            .iter()
            .map(|segment| match segment {
                Segment::Text(text) => text.as_str(),
                Segment::Placeholder(name) => value(name),
            })
            .collect()
    }
}

/// Splits `{name}rest` into `name` and `rest`. Stray braces are errors
/// rather than literal text: in a spoken prompt they are always a typo.
fn split_placeholder(tail: &str) -> Result<(&str, &str), TemplateError> {
    let malformed = |reason: &str| Err(TemplateError::Malformed(reason.to_owned()));
    let Some(inner) = tail.strip_prefix('{') else {
        return malformed("`}` without a matching `{`");
    };
    let Some((name, after)) = inner.split_once('}') else {
        return malformed("`{` without a closing `}`");
    };
    let is_name_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if name.is_empty() || !name.chars().all(is_name_char) {
        return Err(TemplateError::Malformed(format!(
            "`{{{name}}}` is not a placeholder; names use a-z, 0-9 and _"
        )));
    }
    Ok((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EN_US: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/voice-prompts/en-US.toml"
    ));
    const ES_US: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/voice-prompts/es-US.toml"
    ));

    fn real_catalog() -> PromptCatalog {
        PromptCatalog::from_sources(EN_US, ES_US).expect("real prompt files load")
    }

    /// Sample values for every placeholder a key takes.
    fn args_for(key: PromptKey) -> Vec<(&'static str, &'static str)> {
        key.placeholders().iter().map(|name| (*name, "7")).collect()
    }

    fn said(verb: Verb) -> Say {
        match verb {
            Verb::Say(say) => say,
            other => panic!("expected a <Say>, got {other:?}"),
        }
    }

    /// A complete, valid English file with one line per key, `key = "..."`.
    fn synthetic() -> String {
        let mut source =
            String::from("language = \"en-US\"\nvoice = \"Polly.Joanna\"\n\n[prompts]\n");
        for key in PromptKey::all() {
            source.push_str(&format!("{key} = \"Text for {key}.\"\n"));
        }
        source
    }

    /// `synthetic()` with `key`'s line replaced by `line` (or removed).
    fn synthetic_with(key: PromptKey, line: Option<&str>) -> String {
        let prefix = format!("{key} = ");
        synthetic()
            .lines()
            .filter_map(|l| {
                if l.starts_with(&prefix) {
                    line
                } else {
                    Some(l)
                }
            })
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn load_en(source: &str) -> Result<PromptCatalog, PromptError> {
        PromptCatalog::from_sources(source, ES_US)
    }

    #[test]
    fn the_real_prompt_directory_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("voice-prompts");
        PromptCatalog::load(&dir).expect("voice-prompts/ loads");
    }

    #[test]
    fn every_real_prompt_is_spoken_in_the_file_voice_and_language() {
        let catalog = real_catalog();
        let expected = [
            (Language::EnUs, "Polly.Joanna"),
            (Language::EsUs, "Polly.Lupe"),
        ];
        for (language, voice) in expected {
            for &key in PromptKey::all() {
                let verb = catalog.verb(language, key, &args_for(key));
                if matches!(verb, Verb::Play(_)) {
                    continue;
                }
                let say = said(verb);
                assert!(!say.text.trim().is_empty(), "{language} {key}");
                assert!(!say.text.contains(['{', '}']), "{language} {key}");
                if key == PromptKey::LanguageOffer {
                    continue;
                }
                assert_eq!(say.voice.as_deref(), Some(voice), "{language} {key}");
                assert_eq!(say.language.as_deref(), Some(language.tag()));
            }
        }
    }

    #[test]
    fn the_english_greeting_offers_spanish_on_nine_in_a_spanish_voice() {
        let say = said(real_catalog().verb(Language::EnUs, PromptKey::LanguageOffer, &[]));
        assert_eq!(say.voice.as_deref(), Some("Polly.Lupe"));
        assert_eq!(say.language.as_deref(), Some("es-US"));
        assert!(
            say.text
                .to_lowercase()
                .contains("para español, oprima nueve"),
            "{}",
            say.text
        );
    }

    #[test]
    fn spanish_prompts_use_the_spanish_voice() {
        let say = said(real_catalog().verb(Language::EsUs, PromptKey::PinPrompt, &[]));
        assert_eq!(say.voice.as_deref(), Some("Polly.Lupe"));
        assert_eq!(say.language.as_deref(), Some("es-US"));
        assert!(say.text.contains("PIN"), "{}", say.text);
    }

    #[test]
    fn placeholders_are_filled_from_the_arguments() {
        let args = [("min_digits", "6"), ("max_digits", "10")];
        let catalog = real_catalog();
        for &language in Language::all() {
            let say = said(catalog.verb(language, PromptKey::UserIdInvalid, &args));
            assert!(
                say.text.contains('6') && say.text.contains("10"),
                "{}",
                say.text
            );
        }
    }

    #[test]
    fn no_prompt_can_read_back_a_pin() {
        for key in PromptKey::all() {
            assert!(
                key.placeholders().iter().all(|p| !p.contains("pin")),
                "{key}"
            );
        }
        assert!(PromptKey::NotVerifiedTransfer.placeholders().is_empty());
    }

    #[test]
    fn keys_are_unique_and_round_trip_through_their_names() {
        for &key in PromptKey::all() {
            assert_eq!(PromptKey::from_name(key.as_str()), Some(key));
        }
        let mut names: Vec<_> = PromptKey::all().iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PromptKey::all().len());
    }

    #[test]
    fn language_tags_round_trip() {
        for &language in Language::all() {
            assert_eq!(Language::from_tag(language.tag()), Some(language));
        }
        assert_eq!(Language::EsUs.file_name(), "es-US.toml");
        assert_eq!(Language::from_tag("fr-FR"), None);
    }

    #[test]
    fn a_missing_key_is_an_error_naming_the_key_and_file() {
        let err = load_en(&synthetic_with(PromptKey::Goodbye, None)).unwrap_err();
        assert!(matches!(
            err,
            PromptError::MissingKey {
                key: PromptKey::Goodbye,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "prompt file en-US.toml is missing prompt `goodbye`"
        );
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_the_key_and_file() {
        let source = format!("{}farewell = \"Bye.\"\n", synthetic());
        let err = load_en(&source).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prompt file en-US.toml has unknown prompt `farewell`"
        );
    }

    #[test]
    fn a_misspelt_key_is_reported_as_written() {
        let source = synthetic_with(PromptKey::Goodbye, Some("goodbey = \"Bye.\""));
        let err = load_en(&source).unwrap_err();
        assert!(matches!(err, PromptError::UnknownKey { ref key, .. } if key == "goodbey"));
    }

    #[test]
    fn an_error_in_the_spanish_file_names_that_file() {
        let spanish = synthetic_with(PromptKey::Menu, None);
        let err = PromptCatalog::from_sources(EN_US, &spanish).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prompt file es-US.toml is missing prompt `menu`"
        );
    }

    #[test]
    fn an_unknown_placeholder_is_caught_at_load() {
        let line = r#"goodbye = "Goodbye, {user_id}.""#;
        let err = load_en(&synthetic_with(PromptKey::Goodbye, Some(line))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prompt `goodbye` in en-US.toml uses unknown placeholder `{user_id}`"
        );
    }

    #[test]
    fn a_placeholder_of_another_key_is_unknown() {
        let line = r#"pin_prompt = "Enter {min_digits} digits.""#;
        let err = load_en(&synthetic_with(PromptKey::PinPrompt, Some(line))).unwrap_err();
        assert!(matches!(
            err,
            PromptError::UnknownPlaceholder {
                key: PromptKey::PinPrompt,
                ..
            }
        ));
    }

    #[test]
    fn stray_braces_are_caught_at_load() {
        for text in ["Bye {oops", "Bye }", "Bye {}", "Bye {Max Digits}"] {
            let line = format!("goodbye = \"{text}\"");
            let err = load_en(&synthetic_with(PromptKey::Goodbye, Some(&line))).unwrap_err();
            assert!(
                matches!(err, PromptError::InvalidEntry { .. }),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn malformed_toml_is_an_error_naming_the_file() {
        let err = load_en("language = \"en-US\"\n[prompts\n").unwrap_err();
        assert!(matches!(err, PromptError::Toml { .. }));
        assert_eq!(err.to_string(), "prompt file en-US.toml is malformed");
    }

    #[test]
    fn a_file_without_a_default_voice_is_malformed() {
        let source = synthetic().replace("voice = \"Polly.Joanna\"\n", "");
        assert!(matches!(
            load_en(&source).unwrap_err(),
            PromptError::Toml { .. }
        ));
    }

    #[test]
    fn an_entry_with_both_say_and_play_is_an_error() {
        let line = r#"goodbye = { say = "Bye.", play = "https://e.com/bye.mp3" }"#;
        let err = load_en(&synthetic_with(PromptKey::Goodbye, Some(line))).unwrap_err();
        assert!(matches!(
            err,
            PromptError::SayAndPlay {
                key: PromptKey::Goodbye,
                ..
            }
        ));
    }

    #[test]
    fn an_entry_with_neither_say_nor_play_is_an_error() {
        let line = r#"goodbye = { voice = "Polly.Matthew" }"#;
        let err = load_en(&synthetic_with(PromptKey::Goodbye, Some(line))).unwrap_err();
        assert!(matches!(
            err,
            PromptError::NoSayOrPlay {
                key: PromptKey::Goodbye,
                ..
            }
        ));
    }

    #[test]
    fn malformed_entries_are_errors_naming_the_key() {
        let lines = [
            "goodbye = 3",
            r#"goodbye = { say = "Bye.", voise = "Polly.Matthew" }"#,
            r#"goodbye = { play = "https://e.com/a.mp3", voice = "Polly.Matthew" }"#,
            r#"goodbye = { play = " " }"#,
            r#"goodbye = "  ""#,
        ];
        for line in lines {
            let err = load_en(&synthetic_with(PromptKey::Goodbye, Some(line))).unwrap_err();
            assert!(
                matches!(
                    err,
                    PromptError::InvalidEntry {
                        key: PromptKey::Goodbye,
                        ..
                    }
                ),
                "{line}: {err}"
            );
        }
    }

    #[test]
    fn play_entries_render_a_play_verb() {
        let line = r#"goodbye = { play = "https://e.com/bye.mp3?a=1&b=2" }"#;
        let catalog = load_en(&synthetic_with(PromptKey::Goodbye, Some(line))).unwrap();
        let verb = catalog.verb(Language::EnUs, PromptKey::Goodbye, &[]);
        assert_eq!(verb, Verb::Play(Play::new("https://e.com/bye.mp3?a=1&b=2")));
        let xml = crate::twiml::Response::new().verb(verb).render();
        assert!(
            xml.ends_with("<Response><Play>https://e.com/bye.mp3?a=1&amp;b=2</Play></Response>")
        );
    }

    #[test]
    fn an_entry_can_override_voice_and_language() {
        let line = r#"goodbye = { say = "Adiós.", voice = "Polly.Lupe", language = "es-US" }"#;
        let catalog = load_en(&synthetic_with(PromptKey::Goodbye, Some(line))).unwrap();
        let verb = catalog.verb(Language::EnUs, PromptKey::Goodbye, &[]);
        assert_eq!(
            verb,
            Verb::Say(Say::new("Adiós.").voice("Polly.Lupe").language("es-US"))
        );
    }

    #[test]
    fn gather_children_carry_the_same_prompt() {
        let catalog = real_catalog();
        let child = catalog.gather_child(Language::EsUs, PromptKey::Menu, &[]);
        assert_eq!(
            Verb::from(child),
            catalog.verb(Language::EsUs, PromptKey::Menu, &[])
        );
    }

    #[test]
    fn prompt_text_is_escaped_when_rendered() {
        let line = r#"user_id_invalid = "Use {min_digits} & <{max_digits}>.""#;
        let source = synthetic_with(PromptKey::UserIdInvalid, Some(line));
        let catalog = load_en(&source).unwrap();
        let args = [("min_digits", "6"), ("max_digits", "\"10\"")];
        let verb = catalog.verb(Language::EnUs, PromptKey::UserIdInvalid, &args);
        let xml = crate::twiml::Response::new().verb(verb).render();
        assert!(xml.contains(r#">Use 6 &amp; &lt;"10"&gt;.</Say>"#), "{xml}");
    }

    #[test]
    fn a_missing_directory_is_a_read_error_naming_the_path() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-prompt-dir");
        let err = PromptCatalog::load(&dir).unwrap_err();
        assert!(matches!(err, PromptError::Read { .. }));
        assert!(
            err.to_string().contains("no-such-prompt-dir/en-US.toml"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_argument_leaves_a_gap_instead_of_failing_the_call() {
        let verb = real_catalog().verb(
            Language::EnUs,
            PromptKey::UserIdInvalid,
            &[("min_digits", "6")],
        );
        let Verb::Say(say) = verb else {
            panic!("expected a <Say>");
        };
        assert!(say.text.contains("6 to "), "{}", say.text);
        assert!(!say.text.contains('{'));
    }

    #[test]
    fn template_parsing_splits_text_and_placeholders() {
        let template = Template::parse("a {x}{y} b", &["x", "y"]).unwrap();
        assert_eq!(template.fill(&[("x", "1"), ("y", "2")]), "a 12 b");
        assert_eq!(
            Template::parse("{z}", &["x"]),
            Err(TemplateError::Unknown("z".to_owned()))
        );
    }
}
