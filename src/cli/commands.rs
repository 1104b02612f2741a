//! `mpathd -k`/`mpathd COMMAND` (the control-socket client) and the
//! `mpathd config` tools.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::{Cli, ConfigCmd};
use crate::config::{Config, ConfigPaths, Severity};
use crate::ipc::{self};

pub fn run_client(cli: &Cli, cmd: Option<&str>) -> ExitCode {
    if !cli.sockets.is_empty() {
        // The client library reads MULTIPATH_SOCKET_NAME; --socket sets it.
        if let Some(first) = cli.sockets.first() {
            std::env::set_var(ipc::socket::SOCKET_ENV, first);
        }
    }
    crate::client::use_configured_timeout(&cli.config_paths());
    let code = match cmd {
        Some(c) if !c.trim().is_empty() => crate::client::run_command(c),
        _ => crate::client::run_interactive(),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn print_diags(diags: &[crate::config::Diagnostic]) -> bool {
    let mut errors = false;
    for d in diags {
        eprintln!("{d}");
        errors |= d.severity == Severity::Error;
    }
    errors
}

fn write_out(output: Option<&Path>, text: &str) -> ExitCode {
    match output {
        Some(p) => match std::fs::write(p, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mpathd: cannot write {}: {e}", p.display());
                ExitCode::FAILURE
            }
        },
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
    }
}

pub fn run_config_cmd(cli: &Cli, cmd: &ConfigCmd) -> ExitCode {
    let paths = cli.config_paths();
    match cmd {
        ConfigCmd::Check { file } => check_config(file.as_ref(), paths),
        ConfigCmd::Show { toml } => with_config(&paths, |cfg| {
            if *toml {
                print!("{}", cfg.to_toml_string());
            } else {
                print!("{}", cfg.show_config());
            }
        }),
        ConfigCmd::Explain {
            vendor,
            product,
            revision,
            wwid,
        } => with_config(&paths, |cfg| {
            print!(
                "{}",
                cfg.explain(vendor, product, revision, wwid.as_deref())
            );
        }),
        ConfigCmd::Convert { input, output } => convert_config(input, output.as_deref()),
        ConfigCmd::ClaimPath { dev } => claim_path(cli, &paths, dev),
    }
}

/// `config check [FILE]`: a single file is checked without drop-ins.
fn check_config(file: Option<&PathBuf>, paths: ConfigPaths) -> ExitCode {
    let p = match file {
        Some(f) => ConfigPaths {
            main: f.clone(),
            conf_dir: PathBuf::from("/nonexistent/mpathd-check"),
        },
        None => paths,
    };
    let diags = Config::check(&p);
    if print_diags(&diags) {
        return ExitCode::FAILURE;
    }
    println!(
        "{}: configuration OK ({} warning(s))",
        p.main.display(),
        diags.len()
    );
    ExitCode::SUCCESS
}

/// Loads the configuration (its warnings printed) and runs `f` on it.
fn with_config(paths: &ConfigPaths, f: impl FnOnce(&Config)) -> ExitCode {
    match Config::load(paths) {
        Ok((cfg, diags)) => {
            print_diags(&diags);
            f(&cfg);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `config convert IN [OUT]`: multipath.conf to TOML, or TOML (`.toml`)
/// back to multipath.conf.
fn convert_config(input: &std::path::Path, output: Option<&std::path::Path>) -> ExitCode {
    let name = input.display().to_string();
    let bytes = match std::fs::read(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("mpathd: cannot read {name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let is_toml = input.extension().is_some_and(|e| e == "toml");
    let parsed = if is_toml {
        let Ok(t) = String::from_utf8(bytes) else {
            eprintln!("{name}: not UTF-8");
            return ExitCode::FAILURE;
        };
        Config::from_toml_str(&t, &name)
    } else {
        Config::parse_bytes(&bytes, &name)
    };
    match parsed {
        Ok((cfg, diags)) => {
            print_diags(&diags);
            let text = if is_toml {
                cfg.to_conf_string()
            } else {
                cfg.to_toml_string()
            };
            write_out(output, &text)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `config claim DEV`: the udev properties that claim (or release) a path.
fn claim_path(cli: &Cli, paths: &ConfigPaths, dev: &str) -> ExitCode {
    // Warnings go nowhere: udev logs a program's stderr per event.
    let claim = Config::load(paths)
        .map_err(crate::Error::from)
        .and_then(|(c, _)| {
            crate::discovery::claim::claim_device(
                dev,
                &c,
                &cli.wwids_file,
                crate::discovery::claim::ClaimRules::Daemon,
            )
        });
    match claim {
        Ok(c) => {
            print!("{}", c.udev_properties());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mpathd: claim {dev}: {e}");
            ExitCode::FAILURE
        }
    }
}
