//! `pinline pin …`.

use std::process::ExitCode;

use clap::Subcommand;

use super::{Cli, Needs, print_json};
use crate::domain::account::UserId;
use crate::domain::agent::AgentId;
use crate::domain::audit::{Actor, Channel};
use crate::error::{Error, Result};
use crate::registry::{Origin, Verdict};

#[derive(Debug, Subcommand)]
pub(super) enum PinCommand {
    /// Print the user's current Support PIN (audited as `viewed`).
    Show {
        /// User ID.
        user: UserId,
    },
    /// Check a PIN an agent was given (by email, in a case, or on the
    /// phone), reading it from standard input, under the same rules, locks
    /// and rotation as the keypad. Exit 0 when verified, 1 when not.
    Verify {
        /// User ID.
        user: String,
        /// The agent who was given the PIN.
        #[arg(long)]
        agent: AgentId,
        /// Where the PIN was given.
        #[arg(long, value_enum)]
        channel: VerifyChannel,
        /// A waiting caller's CallSid, to move them to the verified class.
        #[arg(long)]
        call_sid: Option<String>,
    },
    /// Generate a new Support PIN for the user, lifting any lock.
    New {
        /// User ID.
        user: UserId,
        /// Print `{"user_id": …, "generated": true}`.
        #[arg(long)]
        json: bool,
    },
}

/// Where an agent was given a PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum VerifyChannel {
    /// In an email to support.
    Email,
    /// In a support case.
    Case,
    /// By a caller on the phone, read out to the agent.
    Phone,
}

pub(super) fn run(cli: &Cli, cmd: &PinCommand) -> Result<ExitCode> {
    let registry = cli.registry(Needs::BothKeys)?;
    match cmd {
        PinCommand::Verify {
            user,
            agent,
            channel,
            call_sid,
        } => {
            let mut pin = String::new();
            std::io::stdin()
                .read_line(&mut pin)
                .map_err(super::io_error("cannot read the PIN from standard input"))?;
            if !registry.agents()?.iter().any(|a| a.agent_id == *agent) {
                return Err(Error::Invalid(format!("no agent with ID {agent}")));
            }
            let origin = Origin {
                actor: Actor::Agent(agent.to_stored() as u64),
                channel: match channel {
                    VerifyChannel::Email => Channel::Email,
                    VerifyChannel::Case => Channel::Case,
                    VerifyChannel::Phone => Channel::Phone,
                },
                call_sid: call_sid.clone(),
            };
            let verdict = registry.verify_for_agent(
                *agent,
                user.trim(),
                pin.trim(),
                &origin,
                call_sid.as_deref(),
            )?;
            return Ok(if matches!(verdict, Verdict::Verified(_)) {
                println!("verified");
                ExitCode::SUCCESS
            } else {
                println!("not verified");
                ExitCode::from(1)
            });
        }
        PinCommand::Show { user } => {
            let pin = registry.view_pin(*user, &Origin::cli())?;
            println!("{}", pin.reveal());
        }
        PinCommand::New { user, json } => {
            registry.renew_pin(*user, &Origin::cli())?;
            if *json {
                print_json(&serde_json::json!({ "user_id": user, "generated": true }))?;
            } else {
                println!(
                    "generated a new Support PIN for user {user}; `pinline pin show {user}` shows it"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
