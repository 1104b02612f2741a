//! Diagnostic: what mpathd's discovery sees on this machine.
//!
//! ```text
//! discover                  JSON: every SCSI disk path (coldplug), notes,
//!                           the WWID each would get from VPD page 0x83
//! discover --lines          one line a path:
//!                           dev H:C:T:L maj:min wwid wwid_source vpd_wwid size tpgs tpg access_state
//! discover --groups MODE    "WWID dev" for every path find_multipaths MODE
//!                           (strict|on|greedy|smart|off) multipaths with an
//!                           allow-all blacklist and no wwids file; others'
//!                           reasons go to stderr
//! discover --monitor SECS   coldplug, then one JSON line per event batch
//!                           for SECS seconds
//! discover --udev-props     for every SCSI disk, "dev same N" when the
//!                           properties mpathd reads from udev's database
//!                           equal libudev's (N of them), else
//!                           "dev differ KEY ..." with the keys that differ
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use mpathd::discovery::filter::{decide, Candidate, KnownWwids};
use mpathd::discovery::sysfs::{read_path, SysfsRoot};
use mpathd::discovery::{PathBatch, PathEvent, PathSource, UdevConfig, UdevPathSource};
use mpathd::model::{FilterResult, FindMultipaths, PathFilter, PathInfo, Settings};

struct AllowAll;

impl PathFilter for AllowAll {
    fn filter_path(&self, _: &PathInfo) -> FilterResult {
        FilterResult::Allowed
    }
    fn filter_devnode(&self, _: &str) -> FilterResult {
        FilterResult::Allowed
    }
}

fn usage() -> ! {
    eprintln!("usage: discover [--lines | --groups MODE | --monitor SECS | --udev-props]");
    std::process::exit(2)
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("discover: {msg}");
    std::process::exit(1)
}

fn paths_of(batch: &PathBatch) -> Vec<&PathInfo> {
    batch
        .events
        .iter()
        .filter_map(|e| match e {
            PathEvent::Add(i) | PathEvent::Change(i) => Some(i),
            PathEvent::Remove(_) => None,
        })
        .collect()
}

fn vpd_wwids(paths: &[&PathInfo]) -> BTreeMap<String, Option<String>> {
    let root = SysfsRoot::default();
    paths
        .iter()
        .map(|p| {
            (
                p.dev.clone(),
                read_path(&root, &p.dev).ok().and_then(|s| s.vpd_wwid),
            )
        })
        .collect()
}

fn event_json(e: &PathEvent) -> serde_json::Value {
    match e {
        PathEvent::Add(i) | PathEvent::Change(i) => serde_json::json!({
            "event": if matches!(e, PathEvent::Add(_)) { "add" } else { "change" },
            "dev": i.dev,
            "dev_t": i.devt.map(|d| d.to_string()),
            "hcil": i.hcil.map(|h| h.to_string()),
            "wwid": i.wwid,
            "wwid_source": i.wwid_source,
        }),
        PathEvent::Remove(d) => serde_json::json!({"event": "remove", "dev": d}),
    }
}

/// mpathd's direct read of udev's record against libudev's lookup.
fn compare_udev_properties() {
    let root = SysfsRoot::default();
    for dev in root.scsi_disks().unwrap_or_else(|e| die(e)) {
        let ours = mpathd::discovery::udevdb::properties(&root, &dev);
        let theirs: BTreeMap<String, String> =
            match udev::Device::from_subsystem_sysname("block".into(), dev.clone()) {
                Ok(d) => d
                    .properties()
                    .map(|p| {
                        (
                            p.name().to_string_lossy().into_owned(),
                            p.value().to_string_lossy().into_owned(),
                        )
                    })
                    .filter(|(k, _)| {
                        !mpathd::discovery::udevdb::VOLATILE_PROPERTIES.contains(&k.as_str())
                    })
                    .collect(),
                Err(e) => die(format!("{dev}: libudev: {e}")),
            };
        // libudev keeps links in a hash set: their order means nothing.
        let links = |m: &BTreeMap<String, String>| {
            let mut v: Vec<String> = m
                .get("DEVLINKS")
                .map(|l| l.split(' ').map(str::to_string).collect())
                .unwrap_or_default();
            v.sort();
            v
        };
        let (ours_links, their_links) = (links(&ours), links(&theirs));
        let differ: Vec<&String> = ours
            .keys()
            .chain(theirs.keys())
            .filter(|k| match k.as_str() {
                "DEVLINKS" => ours_links != their_links,
                _ => ours.get(*k) != theirs.get(*k),
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if differ.is_empty() {
            println!("{dev} same {}", ours.len());
        } else {
            let keys: Vec<&str> = differ.iter().map(|k| k.as_str()).collect();
            println!("{dev} differ {}", keys.join(" "));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let source = UdevPathSource::new(UdevConfig::default());
    match args.first().map(String::as_str) {
        None => {
            let batch = source.coldplug().unwrap_or_else(|e| die(e));
            let paths = paths_of(&batch);
            let out = serde_json::json!({
                "paths": paths,
                "notes": batch.notes,
                "vpd_wwids": vpd_wwids(&paths),
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Some("--udev-props") => compare_udev_properties(),
        Some("--lines") => {
            let batch = source.coldplug().unwrap_or_else(|e| die(e));
            let paths = paths_of(&batch);
            let vpd = vpd_wwids(&paths);
            let dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
            for p in paths {
                println!(
                    "{} {} {} {} {} {} {} {} {} {}",
                    p.dev,
                    dash(p.hcil.map(|h| h.to_string())),
                    dash(p.devt.map(|d| d.to_string())),
                    dash(p.wwid.clone()),
                    dash(p.wwid_source.clone()),
                    dash(vpd.get(&p.dev).cloned().flatten()),
                    p.size,
                    p.tpgs,
                    dash(p.tpg_id.map(|t| t.to_string())),
                    dash(p.access_state.clone()),
                );
            }
        }
        Some("--groups") => {
            let mode = match args.get(1).map(String::as_str) {
                Some("strict") => FindMultipaths::Strict,
                Some("on" | "yes") => FindMultipaths::Yes,
                Some("greedy") => FindMultipaths::Greedy,
                Some("smart") => FindMultipaths::Smart,
                Some("off" | "no") => FindMultipaths::No,
                _ => usage(),
            };
            let batch = source.coldplug().unwrap_or_else(|e| die(e));
            let paths = paths_of(&batch);
            let now = Instant::now();
            let cands: Vec<Candidate<'_>> = paths
                .iter()
                .map(|info| Candidate {
                    info,
                    first_seen: now,
                    known_hardware: false,
                    identity_error: batch
                        .notes
                        .get(&info.dev)
                        .and_then(|n| n.identity_error.clone()),
                })
                .collect();
            let settings = Settings {
                find_multipaths: mode,
                ..Settings::default()
            };
            let (verdicts, conflicts) =
                decide(&cands, &AllowAll, &KnownWwids::default(), &settings, now);
            mpathd::discovery::identity::log_conflicts(&conflicts);
            for v in verdicts {
                match &v.decision {
                    mpathd::discovery::Decision::Multipath { wwid } => println!("{wwid} {}", v.dev),
                    _ => eprintln!("# {}: {}", v.dev, v.why),
                }
            }
        }
        Some("--monitor") => {
            let secs: u64 = args
                .get(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| usage());
            let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| die(e));
            rt.block_on(async {
                let mut rx = source.start().unwrap_or_else(|e| die(e));
                let end = tokio::time::Instant::now() + Duration::from_secs(secs);
                let t0 = Instant::now();
                loop {
                    let batch = tokio::select! {
                        b = rx.recv() => match b { Some(b) => b, None => break },
                        _ = tokio::time::sleep_until(end) => break,
                    };
                    let line = serde_json::json!({
                        "t": t0.elapsed().as_secs_f64(),
                        "kind": batch.kind,
                        "events": batch.events.iter().map(event_json).collect::<Vec<_>>(),
                    });
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            });
        }
        Some(_) => usage(),
    }
}
