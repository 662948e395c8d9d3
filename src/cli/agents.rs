//! `pinline agent …`.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::{Cli, Needs, print_json};
use crate::domain::agent::AgentId;
use crate::error::Result;

#[derive(Debug, Subcommand)]
pub(super) enum AgentCommand {
    /// Add an agent; prints the agent ID and a passcode, shown only once.
    Add {
        /// The agent's name.
        #[arg(long)]
        name: String,
        /// Print `{"agent_id": …, "passcode": …}`.
        #[arg(long)]
        json: bool,
    },
    /// List agents.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Issue an API bearer token for the agent's desktop; shown only once.
    Token {
        /// Agent ID.
        agent: AgentId,
        /// Print `{"agent_id": …, "token_id": …, "token": …}`.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API token by its ID.
    Revoke {
        /// The token's ID (the part after `pl_`, before the next `_`).
        token_id: String,
    },
    /// Give the agent a new passcode (this also lifts a lock-out).
    Passcode {
        /// Agent ID.
        agent: AgentId,
    },
}

pub(super) fn run(cli: &Cli, cmd: &AgentCommand) -> Result<ExitCode> {
    let registry = cli.registry(Needs::Nothing)?;
    match cmd {
        AgentCommand::Add { name, json } => {
            let (agent, passcode) = registry.add_agent(name)?;
            if *json {
                print_json(&json!({
                    "agent_id": agent.agent_id,
                    "name": agent.name,
                    "passcode": passcode,
                }))?;
            } else {
                println!("agent ID {}  passcode {passcode}", agent.agent_id);
                println!(
                    "The passcode is shown only now; `pinline agent passcode` makes a new one."
                );
            }
        }
        AgentCommand::List { json } => {
            let agents = registry.agents()?;
            if *json {
                print_json(&agents)?;
            } else {
                for a in agents {
                    let lock = if a.locked { "\tlocked" } else { "" };
                    println!("{}\t{}{lock}", a.agent_id, a.name);
                }
            }
        }
        AgentCommand::Token { agent, json } => {
            let issued = registry.issue_agent_token(*agent)?;
            if *json {
                print_json(&issued)?;
            } else {
                println!("{}", issued.token);
            }
        }
        AgentCommand::Revoke { token_id } => {
            registry.revoke_agent_token(token_id)?;
            println!("token {token_id} revoked");
        }
        AgentCommand::Passcode { agent } => {
            let passcode = registry.reset_agent_passcode(*agent)?;
            println!("agent ID {agent}  new passcode {passcode}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
