//! The redundancy audit (`show redundancy`, `mpathutil check`): what all
//! the usable paths of a map have in common. Multipathing protects I/O
//! only from faults in what the paths do not share; anything every path
//! goes through is a single point of failure, and is named.
//!
//! Pure: it reads a snapshot's maps and their paths' identity.

use serde::Serialize;

use crate::discovery::sysfs::PROP_ISCSI_PORTAL;
use crate::model::{DmPathState, MapSnapshot, PathInfo, PathSnapshot, Transport};

/// One finding about one map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `spof` (everything goes through it) or `warning`.
    pub kind: &'static str,
    pub what: String,
}

/// A map's audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapAudit {
    pub map: String,
    pub wwid: String,
    pub usable_paths: usize,
    pub findings: Vec<Finding>,
}

impl MapAudit {
    pub fn redundant(&self) -> bool {
        self.findings.is_empty()
    }
}

fn usable(p: &PathSnapshot) -> bool {
    p.dm_state == DmPathState::Active
        && (p.chk_state.is_usable() || p.chk_state == crate::model::ChkState::Undef)
}

/// The value every path shares, if they all have one and it is the same.
fn shared<'a>(
    paths: &[&'a PathInfo],
    f: impl Fn(&'a PathInfo) -> Option<String>,
) -> Option<String> {
    let mut it = paths.iter().map(|p| f(p));
    let first = it.next()??;
    it.all(|v| v.as_deref() == Some(first.as_str()))
        .then_some(first)
}

fn spof(what: String) -> Finding {
    Finding { kind: "spof", what }
}

/// Audits one map.
pub fn audit_map(m: &MapSnapshot) -> MapAudit {
    let all: Vec<&PathSnapshot> = m
        .path_groups
        .iter()
        .flat_map(|g| &g.paths)
        .map(|p| &**p)
        .collect();
    let up: Vec<&PathInfo> = all.iter().filter(|p| usable(p)).map(|p| &*p.info).collect();
    let mut findings = Vec::new();
    let n = up.len();
    match n {
        0 => findings.push(spof("no usable path".into())),
        1 => findings.push(spof(format!("only one usable path ({})", up[0].dev))),
        _ => {
            let all_n = format!("all {n} paths");
            if let Some(h) = shared(&up, |p| p.hcil.map(|h| h.host.to_string())) {
                let adapter = up[0]
                    .host_adapter
                    .as_deref()
                    .map(|a| format!(", adapter {a}"))
                    .unwrap_or_default();
                findings.push(spof(format!("{all_n} go through SCSI host {h}{adapter}")));
            }
            if up.iter().all(|p| p.transport == Transport::Iscsi) {
                if let Some(ip) = shared(&up, |p| p.host_adapter.clone()) {
                    findings.push(spof(format!(
                        "{all_n} leave through one initiator address {ip} (one NIC and subnet: multipathing protects only the target side)"
                    )));
                }
                if let Some(portal) = shared(&up, |p| p.properties.get(PROP_ISCSI_PORTAL).cloned())
                {
                    findings.push(spof(format!("{all_n} go to one target portal {portal}")));
                }
            }
            if up.iter().all(|p| p.transport == Transport::Fcp) {
                if let Some(t) = shared(&up, |p| p.target_wwpn.clone()) {
                    findings.push(spof(format!(
                        "{all_n} reach the array through one target port {t}"
                    )));
                }
            }
            if let Some(tpg) = shared(&up, |p| p.tpg_id.map(|t| t.to_string())) {
                findings.push(spof(format!(
                    "{all_n} are in ALUA target port group {tpg} (one controller)"
                )));
            }
        }
    }
    // One path group although the array tells the paths apart.
    let states: std::collections::BTreeSet<&str> = all
        .iter()
        .filter_map(|p| p.info.access_state.as_deref())
        .collect();
    if m.path_groups.len() == 1 && all.len() > 1 && states.len() > 1 {
        findings.push(Finding {
            kind: "warning",
            what: format!(
                "all paths are in one path group although the array reports {} (group_by_prio would separate them)",
                states.into_iter().collect::<Vec<_>>().join(" and ")
            ),
        });
    }
    MapAudit {
        map: m.name.clone(),
        wwid: m.wwid.clone(),
        usable_paths: n,
        findings,
    }
}

/// Every map's audit.
pub fn audit(maps: &[std::sync::Arc<MapSnapshot>]) -> Vec<MapAudit> {
    maps.iter().map(|m| audit_map(m)).collect()
}

/// `show redundancy`: one line a map (`ok` or its findings).
pub fn text(audits: &[MapAudit]) -> String {
    let mut out = String::new();
    for a in audits {
        if a.redundant() {
            out.push_str(&format!(
                "{}: ok: {} usable paths share no single point of failure\n",
                a.map, a.usable_paths
            ));
        }
        for f in &a.findings {
            out.push_str(&format!("{}: {}: {}\n", a.map, f.kind, f.what));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{ChkState, Hcil, PathGroupSnapshot};
    use std::sync::Arc;

    fn path(dev: &str, host: u32, f: impl Fn(&mut PathInfo)) -> Arc<PathSnapshot> {
        let mut info = PathInfo {
            dev: dev.into(),
            hcil: Some(Hcil {
                host,
                channel: 0,
                target: 0,
                lun: 0,
            }),
            ..PathInfo::default()
        };
        f(&mut info);
        Arc::new(PathSnapshot {
            info: Arc::new(info),
            chk_state: ChkState::Up,
            dm_state: DmPathState::Active,
            ..PathSnapshot::default()
        })
    }

    fn map(groups: Vec<Vec<Arc<PathSnapshot>>>) -> MapSnapshot {
        MapSnapshot {
            name: "m".into(),
            path_groups: groups
                .into_iter()
                .map(|paths| PathGroupSnapshot {
                    paths,
                    ..PathGroupSnapshot::default()
                })
                .collect(),
            ..MapSnapshot::default()
        }
    }

    fn iscsi(ip: &'static str, portal: &'static str) -> impl Fn(&mut PathInfo) {
        move |i: &mut PathInfo| {
            i.transport = Transport::Iscsi;
            i.host_adapter = Some(ip.into());
            i.properties.insert(PROP_ISCSI_PORTAL.into(), portal.into());
        }
    }

    #[test]
    fn independent_iscsi_paths_are_ok() {
        let m = map(vec![
            vec![path("sda", 2, iscsi("192.168.201.1", "192.168.201.2:3260"))],
            vec![path("sdb", 3, iscsi("192.168.202.1", "192.168.202.2:3260"))],
        ]);
        let a = audit_map(&m);
        assert!(a.redundant(), "{a:?}");
        assert!(text(&[a]).contains("m: ok: 2 usable paths"));
    }

    #[test]
    fn one_nic_one_portal_one_host_are_named() {
        let m = map(vec![vec![
            path("sda", 2, iscsi("10.0.0.1", "10.0.0.9:3260")),
            path("sdb", 3, iscsi("10.0.0.1", "10.0.0.9:3260")),
        ]]);
        let t = text(&[audit_map(&m)]);
        assert!(
            t.contains("spof: all 2 paths leave through one initiator address 10.0.0.1"),
            "{t}"
        );
        assert!(
            t.contains("spof: all 2 paths go to one target portal 10.0.0.9:3260"),
            "{t}"
        );
        assert!(!t.contains("SCSI host"), "{t}");
        let m = map(vec![vec![path("sda", 4, |_| {}), path("sdb", 4, |_| {})]]);
        assert!(text(&[audit_map(&m)]).contains("spof: all 2 paths go through SCSI host 4"));
    }

    #[test]
    fn single_path_failed_paths_and_one_group_over_two_states() {
        let m = map(vec![vec![path("sda", 1, |_| {})]]);
        assert!(text(&[audit_map(&m)]).contains("only one usable path (sda)"));
        let mut failed = PathSnapshot::clone(&path("sdb", 2, |_| {}));
        failed.dm_state = DmPathState::Failed;
        let m = map(vec![vec![path("sda", 1, |_| {})], vec![Arc::new(failed)]]);
        assert_eq!(audit_map(&m).usable_paths, 1);
        let ao = |i: &mut PathInfo| i.access_state = Some("active/optimized".into());
        let an = |i: &mut PathInfo| i.access_state = Some("active/non-optimized".into());
        let m = map(vec![vec![path("sda", 1, ao), path("sdb", 2, an)]]);
        let a = audit_map(&m);
        assert_eq!(a.findings.len(), 1, "{a:?}");
        assert!(a.findings[0].what.contains("one path group although"));
        let tpg = |i: &mut PathInfo| i.tpg_id = Some(1);
        let m = map(vec![vec![path("sda", 1, tpg)], vec![path("sdb", 2, tpg)]]);
        assert!(text(&[audit_map(&m)]).contains("ALUA target port group 1"));
    }
}
