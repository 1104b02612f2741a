//! The redundancy audit (`show redundancy`, `mpathutil check`): what all
//! the usable paths of a map have in common. Multipathing protects I/O
//! only from faults in what the paths do not share; anything every path
//! goes through is a single point of failure, and is named.
//!
//! Pure: it reads a snapshot's maps and their paths' identity.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::discovery::sysfs::PROP_ISCSI_PORTAL;
use crate::model::{DmPathState, MapSnapshot, PathInfo, PathSnapshot, Transport};
use crate::transport::net::{Egress, NetView};

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

/// Audits one map; `net` is the host's interfaces, for the iSCSI paths.
pub fn audit_map(m: &MapSnapshot, net: &NetView) -> MapAudit {
    let all: Vec<&PathSnapshot> = m
        .path_groups
        .iter()
        .flat_map(|g| &g.paths)
        .map(|p| &**p)
        .collect();
    let up: Vec<&PathInfo> = all.iter().filter(|p| usable(p)).map(|p| &*p.info).collect();
    let mut findings = Vec::new();
    match up.len() {
        0 => findings.push(spof("no usable path".into())),
        1 => findings.push(spof(format!("only one usable path ({})", up[0].dev))),
        _ => shared_parts(&up, net, &mut findings),
    }
    if up.iter().any(|p| p.transport == Transport::Iscsi) {
        bonds(&up, net, &mut findings);
    }
    one_group_over_states(m, &all, &mut findings);
    MapAudit {
        map: m.name.clone(),
        wwid: m.wwid.clone(),
        usable_paths: up.len(),
        findings,
    }
}

/// What two or more usable paths all go through.
fn shared_parts(up: &[&PathInfo], net: &NetView, findings: &mut Vec<Finding>) {
    let all_n = format!("all {} paths", up.len());
    if let Some(h) = shared(up, |p| p.hcil.map(|h| h.host.to_string())) {
        let adapter = up[0]
            .host_adapter
            .as_deref()
            .map(|a| format!(", adapter {a}"))
            .unwrap_or_default();
        findings.push(spof(format!("{all_n} go through SCSI host {h}{adapter}")));
    }
    if up.iter().all(|p| p.transport == Transport::Iscsi) {
        initiator_side(up, net, &all_n, findings);
        if let Some(portal) = shared(up, |p| p.properties.get(PROP_ISCSI_PORTAL).cloned()) {
            findings.push(spof(format!("{all_n} go to one target portal {portal}")));
        }
    }
    if up.iter().all(|p| p.transport == Transport::Fcp) {
        if let Some(t) = shared(up, |p| p.target_wwpn.clone()) {
            findings.push(spof(format!(
                "{all_n} reach the array through one target port {t}"
            )));
        }
    }
    if let Some(tpg) = shared(up, |p| p.tpg_id.map(|t| t.to_string())) {
        findings.push(spof(format!(
            "{all_n} are in ALUA target port group {tpg} (one controller)"
        )));
    }
}

/// The host side of iSCSI paths: one interface, or one subnet (seed 001:
/// each initiator NIC on its own subnet, one portal of each controller
/// on each). The initiator address stands in when no interface owns it
/// (an offload HBA).
fn initiator_side(up: &[&PathInfo], net: &NetView, all_n: &str, findings: &mut Vec<Finding>) {
    let egress: Option<Vec<Egress<'_>>> = up
        .iter()
        .map(|p| p.host_adapter.as_deref().and_then(|a| net.egress(a)))
        .collect();
    let Some(egress) = egress else {
        if let Some(ip) = shared(up, |p| p.host_adapter.clone()) {
            findings.push(spof(format!(
                "{all_n} leave through one initiator address {ip} (one NIC and subnet: multipathing protects only the target side)"
            )));
        }
        return;
    };
    let first = &egress[0];
    if egress.iter().all(|e| e.iface.name == first.iface.name) {
        findings.push(spof(format!(
            "{all_n} go through {} ({}): multipathing protects only the target side",
            first.iface.name, first.subnet
        )));
    } else if egress.iter().all(|e| e.subnet == first.subnet) {
        let names: BTreeSet<&str> = egress.iter().map(|e| e.iface.name.as_str()).collect();
        findings.push(spof(format!(
            "{all_n} leave from one subnet {} ({}): put each initiator interface on its own subnet",
            first.subnet,
            names.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
}

/// Bonding under iSCSI multipathing (seed 003: do not mix them).
fn bonds(up: &[&PathInfo], net: &NetView, findings: &mut Vec<Finding>) {
    let mut by_bond: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in up {
        let bond = p
            .host_adapter
            .as_deref()
            .and_then(|a| net.egress(a))
            .and_then(|e| e.iface.bond.as_deref());
        if let Some(b) = bond {
            by_bond.entry(b).or_default().push(&p.dev);
        }
    }
    for (bond, devs) in by_bond {
        findings.push(Finding {
            kind: "warning",
            what: format!(
                "{} {} through bond {bond}: bonding under iSCSI multipathing adds no redundancy (use one NIC per path, each on its own subnet)",
                devs.join(", "),
                if devs.len() == 1 { "goes" } else { "go" }
            ),
        });
    }
}

/// One path group although the array tells the paths apart.
fn one_group_over_states(m: &MapSnapshot, all: &[&PathSnapshot], findings: &mut Vec<Finding>) {
    let states: BTreeSet<&str> = all
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
}

/// Every map's audit.
pub fn audit(maps: &[std::sync::Arc<MapSnapshot>], net: &NetView) -> Vec<MapAudit> {
    maps.iter().map(|m| audit_map(m, net)).collect()
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
        let a = audit_map(&m, &NetView::default());
        assert!(a.redundant(), "{a:?}");
        assert!(text(&[a]).contains("m: ok: 2 usable paths"));
    }

    #[test]
    fn one_nic_one_portal_one_host_are_named() {
        let m = map(vec![vec![
            path("sda", 2, iscsi("10.0.0.1", "10.0.0.9:3260")),
            path("sdb", 3, iscsi("10.0.0.1", "10.0.0.9:3260")),
        ]]);
        let t = text(&[audit_map(&m, &NetView::default())]);
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
        assert!(text(&[audit_map(&m, &NetView::default())])
            .contains("spof: all 2 paths go through SCSI host 4"));
    }

    #[test]
    fn single_path_failed_paths_and_one_group_over_two_states() {
        let m = map(vec![vec![path("sda", 1, |_| {})]]);
        assert!(text(&[audit_map(&m, &NetView::default())]).contains("only one usable path (sda)"));
        let mut failed = PathSnapshot::clone(&path("sdb", 2, |_| {}));
        failed.dm_state = DmPathState::Failed;
        let m = map(vec![vec![path("sda", 1, |_| {})], vec![Arc::new(failed)]]);
        assert_eq!(audit_map(&m, &NetView::default()).usable_paths, 1);
        let ao = |i: &mut PathInfo| i.access_state = Some("active/optimized".into());
        let an = |i: &mut PathInfo| i.access_state = Some("active/non-optimized".into());
        let m = map(vec![vec![path("sda", 1, ao), path("sdb", 2, an)]]);
        let a = audit_map(&m, &NetView::default());
        assert_eq!(a.findings.len(), 1, "{a:?}");
        assert!(a.findings[0].what.contains("one path group although"));
        let tpg = |i: &mut PathInfo| i.tpg_id = Some(1);
        let m = map(vec![vec![path("sda", 1, tpg)], vec![path("sdb", 2, tpg)]]);
        assert!(text(&[audit_map(&m, &NetView::default())]).contains("ALUA target port group 1"));
    }

    fn host(ifaces: &[(&str, &str, u8, Option<&str>)]) -> NetView {
        use crate::transport::net::{IfAddr, NetIface};
        let mut v = NetView::default();
        for (name, addr, prefix, bond) in ifaces {
            v.ifaces.push(NetIface {
                name: name.to_string(),
                addrs: vec![IfAddr {
                    addr: addr.parse().unwrap(),
                    prefix: *prefix,
                }],
                bond: bond.map(str::to_string),
            });
        }
        v
    }

    #[test]
    fn one_interface_one_subnet_and_bonds_are_named() {
        let two_nics = host(&[
            ("eth1", "10.1.1.5", 24, None),
            ("eth2", "10.1.2.5", 24, None),
        ]);
        let m = map(vec![
            vec![path("sda", 2, iscsi("10.1.1.5", "10.1.1.9:3260"))],
            vec![path("sdb", 3, iscsi("10.1.2.5", "10.1.2.9:3260"))],
        ]);
        assert!(audit_map(&m, &two_nics).redundant());

        // Two portals, two sessions, one NIC: the interface and its subnet
        // are named, not just the address.
        let one_nic = host(&[("eth1", "10.1.1.5", 24, None)]);
        let m = map(vec![
            vec![path("sda", 2, iscsi("10.1.1.5", "10.1.1.9:3260"))],
            vec![path("sdb", 3, iscsi("10.1.1.5", "10.1.1.10:3260"))],
        ]);
        let t = text(&[audit_map(&m, &one_nic)]);
        assert!(
            t.contains("spof: all 2 paths go through eth1 (10.1.1.0/24)"),
            "{t}"
        );
        assert!(!t.contains("initiator address"), "{t}");

        // Two NICs on one subnet.
        let same_subnet = host(&[
            ("eth1", "10.1.1.5", 24, None),
            ("eth2", "10.1.1.6", 24, None),
        ]);
        let m = map(vec![
            vec![path("sda", 2, iscsi("10.1.1.5", "10.1.1.9:3260"))],
            vec![path("sdb", 3, iscsi("10.1.1.6", "10.1.1.10:3260"))],
        ]);
        let t = text(&[audit_map(&m, &same_subnet)]);
        assert!(
            t.contains("spof: all 2 paths leave from one subnet 10.1.1.0/24 (eth1, eth2)"),
            "{t}"
        );

        // A bond under one of two independent-looking paths.
        let bonded = host(&[
            ("bond0", "10.1.1.5", 24, Some("bond0")),
            ("eth2", "10.1.2.5", 24, None),
        ]);
        let m = map(vec![
            vec![path("sda", 2, iscsi("10.1.1.5", "10.1.1.9:3260"))],
            vec![path("sdb", 3, iscsi("10.1.2.5", "10.1.2.9:3260"))],
        ]);
        let a = audit_map(&m, &bonded);
        assert_eq!(a.findings.len(), 1, "{a:?}");
        assert_eq!(a.findings[0].kind, "warning");
        assert!(
            a.findings[0]
                .what
                .starts_with("sda goes through bond bond0"),
            "{a:?}"
        );

        // An address no interface owns (an offload HBA): the address rule.
        let m = map(vec![vec![
            path("sda", 2, iscsi("10.9.9.9", "10.1.1.9:3260")),
            path("sdb", 3, iscsi("10.9.9.9", "10.1.2.9:3260")),
        ]]);
        let t = text(&[audit_map(&m, &two_nics)]);
        assert!(t.contains("one initiator address 10.9.9.9"), "{t}");
    }
}
