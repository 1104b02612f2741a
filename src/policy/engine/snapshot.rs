//! Snapshots: the read-only view queries are answered from, rebuilt only
//! for what changed.

use std::collections::HashSet;

use super::tracked::Touched;
use super::*;

/// Whether two path snapshots show the same thing: the shared parts by
/// pointer (the engine swaps them whole when they change).
pub(super) fn same_path_snapshot(a: &PathSnapshot, b: &PathSnapshot) -> bool {
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

/// `show maps status`'s queueing column, kept as a value so a snapshot can
/// tell whether it changed without formatting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QueueingShown {
    Off,
    On,
    /// Seconds left of a no_path_retry countdown.
    Secs(u64),
    /// no_path_retry N, not counting down.
    Checks(u32),
}

impl QueueingShown {
    fn of(m: &Map, now: u64) -> Self {
        match (m.settings.no_path_retry, m.queue.mode) {
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
pub(super) struct MapSnapCache {
    snap: Arc<MapSnapshot>,
    settings: Arc<Settings>,
    table: Option<MultipathTable>,
    queueing: QueueingShown,
}

/// The state of a map's i-th path group as shown: as dm reported it, else
/// as the table says (the first group, or the one switched to, is active).
pub(super) fn pg_state_shown(m: &Map, i: usize) -> PgState {
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
/// What a map's snapshot shows that the map does not hold as is.
struct Shown {
    nr_active: usize,
    write_prot: bool,
    dm_st: &'static str,
    pr: PrFlag,
    pr_key: Option<PrKey>,
}

/// Whether the cached snapshot still shows `m` (paths compared by
/// pointer: a path's snapshot is new when it changed).
fn unchanged<'a>(
    c: &MapSnapCache,
    m: &Map,
    shown: &Shown,
    snap_of: &dyn Fn(&String) -> Option<&'a Arc<PathSnapshot>>,
) -> bool {
    let s = &c.snap;
    let same_groups = s.path_groups.len() == m.groups.len()
        && s.path_groups
            .iter()
            .zip(&m.groups)
            .enumerate()
            .all(|(i, (sg, g))| {
                sg.prio == g.prio && sg.dm_state == pg_state_shown(m, i) && {
                    let mut now_paths = g.paths.iter().filter_map(|(d, _, _)| snap_of(d));
                    sg.paths
                        .iter()
                        .all(|p| now_paths.next().is_some_and(|q| Arc::ptr_eq(p, q)))
                        && now_paths.next().is_none()
                }
            });
    Arc::ptr_eq(&c.settings, &m.settings)
        && c.table == m.table
        && s.name == m.name
        && s.wwid == m.wwid
        && s.dm_minor == m.dm_minor
        && s.vendor == m.vendor
        && s.product == m.product
        && s.rev == m.rev
        && s.size == m.size
        && s.nr_active == shown.nr_active
        && s.write_prot == shown.write_prot
        && s.dm_st == shown.dm_st
        && s.stats == m.stats
        && s.pr == shown.pr
        && s.pr_key == shown.pr_key
        && same_groups
}

pub(super) fn map_snapshot<'a>(
    m: &mut Map,
    snap_of: &dyn Fn(&String) -> Option<&'a Arc<PathSnapshot>>,
    now: u64,
    prkeys: &BTreeMap<String, PrKey>,
) -> Arc<MapSnapshot> {
    let pr_key = super::reservation::map_key(&m.settings, &m.wwid, prkeys);
    // Without a key there is nothing the array could hold for this host.
    let pr = match (pr_key, m.pr) {
        (None, PrFlag::Unknown) => PrFlag::Unset,
        (_, f) => f,
    };
    let (mut nr_active, mut write_prot) = (0, false);
    for p in m.members.iter().filter_map(snap_of) {
        nr_active += usize::from(p.dm_state == DmPathState::Active);
        write_prot |= p.info.read_only;
    }
    let queueing = QueueingShown::of(m, now);
    let dm_st = if m.suspended { "suspend" } else { "active" };
    let shown = Shown {
        nr_active,
        write_prot,
        dm_st,
        pr,
        pr_key,
    };
    if let Some(c) = &m.snap {
        if c.queueing == queueing && unchanged(c, m, &shown, snap_of) {
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
    let table = m.table.as_ref();
    let snap = Arc::new(MapSnapshot {
        name: m.name.clone(),
        wwid: m.wwid.clone(),
        uuid: format!("mpath-{}", m.wwid),
        dm_minor: m.dm_minor,
        vendor: m.vendor.clone(),
        product: m.product.clone(),
        rev: m.rev.clone(),
        size: m.size,
        features: table.map_or_else(|| "0".into(), |t| t.features.to_string()),
        hwhandler: table.map_or_else(|| "0".into(), |t| t.hwhandler.to_string()),
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
        pr,
        pr_key,
    });
    m.snap = Some(MapSnapCache {
        snap: Arc::clone(&snap),
        settings: Arc::clone(&m.settings),
        table: m.table.clone(),
        queueing,
    });
    snap
}

impl Engine {
    /// A path as a snapshot shows it: the previous snapshot's allocation
    /// when nothing in it changed (a failed path republishes one path, not
    /// a thousand).
    pub(super) fn path_snapshot(
        p: &mut Path,
        now: u64,
        epoch: Option<Instant>,
    ) -> Arc<PathSnapshot> {
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
    pub(super) fn forget_snapshots(&mut self) {
        self.paths.values_mut().for_each(|p| p.snap = None);
        self.maps.values_mut().for_each(|m| m.snap = None);
        self.snap_order.clear();
    }

    /// The read-only view published to the control socket. Only the paths
    /// and maps touched since the last one are looked at again (with the
    /// maps those paths left or joined); the rest are the last snapshot's
    /// allocations, in the last snapshot's order.
    pub fn snapshot(&mut self) -> DaemonSnapshot {
        let now = self.now_ms;
        let epoch = self.real_clock.then_some(self.epoch);
        let mut touched = self.paths.take_touched();
        let mut maps_touched = self.maps.take_touched();
        if epoch.is_none() {
            // On a simulated clock a path shows seconds since its check,
            // which age without any event.
            touched = Touched::All;
        }
        if epoch.is_none() || self.snap_prkeys != self.prkeys {
            self.snap_prkeys.clone_from(&self.prkeys);
            maps_touched = Touched::All;
        }
        // Names of the maps a path joined or left, or whose path changed
        // (not needed when every map is looked at again anyway).
        let track_hits = !matches!(maps_touched, Touched::All);
        let mut hit: HashSet<Arc<str>> = HashSet::new();
        let mut refresh = |p: &mut Path| {
            let old = p.snap.clone();
            let new = Self::path_snapshot(p, now, epoch);
            if track_hits && !old.as_ref().is_some_and(|o| Arc::ptr_eq(o, &new)) {
                hit.extend(old.and_then(|o| o.map.clone()));
                hit.extend(new.map.clone());
            }
        };
        match &touched {
            Touched::All => self.paths.values_mut_unshown().for_each(&mut refresh),
            Touched::Some(devs) => {
                for d in devs {
                    if let Some(p) = self.paths.get_mut_unshown(d) {
                        refresh(p);
                    }
                }
            }
        }
        let paths = self.ordered_path_snapshots(now, epoch);
        let hit_wwids: HashSet<&str> = hit
            .iter()
            .filter_map(|n| self.map_wwids.get(&**n).map(String::as_str))
            .collect();
        let (engine_paths, prkeys) = (&self.paths, &self.prkeys);
        let snap_of = |d: &String| engine_paths.get(d).and_then(|p| p.snap.as_ref());
        let maps: Vec<Arc<MapSnapshot>> = self
            .maps
            .values_mut_unshown()
            .filter(|m| m.in_kernel)
            .map(|m| match &m.snap {
                // A countdown shows seconds left: it ages too.
                Some(c)
                    if !maps_touched.contains(&m.wwid)
                        && !hit_wwids.contains(m.wwid.as_str())
                        && !matches!(m.queue.mode, Queueing::Retrying { .. }) =>
                {
                    Arc::clone(&c.snap)
                }
                _ => map_snapshot(m, &snap_of, now, prkeys),
            })
            .collect();
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

    /// Every path's current snapshot in natural device order (sda, sdb,
    /// ..., sdz, sdaa), the order sorted again only when paths came or
    /// went.
    fn ordered_path_snapshots(
        &mut self,
        now: u64,
        epoch: Option<Instant>,
    ) -> Vec<Arc<PathSnapshot>> {
        let by_key: Vec<Arc<PathSnapshot>> = self
            .paths
            .values_mut_unshown()
            .map(|p| match &p.snap {
                Some(s) => Arc::clone(s),
                None => Self::path_snapshot(p, now, epoch),
            })
            .collect();
        if self.paths.take_keys_changed() || self.snap_order.len() != by_key.len() {
            let mut order: Vec<usize> = (0..by_key.len()).collect();
            order.sort_unstable_by(|&a, &b| natural_cmp(&by_key[a].info.dev, &by_key[b].info.dev));
            self.snap_order = order;
        }
        self.snap_order
            .iter()
            .map(|&i| Arc::clone(&by_key[i]))
            .collect()
    }
}
