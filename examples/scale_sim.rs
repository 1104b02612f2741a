//! The daemon's core beyond what the guest can hold: the real engine,
//! snapshot and control-socket server, fed simulated paths (4 per LUN,
//! half active/optimized). Prints one JSON object of costs for PATHS paths;
//! `bench/sim/run` runs it at several sizes and prints the table.
//!
//! `cargo run --release --example scale_sim -- 16384`

use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpathd::config::Config;
use mpathd::daemon::adapters::ConfigPolicy;
use mpathd::ipc::codec;
use mpathd::ipc::socket::SocketName;
use mpathd::ipc::{Server, ServerConfig};
use mpathd::model::{ChkState, DaemonSnapshot, DevT, PathInfo};
use mpathd::policy::engine::{Action, Engine, Event, MapChange, ProbeResult};
use tokio::sync::{mpsc, oneshot, watch};

const CONF: &str =
    "defaults {\n\tfind_multipaths yes\n\tuser_friendly_names no\n\tpolling_interval 5\n}\n";
const PATHS_PER_LUN: u32 = 4;

fn sd_name(i: u32) -> String {
    mpathd::discovery::sd_name(i as usize)
}

fn sd_index(name: &str) -> u32 {
    name.bytes()
        .skip(2)
        .fold(0u32, |n, b| n * 26 + u32::from(b - b'a') + 1)
        - 1
}

fn path(i: u32) -> PathInfo {
    let lun = i / PATHS_PER_LUN;
    let host = i % PATHS_PER_LUN;
    let wwid = format!("36001405{lun:024x}");
    PathInfo {
        dev: sd_name(i),
        devt: Some(DevT::new(8 + (i >> 20), i & 0xfffff)),
        vendor: "LIO-ORG".into(),
        product: "disk".into(),
        rev: "4.0".into(),
        wwid: Some(wwid.clone()),
        size: 16384,
        tpgs: 1,
        properties: [
            ("ID_SERIAL".to_string(), wwid.clone()),
            ("ID_WWN".to_string(), format!("0x{wwid}")),
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

fn checked(dev: String, chk: ChkState, host: u32) -> Event {
    Event::Probed(ProbeResult {
        dev,
        chk,
        prio: Some(if host.is_multiple_of(2) { 50 } else { 10 }),
        msg: String::new(),
        dev_state: None,
        pr: None,
        check_ms: None,
    })
}

fn rss_kib() -> u64 {
    mpathd::ipc::format::metrics::ProcessStats::current().map_or(0, |p| p.resident_bytes / 1024)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Median and worst of `n` runs of `f`, in microseconds.
fn timed(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            us(t.elapsed())
        })
        .collect();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

/// Build the SAN in the engine: coldplug, first checks, maps applied.
fn coldplug(e: &mut Engine, paths: u32, now: &mut u64) -> (Duration, Duration) {
    let t = Instant::now();
    let a = e.handle_batch(
        (0..paths).map(|i| Event::path_added(path(i))).collect(),
        *now,
    );
    let coldplug = t.elapsed();
    *now += 100;
    let checks: Vec<Event> = a
        .iter()
        .filter_map(|a| match a {
            Action::Probe(r) => Some(r.info.dev.clone()),
            _ => None,
        })
        .map(|d| {
            let host = sd_index(&d) % PATHS_PER_LUN;
            checked(d, ChkState::Up, host)
        })
        .collect();
    let t = Instant::now();
    let a = e.handle_batch(checks, *now);
    let applied: Vec<Event> = a
        .into_iter()
        .filter_map(|a| match a {
            Action::Map(MapChange::Create { name, .. }) => Some(Event::MapApplied {
                name,
                ok: true,
                removed: false,
                dm_minor: None,
                error: None,
            }),
            _ => None,
        })
        .collect();
    e.handle_batch(applied, *now);
    (coldplug, t.elapsed())
}

/// One request over the real control socket; the reply's length.
fn ask(sock: &std::path::Path, cmd: &str) -> usize {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return 0;
    };
    if codec::write_frame_blocking(&mut s, cmd).is_err() || s.flush().is_err() {
        return 0;
    }
    codec::read_frame_blocking(&mut s, usize::MAX >> 1).map_or(0, |r| r.len())
}

fn serve(snap: Arc<DaemonSnapshot>) -> (std::path::PathBuf, oneshot::Sender<()>) {
    let dir = std::env::temp_dir().join(format!("mpathd-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    let sock = dir.join("multipathd.socket");
    let cfg = ServerConfig::with_sockets(vec![SocketName::Path(sock.clone())]);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let (_tx, rx) = watch::channel(snap);
            let (mut_tx, _mut_rx) = mpsc::channel(1);
            let Ok(server) = Server::bind(cfg) else {
                return;
            };
            let _ = ready_tx.send(());
            let _ = server
                .run(rx, mut_tx, async {
                    let _ = stop_rx.await;
                })
                .await;
        });
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(10));
    (sock, stop_tx)
}

fn main() {
    let paths: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(16384);
    let rss0 = rss_kib();
    let Ok((cfg, _)) = Config::parse_str(CONF, "multipath.conf") else {
        eprintln!("config does not parse");
        std::process::exit(1);
    };
    let mut e = Engine::new(Arc::new(ConfigPolicy::new(Arc::new(cfg))), 1);
    // As the daemon runs it: snapshots carry when each check ran.
    e.use_real_clock(Instant::now());
    let mut now = 0u64;
    let (coldplug_t, first_checks_t) = coldplug(&mut e, paths, &mut now);
    let t = Instant::now();
    let full = e.snapshot();
    let snapshot_full = t.elapsed();
    let maps = full.maps.len();

    // A path event: a check that fails a path, then the one that brings it
    // back, each with the snapshot a daemon then publishes.
    let mut k = 0u32;
    // The k-th event: even ones fail a path, odd ones bring it back.
    let mut flap = |e: &mut Engine, now: &mut u64| {
        *now += 10;
        let chk = if k.is_multiple_of(2) {
            ChkState::Down
        } else {
            ChkState::Up
        };
        let dev = (k / 2 * 97) % paths;
        e.handle(checked(sd_name(dev), chk, dev % PATHS_PER_LUN), *now);
        k += 1;
    };
    let (event_med, event_max) = timed(200, || flap(&mut e, &mut now));
    let (publish_med, _) = timed(50, || {
        flap(&mut e, &mut now);
        let _ = e.snapshot();
    });
    // A hot-added LUN: its paths arrive one by one.
    let mut next = paths;
    let (hot_med, _) = timed(64, || {
        now += 10;
        e.handle(Event::path_added(path(next)), now);
        next += 1;
    });
    let snap = Arc::new(e.snapshot());
    let (sock, stop) = serve(snap.clone());
    let mut paths_bytes = 0;
    let (show_paths_med, show_paths_max) = timed(10, || paths_bytes = ask(&sock, "show paths"));
    let mut topo_bytes = 0;
    let (topo_med, topo_max) = timed(10, || topo_bytes = ask(&sock, "show topology"));
    let (maps_med, _) = timed(10, || {
        ask(&sock, "show maps");
    });
    let rss = rss_kib().saturating_sub(rss0);
    let _ = stop.send(());
    let _ = std::fs::remove_dir_all(sock.parent().unwrap_or(&sock));
    println!(
        "{{\"paths\": {paths}, \"maps\": {maps}, \"coldplug_ms\": {:.1}, \"first_checks_ms\": {:.1}, \
\"path_event_us\": {event_med:.1}, \"path_event_max_us\": {event_max:.1}, \"event_and_publish_us\": {publish_med:.1}, \
\"hot_add_us\": {hot_med:.1}, \"snapshot_full_ms\": {:.2}, \"show_paths_ms\": {:.2}, \"show_paths_max_ms\": {:.2}, \
\"show_paths_bytes\": {paths_bytes}, \"show_topology_ms\": {:.2}, \"show_topology_max_ms\": {:.2}, \
\"show_topology_bytes\": {topo_bytes}, \"show_maps_ms\": {:.2}, \"rss_mib\": {:.1}}}",
        coldplug_t.as_secs_f64() * 1e3,
        first_checks_t.as_secs_f64() * 1e3,
        snapshot_full.as_secs_f64() * 1e3,
        show_paths_med / 1e3,
        show_paths_max / 1e3,
        topo_med / 1e3,
        topo_max / 1e3,
        maps_med / 1e3,
        rss as f64 / 1024.0
    );
}
