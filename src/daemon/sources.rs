//! The daemon's event sources, one function each (as stratisd's run loop
//! has them): the control socket, signals, dm events and udev.

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use super::Request;
use crate::discovery::{PathBatch, PathSource, UdevPathSource};
use crate::ipc::{self, reply, Command};
use crate::policy::MapCommand;
use crate::{Error, Result};

use super::systemd::notify;

/// Why a socket command is answered `fail` without reaching the daemon.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error(transparent)]
    Key(#[from] crate::pr::PrError),
    #[error("{0:?} is not supported by mpathd")]
    Unsupported(Command),
}

/// Translate a root-only socket command into a daemon request, or answer
/// it directly.
fn to_request(cmd: Command) -> std::result::Result<Request, Refusal> {
    use Command as C;
    Ok(match cmd {
        C::FailPath { path } => Request::Map(MapCommand::FailPath(path)),
        C::ReinstatePath { path } => Request::Map(MapCommand::ReinstatePath(path)),
        C::SwitchGroup { map, group } => Request::Map(MapCommand::SwitchGroup {
            map,
            group: usize::try_from(group).unwrap_or(0),
        }),
        C::DelMap { map } => Request::Map(MapCommand::RemoveMap(map)),
        C::DelMaps => Request::Map(MapCommand::RemoveAllMaps),
        C::AddMap { map } => Request::Map(MapCommand::AddMap(map)),
        C::ReloadMap { map } | C::ResetMap { map } => Request::Map(MapCommand::ReloadMap(map)),
        C::ResizeMap { map } => Request::Resize(map),
        C::AddPath { path } => Request::AddPath(path),
        C::DelPath { path } => Request::Map(MapCommand::DelPath(path)),
        C::DisableQueueingMap { map } => Request::Map(MapCommand::DisableQueueing(Some(map))),
        C::RestoreQueueingMap { map } => Request::Map(MapCommand::RestoreQueueing(Some(map))),
        C::DisableQueueingMaps => Request::Map(MapCommand::DisableQueueing(None)),
        C::RestoreQueueingMaps => Request::Map(MapCommand::RestoreQueueing(None)),
        C::ResetMapsStats => Request::Map(MapCommand::ResetStats(None)),
        C::ResetMapStats { map } => Request::Map(MapCommand::ResetStats(Some(map))),
        C::SuspendMap { map } => Request::Suspend(map),
        C::ResumeMap { map } => Request::Resume(map),
        C::Reconfigure => Request::Reconfigure { all: false },
        C::ReconfigureAll => Request::Reconfigure { all: true },
        C::Shutdown => Request::Shutdown,
        C::ForceQueueingDaemon => Request::QueueWithoutDaemon(true),
        C::RestoreQueueingDaemon => Request::QueueWithoutDaemon(false),
        C::SetPrStatus { map } => Request::Map(MapCommand::SetPrStatus {
            map,
            registered: Vec::new(),
        }),
        C::SetPrStatusPathList { map, pathlist } => Request::Map(MapCommand::SetPrStatus {
            map,
            registered: pathlist.split_whitespace().map(str::to_string).collect(),
        }),
        C::UnsetPrStatus { map } => Request::Map(MapCommand::UnsetPrStatus(map)),
        C::SetPrKey { map, key } => {
            let key = key.parse::<crate::pr::PrKey>()?;
            if key.key == 0 {
                return Err(crate::pr::PrError::ZeroKey.into());
            }
            Request::Map(MapCommand::SetPrKey {
                map,
                key: Some(key),
            })
        }
        C::UnsetPrKey { map } => Request::Map(MapCommand::SetPrKey { map, key: None }),
        other => return Err(Refusal::Unsupported(other)),
    })
}

fn reply_text(r: &super::Reply) -> String {
    use crate::CommandError as E;
    match r {
        Ok(()) => reply::OK.to_string(),
        Err(E::InUse) => reply::fail(reply::BUSY),
        Err(E::NotFound) => reply::fail(reply::NO_DEVICE),
        Err(E::Invalid(e) | E::Failed(e)) => reply::fail(e),
    }
}

/// Control-socket commands become daemon requests; their outcome goes back
/// as multipathd's reply text.
pub(super) fn socket_requests(
    mut commands: mpsc::Receiver<ipc::MutationRequest>,
    requests: mpsc::Sender<(Request, oneshot::Sender<super::Reply>)>,
    stop: watch::Sender<bool>,
) {
    tokio::spawn(async move {
        while let Some((cmd, reply_tx)) = commands.recv().await {
            let req = match to_request(cmd) {
                Ok(r) => r,
                Err(e) => {
                    let _ = reply_tx.send(reply::fail(&e.to_string()));
                    continue;
                }
            };
            let reconfigure = matches!(req, Request::Reconfigure { .. });
            let shutdown = matches!(req, Request::Shutdown);
            if reconfigure {
                notify(&[sd_notify::NotifyState::Reloading]);
            }
            let (tx, rx) = oneshot::channel();
            if requests.send((req, tx)).await.is_err() {
                let _ = reply_tx.send(reply::FAIL.to_string());
                continue;
            }
            let r = rx
                .await
                .unwrap_or_else(|_| Err(crate::CommandError::Failed("daemon stopped".into())));
            if reconfigure {
                notify(&[sd_notify::NotifyState::Ready]);
            }
            let _ = reply_tx.send(reply_text(&r));
            if shutdown {
                let _ = stop.send(true);
            }
        }
    });
}

/// Signals: HUP reconfigures, TERM and INT stop.
pub(super) fn signals(
    requests: mpsc::Sender<(Request, oneshot::Sender<super::Reply>)>,
    stop: watch::Sender<bool>,
) -> Result<()> {
    let mut signals = signal_hook_tokio::Signals::new([
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| Error::Other(format!("signal handlers: {e}")))?;
    tokio::spawn(async move {
        while let Some(sig) = signals.next().await {
            if sig == signal_hook::consts::SIGHUP {
                info!("SIGHUP: reconfiguring");
                notify(&[sd_notify::NotifyState::Reloading]);
                let (tx, rx) = oneshot::channel();
                if requests
                    .send((Request::Reconfigure { all: false }, tx))
                    .await
                    .is_ok()
                {
                    let _ = rx.await;
                }
                notify(&[sd_notify::NotifyState::Ready]);
            } else {
                info!(signal = sig, "stopping");
                notify(&[sd_notify::NotifyState::Stopping]);
                let _ = stop.send(true);
            }
        }
    });
    Ok(())
}

/// dm events: the names of the maps whose event counter moved, batched.
/// Without them the checkers still find every failure, later.
pub(super) fn dm_events() -> mpsc::Receiver<Vec<String>> {
    let (tx, rx) = mpsc::channel::<Vec<String>>(256);
    // For the guest test that proves detection comes from dm events: the
    // same run without them must miss it.
    if std::env::var("MPATHD_DM_EVENTS").is_ok_and(|v| v == "off") {
        warn!("MPATHD_DM_EVENTS=off: not following dm events (a test setting)");
        std::mem::forget(tx);
        return rx;
    }
    match crate::dm::watch(1024) {
        Ok((_task, mut events)) => {
            tokio::spawn(async move {
                while let Some(first) = events.recv().await {
                    let mut names = vec![first.name];
                    while let Ok(more) = events.try_recv() {
                        names.push(more.name);
                    }
                    names.sort();
                    names.dedup();
                    if tx.send(names).await.is_err() {
                        break;
                    }
                }
            });
        }
        Err(e) => warn!(error = %e, "dm events unavailable; relying on checkers"),
    }
    rx
}

/// udev: discovery's coalesced batches, the coldplug first.
pub(super) fn udev_paths(source: &UdevPathSource) -> Result<mpsc::Receiver<PathBatch>> {
    source.start()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refusal(cmd: Command) -> Refusal {
        match to_request(cmd) {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn refusals_are_answered_at_once() {
        let key = |k: &str| Command::SetPrKey {
            map: "mpatha".into(),
            key: k.into(),
        };
        assert!(to_request(key("0x1a")).is_ok());
        let e = refusal(key("0xzz"));
        assert!(
            matches!(e, Refusal::Key(crate::pr::PrError::BadKey(_))),
            "{e:?}"
        );
        let e = refusal(key("0x0"));
        assert!(
            matches!(e, Refusal::Key(crate::pr::PrError::ZeroKey)),
            "{e:?}"
        );
        assert_eq!(e.to_string(), crate::pr::PrError::ZeroKey.to_string());
        let e = refusal(Command::ShowMaps);
        assert!(matches!(e, Refusal::Unsupported(Command::ShowMaps)));
        assert_eq!(e.to_string(), "ShowMaps is not supported by mpathd");
    }
}
