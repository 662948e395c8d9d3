//! The agent queue: routed calls waiting, claimed or bridged, kept in the
//! calls table. Verified callers come first, then approval-pending, then
//! unverified; within a class, first come first served.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::agent::AgentId;

/// A call in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedCall {
    /// The caller's CallSid.
    pub call_sid: String,
    /// `verified`, `approval_pending` or `unverified`.
    pub class: String,
    /// What the agent is told (JSON).
    pub context: String,
    /// `waiting`, `claimed` or `bridged`.
    pub state: String,
    /// When the caller was routed (RFC 3339).
    pub routed_at: String,
    /// The verified user, if any.
    pub verified_user_id: Option<i64>,
    /// The agent holding the claim.
    pub claimed_by: Option<i64>,
}

/// Class order: verified first.
const RANK: &str =
    "CASE queue_class WHEN 'verified' THEN 0 WHEN 'approval_pending' THEN 1 ELSE 2 END";

const COLUMNS: &str = "SELECT call_sid, queue_class, coalesce(queue_context, '{}'), queue_state,
        coalesce(routed_at, updated_at), verified_user_id, claimed_by FROM calls";

fn queued_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<QueuedCall> {
    Ok(QueuedCall {
        call_sid: row.get(0)?,
        class: row.get(1)?,
        context: row.get(2)?,
        state: row.get(3)?,
        routed_at: row.get(4)?,
        verified_user_id: row.get(5)?,
        claimed_by: row.get(6)?,
    })
}

/// The call `call_sid` if it is in the queue.
pub fn get(conn: &Connection, call_sid: &str) -> rusqlite::Result<Option<QueuedCall>> {
    let sql = format!("{COLUMNS} WHERE call_sid = ?1 AND queue_state IS NOT NULL");
    conn.prepare_cached(&sql)?
        .query_row([call_sid], queued_from_row)
        .optional()
}

/// Every call waiting or claimed, in the order agents get them.
pub fn in_queue(conn: &Connection) -> rusqlite::Result<Vec<QueuedCall>> {
    let sql = format!(
        "{COLUMNS} WHERE queue_state IN ('waiting', 'claimed') AND ended_at IS NULL
         ORDER BY {RANK}, queue_order"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_map([], queued_from_row)?.collect()
}

/// The call `agent` has claimed and not yet connected, if any.
pub fn claimed_by(conn: &Connection, agent: AgentId) -> rusqlite::Result<Option<QueuedCall>> {
    let sql =
        format!("{COLUMNS} WHERE claimed_by = ?1 AND queue_state = 'claimed' AND ended_at IS NULL");
    conn.prepare_cached(&sql)?
        .query_row([agent.to_stored()], queued_from_row)
        .optional()
}

/// Claims the first waiting call not in `skip` for `agent`. Runs inside a
/// write transaction, so two agents never get the same caller.
pub fn claim_next(
    conn: &Connection,
    agent: AgentId,
    skip: &[String],
    now: &str,
) -> rusqlite::Result<Option<QueuedCall>> {
    let skip = serde_json::to_string(skip).unwrap_or_else(|_| "[]".into());
    let sql = format!(
        "{COLUMNS} WHERE queue_state = 'waiting' AND ended_at IS NULL
             AND call_sid NOT IN (SELECT value FROM json_each(?1))
         ORDER BY {RANK}, queue_order LIMIT 1"
    );
    let Some(mut next) = conn
        .prepare_cached(&sql)?
        .query_row([skip], queued_from_row)
        .optional()?
    else {
        return Ok(None);
    };
    conn.prepare_cached(
        "UPDATE calls SET queue_state = 'claimed', claimed_by = ?2, claimed_at = ?3
         WHERE call_sid = ?1 AND queue_state = 'waiting'",
    )?
    .execute(params![next.call_sid, agent.to_stored(), now])?;
    next.state = "claimed".into();
    next.claimed_by = Some(agent.to_stored());
    Ok(Some(next))
}

/// Gives a claimed call back: to the front of its class when `to_front`.
pub fn release(conn: &Connection, call_sid: &str, to_front: bool) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE calls SET queue_state = 'waiting', claimed_by = NULL, claimed_at = NULL,
                 queue_order = CASE WHEN ?2 THEN
                     (SELECT coalesce(min(o.queue_order), 0) - 1 FROM calls o
                      WHERE o.queue_state = 'waiting' AND o.queue_class = calls.queue_class)
                 ELSE queue_order END
             WHERE call_sid = ?1 AND queue_state = 'claimed' AND ended_at IS NULL",
        )?
        .execute(params![call_sid, to_front])?;
    Ok(changed > 0)
}

/// Marks a claimed call connected to its agent; false if the claim is
/// gone (the caller hung up, or someone else has it).
pub fn bridge(
    conn: &Connection,
    call_sid: &str,
    agent: AgentId,
    now: &str,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE calls SET queue_state = 'bridged', bridged_at = ?3
             WHERE call_sid = ?1 AND claimed_by = ?2 AND queue_state = 'claimed'
                 AND ended_at IS NULL",
        )?
        .execute(params![call_sid, agent.to_stored(), now])?;
    Ok(changed > 0)
}

/// Takes an ended call out of the queue if it was waiting or claimed;
/// returns whether it was.
pub fn leave(conn: &Connection, call_sid: &str) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE calls SET queue_state = 'left'
             WHERE call_sid = ?1 AND queue_state IN ('waiting', 'claimed')",
        )?
        .execute([call_sid])?;
    Ok(changed > 0)
}

/// Where a waiting call stands: 1 for next.
pub fn position(conn: &Connection, call_sid: &str) -> rusqlite::Result<Option<u32>> {
    let ordered = in_queue(conn)?;
    Ok(ordered
        .iter()
        .filter(|c| c.state == "waiting" || c.call_sid == call_sid)
        .position(|c| c.call_sid == call_sid)
        .map(|i| i as u32 + 1))
}

/// Calls waiting or claimed, per class.
pub fn depth(conn: &Connection) -> rusqlite::Result<Vec<(String, u32)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT queue_class, count(*) FROM calls
         WHERE queue_state IN ('waiting', 'claimed') AND ended_at IS NULL GROUP BY queue_class",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Moves a waiting call into the verified class with a new context, after
/// an agent verified the caller's PIN.
pub fn set_verified(
    conn: &Connection,
    call_sid: &str,
    context: &str,
    user_id: i64,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE calls SET queue_class = 'verified', queue_context = ?2, verified_user_id = ?3
         WHERE call_sid = ?1 AND queue_state IN ('waiting', 'claimed') AND ended_at IS NULL",
        )?
        .execute(params![call_sid, context, user_id])?;
    Ok(changed > 0)
}
