//! The multipath target's status line (`dmsetup status`), typed.

use std::fmt;
use std::str::FromStr;

use super::{join_words, GrammarError, Words};
use crate::model::{DevT, DmPathState, PgState};

/// One path in the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPath {
    pub dev: DevT,
    /// Active (`A`) or failed (`F`).
    pub state: DmPathState,
    /// How often the kernel failed this path since the table was loaded.
    pub fail_count: u32,
    /// The selector's per-path status (service-time: in-flight size and
    /// relative throughput; queue-length: queue length).
    pub selector_args: Vec<String>,
}

/// One priority group in the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusGroup {
    /// Active (`A`, in use), Enabled (`E`) or Disabled (`D`, bypassed).
    pub state: PgState,
    pub selector_args: Vec<String>,
    pub paths: Vec<StatusPath>,
}

impl StatusGroup {
    fn path_arg_count(&self) -> usize {
        self.paths.first().map_or(0, |p| p.selector_args.len())
    }
}

/// The multipath target's status string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultipathStatus {
    /// Feature words: current kernels print `<queue_io> <pg_init_count>`
    /// (older ones printed the number of queued I/Os first).
    pub features: Vec<String>,
    /// Handler status words (current kernels print none).
    pub hwhandler: Vec<String>,
    /// 1-based group the kernel will use next; 0 with no groups.
    pub next_pg: u32,
    pub groups: Vec<StatusGroup>,
}

impl MultipathStatus {
    /// First feature word: I/O is being queued (pg_init pending / no path).
    pub fn queue_io(&self) -> Option<u64> {
        self.features.first().and_then(|w| w.parse().ok())
    }

    /// Second feature word: pg_init count.
    pub fn pg_init_count(&self) -> Option<u64> {
        self.features.get(1).and_then(|w| w.parse().ok())
    }

    /// A path's state, fail count and 1-based group.
    pub fn path(&self, dev: DevT) -> Option<(u32, &StatusPath)> {
        self.groups.iter().enumerate().find_map(|(i, g)| {
            g.paths
                .iter()
                .find(|p| p.dev == dev)
                .and_then(|p| Some((u32::try_from(i + 1).ok()?, p)))
        })
    }

    /// 1-based index of the group in use (state A), if any.
    pub fn active_group(&self) -> Option<u32> {
        self.groups
            .iter()
            .position(|g| g.state == PgState::Active)
            .and_then(|i| u32::try_from(i + 1).ok())
    }

    /// Number of paths the kernel may send I/O to.
    pub fn nr_active_paths(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| &g.paths)
            .filter(|p| p.state == DmPathState::Active)
            .count()
    }
}

impl fmt::Display for MultipathStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.features.len())?;
        join_words(f, &self.features)?;
        write!(f, " {}", self.hwhandler.len())?;
        join_words(f, &self.hwhandler)?;
        write!(f, " {} {}", self.groups.len(), self.next_pg)?;
        for g in &self.groups {
            let st = match g.state {
                PgState::Active => 'A',
                PgState::Disabled => 'D',
                PgState::Enabled | PgState::Undef => 'E',
            };
            write!(f, " {st} {}", g.selector_args.len())?;
            join_words(f, &g.selector_args)?;
            write!(f, " {} {}", g.paths.len(), g.path_arg_count())?;
            for p in &g.paths {
                let st = match p.state {
                    DmPathState::Failed => 'F',
                    DmPathState::Active | DmPathState::Undef => 'A',
                };
                write!(f, " {} {st} {}", p.dev, p.fail_count)?;
                join_words(f, &p.selector_args)?;
            }
        }
        Ok(())
    }
}

impl FromStr for MultipathStatus {
    type Err = GrammarError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut w = Words::new("multipath status", s);
        let nf = w.count("feature count")?;
        let features = w.strings(nf, "feature")?;
        let nh = w.count("hardware handler count")?;
        let hwhandler = w.strings(nh, "hardware handler word")?;
        let nr_pg = w.count("group count")?;
        let next_pg: u32 = w.number("next group")?;
        let mut groups = Vec::with_capacity(nr_pg);
        for _ in 0..nr_pg {
            let state = match w.word("group state")? {
                "A" => PgState::Active,
                "E" => PgState::Enabled,
                "D" => PgState::Disabled,
                other => return Err(w.err(format!("group state '{other}' is not A, E or D"))),
            };
            let ns = w.count("selector status count")?;
            let selector_args = w.strings(ns, "selector status")?;
            let nr_paths = w.count("path count")?;
            let nr_args = w.count("per-path status count")?;
            let mut paths = Vec::with_capacity(nr_paths);
            for _ in 0..nr_paths {
                let dev = w.devt()?;
                let state = match w.word("path state")? {
                    "A" => DmPathState::Active,
                    "F" => DmPathState::Failed,
                    other => return Err(w.err(format!("path state '{other}' is not A or F"))),
                };
                let fail_count = w.number("fail count")?;
                let selector_args = w.strings(nr_args, "path selector status")?;
                paths.push(StatusPath {
                    dev,
                    state,
                    fail_count,
                    selector_args,
                });
            }
            groups.push(StatusGroup {
                state,
                selector_args,
                paths,
            });
        }
        w.finish()?;
        Ok(MultipathStatus {
            features,
            hwhandler,
            next_pg,
            groups,
        })
    }
}
