//! The policy engine: owns paths and maps, turns events into actions.
//!
//! Time is passed in as milliseconds on a monotonic clock, so tests drive
//! it with a simulated clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::model::{
    ChkState, DaemonSnapshot, DevState, DevT, DmPathState, Failback, MapSnapshot, MapStats,
    NoPathRetry, PathGroupSnapshot, PathInfo, PathSnapshot, PgState, SanPathErr, Settings,
};

use crate::discovery::filter::{decide, Candidate, Decision, KnownWwids};
use crate::model::PathFilter;

use super::grouping::{group_paths, GroupInput, PathGroup};
use super::table;
use super::Policy;
use crate::dm::TableMatch;
use crate::transport;

/// How long a new map waits for its paths' first check before it is
/// created anyway (a hung path must not hold back the map).
const PROBE_GRACE_MS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A batch of discovery events has been coalesced by discovery; each
    /// is applied in order, then maps are reconciled once.
    PathAdded(PathInfo),
    PathChanged(PathInfo),
    PathRemoved(String),
    /// A checker (and, when asked, prioritizer) finished for a path.
    Probed {
        dev: String,
        chk: ChkState,
        prio: Option<i32>,
        msg: String,
        /// The SCSI device state the probe read from sysfs, when it did.
        dev_state: Option<DevState>,
    },
    /// A create/reload/remove was applied (or failed) by the executor.
    MapApplied {
        name: String,
        ok: bool,
        removed: bool,
        dm_minor: Option<u32>,
        error: Option<String>,
    },
    /// The kernel's status for a map, parsed.
    DmStatus {
        name: String,
        /// (path, active?) for each path in the table.
        paths: Vec<(DevT, bool)>,
        pg_states: Vec<PgState>,
        /// 1-based active group from the status line, when known.
        active_group: Option<usize>,
        queue_if_no_path: Option<bool>,
        suspended: bool,
    },
    /// A multipath map that already exists in the kernel (at start-up).
    Adopt {
        name: String,
        wwid: String,
        params: String,
        size: u64,
        dm_minor: Option<u32>,
    },
    /// The WWIDs recorded in the wwids file.
    KnownWwids(Vec<String>),
    /// The bindings file: (alias, WWID) pairs for user_friendly_names.
    KnownBindings(Vec<(String, String)>),
    /// Time passes: checks due, no_path_retry and failback deadlines.
    Tick,
    /// A path's transport timeouts were written (or could not be).
    TransportTuned {
        dev: String,
        report: transport::Report,
    },
}

/// One check (and prio) of a path, for the executor's prober.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRequest {
    pub info: Arc<PathInfo>,
    pub checker: String,
    pub timeout_secs: u32,
    pub prio: String,
    pub prio_args: String,
    pub with_prio: bool,
    pub exclusive_pref_bit: bool,
    /// The path's last check was not good (or there was none): check it on
    /// its own, since a hung check would hold up checks batched with it.
    pub solo: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run the checker (and the prioritizer when `with_prio`) on a path.
    Probe(Box<ProbeRequest>),
    CreateMap {
        name: String,
        uuid: String,
        size: u64,
        params: String,
        /// No partition maps (kpartx) for this map.
        skip_kpartx: bool,
    },
    ReloadMap {
        name: String,
        size: u64,
        params: String,
        skip_kpartx: bool,
    },
    /// Partition maps first, then the map; `deferred`: at last close if
    /// it is open.
    RemoveMap {
        name: String,
        deferred: bool,
    },
    Message {
        map: String,
        msg: String,
    },
    /// Record a WWID in the wwids file.
    AddWwid(String),
    /// Record a user_friendly_names binding in the bindings file.
    AddBinding {
        alias: String,
        wwid: String,
    },
    /// Set a path's transport timeouts (iSCSI session, FC remote port,
    /// SAS end device, SCSI host), as multipathd does for a map's paths.
    TuneTransport {
        dev: String,
        plan: transport::Plan,
    },
    /// A `change` uevent on a path of a new map, so udev's rules run again
    /// and claim it (DM_MULTIPATH_DEVICE_PATH) before LVM or systemd do.
    TriggerUevent {
        dev: String,
    },
}

/// Operator commands the engine handles (from the control socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapCommand {
    FailPath(String),
    ReinstatePath(String),
    SwitchGroup { map: String, group: usize },
    DisableQueueing(Option<String>),
    RestoreQueueing(Option<String>),
    RemoveMap(String),
    RemoveAllMaps,
    ReloadMap(String),
    AddMap(String),
    DelPath(String),
    ResetStats(Option<String>),
}

#[derive(Debug, Clone)]
struct Path {
    /// Shared with snapshots and probe requests: publishing is a refcount
    /// bump, not a deep copy of the udev properties.
    info: Arc<PathInfo>,
    /// Interned (see `Engine::intern`): the paths of one array share one.
    settings: Arc<Settings>,
    chk: ChkState,
    dm: DmPathState,
    prio: i32,
    probed: bool,
    in_flight: bool,
    added_ms: u64,
    next_check_ms: u64,
    last_check_ms: u64,
    interval_s: u32,
    /// Shared with snapshots, like `info`: a snapshot copies no per-path
    /// strings.
    why: Arc<str>,
    map: Option<Arc<str>>,
    /// `settings.path_checker`, shared.
    checker: Arc<str>,
    /// The transport timeouts last sent for this path as a map member.
    tuned: Option<transport::Plan>,
    /// What those writes did, for `show paths reasons`.
    transport_note: Option<Arc<str>>,
    /// san_path_err damping: failures not yet forgotten, good checks
    /// towards forgetting one, and the end of a hold-out.
    failures: u32,
    good_checks: u32,
    held_until_ms: Option<u64>,
    /// This path in the last snapshot (see `Engine::path_snapshot`).
    snap: Option<Arc<PathSnapshot>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queueing {
    /// Not queueing (no_path_retry fail, or timed out, or disabled).
    Off,
    /// Queueing without limit.
    On,
    /// All paths down: queueing until this deadline, then fail.
    Retrying { deadline_ms: u64 },
}

#[derive(Debug, Clone)]
struct Map {
    name: String,
    wwid: String,
    settings: Arc<Settings>,
    members: Vec<String>,
    groups: Vec<PathGroup>,
    /// Parameters last loaded (or read back when adopted).
    params: Option<String>,
    size: u64,
    in_kernel: bool,
    /// A create/reload/remove is in progress in the executor.
    applying: bool,
    dm_minor: Option<u32>,
    active_group: Option<usize>,
    pg_states: Vec<PgState>,
    queueing: Queueing,
    /// Queueing switched off by the operator or by no_path_retry timeout.
    queue_disabled: bool,
    queued_since_ms: Option<u64>,
    failback_at_ms: Option<u64>,
    suspended: bool,
    stats: MapStats,
    action: String,
    vendor: String,
    product: String,
    rev: String,
    remove_requested: bool,
    /// Path states read from the kernel for an adopted map, applied to
    /// paths as discovery finds them.
    adopted_dm: BTreeMap<DevT, bool>,
    /// A failed create or reload is retried from this time on, not on
    /// every event.
    retry_at_ms: Option<u64>,
    /// What the kernel held before the reload in flight (table, groups,
    /// size): a failed reload leaves that table live.
    before_reload: Option<(Option<String>, Vec<PathGroup>, u64)>,
    /// The last remove failed (the map is open): not tried again until
    /// one of its WWID's paths changes.
    remove_failed: bool,
    /// This map in the last snapshot (see `map_snapshot`).
    snap: Option<MapSnapCache>,
}

pub struct Engine {
    policy: Arc<dyn Policy>,
    defaults: Settings,
    /// The distinct resolved settings in use: a path's settings (with
    /// their origins map, several KiB) are stored once per array, not once
    /// per path.
    settings_pool: Vec<Arc<Settings>>,
    paths: BTreeMap<String, Path>,
    /// Maps by WWID.
    maps: BTreeMap<String, Map>,
    wwids: BTreeSet<String>,
    /// Identity conflicts already logged (once each).
    logged_conflicts: BTreeSet<String>,
    /// The engine's clock origin, for discovery's decision (Instant-based).
    epoch: Instant,
    /// `now_ms` is real time since `epoch` (see `use_real_clock`).
    real_clock: bool,
    /// user_friendly_names bindings, WWID -> alias.
    bindings: BTreeMap<String, String>,
    alias_prefix: String,
    now_ms: u64,
    pid: u32,
    busy: bool,
    /// Configuration, commands or adoption changed: the next reconcile
    /// re-decides every path and map.
    full_dirty: bool,
    /// WWIDs whose paths' checker state or prio changed, whose paths came,
    /// went or changed, or whose load finished: only these are reconciled
    /// when `full_dirty` is unset. A steady stream of unchanged checks
    /// costs O(1) per check, and a path joining a SAN of hundreds of maps
    /// re-decides its own WWID only (a full pass per new path made a hot
    /// add quadratic).
    dirty: BTreeSet<String>,
    /// Paths whose decision must be made again (added, changed, first
    /// checked outside any map), WWID or not.
    dirty_paths: BTreeSet<String>,
    /// WWIDs whose decision waits on time (smart find_multipaths,
    /// first-check grace): the 1 s tick re-decides them.
    time_waits: BTreeSet<String>,
    /// Something a snapshot shows has changed since the last take_changed().
    changed: bool,
    /// A path failed or came back (in dm or by its checker) since the last
    /// take_urgent(): watchers want to see that at once, not batched.
    urgent: bool,
    /// Earliest next_check_ms of a path not being checked (u64::MAX: none).
    next_due_ms: u64,
}

/// When a check is next due: `interval_s` from now, rounded down to a whole
/// second of the engine clock. Checks then fall due together on second
/// boundaries, as multipathd's ticks do, and go out in one batch instead of
/// one wake-up (and thread hand-off) per path; never later than the
/// interval.
fn check_slot(now_ms: u64, interval_s: u32) -> u64 {
    let due = now_ms + u64::from(interval_s.max(1)) * 1000;
    (due - due % 1000).max(now_ms + 1)
}

fn natural_key(dev: &str) -> (usize, String) {
    (dev.len(), dev.to_string())
}

/// san_path_err for one check of a mapped path: count failures, forget
/// one every `forget_rate` good checks, and hold a path that failed more
/// than `threshold` times out for `recovery_time` before it is reinstated
/// (shown as `delayed` meanwhile). Returns whether the path is held.
fn damp(p: &mut Path, d: &SanPathErr, prev: ChkState, usable: bool, now: u64) -> bool {
    if !usable {
        if prev.is_usable() || prev == ChkState::Delayed {
            p.failures = p.failures.saturating_add(1);
            p.good_checks = 0;
        }
        return false;
    }
    if p.dm == DmPathState::Active {
        p.good_checks += 1;
        if p.good_checks >= d.forget_rate {
            p.failures = p.failures.saturating_sub(1);
            p.good_checks = 0;
        }
        return false;
    }
    if p.failures <= d.threshold {
        return false;
    }
    let until = *p
        .held_until_ms
        .get_or_insert(now + u64::from(d.recovery_time) * 1000);
    if now < until {
        if p.chk != ChkState::Delayed {
            info!(path = %p.info.dev, failures = p.failures, threshold = d.threshold, "san_path_err: path failed too often, not reinstated for {} s", d.recovery_time);
        }
        p.chk = ChkState::Delayed;
        return true;
    }
    p.failures = 0;
    p.good_checks = 0;
    p.held_until_ms = None;
    false
}

/// A member path's reason: its map, and what its transport timeouts did.
fn member_why(map: &str, transport: Option<&str>) -> Arc<str> {
    match transport {
        Some(t) => format!("multipathed in map {map}; transport: {t}").into(),
        None => format!("multipathed in map {map}").into(),
    }
}

/// `natural_key` order without building keys.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Whether two path snapshots show the same thing: the shared parts by
/// pointer (the engine swaps them whole when they change).
fn same_path_snapshot(a: &PathSnapshot, b: &PathSnapshot) -> bool {
    let same_str = |x: &Arc<str>, y: &Arc<str>| Arc::ptr_eq(x, y) || x == y;
    Arc::ptr_eq(&a.info, &b.info)
        && a.chk_state == b.chk_state
        && a.dm_state == b.dm_state
        && same_str(&a.checker, &b.checker)
        && a.prio == b.prio
        && a.check_elapsed == b.check_elapsed
        && a.check_interval == b.check_interval
        && a.checked_at == b.checked_at
        && match (&a.map, &b.map) {
            (Some(x), Some(y)) => same_str(x, y),
            (None, None) => true,
            _ => false,
        }
        && a.marginal == b.marginal
        && same_str(&a.why, &b.why)
}

impl Engine {
    pub fn new(policy: Arc<dyn Policy>, pid: u32) -> Self {
        let defaults = policy.defaults();
        let alias_prefix = policy.alias_prefix();
        Engine {
            policy,
            defaults,
            settings_pool: Vec::new(),
            paths: BTreeMap::new(),
            maps: BTreeMap::new(),
            wwids: BTreeSet::new(),
            logged_conflicts: BTreeSet::new(),
            epoch: Instant::now(),
            real_clock: false,
            bindings: BTreeMap::new(),
            alias_prefix,
            now_ms: 0,
            pid,
            busy: false,
            full_dirty: true,
            dirty: BTreeSet::new(),
            dirty_paths: BTreeSet::new(),
            time_waits: BTreeSet::new(),
            changed: true,
            urgent: false,
            next_due_ms: u64::MAX,
        }
    }

    pub fn set_busy(&mut self, busy: bool) {
        self.busy = busy;
        self.changed = true;
    }

    /// Whether a snapshot shows a countdown that moves with time alone
    /// (a map queueing for no_path_retry's remaining seconds).
    pub fn has_countdown(&self) -> bool {
        self.maps
            .values()
            .any(|m| matches!(m.queueing, Queueing::Retrying { .. }))
    }

    /// Whether anything a snapshot shows changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Whether a path failed or came back since the last call.
    pub fn take_urgent(&mut self) -> bool {
        std::mem::take(&mut self.urgent)
    }

    /// When the next path check falls due (engine clock, ms), if any: the
    /// run loop wakes then, so a check is not delayed to the next tick.
    pub fn next_check_due_ms(&self) -> Option<u64> {
        (self.next_due_ms != u64::MAX).then_some(self.next_due_ms)
    }

    /// Swap in a new configuration: settings are re-resolved for every path
    /// and the maps whose table changes are reloaded.
    pub fn reconfigure(&mut self, policy: Arc<dyn Policy>, now_ms: u64) -> Vec<Action> {
        self.now_ms = self.now_ms.max(now_ms);
        self.policy = policy;
        self.defaults = self.policy.defaults();
        self.alias_prefix = self.policy.alias_prefix();
        self.settings_pool.clear();
        // A reconfigure writes every member's timeouts again, as
        // multipathd's does (someone may have changed them meanwhile).
        self.paths.values_mut().for_each(|p| p.tuned = None);
        let infos: Vec<Arc<PathInfo>> = self.paths.values().map(|p| p.info.clone()).collect();
        for info in infos {
            self.update_path_info(PathInfo::clone(&info));
        }
        self.full_dirty = true;
        self.changed = true;
        self.reconcile()
    }

    /// Handle a batch of events, then reconcile maps once.
    pub fn handle_batch(&mut self, events: Vec<Event>, now_ms: u64) -> Vec<Action> {
        self.now_ms = self.now_ms.max(now_ms);
        let mut actions = Vec::new();
        for ev in events {
            actions.extend(self.apply(ev));
        }
        actions.extend(self.reconcile());
        actions
    }

    pub fn handle(&mut self, event: Event, now_ms: u64) -> Vec<Action> {
        self.handle_batch(vec![event], now_ms)
    }

    fn polling_interval(&self) -> u32 {
        self.defaults.polling_interval.max(1)
    }

    fn apply(&mut self, ev: Event) -> Vec<Action> {
        match ev {
            Event::PathAdded(info) | Event::PathChanged(info) => {
                self.update_path_info(info);
                Vec::new()
            }
            Event::PathRemoved(dev) => {
                if let Some(p) = self.paths.remove(&dev) {
                    info!(path = %dev, "path removed");
                    if let Some(w) = &p.info.wwid {
                        self.paths_changed(w);
                    }
                    self.changed = true;
                }
                self.dirty_paths.remove(&dev);
                for m in self.maps.values_mut() {
                    m.members.retain(|d| d != &dev);
                }
                Vec::new()
            }
            Event::Probed {
                dev,
                chk,
                prio,
                msg,
                dev_state,
            } => self.on_probed(&dev, chk, prio, &msg, dev_state),
            Event::MapApplied {
                name,
                ok,
                removed,
                dm_minor,
                error,
            } => self.on_applied(&name, ok, removed, dm_minor, error),
            Event::DmStatus {
                name,
                paths,
                pg_states,
                active_group,
                queue_if_no_path,
                suspended,
            } => self.on_status(
                &name,
                &paths,
                pg_states,
                active_group,
                queue_if_no_path,
                suspended,
            ),
            Event::Adopt {
                name,
                wwid,
                params,
                size,
                dm_minor,
            } => {
                info!(map = %name, %wwid, "adopting existing map");
                self.full_dirty = true;
                self.changed = true;
                let settings = Arc::new(self.defaults.clone());
                self.maps.insert(
                    wwid.clone(),
                    Map::new(name, wwid, settings, size, Some(params), true, dm_minor),
                );
                Vec::new()
            }
            Event::KnownWwids(w) => {
                self.wwids = w.into_iter().collect();
                self.full_dirty = true;
                Vec::new()
            }
            Event::KnownBindings(b) => {
                self.bindings = b.into_iter().map(|(alias, wwid)| (wwid, alias)).collect();
                self.full_dirty = true;
                Vec::new()
            }
            Event::Tick => self.on_tick(),
            Event::TransportTuned { dev, report } => {
                self.on_transport_tuned(&dev, &report);
                Vec::new()
            }
        }
    }

    /// The shared copy of `s`. Settings differ per array model and per
    /// WWID with a multipaths entry, so the pool stays small; past a bound
    /// (every LUN with its own alias, say) new ones are not pooled.
    fn intern(&mut self, s: Settings) -> Arc<Settings> {
        const POOL_MAX: usize = 512;
        if let Some(a) = self.settings_pool.iter().find(|a| ***a == s) {
            return Arc::clone(a);
        }
        let a = Arc::new(s);
        if self.settings_pool.len() < POOL_MAX {
            self.settings_pool.push(Arc::clone(&a));
        }
        a
    }

    fn update_path_info(&mut self, info: PathInfo) {
        let resolved = self.policy.resolve(&info);
        let settings = self.intern(resolved);
        let dev = info.dev.clone();
        let pi = self.polling_interval();
        let now = self.now_ms;
        match self.paths.get_mut(&dev) {
            Some(p) => {
                // udev repeats change events for unchanged devices (e.g.
                // every LUN of a target on a rescan): nothing to redo.
                if *p.info == info && p.settings == settings {
                    return;
                }
                if p.info.dev_state != info.dev_state {
                    // A state change from udev: check at once.
                    p.next_check_ms = now;
                }
                // The old WWID's map loses this path.
                let old_wwid = p
                    .info
                    .wwid
                    .clone()
                    .filter(|w| info.wwid.as_ref() != Some(w));
                p.info = Arc::new(info);
                if p.settings.path_checker != settings.path_checker {
                    p.checker = settings.path_checker.as_str().into();
                }
                p.settings = settings;
                if let Some(w) = old_wwid {
                    self.paths_changed(&w);
                }
            }
            None => {
                info!(path = %dev, wwid = ?info.wwid, "path added");
                // Spread first checks over the interval after the initial one.
                let p = Path {
                    info: Arc::new(info),
                    checker: settings.path_checker.as_str().into(),
                    settings,
                    chk: ChkState::Undef,
                    dm: DmPathState::Undef,
                    prio: 0,
                    probed: false,
                    in_flight: false,
                    added_ms: now,
                    next_check_ms: now,
                    last_check_ms: now,
                    interval_s: pi,
                    why: "".into(),
                    map: None,
                    snap: None,
                    tuned: None,
                    transport_note: None,
                    failures: 0,
                    good_checks: 0,
                    held_until_ms: None,
                };
                self.paths.insert(dev.clone(), p);
            }
        }
        if let Some(w) = self.paths.get(&dev).and_then(|p| p.info.wwid.clone()) {
            self.paths_changed(&w);
        }
        self.dirty_paths.insert(dev);
        self.changed = true;
    }

    /// Bring maps in line with paths and schedule due checks. Everything is
    /// re-decided only when paths or configuration changed; otherwise just
    /// the maps marked dirty are looked at.
    fn reconcile(&mut self) -> Vec<Action> {
        let members_known =
            self.dirty_paths.is_empty() && self.dirty.iter().all(|w| self.maps.contains_key(w));
        let mut actions = if self.full_dirty {
            self.full_dirty = false;
            self.dirty.clear();
            self.dirty_paths.clear();
            self.time_waits.clear();
            self.reconcile_all()
        } else if members_known {
            // Only checks or loads changed: the members stand.
            let mut actions = Vec::new();
            for wwid in std::mem::take(&mut self.dirty) {
                let Some(m) = self.maps.get_mut(&wwid) else {
                    continue;
                };
                if !m.members.is_empty() {
                    let members = m.members.clone();
                    actions.extend(self.reconcile_map(&wwid, members));
                } else {
                    // Its last path went away.
                    actions.extend(remove_if_pathless(m));
                }
            }
            actions
        } else {
            self.reconcile_some()
        };
        actions.extend(self.schedule_probes());
        if actions.iter().any(|a| !matches!(a, Action::Probe(_))) {
            self.changed = true;
        }
        actions
    }

    /// A path of `wwid` came, went or changed: reconcile it, and let a map
    /// whose remove failed be tried again.
    fn paths_changed(&mut self, wwid: &str) {
        if let Some(m) = self.maps.get_mut(wwid) {
            m.remove_failed = false;
        }
        self.dirty.insert(wwid.to_string());
    }

    /// Re-decide the dirty paths and every path of the dirty WWIDs (a
    /// WWID's paths are decided together: find_multipaths counts siblings,
    /// identity conflicts compare them), then reconcile those WWIDs' maps.
    fn reconcile_some(&mut self) -> Vec<Action> {
        let mut wwids = std::mem::take(&mut self.dirty);
        let devs = std::mem::take(&mut self.dirty_paths);
        for d in &devs {
            if let Some(w) = self.paths.get(d).and_then(|p| p.info.wwid.clone()) {
                wwids.insert(w);
            }
        }
        for w in &wwids {
            self.time_waits.remove(w);
        }
        let wanted = self.decide_paths(Some((&devs, &wwids)));
        let mut actions = Vec::new();
        for wwid in &wwids {
            if wanted.contains_key(wwid) {
                continue;
            }
            if let Some(m) = self.maps.get_mut(wwid) {
                // No path of this WWID is multipathed any more.
                actions.extend(remove_if_pathless(m));
            }
        }
        for (wwid, members) in wanted {
            actions.extend(self.reconcile_map(&wwid, members));
        }
        actions
    }

    /// Decide which paths belong to which map and emit create/reload/remove.
    fn reconcile_all(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        let wanted = self.decide_paths(None);
        // Maps whose paths are all gone.
        let gone: Vec<String> = self
            .maps
            .iter()
            .filter(|(w, m)| !wanted.contains_key(*w) && m.in_kernel && !m.applying)
            .map(|(w, _)| w.clone())
            .collect();
        for wwid in gone {
            if let Some(m) = self.maps.get_mut(&wwid) {
                actions.extend(remove_if_pathless(m));
            }
        }
        // Maps whose remove was requested by the operator.
        actions.extend(self.maps.values_mut().filter_map(requested_remove));

        for (wwid, members) in wanted {
            actions.extend(self.reconcile_map(&wwid, members));
        }
        actions
    }

    /// Which paths are multipathed, grouped by WWID (blacklists, identity,
    /// identity conflicts, find_multipaths: discovery's pure decision);
    /// every other path gets its reason. `only`: just these paths and the
    /// paths of these WWIDs (None: every path).
    fn decide_paths(
        &mut self,
        only: Option<(&BTreeSet<String>, &BTreeSet<String>)>,
    ) -> BTreeMap<String, Vec<String>> {
        let now = self.epoch + Duration::from_millis(self.now_ms);
        let candidates: Vec<Candidate<'_>> = self
            .paths
            .iter()
            .filter(|(d, p)| match only {
                None => true,
                Some((devs, wwids)) => {
                    devs.contains(*d) || p.info.wwid.as_ref().is_some_and(|w| wwids.contains(w))
                }
            })
            .map(|(_, p)| p)
            .map(|p| Candidate {
                info: &p.info,
                first_seen: self.epoch + Duration::from_millis(p.added_ms),
                // A devices entry (built-in or configured) set something:
                // smart mode gives known hardware the full timeout.
                known_hardware: p
                    .settings
                    .origins
                    .values()
                    .any(|o| o.source.starts_with("devices")),
                identity_error: None,
            })
            .collect();
        let known = KnownWwids {
            in_wwids_file: self.wwids.clone(),
            with_map: self.maps.keys().cloned().collect(),
        };
        let filter: &dyn PathFilter = &*self.policy;
        let (verdicts, conflicts) = decide(&candidates, filter, &known, &self.defaults, now);
        for c in conflicts {
            if self.logged_conflicts.insert(c.wwid.clone()) {
                warn!(wwid = %c.wwid, conflict = ?c, "paths share a WWID but differ; leaving all out of maps");
            }
        }
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for v in verdicts {
            match v.decision {
                Decision::Multipath { wwid } => wanted.entry(wwid).or_default().push(v.dev),
                Decision::Wait { .. } | Decision::Skip => {
                    if let Some(p) = self.paths.get_mut(&v.dev) {
                        if matches!(v.decision, Decision::Wait { .. }) {
                            if let Some(w) = &p.info.wwid {
                                self.time_waits.insert(w.clone());
                            }
                        }
                        p.why = v.why.into();
                        p.map = None;
                    }
                }
            }
        }
        for members in wanted.values_mut() {
            members.sort_by_key(|d| natural_key(d));
        }
        wanted
    }

    fn reconcile_map(&mut self, wwid: &str, members: Vec<String>) -> Vec<Action> {
        let now = self.now_ms;
        // Only a wait that still holds puts it back (below).
        self.time_waits.remove(wwid);
        // Wait for first checks (bounded) so the first load has real groups.
        let waiting = members.iter().any(|d| {
            self.paths
                .get(d)
                .is_some_and(|p| !p.probed && now.saturating_sub(p.added_ms) < PROBE_GRACE_MS)
        });
        let Some(first) = members.first().and_then(|d| self.paths.get(d)) else {
            return Vec::new();
        };
        let settings = first.settings.clone();
        let size = first.info.size;
        let (vendor, product, rev) = (
            first.info.vendor.clone(),
            first.info.product.clone(),
            first.info.rev.clone(),
        );
        let attached = first.info.dh_state.clone();
        let existing = self.maps.get(wwid).map(|m| m.name.clone());
        let (name, new_binding) = match (existing, &settings.alias) {
            // A map keeps its name while it exists.
            (Some(n), _) => (n, None),
            (None, Some(a)) => (a.clone(), None),
            (None, None) if settings.user_friendly_names => match self.bindings.get(wwid) {
                Some(a) => (a.clone(), None),
                None => {
                    let a = next_alias(&self.alias_prefix, self.bindings.values());
                    (a.clone(), Some(a))
                }
            },
            (None, None) => (wwid.to_string(), None),
        };

        let kernel_dm = self
            .maps
            .get(wwid)
            .map(|m| m.adopted_dm.clone())
            .unwrap_or_default();
        for d in &members {
            if let Some(p) = self.paths.get_mut(d) {
                if p.dm == DmPathState::Undef {
                    if let Some(active) = p.info.devt.and_then(|t| kernel_dm.get(&t)) {
                        p.dm = if *active {
                            DmPathState::Active
                        } else {
                            DmPathState::Failed
                        };
                    }
                }
                if p.map.as_deref() != Some(name.as_str()) {
                    p.map = Some(name.as_str().into());
                    p.why = member_why(&name, p.transport_note.as_deref());
                }
            }
        }
        if waiting {
            self.time_waits.insert(wwid.to_string());
            if let Some(m) = self.maps.get_mut(wwid) {
                m.members = members;
            }
            return Vec::new();
        }
        // Before the table names them, as multipathd's setup_map does.
        let tune = self.tune_transport(&members, &settings);

        // The kernel cannot open an offline SCSI disk, and one such path
        // fails the whole load: leave it out until it is running again,
        // unless the live table already holds it (dm reuses its handle).
        let loaded = self.maps.get(wwid).and_then(|m| m.params.as_deref());
        let inputs: Vec<GroupInput> = members
            .iter()
            .filter_map(|d| self.paths.get(d))
            .filter(|p| {
                p.info.dev_state != DevState::Offline
                    || p.info.devt.is_some_and(|t| {
                        let t = t.to_string();
                        loaded.is_some_and(|l| l.split_whitespace().any(|w| w == t))
                    })
            })
            .filter_map(|p| {
                Some(GroupInput {
                    dev: p.info.dev.clone(),
                    devt: p.info.devt?,
                    prio: p.prio,
                    chk: p.chk,
                    serial: p.info.serial.clone(),
                    node_name: p.info.target_wwnn.clone(),
                    tpg_id: p.info.tpg_id,
                })
            })
            .collect();
        let groups = group_paths(
            &inputs,
            settings.path_grouping_policy,
            settings.rr_weight,
            settings.rr_min_io_rq,
        );
        let params = table::render(&settings, attached.as_deref(), &groups);

        let map = self.maps.entry(wwid.to_string()).or_insert_with(|| {
            Map::new(
                name.clone(),
                wwid.to_string(),
                settings.clone(),
                size,
                None,
                false,
                None,
            )
        });
        map.members = members;
        map.settings = settings;
        map.vendor = vendor;
        map.product = product;
        map.rev = rev;
        if map.remove_requested {
            // Asked while a load was in flight: issued once it is done.
            return requested_remove(map).into_iter().collect();
        }
        if map.applying || map.retry_at_ms.is_some_and(|t| t > now) || groups.is_empty() {
            // Loading already, or waiting to retry, or every path is
            // offline (nothing the kernel could load).
            return tune;
        }
        let mut actions = tune;
        let verdict = match map.params.as_deref() {
            Some(old) => table::compare(old, &params),
            None => TableMatch::ReloadNeeded,
        };
        let changed = verdict == TableMatch::ReloadNeeded || map.size != size;
        if !map.in_kernel {
            info!(map = %map.name, %wwid, %params, "creating map");
            map.applying = true;
            map.action = "create".into();
            map.groups = groups;
            map.params = Some(params.clone());
            map.size = size;
            actions.push(Action::CreateMap {
                name: map.name.clone(),
                uuid: format!("mpath-{wwid}"),
                size,
                params,
                skip_kpartx: map.settings.skip_kpartx,
            });
            if !self.wwids.contains(wwid) {
                self.wwids.insert(wwid.to_string());
                actions.push(Action::AddWwid(wwid.to_string()));
            }
            if let Some(alias) = new_binding {
                self.bindings.insert(wwid.to_string(), alias.clone());
                actions.push(Action::AddBinding {
                    alias,
                    wwid: wwid.to_string(),
                });
            }
        } else if changed {
            info!(map = %map.name, %params, "reloading map");
            map.applying = true;
            map.action = "reload".into();
            map.before_reload = Some((
                map.params.replace(params.clone()),
                std::mem::replace(&mut map.groups, groups),
                map.size,
            ));
            map.size = size;
            actions.push(Action::ReloadMap {
                name: map.name.clone(),
                size,
                params,
                skip_kpartx: map.settings.skip_kpartx,
            });
        } else {
            // Same table (maybe as the kernel rewrote it): keep groups for
            // display; a queueing difference is fixed by a message.
            map.groups = groups;
            if verdict == TableMatch::QueueingDiffers {
                let queue =
                    !matches!(map.settings.no_path_retry, NoPathRetry::Fail) && !map.queue_disabled;
                let msg = if queue {
                    "queue_if_no_path"
                } else {
                    "fail_if_no_path"
                };
                info!(map = %map.name, %msg, "queueing differs from the configuration");
                actions.push(Action::Message {
                    map: map.name.clone(),
                    msg: msg.into(),
                });
                map.params = Some(params);
            }
        }
        actions
    }

    /// Transport timeout writes for members whose wanted timeouts differ
    /// from what was last sent: a path joining a map, or settings changed.
    fn tune_transport(&mut self, members: &[String], map: &Settings) -> Vec<Action> {
        let mut actions = Vec::new();
        for d in members {
            let Some(p) = self.paths.get_mut(d) else {
                continue;
            };
            let s = &p.settings;
            let wanted = transport::plan(
                &transport::TimeoutSettings {
                    fast_io_fail: s.fast_io_fail_tmo.and_then(|v| u32::try_from(v).ok()),
                    dev_loss: s.dev_loss_tmo,
                    eh_deadline: s.eh_deadline,
                    no_path_retry: map.no_path_retry,
                    polling_interval: map.polling_interval,
                },
                p.info.hcil.map(|h| h.host),
                p.info.endpoint.as_ref(),
            );
            if p.tuned.as_ref() == Some(&wanted) {
                continue;
            }
            p.tuned = Some(wanted.clone());
            if wanted.writes.is_empty() {
                // Nothing to write; the notes still explain why.
                let report = transport::Report {
                    done: Vec::new(),
                    notes: wanted.notes,
                };
                self.on_transport_tuned(d, &report);
                continue;
            }
            actions.push(Action::TuneTransport {
                dev: d.clone(),
                plan: wanted,
            });
        }
        actions
    }

    fn on_transport_tuned(&mut self, dev: &str, report: &transport::Report) {
        let Some(p) = self.paths.get_mut(dev) else {
            return;
        };
        let note: Option<Arc<str>> = (!report.done.is_empty() || !report.notes.is_empty())
            .then(|| report.to_string().into());
        if p.transport_note == note {
            return;
        }
        p.transport_note = note;
        if let Some(map) = p.map.clone() {
            p.why = member_why(&map, p.transport_note.as_deref());
            self.changed = true;
        }
    }

    fn schedule_probes(&mut self) -> Vec<Action> {
        let now = self.now_ms;
        let mut actions = Vec::new();
        let mut next_due = u64::MAX;
        for p in self.paths.values_mut() {
            // Only paths that are (or may become) multipathed are checked.
            if p.in_flight || (p.map.is_none() && p.why.starts_with("blacklisted")) {
                continue;
            }
            if p.next_check_ms > now {
                next_due = next_due.min(p.next_check_ms);
                continue;
            }
            let timeout = p
                .settings
                .checker_timeout
                .or(p.info.timeout_secs)
                .unwrap_or(30)
                .max(1);
            p.in_flight = true;
            // detect_checker / detect_prio are applied by the resolver.
            let checker = p.settings.path_checker.clone();
            let prio = p.settings.prio.clone();
            actions.push(Action::Probe(Box::new(ProbeRequest {
                info: p.info.clone(),
                checker,
                timeout_secs: timeout,
                prio,
                prio_args: p.settings.prio_args.clone(),
                with_prio: true,
                exclusive_pref_bit: p.settings.exclusive_pref_bit,
                solo: !matches!(p.chk, ChkState::Up | ChkState::Ghost),
            })));
        }
        self.next_due_ms = next_due;
        actions
    }

    fn on_probed(
        &mut self,
        dev: &str,
        chk: ChkState,
        prio: Option<i32>,
        msg: &str,
        dev_state: Option<DevState>,
    ) -> Vec<Action> {
        let now = self.now_ms;
        let Some(p) = self.paths.get_mut(dev) else {
            return Vec::new();
        };
        p.in_flight = false;
        let first = !p.probed;
        p.probed = true;
        p.last_check_ms = now;
        let prev = p.chk;
        let prev_prio = p.prio;
        if chk != ChkState::Pending {
            p.chk = chk;
        }
        if let Some(pr) = prio {
            p.prio = pr;
        }
        let mut state_changed = false;
        if let Some(st) = dev_state.filter(|s| *s != p.info.dev_state) {
            // The sysfs state moved without a uevent (e.g. an operator's
            // `echo running > .../state`).
            Arc::make_mut(&mut p.info).dev_state = st;
            state_changed = true;
        }
        if first || state_changed || p.chk != prev || p.prio != prev_prio {
            // Groups, the table or the path's decision may change.
            self.changed = true;
            // A mapped path's checker turned: not a first check in a storm.
            self.urgent |= !first && p.map.is_some() && p.chk.is_usable() != prev.is_usable();
            match (&p.map, &p.info.wwid) {
                (Some(_), Some(w)) => {
                    self.dirty.insert(w.clone());
                }
                (_, w) => {
                    // Not in a map yet: its decision may change now.
                    if let Some(w) = w {
                        self.dirty.insert(w.clone());
                    }
                    self.dirty_paths.insert(dev.to_string());
                }
            }
        }
        let pi = p.settings.polling_interval.max(1);
        let max = p.settings.max_polling_interval.max(pi);
        p.interval_s = if chk == prev && chk == ChkState::Up {
            (p.interval_s.saturating_mul(2)).clamp(pi, max)
        } else {
            pi
        };
        if chk == ChkState::Pending {
            // Transitioning: look again soon.
            p.interval_s = 1;
        }
        p.next_check_ms = check_slot(now, p.interval_s);
        if prev != p.chk {
            info!(path = %dev, map = ?p.map, from = %prev, to = %p.chk, reason = %msg, "path checker state changed");
        }
        let Some(map_name) = p.map.as_deref().map(str::to_string) else {
            return Vec::new();
        };
        let usable = p.chk.is_usable();
        let dm = p.dm;
        let prio_changed = p.prio != prev_prio;
        let devt = p.info.devt;
        let mut actions = Vec::new();
        let Some(wwid) = self.wwid_of_map(&map_name) else {
            return actions;
        };
        let Some(m) = self.maps.get_mut(&wwid) else {
            return actions;
        };
        if !m.in_kernel {
            return actions;
        }
        // A path the kernel's table does not hold yet (it joined and the
        // reload is still to come or running) takes no message: dm would
        // refuse it with EINVAL. on_applied sets every member's state from
        // its check once the load is in. The table text decides, not the
        // dm state: an adopted map whose status could not be read holds
        // its paths with their dm state still unknown.
        let in_table = !m.applying && devt.is_some_and(|d| params_hold(m.params.as_deref(), d));
        let held = match (m.settings.san_path_err, self.paths.get_mut(dev)) {
            (Some(d), Some(p)) => damp(p, &d, prev, usable, now),
            _ => false,
        };
        if let Some(devt) = devt.filter(|_| in_table && !held) {
            let bad = matches!(p_state_kind(chk), StateKind::Bad);
            if usable && dm != DmPathState::Active {
                actions.push(Action::Message {
                    map: m.name.clone(),
                    msg: format!("reinstate_path {devt}"),
                });
                if let Some(p) = self.paths.get_mut(dev) {
                    p.dm = DmPathState::Active;
                }
                info!(path = %dev, map = %m.name, "reinstating path");
            } else if bad && dm != DmPathState::Failed {
                actions.push(Action::Message {
                    map: m.name.clone(),
                    msg: format!("fail_path {devt}"),
                });
                if dm == DmPathState::Active {
                    m.stats.path_faults += 1;
                }
                if let Some(p) = self.paths.get_mut(dev) {
                    p.dm = DmPathState::Failed;
                }
                warn!(path = %dev, map = %m.name, state = %chk, "failing path");
            }
        }
        if prio_changed && prev != ChkState::Undef {
            // A priority change may regroup the map: reconcile does it.
            info!(path = %dev, from = prev_prio, to = prio.unwrap_or(prev_prio), "path priority changed");
        }
        actions.extend(self.update_queueing(&wwid));
        actions.extend(self.maybe_failback(
            &wwid,
            usable && prev != ChkState::Up && prev != ChkState::Undef,
        ));
        actions
    }

    fn wwid_of_map(&self, name: &str) -> Option<String> {
        self.maps
            .iter()
            .find(|(_, m)| m.name == name)
            .map(|(w, _)| w.clone())
    }

    fn usable_paths(&self, m: &Map) -> usize {
        m.members
            .iter()
            .filter_map(|d| self.paths.get(d))
            .filter(|p| {
                p.chk.is_usable() || (p.chk == ChkState::Undef && p.dm != DmPathState::Failed)
            })
            .count()
    }

    /// no_path_retry: start, stop or expire queueing for a map.
    fn update_queueing(&mut self, wwid: &str) -> Vec<Action> {
        let now = self.now_ms;
        let pi = self.polling_interval();
        let Some(m) = self.maps.get(wwid) else {
            return Vec::new();
        };
        let usable = self.usable_paths(m);
        let Some(m) = self.maps.get_mut(wwid) else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        if usable == 0 {
            if m.queued_since_ms.is_none() {
                m.queued_since_ms = Some(now);
                warn!(map = %m.name, "all paths down");
                if let (NoPathRetry::Retries(n), Queueing::On) =
                    (m.settings.no_path_retry, m.queueing)
                {
                    let deadline_ms = now + u64::from(n) * u64::from(pi) * 1000;
                    m.queueing = Queueing::Retrying { deadline_ms };
                    info!(map = %m.name, retries = n, "queueing for no_path_retry checks");
                }
            }
        } else if let Some(since) = m.queued_since_ms.take() {
            m.stats.total_q_time += now.saturating_sub(since) / 1000;
            let want_queue = !matches!(m.settings.no_path_retry, NoPathRetry::Fail);
            if want_queue
                && (m.queueing == Queueing::Off || matches!(m.queueing, Queueing::Retrying { .. }))
            {
                if m.queueing == Queueing::Off && !m.queue_disabled_by_operator() {
                    actions.push(Action::Message {
                        map: m.name.clone(),
                        msg: "queue_if_no_path".into(),
                    });
                    info!(map = %m.name, "path back: queueing restored");
                }
                if !m.queue_disabled_by_operator() {
                    m.queueing = Queueing::On;
                    m.queue_disabled = false;
                }
            }
        }
        actions
    }

    fn maybe_failback(&mut self, wwid: &str, path_returned: bool) -> Vec<Action> {
        let now = self.now_ms;
        let Some(m) = self.maps.get(wwid) else {
            return Vec::new();
        };
        let best = m.groups.iter().position(|g| {
            g.paths
                .iter()
                .any(|(d, _, _)| self.paths.get(d).is_some_and(|p| p.chk.is_usable()))
        });
        let (Some(best), Some(active)) = (best, m.active_group) else {
            return Vec::new();
        };
        if best + 1 == active {
            return Vec::new();
        }
        let active_dead = m.groups.get(active.saturating_sub(1)).is_none_or(|g| {
            !g.paths
                .iter()
                .any(|(d, _, _)| self.paths.get(d).is_some_and(|p| p.chk.is_usable()))
        });
        let Some(m) = self.maps.get_mut(wwid) else {
            return Vec::new();
        };
        match m.settings.failback {
            Failback::Manual => Vec::new(),
            Failback::Followover if !active_dead => Vec::new(),
            Failback::Deferred(secs) if path_returned && m.failback_at_ms.is_none() => {
                m.failback_at_ms = Some(now + u64::from(secs) * 1000);
                Vec::new()
            }
            Failback::Deferred(_) => {
                if m.failback_at_ms.is_some_and(|t| t <= now) {
                    m.failback_at_ms = None;
                    m.switch_to(best)
                } else {
                    Vec::new()
                }
            }
            _ => {
                if path_returned || active_dead {
                    m.switch_to(best)
                } else {
                    Vec::new()
                }
            }
        }
    }

    fn on_applied(
        &mut self,
        name: &str,
        ok: bool,
        removed: bool,
        dm_minor: Option<u32>,
        error: Option<String>,
    ) -> Vec<Action> {
        let Some(wwid) = self.wwid_of_map(name) else {
            return Vec::new();
        };
        let Some(m) = self.maps.get_mut(&wwid) else {
            return Vec::new();
        };
        m.applying = false;
        self.changed = true;
        // Paths may have changed while the load ran.
        self.dirty.insert(wwid.clone());
        if removed {
            if ok {
                info!(map = %name, "map removed");
                let members = m.members.clone();
                self.maps.remove(&wwid);
                for d in members {
                    if let Some(p) = self.paths.get_mut(&d) {
                        p.map = None;
                        p.dm = DmPathState::Undef;
                    }
                }
            } else {
                warn!(map = %name, error = ?error, "could not remove map; it stays");
                m.remove_requested = false;
                m.remove_failed = true;
                // Keep it around; it is retried when its paths change.
                m.members.clear();
            }
            return Vec::new();
        }
        let before_reload = m.before_reload.take();
        if !ok {
            warn!(map = %name, error = ?error, "map load failed");
            if !m.in_kernel {
                // Forget the failed create.
                m.params = None;
            } else if let Some((params, groups, size)) = before_reload {
                // The old table is still live: messages and the next
                // compare go by it, so the reload is issued again.
                m.params = params;
                m.groups = groups;
                m.size = size;
            }
            // Retry a check interval later (a path's state may change
            // meanwhile), not at once on the next event.
            m.retry_at_ms =
                Some(self.now_ms + u64::from(self.defaults.polling_interval.max(1)) * 1000);
            return Vec::new();
        }
        let created = !m.in_kernel;
        m.in_kernel = true;
        m.retry_at_ms = None;
        m.stats.map_loads += 1;
        if dm_minor.is_some() {
            m.dm_minor = dm_minor;
        }
        m.queueing = if matches!(m.settings.no_path_retry, NoPathRetry::Fail) || m.queue_disabled {
            Queueing::Off
        } else {
            Queueing::On
        };
        // After a load the kernel has every path active: fail those the
        // checker knows are down.
        let members = m.members.clone();
        let map_name = m.name.clone();
        let mut actions = Vec::new();
        if created {
            actions.extend(
                members
                    .iter()
                    .map(|d| Action::TriggerUevent { dev: d.clone() }),
            );
        }
        for d in members {
            if let Some(p) = self.paths.get_mut(&d) {
                p.dm = DmPathState::Active;
                if matches!(p_state_kind(p.chk), StateKind::Bad) {
                    if let Some(devt) = p.info.devt {
                        actions.push(Action::Message {
                            map: map_name.clone(),
                            msg: format!("fail_path {devt}"),
                        });
                        p.dm = DmPathState::Failed;
                    }
                }
            }
        }
        actions.extend(self.update_queueing(&wwid));
        actions
    }

    fn on_status(
        &mut self,
        name: &str,
        paths: &[(DevT, bool)],
        pg_states: Vec<PgState>,
        active_group: Option<usize>,
        queue_if_no_path: Option<bool>,
        suspended: bool,
    ) -> Vec<Action> {
        let now = self.now_ms;
        let Some(wwid) = self.wwid_of_map(name) else {
            return Vec::new();
        };
        let Some(m) = self.maps.get_mut(&wwid) else {
            return Vec::new();
        };
        m.pg_states = pg_states;
        m.active_group = active_group;
        m.suspended = suspended;
        if let Some(q) = queue_if_no_path {
            if !q && m.queueing == Queueing::On {
                m.queueing = Queueing::Off;
            }
        }
        let map_name = m.name.clone();
        m.adopted_dm = paths.iter().copied().collect();
        let has_members = !m.members.is_empty();
        let members = m.members.clone();
        self.changed = true;
        let mut faults = 0;
        let mut moved = false;
        for (devt, active) in paths {
            let Some(p) = members
                .iter()
                .find(|d| {
                    self.paths
                        .get(*d)
                        .is_some_and(|p| p.info.devt == Some(*devt))
                })
                .cloned()
                .and_then(|d| self.paths.get_mut(&d))
            else {
                continue;
            };
            if p.map.as_deref() != Some(map_name.as_str()) {
                continue;
            }
            let new = if *active {
                DmPathState::Active
            } else {
                DmPathState::Failed
            };
            if p.dm == DmPathState::Active && new == DmPathState::Failed {
                // The kernel failed it on an I/O error: check it now.
                warn!(path = %p.info.dev, map = %map_name, "kernel failed path");
                faults += 1;
                p.next_check_ms = now;
                if p.chk.is_usable() {
                    p.chk = ChkState::Down;
                }
            }
            moved |= p.dm != new;
            p.dm = new;
        }
        self.urgent |= moved;
        if let Some(m) = self.maps.get_mut(&wwid) {
            m.stats.path_faults += faults;
        }
        if !has_members {
            // Adopted at start-up, paths not discovered yet.
            return Vec::new();
        }
        self.update_queueing(&wwid)
    }

    fn on_tick(&mut self) -> Vec<Action> {
        let now = self.now_ms;
        let mut actions = Vec::new();
        self.dirty.extend(self.time_waits.iter().cloned());
        for m in self.maps.values() {
            if m.retry_at_ms.is_some_and(|t| t <= now) {
                self.dirty.insert(m.wwid.clone());
            }
        }
        let wwids: Vec<String> = self.maps.keys().cloned().collect();
        for wwid in wwids {
            if let Some(m) = self.maps.get_mut(&wwid) {
                if let Queueing::Retrying { deadline_ms } = m.queueing {
                    if now >= deadline_ms {
                        warn!(map = %m.name, "no_path_retry exhausted: failing queued I/O");
                        m.queueing = Queueing::Off;
                        m.stats.q_timeouts += 1;
                        actions.push(Action::Message {
                            map: m.name.clone(),
                            msg: "fail_if_no_path".into(),
                        });
                    }
                }
            }
            if self
                .maps
                .get(&wwid)
                .is_some_and(|m| m.failback_at_ms.is_some())
            {
                actions.extend(self.maybe_failback(&wwid, false));
            }
        }
        actions
    }

    /// Operator commands. Returns the reply text and the actions to run.
    pub fn command(&mut self, cmd: MapCommand, now_ms: u64) -> (Result<(), String>, Vec<Action>) {
        self.now_ms = self.now_ms.max(now_ms);
        let mut actions = Vec::new();
        let res = match cmd {
            MapCommand::FailPath(dev) | MapCommand::ReinstatePath(dev)
                if !self.paths.contains_key(&dev) =>
            {
                Err("device not found".to_string())
            }
            MapCommand::FailPath(dev) => {
                let Some(p) = self.paths.get_mut(&dev) else {
                    return (Err("device not found".into()), actions);
                };
                p.chk = ChkState::Down;
                p.next_check_ms = self.now_ms + u64::from(p.interval_s) * 1000;
                if let (Some(map), Some(devt)) = (p.map.as_deref().map(str::to_string), p.info.devt)
                {
                    p.dm = DmPathState::Failed;
                    actions.push(Action::Message {
                        map,
                        msg: format!("fail_path {devt}"),
                    });
                }
                Ok(())
            }
            MapCommand::ReinstatePath(dev) => {
                let Some(p) = self.paths.get_mut(&dev) else {
                    return (Err("device not found".into()), actions);
                };
                p.next_check_ms = self.now_ms;
                if let (Some(map), Some(devt)) = (p.map.as_deref().map(str::to_string), p.info.devt)
                {
                    p.dm = DmPathState::Active;
                    p.chk = ChkState::Up;
                    actions.push(Action::Message {
                        map,
                        msg: format!("reinstate_path {devt}"),
                    });
                }
                Ok(())
            }
            MapCommand::SwitchGroup { map, group } => match self.find_map_mut(&map) {
                Some(m) if group >= 1 && group <= m.groups.len().max(1) => {
                    m.stats.switch_grp += 1;
                    actions.push(Action::Message {
                        map: m.name.clone(),
                        msg: format!("switch_group {group}"),
                    });
                    Ok(())
                }
                Some(_) => Err(format!("invalid path group {group}")),
                None => Err("device not found".into()),
            },
            MapCommand::DisableQueueing(target) | MapCommand::RestoreQueueing(target)
                if target
                    .as_ref()
                    .is_some_and(|t| self.find_map_mut(t).is_none()) =>
            {
                Err("device not found".into())
            }
            MapCommand::DisableQueueing(target) => {
                for m in self.maps.values_mut() {
                    if target.as_ref().is_none_or(|t| &m.name == t || &m.wwid == t) {
                        m.queue_disabled = true;
                        m.queueing = Queueing::Off;
                        actions.push(Action::Message {
                            map: m.name.clone(),
                            msg: "fail_if_no_path".into(),
                        });
                    }
                }
                Ok(())
            }
            MapCommand::RestoreQueueing(target) => {
                for m in self.maps.values_mut() {
                    if target.as_ref().is_none_or(|t| &m.name == t || &m.wwid == t) {
                        m.queue_disabled = false;
                        if !matches!(m.settings.no_path_retry, NoPathRetry::Fail) {
                            m.queueing = Queueing::On;
                            actions.push(Action::Message {
                                map: m.name.clone(),
                                msg: "queue_if_no_path".into(),
                            });
                        }
                    }
                }
                Ok(())
            }
            MapCommand::RemoveMap(name) => match self.find_map_mut(&name) {
                Some(m) => {
                    m.remove_requested = true;
                    Ok(())
                }
                None => Err("device not found".into()),
            },
            MapCommand::RemoveAllMaps => {
                for m in self.maps.values_mut() {
                    m.remove_requested = true;
                }
                Ok(())
            }
            MapCommand::ReloadMap(name) | MapCommand::AddMap(name) => {
                let has_paths = self
                    .paths
                    .values()
                    .any(|p| p.info.wwid.as_deref() == Some(name.as_str()));
                match self.find_map_mut(&name) {
                    Some(m) => {
                        // Forget the loaded table so reconcile reloads it,
                        // now, even during a failed load's back-off.
                        m.params = Some(String::new());
                        m.retry_at_ms = None;
                        Ok(())
                    }
                    None if has_paths => {
                        self.wwids.insert(name.clone());
                        actions.push(Action::AddWwid(name));
                        Ok(())
                    }
                    None => Err("device not found".into()),
                }
            }
            MapCommand::DelPath(dev) => {
                if self.paths.remove(&dev).is_some() {
                    for m in self.maps.values_mut() {
                        m.members.retain(|d| d != &dev);
                    }
                    Ok(())
                } else {
                    Err("device not found".into())
                }
            }
            MapCommand::ResetStats(target) => {
                for m in self.maps.values_mut() {
                    if target.as_ref().is_none_or(|t| &m.name == t || &m.wwid == t) {
                        m.stats = MapStats::default();
                    }
                }
                Ok(())
            }
        };
        if res.is_ok() {
            self.full_dirty = true;
            self.changed = true;
            actions.extend(self.reconcile());
        }
        (res, actions)
    }

    fn find_map_mut(&mut self, name: &str) -> Option<&mut Map> {
        self.maps
            .values_mut()
            .find(|m| m.name == name || m.wwid == name)
    }

    /// Resolve a map given by name, WWID or `dm-N`.
    pub fn map_name(&self, key: &str) -> Option<String> {
        self.maps
            .values()
            .find(|m| {
                m.name == key
                    || m.wwid == key
                    || m.dm_minor.is_some_and(|n| format!("dm-{n}") == key)
            })
            .map(|m| m.name.clone())
    }

    /// Put the engine on a daemon's real clock: `now_ms` counts from
    /// `start`. Path snapshots then carry when each check ran instead of
    /// seconds elapsed, so an unchanged path keeps its snapshot.
    pub fn use_real_clock(&mut self, start: Instant) {
        self.epoch = start;
        self.real_clock = true;
    }

    /// A path as a snapshot shows it: the previous snapshot's allocation
    /// when nothing in it changed (a failed path republishes one path, not
    /// a thousand).
    fn path_snapshot(p: &mut Path, now: u64, epoch: Option<Instant>) -> Arc<PathSnapshot> {
        let interval = p.interval_s.max(1);
        let (check_elapsed, checked_at) = match epoch {
            Some(e) => (0, Some(e + Duration::from_millis(p.last_check_ms))),
            None => {
                let s = now.saturating_sub(p.last_check_ms) / 1000;
                (u32::try_from(s).unwrap_or(u32::MAX).min(interval), None)
            }
        };
        let fresh = PathSnapshot {
            info: Arc::clone(&p.info),
            chk_state: p.chk,
            dm_state: p.dm,
            checker: Arc::clone(&p.checker),
            prio: p.prio,
            check_elapsed,
            check_interval: interval,
            checked_at,
            map: p.map.clone(),
            marginal: false,
            why: Arc::clone(&p.why),
        };
        match &p.snap {
            Some(old) if same_path_snapshot(old, &fresh) => Arc::clone(old),
            _ => Arc::clone(p.snap.insert(Arc::new(fresh))),
        }
    }

    /// Drop the snapshot caches: the next snapshot is built from scratch.
    #[cfg(test)]
    fn forget_snapshots(&mut self) {
        self.paths.values_mut().for_each(|p| p.snap = None);
        self.maps.values_mut().for_each(|m| m.snap = None);
    }

    /// The read-only view published to the control socket.
    pub fn snapshot(&mut self) -> DaemonSnapshot {
        let now = self.now_ms;
        let epoch = self.real_clock.then_some(self.epoch);
        let mut paths: Vec<Arc<PathSnapshot>> = self
            .paths
            .values_mut()
            .map(|p| Self::path_snapshot(p, now, epoch))
            .collect();
        paths.sort_unstable_by(|a, b| natural_cmp(&a.info.dev, &b.info.dev));
        // Hashed, not the BTreeMap: three string searches per path were
        // most of a snapshot at a thousand paths.
        let by_dev: HashMap<&str, &Arc<PathSnapshot>> =
            paths.iter().map(|p| (p.info.dev.as_str(), p)).collect();
        let maps: Vec<Arc<MapSnapshot>> = self
            .maps
            .values_mut()
            .filter(|m| m.in_kernel)
            .map(|m| map_snapshot(m, &by_dev, now))
            .collect();
        drop(by_dev);
        DaemonSnapshot {
            maps,
            paths,
            busy: self.busy,
            state: if self.busy {
                "configure".into()
            } else {
                "idle".into()
            },
            pid: self.pid,
            ..DaemonSnapshot::default()
        }
    }

    /// True when no path waits for its first check (within the grace
    /// period) and no map change is being applied.
    pub fn settled(&self) -> bool {
        let now = self.now_ms;
        !self.paths.values().any(|p| {
            !p.probed
                && now.saturating_sub(p.added_ms) < PROBE_GRACE_MS
                && !p.why.starts_with("blacklisted")
        }) && !self.maps.values().any(|m| m.applying)
    }

    /// Paths of a map (by name).
    pub fn map_members(&self, name: &str) -> Vec<String> {
        self.maps
            .values()
            .find(|m| m.name == name)
            .map(|m| m.members.clone())
            .unwrap_or_default()
    }

    /// Maps whose table asks the kernel to queue when no path is left.
    pub fn queueing_maps(&self) -> Vec<String> {
        self.maps
            .values()
            .filter(|m| m.in_kernel && !matches!(m.settings.no_path_retry, NoPathRetry::Fail))
            .map(|m| m.name.clone())
            .collect()
    }

    /// Names of the maps the engine manages in the kernel.
    pub fn map_names(&self) -> Vec<String> {
        self.maps
            .values()
            .filter(|m| m.in_kernel)
            .map(|m| m.name.clone())
            .collect()
    }
}

/// `show maps status`'s queueing column, kept as a value so a snapshot can
/// tell whether it changed without formatting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueueingShown {
    Off,
    On,
    /// Seconds left of a no_path_retry countdown.
    Secs(u64),
    /// no_path_retry N, not counting down.
    Checks(u32),
}

impl QueueingShown {
    fn of(m: &Map, now: u64) -> Self {
        match (m.settings.no_path_retry, m.queueing) {
            (NoPathRetry::Fail, _) | (_, Queueing::Off) => QueueingShown::Off,
            (NoPathRetry::Queue, _) => QueueingShown::On,
            (NoPathRetry::Retries(_), Queueing::Retrying { deadline_ms }) => {
                QueueingShown::Secs(deadline_ms.saturating_sub(now).div_ceil(1000))
            }
            (NoPathRetry::Retries(n), _) => QueueingShown::Checks(n),
        }
    }

    fn text(self) -> String {
        match self {
            QueueingShown::Off => "off".into(),
            QueueingShown::On => "on".into(),
            QueueingShown::Secs(s) => format!("{s} sec"),
            QueueingShown::Checks(n) => format!("{n} chk"),
        }
    }
}

/// A map's last snapshot and what it was built from beside its paths'
/// snapshots (see `map_snapshot`).
#[derive(Debug, Clone)]
struct MapSnapCache {
    snap: Arc<MapSnapshot>,
    settings: Arc<Settings>,
    params: Option<String>,
    queueing: QueueingShown,
}

/// The state of a map's i-th path group as shown: as dm reported it, else
/// as the table says (the first group, or the one switched to, is active).
fn pg_state_shown(m: &Map, i: usize) -> PgState {
    m.pg_states.get(i).copied().unwrap_or(match m.active_group {
        Some(a) if a == i + 1 => PgState::Active,
        None if i == 0 => PgState::Active,
        _ => PgState::Enabled,
    })
}

/// A map as a snapshot shows it, from its paths' snapshots: the last
/// snapshot's allocation when neither the map nor any of its paths'
/// snapshots changed, since at 256 maps rebuilding all of them for one
/// failed path was most of a publish.
fn map_snapshot(
    m: &mut Map,
    paths: &HashMap<&str, &Arc<PathSnapshot>>,
    now: u64,
) -> Arc<MapSnapshot> {
    let snap_of = |d: &String| paths.get(d.as_str()).copied();
    let (mut nr_active, mut write_prot) = (0, false);
    for p in m.members.iter().filter_map(snap_of) {
        nr_active += usize::from(p.dm_state == DmPathState::Active);
        write_prot |= p.info.read_only;
    }
    let queueing = QueueingShown::of(m, now);
    let dm_st = if m.suspended { "suspend" } else { "active" };
    if let Some(c) = &m.snap {
        let s = &c.snap;
        let same_groups = s.path_groups.len() == m.groups.len()
            && s.path_groups
                .iter()
                .zip(&m.groups)
                .enumerate()
                .all(|(i, (sg, g))| {
                    sg.prio == g.prio && sg.dm_state == pg_state_shown(m, i) && {
                        // By pointer: a path's snapshot is new when it changed.
                        let mut now_paths = g.paths.iter().filter_map(|(d, _, _)| snap_of(d));
                        sg.paths
                            .iter()
                            .all(|p| now_paths.next().is_some_and(|q| Arc::ptr_eq(p, q)))
                            && now_paths.next().is_none()
                    }
                });
        let same = Arc::ptr_eq(&c.settings, &m.settings)
            && c.params == m.params
            && c.queueing == queueing
            && s.name == m.name
            && s.wwid == m.wwid
            && s.dm_minor == m.dm_minor
            && s.vendor == m.vendor
            && s.product == m.product
            && s.rev == m.rev
            && s.size == m.size
            && s.nr_active == nr_active
            && s.write_prot == write_prot
            && s.dm_st == dm_st
            && s.stats == m.stats
            && same_groups;
        if same {
            return Arc::clone(&c.snap);
        }
    }
    let selector = table::normalize_selector(&m.settings.path_selector);
    let path_groups = m
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| PathGroupSnapshot {
            selector: selector.clone(),
            prio: g.prio,
            dm_state: pg_state_shown(m, i),
            marginal: false,
            paths: g
                .paths
                .iter()
                .filter_map(|(d, _, _)| snap_of(d).cloned())
                .collect(),
        })
        .collect();
    let params = m.params.as_deref();
    let snap = Arc::new(MapSnapshot {
        name: m.name.clone(),
        wwid: m.wwid.clone(),
        uuid: format!("mpath-{}", m.wwid),
        dm_minor: m.dm_minor,
        vendor: m.vendor.clone(),
        product: m.product.clone(),
        rev: m.rev.clone(),
        size: m.size,
        features: params.map(features_of).unwrap_or_else(|| "0".into()),
        hwhandler: params.map(hwhandler_of).unwrap_or_else(|| "0".into()),
        write_prot,
        failback: m.settings.failback,
        queueing: queueing.text(),
        nr_active,
        dm_st: dm_st.into(),
        // multipathd prints `create:`/`reload:` only while it acts
        // (multipath -v2), never in `show topology`.
        action: String::new(),
        stats: m.stats,
        path_groups,
    });
    m.snap = Some(MapSnapCache {
        snap: Arc::clone(&snap),
        settings: Arc::clone(&m.settings),
        params: m.params.clone(),
        queueing,
    });
    snap
}

impl Map {
    fn new(
        name: String,
        wwid: String,
        settings: Arc<Settings>,
        size: u64,
        params: Option<String>,
        in_kernel: bool,
        dm_minor: Option<u32>,
    ) -> Self {
        let queueing = if matches!(settings.no_path_retry, NoPathRetry::Fail) {
            Queueing::Off
        } else {
            Queueing::On
        };
        Map {
            name,
            wwid,
            settings,
            members: Vec::new(),
            groups: Vec::new(),
            params,
            size,
            in_kernel,
            applying: false,
            dm_minor,
            active_group: None,
            pg_states: Vec::new(),
            queueing,
            queue_disabled: false,
            queued_since_ms: None,
            failback_at_ms: None,
            suspended: false,
            stats: MapStats::default(),
            action: String::new(),
            vendor: String::new(),
            product: String::new(),
            rev: String::new(),
            remove_requested: false,
            adopted_dm: BTreeMap::new(),
            retry_at_ms: None,
            before_reload: None,
            remove_failed: false,
            snap: None,
        }
    }

    fn queue_disabled_by_operator(&self) -> bool {
        self.queue_disabled
    }

    fn switch_to(&mut self, best: usize) -> Vec<Action> {
        info!(map = %self.name, group = best + 1, "failback: switching path group");
        self.stats.switch_grp += 1;
        self.active_group = Some(best + 1);
        vec![Action::Message {
            map: self.name.clone(),
            msg: format!("switch_group {}", best + 1),
        }]
    }
}

/// The first free user_friendly_names alias: prefix + a, b, ..., z, aa,
/// ab, ... as multipath-tools numbers them.
pub fn next_alias<'a>(prefix: &str, taken: impl Iterator<Item = &'a String>) -> String {
    let taken: BTreeSet<&String> = taken.collect();
    (1u64..)
        .map(|n| format!("{prefix}{}", alias_suffix(n)))
        .find(|a| !taken.contains(a))
        .unwrap_or_else(|| prefix.to_string())
}

/// Bijective base 26: 1 -> a, 26 -> z, 27 -> aa.
fn alias_suffix(mut n: u64) -> String {
    let mut out = Vec::new();
    while n > 0 {
        n -= 1;
        out.push(b'a' + u8::try_from(n % 26).unwrap_or(0));
        n /= 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

enum StateKind {
    Good,
    Bad,
    Unknown,
}

fn p_state_kind(chk: ChkState) -> StateKind {
    match chk {
        ChkState::Up | ChkState::Ghost => StateKind::Good,
        ChkState::Down
        | ChkState::Shaky
        | ChkState::Timeout
        | ChkState::Delayed
        | ChkState::Disconnected => StateKind::Bad,
        ChkState::Undef | ChkState::Pending => StateKind::Unknown,
    }
}

/// Remove a map the operator asked to remove (`del map`), once no load
/// of it is in flight.
fn requested_remove(m: &mut Map) -> Option<Action> {
    if !m.remove_requested || !m.in_kernel || m.applying {
        return None;
    }
    m.applying = true;
    Some(Action::RemoveMap {
        name: m.name.clone(),
        deferred: false,
    })
}

/// Remove a map none of whose paths is multipathed any more (unless it was
/// adopted and its paths are not discovered yet, or a load is in flight).
fn remove_if_pathless(m: &mut Map) -> Vec<Action> {
    if m.remove_requested {
        return requested_remove(m).into_iter().collect();
    }
    if !m.members.is_empty() || m.remove_failed || !m.in_kernel || m.applying {
        return Vec::new();
    }
    // Adopted maps whose paths have not been seen yet stay.
    if m.params.is_some() && m.groups.is_empty() {
        return Vec::new();
    }
    info!(map = %m.name, "last path gone: removing map");
    let mut actions = Vec::new();
    if m.settings.flush_on_last_del && m.queueing != Queueing::Off {
        // Queued I/O would hold an open map forever: fail it, so the
        // remove can succeed once its opener lets go.
        info!(map = %m.name, "flush_on_last_del: disabling queueing");
        m.queue_disabled = true;
        m.queueing = Queueing::Off;
        actions.push(Action::Message {
            map: m.name.clone(),
            msg: "fail_if_no_path".into(),
        });
    }
    m.applying = true;
    m.remove_requested = true;
    // deferred_remove: an open map (a mounted filesystem) goes at last
    // close instead of staying pathless.
    actions.push(Action::RemoveMap {
        name: m.name.clone(),
        deferred: m.settings.deferred_remove,
    });
    actions
}

/// Whether a multipath table's params name the path `devt` (`maj:min`).
fn params_hold(params: Option<&str>, devt: DevT) -> bool {
    let want = devt.to_string();
    params.is_some_and(|p| p.split_whitespace().any(|t| t == want))
}

/// The `features` part of table parameters, as `show topology` prints it
/// (`1 queue_if_no_path`): its count and that many words. Runs per map per
/// snapshot, so it reads only the words it needs.
fn features_of(params: &str) -> String {
    counted_words(&mut params.split_whitespace())
}

/// The hardware handler words (`1 alua`), after the features.
fn hwhandler_of(params: &str) -> String {
    let mut words = params.split_whitespace();
    let n: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    words.by_ref().take(n).for_each(drop);
    counted_words(&mut words)
}

/// A count word and that many words after it, joined by spaces.
fn counted_words<'a>(words: &mut impl Iterator<Item = &'a str>) -> String {
    let Some(first) = words.next() else {
        return String::new();
    };
    let n: usize = first.parse().unwrap_or(0);
    let mut out = first.to_string();
    for w in words.take(n) {
        out.push(' ');
        out.push_str(w);
    }
    out
}

#[cfg(test)]
mod tests;
