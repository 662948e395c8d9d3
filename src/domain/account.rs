//! Identifiers and attributes of practices and their users.

use std::fmt;
use std::str::FromStr;

use rand::RngExt;
use serde::{Deserialize, Serialize};

/// Why a keyed-in or typed value was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A user ID is 6 to 10 digits with no leading zero.
    #[error("user ID {0:?} is not 6 to 10 digits")]
    UserId(String),
    /// Roles are spelled `provider` or `staff`.
    #[error("unknown role {0:?} (expected provider or staff)")]
    Role(String),
    /// Phone numbers are E.164: `+`, country code, at most 15 digits.
    #[error("phone number {0:?} is not E.164 (like +14155550100)")]
    Phone(String),
}

/// The number a caller keys in to say who they are.
///
/// Randomly drawn rather than taken from row order, so that knowing one
/// user ID tells nothing about its neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "u64", try_from = "u64")]
pub struct UserId(u64);

impl From<UserId> for u64 {
    fn from(id: UserId) -> Self {
        id.0
    }
}

impl TryFrom<u64> for UserId {
    type Error = ParseError;
    fn try_from(value: u64) -> Result<Self, Self::Error> {
        UserId::parse(&value.to_string())
    }
}

impl UserId {
    /// Shortest accepted user ID, in digits.
    pub const MIN_DIGITS: usize = 6;
    /// Longest accepted user ID, in digits.
    pub const MAX_DIGITS: usize = 10;

    /// Parses exactly 6 to 10 ASCII digits, the first not zero.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let well_formed = (Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_digit())
            && !text.starts_with('0');
        match text.parse::<u64>() {
            Ok(value) if well_formed => Ok(Self(value)),
            _ => Err(ParseError::UserId(text.to_owned())),
        }
    }

    /// Draws a fresh eight-digit ID: long enough that walking the space
    /// finds nobody, short enough to key in on a phone.
    pub fn random(rng: &mut impl rand::Rng) -> Self {
        Self(rng.random_range(10_000_000..100_000_000))
    }

    /// Rebuilds an ID read back from storage.
    pub fn from_stored(value: i64) -> Option<Self> {
        Self::parse(&value.to_string()).ok()
    }

    /// The ID as SQLite stores it.
    pub fn to_stored(self) -> i64 {
        // At most ten digits, so always within i64.
        self.0 as i64
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for UserId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.trim())
    }
}

/// What a user is to their practice; decides who may approve whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A clinician who owns the practice's accounts.
    Provider,
    /// Someone working for a provider.
    Staff,
}

impl Role {
    /// The spelling used in storage, JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::Staff => "staff",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "provider" => Ok(Role::Provider),
            "staff" => Ok(Role::Staff),
            _ => Err(ParseError::Role(s.to_owned())),
        }
    }
}

/// A phone number in E.164, as the telephony provider sends caller IDs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts `+` then 2 to 15 digits, the first not zero.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let digits = text.strip_prefix('+').unwrap_or("");
        let ok = (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(ParseError::Phone(text.to_owned()))
        }
    }

    /// The number as text, `+` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PhoneNumber {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.trim())
    }
}

/// A practice's row ID; practices are not keyed in by callers, so order
/// may show.
pub type PracticeId = i64;

/// A practice: the provider's office that users belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Practice {
    /// Row ID, printed by `practice add`.
    pub practice_id: PracticeId,
    /// Unique display name.
    pub name: String,
}

/// A user of the host product who may phone support.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// What the caller keys in.
    pub user_id: UserId,
    /// Provider or staff.
    pub role: Role,
    /// The practice the user works for.
    pub practice_id: PracticeId,
    /// That practice's name, for listings and agents.
    pub practice: String,
    /// Display name.
    pub name: String,
    /// Contact email, if known.
    pub email: Option<String>,
    /// Numbers on file, compared with the caller ID (never as proof).
    pub phones: Vec<PhoneNumber>,
}

/// What is needed to create a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// An ID chosen by the host product, or `None` to draw one.
    pub user_id: Option<UserId>,
    /// Provider or staff.
    pub role: Role,
    /// Display name (not empty).
    pub name: String,
    /// Contact email.
    pub email: Option<String>,
    /// Numbers on file.
    pub phones: Vec<PhoneNumber>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_of_six_to_ten_digits_parse() {
        for text in ["100000", "12345678", "9999999999"] {
            assert_eq!(UserId::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn malformed_user_ids_are_rejected() {
        for text in [
            "",
            "12345",
            "12345678901",
            "012345",
            "12a456",
            " 123456",
            "+123456",
        ] {
            assert!(UserId::parse(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn random_user_ids_are_valid_and_spread() {
        let mut rng = rand::rng();
        let ids: std::collections::HashSet<_> =
            (0..1000).map(|_| UserId::random(&mut rng)).collect();
        assert!(ids.len() > 990, "draws should rarely collide");
        for id in ids {
            assert_eq!(UserId::parse(&id.to_string()), Ok(id));
        }
    }

    #[test]
    fn roles_parse_in_any_case_and_nothing_else() {
        assert_eq!("Provider".parse::<Role>(), Ok(Role::Provider));
        assert_eq!("staff".parse::<Role>(), Ok(Role::Staff));
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn phone_numbers_must_be_e164() {
        assert!(PhoneNumber::parse("+14155550100").is_ok());
        for text in [
            "14155550100",
            "+",
            "+0123",
            "+1415555010012345",
            "+1 415 555",
            "",
        ] {
            assert!(
                PhoneNumber::parse(text).is_err(),
                "{text:?} should be rejected"
            );
        }
    }
}
