//! The crate's error type. Module-specific errors convert into it.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("device-mapper: {0}")]
    Dm(#[from] crate::dm::DmError),
    /// The map exists but has no live table yet: its create is between
    /// DM_DEV_CREATE and the first resume (a dm event for it can come first).
    #[error("device-mapper: {0}: no active table yet")]
    NoActiveTable(String),
    #[error("{dev}: {msg}")]
    Device { dev: String, msg: String },
    #[error("control socket: {0}")]
    Ipc(String),
    #[error("udev: {0}")]
    Udev(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Why an operator command (control socket) failed; the reply is chosen by
/// variant, as multipathd words it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("device not found")]
    NotFound,
    #[error("map or partition in use")]
    InUse,
    /// The command itself is wrong (a group that does not exist, a
    /// blacklisted path).
    #[error("{0}")]
    Invalid(String),
    /// The kernel or the system refused it.
    #[error("{0}")]
    Failed(String),
}

impl From<Error> for CommandError {
    fn from(e: Error) -> Self {
        match &e {
            Error::Dm(d) if d.is_in_use() => CommandError::InUse,
            Error::Dm(d) if d.is_not_found() => CommandError::NotFound,
            _ => CommandError::Failed(e.to_string()),
        }
    }
}

impl Error {
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
