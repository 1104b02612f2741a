//! The crate's error type. Module-specific errors convert into it.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("device-mapper: {0}")]
    Dm(String),
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
    /// A multi-step change failed and was rolled back; the original error
    /// is kept so the caller can report it.
    #[error("{action} failed and was rolled back: {cause}")]
    RolledBack { action: String, cause: Box<Error> },
    /// A multi-step change failed and rollback failed too: the map needs
    /// attention. Both errors are kept.
    #[error("{action} failed ({cause}); rollback failed too: {rollback}")]
    RollbackFailed {
        action: String,
        cause: Box<Error>,
        rollback: Box<Error>,
    },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
