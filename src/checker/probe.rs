//! The real probe: sysfs device state, then the checker's SCSI/O_DIRECT I/O.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{io, CheckResult, CheckerKind, PathProbe};
use crate::model::{ChkState, DevState, PathInfo};
use crate::prio::{get_prio, get_prio_on, Held, PrioResult, PrioSpec};
use crate::scsi::attrs::{Attr, AttrValue, DeviceAttrs};
use crate::scsi::SgDevice;

/// Checks and prios against the kernel.
///
/// Holds each path's device and its per-check sysfs attribute files open
/// between checks, as multipathd holds the device: an open and close per
/// TUR, per RTPG and per attribute was most of a healthy path's check
/// cost. A held fd that fails is dropped and the step retried once on a
/// fresh open (the name may now be another disk).
#[derive(Debug, Default)]
pub struct SysProbe {
    open: Mutex<HashMap<String, Arc<SgDevice>>>,
    attrs: Mutex<HashMap<String, Arc<DeviceAttrs>>>,
    checks: std::sync::atomic::AtomicU64,
}

impl SysProbe {
    pub fn new() -> Self {
        Self::default()
    }

    fn cached(&self, dev: &str) -> Option<Arc<SgDevice>> {
        self.open.lock().ok()?.get(dev).cloned()
    }

    fn open_fresh(&self, dev: &str) -> Option<Arc<SgDevice>> {
        let sg = Arc::new(SgDevice::open(dev).ok()?);
        if let Ok(mut m) = self.open.lock() {
            m.insert(dev.to_string(), sg.clone());
        }
        Some(sg)
    }

    fn forget(&self, dev: &str) {
        if let Ok(mut m) = self.open.lock() {
            m.remove(dev);
        }
    }

    /// Stop holding a path that went away.
    pub fn close(&self, dev: &str) {
        self.forget(dev);
        if let Ok(mut m) = self.attrs.lock() {
            m.remove(dev);
        }
    }

    fn attrs_of(&self, dev: &str) -> Option<Arc<DeviceAttrs>> {
        let mut m = self.attrs.lock().ok()?;
        if let Some(a) = m.get(dev) {
            return Some(a.clone());
        }
        let a = Arc::new(DeviceAttrs::new(dev));
        m.insert(dev.to_string(), a.clone());
        Some(a)
    }

    fn cached_attrs(&self, dev: &str) -> Option<Arc<DeviceAttrs>> {
        self.attrs.lock().ok()?.get(dev).cloned()
    }

    /// The SCSI device's `state`; None when the device is gone.
    fn read_state(&self, dev: &str) -> Option<AttrValue> {
        if let Some(held) = self.cached_attrs(dev) {
            if let Ok(v) = held.read(Attr::State) {
                return Some(v);
            }
            // A held file fails once its device is deleted, and the name
            // may now be another disk's: let go, and decide on a fresh open.
            self.close(dev);
        }
        let v = self.attrs_of(dev)?.read(Attr::State).ok();
        if v.is_none() {
            self.close(dev);
        }
        v
    }

    /// Let go of devices that are gone: the daemon closes a removed path,
    /// this is the net under it (a path never checked again would hold
    /// its fds forever).
    fn prune(&self) {
        let exists = |dev: &String| std::path::Path::new(&format!("/sys/block/{dev}")).exists();
        if let Ok(mut m) = self.open.lock() {
            m.retain(|dev, _| exists(dev));
        }
        if let Ok(mut m) = self.attrs.lock() {
            m.retain(|dev, _| exists(dev));
        }
    }
}

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
        // Rare: it walks every held name (a stat each), and removed paths
        // are closed by the daemon anyway.
        const PRUNE_EVERY: u64 = 16384;
        let n = self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        let sysfs_state = self.read_state(dev);
        let dev_state = sysfs_state
            .as_ref()
            .map(|s| DevState::from_sysfs(s.as_str()));
        if let Some(s) = &sysfs_state {
            if let Some((st, why)) = precheck_state(s.as_str()) {
                let mut r =
                    CheckResult::new(st, why).with_detail(format!("device state {}", s.as_str()));
                r.dev_state = dev_state;
                return r;
            }
        }
        let mut r = match checker {
            CheckerKind::Tur => self.tur(dev, timeout),
            CheckerKind::Directio => io::directio(dev, timeout),
            CheckerKind::Readsector0 => io::readsector0(dev, timeout),
            CheckerKind::None => CheckResult::standard(CheckerKind::None, ChkState::Up),
            CheckerKind::Rdac | CheckerKind::EmcClariion | CheckerKind::HpSw => {
                self.vendor(dev, checker, timeout)
            }
        };
        r.dev_state = dev_state;
        r
    }

    fn prio(&self, path: &PathInfo, spec: &PrioSpec, timeout: Duration) -> PrioResult {
        let sg = self.cached(&path.dev);
        let attrs = self.cached_attrs(&path.dev);
        let held = Held {
            sg: sg.as_deref(),
            attrs: attrs.as_deref(),
        };
        let r = get_prio_on(path, spec, timeout, held);
        // A prioritizer that fell back (e.g. alua answered with const)
        // may have hit a stale fd: ask again on a fresh open.
        if (sg.is_some() || attrs.is_some()) && r.prioritizer != spec.name {
            self.close(&path.dev);
            return get_prio(path, spec, timeout);
        }
        r
    }
}

impl SysProbe {
    fn vendor(&self, dev: &str, kind: CheckerKind, timeout: Duration) -> CheckResult {
        match self.cached(dev).or_else(|| self.open_fresh(dev)) {
            Some(sg) => {
                let r = super::vendor::check(kind, &sg, timeout);
                if !r.state.is_usable() {
                    // Decide the next check on a fresh open.
                    self.forget(dev);
                }
                r
            }
            None => {
                CheckResult::standard(kind, ChkState::Down).with_detail("cannot open the device")
            }
        }
    }

    fn tur(&self, dev: &str, timeout: Duration) -> CheckResult {
        if let Some(sg) = self.cached(dev) {
            let r = io::tur_on(&sg, timeout);
            if r.state.is_usable() {
                return r;
            }
            // Maybe a stale fd (device deleted, name reused): decide on a
            // fresh open.
            self.forget(dev);
        }
        match self.open_fresh(dev) {
            Some(sg) => {
                let r = io::tur_on(&sg, timeout);
                if !r.state.is_usable() {
                    self.forget(dev);
                }
                r
            }
            None => io::tur(dev, timeout),
        }
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
        let r = SysProbe::new().check("sdnonexistent", CheckerKind::None, Duration::from_secs(1));
        assert_eq!(r.state, ChkState::Up);
    }

    #[test]
    fn nothing_is_held_for_a_device_that_is_not_there() {
        let p = SysProbe::new();
        let r = p.check("sdnonexistent", CheckerKind::Tur, Duration::from_secs(1));
        assert_eq!(r.state, ChkState::Down);
        assert_eq!(r.dev_state, None);
        assert!(p.attrs.lock().unwrap().is_empty());
        assert!(p.open.lock().unwrap().is_empty());
    }
}
