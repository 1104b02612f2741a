//! A simulated [`PathSource`] and synthetic SANs, so the policy core can be
//! driven through path storms in unit tests without a kernel.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::model::{DevState, DevT, Hcil, PathInfo, Transport};
use crate::{Error, Result};

use super::coalesce::{Coalescer, DevEvent};
use super::{BatchKind, PathBatch, PathEvent, PathNotes, PathSource};

pub use super::sd_name;

/// dev_t the sd driver gives its `index`-th disk.
pub fn sd_devt(index: usize) -> DevT {
    let group = (index & 0xf0) >> 4;
    let major = match group {
        0 => 8,
        1..=7 => 64 + group as u32,
        _ => 128 + (group as u32 - 8) % 8,
    };
    let minor = (((index & 0xf) << 4) | (index & 0xfff00)) as u32;
    DevT::new(major, minor)
}

/// A synthetic SAN: `luns` LUNs seen through each of `hosts` SCSI hosts.
/// Path `(host, lun)` has a WWID per LUN, ALUA state by host like
/// scsi_debug (host % 3: optimized, non-optimized, standby).
#[derive(Debug, Clone)]
pub struct SimSan {
    pub hosts: u32,
    pub luns: u32,
    /// First SCSI host number.
    pub first_host: u32,
    pub size: u64,
    pub vendor: String,
    pub product: String,
    pub transport: Transport,
}

impl SimSan {
    pub fn new(hosts: u32, luns: u32) -> Self {
        SimSan {
            hosts,
            luns,
            first_host: 1,
            size: 2 * 1024 * 1024,
            vendor: "LIO-ORG".into(),
            product: "sim".into(),
            transport: Transport::Iscsi,
        }
    }

    pub fn wwid(&self, lun: u32) -> String {
        format!("36001405{lun:024x}")
    }

    /// Index of a path in kernel discovery order (host-major).
    pub fn index(&self, host: u32, lun: u32) -> usize {
        (host * self.luns + lun) as usize
    }

    pub fn path(&self, host: u32, lun: u32) -> PathInfo {
        let idx = self.index(host, lun);
        let access = ["active/optimized", "active/non-optimized", "standby"][(host % 3) as usize];
        let wwid = self.wwid(lun);
        PathInfo {
            dev: sd_name(idx),
            devt: Some(sd_devt(idx)),
            hcil: Some(Hcil {
                host: self.first_host + host,
                channel: 0,
                target: 0,
                lun: u64::from(lun),
            }),
            vendor: self.vendor.clone(),
            product: self.product.clone(),
            rev: "4.0".into(),
            wwid: Some(wwid.clone()),
            wwid_source: Some("ID_SERIAL".into()),
            size: self.size,
            dev_state: DevState::Running,
            timeout_secs: Some(30),
            transport: self.transport,
            tpgs: 1,
            tpg_id: Some(host as u16),
            dh_state: Some("alua".into()),
            access_state: Some(access.into()),
            serial: Some(format!("sim{lun}")),
            target_wwnn: Some("iqn.2003-01.org.example:sim".into()),
            properties: BTreeMap::from([
                ("DEVTYPE".to_string(), "disk".to_string()),
                ("ID_SERIAL".to_string(), wwid),
            ]),
            ..PathInfo::default()
        }
    }

    /// Every path, host-major (the order a coldplug lists them).
    pub fn paths(&self) -> Vec<PathInfo> {
        (0..self.hosts)
            .flat_map(|h| (0..self.luns).map(move |l| (h, l)))
            .map(|(h, l)| self.path(h, l))
            .collect()
    }
}

#[derive(Default)]
struct SimState {
    /// What exists now.
    paths: BTreeMap<String, PathInfo>,
    /// What the consumer has been told about.
    delivered: BTreeSet<String>,
    pending: Coalescer<PathInfo>,
    tx: Option<mpsc::Sender<PathBatch>>,
}

/// A [`PathSource`] over an in-memory set of paths. Tests change the set
/// (`add`, `change`, `remove`, `storm`) and close batches with
/// [`SimPathSource::take_batch`] or [`SimPathSource::flush`]; coalescing is
/// the same as the udev source's.
#[derive(Default)]
pub struct SimPathSource {
    state: Mutex<SimState>,
}

impl SimPathSource {
    pub fn new(paths: impl IntoIterator<Item = PathInfo>) -> Self {
        let s = SimPathSource::default();
        if let Ok(mut st) = s.state.lock() {
            st.paths = paths.into_iter().map(|p| (p.dev.clone(), p)).collect();
        }
        s
    }

    fn with<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        let mut g = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// A new path appears (udev `add`).
    pub fn add(&self, info: PathInfo) {
        self.with(|s| {
            s.paths.insert(info.dev.clone(), info.clone());
            s.pending.push(DevEvent::Add(info.dev.clone(), info));
        });
    }

    /// A path's attributes change (udev `change`).
    pub fn change(&self, info: PathInfo) {
        self.with(|s| {
            s.paths.insert(info.dev.clone(), info.clone());
            s.pending.push(DevEvent::Change(info.dev.clone(), info));
        });
    }

    /// A path goes away (udev `remove`).
    pub fn remove(&self, dev: &str) {
        self.with(|s| {
            s.paths.remove(dev);
            s.pending.push(DevEvent::Remove(dev.to_string()));
        });
    }

    /// Adds every path of `san`, each followed by a change event as udev
    /// sends after probing: the storm a large LUN mapping causes.
    pub fn storm(&self, san: &SimSan) {
        for p in san.paths() {
            self.add(p.clone());
            self.change(p);
        }
    }

    /// Raw events queued since the last batch.
    pub fn queued(&self) -> usize {
        self.with(|s| s.pending.received())
    }

    /// Every path that exists now.
    pub fn paths(&self) -> Vec<PathInfo> {
        self.with(|s| s.paths.values().cloned().collect())
    }

    /// Closes the current batch window: coalesced events, with Add/Change
    /// normalized against what was delivered before.
    pub fn take_batch(&self) -> PathBatch {
        self.with(|s| {
            let mut batch = PathBatch::new(BatchKind::Uevents);
            for ev in s.pending.drain() {
                match ev {
                    DevEvent::Remove(dev) => {
                        if s.delivered.remove(&dev) {
                            batch.events.push(PathEvent::Remove(dev));
                        }
                    }
                    DevEvent::Add(dev, info) | DevEvent::Change(dev, info) => {
                        if s.delivered.insert(dev) {
                            batch.events.push(PathEvent::Add(info));
                        } else {
                            batch.events.push(PathEvent::Change(info));
                        }
                    }
                }
            }
            batch
        })
    }

    /// Sends the current batch to the channel [`PathSource::start`] returned.
    /// Returns false if there was nothing to send or no room/receiver.
    pub fn flush(&self) -> bool {
        let batch = self.take_batch();
        if batch.is_empty() {
            return false;
        }
        self.with(|s| s.tx.as_ref().is_some_and(|tx| tx.try_send(batch).is_ok()))
    }
}

impl PathSource for SimPathSource {
    fn start(&self) -> Result<mpsc::Receiver<PathBatch>> {
        let (tx, rx) = mpsc::channel(64);
        self.with(|s| {
            let mut batch = PathBatch::new(BatchKind::Coldplug);
            let mut paths: Vec<&PathInfo> = s.paths.values().collect();
            paths.sort_by(|a, b| super::sysfs::disk_order(&a.dev, &b.dev));
            batch.events = paths.into_iter().cloned().map(PathEvent::Add).collect();
            s.delivered = s.paths.keys().cloned().collect();
            // Events before start are part of the coldplug.
            s.pending = Coalescer::new();
            tx.try_send(batch)
                .map_err(|e| Error::Other(format!("sim channel: {e}")))?;
            s.tx = Some(tx);
            Ok(rx)
        })
    }

    fn read_path(&self, dev: &str) -> Result<(PathInfo, PathNotes)> {
        self.with(|s| s.paths.get(dev).cloned())
            .map(|p| (p, PathNotes::default()))
            .ok_or_else(|| Error::Device {
                dev: dev.to_string(),
                msg: "no such path".into(),
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn names_and_numbers_like_the_kernel() {
        assert_eq!(sd_name(0), "sda");
        assert_eq!(sd_name(25), "sdz");
        assert_eq!(sd_name(26), "sdaa");
        assert_eq!(sd_name(701), "sdzz");
        assert_eq!(sd_name(702), "sdaaa");
        assert_eq!(sd_devt(0), DevT::new(8, 0));
        assert_eq!(sd_devt(1), DevT::new(8, 16));
        assert_eq!(sd_devt(16), DevT::new(65, 0));
        assert_eq!(sd_devt(255), DevT::new(135, 240));
        assert_eq!(sd_devt(256), DevT::new(8, 256));
    }

    #[tokio::test]
    async fn storm_of_1024_paths_is_one_batch_grouping_into_256_maps() {
        let sim = SimPathSource::new(SimSan::new(1, 4).paths());
        let mut rx = sim.start().unwrap();
        let cold = rx.recv().await.unwrap();
        assert_eq!((cold.kind, cold.events.len()), (BatchKind::Coldplug, 4));

        // 4 hosts x 256 LUNs arrive (the first 4 paths already exist).
        let san = SimSan::new(4, 256);
        sim.storm(&san);
        assert_eq!(sim.queued(), 2048);
        assert!(sim.flush());
        let b = rx.recv().await.unwrap();
        assert_eq!(b.kind, BatchKind::Uevents);
        assert_eq!(b.events.len(), 1024);
        let adds = b
            .events
            .iter()
            .filter(|e| matches!(e, PathEvent::Add(_)))
            .count();
        assert_eq!(adds, 1020, "the 4 coldplugged paths arrive as changes");
        let mut by_wwid: BTreeMap<String, usize> = BTreeMap::new();
        for e in &b.events {
            if let PathEvent::Add(i) | PathEvent::Change(i) = e {
                *by_wwid.entry(i.wwid.clone().unwrap()).or_default() += 1;
            }
        }
        assert_eq!(by_wwid.len(), 256);
        assert!(by_wwid.values().all(|&n| n == 4));
        assert!(!sim.flush(), "nothing left");
    }

    #[tokio::test]
    async fn add_remove_within_a_window_is_silent_remove_later_is_not() {
        let san = SimSan::new(2, 2);
        let sim = SimPathSource::new(san.paths());
        let mut rx = sim.start().unwrap();
        let _ = rx.recv().await.unwrap();
        let extra = SimSan::new(3, 2).path(2, 0);
        sim.add(extra.clone());
        sim.remove(&extra.dev);
        assert!(sim.take_batch().is_empty());
        sim.remove("sda");
        sim.remove("sdq");
        let b = sim.take_batch();
        assert_eq!(b.events, [PathEvent::Remove("sda".into())]);
        assert_eq!(sim.paths().len(), 3);
        assert!(sim.read_path("sda").is_err());
        assert_eq!(sim.read_path("sdb").unwrap().0.dev, "sdb");
    }
}
