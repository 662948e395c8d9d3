//! `pinline pin …`.

use std::process::ExitCode;

use clap::Subcommand;

use super::{Cli, Needs, print_json};
use crate::domain::account::UserId;
use crate::error::Result;
use crate::registry::Origin;

#[derive(Debug, Subcommand)]
pub(super) enum PinCommand {
    /// Print the user's current Support PIN (audited as `viewed`).
    Show {
        /// User ID.
        user: UserId,
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

pub(super) fn run(cli: &Cli, cmd: &PinCommand) -> Result<ExitCode> {
    let registry = cli.registry(Needs::BothKeys)?;
    match cmd {
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
