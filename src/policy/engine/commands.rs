//! Operator commands from the control socket.

use super::*;

impl Engine {
    /// Operator commands. Returns the reply text and the actions to run.
    pub fn command(&mut self, cmd: MapCommand, now_ms: u64) -> (Result<(), String>, Vec<Action>) {
        self.now_ms = self.now_ms.max(now_ms);
        let mut actions = Vec::new();
        let res = match cmd {
            MapCommand::FailPath(dev) | MapCommand::ReinstatePath(dev)
                if !self.paths.contains_key(&dev) =>
            {
                Err("device not found".to_string())
            }
            MapCommand::FailPath(dev) => {
                let Some(p) = self.paths.get_mut(&dev) else {
                    return (Err("device not found".into()), actions);
                };
                p.chk = ChkState::Down;
                p.next_check_ms = self.now_ms + u64::from(p.interval_s) * 1000;
                if let (Some(map), Some(devt)) = (p.map.as_deref().map(str::to_string), p.info.devt)
                {
                    p.dm = DmPathState::Failed;
                    actions.push(Action::Message {
                        map,
                        msg: format!("fail_path {devt}"),
                    });
                }
                Ok(())
            }
            MapCommand::ReinstatePath(dev) => {
                let Some(p) = self.paths.get_mut(&dev) else {
                    return (Err("device not found".into()), actions);
                };
                p.next_check_ms = self.now_ms;
                if let (Some(map), Some(devt)) = (p.map.as_deref().map(str::to_string), p.info.devt)
                {
                    p.dm = DmPathState::Active;
                    p.chk = ChkState::Up;
                    actions.push(Action::Message {
                        map,
                        msg: format!("reinstate_path {devt}"),
                    });
                }
                Ok(())
            }
            MapCommand::SwitchGroup { map, group } => match self.find_map_mut(&map) {
                Some(m) if group >= 1 && group <= m.groups.len().max(1) => {
                    m.stats.switch_grp += 1;
                    actions.push(Action::Message {
                        map: m.name.clone(),
                        msg: format!("switch_group {group}"),
                    });
                    Ok(())
                }
                Some(_) => Err(format!("invalid path group {group}")),
                None => Err("device not found".into()),
            },
            MapCommand::DisableQueueing(target) | MapCommand::RestoreQueueing(target)
                if target
                    .as_ref()
                    .is_some_and(|t| self.find_map_mut(t).is_none()) =>
            {
                Err("device not found".into())
            }
            MapCommand::DisableQueueing(target) => {
                for m in self.maps.values_mut() {
                    if target.as_ref().is_none_or(|t| &m.name == t || &m.wwid == t) {
                        m.queue.disable();
                        actions.push(Action::Message {
                            map: m.name.clone(),
                            msg: "fail_if_no_path".into(),
                        });
                    }
                }
                Ok(())
            }
            MapCommand::RestoreQueueing(target) => {
                for m in self.maps.values_mut() {
                    let named = target.as_ref().is_none_or(|t| &m.name == t || &m.wwid == t);
                    if named && m.queue.restore(m.settings.no_path_retry) {
                        actions.push(Action::Message {
                            map: m.name.clone(),
                            msg: "queue_if_no_path".into(),
                        });
                    }
                }
                Ok(())
            }
            MapCommand::RemoveMap(name) => match self.find_map_mut(&name) {
                Some(m) => {
                    m.remove_requested = true;
                    Ok(())
                }
                None => Err("device not found".into()),
            },
            MapCommand::RemoveAllMaps => {
                for m in self.maps.values_mut() {
                    m.remove_requested = true;
                }
                Ok(())
            }
            MapCommand::ReloadMap(name) | MapCommand::AddMap(name) => {
                let has_paths = self
                    .paths
                    .values()
                    .any(|p| p.info.wwid.as_deref() == Some(name.as_str()));
                match self.find_map_mut(&name) {
                    Some(m) => {
                        // Forget the loaded table so reconcile reloads it,
                        // now, even during a failed load's back-off.
                        m.params = Some(String::new());
                        m.retry_at_ms = None;
                        Ok(())
                    }
                    None if has_paths => {
                        self.wwids.insert(name.clone());
                        actions.push(Action::AddWwid(name));
                        Ok(())
                    }
                    None => Err("device not found".into()),
                }
            }
            MapCommand::DelPath(dev) => {
                if self.paths.remove(&dev).is_some() {
                    for m in self.maps.values_mut() {
                        m.members.retain(|d| d != &dev);
                    }
                    Ok(())
                } else {
                    Err("device not found".into())
                }
            }
            MapCommand::ResetStats(target) => {
                for m in self.maps.values_mut() {
                    if target.as_ref().is_none_or(|t| &m.name == t || &m.wwid == t) {
                        m.stats = MapStats::default();
                    }
                }
                Ok(())
            }
        };
        if res.is_ok() {
            self.full_dirty = true;
            self.changed = true;
            actions.extend(self.reconcile());
        }
        (res, actions)
    }
}
