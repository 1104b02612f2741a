//! The run loop driven end to end with simulated kernel, prober and clock.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;
use crate::model::{DevT, FindMultipaths, PgPolicy, PgState, Settings};
use crate::policy::StaticPolicy;

/// Per map: its table and (path, active) states.
type SimMaps = BTreeMap<String, (String, Vec<(DevT, bool)>)>;

#[derive(Default)]
struct SimKernel {
    maps: Mutex<SimMaps>,
    log: Mutex<Vec<String>>,
}

fn devts(params: &str) -> Vec<(DevT, bool)> {
    params
        .split_whitespace()
        .filter_map(|w| w.parse::<DevT>().ok())
        .map(|d| (d, true))
        .collect()
}

impl MapKernel for SimKernel {
    fn existing_maps(&self) -> crate::Result<Vec<ExistingMap>> {
        Ok(Vec::new())
    }
    fn create(
        &self,
        name: &str,
        _uuid: &str,
        _size: u64,
        table: &crate::dm::MultipathTable,
        _skip_kpartx: bool,
    ) -> crate::Result<Option<u32>> {
        let params = table.to_string();
        let mut maps = self
            .maps
            .lock()
            .map_err(|_| crate::Error::Other("poisoned".into()))?;
        let n = maps.len() as u32;
        maps.insert(name.into(), (params.clone(), devts(&params)));
        self.log
            .lock()
            .map_err(|_| crate::Error::Other("poisoned".into()))?
            .push(format!("create {name}"));
        Ok(Some(n))
    }
    fn reload(
        &self,
        name: &str,
        _size: u64,
        table: &crate::dm::MultipathTable,
        _skip_kpartx: bool,
    ) -> crate::Result<()> {
        let params = table.to_string();
        let mut maps = self
            .maps
            .lock()
            .map_err(|_| crate::Error::Other("poisoned".into()))?;
        maps.insert(name.into(), (params.clone(), devts(&params)));
        Ok(())
    }
    fn remove(&self, name: &str, _deferred: bool) -> crate::Result<()> {
        self.maps
            .lock()
            .map_err(|_| crate::Error::Other("poisoned".into()))?
            .remove(name);
        Ok(())
    }
    fn message(&self, name: &str, msg: &crate::dm::DmMessage) -> crate::Result<()> {
        self.log
            .lock()
            .map_err(|_| crate::Error::Other("poisoned".into()))?
            .push(format!("{name} {msg}"));
        let mut maps = self
            .maps
            .lock()
            .map_err(|_| crate::Error::Other("poisoned".into()))?;
        let m = maps.get_mut(name).ok_or_else(|| {
            crate::Error::Dm(crate::dm::DmError::NotFound {
                map: name.to_string(),
            })
        })?;
        use crate::dm::DmMessage as M;
        if let M::FailPath(devt) | M::ReinstatePath(devt) = *msg {
            for p in m.1.iter_mut().filter(|p| p.0 == devt) {
                p.1 = matches!(msg, M::ReinstatePath(_));
            }
        }
        Ok(())
    }
    fn status(&self, name: &str) -> crate::Result<crate::dm::LiveMap> {
        let maps = self
            .maps
            .lock()
            .map_err(|_| crate::Error::Other("poisoned".into()))?;
        let m = maps.get(name).ok_or_else(|| {
            crate::Error::Dm(crate::dm::DmError::NotFound {
                map: name.to_string(),
            })
        })?;
        use crate::dm::{MultipathStatus, StatusGroup, StatusPath};
        use crate::model::DmPathState;
        let paths =
            m.1.iter()
                .map(|(dev, active)| StatusPath {
                    dev: *dev,
                    state: if *active {
                        DmPathState::Active
                    } else {
                        DmPathState::Failed
                    },
                    fail_count: 0,
                    selector_args: Vec::new(),
                })
                .collect();
        Ok(crate::dm::LiveMap {
            status: MultipathStatus {
                next_pg: 1,
                groups: vec![StatusGroup {
                    state: PgState::Active,
                    selector_args: Vec::new(),
                    paths,
                }],
                ..MultipathStatus::default()
            },
            queue_if_no_path: None,
            suspended: false,
        })
    }
    fn suspend(&self, _name: &str) -> crate::Result<()> {
        Ok(())
    }
    fn resume(&self, _name: &str) -> crate::Result<()> {
        Ok(())
    }
}

pub(super) struct SimProber;
impl Prober for SimProber {
    fn probe(
        &self,
        req: ProbeRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ProbeResult> + Send>> {
        Box::pin(async move {
            let down = req.info.dev_state == crate::model::DevState::Offline;
            ProbeResult {
                dev: req.info.dev.clone(),
                chk: if down { ChkState::Down } else { ChkState::Up },
                prio: Some(if req.info.dev == "sdb" { 50 } else { 1 }),
                msg: String::new(),
                dev_state: None,
                pr: None,
                check_ms: None,
            }
        })
    }
}

#[derive(Default)]
pub(super) struct MemWwids(Mutex<Vec<String>>);
impl WwidStore for MemWwids {
    fn load(&self) -> Vec<String> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
    fn add(&self, wwid: &str) -> crate::Result<()> {
        self.0
            .lock()
            .map_err(|_| crate::Error::Other("poisoned".into()))?
            .push(wwid.into());
        Ok(())
    }
}

fn path(dev: &str, minor: u32) -> PathInfo {
    PathInfo {
        dev: dev.into(),
        devt: Some(DevT::new(8, minor)),
        wwid: Some("36001".into()),
        size: 2048,
        ..PathInfo::default()
    }
}

#[tokio::test(start_paused = true)]
async fn coldplug_creates_map_then_ready_and_commands_work() {
    let policy = StaticPolicy {
        settings: Settings {
            find_multipaths: FindMultipaths::Yes,
            path_grouping_policy: PgPolicy::GroupByPrio,
            ..Settings::default()
        },
        blacklisted: vec![],
    };
    let config = LoadedConfig {
        policy: Arc::new(policy),
        config_dump: "defaults {\n}\n".into(),
        blacklist_dump: "".into(),
        config: None,
        uxsock_timeout_ms: 4000,
    };
    let kernel = Arc::new(SimKernel::default());
    let wwids = Arc::new(MemWwids::default());
    let (snap_tx, mut snap_rx) = watch::channel(Arc::new(DaemonSnapshot::default()));
    let bad = || {
        use crate::config::{ConfigError, Diagnostic, Loc, Severity};
        let file: Arc<str> = Arc::from("test.conf");
        ConfigError {
            diagnostics: vec![Diagnostic::at(
                Severity::Error,
                &Loc::new(&file, 1, 1),
                "bad config",
            )],
        }
    };
    let loader: ConfigLoader = Box::new(move || Err(bad()));
    let mut d = Daemon::new(
        config,
        loader,
        kernel.clone(),
        Arc::new(SimProber),
        wwids.clone(),
        snap_tx,
    );
    let (ready_tx, ready_rx) = oneshot::channel();
    d.on_ready(Box::new(move |_maps| {
        let _ = ready_tx.send(());
    }));
    d.start();
    let (paths_tx, paths_rx) = mpsc::channel(16);
    let (_dm_tx, dm_rx) = mpsc::channel(16);
    let (req_tx, req_rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(d.run(Inputs {
        paths: paths_rx,
        dm_events: dm_rx,
        requests: req_rx,
        shutdown: stop_rx,
    }));
    paths_tx
        .send(PathBatch {
            kind: BatchKind::Coldplug,
            events: vec![
                PathEvent::Add(path("sdb", 16)),
                PathEvent::Add(path("sdc", 32)),
            ],
            notes: Default::default(),
        })
        .await
        .map_err(|_| "send")
        .ok();
    ready_rx.await.ok();
    let snap = snap_rx.borrow_and_update().clone();
    assert_eq!(snap.maps.len(), 1);
    assert_eq!(snap.maps[0].path_groups.len(), 2);
    assert_eq!(snap.maps[0].path_groups[0].paths[0].info.dev, "sdb");
    assert_eq!(wwids.load(), vec!["36001".to_string()]);

    // fail path through a request
    let (tx, rx) = oneshot::channel();
    req_tx
        .send((Request::Map(MapCommand::FailPath("sdc".into())), tx))
        .await
        .ok();
    assert_eq!(rx.await.ok(), Some(Ok(())));
    let snap = snap_rx.borrow_and_update().clone();
    let sdc = snap
        .paths
        .iter()
        .find(|p| p.info.dev == "sdc")
        .map(|p| p.dm_state);
    assert_eq!(sdc, Some(crate::model::DmPathState::Failed));

    // a bad configuration is refused and the old one stays
    let (tx, rx) = oneshot::channel();
    req_tx
        .send((Request::Reconfigure { all: false }, tx))
        .await
        .ok();
    assert_eq!(
        rx.await.ok(),
        Some(Err(crate::CommandError::Invalid(bad().to_string())))
    );
    assert_eq!(&*snap_rx.borrow().config_dump, "defaults {\n}\n");

    stop_tx.send(true).ok();
    task.await.ok();
    assert!(kernel
        .log
        .lock()
        .map(|l| l.contains(&"create 36001".to_string()))
        .unwrap_or(false));
}

#[tokio::test(start_paused = true)]
async fn a_storm_of_events_ends_with_its_last_state_published() {
    let policy = StaticPolicy {
        settings: Settings {
            find_multipaths: FindMultipaths::Yes,
            ..Settings::default()
        },
        blacklisted: vec![],
    };
    let config = LoadedConfig {
        policy: Arc::new(policy),
        config_dump: "".into(),
        blacklist_dump: "".into(),
        config: None,
        uxsock_timeout_ms: 4000,
    };
    let (snap_tx, snap_rx) = watch::channel(Arc::new(DaemonSnapshot::default()));
    let mut d = Daemon::new(
        config,
        Box::new(|| {
            Err(crate::config::ConfigError {
                diagnostics: Vec::new(),
            })
        }),
        Arc::new(SimKernel::default()),
        Arc::new(SimProber),
        Arc::new(MemWwids::default()),
        snap_tx,
    );
    d.start();
    let (paths_tx, paths_rx) = mpsc::channel(256);
    let (_dm_tx, dm_rx) = mpsc::channel(16);
    let (_req_tx, req_rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(d.run(Inputs {
        paths: paths_rx,
        dm_events: dm_rx,
        requests: req_rx,
        shutdown: stop_rx,
    }));
    // One path per batch, as udev delivers a hot add.
    for i in 0..100u32 {
        let mut p = path(&format!("sd{}", (b'a' + (i % 26) as u8) as char), i);
        p.dev = format!("{}{}", p.dev, i / 26);
        p.wwid = Some(format!("360{:02}", i / 4));
        let mut batch = PathBatch::new(BatchKind::Uevents);
        batch.events.push(PathEvent::Add(p));
        paths_tx.send(batch).await.ok();
    }
    // Whatever was held back goes out within the publish gap.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let snap = snap_rx.borrow().clone();
    assert_eq!(snap.paths.len(), 100);
    assert_eq!(snap.maps.len(), 25);
    stop_tx.send(true).ok();
    task.await.ok();
}
