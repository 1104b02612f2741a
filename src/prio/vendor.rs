//! Array-specific prioritizers with multipath-tools' numbers. Each decodes
//! its SCSI reply in a pure function; [`vendor_prio`] issues the command.
//!
//! - `rdac`: VPD 0xC9: owner +2, preferred path +4, secondary +1.
//! - `emc`: VPD 0xC0: 1 on the LUN's default-owner SP, else 0.
//! - `hp_sw`: TUR: 4 active, 2 standby (NOT READY 04/02), 0 failed.
//! - `hds`: standard INQUIRY: controller and LDEV parity agree: 1, else 0.
//! - `datacore`: standard INQUIRY: the SDS name holds `preferredsds`: 1.
//! - `iet`: the iSCSI portal address is `preferredip`: 20, else 10.
//! - `random`: 1 to 10.
//! - `path_latency`: the mean latency of `io_num` reads on a log scale of
//!   base `base_num` (`prio_args "io_num|base_num"`).
//! - `ontap`: NetApp's GET VOLUME ATTRIBUTES and VPD 0xC1: iSCSI HBA 3,
//!   iSCSI software 2, FCP proxy path 1, other 4.

use std::time::{Duration, Instant};

use thiserror::Error;

use super::{ArgsError, PrioError};
use crate::model::PathInfo;
use crate::scsi::{Outcome, SgDevice};

/// A prioritizer's answer, or why it has none.
pub type Answer<T = i32> = Result<T, PrioError>;

/// A reply a vendor prioritizer cannot read: short, or not laid out as the
/// array lays it out.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplyError {
    #[error("volume access control page (VPD 0xC9) in unknown format")]
    RdacPage,
    #[error("path unit report page (VPD 0xC0) in unknown format")]
    EmcPage,
    /// Standard INQUIRY data of this many bytes.
    #[error("INQUIRY data is {0} bytes, too short for the LDEV and controller fields")]
    HdsInquiryShort(usize),
    /// The controller byte and the LDEV's last digit, as read.
    #[error(
        "controller '{}' / LDEV digit '{}' are not what an HDS array reports",
        char::from(*.ctrl).escape_default(),
        char::from(*.ldev).escape_default()
    )]
    NotHds { ctrl: u8, ldev: u8 },
    /// Standard INQUIRY data of this many bytes.
    #[error("INQUIRY data is {0} bytes, too short for the SDS name")]
    DatacoreInquiryShort(usize),
    #[error("GET VOLUME ATTRIBUTES reply in unknown format")]
    OntapGva,
    #[error("proxy info page (VPD 0xC1) in unknown format")]
    OntapProxyPage,
}

pub fn rdac_prio(page: &[u8]) -> Result<i32, ReplyError> {
    if page.len() < 10 || page[1] != 0xC9 || page[3] != 0x2C || &page[4..7] != b"vac" {
        return Err(ReplyError::RdacPage);
    }
    let mut prio = 0;
    if page[8] & 0x01 != 0 {
        // This controller owns the volume.
        prio |= 0x02;
    }
    match page[9] & 0x0F {
        0x01 => prio |= 0x04,
        0x02 => prio |= 0x01,
        _ => {}
    }
    Ok(prio)
}

pub fn emc_prio(page: &[u8]) -> Result<i32, ReplyError> {
    if page.len() < 10 || page[1] != 0xC0 || page[9] != 0x00 {
        return Err(ReplyError::EmcPage);
    }
    // The SP this path leads to is the LUN's default owner.
    Ok(i32::from(page[5] == page[8]))
}

pub const HP_SW_ACTIVE: i32 = 4;
pub const HP_SW_STANDBY: i32 = 2;
pub const HP_SW_FAILED: i32 = 0;

pub fn hp_sw_prio(outcome: &Outcome) -> i32 {
    match outcome {
        Outcome::Good => HP_SW_ACTIVE,
        Outcome::CheckCondition(Some(s)) if s.key == 0x01 => HP_SW_ACTIVE,
        Outcome::CheckCondition(Some(s)) if s.key == 0x02 && s.asc == 0x04 && s.ascq == 0x02 => {
            HP_SW_STANDBY
        }
        _ => HP_SW_FAILED,
    }
}

/// Whether a TUR should be sent again (UNIT ATTENTION after a reset).
pub fn hp_sw_retry(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::CheckCondition(Some(s)) if s.key == 0x06 && s.asc == 0x29)
}

fn parity(c: u8) -> Option<bool> {
    // Even: true.
    match c {
        b'0' | b'2' | b'4' | b'6' | b'8' | b'A' | b'C' | b'E' => Some(true),
        b'1' | b'3' | b'5' | b'7' | b'9' | b'B' | b'D' | b'F' => Some(false),
        _ => None,
    }
}

/// From standard INQUIRY data: the LDEV number is at bytes 44..48 (hex
/// text), the controller at byte 49.
pub fn hds_prio(inquiry: &[u8]) -> Result<i32, ReplyError> {
    let (Some(&ldev), Some(&ctrl)) = (inquiry.get(47), inquiry.get(49)) else {
        return Err(ReplyError::HdsInquiryShort(inquiry.len()));
    };
    match (parity(ctrl), parity(ldev)) {
        (Some(c), Some(l)) if ctrl.is_ascii_digit() => Ok(i32::from(c == l)),
        _ => Err(ReplyError::NotHds { ctrl, ldev }),
    }
}

/// `prio_args` of datacore: `preferredsds=NAME` and an optional
/// `timeout=MS` (500 to 20000), in either order.
pub fn datacore_args(args: &str) -> Result<(String, Duration), ArgsError> {
    let mut sds = None;
    let mut timeout = 2000u64;
    for w in args.split_whitespace() {
        if let Some(v) = w.strip_prefix("preferredsds=") {
            sds = Some(v.to_string());
        } else if let Some(v) = w.strip_prefix("timeout=") {
            timeout = v.parse().map_err(|_| ArgsError::NotANumber {
                name: "prio_args timeout",
                value: v.to_string(),
            })?;
        } else {
            return Err(ArgsError::UnexpectedWord(w.to_string()));
        }
    }
    let sds = sds.ok_or(ArgsError::Missing("preferredsds=NAME"))?;
    if sds.len() <= 1 {
        return Err(ArgsError::SdsTooShort(sds));
    }
    if !(500..=20000).contains(&timeout) {
        return Err(ArgsError::TimeoutOutOfBounds(timeout));
    }
    Ok((sds, Duration::from_millis(timeout)))
}

/// From standard INQUIRY data: the SDS name is at bytes 112..128.
pub fn datacore_prio(inquiry: &[u8], preferred_sds: &str) -> Result<i32, ReplyError> {
    let name = inquiry
        .get(112..128)
        .ok_or(ReplyError::DatacoreInquiryShort(inquiry.len()))?;
    let name = String::from_utf8_lossy(name);
    Ok(i32::from(name.contains(preferred_sds)))
}

/// iet: `prio_args "preferredip=A.B.C.D"`; `portal` is the path's iSCSI
/// portal address, if it has one.
pub fn iet_prio(args: &str, portal: Option<&str>) -> Result<i32, ArgsError> {
    let ip = args
        .trim()
        .strip_prefix("preferredip=")
        .filter(|ip| !ip.contains(char::is_whitespace))
        .ok_or(ArgsError::Missing("preferredip=ADDRESS"))?;
    if ip.len() <= 7 {
        return Err(ArgsError::IpTooShort(ip.to_string()));
    }
    Ok(if portal == Some(ip) { 20 } else { 10 })
}

/// What NetApp's vendor GET VOLUME ATTRIBUTES (page 0x41) says of the
/// initiator side of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OntapGva {
    IscsiSoftware,
    IscsiHardware,
    /// FCP (or not said): the proxy page decides.
    Other,
}

/// Decodes the GVA reply; Err when it is not a GVA reply at all.
pub fn ontap_gva(results: &[u8]) -> Result<OntapGva, ReplyError> {
    if results.get(4..8) != Some(&[0x0a, 0x98, 0x0a, 0x01][..]) {
        return Err(ReplyError::OntapGva);
    }
    let total = u32::from_be_bytes([results[0], results[1], results[2], results[3]]);
    if total <= 8 || results.get(8) != Some(&0x41) {
        return Ok(OntapGva::Other);
    }
    let tag = results.get(12..).unwrap_or_default();
    Ok(if tag.starts_with(b"ism_sw") || tag.starts_with(b"iswt") {
        OntapGva::IscsiSoftware
    } else if tag.starts_with(b"ism_sn") {
        OntapGva::IscsiHardware
    } else {
        OntapGva::Other
    })
}

/// From VPD page 0xC1: whether the path goes through the partner
/// controller (an FCP proxy path).
pub fn ontap_proxy(page: &[u8]) -> Result<bool, ReplyError> {
    if page.len() < 20 || page[1] != 0xC1 || page[8..14] != [0x0a, 0x98, 0x0a, 0x00, 0xc1, 0x00] {
        return Err(ReplyError::OntapProxyPage);
    }
    Ok(page[19] & 0x02 != 0)
}

/// ontap's numbers: iSCSI HBA 3, iSCSI software 2, FCP proxy path 1,
/// anything else 4; no GVA answer: 0. Why an answer is missing does not
/// change the number.
pub fn ontap_prio<G, P>(gva: Result<OntapGva, G>, proxy: impl FnOnce() -> Result<bool, P>) -> i32 {
    match gva {
        Err(_) => 0,
        Ok(OntapGva::IscsiHardware) => 3,
        Ok(OntapGva::IscsiSoftware) => 2,
        Ok(OntapGva::Other) => match proxy() {
            Ok(true) => 1,
            _ => 4,
        },
    }
}

/// 1 to 10, as multipath-tools' random prioritizer.
pub fn random_prio() -> i32 {
    use std::hash::BuildHasher;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let r = std::collections::hash_map::RandomState::new().hash_one(seed);
    i32::try_from(r % 10).unwrap_or(0) + 1
}

/// `prio_args "io_num|base_num"`: 2 to 200 reads, base 2 to 10.
pub fn path_latency_args(args: &str) -> Result<(u32, u32), ArgsError> {
    let (io, base) = args
        .trim()
        .split_once('|')
        .ok_or_else(|| ArgsError::NotIoNumBaseNum(args.to_string()))?;
    let number = |name: &'static str, v: &str, min: u32, max: u32| {
        let value: u32 = v.parse().map_err(|_| ArgsError::NotANumber {
            name,
            value: v.to_string(),
        })?;
        if !(min..=max).contains(&value) {
            return Err(ArgsError::OutOfRange {
                name,
                value,
                min,
                max,
            });
        }
        Ok(value)
    };
    let io = number("io_num", io, 2, 200)?;
    let base = number("base_num", base, 2, 10)?;
    Ok((io, base))
}

/// Mean latencies from 1 us to 100 s map onto log_base steps: the faster
/// the path, the higher its priority; slower than 100 s: 0.
pub fn path_latency_prio(mean_us: f64, base: u32) -> i32 {
    const MAX_US: f64 = 100_000_000.0;
    let b = f64::from(base).ln();
    let (l, lmax) = (mean_us.max(f64::MIN_POSITIVE).ln() / b, MAX_US.ln() / b);
    let prio = if l <= 0.0 {
        lmax + 1.0
    } else if l > lmax {
        0.0
    } else {
        lmax - l + 1.0
    };
    // Truncated as multipath-tools does.
    prio as i32
}

/// The portal address of an iSCSI path (discovery records `ADDR:PORT`, or
/// `[ADDR]:PORT` for IPv6).
fn iscsi_portal(path: &PathInfo) -> Option<String> {
    let portal = path
        .properties
        .get(crate::discovery::sysfs::PROP_ISCSI_PORTAL)?;
    let addr = match portal.rsplit_once(':') {
        Some((a, port)) if port.bytes().all(|b| b.is_ascii_digit()) => a,
        _ => portal.as_str(),
    };
    Some(
        addr.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
}

/// Runs the prioritizer `name` (one of this module's) for `path`.
pub fn vendor_prio(
    name: &str,
    path: &PathInfo,
    args: &str,
    sg: &SgDevice,
    timeout: Duration,
) -> Answer {
    match name {
        "rdac" => Ok(rdac_prio(&sg.vpd_page(0xC9, timeout)?)?),
        "emc" => Ok(emc_prio(&sg.vpd_page(0xC0, timeout)?)?),
        "hp_sw" => {
            let mut r = sg.test_unit_ready(timeout)?;
            if hp_sw_retry(&r.outcome) {
                r = sg.test_unit_ready(timeout)?;
            }
            Ok(hp_sw_prio(&r.outcome))
        }
        "hds" => Ok(hds_prio(&sg.inquiry_raw(255, timeout)?)?),
        "datacore" => {
            let (sds, t) = datacore_args(args)?;
            Ok(datacore_prio(&sg.inquiry_raw(255, t)?, &sds)?)
        }
        "iet" => Ok(iet_prio(args, iscsi_portal(path).as_deref())?),
        "random" => Ok(random_prio()),
        "ontap" => {
            // NetApp's GET VOLUME ATTRIBUTES, page 0x41.
            let cdb = [0xc0, 0, 0x1, 0xa, 0x98, 0xa, 0x41, 128, 0, 0];
            let mut buf = vec![0u8; 256];
            let gva = match sg.execute(&cdb, Some(&mut buf), timeout) {
                Ok(r) if r.outcome.is_good() => {
                    ontap_gva(&buf[..r.transferred.min(buf.len())]).map_err(PrioError::from)
                }
                Ok(r) => Err(PrioError::Status(r.outcome)),
                Err(e) => Err(e.into()),
            };
            Ok(ontap_prio(gva, || -> Answer<bool> {
                Ok(ontap_proxy(&sg.vpd_page(0xC1, timeout)?)?)
            }))
        }
        "path_latency" => {
            let (io_num, base) = path_latency_args(args)?;
            let start = Instant::now();
            for _ in 0..io_num {
                let r = sg.read_head(4096, timeout)?;
                if !r.outcome.is_good() {
                    return Err(PrioError::ReadFailed(r.outcome));
                }
            }
            let mean_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(io_num);
            Ok(path_latency_prio(mean_us, base))
        }
        other => Err(PrioError::NotVendor(other.to_string())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::scsi::Sense;

    fn c9(owner: bool, ppp: u8) -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[1] = 0xC9;
        p[3] = 0x2C;
        p[4..8].copy_from_slice(b"vac1");
        p[8] = u8::from(owner);
        p[9] = ppp;
        p
    }

    #[test]
    fn rdac_numbers() {
        assert_eq!(rdac_prio(&c9(true, 0x01)), Ok(6));
        assert_eq!(rdac_prio(&c9(false, 0x01)), Ok(4));
        assert_eq!(rdac_prio(&c9(true, 0x02)), Ok(3));
        assert_eq!(rdac_prio(&c9(false, 0x02)), Ok(1));
        assert_eq!(rdac_prio(&c9(false, 0x0F)), Ok(0));
        let mut bad = c9(true, 1);
        bad[4] = b'x';
        assert_eq!(rdac_prio(&bad), Err(ReplyError::RdacPage));
        assert_eq!(
            ReplyError::RdacPage.to_string(),
            "volume access control page (VPD 0xC9) in unknown format"
        );
        assert!(rdac_prio(&[0, 0xC9]).is_err());
        assert!(rdac_prio(&[]).is_err());
    }

    #[test]
    fn emc_numbers() {
        let mut p = vec![0u8; 128];
        p[1] = 0xC0;
        p[5] = 1;
        p[8] = 1;
        assert_eq!(emc_prio(&p), Ok(1));
        p[8] = 0;
        assert_eq!(emc_prio(&p), Ok(0));
        p[9] = 3;
        assert!(emc_prio(&p).is_err());
        assert!(emc_prio(&[0, 0xC0]).is_err());
        assert!(emc_prio(&[]).is_err());
    }

    #[test]
    fn hp_sw_numbers() {
        assert_eq!(hp_sw_prio(&Outcome::Good), 4);
        let standby = Outcome::CheckCondition(Some(Sense::new(0x02, 0x04, 0x02)));
        assert_eq!(hp_sw_prio(&standby), 2);
        let other = Outcome::CheckCondition(Some(Sense::new(0x02, 0x04, 0x03)));
        assert_eq!(hp_sw_prio(&other), 0);
        assert_eq!(hp_sw_prio(&Outcome::HostError(1)), 0);
        assert!(hp_sw_retry(&Outcome::CheckCondition(Some(Sense::new(
            0x06, 0x29, 0
        )))));
    }

    fn inquiry_with(at: usize, bytes: &[u8]) -> Vec<u8> {
        let mut d = vec![b' '; 255];
        d[at..at + bytes.len()].copy_from_slice(bytes);
        d
    }

    #[test]
    fn hds_numbers() {
        // LDEV 00C6 (even), controller 1 (odd): 0.
        let mut d = inquiry_with(44, b"00C6");
        d[49] = b'1';
        assert_eq!(hds_prio(&d), Ok(0));
        d[49] = b'0';
        assert_eq!(hds_prio(&d), Ok(1));
        let mut d = inquiry_with(44, b"00C7");
        d[49] = b'3';
        assert_eq!(hds_prio(&d), Ok(1));
        d[49] = b'X';
        assert_eq!(
            hds_prio(&d),
            Err(ReplyError::NotHds {
                ctrl: b'X',
                ldev: b'7'
            })
        );
        d[47] = 0;
        assert_eq!(
            hds_prio(&d).unwrap_err().to_string(),
            "controller 'X' / LDEV digit '\\u{0}' are not what an HDS array reports"
        );
        assert_eq!(hds_prio(&[0; 40]), Err(ReplyError::HdsInquiryShort(40)));
        assert_eq!(
            ReplyError::HdsInquiryShort(40).to_string(),
            "INQUIRY data is 40 bytes, too short for the LDEV and controller fields"
        );
    }

    #[test]
    fn datacore_numbers() {
        let d = inquiry_with(112, b"SDS-NORTH-01");
        assert_eq!(datacore_prio(&d, "NORTH"), Ok(1));
        assert_eq!(datacore_prio(&d, "SOUTH"), Ok(0));
        assert_eq!(
            datacore_prio(&[0; 100], "NORTH"),
            Err(ReplyError::DatacoreInquiryShort(100))
        );
        assert_eq!(
            datacore_args("timeout=1000 preferredsds=NORTH").unwrap(),
            ("NORTH".to_string(), Duration::from_millis(1000))
        );
        assert_eq!(
            datacore_args("preferredsds=NORTH").unwrap().1,
            Duration::from_millis(2000)
        );
        let e = |a: &str| datacore_args(a).unwrap_err();
        assert_eq!(e(""), ArgsError::Missing("preferredsds=NAME"));
        assert_eq!(e("").to_string(), "prio_args needs preferredsds=NAME");
        assert_eq!(e("preferredsds=N"), ArgsError::SdsTooShort("N".into()));
        assert_eq!(
            e("preferredsds=NORTH timeout=10"),
            ArgsError::TimeoutOutOfBounds(10)
        );
        assert_eq!(
            e("preferredsds=NORTH timeout=10").to_string(),
            "prio_args timeout is out of bounds [500:20000]"
        );
        assert_eq!(
            e("timeout=1s").to_string(),
            "prio_args timeout '1s' is not a number"
        );
        assert_eq!(
            e("preferredsds=NORTH bogus"),
            ArgsError::UnexpectedWord("bogus".into())
        );
    }

    #[test]
    fn iet_numbers() {
        let args = "preferredip=192.168.201.2";
        assert_eq!(iet_prio(args, Some("192.168.201.2")), Ok(20));
        assert_eq!(iet_prio(args, Some("192.168.202.2")), Ok(10));
        assert_eq!(iet_prio(args, None), Ok(10));
        assert_eq!(
            iet_prio("", None),
            Err(ArgsError::Missing("preferredip=ADDRESS"))
        );
        assert_eq!(
            iet_prio("preferredip=1.2.3", None).unwrap_err().to_string(),
            "prio_args preferredip '1.2.3' is too short"
        );
    }

    #[test]
    fn portal_address_from_discovery() {
        let with = |portal: &str| PathInfo {
            properties: [(
                crate::discovery::sysfs::PROP_ISCSI_PORTAL.to_string(),
                portal.to_string(),
            )]
            .into(),
            ..PathInfo::default()
        };
        assert_eq!(
            iscsi_portal(&with("192.168.201.2:3260")).as_deref(),
            Some("192.168.201.2")
        );
        assert_eq!(
            iscsi_portal(&with("[fd00::2]:3260")).as_deref(),
            Some("fd00::2")
        );
        assert_eq!(iscsi_portal(&PathInfo::default()), None);
    }

    #[test]
    fn ontap_numbers() {
        let gva = |tag: &[u8]| {
            let mut r = vec![0u8; 64];
            r[3] = 40;
            r[4..8].copy_from_slice(&[0x0a, 0x98, 0x0a, 0x01]);
            r[8] = 0x41;
            r[12..12 + tag.len()].copy_from_slice(tag);
            r
        };
        let no_proxy = || Ok::<_, ReplyError>(false);
        assert_eq!(ontap_prio(ontap_gva(&gva(b"ism_sn")), no_proxy), 3);
        assert_eq!(ontap_prio(ontap_gva(&gva(b"iswt")), no_proxy), 2);
        assert_eq!(ontap_prio(ontap_gva(&gva(b"ism_sw")), no_proxy), 2);
        assert_eq!(ontap_prio(ontap_gva(&gva(b"fcp")), no_proxy), 4);
        assert_eq!(
            ontap_prio(ontap_gva(&gva(b"fcp")), || Ok::<_, ReplyError>(true)),
            1
        );
        assert_eq!(
            ontap_prio(ontap_gva(&gva(b"fcp")), || Err(ReplyError::OntapProxyPage)),
            4
        );
        assert_eq!(ontap_gva(&[0; 8]), Err(ReplyError::OntapGva));
        assert!(ontap_gva(&[]).is_err());
        assert_eq!(ontap_prio(ontap_gva(&[1, 2, 3]), no_proxy), 0);
        let mut c1 = vec![0u8; 32];
        c1[1] = 0xC1;
        c1[8..14].copy_from_slice(&[0x0a, 0x98, 0x0a, 0x00, 0xc1, 0x00]);
        assert_eq!(ontap_proxy(&c1), Ok(false));
        c1[19] = 0x02;
        assert_eq!(ontap_proxy(&c1), Ok(true));
        c1[12] = 0;
        assert_eq!(ontap_proxy(&c1), Err(ReplyError::OntapProxyPage));
        assert!(ontap_proxy(&c1[..10]).is_err());
    }

    #[test]
    fn random_is_one_to_ten() {
        for _ in 0..100 {
            assert!((1..=10).contains(&random_prio()));
        }
    }

    #[test]
    fn path_latency_numbers() {
        assert_eq!(path_latency_args("20|10"), Ok((20, 10)));
        let e = |a: &str| path_latency_args(a).unwrap_err().to_string();
        assert_eq!(e("20"), "prio_args '20' is not io_num|base_num");
        assert_eq!(e("1|10"), "io_num 1 is outside 2..200");
        assert_eq!(e("20|11"), "base_num 11 is outside 2..10");
        assert_eq!(e("x|2"), "io_num 'x' is not a number");
        assert_eq!(e("2|y"), "base_num 'y' is not a number");
        assert_eq!(
            path_latency_args("20|11"),
            Err(ArgsError::OutOfRange {
                name: "base_num",
                value: 11,
                min: 2,
                max: 10
            })
        );
        // Base 10 over 1 us .. 100 s: 9 steps.
        assert_eq!(path_latency_prio(1.0, 10), 9);
        assert_eq!(path_latency_prio(100.0, 10), 7);
        assert_eq!(path_latency_prio(150.0, 10), 6);
        assert_eq!(path_latency_prio(1e9, 10), 0);
        assert!(path_latency_prio(100.0, 2) > path_latency_prio(10_000.0, 2));
    }
}
