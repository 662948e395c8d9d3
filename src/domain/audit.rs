//! Audit events and the keyed hash chain that makes tampering evident.
//!
//! Each stored event carries `tag = HMAC-SHA-256(key, previous tag ||
//! encoded event)`. The key lives outside the database, so whoever can write
//! the file can neither fix up the tag of an edited row nor forge one for an
//! inserted row; a deleted row breaks the link from its successor, and a cut
//! tail is caught by comparing with a head recorded elsewhere.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::account::UserId;

/// A chain tag: HMAC-SHA-256 output.
pub type Tag = [u8; 32];

/// The tag that the first event links to.
pub const GENESIS: Tag = [0; 32];

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The owner (or an operator) looked at the PIN.
    Viewed,
    /// A PIN was entered correctly.
    Validated,
    /// A PIN was entered wrongly, for an unknown user, or while locked.
    ValidationFailed,
    /// A new PIN was made; the detail says why.
    Generated,
    /// Too many failures locked the PIN until the owner renews it.
    Locked,
    /// Every PIN was re-encrypted under a new key.
    KeyRotated,
    /// Someone asked for help with another person's account (a case).
    ApprovalRequested,
    /// An approver agreed.
    ApprovalGranted,
    /// An approver refused, or withdrew an approval.
    ApprovalDeclined,
    /// An agent claimed a waiting caller.
    Claimed,
    /// A claimed caller went back to the front of their class.
    ClaimReleased,
    /// A caller was connected to an agent.
    Connected,
    /// A caller hung up while waiting.
    LeftQueue,
}

impl EventKind {
    /// The name stored and shown; operators' scripts match on it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Viewed => "viewed",
            EventKind::Validated => "validated",
            EventKind::ValidationFailed => "validation_failed",
            EventKind::Generated => "generated",
            EventKind::Locked => "locked",
            EventKind::KeyRotated => "key_rotated",
            EventKind::ApprovalRequested => "approval_requested",
            EventKind::ApprovalGranted => "approval_granted",
            EventKind::ApprovalDeclined => "approval_declined",
            EventKind::Claimed => "claimed",
            EventKind::ClaimReleased => "claim_released",
            EventKind::Connected => "connected",
            EventKind::LeftQueue => "left_queue",
        }
    }
}

/// Where the action came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A phone call's keypad.
    Phone,
    /// The account pages.
    Web,
    /// The HTTP API.
    Api,
    /// The command line, by an operator.
    Cli,
    /// A reply to a support case, from the case system.
    Case,
    /// An email to support.
    Email,
}

impl Channel {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Phone => "phone",
            Channel::Web => "web",
            Channel::Api => "api",
            Channel::Cli => "cli",
            Channel::Case => "case",
            Channel::Email => "email",
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The user themselves (or someone holding their PIN).
    User(UserId),
    /// Someone on the phone who has not (yet) proved who they are.
    Caller,
    /// A support agent, by agent ID.
    Agent(u64),
    /// Someone running the `pinline` command.
    Operator,
    /// pinline on its own account, such as rotation after validation.
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::Caller => f.write_str("caller"),
            Actor::Agent(id) => write!(f, "agent:{id}"),
            Actor::Operator => f.write_str("operator"),
            Actor::System => f.write_str("system"),
        }
    }
}

/// Why a new PIN was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerationReason {
    /// With the user's account.
    Created,
    /// The owner (or an operator) asked for it.
    Requested,
    /// The old one was just used; PINs never work twice.
    RotatedAfterValidation,
}

impl GenerationReason {
    /// The detail text of the `generated` event.
    pub fn as_str(self) -> &'static str {
        match self {
            GenerationReason::Created => "created",
            GenerationReason::Requested => "requested",
            GenerationReason::RotatedAfterValidation => "rotated after validation",
        }
    }
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Whose account it concerns; `None` for an unknown user ID.
    pub subject: Option<UserId>,
    /// Who acted.
    pub actor: Actor,
    /// Through which channel.
    pub channel: Channel,
    /// The telephony provider's call ID, for phone events.
    pub call_sid: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// A short human-readable detail. Never PIN digits.
    pub detail: String,
}

/// An event as stored: plain text fields, exactly the bytes the tag covers,
/// so that verification never depends on parsing what may be tampered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredEvent {
    /// Position in the chain, from 1 with no gaps.
    pub seq: i64,
    /// RFC 3339 UTC time.
    pub at: String,
    /// Subject user ID, if known.
    pub subject: Option<i64>,
    /// Who acted (`user:N`, `agent:N`, `operator`, `system`).
    pub actor: String,
    /// Channel name.
    pub channel: String,
    /// Call SID, if any.
    pub call_sid: Option<String>,
    /// Event name.
    pub event: String,
    /// Short detail.
    pub detail: String,
    /// Chain tag.
    #[serde(skip)]
    pub tag: Tag,
}

impl NewEvent {
    /// The stored form of this event at position `seq`, with its tag.
    pub fn seal(&self, key: &[u8; 32], seq: i64, previous: &Tag) -> StoredEvent {
        let mut stored = StoredEvent {
            seq,
            at: format_time(self.at),
            subject: self.subject.map(UserId::to_stored),
            actor: self.actor.to_string(),
            channel: self.channel.as_str().to_owned(),
            call_sid: self.call_sid.clone(),
            event: self.kind.as_str().to_owned(),
            detail: self.detail.clone(),
            tag: GENESIS,
        };
        stored.tag = stored.expected_tag(key, previous);
        stored
    }
}

/// Formats a time as stored: RFC 3339 in UTC with microseconds, so that
/// text order is time order.
pub fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl StoredEvent {
    /// The tag this event should carry after `previous`.
    pub fn expected_tag(&self, key: &[u8; 32], previous: &Tag) -> Tag {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .expect("HMAC takes keys of any length");
        mac.update(previous);
        mac.update(&self.seq.to_be_bytes());
        // Length prefixes keep field boundaries unambiguous: moving text
        // from one field to the next changes the tag.
        let subject = self.subject.map(i64::to_be_bytes);
        let fields: [Option<&[u8]>; 7] = [
            Some(self.at.as_bytes()),
            subject.as_ref().map(|b| &b[..]),
            Some(self.actor.as_bytes()),
            Some(self.channel.as_bytes()),
            self.call_sid.as_deref().map(str::as_bytes),
            Some(self.event.as_bytes()),
            Some(self.detail.as_bytes()),
        ];
        for field in fields {
            match field {
                None => mac.update(&[0]),
                Some(bytes) => {
                    mac.update(&[1]);
                    mac.update(&(bytes.len() as u64).to_be_bytes());
                    mac.update(bytes);
                }
            }
        }
        mac.finalize().into_bytes().into()
    }
}

/// Where a chain first fails to verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// Rows are missing before `next`.
    #[error("events {from} to {to} are missing (deleted)")]
    Missing {
        /// First missing position.
        from: i64,
        /// Last missing position.
        to: i64,
    },
    /// The row at `seq` does not carry the tag its content and position
    /// call for.
    #[error(
        "event {seq} does not match its tag: it was altered, inserted or moved, \
         or the event before it was replaced"
    )]
    Altered {
        /// Position of the first bad row.
        seq: i64,
    },
    /// The chain verifies but ends before the head recorded earlier.
    #[error("the log ends at event {last} before the recorded head: its tail was cut")]
    Truncated {
        /// Last position present (0 for an empty log).
        last: i64,
    },
}

/// The newest event's position and tag, to be kept outside the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Number of events (the last position).
    pub count: i64,
    /// Tag of the last event ([`GENESIS`] for an empty log).
    pub tag: Tag,
}

/// Walks stored events in order and checks every link.
pub struct ChainVerifier<'k> {
    key: &'k [u8; 32],
    head: ChainHead,
    expected_head: Option<Tag>,
    seen_expected_head: bool,
}

impl<'k> ChainVerifier<'k> {
    /// Starts a walk; with `expected_head`, the walk must pass an event
    /// with that tag, which catches a log cut back to an older state.
    pub fn new(key: &'k [u8; 32], expected_head: Option<Tag>) -> Self {
        Self {
            key,
            head: ChainHead {
                count: 0,
                tag: GENESIS,
            },
            seen_expected_head: expected_head == Some(GENESIS),
            expected_head,
        }
    }

    /// Checks the next event in position order.
    pub fn push(&mut self, event: &StoredEvent) -> Result<(), ChainBreak> {
        let expected_seq = self.head.count + 1;
        if event.seq > expected_seq {
            return Err(ChainBreak::Missing {
                from: expected_seq,
                to: event.seq - 1,
            });
        }
        let expected_tag = event.expected_tag(self.key, &self.head.tag);
        let tag_ok: bool = subtle::ConstantTimeEq::ct_eq(&expected_tag[..], &event.tag[..]).into();
        if event.seq < expected_seq || !tag_ok {
            return Err(ChainBreak::Altered { seq: event.seq });
        }
        self.head = ChainHead {
            count: event.seq,
            tag: event.tag,
        };
        if self.expected_head == Some(event.tag) {
            self.seen_expected_head = true;
        }
        Ok(())
    }

    /// Ends the walk, returning the head that was verified.
    pub fn finish(self) -> Result<ChainHead, ChainBreak> {
        if self.expected_head.is_some() && !self.seen_expected_head {
            return Err(ChainBreak::Truncated {
                last: self.head.count,
            });
        }
        Ok(self.head)
    }
}

/// Hex spelling of a tag, as `audit head` prints it.
pub fn tag_to_hex(tag: &Tag) -> String {
    tag.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a tag printed by [`tag_to_hex`].
pub fn tag_from_hex(text: &str) -> Option<Tag> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut tag = GENESIS;
    for (i, byte) in tag.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(tag)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, RngExt};

    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn event(n: u32) -> NewEvent {
        NewEvent {
            at: DateTime::from_timestamp(1_790_000_000 + i64::from(n), 0).unwrap(),
            subject: UserId::parse("12345678").ok(),
            actor: Actor::System,
            channel: Channel::Phone,
            call_sid: Some(format!("CA{n:032}")),
            kind: EventKind::ValidationFailed,
            detail: format!("attempt {n}"),
        }
    }

    fn chain(len: u32) -> Vec<StoredEvent> {
        let mut out: Vec<StoredEvent> = Vec::new();
        for n in 1..=len {
            let previous = out.last().map_or(GENESIS, |e| e.tag);
            out.push(event(n).seal(&KEY, i64::from(n), &previous));
        }
        out
    }

    fn verify(events: &[StoredEvent], head: Option<Tag>) -> Result<ChainHead, ChainBreak> {
        let mut verifier = ChainVerifier::new(&KEY, head);
        for e in events {
            verifier.push(e)?;
        }
        verifier.finish()
    }

    #[test]
    fn a_clean_chain_verifies_and_reports_its_head() {
        let events = chain(20);
        let head = verify(&events, None).unwrap();
        assert_eq!(head.count, 20);
        assert_eq!(head.tag, events[19].tag);
        assert_eq!(verify(&events, Some(head.tag)), Ok(head));
        assert_eq!(verify(&[], Some(GENESIS)).map(|h| h.count), Ok(0));
    }

    #[test]
    fn another_key_cannot_verify_the_chain() {
        let events = chain(3);
        let mut verifier = ChainVerifier::new(&[8; 32], None);
        assert_eq!(
            verifier.push(&events[0]),
            Err(ChainBreak::Altered { seq: 1 })
        );
    }

    #[test]
    fn an_edited_field_is_named() {
        let mut events = chain(10);
        events[4].detail.push('!');
        assert_eq!(verify(&events, None), Err(ChainBreak::Altered { seq: 5 }));
        let mut events = chain(10);
        events[6].subject = Some(87654321);
        assert_eq!(verify(&events, None), Err(ChainBreak::Altered { seq: 7 }));
    }

    #[test]
    fn text_moved_between_fields_changes_the_tag() {
        let mut events = chain(2);
        events[1].channel = "phon".into();
        events[1].event = format!("e{}", events[1].event);
        assert_eq!(verify(&events, None), Err(ChainBreak::Altered { seq: 2 }));
    }

    #[test]
    fn a_deleted_event_is_named() {
        let mut events = chain(10);
        events.remove(3);
        assert_eq!(
            verify(&events, None),
            Err(ChainBreak::Missing { from: 4, to: 4 })
        );
    }

    #[test]
    fn a_deleted_and_renumbered_event_is_caught() {
        let mut events = chain(10);
        events.remove(3);
        for e in &mut events[3..] {
            e.seq -= 1;
        }
        assert_eq!(verify(&events, None), Err(ChainBreak::Altered { seq: 4 }));
    }

    #[test]
    fn an_inserted_event_is_caught() {
        let mut events = chain(10);
        // An attacker without the key signs with a guess of it.
        let forged = event(99).seal(&[0; 32], 5, &events[3].tag);
        events.insert(4, forged);
        for (i, e) in events.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert_eq!(verify(&events, None), Err(ChainBreak::Altered { seq: 5 }));
    }

    #[test]
    fn reordered_events_are_caught() {
        let mut events = chain(10);
        // Out of position order, as a stream of rows might arrive.
        events.swap(2, 6);
        assert_eq!(
            verify(&events, None),
            Err(ChainBreak::Missing { from: 3, to: 6 })
        );
        // Contents swapped but positions kept, as in a table ordered by seq.
        let mut events = chain(10);
        let (a, b) = (events[2].seq, events[6].seq);
        events.swap(2, 6);
        events[2].seq = a;
        events[6].seq = b;
        assert_eq!(verify(&events, None), Err(ChainBreak::Altered { seq: 3 }));
    }

    #[test]
    fn a_cut_tail_is_caught_only_with_the_recorded_head() {
        let events = chain(10);
        let head = events[9].tag;
        assert!(verify(&events[..7], None).is_ok());
        assert_eq!(
            verify(&events[..7], Some(head)),
            Err(ChainBreak::Truncated { last: 7 })
        );
        assert_eq!(
            verify(&[], Some(head)),
            Err(ChainBreak::Truncated { last: 0 })
        );
    }

    #[test]
    fn events_appended_after_the_recorded_head_still_verify() {
        let events = chain(10);
        assert!(verify(&events, Some(events[4].tag)).is_ok());
    }

    #[test]
    fn tags_round_trip_through_hex() {
        let tag = chain(1)[0].tag;
        assert_eq!(tag_from_hex(&tag_to_hex(&tag)), Some(tag));
        assert_eq!(tag_from_hex("zz"), None);
        assert_eq!(tag_from_hex(&"é".repeat(32)), None);
    }

    /// Random tamperings of random chains are always caught, and clean
    /// chains never raise an alarm.
    #[test]
    fn every_random_tampering_is_detected() {
        let mut rng = rand::rng();
        for round in 0..500 {
            let len = rng.random_range(2..40u32);
            let clean = chain(len);
            let head = clean.last().unwrap().tag;
            assert!(
                verify(&clean, Some(head)).is_ok(),
                "false alarm in round {round}"
            );

            let mut tampered = clean.clone();
            let what = tamper(&mut rng, &mut tampered);
            assert!(
                verify(&tampered, Some(head)).is_err(),
                "round {round}: {what} went unnoticed"
            );
        }
    }

    fn tamper(rng: &mut impl Rng, events: &mut Vec<StoredEvent>) -> &'static str {
        let i = rng.random_range(0..events.len());
        match rng.random_range(0..7) {
            0 => {
                events[i].detail.push('x');
                "an edited detail"
            }
            1 => {
                events[i].at = format_time(Utc::now());
                "an edited time"
            }
            2 => {
                events[i].event = "validated".into();
                "an edited event name"
            }
            3 => {
                events.remove(i);
                "a deletion"
            }
            4 => {
                let j = (i + 1 + rng.random_range(0..events.len() - 1)) % events.len();
                events.swap(i, j);
                "a reordering"
            }
            5 => {
                let forged = event(7).seal(&[1; 32], i as i64 + 1, &GENESIS);
                events.insert(i, forged);
                for (n, e) in events.iter_mut().enumerate() {
                    e.seq = n as i64 + 1;
                }
                "an insertion"
            }
            _ => {
                events.truncate(i);
                "a cut tail"
            }
        }
    }
}
