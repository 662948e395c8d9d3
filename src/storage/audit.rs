//! The append-only audit log and its hash chain.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::account::UserId;
use crate::domain::audit::{ChainBreak, ChainHead, GENESIS, NewEvent, StoredEvent, Tag};

/// Appends `event`, linking it to the newest event by its tag. Must run
/// inside a write transaction so that no other append slips in between
/// reading the head and inserting.
pub fn append(
    conn: &Connection,
    key: &[u8; 32],
    event: &NewEvent,
) -> rusqlite::Result<StoredEvent> {
    let head = head(conn)?;
    let stored = event.seal(key, head.count + 1, &head.tag);
    conn.prepare_cached(
        "INSERT INTO audit_events
            (seq, at, subject_user_id, actor, channel, call_sid, event, detail, tag)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        stored.seq,
        stored.at,
        stored.subject,
        stored.actor,
        stored.channel,
        stored.call_sid,
        stored.event,
        stored.detail,
        &stored.tag[..],
    ])?;
    Ok(stored)
}

/// The newest event's position and tag.
pub fn head(conn: &Connection) -> rusqlite::Result<ChainHead> {
    let newest = conn
        .prepare_cached("SELECT seq, tag FROM audit_events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .optional()?;
    Ok(match newest {
        None => ChainHead {
            count: 0,
            tag: GENESIS,
        },
        Some((count, tag)) => ChainHead {
            count,
            tag: to_tag(tag),
        },
    })
}

fn to_tag(bytes: Vec<u8>) -> Tag {
    // A tag of the wrong length cannot verify; all zeros says so.
    bytes.try_into().unwrap_or(GENESIS)
}

const EVENT_COLUMNS: &str = "SELECT seq, at, subject_user_id, actor, channel, call_sid, event, detail, tag FROM audit_events";

fn event_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        seq: row.get(0)?,
        at: row.get(1)?,
        subject: row.get(2)?,
        actor: row.get(3)?,
        channel: row.get(4)?,
        call_sid: row.get(5)?,
        event: row.get(6)?,
        detail: row.get(7)?,
        tag: to_tag(row.get(8)?),
    })
}

/// Events about `user_id`, newest first.
pub fn for_subject(
    conn: &Connection,
    user_id: UserId,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<Vec<StoredEvent>> {
    let sql =
        format!("{EVENT_COLUMNS} WHERE subject_user_id = ?1 ORDER BY seq DESC LIMIT ?2 OFFSET ?3");
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_map(params![user_id.to_stored(), limit, offset], event_from_row)?
        .collect()
}

/// Failed validations of `user_id` at or after `since` (RFC 3339).
pub fn failures_since(conn: &Connection, user_id: UserId, since: &str) -> rusqlite::Result<u32> {
    conn.prepare_cached(
        "SELECT count(*) FROM audit_events
         WHERE subject_user_id = ?1 AND event = 'validation_failed' AND at >= ?2",
    )?
    .query_row(params![user_id.to_stored(), since], |r| r.get(0))
}

/// Feeds every event, oldest first, to `check`, stopping at its first
/// complaint. Streams, so a log of millions of rows needs no memory.
pub fn walk(
    conn: &Connection,
    mut check: impl FnMut(&StoredEvent) -> Result<(), ChainBreak>,
) -> rusqlite::Result<Result<(), ChainBreak>> {
    let sql = format!("{EVENT_COLUMNS} ORDER BY seq");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if let Err(broken) = check(&event_from_row(row)?) {
            return Ok(Err(broken));
        }
    }
    Ok(Ok(()))
}
