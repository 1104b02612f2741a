//! The multipath target's grammar: table (constructor) strings and status
//! strings, as typed values. Pure: no I/O.
//!
//! Table (what is loaded, and what the kernel prints back):
//! `<nr_features> <feature>* <nr_hwh> [<hwh> <hwh_arg>*] <nr_pg> <init_pg>
//!  (<selector> <nr_sel_args> <sel_arg>* <nr_paths> <nr_path_args>
//!   (<maj:min> <path_arg>*)+)+`
//!
//! Status (`dmsetup status`):
//! `<nr_features> <feature>* <nr_hwh> <hwh_word>* <nr_pg> <next_pg>
//!  (<A|E|D> <nr_sel_status> <sel_status>* <nr_paths> <nr_path_status>
//!   (<maj:min> <A|F> <fail_count> <path_sel_status>*)+)+`
//!
//! The kernel prints a table back in its own canonical form: features in a
//! fixed order, the hardware handler without its arguments (and replaced by
//! whatever handler is attached when retain_attached_hw_handler is in
//! force), selector per-path arguments filled in with defaults, and
//! `init_pg` replaced by the group it will use next. [`MultipathTable::compare`]
//! says whether a table we want differs from the kernel's in a way that
//! needs a reload.

use std::fmt;
use std::str::FromStr;

use crate::model::{DevT, DmPathState, PgState};

/// A table or status string that does not follow the multipath grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {msg}")]
pub struct GrammarError {
    /// `multipath table` or `multipath status`.
    pub what: &'static str,
    pub msg: String,
}

/// Whitespace-separated words with position-aware errors.
struct Words<'a> {
    what: &'static str,
    words: Vec<&'a str>,
    pos: usize,
}

impl<'a> Words<'a> {
    fn new(what: &'static str, s: &'a str) -> Self {
        Words {
            what,
            words: s.split_whitespace().collect(),
            pos: 0,
        }
    }

    fn err(&self, msg: impl Into<String>) -> GrammarError {
        GrammarError {
            what: self.what,
            msg: format!("word {}: {}", self.pos + 1, msg.into()),
        }
    }

    fn word(&mut self, field: &str) -> Result<&'a str, GrammarError> {
        match self.words.get(self.pos) {
            Some(w) => {
                self.pos += 1;
                Ok(w)
            }
            None => Err(self.err(format!("missing {field}"))),
        }
    }

    fn number<T: FromStr>(&mut self, field: &str) -> Result<T, GrammarError> {
        let w = self.word(field)?;
        w.parse()
            .map_err(|_| self.err(format!("{field} '{w}' is not a number")))
    }

    /// A count, bounded so a corrupt string cannot make us allocate much.
    fn count(&mut self, field: &str) -> Result<usize, GrammarError> {
        let n: usize = self.number(field)?;
        if n > self.words.len() {
            return Err(self.err(format!("{field} {n} exceeds the string's length")));
        }
        Ok(n)
    }

    fn strings(&mut self, n: usize, field: &str) -> Result<Vec<String>, GrammarError> {
        (0..n)
            .map(|_| self.word(field).map(str::to_string))
            .collect()
    }

    fn devt(&mut self) -> Result<DevT, GrammarError> {
        let w = self.word("path device")?;
        w.parse().map_err(|e: String| self.err(e))
    }

    fn finish(&self) -> Result<(), GrammarError> {
        if self.pos < self.words.len() {
            return Err(self.err(format!(
                "{} unexpected trailing words",
                self.words.len() - self.pos
            )));
        }
        Ok(())
    }
}

fn join_words(f: &mut fmt::Formatter<'_>, words: &[String]) -> fmt::Result {
    for w in words {
        write!(f, " {w}")?;
    }
    Ok(())
}

// ----------------------------------------------------------------------
// Features
// ----------------------------------------------------------------------

/// The table's feature arguments (`1 queue_if_no_path`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Features {
    pub queue_if_no_path: bool,
    pub pg_init_retries: Option<u32>,
    pub pg_init_delay_msecs: Option<u32>,
    pub retain_attached_hw_handler: bool,
    /// `bio`, `rq`, `mq` or `nvme`; None is the kernel's default (rq).
    pub queue_mode: Option<String>,
    /// Words the kernel does not know, kept in order (it would reject them,
    /// but a configuration may carry them and we must print them back).
    pub other: Vec<String>,
}

impl Features {
    fn words(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.queue_if_no_path {
            w.push("queue_if_no_path".to_string());
        }
        if let Some(n) = self.pg_init_retries {
            w.push("pg_init_retries".to_string());
            w.push(n.to_string());
        }
        if let Some(n) = self.pg_init_delay_msecs {
            w.push("pg_init_delay_msecs".to_string());
            w.push(n.to_string());
        }
        if self.retain_attached_hw_handler {
            w.push("retain_attached_hw_handler".to_string());
        }
        if let Some(m) = &self.queue_mode {
            w.push("queue_mode".to_string());
            w.push(m.clone());
        }
        w.extend(self.other.iter().cloned());
        w
    }

    fn parse_from(words: &mut Words<'_>) -> Result<Self, GrammarError> {
        let n = words.count("feature count")?;
        let end = words.pos + n;
        let mut f = Features::default();
        while words.pos < end {
            let w = words.word("feature")?;
            let has_arg = words.pos < end;
            match w {
                "queue_if_no_path" => f.queue_if_no_path = true,
                "retain_attached_hw_handler" => f.retain_attached_hw_handler = true,
                "pg_init_retries" if has_arg => {
                    f.pg_init_retries = Some(words.number("pg_init_retries")?)
                }
                "pg_init_delay_msecs" if has_arg => {
                    f.pg_init_delay_msecs = Some(words.number("pg_init_delay_msecs")?)
                }
                "queue_mode" if has_arg => {
                    f.queue_mode = Some(words.word("queue_mode")?.to_string())
                }
                other => f.other.push(other.to_string()),
            }
        }
        if words.pos != end {
            return Err(words.err("feature count does not match its words"));
        }
        Ok(f)
    }

    /// What decides whether a reload is needed: queueing (changed by
    /// messages) and retain_attached_hw_handler (some kernels force it) are
    /// left out; defaults are folded.
    fn reload_key(&self) -> (Option<u32>, Option<u32>, Option<&str>, Vec<&str>) {
        let mode = match self.queue_mode.as_deref() {
            None | Some("rq") | Some("mq") => None,
            Some(m) => Some(m),
        };
        let mut other: Vec<&str> = self.other.iter().map(String::as_str).collect();
        other.sort_unstable();
        (
            self.pg_init_retries.filter(|&n| n > 0),
            self.pg_init_delay_msecs,
            mode,
            other,
        )
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.words();
        write!(f, "{}", w.len())?;
        join_words(f, &w)
    }
}

impl FromStr for Features {
    type Err = GrammarError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut w = Words::new("multipath features", s);
        let f = Features::parse_from(&mut w)?;
        w.finish()?;
        Ok(f)
    }
}

// ----------------------------------------------------------------------
// Hardware handler
// ----------------------------------------------------------------------

/// The table's hardware handler (`0`, `1 alua`, `2 emc 1`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HwHandler {
    pub name: Option<String>,
    pub args: Vec<String>,
}

impl HwHandler {
    pub fn none() -> Self {
        HwHandler::default()
    }

    pub fn named(name: &str) -> Self {
        HwHandler {
            name: Some(name.to_string()),
            args: Vec::new(),
        }
    }

    fn parse_from(words: &mut Words<'_>) -> Result<Self, GrammarError> {
        let n = words.count("hardware handler count")?;
        if n == 0 {
            return Ok(HwHandler::none());
        }
        let name = words.word("hardware handler")?.to_string();
        let args = words.strings(n - 1, "hardware handler argument")?;
        Ok(HwHandler {
            name: Some(name),
            args,
        })
    }
}

impl fmt::Display for HwHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            None => f.write_str("0"),
            Some(name) => {
                write!(f, "{} {name}", self.args.len() + 1)?;
                join_words(f, &self.args)
            }
        }
    }
}

impl FromStr for HwHandler {
    type Err = GrammarError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut w = Words::new("multipath hardware handler", s);
        let h = HwHandler::parse_from(&mut w)?;
        w.finish()?;
        Ok(h)
    }
}

// ----------------------------------------------------------------------
// Path selector
// ----------------------------------------------------------------------

/// A path selector with its group arguments (`service-time 0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    pub args: Vec<String>,
}

impl Selector {
    pub fn new(name: &str) -> Self {
        Selector {
            name: name.to_string(),
            args: Vec::new(),
        }
    }

    /// Per-path table arguments the kernel's selector knows, with their
    /// defaults (`<repeat_count> [<relative_throughput>]`), or None for a
    /// selector we do not know.
    fn path_arg_defaults(&self) -> Option<&'static [u32]> {
        match self.name.as_str() {
            "service-time" => Some(&[1, 1]),
            "round-robin" | "queue-length" => Some(&[1]),
            _ => None,
        }
    }

    /// Per-path arguments as the kernel prints them back: missing ones
    /// filled with defaults, repeat_count > 1 clamped to 1 (current kernels
    /// ignore larger values with a deprecation warning).
    fn kernel_path_args(&self, args: &[String]) -> Vec<String> {
        let Some(defaults) = self.path_arg_defaults() else {
            return args.to_vec();
        };
        defaults
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let v = args
                    .get(i)
                    .and_then(|a| a.parse::<u32>().ok())
                    .unwrap_or(*d);
                let v = if i == 0 { v.min(1) } else { v };
                v.to_string()
            })
            .collect()
    }

    /// Group arguments as the kernel prints them back: known selectors
    /// print none.
    fn kernel_args(&self) -> Vec<String> {
        match self.path_arg_defaults() {
            Some(_) => Vec::new(),
            None => self.args.clone(),
        }
    }

    fn parse_from(words: &mut Words<'_>) -> Result<Self, GrammarError> {
        let name = words.word("path selector")?.to_string();
        let n = words.count("path selector argument count")?;
        let args = words.strings(n, "path selector argument")?;
        Ok(Selector { name, args })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.args.len())?;
        join_words(f, &self.args)
    }
}

impl FromStr for Selector {
    type Err = GrammarError;
    /// Accepts the configuration form `service-time 0` and a bare name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut w = Words::new("path selector", s);
        let name = w.word("path selector")?.to_string();
        if w.pos == w.words.len() {
            return Ok(Selector::new(&name));
        }
        let n = w.count("path selector argument count")?;
        let args = w.strings(n, "path selector argument")?;
        w.finish()?;
        Ok(Selector { name, args })
    }
}

// ----------------------------------------------------------------------
// Table
// ----------------------------------------------------------------------

/// One path in a table: its device and the selector's per-path arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePath {
    pub dev: DevT,
    pub args: Vec<String>,
}

/// One priority group in a table. Every path carries the same number of
/// arguments (the grammar has one count per group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableGroup {
    pub selector: Selector,
    pub paths: Vec<TablePath>,
}

impl TableGroup {
    fn path_arg_count(&self) -> usize {
        self.paths.first().map_or(0, |p| p.args.len())
    }
}

/// How a wanted table compares with the kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableMatch {
    /// Nothing to do.
    Same,
    /// Only queue_if_no_path differs: send `queue_if_no_path` /
    /// `fail_if_no_path` instead of reloading.
    QueueingDiffers,
    /// Groups, paths, selectors, features or handler differ.
    ReloadNeeded,
}

/// The multipath target's parameters (the table string without the
/// `start length multipath` prefix).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultipathTable {
    pub features: Features,
    pub hwhandler: HwHandler,
    /// 1-based index of the group to use first; 0 only with no groups.
    pub init_pg: u32,
    pub groups: Vec<TableGroup>,
}

impl MultipathTable {
    /// Build a table the way the policy wants it: one selector for every
    /// group, groups in priority order, each path with its repeat count
    /// (1, or the path's prio with rr_weight priorities). The first group
    /// is used first.
    pub fn from_groups(
        features: Features,
        hwhandler: HwHandler,
        selector: &Selector,
        groups: &[Vec<(DevT, u32)>],
    ) -> Self {
        let groups: Vec<TableGroup> = groups
            .iter()
            .filter(|g| !g.is_empty())
            .map(|g| TableGroup {
                selector: selector.clone(),
                paths: g
                    .iter()
                    .map(|(dev, repeat)| TablePath {
                        dev: *dev,
                        args: vec![repeat.to_string()],
                    })
                    .collect(),
            })
            .collect();
        MultipathTable {
            features,
            hwhandler,
            init_pg: u32::from(!groups.is_empty()),
            groups,
        }
    }

    /// Every path device, group by group.
    pub fn paths(&self) -> impl Iterator<Item = DevT> + '_ {
        self.groups
            .iter()
            .flat_map(|g| g.paths.iter().map(|p| p.dev))
    }

    /// 1-based index of the group holding `dev`.
    pub fn group_of(&self, dev: DevT) -> Option<u32> {
        self.groups
            .iter()
            .position(|g| g.paths.iter().any(|p| p.dev == dev))
            .and_then(|i| u32::try_from(i + 1).ok())
    }

    /// Checks the kernel would accept the shape (counts and ranges).
    pub fn validate(&self) -> Result<(), GrammarError> {
        let err = |msg: String| GrammarError {
            what: "multipath table",
            msg,
        };
        let nr_pg = self.groups.len();
        let init = self.init_pg as usize;
        if (nr_pg == 0) != (init == 0) || init > nr_pg {
            return Err(err(format!("init_pg {init} with {nr_pg} groups")));
        }
        for (i, g) in self.groups.iter().enumerate() {
            if g.paths.is_empty() {
                return Err(err(format!("group {} has no paths", i + 1)));
            }
            let n = g.path_arg_count();
            if g.paths.iter().any(|p| p.args.len() != n) {
                return Err(err(format!(
                    "group {}: paths have different argument counts",
                    i + 1
                )));
            }
        }
        Ok(())
    }

    /// The table as the kernel prints it back after loading this one
    /// (current kernels): canonical features, handler without arguments,
    /// known selectors' arguments normalized. `init_pg` is kept.
    pub fn kernel_form(&self) -> MultipathTable {
        MultipathTable {
            features: Features {
                pg_init_retries: self.features.pg_init_retries.filter(|&n| n > 0),
                queue_mode: match self.features.queue_mode.as_deref() {
                    None | Some("rq") | Some("mq") => None,
                    Some(m) => Some(m.to_string()),
                },
                ..self.features.clone()
            },
            hwhandler: HwHandler {
                name: self.hwhandler.name.clone(),
                args: Vec::new(),
            },
            init_pg: self.init_pg,
            groups: self
                .groups
                .iter()
                .map(|g| TableGroup {
                    selector: Selector {
                        name: g.selector.name.clone(),
                        args: g.selector.kernel_args(),
                    },
                    paths: g
                        .paths
                        .iter()
                        .map(|p| TablePath {
                            dev: p.dev,
                            args: g.selector.kernel_path_args(&p.args),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Groups in a form where kernel rewrites do not count: selector name
    /// and normalized arguments, paths sorted by device.
    #[allow(clippy::type_complexity)]
    fn groups_key(&self) -> Vec<(String, Vec<String>, Vec<(DevT, Vec<String>)>)> {
        self.groups
            .iter()
            .map(|g| {
                let mut paths: Vec<(DevT, Vec<String>)> = g
                    .paths
                    .iter()
                    .map(|p| (p.dev, g.selector.kernel_path_args(&p.args)))
                    .collect();
                paths.sort();
                (g.selector.name.clone(), g.selector.kernel_args(), paths)
            })
            .collect()
    }

    /// Compare the table we want (`self`) with the one the kernel reports.
    /// Ignored: init_pg (the kernel prints the group it will use next),
    /// path order inside a group, hardware handler arguments and a handler
    /// the kernel kept attached in place of ours or of none,
    /// retain_attached_hw_handler, repeat counts above 1.
    pub fn compare(&self, kernel: &MultipathTable) -> TableMatch {
        let handler_ok = match (&self.hwhandler.name, &kernel.hwhandler.name) {
            (Some(_), None) => false,
            (None, _) | (Some(_), Some(_)) => true,
        };
        if !handler_ok
            || self.features.reload_key() != kernel.features.reload_key()
            || self.groups_key() != kernel.groups_key()
        {
            return TableMatch::ReloadNeeded;
        }
        if self.features.queue_if_no_path != kernel.features.queue_if_no_path {
            return TableMatch::QueueingDiffers;
        }
        TableMatch::Same
    }

    /// True when loading `self` over `kernel` would change the map.
    pub fn needs_reload(&self, kernel: &MultipathTable) -> bool {
        self.compare(kernel) == TableMatch::ReloadNeeded
    }
}

impl fmt::Display for MultipathTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.features,
            self.hwhandler,
            self.groups.len(),
            self.init_pg
        )?;
        for g in &self.groups {
            write!(
                f,
                " {} {} {}",
                g.selector,
                g.paths.len(),
                g.path_arg_count()
            )?;
            for p in &g.paths {
                write!(f, " {}", p.dev)?;
                join_words(f, &p.args)?;
            }
        }
        Ok(())
    }
}

impl FromStr for MultipathTable {
    type Err = GrammarError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut w = Words::new("multipath table", s);
        let features = Features::parse_from(&mut w)?;
        let hwhandler = HwHandler::parse_from(&mut w)?;
        let nr_pg = w.count("group count")?;
        let init_pg: u32 = w.number("initial group")?;
        if (nr_pg == 0) != (init_pg == 0) || init_pg as usize > nr_pg {
            return Err(w.err(format!("initial group {init_pg} with {nr_pg} groups")));
        }
        let mut groups = Vec::with_capacity(nr_pg);
        for _ in 0..nr_pg {
            let selector = Selector::parse_from(&mut w)?;
            let nr_paths = w.count("path count")?;
            if nr_paths == 0 {
                return Err(w.err("group without paths"));
            }
            let nr_args = w.count("per-path argument count")?;
            let mut paths = Vec::with_capacity(nr_paths);
            for _ in 0..nr_paths {
                let dev = w.devt()?;
                let args = w.strings(nr_args, "path argument")?;
                paths.push(TablePath { dev, args });
            }
            groups.push(TableGroup { selector, paths });
        }
        w.finish()?;
        Ok(MultipathTable {
            features,
            hwhandler,
            init_pg,
            groups,
        })
    }
}

// ----------------------------------------------------------------------
// Status
// ----------------------------------------------------------------------

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> DevT {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn table(s: &str) -> MultipathTable {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn status(s: &str) -> MultipathStatus {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// Tables from COMPAT.md section 5, the reference captures, and the
    /// shapes multipath-tools loads.
    const TABLES: &[&str] = &[
        "1 queue_if_no_path 1 alua 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1",
        "0 0 1 1 round-robin 0 2 1 8:32 1 65:0 1",
        "3 queue_if_no_path pg_init_retries 50 1 alua 2 1 round-robin 0 2 1 8:32 1 65:0 1 round-robin 0 2 1 8:16 1 8:240 1",
        "4 queue_if_no_path pg_init_retries 50 retain_attached_hw_handler 1 alua 1 1 service-time 0 4 2 65:16 1 1 8:96 1 1 65:176 1 1 66:96 1 1",
        "0 0 2 2 queue-length 0 1 1 8:16 1 queue-length 0 1 1 8:32 1",
        "2 pg_init_delay_msecs 100 2 emc 1 1 1 round-robin 0 1 1 8:16 1",
        "2 queue_mode bio 0 1 1 service-time 0 1 0 8:16",
        "0 0 0 0",
    ];

    #[test]
    fn tables_round_trip() {
        for s in TABLES {
            let t = table(s);
            assert_eq!(t.to_string(), *s);
            assert!(t.validate().is_ok(), "{s}");
        }
    }

    #[test]
    fn table_fields() {
        let t = table(TABLES[2]);
        assert!(t.features.queue_if_no_path);
        assert_eq!(t.features.pg_init_retries, Some(50));
        assert_eq!(t.hwhandler, HwHandler::named("alua"));
        assert_eq!(t.init_pg, 1);
        assert_eq!(t.groups.len(), 2);
        assert_eq!(t.groups[1].selector, "round-robin 0".parse().unwrap());
        assert_eq!(t.group_of(d("8:240")), Some(2));
        assert_eq!(t.paths().count(), 4);
        let h = table(TABLES[5]).hwhandler;
        assert_eq!(h.name.as_deref(), Some("emc"));
        assert_eq!(h.args, vec!["1".to_string()]);
    }

    #[test]
    fn kernel_loaded_features_come_back_canonical() {
        let f: Features = "3 pg_init_retries 50 queue_if_no_path".parse().unwrap();
        assert_eq!(f.to_string(), "3 queue_if_no_path pg_init_retries 50");
        let f: Features = "1 no_partitions".parse().unwrap();
        assert_eq!(f.other, vec!["no_partitions".to_string()]);
        assert_eq!(f.to_string(), "1 no_partitions");
    }

    #[test]
    fn bad_tables_name_the_problem() {
        for (s, needle) in [
            ("", "missing feature count"),
            ("1", "missing feature"),
            ("0 0 1 1 service-time 0 1 1 8:16", "missing path argument"),
            ("0 0 1 1 service-time 0 1 1 sdb 1", "not major:minor"),
            ("0 0 2 1 service-time 0 1 1 8:16 1", "missing path selector"),
            ("0 0 1 0 service-time 0 1 1 8:16 1", "initial group"),
            ("0 0 1 1 service-time 0 0 1", "group without paths"),
            ("0 0 0 0 extra", "trailing"),
            ("99999999999 0", "exceeds"),
            ("x", "not a number"),
        ] {
            let e = s.parse::<MultipathTable>().unwrap_err().to_string();
            assert!(e.contains(needle), "{s:?}: {e}");
            assert!(e.starts_with("multipath table: word"), "{e}");
        }
    }

    #[test]
    fn builder_matches_multipath_tools_layout() {
        let t = MultipathTable::from_groups(
            "1 queue_if_no_path".parse().unwrap(),
            HwHandler::named("alua"),
            &"service-time 0".parse().unwrap(),
            &[vec![(d("8:32"), 1)], vec![(d("8:16"), 1)], vec![]],
        );
        assert_eq!(t.to_string(), TABLES[0]);
        let empty = MultipathTable::from_groups(
            Features::default(),
            HwHandler::none(),
            &Selector::new("service-time"),
            &[],
        );
        assert_eq!(empty.to_string(), "0 0 0 0");
    }

    #[test]
    fn validate_catches_inconsistent_groups() {
        let mut t = table(TABLES[1]);
        t.groups[0].paths[1].args.clear();
        assert!(t.validate().is_err());
        let mut t = table(TABLES[1]);
        t.init_pg = 2;
        assert!(t.validate().is_err());
    }

    #[test]
    fn kernel_form_is_what_the_kernel_prints() {
        // Loaded by multipath-tools / read back from a 6.1 kernel.
        let loaded = table(
            "3 pg_init_retries 50 queue_if_no_path 2 alua x 2 1 service-time 0 1 1 8:32 1 round-robin 0 1 1 8:16 10",
        );
        assert_eq!(
            loaded.kernel_form().to_string(),
            "3 queue_if_no_path pg_init_retries 50 1 alua 2 1 service-time 0 1 2 8:32 1 1 round-robin 0 1 1 8:16 1"
        );
        let kernel = table(&loaded.kernel_form().to_string());
        assert_eq!(loaded.compare(&kernel), TableMatch::Same);
    }

    #[test]
    fn compare_ignores_kernel_rewrites() {
        let want = table(TABLES[0]);
        // next group 2, handler kept, retain flag added, path args padded.
        let kernel = table(
            "2 queue_if_no_path retain_attached_hw_handler 1 alua 2 2 service-time 0 1 2 8:32 1 1 service-time 0 1 2 8:16 1 1",
        );
        assert_eq!(want.compare(&kernel), TableMatch::Same);
        // We asked for no handler; the kernel retained alua.
        let mut no_hwh = want.clone();
        no_hwh.hwhandler = HwHandler::none();
        assert_eq!(no_hwh.compare(&kernel), TableMatch::Same);
        // Path order inside a group does not matter.
        let a = table("0 0 1 1 round-robin 0 2 1 8:32 1 65:0 1");
        let b = table("0 0 1 1 round-robin 0 2 1 65:0 1 8:32 1");
        assert_eq!(a.compare(&b), TableMatch::Same);
    }

    #[test]
    fn compare_detects_real_changes() {
        let want = table(TABLES[0]);
        let swapped = table(
            "1 queue_if_no_path 1 alua 2 1 service-time 0 1 1 8:16 1 service-time 0 1 1 8:32 1",
        );
        assert_eq!(want.compare(&swapped), TableMatch::ReloadNeeded);
        assert!(want.needs_reload(&swapped));
        let merged = table("1 queue_if_no_path 1 alua 1 1 service-time 0 2 1 8:16 1 8:32 1");
        assert_eq!(want.compare(&merged), TableMatch::ReloadNeeded);
        let rr = table(
            "1 queue_if_no_path 1 alua 2 1 round-robin 0 1 1 8:32 1 round-robin 0 1 1 8:16 1",
        );
        assert_eq!(want.compare(&rr), TableMatch::ReloadNeeded);
        let no_hwh =
            table("1 queue_if_no_path 0 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1");
        assert_eq!(want.compare(&no_hwh), TableMatch::ReloadNeeded);
        let retries = table("3 queue_if_no_path pg_init_retries 50 1 alua 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1");
        assert_eq!(want.compare(&retries), TableMatch::ReloadNeeded);
        let throughput = table(
            "1 queue_if_no_path 1 alua 2 1 service-time 0 1 2 8:32 1 5 service-time 0 1 1 8:16 1",
        );
        assert_eq!(want.compare(&throughput), TableMatch::ReloadNeeded);
        let no_queue = table("0 1 alua 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1");
        assert_eq!(want.compare(&no_queue), TableMatch::QueueingDiffers);
        assert!(!want.needs_reload(&no_queue));
    }

    /// Status lines: synthesized from the kernel's format and captured in
    /// the guest (kernel 6.1, scsi_debug, 2 paths).
    const STATUSES: &[&str] = &[
        "2 0 0 0 2 1 A 0 1 2 8:32 A 0 0 1 E 0 1 2 8:16 A 0 0 1",
        "2 0 1 0 2 1 A 0 2 2 8:32 A 0 0 1 65:0 F 3 0 1 E 0 2 2 8:16 A 0 0 1 8:240 A 0 0 1",
        "2 1 0 0 1 1 E 0 2 0 8:16 F 1 8:32 F 2",
        "2 0 0 0 2 2 D 0 1 1 8:16 A 0 0 E 0 1 1 8:32 A 0 3",
        "3 0 0 7 1 x 0 0",
        "2 0 0 0 0 0",
    ];

    #[test]
    fn statuses_round_trip() {
        for s in STATUSES {
            assert_eq!(status(s).to_string(), *s);
        }
    }

    #[test]
    fn status_fields() {
        let st = status(STATUSES[1]);
        assert_eq!(st.queue_io(), Some(0));
        assert_eq!(st.pg_init_count(), Some(1));
        assert!(st.hwhandler.is_empty());
        assert_eq!(st.next_pg, 1);
        assert_eq!(st.active_group(), Some(1));
        assert_eq!(st.groups[1].state, PgState::Enabled);
        assert_eq!(st.nr_active_paths(), 3);
        let (grp, p) = st.path(d("65:0")).unwrap();
        assert_eq!(grp, 1);
        assert_eq!(p.state, DmPathState::Failed);
        assert_eq!(p.fail_count, 3);
        assert_eq!(p.selector_args, vec!["0".to_string(), "1".to_string()]);
        assert_eq!(st.path(d("8:240")).unwrap().0, 2);
        assert!(st.path(d("9:9")).is_none());

        let rr = status(STATUSES[2]);
        assert_eq!(rr.queue_io(), Some(1));
        assert_eq!(rr.active_group(), None);
        assert_eq!(rr.nr_active_paths(), 0);
        let dis = status(STATUSES[3]);
        assert_eq!(dis.groups[0].state, PgState::Disabled);
        assert_eq!(dis.next_pg, 2);
    }

    /// (loaded, kernel table, kernel status) captured in the guest
    /// (Debian kernel 6.1, scsi_debug with scsi_dh_alua attached, no I/O
    /// error), by tests/guest_dm.rs.
    const CAPTURED: &[(&str, &str, &str)] = &[
        (
            "0 0 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:0 1",
            "0 0 2 1 service-time 0 1 2 8:32 1 1 service-time 0 1 2 8:0 1 1",
            "2 0 0 0 2 1 A 0 1 2 8:32 A 0 0 1 E 0 1 2 8:0 A 0 0 1",
        ),
        (
            "1 queue_if_no_path 1 alua 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:0 1",
            "1 queue_if_no_path 1 alua 2 1 service-time 0 1 2 8:32 1 1 service-time 0 1 2 8:0 1 1",
            "2 0 1 0 2 1 A 0 1 2 8:32 A 0 0 1 E 0 1 2 8:0 A 0 0 1",
        ),
        (
            "3 pg_init_retries 50 queue_if_no_path 1 alua 2 1 round-robin 0 1 1 8:32 1 round-robin 0 1 1 8:0 1",
            "3 queue_if_no_path pg_init_retries 50 1 alua 2 1 round-robin 0 1 1 8:32 1 round-robin 0 1 1 8:0 1",
            "2 0 1 0 2 1 A 0 1 0 8:32 A 0 E 0 1 0 8:0 A 0",
        ),
        (
            // The kernel names the handler it kept attached.
            "1 retain_attached_hw_handler 0 1 1 queue-length 0 2 1 8:32 1 8:0 1",
            "1 retain_attached_hw_handler 1 alua 1 1 queue-length 0 2 1 8:32 1 8:0 1",
            "2 0 1 0 1 1 A 0 2 1 8:32 A 0 0 8:0 A 0 0",
        ),
        (
            // rr_weight priorities: repeat counts above 1 come back as 1.
            "0 0 1 1 service-time 0 2 1 8:32 10 8:0 50",
            "0 0 1 1 service-time 0 2 2 8:32 1 1 8:0 1 1",
            "2 0 0 0 1 1 A 0 2 2 8:32 A 0 0 1 8:0 A 0 0 1",
        ),
        (
            "2 pg_init_delay_msecs 100 0 2 2 service-time 0 1 2 8:0 1 3 service-time 0 1 0 8:32",
            "2 pg_init_delay_msecs 100 0 2 2 service-time 0 1 2 8:0 1 3 service-time 0 1 2 8:32 1 1",
            "2 0 0 0 2 2 E 0 1 2 8:0 A 0 0 3 A 0 1 2 8:32 A 0 0 1",
        ),
    ];

    #[test]
    fn captured_kernel_strings() {
        for (loaded, back, st) in CAPTURED {
            let want = table(loaded);
            let kernel = table(back);
            assert_eq!(kernel.to_string(), *back);
            assert_eq!(want.compare(&kernel), TableMatch::Same, "{loaded}");
            let mut expect = want.kernel_form();
            expect.hwhandler = kernel.hwhandler.clone();
            assert_eq!(expect.to_string(), *back, "kernel_form of {loaded}");
            let s = status(st);
            assert_eq!(s.to_string(), *st);
            assert_eq!(s.nr_active_paths(), 2);
        }
        // After fail_path 8:32, and after disable_group 1.
        let failed = status("2 0 0 0 2 1 A 0 1 2 8:32 F 1 0 1 E 0 1 2 8:0 A 0 0 1");
        assert_eq!(failed.path(d("8:32")).unwrap().1.state, DmPathState::Failed);
        let disabled = status("2 0 0 0 2 2 D 0 1 2 8:32 A 1 0 1 E 0 1 2 8:0 A 0 0 1");
        assert_eq!(disabled.groups[0].state, PgState::Disabled);
        assert_eq!(disabled.path(d("8:32")).unwrap().1.fail_count, 1);
    }

    #[test]
    fn bad_statuses_name_the_problem() {
        for (s, needle) in [
            ("2 0 0 0 1 1 X 0 1 0 8:16 A 0", "group state 'X'"),
            ("2 0 0 0 1 1 A 0 1 0 8:16 Q 0", "path state 'Q'"),
            ("2 0 0 0 1 1 A 0 1 0 8:16 A", "missing fail count"),
            ("2 0 0 0 1 1 A 0 1 0 8:16 A x", "not a number"),
            ("2 0 0", "missing hardware handler count"),
        ] {
            let e = s.parse::<MultipathStatus>().unwrap_err().to_string();
            assert!(e.contains(needle), "{s:?}: {e}");
        }
    }
}
