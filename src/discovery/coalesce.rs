//! Pure coalescing and batching of device events.
//!
//! Events for one device within a batch window collapse into what matters
//! at the end of it (add+change = add with the latest data, add+remove =
//! nothing, remove+add = remove then add), and the window is closed after
//! a quiet period or a maximum delay, so a storm of a thousand new paths
//! reaches the policy as one batch (one table load per map).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A device event carrying payload `T` (raw udev data, or a `PathInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevEvent<T> {
    Add(String, T),
    Change(String, T),
    Remove(String),
}

impl<T> DevEvent<T> {
    pub fn dev(&self) -> &str {
        match self {
            DevEvent::Add(d, _) | DevEvent::Change(d, _) | DevEvent::Remove(d) => d,
        }
    }
}

/// What is pending for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending<T> {
    Add(T),
    Change(T),
    Remove,
    /// The device went away and a (possibly different) one took its name.
    RemoveThenAdd(T),
    /// Added and removed again within the window: nothing to say.
    Nothing,
}

impl<T> Pending<T> {
    fn then(self, ev: DevEvent<T>) -> Pending<T> {
        use Pending::*;
        match (self, ev) {
            (Nothing, DevEvent::Add(_, x)) => Add(x),
            (Nothing, DevEvent::Change(_, x)) => Change(x),
            (Nothing, DevEvent::Remove(_)) => Nothing,
            (Add(_) | Change(_), DevEvent::Add(_, x)) => Add(x),
            (Add(_), DevEvent::Change(_, x)) => Add(x),
            (Add(_), DevEvent::Remove(_)) => Nothing,
            (Change(_), DevEvent::Change(_, x)) => Change(x),
            (Change(_), DevEvent::Remove(_)) => Remove,
            (Remove, DevEvent::Add(_, x)) => RemoveThenAdd(x),
            // A change after remove describes a device that is gone.
            (Remove, DevEvent::Change(..)) => Remove,
            (Remove, DevEvent::Remove(_)) => Remove,
            (RemoveThenAdd(_), DevEvent::Add(_, x) | DevEvent::Change(_, x)) => RemoveThenAdd(x),
            (RemoveThenAdd(_), DevEvent::Remove(_)) => Remove,
        }
    }
}

/// Collects events and coalesces them per device, remembering the order in
/// which devices first appeared in the window.
#[derive(Debug, Clone)]
pub struct Coalescer<T> {
    order: Vec<String>,
    pending: HashMap<String, Pending<T>>,
    /// Raw events pushed since the last drain.
    received: usize,
}

impl<T> Default for Coalescer<T> {
    fn default() -> Self {
        Coalescer {
            order: Vec::new(),
            pending: HashMap::new(),
            received: 0,
        }
    }
}

impl<T> Coalescer<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, ev: DevEvent<T>) {
        self.received += 1;
        let dev = ev.dev().to_string();
        match self.pending.remove(&dev) {
            Some(p) => {
                self.pending.insert(dev, p.then(ev));
            }
            None => {
                // A lone remove is kept: the device was known before the window.
                let p = match ev {
                    DevEvent::Add(_, x) => Pending::Add(x),
                    DevEvent::Change(_, x) => Pending::Change(x),
                    DevEvent::Remove(_) => Pending::Remove,
                };
                self.order.push(dev.clone());
                self.pending.insert(dev, p);
            }
        }
    }

    /// Raw events received since the last drain (0 = nothing pending).
    pub fn received(&self) -> usize {
        self.received
    }

    pub fn is_empty(&self) -> bool {
        self.received == 0
    }

    /// Devices with something pending.
    pub fn devices(&self) -> usize {
        self.pending.len()
    }

    /// The coalesced events, in the order devices first appeared.
    pub fn drain(&mut self) -> Vec<DevEvent<T>> {
        let mut out = Vec::with_capacity(self.order.len());
        for dev in self.order.drain(..) {
            match self.pending.remove(&dev) {
                Some(Pending::Add(x)) => out.push(DevEvent::Add(dev, x)),
                Some(Pending::Change(x)) => out.push(DevEvent::Change(dev, x)),
                Some(Pending::Remove) => out.push(DevEvent::Remove(dev)),
                Some(Pending::RemoveThenAdd(x)) => {
                    out.push(DevEvent::Remove(dev.clone()));
                    out.push(DevEvent::Add(dev, x));
                }
                Some(Pending::Nothing) | None => {}
            }
        }
        self.pending.clear();
        self.received = 0;
        out
    }
}

/// When to close a batch: `quiet` after the last event, but no later than
/// `max_delay` after the first, or at once when `max_devices` are pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchWindow {
    pub quiet: Duration,
    pub max_delay: Duration,
    pub max_devices: usize,
}

impl Default for BatchWindow {
    fn default() -> Self {
        BatchWindow {
            quiet: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            max_devices: 65536,
        }
    }
}

impl BatchWindow {
    /// Deadline of a window whose first event came at `first` and last at `last`.
    pub fn deadline(&self, first: Instant, last: Instant) -> Instant {
        (last + self.quiet).min(first + self.max_delay)
    }

    /// Whether a window must close now.
    pub fn is_due(&self, first: Instant, last: Instant, devices: usize, now: Instant) -> bool {
        devices >= self.max_devices || now >= self.deadline(first, last)
    }
}

/// A coalescer with its window's timing: feed events with their arrival
/// time, ask for the deadline, take the batch when due. Pure (the caller
/// owns the clock).
#[derive(Debug, Clone)]
pub struct Batcher<T> {
    pub window: BatchWindow,
    co: Coalescer<T>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl<T> Batcher<T> {
    pub fn new(window: BatchWindow) -> Self {
        Batcher {
            window,
            co: Coalescer::new(),
            first: None,
            last: None,
        }
    }

    pub fn push(&mut self, ev: DevEvent<T>, at: Instant) {
        self.first.get_or_insert(at);
        self.last = Some(at);
        self.co.push(ev);
    }

    pub fn is_empty(&self) -> bool {
        self.co.is_empty()
    }

    /// When the open window closes; None when nothing is pending.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.first, self.last) {
            (Some(f), Some(l)) => Some(self.window.deadline(f, l)),
            _ => None,
        }
    }

    pub fn is_due(&self, now: Instant) -> bool {
        match (self.first, self.last) {
            (Some(f), Some(l)) => self.window.is_due(f, l, self.co.devices(), now),
            _ => false,
        }
    }

    /// Closes the window and returns its coalesced events (maybe empty,
    /// e.g. after add+remove).
    pub fn take(&mut self) -> Vec<DevEvent<T>> {
        self.first = None;
        self.last = None;
        self.co.drain()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn add(d: &str, v: u32) -> DevEvent<u32> {
        DevEvent::Add(d.into(), v)
    }
    fn change(d: &str, v: u32) -> DevEvent<u32> {
        DevEvent::Change(d.into(), v)
    }
    fn remove(d: &str) -> DevEvent<u32> {
        DevEvent::Remove(d.into())
    }

    fn run(evs: Vec<DevEvent<u32>>) -> Vec<DevEvent<u32>> {
        let mut c = Coalescer::new();
        for e in evs {
            c.push(e);
        }
        c.drain()
    }

    #[test]
    fn rules() {
        assert_eq!(run(vec![add("sda", 1), change("sda", 2)]), [add("sda", 2)]);
        assert_eq!(run(vec![add("sda", 1), remove("sda")]), []);
        assert_eq!(
            run(vec![add("sda", 1), remove("sda"), add("sda", 3)]),
            [add("sda", 3)]
        );
        assert_eq!(
            run(vec![change("sda", 1), change("sda", 2)]),
            [change("sda", 2)]
        );
        assert_eq!(run(vec![change("sda", 1), remove("sda")]), [remove("sda")]);
        assert_eq!(run(vec![remove("sda")]), [remove("sda")]);
        assert_eq!(run(vec![remove("sda"), change("sda", 9)]), [remove("sda")]);
        assert_eq!(
            run(vec![remove("sda"), add("sda", 1), change("sda", 2)]),
            [remove("sda"), add("sda", 2)]
        );
        assert_eq!(
            run(vec![remove("sda"), add("sda", 1), remove("sda")]),
            [remove("sda")]
        );
        assert_eq!(run(vec![change("sda", 1), add("sda", 2)]), [add("sda", 2)]);
    }

    #[test]
    fn keeps_first_appearance_order() {
        let out = run(vec![
            add("sdc", 1),
            add("sda", 1),
            change("sdc", 2),
            remove("sdb"),
            add("sdd", 1),
        ]);
        assert_eq!(
            out,
            [add("sdc", 2), add("sda", 1), remove("sdb"), add("sdd", 1)]
        );
    }

    #[test]
    fn storm_of_1000_adds_with_changes_is_one_batch() {
        let t0 = Instant::now();
        let mut b = Batcher::new(BatchWindow::default());
        // udev sends add then change (e.g. after partition scan / ALUA) for each.
        for i in 0..1000u32 {
            let at = t0 + Duration::from_millis(u64::from(i));
            b.push(add(&format!("sd{i}"), i), at);
            b.push(change(&format!("sd{i}"), i + 10_000), at);
            // Events keep coming faster than `quiet`: never due mid-storm
            // before max_delay.
            if at < t0 + Duration::from_secs(2) {
                assert!(!b.is_due(at), "due at {i}");
            }
        }
        let last = t0 + Duration::from_millis(999);
        assert_eq!(b.deadline(), Some(last + Duration::from_millis(200)));
        assert!(b.is_due(last + Duration::from_millis(200)));
        let batch = b.take();
        assert_eq!(batch.len(), 1000);
        assert!(batch
            .iter()
            .enumerate()
            .all(|(i, e)| *e == add(&format!("sd{i}"), i as u32 + 10_000)));
        assert!(b.is_empty() && b.deadline().is_none() && b.take().is_empty());
    }

    #[test]
    fn window_is_capped_by_max_delay_and_size() {
        let t0 = Instant::now();
        let w = BatchWindow {
            quiet: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            max_devices: 3,
        };
        assert_eq!(
            w.deadline(t0, t0 + Duration::from_millis(450)),
            t0 + Duration::from_millis(500)
        );
        let mut b = Batcher::new(w);
        b.push(add("sda", 1), t0);
        b.push(add("sdb", 1), t0);
        assert!(!b.is_due(t0));
        b.push(add("sdc", 1), t0);
        assert!(b.is_due(t0), "size cap closes the window at once");
    }
}
