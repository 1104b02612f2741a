//! Applies the engine's actions through the kernel traits and turns the
//! outcomes back into events.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{debug, error, warn};

use super::{MapKernel, ProbeRequest, ProbeResult, Prober, WwidStore};
use crate::model::ChkState;
use crate::policy::{Action, Event};

pub struct Executor {
    pub(crate) kernel: Arc<dyn MapKernel>,
    prober: Arc<dyn Prober>,
    pub(crate) wwids: Arc<dyn WwidStore>,
    errors: Vec<String>,
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
            errors: Vec::new(),
        }
    }

    /// Errors from the last actions, for the reply to an operator command.
    pub fn take_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.errors)
    }

    /// Apply actions in order; probes run in the background and report on
    /// `probe_tx`. Returns the events the kernel's answers produced.
    pub fn apply(
        &mut self,
        actions: Vec<Action>,
        probe_tx: &mpsc::Sender<ProbeResult>,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        for action in actions {
            match action {
                Action::Probe {
                    dev,
                    info,
                    checker,
                    timeout_secs,
                    prio,
                    prio_args,
                    with_prio,
                    exclusive_pref_bit,
                } => {
                    let req = ProbeRequest {
                        info: *info,
                        checker,
                        timeout_secs,
                        prio,
                        prio_args,
                        with_prio,
                        exclusive_pref_bit,
                    };
                    let fut = self.prober.probe(req);
                    let tx = probe_tx.clone();
                    match tokio::runtime::Handle::try_current() {
                        Ok(h) => {
                            h.spawn(async move {
                                let r = fut.await;
                                let _ = tx.send(r).await;
                            });
                        }
                        Err(_) => {
                            // No runtime (unit tests of the executor): report
                            // the probe as not run.
                            let _ = tx.try_send(ProbeResult {
                                dev,
                                chk: ChkState::Undef,
                                prio: None,
                                msg: "no runtime".into(),
                            });
                        }
                    }
                }
                Action::CreateMap {
                    name,
                    uuid,
                    size,
                    params,
                } => match self.kernel.create(&name, &uuid, size, &params) {
                    Ok(minor) => {
                        events.push(Event::MapApplied {
                            name: name.clone(),
                            ok: true,
                            removed: false,
                            dm_minor: minor,
                            error: None,
                        });
                        touched.insert(name);
                    }
                    Err(e) => {
                        error!(map = %name, error = %e, %params, "create failed");
                        self.errors.push(e.to_string());
                        events.push(Event::MapApplied {
                            name,
                            ok: false,
                            removed: false,
                            dm_minor: None,
                            error: Some(e.to_string()),
                        });
                    }
                },
                Action::ReloadMap { name, size, params } => {
                    match self.kernel.reload(&name, size, &params) {
                        Ok(()) => {
                            events.push(Event::MapApplied {
                                name: name.clone(),
                                ok: true,
                                removed: false,
                                dm_minor: None,
                                error: None,
                            });
                            touched.insert(name);
                        }
                        Err(e) => {
                            error!(map = %name, error = %e, %params, "reload failed");
                            self.errors.push(e.to_string());
                            events.push(Event::MapApplied {
                                name,
                                ok: false,
                                removed: false,
                                dm_minor: None,
                                error: Some(e.to_string()),
                            });
                        }
                    }
                }
                Action::RemoveMap { name } => {
                    let r = self.kernel.remove(&name);
                    if let Err(e) = &r {
                        warn!(map = %name, error = %e, "remove failed");
                        self.errors.push(e.to_string());
                    }
                    touched.remove(&name);
                    events.push(Event::MapApplied {
                        name,
                        ok: r.is_ok(),
                        removed: true,
                        dm_minor: None,
                        error: r.err().map(|e| e.to_string()),
                    });
                }
                Action::Message { map, msg } => {
                    debug!(%map, %msg, "dm message");
                    if let Err(e) = self.kernel.message(&map, &msg) {
                        warn!(%map, %msg, error = %e, "dm message failed");
                        self.errors.push(e.to_string());
                    }
                    touched.insert(map);
                }
                Action::AddWwid(w) => {
                    if let Err(e) = self.wwids.add(&w) {
                        warn!(wwid = %w, error = %e, "cannot record WWID in the wwids file");
                    }
                }
            }
        }
        // One status read per touched map brings dm's view back in.
        for name in touched {
            match self.kernel.status(&name) {
                Ok(ev) => events.push(ev),
                Err(e) => debug!(map = %name, error = %e, "status read failed"),
            }
        }
        events
    }
}
