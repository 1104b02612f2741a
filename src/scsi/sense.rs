//! SCSI sense data: fixed (0x70/0x71) and descriptor (0x72/0x73) formats.

use std::fmt;

/// Sense keys the checkers and prioritizers care about.
pub mod key {
    pub const NO_SENSE: u8 = 0x0;
    pub const RECOVERED_ERROR: u8 = 0x1;
    pub const NOT_READY: u8 = 0x2;
    pub const MEDIUM_ERROR: u8 = 0x3;
    pub const HARDWARE_ERROR: u8 = 0x4;
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    pub const UNIT_ATTENTION: u8 = 0x6;
    pub const DATA_PROTECT: u8 = 0x7;
    pub const ABORTED_COMMAND: u8 = 0xb;
}

/// The three numbers that say what went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sense {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
}

impl Sense {
    pub fn new(key: u8, asc: u8, ascq: u8) -> Self {
        Sense { key, asc, ascq }
    }

    pub fn key_name(&self) -> &'static str {
        match self.key {
            key::NO_SENSE => "NO SENSE",
            key::RECOVERED_ERROR => "RECOVERED ERROR",
            key::NOT_READY => "NOT READY",
            key::MEDIUM_ERROR => "MEDIUM ERROR",
            key::HARDWARE_ERROR => "HARDWARE ERROR",
            key::ILLEGAL_REQUEST => "ILLEGAL REQUEST",
            key::UNIT_ATTENTION => "UNIT ATTENTION",
            key::DATA_PROTECT => "DATA PROTECT",
            key::ABORTED_COMMAND => "ABORTED COMMAND",
            _ => "sense key",
        }
    }
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (0x{:x}) asc/ascq 0x{:02x}/0x{:02x}",
            self.key_name(),
            self.key,
            self.asc,
            self.ascq
        )
    }
}

/// Parse the sense bytes the device wrote (only the `sb_len_wr` bytes).
/// None when the buffer is empty, too short or of an unknown format.
pub fn parse_sense(sb: &[u8]) -> Option<Sense> {
    let code = sb.first()? & 0x7f;
    match code {
        // Descriptor format: key in byte 1, asc/ascq in bytes 2/3.
        0x72 | 0x73 => Some(Sense::new(sb.get(1)? & 0x0f, *sb.get(2)?, *sb.get(3)?)),
        // Fixed format: key in byte 2, asc/ascq in bytes 12/13. Devices may
        // truncate after the key (additional length < 6): asc/ascq are 0 then.
        0x70 | 0x71 => {
            let key = sb.get(2)? & 0x0f;
            Some(Sense::new(
                key,
                sb.get(12).copied().unwrap_or(0),
                sb.get(13).copied().unwrap_or(0),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fixed_format() {
        // NOT READY, LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN STANDBY STATE
        let sb = [
            0x70, 0, 0x02, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x04, 0x0b, 0, 0, 0, 0,
        ];
        assert_eq!(parse_sense(&sb), Some(Sense::new(2, 0x04, 0x0b)));
        // Deferred error with the valid bit set.
        let sb = [
            0xf1, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x29, 0x00, 0, 0, 0, 0,
        ];
        assert_eq!(parse_sense(&sb), Some(Sense::new(6, 0x29, 0)));
    }

    #[test]
    fn fixed_format_truncated() {
        assert_eq!(parse_sense(&[0x70, 0, 0x05]), Some(Sense::new(5, 0, 0)));
        assert_eq!(parse_sense(&[0x70, 0]), None);
    }

    #[test]
    fn descriptor_format() {
        // ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED
        let sb = [0x72, 0x05, 0x25, 0x00, 0, 0, 0, 0];
        assert_eq!(parse_sense(&sb), Some(Sense::new(5, 0x25, 0)));
        let sb = [0x73, 0x02, 0x04, 0x0a, 0, 0, 0, 0];
        assert_eq!(parse_sense(&sb), Some(Sense::new(2, 0x04, 0x0a)));
        assert_eq!(parse_sense(&[0x72, 0x05, 0x25]), None);
    }

    #[test]
    fn unknown_or_empty() {
        assert_eq!(parse_sense(&[]), None);
        assert_eq!(
            parse_sense(&[0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
            None
        );
    }

    #[test]
    fn display() {
        assert_eq!(
            Sense::new(2, 4, 0xb).to_string(),
            "NOT READY (0x2) asc/ascq 0x04/0x0b"
        );
    }
}
