//! The checkers proper. Each call blocks the calling thread for up to the
//! command timeout (longer if the kernel's error handling hangs): run them
//! through the runner.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::{CheckResult, CheckerKind};
use crate::model::ChkState;
use crate::scsi::parse::host;
use crate::scsi::sense::key;
use crate::scsi::sgio::{block_size, devnode};
use crate::scsi::{Outcome, ScsiError, SgDevice};

/// How many times TUR is sent when the answer says "try again"
/// (UNIT ATTENTION, transient host errors), as multipath-tools does.
pub const TUR_TRIES: u32 = 3;

/// What one TUR answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurStep {
    Done(ChkState),
    /// Send it again (while tries are left); down after the last one.
    Retry,
}

/// Map a TUR completion onto a path state (COMPAT section 6).
pub fn tur_step(outcome: &Outcome) -> TurStep {
    use TurStep::*;
    match outcome {
        Outcome::Good => Done(ChkState::Up),
        // Another initiator holds a reservation: the path itself works.
        Outcome::ReservationConflict => Done(ChkState::Up),
        o if o.is_timeout() => Done(ChkState::Timeout),
        Outcome::HostError(h) if host::is_transient(*h) => Retry,
        Outcome::HostError(_) | Outcome::DriverError(_) => Done(ChkState::Down),
        Outcome::CheckCondition(Some(s)) => match (s.key, s.asc, s.ascq) {
            (key::UNIT_ATTENTION, _, _) => Retry,
            // LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN STANDBY STATE
            (key::NOT_READY, 0x04, 0x0b) => Done(ChkState::Ghost),
            // LOGICAL UNIT NOT ACCESSIBLE, ASYMMETRIC ACCESS STATE TRANSITION
            (key::NOT_READY, 0x04, 0x0a) => Done(ChkState::Pending),
            // LOGICAL UNIT NOT SUPPORTED: the LUN was unmapped
            (key::ILLEGAL_REQUEST, 0x25, 0x00) => Done(ChkState::Disconnected),
            _ => Done(ChkState::Down),
        },
        Outcome::CheckCondition(None) | Outcome::OtherStatus(_) => Done(ChkState::Down),
    }
}

fn done(checker: CheckerKind, state: ChkState, detail: Option<String>) -> CheckResult {
    let r = CheckResult::standard(checker, state);
    match detail {
        Some(d) => r.with_detail(d),
        None => r,
    }
}

fn ioctl_failure(checker: CheckerKind, e: &ScsiError) -> CheckResult {
    match e {
        ScsiError::Ioctl(_, Errno::ENOTTY) | ScsiError::Ioctl(_, Errno::EINVAL) => {
            CheckResult::new(
                ChkState::Down,
                format!("{} checker doesn't support this device", checker.name()),
            )
            .with_detail(e.to_string())
        }
        _ => done(checker, ChkState::Down, Some(e.to_string())),
    }
}

/// TEST UNIT READY with `timeout` per command, retried on UNIT ATTENTION
/// and transient host errors while tries and time are left.
pub fn tur(dev: &str, timeout: Duration) -> CheckResult {
    match SgDevice::open(dev) {
        Ok(sg) => tur_on(&sg, timeout),
        Err(e) => done(CheckerKind::Tur, ChkState::Down, Some(e.to_string())),
    }
}

/// [`tur`] on a device already open (a daemon may hold paths open: sd
/// refuses to open an offline device, SG_IO on a held fd fails with ENODEV).
pub fn tur_on(sg: &SgDevice, timeout: Duration) -> CheckResult {
    const C: CheckerKind = CheckerKind::Tur;
    let deadline = Instant::now() + timeout;
    let mut last = None;
    for _ in 0..TUR_TRIES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return done(C, ChkState::Timeout, last);
        }
        let r = match sg.test_unit_ready(left) {
            Ok(r) => r,
            Err(e) => return ioctl_failure(C, &e),
        };
        let detail = (!r.outcome.is_good()).then(|| r.outcome.to_string());
        match tur_step(&r.outcome) {
            TurStep::Done(st) => return done(C, st, detail),
            TurStep::Retry => last = detail,
        }
    }
    done(
        C,
        ChkState::Down,
        Some(format!(
            "{} after {TUR_TRIES} tries",
            last.unwrap_or_default()
        )),
    )
}

/// A buffer of `len` bytes aligned to `align` (O_DIRECT needs it), carved
/// out of a larger Vec so no unsafe allocation is needed.
struct Aligned {
    buf: Vec<u8>,
    off: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize, align: usize) -> Self {
        let buf = vec![0u8; len + align];
        let off = buf.as_ptr().align_offset(align).min(align);
        Aligned { buf, off, len }
    }
    fn as_mut(&mut self) -> &mut [u8] {
        let end = self.off + self.len;
        self.buf.get_mut(self.off..end).unwrap_or(&mut [])
    }
}

/// Read the first logical block with O_DIRECT (bypassing the page cache).
/// The read cannot be bounded by a timeout here; the runner reports it as
/// timed out when it takes longer than the checker timeout.
pub fn directio(dev: &str, _timeout: Duration) -> CheckResult {
    const C: CheckerKind = CheckerKind::Directio;
    let node = devnode(dev);
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT | libc::O_NONBLOCK)
        .open(&node)
    {
        Ok(f) => f,
        Err(e) => return done(C, ChkState::Down, Some(format!("cannot open {node}: {e}"))),
    };
    let bs = match block_size(&file, &node) {
        Ok(b) => b,
        Err(e) => return ioctl_failure(C, &e),
    };
    let mut buf = Aligned::new(bs, bs.max(4096));
    match file.read_at(buf.as_mut(), 0) {
        Ok(n) if n == bs => done(C, ChkState::Up, None),
        Ok(n) => done(
            C,
            ChkState::Down,
            Some(format!("short read: {n} of {bs} bytes")),
        ),
        Err(e) => done(C, ChkState::Down, Some(format!("read: {e}"))),
    }
}

/// READ(10) of sector 0 through SG_IO.
pub fn readsector0(dev: &str, timeout: Duration) -> CheckResult {
    const C: CheckerKind = CheckerKind::Readsector0;
    let sg = match SgDevice::open(dev) {
        Ok(s) => s,
        Err(e) => return done(C, ChkState::Down, Some(e.to_string())),
    };
    let bs = match sg.logical_block_size() {
        Ok(b) => b,
        Err(e) => return ioctl_failure(C, &e),
    };
    match sg.read10(0, 1, bs, timeout) {
        Ok(r) if r.outcome.is_good() => done(C, ChkState::Up, None),
        Ok(r) if r.outcome.is_timeout() => done(C, ChkState::Timeout, Some(r.outcome.to_string())),
        Ok(r) => done(C, ChkState::Down, Some(r.outcome.to_string())),
        Err(e) => ioctl_failure(C, &e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::scsi::Sense;

    fn cc(k: u8, asc: u8, ascq: u8) -> Outcome {
        Outcome::CheckCondition(Some(Sense::new(k, asc, ascq)))
    }

    #[test]
    fn tur_mapping() {
        use TurStep::*;
        assert_eq!(tur_step(&Outcome::Good), Done(ChkState::Up));
        assert_eq!(tur_step(&Outcome::ReservationConflict), Done(ChkState::Up));
        assert_eq!(tur_step(&cc(6, 0x29, 0)), Retry);
        assert_eq!(tur_step(&cc(2, 4, 0x0b)), Done(ChkState::Ghost));
        assert_eq!(tur_step(&cc(2, 4, 0x0a)), Done(ChkState::Pending));
        assert_eq!(tur_step(&cc(2, 4, 0x03)), Done(ChkState::Down));
        assert_eq!(tur_step(&cc(5, 0x25, 0)), Done(ChkState::Disconnected));
        assert_eq!(tur_step(&cc(5, 0x24, 0)), Done(ChkState::Down));
        assert_eq!(tur_step(&cc(3, 0x11, 0)), Done(ChkState::Down));
        assert_eq!(
            tur_step(&Outcome::CheckCondition(None)),
            Done(ChkState::Down)
        );
        assert_eq!(tur_step(&Outcome::OtherStatus(0x08)), Done(ChkState::Down));
        assert_eq!(
            tur_step(&Outcome::HostError(host::DID_NO_CONNECT)),
            Done(ChkState::Down)
        );
        assert_eq!(
            tur_step(&Outcome::HostError(host::DID_TRANSPORT_FAILFAST)),
            Done(ChkState::Down)
        );
        assert_eq!(
            tur_step(&Outcome::HostError(host::DID_TIME_OUT)),
            Done(ChkState::Timeout)
        );
        assert_eq!(
            tur_step(&Outcome::DriverError(0x06)),
            Done(ChkState::Timeout)
        );
        assert_eq!(tur_step(&Outcome::DriverError(0x04)), Done(ChkState::Down));
        assert_eq!(tur_step(&Outcome::HostError(host::DID_IMM_RETRY)), Retry);
        assert_eq!(
            tur_step(&Outcome::HostError(host::DID_TRANSPORT_DISRUPTED)),
            Retry
        );
    }

    #[test]
    fn aligned_buffer() {
        let mut a = Aligned::new(512, 4096);
        let s = a.as_mut();
        assert_eq!(s.len(), 512);
        assert_eq!(s.as_ptr() as usize % 4096, 0);
    }

    #[test]
    fn missing_device_is_down() {
        let r = tur("/nonexistent/sdzz", Duration::from_secs(1));
        assert_eq!(r.state, ChkState::Down);
        assert!(r.detail.unwrap().contains("cannot open"));
        assert_eq!(
            directio("/nonexistent/sdzz", Duration::from_secs(1)).state,
            ChkState::Down
        );
        assert_eq!(
            readsector0("/nonexistent/sdzz", Duration::from_secs(1)).state,
            ChkState::Down
        );
    }

    #[test]
    fn not_a_scsi_device() {
        // SG_IO on a character device that knows nothing of it.
        let r = tur("/dev/null", Duration::from_secs(1));
        assert_eq!(r.state, ChkState::Down);
        assert!(r.msg.contains("doesn't support"), "{r:?}");
    }
}
