//! Persistent reservations, the daemon's share (as multipathd's): keep a
//! map's key registered through every path that joins or comes back, and
//! the state `mpathpersist` reports (`setprstatus`, `setprkey`).
//!
//! The SCSI work runs in the prober with the path's check, before the
//! check's result can reinstate the path; this file decides when to ask
//! for it and takes what it found.

use super::*;
use crate::pr::ReservationKey;
use crate::CommandError;

/// The key in force for a map with these settings: configured, or the
/// prkeys file's under `reservation_key file`.
pub(super) fn map_key(
    settings: &Settings,
    wwid: &str,
    prkeys: &BTreeMap<String, PrKey>,
) -> Option<PrKey> {
    match settings.reservation_key {
        ReservationKey::None => None,
        ReservationKey::Key(k) => Some(k),
        ReservationKey::File => prkeys.get(wwid).copied(),
    }
}

/// The PR step a path's next check should carry: when its map has a key
/// that is (or may be) registered, and the path is not known to be
/// registered with it.
pub(super) fn pr_request(
    p: &Path,
    maps: &BTreeMap<String, Map>,
    prkeys: &BTreeMap<String, PrKey>,
) -> Option<PrSyncRequest> {
    if p.pr_synced {
        return None;
    }
    let wwid = p.info.wwid.as_deref()?;
    let key = map_key(&p.settings, wwid, prkeys)?;
    let flag = maps.get(wwid).map_or(PrFlag::Unknown, |m| m.pr);
    (flag != PrFlag::Unset).then_some(PrSyncRequest {
        key,
        all_tg_pt: p.settings.all_tg_pt,
    })
}

impl Engine {
    /// The map a PR command names: alias, WWID or `dm-N`.
    fn pr_map(&mut self, map: &str) -> Result<&mut Map, CommandError> {
        let name = self.map_name(map).ok_or(CommandError::NotFound)?;
        self.find_map_mut(&name).ok_or(CommandError::NotFound)
    }

    /// What a path's PR step found.
    pub(super) fn on_pr_sync(&mut self, dev: &str, sync: PrSync) {
        let Some(p) = self.paths.get_mut(dev) else {
            return;
        };
        let Some(wwid) = p.info.wwid.clone() else {
            return;
        };
        let Some(m) = self.maps.get_mut(&wwid) else {
            // No map yet: asked again on the next check, once there is one.
            return;
        };
        match sync {
            PrSync::Registered => {
                p.pr_synced = true;
                info!(path = %dev, map = %m.name, "reservation key registered through the path");
                if m.pr != PrFlag::Set {
                    m.pr = PrFlag::Set;
                    m.snap = None;
                    self.changed = true;
                }
            }
            PrSync::KeyAbsent => {
                p.pr_synced = true;
                if m.pr == PrFlag::Unknown {
                    m.pr = PrFlag::Unset;
                    m.snap = None;
                    self.changed = true;
                } else if m.pr == PrFlag::Set {
                    warn!(path = %dev, map = %m.name,
                        "the array holds no registration with the map's key (preempted by another host?): the path is left unregistered");
                }
            }
            PrSync::Failed(e) => {
                // One try per event, as multipathd: an array without PR
                // support must not cost a command and a warning per check.
                // The next comeback or setprstatus tries again.
                p.pr_synced = true;
                warn!(path = %dev, map = %m.name, error = %e,
                    "cannot register the reservation key through the path");
            }
        }
    }

    /// `setprstatus`: the map's key is registered. Paths not named as
    /// registered get the PR step on a check now.
    pub(super) fn set_pr_status(
        &mut self,
        map: &str,
        registered: &[String],
    ) -> Result<Vec<Action>, CommandError> {
        let now = self.now_ms;
        let m = self.pr_map(map)?;
        if m.pr != PrFlag::Set {
            info!(map = %m.name, "prflag set");
        }
        m.pr = PrFlag::Set;
        m.snap = None;
        let members = m.members.clone();
        for dev in members {
            if let Some(p) = self.paths.get_mut(&dev) {
                p.pr_synced = registered.iter().any(|r| r == &dev);
                if !p.pr_synced && !p.in_flight {
                    p.next_check_ms = now;
                    self.next_due_ms = now;
                }
            }
        }
        Ok(Vec::new())
    }

    /// `unsetprstatus`: the key was unregistered (or cleared).
    pub(super) fn unset_pr_status(&mut self, map: &str) -> Result<Vec<Action>, CommandError> {
        let m = self.pr_map(map)?;
        if m.pr != PrFlag::Unset {
            info!(map = %m.name, "prflag unset");
        }
        m.pr = PrFlag::Unset;
        m.snap = None;
        Ok(Vec::new())
    }

    /// `setprkey` / `unsetprkey`: only under `reservation_key file`; any
    /// other source would make the file and the map disagree.
    pub(super) fn set_pr_key(
        &mut self,
        map: &str,
        key: Option<PrKey>,
    ) -> Result<Vec<Action>, CommandError> {
        let m = self.pr_map(map)?;
        if m.settings.reservation_key != ReservationKey::File {
            let now = match m.settings.reservation_key {
                ReservationKey::None => "not set".to_string(),
                k => format!("{k}"),
            };
            return Err(CommandError::Invalid(format!(
                "{}: reservation_key is {now}, not file: the key is set in multipath.conf",
                m.name
            )));
        }
        m.snap = None;
        let wwid = m.wwid.clone();
        match key {
            Some(k) => self.prkeys.insert(wwid.clone(), k),
            None => self.prkeys.remove(&wwid),
        };
        Ok(vec![Action::SetPrKey { wwid, key }])
    }
}
