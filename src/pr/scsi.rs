//! PERSISTENT RESERVE IN (READ KEYS) and OUT (REGISTER AND IGNORE EXISTING
//! KEY) as SPC-4 lays them out: pure builders and decoders, and the one
//! step the daemon runs on a path ([`sync_path`]).

use std::time::Duration;

use super::{PrSync, PrSyncRequest};
use crate::scsi::{Outcome, ScsiError, SgDevice};

pub const PERSISTENT_RESERVE_IN: u8 = 0x5E;
pub const PERSISTENT_RESERVE_OUT: u8 = 0x5F;
/// PR IN service action.
pub const READ_KEYS: u8 = 0x00;
/// PR OUT service action.
pub const REGISTER_AND_IGNORE_EXISTING_KEY: u8 = 0x06;

/// Parameter list flags (byte 20).
const APTPL: u8 = 0x01;
const ALL_TG_PT: u8 = 0x04;
const PARAM_LEN: usize = 24;

/// Room for 1,023 keys: one READ KEYS answers any LU a host sees.
const READ_KEYS_ALLOC: u16 = 8 + 8 * 1023;

pub fn cdb_prin(service_action: u8, alloc: u16) -> [u8; 10] {
    let [hi, lo] = alloc.to_be_bytes();
    [
        PERSISTENT_RESERVE_IN,
        service_action & 0x1f,
        0,
        0,
        0,
        0,
        0,
        hi,
        lo,
        0,
    ]
}

pub fn cdb_prout(service_action: u8, scope_type: u8, param_len: u32) -> [u8; 10] {
    let l = param_len.to_be_bytes();
    [
        PERSISTENT_RESERVE_OUT,
        service_action & 0x1f,
        scope_type,
        0,
        0,
        l[0],
        l[1],
        l[2],
        l[3],
        0,
    ]
}

/// The basic PR OUT parameter list: reservation key, service action
/// reservation key, and the APTPL / ALL_TG_PT flags.
pub fn prout_params(key: u64, sa_key: u64, aptpl: bool, all_tg_pt: bool) -> [u8; PARAM_LEN] {
    let mut p = [0u8; PARAM_LEN];
    p[0..8].copy_from_slice(&key.to_be_bytes());
    p[8..16].copy_from_slice(&sa_key.to_be_bytes());
    p[20] = (if aptpl { APTPL } else { 0 }) | (if all_tg_pt { ALL_TG_PT } else { 0 });
    p
}

/// READ KEYS data: the PR generation and the registered keys (one per
/// registered I_T nexus, so a key shows once per registered path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadKeys {
    pub generation: u32,
    pub keys: Vec<u64>,
    /// The device had more keys than the buffer held.
    pub truncated: bool,
}

/// Why READ KEYS gave no key list. Apart from [`super::PrError`]: that
/// one judges key values and compares equal; this one carries the SCSI
/// layer's I/O errors.
#[derive(Debug, thiserror::Error)]
pub enum ReadKeysError {
    /// The reply, in bytes, is shorter than the 8-byte header.
    #[error("READ KEYS: {0} bytes, the header alone is 8")]
    ShortHeader(usize),
    /// The ADDITIONAL LENGTH field does not count whole keys.
    #[error("READ KEYS: additional length {0} is not a multiple of 8")]
    BadLength(usize),
    #[error(transparent)]
    Scsi(#[from] ScsiError),
    /// The device completed the command with another status.
    #[error("PR IN READ KEYS: {0}")]
    Status(Outcome),
}

pub fn parse_read_keys(buf: &[u8]) -> Result<ReadKeys, ReadKeysError> {
    if buf.len() < 8 {
        return Err(ReadKeysError::ShortHeader(buf.len()));
    }
    let generation = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if !len.is_multiple_of(8) {
        return Err(ReadKeysError::BadLength(len));
    }
    let body = &buf[8..];
    let have = len.min(body.len() - body.len() % 8);
    let keys = body[..have]
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    Ok(ReadKeys {
        generation,
        keys,
        truncated: have < len,
    })
}

/// READ KEYS through one path.
pub fn read_keys(dev: &SgDevice, timeout: Duration) -> Result<ReadKeys, ReadKeysError> {
    let mut buf = vec![0u8; usize::from(READ_KEYS_ALLOC)];
    let r = dev.execute(
        &cdb_prin(READ_KEYS, READ_KEYS_ALLOC),
        Some(&mut buf),
        timeout,
    )?;
    if !r.outcome.is_good() {
        return Err(ReadKeysError::Status(r.outcome));
    }
    buf.truncate(r.transferred);
    parse_read_keys(&buf)
}

/// The daemon's step on a path that joins or comes back: if the array
/// holds the map's key (through another path of this host), register it
/// through this one too; if it does not, leave the path alone (a host
/// another one preempted must stay fenced).
pub fn sync_path(dev: &str, req: &PrSyncRequest, timeout: Duration) -> PrSync {
    let sg = match SgDevice::open(dev) {
        Ok(s) => s,
        Err(e) => return PrSync::Failed(e.to_string()),
    };
    let keys = match read_keys(&sg, timeout) {
        Ok(k) => k,
        Err(e) => return PrSync::Failed(e.to_string()),
    };
    if !keys.keys.contains(&req.key.key) {
        return PrSync::KeyAbsent;
    }
    let params = prout_params(0, req.key.key, req.key.aptpl, req.all_tg_pt);
    let cdb = cdb_prout(REGISTER_AND_IGNORE_EXISTING_KEY, 0, PARAM_LEN as u32);
    match sg.execute_out(&cdb, &params, timeout) {
        Ok(r) if r.outcome.is_good() => PrSync::Registered,
        Ok(r) => PrSync::Failed(match r.outcome {
            Outcome::ReservationConflict => "PR OUT REGISTER: reservation conflict".into(),
            o => format!("PR OUT REGISTER: {o}"),
        }),
        Err(e) => PrSync::Failed(e.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cdbs_as_spc_lays_them_out() {
        assert_eq!(
            cdb_prin(READ_KEYS, 0x2000),
            [0x5E, 0, 0, 0, 0, 0, 0, 0x20, 0, 0]
        );
        assert_eq!(
            cdb_prout(REGISTER_AND_IGNORE_EXISTING_KEY, 0, 24),
            [0x5F, 0x06, 0, 0, 0, 0, 0, 0, 24, 0]
        );
        let p = prout_params(0, 0x0102030405060708, true, true);
        assert_eq!(&p[0..8], &[0; 8]);
        assert_eq!(&p[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(p[20], 0x05);
        assert_eq!(prout_params(1, 0, false, false)[20], 0);
    }

    #[test]
    fn read_keys_decoded() {
        let mut b = vec![0, 0, 0, 9, 0, 0, 0, 16];
        b.extend_from_slice(&0xabcu64.to_be_bytes());
        b.extend_from_slice(&0xdefu64.to_be_bytes());
        let k = parse_read_keys(&b).unwrap();
        assert_eq!(
            (k.generation, k.keys.clone(), k.truncated),
            (9, vec![0xabc, 0xdef], false)
        );
        // A short transfer keeps the whole keys it holds and says so.
        let k = parse_read_keys(&b[..20]).unwrap();
        assert_eq!((k.keys, k.truncated), (vec![0xabc], true));
        assert_eq!(
            parse_read_keys(&[0, 0, 0, 1, 0, 0, 0, 0]).unwrap().keys,
            Vec::<u64>::new()
        );
        let short = parse_read_keys(&[0; 7]).unwrap_err();
        assert!(matches!(short, ReadKeysError::ShortHeader(7)), "{short:?}");
        assert_eq!(
            short.to_string(),
            "READ KEYS: 7 bytes, the header alone is 8"
        );
        let odd = parse_read_keys(&[0, 0, 0, 1, 0, 0, 0, 5]).unwrap_err();
        assert!(matches!(odd, ReadKeysError::BadLength(5)), "{odd:?}");
        assert_eq!(
            odd.to_string(),
            "READ KEYS: additional length 5 is not a multiple of 8"
        );
        assert_eq!(
            ReadKeysError::Status(Outcome::ReservationConflict).to_string(),
            format!("PR IN READ KEYS: {}", Outcome::ReservationConflict)
        );
    }
}
