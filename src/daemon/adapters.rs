//! The real implementations behind the daemon's traits: thin adapters
//! over `dm`, `checker`/`prio`, `discovery` and `config`.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{
    spawn_probe, ExistingMap, LoadedConfig, MapKernel, ProbeRequest, ProbeResult, Prober, WwidStore,
};
use crate::checker::{CheckOutcome, CheckRunner, ChunkItem, SysProbe};
use crate::config::{Config, ConfigPaths};
use crate::discovery::WwidsFile;
use crate::dm::{DmMessage, DmOps, MultipathStatus, MultipathTable};
use crate::model::{FilterResult, PathFilter, PathInfo, Settings};
use crate::policy::Resolver;
use crate::pr::PrKey;
use crate::prio::PRIO_UNDEF;
use crate::{Error, Result};

use super::systemd::apply_verbosity;

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
            let table = match MultipathTable::from_str(&params) {
                Ok(t) => Some(t),
                Err(e) => {
                    warn!(map = %m.name, error = %e, %params, "cannot read the table of an existing map; it will be reloaded");
                    None
                }
            };
            out.push(ExistingMap {
                name: m.name.clone(),
                uuid: m.uuid.clone(),
                table,
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
        table: &MultipathTable,
        skip_kpartx: bool,
    ) -> Result<Option<u32>> {
        let params = table.to_string();
        Ok(Some(
            self.0
                .create_opts(name, uuid, size, &params, skip_kpartx)?
                .minor(),
        ))
    }

    fn reload(
        &self,
        name: &str,
        size: u64,
        table: &MultipathTable,
        skip_kpartx: bool,
    ) -> Result<()> {
        // noflush: I/O queued on a map without paths stays queued.
        let params = table.to_string();
        Ok(self.0.reload_opts(name, size, &params, true, skip_kpartx)?)
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

    fn message(&self, name: &str, msg: &DmMessage) -> Result<()> {
        Ok(self.0.message(name, msg)?)
    }

    fn status(&self, name: &str) -> Result<crate::dm::LiveMap> {
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
        Ok(crate::dm::LiveMap {
            status: st,
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

/// [`Prober`] over the checker runner (bounded pool of blocking threads).
pub struct RunnerProber(pub Arc<CheckRunner<SysProbe>>);

/// Most checks batched in one blocking call (see
/// [`CheckRunner::check_chunk`]): enough that a second's worth of healthy
/// checks at 1024 paths takes a few hand-offs, few enough that chunks still
/// run side by side on the pool.
const CHUNK: usize = 16;

fn chunk_item(req: &ProbeRequest) -> ChunkItem {
    ChunkItem {
        path: req.info.clone(),
        checker: req.checker,
        spec: Some(req.prio.clone()),
        timeout: Duration::from_secs(u64::from(req.timeout_secs.max(1))),
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
        pr: None,
        check_ms: check
            .duration
            .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
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
            let timeout = item.timeout;
            let out = runner
                .check_then_prio(item.path, item.checker, item.spec, timeout)
                .await;
            let mut r = probe_result(&dev, out);
            if let (Some(pr), true) = (req.pr, r.chk.is_usable()) {
                let node = dev.clone();
                let sync = runner
                    .run_on_path(&dev, timeout, move || {
                        crate::pr::scsi::sync_path(&node, &pr, timeout)
                    })
                    .await;
                r.pr = Some(sync.unwrap_or_else(|e| crate::pr::PrSync::Failed(e.to_string())));
            }
            r
        })
    }
}

/// The state files shared with multipath-tools.
pub struct StateFiles {
    pub wwids: WwidsFile,
    pub bindings: super::bindings::BindingsFile,
    pub prkeys: crate::pr::prkeys::PrKeysFile,
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
    fn load_prkeys(&self) -> BTreeMap<String, PrKey> {
        self.prkeys.load().unwrap_or_else(|e| {
            warn!(file = %self.prkeys.path().display(), error = %e, "cannot read the prkeys file");
            BTreeMap::new()
        })
    }
    fn set_prkey(&self, wwid: &str, key: Option<PrKey>) -> Result<()> {
        self.prkeys.set(wwid, key).map_err(|source| Error::Io {
            path: self.prkeys.path().display().to_string(),
            source,
        })
    }
}

/// Load the configuration; its warnings are logged, its errors returned.
pub fn load_config(
    paths: &ConfigPaths,
) -> std::result::Result<LoadedConfig, crate::config::ConfigError> {
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
                config: Some(cfg.clone()),
                uxsock_timeout_ms: cfg.daemon().uxsock_timeout_ms,
            })
        }
        Err(e) => Err(e),
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
