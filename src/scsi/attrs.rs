//! The SCSI device's sysfs attributes a checker reads on every check
//! (`state`, `access_state`, `preferred_path`), held open and re-read
//! with pread: kernfs builds an attribute's text afresh on each read at
//! offset 0, so one open serves every check. Opening by path costs a path
//! walk, a statx and a close each time, which on a SAN of a thousand
//! paths was a large share of a healthy check.
//!
//! A held file whose device was deleted fails its reads (ENODEV); the
//! caller then lets go and opens afresh, since the name may now belong to
//! another disk.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;

/// The attributes read per check, under `/sys/block/<dev>/device/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    State,
    AccessState,
    PreferredPath,
}

impl Attr {
    pub fn name(self) -> &'static str {
        match self {
            Attr::State => "state",
            Attr::AccessState => "access_state",
            Attr::PreferredPath => "preferred_path",
        }
    }

    fn index(self) -> usize {
        match self {
            Attr::State => 0,
            Attr::AccessState => 1,
            Attr::PreferredPath => 2,
        }
    }
}

/// The sysfs file of `attr` for the block device `dev`.
pub fn attr_path(dev: &str, attr: Attr) -> String {
    format!("/sys/block/{dev}/device/{}", attr.name())
}

/// Longest value kept: the attributes above are one short word or number.
const VALUE_MAX: usize = 64;

/// One read of an attribute, without allocating.
#[derive(Clone, Copy)]
pub struct AttrValue {
    buf: [u8; VALUE_MAX],
    len: usize,
}

impl AttrValue {
    /// The text, trimmed; empty when it is not UTF-8.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len])
            .unwrap_or("")
            .trim()
    }
}

impl std::fmt::Debug for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Read a held attribute file from its start.
fn pread_value(file: &File) -> io::Result<AttrValue> {
    let mut v = AttrValue {
        buf: [0; VALUE_MAX],
        len: 0,
    };
    v.len = file.read_at(&mut v.buf, 0)?;
    Ok(v)
}

/// A path's per-check attribute files, each opened on first use and kept.
#[derive(Debug)]
pub struct DeviceAttrs {
    dev: String,
    files: [OnceLock<File>; 3],
}

impl DeviceAttrs {
    pub fn new(dev: &str) -> Self {
        DeviceAttrs {
            dev: dev.to_string(),
            files: Default::default(),
        }
    }

    /// Read `attr`, opening its file the first time. An attribute the
    /// device does not have (no scsi_dh_alua: no access_state) is an
    /// error every time, and is tried again each time.
    pub fn read(&self, attr: Attr) -> io::Result<AttrValue> {
        let slot = &self.files[attr.index()];
        if let Some(f) = slot.get() {
            return pread_value(f);
        }
        let f = File::open(attr_path(&self.dev, attr))?;
        let v = pread_value(&f)?;
        // Another thread may have opened it meanwhile; either file is fine.
        let _ = slot.set(f);
        Ok(v)
    }
}

/// Read `attr` of `dev` by path, once (nothing held).
pub fn read_once(dev: &str, attr: Attr) -> io::Result<AttrValue> {
    pread_value(&File::open(attr_path(dev, attr))?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    /// A scratch file, removed from the directory at once (the fd stays).
    fn scratch(tag: &str) -> File {
        let p = std::env::temp_dir().join(format!("mpathd-attrs-{tag}-{}", std::process::id()));
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        std::fs::remove_file(&p).unwrap();
        f
    }

    #[test]
    fn a_held_file_is_read_afresh_from_its_start() {
        let mut f = scratch("afresh");
        f.write_all(b"running\n").unwrap();
        assert_eq!(pread_value(&f).unwrap().as_str(), "running");
        f.set_len(0).unwrap();
        f.rewind().unwrap();
        f.write_all(b"offline\n").unwrap();
        // The file position is at the end; pread still reads from 0.
        assert_eq!(pread_value(&f).unwrap().as_str(), "offline");
    }

    #[test]
    fn a_missing_device_is_an_error_not_a_panic() {
        let a = DeviceAttrs::new("sdnonexistent");
        assert!(a.read(Attr::State).is_err());
        assert!(a.read(Attr::AccessState).is_err());
        assert!(read_once("sdnonexistent", Attr::PreferredPath).is_err());
    }

    #[test]
    fn a_value_that_is_not_text_reads_as_empty() {
        let mut f = scratch("binary");
        f.write_all(&[0xff, 0xfe]).unwrap();
        assert_eq!(pread_value(&f).unwrap().as_str(), "");
    }
}
