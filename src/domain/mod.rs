//! Plain domain values and rules: no I/O, no clock, no database.
//!
//! Everything here is a value type with a parsing constructor or a pure
//! function over such values, so it can be unit-tested in isolation and fed
//! by any edge (CLI, webhook, web page).

pub mod account;
pub mod agent;
pub mod approval;
pub mod audit;
pub mod case;
pub mod lock;
pub mod pin;
