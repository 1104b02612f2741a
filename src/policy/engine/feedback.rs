//! Kernel feedback: the outcome of a load or remove, and dm status.

use super::*;

impl Engine {
    pub(super) fn on_applied(
        &mut self,
        name: &str,
        ok: bool,
        removed: bool,
        dm_minor: Option<u32>,
        error: Option<String>,
    ) -> Vec<Action> {
        let Some(wwid) = self.wwid_of_map(name) else {
            return Vec::new();
        };
        let Some(m) = self.maps.get_mut(&wwid) else {
            return Vec::new();
        };
        m.applying = false;
        self.changed = true;
        // Paths may have changed while the load ran.
        self.dirty.insert(wwid.clone());
        if removed {
            if ok {
                info!(map = %name, "map removed");
                let members = m.members.clone();
                self.maps.remove(&wwid);
                self.map_wwids.remove(name);
                for d in members {
                    if let Some(p) = self.paths.get_mut(&d) {
                        p.map = None;
                        p.dm = DmPathState::Undef;
                    }
                }
            } else {
                warn!(map = %name, error = ?error, "could not remove map; it stays");
                m.remove_requested = false;
                // Not tried again until its paths change.
                m.remove_failed = true;
                self.held.remove(&wwid);
            }
            return Vec::new();
        }
        let before_reload = m.before_reload.take();
        if !ok {
            warn!(map = %name, error = ?error, "map load failed");
            if !m.in_kernel {
                // Forget the failed create.
                m.table = None;
            } else if let Some((table, groups, size)) = before_reload {
                // The old table is still live: messages and the next
                // compare go by it, so the reload is issued again.
                m.table = table;
                m.groups = groups;
                m.size = size;
            }
            // Retry a check interval later (a path's state may change
            // meanwhile), not at once on the next event.
            m.retry_at_ms =
                Some(self.now_ms + u64::from(self.defaults.polling_interval.max(1)) * 1000);
            return Vec::new();
        }
        let created = !m.in_kernel;
        m.in_kernel = true;
        m.retry_at_ms = None;
        m.stats.map_loads += 1;
        if dm_minor.is_some() {
            m.dm_minor = dm_minor;
        }
        m.queue.loaded(m.settings.no_path_retry);
        // After a load the kernel has every path active: fail those the
        // checker knows are down.
        let members = m.members.clone();
        let map_name = m.name.clone();
        let mut actions = Vec::new();
        if created {
            let unclaimed = members.iter().filter(|d| {
                self.paths
                    .get(d.as_str())
                    .is_none_or(|p| !claimed_by_udev(&p.info.properties))
            });
            actions.extend(unclaimed.map(|d| Action::TriggerUevent { dev: d.clone() }));
        }
        for d in members {
            if let Some(p) = self.paths.get_mut(&d) {
                p.dm = DmPathState::Active;
                if matches!(p_state_kind(p.chk), StateKind::Bad) {
                    if let Some(devt) = p.info.devt {
                        actions.push(Action::Message {
                            map: map_name.clone(),
                            msg: DmMessage::FailPath(devt),
                        });
                        p.dm = DmPathState::Failed;
                    }
                }
            }
        }
        actions.extend(self.update_queueing(&wwid));
        actions
    }

    pub(super) fn on_status(
        &mut self,
        name: &str,
        paths: &[(DevT, bool)],
        pg_states: Vec<PgState>,
        active_group: Option<usize>,
        queue_if_no_path: Option<bool>,
        suspended: bool,
    ) -> Vec<Action> {
        let now = self.now_ms;
        let Some(wwid) = self.wwid_of_map(name) else {
            return Vec::new();
        };
        let Some(m) = self.maps.get_mut(&wwid) else {
            return Vec::new();
        };
        m.pg_states = pg_states;
        m.active_group = active_group;
        m.suspended = suspended;
        if let Some(q) = queue_if_no_path {
            if !q && m.queue.mode == Queueing::On {
                m.queue.mode = Queueing::Off;
            }
        }
        let map_name = m.name.clone();
        m.adopted_dm = paths.iter().copied().collect();
        let has_members = !m.members.is_empty();
        let members = m.members.clone();
        self.changed = true;
        let mut faults = 0;
        let mut moved = false;
        for (devt, active) in paths {
            let Some(p) = members
                .iter()
                .find(|d| {
                    self.paths
                        .get(*d)
                        .is_some_and(|p| p.info.devt == Some(*devt))
                })
                .cloned()
                .and_then(|d| self.paths.get_mut(&d))
            else {
                continue;
            };
            if p.map.as_deref() != Some(map_name.as_str()) {
                continue;
            }
            let new = if *active {
                DmPathState::Active
            } else {
                DmPathState::Failed
            };
            if p.dm == DmPathState::Active && new == DmPathState::Failed {
                // The kernel failed it on an I/O error: check it now.
                warn!(path = %p.info.dev, map = %map_name, "kernel failed path");
                faults += 1;
                p.next_check_ms = now;
                self.next_due_ms = self.next_due_ms.min(now);
                if p.chk.is_usable() {
                    p.chk = ChkState::Down;
                }
            }
            moved |= p.dm != new;
            p.dm = new;
        }
        self.urgent |= moved;
        if let Some(m) = self.maps.get_mut(&wwid) {
            m.stats.path_faults += faults;
        }
        if !has_members {
            // Adopted at start-up, paths not discovered yet.
            return Vec::new();
        }
        self.update_queueing(&wwid)
    }
}

/// Whether udev's rules already claimed a path for multipath
/// (`DM_MULTIPATH_DEVICE_PATH=1`, not in find_multipaths' "maybe" wait).
/// Such a path needs no change uevent when its map is created: one per
/// path would only make udev run every rule again (at start-up, one for
/// every path of the SAN), as multipathd's trigger_paths_udev_change
/// also skips them.
fn claimed_by_udev(props: &std::collections::BTreeMap<String, String>) -> bool {
    props.get("DM_MULTIPATH_DEVICE_PATH").map(String::as_str) == Some("1")
        && props
            .get("FIND_MULTIPATHS_WAIT_UNTIL")
            .is_none_or(|w| w == "0")
}
