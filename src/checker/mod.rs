//! Path checkers (tur, directio, readsector0, none) and the async runner
//! that executes them off the runtime with timeouts.
//!
//! - [`PathProbe`]: the narrow, blocking interface the daemon's checker loop
//!   is driven through: one check or one prio of one path. [`SysProbe`]
//!   talks to the kernel; [`SimProbe`] answers from a script (simulators,
//!   unit tests).
//! - [`CheckRunner`]: runs a probe's calls on a bounded pool of blocking
//!   threads, reports calls that outlive their timeout as
//!   [`ChkState::Timeout`], and never queues a second call for a path whose
//!   previous one is still stuck in the kernel.
//! - [`tur`], [`directio`], [`readsector0`]: the checkers themselves
//!   (blocking), and [`tur_step`], the pure TUR outcome mapping.

pub mod io;
pub mod probe;
pub mod runner;
#[cfg(test)]
pub mod sim;
pub mod vendor;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::model::{ChkState, PathInfo, Settings};
use crate::prio::{PrioResult, PrioSpec};

pub use io::{directio, readsector0, tur, tur_on, tur_step, TurStep};
pub use probe::SysProbe;
pub use runner::{CheckOutcome, CheckRunner, ChunkItem, RunnerStats};
#[cfg(test)]
pub use sim::SimProbe;

/// The checkers this daemon implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CheckerKind {
    #[default]
    Tur,
    Directio,
    Readsector0,
    /// Always up.
    None,
    /// LSI/Engenio RDAC arrays: VPD page 0xC9 (see [`vendor`]).
    Rdac,
    /// EMC CLARiiON/VNX: VPD page 0xC0.
    EmcClariion,
    /// HP active/standby arrays: VPD 0x80, then TUR.
    HpSw,
}

impl CheckerKind {
    pub fn name(self) -> &'static str {
        match self {
            CheckerKind::Tur => "tur",
            CheckerKind::Directio => "directio",
            CheckerKind::Readsector0 => "readsector0",
            CheckerKind::None => "none",
            CheckerKind::Rdac => "rdac",
            CheckerKind::EmcClariion => "emc_clariion",
            CheckerKind::HpSw => "hp_sw",
        }
    }

    /// Resolve a configured `path_checker` name. multipath-tools'
    /// cciss_tur (old HP Smart Array block driver) and rbd (Ceph) are not
    /// implemented: they run TUR instead, and the second value is the
    /// warning to log.
    pub fn resolve(name: &str) -> (CheckerKind, Option<String>) {
        match name.parse() {
            Ok(k) => (k, None),
            Err(e) => (CheckerKind::Tur, Some(format!("{e}; using tur"))),
        }
    }
}

/// What runs in place of a configured checker mpathd does not implement,
/// said wherever the configuration is shown (config check, explain, the
/// path's reasons); None when the named checker runs itself.
pub fn substitute_note(name: &str) -> Option<String> {
    CheckerKind::resolve(name)
        .1
        .map(|_| format!("path_checker {name} is not implemented by mpathd: tur runs in its place"))
}

impl FromStr for CheckerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "tur" => CheckerKind::Tur,
            "directio" => CheckerKind::Directio,
            "readsector0" => CheckerKind::Readsector0,
            "none" => CheckerKind::None,
            "rdac" => CheckerKind::Rdac,
            "emc_clariion" => CheckerKind::EmcClariion,
            "hp_sw" => CheckerKind::HpSw,
            "cciss_tur" | "rbd" => return Err(format!("path checker '{s}' is not supported")),
            _ => return Err(format!("unknown path checker '{s}'")),
        })
    }
}

impl fmt::Display for CheckerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Result of one check: the state and multipathd's checker message
/// (`tur checker reports path is up`), plus what we saw when it helps
/// (sense data, host status, errno).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub state: ChkState,
    pub msg: String,
    pub detail: Option<String>,
    /// The SCSI device state read from sysfs before the check, if read.
    pub dev_state: Option<crate::model::DevState>,
    /// How long the check itself took, when it ran to an answer.
    pub duration: Option<std::time::Duration>,
}

impl CheckResult {
    pub fn new(state: ChkState, msg: impl Into<String>) -> Self {
        CheckResult {
            state,
            msg: msg.into(),
            detail: None,
            dev_state: None,
            duration: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The standard message of a checker for a state, worded as
    /// multipath-tools' generic checker messages.
    pub fn standard(checker: CheckerKind, state: ChkState) -> Self {
        let what = match state {
            ChkState::Up => "reports path is up",
            ChkState::Down => "reports path is down",
            ChkState::Ghost => "reports path is ghost",
            ChkState::Pending => "reports path is transitioning",
            ChkState::Disconnected => "no access to this device",
            ChkState::Timeout => "timed out",
            ChkState::Shaky => "reports path is shaky",
            ChkState::Delayed => "reports path is delayed",
            ChkState::Undef => "reports path state is undefined",
        };
        CheckResult::new(state, format!("{} checker {what}", checker.name()))
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{} ({d})", self.msg),
            None => f.write_str(&self.msg),
        }
    }
}

/// One path's checks and priorities, as the daemon's checker loop needs
/// them. Calls block (SG_IO, O_DIRECT reads): run them through
/// [`CheckRunner`], never on the async runtime directly.
pub trait PathProbe: Send + Sync + 'static {
    /// Check path `dev` (kernel name, e.g. `sdc`) with `checker`; the
    /// command timeout is `timeout`.
    fn check(&self, dev: &str, checker: CheckerKind, timeout: Duration) -> CheckResult;
    /// Priority of `path` by the prioritizer in `spec`.
    fn prio(&self, path: &PathInfo, spec: &PrioSpec, timeout: Duration) -> PrioResult;
}

/// Default checker timeout when neither the configuration nor the device
/// says (COMPAT section 4).
pub const DEFAULT_CHECKER_TIMEOUT: Duration = Duration::from_secs(30);

/// checker_timeout for a path: the configured value, else the device's
/// `device/timeout`, else 30 s.
pub fn checker_timeout(settings: &Settings, path: &PathInfo) -> Duration {
    settings
        .checker_timeout
        .or(path.timeout_secs)
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s.into()))
        .unwrap_or(DEFAULT_CHECKER_TIMEOUT)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!("tur".parse::<CheckerKind>(), Ok(CheckerKind::Tur));
        assert_eq!("directio".parse::<CheckerKind>(), Ok(CheckerKind::Directio));
        assert_eq!(
            "readsector0".parse::<CheckerKind>(),
            Ok(CheckerKind::Readsector0)
        );
        assert_eq!("none".parse::<CheckerKind>(), Ok(CheckerKind::None));
        assert!("bogus".parse::<CheckerKind>().is_err());
        assert_eq!(CheckerKind::resolve("rdac"), (CheckerKind::Rdac, None));
        assert_eq!(CheckerKind::resolve("hp_sw"), (CheckerKind::HpSw, None));
        assert_eq!(
            CheckerKind::resolve("emc_clariion"),
            (CheckerKind::EmcClariion, None)
        );
        let (k, w) = CheckerKind::resolve("rbd");
        assert_eq!(k, CheckerKind::Tur);
        assert!(w.unwrap().contains("rbd"));
        assert_eq!(
            CheckerKind::resolve("directio"),
            (CheckerKind::Directio, None)
        );
    }

    #[test]
    fn messages() {
        let r = CheckResult::standard(CheckerKind::Tur, ChkState::Up);
        assert_eq!(r.msg, "tur checker reports path is up");
        let r = CheckResult::standard(CheckerKind::Tur, ChkState::Ghost).with_detail("x");
        assert_eq!(r.to_string(), "tur checker reports path is ghost (x)");
        assert_eq!(
            CheckResult::standard(CheckerKind::Directio, ChkState::Timeout).msg,
            "directio checker timed out"
        );
    }

    #[test]
    fn timeouts() {
        let mut s = Settings::default();
        let mut p = PathInfo::default();
        assert_eq!(checker_timeout(&s, &p), Duration::from_secs(30));
        p.timeout_secs = Some(7);
        assert_eq!(checker_timeout(&s, &p), Duration::from_secs(7));
        s.checker_timeout = Some(3);
        assert_eq!(checker_timeout(&s, &p), Duration::from_secs(3));
    }
}
