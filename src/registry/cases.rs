//! Support cases: opening one for a request that needs approval, replies
//! from approvers and others, and the rulings that depend on them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Origin, Registry};
use crate::domain::account::{User, UserId};
use crate::domain::approval::{self, Approval, Approvers, Party as RuleParty, Ruling};
use crate::domain::audit::{EventKind, format_time};
use crate::domain::case::{CaseNumber, CaseStatus, Decision};
use crate::error::{Error, Result};
use crate::storage::cases::{self, CaseRow, TrailEntry};
use crate::storage::{accounts, calls};

/// A user as a case shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Party {
    /// User ID.
    pub user_id: UserId,
    /// Display name.
    pub name: String,
    /// `provider` or `staff`.
    pub role: String,
}

impl From<&User> for Party {
    fn from(user: &User) -> Self {
        Self {
            user_id: user.user_id,
            name: user.name.clone(),
            role: user.role.as_str().to_owned(),
        }
    }
}

/// A case with the people in it and its trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseView {
    /// Keypad-friendly number.
    pub case_number: CaseNumber,
    /// Where it stands.
    pub status: CaseStatus,
    /// Who asked.
    pub requestor: Party,
    /// Whose account.
    pub subject: Party,
    /// Who may approve.
    pub approvers: Vec<Party>,
    /// Opened.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Who approved or declined.
    pub decided_by: Option<UserId>,
    /// When.
    pub decided_at: Option<String>,
    /// Until when an approval holds.
    pub expires_at: Option<String>,
    /// An approval that no longer holds.
    pub expired: bool,
    /// Everything said on the case.
    pub trail: Vec<TrailEntry>,
}

/// What a reply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// An approver approved.
    Approved,
    /// An approver declined (or withdrew an approval).
    Declined,
    /// Someone who is not an approver replied: recorded, nothing changed.
    RecordedOnly,
}

fn rule_party(user: &User) -> RuleParty {
    RuleParty {
        user_id: user.user_id,
        role: user.role,
        practice_id: user.practice_id,
    }
}

impl Registry {
    fn user_in(&self, tx: &rusqlite::Connection, id: UserId) -> Result<User> {
        accounts::user(tx, id)?.ok_or(Error::UnknownUser(id))
    }

    /// The ruling on `requestor` asking about `subject`, with the
    /// approvals that exist for the pair.
    pub fn ruling_in(
        &self,
        tx: &rusqlite::Connection,
        requestor: &User,
        subject: &User,
    ) -> Result<Ruling> {
        let approved =
            cases::for_pair(tx, requestor.user_id, subject.user_id, CaseStatus::Approved)?;
        let approvals: Vec<Approval> = approved
            .into_iter()
            .filter_map(|case| {
                Some(Approval {
                    expires_at: parse_time(case.expires_at.as_deref()?)?,
                    approved_by: case.decided_by?,
                    case_number: case.case_number.to_string(),
                    requestor: case.requestor,
                    subject: case.subject,
                })
            })
            .collect();
        Ok(approval::rule(
            &rule_party(requestor),
            &rule_party(subject),
            &approvals,
            self.now(),
        ))
    }

    /// Opens a case for `requestor` about `subject` (both user IDs), or
    /// returns the one already awaiting approval. Returns the case and
    /// whether it was reused.
    pub fn open_case(
        &self,
        requestor: UserId,
        subject: UserId,
        origin: &Origin,
    ) -> Result<(CaseView, bool)> {
        self.db.write(|tx| {
            let requestor = self.user_in(tx, requestor)?;
            let subject = self.user_in(tx, subject)?;
            let (number, reused) = match self.ruling_in(tx, &requestor, &subject)? {
                Ruling::NeedsApproval(approvers) => {
                    self.open_case_in(tx, &requestor, &subject, approvers, origin)?
                }
                Ruling::Assist(basis) => {
                    return Err(Error::Invalid(format!(
                        "no approval is needed for user {} to get help with user {}'s account ({})",
                        requestor.user_id,
                        subject.user_id,
                        basis_text(&basis)
                    )));
                }
                Ruling::Refused => {
                    return Err(Error::Invalid(format!(
                        "user {} cannot get help with user {}'s account: they are in different practices",
                        requestor.user_id, subject.user_id
                    )));
                }
            };
            Ok((self.case_in(tx, &number)?, reused))
        })
    }

    /// [`Registry::open_case`] inside a transaction, once the ruling says
    /// approval is needed.
    pub fn open_case_in(
        &self,
        tx: &rusqlite::Connection,
        requestor: &User,
        subject: &User,
        approvers: Approvers,
        origin: &Origin,
    ) -> Result<(CaseNumber, bool)> {
        let waiting = cases::for_pair(
            tx,
            requestor.user_id,
            subject.user_id,
            CaseStatus::AwaitingApproval,
        )?;
        if let Some(case) = waiting.into_iter().next() {
            return Ok((case.case_number, true));
        }
        let approver_ids = match approvers {
            Approvers::Subject => vec![subject.user_id],
            Approvers::PracticeProviders => accounts::providers_of(tx, subject.practice_id)?,
        };
        if approver_ids.is_empty() {
            return Err(Error::Invalid(format!(
                "practice {:?} has no provider who could approve",
                subject.practice
            )));
        }
        let number = loop {
            let candidate = CaseNumber::random(&mut rand::rng());
            if !cases::exists(tx, &candidate)? {
                break candidate;
            }
        };
        let now = format_time(self.now());
        let row = CaseRow {
            case_number: number.clone(),
            requestor: requestor.user_id,
            subject: subject.user_id,
            status: CaseStatus::AwaitingApproval,
            created_at: now.clone(),
            updated_at: now.clone(),
            decided_by: None,
            decided_at: None,
            expires_at: None,
        };
        cases::insert(tx, &row, &approver_ids)?;
        let text = format!(
            "{} asks for help with the account of {}",
            requestor.name, subject.name
        );
        self.trail(
            tx,
            &number,
            Some(requestor.user_id),
            origin,
            "opened",
            &text,
        )?;
        let detail = format!(
            "case {number}: user {} for user {}",
            requestor.user_id, subject.user_id
        );
        self.record_for_both(tx, &row, origin, EventKind::ApprovalRequested, &detail)?;
        Ok((number, false))
    }

    fn trail(
        &self,
        tx: &rusqlite::Connection,
        number: &CaseNumber,
        user: Option<UserId>,
        origin: &Origin,
        kind: &str,
        text: &str,
    ) -> Result<()> {
        let entry = TrailEntry {
            at: format_time(self.now()),
            user_id: user.map(UserId::to_stored),
            channel: origin.channel.as_str().to_owned(),
            call_sid: origin.call_sid.clone(),
            kind: kind.to_owned(),
            text: text.to_owned(),
        };
        Ok(cases::add_trail(tx, number, &entry)?)
    }

    fn record_for_both(
        &self,
        tx: &rusqlite::Connection,
        case: &CaseRow,
        origin: &Origin,
        kind: EventKind,
        detail: &str,
    ) -> Result<()> {
        self.record(tx, Some(case.requestor), origin, kind, detail)?;
        self.record(tx, Some(case.subject), origin, kind, detail)?;
        Ok(())
    }

    /// One case.
    pub fn case(&self, number: &CaseNumber) -> Result<CaseView> {
        self.case_in(&*self.db.conn()?, number)
    }

    fn case_in(&self, conn: &rusqlite::Connection, number: &CaseNumber) -> Result<CaseView> {
        let row = cases::get(conn, number)?.ok_or_else(|| Error::UnknownCase(number.clone()))?;
        self.view(conn, row)
    }

    fn view(&self, conn: &rusqlite::Connection, row: CaseRow) -> Result<CaseView> {
        let party = |id| -> Result<Party> { Ok(Party::from(&self.user_in(conn, id)?)) };
        let approvers = cases::approvers(conn, &row.case_number)?
            .into_iter()
            .map(party)
            .collect::<Result<_>>()?;
        let expired = row.status == CaseStatus::Approved
            && row
                .expires_at
                .as_deref()
                .and_then(parse_time)
                .is_none_or(|t| t <= self.now());
        Ok(CaseView {
            trail: cases::trail(conn, &row.case_number)?,
            requestor: party(row.requestor)?,
            subject: party(row.subject)?,
            approvers,
            expired,
            case_number: row.case_number,
            status: row.status,
            created_at: row.created_at,
            updated_at: row.updated_at,
            decided_by: row.decided_by,
            decided_at: row.decided_at,
            expires_at: row.expires_at,
        })
    }

    fn views(
        &self,
        select: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<Vec<CaseRow>>,
    ) -> Result<Vec<CaseView>> {
        let conn = self.db.conn()?;
        select(&conn)?
            .into_iter()
            .map(|row| self.view(&conn, row))
            .collect()
    }

    /// Cases, newest first, optionally of one status.
    pub fn cases(&self, status: Option<CaseStatus>) -> Result<Vec<CaseView>> {
        self.views(|conn| cases::list(conn, status))
    }

    /// Cases awaiting `approver`'s decision.
    pub fn cases_awaiting(&self, approver: UserId) -> Result<Vec<CaseView>> {
        self.views(|conn| cases::for_approver(conn, approver, CaseStatus::AwaitingApproval))
    }

    /// Cases `requestor` opened that still await approval.
    pub fn cases_pending_for(&self, requestor: UserId) -> Result<Vec<CaseView>> {
        self.views(|conn| cases::for_requestor(conn, requestor, CaseStatus::AwaitingApproval))
    }

    /// The case, if it awaits `approver`'s decision.
    pub fn case_for_approver_in(
        &self,
        tx: &rusqlite::Connection,
        number: &CaseNumber,
        approver: UserId,
    ) -> Result<Option<CaseView>> {
        let Some(row) = cases::get(tx, number)? else {
            return Ok(None);
        };
        let may_decide = cases::approvers(tx, number)?.contains(&approver);
        if row.status != CaseStatus::AwaitingApproval || !may_decide {
            return Ok(None);
        }
        Ok(Some(self.view(tx, row)?))
    }

    /// A reply on the case from user `from`: an approver's decision takes
    /// effect; anyone else's is only recorded.
    pub fn reply_to_case(
        &self,
        number: &CaseNumber,
        from: UserId,
        decision: Decision,
        text: Option<&str>,
        origin: &Origin,
    ) -> Result<ReplyOutcome> {
        self.db
            .write(|tx| self.reply_to_case_in(tx, number, from, decision, text, origin))
    }

    /// [`Registry::reply_to_case`] inside a transaction.
    pub fn reply_to_case_in(
        &self,
        tx: &rusqlite::Connection,
        number: &CaseNumber,
        from: UserId,
        decision: Decision,
        text: Option<&str>,
        origin: &Origin,
    ) -> Result<ReplyOutcome> {
        let row = cases::get(tx, number)?.ok_or_else(|| Error::UnknownCase(number.clone()))?;
        let replier = self.user_in(tx, from)?;
        let said = match decision {
            Decision::Approve => "approve",
            Decision::Decline => "decline",
        };
        let note = text.map(|t| format!(": {t}")).unwrap_or_default();
        if !cases::approvers(tx, number)?.contains(&from) {
            let entry = format!("{} (not an approver) replied {said}{note}", replier.name);
            self.trail(tx, number, Some(from), origin, "reply", &entry)?;
            return Ok(ReplyOutcome::RecordedOnly);
        }
        let Some(status) = row.status.after(decision) else {
            return Err(Error::Invalid(format!(
                "case {number} is {} and cannot be {}",
                row.status,
                if decision == Decision::Approve {
                    "approved"
                } else {
                    "declined"
                }
            )));
        };
        let now = self.now();
        let expires =
            (status == CaseStatus::Approved).then(|| format_time(now + self.approval_ttl));
        cases::set_status(
            tx,
            number,
            status,
            Some(from),
            &format_time(now),
            expires.as_deref(),
        )?;
        let (kind, event, outcome) = match decision {
            Decision::Approve => (
                "approved",
                EventKind::ApprovalGranted,
                ReplyOutcome::Approved,
            ),
            Decision::Decline => (
                "declined",
                EventKind::ApprovalDeclined,
                ReplyOutcome::Declined,
            ),
        };
        self.trail(
            tx,
            number,
            Some(from),
            origin,
            kind,
            &format!("{} {kind}{note}", replier.name),
        )?;
        let detail = format!("case {number} {kind} by user {from}");
        self.record_for_both(tx, &row, origin, event, &detail)?;
        let allowed = match decision {
            Decision::Approve => format!("approved by {} in case {number}", replier.name),
            Decision::Decline => format!("declined in case {number}: do not discuss the account"),
        };
        calls::settle_pending_case(tx, number.as_str(), decision == Decision::Approve, &allowed)?;
        Ok(outcome)
    }

    /// Closes a case: nothing more happens to it.
    pub fn close_case(&self, number: &CaseNumber, origin: &Origin) -> Result<()> {
        self.db.write(|tx| {
            let row = cases::get(tx, number)?.ok_or_else(|| Error::UnknownCase(number.clone()))?;
            if row.status == CaseStatus::Closed {
                return Err(Error::Invalid(format!("case {number} is closed already")));
            }
            let now = format_time(self.now());
            cases::set_status(tx, number, CaseStatus::Closed, None, &now, None)?;
            self.trail(tx, number, None, origin, "closed", "closed by support")?;
            calls::settle_pending_case(
                tx,
                number.as_str(),
                false,
                &format!("case {number} closed"),
            )?;
            Ok(())
        })
    }
}

/// The words an agent sees for a basis of assistance.
pub fn basis_text(basis: &approval::Basis) -> String {
    match basis {
        approval::Basis::OwnAccount => "own account".into(),
        approval::Basis::ProviderForOwnStaff => "provider for own staff".into(),
        approval::Basis::Approved { by, case_number } => {
            format!("approved by user {by} in case {case_number}")
        }
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc())
}
