//! dm events: which maps changed (path failed or reinstated, group
//! switched, map created or removed).
//!
//! The kernel bumps a device's event_nr and a global counter on every dm
//! event, and /dev/mapper/control polls readable once the global counter
//! moved past the value recorded by the last `DM_DEV_ARM_POLL`. So: wait
//! for readability on our own control fd (tokio `AsyncFd`), re-arm, list
//! every device with its event_nr and diff against the previous list.
//! Arming before listing means an event during the list wakes us again.

use std::collections::BTreeMap;

use devicemapper::DM;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::DmError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapEventKind {
    /// The map's event counter moved (path failed/reinstated, group
    /// switched or bypassed, table swapped...).
    Changed,
    /// A device appeared.
    Appeared,
    /// A device went away.
    Removed,
}

/// One device-mapper device that changed. Every dm device is reported, not
/// only multipath maps: the consumer ignores names it does not manage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEvent {
    pub name: String,
    pub kind: MapEventKind,
    /// The device's event counter now (0 for Removed).
    pub event_nr: u32,
}

/// What changed between two `name -> event_nr` listings, in name order.
pub fn diff_events(prev: &BTreeMap<String, u32>, now: &BTreeMap<String, u32>) -> Vec<MapEvent> {
    let mut events: Vec<MapEvent> = now
        .iter()
        .filter_map(|(name, &nr)| {
            let kind = match prev.get(name) {
                None => MapEventKind::Appeared,
                Some(&old) if old != nr => MapEventKind::Changed,
                Some(_) => return None,
            };
            Some(MapEvent {
                name: name.clone(),
                kind,
                event_nr: nr,
            })
        })
        .collect();
    events.extend(
        prev.keys()
            .filter(|name| !now.contains_key(*name))
            .map(|name| MapEvent {
                name: name.clone(),
                kind: MapEventKind::Removed,
                event_nr: 0,
            }),
    );
    events.sort_by(|a, b| a.name.cmp(&b.name));
    events
}

fn listing(dm: &DM) -> Result<BTreeMap<String, u32>, DmError> {
    let devices = dm.list_devices().map_err(|e| DmError::Ioctl {
        map: "(all)".to_string(),
        op: "list devices",
        msg: e.to_string(),
        errno: None,
    })?;
    Ok(devices
        .into_iter()
        .map(|(name, _, nr)| (name.to_string(), nr.unwrap_or(0)))
        .collect())
}

fn arm(dm: &DM) -> Result<(), DmError> {
    dm.arm_poll().map(|_| ()).map_err(|e| DmError::Ioctl {
        map: "(all)".to_string(),
        op: "arm poll",
        msg: e.to_string(),
        errno: None,
    })
}

/// Start watching for dm events on the current tokio runtime. Changed maps
/// arrive on the returned channel (`buffer` deep; the watcher waits when
/// it is full, and the kernel's counters make sure nothing is lost, only
/// merged). The task ends when the receiver is dropped or the control
/// device fails (logged).
pub fn watch(buffer: usize) -> Result<(JoinHandle<()>, mpsc::Receiver<MapEvent>), DmError> {
    // Our own fd: the armed event number is per open file.
    let dm = DM::new().map_err(|e| DmError::Unavailable(e.to_string()))?;
    arm(&dm)?;
    let mut last = listing(&dm)?;
    // SAFETY: `DM` owns the control device's `File` and nothing closes or
    // replaces that fd while the `AsyncFd` holds it.
    let afd = unsafe { AsyncFd::register_with_interest(dm, Interest::READABLE) }
        .map_err(|e| DmError::Unavailable(format!("cannot poll the control device: {e}")))?;
    let (tx, rx) = mpsc::channel(buffer.max(1));
    let task = tokio::spawn(async move {
        loop {
            match afd.readable().await {
                Ok(mut guard) => guard.clear_ready(),
                Err(e) => {
                    tracing::error!("dm events: polling the control device failed: {e}");
                    return;
                }
            }
            let now = match arm(afd.get_ref()).and_then(|()| listing(afd.get_ref())) {
                Ok(now) => now,
                Err(e) => {
                    tracing::error!("dm events: {e}");
                    return;
                }
            };
            for ev in diff_events(&last, &now) {
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            last = now;
        }
    });
    Ok((task, rx))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(n, e)| (n.to_string(), *e)).collect()
    }

    #[test]
    fn diff_reports_changes_appearances_and_removals() {
        let prev = m(&[("a", 1), ("b", 4), ("gone", 2)]);
        let now = m(&[("a", 1), ("b", 6), ("new", 0)]);
        let ev = diff_events(&prev, &now);
        assert_eq!(
            ev,
            vec![
                MapEvent {
                    name: "b".into(),
                    kind: MapEventKind::Changed,
                    event_nr: 6
                },
                MapEvent {
                    name: "gone".into(),
                    kind: MapEventKind::Removed,
                    event_nr: 0
                },
                MapEvent {
                    name: "new".into(),
                    kind: MapEventKind::Appeared,
                    event_nr: 0
                },
            ]
        );
        assert!(diff_events(&now, &now).is_empty());
    }
}
