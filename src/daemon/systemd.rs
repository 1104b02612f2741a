//! systemd and logging: journald or stderr, the configured verbosity,
//! sd_notify (ready, reloading, stopping, watchdog).

use std::path::Path;
use std::time::Duration;

use tracing::warn;
use tracing_subscriber::EnvFilter;

use crate::cli::Cli;

/// Wait until `/dev/mapper/<name>` exists for every map, at most `limit`.
/// Without a running udev nobody makes the nodes: nothing to wait for.
pub(super) fn wait_for_map_nodes(maps: &[String], dir: &Path, limit: Duration) {
    if !Path::new("/run/udev/control").exists() {
        return;
    }
    let start = std::time::Instant::now();
    loop {
        let missing: Vec<&String> = maps.iter().filter(|m| !dir.join(m).exists()).collect();
        if missing.is_empty() {
            return;
        }
        if start.elapsed() >= limit {
            warn!(
                maps = ?missing,
                "udev has not made these maps' nodes after {} s; reporting ready anyway",
                limit.as_secs()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// multipathd's -v levels onto tracing levels.
fn level(verbosity: Option<u8>) -> &'static str {
    match verbosity.unwrap_or(2) {
        0 => "error",
        1 => "warn",
        2 => "info",
        3 => "debug",
        _ => "trace",
    }
}

/// The log filter, reloadable: the configuration's `verbosity` applies
/// (at start and on every reconfigure) unless -v or RUST_LOG chose.
static LOG_FILTER: std::sync::OnceLock<
    tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>,
> = std::sync::OnceLock::new();

/// Journald when started by systemd (JOURNAL_STREAM is set), plain stderr
/// otherwise. RUST_LOG, when set, wins over -v.
pub fn init_logging(cli: &Cli) {
    use tracing_subscriber::prelude::*;
    let fixed = EnvFilter::try_from_default_env().ok();
    let by_verbosity = fixed.is_none() && cli.verbosity.is_none();
    let filter =
        fixed.unwrap_or_else(|| EnvFilter::new(format!("mpathd={}", level(cli.verbosity))));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    if by_verbosity {
        let _ = LOG_FILTER.set(handle);
    }
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some() && !cli.foreground;
    if under_journal {
        if let Ok(layer) = tracing_journald::layer() {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(layer)
                .try_init();
            return;
        }
    }
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if cli.no_timestamps {
        registry.with(fmt.without_time()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
}

/// The configuration's `verbosity`, when neither -v nor RUST_LOG set the
/// level.
pub(super) fn apply_verbosity(verbosity: u32) {
    if let Some(h) = LOG_FILTER.get() {
        let v = u8::try_from(verbosity).unwrap_or(u8::MAX);
        if let Err(e) = h.reload(EnvFilter::new(format!("mpathd={}", level(Some(v))))) {
            warn!(error = %e, "cannot change the log level");
        }
    }
}

/// Tell systemd something, when we run under it.
pub fn notify(state: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(e) = sd_notify::notify(state) {
            warn!(error = %e, "sd_notify failed");
        }
    }
}

/// READY=1 once the run loop says its maps exist. Maps are created without
/// waiting on udev (see RealDm's resume), but READY=1 promises units
/// ordered after us usable maps: wait (bounded, off the run loop) for udev
/// to make their nodes.
pub(super) fn ready_hook() -> Box<dyn FnOnce(Vec<String>) + Send> {
    Box::new(|maps| {
        let spawned = std::thread::Builder::new()
            .name("ready".into())
            .spawn(move || {
                wait_for_map_nodes(&maps, Path::new("/dev/mapper"), Duration::from_secs(30));
                notify(&[sd_notify::NotifyState::Ready]);
            });
        if spawned.is_err() {
            notify(&[sd_notify::NotifyState::Ready]);
        }
    })
}

/// The watchdog ping, when systemd asks for one: at most every half
/// period, from the run loop itself, so a wedged loop gets restarted.
pub(super) fn watchdog_hook() -> Option<Box<dyn Fn() + Send>> {
    let half = sd_notify::watchdog_enabled()? / 2;
    let last = std::sync::Mutex::new(std::time::Instant::now());
    Some(Box::new(move || {
        if let Ok(mut l) = last.lock() {
            if l.elapsed() >= half {
                notify(&[sd_notify::NotifyState::Watchdog]);
                *l = std::time::Instant::now();
            }
        }
    }))
}
