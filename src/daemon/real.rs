//! Wiring of the real daemon: logging, signals, systemd notification, and
//! the real kernel implementations behind the daemon's traits (thin
//! adapters over `dm`, `checker`/`prio`, `discovery` and `config`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use super::{
    spawn_probe, ConfigLoader, Daemon, ExistingMap, Inputs, LoadedConfig, MapKernel, ProbeRequest,
    ProbeResult, Prober, Request, WwidStore,
};
use crate::checker::{CheckOutcome, CheckRunner, CheckerKind, ChunkItem, SysProbe};
use crate::cli::{Cli, ConfigCmd};
use crate::config::{Config, ConfigPaths, Severity};
use crate::discovery::{PathEvent, PathSource, UdevConfig, UdevPathSource, WwidsFile};
use crate::dm::{DmMessage, DmOps, MultipathStatus, MultipathTable, RealDm};
use crate::ipc::{self, reply, socket::SocketName, Command, Server, ServerConfig};
use crate::model::{FilterResult, PathFilter, PathInfo, Settings};
use crate::policy::{Event, MapCommand, Resolver};
use crate::prio::{PrioSpec, PRIO_UNDEF};
use crate::{Error, Result};

// ----------------------------------------------------------------------
// Adapters
// ----------------------------------------------------------------------

/// The configuration as the policy core sees it.
pub struct ConfigPolicy(pub Arc<Config>, FilterCache);

impl ConfigPolicy {
    pub fn new(config: Arc<Config>) -> Self {
        ConfigPolicy(config, FilterCache::default())
    }
}

/// The last blacklist verdict per path, with the path as it was judged.
/// The engine asks for every path's verdict on every event it handles (each
/// checker result, each 1 s tick), and a verdict costs a full settings
/// resolution (hwtable regexes, for the property rule's uid_attribute),
/// which would dominate the steady-state CPU. A new configuration builds a
/// new ConfigPolicy, so the cache never outlives the rules it was computed
/// with.
#[derive(Default)]
pub struct FilterCache(
    std::sync::Mutex<std::collections::HashMap<String, (PathInfo, FilterResult)>>,
);

impl Resolver for ConfigPolicy {
    fn resolve(&self, info: &PathInfo) -> Settings {
        self.0.resolve(info)
    }
    fn defaults(&self) -> Settings {
        self.0.defaults_settings()
    }
    fn alias_prefix(&self) -> String {
        self.0.daemon().alias_prefix
    }
}

impl PathFilter for ConfigPolicy {
    fn filter_path(&self, info: &PathInfo) -> FilterResult {
        // A poisoned lock only loses the cache, never the verdict.
        let Ok(mut cache) = self.1 .0.lock() else {
            return self.0.filter_path(info);
        };
        if let Some((seen, verdict)) = cache.get(&info.dev) {
            if seen == info {
                return verdict.clone();
            }
        }
        let verdict = self.0.filter_path(info);
        cache.insert(info.dev.clone(), (info.clone(), verdict.clone()));
        verdict
    }
    fn filter_devnode(&self, dev: &str) -> FilterResult {
        self.0.filter_devnode(dev)
    }
}

/// [`MapKernel`] over the devicemapper crate.
pub struct DmKernel(pub Arc<dyn DmOps>);

impl MapKernel for DmKernel {
    fn existing_maps(&self) -> Result<Vec<ExistingMap>> {
        let mut out = Vec::new();
        for m in self.0.list_maps()? {
            if !m.uuid.starts_with("mpath-") {
                continue;
            }
            if !m.has_table() {
                // Left over by a crash mid-create: nothing can be using a
                // table-less map, so clear it and let it be built again.
                warn!(map = %m.name, "removing table-less multipath map left by an interrupted create");
                if let Err(e) = self.0.remove(&m.name, false) {
                    warn!(map = %m.name, error = %e, "cannot remove table-less map");
                }
                continue;
            }
            let (size, params) = self.0.table(&m.name)?;
            out.push(ExistingMap {
                name: m.name.clone(),
                uuid: m.uuid.clone(),
                params,
                size,
                dm_minor: Some(m.minor()),
            });
        }
        Ok(out)
    }

    fn create(
        &self,
        name: &str,
        uuid: &str,
        size: u64,
        params: &str,
        skip_kpartx: bool,
    ) -> Result<Option<u32>> {
        Ok(Some(
            self.0
                .create_opts(name, uuid, size, params, skip_kpartx)?
                .minor(),
        ))
    }

    fn reload(&self, name: &str, size: u64, params: &str, skip_kpartx: bool) -> Result<()> {
        // noflush: I/O queued on a map without paths stays queued.
        Ok(self.0.reload_opts(name, size, params, true, skip_kpartx)?)
    }

    fn remove(&self, name: &str, deferred: bool) -> Result<()> {
        // kpartx's partition maps hold the map open: they go first (an
        // open partition refuses, and the map stays).
        let uuid = self.0.map_info(name)?.uuid;
        if !uuid.is_empty() {
            for part in self.0.partitions_of(&uuid)? {
                info!(map = %name, partition = %part, "removing partition map");
                self.0.remove(&part, deferred)?;
            }
        }
        Ok(self.0.remove(name, deferred)?)
    }

    fn message(&self, name: &str, msg: &str) -> Result<()> {
        let m = DmMessage::from_str(msg)
            .map_err(|e| Error::Other(format!("{name}: bad message '{msg}': {e}")))?;
        Ok(self.0.message(name, &m)?)
    }

    fn status(&self, name: &str) -> Result<Event> {
        // Two ioctls: after a dm event this is on the path from a failed
        // path to the published snapshot. The live queue_if_no_path is in
        // the table, not in the status.
        let (info, table) = self.0.info_and_table(name)?;
        let Some((_, params)) = table else {
            return Err(Error::NoActiveTable(name.to_string()));
        };
        let status = self.0.status(name)?;
        let st = MultipathStatus::from_str(&status).map_err(|source| {
            Error::Dm(crate::dm::DmError::Grammar {
                map: name.to_string(),
                source,
            })
        })?;
        let queue = MultipathTable::from_str(&params)
            .ok()
            .map(|t| t.features.queue_if_no_path);
        Ok(Event::DmStatus {
            name: name.to_string(),
            paths: st
                .groups
                .iter()
                .flat_map(|g| g.paths.iter())
                .map(|p| (p.dev, p.state == crate::model::DmPathState::Active))
                .collect(),
            pg_states: st.groups.iter().map(|g| g.state).collect(),
            active_group: st.active_group().and_then(|g| usize::try_from(g).ok()),
            queue_if_no_path: queue,
            suspended: info.suspended,
        })
    }

    fn suspend(&self, name: &str) -> Result<()> {
        Ok(self.0.suspend(name)?)
    }

    fn resume(&self, name: &str) -> Result<()> {
        Ok(self.0.resume(name)?)
    }
}

/// Wait until `/dev/mapper/<name>` exists for every map, at most `limit`.
/// Without a running udev nobody makes the nodes: nothing to wait for.
fn wait_for_map_nodes(maps: &[String], dir: &Path, limit: Duration) {
    if !Path::new("/run/udev/control").exists() {
        return;
    }
    let start = std::time::Instant::now();
    loop {
        let missing: Vec<&String> = maps.iter().filter(|m| !dir.join(m).exists()).collect();
        if missing.is_empty() {
            return;
        }
        if start.elapsed() >= limit {
            warn!(
                maps = ?missing,
                "udev has not made these maps' nodes after {} s; reporting ready anyway",
                limit.as_secs()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`Prober`] over the checker runner (bounded pool of blocking threads).
pub struct RunnerProber(pub Arc<CheckRunner<SysProbe>>);

/// Most checks batched in one blocking call (see
/// [`CheckRunner::check_chunk`]): enough that a second's worth of healthy
/// checks at 1024 paths takes a few hand-offs, few enough that chunks still
/// run side by side on the pool.
const CHUNK: usize = 16;

fn chunk_item(req: &ProbeRequest) -> ChunkItem {
    let timeout = Duration::from_secs(u64::from(req.timeout_secs.max(1)));
    let (kind, unknown) = CheckerKind::resolve(&req.checker);
    if let Some(u) = unknown {
        warn!(path = %req.info.dev, checker = %u, "checker not supported; using {}", kind.name());
    }
    let spec = req.with_prio.then(|| {
        let mut spec = PrioSpec::new(req.prio.clone(), req.prio_args.clone());
        spec.exclusive_pref_bit |= req.exclusive_pref_bit;
        spec
    });
    ChunkItem {
        path: req.info.clone(),
        checker: kind,
        spec,
        timeout,
    }
}

fn probe_result(dev: &str, (check, p): CheckOutcome) -> ProbeResult {
    let prio = p.and_then(|p| (p.prio != PRIO_UNDEF).then_some(p.prio));
    ProbeResult {
        dev: dev.to_string(),
        chk: check.state,
        prio,
        msg: check.to_string(),
        dev_state: check.dev_state,
    }
}

impl Prober for RunnerProber {
    fn forget(&self, dev: &str) {
        self.0.probe().close(dev);
    }

    /// Paths in doubt are probed one per call; the healthy rest in chunks.
    fn probe_batch(&self, reqs: Vec<ProbeRequest>, tx: &mpsc::Sender<ProbeResult>) {
        let (solo, healthy): (Vec<_>, Vec<_>) = reqs.into_iter().partition(|r| r.solo);
        for req in solo {
            let dev = req.info.dev.clone();
            let fut = self.probe(req);
            spawn_probe(async move { vec![fut.await] }, tx, vec![dev]);
        }
        for chunk in healthy.chunks(CHUNK) {
            let items: Vec<ChunkItem> = chunk.iter().map(chunk_item).collect();
            let devs: Vec<String> = items.iter().map(|i| i.path.dev.clone()).collect();
            let runner = self.0.clone();
            let names = devs.clone();
            spawn_probe(
                async move {
                    let out = runner.check_chunk(items).await;
                    names
                        .iter()
                        .zip(out)
                        .map(|(d, o)| probe_result(d, o))
                        .collect::<Vec<_>>()
                },
                tx,
                devs,
            );
        }
    }

    fn probe(
        &self,
        req: ProbeRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ProbeResult> + Send>> {
        let runner = self.0.clone();
        Box::pin(async move {
            let item = chunk_item(&req);
            let dev = req.info.dev.clone();
            let out = runner
                .check_then_prio(item.path, item.checker, item.spec, item.timeout)
                .await;
            probe_result(&dev, out)
        })
    }
}

/// The state files shared with multipath-tools.
pub struct StateFiles {
    pub wwids: WwidsFile,
    pub bindings: super::bindings::BindingsFile,
}

impl WwidStore for StateFiles {
    fn load(&self) -> Vec<String> {
        match self.wwids.read() {
            Ok(w) => w.to_set().into_iter().collect(),
            Err(e) => {
                warn!(file = %self.wwids.path().display(), error = %e, "cannot read the wwids file");
                Vec::new()
            }
        }
    }
    fn add(&self, wwid: &str) -> Result<()> {
        self.wwids.add(wwid).map(|_| ())
    }
    fn load_bindings(&self) -> Vec<(String, String)> {
        self.bindings.read().unwrap_or_else(|e| {
            warn!(error = %e, "cannot read the bindings file");
            Vec::new()
        })
    }
    fn add_binding(&self, alias: &str, wwid: &str) -> Result<()> {
        self.bindings.add(alias, wwid)
    }
}

// ----------------------------------------------------------------------
// Configuration
// ----------------------------------------------------------------------

fn config_paths(cli: &Cli) -> ConfigPaths {
    ConfigPaths {
        main: cli.config.clone(),
        conf_dir: cli.config_dir.clone(),
    }
}

/// Load the configuration; errors (with every diagnostic) as one string.
pub fn load_config(paths: &ConfigPaths) -> std::result::Result<LoadedConfig, String> {
    match Config::load(paths) {
        Ok((cfg, diags)) => {
            for d in &diags {
                warn!("{d}");
            }
            let cfg = Arc::new(cfg);
            raise_fd_limit(cfg.daemon().max_fds);
            apply_verbosity(cfg.daemon().verbosity);
            Ok(LoadedConfig {
                policy: Arc::new(ConfigPolicy::new(cfg.clone())),
                config_dump: cfg.show_config().into(),
                blacklist_dump: cfg.show_blacklist().into(),
                devices_dump: "".into(),
                uxsock_timeout_ms: cfg.daemon().uxsock_timeout_ms,
            })
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Run with `max_fds` open files (multipathd's keyword; `max` is the
/// kernel's nr_open). A checker holds each path's device open, so 1024
/// paths need more than the usual soft limit of 1024: at that limit the
/// sysfs reads of prioritizers and the wwids file fail with EMFILE.
fn raise_fd_limit(max_fds: Option<u64>) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let want = max_fds.unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(hard)
    });
    if want == soft {
        return;
    }
    // Raising the hard limit needs CAP_SYS_RESOURCE; without it, go as far
    // as the hard limit allows.
    let done = setrlimit(Resource::RLIMIT_NOFILE, want, want.max(hard))
        .map(|()| want)
        .or_else(|_| {
            let capped = want.min(hard);
            setrlimit(Resource::RLIMIT_NOFILE, capped, hard).map(|()| capped)
        });
    match done {
        Ok(n) if n < want => {
            warn!(
                limit = n,
                wanted = want,
                "open file limit capped by the hard limit (max_fds)"
            )
        }
        Ok(n) => info!(from = soft, to = n, "open file limit set"),
        Err(e) => warn!(limit = want, error = %e, "cannot set the open file limit (max_fds)"),
    }
}

// ----------------------------------------------------------------------
// Logging and systemd
// ----------------------------------------------------------------------

/// multipathd's -v levels onto tracing levels.
fn level(verbosity: Option<u8>) -> &'static str {
    match verbosity.unwrap_or(2) {
        0 => "error",
        1 => "warn",
        2 => "info",
        3 => "debug",
        _ => "trace",
    }
}

/// The log filter, reloadable: the configuration's `verbosity` applies
/// (at start and on every reconfigure) unless -v or RUST_LOG chose.
static LOG_FILTER: std::sync::OnceLock<
    tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>,
> = std::sync::OnceLock::new();

/// Journald when started by systemd (JOURNAL_STREAM is set), plain stderr
/// otherwise. RUST_LOG, when set, wins over -v.
pub fn init_logging(cli: &Cli) {
    use tracing_subscriber::prelude::*;
    let fixed = EnvFilter::try_from_default_env().ok();
    let by_verbosity = fixed.is_none() && cli.verbosity.is_none();
    let filter =
        fixed.unwrap_or_else(|| EnvFilter::new(format!("mpathd={}", level(cli.verbosity))));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    if by_verbosity {
        let _ = LOG_FILTER.set(handle);
    }
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some() && !cli.foreground;
    if under_journal {
        if let Ok(layer) = tracing_journald::layer() {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(layer)
                .try_init();
            return;
        }
    }
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if cli.no_timestamps {
        registry.with(fmt.without_time()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
}

/// The configuration's `verbosity`, when neither -v nor RUST_LOG set the
/// level.
fn apply_verbosity(verbosity: u32) {
    if let Some(h) = LOG_FILTER.get() {
        let v = u8::try_from(verbosity).unwrap_or(u8::MAX);
        if let Err(e) = h.reload(EnvFilter::new(format!("mpathd={}", level(Some(v))))) {
            warn!(error = %e, "cannot change the log level");
        }
    }
}

/// Tell systemd something, when we run under it.
pub fn notify(state: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(e) = sd_notify::notify(state) {
            warn!(error = %e, "sd_notify failed");
        }
    }
}

// ----------------------------------------------------------------------
// Control-socket commands -> daemon requests
// ----------------------------------------------------------------------

/// Translate a root-only socket command into a daemon request, or answer
/// it directly.
fn to_request(cmd: Command) -> std::result::Result<Request, String> {
    use Command as C;
    Ok(match cmd {
        C::FailPath { path } => Request::Map(MapCommand::FailPath(path)),
        C::ReinstatePath { path } => Request::Map(MapCommand::ReinstatePath(path)),
        C::SwitchGroup { map, group } => Request::Map(MapCommand::SwitchGroup {
            map,
            group: usize::try_from(group).unwrap_or(0),
        }),
        C::DelMap { map } => Request::Map(MapCommand::RemoveMap(map)),
        C::DelMaps => Request::Map(MapCommand::RemoveAllMaps),
        C::AddMap { map } => Request::Map(MapCommand::AddMap(map)),
        C::ReloadMap { map } | C::ResetMap { map } => Request::Map(MapCommand::ReloadMap(map)),
        C::ResizeMap { map } => Request::Resize(map),
        C::AddPath { path } => Request::AddPath(path),
        C::DelPath { path } => Request::Map(MapCommand::DelPath(path)),
        C::DisableQueueingMap { map } => Request::Map(MapCommand::DisableQueueing(Some(map))),
        C::RestoreQueueingMap { map } => Request::Map(MapCommand::RestoreQueueing(Some(map))),
        C::DisableQueueingMaps => Request::Map(MapCommand::DisableQueueing(None)),
        C::RestoreQueueingMaps => Request::Map(MapCommand::RestoreQueueing(None)),
        C::ResetMapsStats => Request::Map(MapCommand::ResetStats(None)),
        C::ResetMapStats { map } => Request::Map(MapCommand::ResetStats(Some(map))),
        C::SuspendMap { map } => Request::Suspend(map),
        C::ResumeMap { map } => Request::Resume(map),
        C::Reconfigure | C::ReconfigureAll => Request::Reconfigure,
        C::Shutdown => Request::Shutdown,
        C::ForceQueueingDaemon => Request::QueueWithoutDaemon(true),
        C::RestoreQueueingDaemon => Request::QueueWithoutDaemon(false),
        other => return Err(format!("{other:?} is not supported by mpathd")),
    })
}

fn reply_text(r: &super::Reply) -> String {
    use crate::CommandError as E;
    match r {
        Ok(()) => reply::OK.to_string(),
        Err(E::InUse) => reply::fail(reply::BUSY),
        Err(E::NotFound) => reply::fail(reply::NO_DEVICE),
        Err(E::Invalid(e) | E::Failed(e)) => reply::fail(e),
    }
}

// ----------------------------------------------------------------------
// The daemon
// ----------------------------------------------------------------------

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
    let paths = config_paths(cli);
    let config = load_config(&paths).map_err(Error::Config)?;
    let cfg_for_loader = paths.clone();
    let uxsock_timeout_ms = Arc::new(std::sync::atomic::AtomicU64::new(u64::from(
        config.uxsock_timeout_ms,
    )));
    let timeout = uxsock_timeout_ms.clone();
    let loader: ConfigLoader = Box::new(move || {
        let c = load_config(&cfg_for_loader)?;
        timeout.store(
            u64::from(c.uxsock_timeout_ms),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(c)
    });

    let dm: Arc<dyn DmOps> = Arc::new(RealDm::new()?);
    let kernel = Arc::new(DmKernel(dm));
    let runner = Arc::new(CheckRunner::new(Arc::new(SysProbe::new()), 64));
    let prober = Arc::new(RunnerProber(runner));
    let wwids = Arc::new(StateFiles {
        wwids: WwidsFile::new(cli.wwids_file.clone()),
        bindings: super::bindings::BindingsFile::new(cli.bindings_file.clone()),
    });

    let (snap_tx, snap_rx) = watch::channel(Arc::new(crate::model::DaemonSnapshot::default()));
    let mut daemon = Daemon::new(config.clone(), loader, kernel, prober, wwids, snap_tx);
    daemon.set_transport(Arc::new(crate::transport::sysfs::SysfsTransport::new(
        "/sys",
    )));

    // Discovery.
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
    let reader_source = source.clone();
    daemon.set_path_reader(Box::new(move |dev: &str| {
        reader_source
            .read_path(dev)
            .map(|(info, _)| info)
            .map_err(|e| e.to_string())
    }));

    // Adopt existing maps before the socket answers, so the first query
    // already sees them.
    daemon.start();

    // Control socket.
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
    let (mut_tx, mut mut_rx) = mpsc::channel::<ipc::MutationRequest>(64);
    let (req_tx, req_rx) = mpsc::channel::<(Request, oneshot::Sender<super::Reply>)>(64);
    let (stop_tx, stop_rx) = watch::channel(false);

    // Socket commands become daemon requests.
    let bridge_tx = req_tx.clone();
    let bridge_stop = stop_tx.clone();
    tokio::spawn(async move {
        while let Some((cmd, reply_tx)) = mut_rx.recv().await {
            let req = match to_request(cmd) {
                Ok(r) => r,
                Err(e) => {
                    let _ = reply_tx.send(reply::fail(&e));
                    continue;
                }
            };
            let reconfigure = matches!(req, Request::Reconfigure);
            let shutdown = matches!(req, Request::Shutdown);
            if reconfigure {
                notify(&[sd_notify::NotifyState::Reloading]);
            }
            let (tx, rx) = oneshot::channel();
            if bridge_tx.send((req, tx)).await.is_err() {
                let _ = reply_tx.send(reply::FAIL.to_string());
                continue;
            }
            let r = rx
                .await
                .unwrap_or_else(|_| Err(crate::CommandError::Failed("daemon stopped".into())));
            if reconfigure {
                notify(&[sd_notify::NotifyState::Ready]);
            }
            let _ = reply_tx.send(reply_text(&r));
            if shutdown {
                let _ = bridge_stop.send(true);
            }
        }
    });

    let server_stop = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let server_task = tokio::spawn(server.run(snap_rx, mut_tx, server_stop));

    // Signals: HUP reconfigures, TERM/INT stop.
    let mut signals = signal_hook_tokio::Signals::new([
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| Error::Other(format!("signal handlers: {e}")))?;
    let sig_req = req_tx.clone();
    let sig_stop = stop_tx.clone();
    tokio::spawn(async move {
        while let Some(sig) = signals.next().await {
            if sig == signal_hook::consts::SIGHUP {
                info!("SIGHUP: reconfiguring");
                notify(&[sd_notify::NotifyState::Reloading]);
                let (tx, rx) = oneshot::channel();
                if sig_req.send((Request::Reconfigure, tx)).await.is_ok() {
                    let _ = rx.await;
                }
                notify(&[sd_notify::NotifyState::Ready]);
            } else {
                info!(signal = sig, "stopping");
                notify(&[sd_notify::NotifyState::Stopping]);
                let _ = sig_stop.send(true);
            }
        }
    });

    // dm events -> names of changed maps.
    let (dm_tx, dm_rx) = mpsc::channel::<Vec<String>>(256);
    match crate::dm::watch(1024) {
        Ok((_task, mut events)) => {
            tokio::spawn(async move {
                while let Some(first) = events.recv().await {
                    let mut names = vec![first.name];
                    while let Ok(more) = events.try_recv() {
                        names.push(more.name);
                    }
                    names.sort();
                    names.dedup();
                    if dm_tx.send(names).await.is_err() {
                        break;
                    }
                }
            });
        }
        Err(e) => warn!(error = %e, "dm events unavailable; relying on checkers"),
    }

    // Paths: discovery batches -> engine events.
    let (paths_tx, paths_rx) = mpsc::channel::<Vec<Event>>(64);
    let mut batches = source.start()?;
    tokio::spawn(async move {
        while let Some(batch) = batches.recv().await {
            let events: Vec<Event> = batch
                .events
                .into_iter()
                .map(|e| match e {
                    PathEvent::Add(i) => Event::PathAdded(i),
                    PathEvent::Change(i) => Event::PathChanged(i),
                    PathEvent::Remove(d) => Event::PathRemoved(d),
                })
                .collect();
            if paths_tx.send(events).await.is_err() {
                break;
            }
        }
    });

    daemon.on_ready(Box::new(|maps| {
        // Maps are created without waiting on udev (see RealDm's resume),
        // but READY=1 promises units ordered after us usable maps: wait
        // (bounded, off the run loop) for udev to make their nodes.
        let spawned = std::thread::Builder::new()
            .name("ready".into())
            .spawn(move || {
                wait_for_map_nodes(&maps, Path::new("/dev/mapper"), Duration::from_secs(30));
                notify(&[sd_notify::NotifyState::Ready]);
            });
        if spawned.is_err() {
            notify(&[sd_notify::NotifyState::Ready]);
        }
    }));
    if let Some(period) = sd_notify::watchdog_enabled() {
        // Ping at most every half period, from the loop itself, so a wedged
        // loop gets restarted.
        let half = period / 2;
        let last = std::sync::Mutex::new(std::time::Instant::now());
        daemon.on_tick = Some(Box::new(move || {
            if let Ok(mut l) = last.lock() {
                if l.elapsed() >= half {
                    notify(&[sd_notify::NotifyState::Watchdog]);
                    *l = std::time::Instant::now();
                }
            }
        }));
    }
    daemon.start();
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

// ----------------------------------------------------------------------
// Client and configuration tools
// ----------------------------------------------------------------------

pub fn run_client(cli: &Cli, cmd: Option<&str>) -> ExitCode {
    if !cli.sockets.is_empty() {
        // The client library reads MULTIPATH_SOCKET_NAME; --socket sets it.
        if let Some(first) = cli.sockets.first() {
            std::env::set_var(ipc::socket::SOCKET_ENV, first);
        }
    }
    crate::client::use_configured_timeout(&config_paths(cli));
    let code = match cmd {
        Some(c) if !c.trim().is_empty() => crate::client::run_command(c),
        _ => crate::client::run_interactive(),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn print_diags(diags: &[crate::config::Diagnostic]) -> bool {
    let mut errors = false;
    for d in diags {
        eprintln!("{d}");
        errors |= d.severity == Severity::Error;
    }
    errors
}

fn write_out(output: Option<&Path>, text: &str) -> ExitCode {
    match output {
        Some(p) => match std::fs::write(p, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mpathd: cannot write {}: {e}", p.display());
                ExitCode::FAILURE
            }
        },
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
    }
}

pub fn run_config_cmd(cli: &Cli, cmd: &ConfigCmd) -> ExitCode {
    let paths = config_paths(cli);
    match cmd {
        ConfigCmd::Check { file } => {
            let p = match file {
                // A single file: no drop-ins (an empty dir that cannot exist).
                Some(f) => ConfigPaths {
                    main: f.clone(),
                    conf_dir: PathBuf::from("/nonexistent/mpathd-check"),
                },
                None => paths,
            };
            let diags = Config::check(&p);
            let errors = print_diags(&diags);
            if errors {
                ExitCode::FAILURE
            } else {
                println!(
                    "{}: configuration OK ({} warning(s))",
                    p.main.display(),
                    diags.len()
                );
                ExitCode::SUCCESS
            }
        }
        ConfigCmd::Show { toml } => match Config::load(&paths) {
            Ok((cfg, diags)) => {
                print_diags(&diags);
                if *toml {
                    print!("{}", cfg.to_toml_string());
                } else {
                    print!("{}", cfg.show_config());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        ConfigCmd::Explain {
            vendor,
            product,
            revision,
            wwid,
        } => match Config::load(&paths) {
            Ok((cfg, diags)) => {
                print_diags(&diags);
                print!(
                    "{}",
                    cfg.explain(vendor, product, revision, wwid.as_deref())
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        ConfigCmd::Convert { input, output } => {
            let name = input.display().to_string();
            let bytes = match std::fs::read(input) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("mpathd: cannot read {name}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let is_toml = input.extension().is_some_and(|e| e == "toml");
            let parsed = if is_toml {
                match String::from_utf8(bytes) {
                    Ok(t) => Config::from_toml_str(&t, &name),
                    Err(_) => {
                        eprintln!("{name}: not UTF-8");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                Config::parse_bytes(&bytes, &name)
            };
            match parsed {
                Ok((cfg, diags)) => {
                    print_diags(&diags);
                    let text = if is_toml {
                        cfg.to_conf_string()
                    } else {
                        cfg.to_toml_string()
                    };
                    write_out(output.as_deref(), &text)
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        ConfigCmd::ClaimPath { dev } => {
            // Warnings go nowhere: udev logs a program's stderr per event.
            let claim = Config::load(&paths)
                .map_err(|e| e.to_string())
                .and_then(|(c, _)| crate::discovery::claim::claim_device(dev, &c, &cli.wwids_file));
            match claim {
                Ok(c) => {
                    print!("{}", c.udev_properties());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("mpathd: claim {dev}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
