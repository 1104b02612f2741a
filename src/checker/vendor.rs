//! Array-specific checkers, as multipath-tools defines them:
//!
//! - `rdac` (LSI/Engenio/NetApp E-Series, IBM DS3/4/5K, Dell MD): INQUIRY
//!   VPD page 0xC9 ("volume access"): the owning controller's path is up,
//!   the other one ghost; an unavailable or booting controller is down.
//! - `emc_clariion` (CLARiiON/VNX): INQUIRY VPD page 0xC0 (path unit
//!   report): the LUN must be bound and the initiator set up for failover;
//!   the active path also reads the first 4 KiB.
//! - `hp_sw` (HP active/standby arrays): INQUIRY VPD 0x80 must answer;
//!   a TEST UNIT READY that fails means a standby (ghost) path.
//!
//! The page decoding is pure ([`rdac_state`], [`clariion_state`]); the
//! SCSI commands are thin ([`check`]).

use std::time::Duration;

use super::{CheckResult, CheckerKind};
use crate::model::ChkState;
use crate::scsi::SgDevice;

/// Target port group asymmetric access states the rdac page reports.
const AAS_UNAVAILABLE: u8 = 0x3;
const AAS_TRANSITIONING: u8 = 0xF;

/// Bytes of VPD page 0xC9 the checker reads (multipath-tools asks for 48).
pub const RDAC_PAGE_LEN: usize = 48;

fn rdac(state: ChkState, why: &str) -> CheckResult {
    let base = match state {
        ChkState::Up => "rdac checker reports path is up",
        ChkState::Ghost => "rdac checker reports path is ghost",
        _ => "rdac checker reports path is down",
    };
    if why.is_empty() {
        CheckResult::new(state, base)
    } else {
        CheckResult::new(state, format!("{base}: {why}"))
    }
}

/// The rdac verdict from VPD page 0xC9 (header included).
pub fn rdac_state(page: &[u8]) -> CheckResult {
    if page.len() < 13 {
        return rdac(ChkState::Down, "").with_detail(format!(
            "VPD page 0xC9 is {} bytes, too short for a volume access page: not an RDAC array?",
            page.len()
        ));
    }
    if page[1] != 0xC9 {
        return rdac(ChkState::Down, "").with_detail(format!(
            "asked for VPD page 0xC9, the device answered page 0x{:02X}: not an RDAC array?",
            page[1]
        ));
    }
    let (pq_pdt, avtcvp, aas_cur, vendor_cur, aas_alt) =
        (page[0], page[8], page[10] & 0x0F, page[11], page[12] & 0x0F);
    if pq_pdt & 0xE0 == 0x20 || pq_pdt & 0x7F != 0 {
        return rdac(ChkState::Down, "lun not connected");
    }
    // TPGDE: the page carries target port group data.
    if avtcvp & 0x10 != 0 {
        if aas_cur == AAS_UNAVAILABLE {
            return rdac(ChkState::Down, unavailable_reason(vendor_cur));
        }
        // Both controllers transitioning: a failover in progress, the path
        // is fine. This one alone: the controller is starting up.
        if aas_cur == AAS_TRANSITIONING && aas_alt != AAS_TRANSITIONING {
            return rdac(ChkState::Down, "ctlr is in startup sequence");
        }
    }
    // The owning controller (AVT/owner bit), or I/O shipping enabled.
    if avtcvp & 0x01 != 0 || avtcvp & 0x20 != 0 {
        rdac(ChkState::Up, "")
    } else {
        rdac(ChkState::Ghost, "")
    }
}

fn unavailable_reason(vendor_specific: u8) -> &'static str {
    match vendor_specific {
        0x2 => "non-responsive to queries",
        0x3 => "ctlr held in reset",
        0x4 | 0x5 => "ctlr firmware downloading",
        0x6 => "ctlr quiesced by admin request",
        0x7 => "ctlr is in service mode",
        _ => "ctlr is unavailable",
    }
}

/// What the CLARiiON path unit report says of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clariion {
    /// The path to the SP that owns the LUN: a read decides.
    Active,
    /// The other SP's path: up (PNR/ALUA failover makes it usable).
    Passive,
    /// Not usable, with the checker's message.
    Failed(ChkState, &'static str),
}

/// Bytes of VPD page 0xC0 the checker reads.
pub const CLARIION_PAGE_LEN: usize = 128;

/// The emc_clariion verdict from VPD page 0xC0 (header included).
pub fn clariion_state(page: &[u8]) -> Clariion {
    use Clariion::Failed;
    if page.len() < 49 || page[1] != 0xC0 || page[9] != 0x00 {
        return Failed(ChkState::Down, "Path unit report page in unknown format");
    }
    let failover_mode = page[28] & 0x07;
    if page[27] != 0x03 || (failover_mode != 0x04 && failover_mode != 0x06) || page[30] & 0x04 == 0
    {
        return Failed(ChkState::Down, "Path not correctly configured for failover");
    }
    if page[48] != 0x00 {
        return Failed(ChkState::Shaky, "Path not available for normal operations");
    }
    match page[4] {
        0x00 => Failed(ChkState::Down, "Logical Unit is unbound or LUNZ"),
        0x02 => Clariion::Active,
        _ => Clariion::Passive,
    }
}

fn clariion(state: ChkState, msg: &str) -> CheckResult {
    CheckResult::new(state, format!("emc_clariion_checker: {msg}"))
}

/// Runs a vendor checker on an open device.
pub fn check(kind: CheckerKind, sg: &SgDevice, timeout: Duration) -> CheckResult {
    match kind {
        CheckerKind::Rdac => match sg.vpd_page(0xC9, timeout) {
            Ok(page) => rdac_state(&page),
            Err(e) => rdac(ChkState::Down, "inquiry failed").with_detail(e.to_string()),
        },
        CheckerKind::EmcClariion => check_clariion(sg, timeout),
        CheckerKind::HpSw => check_hp_sw(sg, timeout),
        other => CheckResult::new(ChkState::Undef, format!("{other} is not a vendor checker")),
    }
}

fn check_clariion(sg: &SgDevice, timeout: Duration) -> CheckResult {
    let page = match sg.vpd_page(0xC0, timeout) {
        Ok(p) => p,
        Err(e) => {
            return clariion(ChkState::Down, "query command indicates error")
                .with_detail(e.to_string())
        }
    };
    match clariion_state(&page) {
        Clariion::Failed(st, msg) => clariion(st, msg),
        Clariion::Passive => clariion(ChkState::Up, "Passive path is healthy."),
        Clariion::Active => match sg.read_head(4096, timeout) {
            Ok(r) if r.outcome.is_good() => clariion(ChkState::Up, "Active path is healthy."),
            Ok(r) => clariion(ChkState::Down, "Read error on the active path")
                .with_detail(r.outcome.to_string()),
            Err(e) => {
                clariion(ChkState::Down, "Read error on the active path").with_detail(e.to_string())
            }
        },
    }
}

fn check_hp_sw(sg: &SgDevice, timeout: Duration) -> CheckResult {
    if let Err(e) = sg.vpd_page(0x80, timeout) {
        return CheckResult::standard(CheckerKind::HpSw, ChkState::Down).with_detail(e.to_string());
    }
    match sg.test_unit_ready(timeout) {
        Ok(r) if r.outcome.is_good() => CheckResult::standard(CheckerKind::HpSw, ChkState::Up),
        Ok(r) => CheckResult::standard(CheckerKind::HpSw, ChkState::Ghost)
            .with_detail(r.outcome.to_string()),
        Err(e) => {
            CheckResult::standard(CheckerKind::HpSw, ChkState::Ghost).with_detail(e.to_string())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A volume access page with the given owner bit, TPGDE and states.
    fn c9(pq_pdt: u8, avtcvp: u8, aas_cur: u8, vendor_cur: u8, aas_alt: u8) -> Vec<u8> {
        let mut p = vec![0u8; RDAC_PAGE_LEN];
        p[0] = pq_pdt;
        p[1] = 0xC9;
        p[3] = 0x2C;
        p[4..8].copy_from_slice(b"vac1");
        p[8] = avtcvp;
        p[10] = aas_cur;
        p[11] = vendor_cur;
        p[12] = aas_alt;
        p
    }

    #[test]
    fn rdac_owner_is_up_the_other_controller_ghost() {
        assert_eq!(rdac_state(&c9(0, 0x01, 0, 0, 0)).state, ChkState::Up);
        assert_eq!(rdac_state(&c9(0, 0x00, 0, 0, 0)).state, ChkState::Ghost);
        // I/O shipping: every path is up.
        assert_eq!(rdac_state(&c9(0, 0x20, 0, 0, 0)).state, ChkState::Up);
        assert_eq!(
            rdac_state(&c9(0, 0x01, 0, 0, 0)).msg,
            "rdac checker reports path is up"
        );
    }

    #[test]
    fn rdac_unavailable_transitioning_and_unconnected_are_down() {
        let r = rdac_state(&c9(0, 0x11, AAS_UNAVAILABLE, 0x6, 0));
        assert_eq!(r.state, ChkState::Down);
        assert_eq!(
            r.msg,
            "rdac checker reports path is down: ctlr quiesced by admin request"
        );
        // Without TPGDE the states are not looked at.
        assert_eq!(
            rdac_state(&c9(0, 0x01, AAS_UNAVAILABLE, 0, 0)).state,
            ChkState::Up
        );
        let r = rdac_state(&c9(0, 0x10, AAS_TRANSITIONING, 0, 0));
        assert!(r.msg.ends_with("ctlr is in startup sequence"), "{}", r.msg);
        // Both transitioning: a failover in progress, not a fault.
        let r = rdac_state(&c9(0, 0x10, AAS_TRANSITIONING, 0, AAS_TRANSITIONING));
        assert_eq!(r.state, ChkState::Ghost);
        let r = rdac_state(&c9(0x20, 0x01, 0, 0, 0));
        assert!(r.msg.ends_with("lun not connected"));
        assert_eq!(rdac_state(&c9(0x7F, 0x01, 0, 0, 0)).state, ChkState::Down);
    }

    #[test]
    fn rdac_pages_it_cannot_read_say_why() {
        let r = rdac_state(&[0, 0xC9, 0, 4]);
        assert_eq!(r.state, ChkState::Down);
        assert!(r.to_string().contains("too short"), "{r}");
        let mut other = c9(0, 1, 0, 0, 0);
        other[1] = 0x80;
        let r = rdac_state(&other);
        assert_eq!(r.state, ChkState::Down);
        assert!(r.to_string().contains("page 0x80"), "{r}");
        assert_eq!(rdac_state(&[]).state, ChkState::Down);
    }

    /// A path unit report page set up for ALUA failover.
    fn c0(lun_state: u8) -> Vec<u8> {
        let mut p = vec![0u8; CLARIION_PAGE_LEN];
        p[1] = 0xC0;
        p[4] = lun_state;
        p[27] = 0x03;
        p[28] = 0x04;
        p[30] = 0x04;
        p
    }

    #[test]
    fn clariion_pages() {
        assert_eq!(clariion_state(&c0(2)), Clariion::Active);
        assert_eq!(clariion_state(&c0(1)), Clariion::Passive);
        assert_eq!(
            clariion_state(&c0(0)),
            Clariion::Failed(ChkState::Down, "Logical Unit is unbound or LUNZ")
        );
        let mut p = c0(2);
        p[48] = 1;
        assert!(matches!(
            clariion_state(&p),
            Clariion::Failed(ChkState::Shaky, _)
        ));
        let mut p = c0(2);
        p[28] = 0x01;
        assert_eq!(
            clariion_state(&p),
            Clariion::Failed(ChkState::Down, "Path not correctly configured for failover")
        );
        let mut p = c0(2);
        p[9] = 1;
        assert!(
            matches!(clariion_state(&p), Clariion::Failed(ChkState::Down, m) if m.contains("unknown format"))
        );
        assert!(matches!(
            clariion_state(&[0, 0xC0]),
            Clariion::Failed(ChkState::Down, _)
        ));
    }
}
