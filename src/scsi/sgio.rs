//! The SG_IO ioctl on a SCSI block device (`/dev/sdX`), and the commands
//! built on it. Every call blocks until the kernel completes or times out
//! the command: callers off the async runtime only (see `checker::runner`).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use super::parse::{
    self, cdb_inquiry, cdb_read10, cdb_report_target_port_groups, cdb_test_unit_ready, Outcome,
    StdInquiry, TpgDescriptor,
};
use super::ScsiError;

/// `struct sg_io_hdr` from <scsi/sg.h>.
#[repr(C)]
#[derive(Debug)]
struct SgIoHdr {
    interface_id: libc::c_int,
    dxfer_direction: libc::c_int,
    cmd_len: libc::c_uchar,
    mx_sb_len: libc::c_uchar,
    iovec_count: libc::c_ushort,
    dxfer_len: libc::c_uint,
    dxferp: *mut libc::c_void,
    cmdp: *const libc::c_uchar,
    sbp: *mut libc::c_uchar,
    timeout: libc::c_uint,
    flags: libc::c_uint,
    pack_id: libc::c_int,
    usr_ptr: *mut libc::c_void,
    status: libc::c_uchar,
    masked_status: libc::c_uchar,
    msg_status: libc::c_uchar,
    sb_len_wr: libc::c_uchar,
    host_status: libc::c_ushort,
    driver_status: libc::c_ushort,
    resid: libc::c_int,
    duration: libc::c_uint,
    info: libc::c_uint,
}

const SG_DXFER_NONE: libc::c_int = -1;
const SG_DXFER_TO_DEV: libc::c_int = -2;
const SG_DXFER_FROM_DEV: libc::c_int = -3;
const SG_IO: libc::c_ulong = 0x2285;
const BLKSSZGET: libc::c_ulong = 0x1268;
const SENSE_LEN: usize = 64;

nix::ioctl_readwrite_bad!(sg_io_ioctl, SG_IO, SgIoHdr);
nix::ioctl_read_bad!(blksszget_ioctl, BLKSSZGET, libc::c_int);

/// Everything the kernel reported about one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgResult {
    pub status: u8,
    pub masked_status: u8,
    pub host_status: u16,
    pub driver_status: u16,
    /// The sense bytes the device wrote.
    pub sense: Vec<u8>,
    /// Bytes of data actually transferred (data-in commands).
    pub transferred: usize,
    pub duration_ms: u32,
    pub outcome: Outcome,
}

/// A command's data phase.
enum Transfer<'a> {
    None,
    In(&'a mut [u8]),
    Out(&'a [u8]),
}

/// An open SCSI block device.
#[derive(Debug)]
pub struct SgDevice {
    file: File,
    name: String,
}

/// `/dev/<dev>` for a kernel name, the name itself for a path.
pub fn devnode(dev: &str) -> String {
    if dev.starts_with('/') {
        dev.to_string()
    } else {
        format!("/dev/{dev}")
    }
}

fn timeout_ms(t: Duration) -> u32 {
    // 0 would mean "driver default"; u32::MAX "forever": keep clear of both.
    t.as_millis().clamp(1, u32::MAX as u128 - 1) as u32
}

impl SgDevice {
    /// Open `/dev/<dev>` read-only and non-blocking, as multipathd does: the
    /// open itself must not wait for media or spin-up.
    pub fn open(dev: &str) -> Result<Self, ScsiError> {
        let node = devnode(dev);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&node)
            .map_err(|e| ScsiError::Open(node.clone(), e))?;
        Ok(SgDevice { file, name: node })
    }

    pub fn from_file(file: File, name: impl Into<String>) -> Self {
        SgDevice {
            file,
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Run one command. `data` is the data-in buffer (None for no data).
    /// Errors only when the ioctl itself fails; a command that completed
    /// with bad status is an `Ok` whose `outcome` says so.
    pub fn execute(
        &self,
        cdb: &[u8],
        data: Option<&mut [u8]>,
        timeout: Duration,
    ) -> Result<SgResult, ScsiError> {
        match data {
            Some(buf) => self.transfer(cdb, Transfer::In(buf), timeout),
            None => self.transfer(cdb, Transfer::None, timeout),
        }
    }

    /// Run one command that sends `data` to the device (PERSISTENT
    /// RESERVE OUT).
    pub fn execute_out(
        &self,
        cdb: &[u8],
        data: &[u8],
        timeout: Duration,
    ) -> Result<SgResult, ScsiError> {
        self.transfer(cdb, Transfer::Out(data), timeout)
    }

    fn transfer(
        &self,
        cdb: &[u8],
        data: Transfer<'_>,
        timeout: Duration,
    ) -> Result<SgResult, ScsiError> {
        let mut sense = [0u8; SENSE_LEN];
        let (dir, ptr, len) = match data {
            Transfer::In(buf) => (
                SG_DXFER_FROM_DEV,
                buf.as_mut_ptr().cast::<libc::c_void>(),
                buf.len(),
            ),
            // The kernel only reads a data-out buffer.
            Transfer::Out(buf) => (
                SG_DXFER_TO_DEV,
                buf.as_ptr().cast_mut().cast::<libc::c_void>(),
                buf.len(),
            ),
            Transfer::None => (SG_DXFER_NONE, std::ptr::null_mut(), 0),
        };
        let mut hdr = SgIoHdr {
            interface_id: b'S' as libc::c_int,
            dxfer_direction: dir,
            cmd_len: cdb.len().min(255) as u8,
            mx_sb_len: SENSE_LEN as u8,
            iovec_count: 0,
            dxfer_len: len as libc::c_uint,
            dxferp: ptr,
            cmdp: cdb.as_ptr(),
            sbp: sense.as_mut_ptr(),
            timeout: timeout_ms(timeout),
            flags: 0,
            pack_id: 0,
            usr_ptr: std::ptr::null_mut(),
            status: 0,
            masked_status: 0,
            msg_status: 0,
            sb_len_wr: 0,
            host_status: 0,
            driver_status: 0,
            resid: 0,
            duration: 0,
            info: 0,
        };
        // SAFETY: every pointer in hdr points into live buffers (cdb, data,
        // sense) of the lengths given, for the duration of the call.
        unsafe { sg_io_ioctl(self.file.as_raw_fd(), &mut hdr) }
            .map_err(|e| ScsiError::Ioctl(self.name.clone(), e))?;
        let sb_len = (hdr.sb_len_wr as usize).min(SENSE_LEN);
        let sense = sense.get(..sb_len).unwrap_or(&[]).to_vec();
        let outcome = Outcome::classify(hdr.status, hdr.host_status, hdr.driver_status, &sense);
        let resid = usize::try_from(hdr.resid.max(0)).unwrap_or(0);
        Ok(SgResult {
            status: hdr.status,
            masked_status: hdr.masked_status,
            host_status: hdr.host_status,
            driver_status: hdr.driver_status,
            sense,
            transferred: len.saturating_sub(resid),
            duration_ms: hdr.duration,
            outcome,
        })
    }

    /// Run a data-in command and insist on GOOD status; returns the data.
    fn data_in(
        &self,
        what: &str,
        cdb: &[u8],
        alloc: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, ScsiError> {
        let mut buf = vec![0u8; alloc];
        let r = self.execute(cdb, Some(&mut buf), timeout)?;
        if !r.outcome.is_good() {
            return Err(ScsiError::Command {
                dev: self.name.clone(),
                cmd: what.to_string(),
                outcome: r.outcome,
            });
        }
        buf.truncate(r.transferred);
        Ok(buf)
    }

    pub fn test_unit_ready(&self, timeout: Duration) -> Result<SgResult, ScsiError> {
        self.execute(&cdb_test_unit_ready(), None, timeout)
    }

    /// Standard INQUIRY.
    pub fn inquiry(&self, timeout: Duration) -> Result<StdInquiry, ScsiError> {
        let data = self.data_in("INQUIRY", &cdb_inquiry(None, 96), 96, timeout)?;
        parse::parse_std_inquiry(&data)
    }

    /// Standard INQUIRY data as the device sends it (vendor-specific bytes
    /// included), up to `len` bytes.
    pub fn inquiry_raw(&self, len: u16, timeout: Duration) -> Result<Vec<u8>, ScsiError> {
        self.data_in(
            "INQUIRY",
            &cdb_inquiry(None, len),
            usize::from(len),
            timeout,
        )
    }

    /// The raw bytes of a VPD page (header included), re-read with a larger
    /// buffer when the page is longer than the first read.
    pub fn vpd_page(&self, page: u8, timeout: Duration) -> Result<Vec<u8>, ScsiError> {
        let what = format!("INQUIRY VPD 0x{page:02x}");
        let mut alloc: usize = 255;
        loop {
            let data = self.data_in(
                &what,
                &cdb_inquiry(Some(page), alloc as u16),
                alloc,
                timeout,
            )?;
            match parse::vpd_page_len(&data) {
                Some(need) if need > data.len() && need > alloc && alloc < 0xffff => {
                    alloc = need.min(0xffff);
                }
                _ => return Ok(data),
            }
        }
    }

    /// REPORT TARGET PORT GROUPS, retried once with a buffer as large as the
    /// device says its data is.
    pub fn report_target_port_groups(
        &self,
        timeout: Duration,
    ) -> Result<Vec<TpgDescriptor>, ScsiError> {
        const MAX: usize = 1 << 20;
        let mut alloc: usize = 512;
        for _ in 0..3 {
            let data = self.data_in(
                "REPORT TARGET PORT GROUPS",
                &cdb_report_target_port_groups(alloc as u32),
                alloc,
                timeout,
            )?;
            match parse::rtpg_data_len(&data) {
                Some(need) if need > alloc && alloc < MAX => alloc = need.min(MAX),
                _ => return parse::parse_rtpg(&data),
            }
        }
        Err(ScsiError::Parse(format!(
            "{}: REPORT TARGET PORT GROUPS length keeps growing",
            self.name
        )))
    }

    /// READ(10) of `blocks` blocks at `lba` into a fresh buffer.
    pub fn read10(
        &self,
        lba: u32,
        blocks: u16,
        block_size: usize,
        timeout: Duration,
    ) -> Result<SgResult, ScsiError> {
        let mut buf = vec![0u8; block_size * blocks as usize];
        self.execute(&cdb_read10(lba, blocks), Some(&mut buf), timeout)
    }

    /// READ(10) of the device's first `bytes` (at least one block; 512-byte
    /// blocks when the size cannot be read), as multipath-tools' checkers
    /// and prioritizers read 4 KiB.
    pub fn read_head(&self, bytes: usize, timeout: Duration) -> Result<SgResult, ScsiError> {
        let block = self.logical_block_size().unwrap_or(512).max(512);
        let blocks = u16::try_from((bytes / block).max(1)).unwrap_or(u16::MAX);
        self.read10(0, blocks, block, timeout)
    }

    /// Logical block size (BLKSSZGET).
    pub fn logical_block_size(&self) -> Result<usize, ScsiError> {
        block_size(&self.file, &self.name)
    }
}

/// Logical block size of an open block device.
pub fn block_size(file: &File, name: &str) -> Result<usize, ScsiError> {
    let mut bs: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int into bs.
    unsafe { blksszget_ioctl(file.as_raw_fd(), &mut bs) }
        .map_err(|e| ScsiError::Ioctl(name.to_string(), e))?;
    usize::try_from(bs)
        .ok()
        .filter(|b| *b >= 512)
        .ok_or_else(|| ScsiError::Parse(format!("{name}: bad logical block size {bs}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        // The kernel's struct sg_io_hdr is 88 bytes on 64-bit.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<SgIoHdr>(), 88);
    }

    #[test]
    fn devnodes() {
        assert_eq!(devnode("sdc"), "/dev/sdc");
        assert_eq!(devnode("/dev/sdc"), "/dev/sdc");
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout_ms(Duration::from_secs(30)), 30_000);
        assert_eq!(timeout_ms(Duration::ZERO), 1);
    }
}
