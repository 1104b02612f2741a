//! Paths: discovery updates, check scheduling, checker results, flap
//! damping and transport timeouts.

use super::*;
use crate::checker::CheckerKind;
use crate::prio::PrioSpec;

/// When a check is next due: `interval_s` from now, rounded down to a whole
/// second of the engine clock. Checks then fall due together on second
/// boundaries, as multipathd's ticks do, and go out in one batch instead of
/// one wake-up (and thread hand-off) per path; never later than the
/// interval.
pub(super) fn check_slot(now_ms: u64, interval_s: u32) -> u64 {
    let due = now_ms + u64::from(interval_s.max(1)) * 1000;
    (due - due % 1000).max(now_ms + 1)
}

/// san_path_err for one check of a mapped path: count failures, forget
/// one every `forget_rate` good checks, and hold a path that failed more
/// than `threshold` times out for `recovery_time` before it is reinstated
/// (shown as `delayed` meanwhile). Returns whether the path is held.
pub(super) fn damp(p: &mut Path, d: &SanPathErr, prev: ChkState, usable: bool, now: u64) -> bool {
    if !usable {
        if prev.is_usable() || prev == ChkState::Delayed {
            p.failures = p.failures.saturating_add(1);
            p.good_checks = 0;
        }
        return false;
    }
    if p.dm == DmPathState::Active {
        p.good_checks += 1;
        if p.good_checks >= d.forget_rate {
            p.failures = p.failures.saturating_sub(1);
            p.good_checks = 0;
        }
        return false;
    }
    if p.failures <= d.threshold {
        return false;
    }
    let until = *p
        .held_until_ms
        .get_or_insert(now + u64::from(d.recovery_time) * 1000);
    if now < until {
        if p.chk != ChkState::Delayed {
            info!(path = %p.info.dev, failures = p.failures, threshold = d.threshold, "san_path_err: path failed too often, not reinstated for {} s", d.recovery_time);
        }
        p.chk = ChkState::Delayed;
        return true;
    }
    p.failures = 0;
    p.good_checks = 0;
    p.held_until_ms = None;
    false
}

impl Engine {
    /// Move `dev` in the by-WWID index from `old` to `new`.
    pub(super) fn reindex(&mut self, dev: &str, old: Option<&str>, new: Option<&str>) {
        if let Some(o) = old {
            if let Some(set) = self.by_wwid.get_mut(o) {
                set.remove(dev);
                if set.is_empty() {
                    self.by_wwid.remove(o);
                }
            }
        }
        if let Some(n) = new {
            self.by_wwid
                .entry(n.to_string())
                .or_default()
                .insert(dev.to_string());
        }
    }

    /// A batch from discovery, in order; each path's identity note kept
    /// (or cleared) with it.
    pub(super) fn apply_paths(&mut self, mut batch: PathBatch) {
        for ev in batch.events {
            let dev = ev.dev().to_string();
            let note = batch.notes.remove(&dev).and_then(|n| n.identity_error);
            let reason_changed = match note.filter(|_| !matches!(ev, PathEvent::Remove(_))) {
                Some(e) => self.identity_errors.insert(dev.clone(), e.clone()) != Some(e),
                None => self.identity_errors.remove(&dev).is_some(),
            };
            // A new reason is decided again even if the path is unchanged.
            if reason_changed && self.paths.contains_key(&dev) {
                self.dirty_paths.insert(dev);
            }
            match ev {
                PathEvent::Add(info) | PathEvent::Change(info) => self.update_path_info(info),
                PathEvent::Remove(dev) => self.remove_path(&dev),
            }
        }
    }

    fn remove_path(&mut self, dev: &str) {
        if let Some(p) = self.paths.remove(dev) {
            info!(path = %dev, "path removed");
            self.reindex(dev, p.info.wwid.as_deref(), None);
            if let Some(w) = &p.info.wwid {
                self.paths_changed(w);
            }
            self.changed = true;
        }
        self.dirty_paths.remove(dev);
        self.drop_member(dev);
    }

    /// Take a path that went out of every map's member list, touching
    /// only the maps that held it.
    pub(super) fn drop_member(&mut self, dev: &str) {
        let holding: Vec<String> = self
            .maps
            .values()
            .filter(|m| m.members.iter().any(|d| d == dev))
            .map(|m| m.wwid.clone())
            .collect();
        for w in holding {
            if let Some(m) = self.maps.get_mut(&w) {
                m.members.retain(|d| d != dev);
            }
        }
    }

    pub(super) fn update_path_info(&mut self, info: PathInfo) {
        let resolved = self.policy.resolve(&info);
        let settings = self.intern(resolved);
        let dev = info.dev.clone();
        let pi = self.polling_interval();
        let now = self.now_ms;
        match self.paths.get_mut(&dev) {
            Some(p) => {
                // udev repeats change events for unchanged devices (e.g.
                // every LUN of a target on a rescan): nothing to redo.
                if *p.info == info && p.settings == settings {
                    return;
                }
                if p.info.dev_state != info.dev_state {
                    // A state change from udev: check at once.
                    p.next_check_ms = now;
                    self.next_due_ms = self.next_due_ms.min(now);
                }
                // The old WWID's map loses this path.
                let old_wwid = p
                    .info
                    .wwid
                    .clone()
                    .filter(|w| info.wwid.as_ref() != Some(w));
                let new_wwid = info.wwid.clone();
                p.info = Arc::new(info);
                // It may be checked now where it was not (blacklist, WWID).
                self.next_due_ms = self.next_due_ms.min(p.next_check_ms);
                if p.settings.path_checker != settings.path_checker {
                    p.checker = settings.path_checker.as_str().into();
                }
                p.settings = settings;
                if let Some(w) = old_wwid {
                    self.reindex(&dev, Some(&w), new_wwid.as_deref());
                    self.paths_changed(&w);
                } else if let Some(w) = new_wwid.as_deref() {
                    // A path that had no WWID has one now.
                    self.reindex(&dev, None, Some(w));
                }
            }
            None => {
                info!(path = %dev, wwid = ?info.wwid, "path added");
                // Spread first checks over the interval after the initial one.
                let p = Path {
                    info: Arc::new(info),
                    checker: settings.path_checker.as_str().into(),
                    settings,
                    chk: ChkState::Undef,
                    dm: DmPathState::Undef,
                    prio: 0,
                    probed: false,
                    in_flight: false,
                    added_ms: now,
                    next_check_ms: now,
                    last_check_ms: now,
                    interval_s: pi,
                    why: "".into(),
                    map: None,
                    snap: None,
                    tuned: None,
                    transport_note: None,
                    checker_note: None,
                    pr_synced: false,
                    failures: 0,
                    good_checks: 0,
                    held_until_ms: None,
                };
                let wwid = p.info.wwid.clone();
                self.paths.insert(dev.clone(), p);
                self.next_due_ms = self.next_due_ms.min(now);
                self.reindex(&dev, None, wwid.as_deref());
            }
        }
        if let Some(w) = self.paths.get(&dev).and_then(|p| p.info.wwid.clone()) {
            self.paths_changed(&w);
        }
        self.dirty_paths.insert(dev);
        self.changed = true;
    }

    /// Transport timeout writes for members whose wanted timeouts differ
    /// from what was last sent: a path joining a map, or settings changed.
    pub(super) fn tune_transport(&mut self, members: &[String], map: &Settings) -> Vec<Action> {
        let mut actions = Vec::new();
        for d in members {
            let Some(p) = self.paths.get_mut(d) else {
                continue;
            };
            let s = &p.settings;
            let wanted = transport::plan(
                &transport::TimeoutSettings {
                    fast_io_fail: s.fast_io_fail_tmo.and_then(|v| u32::try_from(v).ok()),
                    dev_loss: s.dev_loss_tmo,
                    eh_deadline: s.eh_deadline,
                    no_path_retry: map.no_path_retry,
                    polling_interval: map.polling_interval,
                },
                p.info.hcil.map(|h| h.host),
                p.info.endpoint.as_ref(),
            );
            if p.tuned.as_ref() == Some(&wanted) {
                continue;
            }
            p.tuned = Some(wanted.clone());
            if wanted.writes.is_empty() {
                // Nothing to write; the notes still explain why.
                let report = transport::Report {
                    done: Vec::new(),
                    notes: wanted.notes,
                };
                self.on_transport_tuned(d, &report);
                continue;
            }
            actions.push(Action::TuneTransport {
                dev: d.clone(),
                plan: wanted,
            });
        }
        actions
    }

    pub(super) fn on_transport_tuned(&mut self, dev: &str, report: &transport::Report) {
        let Some(p) = self.paths.get_mut(dev) else {
            return;
        };
        let note: Option<Arc<str>> = (!report.done.is_empty() || !report.notes.is_empty())
            .then(|| report.to_string().into());
        if p.transport_note == note {
            return;
        }
        p.transport_note = note;
        if let Some(map) = p.map.clone() {
            p.why = member_why(&map, p);
            self.changed = true;
        }
    }

    /// The checks that fell due. `next_due_ms` is kept at or before the
    /// earliest due check (every change of a `next_check_ms` lowers it), so
    /// an event between due times does not walk every path.
    pub(super) fn schedule_probes(&mut self) -> Vec<Action> {
        let now = self.now_ms;
        if now < self.next_due_ms {
            return Vec::new();
        }
        let mut actions = Vec::new();
        let mut next_due = u64::MAX;
        let (maps, prkeys) = (&self.maps, &self.prkeys);
        // in_flight is all this changes, which no snapshot shows.
        for p in self.paths.values_mut_unshown() {
            // Only paths that are (or may become) multipathed are checked.
            if p.in_flight || (p.map.is_none() && p.why.starts_with("blacklisted")) {
                continue;
            }
            if p.next_check_ms > now {
                next_due = next_due.min(p.next_check_ms);
                continue;
            }
            let timeout = p
                .settings
                .checker_timeout
                .or(p.info.timeout_secs)
                .unwrap_or(30)
                .max(1);
            p.in_flight = true;
            // detect_checker / detect_prio are applied by the resolver.
            // A substitute (tur for a checker mpathd lacks) is named in the
            // path's reasons.
            let (checker, _) = CheckerKind::resolve(&p.settings.path_checker);
            let pr = super::reservation::pr_request(p, maps, prkeys);
            actions.push(Action::Probe(Box::new(ProbeRequest {
                info: p.info.clone(),
                checker,
                timeout_secs: timeout,
                prio: PrioSpec::from_settings(&p.settings),
                solo: !matches!(p.chk, ChkState::Up | ChkState::Ghost) || pr.is_some(),
                pr,
            })));
        }
        self.next_due_ms = next_due;
        actions
    }

    pub(super) fn on_probed(
        &mut self,
        dev: &str,
        chk: ChkState,
        prio: Option<i32>,
        msg: &str,
        dev_state: Option<DevState>,
    ) -> Vec<Action> {
        match self.record_check(dev, chk, prio, msg, dev_state) {
            Some((prev, prev_prio)) => self.follow_check(dev, chk, prio, prev, prev_prio),
            None => Vec::new(),
        }
    }

    /// Take a check's result: the path's state, prio and next check, and
    /// what must be decided again. Returns the state and prio before.
    /// The map for `dev`'s WWID, if there is one.
    fn map_of_path(&self, dev: &str) -> Option<&Map> {
        let w = self.paths.get(dev)?.info.wwid.as_ref()?;
        self.maps.get(w)
    }

    /// Check `dev`'s map's other paths within a second.
    fn recheck_siblings_soon(&mut self, dev: &str) {
        let Some(members) = self.map_of_path(dev).map(|m| m.members.clone()) else {
            return;
        };
        let soon = check_slot(self.now_ms, 1);
        for d in members.iter().filter(|d| d.as_str() != dev) {
            if let Some(p) = self.paths.get_mut(d) {
                p.interval_s = 1;
                p.next_check_ms = p.next_check_ms.min(soon);
                self.next_due_ms = self.next_due_ms.min(p.next_check_ms);
            }
        }
    }

    /// `dev`'s map queues I/O and no other path of it is usable.
    fn queued_without_paths(&self, dev: &str) -> bool {
        let Some(m) = self.map_of_path(dev) else {
            return false;
        };
        m.queue.mode != Queueing::Off
            && !m
                .members
                .iter()
                .filter(|d| d.as_str() != dev)
                .filter_map(|d| self.paths.get(d))
                .any(|p| p.chk.is_usable())
    }

    fn record_check(
        &mut self,
        dev: &str,
        chk: ChkState,
        prio: Option<i32>,
        msg: &str,
        dev_state: Option<DevState>,
    ) -> Option<(ChkState, i32)> {
        let now = self.now_ms;
        let stranded =
            !chk.is_usable() && chk != ChkState::Pending && self.queued_without_paths(dev);
        let p = self.paths.get_mut(dev)?;
        p.in_flight = false;
        let first = !p.probed;
        p.probed = true;
        p.last_check_ms = now;
        let prev = p.chk;
        let prev_prio = p.prio;
        if chk != ChkState::Pending {
            p.chk = chk;
            // Back from down, its registration is checked again.
            p.pr_synced &= chk.is_usable();
            let note = (!chk.is_usable()).then(|| Arc::<str>::from(msg));
            if note != p.checker_note {
                p.checker_note = note;
                if let Some(m) = p.map.clone() {
                    p.why = super::member_why(&m, p);
                    self.changed = true;
                }
            }
        }
        if let Some(pr) = prio {
            p.prio = pr;
        }
        let mut state_changed = false;
        if let Some(st) = dev_state.filter(|s| *s != p.info.dev_state) {
            // The sysfs state moved without a uevent (e.g. an operator's
            // `echo running > .../state`).
            Arc::make_mut(&mut p.info).dev_state = st;
            state_changed = true;
        }
        if first || state_changed || p.chk != prev || p.prio != prev_prio {
            // Groups, the table or the path's decision may change.
            self.changed = true;
            // A mapped path's checker turned: not a first check in a storm.
            self.urgent |= !first && p.map.is_some() && p.chk.is_usable() != prev.is_usable();
            match (&p.map, &p.info.wwid) {
                (Some(_), Some(w)) => {
                    self.dirty.insert(w.clone());
                }
                (_, w) => {
                    // Not in a map yet: its decision may change now.
                    if let Some(w) = w {
                        self.dirty.insert(w.clone());
                    }
                    self.dirty_paths.insert(dev.to_string());
                }
            }
        }
        let pi = p.settings.polling_interval.max(1);
        let max = p.settings.max_polling_interval.max(pi);
        p.interval_s = if chk == prev && chk == ChkState::Up {
            (p.interval_s.saturating_mul(2)).clamp(pi, max)
        } else {
            pi
        };
        if chk == ChkState::Pending || stranded {
            // Transitioning, or I/O is queued with no path to go to: look
            // again every second, so it resumes soon after a path returns.
            p.interval_s = 1;
        }
        p.next_check_ms = check_slot(now, p.interval_s);
        self.next_due_ms = self.next_due_ms.min(p.next_check_ms);
        let last_one_lost = stranded && prev.is_usable();
        if prev != p.chk {
            info!(path = %dev, map = ?p.map, from = %prev, to = %p.chk, reason = %msg, "path checker state changed");
        }
        if last_one_lost {
            // The map's other paths failed earlier, on the slow interval:
            // bring their next checks in too.
            self.recheck_siblings_soon(dev);
        }
        Some((prev, prev_prio))
    }

    /// A mapped path's check as the kernel must see it: fail or reinstate
    /// it (unless flap damping holds it out), then queueing and failback.
    fn follow_check(
        &mut self,
        dev: &str,
        chk: ChkState,
        prio: Option<i32>,
        prev: ChkState,
        prev_prio: i32,
    ) -> Vec<Action> {
        let now = self.now_ms;
        let Some(p) = self.paths.get(dev) else {
            return Vec::new();
        };
        let Some(map_name) = p.map.as_deref().map(str::to_string) else {
            return Vec::new();
        };
        let usable = p.chk.is_usable();
        let dm = p.dm;
        let prio_changed = p.prio != prev_prio;
        let devt = p.info.devt;
        let mut actions = Vec::new();
        let Some(wwid) = self.wwid_of_map(&map_name) else {
            return actions;
        };
        let Some(m) = self.maps.get_mut(&wwid) else {
            return actions;
        };
        if !m.in_kernel {
            return actions;
        }
        // A path the kernel's table does not hold yet (it joined and the
        // reload is still to come or running) takes no message: dm would
        // refuse it with EINVAL. on_applied sets every member's state from
        // its check once the load is in. The table text decides, not the
        // dm state: an adopted map whose status could not be read holds
        // its paths with their dm state still unknown.
        let in_table = !m.applying
            && devt.is_some_and(|d| m.table.as_ref().is_some_and(|t| t.paths().any(|p| p == d)));
        let held = match (m.settings.san_path_err, self.paths.get_mut(dev)) {
            (Some(d), Some(p)) => damp(p, &d, prev, usable, now),
            _ => false,
        };
        if let Some(devt) = devt.filter(|_| in_table && !held) {
            let bad = matches!(p_state_kind(chk), StateKind::Bad);
            if usable && dm != DmPathState::Active {
                actions.push(Action::Message {
                    map: m.name.clone(),
                    msg: DmMessage::ReinstatePath(devt),
                });
                if let Some(p) = self.paths.get_mut(dev) {
                    p.dm = DmPathState::Active;
                }
                m.stats.path_reinstates += 1;
                info!(path = %dev, map = %m.name, "reinstating path");
            } else if bad && dm != DmPathState::Failed {
                actions.push(Action::Message {
                    map: m.name.clone(),
                    msg: DmMessage::FailPath(devt),
                });
                if dm == DmPathState::Active {
                    m.stats.path_faults += 1;
                }
                if let Some(p) = self.paths.get_mut(dev) {
                    p.dm = DmPathState::Failed;
                }
                warn!(path = %dev, map = %m.name, state = %chk, "failing path");
            }
        }
        if prio_changed && prev != ChkState::Undef {
            // A priority change may regroup the map: reconcile does it.
            info!(path = %dev, from = prev_prio, to = prio.unwrap_or(prev_prio), "path priority changed");
        }
        actions.extend(self.update_queueing(&wwid));
        actions.extend(self.maybe_failback(
            &wwid,
            usable && prev != ChkState::Up && prev != ChkState::Undef,
        ));
        actions
    }
}
