//! The device-mapper kernel edge: the narrow [`DmOps`] trait the policy
//! executor calls, and [`RealDm`], its implementation with dm ioctls through
//! the `devicemapper` crate.
//!
//! Guarantees the executor relies on: `create` never leaves a table-less
//! map behind, `reload` never leaves a map suspended, `remove` refuses an
//! open map with [`DmError::InUse`].

use std::fmt;
use std::str::FromStr;

use devicemapper::{
    errors, DevId, DeviceInfo, DmFlags, DmName, DmOptions, DmUdevFlags, DmUuid, DM,
};
use std::os::fd::AsRawFd;

use devicemapper_sys as dmi;
use nix::errno::Errno;

use super::DmError;
use crate::model::DevT;

/// The target type this layer manages.
pub const MULTIPATH_TARGET: &str = "multipath";

/// What the kernel says about one map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    pub name: String,
    /// DM uuid (`mpath-<wwid>`), empty when the map has none.
    pub uuid: String,
    /// The map's own device number; the sysfs name is `dm-<minor>`.
    pub devt: DevT,
    pub event_nr: u32,
    pub open_count: u32,
    pub suspended: bool,
    /// `multipath`, or empty for a map without an active table (left over
    /// by an interrupted create; listed when its uuid starts with `mpath-`).
    pub target_type: String,
}

impl MapInfo {
    pub fn minor(&self) -> u32 {
        self.devt.minor
    }

    pub fn has_table(&self) -> bool {
        !self.target_type.is_empty()
    }
}

/// A message to the multipath target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmMessage {
    FailPath(DevT),
    ReinstatePath(DevT),
    QueueIfNoPath,
    FailIfNoPath,
    /// 1-based group number.
    SwitchGroup(u32),
    EnableGroup(u32),
    DisableGroup(u32),
}

impl fmt::Display for DmMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DmMessage::FailPath(d) => write!(f, "fail_path {d}"),
            DmMessage::ReinstatePath(d) => write!(f, "reinstate_path {d}"),
            DmMessage::QueueIfNoPath => f.write_str("queue_if_no_path"),
            DmMessage::FailIfNoPath => f.write_str("fail_if_no_path"),
            DmMessage::SwitchGroup(n) => write!(f, "switch_group {n}"),
            DmMessage::EnableGroup(n) => write!(f, "enable_group {n}"),
            DmMessage::DisableGroup(n) => write!(f, "disable_group {n}"),
        }
    }
}

impl FromStr for DmMessage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let dev = |w: &str| w.parse::<DevT>();
        let num = |w: &str| {
            w.parse::<u32>()
                .map_err(|_| format!("bad group number '{w}' in message '{s}'"))
        };
        match words.as_slice() {
            ["queue_if_no_path"] => Ok(DmMessage::QueueIfNoPath),
            ["fail_if_no_path"] => Ok(DmMessage::FailIfNoPath),
            ["fail_path", d] => dev(d).map(DmMessage::FailPath),
            ["reinstate_path", d] => dev(d).map(DmMessage::ReinstatePath),
            ["switch_group", n] => num(n).map(DmMessage::SwitchGroup),
            ["enable_group", n] => num(n).map(DmMessage::EnableGroup),
            ["disable_group", n] => num(n).map(DmMessage::DisableGroup),
            _ => Err(format!("unknown multipath message '{s}'")),
        }
    }
}

/// The device-mapper operations the daemon needs. Every call is one short
/// synchronous kernel transaction (plus, for resume and remove, the wait
/// for udev to finish its rules when udev runs): call from a blocking
/// thread, not from an async task.
pub trait DmOps: Send + Sync {
    /// Maps with a multipath table (and table-less `mpath-` leftovers).
    fn list_maps(&self) -> Result<Vec<MapInfo>, DmError>;
    /// One map, whatever its target.
    fn map_info(&self, name: &str) -> Result<MapInfo, DmError>;
    /// The active table: (length in sectors, multipath params).
    fn table(&self, name: &str) -> Result<(u64, String), DmError>;
    /// The multipath target's status params.
    fn status(&self, name: &str) -> Result<String, DmError>;
    /// One map's info and its active table, if it has one. The default
    /// asks twice; a real kernel answers both in one ioctl.
    fn info_and_table(&self, name: &str) -> Result<(MapInfo, Option<(u64, String)>), DmError> {
        let info = self.map_info(name)?;
        if !info.has_table() {
            return Ok((info, None));
        }
        let table = self.table(name)?;
        Ok((info, Some(table)))
    }
    /// Create, load and resume a map. On failure the half-created device is
    /// removed again ([`DmError::RolledBack`]).
    fn create(&self, name: &str, uuid: &str, size: u64, params: &str) -> Result<MapInfo, DmError>;
    /// [`DmOps::create`], telling udev's rules not to make partition maps
    /// (kpartx) when `skip_kpartx`. Without udev (a simulator) the flag has
    /// no one to tell.
    fn create_opts(
        &self,
        name: &str,
        uuid: &str,
        size: u64,
        params: &str,
        _skip_kpartx: bool,
    ) -> Result<MapInfo, DmError> {
        self.create(name, uuid, size, params)
    }
    /// [`DmOps::reload`] with the same udev flag.
    fn reload_opts(
        &self,
        name: &str,
        size: u64,
        params: &str,
        noflush: bool,
        _skip_kpartx: bool,
    ) -> Result<(), DmError> {
        self.reload(name, size, params, noflush)
    }
    /// The partition maps (kpartx's, uuid `partN-<uuid>`) of the map with
    /// this uuid.
    fn partitions_of(&self, _uuid: &str) -> Result<Vec<String>, DmError> {
        Ok(Vec::new())
    }
    /// Load a new table and resume onto it (suspending with noflush when
    /// asked, so queued I/O stays queued). If the swap fails, the inactive
    /// table is cleared and the map resumed on its old table.
    fn reload(&self, name: &str, size: u64, params: &str, noflush: bool) -> Result<(), DmError>;
    /// Remove a map. An open map is refused with [`DmError::InUse`] unless
    /// `deferred`, which removes it at last close.
    fn remove(&self, name: &str, deferred: bool) -> Result<(), DmError>;
    fn message(&self, name: &str, msg: &DmMessage) -> Result<(), DmError>;
    /// Suspend without flushing (queued I/O stays queued).
    fn suspend(&self, name: &str) -> Result<(), DmError>;
    fn resume(&self, name: &str) -> Result<(), DmError>;
    fn event_nr(&self, name: &str) -> Result<u32, DmError>;
}

// ----------------------------------------------------------------------
// RealDm
// ----------------------------------------------------------------------

/// udev flag bits (libdevmapper.h). Node and link creation is udev's job,
/// so the library fallback is off; every DM_UDEV_DISABLE_*_RULES flag stays
/// clear so the dm, disk (by-id) and other rules (kpartx, LVM) run.
const UDEV_DISABLE_LIBRARY_FALLBACK: u32 = 0x0020;
/// DM_SUBSYSTEM_UDEV_FLAG0 is multipath's "reload" flag: the multipath udev
/// rules then leave upper layers alone (no rescan on a table swap).
const UDEV_MPATH_RELOAD: u32 = 0x0100;
/// DM_SUBSYSTEM_UDEV_FLAG1 is multipath's "no kpartx" flag (skip_kpartx):
/// kpartx's udev rule then makes no partition maps.
const UDEV_MPATH_NO_KPARTX: u32 = 0x0200;

fn kpartx_flag(skip: bool) -> u32 {
    if skip {
        UDEV_MPATH_NO_KPARTX
    } else {
        0
    }
}

/// Whether `uuid` names a partition map of the map `of` (`partN-<of>`).
pub fn is_partition_uuid(uuid: &str, of: &str) -> bool {
    uuid.strip_prefix("part")
        .and_then(|r| r.split_once('-'))
        .is_some_and(|(n, rest)| {
            !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) && rest == of
        })
}

fn udev_flags(bits: u32) -> DmUdevFlags {
    DmUdevFlags::from_bits_retain(bits)
}

nix::ioctl_readwrite!(
    dm_dev_suspend,
    dmi::DM_IOCTL,
    dmi::DM_DEV_SUSPEND_CMD,
    dmi::dm_ioctl
);

/// DM_DEV_SUSPEND without the DM_SUSPEND flag (a resume), with the udev
/// flags in event_nr's high half and no cookie (base 0), as libdevmapper
/// sends it when udev sync is off.
fn resume_nowait(dm: &DM, name: &[u8], flags: u32, udev: u32) -> Result<(), Errno> {
    // SAFETY: dm_ioctl is plain old data; all zeroes is a valid value.
    let mut hdr: dmi::dm_ioctl = unsafe { std::mem::zeroed() };
    if name.len() >= hdr.name.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    let size = u32::try_from(std::mem::size_of::<dmi::dm_ioctl>()).map_err(|_| Errno::EINVAL)?;
    hdr.version = [dmi::DM_VERSION_MAJOR, 0, 0];
    hdr.data_size = size;
    hdr.data_start = size;
    hdr.flags = flags & !dmi::DM_SUSPEND_FLAG;
    // The primary-source flag tells the dm udev rules (55-dm.rules) this
    // is a real activation, not a spurious change: without it they skip
    // the device (no /dev/disk/by-id links). Cookie 0: nothing to notify.
    hdr.event_nr = ((udev | dmi::DM_UDEV_PRIMARY_SOURCE_FLAG) & 0xffff) << dmi::DM_UDEV_FLAGS_SHIFT;
    for (d, s) in hdr.name.iter_mut().zip(name) {
        *d = *s as std::os::raw::c_char;
    }
    // SAFETY: the control fd is open for the DM's lifetime and hdr is a
    // complete dm_ioctl of data_size bytes, as the kernel requires.
    unsafe { dm_dev_suspend(dm.file().as_raw_fd(), &mut hdr) }.map(|_| ())
}

/// [`DmOps`] on the running kernel.
pub struct RealDm {
    dm: DM,
}

impl RealDm {
    /// Opens /dev/mapper/control.
    pub fn new() -> Result<Self, DmError> {
        DM::new()
            .map(|dm| RealDm { dm })
            .map_err(|e| DmError::Unavailable(e.to_string()))
    }

    fn info(&self, map: &str, op: &'static str, id: &DevId<'_>) -> Result<DeviceInfo, DmError> {
        self.dm.device_info(id).map_err(|e| err(map, op, e))
    }

    /// Resume (moving an inactive table in) without waiting for udev.
    ///
    /// The devicemapper crate waits on a udev cookie whenever udev runs; under
    /// a uevent storm (LUNs hot-added, every path changing) that wait queues
    /// behind all pending path events and holds the map's next change for
    /// seconds. multipathd runs with udev sync off too: udev still gets the
    /// event (with our udev flags) and makes the nodes on its own time.
    fn do_resume(&self, map: &str, flags: DmFlags, udev: u32) -> Result<(), DmError> {
        let name = dm_name(map)?;
        resume_nowait(
            &self.dm,
            name.as_bytes(),
            flags.bits(),
            UDEV_DISABLE_LIBRARY_FALLBACK | udev,
        )
        .map_err(|e| DmError::Ioctl {
            map: map.to_string(),
            op: "resume",
            msg: e.desc().to_string(),
            errno: Some(e as i32),
        })
    }

    fn do_remove(&self, map: &str, deferred: bool) -> Result<(), DmError> {
        let name = dm_name(map)?;
        let flags = if deferred {
            DmFlags::DM_DEFERRED_REMOVE
        } else {
            DmFlags::empty()
        };
        let opts = DmOptions::default()
            .set_flags(flags)
            .set_udev_flags(udev_flags(UDEV_DISABLE_LIBRARY_FALLBACK));
        match self.dm.device_remove(&DevId::Name(name), opts) {
            Ok(_) => Ok(()),
            Err(e) if errno_of(&e) == Some(Errno::EBUSY) => Err(DmError::InUse {
                map: map.to_string(),
            }),
            Err(e) => Err(err(map, "remove", e)),
        }
    }
}

fn dm_name(map: &str) -> Result<&DmName, DmError> {
    DmName::new(map).map_err(|e| DmError::Ioctl {
        map: map.to_string(),
        op: "name check",
        msg: e.to_string(),
        errno: None,
    })
}

fn errno_of(e: &devicemapper::DmError) -> Option<Errno> {
    match e {
        devicemapper::DmError::Core(errors::Error::Ioctl(_, _, _, errno)) => Some(**errno),
        _ => None,
    }
}

/// Maps the crate's error onto ours, keeping messages short (the crate's
/// Display dumps whole ioctl headers).
fn err(map: &str, op: &'static str, e: devicemapper::DmError) -> DmError {
    let map = map.to_string();
    match errno_of(&e) {
        Some(Errno::ENXIO) | Some(Errno::ENODEV) => DmError::NotFound { map },
        Some(errno) => DmError::Ioctl {
            map,
            op,
            msg: format!("{} ({})", errno.desc(), errno),
            errno: Some(errno as i32),
        },
        None => DmError::Ioctl {
            map,
            op,
            msg: e.to_string(),
            errno: None,
        },
    }
}

fn map_info_from(map: &str, info: &DeviceInfo, targets: &[(u64, u64, String, String)]) -> MapInfo {
    let dev = info.device();
    MapInfo {
        name: info
            .name()
            .map_or_else(|| map.to_string(), |n| n.to_string()),
        uuid: info.uuid().map(|u| u.to_string()).unwrap_or_default(),
        devt: DevT::new(dev.major, dev.minor),
        event_nr: info.event_nr(),
        open_count: u32::try_from(info.open_count()).unwrap_or(0),
        suspended: info.flags().contains(DmFlags::DM_SUSPEND),
        target_type: targets
            .first()
            .map(|(_, _, t, _)| t.clone())
            .unwrap_or_default(),
    }
}

/// The single multipath target of a table/status reply.
fn single_target(
    map: &str,
    targets: Vec<(u64, u64, String, String)>,
) -> Result<(u64, String), DmError> {
    let not = |detail: String| DmError::NotMultipath {
        map: map.to_string(),
        detail,
    };
    match targets.as_slice() {
        [] => Err(not("no active table".into())),
        [(0, len, ty, params)] if ty == MULTIPATH_TARGET => Ok((*len, params.trim().to_string())),
        [(_, _, ty, _)] => Err(not(format!("target '{ty}'"))),
        more => Err(not(format!("{} targets", more.len()))),
    }
}

impl RealDm {
    /// The device's info and its active table's targets, in one ioctl.
    fn table_query(&self, name: &str) -> Result<(DeviceInfo, Vec<Target>), DmError> {
        let id = DevId::Name(dm_name(name)?);
        self.dm
            .table_status(
                &id,
                DmOptions::default().set_flags(DmFlags::DM_STATUS_TABLE),
            )
            .map_err(|e| err(name, "table query", e))
    }
}

/// A table line: start, length, target type, params.
type Target = (u64, u64, String, String);

impl DmOps for RealDm {
    fn list_maps(&self) -> Result<Vec<MapInfo>, DmError> {
        let devices = self
            .dm
            .list_devices()
            .map_err(|e| err("(all)", "list devices", e))?;
        let mut maps = Vec::new();
        for (name, _, _) in devices {
            let name = name.to_string();
            match self.map_info(&name) {
                Ok(m)
                    if m.target_type == MULTIPATH_TARGET
                        || (!m.has_table() && m.uuid.starts_with("mpath-")) =>
                {
                    maps.push(m)
                }
                Ok(_) => {}
                // Removed between the list and the query.
                Err(DmError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(maps)
    }

    fn map_info(&self, name: &str) -> Result<MapInfo, DmError> {
        let (info, targets) = self.table_query(name)?;
        Ok(map_info_from(name, &info, &targets))
    }

    fn table(&self, name: &str) -> Result<(u64, String), DmError> {
        let (_, targets) = self.table_query(name)?;
        single_target(name, targets)
    }

    fn info_and_table(&self, name: &str) -> Result<(MapInfo, Option<(u64, String)>), DmError> {
        let (info, targets) = self.table_query(name)?;
        let info = map_info_from(name, &info, &targets);
        if targets.is_empty() {
            return Ok((info, None));
        }
        Ok((info, Some(single_target(name, targets)?)))
    }

    fn status(&self, name: &str) -> Result<String, DmError> {
        let id = DevId::Name(dm_name(name)?);
        let (_, targets) = self
            .dm
            .table_status(&id, DmOptions::default().set_flags(DmFlags::DM_NOFLUSH))
            .map_err(|e| err(name, "status query", e))?;
        single_target(name, targets).map(|(_, s)| s)
    }

    fn create(&self, name: &str, uuid: &str, size: u64, params: &str) -> Result<MapInfo, DmError> {
        self.create_opts(name, uuid, size, params, false)
    }

    fn create_opts(
        &self,
        name: &str,
        uuid: &str,
        size: u64,
        params: &str,
        skip_kpartx: bool,
    ) -> Result<MapInfo, DmError> {
        let dm_name = dm_name(name)?;
        let dm_uuid = if uuid.is_empty() {
            None
        } else {
            Some(DmUuid::new(uuid).map_err(|e| DmError::Ioctl {
                map: name.to_string(),
                op: "uuid check",
                msg: e.to_string(),
                errno: None,
            })?)
        };
        let id = DevId::Name(dm_name);
        if let Err(e) = self
            .dm
            .device_create(dm_name, dm_uuid, DmOptions::default())
        {
            return Err(match errno_of(&e) {
                Some(Errno::EBUSY) => DmError::Exists {
                    map: name.to_string(),
                },
                _ => err(name, "create", e),
            });
        }
        let table = [(0, size, MULTIPATH_TARGET.to_string(), params.to_string())];
        let loaded = self
            .dm
            .table_load(&id, &table, DmOptions::default())
            .map(|_| ())
            .map_err(|e| err(name, "table load", e))
            .and_then(|()| self.do_resume(name, DmFlags::empty(), kpartx_flag(skip_kpartx)));
        if let Err(cause) = loaded {
            // Never leave a table-less (or never-resumed) map behind.
            return Err(match self.do_remove(name, false) {
                Ok(()) => DmError::RolledBack {
                    map: name.to_string(),
                    action: "create",
                    cause: Box::new(cause),
                },
                Err(rollback) => DmError::RollbackFailed {
                    map: name.to_string(),
                    action: "create",
                    cause: Box::new(cause),
                    rollback: Box::new(rollback),
                },
            });
        }
        self.info(name, "create", &id)
            .map(|info| map_info_from(name, &info, &table))
    }

    fn reload(&self, name: &str, size: u64, params: &str, noflush: bool) -> Result<(), DmError> {
        self.reload_opts(name, size, params, noflush, false)
    }

    fn reload_opts(
        &self,
        name: &str,
        size: u64,
        params: &str,
        noflush: bool,
        skip_kpartx: bool,
    ) -> Result<(), DmError> {
        let udev = UDEV_MPATH_RELOAD | kpartx_flag(skip_kpartx);
        let id = DevId::Name(dm_name(name)?);
        let table = [(0, size, MULTIPATH_TARGET.to_string(), params.to_string())];
        // A failed load leaves nothing behind: the old table stays active.
        self.dm
            .table_load(&id, &table, DmOptions::default())
            .map_err(|e| err(name, "table load", e))?;
        let flags = if noflush {
            DmFlags::DM_NOFLUSH
        } else {
            DmFlags::empty()
        };
        let Err(cause) = self.do_resume(name, flags, udev) else {
            return Ok(());
        };
        // The kernel may have suspended the map before the swap failed:
        // drop the new table and resume on the old one.
        let rollback = match self.dm.table_clear(&id) {
            Err(e) if errno_of(&e) != Some(Errno::ENXIO) => Err(err(name, "table clear", e)),
            _ => self.do_resume(name, DmFlags::empty(), udev),
        };
        Err(match rollback {
            Ok(()) => DmError::RolledBack {
                map: name.to_string(),
                action: "reload",
                cause: Box::new(cause),
            },
            Err(rollback) => DmError::RollbackFailed {
                map: name.to_string(),
                action: "reload",
                cause: Box::new(cause),
                rollback: Box::new(rollback),
            },
        })
    }

    fn partitions_of(&self, uuid: &str) -> Result<Vec<String>, DmError> {
        let devices = self
            .dm
            .list_devices()
            .map_err(|e| err("(all)", "list devices", e))?;
        let mut parts = Vec::new();
        for (name, _, _) in devices {
            let id = DevId::Name(&name);
            // A device gone meanwhile is no partition of ours.
            let Ok(info) = self.dm.device_info(&id) else {
                continue;
            };
            let puuid = info
                .uuid()
                .map(|u| String::from_utf8_lossy(u.as_bytes()).into_owned())
                .unwrap_or_default();
            if is_partition_uuid(&puuid, uuid) {
                parts.push(name.to_string());
            }
        }
        Ok(parts)
    }

    fn remove(&self, name: &str, deferred: bool) -> Result<(), DmError> {
        let id = DevId::Name(dm_name(name)?);
        let info = self.info(name, "remove", &id)?;
        if info.open_count() > 0 && !deferred {
            return Err(DmError::InUse {
                map: name.to_string(),
            });
        }
        self.do_remove(name, deferred)
    }

    fn message(&self, name: &str, msg: &DmMessage) -> Result<(), DmError> {
        let id = DevId::Name(dm_name(name)?);
        self.dm
            .target_msg(&id, None, &msg.to_string())
            .map(|_| ())
            .map_err(|e| match err(name, "message", e) {
                DmError::Ioctl {
                    map, msg: m, errno, ..
                } => DmError::Ioctl {
                    msg: format!("'{msg}': {m}"),
                    map,
                    op: "message",
                    errno,
                },
                other => other,
            })
    }

    fn suspend(&self, name: &str) -> Result<(), DmError> {
        let id = DevId::Name(dm_name(name)?);
        let opts = DmOptions::default().set_flags(DmFlags::DM_SUSPEND | DmFlags::DM_NOFLUSH);
        self.dm
            .device_suspend(&id, opts)
            .map(|_| ())
            .map_err(|e| err(name, "suspend", e))
    }

    fn resume(&self, name: &str) -> Result<(), DmError> {
        self.do_resume(name, DmFlags::empty(), UDEV_MPATH_RELOAD)
    }

    fn event_nr(&self, name: &str) -> Result<u32, DmError> {
        let id = DevId::Name(dm_name(name)?);
        self.info(name, "info", &id).map(|i| i.event_nr())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for s in [
            "fail_path 8:16",
            "reinstate_path 65:240",
            "queue_if_no_path",
            "fail_if_no_path",
            "switch_group 2",
            "enable_group 1",
            "disable_group 3",
        ] {
            let m: DmMessage = s.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(m.to_string(), s);
        }
        assert!("fail_path sdb".parse::<DmMessage>().is_err());
        assert!("switch_group x".parse::<DmMessage>().is_err());
        assert!("frobnicate".parse::<DmMessage>().is_err());
    }

    #[test]
    fn single_target_checks_the_shape() {
        let t = |ty: &str| vec![(0, 100, ty.to_string(), "0 0 0 0 ".to_string())];
        assert_eq!(
            single_target("m", t("multipath")).unwrap(),
            (100, "0 0 0 0".to_string())
        );
        assert!(matches!(
            single_target("m", t("linear")),
            Err(DmError::NotMultipath { .. })
        ));
        assert!(single_target("m", vec![]).is_err());
    }
}

#[cfg(test)]
mod partition_tests {
    use super::is_partition_uuid;

    #[test]
    fn kpartx_partition_uuids() {
        assert!(is_partition_uuid("part1-mpath-3600a", "mpath-3600a"));
        assert!(is_partition_uuid("part12-mpath-3600a", "mpath-3600a"));
        assert!(!is_partition_uuid("part1-mpath-3600ab", "mpath-3600a"));
        assert!(!is_partition_uuid("partx-mpath-3600a", "mpath-3600a"));
        assert!(!is_partition_uuid("part-mpath-3600a", "mpath-3600a"));
        assert!(!is_partition_uuid("mpath-3600a", "mpath-3600a"));
        assert!(!is_partition_uuid("LVM-abc", "mpath-3600a"));
    }
}
