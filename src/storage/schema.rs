//! Numbered schema migrations, applied in order at start-up.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

const MIGRATIONS: &[M<'static>] = &[
    M::up(
        r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE practices (
    practice_id INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    user_id     INTEGER PRIMARY KEY,
    practice_id INTEGER NOT NULL REFERENCES practices (practice_id),
    role        TEXT NOT NULL CHECK (role IN ('provider', 'staff')),
    name        TEXT NOT NULL,
    email       TEXT,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX users_by_practice ON users (practice_id);

CREATE TABLE user_phones (
    user_id INTEGER NOT NULL REFERENCES users (user_id),
    phone   TEXT NOT NULL,
    PRIMARY KEY (user_id, phone)
) STRICT;
CREATE INDEX user_phones_by_phone ON user_phones (phone);

-- One active Support PIN per user, encrypted. The failure counters live
-- beside it so validation reads and writes a single row.
CREATE TABLE support_pins (
    user_id              INTEGER PRIMARY KEY REFERENCES users (user_id),
    version              INTEGER NOT NULL,
    key_id               TEXT NOT NULL,
    nonce                BLOB NOT NULL,
    ciphertext           BLOB NOT NULL,
    generated_at         TEXT NOT NULL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failures_since       TEXT NOT NULL,
    locked_at            TEXT
) STRICT;

CREATE TABLE audit_events (
    seq             INTEGER PRIMARY KEY,
    at              TEXT NOT NULL,
    subject_user_id INTEGER,
    actor           TEXT NOT NULL,
    channel         TEXT NOT NULL,
    call_sid        TEXT,
    event           TEXT NOT NULL,
    detail          TEXT NOT NULL,
    tag             BLOB NOT NULL
) STRICT;
CREATE INDEX audit_by_subject ON audit_events (subject_user_id, event, at);

-- The chain makes tampering evident; these make honest mistakes fail.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
"#,
    ),
    M::up(
        r#"
-- One row per phone call, keyed by the provider's CallSid, so that a
-- restart loses no call and a retried webhook finds its answer.
CREATE TABLE calls (
    call_sid         TEXT PRIMARY KEY,
    from_number      TEXT,
    to_number        TEXT,
    stir_verstat     TEXT,
    state            TEXT NOT NULL,
    step             INTEGER NOT NULL,
    last_reply       TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    ended_at         TEXT,
    end_status       TEXT,
    verified_user_id INTEGER,
    queue_class      TEXT,
    routed_at        TEXT
) STRICT;
CREATE INDEX calls_by_queue ON calls (queue_class, routed_at) WHERE ended_at IS NULL;

-- Failed verifications by calling number, for throttling guesses that are
-- spread over many user IDs. Rows older than the window are pruned.
CREATE TABLE verification_failures (
    at          TEXT NOT NULL,
    from_number TEXT NOT NULL
) STRICT;
CREATE INDEX verification_failures_by_number ON verification_failures (from_number, at);
CREATE INDEX verification_failures_by_time ON verification_failures (at);
"#,
    ),
    M::up(
        r#"
-- Requests for help with someone else's account, and their approval.
CREATE TABLE cases (
    case_number       TEXT PRIMARY KEY,
    requestor_user_id INTEGER NOT NULL REFERENCES users (user_id),
    subject_user_id   INTEGER NOT NULL REFERENCES users (user_id),
    status            TEXT NOT NULL
        CHECK (status IN ('awaiting_approval', 'approved', 'declined', 'closed')),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    decided_by        INTEGER REFERENCES users (user_id),
    decided_at        TEXT,
    expires_at        TEXT
) STRICT;
CREATE INDEX cases_by_pair ON cases (requestor_user_id, subject_user_id, status);

CREATE TABLE case_approvers (
    case_number TEXT NOT NULL REFERENCES cases (case_number),
    user_id     INTEGER NOT NULL REFERENCES users (user_id),
    PRIMARY KEY (case_number, user_id)
) STRICT;
CREATE INDEX case_approvers_by_user ON case_approvers (user_id);

-- Everything said on a case, approvers or not.
CREATE TABLE case_trail (
    seq         INTEGER PRIMARY KEY,
    case_number TEXT NOT NULL REFERENCES cases (case_number),
    at          TEXT NOT NULL,
    user_id     INTEGER,
    channel     TEXT NOT NULL,
    call_sid    TEXT,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL
) STRICT;
CREATE INDEX case_trail_by_case ON case_trail (case_number, seq);

-- What an agent is told about a routed call, and the case it waits on.
ALTER TABLE calls ADD COLUMN queue_context TEXT;
ALTER TABLE calls ADD COLUMN pending_case TEXT;
CREATE INDEX calls_by_pending_case ON calls (pending_case) WHERE pending_case IS NOT NULL;
"#,
    ),
    M::up(
        r#"
-- Agents and the queue they take callers from.
CREATE TABLE agents (
    agent_id             INTEGER PRIMARY KEY,
    name                 TEXT NOT NULL,
    passcode_hash        TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failures_since       TEXT NOT NULL,
    locked_at            TEXT
) STRICT;

CREATE TABLE agent_failures (
    agent_id INTEGER NOT NULL REFERENCES agents (agent_id),
    at       TEXT NOT NULL
) STRICT;
CREATE INDEX agent_failures_by_agent ON agent_failures (agent_id, at);

CREATE TABLE agent_tokens (
    token_id   TEXT PRIMARY KEY,
    agent_id   INTEGER NOT NULL REFERENCES agents (agent_id),
    token_hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
) STRICT;

-- Agent legs share the calls table (state, steps, retries) with callers.
ALTER TABLE calls ADD COLUMN kind TEXT NOT NULL DEFAULT 'caller';
-- waiting, claimed, bridged or left, once routed to the queue.
ALTER TABLE calls ADD COLUMN queue_state TEXT;
-- Order within a class; a caller put back goes below the smallest.
ALTER TABLE calls ADD COLUMN queue_order INTEGER;
ALTER TABLE calls ADD COLUMN claimed_by INTEGER;
ALTER TABLE calls ADD COLUMN claimed_at TEXT;
ALTER TABLE calls ADD COLUMN bridged_at TEXT;
CREATE INDEX calls_in_queue ON calls (queue_state, queue_order) WHERE queue_state IS NOT NULL;
CREATE INDEX calls_claimed_by ON calls (claimed_by) WHERE claimed_by IS NOT NULL;
"#,
    ),
    M::up(
        r#"
-- The web pages: one-time sign-in codes and sessions. Only a SHA-256 of
-- each secret part is kept; the selector finds the row.
CREATE TABLE web_login_codes (
    selector    TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (user_id),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
) STRICT;
CREATE INDEX web_login_codes_by_expiry ON web_login_codes (expires_at);

-- A signed-in user or agent, never both.
CREATE TABLE web_sessions (
    session_id   TEXT PRIMARY KEY,
    secret_hash  BLOB NOT NULL,
    user_id      INTEGER REFERENCES users (user_id),
    agent_id     INTEGER REFERENCES agents (agent_id),
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    time_zone    TEXT,
    CHECK ((user_id IS NULL) <> (agent_id IS NULL))
) STRICT;
CREATE INDEX web_sessions_by_last_seen ON web_sessions (last_seen_at);
"#,
    ),
];

/// The schema version after all migrations.
#[cfg(test)]
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to date.
pub fn migrate(conn: &mut Connection) -> Result<(), rusqlite_migration::Error> {
    Migrations::from_slice(MIGRATIONS).to_latest(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(Migrations::from_slice(MIGRATIONS).validate().is_ok());
    }
}
