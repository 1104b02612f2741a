//! Resolution of the configuration for one path, and blacklist evaluation,
//! with multipath-tools' semantics (libmultipath/propsel.c, blacklist.c).
//!
//! Precedence per attribute, highest first: multipaths entry (exact WWID;
//! several entries for one WWID merge, later wins) > overrides protocol
//! subsection (exact protocol) > overrides > device entries matching
//! vendor/product/revision (user entries over built-in; later entries
//! first) > defaults > built-in defaults. A keyword only counts where the
//! section admits it (e.g. path_checker is not a multipaths keyword).
//!
//! Autodetection, as propsel.c does it:
//! - detect_prio (overrides > devices > defaults, default yes): when the
//!   SCSI path reports TPGS, the prioritizer is `sysfs` if the kernel
//!   exposes `access_state` (and the array is not RDAC, unless TPGS is
//!   explicit-only), else `alua`. This happens *before* any configured
//!   prio, multipaths included. A configured `alua` on a path without TPGS
//!   falls back to `const`.
//! - detect_checker (same sources): TPGS paths get `tur` (RDAC arrays keep
//!   `rdac`), before any configured checker.
//! - detect_pgpolicy (0.9.7+): a path whose prio ended up alua or sysfs
//!   gets group_by_prio (group_by_tpg with detect_pgpolicy_use_tpg) before
//!   any configured policy. multipath-tools decides this per map (all
//!   paths alua/sysfs); per path here.
//! - hardware_handler: a handler the kernel already attached (dh_state) is
//!   kept (retain_attached_hw_handler); "1 alua" is dropped on a path
//!   without TPGS and chosen for a TPGS path left at the built-in default.
//!
//! Approximations (documented): "RDAC array" is decided from the matched
//! device entries' path_checker (multipath-tools reads VPD page 0xC9);
//! NVMe ANA detection is not done (PathInfo has no ANA data).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use super::hwtable::{BUILTIN_DEFAULTS, BUILTIN_DEVICES};
use super::ingest::split_invert;
use super::{posix, Attrs, Blacklist, Config, Entry, Value};
use crate::model::{
    Failback, FilterResult, FindMultipaths, NoPathRetry, Origin, Origins, PathFilter, PathInfo,
    PgPolicy, RrWeight, SanPathErr, Settings, Tmo, Transport,
};

mod key;
mod settings;
pub(crate) use key::PathKey;
use key::SettingsCache;
pub(crate) use settings::resolve;

/// The built-in device entries as `Entry` values.
pub(crate) static BUILTIN_ENTRIES: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    BUILTIN_DEVICES
        .iter()
        .map(|e| Entry {
            attrs: e
                .iter()
                .map(|(k, v)| (k.to_string(), Value::new(*v)))
                .collect(),
            loc: None,
        })
        .collect()
});

static BUILTIN_COMPILED: LazyLock<Vec<DeviceMatcher>> =
    LazyLock::new(|| BUILTIN_ENTRIES.iter().map(DeviceMatcher::new).collect());

pub(crate) const DEFAULT_DEVNODE_RULE: &str = "!^(sd[a-z]|dasd[a-z]|nvme[0-9])";
pub(crate) const DEFAULT_PROPERTY_EXCEPTION: &str = "(SCSI_IDENT_|ID_WWN)";

/// vendor/product/revision regexes of one device entry.
pub(crate) struct DeviceMatcher {
    vendor: Option<Regex>,
    product: Option<Regex>,
    revision: Option<Regex>,
    valid: bool,
}

impl DeviceMatcher {
    fn new(e: &Entry) -> Self {
        let mut valid = true;
        let mut c = |kw: &str| match e.get(kw) {
            Some(p) => match posix::compile(p) {
                Ok(r) => Some(r),
                Err(_) => {
                    valid = false;
                    None
                }
            },
            None => None,
        };
        let vendor = c("vendor");
        let product = c("product");
        let revision = c("revision");
        // No vendor at all would match everything: never match.
        let valid = valid && vendor.is_some();
        DeviceMatcher {
            vendor,
            product,
            revision,
            valid,
        }
    }

    fn matches(&self, vendor: &str, product: &str, revision: &str) -> bool {
        let ok = |r: &Option<Regex>, s: &str| r.as_ref().is_none_or(|r| r.is_match(s));
        self.valid
            && ok(&self.vendor, vendor)
            && ok(&self.product, product)
            && ok(&self.revision, revision)
    }
}

/// Whether a device entry's vendor/product/revision regexes match.
pub(crate) fn entry_matches(e: &Entry, vendor: &str, product: &str, revision: &str) -> bool {
    DeviceMatcher::new(e).matches(vendor, product, revision)
}

/// One compiled blacklist pattern with its description.
pub(crate) struct Rule {
    re: Regex,
    invert: bool,
    /// e.g. `devnode "!^sd" (/etc/multipath.conf:4)`.
    pub(crate) by: String,
    pub(crate) text: String,
    pub(crate) builtin: bool,
}

impl Rule {
    fn new(kw: &str, text: &str, origin: &str, builtin: bool) -> Option<Rule> {
        let (invert, pat) = split_invert(text);
        let re = posix::compile(pat).ok()?;
        Some(Rule {
            re,
            invert,
            by: format!("{kw} \"{text}\" ({origin})"),
            text: text.to_string(),
            builtin,
        })
    }
    fn matches(&self, s: &str) -> bool {
        self.re.is_match(s) != self.invert
    }
}

pub(crate) struct DeviceRule {
    vendor: Option<(Regex, bool)>,
    product: Option<(Regex, bool)>,
    pub(crate) vendor_text: String,
    pub(crate) product_text: String,
    pub(crate) by: String,
    pub(crate) builtin: bool,
}

impl DeviceRule {
    fn new(
        vendor: Option<&str>,
        product: Option<&str>,
        origin: &str,
        builtin: bool,
    ) -> Option<Self> {
        let comp = |t: Option<&str>| -> Result<Option<(Regex, bool)>, ()> {
            match t {
                None => Ok(None),
                Some(t) => {
                    let (inv, p) = split_invert(t);
                    posix::compile(p).map(|r| Some((r, inv))).map_err(|_| ())
                }
            }
        };
        let v = comp(vendor).ok()?;
        let p = comp(product).ok()?;
        if v.is_none() && p.is_none() {
            return None;
        }
        Some(DeviceRule {
            vendor: v,
            product: p,
            vendor_text: vendor.unwrap_or("").to_string(),
            product_text: product.unwrap_or("").to_string(),
            by: format!(
                "device vendor \"{}\" product \"{}\" ({origin})",
                vendor.unwrap_or(""),
                product.unwrap_or("")
            ),
            builtin,
        })
    }
    fn matches(&self, vendor: &str, product: &str) -> bool {
        let ok = |r: &Option<(Regex, bool)>, s: &str| {
            r.as_ref().is_none_or(|(re, inv)| re.is_match(s) != *inv)
        };
        ok(&self.vendor, vendor) && ok(&self.product, product)
    }
}

#[derive(Default)]
pub(crate) struct Rules {
    pub(crate) devnode: Vec<Rule>,
    pub(crate) wwid: Vec<Rule>,
    pub(crate) property: Vec<Rule>,
    pub(crate) protocol: Vec<Rule>,
    pub(crate) device: Vec<DeviceRule>,
}

fn origin_of(v: &Value) -> String {
    v.loc
        .as_ref()
        .map(|l| l.file_line())
        .unwrap_or_else(|| "built-in".to_string())
}

impl Rules {
    fn from(bl: &Blacklist, section: &str) -> Rules {
        let mk = |kw: &str, list: &[Value]| -> Vec<Rule> {
            list.iter()
                .filter_map(|v| {
                    Rule::new(&format!("{section} {kw}"), &v.text, &origin_of(v), false)
                })
                .collect()
        };
        Rules {
            devnode: mk("devnode", &bl.devnode),
            wwid: mk("wwid", &bl.wwid),
            property: mk("property", &bl.property),
            protocol: mk("protocol", &bl.protocol),
            device: bl
                .device
                .iter()
                .filter_map(|e| {
                    let origin = e
                        .loc
                        .as_ref()
                        .map(|l| l.file_line())
                        .unwrap_or_else(|| "built-in".into());
                    let mut r = DeviceRule::new(e.get("vendor"), e.get("product"), &origin, false)?;
                    r.by = format!("{section} {}", r.by);
                    Some(r)
                })
                .collect(),
        }
    }

    /// Remove rules whose text repeats an earlier one (merge_blacklist).
    fn dedup(&mut self) {
        fn d(v: &mut Vec<Rule>) {
            let mut seen = std::collections::HashSet::new();
            v.retain(|r| seen.insert(r.text.clone()));
        }
        d(&mut self.devnode);
        d(&mut self.wwid);
        d(&mut self.property);
        d(&mut self.protocol);
        let mut seen = std::collections::HashSet::new();
        self.device
            .retain(|r| seen.insert((r.vendor_text.clone(), r.product_text.clone())));
    }
}

/// Everything regex-shaped in a `Config`, compiled once.
pub(crate) struct Compiled {
    user_devices: Vec<DeviceMatcher>,
    pub(crate) blacklist: Rules,
    pub(crate) exceptions: Rules,
    /// Settings resolved so far, per path key.
    settings: SettingsCache,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compiled { .. }")
    }
}

impl Compiled {
    pub(crate) fn new(cfg: &Config) -> Compiled {
        let mut blacklist = Rules::from(&cfg.blacklist, "blacklist");
        let mut exceptions = Rules::from(&cfg.blacklist_exceptions, "blacklist_exceptions");
        // Built-in rules come after the user's (setup_default_blist).
        if let Some(r) = Rule::new("blacklist devnode", DEFAULT_DEVNODE_RULE, "built-in", true) {
            blacklist.devnode.push(r);
        }
        if let Some(r) = Rule::new(
            "blacklist_exceptions property",
            DEFAULT_PROPERTY_EXCEPTION,
            "built-in",
            true,
        ) {
            exceptions.property.push(r);
        }
        // product_blacklist of every device entry, built-in then user.
        let user = cfg.devices.iter().map(|e| {
            let o = e
                .loc
                .as_ref()
                .map(|l| format!("product_blacklist of devices ({})", l.file_line()))
                .unwrap_or_default();
            (e, o)
        });
        let builtin = BUILTIN_ENTRIES.iter().map(|e| {
            (
                e,
                format!(
                    "product_blacklist of devices (built-in {}/{})",
                    e.get("vendor").unwrap_or(""),
                    e.get("product").unwrap_or("")
                ),
            )
        });
        for (e, origin) in builtin.chain(user) {
            if let (Some(v), Some(bp)) = (e.get("vendor"), e.get("product_blacklist")) {
                if let Some(mut r) = DeviceRule::new(Some(v), Some(bp), &origin, true) {
                    r.by = format!("blacklist {}", r.by);
                    blacklist.device.push(r);
                }
            }
        }
        blacklist.dedup();
        exceptions.dedup();
        Compiled {
            user_devices: cfg.devices.iter().map(DeviceMatcher::new).collect(),
            blacklist,
            exceptions,
            settings: SettingsCache::default(),
        }
    }
}

/// A source of attributes, with how to describe it.
struct Layer<'a> {
    attrs: &'a Attrs,
    kind: LayerKind,
    /// For built-in devices: "built-in VENDOR/PRODUCT".
    label: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LayerKind {
    Multipath,
    Protocol,
    Overrides,
    Device,
    Defaults,
}

impl Layer<'_> {
    fn origin(&self, v: &Value) -> String {
        let at = v.loc.as_ref().map(|l| l.file_line());
        let name = match self.kind {
            LayerKind::Multipath => "multipaths",
            LayerKind::Protocol => "overrides protocol",
            LayerKind::Overrides => "overrides",
            LayerKind::Device => "devices",
            LayerKind::Defaults => "defaults",
        };
        match (self.kind, at) {
            (LayerKind::Protocol, Some(at)) => format!("{name} {} ({at})", self.label),
            (_, Some(at)) => format!("{name} ({at})"),
            (_, None) => format!("{name} ({})", self.label),
        }
    }
}

/// The layers that apply to a path, highest precedence first.
fn layers<'a>(cfg: &'a Config, info: Option<&PathKey>) -> Vec<Layer<'a>> {
    let mut out = Vec::new();
    if let Some(info) = info {
        if let Some(wwid) = info.wwid.as_deref().filter(|w| !w.is_empty()) {
            for e in cfg.multipaths.iter().rev() {
                if e.get("wwid") == Some(wwid) {
                    out.push(Layer {
                        attrs: &e.attrs,
                        kind: LayerKind::Multipath,
                        label: String::new(),
                    });
                }
            }
        }
        let proto = info.transport.protocol_name();
        for e in cfg.overrides_protocols.iter().rev() {
            if e.get("type") == Some(proto) {
                out.push(Layer {
                    attrs: &e.attrs,
                    kind: LayerKind::Protocol,
                    label: proto.to_string(),
                });
            }
        }
    }
    out.push(Layer {
        attrs: &cfg.overrides,
        kind: LayerKind::Overrides,
        label: String::new(),
    });
    if let Some(info) = info {
        let (v, p, r) = (
            info.vendor.as_str(),
            info.product.as_str(),
            info.rev.as_str(),
        );
        let compiled = cfg.compiled();
        for (i, e) in cfg.devices.iter().enumerate().rev() {
            if compiled
                .user_devices
                .get(i)
                .is_some_and(|m| m.matches(v, p, r))
            {
                out.push(Layer {
                    attrs: &e.attrs,
                    kind: LayerKind::Device,
                    label: String::new(),
                });
            }
        }
        for (i, e) in BUILTIN_ENTRIES.iter().enumerate().rev() {
            if BUILTIN_COMPILED.get(i).is_some_and(|m| m.matches(v, p, r)) {
                out.push(Layer {
                    attrs: &e.attrs,
                    kind: LayerKind::Device,
                    label: format!(
                        "built-in {}/{}",
                        e.get("vendor").unwrap_or(""),
                        e.get("product").unwrap_or("")
                    ),
                });
            }
        }
    }
    out.push(Layer {
        attrs: &cfg.defaults,
        kind: LayerKind::Defaults,
        label: String::new(),
    });
    out
}

/// The matching device entries (user first, later first), for explain.
pub(crate) fn matching_devices(
    cfg: &Config,
    vendor: &str,
    product: &str,
    rev: &str,
) -> Vec<String> {
    let key = PathKey {
        vendor: vendor.trim_end().into(),
        product: product.trim_end().into(),
        rev: rev.trim_end().into(),
        ..Default::default()
    };
    layers(cfg, Some(&key))
        .iter()
        .filter(|l| l.kind == LayerKind::Device)
        .map(|l| {
            let v = l.attrs.get("vendor").map(|v| v.text.as_str()).unwrap_or("");
            let p = l
                .attrs
                .get("product")
                .map(|v| v.text.as_str())
                .unwrap_or("");
            let at = if l.label.is_empty() {
                l.attrs
                    .get("vendor")
                    .and_then(|v| v.loc.as_ref())
                    .map(|loc| loc.file_line())
                    .unwrap_or_default()
            } else {
                "built-in".to_string()
            };
            format!("vendor \"{v}\" product \"{p}\" ({at})")
        })
        .collect()
}

fn builtin_default(kw: &str) -> Option<&'static str> {
    BUILTIN_DEFAULTS
        .iter()
        .find(|(k, _)| *k == kw)
        .map(|(_, v)| *v)
}

struct Resolver<'a> {
    layers: Vec<Layer<'a>>,
    origins: BTreeMap<String, Origin>,
}

impl Resolver<'_> {
    /// The configured text for `kw` and its origin, if any layer sets it.
    fn find(&self, kw: &str) -> Option<(String, String)> {
        self.layers
            .iter()
            .find_map(|l| l.attrs.get(kw).map(|v| (v.text.clone(), l.origin(v))))
    }

    /// Like `find`, falling back to the built-in default.
    fn get(&mut self, kw: &str) -> Option<String> {
        match self.find(kw) {
            Some((t, o)) => {
                self.note(kw, o);
                Some(t)
            }
            None => {
                self.note(kw, "built-in default".into());
                builtin_default(kw).map(str::to_string)
            }
        }
    }

    fn note(&mut self, kw: &str, source: String) {
        self.origins.insert(kw.to_string(), Origin { source });
    }

    fn yes(&mut self, kw: &str, default: bool) -> bool {
        match self.get(kw).as_deref() {
            Some("yes") => true,
            Some("no") => false,
            _ => default,
        }
    }

    fn num<T: std::str::FromStr>(&mut self, kw: &str, default: T) -> T {
        self.get(kw).and_then(|t| t.parse().ok()).unwrap_or(default)
    }

    /// Whether the device entries make this an RDAC array (approximation
    /// of check_rdac, which reads VPD page 0xC9).
    fn rdac(&self) -> bool {
        self.layers
            .iter()
            .filter(|l| l.kind == LayerKind::Device)
            .find_map(|l| l.attrs.get("path_checker"))
            .is_some_and(|v| v.text == "rdac")
    }
}

/// Daemon-wide settings from `defaults` (and the built-in defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonDefaults {
    pub verbosity: u32,
    pub polling_interval: u32,
    pub max_polling_interval: u32,
    pub find_multipaths: FindMultipaths,
    pub find_multipaths_timeout: i32,
    pub user_friendly_names: bool,
    pub alias_prefix: String,
    pub uid_attribute: String,
    pub queue_without_daemon: bool,
    /// None: each path's `device/timeout`.
    pub checker_timeout: Option<u32>,
    pub flush_on_last_del: bool,
    /// Control socket client timeout, milliseconds.
    pub uxsock_timeout_ms: u32,
    pub allow_usb_devices: bool,
    /// `max_fds`: the open-file limit to run with; None for `max` (the
    /// kernel's nr_open).
    pub max_fds: Option<u64>,
}

/// Resolved settings and where each came from (`config explain`); the
/// policy core takes the settings alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    pub settings: Settings,
    pub origins: Origins,
}

impl std::ops::Deref for Explained {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl Config {
    /// Settings for one path. See the module docs of `config` and
    /// `resolve` for precedence and autodetection.
    pub fn resolve(&self, info: &PathInfo) -> Settings {
        self.cached_settings(Some(PathKey::of(self, info)))
    }

    /// [`Config::resolve`] with where each setting came from.
    pub fn resolve_explained(&self, info: &PathInfo) -> Explained {
        resolve(self, Some(&PathKey::of(self, info)))
    }

    /// Settings of no particular device: defaults over built-in defaults,
    /// no autodetection.
    pub fn defaults_settings(&self) -> Settings {
        self.cached_settings(None)
    }

    fn cached_settings(&self, key: Option<PathKey>) -> Settings {
        self.compiled()
            .settings
            .get_or_resolve(key, |k| resolve(self, k).settings)
    }

    /// [`Config::defaults_settings`] with where each came from.
    pub fn defaults_explained(&self) -> Explained {
        resolve(self, None)
    }

    /// Daemon-wide values.
    pub fn daemon(&self) -> DaemonDefaults {
        let s = self.defaults_settings();
        let get = |kw: &str| -> Option<String> {
            self.defaults
                .get(kw)
                .map(|v| v.text.clone())
                .or_else(|| builtin_default(kw).map(str::to_string))
        };
        DaemonDefaults {
            verbosity: get("verbosity").and_then(|v| v.parse().ok()).unwrap_or(2),
            polling_interval: s.polling_interval,
            max_polling_interval: s.max_polling_interval,
            find_multipaths: s.find_multipaths,
            find_multipaths_timeout: s.find_multipaths_timeout,
            user_friendly_names: s.user_friendly_names,
            alias_prefix: get("alias_prefix").unwrap_or_else(|| "mpath".into()),
            uid_attribute: s.uid_attribute,
            queue_without_daemon: s.queue_without_daemon,
            checker_timeout: s.checker_timeout,
            flush_on_last_del: s.flush_on_last_del,
            uxsock_timeout_ms: get("uxsock_timeout")
                .and_then(|v| v.parse().ok())
                .unwrap_or(4000),
            allow_usb_devices: get("allow_usb_devices").as_deref() == Some("yes"),
            max_fds: get("max_fds").and_then(|v| v.parse().ok()),
        }
    }

    /// Drop the compiled-regex cache after changing fields by hand.
    pub fn refresh(&mut self) {
        self.compiled = Default::default();
    }
}

fn check_list(bl: &[Rule], el: &[Rule], s: &str, what: &str) -> Option<FilterResult> {
    if let Some(e) = el.iter().find(|r| r.matches(s)) {
        return Some(FilterResult::Excepted {
            by: format!("{} matched {what} \"{s}\"", e.by),
        });
    }
    bl.iter()
        .find(|r| r.matches(s))
        .map(|b| FilterResult::Blacklisted {
            by: format!("{} matched {what} \"{s}\"", b.by),
        })
}

impl PathFilter for Config {
    /// multipath-tools' order: property, devnode, device, protocol, wwid.
    /// The first criterion that blacklists decides; within one criterion an
    /// exception beats a blacklist entry. When nothing blacklists, the last
    /// exception that matched is reported.
    fn filter_path(&self, info: &PathInfo) -> FilterResult {
        let c = self.compiled();
        let mut excepted: Option<FilterResult> = None;
        let mut step = |r: Option<FilterResult>| -> Option<FilterResult> {
            match r {
                Some(b @ FilterResult::Blacklisted { .. }) => Some(b),
                Some(e @ FilterResult::Excepted { .. }) => {
                    excepted = Some(e);
                    None
                }
                _ => None,
            }
        };
        // property: the first udev property (in name order) matching an
        // exception or a blacklist rule decides; if none matches and the
        // uid_attribute property is present, the device is blacklisted.
        if !info.properties.is_empty() {
            let uid = self.resolve(info).uid_attribute;
            let mut res = None;
            for name in info.properties.keys() {
                if let Some(e) = c.exceptions.property.iter().find(|r| r.matches(name)) {
                    res = Some(FilterResult::Excepted {
                        by: format!("{} matched udev property {name}", e.by),
                    });
                    break;
                }
                if let Some(b) = c.blacklist.property.iter().find(|r| r.matches(name)) {
                    res = Some(FilterResult::Blacklisted {
                        by: format!("{} matched udev property {name}", b.by),
                    });
                    break;
                }
            }
            if res.is_none() && !uid.is_empty() && info.properties.contains_key(&uid) {
                let rules: Vec<&str> = c
                    .exceptions
                    .property
                    .iter()
                    .map(|r| r.by.as_str())
                    .collect();
                res = Some(FilterResult::Blacklisted {
                    by: format!(
                        "udev property missing: no udev property matches {}",
                        rules.join(" or ")
                    ),
                });
            }
            if let Some(b) = step(res) {
                return b;
            }
        }
        if let Some(b) = step(check_list(
            &c.blacklist.devnode,
            &c.exceptions.devnode,
            &info.dev,
            "device node",
        )) {
            return b;
        }
        let (v, p) = (info.vendor.trim_end(), info.product.trim_end());
        let dev = if let Some(e) = c.exceptions.device.iter().find(|r| r.matches(v, p)) {
            Some(FilterResult::Excepted {
                by: format!("{} matched \"{v}\" \"{p}\"", e.by),
            })
        } else {
            c.blacklist
                .device
                .iter()
                .find(|r| r.matches(v, p))
                .map(|b| FilterResult::Blacklisted {
                    by: format!("{} matched \"{v}\" \"{p}\"", b.by),
                })
        };
        if let Some(b) = step(dev) {
            return b;
        }
        if info.transport == Transport::Usb && !self.daemon().allow_usb_devices {
            return FilterResult::Blacklisted {
                by: "allow_usb_devices \"no\": USB devices are skipped".into(),
            };
        }
        let proto = info.transport.protocol_name();
        if let Some(b) = step(check_list(
            &c.blacklist.protocol,
            &c.exceptions.protocol,
            proto,
            "protocol",
        )) {
            return b;
        }
        if let Some(w) = info.wwid.as_deref() {
            if let Some(b) = step(check_list(&c.blacklist.wwid, &c.exceptions.wwid, w, "wwid")) {
                return b;
            }
        }
        excepted.unwrap_or(FilterResult::Allowed)
    }

    fn filter_devnode(&self, dev: &str) -> FilterResult {
        let c = self.compiled();
        check_list(
            &c.blacklist.devnode,
            &c.exceptions.devnode,
            dev,
            "device node",
        )
        .unwrap_or(FilterResult::Allowed)
    }
}
