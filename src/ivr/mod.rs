//! The phone line: each webhook step as one transaction over the call's
//! stored state, the flow machine, and (for PIN entries) the registry.
//!
//! Every step carries a step number in its URL. The number the call
//! expects next is stored with the call, together with the answer given to
//! the step before, so a retried request gets the same answer without
//! doing anything twice, and a stale or reordered one changes nothing.

mod agent;
mod caller;
pub mod render;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::agent_flow::{self, AgentPhase, AgentState};
use crate::clock::Clock;
use crate::domain::audit::{Actor, Channel, format_time};
use crate::error::{Error, Result};
use crate::flow::{self, CallState, Decision, Gather, Input, Phase, QueueContext};
use crate::prompts::{Language, PromptCatalog};
use crate::registry::{Origin, Registry};
use crate::storage::calls::{self, CallRow, CallUpdate};
use crate::storage::queue;
use crate::storage::{Durability, Pending};

/// Limits of the phone line.
#[derive(Debug, Clone)]
pub struct IvrConfig {
    /// The server's public address as the provider calls it, without a
    /// trailing slash; action URLs are built on it.
    pub base_url: String,
    /// A call with no webhook for this long loses its state.
    pub idle_timeout: Duration,
    /// Failed verifications per hour from one calling number after which
    /// that number's PIN entries are refused unchecked.
    pub caller_failures_per_hour: u32,
    /// Failed verifications per hour across all callers past which a
    /// warning is raised.
    pub failures_per_hour: u32,
}

impl IvrConfig {
    /// Defaults for a server reached at `base_url`.
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            idle_timeout: Duration::minutes(15),
            caller_failures_per_hour: 10,
            failures_per_hour: 200,
        }
    }
}

/// What a webhook carries that the flow needs.
#[derive(Debug, Clone, Default)]
pub struct VoiceRequest {
    /// The provider's call ID.
    pub call_sid: String,
    /// Caller ID.
    pub from: Option<String>,
    /// The number called.
    pub to: Option<String>,
    /// Keys pressed, for gather answers.
    pub digits: Option<String>,
    /// STIR/SHAKEN attestation of the caller ID.
    pub stir_verstat: Option<String>,
}

/// What happened in one step, for the log line and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// The TwiML to answer.
    pub twiml: String,
    /// One word for the log: `greeted`, `verified`, `replayed`, …
    pub outcome: &'static str,
    /// A new call started.
    pub new_call: bool,
    /// A PIN was checked (or refused unchecked).
    pub check: Option<PinCheck>,
    /// A caller was connected to an agent after waiting this long.
    pub waited_secs: Option<f64>,
}

/// The result of a PIN entry, for metrics and logs (never for callers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinCheck {
    /// Verified.
    pub succeeded: bool,
    /// This failure locked the user's PIN.
    pub locked_now: bool,
    /// Refused unchecked: the calling number is throttled.
    pub throttled: bool,
    /// Failures across all callers in the last hour passed the limit.
    pub failure_rate_exceeded: bool,
}

/// Runs the phone line over a registry and a prompt catalog.
#[derive(Debug)]
pub struct Ivr {
    registry: Arc<Registry>,
    prompts: Arc<PromptCatalog>,
    config: IvrConfig,
    clock: Arc<dyn Clock>,
}

impl Ivr {
    /// A phone line.
    pub fn new(
        registry: Arc<Registry>,
        prompts: Arc<PromptCatalog>,
        config: IvrConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            registry,
            prompts,
            config,
            clock,
        }
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn render<S: LineState>(
        &self,
        reply: &flow::Reply,
        state: &S,
        row: &CallRow,
        step: u32,
    ) -> String {
        let target = render::Target {
            base_url: &self.config.base_url,
            call_sid: &row.call_sid,
            step,
        };
        render::render(reply, state.language(), &self.prompts, target)
    }

    fn report(twiml: String, outcome: &'static str) -> StepReport {
        StepReport {
            twiml,
            outcome,
            new_call: false,
            check: None,
            waited_secs: None,
        }
    }

    /// The answer when a step cannot be handled at all (the database is
    /// unreachable): an apology and an agent, unverified.
    pub fn fallback(&self) -> String {
        render::fallback(&self.prompts, Language::EnUs)
    }

    /// The answer to `hook` when it cannot be handled: the agent line's
    /// own fallback for its webhooks, the caller's for the rest.
    pub fn fallback_for(&self, hook: Hook) -> String {
        if hook.is_agent_line() {
            render::agent_fallback(&self.prompts)
        } else {
            self.fallback()
        }
    }

    /// Submits one webhook's step to the batching writer. The answer
    /// resolves once the step is committed, and on disk if it verified,
    /// rotated or audited anything; the step runs in the tracing span
    /// current here, so its log lines carry the call.
    pub fn answer(
        self: &Arc<Self>,
        request: VoiceRequest,
        hook: Hook,
    ) -> Pending<StepReport, Error> {
        let ivr = Arc::clone(self);
        let span = tracing::Span::current();
        self.registry
            .db()
            .submit_with(Durability::OnDiskIfAudited, move |tx| {
                span.in_scope(|| ivr.answer_in(tx, &request, hook))
            })
    }

    /// `POST /voice/status` with a final `status` (see
    /// [`is_final_status`]): the call ends, as [`Ivr::answer`] submits it.
    /// Resolves to whether a call was ended.
    pub fn end_call(self: &Arc<Self>, call_sid: String, status: String) -> Pending<bool, Error> {
        let ivr = Arc::clone(self);
        let span = tracing::Span::current();
        self.registry
            .db()
            .submit_with(Durability::OnDiskIfAudited, move |tx| {
                span.in_scope(|| ivr.status_in(tx, &call_sid, &status))
            })
    }

    fn answer_in(
        &self,
        tx: &rusqlite::Connection,
        request: &VoiceRequest,
        hook: Hook,
    ) -> Result<StepReport> {
        match hook {
            Hook::Incoming => {
                let (state, reply) = flow::start();
                self.begin_in(tx, request, "caller", state, reply, "greeted")
            }
            Hook::AgentLine => {
                let (state, reply) = agent_flow::start();
                self.begin_in(tx, request, "agent", state, reply, "agent_line")
            }
            Hook::Gather { gather, step } => self.gather_in(tx, request, gather, step),
        }
    }

    fn begin_in<S: LineState>(
        &self,
        tx: &rusqlite::Connection,
        request: &VoiceRequest,
        kind: &str,
        state: S,
        reply: flow::Reply,
        outcome: &'static str,
    ) -> Result<StepReport> {
        let now = format_time(self.clock.now());
        let Some(row) = calls::get(tx, &request.call_sid)? else {
            let row = CallRow {
                call_sid: request.call_sid.clone(),
                from_number: request.from.clone(),
                to_number: request.to.clone(),
                stir_verstat: request.stir_verstat.clone(),
                state: to_json(&state)?,
                step: 1,
                updated_at: now.clone(),
                ended_at: None,
                kind: kind.to_owned(),
            };
            let twiml = self.render(&reply, &state, &row, 1);
            calls::insert(tx, &row, &twiml)?;
            let mut report = Self::report(twiml, outcome);
            report.new_call = kind == "caller";
            return Ok(report);
        };
        if row.step == 1 && row.ended_at.is_none() && row.kind == kind {
            return Ok(Self::report(last_reply(tx, &row)?, "replayed"));
        }
        // The same CallSid arriving at the start again is out of order;
        // repeat where the call stands.
        let twiml = if row.kind == "agent" {
            let state: AgentState = from_json(&row.state)?;
            self.render(&state.repeat(), &state, &row, row.step)
        } else {
            let state: CallState = from_json(&row.state)?;
            self.render(&state.repeat(), &state, &row, row.step)
        };
        Ok(Self::report(twiml, "out_of_order"))
    }

    fn gather_in(
        &self,
        tx: &rusqlite::Connection,
        request: &VoiceRequest,
        gather: Gather,
        step: u32,
    ) -> Result<StepReport> {
        let now = self.clock.now();
        let keys = request.digits.as_deref().unwrap_or("");
        let Some(row) = calls::get(tx, &request.call_sid)? else {
            let twiml = render::restart_at_incoming(&self.prompts, &self.config.base_url);
            return Ok(Self::report(twiml, "unknown_call"));
        };
        if row.kind == "agent" {
            return match self.guard::<AgentState>(tx, &row, gather, step, keys, now)? {
                Guarded::Answer(report) => Ok(report),
                Guarded::Run(state) => self.agent_step(tx, &row, &state, keys, now),
            };
        }
        match self.guard::<CallState>(tx, &row, gather, step, keys, now)? {
            Guarded::Answer(report) => Ok(report),
            Guarded::Run(state) => self.caller_step(tx, &row, &state, keys, now),
        }
    }

    /// Decides whether a gather's answer runs the flow, or gets an answer
    /// without it: a replay for a retry, the current question for a stale
    /// or reordered request, a fresh start for a lapsed call.
    fn guard<S: LineState>(
        &self,
        tx: &rusqlite::Connection,
        row: &CallRow,
        gather: Gather,
        step: u32,
        keys: &str,
        now: DateTime<Utc>,
    ) -> Result<Guarded<S>> {
        let state: S = from_json(&row.state)?;
        if row.ended_at.is_some() {
            let twiml = self.render(&state.repeat(), &state, row, row.step);
            return Ok(Guarded::Answer(Self::report(twiml, "call_over")));
        }
        // Checked: the step comes from the URL, and `u32::MAX + 1` would
        // panic the step (and answer the fallback) instead of repeating it.
        if step.checked_add(1) == Some(row.step) {
            return Ok(Guarded::Answer(Self::report(
                last_reply(tx, row)?,
                "replayed",
            )));
        }
        let current = step == row.step && state.awaits() == Some(gather);
        if !current || !is_keypad_input(keys) {
            let twiml = self.render(&state.repeat(), &state, row, row.step);
            return Ok(Guarded::Answer(Self::report(twiml, "out_of_order")));
        }
        if self.lapsed(row, now) {
            let (fresh, reply) = state.restart();
            let twiml = self.save(tx, row, &fresh, &reply, now)?;
            return Ok(Guarded::Answer(Self::report(twiml, "restarted")));
        }
        Ok(Guarded::Run(state))
    }

    fn caller_step(
        &self,
        tx: &rusqlite::Connection,
        row: &CallRow,
        state: &CallState,
        keys: &str,
        now: DateTime<Utc>,
    ) -> Result<StepReport> {
        let (next, reply, check) = match flow::on_input(state, input(keys)) {
            Decision::Reply(next, reply) => (*next, reply, None),
            Decision::CheckPin { user_id } => {
                let (outcome, check) = self.check_pin(tx, row, &user_id, keys, now)?;
                let (next, reply) = flow::on_pin_outcome(state, outcome);
                (next, reply, Some(check))
            }
            Decision::RuleOnSubject { user_id } => {
                let ruling = self.rule_on_subject(tx, row, state, &user_id)?;
                let (next, reply) = flow::on_subject_ruling(state, ruling);
                (next, reply, None)
            }
            Decision::FindCase { case_number } => {
                let case = self.find_case(tx, state, &case_number)?;
                let (next, reply) = flow::on_case_lookup(state, case);
                (next, reply, None)
            }
            Decision::DecideCase {
                case_number,
                approve,
            } => {
                let decided = self.decide_case(tx, row, state, &case_number, approve)?;
                let (next, reply) = flow::on_case_decided(state, decided);
                (next, reply, None)
            }
        };
        let twiml = self.save(tx, row, &next, &reply, now)?;
        let outcome = match (check, next.phase) {
            (Some(c), _) if c.succeeded => "verified",
            (Some(_), _) => "not_verified",
            (None, Phase::Routed(_)) => "routed",
            (None, Phase::Ended) => "hung_up",
            (None, Phase::Awaiting(_)) => "asked",
        };
        let mut report = Self::report(twiml, outcome);
        report.check = check;
        Ok(report)
    }

    /// The end of a call the provider reports over: a caller leaves the
    /// queue; an agent's unconnected claim goes back. Returns whether a
    /// call was ended.
    fn status_in(&self, tx: &rusqlite::Connection, call_sid: &str, status: &str) -> Result<bool> {
        if !is_final_status(status) {
            return Ok(false);
        }
        let now = format_time(self.clock.now());
        let Some(row) = calls::get(tx, call_sid)? else {
            return Ok(false);
        };
        let json = if row.kind == "agent" {
            let mut state: AgentState = from_json(&row.state)?;
            self.agent_hung_up(tx, &row, &state)?;
            agent_flow::end(&mut state);
            to_json(&state)?
        } else {
            let origin = Origin {
                actor: Actor::Caller,
                channel: Channel::Phone,
                call_sid: Some(row.call_sid.clone()),
            };
            self.registry.caller_left_in(tx, call_sid, &origin)?;
            let mut state: CallState = from_json(&row.state)?;
            flow::end(&mut state);
            to_json(&state)?
        };
        Ok(calls::end(tx, call_sid, &json, status, &now)?)
    }

    /// `POST /voice/hold`: the waiting caller's hold loop, with their
    /// current place in line. Reads only.
    pub fn hold(&self, call_sid: &str) -> Result<String> {
        let conn = self.registry.db().conn()?;
        let language = match calls::get(&conn, call_sid)? {
            Some(row) if row.kind == "caller" => from_json::<CallState>(&row.state)?.language(),
            _ => Language::EnUs,
        };
        let position = queue::position(&conn, call_sid)?;
        Ok(render::hold(
            &self.prompts,
            language,
            &self.config.base_url,
            position,
        ))
    }

    /// The hold loop when the queue cannot be read.
    pub fn hold_without_position(&self) -> String {
        render::hold(&self.prompts, Language::EnUs, &self.config.base_url, None)
    }

    fn lapsed(&self, row: &CallRow, now: DateTime<Utc>) -> bool {
        DateTime::parse_from_rfc3339(&row.updated_at)
            .map(|t| now - t.to_utc() > self.config.idle_timeout)
            .unwrap_or(true)
    }

    /// Stores the new state, the next step and the answer; a call routed
    /// just now joins the back of its class in the queue.
    fn save<S: LineState>(
        &self,
        tx: &rusqlite::Connection,
        row: &CallRow,
        state: &S,
        reply: &flow::Reply,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let step = row.step + 1;
        let twiml = self.render(reply, state, row, step);
        let json = to_json(state)?;
        let now_text = format_time(now);
        let context = state.queue_context();
        // Only a routed state can be newly routed; the stored one is read
        // again just then.
        let newly_routed = context.is_some()
            && !from_json::<S>(&row.state).is_ok_and(|before| before.queue_context().is_some());
        let context_json = context.as_ref().map(to_json).transpose()?;
        let update = CallUpdate {
            state: &json,
            step,
            reply: &twiml,
            now: &now_text,
            verified_user_id: state.verified_user(),
            queue_class: context.as_ref().map(|c| c.class.as_str()),
            queue_context: context_json.as_deref(),
            pending_case: state.pending_case(),
            enqueue_at: newly_routed.then(|| now.timestamp_micros()),
        };
        calls::update(tx, &row.call_sid, &update)?;
        if state.is_ended() {
            calls::end(tx, &row.call_sid, &json, "hung_up", &now_text)?;
        }
        Ok(twiml)
    }
}

/// Which webhook a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `POST /voice/incoming`: a caller's call begins.
    Incoming,
    /// `POST /voice/agent`: an agent dials the agent line.
    AgentLine,
    /// A gather's answer, at the gather's route with the step its URL
    /// carried.
    Gather {
        /// The route it arrived at.
        gather: Gather,
        /// The step number from its URL.
        step: u32,
    },
}

impl Hook {
    /// Whether the request came in on the agent line.
    pub fn is_agent_line(self) -> bool {
        match self {
            Hook::Incoming => false,
            Hook::AgentLine => true,
            Hook::Gather { gather, .. } => gather.is_agent_line(),
        }
    }
}

/// Whether a status callback's `CallStatus` says the call is over.
pub fn is_final_status(status: &str) -> bool {
    ["completed", "busy", "failed", "no-answer", "canceled"].contains(&status)
}

/// What a step guard decided.
enum Guarded<S> {
    /// Answer without running the flow.
    Answer(StepReport),
    /// Run the flow on this state.
    Run(S),
}

/// What the IVR needs of either line's state.
trait LineState: Serialize + DeserializeOwned {
    /// The gather the call waits on.
    fn awaits(&self) -> Option<Gather>;
    /// Where the call stands, said again.
    fn repeat(&self) -> flow::Reply;
    /// A fresh start after the call lapsed.
    fn restart(&self) -> (Self, flow::Reply);
    /// The language of its prompts.
    fn language(&self) -> Language;
    /// The agent's context, once routed to the queue.
    fn queue_context(&self) -> Option<QueueContext> {
        None
    }
    /// The verified user, if any.
    fn verified_user(&self) -> Option<i64> {
        None
    }
    /// The case a routed call waits on.
    fn pending_case(&self) -> Option<&str> {
        None
    }
    /// Whether the call is over.
    fn is_ended(&self) -> bool;
}

impl LineState for CallState {
    fn awaits(&self) -> Option<Gather> {
        match self.phase {
            Phase::Awaiting(gather) => Some(gather),
            _ => None,
        }
    }
    fn repeat(&self) -> flow::Reply {
        flow::repeat(self)
    }
    fn restart(&self) -> (Self, flow::Reply) {
        flow::restart(self)
    }
    fn language(&self) -> Language {
        self.language.into()
    }
    fn queue_context(&self) -> Option<QueueContext> {
        CallState::queue_context(self)
    }
    fn verified_user(&self) -> Option<i64> {
        self.verified.as_ref().map(|v| v.user_id.to_stored())
    }
    fn pending_case(&self) -> Option<&str> {
        self.queue_context()?;
        self.on_behalf
            .as_ref()
            .filter(|r| r.pending)
            .and_then(|r| r.case_number.as_deref())
    }
    fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }
}

impl LineState for AgentState {
    fn awaits(&self) -> Option<Gather> {
        match self.phase {
            AgentPhase::Awaiting(gather) => Some(gather),
            AgentPhase::Ended => None,
        }
    }
    fn repeat(&self) -> flow::Reply {
        agent_flow::repeat(self)
    }
    fn restart(&self) -> (Self, flow::Reply) {
        agent_flow::start()
    }
    fn language(&self) -> Language {
        Language::EnUs
    }
    fn is_ended(&self) -> bool {
        self.phase == AgentPhase::Ended
    }
}

/// The answer the call's previous step got, for its retry.
fn last_reply(tx: &rusqlite::Connection, row: &CallRow) -> Result<String> {
    // The row was read in this same transaction, so it is there.
    Ok(calls::last_reply(tx, &row.call_sid)?.unwrap_or_default())
}

fn input(keys: &str) -> Input<'_> {
    if keys.is_empty() {
        Input::Silence
    } else {
        Input::Digits(keys)
    }
}

/// Keypad input as providers send it: digits, `*` and `#`, and not more
/// than any gather here asks for.
fn is_keypad_input(keys: &str) -> bool {
    keys.len() <= 32
        && keys
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::Invalid(format!("cannot store call state: {e}")))
}

fn from_json<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::Invalid(format!("stored call state is unreadable: {e}")))
}
