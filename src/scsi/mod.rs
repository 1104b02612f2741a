//! SCSI commands through SG_IO on the block device: TEST UNIT READY,
//! INQUIRY (standard and VPD pages), REPORT TARGET PORT GROUPS, READ(10).
//!
//! [`parse`] and [`sense`] are pure (CDBs, data and sense decoding, status
//! classification); [`sgio`] is the thin ioctl edge. SG_IO blocks the
//! calling thread: never call it on the async runtime.

pub mod attrs;
pub mod parse;
pub mod sense;
pub mod sgio;

pub use parse::{AluaState, Designator, Outcome, StdInquiry, TpgDescriptor};
pub use sense::{parse_sense, Sense};
pub use sgio::{devnode, SgDevice, SgResult};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ScsiError {
    #[error("cannot open {0}: {1}")]
    Open(String, #[source] std::io::Error),
    #[error("{0}: ioctl failed: {1}")]
    Ioctl(String, #[source] nix::Error),
    #[error("{dev}: {cmd} failed: {outcome}")]
    Command {
        dev: String,
        cmd: String,
        outcome: Outcome,
    },
    #[error("{0}")]
    Parse(String),
}

impl From<ScsiError> for crate::Error {
    fn from(e: ScsiError) -> Self {
        match e {
            ScsiError::Open(dev, source) => crate::Error::Io { path: dev, source },
            ScsiError::Ioctl(dev, e) => crate::Error::Device {
                dev,
                msg: format!("ioctl failed: {e}"),
            },
            ScsiError::Command { dev, cmd, outcome } => crate::Error::Device {
                dev,
                msg: format!("{cmd} failed: {outcome}"),
            },
            ScsiError::Parse(m) => crate::Error::Other(m),
        }
    }
}
