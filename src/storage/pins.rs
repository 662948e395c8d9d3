//! The Support PIN rows: ciphertext, version and failure counters.

use rusqlite::{Connection, OptionalExtension, params};

use crate::crypto::SealedPin;
use crate::domain::account::UserId;

/// One user's Support PIN row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRow {
    /// Owner.
    pub user_id: UserId,
    /// Bumped on every new PIN; part of the ciphertext's associated data.
    pub version: i64,
    /// The encrypted PIN.
    pub sealed: SealedPin,
    /// Wrong tries since the last success or new PIN.
    pub consecutive_failures: u32,
    /// Start of the stretch in which failures count towards the rolling
    /// limit (the last owner-requested PIN).
    pub failures_since: String,
    /// When too many failures locked the PIN, if they have.
    pub locked_at: Option<String>,
}

/// The PIN row of `user_id`.
pub fn get(conn: &Connection, user_id: UserId) -> rusqlite::Result<Option<PinRow>> {
    conn.prepare_cached(
        "SELECT user_id, version, key_id, nonce, ciphertext, consecutive_failures,
                failures_since, locked_at
         FROM support_pins WHERE user_id = ?1",
    )?
    .query_row([user_id.to_stored()], pin_from_row)
    .optional()
}

/// Every PIN row, for re-encryption under a new key.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<PinRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, version, key_id, nonce, ciphertext, consecutive_failures,
                failures_since, locked_at
         FROM support_pins ORDER BY user_id",
    )?;
    stmt.query_map([], pin_from_row)?.collect()
}

/// How many PIN rows were sealed under a key other than `key_id`.
pub fn count_under_other_key(conn: &Connection, key_id: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT count(*) FROM support_pins WHERE key_id <> ?1")?
        .query_row([key_id], |r| r.get(0))
}

fn pin_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PinRow> {
    let stored: i64 = row.get(0)?;
    let user_id = UserId::from_stored(stored).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Integer,
            "stored user ID is not valid".into(),
        )
    })?;
    Ok(PinRow {
        user_id,
        version: row.get(1)?,
        sealed: SealedPin {
            key_id: row.get(2)?,
            nonce: row.get(3)?,
            ciphertext: row.get(4)?,
        },
        consecutive_failures: row.get(5)?,
        failures_since: row.get(6)?,
        locked_at: row.get(7)?,
    })
}

/// Stores the first PIN of a new user.
pub fn insert(
    conn: &Connection,
    user_id: UserId,
    version: i64,
    sealed: &SealedPin,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO support_pins
            (user_id, version, key_id, nonce, ciphertext, generated_at, failures_since)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute(params![
        user_id.to_stored(),
        version,
        sealed.key_id,
        sealed.nonce,
        sealed.ciphertext,
        now
    ])?;
    Ok(())
}

/// Replaces the PIN and clears the failure streak. With
/// `restart_window`, also lifts any lock and restarts the rolling count:
/// only an owner's own request does that, never a rotation.
pub fn replace(
    conn: &Connection,
    user_id: UserId,
    version: i64,
    sealed: &SealedPin,
    now: &str,
    restart_window: bool,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE support_pins
         SET version = ?2, key_id = ?3, nonce = ?4, ciphertext = ?5, generated_at = ?6,
             consecutive_failures = 0,
             failures_since = CASE WHEN ?7 THEN ?6 ELSE failures_since END,
             locked_at = CASE WHEN ?7 THEN NULL ELSE locked_at END
         WHERE user_id = ?1",
    )?
    .execute(params![
        user_id.to_stored(),
        version,
        sealed.key_id,
        sealed.nonce,
        sealed.ciphertext,
        now,
        restart_window
    ])?;
    Ok(())
}

/// Re-seals a PIN under another key, leaving everything else alone.
pub fn reseal(conn: &Connection, user_id: UserId, sealed: &SealedPin) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE support_pins SET key_id = ?2, nonce = ?3, ciphertext = ?4 WHERE user_id = ?1",
    )?
    .execute(params![
        user_id.to_stored(),
        sealed.key_id,
        sealed.nonce,
        sealed.ciphertext
    ])?;
    Ok(())
}

/// Records the new length of the failure streak, and the lock if any.
pub fn record_failure(
    conn: &Connection,
    user_id: UserId,
    consecutive: u32,
    locked_at: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE support_pins
         SET consecutive_failures = ?2, locked_at = coalesce(locked_at, ?3)
         WHERE user_id = ?1",
    )?
    .execute(params![user_id.to_stored(), consecutive, locked_at])?;
    Ok(())
}
