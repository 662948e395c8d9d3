//! The web pages' one-time sign-in codes and sessions.
//!
//! Rows hold a selector (to find the row) and the SHA-256 of the secret
//! part; the secret itself is never stored, and comparing it is left to
//! the registry, in constant time.

use rusqlite::{Connection, OptionalExtension, params};

/// A sign-in code as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginCodeRow {
    /// Finds the row; part of the code.
    pub selector: String,
    /// SHA-256 of the code's secret part.
    pub secret_hash: Vec<u8>,
    /// Whom the code signs in.
    pub user_id: i64,
    /// After this (RFC 3339) the code is refused.
    pub expires_at: String,
    /// When it was used or burnt; a code works once.
    pub used_at: Option<String>,
}

/// Stores a new sign-in code.
pub fn insert_login_code(conn: &Connection, row: &LoginCodeRow, now: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO web_login_codes (selector, secret_hash, user_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        row.selector,
        row.secret_hash,
        row.user_id,
        now,
        row.expires_at
    ])?;
    Ok(())
}

/// The code with this selector.
pub fn login_code(conn: &Connection, selector: &str) -> rusqlite::Result<Option<LoginCodeRow>> {
    conn.prepare_cached(
        "SELECT selector, secret_hash, user_id, expires_at, used_at
         FROM web_login_codes WHERE selector = ?1",
    )?
    .query_row([selector], |r| {
        Ok(LoginCodeRow {
            selector: r.get(0)?,
            secret_hash: r.get(1)?,
            user_id: r.get(2)?,
            expires_at: r.get(3)?,
            used_at: r.get(4)?,
        })
    })
    .optional()
}

/// Marks a code used; false if it was used already.
pub fn use_login_code(conn: &Connection, selector: &str, now: &str) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE web_login_codes SET used_at = ?2 WHERE selector = ?1 AND used_at IS NULL",
        )?
        .execute(params![selector, now])?;
    Ok(changed > 0)
}

/// Whether a selector is taken (by a live or spent code).
pub fn login_code_exists(conn: &Connection, selector: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM web_login_codes WHERE selector = ?1)")?
        .query_row([selector], |r| r.get(0))
}

/// Deletes codes that expired before `now`: used or not, they can no
/// longer sign anyone in.
pub fn prune_login_codes(conn: &Connection, now: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM web_login_codes WHERE expires_at < ?1")?
        .execute([now])
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Finds the row; the first part of the cookie.
    pub session_id: String,
    /// SHA-256 of the cookie's secret part.
    pub secret_hash: Vec<u8>,
    /// The signed-in user, for user sessions.
    pub user_id: Option<i64>,
    /// The signed-in agent, for agent sessions.
    pub agent_id: Option<i64>,
    /// Sign-in time (RFC 3339).
    pub created_at: String,
    /// The last request that counted as activity.
    pub last_seen_at: String,
    /// The IANA zone times are shown in, once chosen.
    pub time_zone: Option<String>,
}

/// Stores a new session.
pub fn insert_session(conn: &Connection, row: &SessionRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO web_sessions
             (session_id, secret_hash, user_id, agent_id, created_at, last_seen_at, time_zone)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        row.session_id,
        row.secret_hash,
        row.user_id,
        row.agent_id,
        row.created_at,
        row.last_seen_at,
        row.time_zone
    ])?;
    Ok(())
}

/// Whether a session ID is taken.
pub fn session_exists(conn: &Connection, session_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM web_sessions WHERE session_id = ?1)")?
        .query_row([session_id], |r| r.get(0))
}

/// The session with this ID.
pub fn session(conn: &Connection, session_id: &str) -> rusqlite::Result<Option<SessionRow>> {
    conn.prepare_cached(
        "SELECT session_id, secret_hash, user_id, agent_id, created_at, last_seen_at, time_zone
         FROM web_sessions WHERE session_id = ?1",
    )?
    .query_row([session_id], |r| {
        Ok(SessionRow {
            session_id: r.get(0)?,
            secret_hash: r.get(1)?,
            user_id: r.get(2)?,
            agent_id: r.get(3)?,
            created_at: r.get(4)?,
            last_seen_at: r.get(5)?,
            time_zone: r.get(6)?,
        })
    })
    .optional()
}

/// Records activity on a session.
pub fn touch_session(conn: &Connection, session_id: &str, now: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE web_sessions SET last_seen_at = ?2 WHERE session_id = ?1")?
        .execute(params![session_id, now])?;
    Ok(())
}

/// Sets the zone a session's times are shown in.
pub fn set_time_zone(conn: &Connection, session_id: &str, zone: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE web_sessions SET time_zone = ?2 WHERE session_id = ?1")?
        .execute(params![session_id, zone])?;
    Ok(())
}

/// Ends a session.
pub fn delete_session(conn: &Connection, session_id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM web_sessions WHERE session_id = ?1")?
        .execute([session_id])?;
    Ok(())
}

/// Deletes sessions idle since before `idle_before` or started before
/// `started_before`: they can no longer be used.
pub fn prune_sessions(
    conn: &Connection,
    idle_before: &str,
    started_before: &str,
) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM web_sessions WHERE last_seen_at < ?1 OR created_at < ?2")?
        .execute(params![idle_before, started_before])
}
