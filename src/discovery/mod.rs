//! Path discovery: the daemon's view of every SCSI path, its identity, and
//! whether it should be multipathed.
//!
//! - [`sysfs`] reads one path's attributes (configurable sysfs root);
//!   [`vpd`] parses INQUIRY / VPD 0x80 / 0x83 data.
//! - [`identity`] picks the WWID (uid_attribute, else VPD 0x83) and finds
//!   paths that claim one WWID but differ.
//! - [`filter`] decides, purely, which paths are multipathed and why
//!   (blacklists through [`crate::model::PathFilter`], find_multipaths);
//!   [`wwids`] keeps the wwids file.
//! - [`coalesce`] merges and batches device events (pure);
//!   [`udev`] is the kernel edge (coldplug + netlink monitor) and
//!   [`sim`] a simulated source for tests, both behind [`PathSource`].

pub mod claim;
pub mod coalesce;
pub mod filter;
pub mod identity;
#[cfg(test)]
pub mod sim;
pub mod sysfs;
pub mod udev;
pub mod udevdb;
pub mod vpd;
pub mod wwids;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::model::PathInfo;
use crate::Result;

pub use coalesce::{BatchWindow, Batcher, Coalescer, DevEvent};
pub use filter::{decide, Candidate, Decision, KnownWwids, Verdict, WwidsKnown};
pub use identity::{find_conflicts, IdentityConflict};
#[cfg(test)]
pub use sim::{SimPathSource, SimSan};
pub use sysfs::SysfsRoot;
pub use udev::{UdevConfig, UdevPathSource};
pub use wwids::{Wwids, WwidsFile};

/// One change to the set of paths.
///
/// `Add` means "new to you" and `Change` "refreshed": the sources keep track
/// of what they delivered, so an `Add` never names a path the consumer
/// already has (a udev `add` for a known device arrives as `Change`) and a
/// `Change` never names an unknown one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathEvent {
    Add(PathInfo),
    Change(PathInfo),
    /// Kernel name of the path that went away.
    Remove(String),
}

impl PathEvent {
    pub fn dev(&self) -> &str {
        match self {
            PathEvent::Add(i) | PathEvent::Change(i) => &i.dev,
            PathEvent::Remove(d) => d,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchKind {
    /// Every path present at start (all `Add`).
    Coldplug,
    /// Coalesced uevents.
    Uevents,
    /// The event stream overflowed and was rebuilt from sysfs: events bring
    /// the consumer's set back in line with what exists.
    Resync,
}

/// What discovery noticed about one path besides its [`PathInfo`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathNotes {
    /// Why the path has no WWID (when `wwid` is None).
    pub identity_error: Option<identity::NoWwid>,
    /// Attributes that were missing or garbled, with reasons.
    pub problems: Vec<String>,
}

/// Events delivered together so the policy can turn a storm into one table
/// load per map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathBatch {
    pub kind: BatchKind,
    pub events: Vec<PathEvent>,
    /// Notes for paths in `events` that have any.
    pub notes: BTreeMap<String, PathNotes>,
}

impl PathBatch {
    pub fn new(kind: BatchKind) -> Self {
        PathBatch {
            kind,
            events: Vec::new(),
            notes: BTreeMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Which udev property names a path's WWID (resolved per path by the
/// configuration: `uid_attribute`, ID_SERIAL by default).
pub type UidAttributeFn = Arc<dyn Fn(&PathInfo) -> String + Send + Sync>;

/// The default: ID_SERIAL for every path.
pub fn default_uid_attribute() -> UidAttributeFn {
    Arc::new(|_| "ID_SERIAL".to_string())
}

/// The kernel edge of discovery, narrow so the policy core can be driven
/// by [`SimPathSource`] in tests.
pub trait PathSource: Send + Sync {
    /// Starts delivering batches. The first batch is the coldplug
    /// ([`BatchKind::Coldplug`]): every path present now. Later batches are
    /// coalesced events. Needs a tokio runtime. The stream ends when the
    /// receiver is dropped.
    fn start(&self) -> Result<mpsc::Receiver<PathBatch>>;

    /// Reads one path now (e.g. `add path sdX`, or re-identification after
    /// a reconfigure changed uid_attribute).
    fn read_path(&self, dev: &str) -> Result<(PathInfo, PathNotes)>;
}

/// Kernel name of the `index`-th SCSI disk: sda..sdz, sdaa..sdzz, sdaaa...
pub fn sd_name(index: usize) -> String {
    let mut n = index;
    let mut letters = Vec::new();
    loop {
        letters.push(b'a' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    letters.reverse();
    format!("sd{}", String::from_utf8_lossy(&letters))
}
