//! The caller's side of a step: PIN checks, rulings on requests about
//! someone else's account, and case decisions by phone.

use chrono::{DateTime, Duration, Utc};

use super::{Ivr, PinCheck};
use crate::domain::account::UserId;
use crate::domain::approval::{Basis, Ruling};
use crate::domain::audit::{Actor, Channel, format_time};
use crate::domain::case::{CaseNumber, Decision as CaseDecision};
use crate::error::{Error, Result};
use crate::flow::{
    CallState, CaseSummary, OnBehalf, PinOutcome, Subject, SubjectRuling, VerifiedCaller,
};
use crate::registry::{Attempt, Origin, Rejection, ReplyOutcome, Verdict};
use crate::storage::accounts;
use crate::storage::calls::{self, CallRow};

impl Ivr {
    /// Validates a PIN entry inside the step's transaction, unless the
    /// calling number is throttled, and counts failures by number.
    pub(super) fn check_pin(
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

    pub(super) fn phone_origin(row: &CallRow, actor: Actor) -> Origin {
        Origin {
            actor,
            channel: Channel::Phone,
            call_sid: Some(row.call_sid.clone()),
        }
    }

    /// Rules on a verified caller's request about `user_id`'s account;
    /// opens (or reuses) a case when an approval is needed. Unknown IDs
    /// and every refusal give the same ruling.
    pub(super) fn rule_on_subject(
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
    pub(super) fn find_case(
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
    pub(super) fn decide_case(
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
