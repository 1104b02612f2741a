//! Writes transport timeouts into sysfs (the kernel edge of [`super`]).

use std::fs;
use std::io::{self, Write as _};
use std::path::PathBuf;

use tracing::{debug, info, warn};

use super::{Outcome, Plan, Report, TransportWriter, Write};

/// The real writer, rooted at `/sys` (or a fake tree in tests).
pub struct SysfsTransport {
    root: PathBuf,
}

impl SysfsTransport {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SysfsTransport { root: root.into() }
    }

    fn write_one(&self, w: &Write) -> Outcome {
        let (attr, value) = w.attribute();
        let path = self.root.join(&attr);
        if let Write::RportDevLossAtLeast { secs, .. } = w {
            match read_u32(&path) {
                Ok(Some(cur)) if cur >= *secs => return Outcome::Unchanged,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Outcome::Missing,
                Err(e) => return Outcome::Refused(e.to_string()),
            }
        }
        match write_attr(&path, &value) {
            Ok(()) => Outcome::Written,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::Missing,
            Err(e) => Outcome::Refused(e.to_string()),
        }
    }
}

/// A sysfs attribute takes one write of the whole value; a value the
/// kernel refuses comes back as the write's error (EINVAL, EBUSY).
fn write_attr(path: &std::path::Path, value: &str) -> io::Result<()> {
    // O_TRUNC is a no-op on sysfs and keeps a fake tree's file exact.
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(value.as_bytes())
}

fn read_u32(path: &std::path::Path) -> io::Result<Option<u32>> {
    Ok(fs::read_to_string(path)?.trim().parse().ok())
}

impl TransportWriter for SysfsTransport {
    fn apply(&self, plan: &Plan) -> Report {
        let mut done = Vec::with_capacity(plan.writes.len());
        for w in &plan.writes {
            let o = self.write_one(w);
            match &o {
                Outcome::Written => info!(write = %w, "transport timeout set"),
                Outcome::Unchanged => debug!(write = %w, "transport timeout already satisfied"),
                Outcome::Missing => warn!(write = %w, "transport attribute not found"),
                Outcome::Refused(e) => {
                    warn!(write = %w, error = %e, "kernel refused transport timeout")
                }
            }
            // The final FC dev_loss_tmo must not be written after a failed
            // raise-then-set sequence left fast_io_fail_tmo unset: the
            // kernel would cap or refuse it anyway, and the reason says so.
            let stop = matches!(w, Write::RportDevLossAtLeast { .. })
                && matches!(o, Outcome::Missing | Outcome::Refused(_));
            done.push((w.clone(), o));
            if stop {
                break;
            }
        }
        Report {
            done,
            notes: plan.notes.clone(),
        }
    }

    fn trigger_change(&self, dev: &str) -> io::Result<()> {
        write_attr(
            &self.root.join("class/block").join(dev).join("uevent"),
            "change",
        )
    }
}
