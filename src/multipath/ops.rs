//! What each mode of `multipath` does.

use crate::config::{Config, ConfigPaths};
use crate::discovery::claim::Claim;
use crate::discovery::wwids::{WwidsFile, DEFAULT_WWIDS_FILE};
use crate::dm::{DmOps, RealDm};

use super::args::{Args, Mode, USAGE};
use super::plan;
use super::topology::{self, KernelMap};
use super::{MpError, RTVL_FAIL, RTVL_OK};
use crate::model::PathInfo;

/// Runs the command; returns its exit code.
pub fn run(args: &Args) -> u8 {
    let mode = args.mode();
    if mode == Mode::Usage {
        eprint!("{USAGE}");
        return RTVL_OK;
    }
    let config = match Config::load(&ConfigPaths::default()) {
        Ok((c, _)) => c,
        Err(e) => {
            eprintln!("multipath: {e}");
            return RTVL_FAIL;
        }
    };
    let res = match mode {
        Mode::Usage => Ok(RTVL_OK),
        Mode::ShowConfig => {
            print!("{}", config.show_config());
            Ok(RTVL_OK)
        }
        Mode::ShowConfigLocal => {
            let present = Config::device_identities(&plan::present_paths(&config));
            let maps: Vec<String> = dm()
                .and_then(|dm| topology::kernel_maps(&dm))
                .unwrap_or_default()
                .into_iter()
                .map(|m| m.wwid)
                .collect();
            print!("{}", config.show_config_local(&present, &maps));
            Ok(RTVL_OK)
        }
        Mode::List { check } => list(args, &config, check),
        Mode::CheckPath | Mode::UdevPath => check_path(args, &config, mode == Mode::UdevPath),
        Mode::CheckMap | Mode::UdevMap => check_map(args, &config),
        Mode::AddWwid | Mode::RemoveWwid => edit_wwids(args, mode == Mode::AddWwid),
        Mode::ResetWwids => reset_wwids(),
        Mode::Flush => flush_one(args),
        Mode::FlushAll => flush_all(args),
        Mode::Create => create(args, &config),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            if args.verbosity > 0 {
                eprintln!("multipath: {e}");
            }
            RTVL_FAIL
        }
    }
}

fn dm() -> Result<RealDm, MpError> {
    Ok(RealDm::new()?)
}

/// The maps the device argument names (all maps without one).
fn selected_maps(dm: &dyn DmOps, device: Option<&str>) -> Result<Vec<KernelMap>, MpError> {
    let maps = topology::kernel_maps(dm)?;
    Ok(match device {
        None => maps,
        Some(d) => maps
            .into_iter()
            .filter(|m| topology::names_map(d, m))
            .collect(),
    })
}

fn list(args: &Args, config: &Config, check: bool) -> Result<u8, MpError> {
    let dm = dm()?;
    let maps = selected_maps(&dm, args.device.as_deref())?;
    for map in &maps {
        let views = topology::path_views(map, config, check);
        let snap = topology::map_snapshot(map, &views, check);
        match args.verbosity {
            0 => {}
            1 => println!("{}", map.name),
            _ => print!("{}", crate::ipc::format::multipath_ll(&snap)),
        }
    }
    if !maps.is_empty() && args.verbosity > 1 && !daemon_running() {
        log_line("Warning: multipath devices exist, but multipathd service is not running");
    }
    Ok(RTVL_OK)
}

/// A message on stderr as multipath-tools logs it: `SECONDS | text`, the
/// seconds from the monotonic clock.
fn log_line(msg: &str) {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| format!("{}.{:06}", t.tv_sec(), t.tv_nsec() / 1000))
        .unwrap_or_default();
    eprintln!("{t} | {msg}");
}

/// The kernel name of a path argument (`/dev/sda`, `sda`).
fn kernel_name(arg: &str) -> &str {
    arg.strip_prefix("/dev/").unwrap_or(arg)
}

fn device_arg(args: &Args) -> Result<&str, MpError> {
    args.device
        .as_deref()
        .ok_or_else(|| MpError::Config("this mode needs a device argument".into()))
}

fn check_path(args: &Args, config: &Config, udev: bool) -> Result<u8, MpError> {
    let arg = device_arg(args)?;
    let dev = kernel_name(arg);
    if !std::path::Path::new(&format!("/sys/class/block/{dev}")).exists() {
        log_line(&format!("'{arg}' is not a valid argument\n"));
        return Ok(RTVL_FAIL);
    }
    let wwids = if args.ignore_wwids {
        std::path::PathBuf::from("/nonexistent/mpathd-ignore-wwids")
    } else {
        std::path::PathBuf::from(DEFAULT_WWIDS_FILE)
    };
    let rules = crate::discovery::claim::ClaimRules::MultipathTools { uevent: udev };
    let claim = crate::discovery::claim::claim_device(dev, config, &wwids, rules)
        .map_err(|e| MpError::Config(format!("{dev}: {e}")))?;
    // -u answers udev, which imports the printed value only when the
    // program exits 0; -c answers by its exit code.
    let (value, code) = match &claim {
        Claim::Yes { .. } => ("1", RTVL_OK),
        Claim::No { .. } if udev => ("0", RTVL_OK),
        Claim::No { .. } => ("0", RTVL_FAIL),
        // smart mode, still waiting for a second path: udev must wait too.
        Claim::Maybe { .. } if udev => ("2", RTVL_OK),
        Claim::Maybe { .. } => ("0", RTVL_FAIL),
    };
    println!("DM_MULTIPATH_DEVICE_PATH=\"{value}\"");
    if let (true, Claim::Maybe { until, .. }) = (udev, &claim) {
        println!("FIND_MULTIPATHS_WAIT_UNTIL=\"{until}\"");
    }
    Ok(code)
}

fn check_map(args: &Args, config: &Config) -> Result<u8, MpError> {
    let dm = dm()?;
    let arg = device_arg(args)?;
    // udev passes the kernel name (`multipath -U %k`): dm-N is the map.
    let arg = match arg.strip_prefix("dm-") {
        Some(n) if n.bytes().all(|b| b.is_ascii_digit()) => format!("/dev/{arg}"),
        _ => arg.to_string(),
    };
    let maps = selected_maps(&dm, Some(&arg))?;
    // As multipath-tools: a path the kernel still lists as active counts
    // only while its device exists, is not offline (the kernel learns of a
    // deleted path at the next I/O only) and is not blacklisted now.
    let usable = maps.iter().any(|m| {
        m.status.groups.iter().flat_map(|g| &g.paths).any(|p| {
            p.state == crate::model::DmPathState::Active
                && device_up(p.dev)
                && !blacklisted(config, p.dev)
        })
    });
    Ok(if usable { RTVL_OK } else { RTVL_FAIL })
}

/// Whether the configuration blacklists the path with device number `dev`.
fn blacklisted(config: &Config, dev: crate::model::DevT) -> bool {
    let Some(name) = std::fs::read_link(format!("/sys/dev/block/{dev}"))
        .ok()
        .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()))
    else {
        return false;
    };
    let cfg = config.clone();
    let uid: crate::discovery::UidAttributeFn =
        std::sync::Arc::new(move |i: &crate::model::PathInfo| cfg.resolve(i).uid_attribute);
    let root = crate::discovery::sysfs::SysfsRoot::default();
    let props = crate::discovery::udev::udev_properties(&name);
    crate::discovery::udev::build_path(&root, &name, props, &uid).is_ok_and(|(info, _)| {
        crate::model::PathFilter::filter_path(config, &info).is_blacklisted()
    })
}

/// Whether the block device `dev` exists and its SCSI device is running
/// (or has no SCSI state to read).
fn device_up(dev: crate::model::DevT) -> bool {
    let sys = std::path::PathBuf::from(format!("/sys/dev/block/{dev}"));
    if !sys.exists() {
        return false;
    }
    match std::fs::read_to_string(sys.join("device/state")) {
        Ok(s) => crate::model::DevState::from_sysfs(&s) == crate::model::DevState::Running,
        Err(_) => true,
    }
}

/// The WWID a device argument stands for: a map's, or the argument itself.
fn wwid_of(arg: &str) -> String {
    dm().and_then(|dm| topology::kernel_maps(&dm))
        .ok()
        .and_then(|maps| {
            maps.into_iter()
                .find(|m| topology::names_map(arg, m))
                .map(|m| m.wwid)
        })
        .unwrap_or_else(|| arg.to_string())
}

fn wwids_error(e: impl std::fmt::Display) -> MpError {
    MpError::Config(format!("{DEFAULT_WWIDS_FILE}: {e}"))
}

fn edit_wwids(args: &Args, add: bool) -> Result<u8, MpError> {
    let wwid = wwid_of(device_arg(args)?);
    let file = WwidsFile::new(DEFAULT_WWIDS_FILE);
    if add {
        file.add(&wwid).map_err(wwids_error)?;
        println!("wwid '{wwid}' added");
    } else {
        file.remove(&wwid).map_err(wwids_error)?;
        println!("wwid '{wwid}' removed");
    }
    Ok(RTVL_OK)
}

fn reset_wwids() -> Result<u8, MpError> {
    let dm = dm()?;
    let wwids: Vec<String> = topology::kernel_maps(&dm)?
        .into_iter()
        .map(|m| m.wwid)
        .collect();
    WwidsFile::new(DEFAULT_WWIDS_FILE)
        .replace_all(&wwids)
        .map_err(wwids_error)?;
    println!("successfully reset wwids");
    Ok(RTVL_OK)
}

/// Whether mpathd (or any multipathd) answers on the control socket.
fn daemon_running() -> bool {
    crate::client::Client::connect(std::time::Duration::from_secs(1)).is_ok()
}

fn daemon_command(cmd: &str) -> Result<(), MpError> {
    let reply = crate::client::query(cmd).map_err(|e| MpError::Daemon(e.to_string()))?;
    if reply.trim() == "ok" {
        Ok(())
    } else {
        Err(MpError::Daemon(format!("{cmd}: {}", reply.trim())))
    }
}

/// Removes one map and its partition maps: through the daemon when it
/// runs (so it does not build the map again), else directly.
fn flush_map(dm: &dyn DmOps, map: &KernelMap, retries: u32, daemon: bool) -> Result<(), MpError> {
    if daemon {
        return daemon_command(&format!("del map {}", map.name));
    }
    let mut attempt = 0;
    loop {
        let res = remove_with_partitions(dm, map);
        match res {
            Err(MpError::Dm(e)) if e.is_in_use() && attempt < retries => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

fn remove_with_partitions(dm: &dyn DmOps, map: &KernelMap) -> Result<(), MpError> {
    for part in dm.partitions_of(&format!("mpath-{}", map.wwid))? {
        dm.remove(&part, false)?;
    }
    Ok(dm.remove(&map.name, false)?)
}

fn flush_one(args: &Args) -> Result<u8, MpError> {
    let dm = dm()?;
    let arg = device_arg(args)?;
    let maps = selected_maps(&dm, Some(arg))?;
    let Some(map) = maps.first() else {
        return Err(MpError::Config(format!("{arg}: not a multipath device")));
    };
    flush_map(&dm, map, args.retries.unwrap_or(0), daemon_running())?;
    Ok(RTVL_OK)
}

fn flush_all(args: &Args) -> Result<u8, MpError> {
    let dm = dm()?;
    let daemon = daemon_running();
    let mut code = RTVL_OK;
    for map in topology::kernel_maps(&dm)? {
        if let Err(e) = flush_map(&dm, &map, args.retries.unwrap_or(0), daemon) {
            if args.verbosity > 0 {
                eprintln!("multipath: {}: {e}", map.name);
            }
            code = RTVL_FAIL;
        }
    }
    Ok(code)
}

/// `multipath`, `-r` and `-d`. With the daemon running, maps are made by
/// it (one writer); without it, by this command, with the daemon's own
/// policy code.
fn create(args: &Args, config: &Config) -> Result<u8, MpError> {
    let daemon = daemon_running();
    if !args.dry_run && daemon {
        if args.policy.is_some() {
            return Err(MpError::Config(
                "-p cannot be applied while the daemon runs: set path_grouping_policy in multipath.conf and reconfigure".into(),
            ));
        }
        let cmd = match args.device.as_deref() {
            Some(d) if args.reload => format!("reload map {}", kernel_name(d)),
            Some(d) => format!("add map {}", kernel_name(d)),
            None => "reconfigure".into(),
        };
        daemon_command(&cmd)?;
        return Ok(RTVL_OK);
    }
    let dm = dm()?;
    let existing = topology::kernel_maps(&dm)?;
    let wwids_file = if args.ignore_wwids {
        None
    } else {
        WwidsFile::new(DEFAULT_WWIDS_FILE)
            .read()
            .ok()
            .map(|w| w.to_set())
    };
    let known = plan::known_wwids(&existing, wwids_file);
    let bindings = crate::daemon::bindings::BindingsFile::new(
        args.bindings
            .as_deref()
            .unwrap_or("/etc/multipath/bindings"),
    )
    .read()
    .unwrap_or_default();
    let mut paths = plan::present_paths(config);
    if let Some(d) = args.device.as_deref() {
        let want = device_wwid(d, &paths, &existing);
        paths.retain(|p| p.wwid.is_some() && p.wwid == want);
    }
    let probed = plan::probe(config, paths);
    let input = plan::PlanInput {
        config,
        known: &known,
        policy: args.policy,
        bindings: &bindings,
        now: crate::discovery::claim::epoch_now(),
    };
    let mut code = RTVL_OK;
    for mut planned in plan::plan(&probed, &input) {
        if !daemon && !args.allow_queueing {
            // As multipath-tools: with no daemon to reinstate paths, a map
            // that queues would hang its I/O for good (-q allows it).
            planned.table.features.queue_if_no_path = false;
        }
        let change = plan::change_for(&planned, &existing, args.reload);
        if change == plan::Change::Nothing {
            continue;
        }
        let minor = existing
            .iter()
            .find(|m| m.wwid == planned.wwid)
            .map(|m| m.dm_minor);
        tune_transports(args, &planned);
        // multipath prints the map as planned: `undef` where a new map has
        // no device yet.
        let snap = plan::planned_snapshot(&planned, minor);
        if args.dry_run {
            print_planned(args, &snap, "");
            continue;
        }
        match apply(&dm, &planned, change) {
            Ok(_) => {
                let action = if change == plan::Change::Create {
                    "create"
                } else {
                    "reload"
                };
                print_planned(args, &snap, action);
            }
            Err(e) => {
                eprintln!("multipath: {}: {e}", planned.name);
                code = RTVL_FAIL;
            }
        }
    }
    Ok(code)
}

/// Sets each path's transport timeouts as the daemon would (not in a dry
/// run), and says which paths' transport has none.
fn tune_transports(args: &Args, planned: &plan::PlannedMap) {
    let writer = crate::transport::sysfs::SysfsTransport::new("/sys");
    for info in planned
        .groups
        .iter()
        .flat_map(|g| &g.paths)
        .map(|p| &p.info)
    {
        if info.endpoint.is_none() && args.verbosity > 1 {
            log_line(&format!(
                "{}: setting scsi timeouts is unsupported for protocol scsi:unspec",
                info.dev
            ));
        }
        let tmo = plan::transport_plan(planned, info);
        if args.dry_run || tmo.writes.is_empty() {
            continue;
        }
        let report = crate::transport::TransportWriter::apply(&writer, &tmo);
        if args.verbosity > 2 {
            log_line(&format!("{}: {report}", info.dev));
        }
    }
}

/// The WWID a device argument stands for: a map's, a path's, or itself.
fn device_wwid(arg: &str, paths: &[PathInfo], existing: &[KernelMap]) -> Option<String> {
    if let Some(m) = existing.iter().find(|m| topology::names_map(arg, m)) {
        return Some(m.wwid.clone());
    }
    let dev = arg.strip_prefix("/dev/").unwrap_or(arg);
    paths
        .iter()
        .find(|p| p.dev == dev || p.wwid.as_deref() == Some(arg))
        .and_then(|p| p.wwid.clone())
        .or_else(|| Some(arg.to_string()))
}

fn apply(dm: &dyn DmOps, p: &plan::PlannedMap, change: plan::Change) -> Result<u32, MpError> {
    let params = p.table.to_string();
    if change == plan::Change::Create {
        let info = dm.create_opts(
            &p.name,
            &format!("mpath-{}", p.wwid),
            p.size,
            &params,
            p.settings.skip_kpartx,
        )?;
        if let Err(e) = WwidsFile::new(DEFAULT_WWIDS_FILE).add(&p.wwid) {
            eprintln!("multipath: {DEFAULT_WWIDS_FILE}: {e}");
        }
        return Ok(info.minor());
    }
    dm.reload_opts(&p.name, p.size, &params, true, p.settings.skip_kpartx)?;
    Ok(dm.map_info(&p.name)?.minor())
}

/// A planned or applied map as multipath prints it: `ACTION: ` then the
/// topology (a dry run prints an empty action).
fn print_planned(args: &Args, snap: &crate::model::MapSnapshot, action: &str) {
    match args.verbosity {
        0 => {}
        1 => println!("{}", snap.name),
        _ => print!("{action}: {}", crate::ipc::format::multipath_ll(snap)),
    }
}
