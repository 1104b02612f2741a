//! Configuration: multipath.conf (and drop-ins) read as multipath-tools
//! reads it, an equivalent TOML form, the built-in hardware table, and the
//! resolution of it all into [`crate::model::Settings`] for one path.
//!
//! # API for the daemon and the CLI
//!
//! Loading:
//! - [`ConfigPaths`]: `main` (default `/etc/multipath.conf`) and `conf_dir`
//!   (default `/etc/multipath/conf.d`; `*.conf` and `*.toml` read in name
//!   order after `main`). A path ending in `.toml` is read as TOML.
//! - [`Config::load`]`(&ConfigPaths) -> Result<(Config, Vec<Diagnostic>), ConfigError>`:
//!   `Err` when any diagnostic is an error (the `ConfigError` holds them
//!   all, warnings included); `Ok` carries the warnings and notes. A
//!   missing main file is not an error (multipathd runs without one).
//! - [`Config::parse_str`]`(text, file_name) -> Result<(Config, Vec<Diagnostic>), ConfigError>`
//! - [`Config::from_toml_str`]`(text, file_name) -> Result<(Config, Vec<Diagnostic>), ConfigError>`
//! - [`Config::check`]`(&ConfigPaths) -> Vec<Diagnostic>`: everything
//!   `load` finds, never fails (for `mpathd config check`).
//!
//! Output:
//! - [`Config::to_conf_string`]: the model in multipath.conf syntax (only
//!   what the files set); [`Config::to_toml_string`]: the same in TOML.
//!   Each parses back to an equal model (`mpathd config convert`).
//! - [`Config::show_config`]: the effective configuration (built-in
//!   defaults, blacklist and hardware table included) in the layout of
//!   `multipathd show config` / `multipath -t`.
//! - [`Config::show_blacklist`]: `multipathd show blacklist` text.
//! - [`Config::show_devices`]: `multipathd show devices` text, given the
//!   block devices and whether each is monitored.
//! - [`Config::explain`]: why a vendor/product gets each setting
//!   (`mpathd config explain`).
//!
//! Policy:
//! - [`Config::resolve`]`(&PathInfo) -> Settings` with an origin for every
//!   setting. Needs `info.tpgs` (and `access_state`, `transport`, `wwid`)
//!   filled in first: detect_prio/detect_checker/detect_pgpolicy and the
//!   alua fallback depend on them.
//! - [`Config::defaults_settings`]: the settings of no particular device.
//! - [`Config::daemon`]: daemon-wide values ([`DaemonDefaults`]).
//! - `impl PathFilter for Config`: blacklist evaluation.
//!
//! # Compatibility decisions
//! - Structural damage (unclosed/unmatched braces, stray values, bad
//!   numbers, unterminated quotes, bad regexes, non-UTF-8, unreadable or
//!   over-8-MiB files) is an error and `load` fails: multipathd would log
//!   and skip the line, silently losing settings.
//! - A `device { }` at top level (the way vendor guides print it) is read
//!   as if inside `devices { }`, with a warning: multipathd ignores it.
//! - A device entry without `product` applies to every product of the
//!   vendor, with a warning: multipathd drops such an entry.
//! - Deprecated keywords warn and are ignored; keywords mpathd does not
//!   implement are kept (and printed back) with a warning when their value
//!   differs from multipath-tools' default.

pub mod diag;
pub mod hwtable;
pub mod ingest;
pub mod keywords;
pub mod parser;
pub mod posix;
mod resolve;
mod show;
mod toml_form;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub use diag::{ConfigError, Diagnostic, Loc, Severity};
pub use resolve::{DaemonDefaults, Explained};

/// Where the configuration lives. Configurable for tests and packaging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPaths {
    /// `/etc/multipath.conf` (or a `.toml` file).
    pub main: PathBuf,
    /// `/etc/multipath/conf.d`: `*.conf` and `*.toml`, in name order.
    pub conf_dir: PathBuf,
}

impl Default for ConfigPaths {
    fn default() -> Self {
        ConfigPaths {
            main: PathBuf::from("/etc/multipath.conf"),
            conf_dir: PathBuf::from("/etc/multipath/conf.d"),
        }
    }
}

impl ConfigPaths {
    /// The files that would be read, in order (the main file first, even
    /// if missing; drop-ins that exist).
    pub fn files(&self) -> (Vec<PathBuf>, Vec<Diagnostic>) {
        let mut files = vec![self.main.clone()];
        let mut diags = Vec::new();
        match std::fs::read_dir(&self.conf_dir) {
            Ok(rd) => {
                let mut names: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| {
                        p.extension()
                            .and_then(|e| e.to_str())
                            .is_some_and(|e| e == "conf" || e == "toml")
                            && p.is_file()
                    })
                    .collect();
                names.sort();
                files.extend(names);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => diags.push(Diagnostic::file(
                Severity::Warning,
                &self.conf_dir.display().to_string(),
                format!("cannot read drop-in directory: {e}"),
            )),
        }
        (files, diags)
    }
}

/// A value as written, with where it was written. Equality compares the
/// text only: two models are equal when they say the same, wherever.
#[derive(Debug, Clone, Default)]
pub struct Value {
    pub text: String,
    pub loc: Option<Loc>,
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for Value {}

impl Value {
    pub fn new(text: impl Into<String>) -> Self {
        Value {
            text: text.into(),
            loc: None,
        }
    }
}

/// keyword -> value, for one section (canonical keyword names).
pub type Attrs = BTreeMap<String, Value>;

/// A subsection: `device`, `multipath`, `protocol`, or a blacklist `device`
/// rule. Equality ignores where it was written.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub attrs: Attrs,
    /// The `device {` line.
    pub loc: Option<Loc>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.attrs == other.attrs
    }
}
impl Eq for Entry {}

impl Entry {
    pub(crate) fn at(loc: Loc) -> Self {
        Entry {
            attrs: Attrs::new(),
            loc: Some(loc),
        }
    }

    pub fn get(&self, kw: &str) -> Option<&str> {
        self.attrs.get(kw).map(|v| v.text.as_str())
    }
}

/// `blacklist` or `blacklist_exceptions`. Patterns keep their leading `!`
/// (inversion) as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blacklist {
    pub devnode: Vec<Value>,
    pub wwid: Vec<Value>,
    pub property: Vec<Value>,
    pub protocol: Vec<Value>,
    /// Entries with `vendor` and/or `product`.
    pub device: Vec<Entry>,
}

impl Blacklist {
    pub fn is_empty(&self) -> bool {
        self.devnode.is_empty()
            && self.wwid.is_empty()
            && self.property.is_empty()
            && self.protocol.is_empty()
            && self.device.is_empty()
    }
}

/// What the configuration files say (the built-in table and defaults are
/// not copied in; they are consulted at resolution and printing).
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub defaults: Attrs,
    pub blacklist: Blacklist,
    pub blacklist_exceptions: Blacklist,
    /// User `device` entries, in file order (later wins per attribute).
    pub devices: Vec<Entry>,
    pub overrides: Attrs,
    /// `overrides { protocol { type ... } }` entries.
    pub overrides_protocols: Vec<Entry>,
    pub multipaths: Vec<Entry>,
    /// An `overrides` section was written (even empty).
    pub has_overrides: bool,
    /// Compiled regexes, built on first use.
    compiled: OnceLock<Arc<resolve::Compiled>>,
}

impl PartialEq for Config {
    fn eq(&self, o: &Self) -> bool {
        self.defaults == o.defaults
            && self.blacklist == o.blacklist
            && self.blacklist_exceptions == o.blacklist_exceptions
            && self.devices == o.devices
            && self.overrides == o.overrides
            && self.overrides_protocols == o.overrides_protocols
            && self.multipaths == o.multipaths
    }
}
impl Eq for Config {}

fn finish(cfg: Config, diags: Vec<Diagnostic>) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
    if diags.iter().any(|d| d.is_error()) {
        Err(ConfigError { diagnostics: diags })
    } else {
        Ok((cfg, diags))
    }
}

fn is_toml(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("toml")
}

impl Config {
    /// Read `/etc/multipath.conf` then the drop-ins. See the module docs.
    pub fn load(paths: &ConfigPaths) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
        let (cfg, diags) = Self::load_all(paths);
        finish(cfg, diags)
    }

    /// Every diagnostic `load` would produce (for `mpathd config check`).
    pub fn check(paths: &ConfigPaths) -> Vec<Diagnostic> {
        Self::load_all(paths).1
    }

    fn load_all(paths: &ConfigPaths) -> (Config, Vec<Diagnostic>) {
        let mut cfg = Config::default();
        let (files, mut diags) = paths.files();
        for (i, f) in files.iter().enumerate() {
            if i == 0 && !f.exists() {
                continue;
            }
            match parser::read_file(f) {
                Ok(text) => {
                    let name = f.display().to_string();
                    if is_toml(f) {
                        toml_form::parse_toml_into(&mut cfg, &text, &name, &mut diags);
                    } else {
                        parser::parse_into(&mut cfg, &text, &name, &mut diags);
                    }
                }
                Err(d) => diags.push(d),
            }
        }
        (cfg, diags)
    }

    /// Parse multipath.conf text; `file_name` is used in diagnostics and
    /// origins.
    pub fn parse_str(
        text: &str,
        file_name: &str,
    ) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
        let mut cfg = Config::default();
        let mut diags = Vec::new();
        parser::parse_into(&mut cfg, text, file_name, &mut diags);
        finish(cfg, diags)
    }

    /// Parse raw bytes (checks UTF-8 and the size limit first).
    pub fn parse_bytes(
        bytes: &[u8],
        file_name: &str,
    ) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
        if bytes.len() as u64 > parser::MAX_FILE_SIZE {
            return Err(ConfigError {
                diagnostics: vec![Diagnostic::file(
                    Severity::Error,
                    file_name,
                    "configuration is larger than 8 MiB: refusing to read it",
                )],
            });
        }
        match parser::decode(bytes.to_vec(), file_name) {
            Ok(text) => Self::parse_str(&text, file_name),
            Err(d) => Err(ConfigError {
                diagnostics: vec![d],
            }),
        }
    }

    /// Parse the TOML form.
    pub fn from_toml_str(
        text: &str,
        file_name: &str,
    ) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
        let mut cfg = Config::default();
        let mut diags = Vec::new();
        toml_form::parse_toml_into(&mut cfg, text, file_name, &mut diags);
        finish(cfg, diags)
    }

    /// The model as TOML (parses back to an equal `Config`).
    pub fn to_toml_string(&self) -> String {
        toml_form::to_toml(self)
    }

    /// The model as multipath.conf (parses back to an equal `Config`).
    pub fn to_conf_string(&self) -> String {
        show::to_conf(self)
    }

    /// `multipathd show config`: the effective configuration.
    pub fn show_config(&self) -> String {
        show::show_config(self)
    }

    /// `multipathd show blacklist`.
    pub fn show_blacklist(&self) -> String {
        show::show_blacklist(self)
    }

    /// `multipathd show devices`: `devices` are block device names with
    /// whether mpathd monitors them (has them as paths).
    /// The distinct (vendor, product, revision) of `paths`, as
    /// [`Config::show_config_local`] takes them.
    pub fn device_identities<'a>(
        paths: impl IntoIterator<Item = &'a crate::model::PathInfo>,
    ) -> Vec<(String, String, String)> {
        let set: std::collections::BTreeSet<(String, String, String)> = paths
            .into_iter()
            .map(|p| (p.vendor.clone(), p.product.clone(), p.rev.clone()))
            .collect();
        set.into_iter().collect()
    }

    /// `show config local`: see [`show::show_config_local`].
    pub fn show_config_local(
        &self,
        present: &[(String, String, String)],
        maps: &[String],
    ) -> String {
        show::show_config_local(self, present, maps)
    }

    pub fn show_devices(&self, devices: &[(String, bool)]) -> String {
        show::show_devices(self, devices)
    }

    /// Human explanation of the settings a vendor/product (and optionally
    /// a revision and WWID) gets, and where each comes from.
    pub fn explain(
        &self,
        vendor: &str,
        product: &str,
        revision: &str,
        wwid: Option<&str>,
    ) -> String {
        show::explain(self, vendor, product, revision, wwid)
    }

    pub(crate) fn compiled(&self) -> Arc<resolve::Compiled> {
        Arc::clone(
            self.compiled
                .get_or_init(|| Arc::new(resolve::Compiled::new(self))),
        )
    }
}
