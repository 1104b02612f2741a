//! [`SimDm`]: a deterministic in-memory device-mapper for the policy core's
//! unit tests. It keeps tables the way the kernel prints them back
//! ([`MultipathTable::kernel_form`]), synthesizes status strings from them,
//! applies messages (path states, fail counts, groups, queueing), and can be
//! told to fail chosen steps so rollbacks are exercised.
//!
//! Simplification: the active group is the selected one while it has an
//! active path, else the first enabled group that has one (the kernel
//! decides at the next I/O).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use super::kernel::{DmMessage, DmOps, MapInfo, MULTIPATH_TARGET};
use super::target::{MultipathStatus, MultipathTable, StatusGroup, StatusPath};
use super::DmError;
use crate::model::{DevT, DmPathState, PgState};

/// A step of a [`DmOps`] call that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimOp {
    Create,
    Load,
    Resume,
    Suspend,
    Remove,
    Message,
    Clear,
}

/// Major number device-mapper devices get.
const DM_MAJOR: u32 = 253;

#[derive(Debug, Clone)]
struct PathState {
    active: bool,
    fail_count: u32,
}

#[derive(Debug, Clone)]
struct SimMap {
    uuid: String,
    minor: u32,
    /// (size, table) in the kernel's form.
    active: Option<(u64, MultipathTable)>,
    inactive: Option<(u64, MultipathTable)>,
    suspended: bool,
    open_count: u32,
    event_nr: u32,
    queue_if_no_path: bool,
    paths: BTreeMap<DevT, PathState>,
    /// 1-based group selected next (switch_group / init_pg).
    next_pg: u32,
    bypassed: BTreeSet<u32>,
    deferred_remove: bool,
}

impl SimMap {
    fn info(&self, name: &str) -> MapInfo {
        MapInfo {
            name: name.to_string(),
            uuid: self.uuid.clone(),
            devt: DevT::new(DM_MAJOR, self.minor),
            event_nr: self.event_nr,
            open_count: self.open_count,
            suspended: self.suspended,
            target_type: if self.active.is_some() {
                MULTIPATH_TARGET.to_string()
            } else {
                String::new()
            },
        }
    }

    /// Swap the inactive table in, as a resume does.
    fn swap(&mut self) {
        if let Some((size, t)) = self.inactive.take() {
            self.paths = t
                .paths()
                .map(|d| {
                    (
                        d,
                        PathState {
                            active: true,
                            fail_count: 0,
                        },
                    )
                })
                .collect();
            self.queue_if_no_path = t.features.queue_if_no_path;
            self.next_pg = t.init_pg;
            self.bypassed.clear();
            self.active = Some((size, t));
        }
        self.suspended = false;
    }

    fn group_has_active_path(&self, t: &MultipathTable, pg: u32) -> bool {
        let Some(g) = (pg as usize).checked_sub(1).and_then(|i| t.groups.get(i)) else {
            return false;
        };
        g.paths
            .iter()
            .any(|p| self.paths.get(&p.dev).is_some_and(|s| s.active))
    }

    /// The group the kernel would be using.
    fn current_pg(&self, t: &MultipathTable) -> Option<u32> {
        if !self.bypassed.contains(&self.next_pg) && self.group_has_active_path(t, self.next_pg) {
            return Some(self.next_pg);
        }
        (1..=t.groups.len() as u32)
            .find(|&pg| !self.bypassed.contains(&pg) && self.group_has_active_path(t, pg))
    }

    fn status(&self) -> Option<MultipathStatus> {
        let (_, t) = self.active.as_ref()?;
        let current = self.current_pg(t);
        let any_active = self.paths.values().any(|p| p.active);
        let groups = t
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let pg = i as u32 + 1;
                let state = if self.bypassed.contains(&pg) {
                    PgState::Disabled
                } else if current == Some(pg) {
                    PgState::Active
                } else {
                    PgState::Enabled
                };
                let paths = g
                    .paths
                    .iter()
                    .map(|p| {
                        let st = self.paths.get(&p.dev).cloned().unwrap_or(PathState {
                            active: true,
                            fail_count: 0,
                        });
                        StatusPath {
                            dev: p.dev,
                            state: if st.active {
                                DmPathState::Active
                            } else {
                                DmPathState::Failed
                            },
                            fail_count: st.fail_count,
                            selector_args: selector_path_status(&g.selector.name, &p.args),
                        }
                    })
                    .collect();
                StatusGroup {
                    state,
                    selector_args: Vec::new(),
                    paths,
                }
            })
            .collect();
        let queue_io = u32::from(!any_active && self.queue_if_no_path);
        Some(MultipathStatus {
            features: vec![queue_io.to_string(), "0".to_string()],
            hwhandler: Vec::new(),
            next_pg: current.unwrap_or(self.next_pg),
            groups,
        })
    }

    fn table(&self) -> Option<(u64, MultipathTable)> {
        let (size, t) = self.active.as_ref()?;
        let mut t = t.clone();
        t.features.queue_if_no_path = self.queue_if_no_path;
        t.init_pg = self.current_pg(&t).unwrap_or(self.next_pg);
        Some((*size, t))
    }
}

/// The selector's per-path info status, as the kernel prints it.
fn selector_path_status(selector: &str, table_args: &[String]) -> Vec<String> {
    match selector {
        // in-flight size, relative throughput
        "service-time" => vec![
            "0".to_string(),
            table_args
                .get(1)
                .cloned()
                .unwrap_or_else(|| "1".to_string()),
        ],
        // queue length
        "queue-length" => vec!["0".to_string()],
        _ => Vec::new(),
    }
}

#[derive(Debug, Default)]
struct State {
    maps: BTreeMap<String, SimMap>,
    next_minor: u32,
    failures: BTreeMap<SimOp, u32>,
    calls: Vec<String>,
}

impl State {
    /// Consume one injected failure of `op`, if any.
    fn injected(&mut self, map: &str, op: SimOp) -> Result<(), DmError> {
        match self.failures.get_mut(&op) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(DmError::Ioctl {
                    map: map.to_string(),
                    op: sim_op_name(op),
                    msg: "injected failure (EIO)".to_string(),
                    errno: Some(5),
                })
            }
            _ => Ok(()),
        }
    }

    fn map(&mut self, name: &str) -> Result<&mut SimMap, DmError> {
        self.maps.get_mut(name).ok_or_else(|| DmError::NotFound {
            map: name.to_string(),
        })
    }

    fn load(&mut self, name: &str, size: u64, params: &str) -> Result<(), DmError> {
        self.calls.push(format!("load {name} {params}"));
        self.injected(name, SimOp::Load)?;
        let bad = |msg: String| DmError::Ioctl {
            map: name.to_string(),
            op: "table load",
            msg,
            errno: Some(22),
        };
        let t: MultipathTable = params.parse().map_err(|e| bad(format!("{e}")))?;
        t.validate().map_err(|e| bad(format!("{e}")))?;
        self.map(name)?.inactive = Some((size, t.kernel_form()));
        Ok(())
    }

    fn resume(&mut self, name: &str) -> Result<(), DmError> {
        self.calls.push(format!("resume {name}"));
        self.map(name)?;
        self.injected(name, SimOp::Resume)?;
        self.map(name)?.swap();
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<(), DmError> {
        self.calls.push(format!("remove {name}"));
        self.map(name)?;
        self.injected(name, SimOp::Remove)?;
        self.maps.remove(name);
        Ok(())
    }
}

fn sim_op_name(op: SimOp) -> &'static str {
    match op {
        SimOp::Create => "create",
        SimOp::Load => "table load",
        SimOp::Resume => "resume",
        SimOp::Suspend => "suspend",
        SimOp::Remove => "remove",
        SimOp::Message => "message",
        SimOp::Clear => "table clear",
    }
}

/// In-memory [`DmOps`].
#[derive(Debug, Default)]
pub struct SimDm {
    state: Mutex<State>,
}

impl SimDm {
    pub fn new() -> Self {
        SimDm::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the state from the others.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make the next `times` steps of kind `op` fail (on any map).
    pub fn fail_next(&self, op: SimOp, times: u32) {
        *self.lock().failures.entry(op).or_insert(0) += times;
    }

    /// Set how many openers a map has (mounts, holders).
    /// Dropping to 0 completes a deferred remove.
    pub fn set_open_count(&self, name: &str, count: u32) -> Result<(), DmError> {
        let mut st = self.lock();
        let m = st.map(name)?;
        m.open_count = count;
        if count == 0 && m.deferred_remove {
            st.maps.remove(name);
        }
        Ok(())
    }

    /// The kernel failing a path on an I/O error (as opposed to a
    /// `fail_path` message).
    pub fn kernel_fail_path(&self, name: &str, dev: DevT) -> Result<(), DmError> {
        self.message(name, &DmMessage::FailPath(dev))
    }

    /// A map left without a table, as an interrupted create leaves it.
    pub fn insert_tableless(&self, name: &str, uuid: &str) {
        let mut st = self.lock();
        let minor = st.next_minor;
        st.next_minor += 1;
        st.maps.insert(
            name.to_string(),
            SimMap {
                uuid: uuid.to_string(),
                minor,
                active: None,
                inactive: None,
                suspended: false,
                open_count: 0,
                event_nr: 0,
                queue_if_no_path: false,
                paths: BTreeMap::new(),
                next_pg: 0,
                bypassed: BTreeSet::new(),
                deferred_remove: false,
            },
        );
    }

    /// Every mutating call so far, e.g. `create mpatha`, `load mpatha
    /// <params>`, `resume mpatha`, `message mpatha fail_path 8:16`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Whether a map exists (with or without a table).
    pub fn exists(&self, name: &str) -> bool {
        self.lock().maps.contains_key(name)
    }

    /// Whether a map has a loaded but not yet resumed table.
    pub fn has_inactive_table(&self, name: &str) -> bool {
        self.lock()
            .maps
            .get(name)
            .is_some_and(|m| m.inactive.is_some())
    }
}

impl DmOps for SimDm {
    fn list_maps(&self) -> Result<Vec<MapInfo>, DmError> {
        let st = self.lock();
        Ok(st
            .maps
            .iter()
            .filter(|(_, m)| m.active.is_some() || m.uuid.starts_with("mpath-"))
            .map(|(n, m)| m.info(n))
            .collect())
    }

    fn map_info(&self, name: &str) -> Result<MapInfo, DmError> {
        let mut st = self.lock();
        Ok(st.map(name)?.info(name))
    }

    fn table(&self, name: &str) -> Result<(u64, String), DmError> {
        let mut st = self.lock();
        let m = st.map(name)?;
        let (size, t) = m.table().ok_or_else(|| DmError::NotMultipath {
            map: name.to_string(),
            detail: "no active table".to_string(),
        })?;
        Ok((size, t.to_string()))
    }

    fn status(&self, name: &str) -> Result<String, DmError> {
        let mut st = self.lock();
        let m = st.map(name)?;
        m.status()
            .map(|s| s.to_string())
            .ok_or_else(|| DmError::NotMultipath {
                map: name.to_string(),
                detail: "no active table".to_string(),
            })
    }

    fn create(&self, name: &str, uuid: &str, size: u64, params: &str) -> Result<MapInfo, DmError> {
        let mut st = self.lock();
        st.calls.push(format!("create {name}"));
        if st.maps.contains_key(name)
            || (!uuid.is_empty() && st.maps.values().any(|m| m.uuid == uuid))
        {
            return Err(DmError::Exists {
                map: name.to_string(),
            });
        }
        st.injected(name, SimOp::Create)?;
        drop(st);
        self.insert_tableless(name, uuid);
        let mut st = self.lock();
        let done = st.load(name, size, params).and_then(|()| st.resume(name));
        match done {
            Ok(()) => Ok(st.map(name)?.info(name)),
            Err(cause) => Err(match st.remove(name) {
                Ok(()) => DmError::RolledBack {
                    map: name.to_string(),
                    action: "create",
                    cause: Box::new(cause),
                },
                Err(rollback) => DmError::RollbackFailed {
                    map: name.to_string(),
                    action: "create",
                    cause: Box::new(cause),
                    rollback: Box::new(rollback),
                },
            }),
        }
    }

    fn reload(&self, name: &str, size: u64, params: &str, _noflush: bool) -> Result<(), DmError> {
        let mut st = self.lock();
        st.map(name)?;
        st.load(name, size, params)?;
        let Err(cause) = st.resume(name) else {
            return Ok(());
        };
        // Like the kernel, the swap failed with the map already suspended:
        // clear the new table and resume on the old one.
        st.map(name)?.suspended = true;
        let rollback = st
            .injected(name, SimOp::Clear)
            .and_then(|()| {
                st.map(name)?.inactive = None;
                Ok(())
            })
            .and_then(|()| st.resume(name));
        Err(match rollback {
            Ok(()) => DmError::RolledBack {
                map: name.to_string(),
                action: "reload",
                cause: Box::new(cause),
            },
            Err(rollback) => DmError::RollbackFailed {
                map: name.to_string(),
                action: "reload",
                cause: Box::new(cause),
                rollback: Box::new(rollback),
            },
        })
    }

    fn remove(&self, name: &str, deferred: bool) -> Result<(), DmError> {
        let mut st = self.lock();
        let m = st.map(name)?;
        if m.open_count > 0 {
            if !deferred {
                return Err(DmError::InUse {
                    map: name.to_string(),
                });
            }
            m.deferred_remove = true;
            st.calls.push(format!("remove {name} (deferred)"));
            return Ok(());
        }
        st.remove(name)
    }

    fn message(&self, name: &str, msg: &DmMessage) -> Result<(), DmError> {
        let mut st = self.lock();
        st.calls.push(format!("message {name} {msg}"));
        st.map(name)?;
        st.injected(name, SimOp::Message)?;
        let m = st.map(name)?;
        let invalid = |why: &str| DmError::Ioctl {
            map: name.to_string(),
            op: "message",
            msg: format!("'{msg}': {why}"),
            errno: Some(if why.contains("suspended") { 16 } else { 22 }),
        };
        if m.suspended {
            return Err(invalid("map is suspended"));
        }
        let nr_pg = m.active.as_ref().map_or(0, |(_, t)| t.groups.len() as u32);
        match *msg {
            DmMessage::QueueIfNoPath => m.queue_if_no_path = true,
            DmMessage::FailIfNoPath => m.queue_if_no_path = false,
            DmMessage::FailPath(dev) | DmMessage::ReinstatePath(dev) => {
                let fail = matches!(msg, DmMessage::FailPath(_));
                let p = m
                    .paths
                    .get_mut(&dev)
                    .ok_or_else(|| invalid("path not in map"))?;
                if p.active == fail {
                    p.active = !fail;
                    if fail {
                        p.fail_count += 1;
                    }
                    m.event_nr += 1;
                }
            }
            DmMessage::SwitchGroup(n) | DmMessage::EnableGroup(n) | DmMessage::DisableGroup(n) => {
                if n == 0 || n > nr_pg {
                    return Err(invalid("no such group"));
                }
                match msg {
                    DmMessage::SwitchGroup(_) => {
                        m.bypassed.clear();
                        m.next_pg = n;
                    }
                    DmMessage::EnableGroup(_) => {
                        m.bypassed.remove(&n);
                    }
                    _ => {
                        m.bypassed.insert(n);
                    }
                }
                m.event_nr += 1;
            }
        }
        Ok(())
    }

    fn suspend(&self, name: &str) -> Result<(), DmError> {
        let mut st = self.lock();
        st.calls.push(format!("suspend {name}"));
        st.map(name)?;
        st.injected(name, SimOp::Suspend)?;
        st.map(name)?.suspended = true;
        Ok(())
    }

    fn resume(&self, name: &str) -> Result<(), DmError> {
        self.lock().resume(name)
    }

    fn event_nr(&self, name: &str) -> Result<u32, DmError> {
        let mut st = self.lock();
        Ok(st.map(name)?.event_nr)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::dm::target::TableMatch;

    const T: &str =
        "1 queue_if_no_path 1 alua 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1";
    const UUID: &str = "mpath-3600a0";

    fn d(s: &str) -> DevT {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn sim_with_map() -> SimDm {
        let sim = SimDm::new();
        sim.create("mpatha", UUID, 2048, T)
            .unwrap_or_else(|e| panic!("{e}"));
        sim
    }

    fn status(sim: &SimDm) -> MultipathStatus {
        sim.status("mpatha").unwrap().parse().unwrap()
    }

    #[test]
    fn create_reads_back_in_kernel_form() {
        let sim = sim_with_map();
        let info = sim.map_info("mpatha").unwrap();
        assert_eq!(info.uuid, UUID);
        assert_eq!(info.devt, DevT::new(253, 0));
        assert!(!info.suspended);
        let (size, params) = sim.table("mpatha").unwrap();
        assert_eq!(size, 2048);
        assert_eq!(
            params,
            "1 queue_if_no_path 1 alua 2 1 service-time 0 1 2 8:32 1 1 service-time 0 1 2 8:16 1 1"
        );
        let want: MultipathTable = T.parse().unwrap();
        assert_eq!(want.compare(&params.parse().unwrap()), TableMatch::Same);
        assert_eq!(
            sim.status("mpatha").unwrap(),
            "2 0 0 0 2 1 A 0 1 2 8:32 A 0 0 1 E 0 1 2 8:16 A 0 0 1"
        );
        assert_eq!(sim.list_maps().unwrap().len(), 1);
        assert!(matches!(
            sim.create("mpatha", "other", 1, T),
            Err(DmError::Exists { .. })
        ));
        assert!(matches!(
            sim.create("mpathb", UUID, 1, T),
            Err(DmError::Exists { .. })
        ));
    }

    #[test]
    fn messages_drive_status() {
        let sim = sim_with_map();
        sim.message("mpatha", &DmMessage::FailPath(d("8:32")))
            .unwrap();
        let st = status(&sim);
        assert_eq!(st.path(d("8:32")).unwrap().1.state, DmPathState::Failed);
        assert_eq!(st.path(d("8:32")).unwrap().1.fail_count, 1);
        // Failover to group 2.
        assert_eq!(st.active_group(), Some(2));
        assert_eq!(sim.event_nr("mpatha").unwrap(), 1);
        // Failing a failed path changes nothing.
        sim.message("mpatha", &DmMessage::FailPath(d("8:32")))
            .unwrap();
        assert_eq!(sim.event_nr("mpatha").unwrap(), 1);
        sim.kernel_fail_path("mpatha", d("8:16")).unwrap();
        let st = status(&sim);
        assert_eq!(st.nr_active_paths(), 0);
        assert_eq!(st.queue_io(), Some(1));
        sim.message("mpatha", &DmMessage::FailIfNoPath).unwrap();
        assert_eq!(status(&sim).queue_io(), Some(0));
        assert!(sim.table("mpatha").unwrap().1.starts_with("0 1 alua"));
        sim.message("mpatha", &DmMessage::ReinstatePath(d("8:32")))
            .unwrap();
        sim.message("mpatha", &DmMessage::ReinstatePath(d("8:16")))
            .unwrap();
        let st = status(&sim);
        assert_eq!(st.active_group(), Some(1));
        assert_eq!(st.path(d("8:32")).unwrap().1.fail_count, 1);
        sim.message("mpatha", &DmMessage::SwitchGroup(2)).unwrap();
        assert_eq!(status(&sim).active_group(), Some(2));
        assert!(sim.table("mpatha").unwrap().1.contains(" 2 2 service-time"));
        sim.message("mpatha", &DmMessage::DisableGroup(2)).unwrap();
        let st = status(&sim);
        assert_eq!(st.groups[1].state, PgState::Disabled);
        assert_eq!(st.active_group(), Some(1));
        assert!(sim.message("mpatha", &DmMessage::SwitchGroup(3)).is_err());
        assert!(sim
            .message("mpatha", &DmMessage::FailPath(d("9:9")))
            .is_err());
        assert!(sim
            .message("nope", &DmMessage::QueueIfNoPath)
            .unwrap_err()
            .is_not_found());
    }

    #[test]
    fn create_rolls_back_on_load_or_resume_failure() {
        for op in [SimOp::Load, SimOp::Resume] {
            let sim = SimDm::new();
            sim.fail_next(op, 1);
            let e = sim.create("mpatha", UUID, 2048, T).unwrap_err();
            assert!(matches!(e, DmError::RolledBack { .. }), "{e}");
            assert!(!sim.exists("mpatha"), "{op:?} left a map behind");
        }
        let sim = SimDm::new();
        let e = sim.create("mpatha", UUID, 2048, "1 bogus").unwrap_err();
        assert!(matches!(e, DmError::RolledBack { .. }), "{e}");
        assert!(!sim.exists("mpatha"));
        // Rollback itself failing is reported as such.
        sim.fail_next(SimOp::Resume, 1);
        sim.fail_next(SimOp::Remove, 1);
        let e = sim.create("mpatha", UUID, 2048, T).unwrap_err();
        assert!(matches!(e, DmError::RollbackFailed { .. }), "{e}");
        assert!(sim.list_maps().unwrap().iter().any(|m| !m.has_table()));
    }

    #[test]
    fn reload_swaps_or_rolls_back() {
        let sim = sim_with_map();
        let swapped =
            "1 queue_if_no_path 1 alua 2 1 service-time 0 1 1 8:16 1 service-time 0 1 1 8:32 1";
        sim.message("mpatha", &DmMessage::FailPath(d("8:16")))
            .unwrap();
        sim.reload("mpatha", 2048, swapped, true).unwrap();
        let (_, params) = sim.table("mpatha").unwrap();
        let want: MultipathTable = swapped.parse().unwrap();
        assert_eq!(want.compare(&params.parse().unwrap()), TableMatch::Same);
        // A new table starts with fresh path states.
        assert_eq!(status(&sim).nr_active_paths(), 2);

        sim.fail_next(SimOp::Resume, 1);
        let e = sim.reload("mpatha", 2048, T, true).unwrap_err();
        assert!(matches!(e, DmError::RolledBack { .. }), "{e}");
        assert!(!sim.map_info("mpatha").unwrap().suspended);
        assert!(!sim.has_inactive_table("mpatha"));
        let (_, params) = sim.table("mpatha").unwrap();
        assert_eq!(want.compare(&params.parse().unwrap()), TableMatch::Same);

        sim.fail_next(SimOp::Resume, 2);
        let e = sim.reload("mpatha", 2048, T, true).unwrap_err();
        assert!(matches!(e, DmError::RollbackFailed { .. }), "{e}");

        // A bad table is refused without touching the map.
        let e = sim.reload("mpatha", 2048, "0 0 1 1", false).unwrap_err();
        assert!(
            matches!(
                e,
                DmError::Ioctl {
                    errno: Some(22),
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn remove_refuses_open_maps() {
        let sim = sim_with_map();
        sim.set_open_count("mpatha", 1).unwrap();
        let e = sim.remove("mpatha", false).unwrap_err();
        assert!(e.is_in_use());
        assert_eq!(e.to_string(), "mpatha: map or partition in use");
        sim.remove("mpatha", true).unwrap();
        assert!(sim.exists("mpatha"));
        sim.set_open_count("mpatha", 0).unwrap();
        assert!(!sim.exists("mpatha"));
        assert!(sim.remove("mpatha", false).unwrap_err().is_not_found());
    }

    #[test]
    fn suspended_maps_refuse_messages() {
        let sim = sim_with_map();
        sim.suspend("mpatha").unwrap();
        assert!(sim.map_info("mpatha").unwrap().suspended);
        assert!(sim.message("mpatha", &DmMessage::QueueIfNoPath).is_err());
        sim.resume("mpatha").unwrap();
        sim.message("mpatha", &DmMessage::QueueIfNoPath).unwrap();
        assert_eq!(
            sim.calls(),
            vec![
                "create mpatha",
                format!("load mpatha {T}").as_str(),
                "resume mpatha",
                "suspend mpatha",
                "message mpatha queue_if_no_path",
                "resume mpatha",
                "message mpatha queue_if_no_path",
            ]
        );
    }
}
