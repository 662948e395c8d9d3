//! The registry of practices, users and Support PINs: every operation on
//! them, each in one transaction with its audit events.
//!
//! Callers get plain results; all SQL stays in `storage`, all rules in
//! `domain`. Methods block: async code calls them in `spawn_blocking`.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::crypto::{PinCipher, SealedPin, SecretKey};
use crate::domain::account::{NewUser, Practice, User, UserId};
use crate::domain::audit::{
    Actor, ChainBreak, ChainHead, ChainVerifier, Channel, EventKind, GenerationReason, NewEvent,
    StoredEvent, Tag, format_time,
};
use crate::domain::lock::{FailureCounts, LockPolicy};
use crate::domain::pin::SupportPin;
use crate::error::{Error, Result};
use crate::keys::{KeyError, KeyKind};
use crate::storage::{Db, accounts, audit, meta, pins};

mod agents;
mod cases;
pub mod web;

pub use agents::{Agent, IssuedToken};
pub use cases::{CaseView, Party as CaseParty, ReplyOutcome};

/// Who is doing something, through which channel, in which call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Who acts.
    pub actor: Actor,
    /// Through what.
    pub channel: Channel,
    /// The call, for phone actions.
    pub call_sid: Option<String>,
}

impl Origin {
    /// An operator at the command line.
    pub fn cli() -> Self {
        Self {
            actor: Actor::Operator,
            channel: Channel::Cli,
            call_sid: None,
        }
    }
}

/// One try at proving identity with a user ID and a PIN.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    /// The user ID as keyed in (may be malformed or unknown).
    pub user_id: &'a str,
    /// The PIN as keyed in (may be malformed).
    pub digits: &'a str,
    /// Who tries, and where.
    pub origin: Origin,
    /// Context for the audit detail, such as caller-ID match.
    pub note: Option<String>,
}

/// The answer to an [`Attempt`]. Callers must treat every `Rejected` the
/// same way towards the person trying; the reason is for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The PIN was right; it has been replaced by a new one.
    Verified(User),
    /// Not verified.
    Rejected(Rejection),
}

/// Why an attempt was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No such user (or a malformed ID).
    UnknownUser,
    /// Wrong PIN; `locked_now` when this failure locked the PIN.
    WrongPin {
        /// This failure reached a lock threshold.
        locked_now: bool,
    },
    /// The PIN is locked; even the right one is refused.
    Locked,
}

/// One row of a bulk import.
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// Line number in the source file, for error messages.
    pub line: usize,
    /// Practice ID or name.
    pub practice: String,
    /// The user.
    pub user: NewUser,
}

/// Practices, users and Support PINs over one database.
pub struct Registry {
    db: Db,
    pin_cipher: std::result::Result<PinCipher, Arc<KeyError>>,
    audit_key: std::result::Result<SecretKey, Arc<KeyError>>,
    policy: LockPolicy,
    clock: Arc<dyn Clock>,
    decoy: Option<(UserId, SealedPin)>,
    approval_ttl: chrono::Duration,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// The ID of the key each kind was last used with, as the database
/// recorded it.
pub fn recorded_key_id(db: &Db, kind: KeyKind) -> Result<Option<String>> {
    Ok(meta::get(&*db.conn()?, kind.meta_key())?)
}

impl Registry {
    /// A registry over `db`. A key given as `Err` is only needed by the
    /// operations that use it, which then fail with that error. Keys seen
    /// for the first time are recorded, so a different key later is refused.
    pub fn new(
        db: Db,
        pin_key: std::result::Result<SecretKey, KeyError>,
        audit_key: std::result::Result<SecretKey, KeyError>,
        policy: LockPolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let pin_cipher = pin_key.map(|k| PinCipher::new(&k)).map_err(Arc::new);
        let audit_key = audit_key.map_err(Arc::new);
        db.write(|tx| -> Result<()> {
            if let Ok(cipher) = &pin_cipher {
                record_key_id(tx, KeyKind::Pin, cipher.key_id())?;
            }
            if let Ok(key) = &audit_key {
                record_key_id(tx, KeyKind::Audit, &key.id(KeyKind::Audit.purpose()))?;
            }
            Ok(())
        })?;
        // Unknown user IDs are compared against this, so that they cost
        // what a wrong PIN costs.
        let decoy = pin_cipher.as_ref().ok().and_then(|cipher| {
            let id = UserId::parse("1000000000").ok()?;
            Some((id, cipher.seal(id, 1, &SupportPin::generate(None))))
        });
        Ok(Self {
            db,
            pin_cipher,
            audit_key,
            policy,
            clock,
            decoy,
            approval_ttl: chrono::Duration::hours(24),
        })
    }

    /// How long an approval holds once given (24 hours unless set).
    pub fn with_approval_ttl(mut self, ttl: chrono::Duration) -> Self {
        self.approval_ttl = ttl;
        self
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The lock thresholds in force.
    pub fn policy(&self) -> &LockPolicy {
        &self.policy
    }

    fn cipher(&self) -> Result<&PinCipher> {
        self.pin_cipher.as_ref().map_err(key_error)
    }

    fn audit_key(&self) -> Result<&[u8; 32]> {
        self.audit_key
            .as_ref()
            .map(SecretKey::bytes)
            .map_err(key_error)
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Where the rolling failure window starts at `now`, given the stored
    /// start of the current stretch (the last renewal), as stored text.
    fn window_start(&self, now: DateTime<Utc>, counted_since: &str) -> String {
        let since = DateTime::parse_from_rfc3339(counted_since)
            .map(|t| t.to_utc())
            .unwrap_or(now);
        format_time(self.policy.window_start(now, since))
    }

    fn record(
        &self,
        tx: &rusqlite::Connection,
        subject: Option<UserId>,
        origin: &Origin,
        kind: EventKind,
        detail: impl Into<String>,
    ) -> Result<StoredEvent> {
        let event = NewEvent {
            at: self.now(),
            subject,
            actor: origin.actor,
            channel: origin.channel,
            call_sid: origin.call_sid.clone(),
            kind,
            detail: detail.into(),
        };
        Ok(audit::append(tx, self.audit_key()?, &event)?)
    }

    /// Adds a practice; names are unique regardless of case.
    pub fn add_practice(&self, name: &str) -> Result<Practice> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::Invalid("a practice needs a name".into()));
        }
        self.db.write(|tx| {
            if let Some(existing) = accounts::practice_by_name(tx, name)? {
                return Err(Error::Invalid(format!(
                    "a practice named {:?} exists already (ID {})",
                    existing.name, existing.practice_id
                )));
            }
            let practice_id = accounts::insert_practice(tx, name, &format_time(self.now()))?;
            Ok(Practice {
                practice_id,
                name: name.to_owned(),
            })
        })
    }

    /// Every practice.
    pub fn practices(&self) -> Result<Vec<Practice>> {
        Ok(accounts::practices(&*self.db.conn()?)?)
    }

    /// Adds a user to `practice` (ID or name) with a first Support PIN.
    pub fn add_user(&self, practice: &str, user: &NewUser, origin: &Origin) -> Result<User> {
        self.db.write(|tx| {
            let practice = resolve_practice(tx, practice)?;
            self.insert_user(tx, &practice, user, origin)
        })
    }

    /// Adds every row or none: the first bad row aborts the import and is
    /// named by its line. With `create_practices`, unknown practice names
    /// are created instead of refused.
    pub fn import_users(
        &self,
        rows: &[ImportRow],
        create_practices: bool,
        origin: &Origin,
    ) -> Result<Vec<(usize, User)>> {
        self.db.write(|tx| {
            let mut added = Vec::with_capacity(rows.len());
            for row in rows {
                let at_line = |e: Error| Error::Invalid(format!("line {}: {e}", row.line));
                let practice = match resolve_practice(tx, &row.practice) {
                    Err(Error::UnknownPractice(name)) if create_practices => {
                        let now = format_time(self.now());
                        let practice_id = accounts::insert_practice(tx, &name, &now)?;
                        Practice { practice_id, name }
                    }
                    other => other.map_err(at_line)?,
                };
                let user =
                    self.insert_user(tx, &practice, &row.user, origin)
                        .map_err(|e| match e {
                            Error::Storage(_) | Error::Io { .. } => e,
                            other => at_line(other),
                        })?;
                added.push((row.line, user));
            }
            Ok(added)
        })
    }

    fn insert_user(
        &self,
        tx: &rusqlite::Connection,
        practice: &Practice,
        user: &NewUser,
        origin: &Origin,
    ) -> Result<User> {
        if user.name.trim().is_empty() {
            return Err(Error::Invalid("a user needs a name".into()));
        }
        let cipher = self.cipher()?;
        let user_id = match user.user_id {
            Some(id) if accounts::user_exists(tx, id)? => {
                return Err(Error::Invalid(format!("user ID {id} is taken")));
            }
            Some(id) => id,
            None => loop {
                let candidate = UserId::random(&mut rand::rng());
                if !accounts::user_exists(tx, candidate)? {
                    break candidate;
                }
            },
        };
        let now = format_time(self.now());
        accounts::insert_user(tx, user_id, practice.practice_id, user, &now)?;
        let pin = SupportPin::generate(None);
        pins::insert(tx, user_id, 1, &cipher.seal(user_id, 1, &pin), &now)?;
        self.record(
            tx,
            Some(user_id),
            origin,
            EventKind::Generated,
            GenerationReason::Created.as_str(),
        )?;
        accounts::user(tx, user_id)?.ok_or(Error::UnknownUser(user_id))
    }

    /// One user.
    pub fn user(&self, user_id: UserId) -> Result<User> {
        accounts::user(&*self.db.conn()?, user_id)?.ok_or(Error::UnknownUser(user_id))
    }

    /// Every user.
    pub fn users(&self) -> Result<Vec<User>> {
        Ok(accounts::users(&*self.db.conn()?)?)
    }

    /// The user's current PIN, for its owner; records `viewed`.
    pub fn view_pin(&self, user_id: UserId, origin: &Origin) -> Result<SupportPin> {
        let cipher = self.cipher()?;
        self.db.write(|tx| {
            let row = pins::get(tx, user_id)?.ok_or(Error::UnknownUser(user_id))?;
            let pin = cipher.open(user_id, row.version, &row.sealed)?;
            self.record(tx, Some(user_id), origin, EventKind::Viewed, "")?;
            Ok(pin)
        })
    }

    /// Replaces the user's PIN at their (or an operator's) request, which
    /// also lifts a lock; records `generated`.
    pub fn renew_pin(&self, user_id: UserId, origin: &Origin) -> Result<()> {
        self.db.write(|tx| {
            let row = pins::get(tx, user_id)?.ok_or(Error::UnknownUser(user_id))?;
            self.replace_pin(tx, &row, GenerationReason::Requested, origin)
        })
    }

    fn replace_pin(
        &self,
        tx: &rusqlite::Connection,
        row: &pins::PinRow,
        reason: GenerationReason,
        origin: &Origin,
    ) -> Result<()> {
        let cipher = self.cipher()?;
        let previous = cipher.open(row.user_id, row.version, &row.sealed)?;
        let pin = SupportPin::generate(Some(&previous));
        let version = row.version + 1;
        let sealed = cipher.seal(row.user_id, version, &pin);
        let owner_request = reason == GenerationReason::Requested;
        let now = format_time(self.now());
        pins::replace(tx, row.user_id, version, &sealed, &now, owner_request)?;
        let mut detail = reason.as_str().to_owned();
        if owner_request && row.locked_at.is_some() {
            detail.push_str("; lock lifted");
        }
        self.record(tx, Some(row.user_id), origin, EventKind::Generated, detail)?;
        Ok(())
    }

    /// Checks a user ID and PIN. The comparison, the failure counts, the
    /// lock, the rotation on success and the audit events all happen in
    /// one transaction, so a PIN can never validate twice, not even when
    /// two tries race.
    pub fn validate_pin(&self, attempt: &Attempt<'_>) -> Result<Verdict> {
        self.db.write(|tx| self.validate_pin_in(tx, attempt))
    }

    /// [`Registry::validate_pin`] inside a write transaction the caller
    /// opened (with `BEGIN IMMEDIATE`), so that the verdict and the
    /// caller's own state commit together.
    pub fn validate_pin_in(
        &self,
        tx: &rusqlite::Connection,
        attempt: &Attempt<'_>,
    ) -> Result<Verdict> {
        let cipher = self.cipher()?;
        let claimed = UserId::parse(attempt.user_id).ok();
        {
            let row = match claimed {
                Some(id) => pins::get(tx, id)?,
                None => None,
            };
            let Some(row) = row else {
                return self.reject_unknown(tx, cipher, attempt, claimed);
            };
            let pin = cipher.open(row.user_id, row.version, &row.sealed)?;
            let matched = pin.matches(attempt.digits);
            let note = attempt.note.as_deref().unwrap_or_default();
            let origin = &attempt.origin;
            if row.locked_at.is_some() {
                let detail = join_detail("locked", note);
                self.record(
                    tx,
                    Some(row.user_id),
                    origin,
                    EventKind::ValidationFailed,
                    detail,
                )?;
                return Ok(Verdict::Rejected(Rejection::Locked));
            }
            if matched {
                self.record(tx, Some(row.user_id), origin, EventKind::Validated, note)?;
                let rotation = Origin {
                    actor: Actor::System,
                    ..origin.clone()
                };
                self.replace_pin(
                    tx,
                    &row,
                    GenerationReason::RotatedAfterValidation,
                    &rotation,
                )?;
                let user =
                    accounts::user(tx, row.user_id)?.ok_or(Error::UnknownUser(row.user_id))?;
                return Ok(Verdict::Verified(user));
            }
            self.record_wrong_pin(tx, &row, attempt)
        }
    }

    fn reject_unknown(
        &self,
        tx: &rusqlite::Connection,
        cipher: &PinCipher,
        attempt: &Attempt<'_>,
        claimed: Option<UserId>,
    ) -> Result<Verdict> {
        if let Some((id, sealed)) = &self.decoy {
            let decoy = cipher.open(*id, 1, sealed)?;
            std::hint::black_box(decoy.matches(attempt.digits));
        }
        let what = match claimed {
            Some(id) => format!("unknown user ID {id}"),
            None => format!(
                "malformed user ID ({} characters)",
                attempt.user_id.chars().count()
            ),
        };
        let detail = join_detail(&what, attempt.note.as_deref().unwrap_or_default());
        self.record(
            tx,
            None,
            &attempt.origin,
            EventKind::ValidationFailed,
            detail,
        )?;
        Ok(Verdict::Rejected(Rejection::UnknownUser))
    }

    fn record_wrong_pin(
        &self,
        tx: &rusqlite::Connection,
        row: &pins::PinRow,
        attempt: &Attempt<'_>,
    ) -> Result<Verdict> {
        let now = self.now();
        let origin = &attempt.origin;
        let note = attempt.note.as_deref().unwrap_or_default();
        self.record(
            tx,
            Some(row.user_id),
            origin,
            EventKind::ValidationFailed,
            join_detail("wrong PIN", note),
        )?;
        let window_start = self.window_start(now, &row.failures_since);
        let counts = FailureCounts {
            consecutive: row.consecutive_failures + 1,
            in_window: audit::failures_since(tx, row.user_id, &window_start)?,
        };
        let locked_now = self.policy.locks(counts);
        let locked_at = locked_now.then(|| format_time(now));
        pins::record_failure(tx, row.user_id, counts.consecutive, locked_at.as_deref())?;
        if locked_now {
            let detail = format!(
                "{} failures in a row, {} in the window; renew the PIN to unlock",
                counts.consecutive, counts.in_window
            );
            let system = Origin {
                actor: Actor::System,
                ..origin.clone()
            };
            self.record(tx, Some(row.user_id), &system, EventKind::Locked, detail)?;
        }
        Ok(Verdict::Rejected(Rejection::WrongPin { locked_now }))
    }

    /// Whether `caller` (a caller ID) is one of the numbers on file for
    /// `user_id` as keyed in. Context for agents, never proof.
    pub fn caller_id_matches_in(
        &self,
        tx: &rusqlite::Connection,
        user_id: &str,
        caller: Option<&str>,
    ) -> Result<bool> {
        let (Ok(id), Some(caller)) = (UserId::parse(user_id), caller) else {
            return Ok(false);
        };
        Ok(accounts::user(tx, id)?.is_some_and(|u| u.phones.iter().any(|p| p.as_str() == caller)))
    }

    /// Whether the user's PIN is locked.
    pub fn is_locked(&self, user_id: UserId) -> Result<bool> {
        let row = pins::get(&*self.db.conn()?, user_id)?.ok_or(Error::UnknownUser(user_id))?;
        Ok(row.locked_at.is_some())
    }

    /// Events about `user_id`, newest first.
    pub fn audit_events(
        &self,
        user_id: UserId,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<StoredEvent>> {
        let conn = self.db.conn()?;
        if !accounts::user_exists(&conn, user_id)? {
            return Err(Error::UnknownUser(user_id));
        }
        Ok(audit::for_subject(&conn, user_id, limit, offset)?)
    }

    /// The newest event's position and tag.
    pub fn audit_head(&self) -> Result<ChainHead> {
        Ok(audit::head(&*self.db.conn()?)?)
    }

    /// Walks the whole chain. With `expected_head` (printed earlier by
    /// `audit head`), also catches a log cut back past that event.
    pub fn verify_audit(
        &self,
        expected_head: Option<Tag>,
    ) -> Result<std::result::Result<ChainHead, ChainBreak>> {
        let key = self.audit_key()?;
        let mut verifier = ChainVerifier::new(key, expected_head);
        let conn = self.db.conn()?;
        // One read transaction, so appends during the walk don't move the
        // end under it.
        conn.execute_batch("BEGIN")?;
        let walked = audit::walk(&conn, |event| verifier.push(event));
        conn.execute_batch("COMMIT")?;
        Ok(walked?.and_then(|()| verifier.finish()))
    }

    /// Re-encrypts every PIN under `new_key` in one transaction, then
    /// runs `before_commit` (which puts the new key where it will be
    /// found); the database commits only if that succeeds. Returns how
    /// many PINs were re-encrypted.
    pub fn rotate_pin_key(
        &self,
        new_key: &SecretKey,
        before_commit: impl FnOnce() -> Result<()>,
    ) -> Result<usize> {
        let old = self.cipher()?;
        let new = PinCipher::new(new_key);
        self.db.write(|tx| {
            let rows = pins::all(tx)?;
            for row in &rows {
                let pin = old.open(row.user_id, row.version, &row.sealed)?;
                pins::reseal(tx, row.user_id, &new.seal(row.user_id, row.version, &pin))?;
            }
            meta::set(tx, KeyKind::Pin.meta_key(), new.key_id())?;
            let detail = format!(
                "{} PINs re-encrypted from key {} to key {}",
                rows.len(),
                old.key_id(),
                new.key_id()
            );
            self.record(tx, None, &Origin::cli(), EventKind::KeyRotated, detail)?;
            before_commit()?;
            Ok(rows.len())
        })
    }

    /// Whether the meta entry `key` is set; used for one-time seeding.
    pub fn marker(&self, key: &str) -> Result<Option<String>> {
        Ok(meta::get(&*self.db.conn()?, key)?)
    }

    /// Sets the meta entry `key`.
    pub fn set_marker(&self, key: &str, value: &str) -> Result<()> {
        self.db.write(|tx| Ok(meta::set(tx, key, value)?))
    }
}

fn key_error(e: &Arc<KeyError>) -> Error {
    Error::Key(Arc::clone(e))
}

fn record_key_id(tx: &rusqlite::Connection, kind: KeyKind, id: &str) -> Result<()> {
    match meta::get(tx, kind.meta_key())? {
        None => meta::set(tx, kind.meta_key(), id)?,
        Some(recorded) if recorded != id => {
            return Err(KeyError::Mismatch {
                kind,
                source_name: "the configured key".into(),
                found: id.to_owned(),
                expected: recorded,
            }
            .into());
        }
        Some(_) => {}
    }
    Ok(())
}

fn resolve_practice(tx: &rusqlite::Connection, text: &str) -> Result<Practice> {
    let text = text.trim();
    let by_id = match text.parse() {
        Ok(id) => accounts::practice_by_id(tx, id)?,
        Err(_) => None,
    };
    match by_id {
        Some(p) => Ok(p),
        None => accounts::practice_by_name(tx, text)?
            .ok_or_else(|| Error::UnknownPractice(text.to_owned())),
    }
}

fn join_detail(what: &str, note: &str) -> String {
    if note.is_empty() {
        what.to_owned()
    } else {
        format!("{what}; {note}")
    }
}
