//! Whole phone calls against the real router over real HTTP, on a
//! temporary SQLite file, with signed Twilio-style requests.

mod degradation;
mod golden;
mod harness;
mod hostile;
mod on_behalf;
mod queue;
#[path = "../support/mod.rs"]
mod support;
mod verification;
