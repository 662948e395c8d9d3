//! The `pinline` command: argument parsing and one function per command.
//!
//! Results go to standard output (plain text, or JSON with `--json`), logs
//! and errors to standard error. Exit status 2 means the command or its
//! environment needs fixing; 1 means a fault or, for `audit verify`, a
//! broken chain.

mod accounts;
mod agents;
mod audit;
mod call;
mod cases;
mod keys;
mod pins;
mod serve;
mod web;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::domain::lock::LockPolicy;
use crate::error::{Error, Result};
use crate::keys::{KeyFiles, KeyKind};
use crate::registry::{Registry, recorded_key_id};
use crate::storage::Db;
use crate::storage::server_lock::ServerLock;

/// Phone verification by Support PIN for a healthcare support line.
#[derive(Debug, Parser)]
#[command(name = "pinline", version, about)]
pub struct Cli {
    /// SQLite database file.
    #[arg(long, global = true, env = "PINLINE_DB", default_value = "pinline.db")]
    db: PathBuf,
    /// Support PIN key file, used when PINLINE_PIN_KEY is not set
    /// [default: beside the database, NAME.pin.key].
    #[arg(long, global = true, env = "PINLINE_PIN_KEY_FILE")]
    pin_key_file: Option<PathBuf>,
    /// Audit key file, used when PINLINE_AUDIT_KEY is not set
    /// [default: beside the PIN key file, NAME.audit.key].
    #[arg(long, global = true, env = "PINLINE_AUDIT_KEY_FILE")]
    audit_key_file: Option<PathBuf>,
    /// Lock a PIN after this many failures in a row.
    #[arg(long, global = true, env = "PINLINE_LOCK_AFTER", default_value_t = 5)]
    lock_after: u32,
    /// Lock a PIN after more than this many failures in the window.
    #[arg(
        long,
        global = true,
        env = "PINLINE_LOCK_WINDOW_MAX",
        default_value_t = 10
    )]
    lock_window_max: u32,
    /// Length of that window, in days.
    #[arg(
        long,
        global = true,
        env = "PINLINE_LOCK_WINDOW_DAYS",
        default_value_t = 30
    )]
    lock_window_days: u32,
    /// How long a provider's approval of a case holds, in hours.
    #[arg(
        long,
        global = true,
        env = "PINLINE_APPROVAL_HOURS",
        default_value_t = 24
    )]
    approval_hours: u32,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Practices.
    #[command(subcommand)]
    Practice(accounts::PracticeCommand),
    /// Providers and staff.
    #[command(subcommand)]
    User(accounts::UserCommand),
    /// A user's Support PIN.
    #[command(subcommand)]
    Pin(pins::PinCommand),
    /// The audit log: a user's events, or the chain's integrity.
    Audit(audit::AuditArgs),
    /// Support cases: requests for help with someone else's account.
    #[command(subcommand)]
    Case(cases::CaseCommand),
    /// The secret keys.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Support agents and their API tokens.
    #[command(subcommand)]
    Agent(agents::AgentCommand),
    /// Run the webhook server.
    Serve(serve::ServeArgs),
    /// Call the phone line from the terminal, as Twilio would.
    Call(call::CallArgs),
}

/// Runs the command line and turns any error into one line and a status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Practice(cmd) => accounts::practice(&cli, cmd),
        Command::User(cmd) => accounts::user(&cli, cmd),
        Command::Pin(cmd) => pins::run(&cli, cmd),
        Command::Audit(args) => audit::run(&cli, args),
        Command::Case(cmd) => cases::run(&cli, cmd),
        Command::Key(cmd) => keys::run(&cli, cmd),
        Command::Agent(cmd) => agents::run(&cli, cmd),
        Command::Serve(args) => serve::run(&cli, args),
        Command::Call(args) => call::run(&cli, args),
    }
}

/// Which keys a command cannot do without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    AuditKey,
    BothKeys,
}

impl Cli {
    fn key_files(&self) -> KeyFiles {
        let beside = KeyFiles::beside(&self.db);
        let pin = self.pin_key_file.clone().unwrap_or(beside.pin);
        let audit = self.audit_key_file.clone().unwrap_or_else(|| {
            // Beside the PIN key: NAME.pin.key becomes NAME.audit.key.
            let name = pin.file_name().and_then(|n| n.to_str()).unwrap_or("");
            match name.strip_suffix(".pin.key") {
                Some(stem) => pin.with_file_name(format!("{stem}.audit.key")),
                None => pin.with_extension("audit.key"),
            }
        });
        KeyFiles { pin, audit }
    }

    fn policy(&self) -> Result<LockPolicy> {
        if self.lock_after == 0 || self.lock_window_days == 0 {
            return Err(Error::Invalid(
                "--lock-after and --lock-window-days must be at least 1".into(),
            ));
        }
        Ok(LockPolicy {
            max_consecutive_failures: self.lock_after,
            max_failures_in_window: self.lock_window_max,
            window: chrono::Duration::days(i64::from(self.lock_window_days)),
        })
    }

    /// Opens an existing database; a mistyped path is an error rather
    /// than a new empty file.
    fn existing_db(&self) -> Result<Db> {
        if !self.db.exists() {
            return Err(Error::Invalid(format!(
                "no database at {} (set --db or PINLINE_DB)",
                self.db.display()
            )));
        }
        Ok(Db::open(&self.db)?)
    }

    /// Has the database to this process alone until the lock is dropped,
    /// or says why not: `busy` tells what a running server rules out.
    fn hold_database(&self, busy: &str) -> Result<ServerLock> {
        let path = ServerLock::path(&self.db);
        match ServerLock::try_acquire(&self.db) {
            Ok(Some(lock)) => Ok(lock),
            Ok(None) => Err(Error::Invalid(format!(
                "a pinline server is serving {} (it holds {}); {busy}",
                self.db.display(),
                path.display()
            ))),
            Err(source) => Err(Error::Io {
                context: format!("cannot lock {}", path.display()),
                source,
            }),
        }
    }

    fn registry(&self, needs: Needs) -> Result<Registry> {
        self.registry_on(self.existing_db()?, needs)
    }

    fn registry_on(&self, db: Db, needs: Needs) -> Result<Registry> {
        let files = self.key_files();
        let load = |kind| {
            let expected = recorded_key_id(&db, kind)?;
            Ok::<_, Error>(crate::keys::load(kind, &files, expected.as_deref()))
        };
        let pin = load(KeyKind::Pin)?;
        let audit = load(KeyKind::Audit)?;
        let pin = match (needs, pin) {
            (Needs::BothKeys, Err(e)) => return Err(e.into()),
            (_, pin) => pin,
        };
        let audit = match (needs, audit) {
            (Needs::BothKeys | Needs::AuditKey, Err(e)) => return Err(e.into()),
            (_, audit) => audit,
        };
        if self.approval_hours == 0 {
            return Err(Error::Invalid("--approval-hours must be at least 1".into()));
        }
        let registry = Registry::new(
            db,
            pin.map(|k| k.key),
            audit.map(|k| k.key),
            self.policy()?,
            Arc::new(SystemClock),
        )?;
        Ok(registry.with_approval_ttl(chrono::Duration::hours(i64::from(self.approval_hours))))
    }
}

/// Prints `value` as one line of JSON.
fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::Invalid(format!("cannot write JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
