//! Support cases: a request for help with someone else's account, and its
//! approval.

use std::fmt;
use std::str::FromStr;

use rand::RngExt;
use serde::Serialize;

/// A case number: six digits a provider can key in on the phone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CaseNumber(String);

/// Text that is not a case number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("case number {0:?} is not six digits")]
pub struct MalformedCaseNumber(pub String);

impl CaseNumber {
    /// Digits in a case number.
    pub const DIGITS: usize = 6;

    /// Parses exactly six ASCII digits, the first not zero.
    pub fn parse(text: &str) -> Result<Self, MalformedCaseNumber> {
        let ok = text.len() == Self::DIGITS
            && text.bytes().all(|b| b.is_ascii_digit())
            && !text.starts_with('0');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(MalformedCaseNumber(text.to_owned()))
        }
    }

    /// Draws a fresh number; not derived from order, like user IDs.
    pub fn random(rng: &mut impl rand::Rng) -> Self {
        Self(rng.random_range(100_000..1_000_000u32).to_string())
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CaseNumber {
    type Err = MalformedCaseNumber;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.trim())
    }
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Waiting for an approver.
    AwaitingApproval,
    /// Approved; support may assist until the approval expires.
    Approved,
    /// Declined by an approver.
    Declined,
    /// Closed by support; nothing more happens to it.
    Closed,
}

impl CaseStatus {
    /// The spelling in storage, JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::AwaitingApproval => "awaiting_approval",
            CaseStatus::Approved => "approved",
            CaseStatus::Declined => "declined",
            CaseStatus::Closed => "closed",
        }
    }

    /// Every status.
    pub const ALL: [CaseStatus; 4] = [
        CaseStatus::AwaitingApproval,
        CaseStatus::Approved,
        CaseStatus::Declined,
        CaseStatus::Closed,
    ];
}

impl fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown case status {0:?} (expected awaiting_approval, approved, declined or closed)")]
pub struct UnknownStatus(pub String);

impl FromStr for CaseStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CaseStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s.trim())
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// An approver's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Support may assist.
    Approve,
    /// Support may not.
    Decline,
}

impl CaseStatus {
    /// The status after an approver's `decision`, or `None` when the case
    /// can no longer take it. A declined or closed case is final (the
    /// requestor opens a new one); an approval can still be withdrawn.
    pub fn after(self, decision: Decision) -> Option<CaseStatus> {
        match (self, decision) {
            (CaseStatus::AwaitingApproval, Decision::Approve) => Some(CaseStatus::Approved),
            (CaseStatus::AwaitingApproval | CaseStatus::Approved, Decision::Decline) => {
                Some(CaseStatus::Declined)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_numbers_are_six_digits() {
        assert!(CaseNumber::parse("123456").is_ok());
        for bad in ["12345", "1234567", "012345", "12a456", ""] {
            assert!(CaseNumber::parse(bad).is_err(), "{bad}");
        }
        let drawn = CaseNumber::random(&mut rand::rng());
        assert_eq!(CaseNumber::parse(drawn.as_str()), Ok(drawn));
    }

    #[test]
    fn statuses_parse_as_spelled() {
        for status in CaseStatus::ALL {
            assert_eq!(status.as_str().parse::<CaseStatus>(), Ok(status));
        }
        assert!("open".parse::<CaseStatus>().is_err());
    }

    #[test]
    fn decisions_move_a_case_only_where_they_may() {
        use CaseStatus::*;
        assert_eq!(AwaitingApproval.after(Decision::Approve), Some(Approved));
        assert_eq!(AwaitingApproval.after(Decision::Decline), Some(Declined));
        assert_eq!(Approved.after(Decision::Decline), Some(Declined));
        assert_eq!(Approved.after(Decision::Approve), None);
        for final_status in [Declined, Closed] {
            assert_eq!(final_status.after(Decision::Approve), None);
            assert_eq!(final_status.after(Decision::Decline), None);
        }
    }
}
