//! pinline verifies people who phone a healthcare-software support line by
//! their user ID and four-digit Support PIN, before an agent touches any
//! protected health information.
//!
//! Layout:
//! - [`domain`]: values and rules with no I/O (PINs, accounts, the lock
//!   policy, the audit chain).
//! - [`crypto`] and [`keys`]: encryption of PINs at rest and where the keys
//!   come from.
//! - [`storage`]: SQLite, the only place with SQL.
//! - [`registry`]: each operation as one transaction with its audit events.
//! - [`cli`]: the `pinline` command; [`server`]: the HTTP side;
//!   [`web`]: the account pages and the agent console.
//! - [`softphone`]: `pinline call`, which plays Twilio against a webhook.

pub mod agent_flow;
pub mod cli;
pub mod clock;
pub mod crypto;
pub mod demo;
pub mod domain;
pub mod error;
pub mod flow;
pub mod ivr;
pub mod keys;
pub mod prompts;
pub mod registry;
pub mod server;
pub mod signature;
pub mod softphone;
pub mod storage;
pub mod telemetry;
pub mod twiml;
pub mod web;
