//! A scripted probe for simulators and unit tests: per-path check states
//! (a queue consumed one per check, then a sticky state), per-path prios,
//! and hangs that last until released.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::{CheckResult, CheckerKind, PathProbe};
use crate::model::{ChkState, PathInfo};
use crate::prio::{PrioResult, PrioSpec, PRIO_CONST};

#[derive(Debug, Default)]
struct Script {
    queued: HashMap<String, VecDeque<ChkState>>,
    sticky: HashMap<String, ChkState>,
    prios: HashMap<String, i32>,
    hung: HashSet<String>,
    delays: HashMap<String, Duration>,
    panics: HashSet<String>,
    checks: HashMap<String, usize>,
    /// Calls currently blocked in a hang.
    hanging: usize,
}

/// Scripted [`PathProbe`]. Unknown paths are up with prio 1 (const).
#[derive(Debug, Default)]
pub struct SimProbe {
    script: Mutex<Script>,
    released: Condvar,
}

impl SimProbe {
    pub fn new() -> Self {
        SimProbe::default()
    }

    fn lock(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every later check of `dev` returns `state` (after any queued ones).
    pub fn set_state(&self, dev: &str, state: ChkState) {
        self.lock().sticky.insert(dev.to_string(), state);
    }

    /// The next checks of `dev` return these states, one each, in order.
    pub fn push_states(&self, dev: &str, states: impl IntoIterator<Item = ChkState>) {
        self.lock()
            .queued
            .entry(dev.to_string())
            .or_default()
            .extend(states);
    }

    pub fn set_prio(&self, dev: &str, prio: i32) {
        self.lock().prios.insert(dev.to_string(), prio);
    }

    /// Checks and prios of `dev` block (like an SG_IO on a dead target)
    /// until [`SimProbe::release`].
    pub fn hang(&self, dev: &str) {
        self.lock().hung.insert(dev.to_string());
    }

    /// Checks of `dev` take `d` before they answer (a slow but live path).
    pub fn set_delay(&self, dev: &str, d: Duration) {
        self.lock().delays.insert(dev.to_string(), d);
    }

    /// Checks of `dev` panic (a probe bug), to test that it stays contained.
    pub fn panic_on(&self, dev: &str) {
        self.lock().panics.insert(dev.to_string());
    }

    pub fn release(&self, dev: &str) {
        self.lock().hung.remove(dev);
        self.released.notify_all();
    }

    /// How many checks of `dev` started.
    pub fn checks(&self, dev: &str) -> usize {
        self.lock().checks.get(dev).copied().unwrap_or(0)
    }

    /// How many calls are blocked in a hang right now.
    pub fn hanging(&self) -> usize {
        self.lock().hanging
    }

    fn wait_while_hung<'a>(
        &'a self,
        mut g: MutexGuard<'a, Script>,
        dev: &str,
    ) -> MutexGuard<'a, Script> {
        if g.hung.contains(dev) {
            g.hanging += 1;
            while g.hung.contains(dev) {
                g = self.released.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            g.hanging -= 1;
        }
        g
    }
}

impl PathProbe for SimProbe {
    fn check(&self, dev: &str, checker: CheckerKind, _timeout: Duration) -> CheckResult {
        let mut g = self.lock();
        *g.checks.entry(dev.to_string()).or_default() += 1;
        let mut g = self.wait_while_hung(g, dev);
        if g.panics.contains(dev) {
            drop(g);
            panic!("scripted checker panic on {dev}");
        }
        if let Some(d) = g.delays.get(dev).copied() {
            drop(g);
            std::thread::sleep(d);
            g = self.lock();
        }
        let state = g
            .queued
            .get_mut(dev)
            .and_then(|q| q.pop_front())
            .or_else(|| g.sticky.get(dev).copied())
            .unwrap_or(ChkState::Up);
        CheckResult::standard(checker, state)
    }

    fn prio(&self, path: &PathInfo, spec: &PrioSpec, _timeout: Duration) -> PrioResult {
        let g = self.lock();
        let g = self.wait_while_hung(g, &path.dev);
        match g.prios.get(&path.dev) {
            Some(p) => PrioResult::new(*p, spec.name.clone()),
            None => PrioResult::new(PRIO_CONST, "const"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scripted() {
        let s = SimProbe::new();
        let t = Duration::from_secs(1);
        assert_eq!(s.check("sda", CheckerKind::Tur, t).state, ChkState::Up);
        s.set_state("sda", ChkState::Down);
        s.push_states("sda", [ChkState::Ghost, ChkState::Pending]);
        assert_eq!(s.check("sda", CheckerKind::Tur, t).state, ChkState::Ghost);
        assert_eq!(s.check("sda", CheckerKind::Tur, t).state, ChkState::Pending);
        assert_eq!(s.check("sda", CheckerKind::Tur, t).state, ChkState::Down);
        assert_eq!(s.checks("sda"), 4);
        let p = PathInfo {
            dev: "sda".into(),
            ..Default::default()
        };
        assert_eq!(s.prio(&p, &PrioSpec::new("alua", ""), t).prio, 1);
        s.set_prio("sda", 50);
        assert_eq!(s.prio(&p, &PrioSpec::new("alua", ""), t).prio, 50);
    }
}
