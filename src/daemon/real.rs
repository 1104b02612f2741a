//! Wiring of the real daemon: logging, signals, systemd notification, and
//! the real kernel implementations behind the daemon's traits.

use std::process::ExitCode;

use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, ConfigCmd};

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

/// Journald when started by systemd (JOURNAL_STREAM is set), plain stderr
/// otherwise. RUST_LOG, when set, wins over -v.
pub fn init_logging(cli: &Cli) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("mpathd={}", level(cli.verbosity))));
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some() && !cli.foreground;
    if under_journal {
        if let Ok(layer) = tracing_journald::layer() {
            use tracing_subscriber::prelude::*;
            let _ = tracing_subscriber::registry().with(filter).with(layer).try_init();
            return;
        }
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if cli.no_timestamps {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}

/// Tell systemd something, when we run under it.
pub fn notify(state: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(e) = sd_notify::notify(state) {
            warn!(error = %e, "sd_notify failed");
        }
    }
}

pub fn run_daemon(cli: &Cli) -> ExitCode {
    init_logging(cli);
    info!("mpathd {} starting", env!("CARGO_PKG_VERSION"));
    eprintln!("mpathd: the daemon is not wired yet");
    ExitCode::FAILURE
}

pub fn run_client(_cli: &Cli, _cmd: Option<&str>) -> ExitCode {
    eprintln!("mpathd: the client is not wired yet");
    ExitCode::FAILURE
}

pub fn run_config_cmd(_cli: &Cli, _cmd: &ConfigCmd) -> ExitCode {
    eprintln!("mpathd: config tools are not wired yet");
    ExitCode::FAILURE
}
