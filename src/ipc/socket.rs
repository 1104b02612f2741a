//! Socket names of the control socket: the abstract name multipathd has
//! always used and the path socket of multipath-tools >= 0.12.

use std::fmt;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::path::PathBuf;

/// multipathd's abstract socket (`@` = abstract namespace).
pub const ABSTRACT_SOCKET: &str = "@/org/kernel/linux/storage/multipathd";
/// multipathd's path socket.
pub const PATHNAME_SOCKET: &str = "/run/multipathd.socket";
/// Environment variable overriding the socket name (client and server).
pub const SOCKET_ENV: &str = "MULTIPATH_SOCKET_NAME";

/// Where the control socket lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketName {
    /// Abstract namespace; the name without the leading `@` (and without
    /// a trailing NUL: the address length counts the name only).
    Abstract(String),
    /// A filesystem path.
    Path(PathBuf),
}

impl SocketName {
    /// `@name` is abstract, anything else a path.
    pub fn parse(s: &str) -> SocketName {
        match s.strip_prefix('@') {
            Some(rest) => SocketName::Abstract(rest.to_string()),
            None => SocketName::Path(PathBuf::from(s)),
        }
    }

    /// The socket address.
    pub fn to_addr(&self) -> io::Result<SocketAddr> {
        match self {
            SocketName::Abstract(name) => SocketAddr::from_abstract_name(name.as_bytes()),
            SocketName::Path(p) => SocketAddr::from_pathname(p),
        }
    }
}

impl fmt::Display for SocketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketName::Abstract(n) => write!(f, "@{n}"),
            SocketName::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The `MULTIPATH_SOCKET_NAME` override, if set and not empty.
pub fn env_override() -> Option<SocketName> {
    std::env::var(SOCKET_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| SocketName::parse(&s))
}

/// Sockets a client tries, in order: the override alone, or the path
/// socket then the abstract one (like libmpathcmd).
pub fn client_sockets() -> Vec<SocketName> {
    match env_override() {
        Some(s) => vec![s],
        None => vec![
            SocketName::parse(PATHNAME_SOCKET),
            SocketName::parse(ABSTRACT_SOCKET),
        ],
    }
}

/// Sockets the daemon listens on: the override alone, or both defaults.
pub fn server_sockets() -> Vec<SocketName> {
    match env_override() {
        Some(s) => vec![s],
        None => vec![
            SocketName::parse(ABSTRACT_SOCKET),
            SocketName::parse(PATHNAME_SOCKET),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            SocketName::parse(ABSTRACT_SOCKET),
            SocketName::Abstract("/org/kernel/linux/storage/multipathd".into())
        );
        assert_eq!(
            SocketName::parse(PATHNAME_SOCKET),
            SocketName::Path("/run/multipathd.socket".into())
        );
        assert_eq!(SocketName::parse("@x").to_string(), "@x");
        let addr = SocketName::parse(ABSTRACT_SOCKET).to_addr().expect("addr");
        assert_eq!(
            addr.as_abstract_name(),
            Some(&b"/org/kernel/linux/storage/multipathd"[..])
        );
    }
}
