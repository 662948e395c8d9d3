//! Phone calls in progress and recent verification failures by number.

use rusqlite::{Connection, OptionalExtension, params};

/// A call as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    /// The provider's call ID.
    pub call_sid: String,
    /// Caller ID, as the provider reported it.
    pub from_number: Option<String>,
    /// The number called.
    pub to_number: Option<String>,
    /// STIR/SHAKEN attestation of the caller ID, if reported.
    pub stir_verstat: Option<String>,
    /// The flow state, as JSON.
    pub state: String,
    /// The step number the next webhook must carry.
    pub step: u32,
    /// Last webhook (RFC 3339).
    pub updated_at: String,
    /// Set once the call is over.
    pub ended_at: Option<String>,
    /// `caller` or `agent`.
    pub kind: String,
}

/// What a step changes on a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallUpdate<'a> {
    /// The new flow state, as JSON.
    pub state: &'a str,
    /// The step the next webhook must carry.
    pub step: u32,
    /// The TwiML being answered now.
    pub reply: &'a str,
    /// Now (RFC 3339).
    pub now: &'a str,
    /// The verified user, if any.
    pub verified_user_id: Option<i64>,
    /// The queue class, once routed.
    pub queue_class: Option<&'a str>,
    /// What the agent is told (JSON), once routed.
    pub queue_context: Option<&'a str>,
    /// The case a routed call waits on.
    pub pending_case: Option<&'a str>,
    /// Set when the call was routed just now: it joins the back of its
    /// class in the queue, at this place (microseconds).
    pub enqueue_at: Option<i64>,
}

/// The call with this SID.
pub fn get(conn: &Connection, call_sid: &str) -> rusqlite::Result<Option<CallRow>> {
    conn.prepare_cached(
        "SELECT call_sid, from_number, to_number, stir_verstat, state, step,
                updated_at, ended_at, kind
         FROM calls WHERE call_sid = ?1",
    )?
    .query_row([call_sid], |r| {
        Ok(CallRow {
            call_sid: r.get(0)?,
            from_number: r.get(1)?,
            to_number: r.get(2)?,
            stir_verstat: r.get(3)?,
            state: r.get(4)?,
            step: r.get(5)?,
            updated_at: r.get(6)?,
            ended_at: r.get(7)?,
            kind: r.get(8)?,
        })
    })
    .optional()
}

/// The TwiML answered to the call's step before the one it expects now,
/// which a retry of that step gets again. Read only when replaying: it is
/// the largest part of the row.
pub fn last_reply(conn: &Connection, call_sid: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT last_reply FROM calls WHERE call_sid = ?1")?
        .query_row([call_sid], |r| r.get(0))
        .optional()
}

/// Records a new call with its first answer, `reply`.
pub fn insert(conn: &Connection, call: &CallRow, reply: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO calls (call_sid, from_number, to_number, stir_verstat, state, step,
                            last_reply, started_at, updated_at, kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)",
    )?
    .execute(params![
        call.call_sid,
        call.from_number,
        call.to_number,
        call.stir_verstat,
        call.state,
        call.step,
        reply,
        call.updated_at,
        call.kind
    ])?;
    Ok(())
}

/// Applies one step's changes.
pub fn update(conn: &Connection, call_sid: &str, change: &CallUpdate<'_>) -> rusqlite::Result<()> {
    macro_rules! set_step {
        () => {
            "UPDATE calls
             SET state = ?2, step = ?3, last_reply = ?4, updated_at = ?5,
                 verified_user_id = ?6,
                 queue_class = ?7,
                 routed_at = CASE WHEN ?7 IS NULL THEN NULL ELSE coalesce(routed_at, ?5) END,
                 queue_context = ?8,
                 pending_case = ?9"
        };
    }
    const STEP: &str = concat!(set_step!(), " WHERE call_sid = ?1");
    // The same, and into the queue at the back of its class: one statement
    // for the step that routes a call, rather than two.
    const STEP_INTO_QUEUE: &str = concat!(
        set_step!(),
        ", queue_state = 'waiting', queue_order = ?10,
           claimed_by = NULL, claimed_at = NULL, bridged_at = NULL
         WHERE call_sid = ?1"
    );
    let values = params![
        call_sid,
        change.state,
        change.step,
        change.reply,
        change.now,
        change.verified_user_id,
        change.queue_class,
        change.queue_context,
        change.pending_case
    ];
    match change.enqueue_at {
        None => conn.prepare_cached(STEP)?.execute(values)?,
        Some(order) => {
            let mut with_order = values.to_vec();
            with_order.push(&order);
            conn.prepare_cached(STEP_INTO_QUEUE)?
                .execute(with_order.as_slice())?
        }
    };
    Ok(())
}

/// Marks a call over; its verified state goes with it.
pub fn end(
    conn: &Connection,
    call_sid: &str,
    state: &str,
    status: &str,
    now: &str,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE calls
             SET state = ?2, end_status = ?3, ended_at = ?4, updated_at = ?4,
                 verified_user_id = NULL
             WHERE call_sid = ?1 AND ended_at IS NULL",
        )?
        .execute(params![call_sid, state, status, now])?;
    Ok(changed > 0)
}

/// Records a failed verification from `from_number`, pruning rows older
/// than `prune_before`.
pub fn record_failure(
    conn: &Connection,
    from_number: &str,
    now: &str,
    prune_before: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM verification_failures WHERE at < ?1")?
        .execute([prune_before])?;
    conn.prepare_cached("INSERT INTO verification_failures (at, from_number) VALUES (?1, ?2)")?
        .execute([now, from_number])?;
    Ok(())
}

/// Failed verifications since `since`, from one number or from all.
pub fn failures_since(
    conn: &Connection,
    from_number: Option<&str>,
    since: &str,
) -> rusqlite::Result<u32> {
    match from_number {
        Some(number) => conn
            .prepare_cached(
                "SELECT count(*) FROM verification_failures WHERE from_number = ?1 AND at >= ?2",
            )?
            .query_row([number, since], |r| r.get(0)),
        None => conn
            .prepare_cached("SELECT count(*) FROM verification_failures WHERE at >= ?1")?
            .query_row([since], |r| r.get(0)),
    }
}

/// Tells calls waiting on case `case_number` how it was settled: an
/// approval moves them to the verified class; either way the agent's
/// context says what happened.
pub fn settle_pending_case(
    conn: &Connection,
    case_number: &str,
    approved: bool,
    allowed: &str,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE calls
         SET queue_class = CASE WHEN ?2 THEN 'verified' ELSE queue_class END,
             queue_context = json_set(coalesce(queue_context, '{}'),
                                      '$.allowed', ?3, '$.approval_pending', json('false')),
             pending_case = NULL
         WHERE pending_case = ?1 AND ended_at IS NULL",
    )?
    .execute(rusqlite::params![case_number, approved, allowed])
}

/// What an agent would be told about the call: its queue class and
/// context (JSON), once routed.
pub fn queue_context(
    conn: &Connection,
    call_sid: &str,
) -> rusqlite::Result<Option<(String, String)>> {
    conn.prepare_cached(
        "SELECT queue_class, queue_context FROM calls
         WHERE call_sid = ?1 AND queue_class IS NOT NULL AND queue_context IS NOT NULL",
    )?
    .query_row([call_sid], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}
