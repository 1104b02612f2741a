//! A new map's paths: transport timeouts before the create, and the change
//! uevents that let udev's rules claim them after.

#![allow(clippy::unwrap_used)]

use super::tests::{applied_3600a, engine, path, probed, probes, settings};
use super::*;
use crate::model::{ChkState, PathInfo};
use crate::policy::StaticPolicy;

/// Every path the actions probe answers up (prio 50) at `now`.
fn all_up(e: &mut Engine, actions: &[Action], now: u64) -> Vec<Action> {
    e.handle_batch(
        probes(actions)
            .into_iter()
            .map(|d| probed(&d, ChkState::Up, 50))
            .collect(),
        now,
    )
}

fn tunes(actions: &[Action]) -> Vec<(String, transport::Plan)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::TuneTransport { dev, plan } => Some((dev.clone(), plan.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_map_triggers_uevents_only_for_paths_udev_has_not_claimed() {
    let with = |dev: &str, minor: u32, props: &[(&str, &str)]| PathInfo {
        properties: props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..path(dev, minor, "3600a")
    };
    let mut e = engine(settings());
    let a = e.handle_batch(
        vec![
            Event::path_added(with("sdb", 16, &[("DM_MULTIPATH_DEVICE_PATH", "1")])),
            Event::path_added(with(
                "sdc",
                32,
                &[
                    ("DM_MULTIPATH_DEVICE_PATH", "1"),
                    ("FIND_MULTIPATHS_WAIT_UNTIL", "0"),
                ],
            )),
            // find_multipaths' "maybe": the rules must run again to claim it.
            Event::path_added(with(
                "sdd",
                48,
                &[
                    ("DM_MULTIPATH_DEVICE_PATH", "1"),
                    ("FIND_MULTIPATHS_WAIT_UNTIL", "1000010"),
                ],
            )),
            Event::path_added(with("sde", 64, &[("DM_MULTIPATH_DEVICE_PATH", "0")])),
            Event::path_added(with("sdf", 80, &[])),
        ],
        0,
    );
    all_up(&mut e, &a, 10);
    let a = e.handle(applied_3600a(None), 20);
    let uevents = uevents(&a);
    assert_eq!(uevents, vec!["sdd", "sde", "sdf"]);
}

/// The paths sent a change uevent, in order.
fn uevents(actions: &[Action]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|x| match x {
            Action::TriggerUevent { dev } => Some(dev.as_str()),
            _ => None,
        })
        .collect()
}

fn iscsi_path(dev: &str, minor: u32, session: &str) -> PathInfo {
    PathInfo {
        endpoint: Some(transport::Endpoint::Iscsi {
            session: session.into(),
        }),
        ..path(dev, minor, "3600a")
    }
}

#[test]
fn map_members_get_transport_timeouts_before_the_create_then_a_change_uevent() {
    let mut e = engine(settings());
    let a = e.handle_batch(
        vec![
            Event::path_added(iscsi_path("sdb", 16, "session1")),
            Event::path_added(iscsi_path("sdc", 32, "session2")),
        ],
        0,
    );
    let a = all_up(&mut e, &a, 10);
    let t = tunes(&a);
    assert_eq!(t.len(), 2, "{a:?}");
    assert_eq!(
        t[0].1.writes,
        vec![transport::Write::SessionRecoveryTmo {
            session: "session1".into(),
            secs: 5
        }]
    );
    let create_at = a
        .iter()
        .position(|x| matches!(x, Action::Map(MapChange::Create { .. })));
    let tune_at = a
        .iter()
        .position(|x| matches!(x, Action::TuneTransport { .. }));
    assert!(
        tune_at < create_at,
        "timeouts are set before the table names the paths"
    );
    // The create lands: both paths get a change uevent for udev's rules.
    let a = e.handle(applied_3600a(None), 20);
    let uevents = uevents(&a);
    assert_eq!(uevents, vec!["sdb", "sdc"]);
    // The writer's report shows in the path's reason.
    let report = transport::Report {
        done: vec![(t[0].1.writes[0].clone(), transport::Outcome::Written)],
        notes: Vec::new(),
    };
    e.handle(
        Event::TransportTuned {
            dev: "sdb".into(),
            report,
        },
        30,
    );
    let snap = e.snapshot();
    let why = snap
        .paths
        .iter()
        .find(|p| p.info.dev == "sdb")
        .map(|p| p.why.clone())
        .unwrap_or_default();
    assert!(
        why.contains("wrote class/iscsi_session/session1/recovery_tmo=5"),
        "{why}"
    );
    // Nothing changed: no rewrite on the next pass.
    let a = e.handle(probed("sdb", ChkState::Up, 50), 6_000);
    assert!(tunes(&a).is_empty());
    // A reconfigure writes them again (with the new value).
    let policy = StaticPolicy {
        settings: Settings {
            fast_io_fail_tmo: Some(8),
            ..settings()
        },
        blacklisted: vec![],
    };
    let a = e.reconfigure(Arc::new(policy), 7_000, false);
    let t = tunes(&a);
    assert_eq!(t.len(), 2, "{a:?}");
    assert_eq!(
        t[1].1.writes,
        vec![transport::Write::SessionRecoveryTmo {
            session: "session2".into(),
            secs: 8
        }]
    );
}

#[test]
fn no_path_retry_raises_dev_loss_for_fc_members() {
    let s = Settings {
        no_path_retry: NoPathRetry::Retries(12),
        dev_loss_tmo: Some(30),
        ..settings()
    };
    let mut e = engine(s);
    let fc = |dev: &str, minor| PathInfo {
        endpoint: Some(transport::Endpoint::Fc {
            rport: format!("rport-1:0-{minor}"),
        }),
        ..path(dev, minor, "3600a")
    };
    let a = e.handle_batch(
        vec![
            Event::path_added(fc("sdb", 16)),
            Event::path_added(fc("sdc", 32)),
        ],
        0,
    );
    let a = all_up(&mut e, &a, 10);
    let t = tunes(&a);
    assert_eq!(
        t[0].1.writes.last(),
        Some(&transport::Write::RportDevLoss {
            rport: "rport-1:0-16".into(),
            secs: 60
        })
    );
}
