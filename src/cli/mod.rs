//! Command-line definition of `mpathd`, shared by the binary and the man
//! page / completion generator.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub mod commands;

/// Device-mapper multipath daemon, a drop-in replacement for multipathd.
///
/// Without arguments mpathd runs the daemon in the foreground (as systemd
/// runs it). With `-k` or with a command as arguments it is a client of a
/// running daemon, exactly like `multipathd -k`.
#[derive(Debug, Parser)]
#[command(
    name = "mpathd",
    version,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
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
    #[arg(
        long,
        value_name = "FILE",
        env = "MPATHD_CONFIG",
        default_value = "/etc/multipath.conf"
    )]
    pub config: PathBuf,

    /// Directory of drop-in files read after the configuration file, in name order.
    #[arg(
        long,
        value_name = "DIR",
        env = "MPATHD_CONFIG_DIR",
        default_value = "/etc/multipath/conf.d"
    )]
    pub config_dir: PathBuf,

    /// The wwids file, shared with multipath-tools.
    #[arg(
        long,
        value_name = "FILE",
        env = "MPATHD_WWIDS_FILE",
        default_value = "/etc/multipath/wwids"
    )]
    pub wwids_file: PathBuf,

    /// The user_friendly_names bindings file, shared with multipath-tools.
    #[arg(
        long,
        value_name = "FILE",
        env = "MPATHD_BINDINGS_FILE",
        default_value = "/etc/multipath/bindings"
    )]
    pub bindings_file: PathBuf,

    /// The persistent-reservation keys file (`reservation_key file`),
    /// shared with multipath-tools.
    #[arg(
        long,
        value_name = "FILE",
        env = "MPATHD_PRKEYS_FILE",
        default_value = crate::pr::prkeys::DEFAULT_PATH
    )]
    pub prkeys_file: PathBuf,

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

impl Cli {
    /// The configuration files this invocation reads.
    pub fn config_paths(&self) -> crate::config::ConfigPaths {
        crate::config::ConfigPaths {
            main: self.config.clone(),
            conf_dir: self.config_dir.clone(),
        }
    }
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
        #[arg(long)]
        wwid: Option<String>,
    },
    /// Convert between multipath.conf and TOML (by the input's extension).
    Convert {
        input: PathBuf,
        /// Output file; standard output when absent.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// For udev rules (like `multipath -u`): print
    /// DM_MULTIPATH_DEVICE_PATH=1 if DEV is, or is about to be, a path of a
    /// multipath map; 0 if not; 2 while find_multipaths smart waits.
    #[command(hide = true)]
    ClaimPath { dev: String },
}

#[derive(Debug, Subcommand)]
pub enum GenerateCmd {
    /// Write man pages under DIR/man8 and DIR/man5.
    Man { dir: PathBuf },
    /// Write bash and zsh completions under DIR.
    Completions { dir: PathBuf },
}

/// Write mpathd(8) (and one page per subcommand) under `dir/man8`, and the
/// configuration page mpathd.conf(5) under `dir/man5`.
pub fn generate_man(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    use clap::CommandFactory;
    let man8 = dir.join("man8");
    let man5 = dir.join("man5");
    std::fs::create_dir_all(&man8)?;
    std::fs::create_dir_all(&man5)?;
    let mut written = Vec::new();
    let cmd = Cli::command();
    let page = man8.join("mpathd.8");
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).section("8").render(&mut buf)?;
    std::fs::write(&page, buf)?;
    written.push(page);
    // multipath-tools' command; a name of its own so the page can be
    // installed beside multipath-tools' multipath(8).
    let page = man8.join("mpathd-multipath.8");
    let mut buf = Vec::new();
    let mp = crate::multipath::Args::command().name("multipath").about(
        "multipath-tools' multipath command on mpathd: list maps from device-mapper and sysfs \
         (-l, -ll), create or reload them (through the daemon when it runs), flush them (-f, -F), \
         decide whether a path is multipathed (-c, -u) and edit the wwids file (-a, -w, -W)",
    );
    clap_mangen::Man::new(mp).section("8").render(&mut buf)?;
    std::fs::write(&page, buf)?;
    written.push(page);
    let conf = man5.join("mpathd.conf.5");
    std::fs::write(&conf, conf_man())?;
    written.push(conf);
    Ok(written)
}

/// Write bash and zsh completions under `dir`.
pub fn generate_completions(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    use clap::CommandFactory;
    use clap_complete::{generate_to, Shell};
    let bash = dir.join("bash-completion/completions");
    let zsh = dir.join("zsh/site-functions");
    std::fs::create_dir_all(&bash)?;
    std::fs::create_dir_all(&zsh)?;
    let mut cmd = Cli::command();
    Ok(vec![
        generate_to(Shell::Bash, &mut cmd, "mpathd", &bash)?,
        generate_to(Shell::Zsh, &mut cmd, "mpathd", &zsh)?,
    ])
}

/// mpathd.conf(5), with the keywords mpathd refuses listed from the
/// keyword table itself, so the page cannot drift from the parser.
fn conf_man() -> String {
    let unsupported = crate::config::keywords::unsupported_keywords()
        .iter()
        .map(|k| format!(".B {k}\n.br\n"))
        .collect::<String>();
    CONF_MAN.replace(
        ".SH FILES\n",
        &format!(
            ".SH UNSUPPORTED KEYWORDS\n\
             multipath-tools accepts these keywords; mpathd does not implement them. \
             Set to anything but multipath-tools' default, each is a configuration \
             error (mpathd never accepts a setting it would ignore):\n.PP\n{unsupported}\
             .SH FILES\n"
        ),
    )
}

const CONF_MAN: &str = r#".TH MPATHD.CONF 5 "2026" "mpathd" "File Formats"
.SH NAME
mpathd.conf \- configuration of the mpathd multipath daemon
.SH SYNOPSIS
.B /etc/multipath.conf
.br
.B /etc/multipath/conf.d/*.conf
.br
.B /etc/multipath.toml
.SH DESCRIPTION
mpathd reads the multipath.conf syntax of multipath-tools unchanged:
sections
.BR defaults ,
.BR blacklist ,
.BR blacklist_exceptions ,
.BR devices ,
.B overrides
and
.BR multipaths ,
values as bare words or double-quoted strings (a doubled quote is a literal
quote), comments starting with # or !. Drop-in files in
/etc/multipath/conf.d are read in name order after the main file.
A file whose name ends in .toml holds the same model in TOML; convert
between the two with
.BR "mpathd config convert" .
.SH PRECEDENCE
For each path the effective value of a setting comes from, highest first:
multipaths (by WWID), overrides, devices (user entries over the built-in
hardware table; among matching entries the later one wins per setting),
defaults, built-in defaults. With detect_prio, detect_checker and
detect_pgpolicy on (the default), ALUA-capable paths get prio alua,
checker tur and path_grouping_policy group_by_prio.
.B mpathd config explain
prints every setting for a device with the place it came from.
.SH TRANSPORT TIMEOUTS
When a path joins a map, and on every reconfigure, mpathd writes the
path's timeouts as multipathd does: fast_io_fail_tmo into an iSCSI
session's recovery_tmo (so a cut link fails the path after it instead of
open-iscsi's 120 s replacement_timeout), fast_io_fail_tmo and dev_loss_tmo
into an FC remote port (dev_loss_tmo raised first when it is not above
fast_io_fail_tmo, and capped at 600 s while fast_io_fail_tmo is off),
dev_loss_tmo into a SAS end device's I_T_nexus_loss_timeout, and
eh_deadline into the SCSI host. dev_loss_tmo is raised to outlast
no_path_retry (N x polling_interval, or infinity with queue), and
fast_io_fail_tmo is switched off when it is not below dev_loss_tmo.
.B mpathd config explain
shows what a path of each transport gets, and
.B mpathd show paths reasons
what was written for each path and what the kernel refused.
.SH PERSISTENT RESERVATIONS
.B reservation_key
(in defaults or a multipaths entry, as in multipath-tools) is the map's
SCSI-3 persistent-reservation key: 0x followed by up to 16 hex digits,
optionally :aptpl, or
.B file
to take it from /etc/multipath/prkeys, which
.BR mpathpersist (8)
fills through the daemon's setprkey command.
.B all_tg_pt yes
makes registrations cover all target ports. When a map's key is
registered (mpathpersist sends setprstatus), mpathd registers it on every
path that joins the map or comes back, before reinstating the path, but
only while the array still holds the key through another path: a host
preempted by another one stays fenced.
.B mpathd getprstatus map
.I MAP
answers set, unset or unknown;
.B getprkey
the key or none.
.SH CHECKING
.B mpathd config check
reports errors and warnings as FILE:LINE:COLUMN, with a spelling suggestion
for unknown keywords and a note for deprecated ones. A running daemon keeps
its previous configuration when a reload (SIGHUP or
.BR reconfigure )
brings a bad one.
.SH FILES
/etc/multipath/wwids \- WWIDs of multipathed devices, shared with multipath-tools.
.br
/etc/multipath/prkeys \- reservation keys set with mpathpersist (reservation_key file), shared with multipath-tools.
.SH SEE ALSO
.BR mpathd (8),
.BR multipath.conf (5)
"#;
