//! mpathd: a Linux device-mapper multipath daemon.
//!
//! Layout (kernel edge thin and behind traits, policy pure):
//! - [`model`]: shared domain types (paths, maps, states, resolved settings).
//! - [`config`]: multipath.conf / TOML parsing, built-in hardware table,
//!   precedence resolution into [`model::Settings`].
//! - [`discovery`]: udev coldplug/monitor, sysfs attributes, path identity,
//!   blacklists and find_multipaths.
//! - [`scsi`]: SG_IO commands (TUR, INQUIRY/VPD, REPORT TARGET PORT GROUPS).
//! - [`checker`]: path checkers run off the async runtime with timeouts.
//! - [`prio`]: prioritizers (const, alua, sysfs, weightedpath, ...).
//! - [`transport`]: iSCSI/FC/SAS timeouts multipathd sets on a map's paths.
//! - [`dm`]: the multipath target's table/status grammar (pure) and the
//!   device-mapper kernel interface (devicemapper crate) and dm events.
//! - [`policy`]: the pure core: events in, actions out, snapshots for queries.
//! - [`daemon`]: the run loop and the executor that applies actions.
//! - [`ipc`]: the multipathd control socket, command language and output
//!   formats; [`client`]: `mpathd -k` and mpathutil.

pub mod checker;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod discovery;
pub mod dm;
pub mod error;
pub mod ipc;
pub mod model;
pub mod multipath;
pub mod policy;
pub mod pr;
pub mod prio;
pub mod scsi;
pub mod transport;

pub use error::{CommandError, Error, Result};
