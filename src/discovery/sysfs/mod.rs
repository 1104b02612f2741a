//! Reading one path's attributes from sysfs into [`PathInfo`].
//!
//! The sysfs root is a parameter ([`SysfsRoot`]) so tests build fake trees
//! in a temporary directory. A path that is not a SCSI block device is an
//! error; a missing or garbled attribute is not: it is left at its default
//! and recorded, with the file and the reason, in [`SysfsPath::problems`].

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::Mode;

use crate::model::{DevState, DevT, Hcil, PathInfo, Transport};
use crate::transport::Endpoint;
use crate::{Error, Result};

use super::vpd;

/// Attribute files are small; a bigger one is garbage, not worth reading.
const MAX_ATTR_BYTES: u64 = 64 * 1024;

/// Properties discovery adds itself (not from udev), named so that no udev
/// rule or blacklist `property` regex written for udev names matches them.
pub const PROP_ISCSI_PORTAL: &str = "MPATHD_ISCSI_PORTAL";
pub const PROP_ISCSI_SESSION: &str = "MPATHD_ISCSI_SESSION";

/// Where sysfs is mounted: `/sys` on a host, a temporary tree in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysfsRoot(PathBuf);

impl Default for SysfsRoot {
    fn default() -> Self {
        SysfsRoot(PathBuf::from("/sys"))
    }
}

impl SysfsRoot {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SysfsRoot(path.into())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `<root>/block/<dev>`.
    pub fn block_dir(&self, dev: &str) -> PathBuf {
        self.0.join("block").join(dev)
    }

    /// Kernel names of every `sd*` block device (whole disks only: partitions
    /// are not listed under `/sys/block`).
    pub fn scsi_disks(&self) -> Result<Vec<String>> {
        let dir = self.0.join("block");
        let rd = fs::read_dir(&dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        let mut out: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_scsi_disk_name(n))
            .collect();
        out.sort_by(|a, b| disk_order(a, b));
        Ok(out)
    }
}

/// `sd` followed by lowercase letters: a SCSI disk (not a partition).
pub fn is_scsi_disk_name(name: &str) -> bool {
    name.strip_prefix("sd")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_lowercase()))
}

/// sda < sdz < sdaa: shorter names first, then by name.
pub fn disk_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// What sysfs says about one path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SysfsPath {
    /// Everything but `wwid`/`wwid_source` and udev `properties`, which the
    /// identity step and the udev layer fill in.
    pub info: PathInfo,
    /// The WWID udev's rules would derive from `device/vpd_pg83`, if readable.
    pub vpd_wwid: Option<String>,
    /// Which designator `vpd_wwid` came from, e.g. `NAA IEEE Registered Extended`.
    pub vpd_wwid_designator: Option<&'static str>,
    /// Attributes that were missing or unreadable, each with the reason.
    pub problems: Vec<String>,
}

/// Why an attribute file could not be read. The caller names the file
/// (`sdc/device/vendor: ...`), so the text is the reason alone.
#[derive(Debug, thiserror::Error)]
enum AttrError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("larger than {MAX_ATTR_BYTES} bytes")]
    TooLarge,
}

type AttrResult<T> = std::result::Result<T, AttrError>;

/// Reads a small attribute file; `Ok(None)` when it does not exist.
fn read_bytes(path: &Path) -> AttrResult<Option<Vec<u8>>> {
    match fs::File::open(path) {
        Ok(f) => read_open(f).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads attribute `name` of the directory `dir` is open on: one lookup
/// instead of a walk through `/sys/block/sdX` and the `device` link, which
/// under emulation made a coldplug of 1024 paths cost seconds.
fn read_bytes_at(dir: &OwnedFd, name: &str) -> AttrResult<Option<Vec<u8>>> {
    match openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => read_open(fs::File::from(fd)).map(Some),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(std::io::Error::from(e).into()),
    }
}

fn read_open(f: fs::File) -> AttrResult<Vec<u8>> {
    // Room for a whole page up front: no small probe read first.
    let mut buf = Vec::with_capacity(4096);
    f.take(MAX_ATTR_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_ATTR_BYTES {
        return Err(AttrError::TooLarge);
    }
    Ok(buf)
}

fn text_of(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).trim().to_string()
}

fn read_text(path: &Path) -> AttrResult<Option<String>> {
    Ok(read_bytes(path)?.map(text_of))
}

/// Opens a directory for lookups only (O_PATH), following a final link.
fn open_dir_at(dir: Option<&OwnedFd>, path: &Path) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    match dir {
        Some(d) => openat(d, path, flags, Mode::empty()),
        None => nix::fcntl::open(path, flags, Mode::empty()),
    }
}

/// Collects per-attribute problems while reading one device.
struct Reader<'a> {
    dev: &'a str,
    /// `block/<dev>`.
    block: OwnedFd,
    /// `block/<dev>/device` (the SCSI device), if it could be opened.
    device: Option<OwnedFd>,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn note(&mut self, rel: &str, why: impl std::fmt::Display) {
        self.problems.push(format!("{}/{rel}: {why}", self.dev));
    }

    fn read(&self, rel: &str) -> AttrResult<Option<Vec<u8>>> {
        match rel.strip_prefix("device/") {
            Some(name) => match &self.device {
                Some(d) => read_bytes_at(d, name),
                None => Ok(None),
            },
            None => read_bytes_at(&self.block, rel),
        }
    }

    /// Text attribute relative to the block dir; a problem if `required`
    /// and missing, or unreadable.
    fn text(&mut self, rel: &str, required: bool) -> Option<String> {
        match self.read(rel) {
            Ok(Some(b)) => Some(text_of(b)),
            Ok(None) => {
                if required {
                    self.note(rel, "missing");
                }
                None
            }
            Err(e) => {
                self.note(rel, e);
                None
            }
        }
    }

    fn bytes(&mut self, rel: &str) -> Option<Vec<u8>> {
        match self.read(rel) {
            Ok(b) => b,
            Err(e) => {
                self.note(rel, e);
                None
            }
        }
    }

    fn number<T: std::str::FromStr>(&mut self, rel: &str, required: bool) -> Option<T> {
        let s = self.text(rel, required)?;
        match s.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.note(rel, format!("'{}' is not a number", shorten(&s)));
                None
            }
        }
    }

    fn flag(&mut self, rel: &str, required: bool) -> Option<bool> {
        match self.text(rel, required)?.as_str() {
            "0" => Some(false),
            "1" => Some(true),
            other => {
                self.note(rel, format!("'{}' is neither 0 nor 1", shorten(other)));
                None
            }
        }
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

fn device_error(dev: &str, msg: impl Into<String>) -> Error {
    Error::Device {
        dev: dev.to_string(),
        msg: msg.into(),
    }
}

/// Reads everything sysfs knows about SCSI disk `dev` (e.g. `sdc`).
///
/// Errors only when `dev` is not a SCSI block device under this root
/// (no `block/<dev>`, no `dev` number, no `device` link ending in H:C:T:L).
pub fn read_path(root: &SysfsRoot, dev: &str) -> Result<SysfsPath> {
    if dev.is_empty() || dev.contains('/') || dev == "." || dev == ".." {
        return Err(device_error(dev, "not a kernel device name"));
    }
    let base = root.block_dir(dev);
    let block = match open_dir_at(None, &base) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => {
            return Err(device_error(
                dev,
                format!("{} does not exist (device gone?)", base.display()),
            ))
        }
        Err(e) => return Err(device_error(dev, format!("{}: {e}", base.display()))),
    };
    let mut r = Reader {
        dev,
        block,
        device: None,
        problems: Vec::new(),
    };
    let mut info = PathInfo {
        dev: dev.to_string(),
        ..PathInfo::default()
    };

    info.devt = Some(read_devt(&r.block, dev)?);
    let hcil = read_hcil(&r.block, dev)?;
    info.hcil = Some(hcil);
    match open_dir_at(Some(&r.block), Path::new("device")) {
        Ok(fd) => r.device = Some(fd),
        // Every device/ attribute then reports itself missing.
        Err(e) => r.note("device", std::io::Error::from(e)),
    }
    let link = base.join("device");

    info.size = r.number("size", true).unwrap_or(0);
    info.read_only = r.flag("ro", true).unwrap_or(false);
    info.vendor = r.text("device/vendor", true).unwrap_or_default();
    info.product = r.text("device/model", true).unwrap_or_default();
    info.rev = r.text("device/rev", true).unwrap_or_default();
    info.dev_state = match r.text("device/state", true) {
        Some(s) => {
            let st = DevState::from_sysfs(&s);
            if st == DevState::Unknown {
                r.note("device/state", format!("unknown state '{}'", shorten(&s)));
            }
            st
        }
        None => DevState::Unknown,
    };
    info.timeout_secs = r.number("device/timeout", true);

    // TPGS: sysfs keeps the standard INQUIRY data on kernels >= 5.x; when it
    // is absent, 0 stays and the prioritizer asks the device over SG_IO.
    if let Some(inq) = r.bytes("device/inquiry") {
        match vpd::tpgs_from_inquiry(&inq) {
            Ok(t) => info.tpgs = t,
            Err(e) => r.note("device/inquiry", e),
        }
    }

    let (vpd_wwid, vpd_wwid_designator) = read_pg83(&mut r, &mut info).unzip();
    if let Some(page) = r.bytes("device/vpd_pg80") {
        match vpd::parse_pg80(&page) {
            Ok(s) => info.serial = Some(s),
            Err(e) => r.note("device/vpd_pg80", e),
        }
    }

    // scsi_dh attributes exist only with a handler module loaded.
    info.dh_state = r
        .text("device/dh_state", false)
        .filter(|s| !s.is_empty() && s != "detached");
    info.access_state = r
        .text("device/access_state", false)
        .filter(|s| !s.is_empty());
    info.preferred_path = r.flag("device/preferred_path", false).unwrap_or(false);

    read_transport(root, &mut r, &link, hcil, &mut info);

    Ok(SysfsPath {
        info,
        vpd_wwid,
        vpd_wwid_designator,
        problems: r.problems,
    })
}

/// The block device's number (`dev`).
fn read_devt(block: &OwnedFd, dev: &str) -> Result<DevT> {
    match read_bytes_at(block, "dev") {
        Ok(Some(b)) => text_of(b)
            .parse::<DevT>()
            .map_err(|e| device_error(dev, format!("{dev}/dev: {e}"))),
        Ok(None) => Err(device_error(dev, format!("{dev}/dev: missing"))),
        Err(e) => Err(device_error(dev, format!("{dev}/dev: {e}"))),
    }
}

/// H:C:T:L: the name of the SCSI device the `device` link points to.
fn read_hcil(block: &OwnedFd, dev: &str) -> Result<Hcil> {
    let target = readlinkat(block, "device").map_err(|e| {
        device_error(
            dev,
            format!(
                "{dev}/device: not a SCSI device ({})",
                std::io::Error::from(e)
            ),
        )
    })?;
    let hcil_name = Path::new(&target)
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| device_error(dev, format!("{dev}/device: link has no name")))?;
    hcil_name
        .parse()
        .map_err(|e| device_error(dev, format!("{dev}/device: not a SCSI device: {e}")))
}

/// VPD page 0x83: the target port group into `info`, and the identity
/// (WWID, designator) it gives, if any.
fn read_pg83(r: &mut Reader<'_>, info: &mut PathInfo) -> Option<(String, &'static str)> {
    let page = r.bytes("device/vpd_pg83")?;
    match vpd::parse_pg83(&page) {
        Ok(pg) => {
            if let Some(w) = &pg.warning {
                r.note("device/vpd_pg83", w);
            }
            info.tpg_id = vpd::target_port_group(&pg);
            vpd::wwid_from_pg83(&pg)
        }
        Err(e) => {
            r.note("device/vpd_pg83", e);
            None
        }
    }
}

fn is_pci_name(s: &str) -> bool {
    // dddd:bb:dd.f
    let b = s.as_bytes();
    b.len() == 12
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b':',
            10 => c == b'.',
            _ => c.is_ascii_hexdigit(),
        })
}

fn read_opt(p: PathBuf) -> Option<String> {
    read_text(&p).ok().flatten().filter(|s| !s.is_empty())
}

/// An FC target's node and port names (`class/fc_transport/targetH:C:T`).
fn read_fc_target(root: &SysfsRoot, r: &mut Reader<'_>, hcil: Hcil, info: &mut PathInfo) {
    let tgt = root.path().join("class/fc_transport").join(format!(
        "target{}:{}:{}",
        hcil.host, hcil.channel, hcil.target
    ));
    info.target_wwnn = read_opt(tgt.join("node_name"));
    info.target_wwpn = read_opt(tgt.join("port_name"));
    if info.target_wwnn.is_none() {
        r.note(
            "device",
            format!("FC target node name not found under {}", tgt.display()),
        );
    }
}

/// The iSCSI session in the device's path (`sessionN`): its target name
/// and the portal of its connection.
fn read_iscsi_session(root: &SysfsRoot, r: &mut Reader<'_>, names: &[String], info: &mut PathInfo) {
    let Some(session) = names.iter().find(|n| {
        n.strip_prefix("session")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
    }) else {
        r.note("device", "iSCSI host but no session in the device path");
        return;
    };
    let sdir = root.path().join("class/iscsi_session").join(session);
    info.target_wwnn = read_opt(sdir.join("targetname"));
    if info.target_wwnn.is_none() {
        r.note("device", format!("{session}: no iSCSI target name"));
    }
    info.properties
        .insert(PROP_ISCSI_SESSION.to_string(), session.clone());
    let conn = root
        .path()
        .join("class/iscsi_connection")
        .join(format!("connection{}:0", &session["session".len()..]));
    let addr = read_opt(conn.join("persistent_address")).or_else(|| read_opt(conn.join("address")));
    let port = read_opt(conn.join("persistent_port")).or_else(|| read_opt(conn.join("port")));
    if let Some(addr) = addr {
        let portal = match port {
            Some(p) if addr.contains(':') => format!("[{addr}]:{p}"),
            Some(p) => format!("{addr}:{p}"),
            None => addr,
        };
        info.properties
            .insert(PROP_ISCSI_PORTAL.to_string(), portal);
    }
}

/// Transport from the SCSI host's class: FC and SAS hosts get node/port
/// names and the HBA's PCI address; iSCSI hosts the session's target name
/// and portal.
fn read_transport(
    root: &SysfsRoot,
    r: &mut Reader<'_>,
    link: &Path,
    hcil: Hcil,
    info: &mut PathInfo,
) {
    let host = format!("host{}", hcil.host);
    let class = |c: &str| root.path().join("class").join(c).join(&host);
    let kind = ["fc_host", "iscsi_host", "sas_host", "srp_host"]
        .into_iter()
        .find(|c| class(c).is_dir());
    // The device's full sysfs path names the HBA and the iSCSI session;
    // resolving it costs a lookup per component, so only when a
    // transport needs it.
    let canonical = kind.and_then(|_| fs::canonicalize(link).ok());
    let names: Vec<String> = canonical
        .iter()
        .flat_map(|p| p.components())
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str().map(str::to_string),
            _ => None,
        })
        .collect();
    let pci_adapter = names
        .windows(2)
        .find(|w| w[1] == host && is_pci_name(&w[0]))
        .map(|w| w[0].clone());

    info.endpoint = names
        .iter()
        .filter_map(|n| Endpoint::from_path_component(n))
        .find(|e| {
            matches!(
                (e, kind),
                (Endpoint::Iscsi { .. }, Some("iscsi_host"))
                    | (Endpoint::Fc { .. }, Some("fc_host"))
                    | (Endpoint::Sas { .. }, Some("sas_host"))
            )
        });

    if kind == Some("fc_host") {
        info.transport = Transport::Fcp;
        info.host_wwnn = read_opt(class("fc_host").join("node_name"));
        info.host_wwpn = read_opt(class("fc_host").join("port_name"));
        read_fc_target(root, r, hcil, info);
        info.host_adapter = pci_adapter;
    } else if kind == Some("iscsi_host") {
        info.transport = Transport::Iscsi;
        info.host_adapter = read_opt(class("iscsi_host").join("ipaddress"));
        read_iscsi_session(root, r, &names, info);
    } else if kind == Some("sas_host") {
        info.transport = Transport::Sas;
        info.host_adapter = pci_adapter;
    } else if kind == Some("srp_host") {
        info.transport = Transport::Srp;
        info.host_adapter = pci_adapter;
    } else {
        info.transport = Transport::Unspecified;
    }
}

#[cfg(test)]
pub(crate) mod tests;
