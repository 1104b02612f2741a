//! Pure SCSI encoding and decoding: command blocks, INQUIRY / VPD /
//! REPORT TARGET PORT GROUPS data, and the classification of a completed
//! command. No I/O here, so every function is tested with byte fixtures.

use std::fmt;

use super::sense::{parse_sense, Sense};
use super::ScsiError;

pub const TEST_UNIT_READY: u8 = 0x00;
pub const INQUIRY: u8 = 0x12;
pub const READ_10: u8 = 0x28;
pub const MAINTENANCE_IN: u8 = 0xa3;
/// MAINTENANCE IN service action REPORT TARGET PORT GROUPS.
pub const SA_REPORT_TARGET_PORT_GROUPS: u8 = 0x0a;

/// SCSI status byte values (SAM-5).
pub mod status {
    pub const GOOD: u8 = 0x00;
    pub const CHECK_CONDITION: u8 = 0x02;
    pub const CONDITION_MET: u8 = 0x04;
    pub const BUSY: u8 = 0x08;
    pub const RESERVATION_CONFLICT: u8 = 0x18;
    pub const TASK_SET_FULL: u8 = 0x28;
    pub const ACA_ACTIVE: u8 = 0x30;
    pub const TASK_ABORTED: u8 = 0x40;
}

/// Host byte values the Linux SCSI midlayer reports (`host_status`).
pub mod host {
    pub const DID_OK: u16 = 0x00;
    pub const DID_NO_CONNECT: u16 = 0x01;
    pub const DID_BUS_BUSY: u16 = 0x02;
    pub const DID_TIME_OUT: u16 = 0x03;
    pub const DID_BAD_TARGET: u16 = 0x04;
    pub const DID_ABORT: u16 = 0x05;
    pub const DID_ERROR: u16 = 0x07;
    pub const DID_RESET: u16 = 0x08;
    pub const DID_SOFT_ERROR: u16 = 0x0b;
    pub const DID_IMM_RETRY: u16 = 0x0c;
    pub const DID_REQUEUE: u16 = 0x0d;
    pub const DID_TRANSPORT_DISRUPTED: u16 = 0x0e;
    pub const DID_TRANSPORT_FAILFAST: u16 = 0x0f;

    pub fn name(h: u16) -> &'static str {
        match h {
            DID_OK => "DID_OK",
            DID_NO_CONNECT => "DID_NO_CONNECT",
            DID_BUS_BUSY => "DID_BUS_BUSY",
            DID_TIME_OUT => "DID_TIME_OUT",
            DID_BAD_TARGET => "DID_BAD_TARGET",
            DID_ABORT => "DID_ABORT",
            DID_ERROR => "DID_ERROR",
            DID_RESET => "DID_RESET",
            DID_SOFT_ERROR => "DID_SOFT_ERROR",
            DID_IMM_RETRY => "DID_IMM_RETRY",
            DID_REQUEUE => "DID_REQUEUE",
            DID_TRANSPORT_DISRUPTED => "DID_TRANSPORT_DISRUPTED",
            DID_TRANSPORT_FAILFAST => "DID_TRANSPORT_FAILFAST",
            _ => "host error",
        }
    }

    /// Host errors worth an immediate retry (transient by definition).
    pub fn is_transient(h: u16) -> bool {
        matches!(
            h,
            DID_BUS_BUSY
                | DID_RESET
                | DID_SOFT_ERROR
                | DID_IMM_RETRY
                | DID_REQUEUE
                | DID_TRANSPORT_DISRUPTED
        )
    }
}

/// Driver byte values (`driver_status & 0x0f`).
pub mod driver {
    pub const DRIVER_OK: u16 = 0x00;
    pub const DRIVER_TIMEOUT: u16 = 0x06;
    /// Only says that sense data is present; not an error by itself.
    pub const DRIVER_SENSE: u16 = 0x08;
}

// ----------------------------------------------------------------------
// Command descriptor blocks
// ----------------------------------------------------------------------

pub fn cdb_test_unit_ready() -> [u8; 6] {
    [TEST_UNIT_READY, 0, 0, 0, 0, 0]
}

/// Standard INQUIRY (`page` None) or a VPD page (EVPD=1).
pub fn cdb_inquiry(page: Option<u8>, alloc_len: u16) -> [u8; 6] {
    let [hi, lo] = alloc_len.to_be_bytes();
    match page {
        None => [INQUIRY, 0, 0, hi, lo, 0],
        Some(p) => [INQUIRY, 0x01, p, hi, lo, 0],
    }
}

/// REPORT TARGET PORT GROUPS, length-only header format.
pub fn cdb_report_target_port_groups(alloc_len: u32) -> [u8; 12] {
    let l = alloc_len.to_be_bytes();
    [
        MAINTENANCE_IN,
        SA_REPORT_TARGET_PORT_GROUPS,
        0,
        0,
        0,
        0,
        l[0],
        l[1],
        l[2],
        l[3],
        0,
        0,
    ]
}

pub fn cdb_read10(lba: u32, blocks: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let [bh, bl] = blocks.to_be_bytes();
    [READ_10, 0, l[0], l[1], l[2], l[3], 0, bh, bl, 0]
}

// ----------------------------------------------------------------------
// Outcome of a completed command
// ----------------------------------------------------------------------

/// What the status bytes of one SG_IO call amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Good,
    /// CHECK CONDITION; the sense data if it could be parsed.
    CheckCondition(Option<Sense>),
    ReservationConflict,
    /// Any other SCSI status byte (BUSY, TASK SET FULL, ...).
    OtherStatus(u8),
    /// The host adapter / transport failed the command (`DID_*`).
    HostError(u16),
    /// The driver failed the command (driver byte other than SENSE).
    DriverError(u16),
}

impl Outcome {
    /// Classify the status fields of a completed SG_IO call. `sense` is the
    /// part of the sense buffer the kernel wrote (`sb_len_wr` bytes).
    pub fn classify(scsi_status: u8, host_status: u16, driver_status: u16, sense: &[u8]) -> Self {
        // Reservation conflict first: the path works, another initiator
        // owns the LU (multipathd counts it as up).
        if scsi_status & 0x7e == status::RESERVATION_CONFLICT {
            return Outcome::ReservationConflict;
        }
        if host_status != host::DID_OK {
            return Outcome::HostError(host_status);
        }
        let drv = driver_status & 0x0f;
        if drv != driver::DRIVER_OK && drv != driver::DRIVER_SENSE {
            return Outcome::DriverError(drv);
        }
        match scsi_status & 0x7e {
            status::GOOD | status::CONDITION_MET => {
                // Some drivers report sense with a good status byte.
                if drv == driver::DRIVER_SENSE && !sense.is_empty() {
                    Outcome::CheckCondition(parse_sense(sense))
                } else {
                    Outcome::Good
                }
            }
            status::CHECK_CONDITION => Outcome::CheckCondition(parse_sense(sense)),
            other => Outcome::OtherStatus(other),
        }
    }

    pub fn is_good(&self) -> bool {
        matches!(self, Outcome::Good)
    }

    /// The command timed out in the kernel (midlayer or driver).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Outcome::HostError(host::DID_TIME_OUT) | Outcome::DriverError(driver::DRIVER_TIMEOUT)
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Good => f.write_str("good"),
            Outcome::CheckCondition(Some(s)) => write!(f, "check condition: {s}"),
            Outcome::CheckCondition(None) => f.write_str("check condition without usable sense"),
            Outcome::ReservationConflict => f.write_str("reservation conflict"),
            Outcome::OtherStatus(s) => write!(f, "SCSI status 0x{s:02x}"),
            Outcome::HostError(h) => write!(f, "{} (0x{h:02x})", host::name(*h)),
            Outcome::DriverError(d) => write!(f, "driver status 0x{d:02x}"),
        }
    }
}

// ----------------------------------------------------------------------
// Standard INQUIRY
// ----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StdInquiry {
    pub peripheral_qualifier: u8,
    pub device_type: u8,
    /// SPC version byte.
    pub version: u8,
    /// TPGS field (byte 5 bits 5:4): 0 none, 1 implicit, 2 explicit, 3 both.
    pub tpgs: u8,
    pub vendor: String,
    pub product: String,
    pub rev: String,
}

/// ASCII field with trailing blanks (and NULs) removed.
fn ascii_field(buf: &[u8], from: usize, to: usize) -> String {
    let end = to.min(buf.len());
    let bytes = buf.get(from..end).unwrap_or(&[]);
    String::from_utf8_lossy(bytes)
        .trim_end_matches([' ', '\0'])
        .trim_start()
        .to_string()
}

/// Decode standard INQUIRY data. Devices may return fewer than 36 bytes;
/// the fields present are decoded.
pub fn parse_std_inquiry(buf: &[u8]) -> Result<StdInquiry, ScsiError> {
    let (b0, b5) = match (buf.first(), buf.get(5)) {
        (Some(a), Some(b)) => (*a, *b),
        _ => {
            return Err(ScsiError::Parse(format!(
                "standard INQUIRY data too short ({} bytes)",
                buf.len()
            )))
        }
    };
    Ok(StdInquiry {
        peripheral_qualifier: b0 >> 5,
        device_type: b0 & 0x1f,
        version: buf.get(2).copied().unwrap_or(0),
        tpgs: (b5 >> 4) & 0x03,
        vendor: ascii_field(buf, 8, 16),
        product: ascii_field(buf, 16, 32),
        rev: ascii_field(buf, 32, 36),
    })
}

// ----------------------------------------------------------------------
// VPD pages
// ----------------------------------------------------------------------

/// Total length of a VPD page (header included) as the header announces it.
pub fn vpd_page_len(buf: &[u8]) -> Option<usize> {
    let hi = *buf.get(2)?;
    let lo = *buf.get(3)?;
    Some(u16::from_be_bytes([hi, lo]) as usize + 4)
}

/// Check a VPD page's header and return its payload (after the 4-byte header),
/// clipped to what was actually transferred.
pub fn vpd_payload(buf: &[u8], page: u8) -> Result<&[u8], ScsiError> {
    let len = vpd_page_len(buf)
        .ok_or_else(|| ScsiError::Parse(format!("VPD page 0x{page:02x}: header too short")))?;
    let got = buf.get(1).copied().unwrap_or(0);
    if got != page {
        return Err(ScsiError::Parse(format!(
            "VPD page 0x{page:02x} requested, page 0x{got:02x} returned"
        )));
    }
    Ok(buf.get(4..len.min(buf.len())).unwrap_or(&[]))
}

/// Unit serial number from VPD page 0x80.
pub fn parse_vpd80_serial(buf: &[u8]) -> Result<String, ScsiError> {
    let p = vpd_payload(buf, 0x80)?;
    Ok(String::from_utf8_lossy(p)
        .trim_matches([' ', '\0'])
        .to_string())
}

/// One designation descriptor of VPD page 0x83.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Designator {
    pub protocol_id: u8,
    /// 1 binary, 2 ASCII, 3 UTF-8.
    pub code_set: u8,
    pub piv: bool,
    /// 0 logical unit, 1 target port, 2 target device.
    pub association: u8,
    /// 1 T10 vendor, 2 EUI-64, 3 NAA, 4 relative target port, 5 target port
    /// group, 6 logical unit group, 7 MD5, 8 SCSI name string.
    pub designator_type: u8,
    pub data: Vec<u8>,
}

pub const DESIGNATOR_RELATIVE_TARGET_PORT: u8 = 4;
pub const DESIGNATOR_TARGET_PORT_GROUP: u8 = 5;

/// All designation descriptors of VPD page 0x83. A descriptor running past
/// the end of the data is an error (the page was truncated or is garbage).
pub fn parse_vpd83(buf: &[u8]) -> Result<Vec<Designator>, ScsiError> {
    let mut p = vpd_payload(buf, 0x83)?;
    let mut out = Vec::new();
    while !p.is_empty() {
        let (b0, b1, len) = match (p.first(), p.get(1), p.get(3)) {
            (Some(a), Some(b), Some(l)) => (*a, *b, *l as usize),
            _ => {
                return Err(ScsiError::Parse(format!(
                    "VPD page 0x83: {} trailing bytes are not a descriptor",
                    p.len()
                )))
            }
        };
        let data = p.get(4..4 + len).ok_or_else(|| {
            ScsiError::Parse(format!(
                "VPD page 0x83: descriptor of {len} bytes runs past the end"
            ))
        })?;
        out.push(Designator {
            protocol_id: b0 >> 4,
            code_set: b0 & 0x0f,
            piv: b1 & 0x80 != 0,
            association: (b1 >> 4) & 0x03,
            designator_type: b1 & 0x0f,
            data: data.to_vec(),
        });
        p = p.get(4 + len..).unwrap_or(&[]);
    }
    Ok(out)
}

/// Target port group id from VPD page 0x83 (designator type 5), if any.
pub fn vpd83_target_port_group(buf: &[u8]) -> Result<Option<u16>, ScsiError> {
    Ok(parse_vpd83(buf)?
        .iter()
        .find(|d| d.designator_type == DESIGNATOR_TARGET_PORT_GROUP && d.data.len() >= 4)
        .and_then(|d| Some(u16::from_be_bytes([*d.data.get(2)?, *d.data.get(3)?]))))
}

// ----------------------------------------------------------------------
// REPORT TARGET PORT GROUPS
// ----------------------------------------------------------------------

/// Asymmetric access state of a target port group (SPC-4 table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AluaState {
    ActiveOptimized,
    ActiveNonOptimized,
    Standby,
    Unavailable,
    LbaDependent,
    Offline,
    Transitioning,
    Reserved(u8),
}

impl AluaState {
    pub fn from_bits(aas: u8) -> Self {
        match aas & 0x0f {
            0x0 => AluaState::ActiveOptimized,
            0x1 => AluaState::ActiveNonOptimized,
            0x2 => AluaState::Standby,
            0x3 => AluaState::Unavailable,
            0x4 => AluaState::LbaDependent,
            0xe => AluaState::Offline,
            0xf => AluaState::Transitioning,
            r => AluaState::Reserved(r),
        }
    }

    /// The words scsi_dh_alua writes into `device/access_state`.
    pub fn as_str(self) -> &'static str {
        match self {
            AluaState::ActiveOptimized => "active/optimized",
            AluaState::ActiveNonOptimized => "active/non-optimized",
            AluaState::Standby => "standby",
            AluaState::Unavailable => "unavailable",
            AluaState::LbaDependent => "lba-dependent",
            AluaState::Offline => "offline",
            AluaState::Transitioning => "transitioning",
            AluaState::Reserved(_) => "reserved",
        }
    }
}

impl fmt::Display for AluaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One target port group descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpgDescriptor {
    /// PREF bit: this group is a preferred target port group.
    pub pref: bool,
    pub state: AluaState,
    /// Supported-states bits (T_SUP, O_SUP, ... AO_SUP) from byte 1.
    pub supported: u8,
    pub tpg_id: u16,
    pub status_code: u8,
    /// Target port count as the descriptor announces it.
    pub port_count: u8,
    /// Relative target port identifiers listed in the descriptor.
    pub rel_ports: Vec<u16>,
}

/// Total length of RTPG data (header included) that the device has, which
/// may exceed what was transferred: then retry with this allocation length.
pub fn rtpg_data_len(buf: &[u8]) -> Option<usize> {
    let b = buf.get(0..4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize + 4)
}

/// Decode REPORT TARGET PORT GROUPS data (length-only or extended header).
/// Only complete descriptors within the transferred bytes are returned.
pub fn parse_rtpg(buf: &[u8]) -> Result<Vec<TpgDescriptor>, ScsiError> {
    let total = rtpg_data_len(buf)
        .ok_or_else(|| ScsiError::Parse(format!("RTPG data too short ({} bytes)", buf.len())))?;
    let end = total.min(buf.len());
    // We ask for the length-only header, but accept the extended one (8
    // bytes, format type 001b in byte 4 bits 6:4). Those bits are reserved
    // in a descriptor's first byte, so the two cannot be confused.
    let start = match buf.get(4) {
        Some(b) if (b >> 4) & 0x07 == 0x01 && total >= 8 => 8,
        _ => 4,
    };
    let mut off = start;
    let mut out = Vec::new();
    while off + 8 <= end {
        let d = buf.get(off..off + 8).unwrap_or(&[]);
        let (b0, b1, id_hi, id_lo, st, count) = match d {
            [b0, b1, h, l, _, st, _, c] => (*b0, *b1, *h, *l, *st, *c),
            _ => break,
        };
        let ports_end = off + 8 + 4 * count as usize;
        let rel_ports = (0..count as usize)
            .filter_map(|i| {
                let p = off + 8 + 4 * i;
                if p + 4 > end {
                    return None;
                }
                Some(u16::from_be_bytes([*buf.get(p + 2)?, *buf.get(p + 3)?]))
            })
            .collect();
        out.push(TpgDescriptor {
            pref: b0 & 0x80 != 0,
            state: AluaState::from_bits(b0),
            supported: b1,
            tpg_id: u16::from_be_bytes([id_hi, id_lo]),
            status_code: st,
            port_count: count,
            rel_ports,
        });
        off = ports_end;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn inquiry_fixture() -> Vec<u8> {
        let mut b = vec![0u8; 36];
        b[0] = 0x00;
        b[2] = 0x07;
        b[5] = 0x10; // TPGS = 1 (implicit)
        b[8..16].copy_from_slice(b"Linux   ");
        b[16..32].copy_from_slice(b"scsi_debug      ");
        b[32..36].copy_from_slice(b"0191");
        b
    }

    #[test]
    fn std_inquiry() {
        let i = parse_std_inquiry(&inquiry_fixture()).unwrap();
        assert_eq!(i.vendor, "Linux");
        assert_eq!(i.product, "scsi_debug");
        assert_eq!(i.rev, "0191");
        assert_eq!(i.tpgs, 1);
        assert_eq!(i.device_type, 0);
        assert_eq!(i.version, 7);
        let mut b = inquiry_fixture();
        b[5] = 0x30;
        assert_eq!(parse_std_inquiry(&b).unwrap().tpgs, 3);
    }

    #[test]
    fn std_inquiry_short() {
        assert!(parse_std_inquiry(&[0, 0, 5]).is_err());
        let b = inquiry_fixture();
        let i = parse_std_inquiry(&b[..20]).unwrap();
        assert_eq!(i.vendor, "Linux");
        assert_eq!(i.product, "scsi");
        assert_eq!(i.rev, "");
    }

    #[test]
    fn cdbs() {
        assert_eq!(cdb_test_unit_ready(), [0; 6]);
        assert_eq!(cdb_inquiry(None, 96), [0x12, 0, 0, 0, 96, 0]);
        assert_eq!(
            cdb_inquiry(Some(0x83), 0x1234),
            [0x12, 1, 0x83, 0x12, 0x34, 0]
        );
        assert_eq!(
            cdb_report_target_port_groups(0x0001_0203),
            [0xa3, 0x0a, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0]
        );
        assert_eq!(cdb_read10(0, 1), [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn vpd80() {
        let b = [0x00, 0x80, 0x00, 0x06, b' ', b'1', b'2', b'3', b'4', b' '];
        assert_eq!(parse_vpd80_serial(&b).unwrap(), "1234");
        assert!(parse_vpd80_serial(&[0, 0x83, 0, 0]).is_err());
        assert!(parse_vpd80_serial(&[0, 0x80]).is_err());
    }

    /// VPD 0x83 as scsi_debug returns it for a LUN behind host 1: NAA LU
    /// designator, relative target port, target port group, ...
    fn vpd83_fixture() -> Vec<u8> {
        let mut d = Vec::new();
        // NAA 6 (binary, LU association, type 3), 16 bytes
        d.extend_from_slice(&[0x01, 0x03, 0x00, 0x10]);
        d.extend_from_slice(&[
            0x63, 0x33, 0x33, 0x30, 0x00, 0x00, 0x00, 0x00, 0x33, 0x33, 0x30, 0x00, 0x00, 0x00,
            0x00, 0x00,
        ]);
        // relative target port (PIV, target port association, type 4)
        d.extend_from_slice(&[0x61, 0x94, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01]);
        // target port group (PIV, target port association, type 5) id 0x0101
        d.extend_from_slice(&[0x61, 0x95, 0x00, 0x04, 0x00, 0x00, 0x01, 0x01]);
        let mut b = vec![0x00, 0x83];
        b.extend_from_slice(&(d.len() as u16).to_be_bytes());
        b.extend_from_slice(&d);
        b
    }

    #[test]
    fn vpd83_designators() {
        let b = vpd83_fixture();
        let ds = parse_vpd83(&b).unwrap();
        assert_eq!(ds.len(), 3);
        assert_eq!(ds[0].designator_type, 3);
        assert_eq!(ds[0].association, 0);
        assert_eq!(ds[0].data.len(), 16);
        assert_eq!(ds[1].designator_type, 4);
        assert!(ds[1].piv);
        assert_eq!(ds[1].association, 1);
        assert_eq!(ds[1].protocol_id, 6);
        assert_eq!(vpd83_target_port_group(&b).unwrap(), Some(0x0101));
    }

    #[test]
    fn vpd83_without_tpg_and_truncated() {
        let mut b = vpd83_fixture();
        // Drop the TPG descriptor and fix the length.
        b.truncate(b.len() - 8);
        let l = (b.len() - 4) as u16;
        b[2..4].copy_from_slice(&l.to_be_bytes());
        assert_eq!(vpd83_target_port_group(&b).unwrap(), None);
        // Header says more than the descriptor holds: error, no panic.
        let mut b = vpd83_fixture();
        b.truncate(b.len() - 2);
        assert!(parse_vpd83(&b).is_err());
        assert!(parse_vpd83(&[0, 0x80, 0, 0]).is_err());
        assert_eq!(parse_vpd83(&[0, 0x83, 0, 0]).unwrap(), vec![]);
    }

    /// Two groups: 1 active/optimized preferred with ports 1; 2 standby
    /// with ports 2 and 3.
    fn rtpg_fixture() -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&[0x80, 0x8f, 0x00, 0x01, 0x00, 0x02, 0x00, 0x01]);
        d.extend_from_slice(&[0, 0, 0, 1]);
        d.extend_from_slice(&[0x02, 0x8f, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02]);
        d.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 3]);
        let mut b = (d.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(&d);
        b
    }

    #[test]
    fn rtpg() {
        let b = rtpg_fixture();
        assert_eq!(rtpg_data_len(&b), Some(b.len()));
        let ds = parse_rtpg(&b).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[0].tpg_id, 1);
        assert!(ds[0].pref);
        assert_eq!(ds[0].state, AluaState::ActiveOptimized);
        assert_eq!(ds[0].status_code, 2);
        assert_eq!(ds[0].rel_ports, vec![1]);
        assert_eq!(ds[1].tpg_id, 2);
        assert!(!ds[1].pref);
        assert_eq!(ds[1].state, AluaState::Standby);
        assert_eq!(ds[1].port_count, 2);
        assert_eq!(ds[1].rel_ports, vec![2, 3]);
    }

    #[test]
    fn rtpg_truncated_transfer() {
        let b = rtpg_fixture();
        // Only the first descriptor arrived: the length says there's more.
        let part = &b[..16];
        assert_eq!(rtpg_data_len(part), Some(b.len()));
        let ds = parse_rtpg(part).unwrap();
        assert_eq!(ds.len(), 1);
        // A partial descriptor is not returned.
        assert_eq!(parse_rtpg(&b[..20]).unwrap().len(), 1);
        assert!(parse_rtpg(&b[..3]).is_err());
    }

    #[test]
    fn rtpg_extended_header() {
        let b = rtpg_fixture();
        let mut e = ((b.len() - 4 + 4) as u32).to_be_bytes().to_vec();
        e.extend_from_slice(&[0x10, 0x00, 0, 0]);
        e.extend_from_slice(&b[4..]);
        let ds = parse_rtpg(&e).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[1].tpg_id, 2);
    }

    #[test]
    fn alua_states() {
        assert_eq!(AluaState::from_bits(0x80), AluaState::ActiveOptimized);
        assert_eq!(AluaState::from_bits(0x01), AluaState::ActiveNonOptimized);
        assert_eq!(AluaState::from_bits(0x04), AluaState::LbaDependent);
        assert_eq!(AluaState::from_bits(0x0e), AluaState::Offline);
        assert_eq!(AluaState::from_bits(0x0f), AluaState::Transitioning);
        assert_eq!(AluaState::from_bits(0x07), AluaState::Reserved(7));
        assert_eq!(
            AluaState::ActiveNonOptimized.as_str(),
            "active/non-optimized"
        );
    }

    #[test]
    fn classify() {
        use Outcome::*;
        assert_eq!(Outcome::classify(0, 0, 0, &[]), Good);
        assert_eq!(Outcome::classify(0x18, 0, 0, &[]), ReservationConflict);
        assert_eq!(Outcome::classify(0x08, 0, 0, &[]), OtherStatus(0x08));
        assert_eq!(Outcome::classify(0, 0x01, 0, &[]), HostError(1));
        assert!(Outcome::classify(0, 0x03, 0, &[]).is_timeout());
        assert!(Outcome::classify(0, 0, 0x06, &[]).is_timeout());
        let sb = [0x72, 0x02, 0x04, 0x0b, 0, 0, 0, 0];
        assert_eq!(
            Outcome::classify(0x02, 0, 0x08, &sb),
            CheckCondition(Some(Sense::new(2, 4, 0x0b)))
        );
        // Sense reported with a good status byte.
        assert_eq!(
            Outcome::classify(0, 0, 0x08, &sb),
            CheckCondition(Some(Sense::new(2, 4, 0x0b)))
        );
        assert_eq!(Outcome::classify(0x02, 0, 0, &[]), CheckCondition(None));
    }
}
