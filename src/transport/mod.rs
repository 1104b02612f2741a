//! Transport timeouts: how fast the SCSI transport gives up on a path so
//! that dm-multipath can fail I/O over to another one.
//!
//! Without these writes a cut iSCSI link holds I/O for open-iscsi's
//! `replacement_timeout` (120 s by default) before the path fails, however
//! quickly the daemon's checker sees it. multipath-tools writes the map's
//! `fast_io_fail_tmo` into the session's `recovery_tmo`, and likewise the FC
//! remote port's and SAS end device's timeouts; this module decides the
//! same writes (pure: [`plan`]) and [`sysfs::SysfsTransport`] applies them.

pub mod net;
pub mod sysfs;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{NoPathRetry, Tmo};

/// The kernel's limit for dev_loss_tmo while fast_io_fail_tmo is off
/// (SCSI_DEVICE_BLOCK_MAX_TIMEOUT).
pub const DEV_LOSS_CAP_WITHOUT_FAST_IO_FAIL: u32 = 600;

/// `dev_loss_tmo infinity`.
pub const DEV_LOSS_INFINITY: u32 = u32::MAX;

/// Where a path's transport timeouts live in sysfs, by class device name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `/sys/class/iscsi_session/sessionN`.
    Iscsi { session: String },
    /// `/sys/class/fc_remote_ports/rport-H:C-N`.
    Fc { rport: String },
    /// `/sys/class/sas_end_device/end_device-H:P[:E]`.
    Sas { end_device: String },
}

impl Endpoint {
    /// The endpoint named by one component of a SCSI device's sysfs path
    /// (`session3`, `rport-5:0-2`, `end_device-0:0`).
    pub fn from_path_component(name: &str) -> Option<Endpoint> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        let ids = |s: &str, seps: &[char]| {
            !s.is_empty() && s.split(seps).all(digits) && !s.ends_with(seps)
        };
        if let Some(n) = name.strip_prefix("session") {
            return digits(n).then(|| Endpoint::Iscsi {
                session: name.to_string(),
            });
        }
        if let Some(n) = name.strip_prefix("rport-") {
            return ids(n, &[':', '-']).then(|| Endpoint::Fc {
                rport: name.to_string(),
            });
        }
        if let Some(n) = name.strip_prefix("end_device-") {
            return ids(n, &[':']).then(|| Endpoint::Sas {
                end_device: name.to_string(),
            });
        }
        None
    }
}

/// One attribute write.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Write {
    /// iSCSI session `recovery_tmo` (open-iscsi's replacement_timeout).
    SessionRecoveryTmo {
        session: String,
        secs: u32,
    },
    /// FC remote port `dev_loss_tmo` raised to `secs` if it is lower: the
    /// kernel refuses a fast_io_fail_tmo not below the current dev_loss_tmo.
    RportDevLossAtLeast {
        rport: String,
        secs: u32,
    },
    RportFastIoFail {
        rport: String,
        value: Tmo,
    },
    RportDevLoss {
        rport: String,
        secs: u32,
    },
    /// SAS end device `I_T_nexus_loss_timeout`, given dev_loss_tmo's value
    /// as multipathd gives it.
    SasNexusLoss {
        end_device: String,
        secs: u32,
    },
    /// SCSI host `eh_deadline`.
    HostEhDeadline {
        host: u32,
        value: Tmo,
    },
}

impl Write {
    /// The attribute, relative to the sysfs root, and the value written.
    pub fn attribute(&self) -> (String, String) {
        match self {
            Write::SessionRecoveryTmo { session, secs } => (
                format!("class/iscsi_session/{session}/recovery_tmo"),
                secs.to_string(),
            ),
            Write::RportDevLossAtLeast { rport, secs } | Write::RportDevLoss { rport, secs } => (
                format!("class/fc_remote_ports/{rport}/dev_loss_tmo"),
                secs.to_string(),
            ),
            Write::RportFastIoFail { rport, value } => (
                format!("class/fc_remote_ports/{rport}/fast_io_fail_tmo"),
                value.to_string(),
            ),
            Write::SasNexusLoss { end_device, secs } => (
                format!("class/sas_end_device/{end_device}/I_T_nexus_loss_timeout"),
                secs.to_string(),
            ),
            Write::HostEhDeadline { host, value } => (
                format!("class/scsi_host/host{host}/eh_deadline"),
                value.to_string(),
            ),
        }
    }
}

impl fmt::Display for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (attr, value) = self.attribute();
        match self {
            Write::RportDevLossAtLeast { .. } => write!(f, "{attr}>={value}"),
            _ => write!(f, "{attr}={value}"),
        }
    }
}

/// What a path's settings ask of its transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutSettings {
    /// None: `fast_io_fail_tmo off`.
    pub fast_io_fail: Option<u32>,
    /// None: not set (left as the transport has it).
    pub dev_loss: Option<u32>,
    /// None: not set.
    pub eh_deadline: Option<Tmo>,
    /// The map's no_path_retry, which dev_loss_tmo must outlast.
    pub no_path_retry: NoPathRetry,
    pub polling_interval: u32,
}

/// The writes for one path, and what was decided on the way (values
/// raised, switched off or not applicable), for logs and `show paths
/// reasons`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub writes: Vec<Write>,
    pub notes: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.notes.is_empty()
    }
}

/// The writes multipathd makes for a path of a map (its
/// `sysfs_set_scsi_tmo` rules): dev_loss_tmo outlasts no_path_retry
/// (N x polling_interval, or infinity while queueing), fast_io_fail_tmo is
/// switched off when it is not below dev_loss_tmo, iSCSI takes
/// fast_io_fail_tmo as the session's recovery_tmo and has no dev_loss_tmo,
/// and SAS takes dev_loss_tmo as the I_T nexus loss timeout.
pub fn plan(s: &TimeoutSettings, host: Option<u32>, endpoint: Option<&Endpoint>) -> Plan {
    let mut p = Plan::default();
    if let (Some(value), Some(host)) = (s.eh_deadline, host) {
        p.writes.push(Write::HostEhDeadline { host, value });
    }
    let Some(endpoint) = endpoint else {
        if s.dev_loss.is_some() || s.fast_io_fail.is_some() {
            p.notes.push(
                "no iSCSI session, FC remote port or SAS end device: transport timeouts not set"
                    .into(),
            );
        }
        return p;
    };
    let min_dev_loss = match s.no_path_retry {
        NoPathRetry::Retries(n) => {
            let t = u64::from(n) * u64::from(s.polling_interval.max(1));
            u32::try_from(t).unwrap_or(DEV_LOSS_INFINITY)
        }
        NoPathRetry::Queue => DEV_LOSS_INFINITY,
        NoPathRetry::Fail => 0,
    };
    let mut dev_loss = s.dev_loss;
    if let Some(d) = dev_loss.filter(|&d| d < min_dev_loss) {
        p.notes.push(format!(
            "dev_loss_tmo {d} raised to {} to outlast no_path_retry {}",
            show_dev_loss(min_dev_loss),
            s.no_path_retry
        ));
        dev_loss = Some(min_dev_loss);
    }
    let mut fast_io_fail = s.fast_io_fail;
    if let (Some(f), Some(d)) = (fast_io_fail, dev_loss) {
        if f > 0 && f >= d {
            p.notes.push(format!(
                "fast_io_fail_tmo {f} switched off: not below dev_loss_tmo {}",
                show_dev_loss(d)
            ));
            fast_io_fail = None;
        }
    }
    match endpoint {
        Endpoint::Iscsi { session } => {
            if dev_loss.is_some() {
                p.notes.push("dev_loss_tmo does not apply to iSCSI".into());
            }
            match fast_io_fail {
                None => p
                    .notes
                    .push("fast_io_fail_tmo off: iSCSI recovery_tmo left as it is".into()),
                Some(0) => p.notes.push(
                    "fast_io_fail_tmo 0: iSCSI recovery_tmo cannot be 0, left as it is".into(),
                ),
                Some(secs) => p.writes.push(Write::SessionRecoveryTmo {
                    session: session.clone(),
                    secs,
                }),
            }
        }
        Endpoint::Fc { rport } => plan_fc(&mut p, rport, fast_io_fail, dev_loss, s.no_path_retry),
        Endpoint::Sas { end_device } => {
            if let Some(secs) = dev_loss {
                p.writes.push(Write::SasNexusLoss {
                    end_device: end_device.clone(),
                    secs,
                });
            }
        }
    }
    p
}

/// FC order matters: the kernel caps dev_loss_tmo at 600 s while
/// fast_io_fail_tmo is off, and refuses a fast_io_fail_tmo not below the
/// current dev_loss_tmo. So raise dev_loss_tmo past fast_io_fail_tmo
/// first, then set fast_io_fail_tmo, then the final dev_loss_tmo.
fn plan_fc(
    p: &mut Plan,
    rport: &str,
    fast_io_fail: Option<u32>,
    mut dev_loss: Option<u32>,
    no_path_retry: NoPathRetry,
) {
    let rport = rport.to_string();
    match fast_io_fail {
        Some(f) if f > 0 => p.writes.push(Write::RportDevLossAtLeast {
            rport: rport.clone(),
            secs: f.saturating_add(1),
        }),
        _ => {
            if let Some(d) = dev_loss.filter(|&d| {
                d > DEV_LOSS_CAP_WITHOUT_FAST_IO_FAIL && no_path_retry != NoPathRetry::Queue
            }) {
                p.notes.push(format!(
                    "dev_loss_tmo {} limited to {DEV_LOSS_CAP_WITHOUT_FAST_IO_FAIL}: fast_io_fail_tmo is not set",
                    show_dev_loss(d)
                ));
                dev_loss = Some(DEV_LOSS_CAP_WITHOUT_FAST_IO_FAIL);
            }
        }
    }
    p.writes.push(Write::RportFastIoFail {
        rport: rport.clone(),
        value: match fast_io_fail {
            None => Tmo::Off,
            Some(f) => Tmo::Secs(f),
        },
    });
    if let Some(secs) = dev_loss {
        p.writes.push(Write::RportDevLoss { rport, secs });
    }
}

fn show_dev_loss(d: u32) -> String {
    if d == DEV_LOSS_INFINITY {
        "infinity".into()
    } else {
        d.to_string()
    }
}

/// What became of one write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Written,
    /// Nothing to do (the value already satisfied the write).
    Unchanged,
    /// The attribute is not there (session gone, driver without it).
    Missing,
    /// The kernel refused the value, with its error.
    Refused(String),
}

/// A plan's writes with their outcomes, for the path's reasons.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub done: Vec<(Write, Outcome)>,
    pub notes: Vec<String>,
}

impl fmt::Display for Report {
    /// `recovery_tmo=5 on iscsi_session/session1 (written); ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { "; " };
            first = false;
            f.write_str(s)
        };
        for (w, o) in &self.done {
            sep(f)?;
            match o {
                Outcome::Written => write!(f, "wrote {w}")?,
                Outcome::Unchanged => write!(f, "kept {w}")?,
                Outcome::Missing => write!(f, "could not write {w}: no such attribute")?,
                Outcome::Refused(e) => write!(f, "could not write {w}: {e}")?,
            }
        }
        for n in &self.notes {
            sep(f)?;
            f.write_str(n)?;
        }
        Ok(())
    }
}

/// Applies a plan's writes (the kernel edge).
pub trait TransportWriter: Send + Sync {
    fn apply(&self, plan: &Plan) -> Report;
    /// Ask udev to run its rules for a block device again (a `change`
    /// uevent), e.g. so a path of a new map is claimed.
    fn trigger_change(&self, dev: &str) -> std::io::Result<()>;
}

#[cfg(test)]
mod tests;
