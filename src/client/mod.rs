//! Clients of the control socket: the library behind `mpathd -k` (one
//! command, or an interactive session that XenServer's storage manager
//! drives through standard input) and behind mpathutil.

use std::io::{self, BufRead, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::ipc::codec::{self, FrameError, MAX_REPLY_LEN};
use crate::ipc::reply;
use crate::ipc::socket::{self, SocketName};

/// The daemon answers within this (multipathd's uxsock_timeout).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(4000);

/// `uxsock_timeout` from the configuration, when the caller read it.
static UXSOCK_TIMEOUT_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(4000);

/// Wait for replies as long as the daemon may take (its uxsock_timeout),
/// as `multipathd -k` does with the configured value.
pub fn set_uxsock_timeout(t: Duration) {
    UXSOCK_TIMEOUT_MS.store(
        u64::try_from(t.as_millis()).unwrap_or(u64::MAX),
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// Take `uxsock_timeout` from the configuration at `paths`; an unreadable
/// configuration leaves the default (the daemon would refuse it anyway).
pub fn use_configured_timeout(paths: &crate::config::ConfigPaths) {
    if let Ok((c, _)) = crate::config::Config::load(paths) {
        set_uxsock_timeout(Duration::from_millis(u64::from(
            c.daemon().uxsock_timeout_ms,
        )));
    }
}

/// How long a client waits for a reply.
pub fn reply_timeout() -> Duration {
    Duration::from_millis(UXSOCK_TIMEOUT_MS.load(std::sync::atomic::Ordering::Relaxed))
        + CLIENT_SLACK
}
/// Clients wait a little longer than the daemon's own deadline so they get
/// its `fail\ntimeout` rather than timing out first (multipathd -k waits
/// uxsock_timeout + 100 ms too).
pub const CLIENT_SLACK: Duration = Duration::from_millis(100);
/// The interactive prompt.
pub const PROMPT: &str = "multipathd> ";

/// Why talking to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("failed to connect to multipathd ({0})")]
    Connect(String),
    #[error("cannot send packet: {0}")]
    Send(io::Error),
    #[error("receiving packet: {0}")]
    Recv(FrameError),
}

/// A connection to the daemon; carries any number of requests.
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connect to the first socket that answers: `MULTIPATH_SOCKET_NAME`,
    /// or the path socket then the abstract one. `timeout` bounds every
    /// wait for a reply.
    pub fn connect(timeout: Duration) -> Result<Client, ClientError> {
        Client::connect_to(&socket::client_sockets(), timeout)
    }

    /// Connect to the first of `names` that accepts.
    pub fn connect_to(names: &[SocketName], timeout: Duration) -> Result<Client, ClientError> {
        let mut errors = Vec::new();
        for name in names {
            let stream = name
                .to_addr()
                .and_then(|addr| UnixStream::connect_addr(&addr))
                .and_then(|s| {
                    s.set_read_timeout(Some(timeout))?;
                    s.set_write_timeout(Some(timeout))?;
                    Ok(s)
                });
            match stream {
                Ok(stream) => return Ok(Client { stream }),
                Err(e) => errors.push(format!("{name}: {e}")),
            }
        }
        Err(ClientError::Connect(errors.join("; ")))
    }

    /// Send one command, return the reply text.
    pub fn request(&mut self, cmd: &str) -> Result<String, ClientError> {
        codec::write_frame_blocking(&mut self.stream, cmd).map_err(ClientError::Send)?;
        codec::read_frame_blocking(&mut self.stream, MAX_REPLY_LEN - 1).map_err(ClientError::Recv)
    }
}

/// One command, one connection: the reply text.
pub fn query(cmd: &str) -> Result<String, ClientError> {
    Client::connect(reply_timeout())?.request(cmd)
}

/// Whether the daemon answers like multipathd (XenServer's liveness check:
/// `help` must mention `switchgroup`).
pub fn is_working() -> bool {
    query("help").is_ok_and(|r| r.contains("switchgroup"))
}

/// Build the command line from `mpathd ARGS...` like multipathd: words
/// joined by blanks, words with a blank quoted, a newline at the end.
pub fn command_from_args<S: AsRef<str>>(args: &[S]) -> String {
    let mut out = String::new();
    for a in args {
        let a = a.as_ref();
        if a.contains(' ') {
            out.push('"');
            out.push_str(a);
            out.push_str("\" ");
        } else {
            out.push_str(a);
            out.push(' ');
        }
    }
    out.push('\n');
    out
}

/// `mpathd -k"CMD"` / `mpathd CMD...`: send one command, print the reply
/// on standard output; exit status 1 on any failure (`fail` replies lose
/// their `fail` line, like multipathd 0.9.5+).
pub fn run_command(cmd: &str) -> i32 {
    let stdout = io::stdout();
    let stderr = io::stderr();
    let names = socket::client_sockets();
    run_command_with(
        cmd,
        &names,
        reply_timeout(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
}

/// [`run_command`] with explicit sockets and output streams.
pub fn run_command_with(
    cmd: &str,
    names: &[SocketName],
    timeout: Duration,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut client = match Client::connect_to(names, timeout) {
        Ok(c) => c,
        Err(_) => {
            let _ = writeln!(err, "ERROR: failed to connect to multipathd");
            return 1;
        }
    };
    let status = match client.request(cmd) {
        Err(ClientError::Send(_)) => {
            let _ = writeln!(out, "cannot send packet");
            1
        }
        Err(ClientError::Recv(FrameError::Timeout)) => {
            let _ = writeln!(out, "timeout receiving packet");
            1
        }
        Err(e) => {
            let code = match &e {
                ClientError::Recv(FrameError::Io(io)) => io.raw_os_error().unwrap_or(libc::EIO),
                ClientError::Recv(FrameError::BadLength { .. }) => libc::EINVAL,
                _ => libc::EIO,
            };
            let _ = writeln!(out, "error {} receiving packet", -code);
            1
        }
        Ok(r) if reply::is_fail(&r) => {
            let rest = if r.len() > reply::FAIL.len() {
                &r[reply::FAIL.len()..]
            } else {
                r.as_str()
            };
            let _ = out.write_all(rest.as_bytes());
            1
        }
        Ok(r) => {
            let _ = out.write_all(r.as_bytes());
            0
        }
    };
    let _ = out.flush();
    status
}

/// Options of the interactive session.
#[derive(Debug, Clone)]
pub struct Interactive {
    /// Print each command after the prompt (what readline shows when its
    /// input is not a terminal; XenServer's storage manager depends on it).
    pub echo: bool,
    /// Remove ANSI colour sequences from replies.
    pub strip_ansi: bool,
    pub timeout: Duration,
}

impl Interactive {
    /// Echo and strip colours unless on a terminal, like multipathd's
    /// readline client.
    pub fn for_stdio() -> Self {
        Interactive {
            echo: !io::stdin().is_terminal(),
            strip_ansi: !io::stdout().is_terminal(),
            timeout: reply_timeout(),
        }
    }
}

/// `mpathd -k`: read commands from standard input, print the prompt, the
/// echoed command (when input is not a terminal) and each reply. With
/// `add path sdc` on a pipe the output is exactly
/// `multipathd> add path sdc\nok\nmultipathd> `.
pub fn run_interactive() -> i32 {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let stderr = io::stderr();
    run_interactive_with(
        &mut stdin.lock(),
        &mut stdout.lock(),
        &mut stderr.lock(),
        &socket::client_sockets(),
        &Interactive::for_stdio(),
    )
}

fn need_quit(line: &str) -> bool {
    matches!(line.trim(), "quit" | "exit")
}

/// Remove `ESC [ ... m` sequences.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// [`run_interactive`] with explicit streams and sockets.
pub fn run_interactive_with(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
    names: &[SocketName],
    opts: &Interactive,
) -> i32 {
    let mut client = match Client::connect_to(names, opts.timeout) {
        Ok(c) => c,
        Err(_) => {
            let _ = writeln!(err, "ERROR: failed to connect to multipathd");
            return 1;
        }
    };
    let mut buf = Vec::new();
    loop {
        let _ = out.write_all(PROMPT.as_bytes());
        let _ = out.flush();
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                let _ = writeln!(err, "Error in getline: {e}");
                break;
            }
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        let line = String::from_utf8_lossy(&buf).into_owned();
        if opts.echo {
            let _ = writeln!(out, "{line}");
        }
        if line.is_empty() {
            continue;
        }
        if need_quit(&line) {
            break;
        }
        let reply = match client.request(&line) {
            Ok(r) => r,
            Err(_) => break,
        };
        let text = if opts.strip_ansi {
            strip_ansi(&reply)
        } else {
            reply
        };
        let _ = out.write_all(text.as_bytes());
    }
    let _ = out.flush();
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_to_command() {
        assert_eq!(command_from_args(&["show", "maps"]), "show maps \n");
        assert_eq!(
            command_from_args(&["show", "maps", "format", "%n %w"]),
            "show maps format \"%n %w\" \n"
        );
        assert_eq!(
            crate::ipc::parse(&command_from_args(&["show", "maps", "format", "%n %w"])),
            Ok(crate::ipc::Command::ShowMapsFormat {
                format: "%n %w".into(),
                raw: false
            })
        );
    }

    #[test]
    fn ansi() {
        assert_eq!(strip_ansi("\x1b[1mmpatha\x1b[0m dm-0"), "mpatha dm-0");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn quit_words() {
        assert!(need_quit("  quit "));
        assert!(need_quit("exit"));
        assert!(!need_quit("quit now"));
    }
}
