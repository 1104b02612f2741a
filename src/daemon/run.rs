//! The daemon process: runtime, wiring of the real kernel, the event
//! sources and the run loop.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use super::{ConfigLoader, Daemon, Inputs, LoadedConfig, Request};
use crate::checker::{CheckRunner, SysProbe};
use crate::cli::Cli;
use crate::config::ConfigPaths;
use crate::discovery::{PathSource, UdevConfig, UdevPathSource, WwidsFile};
use crate::dm::{DmOps, RealDm};
use crate::ipc::{self, socket::SocketName, Server, ServerConfig};
use crate::model::PathInfo;
use crate::Result;

use super::adapters::{load_config, DmKernel, RunnerProber, StateFiles};
use super::sources;
use super::systemd::{self, init_logging, notify};

/// glibc gives each thread that allocates its own arena (up to 8 per
/// core); the checker pool's short-lived threads then leave memory spread
/// over many half-empty arenas. Two are plenty for a daemon that mostly
/// waits, and keep the resident size down.
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator (it takes glibc's own
    // lock); called before the runtime's threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

pub fn run_daemon(cli: &Cli) -> ExitCode {
    init_logging(cli);
    info!("mpathd {} starting", env!("CARGO_PKG_VERSION"));
    limit_malloc_arenas();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Checks fall due together every max_polling_interval (20 s by
        // default): keep the blocking pool's threads across that gap
        // instead of ending and starting them again for each burst.
        .thread_keep_alive(Duration::from_secs(60))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(daemon_main(cli));
    // A checker stuck in SG_IO on a dead device must not hold up the exit.
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            notify(&[sd_notify::NotifyState::Status(&format!("failed: {e}"))]);
            ExitCode::FAILURE
        }
    }
}

async fn daemon_main(cli: &Cli) -> Result<()> {
    let paths = cli.config_paths();
    let config = load_config(&paths)?;
    let uxsock_timeout_ms = Arc::new(std::sync::atomic::AtomicU64::new(u64::from(
        config.uxsock_timeout_ms,
    )));
    let loader = config_loader(paths, uxsock_timeout_ms.clone());
    let (snap_tx, snap_rx) = watch::channel(Arc::new(crate::model::DaemonSnapshot::default()));
    let mut daemon = real_daemon(cli, config.clone(), loader, snap_tx)?;
    let source = path_source(&config);
    let reader_source = source.clone();
    daemon.set_path_reader(Box::new(move |dev: &str| {
        reader_source.read_path(dev).map(|(info, _)| info)
    }));
    // Adopt existing maps before the socket answers, so the first query
    // already sees them.
    daemon.start();

    let sockets: Vec<SocketName> = if cli.sockets.is_empty() {
        ipc::socket::server_sockets()
    } else {
        cli.sockets.iter().map(|s| SocketName::parse(s)).collect()
    };
    let server = Server::bind(ServerConfig {
        sockets,
        request_timeout_ms: uxsock_timeout_ms,
        ..ServerConfig::default()
    })?;
    let (mut_tx, mut_rx) = mpsc::channel::<ipc::MutationRequest>(64);
    let (req_tx, req_rx) = mpsc::channel::<(Request, oneshot::Sender<super::Reply>)>(64);
    let (stop_tx, stop_rx) = watch::channel(false);
    sources::socket_requests(mut_rx, req_tx.clone(), stop_tx.clone());
    let server_stop = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let server_task = tokio::spawn(server.run(snap_rx, mut_tx, server_stop));
    sources::signals(req_tx, stop_tx.clone())?;
    let dm_rx = sources::dm_events();
    let paths_rx = sources::udev_paths(&source)?;

    daemon.on_ready(systemd::ready_hook());
    daemon.on_tick = systemd::watchdog_hook();
    daemon.block_devices = Some(Box::new(super::dumps::sys_block_devices));
    daemon
        .run(Inputs {
            paths: paths_rx,
            dm_events: dm_rx,
            requests: req_rx,
            shutdown: stop_rx,
        })
        .await;
    let _ = stop_tx.send(true);
    if let Ok(Err(e)) = server_task.await {
        warn!(error = %e, "control socket");
    }
    info!("mpathd stopped");
    Ok(())
}

/// What a reconfigure loads: the configuration, and the socket's
/// uxsock_timeout changed in place.
fn config_loader(
    paths: ConfigPaths,
    uxsock_timeout_ms: Arc<std::sync::atomic::AtomicU64>,
) -> ConfigLoader {
    Box::new(move || {
        let c = load_config(&paths)?;
        uxsock_timeout_ms.store(
            u64::from(c.uxsock_timeout_ms),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(c)
    })
}

/// The daemon on the real kernel: device-mapper, SG_IO checkers, the state
/// files and sysfs.
fn real_daemon(
    cli: &Cli,
    config: LoadedConfig,
    loader: ConfigLoader,
    snap_tx: watch::Sender<Arc<crate::model::DaemonSnapshot>>,
) -> Result<Daemon> {
    let dm: Arc<dyn DmOps> = Arc::new(RealDm::new()?);
    let kernel = Arc::new(DmKernel(dm));
    let runner = Arc::new(CheckRunner::new(Arc::new(SysProbe::new()), 64));
    let prober = Arc::new(RunnerProber(runner));
    let wwids = Arc::new(StateFiles {
        wwids: WwidsFile::new(cli.wwids_file.clone()),
        bindings: super::bindings::BindingsFile::new(cli.bindings_file.clone()),
        prkeys: crate::pr::prkeys::PrKeysFile::new(cli.prkeys_file.clone()),
    });
    let mut daemon = Daemon::new(config, loader, kernel, prober, wwids, snap_tx);
    daemon.set_transport(Arc::new(crate::transport::sysfs::SysfsTransport::new(
        "/sys",
    )));
    Ok(daemon)
}

/// udev discovery, reading each path's WWID from the property its
/// settings name.
fn path_source(config: &LoadedConfig) -> Arc<UdevPathSource> {
    let mut udev_cfg = UdevConfig::default();
    // For the guest test of the overflow path: a tiny buffer loses events
    // on purpose so the resync from sysfs can be proven.
    if let Ok(v) = std::env::var("MPATHD_UEVENT_RCVBUF") {
        match v.parse::<usize>() {
            Ok(n) if n > 0 => udev_cfg.recv_buffer = n,
            _ => warn!(value = %v, "MPATHD_UEVENT_RCVBUF: not a byte count; ignored"),
        }
    }
    let source = Arc::new(UdevPathSource::new(udev_cfg));
    let resolver = config.policy.clone();
    source.set_uid_attribute(Arc::new(move |info: &PathInfo| {
        resolver.resolve(info).uid_attribute
    }));
    source
}
