//! Command-line definition of `mpathd`, shared by the binary and the man
//! page / completion generator.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Device-mapper multipath daemon, a drop-in replacement for multipathd.
///
/// Without arguments mpathd runs the daemon in the foreground (as systemd
/// runs it). With `-k` or with a command as arguments it is a client of a
/// running daemon, exactly like `multipathd -k`.
#[derive(Debug, Parser)]
#[command(name = "mpathd", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Stay in the foreground and log to standard error (mpathd never forks;
    /// accepted for multipathd compatibility).
    #[arg(short = 'd')]
    pub foreground: bool,

    /// Suppress timestamps in log output (as under systemd).
    #[arg(short = 's')]
    pub no_timestamps: bool,

    /// Verbosity as multipathd's: 0 errors, 1 warnings, 2 notices (default),
    /// 3 info, 4 and above debug.
    #[arg(short = 'v', value_name = "LEVEL", value_parser = clap::value_parser!(u8).range(0..=6))]
    pub verbosity: Option<u8>,

    /// Client mode: send COMMAND to the running daemon, or read commands
    /// from standard input when none is given (`multipathd>` prompt).
    #[arg(short = 'k', value_name = "COMMAND", num_args = 0..=1, default_missing_value = "")]
    pub client: Option<String>,

    /// Read-only bindings (accepted for multipathd compatibility).
    #[arg(short = 'B')]
    pub readonly_bindings: bool,

    /// Configuration file (multipath.conf syntax, or TOML when it ends in .toml).
    #[arg(long, value_name = "FILE", env = "MPATHD_CONFIG", default_value = "/etc/multipath.conf")]
    pub config: PathBuf,

    /// Directory of drop-in files read after the configuration file, in name order.
    #[arg(long, value_name = "DIR", env = "MPATHD_CONFIG_DIR", default_value = "/etc/multipath/conf.d")]
    pub config_dir: PathBuf,

    /// The wwids file, shared with multipath-tools.
    #[arg(long, value_name = "FILE", env = "MPATHD_WWIDS_FILE", default_value = "/etc/multipath/wwids")]
    pub wwids_file: PathBuf,

    /// Control socket names: `@name` is abstract, anything else a path.
    /// Defaults to multipathd's two sockets; MULTIPATH_SOCKET_NAME overrides.
    #[arg(long = "socket", value_name = "NAME")]
    pub sockets: Vec<String>,

    /// A command for the running daemon, e.g. `show topology`.
    #[arg(value_name = "COMMAND", trailing_var_arg = true)]
    pub command: Vec<String>,

    #[command(subcommand)]
    pub sub: Option<Sub>,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Generate man pages or shell completions.
    #[command(subcommand, hide = true)]
    Generate(GenerateCmd),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Parse and resolve the configuration; print warnings and errors with
    /// file:line:column; exit non-zero on errors.
    Check {
        /// Check this file instead of the configured one (drop-ins are read
        /// only when checking the configured file).
        file: Option<PathBuf>,
    },
    /// Print the effective configuration (multipathd `show config` layout).
    Show {
        /// Print it as TOML instead.
        #[arg(long)]
        toml: bool,
    },
    /// Show every setting that applies to a device, and where it came from.
    Explain {
        #[arg(long)]
        vendor: String,
        #[arg(long)]
        product: String,
        #[arg(long, default_value = "")]
        revision: String,
        /// Protocol, e.g. scsi:iscsi, scsi:fcp.
        #[arg(long, default_value = "scsi:unspec")]
        protocol: String,
        #[arg(long)]
        wwid: Option<String>,
        /// Report the path as ALUA-capable (TPGS), as detect_prio sees it.
        #[arg(long)]
        tpgs: bool,
    },
    /// Convert between multipath.conf and TOML (by the input's extension).
    Convert {
        input: PathBuf,
        /// Output file; standard output when absent.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// For udev rules: print MPATHD_PATH=1 if WWID is in the wwids file.
    #[command(hide = true)]
    IsPath { wwid: String },
}

#[derive(Debug, Subcommand)]
pub enum GenerateCmd {
    /// Write man pages under DIR/man8 and DIR/man5.
    Man { dir: PathBuf },
    /// Write bash and zsh completions under DIR.
    Completions { dir: PathBuf },
}
