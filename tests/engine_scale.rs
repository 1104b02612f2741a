//! Cost of the policy core at SAN scale (not a timed test: prints numbers).
//! `cargo test --release --test engine_scale -- --ignored --nocapture`

use std::sync::Arc;
use std::time::Instant;

use mpathd::config::Config;
use mpathd::daemon::adapters::ConfigPolicy;
use mpathd::model::{ChkState, DevT, PathInfo};
use mpathd::policy::engine::{Action, Engine, Event, MapChange, ProbeResult};

const CONF: &str = "defaults {\n\tfind_multipaths yes\n\tuser_friendly_names no\n\tpolling_interval 5\n}\nblacklist {\n\tdevnode \"^(sr|vd|loop|ram)\"\n}\n";

fn sd_name(i: u32) -> String {
    mpathd::discovery::sd_name(i as usize)
}

fn path(i: u32, lun: u32, host: u32) -> PathInfo {
    PathInfo {
        dev: sd_name(i),
        devt: Some(DevT::new(8, i)),
        vendor: "Linux".into(),
        product: "scsi_debug".into(),
        rev: "0191".into(),
        wwid: Some(format!("1Linux_scsi_debug_{:04}", 2000 + lun)),
        size: 16384,
        tpgs: 1,
        properties: [
            (
                "ID_SERIAL".to_string(),
                format!("1Linux_scsi_debug_{:04}", 2000 + lun),
            ),
            ("ID_WWN".to_string(), "0x2000".to_string()),
        ]
        .into(),
        access_state: Some(
            if host.is_multiple_of(2) {
                "active/optimized"
            } else {
                "active/non-optimized"
            }
            .into(),
        ),
        ..PathInfo::default()
    }
}

fn probes(a: &[Action]) -> Vec<String> {
    a.iter()
        .filter_map(|a| match a {
            Action::Probe(r) => Some(r.info.dev.clone()),
            _ => None,
        })
        .collect()
}

#[test]
#[ignore = "prints the policy core's cost at scale"]
fn engine_cost_at_scale() {
    let (cfg, _) = Config::parse_str(CONF, "multipath.conf").expect("config");
    let mut e = Engine::new(Arc::new(ConfigPolicy::new(Arc::new(cfg))), 1);
    e.use_real_clock(Instant::now());
    let luns = 256u32;
    let mut now = 0u64;
    let mut evs = Vec::new();
    for lun in 0..luns {
        for host in 0..4 {
            evs.push(Event::path_added(path(lun * 4 + host, lun, host)));
        }
    }
    let t = Instant::now();
    let a = e.handle_batch(evs, now);
    println!(
        "coldplug batch of {} paths: {:?}, {} probes",
        luns * 4,
        t.elapsed(),
        probes(&a).len()
    );
    println!("why: {}", e.snapshot().paths[0].why);
    now += 100;
    let res: Vec<Event> = probes(&a)
        .into_iter()
        .map(|d| {
            Event::Probed(ProbeResult {
                dev: d,
                chk: ChkState::Up,
                prio: Some(50),
                msg: String::new(),
                dev_state: None,
                pr: None,
                check_ms: None,
            })
        })
        .collect();
    let t = Instant::now();
    let a = e.handle_batch(res, now);
    let creates = a
        .iter()
        .filter(|a| matches!(a, Action::Map(MapChange::Create { .. })))
        .count();
    println!("first checks -> {creates} creates: {:?}", t.elapsed());
    for a in a {
        if let Action::Map(MapChange::Create { name, .. }) = a {
            e.handle(
                Event::MapApplied {
                    name,
                    ok: true,
                    removed: false,
                    dm_minor: None,
                    error: None,
                },
                now,
            );
        }
    }
    // Hot add: one new path at a time, as udev delivers them.
    let n = 64;
    let t = Instant::now();
    for k in 0..n {
        now += 10;
        let i = luns * 4 + k;
        e.handle(Event::path_added(path(i, luns + k / 4, k % 4)), now);
    }
    println!("hot add: {:?} per new path", t.elapsed() / n);
    let t = Instant::now();
    for k in 0..n {
        now += 10;
        e.handle(Event::path_changed(path(k, k / 4, k % 4)), now);
    }
    println!("unchanged change event: {:?} each", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        now += 1000;
        e.handle(Event::Tick, now);
    }
    println!("tick: {:?} each", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..20 {
        let _ = e.snapshot();
    }
    println!("snapshot: {:?} each", t.elapsed() / 20);
    // What a path failure publishes: one path changed since the last one.
    let t = Instant::now();
    for k in 0..20u32 {
        now += 10;
        let chk = if k % 2 == 0 {
            ChkState::Down
        } else {
            ChkState::Up
        };
        e.handle(
            Event::Probed(ProbeResult {
                dev: sd_name(k),
                chk,
                prio: Some(50),
                msg: String::new(),
                dev_state: None,
                pr: None,
                check_ms: None,
            }),
            now,
        );
        let _ = e.snapshot();
    }
    println!("one path changed + snapshot: {:?} each", t.elapsed() / 20);
    let snap = e.snapshot();
    let t = Instant::now();
    let mut len = 0;
    for _ in 0..20 {
        len = mpathd::ipc::format::topology(&snap).len();
    }
    println!(
        "show topology ({} maps, {len} bytes): {:?} each",
        snap.maps.len(),
        t.elapsed() / 20
    );
    let q = mpathd::ipc::Command::ShowTopology;
    let t = Instant::now();
    for _ in 0..20 {
        len = mpathd::ipc::format::answer_query(&q, &snap).map_or(0, |s| s.len());
    }
    println!(
        "show topology, cached ({len} bytes): {:?} each",
        t.elapsed() / 20
    );
    let t = Instant::now();
    for _ in 0..20 {
        len =
            mpathd::ipc::format::paths(&snap, mpathd::ipc::format::PRINT_PATH_CHECKER, true).len();
    }
    println!("show paths ({len} bytes): {:?} each", t.elapsed() / 20);
}
