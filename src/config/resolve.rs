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
use super::parser::split_invert;
use super::{posix, Attrs, Blacklist, Config, Entry, Value};
use crate::model::{
    Failback, FilterResult, FindMultipaths, NoPathRetry, Origin, PathFilter, PathInfo, PgPolicy,
    RrWeight, SanPathErr, Settings, Tmo, Transport,
};

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
fn layers<'a>(cfg: &'a Config, info: Option<&PathInfo>) -> Vec<Layer<'a>> {
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
            info.vendor.trim_end(),
            info.product.trim_end(),
            info.rev.trim_end(),
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
    let info = PathInfo {
        vendor: vendor.into(),
        product: product.into(),
        rev: rev.into(),
        ..Default::default()
    };
    layers(cfg, Some(&info))
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

/// san_path_err_* when all three are set above 0; else delay_watch_checks
/// and delay_wait_checks mapped onto it as multipath-tools 0.9 maps them
/// (threshold 1, forget_rate delay_watch_checks, recovery_time
/// delay_wait_checks x max_polling_interval).
fn san_path_err(
    r: &mut Resolver<'_>,
    watch: Option<u32>,
    wait: Option<u32>,
    max_polling_interval: u32,
) -> Option<SanPathErr> {
    let t = opt_no(r.get("san_path_err_threshold")).filter(|&v| v > 0);
    let f = opt_no(r.get("san_path_err_forget_rate")).filter(|&v| v > 0);
    let rt = opt_no(r.get("san_path_err_recovery_time")).filter(|&v| v > 0);
    if let (Some(threshold), Some(forget_rate), Some(recovery_time)) = (t, f, rt) {
        return Some(SanPathErr {
            threshold,
            forget_rate,
            recovery_time,
        });
    }
    if t.is_some() || f.is_some() || rt.is_some() {
        r.note(
            "san_path_err_threshold",
            "off: san_path_err_threshold, _forget_rate and _recovery_time must all be set".into(),
        );
        return None;
    }
    let (watch, wait) = (watch.filter(|&v| v > 0)?, wait.filter(|&v| v > 0)?);
    r.note(
        "san_path_err_threshold",
        format!(
            "delay_watch_checks {watch} / delay_wait_checks {wait}: threshold 1, forget_rate {watch}, recovery_time {wait} x max_polling_interval {max_polling_interval} s"
        ),
    );
    Some(SanPathErr {
        threshold: 1,
        forget_rate: watch,
        recovery_time: wait.saturating_mul(max_polling_interval.max(1)),
    })
}

fn opt_no(t: Option<String>) -> Option<u32> {
    t.and_then(|t| t.parse::<u32>().ok())
}

/// Remove `word` (and the count) from a features string.
fn remove_feature(features: &str, word: &str) -> String {
    let mut words: Vec<&str> = features.split_whitespace().collect();
    if words.is_empty() {
        return "0".into();
    }
    words.remove(0);
    words.retain(|w| *w != word);
    if words.is_empty() {
        "0".into()
    } else {
        format!("{} {}", words.len(), words.join(" "))
    }
}

pub(crate) fn resolve(cfg: &Config, info: Option<&PathInfo>) -> Settings {
    let mut r = Resolver {
        layers: layers(cfg, info),
        origins: BTreeMap::new(),
    };
    let p = PathCtx {
        info,
        tpgs: info.map(|i| i.tpgs).unwrap_or(0),
        scsi: info.is_some_and(|i| i.transport != Transport::Nvme),
    };
    let mut s = Settings::default();
    resolve_detection_prio_checker_pgpolicy(&mut r, &mut s, &p);
    resolve_selector_failback(&mut r, &mut s, &p);
    resolve_queueing(&mut r, &mut s, &p);
    resolve_hardware_handler(&mut r, &mut s, &p);
    resolve_naming_and_grouping(&mut r, &mut s, &p);
    resolve_timers(&mut r, &mut s, &p);
    resolve_lifecycle(&mut r, &mut s, &p);
    // A devices entry (built-in or configured) set something: smart
    // find_multipaths gives known hardware the full timeout.
    s.known_hardware = r.origins.values().any(|o| o.source.starts_with("devices"));
    s.origins = r.origins;
    s
}

/// What resolution knows of the path.
#[derive(Clone, Copy)]
struct PathCtx<'a> {
    info: Option<&'a PathInfo>,
    /// TPGS bits from INQUIRY (0 when unknown).
    tpgs: u8,
    /// A SCSI path (not NVMe).
    scsi: bool,
}

/// prio, prio_args, path_checker and path_grouping_policy, with
/// the detect_* rules for ALUA-capable paths.
fn resolve_detection_prio_checker_pgpolicy(
    r: &mut Resolver<'_>,
    s: &mut Settings,
    p: &PathCtx<'_>,
) {
    let d = Settings::default();
    let PathCtx { info, tpgs, scsi } = *p;
    let detect_prio = r.yes("detect_prio", d.detect_prio);
    let detect_checker = r.yes("detect_checker", d.detect_checker);
    let detect_pgpolicy = r.yes("detect_pgpolicy", d.detect_pgpolicy);
    let detect_pgpolicy_use_tpg = r.yes("detect_pgpolicy_use_tpg", d.detect_pgpolicy_use_tpg);
    let rdac = r.rdac();

    // prio / prio_args
    let (mut prio, mut prio_args);
    if detect_prio && scsi && tpgs != 0 {
        let access = info.is_some_and(|i| i.access_state.is_some());
        prio = if (tpgs == 2 || !rdac) && access {
            "sysfs"
        } else {
            "alua"
        }
        .to_string();
        prio_args = String::new();
        let why = format!(
            "detect_prio (path reports TPGS {tpgs}{})",
            if prio == "sysfs" {
                ", kernel exposes access_state"
            } else {
                ""
            }
        );
        r.note("prio", why.clone());
        r.note("prio_args", why);
    } else {
        match r.layers.iter().position(|l| l.attrs.contains_key("prio")) {
            Some(i) => {
                let l = &r.layers[i];
                let v = &l.attrs["prio"];
                prio = v.text.clone();
                let po = l.origin(v);
                // Device entries: the first one with prio_args gives the
                // args (set_prio_from_vec); other layers: the same layer.
                let args = if l.kind == LayerKind::Device {
                    r.layers[i..]
                        .iter()
                        .filter(|l| l.kind == LayerKind::Device)
                        .find_map(|l| {
                            l.attrs
                                .get("prio_args")
                                .map(|v| (v.text.clone(), l.origin(v)))
                        })
                } else {
                    l.attrs
                        .get("prio_args")
                        .map(|v| (v.text.clone(), l.origin(v)))
                };
                r.note("prio", po.clone());
                match args {
                    Some((a, o)) => {
                        prio_args = a;
                        r.note("prio_args", o);
                    }
                    None => {
                        prio_args = String::new();
                        r.note("prio_args", po);
                    }
                }
            }
            None => {
                prio = d.prio.clone();
                prio_args = String::new();
                r.note("prio", "built-in default".into());
                r.note("prio_args", "built-in default".into());
            }
        }
    }
    if prio == "alua" && tpgs == 0 && info.is_some() {
        prio = "const".into();
        prio_args = String::new();
        r.note(
            "prio",
            "emergency fallback: prio alua, but the path reports no TPGS (ALUA) support".into(),
        );
    }

    // path_checker
    let path_checker = if detect_checker && scsi && tpgs != 0 {
        if rdac {
            r.note("path_checker", "detect_checker (RDAC array)".into());
            "rdac".to_string()
        } else {
            r.note(
                "path_checker",
                format!("detect_checker (path reports TPGS {tpgs})"),
            );
            "tur".to_string()
        }
    } else {
        r.get("path_checker").unwrap_or(d.path_checker.clone())
    };

    // path_grouping_policy
    let alua_like = prio == "alua" || prio == "sysfs";
    let mut pgp = if detect_pgpolicy && alua_like && info.is_some() {
        let p = if detect_pgpolicy_use_tpg {
            PgPolicy::GroupByTpg
        } else {
            PgPolicy::GroupByPrio
        };
        r.note(
            "path_grouping_policy",
            format!("detect_pgpolicy (prio {prio})"),
        );
        p
    } else {
        r.get("path_grouping_policy")
            .and_then(|t| t.parse().ok())
            .unwrap_or(d.path_grouping_policy)
    };
    if pgp == PgPolicy::GroupByTpg && !alua_like {
        pgp = PgPolicy::Failover;
        r.note(
            "path_grouping_policy",
            "emergency fallback: group_by_tpg needs prio alua or sysfs".into(),
        );
    }
    s.detect_prio = detect_prio;
    s.detect_checker = detect_checker;
    s.detect_pgpolicy = detect_pgpolicy;
    s.detect_pgpolicy_use_tpg = detect_pgpolicy_use_tpg;
    s.prio = prio;
    s.prio_args = prio_args;
    s.path_checker = path_checker;
    s.path_grouping_policy = pgp;
}

/// path_selector and failback.
fn resolve_selector_failback(r: &mut Resolver<'_>, s: &mut Settings, _p: &PathCtx<'_>) {
    let d = Settings::default();
    let path_selector = r.get("path_selector").unwrap_or(d.path_selector.clone());
    let failback = match r.get("failback").as_deref() {
        Some("immediate") => Failback::Immediate,
        Some("followover") => Failback::Followover,
        Some("manual") | None => Failback::Manual,
        Some(n) => n
            .parse()
            .map(Failback::Deferred)
            .unwrap_or(Failback::Manual),
    };
    s.path_selector = path_selector;
    s.failback = failback;
}

/// features and no_path_retry, reconciled as multipath-tools does, and
/// pg_init_retries from the features.
fn resolve_queueing(r: &mut Resolver<'_>, s: &mut Settings, _p: &PathCtx<'_>) {
    let d = Settings::default();
    // features and no_path_retry, reconciled as multipath-tools does.
    let mut features = r.get("features").unwrap_or(d.features.to_string());
    let npr_conf = r.find("no_path_retry");
    let mut no_path_retry = match npr_conf.as_ref().map(|(t, _)| t.as_str()) {
        Some("queue") => NoPathRetry::Queue,
        Some("fail") | Some("0") | None => NoPathRetry::Fail,
        Some(n) => n
            .parse()
            .map(NoPathRetry::Retries)
            .unwrap_or(NoPathRetry::Fail),
    };
    match &npr_conf {
        Some((_, o)) => r.note("no_path_retry", o.clone()),
        None => r.note("no_path_retry", "built-in default".into()),
    }
    if features.split_whitespace().any(|w| w == "queue_if_no_path") {
        let fo = r
            .origins
            .get("features")
            .map(|o| o.source.clone())
            .unwrap_or_default();
        if npr_conf.is_none() {
            no_path_retry = NoPathRetry::Queue;
            r.note(
                "no_path_retry",
                format!("features \"queue_if_no_path\" ({fo})"),
            );
        } else if no_path_retry != NoPathRetry::Queue {
            features = remove_feature(&features, "queue_if_no_path");
            r.note(
                "features",
                format!("{fo}; queue_if_no_path dropped because no_path_retry is {no_path_retry}"),
            );
        }
    }
    let pg_init_retries = {
        let w: Vec<&str> = features.split_whitespace().collect();
        w.iter()
            .position(|x| *x == "pg_init_retries")
            .and_then(|i| w.get(i + 1))
            .and_then(|n| n.parse().ok())
    };
    r.note(
        "pg_init_retries",
        r.origins
            .get("features")
            .map(|o| o.source.clone())
            .unwrap_or_default(),
    );
    s.features = features.parse().unwrap_or_default();
    s.no_path_retry = no_path_retry;
    s.pg_init_retries = pg_init_retries;
}

/// The hardware handler: the one the kernel attached (with
/// retain_attached_hw_handler), else configured, else detected from TPGS.
fn resolve_hardware_handler(r: &mut Resolver<'_>, s: &mut Settings, p: &PathCtx<'_>) {
    let d = Settings::default();
    let PathCtx { info, tpgs, .. } = *p;
    // hardware_handler
    let retain = r.yes("retain_attached_hw_handler", d.retain_attached_hw_handler);
    let attached = info
        .and_then(|i| i.dh_state.as_deref())
        .map(str::trim)
        .filter(|h| !h.is_empty() && *h != "detached");
    let mut hardware_handler = match (retain, attached) {
        (true, Some(h)) => {
            r.note(
                "hardware_handler",
                format!("retained: the kernel attached scsi_dh \"{h}\""),
            );
            format!("1 {h}")
        }
        _ => r
            .get("hardware_handler")
            .unwrap_or(d.hardware_handler.to_string()),
    };
    if info.is_some() {
        let from_default = r
            .origins
            .get("hardware_handler")
            .is_some_and(|o| o.source == "built-in default");
        if tpgs != 0 && hardware_handler == "0" && from_default {
            hardware_handler = "1 alua".into();
            r.note("hardware_handler", format!("autodetected from TPGS {tpgs}"));
        } else if tpgs == 0 && hardware_handler == "1 alua" {
            hardware_handler = "0".into();
            r.note(
                "hardware_handler",
                "autodetected: \"1 alua\" dropped, the path reports no TPGS".into(),
            );
        }
    }
    s.retain_attached_hw_handler = retain;
    s.hardware_handler = hardware_handler.parse().unwrap_or_default();
}

/// Path group weights, the map's name and find_multipaths.
fn resolve_naming_and_grouping(r: &mut Resolver<'_>, s: &mut Settings, _p: &PathCtx<'_>) {
    let d = Settings::default();
    let rr_weight = match r.get("rr_weight").as_deref() {
        Some("priorities") => RrWeight::Priorities,
        _ => RrWeight::Uniform,
    };
    let rr_min_io = r.num("rr_min_io", d.rr_min_io);
    let rr_min_io_rq = r.num("rr_min_io_rq", d.rr_min_io_rq);
    let alias = r.find("alias").map(|(t, o)| {
        r.note("alias", o);
        t
    });
    if alias.is_none() {
        r.note(
            "alias",
            "none (the map is named by WWID or user_friendly_names)".into(),
        );
    }
    let user_friendly_names = r.yes("user_friendly_names", d.user_friendly_names);
    let find_multipaths = match r.get("find_multipaths").as_deref() {
        Some("yes") | Some("on") => FindMultipaths::Yes,
        Some("no") | Some("off") => FindMultipaths::No,
        Some("greedy") => FindMultipaths::Greedy,
        Some("smart") => FindMultipaths::Smart,
        _ => FindMultipaths::Strict,
    };
    let find_multipaths_timeout = r.num("find_multipaths_timeout", d.find_multipaths_timeout);
    s.rr_weight = rr_weight;
    s.rr_min_io = rr_min_io;
    s.rr_min_io_rq = rr_min_io_rq;
    s.alias = alias;
    s.user_friendly_names = user_friendly_names;
    s.find_multipaths = find_multipaths;
    s.find_multipaths_timeout = find_multipaths_timeout;
}

/// Check intervals and timeouts, transport timeouts and flap damping.
fn resolve_timers(r: &mut Resolver<'_>, s: &mut Settings, p: &PathCtx<'_>) {
    let d = Settings::default();
    let PathCtx { info, .. } = *p;
    let mut polling_interval = r.num("polling_interval", d.polling_interval);
    let max_polling_interval = match r.find("max_polling_interval") {
        Some((t, o)) => {
            r.note("max_polling_interval", o);
            t.parse().unwrap_or(d.max_polling_interval)
        }
        None => {
            r.note(
                "max_polling_interval",
                "built-in default (4 x polling_interval)".into(),
            );
            polling_interval.saturating_mul(4)
        }
    };
    if polling_interval > max_polling_interval {
        polling_interval = max_polling_interval;
        r.note("polling_interval", "capped at max_polling_interval".into());
    }
    let checker_timeout = match r.find("checker_timeout") {
        Some((t, o)) => {
            r.note("checker_timeout", o);
            t.parse().ok()
        }
        None => {
            let t = info.and_then(|i| i.timeout_secs);
            r.note(
                "checker_timeout",
                match t {
                    Some(t) => format!("kernel: /sys/block/DEV/device/timeout ({t} s)"),
                    None => "kernel: /sys/block/DEV/device/timeout (else 30 s)".into(),
                },
            );
            None
        }
    };
    let fast_io_fail_tmo = match r.get("fast_io_fail_tmo").as_deref() {
        Some("off") => None,
        Some(n) => n.parse().ok(),
        None => d.fast_io_fail_tmo,
    };
    let dev_loss_tmo = match r.get("dev_loss_tmo").as_deref() {
        Some("infinity") => Some(u32::MAX),
        Some(n) => n.parse().ok(),
        None => None,
    };
    let eh_deadline = match r.get("eh_deadline").as_deref() {
        Some("off") => Some(Tmo::Off),
        Some(n) => n.parse().ok().map(Tmo::Secs),
        None => None,
    };
    let delay_watch_checks = opt_no(r.get("delay_watch_checks"));
    let delay_wait_checks = opt_no(r.get("delay_wait_checks"));
    let san_path_err = san_path_err(
        r,
        delay_watch_checks,
        delay_wait_checks,
        max_polling_interval,
    );
    s.polling_interval = polling_interval;
    s.max_polling_interval = max_polling_interval;
    s.checker_timeout = checker_timeout;
    s.fast_io_fail_tmo = fast_io_fail_tmo;
    s.dev_loss_tmo = dev_loss_tmo;
    s.eh_deadline = eh_deadline;
    s.delay_watch_checks = delay_watch_checks;
    s.delay_wait_checks = delay_wait_checks;
    s.san_path_err = san_path_err;
}

/// What happens to maps and paths around the daemon: last path gone,
/// kpartx, udev identity, and the prio args' exclusive_pref_bit.
fn resolve_lifecycle(r: &mut Resolver<'_>, s: &mut Settings, _p: &PathCtx<'_>) {
    let d = Settings::default();
    let flush_on_last_del = matches!(
        r.get("flush_on_last_del").as_deref(),
        Some("yes" | "always")
    );
    let queue_without_daemon = r.yes("queue_without_daemon", d.queue_without_daemon);
    let deferred_remove = r.yes("deferred_remove", d.deferred_remove);
    let uid_attribute = r.get("uid_attribute").unwrap_or(d.uid_attribute.clone());
    let skip_kpartx = r.yes("skip_kpartx", d.skip_kpartx);
    let exclusive_pref_bit = s
        .prio_args
        .split_whitespace()
        .any(|w| w == "exclusive_pref_bit");
    let po = r.origins.get("prio_args").cloned();
    if let Some(po) = po {
        r.origins.insert("exclusive_pref_bit".into(), po);
    }
    s.flush_on_last_del = flush_on_last_del;
    s.queue_without_daemon = queue_without_daemon;
    s.deferred_remove = deferred_remove;
    s.uid_attribute = uid_attribute;
    s.skip_kpartx = skip_kpartx;
    s.exclusive_pref_bit = exclusive_pref_bit;
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

impl Config {
    /// Settings for one path. See the module docs of `config` and
    /// `resolve` for precedence and autodetection.
    pub fn resolve(&self, info: &PathInfo) -> Settings {
        resolve(self, Some(info))
    }

    /// Settings of no particular device: defaults over built-in defaults,
    /// no autodetection.
    pub fn defaults_settings(&self) -> Settings {
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
            let uid = resolve(self, Some(info)).uid_attribute;
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
