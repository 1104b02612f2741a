//! mpathd: the daemon, its `-k` client and its configuration tools.

use std::process::ExitCode;

use clap::Parser;

use mpathd::cli::{Cli, ConfigCmd, GenerateCmd, Sub};

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if cli.sub.is_none()
        && cli.client.is_none()
        && cli.command.first().is_some_and(|w| w == "config")
    {
        // `mpathd --config F config explain ...`: options before the
        // subcommand made clap take it for a daemon command; multipathd has
        // no `config` command, so it is ours.
        let words = std::iter::once("mpathd".to_string()).chain(cli.command.iter().cloned());
        match Cli::try_parse_from(words) {
            Ok(again) => cli.sub = again.sub,
            Err(e) => e.exit(),
        }
        cli.command.clear();
    }
    match &cli.sub {
        Some(Sub::Generate(GenerateCmd::Man { dir })) => report(mpathd::cli::generate_man(dir)),
        Some(Sub::Generate(GenerateCmd::Completions { dir })) => {
            report(mpathd::cli::generate_completions(dir))
        }
        Some(Sub::Config(cmd)) => config_cmd(&cli, cmd),
        None => {
            if let Some(cmd) = &cli.client {
                client(&cli, Some(cmd.as_str()))
            } else if !cli.command.is_empty() {
                // Quotes words with spaces, as multipathd does.
                let cmd = mpathd::client::command_from_args(&cli.command);
                client(&cli, Some(cmd.as_str()))
            } else {
                mpathd::daemon::run::run_daemon(&cli)
            }
        }
    }
}

fn report(r: std::io::Result<Vec<std::path::PathBuf>>) -> ExitCode {
    match r {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mpathd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn client(cli: &Cli, cmd: Option<&str>) -> ExitCode {
    mpathd::cli::commands::run_client(cli, cmd)
}

fn config_cmd(cli: &Cli, cmd: &ConfigCmd) -> ExitCode {
    mpathd::cli::commands::run_config_cmd(cli, cmd)
}
