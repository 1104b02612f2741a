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

use crate::discovery::filter::{decide, Candidate, Decision, WwidsKnown};
use crate::discovery::identity::NoWwid;
use crate::discovery::{BatchKind, PathBatch, PathEvent};
use crate::model::PathFilter;

use super::grouping::{group_paths, GroupInput, PathGroup};
use super::table;
use super::Policy;
use crate::dm::{DmMessage, MultipathTable, TableMatch};
use crate::pr::{PrFlag, PrKey, PrSync, PrSyncRequest};
use crate::transport;

mod commands;
mod feedback;
mod paths;
mod queueing;
mod reconcile;
mod reservation;
mod snapshot;
mod tracked;
mod types;

pub use types::{Action, Event, MapChange, MapCommand, ProbeRequest, ProbeResult};

use queueing::QueueState;

use snapshot::MapSnapCache;
use tracked::Tracked;

/// How long a new map waits for its paths' first check before it is
/// created anyway (a hung path must not hold back the map).
const PROBE_GRACE_MS: u64 = 10_000;

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
    /// What the checker said of a path it finds unusable, for `show paths
    /// reasons`.
    checker_note: Option<Arc<str>>,
    /// san_path_err damping: failures not yet forgotten, good checks
    /// towards forgetting one, and the end of a hold-out.
    failures: u32,
    good_checks: u32,
    held_until_ms: Option<u64>,
    /// This path in the last snapshot (see `Engine::path_snapshot`).
    snap: Option<Arc<PathSnapshot>>,
    /// The map's reservation key is known to be registered through this
    /// path (or the array holds none to copy): no PR step on its checks.
    pr_synced: bool,
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
    /// The table last loaded (or read back when adopted).
    table: Option<MultipathTable>,
    /// `reload map`: load the table again even if it is the same.
    force_reload: bool,
    size: u64,
    in_kernel: bool,
    /// A create/reload/remove is in progress in the executor.
    applying: bool,
    dm_minor: Option<u32>,
    active_group: Option<usize>,
    pg_states: Vec<PgState>,
    queue: QueueState,
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
    before_reload: Option<(Option<MultipathTable>, Vec<PathGroup>, u64)>,
    /// The last remove failed (the map is open): not tried again until
    /// one of its WWID's paths changes.
    remove_failed: bool,
    /// This map in the last snapshot (see `map_snapshot`).
    snap: Option<MapSnapCache>,
    /// Whether the map's reservation key is registered (`getprstatus`).
    pr: PrFlag,
}

pub struct Engine {
    policy: Arc<dyn Policy>,
    defaults: Settings,
    /// The distinct resolved settings in use: a path's settings (with
    /// their origins map, several KiB) are stored once per array, not once
    /// per path.
    settings_pool: Vec<Arc<Settings>>,
    paths: Tracked<Path>,
    /// Maps by WWID.
    maps: Tracked<Map>,
    /// Map name -> WWID: kernel feedback and checker results name a map,
    /// and must not scan every map to find it.
    map_wwids: HashMap<String, String>,
    /// WWIDs whose map the operator removed (`del map`): not made again
    /// until one of their paths changes, `add map`, or a reconfigure, as
    /// with multipathd.
    held: BTreeSet<String>,
    wwids: BTreeSet<String>,
    /// Identity conflicts already logged (once each).
    logged_conflicts: BTreeSet<String>,
    /// Why discovery found no identity for a path, by path: the reason
    /// `show paths reasons` gives.
    identity_errors: HashMap<String, NoWwid>,
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
    /// The prkeys file: keys set with `setprkey`, by WWID.
    prkeys: BTreeMap<String, PrKey>,
    /// Paths by WWID: deciding one WWID's paths must not scan every path.
    by_wwid: HashMap<String, BTreeSet<String>>,
    /// The last snapshot's path order: the i-th path shown is the
    /// `snap_order[i]`-th of `paths` (kept while no path comes or goes).
    snap_order: Vec<usize>,
    /// The prkeys the last snapshot showed (a change revisits every map).
    snap_prkeys: BTreeMap<String, PrKey>,
}

fn natural_key(dev: &str) -> (usize, String) {
    (dev.len(), dev.to_string())
}

/// A member path's reason: its map, what its transport timeouts did, and
/// a checker or prioritizer that runs in place of the configured one.
fn member_why(map: &str, p: &Path) -> Arc<str> {
    let mut why = format!("multipathed in map {map}");
    if let Some(t) = p.transport_note.as_deref() {
        why.push_str("; transport: ");
        why.push_str(t);
    }
    if let Some(c) = p.checker_note.as_deref() {
        why.push_str("; checker: ");
        why.push_str(c);
    }
    for note in crate::checker::substitute_note(&p.settings.path_checker)
        .into_iter()
        .chain(crate::prio::substitute_note(&p.settings.prio))
    {
        why.push_str("; ");
        why.push_str(&note);
    }
    why.into()
}

/// `natural_key` order without building keys.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Engine {
    pub fn new(policy: Arc<dyn Policy>, pid: u32) -> Self {
        let defaults = policy.defaults();
        let alias_prefix = policy.alias_prefix();
        Engine {
            policy,
            defaults,
            settings_pool: Vec::new(),
            paths: Tracked::default(),
            maps: Tracked::default(),
            map_wwids: HashMap::new(),
            held: BTreeSet::new(),
            wwids: BTreeSet::new(),
            logged_conflicts: BTreeSet::new(),
            identity_errors: HashMap::new(),
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
            prkeys: BTreeMap::new(),
            by_wwid: HashMap::new(),
            snap_order: Vec::new(),
            snap_prkeys: BTreeMap::new(),
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
            .any(|m| matches!(m.queue.mode, Queueing::Retrying { .. }))
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
    /// A new configuration: every path's settings are resolved again and
    /// maps whose table changes are reloaded; with `reload_all`, every map
    /// is (`reconfigure all`).
    pub fn reconfigure(
        &mut self,
        policy: Arc<dyn Policy>,
        now_ms: u64,
        reload_all: bool,
    ) -> Vec<Action> {
        self.now_ms = self.now_ms.max(now_ms);
        self.policy = policy;
        self.defaults = self.policy.defaults();
        self.alias_prefix = self.policy.alias_prefix();
        self.settings_pool.clear();
        self.held.clear();
        // A reconfigure writes every member's timeouts again, as
        // multipathd's does (someone may have changed them meanwhile).
        self.paths.values_mut().for_each(|p| p.tuned = None);
        let infos: Vec<Arc<PathInfo>> = self.paths.values().map(|p| p.info.clone()).collect();
        for info in infos {
            self.update_path_info(PathInfo::clone(&info));
        }
        if reload_all {
            self.maps.values_mut().for_each(|m| m.force_reload = true);
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
            Event::Paths(batch) => {
                self.apply_paths(batch);
                Vec::new()
            }
            Event::Probed(r) => {
                // The PR step ran before the check's result is acted on:
                // a path comes back registered.
                if let Some(sync) = r.pr {
                    self.on_pr_sync(&r.dev, sync);
                }
                self.on_probed(&r.dev, r.chk, r.prio, &r.msg, r.dev_state)
            }
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
                table,
                size,
                dm_minor,
            } => {
                info!(map = %name, %wwid, "adopting existing map");
                self.full_dirty = true;
                self.changed = true;
                let settings = Arc::new(self.defaults.clone());
                self.map_wwids.insert(name.clone(), wwid.clone());
                self.maps.insert(
                    wwid.clone(),
                    Map::new(name, wwid, settings, size, table, true, dm_minor),
                );
                Vec::new()
            }
            Event::KnownWwids(w) => {
                self.wwids = w.into_iter().collect();
                self.full_dirty = true;
                Vec::new()
            }
            Event::KnownPrKeys(k) => {
                self.prkeys = k;
                self.changed = true;
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

    fn wwid_of_map(&self, name: &str) -> Option<String> {
        self.map_wwids.get(name).cloned()
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

impl Map {
    fn new(
        name: String,
        wwid: String,
        settings: Arc<Settings>,
        size: u64,
        table: Option<MultipathTable>,
        in_kernel: bool,
        dm_minor: Option<u32>,
    ) -> Self {
        let queue = QueueState::new(settings.no_path_retry);
        Map {
            name,
            wwid,
            settings,
            members: Vec::new(),
            groups: Vec::new(),
            table,
            force_reload: false,
            size,
            in_kernel,
            applying: false,
            dm_minor,
            active_group: None,
            pg_states: Vec::new(),
            queue,
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
            pr: PrFlag::Unknown,
        }
    }

    fn switch_to(&mut self, best: usize) -> Vec<Action> {
        info!(map = %self.name, group = best + 1, "failback: switching path group");
        self.stats.switch_grp += 1;
        self.active_group = Some(best + 1);
        vec![Action::Message {
            map: self.name.clone(),
            msg: DmMessage::SwitchGroup(u32::try_from(best + 1).unwrap_or(u32::MAX)),
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

#[cfg(test)]
mod claim_tests;
#[cfg(test)]
mod pr_tests;
#[cfg(test)]
mod tests;
