#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use super::sysfs::SysfsTransport;
use super::*;

fn settings(fast: Option<u32>, dev_loss: Option<u32>, npr: NoPathRetry) -> TimeoutSettings {
    TimeoutSettings {
        fast_io_fail: fast,
        dev_loss,
        eh_deadline: None,
        no_path_retry: npr,
        polling_interval: 5,
    }
}

fn iscsi() -> Endpoint {
    Endpoint::Iscsi {
        session: "session3".into(),
    }
}

fn fc() -> Endpoint {
    Endpoint::Fc {
        rport: "rport-5:0-2".into(),
    }
}

#[test]
fn endpoints_from_sysfs_path_components() {
    assert_eq!(
        Endpoint::from_path_component("session12"),
        Some(Endpoint::Iscsi {
            session: "session12".into()
        })
    );
    assert_eq!(Endpoint::from_path_component("rport-5:0-2"), Some(fc()));
    assert_eq!(
        Endpoint::from_path_component("end_device-0:1"),
        Some(Endpoint::Sas {
            end_device: "end_device-0:1".into()
        })
    );
    for bad in [
        "session",
        "sessionx",
        "rport-",
        "rport-5:0-",
        "end_device-",
        "host5",
        "target5:0:0",
    ] {
        assert_eq!(Endpoint::from_path_component(bad), None, "{bad}");
    }
}

#[test]
fn iscsi_takes_fast_io_fail_as_recovery_tmo() {
    let p = plan(
        &settings(Some(5), None, NoPathRetry::Fail),
        Some(3),
        Some(&iscsi()),
    );
    assert_eq!(
        p.writes,
        vec![Write::SessionRecoveryTmo {
            session: "session3".into(),
            secs: 5
        }]
    );
    assert_eq!(
        p.writes[0].attribute(),
        (
            "class/iscsi_session/session3/recovery_tmo".into(),
            "5".into()
        )
    );
}

#[test]
fn iscsi_ignores_dev_loss_and_cannot_switch_off() {
    let p = plan(
        &settings(None, Some(60), NoPathRetry::Fail),
        None,
        Some(&iscsi()),
    );
    assert!(p.writes.is_empty());
    assert!(p
        .notes
        .iter()
        .any(|n| n.contains("does not apply to iSCSI")));
    assert!(p.notes.iter().any(|n| n.contains("fast_io_fail_tmo off")));
    let p = plan(
        &settings(Some(0), None, NoPathRetry::Fail),
        None,
        Some(&iscsi()),
    );
    assert!(p.writes.is_empty());
    assert!(p.notes[0].contains("cannot be 0"));
}

#[test]
fn no_path_retry_raises_dev_loss_and_may_switch_fast_io_fail_off() {
    // 12 x 5 s = 60 s of queueing: dev_loss 30 would drop the path first.
    let p = plan(
        &settings(Some(5), Some(30), NoPathRetry::Retries(12)),
        None,
        Some(&fc()),
    );
    assert_eq!(
        p.writes.last(),
        Some(&Write::RportDevLoss {
            rport: "rport-5:0-2".into(),
            secs: 60
        })
    );
    assert!(p.notes[0].contains("raised to 60"), "{:?}", p.notes);
    // queue: dev_loss becomes infinity.
    let p = plan(
        &settings(Some(5), Some(30), NoPathRetry::Queue),
        None,
        Some(&fc()),
    );
    assert_eq!(
        p.writes.last(),
        Some(&Write::RportDevLoss {
            rport: "rport-5:0-2".into(),
            secs: DEV_LOSS_INFINITY
        })
    );
    // fast_io_fail not below dev_loss: switched off.
    let p = plan(
        &settings(Some(30), Some(20), NoPathRetry::Fail),
        None,
        Some(&fc()),
    );
    assert!(p.writes.contains(&Write::RportFastIoFail {
        rport: "rport-5:0-2".into(),
        value: Tmo::Off
    }));
    assert!(p.notes.iter().any(|n| n.contains("switched off")));
}

#[test]
fn fc_raises_dev_loss_before_fast_io_fail_then_sets_it() {
    let p = plan(
        &settings(Some(5), Some(60), NoPathRetry::Fail),
        None,
        Some(&fc()),
    );
    let r = "rport-5:0-2".to_string();
    assert_eq!(
        p.writes,
        vec![
            Write::RportDevLossAtLeast {
                rport: r.clone(),
                secs: 6
            },
            Write::RportFastIoFail {
                rport: r.clone(),
                value: Tmo::Secs(5)
            },
            Write::RportDevLoss { rport: r, secs: 60 },
        ]
    );
}

#[test]
fn fc_without_fast_io_fail_caps_dev_loss_unless_queueing() {
    let p = plan(
        &settings(None, Some(900), NoPathRetry::Fail),
        None,
        Some(&fc()),
    );
    assert_eq!(
        p.writes.last(),
        Some(&Write::RportDevLoss {
            rport: "rport-5:0-2".into(),
            secs: 600
        })
    );
    assert!(p.notes.iter().any(|n| n.contains("limited to 600")));
}

#[test]
fn sas_takes_dev_loss_as_nexus_loss_and_eh_deadline_goes_to_the_host() {
    let sas = Endpoint::Sas {
        end_device: "end_device-0:1".into(),
    };
    let mut s = settings(Some(5), Some(45), NoPathRetry::Fail);
    s.eh_deadline = Some(Tmo::Off);
    let p = plan(&s, Some(0), Some(&sas));
    assert_eq!(
        p.writes,
        vec![
            Write::HostEhDeadline {
                host: 0,
                value: Tmo::Off
            },
            Write::SasNexusLoss {
                end_device: "end_device-0:1".into(),
                secs: 45
            },
        ]
    );
    assert_eq!(
        p.writes[1].attribute().0,
        "class/sas_end_device/end_device-0:1/I_T_nexus_loss_timeout"
    );
}

#[test]
fn a_path_without_a_transport_endpoint_is_explained() {
    let p = plan(&settings(Some(5), None, NoPathRetry::Fail), None, None);
    assert!(p.writes.is_empty());
    assert!(p.notes[0].contains("not set"));
}

/// A fake sysfs with the attribute files the kernel has.
fn fake_sysfs(dir: &Path, files: &[(&str, &str)]) {
    for (f, v) in files {
        let p = dir.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, v).unwrap();
    }
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("mpathd-transport-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn writer_sets_fc_rport_in_order_on_a_fake_tree() {
    let d = tmpdir("fc");
    let rp = "class/fc_remote_ports/rport-5:0-2";
    fake_sysfs(
        &d,
        &[
            (&format!("{rp}/dev_loss_tmo"), "5\n"),
            (&format!("{rp}/fast_io_fail_tmo"), "off\n"),
            (&format!("{rp}/port_state"), "Online\n"),
        ],
    );
    let p = plan(
        &settings(Some(5), Some(60), NoPathRetry::Fail),
        None,
        Some(&fc()),
    );
    let r = SysfsTransport::new(&d).apply(&p);
    assert!(r.done.iter().all(|(_, o)| *o == Outcome::Written), "{r}");
    assert_eq!(
        fs::read_to_string(d.join(rp).join("fast_io_fail_tmo")).unwrap(),
        "5"
    );
    assert_eq!(
        fs::read_to_string(d.join(rp).join("dev_loss_tmo")).unwrap(),
        "60"
    );
    // dev_loss already above fast_io_fail: the raise is skipped.
    let r = SysfsTransport::new(&d).apply(&p);
    assert_eq!(r.done[0].1, Outcome::Unchanged);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn writer_sets_iscsi_sas_and_host_and_reports_what_it_could_not() {
    let d = tmpdir("mixed");
    fake_sysfs(
        &d,
        &[
            ("class/iscsi_session/session3/recovery_tmo", "120\n"),
            (
                "class/sas_end_device/end_device-0:1/I_T_nexus_loss_timeout",
                "2000\n",
            ),
        ],
    );
    let w = SysfsTransport::new(&d);
    let mut s = settings(Some(5), None, NoPathRetry::Fail);
    s.eh_deadline = Some(Tmo::Secs(10));
    // host3 has no eh_deadline attribute: reported, the session still set.
    let r = w.apply(&plan(&s, Some(3), Some(&iscsi())));
    assert_eq!(r.done[0].1, Outcome::Missing);
    assert_eq!(r.done[1].1, Outcome::Written);
    assert_eq!(
        fs::read_to_string(d.join("class/iscsi_session/session3/recovery_tmo")).unwrap(),
        "5"
    );
    let text = r.to_string();
    assert!(
        text.contains("could not write class/scsi_host/host3/eh_deadline=10"),
        "{text}"
    );
    assert!(
        text.contains("wrote class/iscsi_session/session3/recovery_tmo=5"),
        "{text}"
    );
    // The session went away: the write is reported missing, no panic.
    fs::remove_dir_all(d.join("class/iscsi_session")).unwrap();
    let r = w.apply(&plan(
        &settings(Some(5), None, NoPathRetry::Fail),
        None,
        Some(&iscsi()),
    ));
    assert_eq!(r.done[0].1, Outcome::Missing);
    // An attribute the kernel refuses (a directory stands in: EISDIR).
    fs::create_dir_all(d.join("class/iscsi_session/session3/recovery_tmo")).unwrap();
    let r = w.apply(&plan(
        &settings(Some(5), None, NoPathRetry::Fail),
        None,
        Some(&iscsi()),
    ));
    assert!(matches!(r.done[0].1, Outcome::Refused(_)), "{r}");
    let sas = Endpoint::Sas {
        end_device: "end_device-0:1".into(),
    };
    let r = w.apply(&plan(
        &settings(Some(5), Some(30), NoPathRetry::Fail),
        None,
        Some(&sas),
    ));
    assert_eq!(r.done[0].1, Outcome::Written);
    assert_eq!(
        fs::read_to_string(d.join("class/sas_end_device/end_device-0:1/I_T_nexus_loss_timeout"))
            .unwrap(),
        "30"
    );
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_refused_fc_raise_stops_the_sequence() {
    let d = tmpdir("fc-refused");
    // dev_loss_tmo unreadable as a number is fine; a directory is refused.
    fs::create_dir_all(d.join("class/fc_remote_ports/rport-5:0-2/dev_loss_tmo")).unwrap();
    let p = plan(
        &settings(Some(5), Some(60), NoPathRetry::Fail),
        None,
        Some(&fc()),
    );
    let r = SysfsTransport::new(&d).apply(&p);
    assert_eq!(r.done.len(), 1, "{r}");
    assert!(matches!(r.done[0].1, Outcome::Refused(_)));
    fs::remove_dir_all(&d).unwrap();
}
