//! SCSI commands, checkers and prioritizers against a real kernel.
//! Run in the guest by tests/vm/cases/scsi/10-scsi.sh, which sets up:
//! - scsi_debug: 1 LUN through 3 hosts (ALUA by host number mod 3:
//!   active/optimized, active/non-optimized, standby);
//! - LIO through tcm_loop: 1 LUN through 2 ports, `LIO_ACTIVE`
//!   active/optimized and `LIO_STANDBY` standby with the preferred bit (LIO
//!   answers TUR on standby with NOT READY 04/0b; scsi_debug answers GOOD in
//!   every state; scsi_dh_alua does not attach to tcm_loop devices);
//! - `PEER_PRIO`, `PEER_TUR`: Debian multipathd's prio and first settled
//!   TUR result per path, from its -v3 log (its `show paths` can lack the
//!   LIO paths: tcm_loop devices get no VPD pages cached by the kernel, so
//!   udev may give them no WWID).
//!
//! The `hang_` tests make scsi_debug stop answering: run them last.
//!
//! Every test is `#[ignore]`: they need root, scsi_debug and LIO.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::fs;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpathd::checker::{self, CheckResult, CheckRunner, CheckerKind, PathProbe, SysProbe};
use mpathd::model::{ChkState, PathInfo};
use mpathd::prio::{self, alua_prio_value, sysfs_prio_value, PrioResult, PrioSpec};
use mpathd::scsi::parse::{parse_vpd80_serial, vpd83_target_port_group};
use mpathd::scsi::{AluaState, Outcome, SgDevice};

const T: Duration = Duration::from_secs(10);

fn sysfs(dev: &str, attr: &str) -> String {
    fs::read_to_string(format!("/sys/block/{dev}/device/{attr}"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// sd devices whose SCSI vendor is `vendor`, sorted by name.
fn paths_of(vendor: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir("/sys/block")
        .expect("/sys/block")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|d| d.starts_with("sd") && sysfs(d, "vendor") == vendor)
        .collect();
    v.sort();
    v
}

fn scsi_debug_paths() -> Vec<String> {
    let v = paths_of("Linux");
    assert!(v.len() >= 3, "want 3 scsi_debug paths, have {v:?}");
    v
}

fn lio_paths() -> Vec<String> {
    let v = paths_of("LIO-ORG");
    assert_eq!(v.len(), 2, "want 2 LIO paths, have {v:?}");
    v
}

fn all_paths() -> Vec<String> {
    let mut v = scsi_debug_paths();
    v.extend(lio_paths());
    v
}

/// The ALUA state and preferred bit a path should report: scsi_dh_alua's
/// view for scsi_debug, the case script's configuration for LIO (where
/// scsi_dh_alua does not attach).
fn expected_alua(dev: &str) -> (String, bool) {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    if env("LIO_STANDBY") == dev {
        ("standby".into(), true)
    } else if env("LIO_ACTIVE") == dev {
        ("active/optimized".into(), false)
    } else {
        (
            sysfs(dev, "access_state"),
            sysfs(dev, "preferred_path") == "1",
        )
    }
}

fn is_lio(dev: &str) -> bool {
    sysfs(dev, "vendor") == "LIO-ORG"
}

fn path_in_state(paths: &[String], state: &str) -> String {
    paths
        .iter()
        .find(|d| expected_alua(d).0 == state)
        .unwrap_or_else(|| panic!("no path in {state} among {paths:?}"))
        .clone()
}

/// Exit code and stdout (stderr appended, for failure messages).
fn run(cmd: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Debian multipathd's prio per path (`DEV: alua prio = N` in its log), in
/// PEER_PRIO.
fn peer_prio() -> HashMap<String, i32> {
    let f = std::env::var("PEER_PRIO").expect("PEER_PRIO not set");
    fs::read_to_string(&f)
        .expect("PEER_PRIO file")
        .lines()
        .filter_map(|l| {
            let (d, p) = l.split_once(' ')?;
            Some((d.to_string(), p.trim().parse().ok()?))
        })
        .collect()
}

/// Debian multipathd's first settled TUR result per path (`up`, `ghost`,
/// ...), from its log, in PEER_TUR.
fn peer_tur() -> HashMap<String, String> {
    let f = std::env::var("PEER_TUR").expect("PEER_TUR not set");
    fs::read_to_string(&f)
        .expect("PEER_TUR file")
        .lines()
        .filter_map(|l| {
            let (d, st) = l.split_once(' ')?;
            Some((d.to_string(), st.trim().to_string()))
        })
        .collect()
}

/// `sg_rtpg -d` decoded: (tpg id, access state code, pref bit) per group.
fn sg_rtpg(dev: &str) -> Vec<(u16, u8, bool)> {
    let (rc, out) = run("sg_rtpg", &["-d", &format!("/dev/{dev}")]);
    assert_eq!(rc, 0, "sg_rtpg {dev}: {out}");
    let mut groups = Vec::new();
    let mut cur: Option<(u16, bool)> = None;
    for l in out.lines() {
        let l = l.trim();
        if let Some(rest) = l.strip_prefix("target port group id : ") {
            let id = rest.split_whitespace().next().unwrap_or("");
            let id = u16::from_str_radix(id.trim_start_matches("0x"), 16).expect("tpg id");
            cur = Some((id, l.contains("Pref=1")));
        } else if let Some(rest) = l.strip_prefix("target port group asymmetric access state : ") {
            let code = rest.split_whitespace().next().unwrap_or("");
            let code = u8::from_str_radix(code.trim_start_matches("0x"), 16).expect("aas");
            let (id, pref) = cur.take().expect("state before id");
            groups.push((id, code, pref));
        }
    }
    groups
}

fn path_info(dev: &str) -> PathInfo {
    PathInfo {
        dev: dev.to_string(),
        ..Default::default()
    }
}

#[test]
#[ignore = "needs the guest"]
fn inquiry_and_vpd_match_sysfs() {
    for dev in all_paths() {
        let sg = SgDevice::open(&dev).unwrap();
        let inq = sg.inquiry(T).unwrap();
        assert_eq!(inq.vendor, sysfs(&dev, "vendor"), "{dev} vendor");
        assert_eq!(inq.product, sysfs(&dev, "model"), "{dev} product");
        assert_eq!(inq.rev, sysfs(&dev, "rev"), "{dev} rev");
        assert!(inq.tpgs != 0, "{dev}: TPGS {}", inq.tpgs);
        // The kernel caches VPD 0x83 and 0x80 (not for tcm_loop devices):
        // same bytes as we read.
        let p83 = sg.vpd_page(0x83, T).unwrap();
        if let Ok(cached) = fs::read(format!("/sys/block/{dev}/device/vpd_pg83")) {
            assert_eq!(p83, cached, "{dev}: VPD 0x83");
        }
        let serial = match fs::read(format!("/sys/block/{dev}/device/vpd_pg80")) {
            Ok(cached) => {
                let p80 = sg.vpd_page(0x80, T).unwrap();
                assert_eq!(p80, cached, "{dev}: VPD 0x80");
                parse_vpd80_serial(&p80).unwrap()
            }
            Err(_) => String::new(),
        };
        // TPG as sg_vpd (and udev's scsi_id, when it ran) report it.
        let tpg = vpd83_target_port_group(&p83).unwrap().expect("tpg");
        let (_, props) = run(
            "udevadm",
            &["info", "--query=property", &format!("/dev/{dev}")],
        );
        if let Some(udev_tpg) = props
            .lines()
            .find_map(|l| l.strip_prefix("SCSI_IDENT_PORT_TARGET_PORT_GROUP="))
        {
            assert_eq!(
                u16::from_str_radix(udev_tpg.trim_start_matches("0x"), 16).unwrap(),
                tpg,
                "{dev}: TPG vs udev"
            );
        }
        let (_, di) = run("sg_vpd", &["-p", "di", &format!("/dev/{dev}")]);
        assert!(
            di.contains(&format!("Target port group: 0x{tpg:x}")),
            "{dev}: TPG 0x{tpg:x} vs sg_vpd:\n{di}"
        );
        println!(
            "{dev}: {} {} {} tpgs={} tpg=0x{tpg:x} serial={serial}",
            inq.vendor, inq.product, inq.rev, inq.tpgs
        );
    }
}

#[test]
#[ignore = "needs the guest"]
fn rtpg_matches_sg_rtpg_and_access_state() {
    for dev in all_paths() {
        let sg = SgDevice::open(&dev).unwrap();
        let ours: Vec<(u16, u8, bool)> = sg
            .report_target_port_groups(T)
            .unwrap()
            .iter()
            .map(|g| {
                let code = match g.state {
                    AluaState::ActiveOptimized => 0,
                    AluaState::ActiveNonOptimized => 1,
                    AluaState::Standby => 2,
                    AluaState::Unavailable => 3,
                    AluaState::LbaDependent => 4,
                    AluaState::Offline => 0xe,
                    AluaState::Transitioning => 0xf,
                    AluaState::Reserved(r) => r,
                };
                (g.tpg_id, code, g.pref)
            })
            .collect();
        assert_eq!(ours, sg_rtpg(&dev), "{dev}: RTPG vs sg_rtpg");
        let own = prio::alua_group(&path_info(&dev), T).unwrap();
        let (state, pref) = expected_alua(&dev);
        assert_eq!(own.state.as_str(), state, "{dev}: state");
        assert_eq!(own.pref, pref, "{dev}: pref");
        println!("{dev}: tpg {} {} pref={}", own.tpg_id, own.state, own.pref);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the guest"]
async fn alua_and_sysfs_prio_match_peer_multipathd() {
    let peer = peer_prio();
    let runner = CheckRunner::new(Arc::new(SysProbe::new()), 4);
    let spec = PrioSpec::new("alua", "");
    let mut seen = HashMap::new();
    for dev in all_paths() {
        let (state, pref) = expected_alua(&dev);
        let r = runner.prio(&path_info(&dev), &spec, T).await;
        assert_eq!(r.prioritizer, "alua", "{dev}: {r:?}");
        let want = match state.as_str() {
            "active/optimized" => 50,
            "active/non-optimized" => 10,
            "standby" => 1,
            s => panic!("{dev}: unexpected state {s}"),
        } + if pref && state != "active/optimized" {
            80
        } else {
            0
        };
        assert_eq!(r.prio, want, "{dev} ({state}, pref {pref}): {r:?}");
        let peer_prio = peer
            .get(&dev)
            .unwrap_or_else(|| panic!("{dev} not in peer output"));
        assert_eq!(r.prio, *peer_prio, "{dev}: ours vs Debian multipathd");
        // TPG given by discovery: same answer without reading VPD 0x83.
        let sg = SgDevice::open(&dev).unwrap();
        let tpg = vpd83_target_port_group(&sg.vpd_page(0x83, T).unwrap()).unwrap();
        let with_tpg = PathInfo {
            tpg_id: tpg,
            ..path_info(&dev)
        };
        assert_eq!(runner.prio(&with_tpg, &spec, T).await.prio, want);
        // sysfs prio reads scsi_dh_alua's view: the same numbers where it
        // is attached, const where not.
        let s = runner
            .prio(&path_info(&dev), &PrioSpec::new("sysfs", ""), T)
            .await;
        if sysfs(&dev, "access_state").is_empty() {
            assert_eq!(
                (s.prio, s.prioritizer.as_str()),
                (1, "const"),
                "{dev}: {s:?}"
            );
        } else {
            assert_eq!(s.prio, want, "{dev}: sysfs prio {s:?}");
            assert_eq!(s.prio, sysfs_prio_value(&state, pref, false));
        }
        // exclusive_pref_bit only changes preferred active/optimized paths.
        let x = runner
            .prio(
                &path_info(&dev),
                &PrioSpec::new("alua", "exclusive_pref_bit"),
                T,
            )
            .await;
        let st = prio::alua_group(&path_info(&dev), T).unwrap();
        assert_eq!(x.prio, alua_prio_value(st.state, st.pref, true));
        seen.insert(r.prio, dev.clone());
        println!(
            "{dev}: {state} pref={pref} alua={} sysfs={} peer={peer_prio}",
            r.prio, s.prio
        );
    }
    for p in [50, 10, 1, 81] {
        assert!(seen.contains_key(&p), "no path with prio {p}: {seen:?}");
    }
    // const, vendor prioritizers on a real device, and an unsupported one.
    let dev = scsi_debug_paths()[0].clone();
    assert_eq!(
        runner
            .prio(&path_info(&dev), &PrioSpec::new("const", ""), T)
            .await
            .prio,
        1
    );
    // Five reads of a RAM disk: fast, so near the top of base 10's scale.
    let r = runner
        .prio(&path_info(&dev), &PrioSpec::new("path_latency", "5|10"), T)
        .await;
    assert_eq!(r.prioritizer, "path_latency", "{r:?}");
    assert!((4..=9).contains(&r.prio), "{r:?}");
    let r = runner
        .prio(&path_info(&dev), &PrioSpec::new("path_latency", "bad"), T)
        .await;
    assert_eq!(
        (r.prio, r.prioritizer.as_str()),
        (0, "path_latency"),
        "{r:?}"
    );
    assert!(r.msg.unwrap_or_default().contains("io_num|base_num"));
    let r = runner
        .prio(&path_info(&dev), &PrioSpec::new("hp_sw", ""), T)
        .await;
    assert_eq!((r.prio, r.prioritizer.as_str()), (4, "hp_sw"), "{r:?}");
    // scsi_debug has no RDAC volume access page: 0, with the reason.
    let r = runner
        .prio(&path_info(&dev), &PrioSpec::new("rdac", ""), T)
        .await;
    assert_eq!(r.prio, 0, "{r:?}");
    assert!(r.msg.unwrap_or_default().contains("rdac prio"));
    let r = runner
        .prio(&path_info(&dev), &PrioSpec::new("ana", ""), T)
        .await;
    assert_eq!((r.prio, r.prioritizer.as_str()), (1, "const"));
}

#[test]
#[ignore = "needs the guest"]
fn tur_matches_sg_turs_and_peer_multipathd() {
    let peer = peer_tur();
    for dev in all_paths() {
        let r = checker::tur(&dev, T);
        let (rc, _) = run("sg_turs", &[&format!("/dev/{dev}")]);
        let lio_standby = is_lio(&dev) && expected_alua(&dev).0 == "standby";
        // scsi_debug answers TUR with GOOD in every ALUA state; LIO answers
        // NOT READY 04/0b on a standby port.
        let want = if lio_standby {
            ChkState::Ghost
        } else {
            ChkState::Up
        };
        assert_eq!(r.state, want, "{dev}: {r}");
        assert_eq!(rc == 0, want == ChkState::Up, "{dev}: sg_turs exit {rc}");
        let peer_chk = peer
            .get(&dev)
            .unwrap_or_else(|| panic!("{dev} not in peer output"));
        assert_eq!(
            peer_chk,
            r.state.status_name(),
            "{dev}: ours vs Debian multipathd"
        );
        println!("{dev}: {r} (sg_turs exit {rc}, peer {peer_chk})");
    }
}

#[test]
#[ignore = "needs the guest"]
fn other_checkers_on_a_working_path() {
    let dev = path_in_state(&scsi_debug_paths(), "active/optimized");
    assert_eq!(checker::directio(&dev, T).state, ChkState::Up);
    assert_eq!(checker::readsector0(&dev, T).state, ChkState::Up);
    assert_eq!(
        SysProbe::new().check(&dev, CheckerKind::None, T).state,
        ChkState::Up
    );
    // O_DIRECT reads go through scsi_dh_alua, which refuses I/O on standby.
    let sb = path_in_state(&scsi_debug_paths(), "standby");
    assert_eq!(checker::directio(&sb, T).state, ChkState::Down);
}

fn set_dev_state(dev: &str, state: &str) {
    fs::write(
        format!("/sys/block/{dev}/device/state"),
        format!("{state}\n"),
    )
    .unwrap();
}

#[test]
#[ignore = "needs the guest"]
fn offline_path_is_down() {
    let dev = path_in_state(&scsi_debug_paths(), "active/optimized");
    // An fd opened while the path ran, as a daemon holding it would have.
    let held = SgDevice::open(&dev).unwrap();
    set_dev_state(&dev, "offline");
    let on_held = held.test_unit_ready(T);
    let tur_held = checker::tur_on(&held, T);
    let raw = checker::tur(&dev, T);
    let probed = SysProbe::new().check(&dev, CheckerKind::Tur, T);
    let rs0 = checker::readsector0(&dev, T);
    let dio = checker::directio(&dev, T);
    set_dev_state(&dev, "running");
    // SG_IO on an fd held from before fails with ENODEV...
    let e = on_held.unwrap_err();
    assert!(e.to_string().contains("ENODEV"), "{e}");
    assert_eq!(tur_held.state, ChkState::Down, "{tur_held}");
    // ...and sd refuses to open an offline device (ENXIO).
    assert_eq!(raw.state, ChkState::Down, "{raw}");
    assert!(raw.to_string().contains("os error 6"), "{raw}");
    // The probe does not even try: sysfs says offline.
    assert_eq!(probed.state, ChkState::Down, "{probed}");
    assert_eq!(probed.msg, "path offline");
    assert_eq!(rs0.state, ChkState::Down, "{rs0}");
    assert_eq!(dio.state, ChkState::Down, "{dio}");
    println!("offline {dev}: {tur_held} / {raw} / {probed} / {rs0} / {dio}");
    assert_eq!(checker::tur(&dev, T).state, ChkState::Up);
    assert_eq!(held.test_unit_ready(T).unwrap().outcome, Outcome::Good);
}

const SDEBUG: &str = "/sys/bus/pseudo/drivers/scsi_debug";

/// While alive, scsi_debug ignores every command (every_nth=1 with the
/// TIMEOUT option): a target that stopped answering. The kernel times
/// commands out and aborts them. (`delay` would do too, but scsi_debug
/// refuses to change it back while any command is queued, and udev keeps
/// some queued.)
struct Unresponsive;

impl Unresponsive {
    fn start() -> Self {
        fs::write(format!("{SDEBUG}/opts"), "4\n").unwrap();
        fs::write(format!("{SDEBUG}/every_nth"), "1\n").unwrap();
        Unresponsive
    }
}

impl Drop for Unresponsive {
    fn drop(&mut self) {
        let _ = fs::write(format!("{SDEBUG}/every_nth"), "0\n");
        let _ = fs::write(format!("{SDEBUG}/opts"), "0\n");
    }
}

/// After a hang, commands the kernel retried may still be draining: wait
/// (bounded) until TUR answers again.
fn wait_up(dev: &str) {
    let t0 = Instant::now();
    loop {
        let r = checker::tur(dev, T);
        if r.state == ChkState::Up {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "{dev} not up again: {r}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the guest"]
async fn hang_device_times_out_while_others_answer() {
    let hung = scsi_debug_paths();
    let healthy = lio_paths();
    let runner = CheckRunner::new(Arc::new(SysProbe::new()), 8);
    let timeout = Duration::from_secs(3);
    let hang = Unresponsive::start();
    let start = Instant::now();
    let checks = hung.iter().chain(healthy.iter()).map(|d| {
        let r = runner.clone();
        let d = d.clone();
        async move {
            let res = r.check(&d, CheckerKind::Tur, timeout).await;
            (d, res, start.elapsed())
        }
    });
    let results = futures::future::join_all(checks).await;
    // The runner's deadline equals the SG_IO timeout and usually fires
    // first: the ioctls are still being aborted (stuck) for a moment.
    let s = runner.stats();
    println!("right after: {s:?}");
    assert!(s.stuck <= hung.len() && s.in_flight == s.stuck, "{s:?}");
    let t0 = Instant::now();
    while runner.stats().in_flight > 0 && t0.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(hang);
    for (d, res, took) in &results {
        println!("{d}: {res} after {took:?}");
        if hung.contains(d) {
            assert_eq!(res.state, ChkState::Timeout, "{d}: {res}");
            // Reported within the checker timeout (plus scheduling slack).
            assert!(*took < timeout + Duration::from_secs(2), "{d}: {took:?}");
        } else {
            let want = if expected_alua(d).0 == "standby" {
                ChkState::Ghost
            } else {
                ChkState::Up
            };
            assert_eq!(res.state, want, "{d}: {res}");
            assert!(*took < timeout, "{d} answered after {took:?}");
        }
    }
    assert_eq!(runner.stats().in_flight, 0, "{:?}", runner.stats());
    for d in &hung {
        tokio::task::block_in_place(|| wait_up(d));
    }
}

/// SysProbe with a longer SG_IO timeout than the runner's deadline, so the
/// ioctl is still in the kernel when the runner gives up: a stuck call.
struct SlowKernelProbe {
    sg_timeout: Duration,
    checks: AtomicUsize,
}

impl PathProbe for SlowKernelProbe {
    fn check(&self, dev: &str, checker: CheckerKind, _timeout: Duration) -> CheckResult {
        self.checks.fetch_add(1, Ordering::SeqCst);
        SysProbe::new().check(dev, checker, self.sg_timeout)
    }
    fn prio(&self, path: &PathInfo, spec: &PrioSpec, _timeout: Duration) -> PrioResult {
        SysProbe::new().prio(path, spec, self.sg_timeout)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the guest"]
async fn hang_stuck_ioctl_keeps_its_slot_and_is_not_requeued() {
    let dev = scsi_debug_paths()[0].clone();
    let good = path_in_state(&lio_paths(), "active/optimized");
    let probe = Arc::new(SlowKernelProbe {
        sg_timeout: Duration::from_secs(12),
        checks: AtomicUsize::new(0),
    });
    let runner = CheckRunner::new(probe.clone(), 2);
    let deadline = Duration::from_secs(2);
    let hang = Unresponsive::start();
    let r = runner.check(&dev, CheckerKind::Tur, deadline).await;
    assert_eq!(r.state, ChkState::Timeout, "{r}");
    let s = runner.stats();
    println!("after timeout: {s:?}");
    assert_eq!((s.in_flight, s.stuck), (1, 1));
    assert!(runner.is_in_flight(&dev));
    // No second ioctl for the stuck path; other paths still get checked.
    let again = runner.check(&dev, CheckerKind::Tur, deadline).await;
    assert_eq!(again.state, ChkState::Timeout, "{again}");
    assert_eq!(probe.checks.load(Ordering::SeqCst), 1);
    assert_eq!(
        runner.check(&good, CheckerKind::Tur, deadline).await.state,
        ChkState::Up
    );
    assert_eq!(
        runner
            .prio(&path_info(&dev), &PrioSpec::new("alua", ""), deadline)
            .await
            .prio,
        prio::PRIO_UNDEF
    );
    // The kernel times the command out at 12 s and aborts it: the slot is
    // released and the stuck count drops.
    let t0 = Instant::now();
    while runner.is_in_flight(&dev) && t0.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("stuck call returned after {:?} more", t0.elapsed());
    assert_eq!(runner.stats().stuck, 0);
    assert!(!runner.is_in_flight(&dev));
    drop(hang);
    tokio::task::block_in_place(|| wait_up(&dev));
    assert_eq!(
        runner.check(&dev, CheckerKind::Tur, T).await.state,
        ChkState::Up
    );
    // One call for the hung path, one for the good path, one now.
    assert_eq!(probe.checks.load(Ordering::SeqCst), 3);
}
