//! The `multipath` command: multipath-tools' flags, output and exit codes
//! on mpathd's own code, for admins' habits and for scripts such as
//! XenServer's storage manager and udev rules.
//!
//! A binary of its own rather than mpathd under another name: its flag
//! grammar (`-ll`, `-v2`, one optional device) is multipath-tools', unlike
//! mpathd's subcommands, and packaging installs it as `/sbin/multipath`.
//!
//! Listing (`-l`, `-ll`) reads device-mapper and sysfs without the daemon,
//! as multipath-tools does. Changes to maps go through the daemon when it
//! runs, so two writers never race over one table.

pub mod args;
pub mod ops;
pub mod plan;
pub mod topology;

use std::process::ExitCode;

use crate::dm::{DmError, GrammarError};

pub use args::{Args, Mode};

/// Exit codes of multipath-tools' `multipath`.
pub const RTVL_OK: u8 = 0;
pub const RTVL_FAIL: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum MpError {
    #[error(transparent)]
    Dm(#[from] DmError),
    #[error("{map}: cannot read its multipath table: {source}")]
    Grammar { map: String, source: GrammarError },
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Daemon(String),
}

pub fn main() -> ExitCode {
    let args = match Args::parse_from_env() {
        Ok(a) => a,
        Err(code) => return ExitCode::from(code),
    };
    ExitCode::from(ops::run(&args))
}
