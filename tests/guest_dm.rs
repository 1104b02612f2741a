//! Kernel-facing proof of the dm layer (RealDm, dm events) on two real
//! paths of one scsi_debug LUN. Run in the guest by
//! tests/vm/cases/dm/10-dm.sh, which sets:
//!   DM_TEST_PATH1, DM_TEST_PATH2  the paths' maj:min (both not standby)
//!   DM_TEST_WWID                  the LUN's WWID
//! Every test creates its own map and removes it, so they run one at a time
//! (`--test-threads=1`). Lines starting with `FIXTURE ` are real kernel
//! strings for the unit tests.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mpathd::dm::{
    DmError, DmMessage, DmOps, Features, HwHandler, MapEventKind, MultipathStatus, MultipathTable,
    RealDm, Selector, TableMatch,
};
use mpathd::model::{DevT, DmPathState, PgState};

struct Lun {
    p1: DevT,
    p2: DevT,
    wwid: String,
    size: u64,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set (run from 10-dm.sh)"))
}

fn lun() -> Lun {
    let p1: DevT = env("DM_TEST_PATH1").parse().expect("DM_TEST_PATH1");
    let p2: DevT = env("DM_TEST_PATH2").parse().expect("DM_TEST_PATH2");
    let sys = format!("/sys/dev/block/{p1}/size");
    let size = std::fs::read_to_string(&sys)
        .unwrap_or_else(|e| panic!("{sys}: {e}"))
        .trim()
        .parse()
        .expect("size");
    Lun {
        p1,
        p2,
        wwid: env("DM_TEST_WWID"),
        size,
    }
}

/// Removes the map when a test ends, pass or fail.
struct MapGuard<'a> {
    dm: &'a RealDm,
    name: &'a str,
}

impl Drop for MapGuard<'_> {
    fn drop(&mut self) {
        let _ = self.dm.message(self.name, &DmMessage::FailIfNoPath);
        // udev may still be probing the map (blkid after a reload): wait
        // for it to let go, or the next test's create meets this map's
        // uuid.
        let until = Instant::now() + Duration::from_secs(10);
        while self.dm.remove(self.name, false).is_err() && Instant::now() < until {
            if self.dm.table(self.name).is_err() {
                break; // gone
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn two_groups(first: DevT, second: DevT) -> MultipathTable {
    MultipathTable::from_groups(
        Features::default(),
        HwHandler::none(),
        &Selector::new("service-time"),
        &[vec![(first, 1)], vec![(second, 1)]],
    )
}

fn create<'a>(dm: &'a RealDm, name: &'a str, lun: &Lun, t: &MultipathTable) -> MapGuard<'a> {
    // A leftover from an earlier failed run would make create fail.
    let _ = dm.remove(name, false);
    let uuid = format!("mpath-{}", lun.wwid);
    let info = dm
        .create(name, &uuid, lun.size, &t.to_string())
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    assert_eq!(info.name, name);
    assert_eq!(info.uuid, uuid);
    assert!(!info.suspended);
    MapGuard { dm, name }
}

fn table_of(dm: &RealDm, name: &str) -> (u64, MultipathTable, String) {
    let (size, params) = dm.table(name).unwrap_or_else(|e| panic!("{e}"));
    let t = params
        .parse()
        .unwrap_or_else(|e| panic!("kernel table {params:?}: {e}"));
    (size, t, params)
}

fn status_of(dm: &RealDm, name: &str) -> MultipathStatus {
    let s = dm.status(name).unwrap_or_else(|e| panic!("{e}"));
    s.parse()
        .unwrap_or_else(|e| panic!("kernel status {s:?}: {e}"))
}

fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs the guest"]
fn create_reads_back_equal_table_and_status() {
    let lun = lun();
    let dm = RealDm::new().expect("open /dev/mapper/control");
    let name = "dmt-create";
    let want = two_groups(lun.p1, lun.p2);
    let _g = create(&dm, name, &lun, &want);

    let (size, kernel, params) = table_of(&dm, name);
    println!("FIXTURE loaded {want}");
    println!("FIXTURE table {params}");
    assert_eq!(size, lun.size);
    assert_eq!(want.compare(&kernel), TableMatch::Same, "kernel: {params}");
    let st = status_of(&dm, name);
    println!("FIXTURE status {st}");
    assert_eq!(st.groups.len(), 2);
    assert_eq!(st.nr_active_paths(), 2);
    assert_eq!(st.path(lun.p1).map(|(g, _)| g), Some(1));
    assert_eq!(st.path(lun.p2).map(|(g, _)| g), Some(2));

    let maps = dm.list_maps().expect("list");
    let me = maps.iter().find(|m| m.name == name).expect("listed");
    assert_eq!(me.uuid, format!("mpath-{}", lun.wwid));
    assert_eq!(me.target_type, "multipath");
    assert_eq!(me.devt.minor, dm.map_info(name).expect("info").minor());

    // udev made the node and the by-id link (rules were not disabled).
    wait_until("/dev/mapper node", Duration::from_secs(20), || {
        Path::new(&format!("/dev/mapper/{name}")).exists()
    });
    let by_id = format!("/dev/disk/by-id/dm-uuid-mpath-{}", lun.wwid);
    wait_until(&by_id, Duration::from_secs(20), || {
        Path::new(&by_id).exists()
    });

    // Same name (or uuid) again is refused and leaves the map alone.
    let again = dm.create(name, "mpath-other", lun.size, &want.to_string());
    assert!(matches!(again, Err(DmError::Exists { .. })), "{again:?}");
    assert!(dm.map_info(name).is_ok());
}

#[test]
#[ignore = "needs the guest"]
fn kernel_rewritten_tables_compare_equal() {
    let lun = lun();
    let dm = RealDm::new().expect("open /dev/mapper/control");
    let name = "dmt-forms";
    let _g = create(&dm, name, &lun, &two_groups(lun.p1, lun.p2));
    let (a, b) = (lun.p1, lun.p2);
    for params in [
        format!("1 queue_if_no_path 1 alua 2 1 service-time 0 1 1 {a} 1 service-time 0 1 1 {b} 1"),
        format!("3 pg_init_retries 50 queue_if_no_path 1 alua 2 1 round-robin 0 1 1 {a} 1 round-robin 0 1 1 {b} 1"),
        format!("1 retain_attached_hw_handler 0 1 1 queue-length 0 2 1 {a} 1 {b} 1"),
        format!("0 0 1 1 service-time 0 2 1 {a} 10 {b} 50"),
        format!("2 pg_init_delay_msecs 100 0 2 2 service-time 0 1 2 {b} 1 3 service-time 0 1 0 {a}"),
    ] {
        let want: MultipathTable = params.parse().expect("our table");
        dm.reload(name, lun.size, &params, true)
            .unwrap_or_else(|e| panic!("reload {params}: {e}"));
        let (_, kernel, back) = table_of(&dm, name);
        println!("FIXTURE loaded {params}");
        println!("FIXTURE table {back}");
        let st = status_of(&dm, name);
        println!("FIXTURE status {st}");
        assert_eq!(want.compare(&kernel), TableMatch::Same, "loaded {params}, kernel {back}");
        // What we think the kernel prints, modulo the attached handler.
        let mut expect = want.kernel_form();
        expect.hwhandler = kernel.hwhandler.clone();
        expect.features.retain_attached_hw_handler = kernel.features.retain_attached_hw_handler;
        expect.init_pg = kernel.init_pg;
        assert_eq!(expect.to_string(), back, "kernel_form vs kernel");
    }
    // A different table is seen as different.
    let swapped = two_groups(lun.p2, lun.p1);
    let (_, kernel, _) = table_of(&dm, name);
    assert!(swapped.needs_reload(&kernel));
}

#[test]
#[ignore = "needs the guest"]
fn messages_change_path_and_group_states() {
    let lun = lun();
    let dm = RealDm::new().expect("open /dev/mapper/control");
    let name = "dmt-msg";
    let _g = create(&dm, name, &lun, &two_groups(lun.p1, lun.p2));
    let ev0 = dm.event_nr(name).expect("event_nr");

    dm.message(name, &DmMessage::FailPath(lun.p1))
        .expect("fail_path");
    let st = status_of(&dm, name);
    println!("FIXTURE status {st}");
    let (_, p) = st.path(lun.p1).expect("p1");
    assert_eq!(p.state, DmPathState::Failed);
    assert_eq!(p.fail_count, 1);
    assert_eq!(st.path(lun.p2).expect("p2").1.state, DmPathState::Active);
    wait_until("event_nr to move", Duration::from_secs(5), || {
        dm.event_nr(name).unwrap_or(ev0) > ev0
    });

    dm.message(name, &DmMessage::ReinstatePath(lun.p1))
        .expect("reinstate_path");
    let st = status_of(&dm, name);
    assert_eq!(st.path(lun.p1).expect("p1").1.state, DmPathState::Active);
    assert_eq!(st.path(lun.p1).expect("p1").1.fail_count, 1);

    dm.message(name, &DmMessage::SwitchGroup(2))
        .expect("switch_group");
    assert_eq!(status_of(&dm, name).next_pg, 2);
    dm.message(name, &DmMessage::DisableGroup(1))
        .expect("disable_group");
    let st = status_of(&dm, name);
    println!("FIXTURE status {st}");
    assert_eq!(st.groups[0].state, PgState::Disabled);
    dm.message(name, &DmMessage::EnableGroup(1))
        .expect("enable_group");
    assert_ne!(status_of(&dm, name).groups[0].state, PgState::Disabled);

    dm.message(name, &DmMessage::QueueIfNoPath)
        .expect("queue_if_no_path");
    assert!(table_of(&dm, name).1.features.queue_if_no_path);
    dm.message(name, &DmMessage::FailIfNoPath)
        .expect("fail_if_no_path");
    assert!(!table_of(&dm, name).1.features.queue_if_no_path);

    // Bad messages are errors naming the map.
    let e = dm
        .message(name, &DmMessage::SwitchGroup(9))
        .expect_err("group 9");
    assert!(e.to_string().contains(name), "{e}");
    assert!(dm
        .message("dmt-nonexistent", &DmMessage::QueueIfNoPath)
        .expect_err("no map")
        .is_not_found());
}

/// Runs `dd` readers through the map until stopped; counts runs and
/// failures.
fn spawn_reader(
    dev: String,
    stop: Arc<AtomicBool>,
    runs: Arc<AtomicU32>,
) -> thread::JoinHandle<Vec<String>> {
    thread::spawn(move || {
        let mut failures = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let out = Command::new("dd")
                .args([
                    &format!("if={dev}"),
                    "of=/dev/null",
                    "bs=64k",
                    "count=64",
                    "iflag=direct",
                ])
                .output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => failures.push(String::from_utf8_lossy(&o.stderr).into_owned()),
                Err(e) => failures.push(e.to_string()),
            }
            runs.fetch_add(1, Ordering::SeqCst);
        }
        failures
    })
}

#[test]
#[ignore = "needs the guest"]
fn reload_under_io_and_failed_reload_leaves_map_alone() {
    let lun = lun();
    let dm = RealDm::new().expect("open /dev/mapper/control");
    let name = "dmt-reload";
    let first = two_groups(lun.p1, lun.p2);
    let swapped = two_groups(lun.p2, lun.p1);
    let _g = create(&dm, name, &lun, &first);
    let dev = format!("/dev/mapper/{name}");
    wait_until("/dev/mapper node", Duration::from_secs(20), || {
        Path::new(&dev).exists()
    });

    let stop = Arc::new(AtomicBool::new(false));
    let runs = Arc::new(AtomicU32::new(0));
    let reader = spawn_reader(dev, stop.clone(), runs.clone());
    wait_until("first dd", Duration::from_secs(30), || {
        runs.load(Ordering::SeqCst) > 0
    });
    let before = runs.load(Ordering::SeqCst);
    for i in 0..6 {
        let t = if i % 2 == 0 { &swapped } else { &first };
        dm.reload(name, lun.size, &t.to_string(), true)
            .unwrap_or_else(|e| panic!("reload {i}: {e}"));
        assert_eq!(t.compare(&table_of(&dm, name).1), TableMatch::Same);
        thread::sleep(Duration::from_millis(200));
    }
    let during = runs.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    let failures = reader.join().expect("reader thread");
    assert!(
        failures.is_empty(),
        "dd failed during reloads: {failures:?}"
    );
    assert!(during > 0, "no dd completed while reloading");
    println!("{} dd runs completed across 6 reloads", during);

    // A table the kernel refuses (unknown selector) changes nothing.
    let bad = &format!("0 0 1 1 no-such-selector 0 1 1 {} 1", lun.p1);
    let e = dm.reload(name, lun.size, bad, true).expect_err("bad table");
    println!("refused reload: {e}");
    let info = dm.map_info(name).expect("info");
    assert!(!info.suspended, "map left suspended");
    assert_eq!(first.compare(&table_of(&dm, name).1), TableMatch::Same);

    // A create the kernel refuses leaves no map behind.
    let e = dm
        .create("dmt-badcreate", "mpath-dmt-bad", lun.size, bad)
        .expect_err("bad create");
    assert!(matches!(e, DmError::RolledBack { .. }), "{e}");
    assert!(dm
        .map_info("dmt-badcreate")
        .expect_err("gone")
        .is_not_found());
}

#[test]
#[ignore = "needs the guest"]
fn remove_is_refused_while_open() {
    let lun = lun();
    let dm = RealDm::new().expect("open /dev/mapper/control");
    let name = "dmt-remove";
    let _g = create(&dm, name, &lun, &two_groups(lun.p1, lun.p2));
    let dev = format!("/dev/mapper/{name}");
    wait_until("/dev/mapper node", Duration::from_secs(20), || {
        Path::new(&dev).exists()
    });
    // udev's probes of the new map open it too: let them finish.
    wait_until(
        "udev done with the new map",
        Duration::from_secs(20),
        || {
            dm.map_info(name)
                .map(|i| i.open_count == 0)
                .unwrap_or(false)
        },
    );
    let file = std::fs::File::open(&dev).expect("open map");
    assert!(dm.map_info(name).expect("info").open_count >= 1);
    let e = dm.remove(name, false).expect_err("open map removed");
    assert!(e.is_in_use(), "{e}");
    assert_eq!(e.to_string(), format!("{name}: map or partition in use"));
    assert!(dm.map_info(name).is_ok());
    drop(file);
    // udev may still hold the node briefly after our close.
    wait_until("open count 0", Duration::from_secs(10), || {
        dm.map_info(name)
            .map(|i| i.open_count == 0)
            .unwrap_or(false)
    });
    // ...and open it again for a moment (udev's probes after our close):
    // what remove_retries is for.
    wait_until("removed", Duration::from_secs(10), || {
        match dm.remove(name, false) {
            Ok(()) => true,
            Err(e) if e.is_in_use() => false,
            Err(e) => panic!("remove: {e}"),
        }
    });
    assert!(dm.map_info(name).expect_err("gone").is_not_found());
    wait_until("node gone", Duration::from_secs(20), || {
        !Path::new(&dev).exists()
    });
}

/// Polls the map's event counter from a plain thread every 1 ms and says
/// when it moved past `before`: the time the kernel published the event.
fn kernel_event_time(name: &'static str, before: u32) -> thread::JoinHandle<Option<Instant>> {
    thread::spawn(move || {
        let dm = RealDm::new().ok()?;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if dm.event_nr(name).ok()? > before {
                return Some(Instant::now());
            }
            thread::sleep(Duration::from_millis(1));
        }
        None
    })
}

#[test]
#[ignore = "needs the guest"]
fn dm_event_for_fail_path_within_100ms() {
    let lun = lun();
    let dm = RealDm::new().expect("open /dev/mapper/control");
    let name = "dmt-events";
    let _g = create(&dm, name, &lun, &two_groups(lun.p1, lun.p2));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Let udev finish with the new map so only our message makes events.
    let _ = Command::new("udevadm")
        .args(["settle", "--timeout=30"])
        .status();
    rt.block_on(async {
        let (task, mut rx) = mpathd::dm::watch(16).expect("watch");
        for (msg, what) in [
            (DmMessage::FailPath(lun.p1), "fail_path"),
            (DmMessage::ReinstatePath(lun.p1), "reinstate_path"),
        ] {
            // Drop anything left from the create.
            while rx.try_recv().is_ok() {}
            let before = dm.event_nr(name).expect("event_nr");
            let kernel = kernel_event_time(name, before);
            let start = Instant::now();
            dm.message(name, &msg).expect("message");
            let sent = start.elapsed();
            let ev = tokio::time::timeout(Duration::from_secs(2), async {
                loop {
                    let ev = rx.recv().await.expect("watcher ended");
                    if ev.name == name {
                        return ev;
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no dm event within 2 s after {what}"));
            let got = Instant::now();
            let published = kernel
                .join()
                .expect("poller")
                .expect("event counter never moved");
            let total = got - start;
            let ours = got.saturating_duration_since(published);
            println!(
                "dm event after {what}: {ev:?}: {total:?} after the message \
                 (ioctl {sent:?}, kernel counter moved at {:?}, watcher {ours:?} later)",
                published - start
            );
            assert_eq!(ev.kind, MapEventKind::Changed);
            assert!(ev.event_nr > before);
            // The watcher's own latency; the kernel's part is TCG-slow.
            assert!(
                ours < Duration::from_millis(100),
                "{what}: watcher took {ours:?}"
            );
            assert!(
                total < Duration::from_secs(1),
                "{what}: event took {total:?}"
            );
        }
        task.abort();
    });
}
