//! Who may get help with whose account: the rules for requests made on
//! behalf of someone else.
//!
//! | requestor | on behalf of | support |
//! |---|---|---|
//! | provider | staff of the same practice | assists |
//! | staff | a provider | needs that provider's approval |
//! | staff | other staff | needs approval from one of the practice's providers |
//! | provider | another provider | needs that provider's approval |
//! | anyone | a user of another practice | refuses |
//! | anyone | themselves | assists: no one else is involved |

use chrono::{DateTime, Utc};

use super::account::{PracticeId, Role, UserId};

/// The parts of a user the rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Party {
    /// Who.
    pub user_id: UserId,
    /// Provider or staff.
    pub role: Role,
    /// Their practice.
    pub practice_id: PracticeId,
}

/// An approval that exists for a requestor and subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The case it was given in.
    pub case_number: String,
    /// Who asked.
    pub requestor: UserId,
    /// Whose account.
    pub subject: UserId,
    /// Who approved.
    pub approved_by: UserId,
    /// Until when it holds.
    pub expires_at: DateTime<Utc>,
}

/// Who may approve a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approvers {
    /// The subject, a provider, decides about their own account.
    Subject,
    /// Any provider of the practice decides about its staff.
    PracticeProviders,
}

/// Why support may assist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// The request is about the requestor's own account.
    OwnAccount,
    /// A provider asks about their own practice's staff.
    ProviderForOwnStaff,
    /// An approver agreed, in a case.
    Approved {
        /// Who approved.
        by: UserId,
        /// In which case.
        case_number: String,
    },
}

/// What support may do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ruling {
    /// Support can assist, on this basis.
    Assist(Basis),
    /// Support needs an approval first, from these people.
    NeedsApproval(Approvers),
    /// Support cannot handle this request at all.
    Refused,
}

/// Rules on a request by `requestor` about `subject`'s account, given the
/// approvals that exist (expired ones, or ones for another pair, count for
/// nothing).
pub fn rule(
    requestor: &Party,
    subject: &Party,
    approvals: &[Approval],
    now: DateTime<Utc>,
) -> Ruling {
    if requestor.user_id == subject.user_id {
        return Ruling::Assist(Basis::OwnAccount);
    }
    if requestor.practice_id != subject.practice_id {
        return Ruling::Refused;
    }
    let approvers = match (requestor.role, subject.role) {
        (Role::Provider, Role::Staff) => return Ruling::Assist(Basis::ProviderForOwnStaff),
        (_, Role::Provider) => Approvers::Subject,
        (Role::Staff, Role::Staff) => Approvers::PracticeProviders,
    };
    let valid = approvals.iter().find(|a| {
        a.requestor == requestor.user_id && a.subject == subject.user_id && a.expires_at > now
    });
    match valid {
        Some(a) => Ruling::Assist(Basis::Approved {
            by: a.approved_by,
            case_number: a.case_number.clone(),
        }),
        None => Ruling::NeedsApproval(approvers),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn party(id: &str, role: Role, practice: PracticeId) -> Party {
        Party {
            user_id: UserId::parse(id).unwrap(),
            role,
            practice_id: practice,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn approval(requestor: &Party, subject: &Party, by: &Party, hours_left: i64) -> Approval {
        Approval {
            case_number: "424242".into(),
            requestor: requestor.user_id,
            subject: subject.user_id,
            approved_by: by.user_id,
            expires_at: now() + Duration::hours(hours_left),
        }
    }

    #[test]
    fn the_table_without_approvals() {
        let provider = party("11111111", Role::Provider, 1);
        let other_provider = party("22222222", Role::Provider, 1);
        let staff = party("33333333", Role::Staff, 1);
        let other_staff = party("44444444", Role::Staff, 1);
        let cases = [
            (
                &provider,
                &staff,
                Ruling::Assist(Basis::ProviderForOwnStaff),
            ),
            (&staff, &provider, Ruling::NeedsApproval(Approvers::Subject)),
            (
                &staff,
                &other_staff,
                Ruling::NeedsApproval(Approvers::PracticeProviders),
            ),
            (
                &provider,
                &other_provider,
                Ruling::NeedsApproval(Approvers::Subject),
            ),
            (&provider, &provider, Ruling::Assist(Basis::OwnAccount)),
            (&staff, &staff, Ruling::Assist(Basis::OwnAccount)),
        ];
        for (requestor, subject, expected) in cases {
            assert_eq!(
                rule(requestor, subject, &[], now()),
                expected,
                "{requestor:?} for {subject:?}"
            );
        }
    }

    #[test]
    fn another_practice_is_refused_in_every_direction() {
        let here = [
            party("11111111", Role::Provider, 1),
            party("33333333", Role::Staff, 1),
        ];
        let there = [
            party("55555555", Role::Provider, 2),
            party("66666666", Role::Staff, 2),
        ];
        for a in &here {
            for b in &there {
                assert_eq!(rule(a, b, &[], now()), Ruling::Refused);
                assert_eq!(rule(b, a, &[], now()), Ruling::Refused);
            }
        }
    }

    #[test]
    fn a_valid_approval_lets_support_assist() {
        let provider = party("11111111", Role::Provider, 1);
        let staff = party("33333333", Role::Staff, 1);
        let approvals = [approval(&staff, &provider, &provider, 3)];
        assert_eq!(
            rule(&staff, &provider, &approvals, now()),
            Ruling::Assist(Basis::Approved {
                by: provider.user_id,
                case_number: "424242".into()
            })
        );
    }

    #[test]
    fn expired_or_foreign_approvals_count_for_nothing() {
        let provider = party("11111111", Role::Provider, 1);
        let staff = party("33333333", Role::Staff, 1);
        let other_staff = party("44444444", Role::Staff, 1);
        let expired = [approval(&staff, &provider, &provider, -1)];
        assert_eq!(
            rule(&staff, &provider, &expired, now()),
            Ruling::NeedsApproval(Approvers::Subject)
        );
        // An approval covers that requestor and subject only.
        let for_other = [approval(&other_staff, &provider, &provider, 3)];
        assert_eq!(
            rule(&staff, &provider, &for_other, now()),
            Ruling::NeedsApproval(Approvers::Subject)
        );
        let reversed = [approval(&provider, &staff, &provider, 3)];
        assert_eq!(
            rule(&staff, &provider, &reversed, now()),
            Ruling::NeedsApproval(Approvers::Subject)
        );
    }

    #[test]
    fn an_approval_never_crosses_practices() {
        let provider = party("11111111", Role::Provider, 1);
        let outsider = party("66666666", Role::Staff, 2);
        let approvals = [approval(&outsider, &provider, &provider, 3)];
        assert_eq!(
            rule(&outsider, &provider, &approvals, now()),
            Ruling::Refused
        );
    }
}
