//! The error type of the whole crate and its mapping to exit codes.
//!
//! Bad input (a file, a YAML value, a flag) is an [`Error::Input`] and exits with code 2; anything
//! else (an output that cannot be written, a broken invariant) exits with code 1.

use thiserror::Error;

/// Everything that can go wrong in a run.
#[derive(Debug, Error)]
pub enum Error {
    /// The user's input is wrong; the message says where and what was expected.
    #[error("{0}")]
    Input(String),
    /// The run could not finish for a reason that is not the input's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The process exit code for this error: 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => 2,
            Error::Internal(_) => 1,
        }
    }
}

/// Result with the crate's error.
pub type Result<T> = std::result::Result<T, Error>;
