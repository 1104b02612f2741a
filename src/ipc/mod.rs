//! The multipathd control socket: framing ([`codec`]), the command
//! language ([`command`]), output formats ([`format`]) and the listener
//! ([`server`]).
//!
//! Reply conventions (what the daemon sends back for a mutation, through
//! the oneshot channel, ready to go on the wire):
//! - success: [`reply::OK`] (`ok\n`), or the text of a query-like answer
//!   (e.g. `getprkey`), or a one-word note multipathd also sends without
//!   `fail` (`blacklisted\n`, `delayed\n`);
//! - failure: [`reply::fail`]`(reason)` = `fail\n<reason>\n` with one of
//!   [`reply::NO_DEVICE`], [`reply::BUSY`], [`reply::TIMEOUT`], or
//!   [`reply::FAIL`] alone (`fail\n`) for an unspecified error;
//! - an empty string is sent as `ok\n`.

pub mod codec;
pub mod command;
pub mod format;
pub mod server;
pub mod socket;

pub use command::{parse, permitted, Command, ParseError};
pub use server::{MutationRequest, Server, ServerConfig};

/// Reply texts multipathd uses.
pub mod reply {
    /// Success without output.
    pub const OK: &str = "ok\n";
    /// Failure without a reason.
    pub const FAIL: &str = "fail\n";
    /// Non-root client asked for a root-only command.
    pub const PERMISSION_DENIED: &str = "permission deny: need to be root";
    /// The request took too long.
    pub const TIMEOUT: &str = "timeout";
    /// `del map` on a map that is open.
    pub const BUSY: &str = "map or partition in use";
    /// Unknown map or path.
    pub const NO_DEVICE: &str = "device not found";

    /// `fail\n<reason>\n`.
    pub fn fail(reason: &str) -> String {
        format!("fail\n{reason}\n")
    }

    /// Whether a reply reports a failure (starts with `fail\n`).
    pub fn is_fail(reply: &str) -> bool {
        reply.starts_with(FAIL)
    }
}
