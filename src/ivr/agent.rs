//! The agent line's side of a step: sign-in, claims, connecting and
//! passing callers, each inside the step's transaction.

use chrono::{DateTime, Utc};

use super::{Ivr, StepReport, input};
use crate::agent_flow::{self, AgentDecision, AgentState, Offer};
use crate::domain::audit::{Actor, Channel};
use crate::error::Result;
use crate::flow::QueueContext;
use crate::prompts::PromptKey;
use crate::registry::Origin;
use crate::storage::calls::CallRow;
use crate::storage::queue::{self, QueuedCall};

impl Ivr {
    fn agent_origin(row: &CallRow, state: &AgentState) -> Origin {
        Origin {
            actor: state
                .agent
                .map_or(Actor::Caller, |a| Actor::Agent(a.to_stored() as u64)),
            channel: Channel::Phone,
            call_sid: Some(row.call_sid.clone()),
        }
    }

    /// Runs the agent machine until it has something to say, carrying out
    /// each decision it makes on the way.
    pub(super) fn agent_step(
        &self,
        tx: &rusqlite::Connection,
        row: &CallRow,
        state: &AgentState,
        keys: &str,
        now: DateTime<Utc>,
    ) -> Result<StepReport> {
        let mut decision = agent_flow::on_input(state, input(keys));
        let mut preface = None;
        let mut waited_secs = None;
        let mut outcome = "asked";
        loop {
            decision = match decision {
                AgentDecision::Reply(next, reply) => {
                    let twiml = self.save(tx, row, &*next, &reply, now)?;
                    let mut report = Self::report(twiml, outcome);
                    report.waited_secs = waited_secs;
                    return Ok(report);
                }
                AgentDecision::SignIn { state, agent_id } => {
                    let passcode = keys.trim_end_matches('#');
                    let agent = self
                        .registry
                        .authenticate_agent_in(tx, &agent_id, passcode)?;
                    outcome = if agent.is_some() {
                        "signed_in"
                    } else {
                        "sign_in_failed"
                    };
                    agent_flow::on_sign_in(&state, agent)
                }
                AgentDecision::ClaimNext(state) => {
                    let Some(agent) = state.agent else {
                        let (next, reply) = agent_flow::start();
                        let twiml = self.save(tx, row, &next, &reply, now)?;
                        return Ok(Self::report(twiml, "not_signed_in"));
                    };
                    let origin = Self::agent_origin(row, &state);
                    let claimed = self
                        .registry
                        .claim_next_in(tx, agent, &state.passed, &origin)?;
                    let offer = claimed.map(|call| offer(&call, now)).transpose()?;
                    if offer.is_some() {
                        outcome = "offered";
                    } else if outcome == "asked" {
                        outcome = "queue_empty";
                    }
                    let (next, reply) = agent_flow::on_claim(&state, offer, preface.take());
                    let twiml = self.save(tx, row, &next, &reply, now)?;
                    return Ok(Self::report(twiml, outcome));
                }
                AgentDecision::Connect(state, call_sid) => {
                    // An offer is only ever made to a signed-in agent; a
                    // state saying otherwise starts over at sign-in.
                    let Some(agent) = state.agent else {
                        decision = AgentDecision::ClaimNext(state);
                        continue;
                    };
                    let origin = Self::agent_origin(row, &state);
                    let bridged = self.registry.bridge_in(tx, &call_sid, agent, &origin)?;
                    if let Some(call) = &bridged {
                        waited_secs = Some(seconds_since(&call.routed_at, now) as f64);
                        outcome = "connected";
                    } else {
                        preface = Some(PromptKey::AgentCallerLeft);
                        outcome = "caller_left";
                    }
                    agent_flow::on_connect(&state, bridged.is_some())
                }
                AgentDecision::Pass(state, call_sid) => {
                    let origin = Self::agent_origin(row, &state);
                    let why = format!(
                        "passed back by agent {}",
                        state.agent.map(|a| a.to_string()).unwrap_or_default()
                    );
                    self.registry
                        .release_claim_in(tx, &call_sid, &why, &origin)?;
                    outcome = "passed";
                    AgentDecision::ClaimNext(Box::new(agent_flow::on_pass(&state, &call_sid)))
                }
            };
        }
    }

    /// An agent's call ended: a caller they claimed but did not connect
    /// goes back to the front of their class.
    pub(super) fn agent_hung_up(
        &self,
        tx: &rusqlite::Connection,
        row: &CallRow,
        state: &AgentState,
    ) -> Result<()> {
        let Some(agent) = state.agent else {
            return Ok(());
        };
        if let Some(held) = queue::claimed_by(tx, agent)? {
            let origin = Self::agent_origin(row, state);
            let why = format!("agent {agent} hung up before connecting");
            self.registry
                .release_claim_in(tx, &held.call_sid, &why, &origin)?;
        }
        Ok(())
    }
}

fn offer(call: &QueuedCall, now: DateTime<Utc>) -> Result<Offer> {
    let context: QueueContext = super::from_json(&call.context)?;
    Ok(Offer {
        call_sid: call.call_sid.clone(),
        context,
        waited_secs: seconds_since(&call.routed_at, now),
    })
}

fn seconds_since(at: &str, now: DateTime<Utc>) -> i64 {
    DateTime::parse_from_rfc3339(at)
        .map(|t| (now - t.to_utc()).num_seconds())
        .unwrap_or(0)
}
