//! The real probe: sysfs device state, then the checker's SCSI/O_DIRECT I/O.

use std::fs;
use std::time::Duration;

use super::{io, CheckResult, CheckerKind, PathProbe};
use crate::model::{ChkState, DevState, PathInfo};
use crate::prio::{get_prio, PrioResult, PrioSpec};

/// Checks and prios against the kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct SysProbe;

/// What the SCSI device's sysfs `state` says before any I/O is tried, as
/// multipathd's path_offline() does: offline paths are down without sending
/// a command; blocked ones (transport recovering) would only hang it.
pub fn precheck_state(sysfs_state: &str) -> Option<(ChkState, &'static str)> {
    match sysfs_state.trim() {
        "offline" | "transport-offline" | "deleted" | "cancel" => {
            Some((ChkState::Down, "path offline"))
        }
        "blocked" | "created-blocked" => Some((ChkState::Pending, "path blocked")),
        _ => None,
    }
}

impl PathProbe for SysProbe {
    fn check(&self, dev: &str, checker: CheckerKind, timeout: Duration) -> CheckResult {
        let sysfs_state = fs::read_to_string(format!("/sys/block/{dev}/device/state")).ok();
        let dev_state = sysfs_state.as_deref().map(DevState::from_sysfs);
        if let Some(s) = &sysfs_state {
            if let Some((st, why)) = precheck_state(s) {
                let mut r =
                    CheckResult::new(st, why).with_detail(format!("device state {}", s.trim()));
                r.dev_state = dev_state;
                return r;
            }
        }
        let mut r = match checker {
            CheckerKind::Tur => io::tur(dev, timeout),
            CheckerKind::Directio => io::directio(dev, timeout),
            CheckerKind::Readsector0 => io::readsector0(dev, timeout),
            CheckerKind::None => CheckResult::standard(CheckerKind::None, ChkState::Up),
        };
        r.dev_state = dev_state;
        r
    }

    fn prio(&self, path: &PathInfo, spec: &PrioSpec, timeout: Duration) -> PrioResult {
        get_prio(path, spec, timeout)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert_eq!(precheck_state("running\n"), None);
        assert_eq!(
            precheck_state("offline\n").map(|s| s.0),
            Some(ChkState::Down)
        );
        assert_eq!(
            precheck_state("transport-offline").map(|s| s.0),
            Some(ChkState::Down)
        );
        assert_eq!(
            precheck_state("blocked").map(|s| s.0),
            Some(ChkState::Pending)
        );
        assert_eq!(precheck_state("quiesce"), None);
    }

    #[test]
    fn none_checker() {
        let r = SysProbe.check("sdnonexistent", CheckerKind::None, Duration::from_secs(1));
        assert_eq!(r.state, ChkState::Up);
    }
}
