//! Path claiming for udev (what `multipath -u` does for multipath-tools'
//! rules): while udev processes a new or changed SCSI disk, decide whether
//! it is, or is about to be, a path of a map, so the rule can mark it
//! `DM_MULTIPATH_DEVICE_PATH=1` (and hide it from blkid, LVM and systemd)
//! before they act on it. The decision is discovery's own
//! ([`super::filter::decide`]), made on the device and its siblings (the
//! disks udev knows with the same WWID), so udev and the daemon agree.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::filter::{decide, Candidate, Decision, KnownWwids};
use crate::model::{PathFilter, PathInfo, Settings};

/// udev's verdict for one disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A path of a map (now or as soon as the daemon builds it).
    Yes { why: String },
    /// Not a path: leave it to everyone else.
    No { why: String },
    /// find_multipaths smart: held back until `until` (seconds since the
    /// epoch, `secs` from now) while a second path may still appear.
    Maybe { until: u64, secs: u64, why: String },
}

impl Claim {
    /// The `KEY=VALUE` lines udev's `IMPORT{program}` takes.
    pub fn udev_properties(&self) -> String {
        let (v, wait, why) = match self {
            Claim::Yes { why } => ("1", None, why),
            Claim::No { why } => ("0", None, why),
            Claim::Maybe { until, secs, why } => ("2", Some((*until, *secs)), why),
        };
        let mut out = format!("DM_MULTIPATH_DEVICE_PATH={v}\n");
        if let Some((u, s)) = wait {
            // The deadline for later events; the seconds for the timer.
            out.push_str(&format!(
                "FIND_MULTIPATHS_WAIT_UNTIL={u}\nMPATHD_CLAIM_WAIT_SECS={s}\n"
            ));
        }
        // A reason `udevadm info` shows; quotes and newlines would break
        // the property syntax.
        let why: String = why
            .chars()
            .map(|c| if c == '\n' || c == '"' { ' ' } else { c })
            .collect();
        out.push_str(&format!("MPATHD_CLAIM_REASON=\"{why}\"\n"));
        out
    }
}

/// What the claim is decided on: the disk, the other disks with its WWID,
/// and the daemon's persistent state.
pub struct ClaimInput<'a> {
    pub path: &'a PathInfo,
    pub identity_error: Option<super::identity::NoWwid>,
    pub siblings: &'a [PathInfo],
    pub settings: &'a Settings,
    pub known_hardware: bool,
    pub known: &'a KnownWwids,
    /// smart mode: the wait already started for this disk (udev database).
    pub wait_until: Option<u64>,
    /// Now, in seconds since the epoch.
    pub now: u64,
}

/// The claim for `input.path`, by discovery's own decision.
pub fn claim(input: &ClaimInput<'_>, filter: &dyn PathFilter) -> Claim {
    let now = Instant::now();
    // smart's wait runs from the first event: place `first_seen` so the
    // deadline is the one udev recorded.
    let timeout =
        super::filter::smart_timeout(input.settings.find_multipaths_timeout, input.known_hardware);
    let first_seen = match input.wait_until {
        Some(until) if until > 0 => {
            let left = Duration::from_secs(until.saturating_sub(input.now));
            now.checked_sub(timeout.saturating_sub(left)).unwrap_or(now)
        }
        _ => now,
    };
    let mut candidates = vec![Candidate {
        info: input.path,
        first_seen,
        known_hardware: input.known_hardware,
        identity_error: input.identity_error.clone(),
    }];
    candidates.extend(input.siblings.iter().map(|s| Candidate {
        info: s,
        first_seen: now,
        known_hardware: input.known_hardware,
        identity_error: None,
    }));
    let (verdicts, _) = decide(&candidates, filter, input.known, input.settings, now);
    let Some(v) = verdicts.into_iter().next() else {
        return Claim::No {
            why: "no decision".into(),
        };
    };
    match v.decision {
        Decision::Multipath { .. } => Claim::Yes { why: v.why },
        Decision::Skip => Claim::No { why: v.why },
        Decision::Wait { until, .. } => {
            let secs = until.saturating_duration_since(now).as_secs().max(1);
            Claim::Maybe {
                until: input.now + secs,
                secs,
                why: v.why,
            }
        }
    }
}

/// Decides the claim for `dev` on this host: its udev properties from the
/// environment (the event's), the configuration, the wwids file, the maps
/// in sysfs and the disks udev knows with the same WWID.
/// Whose rules decide a path that is not in a map yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRules {
    /// mpathd's own (`mpathd config claim`): the daemon's decision,
    /// siblings counted, so a path is claimed before its map exists.
    Daemon,
    /// multipath-tools' `multipath -c` (`uevent: false`) and `-u`
    /// (`uevent: true`): outside greedy mode a path whose WWID is in no
    /// map and not in the wwids file is not claimed (except that -u in
    /// smart mode counts siblings); the daemon makes the map and then
    /// triggers a change event that claims it.
    MultipathTools { uevent: bool },
}

pub fn claim_device(
    dev: &str,
    config: &crate::config::Config,
    wwids_file: &std::path::Path,
    rules: ClaimRules,
) -> crate::Result<Claim> {
    use super::sysfs::{is_scsi_disk_name, SysfsRoot};
    let root = SysfsRoot::default();
    // A path a map already holds stays claimed whatever the configuration
    // says now (multipath-tools checks this first too): releasing it would
    // hand a device in use to LVM or systemd. The daemon takes it out of
    // the map if it must, and that change event releases it.
    if let Some(map) = multipath_holder(&root.path().join("block"), dev) {
        return Ok(Claim::Yes {
            why: format!("{dev} is a path of map {map}"),
        });
    }
    let cfg = config.clone();
    let uid: super::UidAttributeFn =
        std::sync::Arc::new(move |i: &PathInfo| cfg.resolve(i).uid_attribute);
    let (info, notes) = super::udev::build_path(&root, dev, event_properties(), &uid)?;
    let settings = config.resolve(&info);
    let known_hardware = settings.known_hardware;
    let in_wwids_file = match super::wwids::WwidsFile::new(wwids_file).read() {
        Ok(w) => w.to_set(),
        Err(e) => {
            eprintln!("mpathd: {}: {e}", wwids_file.display());
            BTreeSet::new()
        }
    };
    let known = KnownWwids {
        in_wwids_file,
        with_map: wwids_with_map(&root.path().join("block")),
    };
    let mut siblings = Vec::new();
    if let Some(wwid) = &info.wwid {
        let mut others = super::udev::devices_with_property(&settings.uid_attribute, wwid);
        if others.iter().all(|o| o == dev) {
            // udev handles a new LUN's paths in parallel: a sibling may be
            // in sysfs before udev's database knows its WWID.
            others = same_lun_in_sysfs(&root, dev, wwid);
        }
        for other in others {
            if other == dev || !is_scsi_disk_name(&other) {
                continue;
            }
            let props = super::udev::udev_properties(&other);
            if let Ok((i, _)) = super::udev::build_path(&root, &other, props, &uid) {
                siblings.push(i);
            }
        }
    }
    let wait_until = std::env::var("FIND_MULTIPATHS_WAIT_UNTIL")
        .ok()
        .and_then(|v| v.parse().ok());
    let verdict = claim(
        &ClaimInput {
            path: &info,
            identity_error: notes.identity_error,
            siblings: &siblings,
            settings: &settings,
            known_hardware,
            known: &known,
            wait_until,
            now: epoch_now(),
        },
        config,
    );
    Ok(match rules {
        ClaimRules::Daemon => verdict,
        ClaimRules::MultipathTools { uevent } => {
            multipath_tools_rules(verdict, &info, settings.find_multipaths, &known, uevent)
        }
    })
}

/// multipath-tools' `is_path_valid` after the blacklist: greedy claims,
/// a WWID in the wwids file or in a map claims, and otherwise only `-u`
/// in smart mode may (the daemon's verdict: a sibling, or wait).
fn multipath_tools_rules(
    verdict: Claim,
    info: &PathInfo,
    mode: crate::model::FindMultipaths,
    known: &KnownWwids,
    uevent: bool,
) -> Claim {
    use crate::model::FindMultipaths as F;
    let Some(wwid) = info.wwid.as_deref() else {
        return verdict;
    };
    let recorded = known.in_wwids_file.contains(wwid) || known.with_map.contains(wwid);
    if matches!(verdict, Claim::No { .. }) || mode == F::Greedy || recorded {
        return verdict;
    }
    if uevent && mode == F::Smart {
        return verdict;
    }
    Claim::No {
        why: format!(
            "find_multipaths {}: WWID {wwid} is in no map and not in the wwids file (the daemon makes the map, then a change event claims the path)",
            super::filter::mode_name(mode)
        ),
    }
}

/// The other SCSI disks whose VPD page 0x83 gives `wwid` (one small
/// sysfs read a disk).
fn same_lun_in_sysfs(root: &super::sysfs::SysfsRoot, dev: &str, wwid: &str) -> Vec<String> {
    let Ok(disks) = root.scsi_disks() else {
        return Vec::new();
    };
    disks
        .into_iter()
        .filter(|d| d != dev)
        .filter(|d| {
            std::fs::read(root.block_dir(d).join("device/vpd_pg83"))
                .ok()
                .and_then(|page| super::vpd::parse_pg83(&page).ok())
                .and_then(|pg| super::vpd::wwid_from_pg83(&pg).map(|(w, _)| w))
                .is_some_and(|w| w == wwid)
        })
        .collect()
}

/// Seconds since the epoch.
pub fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The WWIDs that have a multipath map now, from sysfs (`dm/uuid` of
/// every dm device is `mpath-WWID` for a multipath map).
pub fn wwids_with_map(sys_block: &std::path::Path) -> BTreeSet<String> {
    let Ok(rd) = std::fs::read_dir(sys_block) else {
        return BTreeSet::new();
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("dm-"))
        .filter_map(|e| std::fs::read_to_string(e.path().join("dm/uuid")).ok())
        .filter_map(|u| u.trim().strip_prefix("mpath-").map(str::to_string))
        .collect()
}

/// The multipath map (its dm name) holding `dev`, if one does.
fn multipath_holder(sys_block: &std::path::Path, dev: &str) -> Option<String> {
    let holders = std::fs::read_dir(sys_block.join(dev).join("holders")).ok()?;
    holders.flatten().find_map(|h| {
        let dm = sys_block.join(h.file_name()).join("dm");
        let uuid = std::fs::read_to_string(dm.join("uuid")).ok()?;
        uuid.trim().starts_with("mpath-").then(|| {
            std::fs::read_to_string(dm.join("name"))
                .map(|n| n.trim().to_string())
                .unwrap_or_else(|_| h.file_name().to_string_lossy().into_owned())
        })
    })
}

/// The udev properties a program started by `IMPORT{program}` sees: its
/// environment is the event's.
pub fn event_properties() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{FilterResult, FindMultipaths};

    struct NoBlacklist;
    impl PathFilter for NoBlacklist {
        fn filter_path(&self, info: &PathInfo) -> FilterResult {
            self.filter_devnode(&info.dev)
        }
        fn filter_devnode(&self, dev: &str) -> FilterResult {
            if dev == "sdz" {
                FilterResult::Blacklisted {
                    by: "devnode \"sdz\"".into(),
                }
            } else {
                FilterResult::Allowed
            }
        }
    }

    fn disk(dev: &str, wwid: &str) -> PathInfo {
        PathInfo {
            dev: dev.into(),
            wwid: Some(wwid.into()),
            ..PathInfo::default()
        }
    }

    fn input<'a>(
        path: &'a PathInfo,
        siblings: &'a [PathInfo],
        settings: &'a Settings,
        known: &'a KnownWwids,
    ) -> ClaimInput<'a> {
        ClaimInput {
            path,
            identity_error: None,
            siblings,
            settings,
            known_hardware: false,
            known,
            wait_until: None,
            now: 1_000_000,
        }
    }

    fn mode(m: FindMultipaths) -> Settings {
        Settings {
            find_multipaths: m,
            ..Settings::default()
        }
    }

    #[test]
    fn claims_follow_find_multipaths_like_multipath_u() {
        let a = disk("sdb", "3600a");
        let sib = [disk("sdc", "3600a")];
        let none = KnownWwids::default();
        let in_file = KnownWwids {
            in_wwids_file: ["3600a".to_string()].into(),
            ..KnownWwids::default()
        };
        let yes = |c: Claim| matches!(c, Claim::Yes { .. });
        let strict = mode(FindMultipaths::Strict);
        assert!(!yes(claim(&input(&a, &sib, &strict, &none), &NoBlacklist)));
        assert!(yes(claim(&input(&a, &[], &strict, &in_file), &NoBlacklist)));
        let on = mode(FindMultipaths::Yes);
        assert!(!yes(claim(&input(&a, &[], &on, &none), &NoBlacklist)));
        assert!(yes(claim(&input(&a, &sib, &on, &none), &NoBlacklist)));
        let greedy = mode(FindMultipaths::Greedy);
        assert!(yes(claim(&input(&a, &[], &greedy, &none), &NoBlacklist)));
        let with_map = KnownWwids {
            with_map: ["3600a".to_string()].into(),
            ..KnownWwids::default()
        };
        assert!(yes(claim(
            &input(&a, &[], &strict, &with_map),
            &NoBlacklist
        )));
        // Blacklisted: never, whatever the mode.
        let z = disk("sdz", "3600a");
        let c = claim(&input(&z, &sib, &greedy, &in_file), &NoBlacklist);
        assert!(
            matches!(&c, Claim::No { why } if why.contains("blacklisted")),
            "{c:?}"
        );
    }

    #[test]
    fn smart_holds_a_lone_path_until_its_deadline_then_releases_it() {
        let a = disk("sdb", "3600a");
        let none = KnownWwids::default();
        let smart = Settings {
            find_multipaths_timeout: 10,
            ..mode(FindMultipaths::Smart)
        };
        let mut i = input(&a, &[], &smart, &none);
        let c = claim(&i, &NoBlacklist);
        let Claim::Maybe { until, .. } = c else {
            panic!("{c:?}")
        };
        assert_eq!(until, 1_000_010);
        assert!(c.udev_properties().contains(
            "DM_MULTIPATH_DEVICE_PATH=2\nFIND_MULTIPATHS_WAIT_UNTIL=1000010\nMPATHD_CLAIM_WAIT_SECS=10\n"
        ));
        // Later event, before the deadline: still waiting, same deadline.
        i.wait_until = Some(until);
        i.now = 1_000_004;
        assert!(matches!(
            claim(&i, &NoBlacklist),
            Claim::Maybe {
                until: 1_000_010,
                ..
            }
        ));
        // Past it: released.
        i.now = 1_000_011;
        assert!(matches!(claim(&i, &NoBlacklist), Claim::No { .. }));
        // A sibling appeared meanwhile: claimed.
        let sib = [disk("sdc", "3600a")];
        i.siblings = &sib;
        i.now = 1_000_004;
        assert!(matches!(claim(&i, &NoBlacklist), Claim::Yes { .. }));
    }

    #[test]
    fn properties_are_well_formed() {
        let c = Claim::No {
            why: "a \"quoted\"\nreason".into(),
        };
        assert_eq!(
            c.udev_properties(),
            "DM_MULTIPATH_DEVICE_PATH=0\nMPATHD_CLAIM_REASON=\"a  quoted  reason\"\n"
        );
    }

    #[test]
    fn maps_are_found_by_dm_uuid() {
        let d = std::env::temp_dir().join(format!("mpathd-claim-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for (n, u) in [("dm-0", "mpath-3600a\n"), ("dm-1", "LVM-abc\n")] {
            std::fs::create_dir_all(d.join(n).join("dm")).unwrap();
            std::fs::write(d.join(n).join("dm/uuid"), u).unwrap();
        }
        std::fs::create_dir_all(d.join("sda")).unwrap();
        assert_eq!(wwids_with_map(&d), ["3600a".to_string()].into());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn multipath_tools_claims_only_recorded_wwids_outside_greedy() {
        use FindMultipaths as F;
        let info = PathInfo {
            dev: "sdb".into(),
            wwid: Some("3600a".into()),
            ..PathInfo::default()
        };
        let yes = || Claim::Yes {
            why: "siblings".into(),
        };
        let none = KnownWwids::default();
        let rules = |mode, known: &KnownWwids, uevent| {
            multipath_tools_rules(yes(), &info, mode, known, uevent)
        };
        assert_eq!(rules(F::Greedy, &none, true), yes());
        for mode in [F::Yes, F::No, F::Strict] {
            assert!(
                matches!(rules(mode, &none, true), Claim::No { .. }),
                "{mode:?}"
            );
        }
        // Smart counts siblings under udev only.
        assert_eq!(rules(F::Smart, &none, true), yes());
        assert!(matches!(rules(F::Smart, &none, false), Claim::No { .. }));
        let mut file = KnownWwids::default();
        file.in_wwids_file.insert("3600a".into());
        assert_eq!(rules(F::Yes, &file, false), yes());
        let mut mapped = KnownWwids::default();
        mapped.with_map.insert("3600a".into());
        assert_eq!(rules(F::No, &mapped, true), yes());
        // A blacklisted path stays unclaimed whatever is recorded.
        let no = Claim::No {
            why: "blacklisted".into(),
        };
        assert_eq!(
            multipath_tools_rules(no.clone(), &info, F::Greedy, &file, true),
            no
        );
    }

    #[test]
    fn a_path_held_by_a_multipath_map_is_found() {
        let d = std::env::temp_dir().join(format!("mpathd-holder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for p in [
            "sda/holders/dm-0",
            "sdb/holders/dm-1",
            "sdc/holders",
            "dm-0/dm",
            "dm-1/dm",
        ] {
            std::fs::create_dir_all(d.join(p)).unwrap();
        }
        std::fs::write(d.join("dm-0/dm/uuid"), "mpath-3600a\n").unwrap();
        std::fs::write(d.join("dm-0/dm/name"), "mpatha\n").unwrap();
        std::fs::write(d.join("dm-1/dm/uuid"), "LVM-abc\n").unwrap();
        assert_eq!(multipath_holder(&d, "sda").as_deref(), Some("mpatha"));
        assert_eq!(multipath_holder(&d, "sdb"), None);
        assert_eq!(multipath_holder(&d, "sdc"), None);
        assert_eq!(multipath_holder(&d, "sdz"), None);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
