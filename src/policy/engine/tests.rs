//! Deterministic simulations of the policy core with a fake clock.

use super::paths::check_slot;
use super::*;
use crate::discovery::identity::Gap;
use crate::model::{DevState, DevT, FindMultipaths, NoPathRetry, PathInfo, PgPolicy, Settings};
use crate::policy::StaticPolicy;

pub(super) fn path(dev: &str, minor: u32, wwid: &str) -> PathInfo {
    PathInfo {
        dev: dev.into(),
        devt: Some(DevT::new(8, minor)),
        vendor: "Linux".into(),
        product: "scsi_debug".into(),
        wwid: Some(wwid.into()),
        size: 32768,
        tpgs: 1,
        ..PathInfo::default()
    }
}

pub(super) fn engine(settings: Settings) -> Engine {
    let policy = StaticPolicy {
        settings,
        blacklisted: vec!["sdz".into()],
    };
    Engine::new(Arc::new(policy), 42)
}

pub(super) fn settings() -> Settings {
    Settings {
        find_multipaths: FindMultipaths::Yes,
        path_grouping_policy: PgPolicy::GroupByPrio,
        prio: "alua".into(),
        ..Settings::default()
    }
}

pub(super) fn probes(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Probe(r) => Some(r.info.dev.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn messages(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Message { msg, .. } => Some(msg.to_string()),
            _ => None,
        })
        .collect()
}

pub(super) fn probed(dev: &str, chk: ChkState, prio: i32) -> Event {
    Event::Probed(ProbeResult {
        dev: dev.into(),
        chk,
        prio: Some(prio),
        msg: String::new(),
        dev_state: None,
        pr: None,
        check_ms: None,
    })
}

/// Paths sdb and sdc of WWID 3600a appear and check up with prio 1.
fn add_pair_probed(e: &mut Engine) -> Vec<Action> {
    let a = e.handle_batch(
        vec![
            Event::path_added(path("sdb", 16, "3600a")),
            Event::path_added(path("sdc", 32, "3600a")),
        ],
        0,
    );
    e.handle_batch(
        probes(&a)
            .into_iter()
            .map(|d| probed(&d, ChkState::Up, 1))
            .collect(),
        10,
    )
}

/// Two paths, probed, map created and applied.
pub(super) fn two_path_map(settings: Settings) -> Engine {
    let mut e = engine(settings);
    let a = e.handle_batch(
        vec![
            Event::path_added(path("sdb", 16, "3600a")),
            Event::path_added(path("sdc", 32, "3600a")),
        ],
        0,
    );
    assert_eq!(probes(&a), vec!["sdb", "sdc"]);
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::Map(MapChange::Create { .. }))),
        "waits for probes"
    );
    let a = e.handle_batch(
        vec![
            probed("sdb", ChkState::Up, 1),
            probed("sdc", ChkState::Up, 50),
        ],
        100,
    );
    let create: Vec<_> = a
        .iter()
        .filter_map(|a| match a {
            Action::Map(MapChange::Create {
                name,
                uuid,
                table,
                size,
                ..
            }) => Some((name.clone(), uuid.clone(), table.to_string(), *size)),
            _ => None,
        })
        .collect();
    assert_eq!(create.len(), 1);
    assert_eq!(create[0].1, "mpath-3600a");
    assert!(
        create[0]
            .2
            .ends_with("0 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1"),
        "{}",
        create[0].2
    );
    assert!(a.contains(&Action::AddWwid("3600a".into())));
    e.handle(
        Event::MapApplied {
            name: "3600a".into(),
            ok: true,
            removed: false,
            dm_minor: Some(3),
            error: None,
        },
        200,
    );
    e
}

#[test]
fn storm_of_paths_gives_one_create_per_map() {
    let mut e = engine(settings());
    let mut events = Vec::new();
    for lun in 0..50u32 {
        for host in 0..4u32 {
            let minor = lun * 64 + host * 16;
            events.push(Event::path_added(path(
                &format!("sd{lun}x{host}"),
                minor,
                &format!("36{lun:04}"),
            )));
        }
    }
    let a = e.handle_batch(events, 0);
    assert_eq!(probes(&a).len(), 200);
    let results: Vec<Event> = probes(&a)
        .into_iter()
        .map(|d| probed(&d, ChkState::Up, 50))
        .collect();
    let a = e.handle_batch(results, 10);
    let creates = a
        .iter()
        .filter(|a| matches!(a, Action::Map(MapChange::Create { .. })))
        .count();
    assert_eq!(creates, 50);
}

/// dm's status of two_path_map's map: whether sdc (8:32) and sdb (8:16)
/// are active, and which of its two groups is (1-based).
fn status_3600a(sdc_active: bool, sdb_active: bool, active_group: usize) -> Event {
    let mut pg_states = vec![PgState::Enabled, PgState::Enabled];
    pg_states[active_group - 1] = PgState::Active;
    Event::DmStatus {
        name: "3600a".into(),
        paths: vec![
            (DevT::new(8, 32), sdc_active),
            (DevT::new(8, 16), sdb_active),
        ],
        pg_states,
        active_group: Some(active_group),
        queue_if_no_path: None,
        suspended: false,
    }
}

#[test]
fn checker_down_fails_and_up_reinstates() {
    let mut e = two_path_map(settings());
    let a = e.handle(probed("sdc", ChkState::Down, 50), 5_000);
    assert_eq!(messages(&a), vec!["fail_path 8:32"]);
    let snap = e.snapshot();
    assert_eq!(snap.maps[0].stats.path_faults, 1);
    let a = e.handle(probed("sdc", ChkState::Up, 50), 10_000);
    assert!(messages(&a).contains(&"reinstate_path 8:32".to_string()));
}

#[test]
fn kernel_failed_path_is_checked_at_once() {
    let mut e = two_path_map(settings());
    let a = e.handle(status_3600a(false, true, 1), 300);
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::Map(MapChange::Reload { .. }))),
        "a failed path never causes a reload"
    );
    let snap = e.snapshot();
    let sdc = snap
        .paths
        .iter()
        .find(|p| p.info.dev == "sdc")
        .map(|p| (p.dm_state, p.chk_state));
    assert_eq!(sdc, Some((DmPathState::Failed, ChkState::Down)));
    assert_eq!(snap.maps[0].stats.path_faults, 1);
    assert_eq!(probes(&a), vec!["sdc"], "failed path is probed right away");
}

#[test]
fn no_path_retry_counts_then_fails_and_restores() {
    let mut s = settings();
    s.no_path_retry = NoPathRetry::Retries(3);
    let mut e = two_path_map(s);
    e.handle(probed("sdb", ChkState::Down, 1), 1_000);
    e.handle(probed("sdc", ChkState::Down, 50), 1_000);
    assert_eq!(e.snapshot().maps[0].queueing, "15 sec");
    let a = e.handle(Event::Tick, 15_999);
    assert!(messages(&a).is_empty());
    let a = e.handle(Event::Tick, 16_000);
    assert_eq!(messages(&a), vec!["fail_if_no_path"]);
    assert_eq!(e.snapshot().maps[0].stats.q_timeouts, 1);
    let a = e.handle(probed("sdc", ChkState::Up, 50), 20_000);
    let m = messages(&a);
    assert!(m.contains(&"queue_if_no_path".to_string()), "{m:?}");
    assert!(m.contains(&"reinstate_path 8:32".to_string()));
    assert_eq!(e.snapshot().maps[0].queueing, "3 chk");
}

#[test]
fn prio_change_regroups_with_one_reload() {
    let mut e = two_path_map(settings());
    let a = e.handle(probed("sdb", ChkState::Up, 50), 5_000);
    let reloads: Vec<_> = a
        .iter()
        .filter_map(|a| match a {
            Action::Map(MapChange::Reload { table, .. }) => Some(table.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        reloads,
        vec!["0 0 1 1 service-time 0 2 1 8:16 1 8:32 1".to_string()]
    );
    // Same state again: nothing to do.
    e.handle(
        Event::MapApplied {
            name: "3600a".into(),
            ok: true,
            removed: false,
            dm_minor: None,
            error: None,
        },
        5_100,
    );
    let a = e.handle(probed("sdb", ChkState::Up, 50), 30_000);
    assert!(!a
        .iter()
        .any(|a| matches!(a, Action::Map(MapChange::Reload { .. }))));
}

#[test]
fn identity_conflict_keeps_paths_out() {
    let mut e = engine(settings());
    let mut other = path("sdc", 32, "3600a");
    other.size = 1;
    let a = e.handle_batch(
        vec![
            Event::path_added(path("sdb", 16, "3600a")),
            Event::path_added(other),
        ],
        0,
    );
    let a2 = e.handle_batch(
        probes(&a)
            .into_iter()
            .map(|d| probed(&d, ChkState::Up, 1))
            .collect(),
        10,
    );
    assert!(!a2
        .iter()
        .any(|a| matches!(a, Action::Map(MapChange::Create { .. }))));
    let snap = e.snapshot();
    assert!(snap
        .paths
        .iter()
        .all(|p| p.why.starts_with("identity conflict")));
}

#[test]
fn blacklist_and_missing_identity_explain_why() {
    let mut e = engine(settings());
    let mut noid = path("sdd", 48, "");
    noid.wwid = None;
    e.handle_batch(
        vec![
            Event::path_added(path("sdz", 16, "3600b")),
            Event::path_added(noid),
        ],
        0,
    );
    let snap = e.snapshot();
    let why = |d: &str| {
        snap.paths
            .iter()
            .find(|p| p.info.dev == d)
            .map(|p| p.why.clone())
            .unwrap_or_default()
    };
    assert!(
        why("sdz").starts_with("blacklisted by devnode"),
        "{}",
        why("sdz")
    );
    assert!(why("sdd").starts_with("no usable WWID"), "{}", why("sdd"));

    // Discovery's note says why there is no identity; the reason shows it,
    // and a later event without the note clears it.
    let mut noid = path("sdd", 48, "");
    noid.wwid = None;
    let mut batch = PathBatch::new(BatchKind::Uevents);
    batch.events.push(PathEvent::Change(noid.clone()));
    batch.notes.insert(
        "sdd".into(),
        crate::discovery::PathNotes {
            identity_error: Some(NoWwid {
                udev: Some(("ID_SERIAL".into(), Gap::Absent)),
                vpd: Gap::Absent,
            }),
            problems: Vec::new(),
        },
    );
    e.handle(Event::Paths(batch), 1_000);
    let why = |e: &mut Engine| {
        e.snapshot()
            .paths
            .iter()
            .find(|p| p.info.dev == "sdd")
            .map(|p| p.why.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        &*why(&mut e),
        "no usable WWID: udev property ID_SERIAL is not set; no identity in VPD page 0x83"
    );
    e.handle(Event::path_changed(noid), 2_000);
    assert_eq!(&*why(&mut e), "no usable WWID: identity not read");
}

#[test]
fn strict_waits_for_wwids_file() {
    let mut s = settings();
    s.find_multipaths = FindMultipaths::Strict;
    let mut e = engine(s);
    let a = add_pair_probed(&mut e);
    assert!(!a
        .iter()
        .any(|a| matches!(a, Action::Map(MapChange::Create { .. }))));
    let a = e.handle(Event::KnownWwids(vec!["3600a".into()]), 20);
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::Map(MapChange::Create { .. }))));
}

#[test]
fn last_path_removed_removes_map() {
    let mut e = two_path_map(settings());
    let a = e.handle(Event::path_removed("sdb".into()), 1_000);
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::Map(MapChange::Reload { .. }))));
    e.handle(
        Event::MapApplied {
            name: "3600a".into(),
            ok: true,
            removed: false,
            dm_minor: None,
            error: None,
        },
        1_050,
    );
    let a = e.handle(Event::path_removed("sdc".into()), 1_100);
    assert!(a.contains(&Action::Map(MapChange::Remove {
        name: "3600a".into(),
        deferred: false,
    })));
    e.handle(
        Event::MapApplied {
            name: "3600a".into(),
            ok: true,
            removed: true,
            dm_minor: None,
            error: None,
        },
        1_100,
    );
    assert!(e.snapshot().maps.is_empty());
}

#[test]
fn adopted_map_with_same_table_is_not_reloaded() {
    let mut e = engine(settings());
    e.handle(
        Event::Adopt {
            name: "3600a".into(),
            wwid: "3600a".into(),
            table: "0 0 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1"
                .parse()
                .ok(),
            size: 32768,
            dm_minor: Some(0),
        },
        0,
    );
    let a = e.handle_batch(
        vec![
            Event::path_added(path("sdb", 16, "3600a")),
            Event::path_added(path("sdc", 32, "3600a")),
        ],
        0,
    );
    let a = e.handle_batch(
        probes(&a)
            .into_iter()
            .map(|d| probed(&d, ChkState::Up, if d == "sdc" { 50 } else { 1 }))
            .collect(),
        10,
    );
    assert!(
        !a.iter().any(|a| matches!(
            a,
            Action::Map(MapChange::Reload { .. }) | Action::Map(MapChange::Create { .. })
        )),
        "{a:?}"
    );
    assert_eq!(e.snapshot().maps.len(), 1);
}

#[test]
fn failback_immediate_switches_to_best_group() {
    let mut s = settings();
    s.failback = Failback::Immediate;
    s.path_grouping_policy = PgPolicy::Failover;
    let mut e = two_path_map(s);
    e.handle(probed("sdc", ChkState::Down, 50), 1_000);
    e.handle(status_3600a(false, true, 2), 1_100);
    let a = e.handle(probed("sdc", ChkState::Up, 50), 6_000);
    assert!(
        messages(&a).contains(&"switch_group 1".to_string()),
        "{a:?}"
    );
}

#[test]
fn operator_commands() {
    let mut e = two_path_map(settings());
    let (r, a) = e.command(MapCommand::FailPath("sdb".into()), 1_000);
    assert!(r.is_ok());
    assert_eq!(messages(&a), vec!["fail_path 8:16"]);
    let (r, _) = e.command(MapCommand::FailPath("sdq".into()), 1_000);
    assert_eq!(r, Err(crate::CommandError::NotFound));
    let (r, a) = e.command(
        MapCommand::SwitchGroup {
            map: "3600a".into(),
            group: 2,
        },
        1_000,
    );
    assert!(r.is_ok());
    assert_eq!(messages(&a), vec!["switch_group 2"]);
    let (r, _) = e.command(
        MapCommand::SwitchGroup {
            map: "3600a".into(),
            group: 9,
        },
        1_000,
    );
    assert!(r.is_err());
    let (_, a) = e.command(MapCommand::RemoveMap("3600a".into()), 1_000);
    assert!(a.contains(&Action::Map(MapChange::Remove {
        name: "3600a".into(),
        deferred: false,
    })));
}

#[test]
fn alias_sequence_like_multipath_tools() {
    assert_eq!(alias_suffix(1), "a");
    assert_eq!(alias_suffix(26), "z");
    assert_eq!(alias_suffix(27), "aa");
    assert_eq!(alias_suffix(28), "ab");
    let taken = ["mpatha".to_string(), "mpathc".to_string()];
    assert_eq!(next_alias("mpath", taken.iter()), "mpathb");
}

#[test]
fn user_friendly_names_bind_and_persist() {
    let mut s = settings();
    s.user_friendly_names = true;
    let mut e = engine(s);
    e.handle(
        Event::KnownBindings(vec![("mpatha".into(), "3600z".into())]),
        0,
    );
    let a = add_pair_probed(&mut e);
    assert!(
        a.contains(&Action::AddBinding {
            alias: "mpathb".into(),
            wwid: "3600a".into()
        }),
        "{a:?}"
    );
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::Map(MapChange::Create { name, .. }) if name == "mpathb")));
}

fn creates(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Map(MapChange::Create { table, .. }) => Some(table.to_string()),
            _ => None,
        })
        .collect()
}

fn reloads(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Map(MapChange::Reload { table, .. }) => Some(table.to_string()),
            _ => None,
        })
        .collect()
}

fn probed_state(dev: &str, chk: ChkState, st: DevState) -> Event {
    Event::Probed(ProbeResult {
        dev: dev.into(),
        chk,
        prio: Some(1),
        msg: String::new(),
        dev_state: Some(st),
        pr: None,
        check_ms: None,
    })
}

#[test]
fn offline_path_is_left_out_until_it_runs_again() {
    let mut e = engine(settings());
    let mut off = path("sdc", 32, "3600a");
    off.dev_state = DevState::Offline;
    let a = e.handle_batch(
        vec![
            Event::path_added(path("sdb", 16, "3600a")),
            Event::path_added(off),
        ],
        0,
    );
    assert_eq!(probes(&a), vec!["sdb", "sdc"]);
    let a = e.handle_batch(
        vec![
            probed_state("sdb", ChkState::Up, DevState::Running),
            probed_state("sdc", ChkState::Down, DevState::Offline),
        ],
        100,
    );
    // The kernel could not open sdc: the map is created without it.
    let c = creates(&a);
    assert_eq!(c.len(), 1);
    assert!(c[0].contains("8:16") && !c[0].contains("8:32"), "{}", c[0]);
    e.handle(
        Event::MapApplied {
            name: "3600a".into(),
            ok: true,
            removed: false,
            dm_minor: Some(3),
            error: None,
        },
        200,
    );
    // sdc comes back (no uevent): the next check sees it and reloads.
    let a = e.handle(probed_state("sdc", ChkState::Up, DevState::Running), 5_000);
    let r = reloads(&a);
    assert_eq!(r.len(), 1, "{a:?}");
    assert!(r[0].contains("8:16") && r[0].contains("8:32"), "{}", r[0]);
}

#[test]
fn path_offlined_in_a_live_map_is_failed_not_dropped() {
    let mut e = two_path_map(settings());
    let a = e.handle(
        probed_state("sdb", ChkState::Down, DevState::Offline),
        5_000,
    );
    assert!(reloads(&a).is_empty(), "{a:?}");
    assert_eq!(messages(&a), vec!["fail_path 8:16"]);
    let a = e.handle(probed_state("sdb", ChkState::Up, DevState::Running), 10_000);
    assert!(reloads(&a).is_empty(), "{a:?}");
    assert_eq!(messages(&a), vec!["reinstate_path 8:16"]);
}

#[test]
fn failed_create_backs_off() {
    let mut e = engine(settings());
    add_pair_probed(&mut e);
    let a = e.handle(
        Event::MapApplied {
            name: "3600a".into(),
            ok: false,
            removed: false,
            dm_minor: None,
            error: Some("device not found".into()),
        },
        200,
    );
    assert!(creates(&a).is_empty(), "no retry at once: {a:?}");
    // Unrelated events and ticks inside the interval do not retry it.
    for t in [1_000, 2_000, 3_000] {
        let a = e.handle(Event::Tick, t);
        assert!(creates(&a).is_empty(), "no retry at {t}: {a:?}");
    }
    let a = e.handle(Event::Tick, 5_300);
    assert_eq!(creates(&a).len(), 1, "{a:?}");
}

#[test]
fn a_path_failing_or_returning_is_urgent_first_checks_are_not() {
    let mut e = two_path_map(settings());
    assert!(!e.take_urgent(), "first checks and a create are a storm's");
    e.handle(probed("sdb", ChkState::Up, 1), 5_000);
    assert!(!e.take_urgent(), "an unchanged check");
    e.handle(probed("sdc", ChkState::Down, 50), 5_000);
    assert!(e.take_urgent(), "the checker failed a mapped path");
    let status = |sdb_active| status_3600a(false, sdb_active, 1);
    e.handle(status(true), 5_100);
    assert!(!e.take_urgent(), "dm shows the path the daemon failed");
    e.handle(status(false), 5_300);
    assert!(e.take_urgent(), "the kernel failed a path on an I/O error");
}

#[test]
fn unchanged_checks_change_nothing() {
    let mut e = two_path_map(settings());
    e.take_changed();
    let a = e.handle(probed("sdb", ChkState::Up, 1), 5_000);
    assert!(
        a.iter().all(|a| matches!(a, Action::Probe(_))),
        "only due checks: {a:?}"
    );
    assert!(!e.take_changed(), "nothing to publish");
    // The next check of sdb is due one interval later, and the engine says so.
    let due = e.next_check_due_ms().unwrap_or(u64::MAX);
    assert!(due > 5_000 && due <= 15_000, "{due}");
    let a = e.handle(probed("sdb", ChkState::Down, 1), 6_000);
    assert_eq!(messages(&a), vec!["fail_path 8:16"]);
    assert!(e.take_changed());
}

#[test]
fn a_tick_without_a_countdown_marks_no_map_for_the_snapshot() {
    let mut e = two_path_map(settings());
    e.snapshot();
    e.handle(Event::Tick, 5_000);
    let touched = e.maps.take_touched();
    assert!(
        matches!(&touched, super::tracked::Touched::Some(s) if s.is_empty()),
        "{touched:?}"
    );
}

fn probe_reqs(actions: &[Action]) -> Vec<&ProbeRequest> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Probe(r) => Some(&**r),
            _ => None,
        })
        .collect()
}

#[test]
fn checks_fall_due_on_whole_seconds_never_later_than_the_interval() {
    assert_eq!(check_slot(12_345, 5), 17_000);
    assert_eq!(check_slot(12_000, 5), 17_000);
    assert_eq!(check_slot(12_999, 1), 13_000);
    // Checks answered at different moments of one second fall due together.
    let mut e = two_path_map(settings());
    e.handle(probed("sdb", ChkState::Up, 1), 5_120);
    e.handle(probed("sdc", ChkState::Up, 50), 5_870);
    let a = e.handle(Event::Tick, 15_000);
    assert_eq!(probes(&a), vec!["sdb", "sdc"], "both due in one batch");
}

#[test]
fn paths_in_doubt_are_probed_alone() {
    let mut e = engine(settings());
    let a = e.handle_batch(
        vec![
            Event::path_added(path("sdb", 16, "3600a")),
            Event::path_added(path("sdc", 32, "3600a")),
        ],
        0,
    );
    assert!(probe_reqs(&a).iter().all(|r| r.solo), "first checks: {a:?}");
    e.handle_batch(
        vec![
            probed("sdb", ChkState::Up, 1),
            probed("sdc", ChkState::Down, 1),
        ],
        100,
    );
    let a = e.handle(Event::Tick, 20_000);
    let solo: Vec<(String, bool)> = probe_reqs(&a)
        .iter()
        .map(|r| (r.info.dev.clone(), r.solo))
        .collect();
    assert_eq!(
        solo,
        vec![("sdb".to_string(), false), ("sdc".to_string(), true)]
    );
}

/// The outcome of 3600a's load in flight, as the executor reports it.
pub(super) fn applied_3600a(error: Option<&str>) -> Event {
    Event::MapApplied {
        name: "3600a".into(),
        ok: error.is_none(),
        removed: false,
        dm_minor: None,
        error: error.map(str::to_string),
    }
}

/// A third path, sdd, joins 3600a and is checked: one reload with it.
fn third_path_joins(e: &mut Engine) {
    let a = e.handle(Event::path_added(path("sdd", 48, "3600a")), 1_000);
    let a2 = e.handle(probed("sdd", ChkState::Up, 1), 1_100);
    // The kernel's table does not hold sdd until the reload is in: no
    // reinstate_path (dm would refuse it with EINVAL).
    assert!(messages(&a2).is_empty(), "{a2:?}");
    let all: Vec<Action> = a.into_iter().chain(a2).collect();
    assert_eq!(reloads(&all).len(), 1, "{all:?}");
}

#[test]
fn no_path_messages_until_the_kernel_table_holds_the_path() {
    let mut e = two_path_map(settings());
    third_path_joins(&mut e);
    let a = e.handle(probed("sdd", ChkState::Up, 1), 1_200);
    assert!(messages(&a).is_empty(), "{a:?}");
    let a = e.handle(applied_3600a(None), 1_300);
    assert!(messages(&a).is_empty(), "{a:?}");
    // A path going down after the load is failed as usual.
    let a = e.handle(probed("sdd", ChkState::Down, 1), 7_000);
    assert_eq!(messages(&a), vec!["fail_path 8:48"]);
}

#[test]
fn adopted_map_without_a_status_read_still_fails_and_reinstates_its_paths() {
    // No DmStatus ever arrives (the startup status read failed): the
    // members' dm state stays unknown, yet the table holds them.
    let mut e = engine(settings());
    e.handle(
        Event::Adopt {
            name: "3600a".into(),
            wwid: "3600a".into(),
            table: "0 0 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1"
                .parse()
                .ok(),
            size: 32768,
            dm_minor: Some(0),
        },
        0,
    );
    let a = e.handle_batch(
        vec![
            Event::path_added(path("sdb", 16, "3600a")),
            Event::path_added(path("sdc", 32, "3600a")),
        ],
        0,
    );
    e.handle_batch(
        probes(&a)
            .into_iter()
            .map(|d| probed(&d, ChkState::Up, if d == "sdc" { 50 } else { 1 }))
            .collect(),
        10,
    );
    let a = e.handle(probed("sdb", ChkState::Down, 1), 6_000);
    assert_eq!(messages(&a), vec!["fail_path 8:16"]);
    let a = e.handle(probed("sdb", ChkState::Up, 1), 12_000);
    assert_eq!(messages(&a), vec!["reinstate_path 8:16"]);
}

/// Feed the engine's own actions back as the kernel and checker would:
/// loads succeed, probes answer with `chk`.
fn settle(e: &mut Engine, mut actions: Vec<Action>, now: &mut u64, chk: ChkState) {
    for _ in 0..20 {
        let mut follow = Vec::new();
        for a in &actions {
            match a {
                Action::Map(MapChange::Create { name, .. })
                | Action::Map(MapChange::Reload { name, .. }) => follow.push(Event::MapApplied {
                    name: name.clone(),
                    ok: true,
                    removed: false,
                    dm_minor: None,
                    error: None,
                }),
                Action::Map(MapChange::Remove { name, .. }) => follow.push(Event::MapApplied {
                    name: name.clone(),
                    ok: true,
                    removed: true,
                    dm_minor: None,
                    error: None,
                }),
                Action::Probe(r) => follow.push(probed(&r.info.dev, chk, 10)),
                _ => {}
            }
        }
        if follow.is_empty() {
            return;
        }
        *now += 10;
        actions = e.handle_batch(follow, *now);
    }
}

fn layout(e: &mut Engine) -> Vec<(String, Vec<String>)> {
    let s = e.snapshot();
    let mut maps: Vec<(String, Vec<String>)> = s
        .maps
        .iter()
        .map(|m| {
            let mut devs: Vec<String> = m
                .path_groups
                .iter()
                .flat_map(|g| g.paths.iter().map(|p| p.info.dev.clone()))
                .collect();
            devs.sort();
            (m.name.clone(), devs)
        })
        .collect();
    maps.sort();
    maps
}

#[test]
fn path_events_decided_per_wwid_agree_with_a_full_pass() {
    // A storm of adds, identity changes, removals and unlabelled paths,
    // in a scrambled order: after each step, a full re-decision must find
    // nothing to change.
    let mut e = engine(settings());
    let mut now = 0u64;
    let mut seed = 7u64;
    let mut rnd = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let name =
        |i: u64| format!("sd{}", (b'a' + (i % 26) as u8) as char).repeat(1 + (i / 26) as usize);
    for step in 0..300 {
        let i = rnd(60);
        let dev = name(i);
        let wwid = format!("36{:02}", rnd(12));
        let ev = match rnd(10) {
            0..=5 => {
                let mut p = path(&dev, i as u32, &wwid);
                if rnd(8) == 0 {
                    p.wwid = None;
                }
                Event::path_added(p)
            }
            6 | 7 => Event::path_changed(path(&dev, i as u32, &wwid)),
            _ => Event::path_removed(dev.clone()),
        };
        now += 100;
        let a = e.handle(ev, now);
        settle(&mut e, a, &mut now, ChkState::Up);
        let before = layout(&mut e);
        now += 10;
        let a = e.handle(Event::KnownWwids(e.wwids.iter().cloned().collect()), now);
        let map_actions: Vec<&Action> = a
            .iter()
            .filter(|a| !matches!(a, Action::Probe(_)))
            .collect();
        assert!(
            map_actions.is_empty(),
            "step {step}: full pass found {map_actions:?}"
        );
        assert_eq!(before, layout(&mut e), "step {step}");
    }
    assert!(!layout(&mut e).is_empty());
}

#[test]
fn a_failed_remove_is_not_retried_until_paths_change() {
    let mut e = two_path_map(settings());
    e.handle(Event::path_removed("sdb".into()), 1_000);
    e.handle(
        Event::MapApplied {
            name: "3600a".into(),
            ok: true,
            removed: false,
            dm_minor: None,
            error: None,
        },
        1_050,
    );
    let a = e.handle(Event::path_removed("sdc".into()), 1_100);
    assert!(a.contains(&Action::Map(MapChange::Remove {
        name: "3600a".into(),
        deferred: false,
    })));
    // The map is open: the kernel refuses.
    let a = e.handle(
        Event::MapApplied {
            name: "3600a".into(),
            ok: false,
            removed: true,
            dm_minor: None,
            error: Some("busy".into()),
        },
        1_200,
    );
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::Map(MapChange::Remove { .. }))),
        "{a:?}"
    );
    for t in 1..5 {
        let a = e.handle(Event::Tick, 1_200 + t * 1_000);
        assert!(
            !a.iter()
                .any(|a| matches!(a, Action::Map(MapChange::Remove { .. }))),
            "{a:?}"
        );
    }
    assert_eq!(e.snapshot().maps.len(), 1);
}

#[test]
fn a_failed_reload_keeps_the_live_table_and_is_retried() {
    let mut e = two_path_map(settings());
    // A third path joins; its reload fails (say, the device went away
    // between the check and the load).
    third_path_joins(&mut e);
    let a = e.handle(applied_3600a(Some("device not found")), 1_200);
    assert!(reloads(&a).is_empty(), "no retry at once: {a:?}");
    // The old table is live: sdd is not in it, so no message names it.
    let a = e.handle(probed("sdd", ChkState::Down, 1), 1_300);
    assert!(messages(&a).is_empty(), "{a:?}");
    // A path of the old table still gets its messages.
    let a = e.handle(probed("sdb", ChkState::Down, 1), 1_400);
    assert_eq!(messages(&a), vec!["fail_path 8:16"]);
    let a = e.handle(probed("sdb", ChkState::Up, 1), 1_500);
    assert_eq!(messages(&a), vec!["reinstate_path 8:16"]);
    let a = e.handle(probed("sdd", ChkState::Up, 1), 1_600);
    assert!(reloads(&a).is_empty(), "inside the back-off: {a:?}");
    // A check interval later the reload is issued again, with sdd.
    let a = e.handle(Event::Tick, 6_300);
    let r = reloads(&a);
    assert_eq!(r.len(), 1, "{a:?}");
    assert!(r[0].contains("8:48"), "{}", r[0]);
    let a = e.handle(applied_3600a(None), 6_400);
    assert!(reloads(&a).is_empty(), "{a:?}");
    let a = e.handle(probed("sdd", ChkState::Down, 1), 7_000);
    assert_eq!(messages(&a), vec!["fail_path 8:48"]);
}

#[test]
fn a_path_whose_wwid_changes_leaves_its_old_map() {
    let mut e = two_path_map(settings());
    let a = e.handle(probed("sdb", ChkState::Up, 1), 1_000);
    assert!(reloads(&a).is_empty(), "{a:?}");
    // The array remapped the LUN behind sdc: it is another device now and
    // must not stay in 3600a's table.
    let a = e.handle(Event::path_changed(path("sdc", 32, "3600b")), 2_000);
    let r = reloads(&a);
    assert_eq!(r.len(), 1, "{a:?}");
    assert!(!r[0].contains("8:32"), "{}", r[0]);
    assert!(r[0].contains("8:16"), "{}", r[0]);
}

#[test]
fn a_snapshot_shares_what_did_not_change_with_the_last() {
    let mut e = two_path_map(settings());
    e.use_real_clock(Instant::now());
    e.handle(status_3600a(true, true, 1), 300);
    let a = e.snapshot();
    let b = e.snapshot();
    assert!(Arc::ptr_eq(&a.maps[0], &b.maps[0]));
    assert!(a.paths.iter().zip(&b.paths).all(|(x, y)| Arc::ptr_eq(x, y)));
    let path_of = |s: &DaemonSnapshot, dev: &str| {
        s.paths
            .iter()
            .find(|p| p.info.dev == dev)
            .cloned()
            .unwrap_or_default()
    };
    // sdc fails in dm: its snapshot and its map's are new, sdb's is not.
    e.handle(status_3600a(false, true, 1), 400);
    let c = e.snapshot();
    assert!(Arc::ptr_eq(&path_of(&b, "sdb"), &path_of(&c, "sdb")));
    assert!(!Arc::ptr_eq(&path_of(&b, "sdc"), &path_of(&c, "sdc")));
    assert_eq!(path_of(&c, "sdc").dm_state, DmPathState::Failed);
    assert!(!Arc::ptr_eq(&b.maps[0], &c.maps[0]));
    assert_eq!(c.maps[0].nr_active, 1);
    // A map's groups hold the same allocations as the path list.
    let sdc = path_of(&c, "sdc");
    assert!(c.maps[0]
        .path_groups
        .iter()
        .flat_map(|g| &g.paths)
        .any(|p| Arc::ptr_eq(p, &sdc)));
    // On the real clock a path's snapshot carries when it was checked,
    // not seconds elapsed, so it does not age.
    assert_eq!(sdc.check_elapsed, 0);
    assert!(sdc.checked_at.is_some());
}

#[test]
fn reused_snapshots_equal_ones_built_from_scratch() {
    reused_snapshots_equal_fresh_ones(false);
}

#[test]
fn on_the_real_clock_snapshots_revisit_what_changed_and_equal_fresh_ones() {
    reused_snapshots_equal_fresh_ones(true);
}

fn reused_snapshots_equal_fresh_ones(real_clock: bool) {
    let mut e = engine(settings());
    if real_clock {
        e.use_real_clock(Instant::now());
    }
    let mut now = 0u64;
    let mut seed = 11u64;
    let mut rnd = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for step in 0..300 {
        let i = rnd(24);
        let dev = format!("sd{}", (b'a' + i as u8) as char);
        let wwid = format!("36{:02}", i % 8);
        let ev = match rnd(10) {
            0..=3 => Event::path_added(path(&dev, i as u32, &wwid)),
            4..=6 => probed(&dev, ChkState::Down, 1 + rnd(3) as i32 * 10),
            7 | 8 => probed(&dev, ChkState::Up, 1 + rnd(3) as i32 * 10),
            _ => Event::path_removed(dev.clone()),
        };
        now += 100 + rnd(3000);
        let a = e.handle(ev, now);
        settle(&mut e, a, &mut now, ChkState::Up);
        let reused = e.snapshot();
        e.forget_snapshots();
        assert_eq!(reused, e.snapshot(), "step {step}");
        if step % 7 == 0 {
            // Operator commands and dm status touch maps, not paths.
            let name = format!("36{:02}", rnd(8));
            let _ = e.command(MapCommand::DisableQueueing(Some(name.clone())), now);
            let _ = e.command(
                MapCommand::SetPrKey {
                    map: name.clone(),
                    key: Some(PrKey {
                        key: 0x1a2b,
                        aptpl: false,
                    }),
                },
                now,
            );
            let _ = e.command(MapCommand::ResetStats(Some(name)), now);
            let reused = e.snapshot();
            e.forget_snapshots();
            assert_eq!(reused, e.snapshot(), "step {step}, after commands");
        }
    }
    assert!(!e.snapshot().maps.is_empty());
}

#[test]
fn del_map_during_a_load_removes_the_map_when_the_load_is_done() {
    let mut e = two_path_map(settings());
    e.handle(status_3600a(true, true, 1), 300);
    third_path_joins(&mut e);
    // The operator removes the map while the reload runs: nothing yet.
    let (r, a) = e.command(MapCommand::RemoveMap("3600a".into()), 1_200);
    assert!(r.is_ok());
    assert!(!a
        .iter()
        .any(|a| matches!(a, Action::Map(MapChange::Remove { .. }))));
    // The reload finishes: the remove goes out then, not on some later
    // full pass.
    let a = e.handle(applied_3600a(None), 1_300);
    assert!(
        a.contains(&Action::Map(MapChange::Remove {
            name: "3600a".into(),
            deferred: false,
        })),
        "{a:?}"
    );
}

#[test]
fn flush_on_last_del_fails_queued_io_before_the_remove() {
    for flush in [false, true] {
        let mut e = two_path_map(Settings {
            no_path_retry: NoPathRetry::Queue,
            flush_on_last_del: flush,
            ..settings()
        });
        e.handle(Event::path_removed("sdb".into()), 1_000);
        e.handle(applied_3600a(None), 1_050);
        let a = e.handle(Event::path_removed("sdc".into()), 1_100);
        let remove_at = a
            .iter()
            .position(|x| matches!(x, Action::Map(MapChange::Remove { .. })));
        assert!(remove_at.is_some(), "{a:?}");
        let fail_at = a.iter().position(
            |x| matches!(x, Action::Message { msg, .. } if *msg == DmMessage::FailIfNoPath),
        );
        if flush {
            assert!(
                fail_at.is_some() && fail_at < remove_at,
                "queueing off first: {a:?}"
            );
        } else {
            assert_eq!(fail_at, None, "queued I/O waits for the path: {a:?}");
        }
    }
}

#[test]
fn san_path_err_holds_a_flapping_path_out_for_its_recovery_time() {
    let mut e = two_path_map(Settings {
        san_path_err: Some(crate::model::SanPathErr {
            threshold: 1,
            forget_rate: 100,
            recovery_time: 20,
        }),
        ..settings()
    });
    let reinstates = |a: &[Action]| {
        messages(a)
            .iter()
            .filter(|m| m.starts_with("reinstate_path"))
            .count()
    };
    // First failure and return: under the threshold, reinstated at once.
    let a = e.handle(probed("sdb", ChkState::Down, 1), 1_000);
    assert_eq!(messages(&a), vec!["fail_path 8:16"]);
    let a = e.handle(probed("sdb", ChkState::Up, 1), 2_000);
    assert_eq!(reinstates(&a), 1, "{a:?}");
    // Second failure: two failures > threshold 1, held out 20 s.
    e.handle(probed("sdb", ChkState::Down, 1), 3_000);
    let a = e.handle(probed("sdb", ChkState::Up, 1), 4_000);
    assert_eq!(reinstates(&a), 0, "{a:?}");
    let chk = |e: &mut Engine| {
        e.snapshot()
            .paths
            .iter()
            .find(|p| p.info.dev == "sdb")
            .map(|p| p.chk_state)
    };
    assert_eq!(chk(&mut e), Some(ChkState::Delayed));
    let a = e.handle(probed("sdb", ChkState::Up, 1), 20_000);
    assert_eq!(reinstates(&a), 0, "still inside recovery_time: {a:?}");
    let a = e.handle(probed("sdb", ChkState::Up, 1), 24_500);
    assert_eq!(reinstates(&a), 1, "{a:?}");
    assert_eq!(chk(&mut e), Some(ChkState::Up));
    // The count starts again: one more failure is under the threshold.
    e.handle(probed("sdb", ChkState::Down, 1), 26_000);
    let a = e.handle(probed("sdb", ChkState::Up, 1), 27_000);
    assert_eq!(reinstates(&a), 1, "{a:?}");
}

#[test]
fn skip_kpartx_and_deferred_remove_reach_the_kernel_actions() {
    let mut e = two_path_map(Settings {
        skip_kpartx: true,
        deferred_remove: true,
        ..settings()
    });
    let a = e.handle(Event::path_removed("sdb".into()), 1_000);
    assert!(
        a.iter().any(|x| matches!(
            x,
            Action::Map(MapChange::Reload {
                skip_kpartx: true,
                ..
            })
        )),
        "{a:?}"
    );
    e.handle(applied_3600a(None), 1_050);
    let a = e.handle(Event::path_removed("sdc".into()), 1_100);
    assert!(a.contains(&Action::Map(MapChange::Remove {
        name: "3600a".into(),
        deferred: true,
    })));
    // An operator's del map is never deferred: it fails if in use.
    let mut e = two_path_map(Settings {
        deferred_remove: true,
        ..settings()
    });
    let (r, a) = e.command(MapCommand::RemoveMap("3600a".into()), 2_000);
    assert!(r.is_ok());
    assert!(a.contains(&Action::Map(MapChange::Remove {
        name: "3600a".into(),
        deferred: false,
    })));
}

#[test]
fn del_map_is_not_undone_until_a_path_event_or_add_map() {
    let mut e = two_path_map(settings());
    let (r, a) = e.command(MapCommand::RemoveMap("3600a".into()), 1_000);
    assert!(r.is_ok());
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Map(MapChange::Remove { .. }))));
    let a = e.handle(
        Event::MapApplied {
            name: "3600a".into(),
            ok: true,
            removed: true,
            dm_minor: None,
            error: None,
        },
        1_100,
    );
    assert!(creates(&a).is_empty(), "re-created at once: {a:?}");
    let a = e.handle(Event::Tick, 6_000);
    assert!(creates(&a).is_empty(), "{a:?}");
    let why = e
        .snapshot()
        .paths
        .iter()
        .find(|p| p.info.dev == "sdb")
        .map(|p| p.why.to_string())
        .unwrap_or_default();
    assert!(why.contains("removed by the operator"), "{why}");
    let (r, a) = e.command(MapCommand::AddMap("3600a".into()), 7_000);
    assert!(r.is_ok());
    assert_eq!(creates(&a).len(), 1, "{a:?}");
}

#[test]
fn a_checker_run_in_place_of_the_configured_one_is_said_in_the_reason() {
    let e = &mut two_path_map(Settings {
        path_checker: "rbd".into(),
        prio: "ana".into(),
        ..settings()
    });
    let why = e
        .snapshot()
        .paths
        .iter()
        .find(|p| p.info.dev == "sdb")
        .map(|p| p.why.to_string())
        .unwrap_or_default();
    assert!(
        why.contains("path_checker rbd is not implemented by mpathd: tur runs in its place"),
        "{why}"
    );
    assert!(
        why.contains("prio ana is not implemented by mpathd: const"),
        "{why}"
    );
}

#[test]
fn reconfigure_reloads_changed_maps_and_all_of_them_when_asked() {
    let mut e = two_path_map(settings());
    let same = || {
        Arc::new(StaticPolicy {
            settings: settings(),
            blacklisted: vec![],
        })
    };
    let a = e.reconfigure(same(), 1_000, false);
    assert!(
        reloads(&a).is_empty(),
        "same configuration, same table: {a:?}"
    );
    let a = e.reconfigure(same(), 2_000, true);
    assert_eq!(
        reloads(&a).len(),
        1,
        "reconfigure all reloads every map: {a:?}"
    );
}

#[test]
fn a_failed_path_says_what_its_checker_found() {
    let mut e = two_path_map(settings());
    let down = Event::Probed(ProbeResult {
        dev: "sdb".into(),
        chk: ChkState::Down,
        prio: None,
        msg: "rdac checker reports path is down: inquiry failed".into(),
        dev_state: None,
        pr: None,
        check_ms: None,
    });
    e.handle(down, 5_000);
    let why = |e: &mut Engine| {
        e.snapshot()
            .paths
            .iter()
            .find(|p| p.info.dev == "sdb")
            .map(|p| p.why.to_string())
            .unwrap_or_default()
    };
    assert!(
        why(&mut e).contains("checker: rdac checker reports path is down: inquiry failed"),
        "{}",
        why(&mut e)
    );
    e.handle(probed("sdb", ChkState::Up, 1), 10_000);
    assert!(!why(&mut e).contains("checker:"), "{}", why(&mut e));
}

#[test]
fn queued_map_without_paths_checks_every_second() {
    let next_checks = |npr: NoPathRetry| {
        let mut e = two_path_map(Settings {
            no_path_retry: npr,
            ..settings()
        });
        for (dev, at) in [("sdb", 60_000), ("sdc", 60_100)] {
            e.handle(probed(dev, ChkState::Down, 1), at);
        }
        // Due probes one second on (queueing) or a polling interval on.
        let a = e.handle(Event::Tick, 62_000);
        let mut due = probes(&a);
        due.sort();
        due
    };
    assert_eq!(next_checks(NoPathRetry::Queue), vec!["sdb", "sdc"]);
    assert!(next_checks(NoPathRetry::Fail).is_empty());
}
