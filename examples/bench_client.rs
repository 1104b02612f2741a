//! Timing helper for the mpathd-vs-multipathd benchmark (bench/run). Runs in
//! the test guest; every measurement is taken in-process so that the cost of
//! starting processes under TCG does not end up in the numbers.
//!
//! Subcommands (each prints one line of `key=value` pairs on success):
//!   start-wait --maps N --paths P --pidfile F --log L -- DAEMON ARGS...
//!       spawn the daemon, time until N multipath maps exist each with P
//!       paths in its table (the daemon keeps running).
//!   run-wait --maps N --paths P -- CMD ARGS...
//!       run CMD to completion (e.g. a SCSI rescan), time from before it
//!       until the maps condition holds.
//!   reinstate --map M --dev sdX
//!       write `running` to sdX's SCSI state, time until dm shows it active.
//!   io-fail --map M --dev sdX [--dev sdY]
//!       read through the map (the devs must be offline), time until dm shows
//!       them failed and until the daemon's `show paths` says failed.
//!   udev-cost
//!       time ways to list the SCSI disks with their udev properties
//!       (what a coldplug costs).
//!   topology --n 200 [--reconfigure-every MS]
//!       time `show topology` over one connection (answered requests
//!       only; failed and timed-out ones are counted apart); with
//!       --reconfigure-every a second connection sends `reconfigure` at
//!       that fixed rate meanwhile.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use mpathd::client::Client;
use mpathd::dm::kernel::{DmOps, RealDm};

#[derive(Parser)]
#[command(about = "In-guest timing helper for bench/run")]
struct Args {
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600.0, global = true)]
    timeout: f64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    StartWait {
        #[arg(long)]
        maps: usize,
        #[arg(long)]
        paths: usize,
        #[arg(long)]
        pidfile: String,
        #[arg(long)]
        log: String,
        #[arg(required = true, last = true)]
        argv: Vec<String>,
    },
    RunWait {
        #[arg(long)]
        maps: usize,
        #[arg(long)]
        paths: usize,
        #[arg(required = true, last = true)]
        argv: Vec<String>,
    },
    Reinstate {
        #[arg(long)]
        map: String,
        #[arg(long)]
        dev: String,
    },
    IoFail {
        #[arg(long)]
        map: String,
        #[arg(long, required = true)]
        dev: Vec<String>,
    },
    Topology {
        #[arg(long, default_value_t = 200)]
        n: usize,
        /// Meanwhile, send `reconfigure` every this many ms (start to
        /// start, on a second connection): the same rate for both daemons
        /// whether they answer at once or when done.
        #[arg(long, value_name = "MS")]
        reconfigure_every: Option<u64>,
        /// Ask for exactly this long instead of `n` times, so both daemons
        /// get the same window and the same number of reconfigures whether
        /// their answers are fast or time out.
        #[arg(long, value_name = "SECS")]
        for_secs: Option<u64>,
    },
    UdevCost,
}

type Res<T> = Result<T, String>;

const POLL: Duration = Duration::from_millis(20);

fn main() -> ExitCode {
    let args = Args::parse();
    let limit = Duration::from_secs_f64(args.timeout);
    let r = match args.cmd {
        Cmd::StartWait {
            maps,
            paths,
            pidfile,
            log,
            argv,
        } => start_wait(maps, paths, &pidfile, &log, &argv, limit),
        Cmd::RunWait { maps, paths, argv } => run_wait(maps, paths, &argv, limit),
        Cmd::Reinstate { map, dev } => reinstate(&map, &dev, limit),
        Cmd::IoFail { map, dev } => io_fail(&map, &dev, limit),
        Cmd::Topology {
            n,
            reconfigure_every,
            for_secs,
        } => topology(
            n,
            reconfigure_every.map(Duration::from_millis),
            for_secs.map(Duration::from_secs),
            limit,
        ),
        Cmd::UdevCost => udev_cost(),
    };
    match r {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dm() -> Res<RealDm> {
    RealDm::new().map_err(|e| e.to_string())
}

/// Counts dm devices and complete multipath maps while a start runs. The
/// poll shares the guest's CPUs with what it measures, so it lists names
/// (one ioctl) and reads only the tables of maps not yet complete: a
/// table query for every map every poll was 25,000 ioctls a second at 256
/// maps.
struct ReadyPoll {
    dm: devicemapper::DM,
    done: HashSet<String>,
}

impl ReadyPoll {
    fn new() -> Res<Self> {
        Ok(ReadyPoll {
            dm: devicemapper::DM::new().map_err(|e| e.to_string())?,
            done: HashSet::new(),
        })
    }

    /// dm devices, and how many of them are maps with `paths` paths.
    fn count(&mut self, rdm: &RealDm, paths: usize) -> Res<(usize, usize)> {
        let devices = self.dm.list_devices().map_err(|e| e.to_string())?;
        for (name, _, _) in &devices {
            let name = name.to_string();
            if self.done.contains(&name) {
                continue;
            }
            // Not a multipath map, or mid-create or gone between the list
            // and the query.
            let Ok((_, params)) = rdm.table(&name) else {
                continue;
            };
            if table_paths(&params) >= paths {
                self.done.insert(name);
            }
        }
        Ok((devices.len(), self.done.len()))
    }
}

/// Paths in a multipath table: its MAJ:MIN words.
fn table_paths(params: &str) -> usize {
    params
        .split_whitespace()
        .filter(|w| {
            w.split_once(':').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().all(|c| c.is_ascii_digit())
                    && b.bytes().all(|c| c.is_ascii_digit())
            })
        })
        .count()
}

/// When the maps appeared and completed, in seconds since `t0`.
struct MapTimes {
    /// The first map in the kernel.
    first: f64,
    /// Half of `want` complete.
    half: f64,
    /// All of `want` complete.
    all: f64,
}

impl MapTimes {
    fn fields(&self) -> String {
        format!(
            "secs={:.3} first_map={:.3} half_maps={:.3}",
            self.all, self.first, self.half
        )
    }
}

/// Poll until `want` maps are complete.
fn wait_maps(
    dm: &RealDm,
    want: usize,
    paths: usize,
    t0: Instant,
    limit: Duration,
) -> Res<MapTimes> {
    let (mut first, mut half) = (None, None);
    let mut poll = ReadyPoll::new()?;
    loop {
        let (n, full) = poll.count(dm, paths)?;
        let now = t0.elapsed().as_secs_f64();
        if n > 0 && first.is_none() {
            first = Some(now);
        }
        if 2 * full >= want && half.is_none() {
            half = Some(now);
        }
        if full >= want {
            return Ok(MapTimes {
                first: first.unwrap_or(0.0),
                half: half.unwrap_or(now),
                all: now,
            });
        }
        if t0.elapsed() > limit {
            return Err(format!(
                "timed out: {n} maps, {full} with {paths} paths, want {want}"
            ));
        }
        sleep(POLL);
    }
}

fn start_wait(
    maps: usize,
    paths: usize,
    pidfile: &str,
    log: &str,
    argv: &[String],
    limit: Duration,
) -> Res<String> {
    let dm = dm()?;
    let (prog, rest) = argv.split_first().ok_or("no daemon command")?;
    let out = File::create(log).map_err(|e| format!("{log}: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("{log}: {e}"))?;
    let t0 = Instant::now();
    let child = Command::new(prog)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{prog}: {e}"))?;
    std::fs::write(pidfile, format!("{}\n", child.id())).map_err(|e| format!("{pidfile}: {e}"))?;
    let times = wait_maps(&dm, maps, paths, t0, limit)?;
    // The child is left running on purpose; the script stops it.
    std::mem::forget(child);
    Ok(times.fields())
}

fn run_wait(maps: usize, paths: usize, argv: &[String], limit: Duration) -> Res<String> {
    let dm = dm()?;
    let (prog, rest) = argv.split_first().ok_or("no command")?;
    let t0 = Instant::now();
    let st = Command::new(prog)
        .args(rest)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("{prog}: {e}"))?;
    if !st.success() {
        return Err(format!("{prog} failed: {st}"));
    }
    let cmd_secs = t0.elapsed().as_secs_f64();
    let times = wait_maps(&dm, maps, paths, t0, limit)?;
    Ok(format!("{} cmd={cmd_secs:.3}", times.fields()))
}

fn majmin(dev: &str) -> Res<String> {
    let f = format!("/sys/block/{dev}/dev");
    std::fs::read_to_string(&f)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{f}: {e}"))
}

/// The dm state letter (A/F) of `mm` in a multipath status line.
fn dm_path_state(status: &str, mm: &str) -> Option<char> {
    let mut words = status.split_whitespace();
    while let Some(w) = words.next() {
        if w == mm {
            return words.next().and_then(|s| s.chars().next());
        }
    }
    None
}

fn reinstate(map: &str, dev: &str, limit: Duration) -> Res<String> {
    let dm = dm()?;
    let mm = majmin(dev)?;
    let st = dm.status(map).map_err(|e| e.to_string())?;
    if dm_path_state(&st, &mm) != Some('F') {
        return Err(format!("{dev} ({mm}) is not failed in {map}: {st}"));
    }
    let f = format!("/sys/block/{dev}/device/state");
    let t0 = Instant::now();
    // The kernel only takes the state name followed by a newline.
    std::fs::write(&f, "running\n").map_err(|e| format!("{f}: {e}"))?;
    loop {
        let st = dm.status(map).map_err(|e| e.to_string())?;
        if dm_path_state(&st, &mm) == Some('A') {
            return Ok(format!("secs={:.3}", t0.elapsed().as_secs_f64()));
        }
        if t0.elapsed() > limit {
            return Err(format!("{dev} not reinstated in {map}: {st}"));
        }
        sleep(POLL);
    }
}

/// `show paths` lines name the device in the second column and carry
/// `failed` in the dm state column.
fn daemon_says_failed(paths: &str, dev: &str) -> bool {
    paths.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.get(1) == Some(&dev) && w.contains(&"failed")
    })
}

fn io_fail(map: &str, devs: &[String], limit: Duration) -> Res<String> {
    let dm = dm()?;
    let mms: Vec<String> = devs.iter().map(|d| majmin(d)).collect::<Res<_>>()?;
    let mut client = Client::connect(Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let node = format!("/dev/mapper/{map}");
    let t0 = Instant::now();
    // One direct read; the offline paths fail it in dm, the others serve it.
    let reader = std::thread::spawn(move || -> Res<()> {
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&node)
            .map_err(|e| format!("{node}: {e}"))?;
        let layout = std::alloc::Layout::from_size_align(4096, 4096).map_err(|e| e.to_string())?;
        // SAFETY: layout has a non-zero size; the buffer is freed below.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        if p.is_null() {
            return Err("out of memory".into());
        }
        // SAFETY: p points to 4096 initialised bytes owned by this thread.
        let buf = unsafe { std::slice::from_raw_parts_mut(p, 4096) };
        let r = f.read(buf).map_err(|e| format!("read {node}: {e}"));
        // SAFETY: p was allocated above with this layout.
        unsafe { std::alloc::dealloc(p, layout) };
        r.map(|_| ())
    });
    let mut dm_failed: Option<f64> = None;
    loop {
        if dm_failed.is_none() {
            let st = dm.status(map).map_err(|e| e.to_string())?;
            if mms.iter().all(|mm| dm_path_state(&st, mm) == Some('F')) {
                dm_failed = Some(t0.elapsed().as_secs_f64());
            }
        }
        let paths = client
            .request("show paths")
            .map_err(|e| format!("show paths: {e}"))?;
        if devs.iter().all(|d| daemon_says_failed(&paths, d)) {
            let secs = t0.elapsed().as_secs_f64();
            let dmf = dm_failed.unwrap_or(secs);
            let read_ok = matches!(reader.join(), Ok(Ok(())));
            return Ok(format!(
                "secs={secs:.3} dm_failed={dmf:.3} daemon_after_dm={:.3} read_ok={read_ok}",
                (secs - dmf).max(0.0)
            ));
        }
        if t0.elapsed() > limit {
            return Err(format!("daemon never showed {devs:?} failed"));
        }
        sleep(POLL);
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        // Nothing answered: no latency to report (not a zero).
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `show topology` `n` times, or for `window` when given. Only answered
/// requests are timed: a `fail` or `timeout` reply, or a broken
/// connection, is counted as failed and never averaged in as a latency.
fn topology(
    n: usize,
    reconfigure_every: Option<Duration>,
    window: Option<Duration>,
    limit: Duration,
) -> Res<String> {
    let timeout = Duration::from_secs(60);
    let mut client = Client::connect(timeout).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let reconfigs = Arc::new(AtomicU64::new(0));
    let reconfig_failed = Arc::new(AtomicU64::new(0));
    let bg = if let Some(every) = reconfigure_every {
        let mut rc = Client::connect(timeout).map_err(|e| e.to_string())?;
        let stop = stop.clone();
        let (count, bad) = (reconfigs.clone(), reconfig_failed.clone());
        Some(std::thread::spawn(move || {
            let start = Instant::now();
            let mut k = 0u32;
            while !stop.load(Ordering::Relaxed) {
                match rc.request("reconfigure") {
                    Ok(r) if r.starts_with("ok") => count.fetch_add(1, Ordering::Relaxed),
                    _ => bad.fetch_add(1, Ordering::Relaxed),
                };
                k += 1;
                // Fixed schedule: late replies do not add sends.
                let next = start + every * k;
                while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                    sleep(POLL);
                }
            }
        }))
    } else {
        None
    };
    let t0 = Instant::now();
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    let mut errors = 0;
    let mut failed = 0;
    let mut asked = 0;
    let more = |asked: usize| match window {
        Some(w) => t0.elapsed() < w,
        None => asked < n,
    };
    while more(asked) {
        asked += 1;
        let t = Instant::now();
        match client.request("show topology") {
            // multipathd answers `timeout` (or `fail ...`) when its
            // uxsock_timeout runs out before it could take the request.
            Ok(r) if r.starts_with("fail") || r.starts_with("timeout") => failed += 1,
            Ok(r) => {
                bytes = r.len();
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Err(_) => {
                errors += 1;
                client = Client::connect(timeout).map_err(|e| e.to_string())?;
            }
        }
        if t0.elapsed() > limit {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = bg {
        let _ = h.join();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let asked = times.len() + failed + errors;
    Ok(format!(
        "n={asked} secs={secs:.1} answered={} median_ms={:.3} p99_ms={:.3} max_ms={:.3} bytes={bytes} errors={errors} failed={failed} reconfigures={} reconfigures_failed={}",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or(f64::NAN),
        reconfigs.load(Ordering::Relaxed),
        reconfig_failed.load(Ordering::Relaxed)
    ))
}

/// Properties of one udev device, as a coldplug keeps them.
fn props_of(d: &udev::Device) -> usize {
    d.properties()
        .map(|p| p.name().len() + p.value().len())
        .sum()
}

/// A udev enumeration of the `sd*` block devices, with or without the
/// `DEVTYPE=disk` property match, reading their properties or not.
fn enum_cost(prop_match: bool, props: bool) -> Res<(usize, usize)> {
    let mut en = udev::Enumerator::new().map_err(|e| e.to_string())?;
    en.match_subsystem("block").map_err(|e| e.to_string())?;
    if prop_match {
        en.match_property("DEVTYPE", "disk")
            .map_err(|e| e.to_string())?;
    }
    en.match_sysname("sd*").map_err(|e| e.to_string())?;
    let devs: Vec<_> = en.scan_devices().map_err(|e| e.to_string())?.collect();
    let bytes = if props {
        devs.iter().map(props_of).sum()
    } else {
        0
    };
    Ok((devs.len(), bytes))
}

fn sd_names() -> Res<Vec<String>> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/block")
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("sd"))
        .collect();
    v.sort();
    Ok(v)
}

/// Milliseconds and (devices, property bytes) for several ways of listing
/// the SCSI disks with their udev properties.
fn udev_cost() -> Res<String> {
    type Way = fn() -> Res<(usize, usize)>;
    let ways: [(&str, Way); 7] = [
        ("enum_prop_match", || enum_cost(true, true)),
        ("enum_sysname", || enum_cost(false, true)),
        ("enum_only_no_props", || enum_cost(false, false)),
        ("readdir_from_sysname", || {
            let mut n = 0;
            let mut bytes = 0;
            for name in sd_names()? {
                if let Ok(d) = udev::Device::from_subsystem_sysname("block".into(), name) {
                    n += 1;
                    bytes += props_of(&d);
                }
            }
            Ok((n, bytes))
        }),
        ("readdir_db_direct", || {
            let root = mpathd::discovery::sysfs::SysfsRoot::default();
            let mut n = 0;
            let mut bytes = 0;
            for name in sd_names()? {
                let p = mpathd::discovery::udevdb::properties(&root, &name);
                n += usize::from(!p.is_empty());
                bytes += p.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
            }
            Ok((n, bytes))
        }),
        ("readdir_sysfs_read_path", || {
            let root = mpathd::discovery::sysfs::SysfsRoot::default();
            let mut n = 0;
            for name in sd_names()? {
                n += usize::from(mpathd::discovery::sysfs::read_path(&root, &name).is_ok());
            }
            Ok((n, 0))
        }),
        ("readdir_from_syspath", || {
            let mut n = 0;
            let mut bytes = 0;
            for name in sd_names()? {
                let p = std::path::PathBuf::from("/sys/block").join(name);
                if let Ok(d) = udev::Device::from_syspath(&p) {
                    n += 1;
                    bytes += props_of(&d);
                }
            }
            Ok((n, bytes))
        }),
    ];
    let mut out = String::new();
    for round in 0..2 {
        for (name, f) in &ways {
            let t = Instant::now();
            let (n, bytes) = f()?;
            out.push_str(&format!(
                "{name}{round}={:.1}ms/{n}devs/{bytes}B ",
                t.elapsed().as_secs_f64() * 1e3
            ));
        }
    }
    Ok(out.trim_end().to_string())
}
