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

use crate::model::DevT;

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

mod status;
pub use status::*;

#[cfg(test)]
mod tests;
