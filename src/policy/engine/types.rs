//! The engine's inputs and outputs: events, actions, operator commands.

use super::*;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Paths discovery found, changed or lost, coalesced: each event is
    /// applied in order, then maps are reconciled once. The notes say why
    /// a path has no identity, for `show paths reasons`.
    Paths(PathBatch),
    /// A checker (and, when asked, prioritizer) finished for a path.
    Probed(ProbeResult),
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
        /// None when the kernel's table could not be read as a multipath
        /// table: the next pass loads ours.
        table: Option<MultipathTable>,
        size: u64,
        dm_minor: Option<u32>,
    },
    /// The WWIDs recorded in the wwids file.
    KnownWwids(Vec<String>),
    /// The keys in the prkeys file, by WWID.
    KnownPrKeys(BTreeMap<String, PrKey>),
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

/// What a check (and prio) of a path found.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    pub dev: String,
    pub chk: ChkState,
    pub prio: Option<i32>,
    pub msg: String,
    /// The SCSI device state the probe read from sysfs, when it did.
    pub dev_state: Option<DevState>,
    /// What the persistent-reservation step did, when it was asked for
    /// and the path checked good.
    pub pr: Option<PrSync>,
    /// How long the checker took, when it answered.
    pub check_ms: Option<u32>,
}

/// One check (and prio) of a path, for the executor's prober.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRequest {
    pub info: Arc<PathInfo>,
    /// The configured checker, or tur where mpathd does not implement the
    /// configured one (the path's reasons and the config lint say so).
    pub checker: crate::checker::CheckerKind,
    pub timeout_secs: u32,
    /// The prioritizer run after the check.
    pub prio: crate::prio::PrioSpec,
    /// The path's last check was not good (or there was none): check it on
    /// its own, since a hung check would hold up checks batched with it.
    pub solo: bool,
    /// Register the map's reservation key through the path if it checks
    /// good and the array holds the key (see [`crate::pr::scsi::sync_path`]).
    pub pr: Option<PrSyncRequest>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run the checker and the prioritizer on a path.
    Probe(Box<ProbeRequest>),
    /// Create, reload or remove a map.
    Map(MapChange),
    Message {
        map: String,
        msg: DmMessage,
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
    /// Set (Some) or unset a map's key in the prkeys file.
    SetPrKey {
        wwid: String,
        key: Option<PrKey>,
    },
}

/// A change of one map in the kernel.
#[derive(Debug, Clone, PartialEq)]
pub enum MapChange {
    Create {
        name: String,
        uuid: String,
        size: u64,
        table: MultipathTable,
        /// No partition maps (kpartx) for this map.
        skip_kpartx: bool,
    },
    Reload {
        name: String,
        size: u64,
        table: MultipathTable,
        skip_kpartx: bool,
    },
    /// Partition maps first, then the map; `deferred`: at last close if
    /// it is open.
    Remove { name: String, deferred: bool },
}

impl MapChange {
    pub fn name(&self) -> &str {
        match self {
            MapChange::Create { name, .. }
            | MapChange::Reload { name, .. }
            | MapChange::Remove { name, .. } => name,
        }
    }
}

/// Operator commands the engine handles (from the control socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapCommand {
    FailPath(String),
    ReinstatePath(String),
    SwitchGroup {
        map: String,
        group: usize,
    },
    DisableQueueing(Option<String>),
    RestoreQueueing(Option<String>),
    RemoveMap(String),
    RemoveAllMaps,
    ReloadMap(String),
    AddMap(String),
    DelPath(String),
    ResetStats(Option<String>),
    /// mpathpersist registered the map's key: keep it registered. The
    /// paths named are registered already.
    SetPrStatus {
        map: String,
        registered: Vec<String>,
    },
    UnsetPrStatus(String),
    /// `setprkey` (Some) / `unsetprkey`.
    SetPrKey {
        map: String,
        key: Option<PrKey>,
    },
}

impl Event {
    /// One path event as a batch of its own (`add path`, a resize's
    /// re-read, tests).
    pub fn path(ev: PathEvent) -> Event {
        let mut batch = PathBatch::new(BatchKind::Uevents);
        batch.events.push(ev);
        Event::Paths(batch)
    }

    pub fn path_added(info: PathInfo) -> Event {
        Event::path(PathEvent::Add(info))
    }

    pub fn path_changed(info: PathInfo) -> Event {
        Event::path(PathEvent::Change(info))
    }

    pub fn path_removed(dev: String) -> Event {
        Event::path(PathEvent::Remove(dev))
    }

    /// The kernel's view of a live map, as the engine takes it.
    pub fn dm_status(name: &str, live: crate::dm::LiveMap) -> Event {
        let st = live.status;
        Event::DmStatus {
            name: name.to_string(),
            paths: st
                .groups
                .iter()
                .flat_map(|g| g.paths.iter())
                .map(|p| (p.dev, p.state == DmPathState::Active))
                .collect(),
            pg_states: st.groups.iter().map(|g| g.state).collect(),
            active_group: st.active_group().and_then(|g| usize::try_from(g).ok()),
            queue_if_no_path: live.queue_if_no_path,
            suspended: live.suspended,
        }
    }
}
