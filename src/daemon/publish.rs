//! When to publish a new snapshot: at once for a lone change, held back
//! (bounded) while events stream in, so a storm costs a few snapshots a
//! second rather than one per event.

use std::time::{Duration, Instant};

/// The longest a change waits to be published while events stream in.
const MAX_GAP: Duration = Duration::from_millis(500);

/// The throttle's state; the daemon builds and sends the snapshot.
#[derive(Debug, Default)]
pub struct Publisher {
    last: Option<Instant>,
    cost: Duration,
    wanted: bool,
    urgent: bool,
    due: Option<Instant>,
}

impl Publisher {
    /// Something a snapshot shows changed; `urgent`: a path failed or came
    /// back, which watchers want to see at once.
    pub fn want(&mut self, urgent: bool) {
        self.wanted = true;
        self.urgent |= urgent;
    }

    /// Whether to publish now. With input still queued (`backlog`), a
    /// change is held back, but no longer than five times what the last
    /// snapshot cost to build (at most 500 ms); an urgent one no longer
    /// than one build's cost. Without backlog it goes out at once.
    pub fn publish_now(&mut self, backlog: bool, now: Instant) -> bool {
        if !self.wanted {
            return false;
        }
        let gap = if self.urgent {
            self.cost
        } else {
            (self.cost * 5).min(MAX_GAP)
        };
        match self.last {
            Some(t) if backlog && now.saturating_duration_since(t) < gap => {
                let due = t + gap;
                self.due = Some(self.due.map_or(due, |d| d.min(due)));
                false
            }
            _ => true,
        }
    }

    /// When a held-back change must go out.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// A snapshot went out at `at`, having cost `cost` to build.
    pub fn published(&mut self, at: Instant, cost: Duration) {
        self.wanted = false;
        self.urgent = false;
        self.due = None;
        self.cost = cost;
        self.last = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_change_goes_out_at_once_a_storm_is_held_back_bounded() {
        let t0 = Instant::now();
        let mut p = Publisher::default();
        assert!(!p.publish_now(false, t0), "nothing wanted");
        p.want(false);
        assert!(p.publish_now(true, t0), "first snapshot: at once");
        p.published(t0, Duration::from_millis(10));
        p.want(false);
        let soon = t0 + Duration::from_millis(20);
        assert!(!p.publish_now(true, soon), "backlog: held back");
        assert_eq!(p.due(), Some(t0 + Duration::from_millis(50)));
        assert!(p.publish_now(false, soon), "queue drained: at once");
        // An urgent change waits one build's cost at most.
        p.published(soon, Duration::from_millis(10));
        p.want(true);
        assert!(!p.publish_now(true, soon + Duration::from_millis(5)));
        assert_eq!(p.due(), Some(soon + Duration::from_millis(10)));
        // The hold is bounded whatever a build cost.
        p.published(soon, Duration::from_secs(1));
        p.want(false);
        assert!(!p.publish_now(true, soon));
        assert_eq!(p.due(), Some(soon + MAX_GAP));
    }
}
