//! A real control-socket server on a temporary path socket, with a fake
//! daemon answering mutations, for the ipc integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mpathd::ipc::reply;
use mpathd::ipc::socket::SocketName;
use mpathd::ipc::{Command, MutationRequest, Server, ServerConfig};
use mpathd::model::*;
use tokio::sync::{mpsc, oneshot, watch};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct TestServer {
    pub dir: PathBuf,
    pub path: PathBuf,
    pub snapshots: watch::Sender<Arc<DaemonSnapshot>>,
    pub seen: Arc<Mutex<Vec<Command>>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    pub fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("mpathd-ipc-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("multipathd.socket");
        let mut cfg = ServerConfig::with_sockets(vec![SocketName::Path(path.clone())]);
        cfg.request_timeout_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(500));
        tune(&mut cfg);
        let (snap_tx, snap_rx) = watch::channel(Arc::new(sample_snapshot()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let seen2 = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let server = Server::bind(cfg).expect("bind");
                let (mut_tx, mut_rx) = mpsc::channel(16);
                tokio::spawn(fake_daemon(mut_rx, seen2));
                let _ = ready_tx.send(());
                server
                    .run(snap_rx, mut_tx, async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .expect("run");
            });
        });
        ready_rx.recv().expect("server ready");
        TestServer {
            dir,
            path,
            snapshots: snap_tx,
            seen,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn names(&self) -> Vec<SocketName> {
        vec![SocketName::Path(self.path.clone())]
    }

    /// Stop the server and wait for it to finish.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A daemon stand-in: records each command and answers like multipathd.
async fn fake_daemon(mut rx: mpsc::Receiver<MutationRequest>, seen: Arc<Mutex<Vec<Command>>>) {
    let mut parked = Vec::new();
    while let Some((cmd, tx)) = rx.recv().await {
        if let Ok(mut s) = seen.lock() {
            s.push(cmd.clone());
        }
        let answer = match &cmd {
            Command::DelMap { map } if map == "busy" => reply::fail(reply::BUSY),
            Command::DelMap { map } | Command::ResizeMap { map } if map == "nomap" => {
                reply::fail(reply::NO_DEVICE)
            }
            // Never answered: the server must time out.
            Command::ResizeMap { map } if map == "slow" => {
                parked.push(tx);
                continue;
            }
            _ => reply::OK.to_string(),
        };
        let _ = tx.send(answer);
    }
}

pub fn path(hcil: &str, dev: &str, devt: &str, chk: ChkState, map: &str) -> PathSnapshot {
    PathSnapshot {
        info: PathInfo {
            dev: dev.into(),
            devt: devt.parse().ok(),
            hcil: hcil.parse().ok(),
            vendor: "LIO-ORG".into(),
            product: "disk".into(),
            dev_state: DevState::Running,
            ..Default::default()
        }
        .into(),
        chk_state: chk,
        dm_state: if chk == ChkState::Up {
            DmPathState::Active
        } else {
            DmPathState::Failed
        },
        checker: "tur".into(),
        prio: 50,
        check_interval: 5,
        check_elapsed: 1,
        map: Some(map.into()),
        ..Default::default()
    }
}

pub const WWID_A: &str = "36001405aaaaaaaaaaaaaaaaaaaaaaaaa";
pub const WWID_B: &str = "36001405bbbbbbbbbbbbbbbbbbbbbbbbb";

fn map(wwid: &str, minor: u32, paths: Vec<PathSnapshot>) -> MapSnapshot {
    MapSnapshot {
        name: wwid.into(),
        wwid: wwid.into(),
        uuid: format!("mpath-{wwid}"),
        dm_minor: Some(minor),
        size: 32768,
        features: "0".into(),
        hwhandler: "1 alua".into(),
        queueing: "off".into(),
        nr_active: paths.iter().filter(|p| p.chk_state == ChkState::Up).count(),
        dm_st: "active".into(),
        path_groups: vec![PathGroupSnapshot {
            selector: "service-time 0".into(),
            prio: 50,
            dm_state: PgState::Active,
            marginal: false,
            paths: paths.into_iter().map(Arc::new).collect(),
        }],
        ..Default::default()
    }
}

/// Two maps, two paths each; one path of the second map is down.
pub fn sample_snapshot() -> DaemonSnapshot {
    let a = vec![
        path("2:0:0:0", "sda", "8:0", ChkState::Up, WWID_A),
        path("3:0:0:0", "sdc", "8:32", ChkState::Up, WWID_A),
    ];
    let b = vec![
        path("2:0:0:1", "sdb", "8:16", ChkState::Up, WWID_B),
        path("3:0:0:1", "sdd", "8:48", ChkState::Down, WWID_B),
    ];
    let mut paths = a.clone();
    paths.extend(b.clone());
    DaemonSnapshot {
        maps: vec![map(WWID_A, 0, a).into(), map(WWID_B, 1, b).into()],
        paths: paths.into_iter().map(Arc::new).collect(),
        busy: false,
        state: "idle".into(),
        pid: 4242,
        config_dump: "defaults {\n\tverbosity 2\n}\n".into(),
        blacklist_dump: "device node rules:\n".into(),
        devices_dump: "available block devices:\n".into(),
        ..DaemonSnapshot::default()
    }
}

/// A test that could not run says so where tests/run-all's summary
/// looks (MPATHD_SKIP_LOG), so it is never counted as passed.
pub fn skipped(why: &str) {
    println!("SKIPPED: {why}");
    if let Ok(log) = std::env::var("MPATHD_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{why}");
        }
    }
}
