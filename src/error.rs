//! The error type of the registry and the CLI.
//!
//! Expected outcomes of a call (wrong PIN, unknown user ID, locked) are
//! not errors: they are verdicts. What lands here is bad input from an
//! operator, a missing or wrong key, or a fault.

use std::sync::Arc;

use crate::crypto::UnsealError;
use crate::domain::account::{ParseError, UserId};
use crate::keys::KeyError;
use crate::storage::StorageError;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value did not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Input that parses but makes no sense here.
    #[error("{0}")]
    Invalid(String),
    /// No such user (only ever said to operators, never to callers).
    #[error("no user with ID {0}")]
    UnknownUser(UserId),
    /// No case with that number.
    #[error("no case {0}")]
    UnknownCase(crate::domain::case::CaseNumber),
    /// No practice with that ID or name.
    #[error("no practice with ID or name {0:?}")]
    UnknownPractice(String),
    /// A key is missing, malformed or does not fit the database.
    #[error(transparent)]
    Key(Arc<KeyError>),
    /// A stored PIN would not decrypt.
    #[error(transparent)]
    Unseal(#[from] UnsealError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        Error::Key(Arc::new(e))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Storage(StorageError::Sqlite(e))
    }
}

impl Error {
    /// The CLI's exit status: 2 for anything the operator can fix by
    /// changing the command or its environment, 1 for faults.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Parse(_)
            | Error::Invalid(_)
            | Error::UnknownUser(_)
            | Error::UnknownCase(_)
            | Error::UnknownPractice(_)
            | Error::Key(_) => 2,
            Error::Unseal(_) | Error::Storage(_) | Error::Io { .. } => 1,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
