//! `multipath -d` (and creation without a daemon): which maps the present
//! paths call for and their tables, by the same policy code the daemon
//! runs (discovery's claim decision, grouping, table rendering).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::checker::{checker_timeout, CheckerKind, PathProbe, SysProbe};
use crate::config::Config;
use crate::discovery::claim::{claim, Claim, ClaimInput};
use crate::discovery::filter::KnownWwids;
use crate::discovery::sysfs::SysfsRoot;
use crate::dm::MultipathTable;
use crate::model::{
    ChkState, DmPathState, MapSnapshot, PathGroupSnapshot, PathInfo, PathSnapshot, PgPolicy,
    PgState, Settings,
};
use crate::policy::grouping::{group_paths, GroupInput};
use crate::prio::PrioSpec;

use super::topology::KernelMap;

/// A map the paths call for.
#[derive(Debug, Clone)]
pub struct PlannedMap {
    pub name: String,
    pub wwid: String,
    pub size: u64,
    pub settings: Settings,
    pub table: MultipathTable,
    pub groups: Vec<PlannedGroup>,
}

/// A path group of a planned map: its prio and its paths in table order.
#[derive(Debug, Clone)]
pub struct PlannedGroup {
    pub prio: i32,
    pub paths: Vec<ProbedPath>,
}

/// A path as read for planning, with what its checker and prio said.
#[derive(Debug, Clone)]
pub struct ProbedPath {
    pub info: PathInfo,
    pub chk: ChkState,
    pub prio: i32,
}

/// Reads SCSI disks as discovery does: sysfs, and udev's database for the
/// properties (the configured uid_attribute among them).
pub struct PathReader {
    root: SysfsRoot,
    uid: crate::discovery::UidAttributeFn,
}

impl PathReader {
    pub fn new(config: &Config) -> Self {
        let cfg = config.clone();
        PathReader {
            root: SysfsRoot::default(),
            uid: Arc::new(move |i: &PathInfo| cfg.resolve(i).uid_attribute),
        }
    }

    /// The disk `dev`, if it exists and can be read.
    pub fn read(&self, dev: &str) -> Option<PathInfo> {
        let props = crate::discovery::udev::udev_properties(dev);
        crate::discovery::udev::build_path(&self.root, dev, props, &self.uid)
            .ok()
            .map(|(i, _)| i)
    }
}

/// Every SCSI disk with an identity, read from sysfs and udev.
pub fn present_paths(config: &Config) -> Vec<PathInfo> {
    let reader = PathReader::new(config);
    reader
        .root
        .scsi_disks()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|dev| reader.read(&dev))
        .collect()
}

/// One path's configured checker, then (unless it finds the path down)
/// its prioritizer, as multipath -ll and map creation run them.
pub fn check_and_prio(probe: &SysProbe, config: &Config, info: &PathInfo) -> (ChkState, i32) {
    let settings = config.resolve(info);
    let (kind, _) = CheckerKind::resolve(&settings.path_checker);
    let chk = probe
        .check(&info.dev, kind, checker_timeout(&settings, info))
        .state;
    let prio = if chk == ChkState::Down {
        crate::prio::PRIO_UNDEF
    } else {
        let spec = PrioSpec::from_settings(&settings);
        probe.prio(info, &spec, Duration::from_secs(5)).prio
    };
    (chk, prio)
}

/// Runs each path's checker and prioritizer.
pub fn probe(config: &Config, paths: Vec<PathInfo>) -> Vec<ProbedPath> {
    let probe = SysProbe::new();
    paths
        .into_iter()
        .map(|info| {
            let (chk, prio) = check_and_prio(&probe, config, &info);
            ProbedPath { info, chk, prio }
        })
        .collect()
}

/// What the planner needs besides the paths.
pub struct PlanInput<'a> {
    pub config: &'a Config,
    pub known: &'a KnownWwids,
    /// `-p`: the grouping policy for every map.
    pub policy: Option<PgPolicy>,
    /// Names already bound to WWIDs (bindings file), for user_friendly_names.
    pub bindings: &'a [(String, String)],
    pub now: u64,
}

/// The maps `paths` call for (pure: the I/O is done by the caller).
pub fn plan(paths: &[ProbedPath], input: &PlanInput<'_>) -> Vec<PlannedMap> {
    let mut wwids: Vec<&str> = Vec::new();
    for p in paths {
        if let Some(w) = p.info.wwid.as_deref() {
            if !wwids.contains(&w) {
                wwids.push(w);
            }
        }
    }
    wwids
        .into_iter()
        .filter_map(|wwid| {
            let members: Vec<&ProbedPath> = paths
                .iter()
                .filter(|p| p.info.wwid.as_deref() == Some(wwid))
                .collect();
            plan_one(wwid, &members, input)
        })
        .collect()
}

fn plan_one(wwid: &str, members: &[&ProbedPath], input: &PlanInput<'_>) -> Option<PlannedMap> {
    let first = members.first()?;
    let settings = input.config.resolve(&first.info);
    let siblings: Vec<PathInfo> = members[1..].iter().map(|p| p.info.clone()).collect();
    let claimed = claim(
        &ClaimInput {
            path: &first.info,
            identity_error: None,
            siblings: &siblings,
            settings: &settings,
            known_hardware: settings.known_hardware,
            known: input.known,
            wait_until: None,
            now: input.now,
        },
        input.config,
    );
    if !matches!(claimed, Claim::Yes { .. }) {
        return None;
    }
    let group_input: Vec<GroupInput> = members
        .iter()
        .filter_map(|p| GroupInput::of(&p.info, p.prio, p.chk))
        .collect();
    let policy = input.policy.unwrap_or(settings.path_grouping_policy);
    let groups = group_paths(
        &group_input,
        policy,
        settings.rr_weight,
        settings.rr_min_io_rq,
    );
    let table = crate::policy::table::render(&settings, first.info.dh_state.as_deref(), &groups);
    let groups = groups
        .iter()
        .map(|g| {
            let paths = g
                .paths
                .iter()
                .filter_map(|(dev, _, _)| members.iter().find(|p| &p.info.dev == dev))
                .map(|p| (*p).clone())
                .collect();
            PlannedGroup {
                prio: g.prio,
                paths,
            }
        })
        .collect();
    Some(PlannedMap {
        name: map_name(wwid, &settings, input.bindings),
        wwid: wwid.to_string(),
        size: first.info.size,
        settings,
        table,
        groups,
    })
}

/// The map's name: its alias, else its bound friendly name, else its WWID.
/// (A dry run never allocates a new friendly name.)
fn map_name(wwid: &str, settings: &Settings, bindings: &[(String, String)]) -> String {
    if let Some(a) = &settings.alias {
        return a.clone();
    }
    if settings.user_friendly_names {
        if let Some((alias, _)) = bindings.iter().find(|(_, w)| w == wwid) {
            return alias.clone();
        }
    }
    wwid.to_string()
}

/// What to do with a planned map given the maps that exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Create,
    Reload,
    Nothing,
}

/// multipath 0.9.4 leaves an existing map alone unless asked to reload it
/// (`-r`), even when its policy would now build another table (measured
/// in the guest with `-d -p multibus`); the daemon is what keeps tables
/// current.
pub fn change_for(planned: &PlannedMap, existing: &[KernelMap], force_reload: bool) -> Change {
    match existing.iter().find(|m| m.wwid == planned.wwid) {
        None => Change::Create,
        Some(_) if force_reload => Change::Reload,
        Some(_) => Change::Nothing,
    }
}

/// The transport timeouts multipath sets for a path of a planned map.
pub fn transport_plan(planned: &PlannedMap, path: &PathInfo) -> crate::transport::Plan {
    let s = &planned.settings;
    crate::transport::plan(
        &crate::transport::TimeoutSettings {
            fast_io_fail: s.fast_io_fail_tmo.and_then(|v| u32::try_from(v).ok()),
            dev_loss: s.dev_loss_tmo,
            eh_deadline: s.eh_deadline,
            no_path_retry: s.no_path_retry,
            polling_interval: s.polling_interval,
        },
        path.hcil.map(|h| h.host),
        path.endpoint.as_ref(),
    )
}

/// The snapshot a planned map prints as (`undef` where no map exists yet).
pub fn planned_snapshot(p: &PlannedMap, dm_minor: Option<u32>) -> MapSnapshot {
    let first = p
        .groups
        .iter()
        .flat_map(|g| &g.paths)
        .map(|p| &p.info)
        .next();
    let path_groups = p
        .groups
        .iter()
        .map(|g| PathGroupSnapshot {
            selector: crate::policy::table::normalize_selector(&p.settings.path_selector),
            prio: g.prio,
            dm_state: PgState::Undef,
            marginal: false,
            paths: g
                .paths
                .iter()
                .map(|path| {
                    Arc::new(PathSnapshot {
                        info: Arc::new(path.info.clone()),
                        chk_state: path.chk,
                        dm_state: DmPathState::Undef,
                        prio: path.prio,
                        map: Some(Arc::from(p.name.as_str())),
                        ..PathSnapshot::default()
                    })
                })
                .collect(),
        })
        .collect();
    MapSnapshot {
        name: p.name.clone(),
        wwid: p.wwid.clone(),
        uuid: format!("mpath-{}", p.wwid),
        dm_minor,
        vendor: first.map(|i| i.vendor.clone()).unwrap_or_default(),
        product: first.map(|i| i.product.clone()).unwrap_or_default(),
        rev: first.map(|i| i.rev.clone()).unwrap_or_default(),
        size: p.size,
        features: p.table.features.to_string(),
        hwhandler: p.table.hwhandler.to_string(),
        path_groups,
        ..MapSnapshot::default()
    }
}

/// The WWIDs with a map now, for the claim decision.
pub fn known_wwids(existing: &[KernelMap], wwids_file: Option<BTreeSet<String>>) -> KnownWwids {
    KnownWwids {
        in_wwids_file: wwids_file.unwrap_or_default(),
        with_map: existing.iter().map(|m| m.wwid.clone()).collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::DevT;

    fn path(dev: &str, minor: u32, wwid: &str, chk: ChkState, prio: i32) -> ProbedPath {
        ProbedPath {
            info: PathInfo {
                dev: dev.into(),
                devt: Some(DevT { major: 8, minor }),
                wwid: Some(wwid.into()),
                vendor: "Linux".into(),
                product: "scsi_debug".into(),
                size: 32768,
                properties: [
                    ("ID_SERIAL".to_string(), wwid.to_string()),
                    ("ID_WWN".to_string(), wwid.to_string()),
                ]
                .into(),
                ..PathInfo::default()
            },
            chk,
            prio,
        }
    }

    fn config(text: &str) -> Config {
        Config::parse_str(text, "test.conf").unwrap().0
    }

    fn input<'a>(cfg: &'a Config, known: &'a KnownWwids) -> PlanInput<'a> {
        PlanInput {
            config: cfg,
            known,
            policy: None,
            bindings: &[],
            now: 0,
        }
    }

    #[test]
    fn plans_one_map_per_wwid_with_groups_by_prio() {
        let cfg =
            config("defaults {\n find_multipaths greedy\n path_grouping_policy group_by_prio\n}\n");
        let paths = vec![
            path("sda", 0, "W1", ChkState::Up, 50),
            path("sdb", 16, "W2", ChkState::Up, 50),
            path("sdc", 32, "W1", ChkState::Up, 10),
        ];
        let known = KnownWwids::default();
        let input = input(&cfg, &known);
        let maps = plan(&paths, &input);
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0].wwid, "W1");
        assert_eq!(maps[0].groups.len(), 2);
        assert_eq!(maps[0].groups[0].prio, 50);
        assert_eq!(maps[0].groups[0].paths[0].info.dev, "sda");
        // -p multibus: one group, the mean prio.
        let input = PlanInput {
            policy: Some(PgPolicy::Multibus),
            ..input
        };
        let maps = plan(&paths, &input);
        assert_eq!(maps[0].groups.len(), 1);
        assert_eq!(maps[0].groups[0].prio, 30);
        let snap = planned_snapshot(&maps[0], None);
        assert_eq!(snap.path_groups[0].dm_state, PgState::Undef);
    }

    #[test]
    fn strict_find_multipaths_plans_nothing_new() {
        let cfg = config("defaults {\n find_multipaths strict\n}\n");
        let paths = vec![
            path("sda", 0, "W1", ChkState::Up, 1),
            path("sdc", 32, "W1", ChkState::Up, 1),
        ];
        let known = KnownWwids::default();
        let input = input(&cfg, &known);
        assert!(plan(&paths, &input).is_empty());
        let known = KnownWwids {
            in_wwids_file: ["W1".to_string()].into(),
            ..KnownWwids::default()
        };
        let input = PlanInput {
            known: &known,
            ..input
        };
        assert_eq!(plan(&paths, &input).len(), 1);
    }
}
