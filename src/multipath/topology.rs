//! `multipath -l`/`-ll`: the topology read from device-mapper and sysfs,
//! with no daemon. `-ll` also runs each path's checker and prioritizer.
//!
//! Building the snapshot ([`map_snapshot`]) is pure; [`kernel_maps`] and
//! [`path_views`] are the thin reading side.

use std::str::FromStr;
use std::sync::Arc;

use crate::checker::SysProbe;
use crate::config::Config;
use crate::dm::{DmOps, MultipathStatus, MultipathTable};
use crate::model::{
    ChkState, DevT, DmPathState, MapSnapshot, PathGroupSnapshot, PathInfo, PathSnapshot,
};

use super::MpError;

/// One map as the kernel has it.
#[derive(Debug, Clone)]
pub struct KernelMap {
    pub name: String,
    pub wwid: String,
    pub dm_minor: u32,
    /// The map's own device number.
    pub devt: DevT,
    pub size: u64,
    pub read_only: bool,
    pub table: MultipathTable,
    pub status: MultipathStatus,
}

/// What a path of a map looks like: its sysfs/udev identity, when the
/// device still exists, and what its checker and prioritizer said (-ll).
#[derive(Debug, Clone, Default)]
pub struct PathView {
    pub info: Option<PathInfo>,
    pub chk: ChkState,
    pub checker: String,
    pub prio: i32,
}

/// The maps whose uuid starts with `mpath-`, read from device-mapper.
pub fn kernel_maps(dm: &dyn DmOps) -> Result<Vec<KernelMap>, MpError> {
    let mut out = Vec::new();
    for m in dm.list_maps()? {
        let Some(wwid) = m.uuid.strip_prefix("mpath-") else {
            continue;
        };
        let (info, table) = dm.info_and_table(&m.name)?;
        let Some((size, params)) = table else {
            continue;
        };
        let table = MultipathTable::from_str(&params).map_err(|source| MpError::Grammar {
            map: m.name.clone(),
            source,
        })?;
        let status =
            MultipathStatus::from_str(&dm.status(&m.name)?).map_err(|source| MpError::Grammar {
                map: m.name.clone(),
                source,
            })?;
        out.push(KernelMap {
            name: m.name.clone(),
            wwid: wwid.to_string(),
            dm_minor: info.minor(),
            devt: info.devt,
            size,
            read_only: dm_read_only(info.minor()),
            table,
            status,
        });
    }
    out.sort_by_key(|m| m.dm_minor);
    Ok(out)
}

fn dm_read_only(minor: u32) -> bool {
    std::fs::read_to_string(format!("/sys/block/dm-{minor}/ro")).is_ok_and(|s| s.trim() == "1")
}

/// The kernel name of a block device number (`sdc`), if it still exists.
pub fn dev_name(devt: DevT) -> Option<String> {
    let link = std::fs::read_link(format!("/sys/dev/block/{}:{}", devt.major, devt.minor)).ok()?;
    link.file_name()?.to_str().map(str::to_string)
}

/// Reads each path of `map` from sysfs and udev; with `check`, runs the
/// path's configured checker and prioritizer as multipath -ll does.
pub fn path_views(map: &KernelMap, config: &Config, check: bool) -> Vec<(DevT, PathView)> {
    let probe = SysProbe::new();
    let reader = super::plan::PathReader::new(config);
    map.table
        .paths()
        .map(|devt| {
            let info = dev_name(devt).and_then(|dev| reader.read(&dev));
            let mut view = PathView {
                info,
                chk: ChkState::Undef,
                checker: String::new(),
                prio: crate::prio::PRIO_UNDEF,
            };
            if let Some(info) = &view.info {
                view.checker = config.resolve(info).path_checker;
                if check {
                    (view.chk, view.prio) = super::plan::check_and_prio(&probe, config, info);
                } else if info.dev_state == crate::model::DevState::Offline {
                    // Without checkers multipath still reads the device
                    // state: an offline device is faulty.
                    view.chk = ChkState::Down;
                }
            }
            (devt, view)
        })
        .collect()
}

/// The snapshot `multipath -l`/`-ll` prints for one map.
pub fn map_snapshot(map: &KernelMap, views: &[(DevT, PathView)], check: bool) -> MapSnapshot {
    let view_of = |d: DevT| views.iter().find(|(v, _)| *v == d).map(|(_, v)| v);
    let first_info = views.iter().find_map(|(_, v)| v.info.as_ref());
    let mut groups = Vec::new();
    let mut nr_active = 0;
    for (i, g) in map.table.groups.iter().enumerate() {
        let sg = map.status.groups.get(i);
        let mut paths = Vec::new();
        let (mut sum, mut counted) = (0i64, 0i64);
        for (j, tp) in g.paths.iter().enumerate() {
            // multipath discards paths whose device is gone, and then
            // groups left empty.
            let Some(view) = view_of(tp.dev).filter(|v| v.info.is_some()).cloned() else {
                continue;
            };
            let dm_state = sg
                .and_then(|s| s.paths.get(j))
                .map_or(DmPathState::Undef, |p| p.state);
            nr_active += usize::from(dm_state == DmPathState::Active);
            if view.chk != ChkState::Down {
                sum += i64::from(view.prio.max(0));
                counted += 1;
            }
            let info = view.info.clone().unwrap_or_default();
            paths.push(Arc::new(PathSnapshot {
                info: Arc::new(info),
                chk_state: view.chk,
                dm_state,
                checker: Arc::from(view.checker.as_str()),
                prio: view.prio,
                map: Some(Arc::from(map.name.as_str())),
                ..PathSnapshot::default()
            }));
        }
        let prio = if check && counted > 0 {
            i32::try_from(sum / counted).unwrap_or(i32::MAX)
        } else {
            0
        };
        if paths.is_empty() {
            continue;
        }
        groups.push(PathGroupSnapshot {
            selector: g.selector.to_string(),
            prio,
            dm_state: sg.map_or_else(Default::default, |s| s.state),
            marginal: false,
            paths,
        });
    }
    MapSnapshot {
        name: map.name.clone(),
        wwid: map.wwid.clone(),
        uuid: format!("mpath-{}", map.wwid),
        dm_minor: Some(map.dm_minor),
        vendor: first_info.map(|i| i.vendor.clone()).unwrap_or_default(),
        product: first_info.map(|i| i.product.clone()).unwrap_or_default(),
        rev: first_info.map(|i| i.rev.clone()).unwrap_or_default(),
        size: map.size,
        features: map.table.features.to_string(),
        hwhandler: map.table.hwhandler.to_string(),
        write_prot: map.read_only,
        nr_active,
        dm_st: "active".into(),
        path_groups: groups,
        ..MapSnapshot::default()
    }
}

/// Whether `arg` names `map`, as multipath reads its device argument: a
/// bare word is a map name or WWID; `/dev/...` is the map's node or one of
/// its paths; `MAJ:MIN` is the map's or a path's device number.
pub fn names_map(arg: &str, map: &KernelMap) -> bool {
    let devt = if let Some(mapper) = arg.strip_prefix("/dev/mapper/") {
        return mapper == map.name;
    } else if let Some(dev) = arg.strip_prefix("/dev/") {
        if dev == format!("dm-{}", map.dm_minor) {
            return true;
        }
        devt_of_name(dev)
    } else if let Ok(d) = DevT::from_str(arg) {
        Some(d)
    } else {
        return arg == map.name || arg == map.wwid;
    };
    devt.is_some_and(|d| d == map.devt || map.table.paths().any(|p| p == d))
}

fn devt_of_name(dev: &str) -> Option<DevT> {
    std::fs::read_to_string(format!("/sys/class/block/{dev}/dev"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kmap() -> KernelMap {
        KernelMap {
            name: "36001405aa".into(),
            wwid: "36001405aa".into(),
            dm_minor: 3,
            devt: DevT { major: 253, minor: 3 },
            size: 32768,
            read_only: false,
            table: "1 queue_if_no_path 1 alua 2 1 service-time 0 1 2 8:0 1 1 service-time 0 1 2 8:32 1 1"
                .parse()
                .unwrap(),
            status: "2 0 0 0 2 1 A 0 1 2 8:0 A 0 0 1 E 0 1 2 8:32 F 1 0 1"
                .parse()
                .unwrap(),
        }
    }

    fn view(dev: &str, chk: ChkState, prio: i32) -> PathView {
        PathView {
            info: Some(PathInfo {
                dev: dev.into(),
                vendor: "Linux".into(),
                product: "scsi_debug".into(),
                ..PathInfo::default()
            }),
            chk,
            checker: "tur".into(),
            prio,
        }
    }

    #[test]
    fn long_listing_takes_states_from_status_and_prio_from_checks() {
        let m = kmap();
        let views = vec![
            (DevT { major: 8, minor: 0 }, view("sda", ChkState::Up, 50)),
            (
                DevT {
                    major: 8,
                    minor: 32,
                },
                view("sdc", ChkState::Down, 10),
            ),
        ];
        let s = map_snapshot(&m, &views, true);
        assert_eq!(s.features, "1 queue_if_no_path");
        assert_eq!(s.hwhandler, "1 alua");
        assert_eq!(s.vendor, "Linux");
        assert_eq!(s.nr_active, 1);
        assert_eq!(s.path_groups[0].prio, 50);
        // A path its checker finds down does not count toward the group.
        assert_eq!(s.path_groups[1].prio, 0);
        assert_eq!(s.path_groups[1].paths[0].dm_state, DmPathState::Failed);
        assert_eq!(s.path_groups[1].dm_state, crate::model::PgState::Enabled);
    }

    #[test]
    fn short_listing_has_no_prio() {
        let m = kmap();
        let views = vec![(
            DevT { major: 8, minor: 0 },
            view("sda", ChkState::Undef, -1),
        )];
        let s = map_snapshot(&m, &views, false);
        assert_eq!(s.path_groups[0].prio, 0);
        // The second path has no view: its device is gone, and its group,
        // left empty, is not shown.
        assert_eq!(s.path_groups.len(), 1);
    }

    #[test]
    fn map_names() {
        let m = kmap();
        assert!(names_map("36001405aa", &m));
        assert!(names_map("/dev/mapper/36001405aa", &m));
        assert!(names_map("/dev/dm-3", &m));
        assert!(names_map("253:3", &m));
        assert!(names_map("8:32", &m));
        // A bare word is a map name or WWID, never a path (as multipath).
        assert!(!names_map("dm-3", &m));
        assert!(!names_map("8:16", &m));
        assert!(!names_map("other", &m));
    }
}
