//! The error type of weir's library crates and the class each error belongs to.

use std::fmt;

/// Who has to act on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad configuration or input: the user must change something.
    User,
    /// A service or the operating system failed: retrying may help.
    External,
    /// A bug in weir: an invariant broke.
    Internal,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorClass::User => "user error",
            ErrorClass::External => "external error",
            ErrorClass::Internal => "internal error (a bug in weir, please report it)",
        })
    }
}

/// An error raised by a stage, a connector or the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; `path` is the key path such as `source.logs.path`.
    #[error("{path}: {message}")]
    Config {
        /// Key path of the offending value.
        path: String,
        /// What was expected and what arrived.
        message: String,
    },
    /// Reading or writing a file, socket or pipe failed.
    #[error("{context}: {source}")]
    Io {
        /// What weir was doing, e.g. `opening /var/log/access.log`.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A schema does not fit what a stage needs (missing field, wrong type).
    #[error("schema mismatch: {0}")]
    Schema(String),
    /// Encoding or decoding operator state failed.
    #[error("state: {0}")]
    State(String),
    /// An invariant broke; this is a bug.
    #[error("internal error: {0}")]
    Internal(String),
    /// A server weir reads from or writes to refused what weir asked (a stream that does not
    /// exist, a consumer that is not weir's): retrying will not help.
    #[error("{0}")]
    Service(String),
    /// The node stopped because another node of the pipeline failed first.
    #[error("stopped because {0} stopped")]
    Stopped(String),
}

impl Error {
    /// The class of this error: who must act on it.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Config { .. } | Error::Schema(_) => ErrorClass::User,
            Error::Io { .. } | Error::Service(_) => ErrorClass::External,
            Error::State(_) | Error::Internal(_) => ErrorClass::Internal,
            Error::Stopped(_) => ErrorClass::External,
        }
    }

    /// A configuration error at `path`.
    pub fn config(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            path: path.into(),
            message: message.into(),
        }
    }

    /// An I/O error with what weir was doing when it happened.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result with weir's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error::Internal(format!("arrow: {e}"))
    }
}
