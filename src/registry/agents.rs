//! Agents: creation, passcode checks (throttled like PINs), API tokens,
//! and the queue operations they perform, each with its audit event on the
//! caller's subject user.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Attempt, Origin, Registry, Verdict};
use crate::domain::account::UserId;
use crate::domain::agent::{AgentId, new_passcode, split_token};
use crate::domain::audit::{Actor, EventKind, format_time};
use crate::domain::lock::FailureCounts;
use crate::error::{Error, Result};
use crate::flow::{QueueClass, QueueContext, VerifiedCaller};
use crate::storage::accounts;
use crate::storage::agents::{self, AgentRow};
use crate::storage::queue::{self, QueuedCall};

/// An agent as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    /// Keyed in on the agent line.
    pub agent_id: AgentId,
    /// Display name.
    pub name: String,
    /// Locked out by wrong passcodes.
    pub locked: bool,
}

impl From<AgentRow> for Agent {
    fn from(row: AgentRow) -> Self {
        Self {
            agent_id: row.agent_id,
            name: row.name,
            locked: row.locked_at.is_some(),
        }
    }
}

/// A newly issued API token, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedToken {
    /// Owner.
    pub agent_id: AgentId,
    /// Public ID, for revocation.
    pub token_id: String,
    /// The bearer token itself.
    pub token: String,
}

fn hash_passcode(passcode: &str) -> Result<String> {
    Argon2::default()
        .hash_password(passcode.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Invalid(format!("cannot hash the passcode: {e}")))
}

fn passcode_matches(hash: &str, passcode: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(passcode.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash no passcode matches, verified against for unknown agent IDs so
/// that they cost what a wrong passcode costs.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random = new_passcode(&mut rand::rng()) + &new_passcode(&mut rand::rng());
        hash_passcode(&random).unwrap_or_default()
    })
}

fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl Registry {
    /// Adds an agent; returns it with its passcode, which is shown once.
    pub fn add_agent(&self, name: &str) -> Result<(Agent, String)> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::Invalid("an agent needs a name".into()));
        }
        let passcode = new_passcode(&mut rand::rng());
        let hash = hash_passcode(&passcode)?;
        let now = format_time(self.now());
        let agent = self.db.write(|tx| -> Result<AgentRow> {
            let agent_id = loop {
                let candidate = AgentId::random(&mut rand::rng());
                if agents::get(tx, candidate)?.is_none() {
                    break candidate;
                }
            };
            let row = AgentRow {
                agent_id,
                name: name.to_owned(),
                passcode_hash: hash,
                consecutive_failures: 0,
                failures_since: now.clone(),
                locked_at: None,
            };
            agents::insert(tx, &row, &now)?;
            Ok(row)
        })?;
        Ok((agent.into(), passcode))
    }

    /// Every agent.
    pub fn agents(&self) -> Result<Vec<Agent>> {
        Ok(agents::list(&*self.db.conn()?)?
            .into_iter()
            .map(Agent::from)
            .collect())
    }

    /// Gives an agent a new passcode, which also lifts a lock.
    pub fn reset_agent_passcode(&self, agent: AgentId) -> Result<String> {
        let passcode = new_passcode(&mut rand::rng());
        let hash = hash_passcode(&passcode)?;
        let now = format_time(self.now());
        let changed = self
            .db
            .write(|tx| -> Result<bool> { Ok(agents::set_passcode(tx, agent, &hash, &now)?) })?;
        if !changed {
            return Err(Error::Invalid(format!("no agent with ID {agent}")));
        }
        Ok(passcode)
    }

    /// Checks an agent ID and passcode as keyed in. Wrong passcodes lock
    /// the agent under the same policy as PINs; a locked agent and an
    /// unknown ID are refused like a wrong passcode.
    pub fn authenticate_agent_in(
        &self,
        tx: &rusqlite::Connection,
        agent_id: &str,
        passcode: &str,
    ) -> Result<Option<AgentId>> {
        let row = match AgentId::parse(agent_id) {
            Ok(id) => agents::get(tx, id)?,
            Err(_) => None,
        };
        let Some(row) = row else {
            std::hint::black_box(passcode_matches(decoy_hash(), passcode));
            return Ok(None);
        };
        let matched = passcode_matches(&row.passcode_hash, passcode);
        if row.locked_at.is_some() {
            return Ok(None);
        }
        if matched {
            agents::clear_streak(tx, row.agent_id)?;
            return Ok(Some(row.agent_id));
        }
        let now = self.now();
        let window_start = self.window_start(now, &row.failures_since);
        let counts = FailureCounts {
            consecutive: row.consecutive_failures + 1,
            in_window: agents::failures_since(tx, row.agent_id, &window_start)? + 1,
        };
        let locked = self.policy.locks(counts).then(|| format_time(now));
        agents::record_failure(
            tx,
            row.agent_id,
            counts.consecutive,
            locked.as_deref(),
            &format_time(now),
        )?;
        if locked.is_some() {
            tracing::warn!(agent = %row.agent_id, "agent locked out after wrong passcodes");
        }
        Ok(None)
    }

    /// Issues a bearer token for `agent`'s API use; it is stored hashed.
    pub fn issue_agent_token(&self, agent: AgentId) -> Result<IssuedToken> {
        let mut rng = rand::rng();
        let token_id: String = (0..12)
            .map(|_| format!("{:x}", rng.random_range(0..16u8)))
            .collect();
        let secret_bytes: [u8; 32] = rng.random();
        let secret = URL_SAFE_NO_PAD.encode(secret_bytes);
        let now = format_time(self.now());
        self.db.write(|tx| -> Result<()> {
            if agents::get(tx, agent)?.is_none() {
                return Err(Error::Invalid(format!("no agent with ID {agent}")));
            }
            agents::insert_token(tx, &token_id, agent, &token_hash(&secret), &now)?;
            Ok(())
        })?;
        Ok(IssuedToken {
            agent_id: agent,
            token: format!("pl_{token_id}_{secret}"),
            token_id,
        })
    }

    /// Revokes a token by its ID.
    pub fn revoke_agent_token(&self, token_id: &str) -> Result<()> {
        let now = format_time(self.now());
        let revoked = self
            .db
            .write(|tx| -> Result<bool> { Ok(agents::revoke_token(tx, token_id, &now)?) })?;
        if revoked {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "no live token with ID {token_id:?}"
            )))
        }
    }

    /// The agent a bearer token belongs to, if it is live.
    pub fn agent_for_token(&self, token: &str) -> Result<Option<AgentId>> {
        let Some(parts) = split_token(token) else {
            return Ok(None);
        };
        let Some((agent, hash, revoked)) = agents::token(&*self.db.conn()?, parts.token_id)? else {
            return Ok(None);
        };
        let matches: bool = token_hash(parts.secret).ct_eq(hash.as_slice()).into();
        Ok((matches && !revoked)
            .then(|| AgentId::from_stored(agent))
            .flatten())
    }

    fn queue_event(
        &self,
        tx: &rusqlite::Connection,
        call: &QueuedCall,
        origin: &Origin,
        kind: EventKind,
        detail: &str,
    ) -> Result<()> {
        let subject = call.verified_user_id.and_then(UserId::from_stored);
        let detail = format!("call {}: {detail}", call.call_sid);
        self.record(tx, subject, origin, kind, detail)?;
        Ok(())
    }

    /// The call `agent` holds a claim on, else the next waiting one (not in
    /// `skip`), now claimed for them.
    pub fn claim_next_in(
        &self,
        tx: &rusqlite::Connection,
        agent: AgentId,
        skip: &[String],
        origin: &Origin,
    ) -> Result<Option<QueuedCall>> {
        if let Some(held) = queue::claimed_by(tx, agent)? {
            return Ok(Some(held));
        }
        let now = format_time(self.now());
        let Some(call) = queue::claim_next(tx, agent, skip, &now)? else {
            return Ok(None);
        };
        self.queue_event(
            tx,
            &call,
            origin,
            EventKind::Claimed,
            &format!("claimed by agent {agent}"),
        )?;
        Ok(Some(call))
    }

    /// [`Registry::claim_next_in`] in its own transaction.
    pub fn claim_next(&self, agent: AgentId, origin: &Origin) -> Result<Option<QueuedCall>> {
        self.db
            .write(|tx| self.claim_next_in(tx, agent, &[], origin))
    }

    /// Gives a claimed caller back to the front of their class.
    pub fn release_claim_in(
        &self,
        tx: &rusqlite::Connection,
        call_sid: &str,
        why: &str,
        origin: &Origin,
    ) -> Result<bool> {
        let Some(call) = queue::get(tx, call_sid)? else {
            return Ok(false);
        };
        if !queue::release(tx, call_sid, true)? {
            return Ok(false);
        }
        self.queue_event(tx, &call, origin, EventKind::ClaimReleased, why)?;
        Ok(true)
    }

    /// Connects a claimed caller to the agent holding the claim; false if
    /// the caller is gone.
    pub fn bridge_in(
        &self,
        tx: &rusqlite::Connection,
        call_sid: &str,
        agent: AgentId,
        origin: &Origin,
    ) -> Result<Option<QueuedCall>> {
        let now = format_time(self.now());
        let Some(call) = queue::get(tx, call_sid)? else {
            return Ok(None);
        };
        if !queue::bridge(tx, call_sid, agent, &now)? {
            return Ok(None);
        }
        self.queue_event(
            tx,
            &call,
            origin,
            EventKind::Connected,
            &format!("connected to agent {agent}"),
        )?;
        Ok(Some(call))
    }

    /// A caller's call ended: out of the queue, releasing any claim.
    pub fn caller_left_in(
        &self,
        tx: &rusqlite::Connection,
        call_sid: &str,
        origin: &Origin,
    ) -> Result<()> {
        let Some(call) = queue::get(tx, call_sid)? else {
            return Ok(());
        };
        if queue::leave(tx, call_sid)? {
            let detail = format!("caller hung up while {}", call.state);
            self.queue_event(tx, &call, origin, EventKind::LeftQueue, &detail)?;
        }
        Ok(())
    }

    /// Checks a PIN an agent was given (by email, in a case, or by a
    /// caller on the phone) under the same rules, locks and rotation as the
    /// keypad. With `call_sid` of a caller waiting in the queue, a success
    /// moves that caller into the verified class.
    pub fn verify_for_agent(
        &self,
        agent: AgentId,
        user_id: &str,
        pin: &str,
        origin: &Origin,
        call_sid: Option<&str>,
    ) -> Result<Verdict> {
        self.db.write(|tx| {
            let attempt = Attempt {
                user_id,
                digits: pin,
                origin: Origin {
                    actor: Actor::Agent(agent.to_stored() as u64),
                    ..origin.clone()
                },
                note: Some(format!("checked by agent {agent}")),
            };
            let verdict = self.validate_pin_in(tx, &attempt)?;
            if let (Verdict::Verified(user), Some(sid)) = (&verdict, call_sid) {
                let context = QueueContext {
                    class: QueueClass::Verified,
                    verified: true,
                    caller: Some(VerifiedCaller {
                        user_id: user.user_id,
                        name: user.name.clone(),
                        role: user.role.as_str().to_owned(),
                        practice: user.practice.clone(),
                        verified_at: format_time(self.now()),
                        caller_id_matched: false,
                        stir_verstat: None,
                    }),
                    on_behalf_of: None,
                    allowed: format!("own account (PIN checked by agent {agent})"),
                    case_number: None,
                    approval_pending: false,
                };
                let json = serde_json::to_string(&context)
                    .map_err(|e| Error::Invalid(format!("cannot store queue context: {e}")))?;
                queue::set_verified(tx, sid, &json, user.user_id.to_stored())?;
            }
            Ok(verdict)
        })
    }

    /// Whether user `user_id` exists (for CLI checks that must not guess).
    pub fn user_exists(&self, user_id: UserId) -> Result<bool> {
        Ok(accounts::user_exists(&*self.db.conn()?, user_id)?)
    }
}
