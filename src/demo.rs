//! Demo data for `serve --demo`: one practice with a provider and two staff
//! members, created once per database.

use crate::domain::account::{NewUser, PhoneNumber, Role, User};
use crate::domain::pin::SupportPin;
use crate::error::Result;
use crate::registry::{Origin, Registry};

const MARKER: &str = "demo_seeded_at";
/// The demo practice's name.
pub const PRACTICE: &str = "Demo Family Practice";

/// A demo user and their current PIN, to be shown to whoever started the
/// demo.
#[derive(Debug)]
pub struct DemoUser {
    /// The user.
    pub user: User,
    /// Their current Support PIN.
    pub pin: SupportPin,
}

/// The demo agent and a fresh passcode for it: shown at every start, since
/// a passcode is otherwise shown only once.
pub fn demo_agent(registry: &Registry) -> Result<(crate::registry::Agent, String)> {
    let existing = registry.agents()?.into_iter().find(|a| a.name == AGENT);
    match existing {
        Some(agent) => {
            let passcode = registry.reset_agent_passcode(agent.agent_id)?;
            Ok((agent, passcode))
        }
        None => registry.add_agent(AGENT),
    }
}

const AGENT: &str = "Demo Agent";

/// Seeds the demo data unless this database has it already, then returns
/// the demo users with their current PINs (each reading is audited).
pub fn seed_once(registry: &Registry) -> Result<Vec<DemoUser>> {
    let origin = Origin::cli();
    if registry.marker(MARKER)?.is_none() {
        let practice = registry.add_practice(PRACTICE)?;
        let people = [
            (Role::Provider, "Dr. Avery Quinn", "+15550100001"),
            (Role::Staff, "Sam Rivera", "+15550100002"),
            (Role::Staff, "Jordan Lee", "+15550100003"),
        ];
        for (role, name, phone) in people {
            let user = NewUser {
                user_id: None,
                role,
                name: name.to_owned(),
                email: None,
                phones: vec![PhoneNumber::parse(phone)?],
            };
            registry.add_user(&practice.practice_id.to_string(), &user, &origin)?;
        }
        let now = crate::domain::audit::format_time(chrono::Utc::now());
        registry.set_marker(MARKER, &now)?;
    }
    registry
        .users()?
        .into_iter()
        .filter(|u| u.practice == PRACTICE)
        .map(|user| {
            let pin = registry.view_pin(user.user_id, &origin)?;
            Ok(DemoUser { user, pin })
        })
        .collect()
}
