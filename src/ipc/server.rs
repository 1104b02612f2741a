//! The control-socket listener.
//!
//! Queries are answered from the latest published [`DaemonSnapshot`], so
//! they never wait behind the daemon's work. Every other command goes to
//! the daemon through an mpsc channel with a oneshot for the reply text,
//! bounded by the request deadline (multipathd's `uxsock_timeout`, counted
//! from the arrival of the request).

use std::future::Future;
use std::os::fd::{FromRawFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::codec::{self, FrameError, MAX_CMD_LEN, MAX_REPLY_LEN};
use super::command::{parse, permitted, Command};
use super::format::answer_query;
use super::reply;
use super::socket::{self, SocketName};
use crate::model::DaemonSnapshot;
use crate::{Error, Result};

/// A root-only command for the daemon and where to send the reply text
/// (ready for the wire: `ok\n`, `fail\n<reason>\n`, or output).
pub type MutationRequest = (Command, oneshot::Sender<String>);

/// Default request deadline, like multipathd's uxsock_timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(4000);

/// How the server listens and how long it waits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Sockets to bind when not socket-activated.
    pub sockets: Vec<SocketName>,
    /// Take the listening sockets from systemd (LISTEN_FDS) when present.
    pub systemd_activation: bool,
    /// Root connections served at once.
    pub max_clients: usize,
    /// Non-root connections served at once, from slots of their own: an
    /// unprivileged user holding connections open never takes the slots
    /// root's clients (udev's `multipath -u`, the storage manager) need.
    pub max_user_clients: usize,
    /// With every slot of its class taken, how long a new connection waits
    /// for one before it is closed. Bursts of short connections
    /// (`multipath -u` from udev for every new path) wait their turn
    /// instead of being refused. At most `max_user_clients` non-root
    /// connections wait at once; more are closed at once.
    pub slot_wait: Duration,
    /// From the arrival of a request's length to the reply being ready
    /// (reading the rest of the request, waiting for the daemon), in ms:
    /// `uxsock_timeout`, shared so a reconfigure changes it in place.
    pub request_timeout_ms: Arc<AtomicU64>,
    /// Idle connections of non-root clients are closed after this; root
    /// connections (interactive `-k` sessions) may idle forever, as with
    /// multipathd.
    pub idle_timeout_nonroot: Option<Duration>,
    /// Bound on sending one reply to a client that does not read.
    pub write_timeout: Duration,
    /// On shutdown, how long requests in progress may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            sockets: socket::server_sockets(),
            systemd_activation: true,
            max_clients: 64,
            max_user_clients: 16,
            slot_wait: Duration::from_secs(2),
            request_timeout_ms: Arc::new(AtomicU64::new(
                u64::try_from(DEFAULT_REQUEST_TIMEOUT.as_millis()).unwrap_or(4000),
            )),
            idle_timeout_nonroot: Some(Duration::from_secs(60)),
            write_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

impl ServerConfig {
    /// Listen on exactly these sockets (no socket activation).
    pub fn with_sockets(sockets: Vec<SocketName>) -> Self {
        ServerConfig {
            sockets,
            systemd_activation: false,
            ..Default::default()
        }
    }
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Answer at once with this text (parse error, refusal, `quit`).
    Reply(String),
    /// Answer from the snapshot.
    Query(Command),
    /// Hand to the daemon.
    Daemon(Command),
}

/// Decide how to answer `text` from a client that is (not) root.
pub fn route(text: &str, is_root: bool) -> Route {
    let cmd = match parse(text) {
        Ok(c) => c,
        Err(e) => return Route::Reply(e.reply(text)),
    };
    if !permitted(&cmd, is_root) {
        return Route::Reply(reply::fail(reply::PERMISSION_DENIED));
    }
    if cmd.is_query() {
        Route::Query(cmd)
    } else if cmd.needs_daemon() {
        Route::Daemon(cmd)
    } else {
        Route::Reply(reply::OK.to_string())
    }
}

/// Answer one request. Never fails: errors become `fail` replies.
pub async fn answer(
    text: &str,
    is_root: bool,
    snapshots: &watch::Receiver<Arc<DaemonSnapshot>>,
    mutations: &mpsc::Sender<MutationRequest>,
    deadline: Instant,
) -> String {
    let out = match route(text, is_root) {
        Route::Reply(r) => r,
        Route::Query(cmd) => {
            // Take the Arc and release the watch lock before formatting.
            let snap = snapshots.borrow().clone();
            answer_query(&cmd, &snap).unwrap_or_default()
        }
        Route::Daemon(cmd) => {
            let (tx, rx) = oneshot::channel();
            let ask = async {
                mutations.send((cmd, tx)).await.ok()?;
                rx.await.ok()
            };
            match tokio::time::timeout_at(deadline, ask).await {
                Ok(Some(r)) => r,
                Ok(None) => reply::FAIL.to_string(),
                Err(_) => reply::fail(reply::TIMEOUT),
            }
        }
    };
    if out.is_empty() {
        reply::OK.to_string()
    } else if out.len() + 1 >= MAX_REPLY_LEN {
        reply::fail("reply too long")
    } else {
        out
    }
}

/// The listening control socket(s).
pub struct Server {
    listeners: Vec<Listener>,
    cfg: ServerConfig,
}

struct Listener {
    inner: UnixListener,
    name: String,
    /// Path socket we created and remove on shutdown.
    cleanup: Option<PathBuf>,
}

/// systemd passes its sockets once; never adopt the descriptors twice.
static ACTIVATION_TAKEN: AtomicBool = AtomicBool::new(false);
const SD_LISTEN_FDS_START: RawFd = 3;

/// Listening unix stream sockets passed by systemd (LISTEN_PID/LISTEN_FDS),
/// at most two, like multipathd.
fn systemd_listeners() -> Result<Vec<std::os::unix::net::UnixListener>> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        == Some(std::process::id());
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse::<i32>().ok())
        .unwrap_or(0);
    if !pid_ok || n < 1 {
        return Ok(Vec::new());
    }
    if n > 2 {
        return Err(Error::Ipc(format!(
            "LISTEN_FDS={n}: systemd passed more sockets than the two expected"
        )));
    }
    if ACTIVATION_TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for fd in SD_LISTEN_FDS_START..SD_LISTEN_FDS_START + n {
        check_listening_unix_stream(fd)?;
        // SAFETY: systemd hands these descriptors to this process for its
        // exclusive use; ACTIVATION_TAKEN guarantees they are adopted once,
        // and they were just checked to be listening unix stream sockets.
        let l = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
        out.push(l);
    }
    Ok(out)
}

fn check_listening_unix_stream(fd: RawFd) -> Result<()> {
    use nix::sys::socket::{getsockopt, sockopt, SockType};
    use std::os::fd::BorrowedFd;
    // SAFETY: fd is only borrowed for the duration of these calls; a bad
    // descriptor makes getsockopt fail with EBADF, which is reported.
    let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
    let bad = |what: &str| Error::Ipc(format!("socket-activation fd {fd}: {what}"));
    let ty = getsockopt(&bfd, sockopt::SockType).map_err(|e| bad(&e.to_string()))?;
    let listening = getsockopt(&bfd, sockopt::AcceptConn).map_err(|e| bad(&e.to_string()))?;
    let local = nix::sys::socket::getsockname::<nix::sys::socket::UnixAddr>(fd.to_owned());
    if ty != SockType::Stream || !listening || local.is_err() {
        return Err(bad("not a listening unix stream socket"));
    }
    Ok(())
}

/// Bind one socket name. A stale path socket is replaced; a live one
/// (another daemon answering) is an error.
fn bind_one(name: &SocketName) -> Result<(std::os::unix::net::UnixListener, Option<PathBuf>)> {
    let place = name.to_string();
    let io_err = |e| Error::io(place.clone(), e);
    let mut cleanup = None;
    if let SocketName::Path(p) = name {
        match std::fs::symlink_metadata(p) {
            Ok(md) if md.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(p).is_ok() {
                    return Err(Error::Ipc(format!(
                        "{place}: another daemon is listening on it"
                    )));
                }
                std::fs::remove_file(p).map_err(io_err)?;
            }
            Ok(_) => {
                return Err(Error::Ipc(format!(
                    "{place}: exists and is not a socket; not replacing it"
                )))
            }
            Err(_) => {}
        }
        cleanup = Some(p.clone());
    }
    let addr = name.to_addr().map_err(io_err)?;
    let l = std::os::unix::net::UnixListener::bind_addr(&addr).map_err(io_err)?;
    if let SocketName::Path(p) = name {
        // Everyone may connect; SO_PEERCRED restricts what non-root may do.
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o666)).map_err(io_err)?;
    }
    Ok((l, cleanup))
}

impl Server {
    /// Bind the sockets (or adopt systemd's). Must run inside a tokio
    /// runtime. Fails only when no socket at all could be had.
    pub fn bind(cfg: ServerConfig) -> Result<Server> {
        let mut std_listeners = Vec::new();
        if cfg.systemd_activation {
            for l in systemd_listeners()? {
                let name = l
                    .local_addr()
                    .ok()
                    .and_then(|a| {
                        a.as_pathname()
                            .map(|p| p.display().to_string())
                            .or_else(|| {
                                a.as_abstract_name()
                                    .map(|n| format!("@{}", String::from_utf8_lossy(n)))
                            })
                    })
                    .unwrap_or_else(|| "systemd socket".into());
                std_listeners.push((l, name, None));
            }
        }
        if std_listeners.is_empty() {
            let mut last_err = None;
            for name in &cfg.sockets {
                match bind_one(name) {
                    Ok((l, cleanup)) => std_listeners.push((l, name.to_string(), cleanup)),
                    Err(e) => {
                        warn!("control socket {name}: {e}");
                        last_err = Some(e);
                    }
                }
            }
            if std_listeners.is_empty() {
                return Err(
                    last_err.unwrap_or_else(|| Error::Ipc("no control socket configured".into()))
                );
            }
        }
        let mut listeners = Vec::new();
        for (l, name, cleanup) in std_listeners {
            let place = name.clone();
            l.set_nonblocking(true)
                .map_err(|e| Error::io(place.clone(), e))?;
            let inner = UnixListener::from_std(l).map_err(|e| Error::io(place, e))?;
            listeners.push(Listener {
                inner,
                name,
                cleanup,
            });
        }
        Ok(Server { listeners, cfg })
    }

    /// Names of the sockets being listened on (`@name` for abstract ones).
    pub fn names(&self) -> Vec<String> {
        self.listeners.iter().map(|l| l.name.clone()).collect()
    }

    /// Serve until `shutdown` completes, then stop accepting, let requests
    /// in progress finish (bounded by `shutdown_grace`), close every
    /// connection and remove the path sockets this server created.
    pub async fn run(
        self,
        snapshots: watch::Receiver<Arc<DaemonSnapshot>>,
        mutations: mpsc::Sender<MutationRequest>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        let ctx = Arc::new(Ctx {
            snapshots,
            mutations,
            cfg: self.cfg.clone(),
            slots: Arc::new(Semaphore::new(self.cfg.max_clients)),
            user_slots: Arc::new(Semaphore::new(self.cfg.max_user_clients)),
            user_waiting: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut cleanup = Vec::new();
        let mut loops = JoinSet::new();
        for l in self.listeners {
            info!("listening on control socket {}", l.name);
            cleanup.extend(l.cleanup);
            loops.spawn(accept_loop(l.inner, l.name, ctx.clone(), stop_rx.clone()));
        }
        shutdown.await;
        let _ = stop_tx.send(true);
        while loops.join_next().await.is_some() {}
        for p in cleanup {
            if let Err(e) = std::fs::remove_file(&p) {
                debug!("removing {}: {e}", p.display());
            }
        }
        Ok(())
    }
}

struct Ctx {
    snapshots: watch::Receiver<Arc<DaemonSnapshot>>,
    mutations: mpsc::Sender<MutationRequest>,
    cfg: ServerConfig,
    /// Root's slots.
    slots: Arc<Semaphore>,
    user_slots: Arc<Semaphore>,
    /// Non-root connections accepted and waiting for a slot.
    user_waiting: AtomicUsize,
    /// Connections closed without a slot since the last log line.
    refused: AtomicU64,
}

/// A non-root connection counted as waiting (by the accept loop) stops
/// counting when this drops.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Wait up to `slot_wait` for a slot of the connection's class.
async fn take_slot(ctx: &Ctx, is_root: bool) -> Option<OwnedSemaphorePermit> {
    let (slots, _waiting) = if is_root {
        (ctx.slots.clone(), None)
    } else {
        (ctx.user_slots.clone(), Some(Waiting(&ctx.user_waiting)))
    };
    match tokio::time::timeout(ctx.cfg.slot_wait, slots.acquire_owned()).await {
        Ok(Ok(p)) => Some(p),
        _ => {
            ctx.refused.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // A dropped sender counts as a stop too.
    let _ = stop.wait_for(|s| *s).await;
}

/// Accept connections; each waits for a slot of its class (root or not)
/// in its own task, so a flood of one class never holds up the other.
async fn accept_loop(
    listener: UnixListener,
    name: String,
    ctx: Arc<Ctx>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    // Refusals are logged at most every 10 s, with their count.
    let mut refused_logged: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let is_root = stream.peer_cred().map(|c| c.uid() == 0).unwrap_or(false);
                    if !is_root
                        && ctx.user_waiting.fetch_add(1, Ordering::Relaxed) >= ctx.cfg.max_user_clients
                    {
                        ctx.user_waiting.fetch_sub(1, Ordering::Relaxed);
                        ctx.refused.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                    } else {
                        // A non-root one counts as waiting (added above)
                        // until take_slot's guard gives it back.
                        let ctx = ctx.clone();
                        let stop = stop.clone();
                        conns.spawn(async move {
                            if let Some(permit) = take_slot(&ctx, is_root).await {
                                serve(stream, &ctx, stop, is_root).await;
                                drop(permit);
                            }
                        });
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!("{name}: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
        if refused_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            let n = ctx.refused.swap(0, Ordering::Relaxed);
            if n > 0 {
                warn!(
                    "{name}: all slots taken ({} root, {} other) for {:?}: closed {n} connection(s)",
                    ctx.cfg.max_clients, ctx.cfg.max_user_clients, ctx.cfg.slot_wait
                );
                refused_logged = Some(Instant::now());
            }
        }
    }
    drop(listener);
    let grace = ctx.cfg.shutdown_grace;
    let _ = tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    conns.shutdown().await;
}

async fn idle(limit: Option<Duration>) {
    match limit {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Serve one connection: request/reply pairs until the peer hangs up, a
/// frame is bad, or the server stops.
async fn serve(mut stream: UnixStream, ctx: &Ctx, mut stop: watch::Receiver<bool>, is_root: bool) {
    let cred = stream.peer_cred().ok();
    let who = cred
        .and_then(|c| c.pid())
        .map(|p| format!("pid {p}"))
        .unwrap_or_else(|| "client".into());
    let idle_limit = if is_root {
        None
    } else {
        ctx.cfg.idle_timeout_nonroot
    };
    loop {
        // The request's deadline runs from its first byte: a client that
        // sends half a length prefix and stalls holds its slot no longer
        // than one that stalls in the body.
        let mut first = [0u8; 1];
        tokio::select! {
            r = stream.read(&mut first) => match r {
                Ok(1) => {}
                // Hung up between requests, or the socket failed.
                _ => return,
            },
            _ = stopped(&mut stop) => return,
            _ = idle(idle_limit) => {
                debug!("{who}: idle, closing");
                return;
            }
        };
        let deadline = Instant::now()
            + Duration::from_millis(ctx.cfg.request_timeout_ms.load(Ordering::Relaxed));
        let len =
            match tokio::time::timeout_at(deadline, codec::read_len_after(first[0], &mut stream))
                .await
            {
                Ok(r) => r,
                Err(_) => {
                    debug!("{who}: half a length prefix, then nothing: closing");
                    return;
                }
            };
        let len = match len.and_then(|l| codec::check_len(l, MAX_CMD_LEN)) {
            Ok(l) => l,
            Err(FrameError::Closed) => return,
            Err(e) => {
                // Like multipathd: a bad length ends the connection.
                warn!("{who}: {e}; closing");
                return;
            }
        };
        let text = match tokio::time::timeout_at(deadline, codec::read_body(&mut stream, len)).await
        {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                debug!("{who}: {e}");
                return;
            }
            Err(_) => {
                // The rest of the frame may still come: the stream is out of
                // step, so answer and close.
                let _ = send(&mut stream, &reply::fail(reply::TIMEOUT), ctx).await;
                return;
            }
        };
        debug!("{who}: request {:?}", text.trim_end());
        let out = answer(&text, is_root, &ctx.snapshots, &ctx.mutations, deadline).await;
        if out == reply::fail(reply::PERMISSION_DENIED) {
            warn!("{who}: unauthorized command {:?}", text.trim_end());
        }
        if !send(&mut stream, &out, ctx).await {
            return;
        }
    }
}

async fn send(stream: &mut UnixStream, text: &str, ctx: &Ctx) -> bool {
    matches!(
        tokio::time::timeout(ctx.cfg.write_timeout, codec::write_frame(stream, text)).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_decisions() {
        assert_eq!(route("show maps", false), Route::Query(Command::ShowMaps));
        assert_eq!(route("show maps", true), Route::Query(Command::ShowMaps));
        assert_eq!(
            route("reconfigure", false),
            Route::Reply("fail\npermission deny: need to be root\n".into())
        );
        assert_eq!(
            route("reconfigure", true),
            Route::Daemon(Command::Reconfigure)
        );
        assert_eq!(route("quit", true), Route::Reply("ok\n".into()));
        assert_eq!(
            route("quit", false),
            Route::Reply("fail\npermission deny: need to be root\n".into())
        );
        // Unknown commands get the help text whoever asks.
        match route("help", false) {
            Route::Reply(r) => {
                assert!(r.starts_with("fail\nhelp: not found\n"));
                assert!(r.contains("switchgroup"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn daemon_timeout_and_absence() {
        let (_snap_tx, snap_rx) = watch::channel(Arc::new(DaemonSnapshot::default()));
        let (tx, mut rx) = mpsc::channel::<MutationRequest>(1);
        // A daemon that never answers.
        let hold = tokio::spawn(async move {
            let mut keep = Vec::new();
            while let Some(req) = rx.recv().await {
                keep.push(req);
            }
        });
        let deadline = Instant::now() + Duration::from_millis(50);
        let r = answer("reconfigure", true, &snap_rx, &tx, deadline).await;
        assert_eq!(r, "fail\ntimeout\n");
        hold.abort();
        let _ = hold.await;
        let deadline = Instant::now() + Duration::from_secs(5);
        let r = answer("reconfigure", true, &snap_rx, &tx, deadline).await;
        assert_eq!(r, "fail\n");
        // Empty query output becomes "ok".
        let r = answer("show maps", false, &snap_rx, &tx, deadline).await;
        assert_eq!(r, "ok\n");
    }
}
