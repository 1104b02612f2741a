//! Path grouping: from a map's paths (with their priorities and checker
//! states) to the ordered path groups of its device-mapper table.
//!
//! Pure functions; multipath-tools' rules: a group's priority is the mean
//! priority of its usable paths, groups sort by priority (ties: more usable
//! paths first), and the table's first group is the one I/O starts on.

use std::collections::BTreeMap;

use crate::model::{ChkState, DevT, PgPolicy, RrWeight};

/// What grouping needs to know about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInput {
    pub dev: String,
    pub devt: DevT,
    pub prio: i32,
    pub chk: ChkState,
    pub serial: Option<String>,
    pub node_name: Option<String>,
    pub tpg_id: Option<u16>,
}

impl GroupInput {
    /// A path as grouping sees it; None without a device number.
    pub fn of(info: &crate::model::PathInfo, prio: i32, chk: ChkState) -> Option<GroupInput> {
        Some(GroupInput {
            dev: info.dev.clone(),
            devt: info.devt?,
            prio,
            chk,
            serial: info.serial.clone(),
            node_name: info.target_wwnn.clone(),
            tpg_id: info.tpg_id,
        })
    }
}

/// One path group as it goes into the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGroup {
    pub prio: i32,
    /// Paths in table order: (dev, devt, repeat count).
    pub paths: Vec<(String, DevT, u32)>,
}

fn usable(chk: ChkState) -> bool {
    // A path not checked yet counts as usable: it is in the table and the
    // kernel will try it, exactly as multipathd treats it at creation.
    matches!(
        chk,
        ChkState::Up | ChkState::Ghost | ChkState::Undef | ChkState::Pending
    )
}

/// Group `paths` under `policy`; returns groups in table order.
pub fn group_paths(
    paths: &[GroupInput],
    policy: PgPolicy,
    rr_weight: RrWeight,
    rr_min_io_rq: u32,
) -> Vec<PathGroup> {
    let mut buckets: Vec<Vec<&GroupInput>> = Vec::new();
    match policy {
        PgPolicy::Failover => buckets.extend(paths.iter().map(|p| vec![p])),
        PgPolicy::Multibus => {
            if !paths.is_empty() {
                buckets.push(paths.iter().collect());
            }
        }
        PgPolicy::GroupByPrio => bucket_by(paths, &mut buckets, |p| p.prio.to_string()),
        PgPolicy::GroupBySerial => bucket_by(paths, &mut buckets, |p| {
            p.serial.clone().unwrap_or_default()
        }),
        PgPolicy::GroupByNodeName => bucket_by(paths, &mut buckets, |p| {
            p.node_name.clone().unwrap_or_default()
        }),
        PgPolicy::GroupByTpg => bucket_by(paths, &mut buckets, |p| {
            p.tpg_id.map(|t| t.to_string()).unwrap_or_default()
        }),
    }
    let repeat = rr_min_io_rq.max(1);
    let mut groups: Vec<(PathGroup, usize)> = buckets
        .into_iter()
        .map(|members| {
            // The table must not depend on checker state (a reload would
            // reinstate failed paths in the kernel), so the group's prio is
            // the mean over all its paths; usable paths only break ties.
            let sum: i64 = members.iter().map(|p| i64::from(p.prio.max(0))).sum();
            let prio = i32::try_from(sum / members.len().max(1) as i64).unwrap_or(i32::MAX);
            let nr_good = members.iter().filter(|p| usable(p.chk)).count();
            let paths = members
                .iter()
                .map(|p| {
                    let r = match rr_weight {
                        RrWeight::Uniform => repeat,
                        RrWeight::Priorities => {
                            repeat.saturating_mul(u32::try_from(p.prio.max(1)).unwrap_or(1))
                        }
                    };
                    (p.dev.clone(), p.devt, r)
                })
                .collect();
            (PathGroup { prio, paths }, nr_good)
        })
        .collect();
    // Stable sort keeps discovery order among equals.
    groups.sort_by(|a, b| b.0.prio.cmp(&a.0.prio).then(b.1.cmp(&a.1)));
    groups.into_iter().map(|(g, _)| g).collect()
}

fn bucket_by<'a>(
    paths: &'a [GroupInput],
    buckets: &mut Vec<Vec<&'a GroupInput>>,
    key: impl Fn(&GroupInput) -> String,
) {
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for p in paths {
        let k = key(p);
        match index.get(&k) {
            Some(&i) => buckets[i].push(p),
            None => {
                index.insert(k, buckets.len());
                buckets.push(vec![p]);
            }
        }
    }
}

/// Index (0-based) of the best group to fail back to: the first group in
/// table order that has a usable path.
pub fn best_group(groups: &[PathGroup], chk: impl Fn(&str) -> ChkState) -> Option<usize> {
    groups
        .iter()
        .position(|g| g.paths.iter().any(|(dev, _, _)| chk(dev).is_usable()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(dev: &str, minor: u32, prio: i32, chk: ChkState) -> GroupInput {
        GroupInput {
            dev: dev.into(),
            devt: DevT::new(8, minor),
            prio,
            chk,
            serial: None,
            node_name: None,
            tpg_id: None,
        }
    }

    #[test]
    fn group_by_prio_orders_active_first() {
        let paths = [
            p("sdb", 16, 1, ChkState::Up),
            p("sdc", 32, 50, ChkState::Up),
            p("sdd", 48, 1, ChkState::Up),
            p("sde", 64, 50, ChkState::Up),
        ];
        let g = group_paths(&paths, PgPolicy::GroupByPrio, RrWeight::Uniform, 1);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].prio, 50);
        assert_eq!(g[0].paths[0].0, "sdc");
        assert_eq!(g[0].paths[1].0, "sde");
        assert_eq!(g[1].prio, 1);
    }

    #[test]
    fn failover_one_path_per_group_sorted_by_prio() {
        let paths = [
            p("sdb", 16, 10, ChkState::Up),
            p("sdc", 32, 50, ChkState::Up),
        ];
        let g = group_paths(&paths, PgPolicy::Failover, RrWeight::Uniform, 1);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].paths[0].0, "sdc");
    }

    #[test]
    fn multibus_single_group_and_weights() {
        let paths = [
            p("sdb", 16, 10, ChkState::Up),
            p("sdc", 32, 50, ChkState::Down),
        ];
        let g = group_paths(&paths, PgPolicy::Multibus, RrWeight::Priorities, 2);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].prio, 30);
        assert_eq!(g[0].paths[0].2, 20);
        assert_eq!(g[0].paths[1].2, 100);
    }

    #[test]
    fn ties_prefer_usable_groups() {
        let paths = [
            p("sdb", 16, 10, ChkState::Down),
            p("sdc", 32, 10, ChkState::Up),
        ];
        let g = group_paths(&paths, PgPolicy::Failover, RrWeight::Uniform, 1);
        assert_eq!(g[0].paths[0].0, "sdc", "equal prio: usable paths first");
        let best = best_group(&g, |d| {
            if d == "sdb" {
                ChkState::Up
            } else {
                ChkState::Down
            }
        });
        assert_eq!(best, Some(1));
    }

    #[test]
    fn empty_input_gives_no_groups() {
        assert!(group_paths(&[], PgPolicy::Multibus, RrWeight::Uniform, 1).is_empty());
    }
}
