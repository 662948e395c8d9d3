//! The phone line: each webhook step as one transaction over the call's
//! stored state, the flow machine, and (for PIN entries) the registry.
//!
//! Every step carries a step number in its URL. The number the call
//! expects next is stored with the call, together with the answer given to
//! the step before, so a retried request gets the same answer without
//! doing anything twice, and a stale or reordered one changes nothing.

pub mod render;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::clock::Clock;
use crate::domain::account::UserId;
use crate::domain::approval::{Basis, Ruling};
use crate::domain::audit::{Actor, Channel, format_time};
use crate::domain::case::{CaseNumber, Decision as CaseDecision};
use crate::error::{Error, Result};
use crate::flow::{
    self, CallState, CaseSummary, Decision, Gather, Input, OnBehalf, Phase, PinOutcome, Subject,
    SubjectRuling, VerifiedCaller,
};
use crate::prompts::{Language, PromptCatalog};
use crate::registry::ReplyOutcome;
use crate::registry::{Attempt, Origin, Registry, Rejection, Verdict};
use crate::storage::accounts;
use crate::storage::calls::{self, CallRow, CallUpdate};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The TwiML to answer.
    pub twiml: String,
    /// One word for the log: `greeted`, `verified`, `replayed`, …
    pub outcome: &'static str,
    /// A new call started.
    pub new_call: bool,
    /// A PIN was checked (or refused unchecked).
    pub check: Option<PinCheck>,
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

    fn render(&self, reply: &flow::Reply, state: &CallState, step: u32) -> String {
        render::render(
            reply,
            state.language.into(),
            &self.prompts,
            &self.config.base_url,
            step,
        )
    }

    fn report(twiml: String, outcome: &'static str) -> StepReport {
        StepReport {
            twiml,
            outcome,
            new_call: false,
            check: None,
        }
    }

    /// The answer when a step cannot be handled at all (the database is
    /// unreachable): an apology and an agent, unverified.
    pub fn fallback(&self) -> String {
        render::fallback(&self.prompts, Language::EnUs)
    }

    /// `POST /voice/incoming`: a call begins (or its first request is
    /// retried).
    pub fn incoming(&self, request: &VoiceRequest) -> Result<StepReport> {
        let now = self.clock.now();
        self.registry.db().write(|tx| {
            let Some(row) = calls::get(tx, &request.call_sid)? else {
                let (state, reply) = flow::start();
                let twiml = self.render(&reply, &state, 1);
                calls::insert(
                    tx,
                    &CallRow {
                        call_sid: request.call_sid.clone(),
                        from_number: request.from.clone(),
                        to_number: request.to.clone(),
                        stir_verstat: request.stir_verstat.clone(),
                        state: to_json(&state)?,
                        step: 1,
                        last_reply: twiml.clone(),
                        updated_at: format_time(now),
                        ended_at: None,
                    },
                )?;
                let mut report = Self::report(twiml, "greeted");
                report.new_call = true;
                return Ok(report);
            };
            if row.step == 1 && row.ended_at.is_none() {
                return Ok(Self::report(row.last_reply, "replayed"));
            }
            let state = from_json(&row.state)?;
            Ok(Self::report(
                self.render(&flow::repeat(&state), &state, row.step),
                "out_of_order",
            ))
        })
    }

    /// A gather's answer arriving at `gather`'s route with step `step`.
    pub fn gather(&self, request: &VoiceRequest, gather: Gather, step: u32) -> Result<StepReport> {
        let now = self.clock.now();
        self.registry.db().write(|tx| {
            let Some(row) = calls::get(tx, &request.call_sid)? else {
                let twiml = render::restart_at_incoming(&self.prompts, &self.config.base_url);
                return Ok(Self::report(twiml, "unknown_call"));
            };
            let state = from_json(&row.state)?;
            if row.ended_at.is_some() {
                let twiml = self.render(&flow::repeat(&state), &state, row.step);
                return Ok(Self::report(twiml, "call_over"));
            }
            if step + 1 == row.step {
                return Ok(Self::report(row.last_reply, "replayed"));
            }
            let current = step == row.step && state.phase == Phase::Awaiting(gather);
            let keys = request.digits.as_deref().unwrap_or("");
            if !current || !is_keypad_input(keys) {
                let twiml = self.render(&flow::repeat(&state), &state, row.step);
                return Ok(Self::report(twiml, "out_of_order"));
            }
            if self.lapsed(&row, now) {
                let (fresh, reply) = flow::restart(&state);
                let twiml = self.save(tx, &row, &fresh, &reply, now)?;
                return Ok(Self::report(twiml, "restarted"));
            }

            let input = if keys.is_empty() {
                Input::Silence
            } else {
                Input::Digits(keys)
            };
            let (next, reply, check) = match flow::on_input(&state, input) {
                Decision::Reply(next, reply) => (*next, reply, None),
                Decision::CheckPin { user_id } => {
                    let (outcome, check) = self.check_pin(tx, &row, &user_id, keys, now)?;
                    let (next, reply) = flow::on_pin_outcome(&state, outcome);
                    (next, reply, Some(check))
                }
                Decision::RuleOnSubject { user_id } => {
                    let ruling = self.rule_on_subject(tx, &row, &state, &user_id)?;
                    let (next, reply) = flow::on_subject_ruling(&state, ruling);
                    (next, reply, None)
                }
                Decision::FindCase { case_number } => {
                    let case = self.find_case(tx, &state, &case_number)?;
                    let (next, reply) = flow::on_case_lookup(&state, case);
                    (next, reply, None)
                }
                Decision::DecideCase {
                    case_number,
                    approve,
                } => {
                    let decided = self.decide_case(tx, &row, &state, &case_number, approve)?;
                    let (next, reply) = flow::on_case_decided(&state, decided);
                    (next, reply, None)
                }
            };
            let twiml = self.save(tx, &row, &next, &reply, now)?;
            let outcome = match (check, next.phase) {
                (Some(c), _) if c.succeeded => "verified",
                (Some(_), _) => "not_verified",
                (None, Phase::Routed(_)) => "routed",
                (None, Phase::Ended) => "hung_up",
                (None, Phase::Awaiting(_)) => "asked",
            };
            Ok(StepReport {
                twiml,
                outcome,
                new_call: false,
                check,
            })
        })
    }

    /// `POST /voice/status`: the provider reports the call over (or some
    /// other progress, which changes nothing). Returns whether a call was
    /// ended.
    pub fn status(&self, call_sid: &str, status: &str) -> Result<bool> {
        const FINAL: &[&str] = &["completed", "busy", "failed", "no-answer", "canceled"];
        if !FINAL.contains(&status) {
            return Ok(false);
        }
        let now = format_time(self.clock.now());
        self.registry.db().write(|tx| {
            let Some(row) = calls::get(tx, call_sid)? else {
                return Ok(false);
            };
            let mut state = from_json(&row.state)?;
            flow::end(&mut state);
            Ok(calls::end(tx, call_sid, &to_json(&state)?, status, &now)?)
        })
    }

    fn lapsed(&self, row: &CallRow, now: DateTime<Utc>) -> bool {
        DateTime::parse_from_rfc3339(&row.updated_at)
            .map(|t| now - t.to_utc() > self.config.idle_timeout)
            .unwrap_or(true)
    }

    fn save(
        &self,
        tx: &rusqlite::Connection,
        row: &CallRow,
        state: &CallState,
        reply: &flow::Reply,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let step = row.step + 1;
        let twiml = self.render(reply, state, step);
        let json = to_json(state)?;
        let now = format_time(now);
        let context = state.queue_context();
        let context_json = context
            .as_ref()
            .map(|c| {
                serde_json::to_string(c)
                    .map_err(|e| Error::Invalid(format!("cannot store queue context: {e}")))
            })
            .transpose()?;
        let pending_case = state
            .on_behalf
            .as_ref()
            .filter(|r| r.pending && context.is_some())
            .and_then(|r| r.case_number.as_deref());
        let update = CallUpdate {
            state: &json,
            step,
            reply: &twiml,
            now: &now,
            verified_user_id: state.verified.as_ref().map(|v| v.user_id.to_stored()),
            queue_class: context.as_ref().map(|c| c.class.as_str()),
            queue_context: context_json.as_deref(),
            pending_case,
        };
        calls::update(tx, &row.call_sid, &update)?;
        if state.phase == Phase::Ended {
            calls::end(tx, &row.call_sid, &json, "hung_up", &now)?;
        }
        Ok(twiml)
    }

    /// Validates a PIN entry inside the step's transaction, unless the
    /// calling number is throttled, and counts failures by number.
    fn check_pin(
        &self,
        tx: &rusqlite::Connection,
        row: &CallRow,
        user_id: &str,
        digits: &str,
        now: DateTime<Utc>,
    ) -> Result<(PinOutcome, PinCheck)> {
        let caller = row.from_number.as_deref().unwrap_or("unknown");
        let hour_ago = format_time(now - Duration::hours(1));
        let mut check = PinCheck {
            succeeded: false,
            locked_now: false,
            throttled: false,
            failure_rate_exceeded: false,
        };
        let from_caller = calls::failures_since(tx, Some(caller), &hour_ago)?;
        let matched =
            self.registry
                .caller_id_matches_in(tx, user_id, row.from_number.as_deref())?;
        let verdict = if from_caller >= self.config.caller_failures_per_hour {
            check.throttled = true;
            tracing::warn!(
                call.sid = %row.call_sid,
                failures = from_caller,
                "calling number throttled: PIN entry refused unchecked"
            );
            Verdict::Rejected(Rejection::WrongPin { locked_now: false })
        } else {
            let attempt = Attempt {
                user_id,
                digits,
                origin: Origin {
                    actor: Actor::Caller,
                    channel: Channel::Phone,
                    call_sid: Some(row.call_sid.clone()),
                },
                note: Some(format!(
                    "caller ID matched: {}; StirVerstat: {}",
                    if matched { "yes" } else { "no" },
                    row.stir_verstat.as_deref().unwrap_or("none")
                )),
            };
            self.registry.validate_pin_in(tx, &attempt)?
        };
        let user = match verdict {
            Verdict::Verified(user) => user,
            Verdict::Rejected(rejection) => {
                check.locked_now = matches!(rejection, Rejection::WrongPin { locked_now: true });
                let now_text = format_time(now);
                calls::record_failure(tx, caller, &now_text, &hour_ago)?;
                let all = calls::failures_since(tx, None, &hour_ago)?;
                check.failure_rate_exceeded = all > self.config.failures_per_hour;
                if all == self.config.failures_per_hour + 1 {
                    tracing::warn!(
                        failures = all,
                        "verification failures across all callers passed the hourly limit"
                    );
                }
                if from_caller + 1 == self.config.caller_failures_per_hour {
                    tracing::warn!(call.sid = %row.call_sid, "calling number reached its hourly failure limit and is throttled");
                }
                return Ok((PinOutcome::Rejected, check));
            }
        };
        check.succeeded = true;
        let caller = VerifiedCaller {
            user_id: user.user_id,
            name: user.name,
            role: user.role.as_str().to_owned(),
            practice: user.practice,
            verified_at: format_time(now),
            caller_id_matched: matched,
            stir_verstat: row.stir_verstat.clone(),
        };
        Ok((PinOutcome::Verified(caller), check))
    }
}

impl Ivr {
    fn phone_origin(row: &CallRow, actor: Actor) -> Origin {
        Origin {
            actor,
            channel: Channel::Phone,
            call_sid: Some(row.call_sid.clone()),
        }
    }

    /// Rules on a verified caller's request about `user_id`'s account;
    /// opens (or reuses) a case when an approval is needed. Unknown IDs
    /// and every refusal give the same ruling.
    fn rule_on_subject(
        &self,
        tx: &rusqlite::Connection,
        row: &CallRow,
        state: &CallState,
        user_id: &str,
    ) -> Result<SubjectRuling> {
        let Some(caller) = &state.verified else {
            return Ok(SubjectRuling::Refused);
        };
        let subject = match UserId::parse(user_id) {
            Ok(id) => accounts::user(tx, id)?,
            Err(_) => None,
        };
        let (Some(requestor), Some(subject)) = (accounts::user(tx, caller.user_id)?, subject)
        else {
            return Ok(SubjectRuling::Refused);
        };
        let about = Subject {
            user_id: subject.user_id,
            name: subject.name.clone(),
            role: subject.role.as_str().to_owned(),
        };
        let request = |allowed: String, case_number: Option<String>, pending| OnBehalf {
            subject: about.clone(),
            allowed,
            case_number,
            pending,
        };
        Ok(match self.registry.ruling_in(tx, &requestor, &subject)? {
            Ruling::Assist(Basis::OwnAccount) => {
                SubjectRuling::Assist(request("own account".into(), None, false))
            }
            Ruling::Assist(Basis::ProviderForOwnStaff) => {
                SubjectRuling::Assist(request("provider for own staff".into(), None, false))
            }
            Ruling::Assist(Basis::Approved { by, case_number }) => {
                let name = accounts::user(tx, by)?.map_or_else(|| format!("user {by}"), |u| u.name);
                let allowed = format!("approved by {name} in case {case_number}");
                SubjectRuling::Assist(request(allowed, Some(case_number), false))
            }
            Ruling::NeedsApproval(approvers) => {
                let origin = Self::phone_origin(row, Actor::User(requestor.user_id));
                match self
                    .registry
                    .open_case_in(tx, &requestor, &subject, approvers, &origin)
                {
                    Ok((number, _)) => {
                        let allowed = format!(
                            "approval pending in case {number}: do not discuss {}'s account",
                            subject.name
                        );
                        SubjectRuling::Pending(request(allowed, Some(number.to_string()), true))
                    }
                    // No one could approve: refused like any other.
                    Err(Error::Invalid(_)) => SubjectRuling::Refused,
                    Err(e) => return Err(e),
                }
            }
            Ruling::Refused => SubjectRuling::Refused,
        })
    }

    /// The case a verified provider keyed in, if it awaits their decision.
    fn find_case(
        &self,
        tx: &rusqlite::Connection,
        state: &CallState,
        case_number: &str,
    ) -> Result<Option<CaseSummary>> {
        let (Some(caller), Ok(number)) = (&state.verified, CaseNumber::parse(case_number)) else {
            return Ok(None);
        };
        let case = self
            .registry
            .case_for_approver_in(tx, &number, caller.user_id)?;
        Ok(case.map(|c| CaseSummary {
            case_number: c.case_number.to_string(),
            requestor_name: c.requestor.name,
            subject_name: c.subject.name,
        }))
    }

    /// Records a provider's decision; `None` if the case could no longer
    /// take it.
    fn decide_case(
        &self,
        tx: &rusqlite::Connection,
        row: &CallRow,
        state: &CallState,
        case_number: &str,
        approve: bool,
    ) -> Result<Option<bool>> {
        let (Some(caller), Ok(number)) = (&state.verified, CaseNumber::parse(case_number)) else {
            return Ok(None);
        };
        let decision = if approve {
            CaseDecision::Approve
        } else {
            CaseDecision::Decline
        };
        let origin = Self::phone_origin(row, Actor::User(caller.user_id));
        match self
            .registry
            .reply_to_case_in(tx, &number, caller.user_id, decision, None, &origin)
        {
            Ok(ReplyOutcome::Approved) => Ok(Some(true)),
            Ok(ReplyOutcome::Declined) => Ok(Some(false)),
            Ok(ReplyOutcome::RecordedOnly) | Err(Error::Invalid(_) | Error::UnknownCase(_)) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
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

fn to_json(state: &CallState) -> Result<String> {
    serde_json::to_string(state)
        .map_err(|e| Error::Invalid(format!("cannot store call state: {e}")))
}

fn from_json(text: &str) -> Result<CallState> {
    serde_json::from_str(text)
        .map_err(|e| Error::Invalid(format!("stored call state is unreadable: {e}")))
}
