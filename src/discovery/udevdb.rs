//! A block device's udev properties read straight from where libudev
//! reads them: the kernel's `uevent` file in sysfs and udev's database
//! record (`/run/udev/data/b<major>:<minor>`).
//!
//! libudev's per-device lookup resolves the device through several sysfs
//! paths and links before it reads those two files; under emulation that
//! cost ~2.5 ms a disk, most of a 1,024-path coldplug. Reading the two
//! files costs three small reads. The database's lines used here: `E:`
//! properties, `S:` links, `G:`/`Q:` tags, `I:` initialization time.

use std::collections::BTreeMap;
use std::path::Path;

use super::sysfs::SysfsRoot;

/// Properties that differ on every event and say nothing about the path.
pub const VOLATILE_PROPERTIES: &[&str] = &["ACTION", "SEQNUM", "SYNTH_UUID"];

/// udev's database directory for `root` (a test tree keeps its own).
fn data_dir(root: &SysfsRoot) -> std::path::PathBuf {
    if *root == SysfsRoot::default() {
        "/run/udev/data".into()
    } else {
        root.path().join("run-udev-data")
    }
}

fn read_small(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The properties libudev would list for block device `dev`: empty if it
/// is gone; only the kernel's if udev has not handled it yet.
pub fn properties(root: &SysfsRoot, dev: &str) -> BTreeMap<String, String> {
    let block = root.block_dir(dev);
    let Some(uevent) = read_small(&block.join("uevent")) else {
        return BTreeMap::new();
    };
    let devpath = std::fs::read_link(&block).ok();
    let devpath = devpath
        .as_deref()
        .and_then(|p| p.to_str())
        .and_then(devpath_of);
    let kernel = parse_uevent(&uevent);
    let db = match (kernel.get("MAJOR"), kernel.get("MINOR")) {
        (Some(maj), Some(min)) => read_small(&data_dir(root).join(format!("b{maj}:{min}"))),
        _ => None,
    };
    merge(kernel, devpath, db.as_deref())
}

/// `/devices/...` from the `/sys/block/<dev>` link's target
/// (`../devices/...`).
fn devpath_of(link: &str) -> Option<String> {
    let i = link.find("/devices/")?;
    Some(link[i..].to_string())
}

/// `KEY=value` lines of a sysfs `uevent` file.
fn parse_uevent(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The kernel's properties with udev's on top, named as libudev names
/// them (`DEVNAME` as a node path, links in `DEVLINKS`, tags in `TAGS`).
fn merge(
    mut props: BTreeMap<String, String>,
    devpath: Option<String>,
    db: Option<&str>,
) -> BTreeMap<String, String> {
    if let Some(name) = props.get_mut("DEVNAME") {
        if !name.starts_with('/') {
            *name = format!("/dev/{name}");
        }
    }
    if let Some(p) = devpath {
        props.insert("DEVPATH".into(), p);
    }
    props.insert("SUBSYSTEM".into(), "block".into());
    let mut links = Vec::new();
    let mut tags = Vec::new();
    let mut current_tags = Vec::new();
    for line in db.unwrap_or_default().lines() {
        let Some((kind, value)) = line.split_once(':') else {
            continue;
        };
        match kind {
            "E" => {
                if let Some((k, v)) = value.split_once('=') {
                    if !k.is_empty() {
                        props.insert(k.to_string(), v.to_string());
                    }
                }
            }
            "S" => links.push(format!("/dev/{value}")),
            "G" => tags.push(value),
            "Q" => current_tags.push(value),
            "I" => {
                props.insert("USEC_INITIALIZED".into(), value.to_string());
            }
            _ => {}
        }
    }
    if !links.is_empty() {
        // libudev's order comes from a hash set; sorted, ours is stable.
        links.sort();
        props.insert("DEVLINKS".into(), links.join(" "));
    }
    for (key, list) in [("TAGS", tags), ("CURRENT_TAGS", current_tags)] {
        if !list.is_empty() {
            props.insert(key.into(), format!(":{}:", list.join(":")));
        }
    }
    props.retain(|k, _| !VOLATILE_PROPERTIES.contains(&k.as_str()));
    props
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::sysfs::tests::FakeSysfs;

    const UEVENT: &str = "MAJOR=8\nMINOR=16\nDEVNAME=sdb\nDEVTYPE=disk\nDISKSEQ=3\n";
    const DB: &str = "S:disk/by-id/scsi-3600140512\n\
                      S:disk/by-path/ip-1.2.3.4:3260-iscsi-iqn.x-lun-1\n\
                      I:4242\n\
                      E:ID_SERIAL=3600140512\n\
                      E:ID_SCSI=1\n\
                      E:DM_MULTIPATH_DEVICE_PATH=1\n\
                      E:SYSTEMD_READY=0\n\
                      E:EMPTY=\n\
                      E:SEQNUM=99\n\
                      G:systemd\n\
                      Q:systemd\n\
                      W:12\n\
                      V:1\n\
                      garbage line\n";

    #[test]
    fn record_reads_as_libudev_lists_it() {
        let p = merge(
            parse_uevent(UEVENT),
            devpath_of("../devices/platform/host3/target3:0:0/3:0:0:1/block/sdb"),
            Some(DB),
        );
        assert_eq!(p["ID_SERIAL"], "3600140512");
        assert_eq!(p["DM_MULTIPATH_DEVICE_PATH"], "1");
        assert_eq!(p["EMPTY"], "");
        assert_eq!(p["DEVNAME"], "/dev/sdb");
        assert_eq!(p["DEVTYPE"], "disk");
        assert_eq!(p["MAJOR"], "8");
        assert_eq!(p["SUBSYSTEM"], "block");
        assert_eq!(
            p["DEVPATH"],
            "/devices/platform/host3/target3:0:0/3:0:0:1/block/sdb"
        );
        assert_eq!(
            p["DEVLINKS"],
            "/dev/disk/by-id/scsi-3600140512 /dev/disk/by-path/ip-1.2.3.4:3260-iscsi-iqn.x-lun-1"
        );
        assert_eq!(p["TAGS"], ":systemd:");
        assert_eq!(p["CURRENT_TAGS"], ":systemd:");
        assert_eq!(p["USEC_INITIALIZED"], "4242");
        assert!(!p.contains_key("SEQNUM"));
        assert!(!p.keys().any(|k| k.contains(' ')));
    }

    #[test]
    fn a_device_udev_has_not_handled_has_the_kernels_properties() {
        let p = merge(parse_uevent(UEVENT), None, None);
        assert_eq!(p["DEVNAME"], "/dev/sdb");
        assert!(!p.contains_key("ID_SERIAL"));
        assert!(!p.contains_key("TAGS"));
    }

    #[test]
    fn reads_the_two_files_of_a_tree() {
        let fs_ = FakeSysfs::new("udevdb");
        fs_.disk("sdb", "pseudo_0/adapter0", "1:0:0:1", "8:16");
        let root = fs_.sysfs();
        assert!(properties(&root, "sdgone").is_empty());
        std::fs::write(root.block_dir("sdb").join("uevent"), UEVENT).unwrap();
        let without_db = properties(&root, "sdb");
        assert_eq!(without_db["DEVTYPE"], "disk");
        assert!(!without_db.contains_key("ID_SERIAL"));
        let dir = data_dir(&root);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b8:16"), DB).unwrap();
        let p = properties(&root, "sdb");
        assert_eq!(p["ID_SERIAL"], "3600140512");
        assert!(p["DEVPATH"].ends_with("/block/sdb"), "{p:?}");
    }
}
