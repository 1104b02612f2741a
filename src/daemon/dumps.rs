//! `show config local` and `show devices`: texts that depend on which
//! devices are present, made again only when the configuration or the set
//! of known paths changes. `show config local` is rendered by the query
//! that asks for it: it compiles the hardware table's patterns, which a
//! publish must not pay for.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::Config;
use crate::model::{DaemonSnapshot, Deferred};

/// The block devices the host has (`/sys/block`), for `show devices`.
pub type BlockDevices = Box<dyn Fn() -> Vec<String> + Send>;

#[derive(Default)]
pub struct LocalDumps {
    config: Option<Arc<Config>>,
    paths: BTreeSet<String>,
    config_local: Deferred,
    devices: Arc<str>,
}

impl LocalDumps {
    /// Brings both texts up to date with `config` and `snap`'s paths and
    /// sets them in `snap`.
    pub fn fill(
        &mut self,
        config: Option<&Arc<Config>>,
        snap: &mut DaemonSnapshot,
        block_devices: Option<&BlockDevices>,
    ) {
        let Some(config) = config else {
            return;
        };
        let same_config = self.config.as_ref().is_some_and(|c| Arc::ptr_eq(c, config));
        let same_paths = snap.paths.len() == self.paths.len()
            && snap.paths.iter().all(|p| self.paths.contains(&p.info.dev));
        if !same_config || !same_paths {
            self.config = Some(config.clone());
            self.paths = snap.paths.iter().map(|p| p.info.dev.clone()).collect();
            let present = Config::device_identities(snap.paths.iter().map(|p| &*p.info));
            let cfg = config.clone();
            let maps: Vec<String> = snap.maps.iter().map(|m| m.wwid.clone()).collect();
            self.config_local = Deferred::new(move || cfg.show_config_local(&present, &maps));
            let mut devs: BTreeSet<String> = block_devices
                .map(|f| f())
                .unwrap_or_default()
                .into_iter()
                .collect();
            devs.extend(self.paths.iter().cloned());
            let listed: Vec<(String, bool)> = devs
                .into_iter()
                .map(|d| {
                    let monitored = self.paths.contains(&d);
                    (d, monitored)
                })
                .collect();
            self.devices = config.show_devices(&listed).into();
        }
        snap.config_local_dump = self.config_local.clone();
        snap.devices_dump = self.devices.clone();
    }
}

/// `/sys/block`'s entries.
pub fn sys_block_devices() -> Vec<String> {
    std::fs::read_dir("/sys/block")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{PathInfo, PathSnapshot};

    fn snap_with(devs: &[&str]) -> DaemonSnapshot {
        DaemonSnapshot {
            paths: devs
                .iter()
                .map(|d| {
                    Arc::new(PathSnapshot {
                        info: Arc::new(PathInfo {
                            dev: d.to_string(),
                            vendor: "NETAPP".into(),
                            product: "LUN C-Mode".into(),
                            ..PathInfo::default()
                        }),
                        ..PathSnapshot::default()
                    })
                })
                .collect(),
            ..DaemonSnapshot::default()
        }
    }

    #[test]
    fn devices_and_local_config_follow_the_paths() {
        let cfg = Arc::new(Config::default());
        let mut dumps = LocalDumps::default();
        let block: BlockDevices = Box::new(|| vec!["sda".into(), "sdb".into(), "vda".into()]);
        let mut snap = snap_with(&["sda"]);
        dumps.fill(Some(&cfg), &mut snap, Some(&block));
        assert!(snap
            .devices_dump
            .contains("    sda  devnode whitelisted, monitored\n"));
        assert!(snap
            .devices_dump
            .contains("    sdb devnode whitelisted, unmonitored\n"));
        assert!(snap
            .devices_dump
            .contains("    vda devnode blacklisted, unmonitored\n"));
        assert!(snap.config_local_dump.text().contains("vendor \"NETAPP\""));
        // A new path: rendered again.
        let mut snap = snap_with(&["sda", "sdb"]);
        dumps.fill(Some(&cfg), &mut snap, Some(&block));
        assert!(snap
            .devices_dump
            .contains("    sdb  devnode whitelisted, monitored\n"));
    }
}
