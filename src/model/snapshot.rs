//! Snapshots: the read-only view the control socket formats. The policy
//! core publishes a fresh one after every change, so queries never wait.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PathSnapshot {
    /// Shared with the engine: publishing a snapshot does not copy it.
    pub info: std::sync::Arc<PathInfo>,
    pub chk_state: ChkState,
    pub dm_state: DmPathState,
    pub checker: std::sync::Arc<str>,
    pub prio: i32,
    /// Seconds since the last check, as of the snapshot, and the current
    /// interval, for the `next_check` bar.
    pub check_elapsed: u32,
    pub check_interval: u32,
    /// When the last check ran, on a daemon's real clock: the bar counts
    /// from it instead of `check_elapsed`, so a path's snapshot does not
    /// change with time and the daemon need not republish every path each
    /// second to keep the bar moving.
    #[serde(skip)]
    pub checked_at: Option<std::time::Instant>,
    /// Map this path belongs to, if any.
    pub map: Option<std::sync::Arc<str>>,
    pub marginal: bool,
    /// Why the path is or is not multipathed.
    pub why: std::sync::Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PathGroupSnapshot {
    pub selector: String,
    pub prio: i32,
    pub dm_state: PgState,
    pub marginal: bool,
    /// Shared with `DaemonSnapshot::paths`.
    pub paths: Vec<std::sync::Arc<PathSnapshot>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MapStats {
    pub path_faults: u64,
    /// Paths the daemon reinstated (their checker found them good again).
    pub path_reinstates: u64,
    pub switch_grp: u64,
    pub map_loads: u64,
    pub total_q_time: u64,
    pub q_timeouts: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MapSnapshot {
    pub name: String,
    pub wwid: String,
    /// DM uuid, `mpath-<wwid>`.
    pub uuid: String,
    /// dm minor: the sysfs name is `dm-<minor>`.
    pub dm_minor: Option<u32>,
    pub vendor: String,
    pub product: String,
    pub rev: String,
    /// Size in 512-byte sectors.
    pub size: u64,
    /// The kernel's features string, e.g. `1 queue_if_no_path`.
    pub features: String,
    pub hwhandler: String,
    pub write_prot: bool,
    pub failback: Failback,
    /// `on`, `off`, `-`, `N sec`, `N chk` as `show maps status` prints it.
    pub queueing: String,
    /// Number of active paths.
    pub nr_active: usize,
    /// `active` or `suspend`.
    pub dm_st: String,
    /// Last action on this map (`create`, `reload`, or empty).
    pub action: String,
    pub stats: MapStats,
    pub path_groups: Vec<PathGroupSnapshot>,
    /// Whether the map's reservation key is registered (`getprstatus`).
    pub pr: crate::pr::PrFlag,
    /// The reservation key in force (`getprkey`).
    pub pr_key: Option<crate::pr::PrKey>,
}

impl MapSnapshot {
    pub fn sysfs_name(&self) -> String {
        match self.dm_minor {
            Some(m) => format!("dm-{m}"),
            None => "#".to_string(),
        }
    }
}

/// A histogram of checker durations (Prometheus' cumulative buckets are
/// made when printed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CheckLatency {
    /// Checks that took at most `CheckLatency::BOUNDS_MS[i]`, and more
    /// than the bound before (the last counts the rest).
    pub counts: [u64; 13],
    pub sum_ms: u64,
}

impl CheckLatency {
    /// Upper bounds of the buckets, ms (the last bucket is +Inf).
    pub const BOUNDS_MS: [u64; 12] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];

    pub fn record(&mut self, ms: u32) {
        let ms = u64::from(ms);
        let i = Self::BOUNDS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(Self::BOUNDS_MS.len());
        self.counts[i] += 1;
        self.sum_ms += ms;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A [`CheckLatency`] the daemon keeps counting into while snapshots
/// that share it are read.
#[derive(Debug, Clone, Default)]
pub struct LiveCheckLatency(std::sync::Arc<std::sync::Mutex<CheckLatency>>);

impl LiveCheckLatency {
    pub fn record(&self, ms: u32) {
        if let Ok(mut h) = self.0.lock() {
            h.record(ms);
        }
    }

    /// The counts now.
    pub fn get(&self) -> CheckLatency {
        self.0.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

impl PartialEq for LiveCheckLatency {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.get() == other.get()
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DaemonSnapshot {
    /// A map unchanged since the last snapshot (nor any of its paths) is
    /// the same allocation as in it.
    pub maps: Vec<std::sync::Arc<MapSnapshot>>,
    /// Every known path, in or out of maps. A path unchanged since the
    /// last snapshot is the same allocation as in it.
    pub paths: Vec<std::sync::Arc<PathSnapshot>>,
    /// Reconfigure or a large change is being applied.
    pub busy: bool,
    /// How long path checks took, since the daemon started: live, not
    /// frozen with the snapshot (checks that change nothing publish none).
    #[serde(skip)]
    pub check_latency: LiveCheckLatency,
    /// `idle`, `running`, `configure`, `shutdown`.
    pub state: String,
    pub pid: u32,
    /// `show config` text (effective configuration, multipathd layout).
    pub config_dump: std::sync::Arc<str>,
    /// `show blacklist` text.
    pub blacklist_dump: std::sync::Arc<str>,
    /// `show devices` text.
    pub devices_dump: std::sync::Arc<str>,
    /// `show config local` text, rendered on the first query that asks.
    #[serde(skip)]
    pub config_local_dump: Deferred,
    /// `show topology` text, rendered by the first query of this snapshot
    /// (it has no time-dependent field): at 256 maps rendering costs ~1 ms
    /// on the host, ten times that under emulation, and clients such as
    /// XenServer's poll it.
    #[serde(skip)]
    pub topology: Rendered,
}

/// Text rendered once from a published (immutable) snapshot. A clone starts
/// empty, since a clone may be changed; equality ignores it.
#[derive(Default)]
pub struct Rendered(std::sync::OnceLock<String>);

impl Rendered {
    pub fn get_or_render(&self, render: impl FnOnce() -> String) -> &str {
        self.0.get_or_init(render)
    }
}

impl Clone for Rendered {
    fn clone(&self) -> Self {
        Rendered::default()
    }
}

impl PartialEq for Rendered {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Rendered(cached)"
        } else {
            "Rendered(empty)"
        })
    }
}

/// Text rendered by the first query that asks for it and kept by every
/// snapshot that shares it: for texts that cost too much to render on each
/// publish and are rarely asked for (`show config local` compiles the
/// hardware table's patterns).
#[derive(Clone)]
pub struct Deferred(std::sync::Arc<DeferredText>);

struct DeferredText {
    text: std::sync::OnceLock<String>,
    render: Box<dyn Fn() -> String + Send + Sync>,
}

impl Deferred {
    pub fn new(render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        Deferred(std::sync::Arc::new(DeferredText {
            text: std::sync::OnceLock::new(),
            render: Box::new(render),
        }))
    }

    pub fn text(&self) -> &str {
        self.0.text.get_or_init(|| (self.0.render)())
    }
}

impl Default for Deferred {
    fn default() -> Self {
        Deferred::new(String::new)
    }
}

impl PartialEq for Deferred {
    /// The same text (rendering both if need be).
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.text() == other.text()
    }
}

impl fmt::Debug for Deferred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Deferred")
    }
}
