//! Agents, their passcode failures and their API tokens.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::agent::AgentId;

/// An agent as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    /// Keyed in on the agent line.
    pub agent_id: AgentId,
    /// Display name.
    pub name: String,
    /// Argon2id PHC string of the passcode.
    pub passcode_hash: String,
    /// Wrong passcodes in a row.
    pub consecutive_failures: u32,
    /// Start of the stretch in which failures count (last reset).
    pub failures_since: String,
    /// When failures locked the agent out, if they have.
    pub locked_at: Option<String>,
}

fn agent_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AgentRow> {
    let id: i64 = row.get(0)?;
    Ok(AgentRow {
        agent_id: AgentId::from_stored(id).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Integer,
                "stored agent ID is not valid".into(),
            )
        })?,
        name: row.get(1)?,
        passcode_hash: row.get(2)?,
        consecutive_failures: row.get(3)?,
        failures_since: row.get(4)?,
        locked_at: row.get(5)?,
    })
}

const AGENT_COLUMNS: &str = "SELECT agent_id, name, passcode_hash, consecutive_failures,
        failures_since, locked_at FROM agents";

/// Adds an agent.
pub fn insert(conn: &Connection, agent: &AgentRow, now: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO agents (agent_id, name, passcode_hash, created_at, failures_since)
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(params![
        agent.agent_id.to_stored(),
        agent.name,
        agent.passcode_hash,
        now
    ])?;
    Ok(())
}

/// The agent with this ID.
pub fn get(conn: &Connection, id: AgentId) -> rusqlite::Result<Option<AgentRow>> {
    let sql = format!("{AGENT_COLUMNS} WHERE agent_id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id.to_stored()], agent_from_row)
        .optional()
}

/// Every agent, by name.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<AgentRow>> {
    let sql = format!("{AGENT_COLUMNS} ORDER BY name, agent_id");
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_map([], agent_from_row)?.collect()
}

/// Records a wrong passcode: the streak, the lock if reached, and a row
/// for the rolling count.
pub fn record_failure(
    conn: &Connection,
    id: AgentId,
    consecutive: u32,
    locked_at: Option<&str>,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE agents SET consecutive_failures = ?2, locked_at = coalesce(locked_at, ?3)
         WHERE agent_id = ?1",
    )?
    .execute(params![id.to_stored(), consecutive, locked_at])?;
    conn.prepare_cached("INSERT INTO agent_failures (agent_id, at) VALUES (?1, ?2)")?
        .execute(params![id.to_stored(), now])?;
    Ok(())
}

/// Wrong passcodes for `id` at or after `since`.
pub fn failures_since(conn: &Connection, id: AgentId, since: &str) -> rusqlite::Result<u32> {
    conn.prepare_cached("SELECT count(*) FROM agent_failures WHERE agent_id = ?1 AND at >= ?2")?
        .query_row(params![id.to_stored(), since], |r| r.get(0))
}

/// Clears the streak after a right passcode.
pub fn clear_streak(conn: &Connection, id: AgentId) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE agents SET consecutive_failures = 0 WHERE agent_id = ?1")?
        .execute([id.to_stored()])?;
    Ok(())
}

/// Sets a new passcode, lifting any lock and restarting the counts.
pub fn set_passcode(
    conn: &Connection,
    id: AgentId,
    hash: &str,
    now: &str,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE agents SET passcode_hash = ?2, consecutive_failures = 0, locked_at = NULL,
             failures_since = ?3
         WHERE agent_id = ?1",
        )?
        .execute(params![id.to_stored(), hash, now])?;
    Ok(changed > 0)
}

/// Stores a token's hash.
pub fn insert_token(
    conn: &Connection,
    token_id: &str,
    agent: AgentId,
    hash: &[u8],
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO agent_tokens (token_id, agent_id, token_hash, created_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![token_id, agent.to_stored(), hash, now])?;
    Ok(())
}

/// A token by its ID: owner, hash, and whether it was revoked.
pub fn token(conn: &Connection, token_id: &str) -> rusqlite::Result<Option<(i64, Vec<u8>, bool)>> {
    conn.prepare_cached(
        "SELECT agent_id, token_hash, revoked_at IS NOT NULL FROM agent_tokens WHERE token_id = ?1",
    )?
    .query_row([token_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .optional()
}

/// Revokes a token; false if there is no such live token.
pub fn revoke_token(conn: &Connection, token_id: &str, now: &str) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE agent_tokens SET revoked_at = ?2 WHERE token_id = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![token_id, now])?;
    Ok(changed > 0)
}
