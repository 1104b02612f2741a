//! The control-socket server on a real unix socket, against raw frames and
//! a fake daemon.

mod ipc_support;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use ipc_support::*;
use mpathd::ipc::codec::{self, FrameError, MAX_REPLY_LEN};
use mpathd::ipc::Command;

fn connect(s: &TestServer) -> UnixStream {
    let c = UnixStream::connect(&s.path).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c
}

fn ask(c: &mut UnixStream, cmd: &str) -> String {
    codec::write_frame_blocking(c, cmd).expect("send");
    codec::read_frame_blocking(c, MAX_REPLY_LEN).expect("reply")
}

/// The peer closed the connection (EOF or reset).
fn closed(c: &mut UnixStream) -> bool {
    match codec::read_frame_blocking(c, MAX_REPLY_LEN) {
        Err(FrameError::Closed) | Err(FrameError::Truncated) => true,
        Err(FrameError::Io(e)) => e.kind() == std::io::ErrorKind::ConnectionReset,
        _ => false,
    }
}

#[test]
fn many_requests_on_one_connection() {
    let s = TestServer::start();
    let mut c = connect(&s);
    let maps = ask(&mut c, "show maps");
    assert_eq!(
        maps,
        format!(
            "name{p} sysfs uuid{p}\n{WWID_A} dm-0  {WWID_A}\n{WWID_B} dm-1  {WWID_B}\n",
            p = " ".repeat(WWID_A.len() - 4)
        )
    );
    let paths = ask(&mut c, "list paths");
    assert!(paths.starts_with("hcil    dev dev_t pri dm_st  chk_st dev_st  next_check"));
    assert!(paths.contains("3:0:0:1 sdd 8:48  50  failed faulty running XXXXXXXX.. 4/5"));
    assert_eq!(ask(&mut c, "show daemon"), "pid 4242 idle\n");
    assert_eq!(ask(&mut c, "reconfigure"), "ok\n");
    assert_eq!(ask(&mut c, "show config"), "defaults {\n\tverbosity 2\n}\n");
    let topo = ask(&mut c, "show topology");
    assert!(topo.starts_with(&format!("{WWID_A} dm-0 LIO-ORG,disk\nsize=16M features='0' hwhandler='1 alua' wp=rw\n`-+- policy='service-time 0' prio=50 status=active\n  |- 2:0:0:0 sda 8:0  active ready  running\n")));
    assert_eq!(ask(&mut c, "quit"), "ok\n");
    // quit does not close the connection.
    assert_eq!(ask(&mut c, "show daemon"), "pid 4242 idle\n");
    let json: serde_json::Value =
        serde_json::from_str(&ask(&mut c, "show maps json")).expect("json");
    assert_eq!(
        json["maps"][1]["path_groups"][0]["paths"][1]["chk_st"],
        "faulty"
    );
}

#[test]
fn snapshot_updates_are_seen() {
    let s = TestServer::start();
    let mut c = connect(&s);
    let mut snap = sample_snapshot();
    snap.state = "running".into();
    snap.busy = true;
    s.snapshots.send_replace(std::sync::Arc::new(snap));
    assert_eq!(ask(&mut c, "show daemon"), "pid 4242 running\n");
    assert!(ask(&mut c, "show status").ends_with("busy: True\n"));
}

#[test]
fn prefixes_aliases_and_help() {
    let s = TestServer::start();
    let mut c = connect(&s);
    let full = ask(&mut c, "show topology");
    assert_eq!(ask(&mut c, "sho top"), full);
    assert_eq!(ask(&mut c, "list multipaths topology"), full);
    assert_eq!(
        ask(&mut c, "show map dm-1 topology"),
        ask(&mut c, &format!("show map {WWID_B} topology"))
    );
    // "sh" could be show or shutdown.
    assert_eq!(ask(&mut c, "sh maps"), "fail\n");
    let help = ask(&mut c, "help");
    assert!(help.starts_with("fail\nhelp: not found\n"));
    assert!(help.contains("CLI commands reference:\n"));
    assert!(help.contains(" switch|switchgroup map|multipath $map group $group\n"));
    let missing = ask(&mut c, "show maps format");
    assert!(missing.starts_with("fail\nshow maps format: Missing argument\n"));
    assert_eq!(
        ask(&mut c, "show map nomap topology"),
        "fail\ndevice not found\n"
    );
    assert_eq!(
        ask(&mut c, "show maps raw format \"%n %N\""),
        format!("{WWID_A} 2\n{WWID_B} 1\n")
    );
}

#[test]
fn fake_daemon_answers_mutations() {
    let s = TestServer::start();
    let mut c = connect(&s);
    assert_eq!(ask(&mut c, "add path sdc"), "ok\n");
    assert_eq!(ask(&mut c, "remove path /dev/sdc"), "ok\n");
    assert_eq!(ask(&mut c, "switchgroup map dm-0 group 2"), "ok\n");
    assert_eq!(
        ask(&mut c, "del map busy"),
        "fail\nmap or partition in use\n"
    );
    assert_eq!(ask(&mut c, "resize map nomap"), "fail\ndevice not found\n");
    assert_eq!(ask(&mut c, "setprkey map dm-0 key 0x1234"), "ok\n");
    // The PR getters read the snapshot (no key, state not read yet).
    assert_eq!(ask(&mut c, "getprkey map dm-0"), "none\n");
    assert_eq!(ask(&mut c, "getprstatus map dm-0"), "unknown");
    assert_eq!(
        ask(&mut c, "getprstatus map nomap"),
        "fail\ndevice not found\n"
    );
    // The daemon never answers this one: the deadline (500 ms here) hits.
    assert_eq!(ask(&mut c, "resize map slow"), "fail\ntimeout\n");
    // The connection is still usable afterwards.
    assert_eq!(ask(&mut c, "reconfigure all"), "ok\n");
    let seen = s.seen.lock().expect("seen").clone();
    assert_eq!(
        seen,
        vec![
            Command::AddPath { path: "sdc".into() },
            Command::DelPath { path: "sdc".into() },
            Command::SwitchGroup {
                map: "dm-0".into(),
                group: 2
            },
            Command::DelMap { map: "busy".into() },
            Command::ResizeMap {
                map: "nomap".into()
            },
            Command::SetPrKey {
                map: "dm-0".into(),
                key: "0x1234".into()
            },
            Command::ResizeMap { map: "slow".into() },
            Command::ReconfigureAll,
        ]
    );
}

#[test]
fn oversize_and_empty_frames_close_the_connection() {
    let s = TestServer::start();
    for len in [513usize, 0, usize::MAX, 1 << 40] {
        let mut c = connect(&s);
        c.write_all(&len.to_ne_bytes()).expect("send");
        let _ = c.write_all(&[b'x'; 600]);
        assert!(closed(&mut c), "length {len}");
    }
    // 512 bytes with the NUL is still fine.
    let mut c = connect(&s);
    let cmd = format!("show daemon{}", " ".repeat(500));
    assert_eq!(cmd.len() + 1, 512);
    assert_eq!(ask(&mut c, &cmd), "pid 4242 idle\n");
    // The server is still up for others.
    assert_eq!(ask(&mut connect(&s), "show daemon"), "pid 4242 idle\n");
}

#[test]
fn garbage_gets_a_reply_not_a_crash() {
    let s = TestServer::start();
    let mut c = connect(&s);
    // Arbitrary bytes, not UTF-8, embedded NUL.
    let junk: Vec<u8> = vec![0xff, 0xfe, b'{', b'"', 0x80, b'#', 0, b'z', 0x01];
    c.write_all(&(junk.len()).to_ne_bytes()).expect("len");
    c.write_all(&junk).expect("body");
    let r = codec::read_frame_blocking(&mut c, MAX_REPLY_LEN).expect("reply");
    assert!(r.starts_with("fail\n"), "{r:?}");
    // Unterminated quote, braces, lone percent signs.
    for cmd in [
        "show maps format \"%",
        "{ }",
        "show map \"\" topology",
        "%%%",
        "\"",
        "show paths format %",
    ] {
        let r = ask(&mut c, cmd);
        assert!(!r.is_empty(), "{cmd}");
    }
    assert_eq!(ask(&mut c, "show daemon"), "pid 4242 idle\n");
}

#[test]
fn half_a_frame_times_out() {
    let s = TestServer::start();
    let mut c = connect(&s);
    c.write_all(&100usize.to_ne_bytes()).expect("len");
    c.write_all(b"show").expect("part");
    // The request deadline (500 ms) passes: multipathd's timeout reply,
    // then the connection ends.
    let r = codec::read_frame_blocking(&mut c, MAX_REPLY_LEN).expect("reply");
    assert_eq!(r, "fail\ntimeout\n");
    assert!(closed(&mut c));
    // Hanging up mid-frame is harmless too.
    let mut c = connect(&s);
    c.write_all(&[1, 2, 3]).expect("partial length");
    drop(c);
    assert_eq!(ask(&mut connect(&s), "show daemon"), "pid 4242 idle\n");
    // Half a length prefix, then nothing (even from root, whose idle
    // connections may stay): closed once the request deadline passes.
    let mut c = connect(&s);
    c.write_all(&[1, 2, 3]).expect("partial length");
    let t = std::time::Instant::now();
    assert!(closed(&mut c));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "held {:?}",
        t.elapsed()
    );
    // An idle root connection between requests is kept, past the deadline.
    let mut c = connect(&s);
    assert_eq!(ask(&mut c, "show daemon"), "pid 4242 idle\n");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(ask(&mut c, "show daemon"), "pid 4242 idle\n");
}

#[test]
fn extra_clients_are_closed() {
    let s = TestServer::start_with(|cfg| {
        cfg.max_clients = 2;
        cfg.slot_wait = Duration::from_millis(100);
    });
    let mut a = connect(&s);
    let mut b = connect(&s);
    assert_eq!(ask(&mut a, "show daemon"), "pid 4242 idle\n");
    assert_eq!(ask(&mut b, "show daemon"), "pid 4242 idle\n");
    let mut c = connect(&s);
    let _ = codec::write_frame_blocking(&mut c, "show daemon");
    assert!(closed(&mut c));
    drop(a);
    // Once a slot is free again a new client is served (the server sees
    // the hang-up asynchronously: retry a bounded number of times).
    let mut served = false;
    for _ in 0..50 {
        let mut d = connect(&s);
        if codec::write_frame_blocking(&mut d, "show daemon").is_ok()
            && codec::read_frame_blocking(&mut d, MAX_REPLY_LEN).is_ok()
        {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(served);
}

#[test]
fn extra_clients_wait_for_a_slot() {
    let s = TestServer::start_with(|cfg| {
        cfg.max_clients = 1;
        cfg.slot_wait = Duration::from_secs(30);
    });
    let mut a = connect(&s);
    assert_eq!(ask(&mut a, "show daemon"), "pid 4242 idle\n");
    // A second client queues in the listen backlog while `a` holds the
    // only slot, and is served (not refused) once `a` hangs up.
    let mut b = connect(&s);
    codec::write_frame_blocking(&mut b, "show daemon").expect("request");
    std::thread::sleep(Duration::from_millis(200));
    drop(a);
    let r = codec::read_frame_blocking(&mut b, MAX_REPLY_LEN).expect("reply once a slot is free");
    assert_eq!(r, "pid 4242 idle\n");
}

#[test]
fn a_client_after_an_expired_slot_wait_is_served_when_a_slot_is_free() {
    let s = TestServer::start_with(|cfg| {
        cfg.max_clients = 1;
        cfg.slot_wait = Duration::from_millis(100);
    });
    let mut a = connect(&s);
    assert_eq!(ask(&mut a, "show daemon"), "pid 4242 idle\n");
    // The accept loop's wait for a slot runs out with nobody waiting...
    std::thread::sleep(Duration::from_millis(400));
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    // ...and the next client, coming once the slot is free, is served.
    let mut b = connect(&s);
    assert_eq!(ask(&mut b, "show daemon"), "pid 4242 idle\n");
}

#[test]
fn shutdown_removes_the_path_socket() {
    let mut s = TestServer::start();
    let mut c = connect(&s);
    assert_eq!(ask(&mut c, "show daemon"), "pid 4242 idle\n");
    s.stop();
    assert!(!s.path.exists());
    assert!(closed(&mut c));
}

#[test]
fn stale_socket_is_replaced_live_one_is_not() {
    let s = TestServer::start();
    // A second server on the same live path must refuse.
    let cfg = mpathd::ipc::ServerConfig::with_sockets(s.names());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let err = rt.block_on(async { mpathd::ipc::Server::bind(cfg).err() });
    assert!(err.is_some());
    // A stale socket file (nobody listening) is replaced.
    let stale = s.dir.join("stale.socket");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    assert!(stale.exists());
    let cfg = mpathd::ipc::ServerConfig::with_sockets(vec![mpathd::ipc::socket::SocketName::Path(
        stale.clone(),
    )]);
    let ok = rt.block_on(async { mpathd::ipc::Server::bind(cfg).is_ok() });
    assert!(ok);
}

#[test]
fn abstract_socket() {
    let name = format!("@mpathd-test-{}", std::process::id());
    let sock = mpathd::ipc::socket::SocketName::parse(&name);
    let cfg = mpathd::ipc::ServerConfig::with_sockets(vec![sock.clone()]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let (snap_tx, snap_rx) = tokio::sync::watch::channel(std::sync::Arc::new(sample_snapshot()));
    let (mut_tx, _mut_rx) = tokio::sync::mpsc::channel(1);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt
        .block_on(async { mpathd::ipc::Server::bind(cfg) })
        .expect("bind");
    assert_eq!(server.names(), vec![name.clone()]);
    let task = rt.spawn(server.run(snap_rx, mut_tx, async {
        let _ = stop_rx.await;
    }));
    let mut client =
        mpathd::client::Client::connect_to(&[sock], Duration::from_secs(5)).expect("connect");
    assert_eq!(
        client.request("show daemon").expect("reply"),
        "pid 4242 idle\n"
    );
    let _ = stop_tx.send(());
    rt.block_on(task).expect("join").expect("run");
    drop(snap_tx);
}

/// Run only as a helper, in a child process that dropped root.
#[test]
#[ignore = "helper for non_root_clients_may_only_query"]
fn non_root_helper() {
    let Ok(path) = std::env::var("MPATHD_IPC_TEST_SOCKET") else {
        return;
    };
    assert_ne!(nix::unistd::getuid().as_raw(), 0);
    let mut c = UnixStream::connect(&path).expect("connect");
    assert_eq!(ask(&mut c, "show daemon"), "pid 4242 idle\n");
    assert!(ask(&mut c, "show maps").starts_with("name"));
    // Every command that is not a list/show, one by one.
    for cmd in [
        "reconfigure",
        "reconfigure all",
        "add path sdx",
        "del path sdx",
        "add map busy",
        "del map busy",
        "del maps",
        "switch map busy group 1",
        "suspend map busy",
        "resume map busy",
        "resize map busy",
        "reload map busy",
        "reset map busy",
        "reset maps stats",
        "reinstate path sdx",
        "fail path sdx",
        "disablequeueing map busy",
        "restorequeueing map busy",
        "disablequeueing maps",
        "restorequeueing maps",
        "forcequeueing daemon",
        "restorequeueing daemon",
        "shutdown",
        "getprstatus map busy",
        "setprstatus map busy",
        "unsetprstatus map busy",
        "getprkey map busy",
        "setprkey map busy key 0x1",
        "unsetprkey map busy",
        "getprhold map busy",
        "setprhold map busy",
        "unsetprhold map busy",
        "setmarginal path sdx",
        "unsetmarginal path sdx",
        "unsetmarginal map busy",
    ] {
        assert_eq!(
            ask(&mut c, cmd),
            "fail\npermission deny: need to be root\n",
            "{cmd}"
        );
    }
    assert!(ask(&mut c, "help").contains("switchgroup"));
}

/// A copy of this test binary that any user may run, wherever the checkout
/// sits (a clone in a private directory is not searchable by nobody).
fn world_runnable_copy() -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("mpathd-ipc-helper-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let exe = dir.join("ipc_server");
    std::fs::copy(std::env::current_exe()?, &exe)?;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))?;
    Ok((dir, exe))
}

#[test]
fn non_root_clients_may_only_query() {
    if !nix::unistd::getuid().is_root() {
        skipped("non_root_clients_may_only_query: not root, cannot drop privileges");
        return;
    }
    use std::os::unix::process::CommandExt;
    let s = TestServer::start();
    let mut perms = std::fs::metadata(&s.dir).expect("dir").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&s.dir, perms).expect("chmod");
    let (copy_dir, exe) = world_runnable_copy().expect("copy the test binary for nobody");
    let out = std::process::Command::new(&exe)
        .args([
            "--exact",
            "non_root_helper",
            "--ignored",
            "--test-threads=1",
        ])
        .env("MPATHD_IPC_TEST_SOCKET", &s.path)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("spawn helper");
    let _ = std::fs::remove_dir_all(&copy_dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 passed"), "{text}");
    // Nothing reached the daemon.
    assert!(s.seen.lock().expect("seen").is_empty());
}

/// Run only as a helper: a child whose fd 3 is a listening socket, as
/// systemd passes it.
#[test]
#[ignore = "helper for systemd_socket_activation"]
fn activation_helper() {
    let Ok(path) = std::env::var("MPATHD_IPC_TEST_ACTIVATION") else {
        return;
    };
    std::env::set_var("LISTEN_PID", std::process::id().to_string());
    std::env::set_var("LISTEN_FDS", "1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    // No socket of its own: everything must come from fd 3.
    let mut cfg = mpathd::ipc::ServerConfig::with_sockets(Vec::new());
    cfg.systemd_activation = true;
    let server = rt
        .block_on(async { mpathd::ipc::Server::bind(cfg) })
        .expect("adopt fd 3");
    assert_eq!(server.names(), vec![path.clone()]);
    let (_snap_tx, snap_rx) = tokio::sync::watch::channel(std::sync::Arc::new(sample_snapshot()));
    let (mut_tx, _mut_rx) = tokio::sync::mpsc::channel(1);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = rt.spawn(server.run(snap_rx, mut_tx, async {
        let _ = stop_rx.await;
    }));
    let mut c = UnixStream::connect(&path).expect("connect");
    assert_eq!(ask(&mut c, "show daemon"), "pid 4242 idle\n");
    let _ = stop_tx.send(());
    rt.block_on(task).expect("join").expect("run");
}

#[test]
fn systemd_socket_activation() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let dir = std::env::temp_dir().join(format!("mpathd-ipc-act-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("activated.socket");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let fd = listener.as_raw_fd();
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("exe"));
    cmd.args([
        "--exact",
        "activation_helper",
        "--ignored",
        "--test-threads=1",
    ])
    .env("MPATHD_IPC_TEST_ACTIVATION", &path);
    // SAFETY: only dup2 and fcntl, which are async-signal-safe, run between fork and
    // exec; it puts the listening socket at fd 3 like systemd does.
    unsafe {
        cmd.pre_exec(move || {
            if fd != 3 && libc::dup2(fd, 3) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 onto itself keeps close-on-exec: clear it explicitly.
            if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("spawn helper");
    let text = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
