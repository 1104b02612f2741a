//! multipath-tools' command line: mode flags, `-v N`, `-p POLICY` and one
//! optional device (a map name, WWID, dm-N, /dev/sdX or MAJ:MIN).

use clap::{ArgAction, Parser};

use crate::model::PgPolicy;

#[derive(Debug, Clone, Parser, Default)]
#[command(
    name = "multipath",
    disable_help_flag = true,
    disable_version_flag = true
)]
pub struct Args {
    /// -l: show maps from device-mapper and sysfs; -ll: also run checkers
    /// and prioritizers.
    #[arg(short = 'l', action = ArgAction::Count)]
    pub list: u8,
    /// Flush (remove) the map named by the device argument.
    #[arg(short = 'f')]
    pub flush: bool,
    /// Flush every unused multipath map.
    #[arg(short = 'F')]
    pub flush_all: bool,
    /// Force a reload of the maps (or of the one named).
    #[arg(short = 'r')]
    pub reload: bool,
    /// Dry run: print what would be created or reloaded.
    #[arg(short = 'd')]
    pub dry_run: bool,
    /// Is the device a path that should be multipathed? (exit 0 = yes)
    #[arg(short = 'c')]
    pub check_path: bool,
    /// Is the device a multipath map with usable paths? (exit 0 = yes)
    #[arg(short = 'C')]
    pub check_map: bool,
    /// udev mode of -c: print DM_MULTIPATH_DEVICE_PATH for the rules.
    #[arg(short = 'u')]
    pub udev_path: bool,
    /// udev mode of -C.
    #[arg(short = 'U')]
    pub udev_map: bool,
    /// Ignore the wwids file.
    #[arg(short = 'i')]
    pub ignore_wwids: bool,
    /// Keep queue_if_no_path in maps created while no daemon runs
    /// (without it they fail I/O when the last path goes, since nobody
    /// would bring a path back).
    #[arg(short = 'q')]
    pub allow_queueing: bool,
    /// Treat the bindings file as read-only (this command never writes it:
    /// a map without a bound friendly name is named by its WWID).
    #[arg(short = 'B')]
    pub bindings_read_only: bool,
    /// Add the device's WWID to the wwids file.
    #[arg(short = 'a')]
    pub add_wwid: bool,
    /// Remove the device's WWID from the wwids file.
    #[arg(short = 'w')]
    pub remove_wwid: bool,
    /// Reset the wwids file to the WWIDs of the current maps.
    #[arg(short = 'W')]
    pub reset_wwids: bool,
    /// Print the configuration with the built-in hardware table.
    #[arg(short = 't')]
    pub show_config: bool,
    /// Print the configuration that applies to the present devices.
    #[arg(short = 'T')]
    pub show_config_local: bool,
    /// Verbosity: 0 nothing, 1 map names, 2 (default) topology, 3+ debug.
    #[arg(short = 'v', default_value_t = 2)]
    pub verbosity: u8,
    /// Path grouping policy for maps this command creates.
    #[arg(short = 'p', value_parser = parse_policy)]
    pub policy: Option<PgPolicy>,
    /// Bindings file (user_friendly_names).
    #[arg(short = 'b')]
    pub bindings: Option<String>,
    /// Retries for -f/-F on a busy map.
    #[arg(short = 'R')]
    pub retries: Option<u32>,
    /// Print the usage.
    #[arg(short = 'h')]
    pub help: bool,
    pub device: Option<String>,
}

/// A `-p` value that names no path grouping policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid policy")]
pub struct BadPolicy(pub String);

fn parse_policy(s: &str) -> Result<PgPolicy, BadPolicy> {
    s.parse::<PgPolicy>().map_err(|_| BadPolicy(s.to_string()))
}

/// What the command line asks for: one mode, as multipath-tools decides it
/// (the last mode flag wins there; here the first in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Usage,
    List {
        check: bool,
    },
    Flush,
    FlushAll,
    CheckPath,
    CheckMap,
    UdevPath,
    UdevMap,
    AddWwid,
    RemoveWwid,
    ResetWwids,
    ShowConfig,
    ShowConfigLocal,
    /// Create or reload maps (`multipath`, `-r`, `-d`).
    Create,
}

pub const USAGE: &str = "multipath-tools v0.9.4 (mpathd)
Usage:
  multipath [-v level] [-B|-d|-i|-q|-r] [-b file] [-p policy] [device]
  multipath [-v level] [-R retries] -f device
  multipath [-v level] [-R retries] -F
  multipath [-v level] [-l|-ll] [device]
  multipath [-v level] [-a|-w] device
  multipath [-v level] -W
  multipath [-v level] [-i] [-c|-C] device
  multipath [-v level] [-i] [-u|-U]
  multipath [-h|-t|-T]

Where:
  -h      print this usage text
  -l      show multipath topology (sysfs and DM info)
  -ll     show multipath topology (maximum info)
  -f      flush a multipath device map
  -F      flush all multipath device maps
  -a      add a device wwid to the wwids file
  -c      check if a device should be a path in a multipath device
  -C      check if a multipath device has usable paths
  -q      allow queue_if_no_path when multipathd is not running
  -d      dry run, do not create or update devmaps
  -t      display the currently used multipathd configuration
  -T      display the multipathd configuration for present devices
  -r      force devmap reload
  -i      ignore wwids file
  -B      treat the bindings file as read only
  -b fil  bindings file location
  -w      remove a device from the wwids file
  -W      reset the wwids file include only the current devices
  -R num  number of times to retry removes of in-use devices
  -u      check if the device specified in the program environment should be a path in a multipath device
  -U      check if the device specified in the program environment is a multipath device with usable paths, see -C flag
  -p pol  force all maps to specified path grouping policy:
          . failover            one path per priority group
          . multibus            all paths in one priority group
          . group_by_serial     one priority group per serial
          . group_by_prio       one priority group per priority lvl
          . group_by_node_name  one priority group per target node
          . group_by_tpg        one priority group per ALUA target port group
  -v lvl  verbosity level:
          . 0 no output
          . 1 print created devmap names only
          . 2 default verbosity
          . 3 print debug information
  device  action limited to:
          . multipath named 'device' (ex: mpath0)
          . multipath whose wwid is 'device' (ex: 60051...)
          . multipath including the path named 'device' (ex: /dev/sda or
            /dev/dm-0)
          . multipath including the path with maj:min 'device' (ex: 8:0)
";

impl Args {
    /// Parses the process's arguments; on a bad command line prints the
    /// usage to stderr and gives the exit code.
    pub fn parse_from_env() -> Result<Args, u8> {
        Self::parse_words(std::env::args_os())
    }

    pub fn parse_words<I, T>(words: I) -> Result<Args, u8>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        match Args::try_parse_from(words) {
            Ok(a) => Ok(a),
            Err(e) => {
                eprintln!("{}", e.kind());
                eprint!("{USAGE}");
                Err(super::RTVL_FAIL)
            }
        }
    }

    pub fn mode(&self) -> Mode {
        if self.help {
            Mode::Usage
        } else if self.show_config {
            Mode::ShowConfig
        } else if self.show_config_local {
            Mode::ShowConfigLocal
        } else if self.flush {
            Mode::Flush
        } else if self.flush_all {
            Mode::FlushAll
        } else if self.check_path {
            Mode::CheckPath
        } else if self.check_map {
            Mode::CheckMap
        } else if self.udev_path {
            Mode::UdevPath
        } else if self.udev_map {
            Mode::UdevMap
        } else if self.add_wwid {
            Mode::AddWwid
        } else if self.remove_wwid {
            Mode::RemoveWwid
        } else if self.reset_wwids {
            Mode::ResetWwids
        } else if self.list > 0 {
            Mode::List {
                check: self.list > 1,
            }
        } else {
            Mode::Create
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Args {
        Args::parse_words(std::iter::once("multipath").chain(words.iter().copied())).unwrap()
    }

    #[test]
    fn modes_as_sm_and_udev_call_them() {
        assert_eq!(parse(&["-ll"]).mode(), Mode::List { check: true });
        assert_eq!(parse(&["-l", "SID"]).mode(), Mode::List { check: false });
        assert_eq!(parse(&["-l", "SID"]).device.as_deref(), Some("SID"));
        assert_eq!(parse(&["-c", "/dev/sda"]).mode(), Mode::CheckPath);
        assert_eq!(parse(&["-f", "SID"]).mode(), Mode::Flush);
        assert_eq!(parse(&["-W"]).mode(), Mode::ResetWwids);
        assert_eq!(parse(&["-u", "sda"]).mode(), Mode::UdevPath);
        assert_eq!(parse(&["-r", "SID"]).mode(), Mode::Create);
        assert_eq!(parse(&["-v0"]).verbosity, 0);
        assert_eq!(parse(&["-v", "3", "-d"]).verbosity, 3);
        assert_eq!(parse(&["-p", "multibus"]).policy, Some(PgPolicy::Multibus));
        assert!(parse(&["-q", "-r"]).allow_queueing);
        assert!(parse(&["-B"]).bindings_read_only);
    }

    #[test]
    fn bad_command_lines_exit_1() {
        assert_eq!(Args::parse_words(["multipath", "-Z"]).unwrap_err(), 1);
        assert_eq!(
            Args::parse_words(["multipath", "-p", "bogus"]).unwrap_err(),
            1
        );
        assert_eq!(Args::parse_words(["multipath", "a", "b"]).unwrap_err(), 1);
    }

    #[test]
    fn policy_values() {
        assert_eq!(parse_policy("group_by_tpg"), Ok(PgPolicy::GroupByTpg));
        assert_eq!(parse_policy("bogus"), Err(BadPolicy("bogus".into())));
        assert_eq!(
            BadPolicy("bogus".into()).to_string(),
            "'bogus' is not a valid policy"
        );
        let e = Args::try_parse_from(["multipath", "-p", "bogus"]).unwrap_err();
        assert!(
            e.to_string().contains("'bogus' is not a valid policy"),
            "{e}"
        );
    }
}
