//! Persistent reservations in the engine: when a path's check carries the
//! PR step, and what its outcome does to the map's state.

#![allow(clippy::unwrap_used)]

use super::tests::{engine, path, settings, two_path_map};
use super::*;
use crate::pr::ReservationKey;
use crate::CommandError;

const KEY: PrKey = PrKey {
    key: 0xabc,
    aptpl: false,
};

fn keyed(k: ReservationKey) -> Settings {
    Settings {
        reservation_key: k,
        ..settings()
    }
}

/// The probes due at `now`: (path, PR step asked for, solo).
fn due(e: &mut Engine, now: u64) -> Vec<(String, Option<PrSyncRequest>, bool)> {
    e.handle(Event::Tick, now)
        .into_iter()
        .filter_map(|a| match a {
            Action::Probe(r) => Some((r.info.dev.clone(), r.pr, r.solo)),
            _ => None,
        })
        .collect()
}

fn checked(e: &mut Engine, dev: &str, chk: ChkState, pr: Option<PrSync>, now: u64) -> Vec<Action> {
    e.handle(
        Event::Probed(ProbeResult {
            dev: dev.into(),
            chk,
            // two_path_map's prios: unchanged, so no regrouping reload.
            prio: Some(if dev == "sdc" { 50 } else { 1 }),
            msg: String::new(),
            dev_state: None,
            pr,
            check_ms: None,
        }),
        now,
    )
}

fn flag(e: &mut Engine) -> PrFlag {
    e.snapshot().maps[0].pr
}

fn reinstates(a: &[Action]) -> bool {
    a.iter().any(|a| {
        matches!(
            a,
            Action::Message {
                msg: DmMessage::ReinstatePath(_),
                ..
            }
        )
    })
}

#[test]
fn paths_are_registered_once_and_again_when_they_come_back() {
    let mut e = two_path_map(keyed(ReservationKey::Key(KEY)));
    assert_eq!(flag(&mut e), PrFlag::Unknown);
    let d = due(&mut e, 60_000);
    assert_eq!(d.len(), 2);
    for (dev, pr, solo) in &d {
        assert_eq!(pr.map(|r| r.key), Some(KEY), "{dev}");
        assert!(solo, "a PR step is never batched: {dev}");
    }
    checked(
        &mut e,
        "sdb",
        ChkState::Up,
        Some(PrSync::Registered),
        60_100,
    );
    checked(
        &mut e,
        "sdc",
        ChkState::Up,
        Some(PrSync::Registered),
        60_100,
    );
    assert_eq!(flag(&mut e), PrFlag::Set);
    // Registered: no PR step on the next checks.
    assert!(due(&mut e, 200_000).iter().all(|(_, pr, _)| pr.is_none()));
    checked(&mut e, "sdb", ChkState::Up, None, 200_100);
    checked(&mut e, "sdc", ChkState::Up, None, 200_100);
    // sdb fails; its next check carries the step, and the registration is
    // reported with the check that reinstates it.
    checked(&mut e, "sdb", ChkState::Down, None, 300_000);
    let d = due(&mut e, 400_000);
    let sdb = d
        .iter()
        .find(|(dev, _, _)| dev == "sdb")
        .expect("sdb checked");
    assert_eq!(sdb.1.map(|r| r.key), Some(KEY));
    let a = checked(
        &mut e,
        "sdb",
        ChkState::Up,
        Some(PrSync::Registered),
        400_100,
    );
    assert!(reinstates(&a), "{a:?}");
    assert_eq!(e.snapshot().maps[0].stats.path_reinstates, 1);
}

#[test]
fn a_preempted_host_stays_fenced() {
    let mut e = two_path_map(keyed(ReservationKey::Key(KEY)));
    e.command(
        MapCommand::SetPrStatus {
            map: "3600a".into(),
            registered: vec!["sdb".into(), "sdc".into()],
        },
        1_000,
    )
    .0
    .unwrap();
    assert_eq!(flag(&mut e), PrFlag::Set);
    checked(&mut e, "sdb", ChkState::Down, None, 60_000);
    due(&mut e, 200_000);
    // Another host preempted our key: the prober registered nothing; the
    // state stays set (only mpathpersist unsets it) and the step is not
    // repeated on every check.
    checked(
        &mut e,
        "sdb",
        ChkState::Up,
        Some(PrSync::KeyAbsent),
        200_100,
    );
    assert_eq!(flag(&mut e), PrFlag::Set);
    assert!(due(&mut e, 400_000).iter().all(|(_, pr, _)| pr.is_none()));
}

#[test]
fn unknown_state_is_read_from_the_array_and_unset_stops_the_steps() {
    let mut e = two_path_map(keyed(ReservationKey::Key(KEY)));
    due(&mut e, 60_000);
    checked(&mut e, "sdb", ChkState::Up, Some(PrSync::KeyAbsent), 60_100);
    assert_eq!(flag(&mut e), PrFlag::Unset);
    // A failed step is not repeated on every check...
    checked(
        &mut e,
        "sdc",
        ChkState::Up,
        Some(PrSync::Failed("busy".into())),
        60_100,
    );
    let (r, a) = e.command(
        MapCommand::SetPrStatus {
            map: "dm-3".into(),
            registered: vec!["sdb".into()],
        },
        61_000,
    );
    r.unwrap();
    // ...but setprstatus asks again: only the path not named as
    // registered, at once.
    let d: Vec<_> = a
        .into_iter()
        .filter_map(|a| match a {
            Action::Probe(r) => Some((r.info.dev.clone(), r.pr, r.solo)),
            _ => None,
        })
        .collect();
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].0.as_str(), d[0].1.is_some()), ("sdc", true));
    checked(
        &mut e,
        "sdc",
        ChkState::Up,
        Some(PrSync::Registered),
        61_100,
    );
    e.command(MapCommand::UnsetPrStatus("3600a".into()), 62_000)
        .0
        .unwrap();
    assert_eq!(flag(&mut e), PrFlag::Unset);
    checked(&mut e, "sdc", ChkState::Down, None, 70_000);
    assert!(due(&mut e, 200_000).iter().all(|(_, pr, _)| pr.is_none()));
}

#[test]
fn no_key_no_steps() {
    let mut e = two_path_map(settings());
    assert!(due(&mut e, 60_000).iter().all(|(_, pr, _)| pr.is_none()));
    assert_eq!(e.snapshot().maps[0].pr_key, None);
    assert_eq!(flag(&mut e), PrFlag::Unset, "no key: nothing registered");
}

#[test]
fn setprkey_only_under_reservation_key_file() {
    let mut e = two_path_map(keyed(ReservationKey::Key(KEY)));
    let (r, a) = e.command(
        MapCommand::SetPrKey {
            map: "3600a".into(),
            key: Some(KEY),
        },
        1_000,
    );
    assert!(
        matches!(r, Err(CommandError::Invalid(ref m)) if m.contains("not file")),
        "{r:?}"
    );
    assert!(a.is_empty());

    let mut e = two_path_map(keyed(ReservationKey::File));
    assert_eq!(e.snapshot().maps[0].pr_key, None);
    assert!(
        due(&mut e, 60_000).iter().all(|(_, pr, _)| pr.is_none()),
        "no key in the file yet"
    );
    let (r, a) = e.command(
        MapCommand::SetPrKey {
            map: "3600a".into(),
            key: Some(KEY),
        },
        61_000,
    );
    r.unwrap();
    assert!(a.contains(&Action::SetPrKey {
        wwid: "3600a".into(),
        key: Some(KEY)
    }));
    assert_eq!(e.snapshot().maps[0].pr_key, Some(KEY));
    let (r, a) = e.command(
        MapCommand::SetPrKey {
            map: "3600a".into(),
            key: None,
        },
        62_000,
    );
    r.unwrap();
    assert!(a.contains(&Action::SetPrKey {
        wwid: "3600a".into(),
        key: None
    }));
    assert_eq!(e.snapshot().maps[0].pr_key, None);
    let (r, _) = e.command(MapCommand::UnsetPrStatus("nomap".into()), 63_000);
    assert_eq!(r, Err(CommandError::NotFound));
}

#[test]
fn keys_from_the_prkeys_file_at_start() {
    let mut e = engine(keyed(ReservationKey::File));
    e.handle(Event::KnownPrKeys([("3600a".to_string(), KEY)].into()), 0);
    let a = e.handle_batch(vec![Event::path_added(path("sdb", 16, "3600a"))], 0);
    let pr = a.iter().find_map(|a| match a {
        Action::Probe(r) => Some(r.pr),
        _ => None,
    });
    assert_eq!(pr.flatten().map(|r| r.key), Some(KEY));
}

#[test]
fn a_failed_step_is_not_repeated_every_check() {
    let mut e = two_path_map(keyed(ReservationKey::Key(KEY)));
    due(&mut e, 60_000);
    checked(
        &mut e,
        "sdb",
        ChkState::Up,
        Some(PrSync::Failed("ILLEGAL REQUEST".into())),
        60_100,
    );
    checked(
        &mut e,
        "sdc",
        ChkState::Up,
        Some(PrSync::Registered),
        60_100,
    );
    assert!(due(&mut e, 200_000).iter().all(|(_, pr, _)| pr.is_none()));
    // Back from down, it is tried again.
    checked(&mut e, "sdb", ChkState::Down, None, 200_100);
    let d = due(&mut e, 300_000);
    assert!(
        d.iter().any(|(dev, pr, _)| dev == "sdb" && pr.is_some()),
        "{d:?}"
    );
}
