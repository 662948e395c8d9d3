//! When repeated wrong PINs lock a user's Support PIN.
//!
//! Four digits give only 10,000 values, and a lock that lifts on a timer
//! falls to a patient attacker within weeks. So a lock here never expires:
//! it lifts only when the owner asks for a new PIN.

use chrono::{DateTime, Duration, Utc};

/// Thresholds for locking a Support PIN after failed validations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPolicy {
    /// Failures in a row (across calls) that lock the PIN.
    pub max_consecutive_failures: u32,
    /// Failures within `window` beyond which the PIN locks, successes
    /// notwithstanding: this catches an attacker who interleaves guesses
    /// with the owner's own successful calls.
    pub max_failures_in_window: u32,
    /// Length of the rolling window.
    pub window: Duration,
}

impl Default for LockPolicy {
    fn default() -> Self {
        Self {
            max_consecutive_failures: 5,
            max_failures_in_window: 10,
            window: Duration::days(30),
        }
    }
}

/// Failure counts for one user, including the failure being recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCounts {
    /// Failures since the last success or new PIN.
    pub consecutive: u32,
    /// Failures within the rolling window.
    pub in_window: u32,
}

impl LockPolicy {
    /// Whether a failure that brings the counts to `counts` locks the PIN.
    pub fn locks(&self, counts: FailureCounts) -> bool {
        counts.consecutive >= self.max_consecutive_failures
            || counts.in_window > self.max_failures_in_window
    }

    /// Where the rolling window starts at `now`. Failures before the owner
    /// last asked for a new PIN (`counted_since`) no longer count: the
    /// owner has seen the lock and renewed, and an attacker's old guesses
    /// say nothing about the new PIN.
    pub fn window_start(&self, now: DateTime<Utc>, counted_since: DateTime<Utc>) -> DateTime<Utc> {
        (now - self.window).max(counted_since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(consecutive: u32, in_window: u32) -> FailureCounts {
        FailureCounts {
            consecutive,
            in_window,
        }
    }

    #[test]
    fn the_fifth_failure_in_a_row_locks() {
        let policy = LockPolicy::default();
        assert!(!policy.locks(counts(4, 4)));
        assert!(policy.locks(counts(5, 5)));
    }

    #[test]
    fn more_than_ten_in_the_window_locks_even_without_a_streak() {
        let policy = LockPolicy::default();
        assert!(!policy.locks(counts(1, 10)));
        assert!(policy.locks(counts(1, 11)));
    }

    #[test]
    fn thresholds_are_configurable() {
        let policy = LockPolicy {
            max_consecutive_failures: 2,
            max_failures_in_window: 3,
            window: Duration::hours(1),
        };
        assert!(policy.locks(counts(2, 2)));
        assert!(policy.locks(counts(1, 4)));
        assert!(!policy.locks(counts(1, 3)));
    }

    #[test]
    fn the_window_starts_at_the_later_of_its_length_and_the_last_renewal() {
        let policy = LockPolicy::default();
        let now = DateTime::parse_from_rfc3339("2026-06-30T12:00:00Z")
            .unwrap()
            .to_utc();
        let long_ago = now - Duration::days(90);
        let recent = now - Duration::days(2);
        assert_eq!(policy.window_start(now, long_ago), now - Duration::days(30));
        assert_eq!(policy.window_start(now, recent), recent);
    }
}
