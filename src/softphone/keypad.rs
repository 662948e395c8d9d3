//! The caller's side of a `<Gather>`: which keys are pressed, and how
//! Twilio turns them into the `Digits` it posts.
//!
//! A [`Keypad`] only reports what the caller pressed before going quiet;
//! [`collect_digits`] then applies the gather's `numDigits` and
//! `finishOnKey` exactly as Twilio does, so the rules live in one pure
//! function whichever keypad is used.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;

/// What a `<Gather>` listens for, as a keypad needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPrompt {
    /// Submit once this many keys are pressed.
    pub num_digits: Option<u32>,
    /// The key that submits early, never part of `Digits`.
    pub finish_on_key: Option<char>,
    /// Seconds of silence after which the gather ends.
    pub timeout_secs: u32,
}

impl fmt::Display for KeyPrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.num_digits {
            write!(f, "numDigits={n} ")?;
        }
        match self.finish_on_key {
            Some(key) => write!(f, "finishOnKey={key} ")?,
            None => f.write_str("finishOnKey=\"\" ")?,
        }
        write!(f, "timeout={}s", self.timeout_secs)
    }
}

/// What the caller did while a gather listened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keys {
    /// These keys, in order, then silence.
    Pressed(String),
    /// Nothing until the timeout.
    Silence,
    /// The caller hung up (a script ran out, or the terminal closed).
    HangUp,
}

/// Supplies the keys a caller presses. Unit tests script it; the terminal
/// reads it from a prompt.
pub trait Keypad {
    /// The keys pressed for `prompt`, waiting at most its timeout.
    fn gather(&mut self, prompt: &KeyPrompt) -> impl Future<Output = Keys> + Send;

    /// Lets `seconds` pass, for a `<Pause>`. Scripts skip the wait.
    fn pause(&mut self, seconds: u32) -> impl Future<Output = ()> + Send {
        let _ = seconds;
        std::future::ready(())
    }

    /// True once the caller has nothing more to press; hold loops stop
    /// then rather than run to their bound.
    fn exhausted(&self) -> bool;
}

/// True for the twelve keys of a phone keypad.
pub fn is_key(ch: char) -> bool {
    ch.is_ascii_digit() || ch == '*' || ch == '#'
}

/// A keypad that answers each gather with the next entry of a script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptedKeypad {
    answers: VecDeque<String>,
}

impl ScriptedKeypad {
    /// Answers in order; an empty answer is silence.
    pub fn new(answers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            answers: answers.into_iter().map(Into::into).collect(),
        }
    }

    /// Reads `--keys`: comma-separated answers, one per gather, e.g.
    /// `"123456#,4821,1"`; `"9,,1"` is silent at the second gather.
    /// Spaces around an answer are ignored.
    pub fn parse(script: &str) -> Result<Self, String> {
        let answers = script
            .split(',')
            .map(|answer| {
                let answer = answer.trim();
                match answer.chars().find(|&ch| !is_key(ch)) {
                    Some(ch) => Err(format!(
                        "--keys: {ch:?} in {answer:?} is not a phone key (0-9, * or #)"
                    )),
                    None => Ok(answer.to_owned()),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(answers))
    }

    /// The answers not used yet.
    pub fn remaining(&self) -> usize {
        self.answers.len()
    }
}

impl Keypad for ScriptedKeypad {
    fn gather(&mut self, _prompt: &KeyPrompt) -> impl Future<Output = Keys> + Send {
        let keys = match self.answers.pop_front() {
            None => Keys::HangUp,
            Some(answer) if answer.is_empty() => Keys::Silence,
            Some(answer) => Keys::Pressed(answer),
        };
        std::future::ready(keys)
    }

    fn exhausted(&self) -> bool {
        self.answers.is_empty()
    }
}

/// What Twilio makes of the keys pressed during one gather.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// The `Digits` parameter: the keys up to the finish key or `numDigits`,
    /// never the finish key itself.
    pub digits: String,
    /// The finish key, if that is what ended the gather (`FinishedOnKey`).
    pub finished_on_key: Option<char>,
    /// Keys pressed after the gather had ended, which it never hears.
    pub unheard: String,
}

/// Applies `prompt` to the keys pressed: the finish key submits what came
/// before it; reaching `numDigits` submits at once; otherwise the silence
/// that followed the keys is the timeout, which submits what was pressed.
pub fn collect_digits(keys: &str, prompt: &KeyPrompt) -> Collected {
    let mut digits = String::new();
    for (at, key) in keys.char_indices() {
        let rest = || keys[at + key.len_utf8()..].to_owned();
        if Some(key) == prompt.finish_on_key {
            return Collected {
                digits,
                finished_on_key: Some(key),
                unheard: rest(),
            };
        }
        digits.push(key);
        let full = prompt
            .num_digits
            .is_some_and(|n| usize::try_from(n).is_ok_and(|n| digits.len() >= n));
        if full {
            return Collected {
                digits,
                finished_on_key: None,
                unheard: rest(),
            };
        }
    }
    Collected {
        digits,
        finished_on_key: None,
        unheard: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(num_digits: Option<u32>, finish_on_key: Option<char>) -> KeyPrompt {
        KeyPrompt {
            num_digits,
            finish_on_key,
            timeout_secs: 5,
        }
    }

    fn collected(digits: &str, finished: Option<char>, unheard: &str) -> Collected {
        Collected {
            digits: digits.into(),
            finished_on_key: finished,
            unheard: unheard.into(),
        }
    }

    #[test]
    fn the_finish_key_submits_and_is_left_out_of_the_digits() {
        let got = collect_digits("123456#", &prompt(None, Some('#')));
        assert_eq!(got, collected("123456", Some('#'), ""));
    }

    #[test]
    fn num_digits_cuts_off_and_later_keys_go_unheard() {
        let got = collect_digits("48219#", &prompt(Some(4), Some('#')));
        assert_eq!(got, collected("4821", None, "9#"));
    }

    #[test]
    fn the_finish_key_still_ends_a_gather_early_with_num_digits() {
        let got = collect_digits("12#", &prompt(Some(4), Some('#')));
        assert_eq!(got, collected("12", Some('#'), ""));
    }

    #[test]
    fn without_a_finish_key_hash_and_star_are_digits_and_the_timeout_submits() {
        let got = collect_digits("12#*", &prompt(None, None));
        assert_eq!(got, collected("12#*", None, ""));
    }

    #[test]
    fn any_key_can_be_the_finish_key() {
        let got = collect_digits("7#5", &prompt(None, Some('5')));
        assert_eq!(got, collected("7#", Some('5'), ""));
    }

    #[test]
    fn the_finish_key_alone_submits_nothing() {
        let got = collect_digits("#", &prompt(None, Some('#')));
        assert_eq!(got, collected("", Some('#'), ""));
    }

    #[test]
    fn a_script_is_comma_separated_with_empty_answers_as_silence() {
        let mut keypad = ScriptedKeypad::parse("9, ,1").unwrap();
        let p = prompt(None, Some('#'));
        let next = |k: &mut ScriptedKeypad| {
            let ready = k.gather(&p);
            futures_ready(ready)
        };
        assert_eq!(next(&mut keypad), Keys::Pressed("9".into()));
        assert_eq!(next(&mut keypad), Keys::Silence);
        assert!(!keypad.exhausted());
        assert_eq!(next(&mut keypad), Keys::Pressed("1".into()));
        assert!(keypad.exhausted());
        assert_eq!(next(&mut keypad), Keys::HangUp);
    }

    #[test]
    fn a_script_refuses_what_no_keypad_has() {
        let error = ScriptedKeypad::parse("12a#,1").unwrap_err();
        assert!(error.contains("'a'"), "{error}");
    }

    #[test]
    fn prompts_describe_themselves_in_twilio_terms() {
        assert_eq!(
            prompt(Some(4), Some('#')).to_string(),
            "numDigits=4 finishOnKey=# timeout=5s"
        );
        assert_eq!(
            prompt(None, None).to_string(),
            "finishOnKey=\"\" timeout=5s"
        );
    }

    /// Runs a future that is ready at once (the scripted keypad's are).
    fn futures_ready<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }
}
