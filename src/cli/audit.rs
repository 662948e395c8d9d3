//! `pinline audit …`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{Cli, Needs, print_json};
use crate::domain::account::UserId;
use crate::domain::audit::{tag_from_hex, tag_to_hex};
use crate::error::{Error, Result};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    /// List this user's events, newest first.
    user: Option<UserId>,
    /// Print a JSON array of events.
    #[arg(long)]
    json: bool,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Skip this many of the newest events first.
    #[arg(long, default_value_t = 0)]
    offset: u32,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the whole chain and name the first event that fails (exit 1).
    Verify {
        /// A tag printed earlier by `audit head`: also catch a cut tail.
        #[arg(long)]
        head: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the newest event's tag and the number of events.
    Head {
        /// Print `{"tag": …, "count": …}`.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(cli: &Cli, args: &AuditArgs) -> Result<ExitCode> {
    match (&args.command, args.user) {
        (Some(AuditCommand::Verify { head, json }), _) => verify(cli, head.as_deref(), *json),
        (Some(AuditCommand::Head { json }), _) => head(cli, *json),
        (None, Some(user)) => list(cli, user, args),
        (None, None) => Err(Error::Invalid(
            "give a user ID, or `verify` or `head` (see `pinline audit --help`)".into(),
        )),
    }
}

fn list(cli: &Cli, user: UserId, args: &AuditArgs) -> Result<ExitCode> {
    let events = cli
        .registry(Needs::Nothing)?
        .audit_events(user, args.limit, args.offset)?;
    if args.json {
        print_json(&events)?;
    } else {
        for e in &events {
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                e.at,
                e.event,
                e.channel,
                e.actor,
                e.call_sid.as_deref().unwrap_or("-"),
                e.detail
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(cli: &Cli, head: Option<&str>, json: bool) -> Result<ExitCode> {
    let expected = match head {
        None => None,
        Some(text) => Some(tag_from_hex(text).ok_or_else(|| {
            Error::Invalid(format!(
                "--head {text:?} is not a tag printed by `audit head`"
            ))
        })?),
    };
    let outcome = cli.registry(Needs::AuditKey)?.verify_audit(expected)?;
    match outcome {
        Ok(head) => {
            if json {
                print_json(
                    &json!({ "ok": true, "count": head.count, "tag": tag_to_hex(&head.tag) }),
                )?;
            } else {
                println!(
                    "ok: {} events verified; head {}",
                    head.count,
                    tag_to_hex(&head.tag)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            if json {
                print_json(&json!({ "ok": false, "error": broken.to_string() }))?;
            } else {
                println!("audit chain broken: {broken}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

fn head(cli: &Cli, json: bool) -> Result<ExitCode> {
    let head = cli.registry(Needs::Nothing)?.audit_head()?;
    let tag = tag_to_hex(&head.tag);
    if json {
        print_json(&json!({ "tag": tag, "count": head.count }))?;
    } else {
        println!("{tag} {}", head.count);
    }
    Ok(ExitCode::SUCCESS)
}
