//! Domain types shared by every layer: what a path is, what a map is, the
//! states they can be in, and the resolved settings the policy core acts on.
//!
//! This module is the contract between the kernel edge (discovery, SG_IO,
//! device-mapper), the pure policy core and the control socket's formatters.
//! It holds data only: no I/O, no policy.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A block device number, printed `major:minor` as device-mapper tables use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DevT {
    pub major: u32,
    pub minor: u32,
}

impl DevT {
    pub fn new(major: u32, minor: u32) -> Self {
        DevT { major, minor }
    }
}

impl fmt::Display for DevT {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

impl FromStr for DevT {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .split_once(':')
            .ok_or_else(|| format!("'{s}' is not major:minor"))?;
        let major = a.parse().map_err(|_| format!("bad major in '{s}'"))?;
        let minor = b.parse().map_err(|_| format!("bad minor in '{s}'"))?;
        Ok(DevT { major, minor })
    }
}

/// SCSI address Host:Channel:Target:LUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hcil {
    pub host: u32,
    pub channel: u32,
    pub target: u32,
    pub lun: u64,
}

impl fmt::Display for Hcil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.host, self.channel, self.target, self.lun
        )
    }
}

impl FromStr for Hcil {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 4 {
            return Err(format!("'{s}' is not H:C:T:L"));
        }
        let bad = |what: &str| format!("bad {what} in '{s}'");
        Ok(Hcil {
            host: parts[0].parse().map_err(|_| bad("host"))?,
            channel: parts[1].parse().map_err(|_| bad("channel"))?,
            target: parts[2].parse().map_err(|_| bad("target"))?,
            lun: parts[3].parse().map_err(|_| bad("lun"))?,
        })
    }
}

/// Result of a path checker, as multipathd names them (`chk_st`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ChkState {
    #[default]
    Undef,
    Up,
    Down,
    Shaky,
    Ghost,
    Pending,
    Timeout,
    Delayed,
    Disconnected,
}

impl ChkState {
    /// The text multipathd prints in `show paths` / topology.
    pub fn as_str(self) -> &'static str {
        match self {
            ChkState::Undef => "undef",
            ChkState::Up => "ready",
            ChkState::Down => "faulty",
            ChkState::Shaky => "shaky",
            ChkState::Ghost => "ghost",
            ChkState::Pending => "i/o pending",
            ChkState::Timeout => "i/o timeout",
            ChkState::Delayed => "delayed",
            ChkState::Disconnected => "disconnected",
        }
    }

    /// Name used in `show status` checker state counts.
    pub fn status_name(self) -> &'static str {
        match self {
            ChkState::Undef => "undef",
            ChkState::Up => "up",
            ChkState::Down => "down",
            ChkState::Shaky => "shaky",
            ChkState::Ghost => "ghost",
            ChkState::Pending => "pending",
            ChkState::Timeout => "timeout",
            ChkState::Delayed => "delayed",
            ChkState::Disconnected => "disconnected",
        }
    }

    /// Whether the kernel should be allowed to send I/O down this path.
    pub fn is_usable(self) -> bool {
        matches!(self, ChkState::Up | ChkState::Ghost)
    }
}

impl fmt::Display for ChkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kernel's view of a path inside a map (`dm_st`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DmPathState {
    #[default]
    Undef,
    Active,
    Failed,
}

impl DmPathState {
    pub fn as_str(self) -> &'static str {
        match self {
            DmPathState::Undef => "undef",
            DmPathState::Active => "active",
            DmPathState::Failed => "failed",
        }
    }
}

impl fmt::Display for DmPathState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SCSI device state from sysfs (`dev_st`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DevState {
    Running,
    Offline,
    #[default]
    Unknown,
}

impl DevState {
    /// Map the sysfs `device/state` word onto multipathd's three states.
    pub fn from_sysfs(s: &str) -> Self {
        match s.trim() {
            "running" => DevState::Running,
            "offline" | "transport-offline" | "blocked" | "cancel" | "deleted" => DevState::Offline,
            _ => DevState::Unknown,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            DevState::Running => "running",
            DevState::Offline => "offline",
            DevState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for DevState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// State of a path group in the kernel's status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PgState {
    #[default]
    Undef,
    Active,
    Enabled,
    Disabled,
}

impl PgState {
    pub fn as_str(self) -> &'static str {
        match self {
            PgState::Undef => "undef",
            PgState::Active => "active",
            PgState::Enabled => "enabled",
            PgState::Disabled => "disabled",
        }
    }
}

impl fmt::Display for PgState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Transport of a SCSI path, from the host's sysfs class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Transport {
    Fcp,
    Spi,
    Ssa,
    Sbp,
    Srp,
    Iscsi,
    Sas,
    Adt,
    Ata,
    Usb,
    Nvme,
    #[default]
    Unspecified,
}

impl Transport {
    /// The protocol name used by `blacklist { protocol ... }` and overrides.
    pub fn protocol_name(self) -> &'static str {
        match self {
            Transport::Fcp => "scsi:fcp",
            Transport::Spi => "scsi:spi",
            Transport::Ssa => "scsi:ssa",
            Transport::Sbp => "scsi:sbp",
            Transport::Srp => "scsi:srp",
            Transport::Iscsi => "scsi:iscsi",
            Transport::Sas => "scsi:sas",
            Transport::Adt => "scsi:adt",
            Transport::Ata => "scsi:ata",
            Transport::Usb => "scsi:usb",
            Transport::Nvme => "nvme",
            Transport::Unspecified => "scsi:unspec",
        }
    }
}

/// Everything discovery knows about one path (a SCSI block device).
/// Read from udev and sysfs; refreshed on every udev change event.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PathInfo {
    /// Kernel name, e.g. `sdc`.
    pub dev: String,
    pub devt: Option<DevT>,
    pub hcil: Option<Hcil>,
    pub vendor: String,
    pub product: String,
    pub rev: String,
    /// Identity used to group paths; None when none could be read.
    pub wwid: Option<String>,
    /// Where the WWID came from (uid attribute name, "vpd_pg83", "sgio").
    pub wwid_source: Option<String>,
    /// Size in 512-byte sectors.
    pub size: u64,
    pub read_only: bool,
    pub dev_state: DevState,
    /// SCSI command timeout from `device/timeout`, seconds.
    pub timeout_secs: Option<u32>,
    pub transport: Transport,
    /// TPGS bits from INQUIRY: 0 none, 1 implicit, 2 explicit, 3 both.
    pub tpgs: u8,
    /// Target port group from VPD page 0x83, when reported.
    pub tpg_id: Option<u16>,
    /// scsi_dh handler attached (`device/dh_state`), e.g. `alua`.
    pub dh_state: Option<String>,
    /// `device/access_state` from scsi_dh_alua, e.g. `active/optimized`.
    pub access_state: Option<String>,
    pub preferred_path: bool,
    /// Unit serial number (VPD 0x80) if known.
    pub serial: Option<String>,
    /// FC WWNN/WWPN or iSCSI target name, for group_by_node_name and JSON.
    pub host_wwnn: Option<String>,
    pub host_wwpn: Option<String>,
    pub target_wwnn: Option<String>,
    pub target_wwpn: Option<String>,
    pub host_adapter: Option<String>,
    /// The iSCSI session, FC remote port or SAS end device the path goes
    /// through, where its transport timeouts are set.
    pub endpoint: Option<crate::transport::Endpoint>,
    /// udev properties (ID_SERIAL, ID_WWN, DEVTYPE, ...).
    pub properties: BTreeMap<String, String>,
}

// ----------------------------------------------------------------------
// Resolved configuration: what the policy core acts on for a path/map.
// The config module computes these from multipath.conf; the policy core
// never looks at raw configuration.
// ----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PgPolicy {
    #[default]
    Failover,
    Multibus,
    GroupBySerial,
    GroupByPrio,
    GroupByNodeName,
    GroupByTpg,
}

impl PgPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PgPolicy::Failover => "failover",
            PgPolicy::Multibus => "multibus",
            PgPolicy::GroupBySerial => "group_by_serial",
            PgPolicy::GroupByPrio => "group_by_prio",
            PgPolicy::GroupByNodeName => "group_by_node_name",
            PgPolicy::GroupByTpg => "group_by_tpg",
        }
    }
}

impl FromStr for PgPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "failover" => PgPolicy::Failover,
            "multibus" => PgPolicy::Multibus,
            "group_by_serial" => PgPolicy::GroupBySerial,
            "group_by_prio" => PgPolicy::GroupByPrio,
            "group_by_node_name" => PgPolicy::GroupByNodeName,
            "group_by_tpg" => PgPolicy::GroupByTpg,
            _ => return Err(format!("unknown path_grouping_policy '{s}'")),
        })
    }
}

/// `failback`: when to return to the highest-priority group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failback {
    #[default]
    Manual,
    Immediate,
    Followover,
    /// Deferred by this many seconds.
    Deferred(u32),
}

impl fmt::Display for Failback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failback::Manual => f.write_str("manual"),
            Failback::Immediate => f.write_str("immediate"),
            Failback::Followover => f.write_str("followover"),
            Failback::Deferred(n) => write!(f, "{n}"),
        }
    }
}

/// `no_path_retry`: what to do when every path is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoPathRetry {
    #[default]
    Fail,
    Queue,
    /// Queue for this many checker intervals, then fail.
    Retries(u32),
}

impl fmt::Display for NoPathRetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoPathRetry::Fail => f.write_str("fail"),
            NoPathRetry::Queue => f.write_str("queue"),
            NoPathRetry::Retries(n) => write!(f, "{n}"),
        }
    }
}

/// A path that failed more than `threshold` times (a failure is forgotten
/// every `forget_rate` good checks) is not reinstated until it has been up
/// for `recovery_time` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SanPathErr {
    pub threshold: u32,
    pub forget_rate: u32,
    pub recovery_time: u32,
}

/// A timeout that can be switched off (`eh_deadline`, an FC port's
/// `fast_io_fail_tmo`); written to sysfs as `off` or the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tmo {
    Off,
    Secs(u32),
}

impl fmt::Display for Tmo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tmo::Off => f.write_str("off"),
            Tmo::Secs(n) => write!(f, "{n}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RrWeight {
    #[default]
    Uniform,
    Priorities,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindMultipaths {
    No,
    Yes,
    Greedy,
    Smart,
    #[default]
    Strict,
}

/// Where each setting came from, by keyword, for `config explain`.
pub type Origins = BTreeMap<String, Origin>;

/// One setting with where it came from, for `config explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// e.g. "multipaths", "overrides", "devices (built-in HITACHI/OPEN-)",
    /// "defaults (/etc/multipath.conf:12)", "built-in default",
    /// "detect_prio".
    pub source: String,
}

/// Every effective setting for one path / the map it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub path_grouping_policy: PgPolicy,
    /// Selector with its argument count, e.g. `service-time 0`.
    pub path_selector: String,
    /// Checker name: tur, directio, readsector0, none, ...
    pub path_checker: String,
    /// Prioritizer name and its args: (`alua`, ""), (`const`, "").
    pub prio: String,
    pub prio_args: String,
    pub failback: Failback,
    pub no_path_retry: NoPathRetry,
    /// The `features` as configured, e.g. `1 queue_if_no_path`.
    #[serde(with = "as_text")]
    pub features: crate::dm::Features,
    /// e.g. `0`, `1 alua`.
    #[serde(with = "as_text")]
    pub hardware_handler: crate::dm::HwHandler,
    pub rr_weight: RrWeight,
    pub rr_min_io: u32,
    pub rr_min_io_rq: u32,
    pub pg_init_retries: Option<u32>,
    pub retain_attached_hw_handler: bool,
    pub alias: Option<String>,
    pub user_friendly_names: bool,
    pub find_multipaths: FindMultipaths,
    pub find_multipaths_timeout: i32,
    pub polling_interval: u32,
    pub max_polling_interval: u32,
    /// None: use the device's own `device/timeout`.
    pub checker_timeout: Option<u32>,
    pub fast_io_fail_tmo: Option<i32>,
    pub dev_loss_tmo: Option<u32>,
    /// None: not set (the SCSI host keeps its own).
    pub eh_deadline: Option<Tmo>,
    pub flush_on_last_del: bool,
    /// A map whose last path is gone is removed at its last close.
    pub deferred_remove: bool,
    pub queue_without_daemon: bool,
    pub uid_attribute: String,
    pub detect_prio: bool,
    pub detect_checker: bool,
    pub detect_pgpolicy: bool,
    pub detect_pgpolicy_use_tpg: bool,
    pub delay_watch_checks: Option<u32>,
    pub delay_wait_checks: Option<u32>,
    /// Flap damping (san_path_err_*, or delay_watch/wait_checks mapped
    /// onto it as multipath-tools does); None: off.
    pub san_path_err: Option<SanPathErr>,
    pub skip_kpartx: bool,
    pub exclusive_pref_bit: bool,
    /// Where the map's persistent-reservation key comes from.
    #[serde(with = "as_text")]
    pub reservation_key: crate::pr::ReservationKey,
    /// mpathpersist registers through one path per initiator port with
    /// ALL_TG_PT; the daemon's registrations follow suit.
    pub all_tg_pt: bool,
    /// A `devices` entry (built-in or configured) matched the path.
    pub known_hardware: bool,
}

impl Default for Settings {
    /// multipath-tools' built-in defaults (COMPAT.md section 4).
    fn default() -> Self {
        Settings {
            path_grouping_policy: PgPolicy::Failover,
            path_selector: "service-time 0".into(),
            path_checker: "tur".into(),
            prio: "const".into(),
            prio_args: String::new(),
            failback: Failback::Manual,
            no_path_retry: NoPathRetry::Fail,
            features: crate::dm::Features::default(),
            hardware_handler: crate::dm::HwHandler::none(),
            rr_weight: RrWeight::Uniform,
            rr_min_io: 1000,
            rr_min_io_rq: 1,
            pg_init_retries: None,
            retain_attached_hw_handler: true,
            alias: None,
            user_friendly_names: false,
            find_multipaths: FindMultipaths::Strict,
            find_multipaths_timeout: -10,
            polling_interval: 5,
            max_polling_interval: 20,
            checker_timeout: None,
            fast_io_fail_tmo: Some(5),
            dev_loss_tmo: None,
            eh_deadline: None,
            flush_on_last_del: false,
            deferred_remove: false,
            queue_without_daemon: false,
            uid_attribute: "ID_SERIAL".into(),
            detect_prio: true,
            detect_checker: true,
            detect_pgpolicy: true,
            detect_pgpolicy_use_tpg: false,
            delay_watch_checks: None,
            delay_wait_checks: None,
            san_path_err: None,
            skip_kpartx: false,
            exclusive_pref_bit: false,
            reservation_key: crate::pr::ReservationKey::None,
            all_tg_pt: false,
            known_hardware: false,
        }
    }
}

// ----------------------------------------------------------------------
// Filtering contract between configuration (blacklists) and discovery.
// ----------------------------------------------------------------------

/// Outcome of the blacklist / blacklist_exceptions rules for one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterResult {
    /// No rule matched.
    Allowed,
    /// An exception matched; `by` names the rule and where it was written,
    /// e.g. `blacklist_exceptions wwid "^36" (/etc/multipath.conf:7)`.
    Excepted { by: String },
    /// A blacklist rule matched (and no exception overrode it).
    Blacklisted { by: String },
}

impl FilterResult {
    pub fn is_blacklisted(&self) -> bool {
        matches!(self, FilterResult::Blacklisted { .. })
    }
}

/// Blacklist evaluation, implemented by the configuration. Discovery asks
/// it about each path; tests implement it with fixed answers.
pub trait PathFilter {
    /// All rules in multipath-tools' order: devnode, device (vendor/product),
    /// protocol, property (uid_attribute must be present), wwid. The `wwid`
    /// check is skipped while `info.wwid` is None.
    fn filter_path(&self, info: &PathInfo) -> FilterResult;
    /// Devnode rules alone (before anything else is read from a device).
    fn filter_devnode(&self, dev: &str) -> FilterResult;
}

/// Serde for the dm grammar types in [`Settings`]: as the text the table
/// and multipath.conf use.
mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

mod snapshot;
pub use snapshot::*;
