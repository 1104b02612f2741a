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
        ConfigCmd::Check { file } => {
            let p = match file {
                // A single file: no drop-ins (an empty dir that cannot exist).
                Some(f) => ConfigPaths {
                    main: f.clone(),
                    conf_dir: PathBuf::from("/nonexistent/mpathd-check"),
                },
                None => paths,
            };
            let diags = Config::check(&p);
            let errors = print_diags(&diags);
            if errors {
                ExitCode::FAILURE
            } else {
                println!(
                    "{}: configuration OK ({} warning(s))",
                    p.main.display(),
                    diags.len()
                );
                ExitCode::SUCCESS
            }
        }
        ConfigCmd::Show { toml } => match Config::load(&paths) {
            Ok((cfg, diags)) => {
                print_diags(&diags);
                if *toml {
                    print!("{}", cfg.to_toml_string());
                } else {
                    print!("{}", cfg.show_config());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        ConfigCmd::Explain {
            vendor,
            product,
            revision,
            wwid,
        } => match Config::load(&paths) {
            Ok((cfg, diags)) => {
                print_diags(&diags);
                print!(
                    "{}",
                    cfg.explain(vendor, product, revision, wwid.as_deref())
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        ConfigCmd::Convert { input, output } => {
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
                match String::from_utf8(bytes) {
                    Ok(t) => Config::from_toml_str(&t, &name),
                    Err(_) => {
                        eprintln!("{name}: not UTF-8");
                        return ExitCode::FAILURE;
                    }
                }
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
                    write_out(output.as_deref(), &text)
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        ConfigCmd::ClaimPath { dev } => {
            // Warnings go nowhere: udev logs a program's stderr per event.
            let claim = Config::load(&paths)
                .map_err(|e| e.to_string())
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
    }
}
