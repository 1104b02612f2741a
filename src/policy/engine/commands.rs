//! Operator commands from the control socket: one method per command,
//! each answering with the actions to run or why it cannot be done.

use super::*;
use crate::CommandError;

type Answer = Result<Vec<Action>, CommandError>;

impl Engine {
    /// Operator commands. Returns the outcome and the actions to run.
    pub fn command(
        &mut self,
        cmd: MapCommand,
        now_ms: u64,
    ) -> (Result<(), CommandError>, Vec<Action>) {
        self.now_ms = self.now_ms.max(now_ms);
        let res = match cmd {
            MapCommand::FailPath(dev) => self.fail_path(&dev),
            MapCommand::ReinstatePath(dev) => self.reinstate_path(&dev),
            MapCommand::SwitchGroup { map, group } => self.switch_group(&map, group),
            MapCommand::DisableQueueing(target) => self.disable_queueing(target.as_deref()),
            MapCommand::RestoreQueueing(target) => self.restore_queueing(target.as_deref()),
            MapCommand::RemoveMap(name) => self.remove_map(&name),
            MapCommand::RemoveAllMaps => self.remove_all_maps(),
            MapCommand::ReloadMap(name) | MapCommand::AddMap(name) => self.reload_map(name),
            MapCommand::DelPath(dev) => self.del_path(&dev),
            MapCommand::ResetStats(target) => self.reset_stats(target.as_deref()),
            MapCommand::SetPrStatus { map, registered } => self.set_pr_status(&map, &registered),
            MapCommand::UnsetPrStatus(map) => self.unset_pr_status(&map),
            MapCommand::SetPrKey { map, key } => self.set_pr_key(&map, key),
        };
        match res {
            Ok(mut actions) => {
                self.full_dirty = true;
                self.changed = true;
                actions.extend(self.reconcile());
                (Ok(()), actions)
            }
            Err(e) => (Err(e), Vec::new()),
        }
    }

    fn fail_path(&mut self, dev: &str) -> Answer {
        let now = self.now_ms;
        let p = self.paths.get_mut(dev).ok_or(CommandError::NotFound)?;
        p.chk = ChkState::Down;
        // As a failed check: its registration is checked when it is back.
        p.pr_synced = false;
        p.next_check_ms = now + u64::from(p.interval_s) * 1000;
        self.next_due_ms = self.next_due_ms.min(p.next_check_ms);
        let mut actions = Vec::new();
        if let (Some(map), Some(devt)) = (p.map.as_deref().map(str::to_string), p.info.devt) {
            p.dm = DmPathState::Failed;
            actions.push(Action::Message {
                map,
                msg: DmMessage::FailPath(devt),
            });
        }
        Ok(actions)
    }

    fn reinstate_path(&mut self, dev: &str) -> Answer {
        let now = self.now_ms;
        let p = self.paths.get_mut(dev).ok_or(CommandError::NotFound)?;
        p.next_check_ms = now;
        self.next_due_ms = self.next_due_ms.min(now);
        let mut actions = Vec::new();
        if let (Some(map), Some(devt)) = (p.map.as_deref().map(str::to_string), p.info.devt) {
            p.dm = DmPathState::Active;
            p.chk = ChkState::Up;
            actions.push(Action::Message {
                map,
                msg: DmMessage::ReinstatePath(devt),
            });
        }
        Ok(actions)
    }

    fn switch_group(&mut self, map: &str, group: usize) -> Answer {
        let m = self.find_map_mut(map).ok_or(CommandError::NotFound)?;
        if group < 1 || group > m.groups.len().max(1) {
            return Err(CommandError::Invalid(format!("invalid path group {group}")));
        }
        m.stats.switch_grp += 1;
        Ok(vec![Action::Message {
            map: m.name.clone(),
            msg: DmMessage::SwitchGroup(u32::try_from(group).unwrap_or(u32::MAX)),
        }])
    }

    /// The maps a command names: one (by name or WWID), or all.
    fn named_maps(&mut self, target: Option<&str>) -> Result<Vec<&mut Map>, CommandError> {
        let maps: Vec<&mut Map> = self
            .maps
            .values_mut()
            .filter(|m| target.is_none_or(|t| m.name == t || m.wwid == t))
            .collect();
        if target.is_some() && maps.is_empty() {
            return Err(CommandError::NotFound);
        }
        Ok(maps)
    }

    fn disable_queueing(&mut self, target: Option<&str>) -> Answer {
        let mut actions = Vec::new();
        for m in self.named_maps(target)? {
            m.queue.disable();
            actions.push(Action::Message {
                map: m.name.clone(),
                msg: DmMessage::FailIfNoPath,
            });
        }
        Ok(actions)
    }

    fn restore_queueing(&mut self, target: Option<&str>) -> Answer {
        let mut actions = Vec::new();
        for m in self.named_maps(target)? {
            if m.queue.restore(m.settings.no_path_retry) {
                actions.push(Action::Message {
                    map: m.name.clone(),
                    msg: DmMessage::QueueIfNoPath,
                });
            }
        }
        Ok(actions)
    }

    fn remove_map(&mut self, name: &str) -> Answer {
        let m = self.find_map_mut(name).ok_or(CommandError::NotFound)?;
        m.remove_requested = true;
        let wwid = m.wwid.clone();
        self.held.insert(wwid);
        Ok(Vec::new())
    }

    fn remove_all_maps(&mut self) -> Answer {
        for m in self.maps.values_mut() {
            m.remove_requested = true;
            self.held.insert(m.wwid.clone());
        }
        Ok(Vec::new())
    }

    /// `reload map`/`add map`: forget the loaded table so reconcile loads
    /// it now (even during a failed load's back-off); a WWID with paths
    /// but no map is recorded so it gets one.
    fn reload_map(&mut self, name: String) -> Answer {
        let has_paths = self
            .paths
            .values()
            .any(|p| p.info.wwid.as_deref() == Some(name.as_str()));
        self.held.remove(&name);
        if let Some(m) = self.find_map_mut(&name) {
            m.force_reload = true;
            m.retry_at_ms = None;
            return Ok(Vec::new());
        }
        if !has_paths {
            return Err(CommandError::NotFound);
        }
        self.wwids.insert(name.clone());
        Ok(vec![Action::AddWwid(name)])
    }

    fn del_path(&mut self, dev: &str) -> Answer {
        let p = self.paths.remove(dev).ok_or(CommandError::NotFound)?;
        self.reindex(dev, p.info.wwid.as_deref(), None);
        self.drop_member(dev);
        Ok(Vec::new())
    }

    fn reset_stats(&mut self, target: Option<&str>) -> Answer {
        for m in self.named_maps(target)? {
            m.stats = MapStats::default();
        }
        Ok(Vec::new())
    }
}
