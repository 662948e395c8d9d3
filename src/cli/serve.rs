//! `pinline serve`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::{Cli, Needs, display};
use crate::clock::SystemClock;
use crate::crypto::SecretKey;
use crate::error::{Error, Result};
use crate::ivr::{Ivr, IvrConfig};
use crate::keys::{self, KeyKind};
use crate::prompts::PromptCatalog;
use crate::server::{self, AppState};
use crate::storage::Db;
use crate::telemetry::{self, LogFormat};

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PINLINE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The address the telephony provider calls (behind a proxy or
    /// tunnel, its public URL); webhook signatures are checked against it
    /// [default: http://LISTEN].
    #[arg(long, env = "PINLINE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Folder of prompt files [default: voice-prompts, else the built-in
    /// prompts].
    #[arg(long, env = "PINLINE_PROMPTS")]
    prompts: Option<PathBuf>,
    /// Failed verifications per hour from one calling number after which
    /// its PIN entries are refused unchecked.
    #[arg(long, env = "PINLINE_CALLER_FAILURES_PER_HOUR", default_value_t = 10)]
    caller_failures_per_hour: u32,
    /// Failed verifications per hour across all callers past which a
    /// warning is logged and counted.
    #[arg(long, env = "PINLINE_FAILURES_PER_HOUR", default_value_t = 200)]
    failures_per_hour: u32,
    /// Create keys, a webhook token and demo users if missing, and print
    /// the demo users' IDs and PINs.
    #[arg(long)]
    demo: bool,
    /// Log line format.
    #[arg(long, env = "PINLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

pub(super) fn run(cli: &Cli, args: &ServeArgs) -> Result<ExitCode> {
    telemetry::init(args.log_format);
    let token = auth_token(cli, args.demo)?;
    let case_token = case_token(cli, args.demo)?;
    let prompts = load_prompts(args.prompts.as_deref())?;
    let _serving = cli.hold_database("one server per database")?;
    let db = Db::open(&cli.db)?;
    if args.demo {
        create_missing_keys(cli)?;
    }
    let registry = Arc::new(cli.registry_on(db, Needs::BothKeys)?);
    if args.demo {
        print_demo(&registry, &token, case_token.as_deref())?;
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        context: "cannot start the async runtime".into(),
        source,
    })?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|source| Error::Io {
                context: format!("cannot listen on {}", args.listen),
                source,
            })?;
        let address = listener.local_addr().map_err(|source| Error::Io {
            context: "cannot read the listening address".into(),
            source,
        })?;
        println!("pinline listening on http://{address}");
        // Without a public URL, signatures are checked against the address
        // actually bound (a port of 0 becomes the port chosen).
        let public_url = args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"));
        tracing::info!(
            public_url,
            "webhook signatures are checked against this address"
        );
        let config = IvrConfig {
            caller_failures_per_hour: args.caller_failures_per_hour,
            failures_per_hour: args.failures_per_hour,
            ..IvrConfig::new(&public_url)
        };
        let ivr = Ivr::new(registry, Arc::new(prompts), config, Arc::new(SystemClock));
        let state = AppState::new(ivr, &token, &public_url).with_case_token(case_token.clone());
        server::run(listener, state, server::shutdown_signal())
            .await
            .map_err(|source| Error::Io {
                context: "server failed".into(),
                source,
            })
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The webhook signing secret: `TWILIO_AUTH_TOKEN`, or for a demo a token
/// kept beside the database.
fn auth_token(cli: &Cli, demo: bool) -> Result<String> {
    if let Ok(token) = std::env::var("TWILIO_AUTH_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(token.trim().to_owned());
    }
    if !demo {
        return Err(Error::Invalid(
            "no webhook token: set TWILIO_AUTH_TOKEN to the account's auth token \
             (or the SignalWire signing key)"
                .into(),
        ));
    }
    read_or_create_secret(&cli.db.with_extension("twilio-token"))
}

/// The case system's bearer token: `PINLINE_CASE_TOKEN`, or for a demo
/// one kept beside the database. Without one, case replies over HTTP are
/// refused.
fn case_token(cli: &Cli, demo: bool) -> Result<Option<String>> {
    if let Ok(token) = std::env::var("PINLINE_CASE_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(Some(token.trim().to_owned()));
    }
    if !demo {
        return Ok(None);
    }
    read_or_create_secret(&cli.db.with_extension("case-token")).map(Some)
}

fn read_or_create_secret(path: &Path) -> Result<String> {
    if path.exists() {
        return std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .map_err(super::io_error(format!("cannot read {}", display(path))));
    }
    let secret = SecretKey::generate().to_base64();
    keys::write_secret_file(path, &secret)?;
    Ok(secret)
}

fn load_prompts(dir: Option<&Path>) -> Result<PromptCatalog> {
    let loaded = match dir {
        Some(dir) => PromptCatalog::load(dir),
        None if Path::new("voice-prompts").is_dir() => {
            PromptCatalog::load(Path::new("voice-prompts"))
        }
        None => PromptCatalog::embedded(),
    };
    loaded.map_err(|e| Error::Invalid(e.to_string()))
}

fn print_demo(
    registry: &crate::registry::Registry,
    token: &str,
    case_token: Option<&str>,
) -> Result<()> {
    let people = crate::demo::seed_once(registry)?;
    println!("Demo users (user ID, PIN, role, name):");
    for person in &people {
        println!(
            "  {}  {}  {:<8}  {}",
            person.user.user_id,
            person.pin.reveal(),
            person.user.role.as_str(),
            person.user.name
        );
    }
    println!("Each PIN changes after it is used; `pinline pin show USER` shows the new one.");
    let (agent, passcode) = crate::demo::demo_agent(registry)?;
    println!(
        "Demo agent for the agent line (`pinline call --agent`): ID {}, passcode {passcode}",
        agent.agent_id
    );
    println!("Webhook token (TWILIO_AUTH_TOKEN for `pinline call`): {token}");
    if let Some(case_token) = case_token {
        println!("Case system token (Bearer, for /api/v1/cases/N/replies): {case_token}");
    }
    Ok(())
}

fn create_missing_keys(cli: &Cli) -> Result<()> {
    let files = cli.key_files();
    for kind in [KeyKind::Pin, KeyKind::Audit] {
        let path = files.path(kind);
        if std::env::var_os(kind.variable()).is_none() && !path.exists() {
            keys::create_file(path, &SecretKey::generate())?;
            tracing::info!(path = %path.display(), "created {}", kind.what());
        }
    }
    Ok(())
}
