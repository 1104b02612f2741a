//! The daemon: one run loop that selects over discovery batches, checker
//! results, dm events, control-socket commands, a 1 s tick and signals,
//! feeds them to the pure [`Engine`] and applies the actions it answers
//! with through narrow kernel traits. After every change a fresh snapshot
//! is published for the control socket, so queries never wait on us.

pub mod adapters;
pub mod bindings;
pub mod dumps;
pub mod executor;
mod publish;
pub mod run;
mod sources;
mod systemd;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::discovery::{BatchKind, PathBatch, PathEvent};
use crate::model::{ChkState, DaemonSnapshot, PathInfo};
use crate::policy::{Action, Engine, Event, MapCommand, Policy};
pub use crate::policy::{ProbeRequest, ProbeResult};
pub use crate::CommandError;

pub use executor::Executor;

/// A map that exists in the kernel, read back at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingMap {
    pub name: String,
    pub uuid: String,
    /// None when the kernel's table is not one we can read.
    pub table: Option<crate::dm::MultipathTable>,
    pub size: u64,
    pub dm_minor: Option<u32>,
}

/// Device-mapper operations the executor needs. Implemented over the
/// `devicemapper` crate in [`adapters`], and by a simulator in tests.
pub trait MapKernel: Send + Sync + 'static {
    /// Multipath maps that exist now (uuid starting `mpath-`).
    fn existing_maps(&self) -> crate::Result<Vec<ExistingMap>>;
    /// Create and activate; returns the dm minor. Never leaves a
    /// half-created map behind. `skip_kpartx`: no partition maps.
    fn create(
        &self,
        name: &str,
        uuid: &str,
        size: u64,
        table: &crate::dm::MultipathTable,
        skip_kpartx: bool,
    ) -> crate::Result<Option<u32>>;
    /// Load a new table and activate it; never leaves the map suspended.
    fn reload(
        &self,
        name: &str,
        size: u64,
        table: &crate::dm::MultipathTable,
        skip_kpartx: bool,
    ) -> crate::Result<()>;
    /// Remove the map's partition maps, then the map; fails with "map or
    /// partition in use" when one is open, unless `deferred` (removed at
    /// last close).
    fn remove(&self, name: &str, deferred: bool) -> crate::Result<()>;
    fn message(&self, name: &str, msg: &crate::dm::DmMessage) -> crate::Result<()>;
    /// Read the map's live state.
    fn status(&self, name: &str) -> crate::Result<crate::dm::LiveMap>;
    fn suspend(&self, name: &str) -> crate::Result<()>;
    fn resume(&self, name: &str) -> crate::Result<()>;
}

/// Runs checkers and prioritizers; may take as long as the checker
/// timeout, so it is async and must never block the runtime.
pub trait Prober: Send + Sync + 'static {
    fn probe(
        &self,
        req: ProbeRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ProbeResult> + Send>>;
    /// The path went away: release whatever is held for it (an open fd).
    fn forget(&self, _dev: &str) {}
    /// Run the probes that fell due together, each result going to `tx`.
    /// By default each one on its own; a prober may batch them.
    fn probe_batch(&self, reqs: Vec<ProbeRequest>, tx: &mpsc::Sender<ProbeResult>) {
        for req in reqs {
            let dev = req.info.dev.clone();
            let fut = self.probe(req);
            spawn_probe(async move { vec![fut.await] }, tx, vec![dev]);
        }
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Run a probe future on the current runtime; its results go to `tx`.
/// Without a runtime (unit tests of the executor) the probes of `devs` are
/// reported as not run.
pub fn spawn_probe<F>(fut: F, tx: &mpsc::Sender<ProbeResult>, devs: Vec<String>)
where
    F: std::future::Future<Output = Vec<ProbeResult>> + Send + 'static,
{
    let tx = tx.clone();
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn(async move {
                for r in fut.await {
                    let _ = tx.send(r).await;
                }
            });
        }
        Err(_) => {
            for dev in devs {
                let _ = tx.try_send(ProbeResult {
                    dev,
                    chk: ChkState::Undef,
                    prio: None,
                    msg: "no runtime".into(),
                    dev_state: None,
                    pr: None,
                    check_ms: None,
                });
            }
        }
    }
}

/// Persisted state shared with multipath-tools: the wwids file and the
/// user_friendly_names bindings file.
pub trait WwidStore: Send + Sync + 'static {
    fn load(&self) -> Vec<String>;
    fn add(&self, wwid: &str) -> crate::Result<()>;
    /// (alias, WWID) pairs.
    fn load_bindings(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    fn add_binding(&self, _alias: &str, _wwid: &str) -> crate::Result<()> {
        Ok(())
    }
    /// The prkeys file's keys, by WWID.
    fn load_prkeys(&self) -> std::collections::BTreeMap<String, crate::pr::PrKey> {
        Default::default()
    }
    fn set_prkey(&self, _wwid: &str, _key: Option<crate::pr::PrKey>) -> crate::Result<()> {
        Err(crate::Error::Other("no prkeys file here".into()))
    }
}

/// A loaded configuration: the policy the engine uses and the texts the
/// control socket prints.
#[derive(Clone)]
pub struct LoadedConfig {
    pub policy: Arc<dyn Policy>,
    pub config_dump: Arc<str>,
    pub blacklist_dump: Arc<str>,
    /// The configuration itself, for the texts that depend on the present
    /// devices (`show config local`, `show devices`); None in simulations.
    pub config: Option<Arc<crate::config::Config>>,
    /// `uxsock_timeout`: how long a socket request may take.
    pub uxsock_timeout_ms: u32,
}

/// What reloads the configuration (SIGHUP, `reconfigure`).
pub type ConfigLoader =
    Box<dyn Fn() -> Result<LoadedConfig, crate::config::ConfigError> + Send + Sync>;

/// Requests from the control socket that need the daemon.
#[derive(Debug)]
pub enum Request {
    Map(MapCommand),
    /// Re-read the configuration; `all` reloads every map even when its
    /// table would not change (`reconfigure all`).
    Reconfigure {
        all: bool,
    },
    Suspend(String),
    Resume(String),
    /// Re-read a map's paths (their size) and reload it.
    Resize(String),
    /// Read a path from sysfs/udev now and add it.
    AddPath(String),
    /// `forcequeueing daemon` (true) / `restorequeueing daemon` (false):
    /// whether maps keep queueing after the daemon stops.
    QueueWithoutDaemon(bool),
    Shutdown,
}

/// Reads one path now (for `add path`, `resize map`).
pub type PathReader = Box<dyn Fn(&str) -> crate::Result<PathInfo> + Send + Sync>;

pub type Reply = Result<(), crate::CommandError>;

/// Inputs of the run loop.
pub struct Inputs {
    /// Coalesced batches of path events from discovery.
    pub paths: mpsc::Receiver<PathBatch>,
    /// Names of maps whose dm event counter moved.
    pub dm_events: mpsc::Receiver<Vec<String>>,
    pub requests: mpsc::Receiver<(Request, oneshot::Sender<Reply>)>,
    /// SIGHUP and friends arrive here as requests too; shutdown as a watch.
    pub shutdown: watch::Receiver<bool>,
}

/// Called once when the first coldplug has been applied (READY=1), with
/// the names of the maps then in place.
pub type ReadyHook = Box<dyn FnOnce(Vec<String>) + Send>;

pub struct Daemon {
    engine: Engine,
    exec: Executor,
    config: LoadedConfig,
    loader: ConfigLoader,
    snapshot_tx: watch::Sender<Arc<DaemonSnapshot>>,
    probe_tx: mpsc::Sender<ProbeResult>,
    probe_rx: mpsc::Receiver<ProbeResult>,
    /// Checker durations, shared live with every snapshot.
    check_latency: crate::model::LiveCheckLatency,
    /// Outcomes of map changes run in the background.
    applied_rx: mpsc::Receiver<Vec<Event>>,
    start: Instant,
    ready: Option<ReadyHook>,
    /// The first (coldplug) batch of paths has been applied.
    seen_coldplug: bool,
    path_reader: Option<PathReader>,
    /// Forced by `forcequeueing daemon`; None: the configuration decides.
    queue_without_daemon: Option<bool>,
    /// Ticks each loop iteration so a watchdog can tell the loop is alive.
    pub on_tick: Option<Box<dyn Fn() + Send>>,
    /// When the next snapshot goes out.
    publisher: publish::Publisher,
    dumps: dumps::LocalDumps,
    /// Lists the host's block devices (`show devices`).
    pub block_devices: Option<dumps::BlockDevices>,
}

impl Daemon {
    /// Where transport timeouts and change uevents are written (sysfs).
    pub fn set_transport(&mut self, t: Arc<dyn crate::transport::TransportWriter>) {
        self.exec.set_transport(t);
    }

    pub fn new(
        config: LoadedConfig,
        loader: ConfigLoader,
        kernel: Arc<dyn MapKernel>,
        prober: Arc<dyn Prober>,
        wwids: Arc<dyn WwidStore>,
        snapshot_tx: watch::Sender<Arc<DaemonSnapshot>>,
    ) -> Self {
        let (probe_tx, probe_rx) = mpsc::channel(4096);
        let (applied_tx, applied_rx) = mpsc::channel(1024);
        let start = Instant::now();
        let mut engine = Engine::new(config.policy.clone(), std::process::id());
        engine.use_real_clock(start);
        let mut exec = Executor::new(kernel, prober, wwids);
        exec.set_background(Some(applied_tx));
        Daemon {
            engine,
            exec,
            applied_rx,
            config,
            loader,
            snapshot_tx,
            probe_tx,
            probe_rx,
            check_latency: Default::default(),
            start,
            ready: None,
            seen_coldplug: false,
            path_reader: None,
            queue_without_daemon: None,
            on_tick: None,
            publisher: publish::Publisher::default(),
            dumps: dumps::LocalDumps::default(),
            block_devices: None,
        }
    }

    pub fn set_path_reader(&mut self, reader: PathReader) {
        self.path_reader = Some(reader);
    }

    pub fn on_ready(&mut self, hook: ReadyHook) {
        self.ready = Some(hook);
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Feed events, apply actions until quiet, publish the snapshot if
    /// anything it shows changed. A check that changed nothing does not
    /// rebuild it, nor does a tick (the check bars age by themselves),
    /// unless a no_path_retry countdown is on show.
    fn drive(&mut self, events: Vec<Event>) {
        let tick = matches!(events.as_slice(), [Event::Tick]);
        let mut actions = self.engine.handle_batch(events, self.now_ms());
        self.run_actions(&mut actions);
        let countdown = tick && self.engine.has_countdown();
        if self.engine.take_changed() || countdown || self.ready.is_some() {
            self.publisher.want(false);
        }
        if self.engine.take_urgent() {
            self.publisher.want(true);
        }
    }

    /// Publish a wanted snapshot once no input is waiting (see
    /// [`publish::Publisher`]). Replies to commands publish at once.
    fn publish_when_idle(&mut self, backlog: bool) {
        if self.publisher.publish_now(backlog, Instant::now()) {
            self.publish();
        }
    }

    fn run_actions(&mut self, actions: &mut Vec<Action>) {
        // Actions produce follow-up events (map applied, status); loop
        // until the engine has nothing more to say. Bounded for safety.
        for _ in 0..16 {
            if actions.is_empty() {
                return;
            }
            let follow = self.exec.apply(std::mem::take(actions), &self.probe_tx);
            if follow.is_empty() {
                return;
            }
            *actions = self.engine.handle_batch(follow, self.now_ms());
        }
        if !actions.is_empty() {
            warn!(
                pending = actions.len(),
                "action loop did not settle; continuing next tick"
            );
        }
    }

    /// Ready is still to be told and the first coldplug not yet applied.
    fn starting(&self) -> bool {
        self.ready.is_some() && !(self.seen_coldplug && self.engine.settled())
    }

    fn publish(&mut self) {
        let t0 = Instant::now();
        self.engine.take_changed();
        let mut snap = self.engine.snapshot();
        snap.config_dump = self.config.config_dump.clone();
        snap.check_latency = self.check_latency.clone();
        snap.blacklist_dump = self.config.blacklist_dump.clone();
        self.dumps.fill(
            self.config.config.as_ref(),
            &mut snap,
            self.block_devices.as_ref(),
        );
        let settled = self.engine.settled() && self.seen_coldplug;
        if !settled {
            snap.busy = true;
        }
        self.snapshot_tx.send_replace(Arc::new(snap));
        self.publisher.published(Instant::now(), t0.elapsed());
        if settled {
            if let Some(hook) = self.ready.take() {
                info!(
                    maps = self.engine.map_names().len(),
                    "initial paths applied: ready"
                );
                hook(self.engine.map_names());
            }
        }
    }

    /// Adopt maps that already exist and load the wwids file; call before
    /// the first coldplug batch.
    pub fn start(&mut self) {
        let mut events = vec![
            Event::KnownWwids(self.exec.wwids.load()),
            Event::KnownBindings(self.exec.wwids.load_bindings()),
            Event::KnownPrKeys(self.exec.wwids.load_prkeys()),
        ];
        match self.exec.kernel.existing_maps() {
            Ok(maps) => {
                for m in maps {
                    let Some(wwid) = m.uuid.strip_prefix("mpath-") else {
                        continue;
                    };
                    events.push(Event::Adopt {
                        name: m.name.clone(),
                        wwid: wwid.to_string(),
                        table: m.table.clone(),
                        size: m.size,
                        dm_minor: m.dm_minor,
                    });
                    match self.exec.kernel.status(&m.name) {
                        Ok(live) => events.push(Event::dm_status(&m.name, live)),
                        Err(e) => {
                            warn!(map = %m.name, error = %e, "cannot read status of existing map")
                        }
                    }
                }
            }
            Err(e) => error!(error = %e, "cannot list existing maps"),
        }
        self.drive(events);
    }

    fn handle_request(&mut self, req: Request) -> Reply {
        match req {
            Request::Map(cmd) => {
                let (res, mut actions) = self.engine.command(cmd, self.now_ms());
                let errs = self.exec.take_errors();
                // Inline, so the reply tells how the kernel took it.
                let bg = self.exec.set_background(None);
                blocking(|| self.run_actions(&mut actions));
                self.exec.set_background(bg);
                let errs2 = self.exec.take_errors();
                self.publish();
                res?;
                match errs.into_iter().chain(errs2).next() {
                    Some(e) => Err(e.into()),
                    None => Ok(()),
                }
            }
            Request::Reconfigure { all } => self.reconfigure_with(all),
            Request::Suspend(name) => {
                let n = self.engine.map_name(&name).ok_or(CommandError::NotFound)?;
                Ok(self.exec.kernel.suspend(&n)?)
            }
            Request::Resume(name) => {
                let n = self.engine.map_name(&name).ok_or(CommandError::NotFound)?;
                Ok(self.exec.kernel.resume(&n)?)
            }
            Request::Resize(name) => {
                let n = self.engine.map_name(&name).ok_or(CommandError::NotFound)?;
                let reader = self.path_reader()?;
                let mut events = Vec::new();
                for dev in self.engine.map_members(&n) {
                    let info = reader(&dev)?;
                    events.push(Event::path_changed(info));
                }
                self.drive(events);
                // The reply must find its effect in the next query.
                self.publish();
                Ok(())
            }
            Request::AddPath(dev) => {
                if let crate::model::FilterResult::Blacklisted { by } =
                    self.config.policy.filter_devnode(&dev)
                {
                    return Err(CommandError::Invalid(format!("blacklisted by {by}")));
                }
                let info = self.path_reader()?(&dev)?;
                self.drive(vec![Event::path_added(info)]);
                self.publish();
                Ok(())
            }
            Request::QueueWithoutDaemon(on) => {
                self.queue_without_daemon = Some(on);
                Ok(())
            }
            Request::Shutdown => Ok(()),
        }
    }

    fn path_reader(&self) -> Result<&PathReader, CommandError> {
        self.path_reader
            .as_ref()
            .ok_or_else(|| CommandError::Failed("cannot read paths".into()))
    }

    /// Re-read the configuration; a bad one leaves the old one in force.
    pub fn reconfigure(&mut self) -> Reply {
        self.reconfigure_with(false)
    }

    /// [`Daemon::reconfigure`]; with `all`, every map is reloaded.
    pub fn reconfigure_with(&mut self, all: bool) -> Reply {
        self.engine.set_busy(true);
        self.publish();
        let res = match (self.loader)() {
            Ok(cfg) => {
                info!("configuration reloaded");
                // mpathpersist may have changed keys behind our back.
                let keys = self.exec.wwids.load_prkeys();
                self.drive(vec![Event::KnownPrKeys(keys)]);
                let mut actions = self
                    .engine
                    .reconfigure(cfg.policy.clone(), self.now_ms(), all);
                self.config = cfg;
                self.run_actions(&mut actions);
                Ok(())
            }
            Err(e) => {
                error!(error = %e, "new configuration rejected; keeping the running one");
                Err(CommandError::Invalid(e.to_string()))
            }
        };
        self.engine.set_busy(false);
        self.publish();
        res
    }

    /// The run loop. Returns when shutdown is requested; maps are left in
    /// place with their queueing policy.
    pub async fn run(mut self, mut inputs: Inputs) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Some(f) = &self.on_tick {
                f();
            }
            let next_check = self.next_check_at();
            // Until the first coldplug is applied, snapshots serve only
            // queries (which see `busy`) and the readiness check: publish
            // as in a storm, not once per map created.
            let backlog = self.starting()
                || !(inputs.paths.is_empty()
                    && inputs.dm_events.is_empty()
                    && self.probe_rx.is_empty()
                    && self.applied_rx.is_empty());
            self.publish_when_idle(backlog);
            let publish_at = self.publisher.due().map(tokio::time::Instant::from_std);
            tokio::select! {
                _ = tokio::time::sleep_until(next_check) => self.drive(Vec::new()),
                _ = sleep_until_opt(publish_at), if publish_at.is_some() => self.publish(),
                batch = inputs.paths.recv() => match batch {
                    Some(batch) => self.on_paths(batch),
                    None => {
                        warn!("discovery stopped");
                        // Keep serving: maps and checkers still work.
                        inputs.paths = mpsc::channel(1).1;
                    }
                },
                Some(first) = self.probe_rx.recv() => self.on_probed(first),
                Some(first) = self.applied_rx.recv() => {
                    let mut events = first;
                    while let Ok(more) = self.applied_rx.try_recv() {
                        events.extend(more);
                    }
                    self.drive(events);
                }
                Some(names) = inputs.dm_events.recv() => self.on_dm_events(names),
                Some((req, reply)) = inputs.requests.recv() => {
                    let shutdown = matches!(req, Request::Shutdown);
                    let r = self.handle_request(req);
                    let _ = reply.send(r);
                    if shutdown {
                        break;
                    }
                }
                _ = tick.tick() => self.drive(vec![Event::Tick]),
                changed = inputs.shutdown.changed() => {
                    if changed.is_err() || *inputs.shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        self.stop();
    }

    /// When the next check falls due: the loop wakes exactly then, not at
    /// the next tick, so a failed path is reinstated within its interval.
    fn next_check_at(&self) -> tokio::time::Instant {
        match self.engine.next_check_due_ms() {
            Some(due) => {
                let at = self.start + std::time::Duration::from_millis(due);
                tokio::time::Instant::from_std(at.max(Instant::now()))
            }
            None => tokio::time::Instant::now() + std::time::Duration::from_secs(3600),
        }
    }

    fn on_paths(&mut self, batch: PathBatch) {
        self.seen_coldplug |= batch.kind == BatchKind::Coldplug;
        for ev in &batch.events {
            if let PathEvent::Remove(dev) = ev {
                self.exec.prober.forget(dev);
            }
        }
        self.drive(vec![Event::Paths(batch)]);
    }

    /// Probe results arrive one by one: take all that are waiting.
    fn on_probed(&mut self, first: ProbeResult) {
        let mut events = vec![first];
        while let Ok(more) = self.probe_rx.try_recv() {
            events.push(more);
        }
        for ms in events.iter().filter_map(|r| r.check_ms) {
            self.check_latency.record(ms);
        }
        self.drive(events.into_iter().map(Event::Probed).collect());
    }

    /// dm events name maps: read each one's status for the engine.
    fn on_dm_events(&mut self, names: Vec<String>) {
        let mut events = Vec::new();
        for n in names {
            match self.exec.kernel.status(&n) {
                Ok(live) => events.push(Event::dm_status(&n, live)),
                // A map being created: its load reports in.
                Err(e @ crate::Error::NoActiveTable(_)) => {
                    debug!(map = %n, error = %e, "status after dm event")
                }
                Err(e) => warn!(map = %n, error = %e, "status after dm event"),
            }
        }
        self.drive(events);
    }

    /// Leaving the loop: maps stay; with queue_without_daemon no, queueing
    /// is switched off first, since without a daemon nobody would ever
    /// reinstate a path and queued I/O would hang forever.
    fn stop(&mut self) {
        info!("shutting down; maps stay in place");
        let keep_queueing = self
            .queue_without_daemon
            .unwrap_or(self.config.policy.defaults().queue_without_daemon);
        if !keep_queueing {
            let actions: Vec<Action> = self
                .engine
                .queueing_maps()
                .into_iter()
                .map(|map| Action::Message {
                    map,
                    msg: crate::dm::DmMessage::FailIfNoPath,
                })
                .collect();
            if !actions.is_empty() {
                info!(
                    maps = actions.len(),
                    "queue_without_daemon no: queueing switched off"
                );
            }
            drop(self.exec.apply(actions, &self.probe_tx));
        }
        let mut snap = (**self.snapshot_tx.borrow()).clone();
        snap.state = "shutdown".into();
        self.snapshot_tx.send_replace(Arc::new(snap));
    }
}

/// Run blocking kernel work from the loop without stalling the runtime's
/// other tasks (possible on the multi-threaded runtime the daemon uses).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests;
