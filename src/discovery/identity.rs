//! Path identity: which WWID a path has, where it came from, and the safety
//! check that keeps paths with the same WWID but different devices apart.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::PathInfo;

/// `wwid_source` for identities read from `device/vpd_pg83` in sysfs.
pub const SOURCE_VPD_PG83: &str = "vpd_pg83";

/// multipath-tools' WWID_SIZE is 128 bytes including the NUL.
pub const MAX_WWID_LEN: usize = 127;

/// Why a string cannot be a WWID (name a map, be a wwids-file line).
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum WwidError {
    #[error("empty")]
    Empty,
    #[error("longer than {MAX_WWID_LEN} bytes")]
    TooLong,
    /// Whitespace, a control character or `/`.
    #[error("contains {0:?}")]
    ForbiddenChar(char),
}

/// What an identity source gave instead of a usable WWID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gap {
    /// Nothing: the udev property is not set, VPD 0x83 gave no identity.
    Absent,
    Unusable(WwidError),
}

/// Why a path has no usable WWID: what each source it was looked for in
/// gave.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub struct NoWwid {
    /// The udev property `uid_attribute` names and what it gave; None when
    /// `uid_attribute` is empty (VPD page 0x83 only).
    pub udev: Option<(String, Gap)>,
    pub vpd: Gap,
}

impl fmt::Display for NoWwid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.udev {
            Some((p, Gap::Absent)) => write!(f, "udev property {p} is not set; ")?,
            Some((p, Gap::Unusable(e))) => write!(f, "udev property {p} is unusable ({e}); ")?,
            None => {}
        }
        match &self.vpd {
            Gap::Absent => f.write_str("no identity in VPD page 0x83"),
            Gap::Unusable(e) => write!(f, "VPD page 0x83 identity is unusable ({e})"),
        }
    }
}

/// Checks that `raw` can name a map and a wwids-file line.
pub fn validate_wwid(raw: &str) -> Result<&str, WwidError> {
    let w = raw.trim();
    if w.is_empty() {
        return Err(WwidError::Empty);
    }
    if w.len() > MAX_WWID_LEN {
        return Err(WwidError::TooLong);
    }
    if let Some(c) = w
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '/')
    {
        return Err(WwidError::ForbiddenChar(c));
    }
    Ok(w)
}

/// Picks a path's WWID: the udev property named by `uid_attribute`
/// (ID_SERIAL unless the configuration says otherwise), else the identity
/// derived from VPD page 0x83 in sysfs (udev may not have labelled the
/// device yet). An empty `uid_attribute` means "use VPD page 0x83 only".
///
/// Returns `(wwid, wwid_source)` or what each source gave instead.
pub fn choose_wwid(
    properties: &BTreeMap<String, String>,
    uid_attribute: &str,
    vpd_wwid: Option<&str>,
) -> Result<(String, String), NoWwid> {
    let udev = if uid_attribute.is_empty() {
        None
    } else {
        let gap = match properties.get(uid_attribute).map(|v| validate_wwid(v)) {
            Some(Ok(w)) => return Ok((w.to_string(), uid_attribute.to_string())),
            Some(Err(e)) => Gap::Unusable(e),
            None => Gap::Absent,
        };
        Some((uid_attribute.to_string(), gap))
    };
    let vpd = match vpd_wwid.map(validate_wwid) {
        Some(Ok(w)) => return Ok((w.to_string(), SOURCE_VPD_PG83.to_string())),
        Some(Err(e)) => Gap::Unusable(e),
        None => Gap::Absent,
    };
    Err(NoWwid { udev, vpd })
}

/// Sets `info.wwid` / `info.wwid_source` (see [`choose_wwid`]); on failure
/// both are cleared and the reason is returned.
pub fn assign_wwid(
    info: &mut PathInfo,
    uid_attribute: &str,
    vpd_wwid: Option<&str>,
) -> Result<(), NoWwid> {
    match choose_wwid(&info.properties, uid_attribute, vpd_wwid) {
        Ok((w, src)) => {
            info.wwid = Some(w);
            info.wwid_source = Some(src);
            Ok(())
        }
        Err(e) => {
            info.wwid = None;
            info.wwid_source = None;
            Err(e)
        }
    }
}

/// Paths that claim one WWID but cannot be the same logical unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityConflict {
    pub wwid: String,
    /// Every path with this WWID, in input order. None of them may be
    /// grouped: we cannot tell which one lies.
    pub devs: Vec<String>,
    /// Human-readable: what each path reports.
    pub detail: String,
}

impl IdentityConflict {
    /// The reason to show for `dev` (one of `devs`).
    pub fn why_for(&self, dev: &str) -> String {
        let others: Vec<&str> = self
            .devs
            .iter()
            .map(String::as_str)
            .filter(|d| *d != dev)
            .collect();
        format!(
            "identity conflict with {}: WWID {} is claimed by devices that differ ({}); left out of maps",
            others.join(", "),
            self.wwid,
            self.detail
        )
    }
}

fn describe(p: &PathInfo) -> String {
    format!("{}: {} sectors {},{}", p.dev, p.size, p.vendor, p.product)
}

/// Finds WWIDs whose paths disagree on size or vendor/product. Pure; the
/// caller logs the result and leaves every listed path out of maps.
pub fn find_conflicts<'a, I>(paths: I) -> Vec<IdentityConflict>
where
    I: IntoIterator<Item = &'a PathInfo>,
{
    let mut by_wwid: BTreeMap<&str, Vec<&PathInfo>> = BTreeMap::new();
    for p in paths {
        if let Some(w) = p.wwid.as_deref() {
            by_wwid.entry(w).or_default().push(p);
        }
    }
    let mut out = Vec::new();
    for (wwid, ps) in by_wwid {
        let Some(first) = ps.first() else { continue };
        let differs = ps.iter().any(|p| {
            p.size != first.size
                || p.vendor.trim() != first.vendor.trim()
                || p.product.trim() != first.product.trim()
        });
        if differs {
            out.push(IdentityConflict {
                wwid: wwid.to_string(),
                devs: ps.iter().map(|p| p.dev.clone()).collect(),
                detail: ps
                    .iter()
                    .map(|p| describe(p))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
    }
    out
}

/// Logs conflicts at error level: a SAN presenting two LUNs with one WWID
/// would corrupt data if they were grouped, so someone must look.
pub fn log_conflicts(conflicts: &[IdentityConflict]) {
    for c in conflicts {
        tracing::error!(
            wwid = %c.wwid,
            devs = %c.devs.join(","),
            "WWID claimed by paths that differ ({}); none of them will be multipathed",
            c.detail
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn path(dev: &str, wwid: Option<&str>, size: u64, vendor: &str, product: &str) -> PathInfo {
        PathInfo {
            dev: dev.into(),
            wwid: wwid.map(str::to_string),
            size,
            vendor: vendor.into(),
            product: product.into(),
            ..PathInfo::default()
        }
    }

    #[test]
    fn udev_property_first() {
        let p = props(&[("ID_SERIAL", "36001405aaaa"), ("ID_WWN", "0x6001405")]);
        assert_eq!(
            choose_wwid(&p, "ID_SERIAL", Some("3other")).unwrap(),
            ("36001405aaaa".into(), "ID_SERIAL".into())
        );
        assert_eq!(choose_wwid(&p, "ID_WWN", None).unwrap().1, "ID_WWN");
    }

    #[test]
    fn falls_back_to_vpd_when_udev_has_not_labelled() {
        let (w, src) = choose_wwid(&props(&[]), "ID_SERIAL", Some("36001405bbbb")).unwrap();
        assert_eq!(
            (w.as_str(), src.as_str()),
            ("36001405bbbb", SOURCE_VPD_PG83)
        );
        // Empty uid_attribute: VPD only, even if ID_SERIAL is there.
        let p = props(&[("ID_SERIAL", "3udev")]);
        assert_eq!(choose_wwid(&p, "", Some("3vpd")).unwrap().0, "3vpd");
    }

    #[test]
    fn no_identity_says_why() {
        let e = choose_wwid(&props(&[("ID_SERIAL", "  ")]), "ID_SERIAL", None).unwrap_err();
        assert_eq!(
            e,
            NoWwid {
                udev: Some(("ID_SERIAL".into(), Gap::Unusable(WwidError::Empty))),
                vpd: Gap::Absent,
            }
        );
        assert_eq!(
            e.to_string(),
            "udev property ID_SERIAL is unusable (empty); no identity in VPD page 0x83"
        );
        let e = choose_wwid(&props(&[]), "SCSI_IDENT_LUN_NAA_REGEXT", Some("a/b")).unwrap_err();
        assert_eq!(e.vpd, Gap::Unusable(WwidError::ForbiddenChar('/')));
        assert_eq!(
            e.to_string(),
            "udev property SCSI_IDENT_LUN_NAA_REGEXT is not set; \
             VPD page 0x83 identity is unusable (contains '/')"
        );
        // VPD only: the udev side is not mentioned.
        let e = choose_wwid(&props(&[("ID_SERIAL", "3udev")]), "", None).unwrap_err();
        assert_eq!(e.udev, None);
        assert_eq!(e.to_string(), "no identity in VPD page 0x83");
        let mut info = path("sdb", Some("stale"), 1, "", "");
        assert!(assign_wwid(&mut info, "ID_SERIAL", None).is_err());
        assert_eq!((info.wwid, info.wwid_source), (None, None));
    }

    #[test]
    fn validate() {
        assert_eq!(validate_wwid(" 3600a0b8 \n").unwrap(), "3600a0b8");
        assert_eq!(validate_wwid(" \t"), Err(WwidError::Empty));
        assert_eq!(validate_wwid(&"3".repeat(200)), Err(WwidError::TooLong));
        assert_eq!(
            validate_wwid(&"3".repeat(MAX_WWID_LEN)).map(str::len),
            Ok(MAX_WWID_LEN)
        );
        assert_eq!(validate_wwid("36 00"), Err(WwidError::ForbiddenChar(' ')));
        assert_eq!(
            validate_wwid("36\u{7}"),
            Err(WwidError::ForbiddenChar('\u{7}'))
        );
        assert_eq!(
            WwidError::TooLong.to_string(),
            format!("longer than {MAX_WWID_LEN} bytes")
        );
        assert_eq!(WwidError::ForbiddenChar(' ').to_string(), "contains ' '");
        assert!(validate_wwid("1Linux_scsi_debug_2000").is_ok());
    }

    #[test]
    fn conflicts_on_size_or_product() {
        let ps = [
            path("sda", Some("3A"), 100, "LIO-ORG", "disk"),
            path("sdb", Some("3A"), 100, "LIO-ORG ", "disk"),
            path("sdc", Some("3B"), 100, "LIO-ORG", "disk"),
            path("sdd", Some("3B"), 200, "LIO-ORG", "disk"),
            path("sde", Some("3C"), 100, "LIO-ORG", "disk"),
            path("sdf", Some("3C"), 100, "OTHER", "disk"),
            path("sdg", None, 1, "", ""),
            path("sdh", None, 2, "", ""),
        ];
        let c = find_conflicts(&ps);
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].wwid.as_str(), c[0].devs.clone()),
            ("3B", vec!["sdc".to_string(), "sdd".into()])
        );
        assert!(c[0].detail.contains("sdd: 200 sectors"), "{}", c[0].detail);
        assert_eq!(c[1].devs, ["sde", "sdf"]);
        let why = c[0].why_for("sdc");
        assert!(
            why.starts_with("identity conflict with sdd: WWID 3B"),
            "{why}"
        );
    }
}
