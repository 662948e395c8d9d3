//! Support agents: their IDs, passcodes and API tokens.

use std::fmt;
use std::str::FromStr;

use rand::RngExt;
use serde::{Deserialize, Serialize};

/// An agent's number, keyed in on the agent line. Drawn at random.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "u32", try_from = "u32")]
pub struct AgentId(u32);

impl From<AgentId> for u32 {
    fn from(id: AgentId) -> Self {
        id.0
    }
}

impl TryFrom<u32> for AgentId {
    type Error = MalformedAgentId;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        AgentId::parse(&value.to_string())
    }
}

/// Text that is not an agent ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("agent ID {0:?} is not six digits")]
pub struct MalformedAgentId(pub String);

impl AgentId {
    /// Parses six ASCII digits, the first not zero.
    pub fn parse(text: &str) -> Result<Self, MalformedAgentId> {
        let ok =
            text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0');
        match text.parse() {
            Ok(n) if ok => Ok(Self(n)),
            _ => Err(MalformedAgentId(text.to_owned())),
        }
    }

    /// Draws a fresh ID.
    pub fn random(rng: &mut impl rand::Rng) -> Self {
        Self(rng.random_range(100_000..1_000_000))
    }

    /// As stored.
    pub fn to_stored(self) -> i64 {
        i64::from(self.0)
    }

    /// Rebuilds a stored ID.
    pub fn from_stored(value: i64) -> Option<Self> {
        Self::parse(&value.to_string()).ok()
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for AgentId {
    type Err = MalformedAgentId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.trim())
    }
}

/// Digits in a generated passcode: 10^8 values behind a slow hash and a
/// lock after a few failures.
pub const PASSCODE_DIGITS: usize = 8;

/// Draws a numeric passcode an agent can key in.
pub fn new_passcode(rng: &mut impl rand::Rng) -> String {
    (0..PASSCODE_DIGITS)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// An agent's bearer token as shown once: `pl_{id}_{secret}`. The ID finds
/// the stored hash; the secret is compared against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenParts<'a> {
    /// Public part, for lookup and revocation.
    pub token_id: &'a str,
    /// Secret part.
    pub secret: &'a str,
}

/// Splits a presented token; `None` if it is not shaped like one.
pub fn split_token(token: &str) -> Option<TokenParts<'_>> {
    let rest = token.strip_prefix("pl_")?;
    let (token_id, secret) = rest.split_once('_')?;
    let id_ok = token_id.len() == 12 && token_id.bytes().all(|b| b.is_ascii_hexdigit());
    (id_ok && !secret.is_empty()).then_some(TokenParts { token_id, secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_are_six_digits() {
        assert!(AgentId::parse("123456").is_ok());
        for bad in ["12345", "1234567", "012345", "abcdef", ""] {
            assert!(AgentId::parse(bad).is_err(), "{bad}");
        }
        let id = AgentId::random(&mut rand::rng());
        assert_eq!(AgentId::from_stored(id.to_stored()), Some(id));
    }

    #[test]
    fn passcodes_are_digits_of_the_set_length() {
        let code = new_passcode(&mut rand::rng());
        assert_eq!(code.len(), PASSCODE_DIGITS);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn tokens_split_into_id_and_secret() {
        let parts = split_token("pl_0123456789ab_c2VjcmV0").unwrap();
        assert_eq!(parts.token_id, "0123456789ab");
        assert_eq!(parts.secret, "c2VjcmV0");
        for bad in [
            "",
            "pl_",
            "pl_0123_x",
            "xx_0123456789ab_s",
            "pl_0123456789ab_",
            "pl_0123456789zz_s",
        ] {
            assert!(split_token(bad).is_none(), "{bad}");
        }
    }
}
