//! weightedpath: `prio_args "<hbtl|devname|serial|wwn> <regex> <prio> ..."`.
//! The first regex matching the path's identifier gives its priority.

use super::ArgsError;
use crate::model::PathInfo;

/// Priority when no regex matches (multipath-tools' DEFAULT_PRIORITY).
pub const DEFAULT_PRIORITY: i32 = 0;

/// The string weightedpath matches for an identifier kind.
pub fn weighted_key(path: &PathInfo, kind: &str) -> Result<String, ArgsError> {
    Ok(match kind {
        "hbtl" => path.hcil.map(|h| h.to_string()).unwrap_or_default(),
        "devname" => path.dev.clone(),
        "serial" => path.serial.clone().unwrap_or_default(),
        // host_wwnn:host_wwpn:target_wwnn:target_wwpn
        "wwn" => [
            &path.host_wwnn,
            &path.host_wwpn,
            &path.target_wwnn,
            &path.target_wwpn,
        ]
        .iter()
        .map(|s| s.as_deref().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(":"),
        other => return Err(ArgsError::WeightedKind(other.to_string())),
    })
}

/// Priority of `path` by weightedpath's `args`. Pairs whose regex does not
/// compile are skipped, a priority that is not a number counts as 0, as in
/// multipath-tools. Errors on a missing or unknown identifier kind.
pub fn weighted_prio(path: &PathInfo, args: &str) -> Result<i32, ArgsError> {
    let mut words = args.split_whitespace();
    let kind = words.next().ok_or(ArgsError::NoWeightedArgs)?;
    let key = weighted_key(path, kind)?;
    while let (Some(re), Some(prio)) = (words.next(), words.next()) {
        // POSIX EREs, as multipath-tools' regcomp reads them.
        if let Ok(r) = crate::config::posix::compile(re) {
            if r.is_match(&key) {
                return Ok(prio.parse().unwrap_or(0));
            }
        }
    }
    Ok(DEFAULT_PRIORITY)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::Hcil;

    fn path() -> PathInfo {
        PathInfo {
            dev: "sdc".into(),
            hcil: Some(Hcil {
                host: 3,
                channel: 0,
                target: 1,
                lun: 2,
            }),
            serial: Some("SER123".into()),
            host_wwnn: Some("0x200".into()),
            host_wwpn: Some("0x210".into()),
            target_wwnn: Some("0x500".into()),
            target_wwpn: Some("0x510".into()),
            ..Default::default()
        }
    }

    #[test]
    fn by_kind() {
        let p = path();
        assert_eq!(weighted_prio(&p, "hbtl 1:.:.:. 2 3:0:1:2 10"), Ok(10));
        assert_eq!(weighted_prio(&p, "devname sd[a-b] 5 sdc 7 sdc 9"), Ok(7));
        assert_eq!(weighted_prio(&p, "serial ^SER 4"), Ok(4));
        assert_eq!(weighted_prio(&p, "wwn 0x200:0x210:0x500:0x51.* 33"), Ok(33));
        assert_eq!(weighted_prio(&p, "devname sdx 5"), Ok(0));
        assert_eq!(weighted_prio(&p, "devname"), Ok(0));
    }

    #[test]
    fn odd_args() {
        let p = path();
        assert_eq!(weighted_prio(&p, ""), Err(ArgsError::NoWeightedArgs));
        let e = weighted_prio(&p, "label sdc 5").unwrap_err();
        assert_eq!(e, ArgsError::WeightedKind("label".into()));
        assert_eq!(
            e.to_string(),
            "weightedpath: invalid argument 'label' (want hbtl, devname, serial or wwn)"
        );
        // A broken regex is skipped, a non-numeric prio is 0.
        assert_eq!(weighted_prio(&p, "devname ( 5 sdc 6"), Ok(6));
        assert_eq!(weighted_prio(&p, "devname sdc x"), Ok(0));
        // A dangling regex without prio is ignored.
        assert_eq!(weighted_prio(&p, "devname sdc"), Ok(0));
    }
}
