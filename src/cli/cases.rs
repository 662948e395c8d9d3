//! `pinline case …`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{Cli, Needs, print_json};
use crate::domain::account::UserId;
use crate::domain::audit::{Actor, Channel};
use crate::domain::case::{CaseNumber, CaseStatus, Decision};
use crate::error::Result;
use crate::registry::{CaseView, Origin, ReplyOutcome};

#[derive(Debug, Subcommand)]
pub(super) enum CaseCommand {
    /// Open a case for a request that needs approval (or show the one
    /// already open); prints the case number.
    Open {
        /// Who asks.
        #[arg(long)]
        requestor: UserId,
        /// Whose account.
        #[arg(long)]
        on_behalf_of: UserId,
        /// Print `{"case_number": …, …}`.
        #[arg(long)]
        json: bool,
    },
    /// Show a case and its trail.
    Show {
        /// Case number.
        case: CaseNumber,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List cases, newest first.
    List {
        /// Only cases in this status.
        #[arg(long)]
        status: Option<CaseStatus>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Record a reply to a case. Only an approver's reply decides it.
    Reply(ReplyArgs),
    /// Close a case.
    Close {
        /// Case number.
        case: CaseNumber,
    },
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("decision").required(true).args(["approve", "decline"]))]
pub(super) struct ReplyArgs {
    /// Case number.
    case: CaseNumber,
    /// Who replied (user ID).
    #[arg(long)]
    from: UserId,
    /// The reply approves.
    #[arg(long)]
    approve: bool,
    /// The reply declines.
    #[arg(long)]
    decline: bool,
    /// The reply's text.
    #[arg(long)]
    text: Option<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(cli: &Cli, cmd: &CaseCommand) -> Result<ExitCode> {
    match cmd {
        CaseCommand::Open {
            requestor,
            on_behalf_of,
            json,
        } => {
            let registry = cli.registry(Needs::AuditKey)?;
            let (case, reused) = registry.open_case(*requestor, *on_behalf_of, &Origin::cli())?;
            if *json {
                print_json(&json!({
                    "case_number": case.case_number,
                    "status": case.status,
                    "reused": reused,
                    "approvers": case.approvers,
                }))?;
            } else {
                println!("{}", case.case_number);
            }
        }
        CaseCommand::Show { case, json } => {
            let case = cli.registry(Needs::Nothing)?.case(case)?;
            if *json {
                print_json(&case)?;
            } else {
                print_case(&case);
            }
        }
        CaseCommand::List { status, json } => {
            let cases = cli.registry(Needs::Nothing)?.cases(*status)?;
            if *json {
                print_json(&cases)?;
            } else {
                for c in &cases {
                    println!(
                        "{}\t{}\t{} ({})\tfor {} ({})\t{}",
                        c.case_number,
                        c.status,
                        c.requestor.name,
                        c.requestor.user_id,
                        c.subject.name,
                        c.subject.user_id,
                        c.created_at
                    );
                }
            }
        }
        CaseCommand::Reply(args) => return reply(cli, args),
        CaseCommand::Close { case } => {
            cli.registry(Needs::AuditKey)?
                .close_case(case, &Origin::cli())?;
            println!("case {case} closed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn reply(cli: &Cli, args: &ReplyArgs) -> Result<ExitCode> {
    let decision = if args.approve {
        Decision::Approve
    } else {
        Decision::Decline
    };
    let origin = Origin {
        actor: Actor::User(args.from),
        channel: Channel::Cli,
        call_sid: None,
    };
    let registry = cli.registry(Needs::AuditKey)?;
    let outcome = registry.reply_to_case(
        &args.case,
        args.from,
        decision,
        args.text.as_deref(),
        &origin,
    )?;
    let (word, message) = match outcome {
        ReplyOutcome::Approved => ("approved", format!("case {} approved", args.case)),
        ReplyOutcome::Declined => ("declined", format!("case {} declined", args.case)),
        ReplyOutcome::RecordedOnly => (
            "recorded_only",
            format!(
                "user {} is not an approver of case {}: the reply is recorded and approves nothing",
                args.from, args.case
            ),
        ),
    };
    if args.json {
        let status = registry.case(&args.case)?.status;
        print_json(&json!({ "case_number": args.case, "outcome": word, "status": status }))?;
    } else {
        println!("{message}");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_case(c: &CaseView) {
    println!("case {}: {}", c.case_number, c.status);
    println!(
        "  requestor: {} ({}, {})",
        c.requestor.name, c.requestor.user_id, c.requestor.role
    );
    println!(
        "  on behalf of: {} ({}, {})",
        c.subject.name, c.subject.user_id, c.subject.role
    );
    let approvers: Vec<String> = c
        .approvers
        .iter()
        .map(|a| format!("{} ({})", a.name, a.user_id))
        .collect();
    println!("  approvers: {}", approvers.join(", "));
    if let Some(expires) = &c.expires_at {
        let note = if c.expired { " (expired)" } else { "" };
        println!("  approval holds until {expires}{note}");
    }
    for entry in &c.trail {
        println!(
            "  {}  {:<8} {:<6} {}",
            entry.at, entry.kind, entry.channel, entry.text
        );
    }
}
