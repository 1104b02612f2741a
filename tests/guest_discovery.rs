//! Discovery against a real kernel, udev and scsi_debug (run in the guest by
//! tests/vm/cases/discovery/10-discovery.sh, which loads scsi_debug first).
//! Tests run in name order with --test-threads=1; t2 changes the SAN.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use mpathd::discovery::sysfs::{read_path, SysfsRoot};
use mpathd::discovery::{BatchKind, PathEvent, PathSource, UdevConfig, UdevPathSource};
use mpathd::model::{DevState, PathInfo};

/// udev properties of a block device, as `udevadm info` prints them.
fn udevadm_props(dev: &str) -> BTreeMap<String, String> {
    let out = Command::new("udevadm")
        .args(["info", "--query=property", &format!("/dev/{dev}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "udevadm info {dev} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn read(p: &str) -> String {
    fs::read_to_string(p).unwrap_or_default().trim().to_string()
}

/// sd devices whose SCSI model is scsi_debug.
fn scsi_debug_disks() -> BTreeSet<String> {
    fs::read_dir("/sys/block")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|d| {
            d.starts_with("sd") && read(&format!("/sys/block/{d}/device/model")) == "scsi_debug"
        })
        .collect()
}

/// SCSI host numbers driven by scsi_debug.
fn scsi_debug_hosts() -> Vec<String> {
    fs::read_dir("/sys/class/scsi_host")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|h| read(&format!("/sys/class/scsi_host/{h}/proc_name")) == "scsi_debug")
        .collect()
}

fn coldplug() -> Vec<PathInfo> {
    let b = UdevPathSource::new(UdevConfig::default())
        .coldplug()
        .unwrap();
    assert_eq!(b.kind, BatchKind::Coldplug);
    for (dev, n) in &b.notes {
        eprintln!("note {dev}: {n:?}");
    }
    b.events
        .into_iter()
        .map(|e| match e {
            PathEvent::Add(i) => i,
            other => panic!("coldplug gave {other:?}"),
        })
        .collect()
}

#[test]
#[ignore = "needs the guest"]
fn t1_coldplug_matches_sysfs_udev_and_vpd() {
    let want = scsi_debug_disks();
    assert!(want.len() >= 2, "scsi_debug not loaded? {want:?}");
    let t = Instant::now();
    let paths = coldplug();
    eprintln!("coldplug of {} paths took {:?}", paths.len(), t.elapsed());
    let got: BTreeSet<String> = paths
        .iter()
        .filter(|p| p.product == "scsi_debug")
        .map(|p| p.dev.clone())
        .collect();
    assert_eq!(got, want, "coldplug lists every scsi_debug path");

    let root = SysfsRoot::default();
    let mut by_wwid: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in paths.iter().filter(|p| want.contains(&p.dev)) {
        let d = &p.dev;
        let props = udevadm_props(d);
        // dev_t and H:C:T:L as the kernel and udev report them.
        assert_eq!(
            p.devt.unwrap().to_string(),
            read(&format!("/sys/block/{d}/dev")),
            "{d} dev_t"
        );
        assert_eq!(
            p.devt.unwrap().to_string(),
            format!("{}:{}", props["MAJOR"], props["MINOR"]),
            "{d} dev_t vs udev"
        );
        let link = fs::canonicalize(format!("/sys/block/{d}/device")).unwrap();
        assert_eq!(
            p.hcil.unwrap().to_string(),
            link.file_name().unwrap().to_str().unwrap(),
            "{d} hcil"
        );
        // Identity: udev's ID_SERIAL, and our VPD 0x83 fallback agrees with it.
        let id_serial = props
            .get("ID_SERIAL")
            .cloned()
            .expect("udev labelled the path");
        assert_eq!(p.wwid.as_deref(), Some(id_serial.as_str()), "{d} wwid");
        assert_eq!(p.wwid_source.as_deref(), Some("ID_SERIAL"));
        let sp = read_path(&root, d).unwrap();
        assert_eq!(
            sp.vpd_wwid.as_deref(),
            Some(id_serial.as_str()),
            "{d}: VPD 0x83 fallback == ID_SERIAL"
        );
        assert!(sp.problems.is_empty(), "{d}: {:?}", sp.problems);
        // What scsi_debug and scsi_dh_alua expose.
        assert_eq!(
            (p.vendor.as_str(), p.product.as_str()),
            ("Linux", "scsi_debug")
        );
        assert_eq!(
            p.size,
            read(&format!("/sys/block/{d}/size"))
                .parse::<u64>()
                .unwrap()
        );
        assert_eq!(p.dev_state, DevState::Running);
        assert_eq!(p.tpgs, 1, "{d}: scsi_debug reports implicit ALUA");
        assert!(p.tpg_id.is_some(), "{d}: target port group from VPD 0x83");
        if let Some(tpg) = props.get("ID_TARGET_PORT") {
            assert_eq!(
                u16::from_str_radix(tpg, 16).ok(),
                p.tpg_id,
                "{d} tpg vs udev ID_TARGET_PORT"
            );
        }
        assert_eq!(p.dh_state.as_deref(), Some("alua"), "{d} dh_state");
        assert_eq!(
            p.access_state.as_deref(),
            Some(read(&format!("/sys/block/{d}/device/access_state")).as_str())
        );
        assert_eq!(
            p.timeout_secs,
            Some(
                read(&format!("/sys/block/{d}/device/timeout"))
                    .parse()
                    .unwrap()
            )
        );
        by_wwid.entry(id_serial).or_default().push(d.clone());
    }
    let hosts = scsi_debug_hosts().len();
    assert!(
        by_wwid.values().all(|v| v.len() == hosts),
        "every LUN through every host: {by_wwid:?}"
    );
}

/// Waits for batches until `done` says enough was seen; returns them.
async fn collect_until(
    rx: &mut tokio::sync::mpsc::Receiver<mpathd::discovery::PathBatch>,
    limit: Duration,
    mut done: impl FnMut(&[PathEvent]) -> bool,
) -> (Vec<PathEvent>, usize) {
    let end = tokio::time::Instant::now() + limit;
    let mut events = Vec::new();
    let mut batches = 0;
    while !done(&events) {
        let b = tokio::select! {
            b = rx.recv() => b.expect("monitor ended"),
            _ = tokio::time::sleep_until(end) => panic!("timed out; got {events:?}"),
        };
        eprintln!(
            "batch {:?}: {} events: {:?}",
            b.kind,
            b.events.len(),
            b.events
                .iter()
                .map(|e| e.dev().to_string())
                .collect::<Vec<_>>()
        );
        batches += 1;
        events.extend(b.events);
    }
    (events, batches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the guest"]
async fn t2_monitor_sees_hot_added_and_removed_paths() {
    let before = scsi_debug_disks();
    let hosts = scsi_debug_hosts();
    let luns: usize = read("/sys/bus/pseudo/drivers/scsi_debug/max_luns")
        .parse()
        .unwrap();
    let extra = 4;
    // Standby paths make udev slow under TCG; big runs raise the limit.
    let wait: u64 = std::env::var("DISCOVERY_WAIT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(240);

    let source = UdevPathSource::new(UdevConfig::default());
    let mut rx = source.start().unwrap();
    let cold = rx.recv().await.unwrap();
    assert_eq!(cold.kind, BatchKind::Coldplug);
    let cold_devs: BTreeSet<String> = cold.events.iter().map(|e| e.dev().to_string()).collect();
    assert!(before.is_subset(&cold_devs));

    // More LUNs on every scsi_debug host, then a rescan: a small storm.
    let t = Instant::now();
    fs::write(
        "/sys/bus/pseudo/drivers/scsi_debug/max_luns",
        format!("{}", luns + extra),
    )
    .unwrap();
    for h in &hosts {
        fs::write(format!("/sys/class/scsi_host/{h}/scan"), "- - -").unwrap();
    }
    let want_new = extra * hosts.len();
    let (events, batches) = collect_until(&mut rx, Duration::from_secs(wait), |evs| {
        evs.iter()
            .filter(|e| matches!(e, PathEvent::Add(_)))
            .count()
            >= want_new
    })
    .await;
    eprintln!(
        "{want_new} hot-added paths seen in {batches} batches after {:?}",
        t.elapsed()
    );
    let added: Vec<&PathInfo> = events
        .iter()
        .filter_map(|e| match e {
            PathEvent::Add(i) => Some(i),
            _ => None,
        })
        .collect();
    let now = scsi_debug_disks();
    let new: BTreeSet<String> = now.difference(&before).cloned().collect();
    assert_eq!(
        added.iter().map(|i| i.dev.clone()).collect::<BTreeSet<_>>(),
        new
    );
    let mut by_wwid: BTreeMap<String, usize> = BTreeMap::new();
    for i in &added {
        let id_serial = udevadm_props(&i.dev).get("ID_SERIAL").cloned();
        assert_eq!(i.wwid, id_serial, "{} wwid from the event", i.dev);
        assert!(i.hcil.unwrap().lun >= luns as u64);
        *by_wwid.entry(i.wwid.clone().unwrap()).or_default() += 1;
    }
    assert_eq!(by_wwid.len(), extra, "new LUNs");
    assert!(by_wwid.values().all(|&n| n == hosts.len()), "{by_wwid:?}");

    // Delete two of the new paths: they go away through the monitor.
    let gone: Vec<String> = new.iter().take(2).cloned().collect();
    for d in &gone {
        fs::write(format!("/sys/block/{d}/device/delete"), "1").unwrap();
    }
    let (events, _) = collect_until(&mut rx, Duration::from_secs(120), |evs| {
        gone.iter().all(|g| {
            evs.iter()
                .any(|e| matches!(e, PathEvent::Remove(d) if d == g))
        })
    })
    .await;
    let removed: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| match e {
            PathEvent::Remove(d) => Some(d.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(removed, gone.iter().map(String::as_str).collect());
}
