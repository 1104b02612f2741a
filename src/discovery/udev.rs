//! The kernel edge of discovery: udev coldplug and the netlink monitor.
//!
//! Two tokio tasks: the listener drains the monitor socket (receive buffer
//! raised to 128 MiB like multipathd's) and coalesces events into a
//! [`Batcher`]; it never waits for the consumer, so while the consumer is
//! busy, events keep being merged into the next batch. The reader turns a
//! closed batch into [`PathInfo`]s (sysfs reads on the blocking pool) and
//! sends the [`PathBatch`].

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::AsFd;
use std::sync::{Arc, RwLock};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{setsockopt, sockopt};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::model::PathInfo;
use crate::{Error, Result};

use super::coalesce::{BatchWindow, Batcher, DevEvent};
use super::sysfs::{self, SysfsRoot};
use super::udevdb::{self, VOLATILE_PROPERTIES};
use super::{
    default_uid_attribute, identity, BatchKind, PathBatch, PathEvent, PathNotes, PathSource,
    UidAttributeFn,
};

/// multipathd's uevent socket buffer.
pub const DEFAULT_RECV_BUFFER: usize = 128 * 1024 * 1024;

/// Events handled per wakeup before letting other tasks run.
const MAX_EVENTS_PER_WAKEUP: usize = 4096;

#[derive(Debug, Clone)]
pub struct UdevConfig {
    pub sysfs: SysfsRoot,
    pub window: BatchWindow,
    /// Monitor socket receive buffer (SO_RCVBUFFORCE, else SO_RCVBUF).
    pub recv_buffer: usize,
    /// Batches the consumer may have queued before the reader waits.
    pub channel_capacity: usize,
}

impl Default for UdevConfig {
    fn default() -> Self {
        UdevConfig {
            sysfs: SysfsRoot::default(),
            window: BatchWindow::default(),
            recv_buffer: DEFAULT_RECV_BUFFER,
            channel_capacity: 16,
        }
    }
}

/// Discovery from udev and sysfs.
pub struct UdevPathSource {
    cfg: UdevConfig,
    uid: Arc<RwLock<UidAttributeFn>>,
}

fn udev_err(what: &str, e: std::io::Error) -> Error {
    Error::Udev(format!("{what}: {e}"))
}

/// udev properties worth keeping, from a device or event.
fn properties_of(dev: &::udev::Device) -> BTreeMap<String, String> {
    dev.properties()
        .filter_map(|p| {
            let k = p.name().to_str()?;
            if VOLATILE_PROPERTIES.contains(&k) {
                return None;
            }
            Some((k.to_string(), p.value().to_string_lossy().into_owned()))
        })
        .collect()
}

/// Reads one path: sysfs attributes, udev properties, identity.
pub fn build_path(
    root: &SysfsRoot,
    dev: &str,
    udev_properties: BTreeMap<String, String>,
    uid: &UidAttributeFn,
) -> Result<(PathInfo, PathNotes)> {
    let sp = sysfs::read_path(root, dev)?;
    let mut info = sp.info;
    // sysfs-derived entries (MPATHD_*) stay; udev's own names take the rest.
    info.properties.extend(udev_properties);
    let uid_attr = uid(&info);
    let identity_error = identity::assign_wwid(&mut info, &uid_attr, sp.vpd_wwid.as_deref()).err();
    Ok((
        info,
        PathNotes {
            identity_error,
            problems: sp.problems,
        },
    ))
}

/// A path's udev properties: given (from an event), or to be looked up.
enum Props {
    Given(BTreeMap<String, String>),
    Lookup,
}

impl Props {
    /// The properties; a lookup reads udev's database (a test tree's own).
    fn get(self, root: &SysfsRoot, dev: &str) -> BTreeMap<String, String> {
        match self {
            Props::Given(p) => p,
            Props::Lookup => udevdb::properties(root, dev),
        }
    }
}

/// The block devices whose udev property `key` is `value` (udev's
/// database; empty if udev is not running).
pub fn devices_with_property(key: &str, value: &str) -> Vec<String> {
    let scan = || -> std::io::Result<Vec<String>> {
        let mut e = ::udev::Enumerator::new()?;
        e.match_subsystem("block")?;
        e.match_property(key, value)?;
        Ok(e.scan_devices()?
            .map(|d| d.sysname().to_string_lossy().into_owned())
            .collect())
    };
    scan().unwrap_or_default()
}

/// udev's properties for `dev` from its database (empty if udev has not
/// processed it or is not running).
pub fn udev_properties(dev: &str) -> BTreeMap<String, String> {
    match ::udev::Device::from_subsystem_sysname("block".into(), dev.into()) {
        Ok(d) => properties_of(&d),
        Err(_) => BTreeMap::new(),
    }
}

fn note_batch(batch: &mut PathBatch, dev: &str, notes: PathNotes) {
    if notes != PathNotes::default() {
        batch.notes.insert(dev.to_string(), notes);
    }
}

impl UdevPathSource {
    pub fn new(cfg: UdevConfig) -> Self {
        UdevPathSource {
            cfg,
            uid: Arc::new(RwLock::new(default_uid_attribute())),
        }
    }

    /// Sets how a path's uid_attribute is found (after (re)configuration).
    /// Applies to paths read from now on.
    pub fn set_uid_attribute(&self, f: UidAttributeFn) {
        if let Ok(mut g) = self.uid.write() {
            *g = f;
        }
    }

    fn uid_fn(&self) -> UidAttributeFn {
        current_uid(&self.uid)
    }

    /// Every SCSI disk present now, from udev's database (falls back to a
    /// sysfs listing if udev cannot be asked). Devices that cannot be read
    /// are logged and left out.
    pub fn coldplug(&self) -> Result<PathBatch> {
        let uid = self.uid_fn();
        let t0 = std::time::Instant::now();
        let devs = self.list_disks()?;
        let n = devs.len();
        let mut batch = PathBatch::new(BatchKind::Coldplug);
        let read = build_paths(&self.cfg.sysfs, devs, &uid);
        // Where a cold start's time goes (the benchmark reads this).
        tracing::info!(
            "coldplug: {n} disks read (sysfs and udev) in {} ms",
            t0.elapsed().as_millis()
        );
        for (dev, res) in read {
            match res {
                Ok((info, notes)) => {
                    log_notes(&dev, &notes);
                    note_batch(&mut batch, &dev, notes);
                    batch.events.push(PathEvent::Add(info));
                }
                Err(e) => tracing::warn!("coldplug: skipping {dev}: {e}"),
            }
        }
        Ok(batch)
    }

    /// The SCSI disks, from `/sys/block`; their udev properties are looked
    /// up by the readers, in parallel. A udev enumeration did both in one
    /// thread and took 2.3 s of a 256-path cold start under emulation.
    fn list_disks(&self) -> Result<Vec<(String, Props)>> {
        Ok(self
            .cfg
            .sysfs
            .scsi_disks()?
            .into_iter()
            .map(|d| (d, Props::Lookup))
            .collect())
    }
}

/// Reads many paths at once on a few threads (coldplug, resync, storms):
/// each read is dozens of small sysfs reads, and 256 paths read one by one
/// took seconds of a cold start. Results keep the input order.
fn build_paths(
    root: &SysfsRoot,
    devs: Vec<(String, Props)>,
    uid: &UidAttributeFn,
) -> Vec<(String, Result<(PathInfo, PathNotes)>)> {
    const MAX_READERS: usize = 8;
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get() * 2)
        .clamp(1, MAX_READERS);
    if devs.len() < 8 || workers == 1 {
        return devs
            .into_iter()
            .map(|(dev, props)| {
                let r = build_path(root, &dev, props.get(root, &dev), uid);
                (dev, r)
            })
            .collect();
    }
    let chunk = devs.len().div_ceil(workers);
    let mut chunks: Vec<Vec<(String, Props)>> = Vec::new();
    let mut it = devs.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(chunk).collect());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                scope.spawn(move || {
                    c.into_iter()
                        .map(|(dev, props)| {
                            let r = build_path(root, &dev, props.get(root, &dev), uid);
                            (dev, r)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![("?".into(), Err(Error::Udev("path reader panicked".into())))]
                })
            })
            .collect()
    })
}

fn current_uid(lock: &RwLock<UidAttributeFn>) -> UidAttributeFn {
    match lock.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

fn log_notes(dev: &str, notes: &PathNotes) {
    for p in &notes.problems {
        tracing::warn!("{p}");
    }
    if let Some(e) = &notes.identity_error {
        tracing::warn!("{dev}: no usable WWID: {e}");
    }
}

/// Raises the socket's receive buffer: SO_RCVBUFFORCE needs CAP_NET_ADMIN,
/// else SO_RCVBUF up to net.core.rmem_max.
fn raise_recv_buffer(fd: &impl AsFd, size: usize) {
    if let Err(e) = setsockopt(fd, sockopt::RcvBufForce, &size) {
        tracing::debug!("SO_RCVBUFFORCE {size}: {e}; trying SO_RCVBUF");
        if let Err(e) = setsockopt(fd, sockopt::RcvBuf, &size) {
            tracing::warn!("uevent socket: cannot raise receive buffer to {size}: {e}");
        }
    }
}

/// The monitor socket, owned by the listener task.
struct Monitor(::udev::MonitorSocket);

// SAFETY: libudev objects may move between threads as long as they are not
// used from two threads at once. The socket (and the udev context it holds)
// is owned by exactly one task and only used from that task's poll; tokio
// may resume the task on another worker thread, which is a move, not shared
// use. `Sync` is needed only because the task's future holds `&AsyncFd`
// across an await; no other reference exists.
unsafe impl Send for Monitor {}
// SAFETY: see above; the only `&Monitor` lives inside the listener task.
unsafe impl Sync for Monitor {}

impl std::os::fd::AsRawFd for Monitor {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

/// What the listener keeps per event until the batch closes.
#[derive(Debug, Clone)]
struct RawDev {
    properties: BTreeMap<String, String>,
}

struct RawBatch {
    events: Vec<DevEvent<RawDev>>,
    /// Events were lost (socket overflow): rebuild from sysfs.
    resync: bool,
}

fn raw_event(ev: &::udev::Event) -> Option<DevEvent<RawDev>> {
    let name = ev.sysname().to_str()?.to_string();
    if !sysfs::is_scsi_disk_name(&name) || ev.devtype().and_then(|t| t.to_str()) != Some("disk") {
        return None;
    }
    let raw = || RawDev {
        properties: properties_of(ev),
    };
    match ev.event_type() {
        ::udev::EventType::Add => Some(DevEvent::Add(name, raw())),
        ::udev::EventType::Change => Some(DevEvent::Change(name, raw())),
        ::udev::EventType::Remove => Some(DevEvent::Remove(name)),
        _ => None,
    }
}

fn readable_now(fd: &impl AsFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Receives queued events into the batcher. Returns (events seen, more
/// queued, overflow seen).
fn drain(
    socket: &::udev::MonitorSocket,
    b: &mut Batcher<RawDev>,
    now: std::time::Instant,
) -> (usize, bool, bool) {
    let mut n = 0;
    let mut overflow = false;
    let mut failures = 0;
    while n < MAX_EVENTS_PER_WAKEUP {
        match socket.iter().next() {
            Some(ev) => {
                n += 1;
                if let Some(e) = raw_event(&ev) {
                    b.push(e, now);
                }
            }
            None => {
                // libudev sets errno; ENOBUFS means the kernel dropped events.
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::ENOBUFS) {
                    overflow = true;
                    continue;
                }
                if !readable_now(socket) {
                    return (n, false, overflow);
                }
                // A message libudev rejected; skip it, but never spin.
                failures += 1;
                if failures > 64 {
                    tracing::warn!(
                        "uevent socket: {failures} unreadable messages in a row ({err})"
                    );
                    return (n, true, overflow);
                }
            }
        }
    }
    (n, true, overflow)
}

async fn listener(afd: AsyncFd<Monitor>, window: BatchWindow, raw_tx: mpsc::Sender<RawBatch>) {
    let mut batcher: Batcher<RawDev> = Batcher::new(window);
    let mut overflow = false;
    loop {
        let now = std::time::Instant::now();
        let due = overflow || batcher.is_due(now);
        let deadline = if due { None } else { batcher.deadline() };
        tokio::select! {
            r = afd.readable() => {
                let mut guard = match r {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::error!("uevent socket failed: {e}; monitor stops");
                        return;
                    }
                };
                let (_, more, ovf) = drain(&guard.get_inner().0, &mut batcher, std::time::Instant::now());
                if ovf {
                    tracing::warn!("uevent socket overflowed: events lost, rescanning all paths");
                    overflow = true;
                }
                if !more {
                    guard.clear_ready();
                }
            }
            permit = raw_tx.reserve(), if due => {
                let Ok(permit) = permit else { return };
                permit.send(RawBatch { events: batcher.take(), resync: std::mem::take(&mut overflow) });
            }
            _ = tokio::time::sleep_until(Instant::from_std(deadline.unwrap_or(now))), if deadline.is_some() => {}
            _ = raw_tx.closed(), if !due => return,
        }
    }
}

/// Turns raw events into a batch of paths. `known` is what the consumer
/// has: it decides Add vs Change and is updated.
fn build_batch(
    root: &SysfsRoot,
    uid: &UidAttributeFn,
    raw: RawBatch,
    known: &mut BTreeSet<String>,
) -> PathBatch {
    let mut batch;
    let mut reads: Vec<(String, Props)> = Vec::new();
    if raw.resync {
        batch = PathBatch::new(BatchKind::Resync);
        let present: BTreeSet<String> = match root.scsi_disks() {
            Ok(v) => v.into_iter().collect(),
            Err(e) => {
                tracing::error!("resync: cannot list disks: {e}");
                return batch;
            }
        };
        for gone in known.difference(&present).cloned().collect::<Vec<_>>() {
            known.remove(&gone);
            batch.events.push(PathEvent::Remove(gone));
        }
        let mut present: Vec<String> = present.into_iter().collect();
        present.sort_by(|a, b| sysfs::disk_order(a, b));
        for dev in present {
            reads.push((dev, Props::Lookup));
        }
    } else {
        batch = PathBatch::new(BatchKind::Uevents);
        for ev in raw.events {
            match ev {
                DevEvent::Remove(dev) => {
                    if known.remove(&dev) {
                        batch.events.push(PathEvent::Remove(dev));
                    }
                }
                DevEvent::Add(dev, r) | DevEvent::Change(dev, r) => {
                    reads.push((dev, Props::Given(r.properties)))
                }
            }
        }
    }
    for (dev, res) in build_paths(root, reads, uid) {
        match res {
            Ok((info, notes)) => {
                log_notes(&dev, &notes);
                note_batch(&mut batch, &dev, notes);
                if known.insert(dev) {
                    batch.events.push(PathEvent::Add(info));
                } else {
                    batch.events.push(PathEvent::Change(info));
                }
            }
            // Gone again before we could read it: its remove event follows.
            Err(e) => tracing::debug!("{dev}: not read: {e}"),
        }
    }
    batch
}

async fn reader(
    mut raw_rx: mpsc::Receiver<RawBatch>,
    tx: mpsc::Sender<PathBatch>,
    root: SysfsRoot,
    uid: Arc<RwLock<UidAttributeFn>>,
    mut known: BTreeSet<String>,
) {
    while let Some(raw) = raw_rx.recv().await {
        let root = root.clone();
        let uid = current_uid(&uid);
        let mut k = std::mem::take(&mut known);
        let res = tokio::task::spawn_blocking(move || {
            let b = build_batch(&root, &uid, raw, &mut k);
            (b, k)
        })
        .await;
        let batch = match res {
            Ok((b, k)) => {
                known = k;
                b
            }
            Err(e) => {
                tracing::error!("path reader failed: {e}");
                return;
            }
        };
        if batch.is_empty() {
            continue;
        }
        if tx.send(batch).await.is_err() {
            return;
        }
    }
}

impl PathSource for UdevPathSource {
    fn start(&self) -> Result<mpsc::Receiver<PathBatch>> {
        // Listen before coldplug so nothing falls between the two.
        let socket = ::udev::MonitorBuilder::new()
            .and_then(|b| b.match_subsystem_devtype("block", "disk"))
            .and_then(|b| b.listen())
            .map_err(|e| udev_err("monitor", e))?;
        raise_recv_buffer(&socket, self.cfg.recv_buffer);
        // SAFETY: the monitor owns its netlink fd until it is dropped, which
        // happens only when the AsyncFd is dropped; as_raw_fd always
        // returns that same fd.
        let afd = unsafe { AsyncFd::register_with_interest(Monitor(socket), Interest::READABLE) }
            .map_err(|e| Error::Udev(format!("registering monitor socket: {e}")))?;

        let coldplug = self.coldplug()?;
        let known: BTreeSet<String> = coldplug
            .events
            .iter()
            .map(|e| e.dev().to_string())
            .collect();
        tracing::info!("coldplug: {} paths", known.len());

        let (tx, rx) = mpsc::channel(self.cfg.channel_capacity.max(1));
        tx.try_send(coldplug)
            .map_err(|e| Error::Other(format!("discovery channel: {e}")))?;
        let (raw_tx, raw_rx) = mpsc::channel(1);
        tokio::spawn(listener(afd, self.cfg.window, raw_tx));
        tokio::spawn(reader(
            raw_rx,
            tx,
            self.cfg.sysfs.clone(),
            self.uid.clone(),
            known,
        ));
        Ok(rx)
    }

    fn read_path(&self, dev: &str) -> Result<(PathInfo, PathNotes)> {
        let props = Props::Lookup.get(&self.cfg.sysfs, dev);
        build_path(&self.cfg.sysfs, dev, props, &self.uid_fn())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::sysfs::tests::FakeSysfs;

    fn raw(props: &[(&str, &str)]) -> RawDev {
        RawDev {
            properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn batch_normalizes_add_and_change_against_known() {
        let fs_ = FakeSysfs::new("udevbatch");
        fs_.disk("sda", "pseudo_0/adapter0", "1:0:0:0", "8:0");
        fs_.disk("sdb", "pseudo_0/adapter0", "1:0:0:1", "8:16");
        let root = fs_.sysfs();
        let uid = default_uid_attribute();
        let mut known: BTreeSet<String> = ["sda".to_string(), "sdx".to_string()].into();
        let b = build_batch(
            &root,
            &uid,
            RawBatch {
                events: vec![
                    DevEvent::Add("sda".into(), raw(&[("ID_SERIAL", "3A")])),
                    DevEvent::Change("sdb".into(), raw(&[])),
                    DevEvent::Remove("sdx".into()),
                    DevEvent::Remove("sdq".into()),
                    DevEvent::Add("sdgone".into(), raw(&[])),
                ],
                resync: false,
            },
            &mut known,
        );
        assert_eq!(b.kind, BatchKind::Uevents);
        let kinds: Vec<String> = b
            .events
            .iter()
            .map(|e| match e {
                PathEvent::Add(i) => format!("add {} {:?}", i.dev, i.wwid),
                PathEvent::Change(i) => format!("change {} {:?}", i.dev, i.wwid),
                PathEvent::Remove(d) => format!("remove {d}"),
            })
            .collect();
        assert_eq!(
            kinds,
            ["remove sdx", "change sda Some(\"3A\")", "add sdb None"]
        );
        let no_wwid = b.notes["sdb"].identity_error.as_ref().unwrap();
        assert_eq!(
            no_wwid.udev,
            Some(("ID_SERIAL".to_string(), identity::Gap::Absent))
        );
        assert_eq!(known, ["sda".to_string(), "sdb".to_string()].into());
    }

    #[test]
    fn resync_rebuilds_from_sysfs() {
        let fs_ = FakeSysfs::new("resync");
        fs_.disk("sda", "pseudo_0/adapter0", "1:0:0:0", "8:0");
        fs_.disk("sdc", "pseudo_0/adapter0", "1:0:0:2", "8:32");
        let mut known: BTreeSet<String> = ["sda".to_string(), "sdb".to_string()].into();
        let b = build_batch(
            &fs_.sysfs(),
            &default_uid_attribute(),
            RawBatch {
                events: vec![],
                resync: true,
            },
            &mut known,
        );
        assert_eq!(b.kind, BatchKind::Resync);
        let devs: Vec<(bool, &str)> = b
            .events
            .iter()
            .map(|e| (matches!(e, PathEvent::Add(_)), e.dev()))
            .collect();
        assert_eq!(devs, [(false, "sdb"), (false, "sda"), (true, "sdc")]);
        assert!(matches!(b.events[0], PathEvent::Remove(_)));
    }

    #[test]
    fn many_paths_are_read_in_parallel_in_order() {
        let fs_ = FakeSysfs::new("coldplug-many");
        let names: Vec<String> = (0..20)
            .map(|i| format!("sd{}", (b'a' + i) as char))
            .collect();
        for (i, n) in names.iter().enumerate() {
            fs_.disk(
                n,
                "pseudo_0/adapter0",
                &format!("1:0:0:{i}"),
                &format!("8:{}", i * 16),
            );
        }
        let src = UdevPathSource::new(UdevConfig {
            sysfs: fs_.sysfs(),
            ..UdevConfig::default()
        });
        let b = src.coldplug().unwrap();
        let got: Vec<&str> = b.events.iter().map(PathEvent::dev).collect();
        assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn coldplug_from_fake_tree_with_custom_uid_attribute() {
        let fs_ = FakeSysfs::new("coldplug");
        fs_.disk("sdb", "pseudo_0/adapter0", "1:0:0:1", "8:16");
        fs_.disk("sda", "pseudo_0/adapter0", "1:0:0:0", "8:0");
        let src = UdevPathSource::new(UdevConfig {
            sysfs: fs_.sysfs(),
            ..UdevConfig::default()
        });
        src.set_uid_attribute(Arc::new(|_| String::new()));
        let b = src.coldplug().unwrap();
        assert_eq!(b.kind, BatchKind::Coldplug);
        assert_eq!(
            b.events.iter().map(PathEvent::dev).collect::<Vec<_>>(),
            ["sda", "sdb"]
        );
        assert!(b.notes["sda"].identity_error.is_some());
        let (info, _) = src.read_path("sdb").unwrap();
        assert_eq!(info.hcil.unwrap().lun, 1);
        assert!(src.read_path("sdz").is_err());
    }
}
