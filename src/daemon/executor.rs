//! Applies the engine's actions through the kernel traits and turns the
//! outcomes back into events.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};
use tracing::{debug, error, warn};

use super::{MapKernel, ProbeResult, Prober, WwidStore};
use crate::policy::{Action, Event, MapChange};
use crate::transport::{self, Outcome, TransportWriter};

/// Map removals that may run at once, off the run loop so it stays
/// responsive. A remove still waits for udev (the devicemapper crate's
/// udev sync), which takes seconds under a uevent storm: a slot is mostly
/// a parked thread, so the bound is high.
const REMOVE_SLOTS: usize = 256;

/// Map creates and reloads that may run at once. A load does not wait for
/// udev but works in the kernel (a new map allocates its request queue),
/// so more loads at once only queue for the CPUs, where they starved the
/// first checks of paths whose maps were still to come (a cold start at
/// 1,024 paths waited seconds on a few of them). Few enough that checks
/// (up to 64 at once) keep most of the CPUs, enough that one load's
/// waits in the kernel overlap others' work.
const LOAD_SLOTS: usize = 16;

pub struct Executor {
    pub(crate) kernel: Arc<dyn MapKernel>,
    pub prober: Arc<dyn Prober>,
    pub(crate) wwids: Arc<dyn WwidStore>,
    /// None until the daemon names one: then transport writes are refused
    /// (and reported as such), never silently dropped.
    transport: Option<Arc<dyn TransportWriter>>,
    errors: Vec<crate::Error>,
    /// Where background map changes report; None: apply them inline.
    applied_tx: Option<mpsc::Sender<Vec<Event>>>,
    remove_slots: Arc<Semaphore>,
    load_slots: Arc<Semaphore>,
}

/// A map change, run inline or on a blocking thread.
trait RunChange {
    fn run(self, k: &dyn MapKernel) -> (Vec<Event>, Option<crate::Error>);
}

impl RunChange for MapChange {
    /// Apply and describe the outcome as events (plus the new status).
    fn run(self, k: &dyn MapKernel) -> (Vec<Event>, Option<crate::Error>) {
        let (name, result, removed, table) = match self {
            MapChange::Create {
                name,
                uuid,
                size,
                table,
                skip_kpartx,
            } => {
                let r = k.create(&name, &uuid, size, &table, skip_kpartx);
                (name, r, false, Some(table))
            }
            MapChange::Reload {
                name,
                size,
                table,
                skip_kpartx,
            } => {
                let r = k.reload(&name, size, &table, skip_kpartx).map(|()| None);
                (name, r, false, Some(table))
            }
            MapChange::Remove { name, deferred } => {
                let r = k.remove(&name, deferred).map(|()| None);
                (name, r, true, None)
            }
        };
        match result {
            Ok(minor) => {
                let mut ev = vec![Event::MapApplied {
                    name: name.clone(),
                    ok: true,
                    removed,
                    dm_minor: minor,
                    error: None,
                }];
                if !removed {
                    match k.status(&name) {
                        Ok(live) => ev.push(Event::dm_status(&name, live)),
                        Err(e) => debug!(map = %name, error = %e, "status read failed"),
                    }
                }
                (ev, None)
            }
            Err(e) => {
                if removed {
                    warn!(map = %name, error = %e, "remove failed");
                } else {
                    let table = table.map(|t| t.to_string()).unwrap_or_default();
                    error!(map = %name, error = %e, %table, "map load failed");
                }
                let msg = e.to_string();
                (
                    vec![Event::MapApplied {
                        name,
                        ok: false,
                        removed,
                        dm_minor: None,
                        error: Some(msg),
                    }],
                    Some(e),
                )
            }
        }
    }
}

impl Executor {
    pub fn new(
        kernel: Arc<dyn MapKernel>,
        prober: Arc<dyn Prober>,
        wwids: Arc<dyn WwidStore>,
    ) -> Self {
        Executor {
            kernel,
            prober,
            wwids,
            transport: None,
            errors: Vec::new(),
            applied_tx: None,
            remove_slots: Arc::new(Semaphore::new(REMOVE_SLOTS)),
            load_slots: Arc::new(Semaphore::new(LOAD_SLOTS)),
        }
    }

    /// Run creates/reloads/removes in the background, reporting on `tx`;
    /// None: inline (operator commands, whose reply needs the outcome).
    pub fn set_background(
        &mut self,
        tx: Option<mpsc::Sender<Vec<Event>>>,
    ) -> Option<mpsc::Sender<Vec<Event>>> {
        std::mem::replace(&mut self.applied_tx, tx)
    }

    pub fn set_transport(&mut self, t: Arc<dyn TransportWriter>) {
        self.transport = Some(t);
    }

    fn tune_transport(&self, dev: String, plan: &transport::Plan) -> Event {
        let report = match &self.transport {
            Some(t) => t.apply(plan),
            None => transport::Report {
                done: plan
                    .writes
                    .iter()
                    .map(|w| (w.clone(), Outcome::Refused("no transport writer".into())))
                    .collect(),
                notes: plan.notes.clone(),
            },
        };
        Event::TransportTuned { dev, report }
    }

    /// Errors from the last actions, for the reply to an operator command.
    pub fn take_errors(&mut self) -> Vec<crate::Error> {
        std::mem::take(&mut self.errors)
    }

    fn change(&mut self, change: MapChange, events: &mut Vec<Event>) {
        if let (Some(tx), Ok(handle)) = (
            self.applied_tx.clone(),
            tokio::runtime::Handle::try_current(),
        ) {
            let kernel = self.kernel.clone();
            let slots = match change {
                MapChange::Remove { .. } => self.remove_slots.clone(),
                MapChange::Create { .. } | MapChange::Reload { .. } => self.load_slots.clone(),
            };
            let name = change.name().to_string();
            handle.spawn(async move {
                let _permit = slots.acquire_owned().await;
                let events = match tokio::task::spawn_blocking(move || {
                    change.run(kernel.as_ref()).0
                })
                .await
                {
                    Ok(ev) => ev,
                    Err(e) => {
                        error!(map = %name, error = %e, "map change task failed");
                        vec![Event::MapApplied {
                            name,
                            ok: false,
                            removed: false,
                            dm_minor: None,
                            error: Some(e.to_string()),
                        }]
                    }
                };
                let _ = tx.send(events).await;
            });
            return;
        }
        let (ev, err) = change.run(self.kernel.as_ref());
        events.extend(ev);
        self.errors.extend(err);
    }

    /// Apply actions in order; probes (and, in background mode, map
    /// changes) run concurrently and report later. Returns the events the
    /// kernel's immediate answers produced.
    pub fn apply(
        &mut self,
        actions: Vec<Action>,
        probe_tx: &mpsc::Sender<ProbeResult>,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        // Probes that fell due together go out as one batch.
        let mut probes = Vec::new();
        for action in actions {
            match action {
                Action::Probe(req) => probes.push(*req),
                Action::Map(change) => {
                    if let MapChange::Remove { name, .. } = &change {
                        touched.remove(name);
                    }
                    self.change(change, &mut events);
                }
                Action::Message { map, msg } => {
                    debug!(%map, %msg, "dm message");
                    if let Err(e) = self.kernel.message(&map, &msg) {
                        warn!(%map, %msg, error = %e, "dm message failed");
                        self.errors.push(e);
                    }
                    touched.insert(map);
                }
                Action::AddBinding { alias, wwid } => {
                    if let Err(e) = self.wwids.add_binding(&alias, &wwid) {
                        warn!(%alias, %wwid, error = %e, "cannot record the binding in the bindings file");
                    }
                }
                Action::TuneTransport { dev, plan } => {
                    events.push(self.tune_transport(dev, &plan));
                }
                Action::TriggerUevent { dev } => match &self.transport {
                    Some(t) => {
                        debug!(path = %dev, "change uevent sent, so udev's rules claim the path");
                        if let Err(e) = t.trigger_change(&dev) {
                            warn!(path = %dev, error = %e, "cannot trigger a change uevent");
                        }
                    }
                    None => warn!(path = %dev, "no sysfs writer: change uevent not sent"),
                },
                Action::SetPrKey { wwid, key } => {
                    if let Err(e) = self.wwids.set_prkey(&wwid, key) {
                        warn!(%wwid, error = %e, "cannot write the prkeys file");
                        self.errors.push(e);
                    }
                }
                Action::AddWwid(w) => {
                    if let Err(e) = self.wwids.add(&w) {
                        warn!(wwid = %w, error = %e, "cannot record WWID in the wwids file");
                    }
                }
            }
        }
        if !probes.is_empty() {
            self.prober.probe_batch(probes, probe_tx);
        }
        // One status read per messaged map brings dm's view back in.
        for name in touched {
            match self.kernel.status(&name) {
                Ok(live) => events.push(Event::dm_status(&name, live)),
                Err(e) => debug!(map = %name, error = %e, "status read failed"),
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::daemon::tests::{MemWwids, SimProber};
    use crate::dm::{DmMessage, LiveMap, MultipathTable};

    /// How many calls of one kind were inside the kernel at once.
    #[derive(Default)]
    struct Gauge {
        now: AtomicUsize,
        max: AtomicUsize,
    }

    impl Gauge {
        fn hold(&self) {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(40));
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
        fn max(&self) -> usize {
            self.max.load(Ordering::SeqCst)
        }
    }

    #[derive(Default)]
    struct CountingKernel {
        loads: Gauge,
        removes: Gauge,
    }

    fn no(what: &str) -> crate::Error {
        crate::Error::Other(format!("{what}: not in this test"))
    }

    impl MapKernel for CountingKernel {
        fn existing_maps(&self) -> crate::Result<Vec<super::super::ExistingMap>> {
            Ok(Vec::new())
        }
        fn create(
            &self,
            _: &str,
            _: &str,
            _: u64,
            _: &MultipathTable,
            _: bool,
        ) -> crate::Result<Option<u32>> {
            self.loads.hold();
            Ok(None)
        }
        fn reload(&self, _: &str, _: u64, _: &MultipathTable, _: bool) -> crate::Result<()> {
            self.loads.hold();
            Ok(())
        }
        fn remove(&self, _: &str, _: bool) -> crate::Result<()> {
            self.removes.hold();
            Ok(())
        }
        fn message(&self, _: &str, _: &DmMessage) -> crate::Result<()> {
            Err(no("message"))
        }
        fn status(&self, _: &str) -> crate::Result<LiveMap> {
            Err(no("status"))
        }
        fn suspend(&self, _: &str) -> crate::Result<()> {
            Err(no("suspend"))
        }
        fn resume(&self, _: &str) -> crate::Result<()> {
            Err(no("resume"))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loads_run_a_few_at_a_time_and_removes_do_not_queue_behind_them() {
        let kernel = Arc::new(CountingKernel::default());
        let mut exec = Executor::new(
            kernel.clone(),
            Arc::new(SimProber),
            Arc::new(MemWwids::default()),
        );
        let (tx, mut rx) = mpsc::channel(1024);
        exec.set_background(Some(tx));
        let (probe_tx, _probe_rx) = mpsc::channel(1);
        let n = 64;
        let mut actions = Vec::new();
        for i in 0..n {
            actions.push(Action::Map(MapChange::Create {
                name: format!("new{i}"),
                uuid: format!("mpath-new{i}"),
                size: 8,
                table: MultipathTable::default(),
                skip_kpartx: true,
            }));
            actions.push(Action::Map(MapChange::Remove {
                name: format!("old{i}"),
                deferred: false,
            }));
        }
        exec.apply(actions, &probe_tx);
        let mut applied = 0;
        while applied < 2 * n {
            let events = rx.recv().await.unwrap();
            applied += events
                .iter()
                .filter(|e| matches!(e, Event::MapApplied { ok: true, .. }))
                .count();
        }
        let (loads, removes) = (kernel.loads.max(), kernel.removes.max());
        assert!((2..=LOAD_SLOTS).contains(&loads), "loads at once: {loads}");
        assert!(removes > LOAD_SLOTS, "removes at once: {removes}");
    }
}
