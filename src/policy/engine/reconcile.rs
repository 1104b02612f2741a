//! Reconcile: which paths are multipathed, map naming, member sync, table
//! build and the create/reload/remove decision.

use super::*;

/// Remove a map the operator asked to remove (`del map`), once no load
/// of it is in flight.
pub(super) fn requested_remove(m: &mut Map) -> Option<Action> {
    if !m.remove_requested || !m.in_kernel || m.applying {
        return None;
    }
    m.applying = true;
    Some(Action::Map(MapChange::Remove {
        name: m.name.clone(),
        deferred: false,
    }))
}

/// Remove a map none of whose paths is multipathed any more (unless it was
/// adopted and its paths are not discovered yet, or a load is in flight).
pub(super) fn remove_if_pathless(m: &mut Map) -> Vec<Action> {
    if m.remove_requested {
        return requested_remove(m).into_iter().collect();
    }
    if !m.members.is_empty() || m.remove_failed || !m.in_kernel || m.applying {
        return Vec::new();
    }
    // Adopted maps whose paths have not been seen yet stay.
    if m.table.is_some() && m.groups.is_empty() {
        return Vec::new();
    }
    info!(map = %m.name, "last path gone: removing map");
    let mut actions = Vec::new();
    if m.settings.flush_on_last_del && m.queue.mode != Queueing::Off {
        // Queued I/O would hold an open map forever: fail it, so the
        // remove can succeed once its opener lets go.
        info!(map = %m.name, "flush_on_last_del: disabling queueing");
        m.queue.disable();
        actions.push(Action::Message {
            map: m.name.clone(),
            msg: DmMessage::FailIfNoPath,
        });
    }
    m.applying = true;
    m.remove_requested = true;
    // deferred_remove: an open map (a mounted filesystem) goes at last
    // close instead of staying pathless.
    actions.push(Action::Map(MapChange::Remove {
        name: m.name.clone(),
        deferred: m.settings.deferred_remove,
    }));
    actions
}

impl Engine {
    /// Bring maps in line with paths and schedule due checks. Everything is
    /// re-decided only when paths or configuration changed; otherwise just
    /// the maps marked dirty are looked at.
    pub(super) fn reconcile(&mut self) -> Vec<Action> {
        let members_known =
            self.dirty_paths.is_empty() && self.dirty.iter().all(|w| self.maps.contains_key(w));
        let mut actions = if self.full_dirty {
            self.full_dirty = false;
            self.dirty.clear();
            self.dirty_paths.clear();
            self.time_waits.clear();
            // Decisions (blacklists) may have changed which paths are checked.
            self.next_due_ms = 0;
            self.reconcile_all()
        } else if members_known {
            // Only checks or loads changed: the members stand.
            let mut actions = Vec::new();
            for wwid in std::mem::take(&mut self.dirty) {
                let Some(m) = self.maps.get_mut(&wwid) else {
                    continue;
                };
                if !m.members.is_empty() {
                    let members = m.members.clone();
                    actions.extend(self.reconcile_map(&wwid, members));
                } else {
                    // Its last path went away.
                    actions.extend(remove_if_pathless(m));
                }
            }
            actions
        } else {
            self.reconcile_some()
        };
        actions.extend(self.schedule_probes());
        if actions.iter().any(|a| !matches!(a, Action::Probe(_))) {
            self.changed = true;
        }
        actions
    }

    /// A path of `wwid` came, went or changed: reconcile it, and let a map
    /// whose remove failed be tried again.
    pub(super) fn paths_changed(&mut self, wwid: &str) {
        if let Some(m) = self.maps.get_mut(wwid) {
            m.remove_failed = false;
        }
        self.held.remove(wwid);
        self.dirty.insert(wwid.to_string());
    }

    /// Re-decide the dirty paths and every path of the dirty WWIDs (a
    /// WWID's paths are decided together: find_multipaths counts siblings,
    /// identity conflicts compare them), then reconcile those WWIDs' maps.
    pub(super) fn reconcile_some(&mut self) -> Vec<Action> {
        let mut wwids = std::mem::take(&mut self.dirty);
        let devs = std::mem::take(&mut self.dirty_paths);
        for d in &devs {
            if let Some(w) = self.paths.get(d).and_then(|p| p.info.wwid.clone()) {
                wwids.insert(w);
            }
        }
        for w in &wwids {
            self.time_waits.remove(w);
        }
        let wanted = self.decide_paths(Some((&devs, &wwids)));
        let mut actions = Vec::new();
        for wwid in &wwids {
            if wanted.contains_key(wwid) {
                continue;
            }
            if let Some(m) = self.maps.get_mut(wwid) {
                // No path of this WWID is multipathed any more.
                actions.extend(remove_if_pathless(m));
            }
        }
        for (wwid, members) in wanted {
            actions.extend(self.reconcile_map(&wwid, members));
        }
        actions
    }

    /// Decide which paths belong to which map and emit create/reload/remove.
    pub(super) fn reconcile_all(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        let wanted = self.decide_paths(None);
        // Maps whose paths are all gone.
        let gone: Vec<String> = self
            .maps
            .iter()
            .filter(|(w, m)| !wanted.contains_key(*w) && m.in_kernel && !m.applying)
            .map(|(w, _)| w.clone())
            .collect();
        for wwid in gone {
            if let Some(m) = self.maps.get_mut(&wwid) {
                actions.extend(remove_if_pathless(m));
            }
        }
        // Maps whose remove was requested by the operator.
        actions.extend(self.maps.values_mut().filter_map(requested_remove));

        for (wwid, members) in wanted {
            actions.extend(self.reconcile_map(&wwid, members));
        }
        actions
    }

    /// Which paths are multipathed, grouped by WWID (blacklists, identity,
    /// identity conflicts, find_multipaths: discovery's pure decision);
    /// every other path gets its reason. `only`: just these paths and the
    /// paths of these WWIDs (None: every path).
    pub(super) fn decide_paths(
        &mut self,
        only: Option<(&BTreeSet<String>, &BTreeSet<String>)>,
    ) -> BTreeMap<String, Vec<String>> {
        let now = self.epoch + Duration::from_millis(self.now_ms);
        // In name order, as the paths map holds them.
        let chosen: Vec<&Path> = match only {
            None => self.paths.values().collect(),
            Some((devs, wwids)) => {
                let names: BTreeSet<&String> = devs
                    .iter()
                    .chain(wwids.iter().filter_map(|w| self.by_wwid.get(w)).flatten())
                    .collect();
                names
                    .into_iter()
                    .filter_map(|d| self.paths.get(d))
                    .collect()
            }
        };
        let candidates: Vec<Candidate<'_>> = chosen
            .into_iter()
            .map(|p| Candidate {
                info: &p.info,
                first_seen: self.epoch + Duration::from_millis(p.added_ms),
                known_hardware: p.settings.known_hardware,
                identity_error: self.identity_errors.get(&p.info.dev).cloned(),
            })
            .collect();
        let known = EngineWwids {
            in_file: &self.wwids,
            maps: &self.maps,
        };
        let filter: &dyn PathFilter = &*self.policy;
        let (verdicts, conflicts) = decide(&candidates, filter, &known, &self.defaults, now);
        for c in conflicts {
            if self.logged_conflicts.insert(c.wwid.clone()) {
                warn!(wwid = %c.wwid, conflict = ?c, "paths share a WWID but differ; leaving all out of maps");
            }
        }
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for v in verdicts {
            match v.decision {
                Decision::Multipath { wwid } => wanted.entry(wwid).or_default().push(v.dev),
                Decision::Wait { .. } | Decision::Skip => {
                    if let Some(p) = self.paths.get_mut(&v.dev) {
                        if matches!(v.decision, Decision::Wait { .. }) {
                            if let Some(w) = &p.info.wwid {
                                self.time_waits.insert(w.clone());
                            }
                        }
                        p.why = v.why.into();
                        p.map = None;
                    }
                }
            }
        }
        for members in wanted.values_mut() {
            members.sort_by_key(|d| natural_key(d));
        }
        wanted
    }

    /// The map's name: kept while it exists, else its alias, its
    /// user_friendly_names binding (a new one when it has none), or the
    /// WWID.
    fn map_name_for(&self, wwid: &str, settings: &Settings) -> (String, Option<String>) {
        let existing = self.maps.get(wwid).map(|m| m.name.clone());
        match (existing, &settings.alias) {
            (Some(n), _) => (n, None),
            (None, Some(a)) => (a.clone(), None),
            (None, None) if settings.user_friendly_names => match self.bindings.get(wwid) {
                Some(a) => (a.clone(), None),
                None => {
                    let a = next_alias(&self.alias_prefix, self.bindings.values());
                    (a.clone(), Some(a))
                }
            },
            (None, None) => (wwid.to_string(), None),
        }
    }

    /// Members take the map's name, and the dm state an adopted map's
    /// table reported for them.
    fn sync_members(&mut self, wwid: &str, name: &str, members: &[String]) {
        let kernel_dm = self
            .maps
            .get(wwid)
            .map(|m| m.adopted_dm.clone())
            .unwrap_or_default();
        for d in members {
            if let Some(p) = self.paths.get_mut(d) {
                if p.dm == DmPathState::Undef {
                    if let Some(active) = p.info.devt.and_then(|t| kernel_dm.get(&t)) {
                        p.dm = if *active {
                            DmPathState::Active
                        } else {
                            DmPathState::Failed
                        };
                    }
                }
                if p.map.as_deref() != Some(name) {
                    p.map = Some(name.into());
                    p.why = member_why(name, p);
                }
            }
        }
    }

    /// The path groups the table gets. The kernel cannot open an offline
    /// SCSI disk, and one such path fails the whole load: it is left out
    /// until it runs again, unless the live table already holds it (dm
    /// reuses its handle).
    fn build_groups(&self, wwid: &str, members: &[String], settings: &Settings) -> Vec<PathGroup> {
        let loaded = self.maps.get(wwid).and_then(|m| m.table.as_ref());
        let inputs: Vec<GroupInput> = members
            .iter()
            .filter_map(|d| self.paths.get(d))
            .filter(|p| {
                p.info.dev_state != DevState::Offline
                    || p.info
                        .devt
                        .is_some_and(|t| loaded.is_some_and(|l| l.paths().any(|d| d == t)))
            })
            .filter_map(|p| GroupInput::of(&p.info, p.prio, p.chk))
            .collect();
        group_paths(
            &inputs,
            settings.path_grouping_policy,
            settings.rr_weight,
            settings.rr_min_io_rq,
        )
    }

    pub(super) fn reconcile_map(&mut self, wwid: &str, members: Vec<String>) -> Vec<Action> {
        if self.held.contains(wwid) && !self.maps.contains_key(wwid) {
            for d in &members {
                if let Some(p) = self.paths.get_mut(d) {
                    p.why = format!(
                        "map of WWID {wwid} removed by the operator (del map); a path event or `add map {wwid}` makes it again"
                    )
                    .into();
                }
            }
            return Vec::new();
        }
        let now = self.now_ms;
        // Only a wait that still holds puts it back (below).
        self.time_waits.remove(wwid);
        // Wait for first checks (bounded) so the first load has real groups.
        let waiting = members.iter().any(|d| {
            self.paths
                .get(d)
                .is_some_and(|p| !p.probed && now.saturating_sub(p.added_ms) < PROBE_GRACE_MS)
        });
        let Some(first) = members.first().and_then(|d| self.paths.get(d)) else {
            return Vec::new();
        };
        let settings = first.settings.clone();
        let size = first.info.size;
        let (vendor, product, rev) = (
            first.info.vendor.clone(),
            first.info.product.clone(),
            first.info.rev.clone(),
        );
        let attached = first.info.dh_state.clone();
        let (name, new_binding) = self.map_name_for(wwid, &settings);
        self.sync_members(wwid, &name, &members);
        if waiting {
            self.time_waits.insert(wwid.to_string());
            if let Some(m) = self.maps.get_mut(wwid) {
                m.members = members;
            }
            return Vec::new();
        }
        // Before the table names them, as multipathd's setup_map does.
        let tune = self.tune_transport(&members, &settings);

        let groups = self.build_groups(wwid, &members, &settings);
        let table = table::render(&settings, attached.as_deref(), &groups);

        self.map_wwids
            .entry(name.clone())
            .or_insert_with(|| wwid.to_string());
        let map = self.maps.get_or_insert_with(wwid, || {
            Map::new(
                name.clone(),
                wwid.to_string(),
                settings.clone(),
                size,
                None,
                false,
                None,
            )
        });
        map.members = members;
        map.settings = settings;
        map.vendor = vendor;
        map.product = product;
        map.rev = rev;
        if map.remove_requested {
            // Asked while a load was in flight: issued once it is done.
            return requested_remove(map).into_iter().collect();
        }
        if map.applying || map.retry_at_ms.is_some_and(|t| t > now) || groups.is_empty() {
            // Loading already, or waiting to retry, or every path is
            // offline (nothing the kernel could load).
            return tune;
        }
        let mut actions = tune;
        let created = !map.in_kernel;
        actions.extend(load_table(map, wwid, size, table, groups));
        if created {
            if !self.wwids.contains(wwid) {
                self.wwids.insert(wwid.to_string());
                actions.push(Action::AddWwid(wwid.to_string()));
            }
            if let Some(alias) = new_binding {
                self.bindings.insert(wwid.to_string(), alias.clone());
                actions.push(Action::AddBinding {
                    alias,
                    wwid: wwid.to_string(),
                });
            }
        }
        actions
    }
}

/// Create the map, reload it when its table differs, or fix only its
/// queueing by a message when that is all that differs.
fn load_table(
    map: &mut Map,
    wwid: &str,
    size: u64,
    table: MultipathTable,
    groups: Vec<PathGroup>,
) -> Vec<Action> {
    let verdict = match map.table.as_ref() {
        Some(old) if !map.force_reload => table.compare(old),
        _ => TableMatch::ReloadNeeded,
    };
    map.force_reload = false;
    if !map.in_kernel {
        info!(map = %map.name, %wwid, %table, "creating map");
        map.applying = true;
        map.action = "create".into();
        map.groups = groups;
        map.table = Some(table.clone());
        map.size = size;
        return vec![Action::Map(MapChange::Create {
            name: map.name.clone(),
            uuid: format!("mpath-{wwid}"),
            size,
            table,
            skip_kpartx: map.settings.skip_kpartx,
        })];
    }
    if verdict == TableMatch::ReloadNeeded || map.size != size {
        info!(map = %map.name, %table, "reloading map");
        map.applying = true;
        map.action = "reload".into();
        map.before_reload = Some((
            map.table.replace(table.clone()),
            std::mem::replace(&mut map.groups, groups),
            map.size,
        ));
        map.size = size;
        return vec![Action::Map(MapChange::Reload {
            name: map.name.clone(),
            size,
            table,
            skip_kpartx: map.settings.skip_kpartx,
        })];
    }
    // Same table (maybe as the kernel rewrote it): keep groups for
    // display; a queueing difference is fixed by a message.
    map.groups = groups;
    if verdict != TableMatch::QueueingDiffers {
        return Vec::new();
    }
    let msg = if map.queue.wants(map.settings.no_path_retry) {
        DmMessage::QueueIfNoPath
    } else {
        DmMessage::FailIfNoPath
    };
    info!(map = %map.name, %msg, "queueing differs from the configuration");
    map.table = Some(table);
    vec![Action::Message {
        map: map.name.clone(),
        msg,
    }]
}

/// The engine's own tables as the decision's [`WwidsKnown`].
struct EngineWwids<'a> {
    in_file: &'a BTreeSet<String>,
    maps: &'a BTreeMap<String, Map>,
}

impl WwidsKnown for EngineWwids<'_> {
    fn in_wwids_file(&self, wwid: &str) -> bool {
        self.in_file.contains(wwid)
    }
    fn has_map(&self, wwid: &str) -> bool {
        self.maps.contains_key(wwid)
    }
}
