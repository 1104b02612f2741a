//! Pure parsers for the SCSI identification data the kernel exposes in
//! sysfs (`device/inquiry`, `device/vpd_pg80`, `device/vpd_pg83`) or that
//! SG_IO returns: standard INQUIRY TPGS bits, the unit serial number and
//! the designators of the Device Identification page.
//!
//! The WWID chosen from page 0x83 follows udev's `ID_SERIAL` as Debian's
//! sg3-utils-udev rules (55-scsi-sg3_id.rules) build it, so a device that
//! udev has not labelled yet gets the same identity it will get later.

use std::fmt;

/// Designator association (byte 1, bits 4-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Association {
    LogicalUnit,
    TargetPort,
    TargetDevice,
    Reserved,
}

/// Designator types this crate cares about by name; others keep their code.
pub const DESIG_VENDOR_SPECIFIC: u8 = 0x0;
pub const DESIG_T10_VENDOR: u8 = 0x1;
pub const DESIG_EUI64: u8 = 0x2;
pub const DESIG_NAA: u8 = 0x3;
pub const DESIG_RELATIVE_PORT: u8 = 0x4;
pub const DESIG_TARGET_PORT_GROUP: u8 = 0x5;
pub const DESIG_SCSI_NAME: u8 = 0x8;

/// Code sets (byte 0, low nibble).
pub const CODE_SET_BINARY: u8 = 1;
pub const CODE_SET_ASCII: u8 = 2;
pub const CODE_SET_UTF8: u8 = 3;

/// One designation descriptor of VPD page 0x83.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Designator {
    /// Protocol identifier (meaningful only with PIV set).
    pub protocol: u8,
    pub code_set: u8,
    pub piv: bool,
    pub association: Association,
    pub designator_type: u8,
    /// Offset of the descriptor in the page, for error messages.
    pub offset: usize,
    pub id: Vec<u8>,
}

/// A parsed page 0x83. `warning` says why parsing stopped early, if it did;
/// the designators read before that point are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pg83 {
    pub designators: Vec<Designator>,
    pub warning: Option<String>,
}

/// Why a VPD page could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpdError(pub String);

impl fmt::Display for VpdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for VpdError {}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Checks the 4-byte VPD header and returns the payload the header claims,
/// cut to what is really there (with a warning when cut).
fn vpd_payload(page: &[u8], code: u8) -> Result<(&[u8], Option<String>), VpdError> {
    if page.len() < 4 {
        return Err(VpdError(format!(
            "VPD page 0x{code:02x}: {} bytes, shorter than its 4-byte header",
            page.len()
        )));
    }
    if page[1] != code {
        return Err(VpdError(format!(
            "VPD page 0x{code:02x}: page code byte is 0x{:02x}",
            page[1]
        )));
    }
    let claimed = usize::from(be16(page, 2).unwrap_or(0));
    let body = &page[4..];
    if claimed > body.len() {
        let warn = format!(
            "VPD page 0x{code:02x}: header claims {claimed} bytes but only {} present (truncated)",
            body.len()
        );
        Ok((body, Some(warn)))
    } else {
        Ok((&body[..claimed], None))
    }
}

/// Parses VPD page 0x83 (Device Identification).
pub fn parse_pg83(page: &[u8]) -> Result<Pg83, VpdError> {
    let (body, mut warning) = vpd_payload(page, 0x83)?;
    let mut designators = Vec::new();
    let mut off = 0usize;
    while off < body.len() {
        let abs = off + 4;
        let mut stop = |why: String| {
            warning = Some(match warning.take() {
                Some(w) => format!("{w}; {why}"),
                None => format!("VPD page 0x83: {why}"),
            });
        };
        let Some(hdr) = body.get(off..off + 4) else {
            stop(format!("designator header at offset {abs} is cut short"));
            break;
        };
        let len = usize::from(hdr[3]);
        let Some(id) = body.get(off + 4..off + 4 + len) else {
            stop(format!(
                "designator at offset {abs} claims {len} bytes, only {} remain",
                body.len() - (off + 4).min(body.len())
            ));
            break;
        };
        let association = match (hdr[1] >> 4) & 0x3 {
            0 => Association::LogicalUnit,
            1 => Association::TargetPort,
            2 => Association::TargetDevice,
            _ => Association::Reserved,
        };
        designators.push(Designator {
            protocol: hdr[0] >> 4,
            code_set: hdr[0] & 0x0f,
            piv: hdr[1] & 0x80 != 0,
            association,
            designator_type: hdr[1] & 0x0f,
            offset: abs,
            id: id.to_vec(),
        });
        off += 4 + len;
    }
    Ok(Pg83 {
        designators,
        warning,
    })
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// sg_inq's whitespace encoding: strip leading blanks and control bytes and
/// trailing blanks/NULs, turn each run of blanks into one `_`, non-printable
/// bytes into `.`; a single NUL is skipped, two in a row end the string.
fn encode_whitespace(raw: &[u8]) -> Vec<u8> {
    let blank = |c: u8| c == b' ' || c == b'\t';
    let mut start = 0;
    while start < raw.len() && blank(raw[start]) {
        start += 1;
    }
    while start < raw.len() && raw[start] < 0x20 {
        start += 1;
    }
    let mut end = raw.len();
    while end > start && (blank(raw[end - 1]) || raw[end - 1] == 0) {
        end -= 1;
    }
    let mut out: Vec<u8> = Vec::with_capacity(end - start);
    let mut zeroes = 0;
    for &c in &raw[start..end] {
        if blank(c) {
            if out.last().is_some_and(|&l| l != b'_') {
                out.push(b'_');
            }
            zeroes = 0;
        } else if c == 0 {
            zeroes += 1;
            if zeroes > 1 {
                break;
            }
        } else if !(0x20..0x7f).contains(&c) {
            out.push(b'.');
            zeroes = 0;
        } else {
            out.push(c);
            zeroes = 0;
        }
    }
    out
}

/// udev's safe-character encoding as sg_inq applies it to T10 ids.
fn udev_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &c in bytes {
        if c.is_ascii_alphanumeric() || b"#+-.:=@_".contains(&c) {
            s.push(char::from(c));
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

/// The logical unit's WWID as udev's `ID_SERIAL` spells it, from page 0x83.
///
/// Order (sg3-utils-udev): NAA IEEE Registered Extended, NAA IEEE
/// Registered, NAA IEEE Extended (all `3` + hex), EUI-64 (`2` + hex), SCSI
/// name string (`8` + name), T10 vendor id (`1` + encoded text), NAA
/// locally assigned (`3` + hex). Only logical-unit designators count; when
/// a kind repeats, the last one wins as it does for udev's IMPORT.
/// Returns the WWID and a short name of the designator it came from.
pub fn wwid_from_pg83(pg: &Pg83) -> Option<(String, &'static str)> {
    let mut best: Option<(u8, String, &'static str)> = None;
    for d in &pg.designators {
        if d.association != Association::LogicalUnit || d.id.is_empty() {
            continue;
        }
        let cand: Option<(u8, String, &'static str)> = match d.designator_type {
            DESIG_NAA if d.code_set == CODE_SET_BINARY => {
                let h = hex(&d.id);
                match d.id[0] >> 4 {
                    6 => Some((1, format!("3{h}"), "NAA IEEE Registered Extended")),
                    5 => Some((2, format!("3{h}"), "NAA IEEE Registered")),
                    2 => Some((3, format!("3{h}"), "NAA IEEE Extended")),
                    _ => Some((7, format!("3{h}"), "NAA locally assigned")),
                }
            }
            DESIG_EUI64 if d.code_set == CODE_SET_BINARY => {
                Some((4, format!("2{}", hex(&d.id)), "EUI-64"))
            }
            DESIG_SCSI_NAME if d.code_set == CODE_SET_UTF8 => {
                let end = d.id.iter().position(|&c| c == 0).unwrap_or(d.id.len());
                let name = String::from_utf8_lossy(&d.id[..end]).into_owned();
                (!name.is_empty()).then(|| (5, format!("8{name}"), "SCSI name string"))
            }
            DESIG_T10_VENDOR => {
                let text = if d.code_set == CODE_SET_ASCII || d.code_set == CODE_SET_UTF8 {
                    udev_encode(&encode_whitespace(&d.id))
                } else {
                    hex(&d.id)
                };
                (!text.is_empty()).then(|| (6, format!("1{text}"), "T10 vendor id"))
            }
            _ => None,
        };
        if let Some(c) = cand {
            if best.as_ref().is_none_or(|b| c.0 <= b.0) {
                best = Some(c);
            }
        }
    }
    best.map(|(_, w, src)| (w, src))
}

/// Target port group id (designator type 5, target port association).
pub fn target_port_group(pg: &Pg83) -> Option<u16> {
    pg.designators
        .iter()
        .filter(|d| {
            d.designator_type == DESIG_TARGET_PORT_GROUP
                && d.association == Association::TargetPort
                && d.id.len() >= 4
        })
        .find_map(|d| be16(&d.id, 2))
}

/// Unit serial number from VPD page 0x80, blanks trimmed.
pub fn parse_pg80(page: &[u8]) -> Result<String, VpdError> {
    let (body, _) = vpd_payload(page, 0x80)?;
    let end = body.iter().position(|&c| c == 0).unwrap_or(body.len());
    let s = String::from_utf8_lossy(&body[..end]).trim().to_string();
    if s.is_empty() {
        return Err(VpdError("VPD page 0x80: empty serial number".into()));
    }
    Ok(s)
}

/// TPGS field of standard INQUIRY data (byte 5, bits 4-5).
pub fn tpgs_from_inquiry(inq: &[u8]) -> Result<u8, VpdError> {
    inq.get(5).map(|b| (b >> 4) & 0x3).ok_or_else(|| {
        VpdError(format!(
            "INQUIRY data: {} bytes, too short for the TPGS byte",
            inq.len()
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Builds a page 0x83 from (code set byte 0, byte 1, id) triples.
    pub(crate) fn page(desigs: &[(u8, u8, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (b0, b1, id) in desigs {
            body.extend_from_slice(&[*b0, *b1, 0, id.len() as u8]);
            body.extend_from_slice(id);
        }
        let mut p = vec![0, 0x83];
        p.extend_from_slice(&(body.len() as u16).to_be_bytes());
        p.extend_from_slice(&body);
        p
    }

    /// What scsi_debug (vpd_use_hostno=0) answers for LUN 0.
    fn scsi_debug_lun0() -> Vec<u8> {
        let t10 = b"Linux   scsi_debug      2000";
        page(&[
            (0x02, 0x01, t10),
            (0x01, 0x03, &0x3333_3330_0000_07d0u64.to_be_bytes()),
            (0x61, 0x94, &[0, 0, 0, 1]),
            (0x61, 0x93, &0x3222_2220_0000_0001u64.to_be_bytes()),
            (0x61, 0x95, &[0, 0, 0, 0]),
            (0x61, 0xa3, &0x3222_2220_0000_0000u64.to_be_bytes()),
            (0x63, 0xa8, b"naa.32222220000000000000"),
        ])
    }

    #[test]
    fn naa_registered_extended_wins() {
        let p = page(&[
            (0x02, 0x01, b"VENDOR  PRODUCT 1234"),
            (
                0x01,
                0x03,
                &[
                    0x60, 0x01, 0x40, 0x5a, 0xbc, 0xde, 0xf0, 0x12, 1, 2, 3, 4, 5, 6, 7, 8,
                ],
            ),
            (0x01, 0x02, &[1, 2, 3, 4, 5, 6, 7, 8]),
        ]);
        let pg = parse_pg83(&p).unwrap();
        assert_eq!(pg.warning, None);
        let (w, src) = wwid_from_pg83(&pg).unwrap();
        assert_eq!(w, "36001405abcdef0120102030405060708");
        assert_eq!(src, "NAA IEEE Registered Extended");
    }

    #[test]
    fn eui64_beats_name_and_t10() {
        let p = page(&[
            (0x02, 0x01, b"ACME    DISK    42"),
            (0x03, 0x08, b"iqn.2003-01.org.example:disk1\0\0\0"),
            (0x01, 0x02, &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1]),
        ]);
        let (w, _) = wwid_from_pg83(&parse_pg83(&p).unwrap()).unwrap();
        assert_eq!(w, "2deadbeef00000001");
    }

    #[test]
    fn scsi_name_string_stops_at_nul() {
        let p = page(&[
            (0x02, 0x01, b"ACME    DISK    42"),
            (0x03, 0x08, b"iqn.2003-01.org.example:disk1\0\0\0"),
        ]);
        let (w, src) = wwid_from_pg83(&parse_pg83(&p).unwrap()).unwrap();
        assert_eq!(w, "8iqn.2003-01.org.example:disk1");
        assert_eq!(src, "SCSI name string");
    }

    #[test]
    fn scsi_debug_t10_beats_locally_assigned_naa() {
        let pg = parse_pg83(&scsi_debug_lun0()).unwrap();
        assert_eq!(pg.warning, None);
        let (w, src) = wwid_from_pg83(&pg).unwrap();
        assert_eq!(w, "1Linux_scsi_debug_2000");
        assert_eq!(src, "T10 vendor id");
        assert_eq!(target_port_group(&pg), Some(0));
    }

    #[test]
    fn locally_assigned_naa_when_alone() {
        let p = page(&[(0x01, 0x03, &0x3333_3330_0000_07d0u64.to_be_bytes())]);
        let (w, _) = wwid_from_pg83(&parse_pg83(&p).unwrap()).unwrap();
        assert_eq!(w, "333333330000007d0");
    }

    #[test]
    fn port_designators_are_not_identities() {
        let p = page(&[
            (0x61, 0x93, &[0x50, 1, 2, 3, 4, 5, 6, 7]),
            (0x61, 0x95, &[0, 0, 0, 7]),
        ]);
        let pg = parse_pg83(&p).unwrap();
        assert_eq!(wwid_from_pg83(&pg), None);
        assert_eq!(target_port_group(&pg), Some(7));
    }

    #[test]
    fn t10_whitespace_and_odd_bytes_are_encoded() {
        let p = page(&[(0x02, 0x01, b"  AB  C/D\x01 E  \0\0")]);
        let (w, _) = wwid_from_pg83(&parse_pg83(&p).unwrap()).unwrap();
        assert_eq!(w, "1AB_C\\x2fD._E");
    }

    #[test]
    fn truncated_designator_keeps_earlier_ones() {
        let mut p = page(&[
            (
                0x01,
                0x03,
                &[0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
            ),
            (0x01, 0x02, &[1, 2, 3, 4, 5, 6, 7, 8]),
        ]);
        p.truncate(p.len() - 3);
        let pg = parse_pg83(&p).unwrap();
        assert_eq!(pg.designators.len(), 1);
        assert!(
            pg.warning.as_deref().unwrap().contains("truncated"),
            "{:?}",
            pg.warning
        );
        assert!(wwid_from_pg83(&pg).unwrap().0.starts_with("360"));
    }

    #[test]
    fn designator_longer_than_page() {
        // Header says 6 bytes; the one designator claims 20.
        let p = vec![0, 0x83, 0, 6, 0x01, 0x03, 0, 20, 0x60, 1];
        let pg = parse_pg83(&p).unwrap();
        assert!(pg.designators.is_empty());
        assert!(pg.warning.unwrap().contains("claims 20 bytes"));
    }

    #[test]
    fn garbage_pages_are_errors_not_panics() {
        assert!(parse_pg83(&[]).is_err());
        assert!(parse_pg83(&[0, 0x80, 0, 0])
            .unwrap_err()
            .0
            .contains("page code"));
        assert!(parse_pg83(b"hello world").is_err());
        let empty = parse_pg83(&[0, 0x83, 0, 0]).unwrap();
        assert_eq!(wwid_from_pg83(&empty), None);
        // Every prefix of a valid page parses or errors, never panics.
        let full = scsi_debug_lun0();
        for n in 0..full.len() {
            if let Ok(pg) = parse_pg83(&full[..n]) {
                let _ = wwid_from_pg83(&pg);
                let _ = target_port_group(&pg);
            }
        }
    }

    #[test]
    fn pg80_and_inquiry() {
        let mut p = vec![0, 0x80, 0, 12];
        p.extend_from_slice(b"  SER12345  ");
        assert_eq!(parse_pg80(&p).unwrap(), "SER12345");
        assert!(parse_pg80(&[0, 0x80, 0, 2, b' ', b' ']).is_err());
        assert!(parse_pg80(&[1]).is_err());
        let mut inq = vec![0u8; 36];
        inq[5] = 0x10;
        assert_eq!(tpgs_from_inquiry(&inq).unwrap(), 1);
        inq[5] = 0x38;
        assert_eq!(tpgs_from_inquiry(&inq).unwrap(), 3);
        assert!(tpgs_from_inquiry(&[0, 0]).is_err());
    }
}
