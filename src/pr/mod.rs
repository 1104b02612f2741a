//! SCSI-3 persistent reservations on multipath maps, as multipathd takes
//! part in them: `mpathpersist` registers a key on every path of a map and
//! tells the daemon (`setprstatus`, `setprkey`); the daemon then registers
//! that key on any path that joins or comes back, before it carries I/O.
//!
//! [`PrKey`] and [`ReservationKey`] are the typed values of the
//! `reservation_key` keyword and the socket's `key` argument; [`prkeys`]
//! is the file shared with multipath-tools; [`scsi`] builds and decodes
//! PERSISTENT RESERVE IN/OUT and runs them on a path.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

pub mod prkeys;
pub mod scsi;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrError {
    #[error("invalid reservation key \"{0}\": expected up to 16 hex digits (0x optional), optionally followed by :aptpl")]
    BadKey(String),
    #[error("reservation key 0 is not a key: use unsetprkey")]
    ZeroKey,
}

/// A reservation key and whether registrations with it persist through a
/// power loss of the array (APTPL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PrKey {
    pub key: u64,
    pub aptpl: bool,
}

impl FromStr for PrKey {
    type Err = PrError;

    /// multipath-tools' syntax: `[0]x` prefix optional, 1 to 16 hex digits,
    /// then `:aptpl` or nothing. Stricter than multipath-tools in one way:
    /// an unknown suffix is an error, not silently dropped.
    fn from_str(s: &str) -> Result<Self, PrError> {
        let bad = || PrError::BadKey(s.to_string());
        let (digits, aptpl) = match s.split_once(':') {
            Some((d, "aptpl")) => (d, true),
            Some(_) => return Err(bad()),
            None => (s, false),
        };
        let digits = digits.strip_prefix('0').unwrap_or(digits);
        let digits = digits
            .strip_prefix('x')
            .or_else(|| digits.strip_prefix('X'))
            .unwrap_or(digits);
        if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(bad());
        }
        let key = u64::from_str_radix(digits, 16).map_err(|_| bad())?;
        Ok(PrKey { key, aptpl })
    }
}

impl fmt::Display for PrKey {
    /// As `getprkey` prints it: `0x1a2b`, `0x1a2b:aptpl`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "0x{:x}{}",
            self.key,
            if self.aptpl { ":aptpl" } else { "" }
        )
    }
}

/// Where a map's reservation key comes from (`reservation_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReservationKey {
    /// Not configured: the daemon registers nothing.
    #[default]
    None,
    /// `file`: the prkeys file, written through `setprkey`.
    File,
    Key(PrKey),
}

impl FromStr for ReservationKey {
    type Err = PrError;

    /// `file`, a key, or "" (not set: how settings serialize it).
    fn from_str(s: &str) -> Result<Self, PrError> {
        if s.is_empty() {
            return Ok(ReservationKey::None);
        }
        if s == "file" {
            return Ok(ReservationKey::File);
        }
        let k = PrKey::from_str(s)?;
        if k.key == 0 {
            // multipath-tools reads a zero key as "not set"; say so.
            return Ok(ReservationKey::None);
        }
        Ok(ReservationKey::Key(k))
    }
}

impl fmt::Display for ReservationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReservationKey::None => Ok(()),
            ReservationKey::File => f.write_str("file"),
            ReservationKey::Key(k) => k.fmt(f),
        }
    }
}

/// Whether the map's key is registered with the array, as far as the
/// daemon knows (`getprstatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrFlag {
    /// Not yet read from the array.
    #[default]
    Unknown,
    Unset,
    Set,
}

impl PrFlag {
    pub fn as_str(self) -> &'static str {
        match self {
            PrFlag::Unknown => "unknown",
            PrFlag::Unset => "unset",
            PrFlag::Set => "set",
        }
    }
}

/// What the daemon asks of a path on its next good check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrSyncRequest {
    pub key: PrKey,
    /// Register with ALL_TG_PT, as mpathpersist does under `all_tg_pt yes`.
    pub all_tg_pt: bool,
}

/// What a path's registration step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrSync {
    /// The key is registered with the array, now also through this path.
    Registered,
    /// The array holds no registration with the key (never registered, or
    /// preempted by another host): the path is left unregistered, so a
    /// fenced host stays fenced.
    KeyAbsent,
    /// The commands failed; tried again on the next good check.
    Failed(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_as_multipath_tools_reads_them() {
        let k = |s: &str| PrKey::from_str(s);
        assert_eq!(
            k("0x1a"),
            Ok(PrKey {
                key: 0x1a,
                aptpl: false
            })
        );
        assert_eq!(
            k("0X1A:aptpl"),
            Ok(PrKey {
                key: 0x1a,
                aptpl: true
            })
        );
        assert_eq!(
            k("1a"),
            Ok(PrKey {
                key: 0x1a,
                aptpl: false
            })
        );
        assert_eq!(
            k("x1a"),
            Ok(PrKey {
                key: 0x1a,
                aptpl: false
            })
        );
        assert_eq!(k("0xffffffffffffffff").unwrap().key, u64::MAX);
        for bad in [
            "",
            "0",
            "0x",
            "0x1g",
            "0x12345678901234567",
            "0x1:foo",
            " 0x1",
            "-1",
        ] {
            assert!(k(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["0x1a", "0xdeadbeef:aptpl", "0xffffffffffffffff"] {
            assert_eq!(PrKey::from_str(s).unwrap().to_string(), s);
        }
        assert_eq!("file".parse::<ReservationKey>(), Ok(ReservationKey::File));
        assert_eq!("0x0".parse::<ReservationKey>(), Ok(ReservationKey::None));
        assert_eq!(
            "0x5:aptpl".parse::<ReservationKey>().unwrap().to_string(),
            "0x5:aptpl"
        );
    }
}
