//! Device-mapper multipath: the target's table/status grammar ([`target`],
//! pure), the kernel edge behind the [`DmOps`] trait ([`kernel`]: the real
//! ioctls through the `devicemapper` crate, and [`SimDm`], a deterministic
//! in-memory kernel for the policy core's tests), and dm events
//! ([`events`]).

pub mod events;
pub mod kernel;
#[cfg(test)]
pub mod sim;
pub mod target;

pub use events::{diff_events, watch, MapEvent, MapEventKind};
pub use kernel::{DmMessage, DmOps, MapInfo, RealDm};

/// A live map as the kernel reports it: its status line, whether its
/// table queues (the status does not say), and whether it is suspended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveMap {
    pub status: MultipathStatus,
    pub queue_if_no_path: Option<bool>,
    pub suspended: bool,
}
#[cfg(test)]
pub use sim::{SimDm, SimOp};
pub use target::{
    Features, GrammarError, HwHandler, MultipathStatus, MultipathTable, Selector, StatusGroup,
    StatusPath, TableGroup, TableMatch, TablePath,
};

/// Errors of the device-mapper layer. Every message names the map.
#[derive(Debug, thiserror::Error)]
pub enum DmError {
    /// /dev/mapper/control could not be opened (no dm in the kernel, or
    /// not root).
    #[error("cannot open the device-mapper control device: {0}")]
    Unavailable(String),
    #[error("{map}: device not found")]
    NotFound { map: String },
    #[error("{map}: a device with this name or uuid already exists")]
    Exists { map: String },
    /// The map is open (mounted, or a holder such as a partition or LVM).
    /// The control socket prints this as `map or partition in use`.
    #[error("{map}: map or partition in use")]
    InUse { map: String },
    /// The map is not a single multipath target.
    #[error("{map}: not a multipath map ({detail})")]
    NotMultipath { map: String, detail: String },
    /// An ioctl failed; `op` says which step.
    #[error("{map}: {op} failed: {msg}")]
    Ioctl {
        map: String,
        op: &'static str,
        msg: String,
        /// errno when the kernel returned one.
        errno: Option<i32>,
    },
    /// A multi-step change failed and was undone.
    #[error("{map}: {action} failed and was rolled back: {cause}")]
    RolledBack {
        map: String,
        action: &'static str,
        cause: Box<DmError>,
    },
    /// A multi-step change failed and undoing it failed too.
    #[error("{map}: {action} failed ({cause}); rollback failed too: {rollback}")]
    RollbackFailed {
        map: String,
        action: &'static str,
        cause: Box<DmError>,
        rollback: Box<DmError>,
    },
    #[error("{map}: {source}")]
    Grammar {
        map: String,
        #[source]
        source: GrammarError,
    },
}

impl DmError {
    /// The map the error is about, if any.
    pub fn map(&self) -> Option<&str> {
        match self {
            DmError::Unavailable(_) => None,
            DmError::NotFound { map }
            | DmError::Exists { map }
            | DmError::InUse { map }
            | DmError::NotMultipath { map, .. }
            | DmError::Ioctl { map, .. }
            | DmError::RolledBack { map, .. }
            | DmError::RollbackFailed { map, .. }
            | DmError::Grammar { map, .. } => Some(map),
        }
    }

    /// True for [`DmError::InUse`], also when it caused a rollback.
    pub fn is_in_use(&self) -> bool {
        match self {
            DmError::InUse { .. } => true,
            DmError::RolledBack { cause, .. } => cause.is_in_use(),
            _ => false,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, DmError::NotFound { .. })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_map_and_convert() {
        let e = DmError::InUse {
            map: "mpatha".into(),
        };
        assert_eq!(e.to_string(), "mpatha: map or partition in use");
        assert!(e.is_in_use());
        let rb = DmError::RolledBack {
            map: "mpatha".into(),
            action: "create",
            cause: Box::new(DmError::Ioctl {
                map: "mpatha".into(),
                op: "resume",
                msg: "EINVAL".into(),
                errno: Some(22),
            }),
        };
        assert_eq!(rb.map(), Some("mpatha"));
        // The crate error keeps the dm error whole: a reply can still tell
        // an in-use map by variant.
        let crate_err: crate::Error = rb.into();
        assert_eq!(
            crate_err.to_string(),
            "device-mapper: mpatha: create failed and was rolled back: mpatha: resume failed: EINVAL"
        );
        let in_use: crate::Error = DmError::RolledBack {
            map: "mpatha".into(),
            action: "remove",
            cause: Box::new(e),
        }
        .into();
        assert_eq!(
            crate::CommandError::from(in_use),
            crate::CommandError::InUse
        );
    }
}
