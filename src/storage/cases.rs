//! Support cases, their approvers and their trail.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::account::UserId;
use crate::domain::case::{CaseNumber, CaseStatus};

/// A case as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRow {
    /// Keypad-friendly number.
    pub case_number: CaseNumber,
    /// Who asked.
    pub requestor: UserId,
    /// Whose account.
    pub subject: UserId,
    /// Where it stands.
    pub status: CaseStatus,
    /// Opened (RFC 3339).
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Who approved or declined.
    pub decided_by: Option<UserId>,
    /// When.
    pub decided_at: Option<String>,
    /// Until when an approval holds.
    pub expires_at: Option<String>,
}

/// One entry of a case's trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrailEntry {
    /// When.
    pub at: String,
    /// Who, if a known user.
    pub user_id: Option<i64>,
    /// Through which channel.
    pub channel: String,
    /// The call, for phone entries.
    pub call_sid: Option<String>,
    /// `opened`, `approved`, `declined`, `reply`, `closed`.
    pub kind: String,
    /// What was said.
    pub text: String,
}

const CASE_COLUMNS: &str = "SELECT case_number, requestor_user_id, subject_user_id, status,
        created_at, updated_at, decided_by, decided_at, expires_at FROM cases";

fn bad(i: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        i,
        rusqlite::types::Type::Text,
        format!("stored {what} is not valid").into(),
    )
}

fn user(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<UserId> {
    UserId::from_stored(row.get(i)?).ok_or_else(|| bad(i, "user ID"))
}

fn case_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CaseRow> {
    let number: String = row.get(0)?;
    let status: String = row.get(3)?;
    let decided_by: Option<i64> = row.get(6)?;
    Ok(CaseRow {
        case_number: CaseNumber::parse(&number).map_err(|_| bad(0, "case number"))?,
        requestor: user(row, 1)?,
        subject: user(row, 2)?,
        status: status.parse().map_err(|_| bad(3, "case status"))?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
        decided_by: decided_by.and_then(UserId::from_stored),
        decided_at: row.get(7)?,
        expires_at: row.get(8)?,
    })
}

/// Whether a case number is taken.
pub fn exists(conn: &Connection, number: &CaseNumber) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM cases WHERE case_number = ?1)")?
        .query_row([number.as_str()], |r| r.get(0))
}

/// Opens a case awaiting approval from `approvers`.
pub fn insert(conn: &Connection, case: &CaseRow, approvers: &[UserId]) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO cases (case_number, requestor_user_id, subject_user_id, status,
                            created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![
        case.case_number.as_str(),
        case.requestor.to_stored(),
        case.subject.to_stored(),
        case.status.as_str(),
        case.created_at
    ])?;
    let mut stmt =
        conn.prepare_cached("INSERT INTO case_approvers (case_number, user_id) VALUES (?1, ?2)")?;
    for approver in approvers {
        stmt.execute(params![case.case_number.as_str(), approver.to_stored()])?;
    }
    Ok(())
}

/// The case with this number.
pub fn get(conn: &Connection, number: &CaseNumber) -> rusqlite::Result<Option<CaseRow>> {
    let sql = format!("{CASE_COLUMNS} WHERE case_number = ?1");
    conn.prepare_cached(&sql)?
        .query_row([number.as_str()], case_from_row)
        .optional()
}

/// Cases, newest first, optionally of one status.
pub fn list(conn: &Connection, status: Option<CaseStatus>) -> rusqlite::Result<Vec<CaseRow>> {
    let sql = format!(
        "{CASE_COLUMNS} WHERE ?1 IS NULL OR status = ?1 ORDER BY created_at DESC, case_number"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_map([status.map(CaseStatus::as_str)], case_from_row)?
        .collect()
}

/// Cases of one requestor and subject in one status, newest first.
pub fn for_pair(
    conn: &Connection,
    requestor: UserId,
    subject: UserId,
    status: CaseStatus,
) -> rusqlite::Result<Vec<CaseRow>> {
    let sql = format!(
        "{CASE_COLUMNS} WHERE requestor_user_id = ?1 AND subject_user_id = ?2 AND status = ?3
         ORDER BY created_at DESC"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_map(
        params![requestor.to_stored(), subject.to_stored(), status.as_str()],
        case_from_row,
    )?
    .collect()
}

/// Cases in `status` that `approver` may decide, newest first.
pub fn for_approver(
    conn: &Connection,
    approver: UserId,
    status: CaseStatus,
) -> rusqlite::Result<Vec<CaseRow>> {
    let sql = format!(
        "{CASE_COLUMNS} WHERE status = ?2 AND case_number IN
            (SELECT case_number FROM case_approvers WHERE user_id = ?1)
         ORDER BY created_at DESC"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_map(
        params![approver.to_stored(), status.as_str()],
        case_from_row,
    )?
    .collect()
}

/// Cases `requestor` opened in `status`, newest first.
pub fn for_requestor(
    conn: &Connection,
    requestor: UserId,
    status: CaseStatus,
) -> rusqlite::Result<Vec<CaseRow>> {
    let sql = format!(
        "{CASE_COLUMNS} WHERE requestor_user_id = ?1 AND status = ?2 ORDER BY created_at DESC"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_map(
        params![requestor.to_stored(), status.as_str()],
        case_from_row,
    )?
    .collect()
}

/// Who may decide the case.
pub fn approvers(conn: &Connection, number: &CaseNumber) -> rusqlite::Result<Vec<UserId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id FROM case_approvers WHERE case_number = ?1 ORDER BY user_id",
    )?;
    stmt.query_map([number.as_str()], |r| user(r, 0))?.collect()
}

/// Records a decision (or closing) on the case.
pub fn set_status(
    conn: &Connection,
    number: &CaseNumber,
    status: CaseStatus,
    decided_by: Option<UserId>,
    now: &str,
    expires_at: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE cases SET status = ?2, updated_at = ?4,
             decided_by = coalesce(?3, decided_by),
             decided_at = CASE WHEN ?3 IS NULL THEN decided_at ELSE ?4 END,
             expires_at = ?5
         WHERE case_number = ?1",
    )?
    .execute(params![
        number.as_str(),
        status.as_str(),
        decided_by.map(UserId::to_stored),
        now,
        expires_at
    ])?;
    Ok(())
}

/// Adds an entry to the case's trail.
pub fn add_trail(
    conn: &Connection,
    number: &CaseNumber,
    entry: &TrailEntry,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO case_trail (case_number, at, user_id, channel, call_sid, kind, text)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        number.as_str(),
        entry.at,
        entry.user_id,
        entry.channel,
        entry.call_sid,
        entry.kind,
        entry.text
    ])?;
    Ok(())
}

/// The case's trail, oldest first.
pub fn trail(conn: &Connection, number: &CaseNumber) -> rusqlite::Result<Vec<TrailEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, user_id, channel, call_sid, kind, text FROM case_trail
         WHERE case_number = ?1 ORDER BY seq",
    )?;
    stmt.query_map([number.as_str()], |r| {
        Ok(TrailEntry {
            at: r.get(0)?,
            user_id: r.get(1)?,
            channel: r.get(2)?,
            call_sid: r.get(3)?,
            kind: r.get(4)?,
            text: r.get(5)?,
        })
    })?
    .collect()
}
