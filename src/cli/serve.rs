//! `pinline serve`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::{Cli, Needs};
use crate::crypto::SecretKey;
use crate::error::{Error, Result};
use crate::keys::{self, KeyKind};
use crate::server::{self, AppState};
use crate::storage::Db;
use crate::telemetry::{self, LogFormat};

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PINLINE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Create keys and demo users if missing, and print the demo users'
    /// IDs and PINs.
    #[arg(long)]
    demo: bool,
    /// Log line format.
    #[arg(long, env = "PINLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

pub(super) fn run(cli: &Cli, args: &ServeArgs) -> Result<ExitCode> {
    telemetry::init(args.log_format);
    let db = Db::open(&cli.db)?;
    if args.demo {
        create_missing_keys(cli)?;
    }
    let registry = cli.registry_on(db, Needs::BothKeys)?;
    if args.demo {
        let people = crate::demo::seed_once(&registry)?;
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
    }
    let state = AppState {
        registry: Arc::new(registry),
    };
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
        if let Ok(address) = listener.local_addr() {
            println!("pinline listening on http://{address}");
        }
        server::run(listener, state, server::shutdown_signal())
            .await
            .map_err(|source| Error::Io {
                context: "server failed".into(),
                source,
            })
    })?;
    Ok(ExitCode::SUCCESS)
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
