//! Prioritizers with multipath-tools' numbers: const, alua, sysfs,
//! weightedpath; the others answer "not supported" and fall back to const.
//!
//! The mapping functions ([`alua_prio_value`], [`sysfs_prio_value`],
//! [`weighted_prio`]) are pure. [`get_prio`] does the I/O (sysfs reads,
//! SG_IO) and blocks: run it through `checker::CheckRunner::prio`.

pub mod vendor;
pub mod weighted;

use std::fmt;
use std::fs;
use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

use crate::model::{PathInfo, Settings};
use crate::scsi::attrs::{self, Attr, AttrValue, DeviceAttrs};
use crate::scsi::parse::vpd83_target_port_group;
use crate::scsi::{AluaState, Outcome, ScsiError, SgDevice, TpgDescriptor};

pub use vendor::ReplyError;
pub use weighted::weighted_prio;

/// Why a prioritizer has no answer for a path.
#[derive(Debug, Error)]
pub enum PrioError {
    #[error("'{0}' is not a vendor prioritizer")]
    NotVendor(String),
    /// `prio_args` the prioritizer cannot use.
    #[error(transparent)]
    Args(#[from] ArgsError),
    /// The device's reply is short or not laid out as the array's.
    #[error(transparent)]
    Reply(#[from] ReplyError),
    /// Opening the device or SG_IO failed.
    #[error(transparent)]
    Scsi(#[from] ScsiError),
    /// A vendor command completed without GOOD status.
    #[error("{0}")]
    Status(Outcome),
    /// path_latency's READ completed without GOOD status.
    #[error("read failed: {0}")]
    ReadFailed(Outcome),
    #[error("{path}: {source}")]
    Sysfs {
        path: String,
        source: std::io::Error,
    },
    #[error("VPD page 0x83 has no target port group designator")]
    NoTargetPortGroup,
    #[error("target port group {0} not in REPORT TARGET PORT GROUPS")]
    TpgNotReported(u16),
}

/// `prio_args` a prioritizer refuses, in multipath-tools' terms.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ArgsError {
    /// A required argument, e.g. `preferredsds=NAME`.
    #[error("prio_args needs {0}")]
    Missing(&'static str),
    #[error("unexpected prio_args word '{0}'")]
    UnexpectedWord(String),
    #[error("{name} '{value}' is not a number")]
    NotANumber { name: &'static str, value: String },
    #[error("{name} {value} is outside {min}..{max}")]
    OutOfRange {
        name: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
    /// datacore's `timeout=MS`, outside 500 to 20000.
    #[error("prio_args timeout is out of bounds [500:20000]")]
    TimeoutOutOfBounds(u64),
    #[error("prio_args preferredsds is too short (2 characters at least)")]
    SdsTooShort(String),
    #[error("prio_args preferredip '{0}' is too short")]
    IpTooShort(String),
    /// path_latency's arguments without the `|`.
    #[error("prio_args '{0}' is not io_num|base_num")]
    NotIoNumBaseNum(String),
    #[error("weightedpath: no arguments")]
    NoWeightedArgs,
    #[error("weightedpath: invalid argument '{0}' (want hbtl, devname, serial or wwn)")]
    WeightedKind(String),
}

/// A `prio` name no prioritizer has.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown prioritizer '{0}'")]
pub struct UnknownPrioritizer(pub String);

/// "No answer": keep whatever priority the path had.
pub const PRIO_UNDEF: i32 = -1;
/// The const prioritizer's value, and the fallback when alua fails.
pub const PRIO_CONST: i32 = 1;

/// What runs in place of a configured prioritizer mpathd does not
/// implement (see [`crate::checker::substitute_note`]).
pub fn substitute_note(name: &str) -> Option<String> {
    match name.parse::<Prioritizer>() {
        Ok(Prioritizer::Unsupported(n)) => Some(format!(
            "prio {n} is not implemented by mpathd: const (prio 1) runs in its place"
        )),
        Ok(_) => None,
        Err(e) => Some(format!("{e}: const (prio 1) runs in its place")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Prioritizer {
    Const,
    Alua,
    Sysfs,
    WeightedPath,
    /// rdac, emc, hp_sw, hds, datacore, iet, random, path_latency, ontap (see
    /// [`vendor`]).
    Vendor(&'static str),
    /// multipath-tools' ana (NVMe; this daemon handles SCSI paths): not
    /// implemented here.
    Unsupported(String),
}

impl Prioritizer {
    pub fn name(&self) -> &str {
        match self {
            Prioritizer::Const => "const",
            Prioritizer::Alua => "alua",
            Prioritizer::Sysfs => "sysfs",
            Prioritizer::WeightedPath => "weightedpath",
            Prioritizer::Vendor(n) => n,
            Prioritizer::Unsupported(n) => n,
        }
    }
}

impl FromStr for Prioritizer {
    type Err = UnknownPrioritizer;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "const" | "" => Prioritizer::Const,
            "alua" => Prioritizer::Alua,
            "sysfs" => Prioritizer::Sysfs,
            "weightedpath" => Prioritizer::WeightedPath,
            "rdac" => Prioritizer::Vendor("rdac"),
            "emc" => Prioritizer::Vendor("emc"),
            "hp_sw" => Prioritizer::Vendor("hp_sw"),
            "hds" => Prioritizer::Vendor("hds"),
            "datacore" => Prioritizer::Vendor("datacore"),
            "iet" => Prioritizer::Vendor("iet"),
            "random" => Prioritizer::Vendor("random"),
            "path_latency" => Prioritizer::Vendor("path_latency"),
            "ontap" => Prioritizer::Vendor("ontap"),
            "ana" => Prioritizer::Unsupported(s.to_string()),
            _ => return Err(UnknownPrioritizer(s.to_string())),
        })
    }
}

impl fmt::Display for Prioritizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which prioritizer to run for a path, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrioSpec {
    /// `prio` setting: const, alua, sysfs, weightedpath, ...
    pub name: String,
    /// `prio_args` setting.
    pub args: String,
    /// Add the preferred bit's 80 even to active/optimized paths.
    pub exclusive_pref_bit: bool,
}

impl PrioSpec {
    pub fn new(name: impl Into<String>, args: impl Into<String>) -> Self {
        let args = args.into();
        let exclusive_pref_bit = args_have_exclusive_pref_bit(&args);
        PrioSpec {
            name: name.into(),
            args,
            exclusive_pref_bit,
        }
    }

    /// From resolved settings. `exclusive_pref_bit` comes from the setting
    /// or, as in multipath-tools, from the alua/sysfs `prio_args`.
    pub fn from_settings(s: &Settings) -> Self {
        let mut p = PrioSpec::new(s.prio.clone(), s.prio_args.clone());
        p.exclusive_pref_bit |= s.exclusive_pref_bit;
        p
    }
}

fn args_have_exclusive_pref_bit(args: &str) -> bool {
    args.split_whitespace().any(|w| w == "exclusive_pref_bit")
}

/// A priority and how it was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrioResult {
    /// The priority; [`PRIO_UNDEF`] when there is no answer (keep the old).
    pub prio: i32,
    /// The prioritizer that produced `prio` (`const` after a fallback).
    pub prioritizer: String,
    /// Why a fallback happened, or what was read (for logs).
    pub msg: Option<String>,
}

impl PrioResult {
    pub fn new(prio: i32, prioritizer: impl Into<String>) -> Self {
        PrioResult {
            prio,
            prioritizer: prioritizer.into(),
            msg: None,
        }
    }
    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }
    pub fn undef(why: impl Into<String>) -> Self {
        PrioResult::new(PRIO_UNDEF, "undef").with_msg(why)
    }
    fn fallback_const(why: impl Into<String>) -> Self {
        PrioResult::new(PRIO_CONST, "const").with_msg(why)
    }
}

/// multipath-tools' alua numbers: active/optimized 50, active/non-optimized
/// 10, LBA-dependent 5, standby 1, anything else 0; the preferred bit adds
/// 80 unless the path is active/optimized (always with exclusive_pref_bit).
pub fn alua_prio_value(state: AluaState, pref: bool, exclusive_pref_bit: bool) -> i32 {
    let base = match state {
        AluaState::ActiveOptimized => 50,
        AluaState::ActiveNonOptimized => 10,
        AluaState::LbaDependent => 5,
        AluaState::Standby => 1,
        _ => 0,
    };
    if pref && (state != AluaState::ActiveOptimized || exclusive_pref_bit) {
        base + 80
    } else {
        base
    }
}

/// The sysfs prioritizer: scsi_dh_alua's `access_state` words mapped like
/// alua's states (a prefix match, as multipath-tools does), plus 80 for
/// `preferred_path` on the same terms.
pub fn sysfs_prio_value(access_state: &str, preferred: bool, exclusive_pref_bit: bool) -> i32 {
    let s = access_state.trim();
    let (base, optimized) = [
        ("active/optimized", 50, true),
        ("active/non-optimized", 10, false),
        ("lba-dependent", 5, false),
        ("standby", 1, false),
    ]
    .iter()
    .find(|(w, _, _)| s.starts_with(w))
    .map(|(_, v, o)| (*v, *o))
    .unwrap_or((0, false));
    if preferred && (!optimized || exclusive_pref_bit) {
        base + 80
    } else {
        base
    }
}

fn sysfs_attr(dev: &str, attr: &str) -> Result<Vec<u8>, PrioError> {
    let path = format!("/sys/block/{dev}/device/{attr}");
    fs::read(&path).map_err(|source| PrioError::Sysfs { path, source })
}

/// A per-check attribute, through the caller's held file when it has one.
fn read_attr(dev: &str, attr: Attr, held: Option<&DeviceAttrs>) -> Result<AttrValue, PrioError> {
    match held {
        Some(a) => a.read(attr),
        None => attrs::read_once(dev, attr),
    }
    .map_err(|source| PrioError::Sysfs {
        path: attrs::attr_path(dev, attr),
        source,
    })
}

/// What the caller holds open for the path (the checker does, between
/// checks), so that a prioritizer need not open it again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Held<'a> {
    pub sg: Option<&'a SgDevice>,
    pub attrs: Option<&'a DeviceAttrs>,
}

/// The target port group of a path: from discovery if known, else the
/// kernel's cached VPD page 0x83 in sysfs, else VPD 0x83 through SG_IO.
pub fn target_port_group(
    path: &PathInfo,
    sg: &SgDevice,
    timeout: Duration,
) -> Result<u16, PrioError> {
    if let Some(t) = path.tpg_id {
        return Ok(t);
    }
    if let Ok(page) = sysfs_attr(&path.dev, "vpd_pg83") {
        if let Ok(Some(t)) = vpd83_target_port_group(&page) {
            return Ok(t);
        }
    }
    let page = sg.vpd_page(0x83, timeout)?;
    vpd83_target_port_group(&page)?.ok_or(PrioError::NoTargetPortGroup)
}

/// The RTPG descriptor of the path's own target port group.
pub fn alua_group(path: &PathInfo, timeout: Duration) -> Result<TpgDescriptor, PrioError> {
    let sg = SgDevice::open(&path.dev)?;
    alua_group_on(path, &sg, timeout)
}

/// [`alua_group`] through a device the caller holds open.
pub fn alua_group_on(
    path: &PathInfo,
    sg: &SgDevice,
    timeout: Duration,
) -> Result<TpgDescriptor, PrioError> {
    let tpg = target_port_group(path, sg, timeout)?;
    sg.report_target_port_groups(timeout)?
        .into_iter()
        .find(|g| g.tpg_id == tpg)
        .ok_or(PrioError::TpgNotReported(tpg))
}

fn alua(path: &PathInfo, spec: &PrioSpec, timeout: Duration, sg: Option<&SgDevice>) -> PrioResult {
    let group = match sg {
        Some(sg) => alua_group_on(path, sg, timeout),
        None => alua_group(path, timeout),
    };
    match group {
        Ok(g) => PrioResult::new(
            alua_prio_value(g.state, g.pref, spec.exclusive_pref_bit),
            "alua",
        )
        .with_msg(format!(
            "tpg {} {}{}",
            g.tpg_id,
            g.state,
            if g.pref { " preferred" } else { "" }
        )),
        Err(e) => {
            PrioResult::fallback_const(format!("{}: alua prio failed ({e}); using const", path.dev))
        }
    }
}

fn sysfs(path: &PathInfo, spec: &PrioSpec, held: Option<&DeviceAttrs>) -> PrioResult {
    let state = match read_attr(&path.dev, Attr::AccessState, held) {
        Ok(s) => s,
        Err(e) => {
            return PrioResult::fallback_const(format!(
                "{}: sysfs prio failed ({e}); using const",
                path.dev
            ))
        }
    };
    let preferred = read_attr(&path.dev, Attr::PreferredPath, held)
        .map(|v| v.as_str().parse::<i64>().unwrap_or(0) > 0)
        .unwrap_or(false);
    let state = state.as_str();
    PrioResult::new(
        sysfs_prio_value(state, preferred, spec.exclusive_pref_bit),
        "sysfs",
    )
    .with_msg(format!(
        "access_state {state}{}",
        if preferred { " preferred" } else { "" }
    ))
}

/// A vendor prioritizer on `sg`, or on a fresh open of the path. Without
/// an answer the path gets what multipath-tools gives it (0; hds: none,
/// the old priority stays), and the reason says why.
fn vendor_on(
    name: &'static str,
    path: &PathInfo,
    spec: &PrioSpec,
    timeout: Duration,
    sg: Option<&SgDevice>,
) -> PrioResult {
    let opened;
    let sg = match sg {
        Some(sg) => sg,
        None => match SgDevice::open(&path.dev) {
            Ok(s) => {
                opened = s;
                &opened
            }
            Err(e) => return PrioResult::undef(format!("{name} prio: {e}")),
        },
    };
    match vendor::vendor_prio(name, path, &spec.args, sg, timeout) {
        Ok(p) => PrioResult::new(p, name),
        Err(e) => {
            let fallback = if name == "hds" { PRIO_UNDEF } else { 0 };
            PrioResult::new(fallback, name).with_msg(format!("{name} prio: {}: {e}", path.dev))
        }
    }
}

/// Run the prioritizer `spec` names for `path` (blocking: sysfs and SG_IO).
pub fn get_prio(path: &PathInfo, spec: &PrioSpec, timeout: Duration) -> PrioResult {
    get_prio_on(path, spec, timeout, Held::default())
}

/// [`get_prio`], through what the caller holds open for the path (the
/// checker's device and attribute files) instead of opening it again.
pub fn get_prio_on(
    path: &PathInfo,
    spec: &PrioSpec,
    timeout: Duration,
    held: Held<'_>,
) -> PrioResult {
    match spec.name.parse::<Prioritizer>() {
        Ok(Prioritizer::Const) => PrioResult::new(PRIO_CONST, "const"),
        Ok(Prioritizer::Alua) => alua(path, spec, timeout, held.sg),
        Ok(Prioritizer::Sysfs) => sysfs(path, spec, held.attrs),
        Ok(Prioritizer::WeightedPath) => match weighted_prio(path, &spec.args) {
            Ok(p) => PrioResult::new(p, "weightedpath"),
            Err(e) => PrioResult::new(weighted::DEFAULT_PRIORITY, "weightedpath")
                .with_msg(format!("{}: {e}", path.dev)),
        },
        Ok(Prioritizer::Vendor(n)) => vendor_on(n, path, spec, timeout, held.sg),
        Ok(Prioritizer::Unsupported(n)) => {
            PrioResult::fallback_const(format!("prioritizer '{n}' is not supported; using const"))
        }
        Err(e) => PrioResult::fallback_const(format!("{e}; using const")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn alua_numbers() {
        use AluaState::*;
        assert_eq!(alua_prio_value(ActiveOptimized, false, false), 50);
        assert_eq!(alua_prio_value(ActiveNonOptimized, false, false), 10);
        assert_eq!(alua_prio_value(LbaDependent, false, false), 5);
        assert_eq!(alua_prio_value(Standby, false, false), 1);
        assert_eq!(alua_prio_value(Unavailable, false, false), 0);
        assert_eq!(alua_prio_value(Transitioning, false, false), 0);
        assert_eq!(alua_prio_value(Offline, false, false), 0);
        // The preferred bit.
        assert_eq!(alua_prio_value(ActiveOptimized, true, false), 50);
        assert_eq!(alua_prio_value(ActiveOptimized, true, true), 130);
        assert_eq!(alua_prio_value(ActiveNonOptimized, true, false), 90);
        assert_eq!(alua_prio_value(Standby, true, false), 81);
        assert_eq!(alua_prio_value(Unavailable, true, false), 80);
    }

    #[test]
    fn sysfs_numbers() {
        assert_eq!(sysfs_prio_value("active/optimized\n", false, false), 50);
        assert_eq!(sysfs_prio_value("active/non-optimized", false, false), 10);
        assert_eq!(sysfs_prio_value("lba-dependent", false, false), 5);
        assert_eq!(sysfs_prio_value("standby", false, false), 1);
        assert_eq!(sysfs_prio_value("unavailable", false, false), 0);
        assert_eq!(sysfs_prio_value("transitioning", true, false), 80);
        assert_eq!(sysfs_prio_value("active/optimized", true, false), 50);
        assert_eq!(sysfs_prio_value("active/optimized", true, true), 130);
        assert_eq!(sysfs_prio_value("active/non-optimized", true, false), 90);
    }

    #[test]
    fn names_and_specs() {
        assert_eq!("alua".parse::<Prioritizer>(), Ok(Prioritizer::Alua));
        assert_eq!("const".parse::<Prioritizer>(), Ok(Prioritizer::Const));
        assert_eq!(
            "random".parse::<Prioritizer>(),
            Ok(Prioritizer::Vendor("random"))
        );
        assert_eq!(
            "ana".parse::<Prioritizer>(),
            Ok(Prioritizer::Unsupported("ana".into()))
        );
        assert!("nope".parse::<Prioritizer>().is_err());
        assert!(PrioSpec::new("alua", "exclusive_pref_bit").exclusive_pref_bit);
        assert!(!PrioSpec::new("alua", "").exclusive_pref_bit);
        let s = Settings {
            prio: "alua".into(),
            exclusive_pref_bit: true,
            ..Default::default()
        };
        let p = PrioSpec::from_settings(&s);
        assert_eq!(p.name, "alua");
        assert!(p.exclusive_pref_bit);
    }

    #[test]
    fn errors_say_which_step_failed() {
        let path = PathInfo {
            dev: "sdnonexistent".into(),
            ..Default::default()
        };
        let e = alua_group(&path, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, PrioError::Scsi(ScsiError::Open(..))), "{e:?}");
        let e = read_attr("sdnonexistent", Attr::AccessState, None).unwrap_err();
        let file = "/sys/block/sdnonexistent/device/access_state";
        assert!(
            matches!(&e, PrioError::Sysfs { path, .. } if path == file),
            "{e:?}"
        );
        assert!(e.to_string().starts_with(&format!("{file}: ")), "{e}");
        assert_eq!(
            "nope".parse::<Prioritizer>(),
            Err(UnknownPrioritizer("nope".into()))
        );
        assert_eq!(
            substitute_note("nope").as_deref(),
            Some("unknown prioritizer 'nope': const (prio 1) runs in its place")
        );
        assert_eq!(
            PrioError::from(ArgsError::NoWeightedArgs).to_string(),
            "weightedpath: no arguments"
        );
        assert_eq!(
            PrioError::TpgNotReported(3).to_string(),
            "target port group 3 not in REPORT TARGET PORT GROUPS"
        );
        assert_eq!(
            PrioError::ReadFailed(Outcome::ReservationConflict).to_string(),
            format!("read failed: {}", Outcome::ReservationConflict)
        );
    }

    #[test]
    fn fallbacks_without_io() {
        let path = PathInfo {
            dev: "sdnonexistent".into(),
            ..Default::default()
        };
        let t = Duration::from_secs(1);
        assert_eq!(get_prio(&path, &PrioSpec::new("const", ""), t).prio, 1);
        let r = get_prio(&path, &PrioSpec::new("ana", ""), t);
        assert_eq!((r.prio, r.prioritizer.as_str()), (1, "const"));
        assert!(r.msg.unwrap().contains("not supported"));
        // A vendor prioritizer that cannot reach the device says so.
        let r = get_prio(&path, &PrioSpec::new("rdac", ""), t);
        assert_eq!(r.prio, PRIO_UNDEF);
        assert!(r.msg.unwrap().contains("rdac prio"));
        // alua on a device that does not exist falls back to const.
        let r = get_prio(&path, &PrioSpec::new("alua", ""), t);
        assert_eq!((r.prio, r.prioritizer.as_str()), (1, "const"));
        assert!(r.msg.unwrap().contains("alua prio failed"));
        let r = get_prio(&path, &PrioSpec::new("sysfs", ""), t);
        assert_eq!(r.prio, 1);
    }
}
