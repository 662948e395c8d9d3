//! The keypad of `pinline call` without `--keys`: keys typed at a prompt,
//! with the gather's timeout counting down on standard error.
//!
//! A terminal in its normal line mode hands input over only at Enter, so
//! Enter stands for the caller going quiet: the keys on the line go to the
//! gather as if the timeout followed them, Enter alone is silence at once,
//! and the countdown runs until Enter. End of input (Ctrl-D) hangs up.
//!
//! Only std and tokio: a thread reads standard input and passes lines over
//! a channel, because a blocking read cannot be abandoned when the
//! countdown reaches zero, and a tokio stdin read would keep the runtime
//! from shutting down.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::keypad::{KeyPrompt, Keypad, Keys, is_key};

/// How often the countdown is redrawn; finer than a second so the number
/// changes close to when the second does.
const TICK: Duration = Duration::from_millis(200);

/// Keys typed at the terminal.
#[derive(Debug)]
pub struct TerminalKeypad {
    lines: mpsc::UnboundedReceiver<String>,
    /// Standard input has ended: the caller hung up.
    closed: bool,
    /// Standard error is a terminal, so the countdown can redraw in place.
    redraw: bool,
    /// Standard input is a terminal: it echoes what is typed, and a line
    /// typed before a gather listened was typed too early. From a pipe,
    /// lines are echoed here and none is early.
    typed: bool,
    hinted: bool,
}

impl TerminalKeypad {
    /// Starts reading standard input on its own thread.
    pub fn new() -> std::io::Result<Self> {
        let (sender, lines) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("keypad".into())
            .spawn(move || read_lines(&sender))?;
        Ok(Self {
            lines,
            closed: false,
            redraw: std::io::stderr().is_terminal(),
            typed: std::io::stdin().is_terminal(),
            hinted: false,
        })
    }

    fn hint_once(&mut self) {
        if !self.hinted {
            self.hinted = true;
            eprintln!(
                "  (type keys and press Enter before the countdown ends; \
                 Enter alone stays silent; Ctrl-D hangs up)"
            );
        }
    }

    /// On a real phone, keys pressed between gathers are lost; so are
    /// lines typed while the softphone was waiting for the server.
    fn discard_early_lines(&mut self) {
        if !self.typed {
            return;
        }
        while let Ok(line) = self.lines.try_recv() {
            eprintln!("  (ignored {line:?}: typed before the gather listened)");
        }
    }

    fn keys(&mut self, line: Option<String>) -> Keys {
        let Some(line) = line else {
            self.closed = true;
            eprintln!();
            return Keys::HangUp;
        };
        if !self.typed {
            eprintln!("{line}");
        }
        let (keys, ignored): (String, String) = line
            .chars()
            .filter(|ch| !ch.is_whitespace())
            .partition(|&ch| is_key(ch));
        if !ignored.is_empty() {
            eprintln!("  (ignored {ignored:?}: not keys on a phone)");
        }
        if keys.is_empty() {
            Keys::Silence
        } else {
            Keys::Pressed(keys)
        }
    }

    fn draw(&self, prompt: &KeyPrompt, secs: u128, width: usize, first: bool) {
        let text = format!("  keys [{prompt}] {secs:>width$}s> ");
        if first {
            eprint!("{text}");
        } else if self.redraw {
            // Save the cursor (after whatever was typed), rewrite the
            // prompt, which keeps its width, and put the cursor back.
            eprint!("\x1b7\r{text}\x1b8");
        }
        let _ = std::io::stderr().flush();
    }
}

/// Whole seconds left, rounded up, as a countdown shows them.
fn seconds_left(deadline: Instant) -> u128 {
    deadline
        .saturating_duration_since(Instant::now())
        .as_millis()
        .div_ceil(1000)
}

fn read_lines(sender: &mpsc::UnboundedSender<String>) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if sender.send(line).is_err() {
            break;
        }
    }
}

impl Keypad for TerminalKeypad {
    async fn gather(&mut self, prompt: &KeyPrompt) -> Keys {
        if self.closed {
            return Keys::HangUp;
        }
        self.discard_early_lines();
        self.hint_once();
        let deadline = Instant::now() + Duration::from_secs(prompt.timeout_secs.into());
        let width = prompt.timeout_secs.to_string().len();
        // Drawn before listening, so the prompt shows even when a line is
        // already waiting.
        let mut shown = seconds_left(deadline);
        self.draw(prompt, shown, width, true);
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                line = self.lines.recv() => return self.keys(line),
                _ = tick.tick() => {
                    let left = seconds_left(deadline);
                    if left == 0 {
                        eprintln!("(timed out)");
                        return Keys::Silence;
                    }
                    if left != shown {
                        shown = left;
                        self.draw(prompt, shown, width, false);
                    }
                }
            }
        }
    }

    async fn pause(&mut self, seconds: u32) {
        tokio::time::sleep(Duration::from_secs(seconds.into())).await;
    }

    fn exhausted(&self) -> bool {
        self.closed
    }
}
