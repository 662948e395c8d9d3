//! `pinline call`: a terminal softphone for trying the phone line without
//! a phone number (see [`crate::softphone`]).

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::{Cli, Needs, display};
use crate::domain::account::Role;
use crate::error::{Error, Result};
use crate::registry::Origin;
use crate::softphone::{self, CallSetup, HttpTransport, ScriptedKeypad, TerminalKeypad};

const CALLER_URL: &str = "http://127.0.0.1:8080/voice/incoming";
const AGENT_URL: &str = "http://127.0.0.1:8080/voice/agent";

#[derive(Debug, Args)]
pub(super) struct CallArgs {
    /// The webhook to call, the number's Voice URL [default:
    /// http://127.0.0.1:8080/voice/incoming, or /voice/agent with --agent].
    #[arg(long)]
    url: Option<String>,
    /// The calling number (From).
    #[arg(long, default_value = softphone::DEFAULT_FROM)]
    from: String,
    /// The number called (To).
    #[arg(long, default_value = softphone::DEFAULT_TO)]
    to: String,
    /// The webhook signing token [default: TWILIO_AUTH_TOKEN, else the
    /// token `serve --demo` keeps beside the database, NAME.twilio-token].
    #[arg(long)]
    token: Option<String>,
    /// Answers to the gathers, comma-separated, in order, e.g.
    /// "123456#,4821,1"; an empty answer is silence. Without it, keys are
    /// typed at a prompt.
    #[arg(long, conflicts_with = "caller")]
    keys: Option<String>,
    /// Call the agent line instead of the caller line.
    #[arg(long)]
    agent: bool,
    /// Walk a verified demo call as the demo practice's provider or first
    /// staff member: reads their current PIN (audited as `viewed`) and
    /// keys in "USER_ID#,PIN,1".
    #[arg(long = "as", value_name = "ROLE", id = "caller")]
    caller: Option<Role>,
}

pub(super) fn run(cli: &Cli, args: &CallArgs) -> Result<ExitCode> {
    let default_url = if args.agent { AGENT_URL } else { CALLER_URL };
    let url = args.url.as_deref().unwrap_or(default_url);
    let token = token(cli, args.token.as_deref())?;
    let mut setup = CallSetup::new(url, &token).map_err(|e| Error::Invalid(e.to_string()))?;
    setup.from.clone_from(&args.from);
    setup.to.clone_from(&args.to);
    let script = match (&args.keys, args.caller) {
        (Some(keys), _) => Some(keys.clone()),
        (None, Some(role)) => Some(demo_keys(cli, role)?),
        (None, None) => None,
    };
    let keypad = match script {
        Some(script) => Keypad::Scripted(ScriptedKeypad::parse(&script).map_err(Error::Invalid)?),
        None => Keypad::Terminal(
            TerminalKeypad::new().map_err(super::io_error("cannot read the keyboard"))?,
        ),
    };
    let transport = HttpTransport::new().map_err(Error::Invalid)?;
    place(&setup, transport, keypad)
}

/// Either keypad; a call runs with one concrete type.
enum Keypad {
    Scripted(ScriptedKeypad),
    Terminal(TerminalKeypad),
}

fn place(setup: &CallSetup, mut transport: HttpTransport, keypad: Keypad) -> Result<ExitCode> {
    // One thread is plenty: the call does one thing at a time.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(super::io_error("cannot start the async runtime"))?;
    let mut out = std::io::stdout();
    let placed = runtime.block_on(async {
        match keypad {
            Keypad::Scripted(mut keys) => {
                softphone::run(setup, &mut transport, &mut keys, &mut out).await
            }
            Keypad::Terminal(mut keys) => {
                softphone::run(setup, &mut transport, &mut keys, &mut out).await
            }
        }
    });
    match placed {
        Ok(_) => Ok(ExitCode::SUCCESS),
        // The server, not the command line, is at fault: status 1.
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `--token`, else `TWILIO_AUTH_TOKEN`, else the demo's token file.
fn token(cli: &Cli, given: Option<&str>) -> Result<String> {
    if let Some(token) = given.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(token.to_owned());
    }
    if let Ok(token) = std::env::var("TWILIO_AUTH_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(token.trim().to_owned());
    }
    read_token_file(&cli.db.with_extension("twilio-token"))
}

fn read_token_file(path: &Path) -> Result<String> {
    if !path.exists() {
        return Err(Error::Invalid(format!(
            "no webhook token: pass --token, set TWILIO_AUTH_TOKEN, or run \
             `pinline serve --demo` (it keeps one in {})",
            display(path)
        )));
    }
    let token = std::fs::read_to_string(path)
        .map_err(super::io_error(format!("cannot read {}", display(path))))?;
    Ok(token.trim().to_owned())
}

/// The keys for a verified demo call as the demo practice's provider or
/// its first staff member: user ID and `#`, the current PIN, menu `1`.
fn demo_keys(cli: &Cli, role: Role) -> Result<String> {
    let registry = cli.registry(Needs::BothKeys)?;
    let user = registry
        .users()?
        .into_iter()
        .find(|u| u.practice == crate::demo::PRACTICE && u.role == role)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "no demo {role} in {}: run `pinline serve --demo` on it first",
                display(&cli.db)
            ))
        })?;
    let pin = registry.view_pin(user.user_id, &Origin::cli())?;
    println!(
        "Calling as {} ({role}, user ID {}) with the current Support PIN",
        user.name, user.user_id
    );
    Ok(format!("{}#,{},1", user.user_id, pin.reveal()))
}
