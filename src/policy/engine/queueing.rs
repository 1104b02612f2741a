//! Queueing (no_path_retry), failback and the 1 s tick.

use super::*;

/// A map's queueing: the mode its table is in, whether queueing was
/// switched off (operator, flush_on_last_del), and since when all its
/// paths have been down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct QueueState {
    pub(super) mode: Queueing,
    pub(super) disabled: bool,
    pub(super) since_ms: Option<u64>,
}

impl QueueState {
    pub(super) fn new(npr: NoPathRetry) -> Self {
        let mut q = QueueState {
            mode: Queueing::Off,
            disabled: false,
            since_ms: None,
        };
        q.loaded(npr);
        q
    }

    /// The rule: queue unless no_path_retry is fail or queueing was
    /// switched off.
    pub(super) fn wants(&self, npr: NoPathRetry) -> bool {
        !matches!(npr, NoPathRetry::Fail) && !self.disabled
    }

    /// A table was loaded: it queues exactly when queueing is wanted.
    pub(super) fn loaded(&mut self, npr: NoPathRetry) {
        self.mode = if self.wants(npr) {
            Queueing::On
        } else {
            Queueing::Off
        };
    }

    pub(super) fn disable(&mut self) {
        self.disabled = true;
        self.mode = Queueing::Off;
    }

    /// Switched back on; true when the table must be told to queue.
    pub(super) fn restore(&mut self, npr: NoPathRetry) -> bool {
        self.disabled = false;
        if self.wants(npr) {
            self.mode = Queueing::On;
            true
        } else {
            false
        }
    }
}

impl Engine {
    /// no_path_retry: start, stop or expire queueing for a map.
    pub(super) fn update_queueing(&mut self, wwid: &str) -> Vec<Action> {
        let now = self.now_ms;
        let pi = self.polling_interval();
        let Some(m) = self.maps.get(wwid) else {
            return Vec::new();
        };
        let usable = self.usable_paths(m);
        let Some(m) = self.maps.get_mut(wwid) else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        if usable == 0 {
            if m.queue.since_ms.is_none() {
                m.queue.since_ms = Some(now);
                warn!(map = %m.name, "all paths down");
                if let (NoPathRetry::Retries(n), Queueing::On) =
                    (m.settings.no_path_retry, m.queue.mode)
                {
                    let deadline_ms = now + u64::from(n) * u64::from(pi) * 1000;
                    m.queue.mode = Queueing::Retrying { deadline_ms };
                    info!(map = %m.name, retries = n, "queueing for no_path_retry checks");
                }
            }
        } else if let Some(since) = m.queue.since_ms.take() {
            m.stats.total_q_time += now.saturating_sub(since) / 1000;
            // A path is back: a countdown stops, and queueing that ran out
            // comes back (unless switched off).
            if m.queue.wants(m.settings.no_path_retry) && m.queue.mode != Queueing::On {
                if m.queue.mode == Queueing::Off {
                    actions.push(Action::Message {
                        map: m.name.clone(),
                        msg: DmMessage::QueueIfNoPath,
                    });
                    info!(map = %m.name, "path back: queueing restored");
                }
                m.queue.mode = Queueing::On;
            }
        }
        actions
    }

    pub(super) fn maybe_failback(&mut self, wwid: &str, path_returned: bool) -> Vec<Action> {
        let now = self.now_ms;
        let Some(m) = self.maps.get(wwid) else {
            return Vec::new();
        };
        let best = m.groups.iter().position(|g| {
            g.paths
                .iter()
                .any(|(d, _, _)| self.paths.get(d).is_some_and(|p| p.chk.is_usable()))
        });
        let (Some(best), Some(active)) = (best, m.active_group) else {
            return Vec::new();
        };
        if best + 1 == active {
            return Vec::new();
        }
        let active_dead = m.groups.get(active.saturating_sub(1)).is_none_or(|g| {
            !g.paths
                .iter()
                .any(|(d, _, _)| self.paths.get(d).is_some_and(|p| p.chk.is_usable()))
        });
        let Some(m) = self.maps.get_mut(wwid) else {
            return Vec::new();
        };
        match m.settings.failback {
            Failback::Manual => Vec::new(),
            Failback::Followover if !active_dead => Vec::new(),
            Failback::Deferred(secs) if path_returned && m.failback_at_ms.is_none() => {
                m.failback_at_ms = Some(now + u64::from(secs) * 1000);
                Vec::new()
            }
            Failback::Deferred(_) => {
                if m.failback_at_ms.is_some_and(|t| t <= now) {
                    m.failback_at_ms = None;
                    m.switch_to(best)
                } else {
                    Vec::new()
                }
            }
            _ => {
                if path_returned || active_dead {
                    m.switch_to(best)
                } else {
                    Vec::new()
                }
            }
        }
    }

    pub(super) fn on_tick(&mut self) -> Vec<Action> {
        let now = self.now_ms;
        let mut actions = Vec::new();
        self.dirty.extend(self.time_waits.iter().cloned());
        for m in self.maps.values() {
            if m.retry_at_ms.is_some_and(|t| t <= now) {
                self.dirty.insert(m.wwid.clone());
            }
        }
        // Only maps with a countdown running: a mutable visit marks a map
        // for the next snapshot, and this runs every second.
        let wwids: Vec<String> = self
            .maps
            .values()
            .filter(|m| {
                matches!(m.queue.mode, Queueing::Retrying { deadline_ms } if now >= deadline_ms)
                    || m.failback_at_ms.is_some()
            })
            .map(|m| m.wwid.clone())
            .collect();
        for wwid in wwids {
            if let Some(m) = self.maps.get_mut(&wwid) {
                if let Queueing::Retrying { deadline_ms } = m.queue.mode {
                    if now >= deadline_ms {
                        warn!(map = %m.name, "no_path_retry exhausted: failing queued I/O");
                        m.queue.mode = Queueing::Off;
                        m.stats.q_timeouts += 1;
                        actions.push(Action::Message {
                            map: m.name.clone(),
                            msg: DmMessage::FailIfNoPath,
                        });
                    }
                }
            }
            if self
                .maps
                .get(&wwid)
                .is_some_and(|m| m.failback_at_ms.is_some())
            {
                actions.extend(self.maybe_failback(&wwid, false));
            }
        }
        actions
    }
}
