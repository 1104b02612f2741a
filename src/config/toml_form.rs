//! The TOML form of the same model. Keywords are multipath.conf's; yes/no
//! values are booleans, numbers are integers, the rest strings:
//!
//! ```toml
//! [defaults]
//! polling_interval = 10
//! user_friendly_names = false
//!
//! [blacklist]
//! devnode = ["^sda$"]
//! device = [{ vendor = "QEMU", product = ".*" }]
//!
//! [[devices]]
//! vendor = "^eSSM"
//! product = ".*"
//! no_path_retry = "queue"
//!
//! [overrides]
//! fast_io_fail_tmo = 5
//! [[overrides.protocol]]
//! type = "scsi:iscsi"
//! dev_loss_tmo = 60
//!
//! [[multipaths]]
//! wwid = "36001405..."
//! alias = "data"
//! ```
//!
//! Values go through the same checks as multipath.conf values.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::diag::{Diagnostic, Loc, Severity};
use super::ingest::{check_rule, ingest};
use super::keywords::{self, Kind, SectionKind};
use super::{Attrs, Blacklist, Config, Entry};

type Table = BTreeMap<String, toml::Value>;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlConfig {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    defaults: Table,
    #[serde(default, skip_serializing_if = "TomlBlacklist::is_empty")]
    blacklist: TomlBlacklist,
    #[serde(default, skip_serializing_if = "TomlBlacklist::is_empty")]
    blacklist_exceptions: TomlBlacklist,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    devices: Vec<Table>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    overrides: Option<TomlOverrides>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    multipaths: Vec<Table>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlBlacklist {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    devnode: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    wwid: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    property: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    protocol: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    device: Vec<TomlBlDevice>,
}

impl TomlBlacklist {
    fn is_empty(&self) -> bool {
        self.devnode.is_empty()
            && self.wwid.is_empty()
            && self.property.is_empty()
            && self.protocol.is_empty()
            && self.device.is_empty()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlBlDevice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    product: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TomlOverrides {
    #[serde(flatten)]
    attrs: Table,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    protocol: Vec<Table>,
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> u32 {
    text.get(..offset.min(text.len()))
        .map(|t| t.matches('\n').count() as u32 + 1)
        .unwrap_or(0)
}

fn value_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(if *b { "yes" } else { "no" }.to_string()),
        _ => None,
    }
}

/// Where a key is written, found by a plain text search (the `toml` crate
/// gives spans only for parse errors). Good enough to point at the line.
fn find_key(text: &str, key: &str, from: usize) -> usize {
    let mut pos = from.min(text.len());
    while let Some(i) = text.get(pos..).and_then(|t| t.find(key)) {
        let at = pos + i;
        let before_ok = at == 0
            || text
                .get(..at)
                .unwrap_or("")
                .chars()
                .next_back()
                .is_some_and(|c| c == '\n' || c == ' ' || c == '{' || c == ',' || c == '\t');
        let after = text.get(at + key.len()..).unwrap_or("").trim_start();
        if before_ok && after.starts_with('=') {
            return at;
        }
        pos = at + key.len();
    }
    from
}

struct Ctx<'a> {
    text: &'a str,
    file: Arc<str>,
    diags: &'a mut Vec<Diagnostic>,
    /// Search position: keys are looked up after the previous one.
    cursor: usize,
}

impl Ctx<'_> {
    /// `devices[i]`: its attributes, and a warning when it lacks what
    /// makes it match one array.
    fn device(&mut self, i: usize, d: &Table) -> Entry {
        let loc = self.loc_of("vendor");
        let mut e = Entry::at(loc.clone());
        self.attrs(
            d,
            SectionKind::Device,
            &mut e.attrs,
            &format!("devices[{i}]"),
        );
        if !e.attrs.contains_key("vendor") {
            self.diags.push(Diagnostic::at(
                Severity::Error,
                &loc,
                format!("devices[{i}] has no vendor: it would match every device"),
            ));
        } else if !e.attrs.contains_key("product") {
            self.diags.push(Diagnostic::at(
                Severity::Warning,
                &loc,
                format!("devices[{i}] has no product: it applies to every product of the vendor"),
            ));
        }
        e
    }

    /// `multipaths[i]`: its attributes; without a wwid it never matches.
    fn multipath(&mut self, i: usize, m: &Table) -> Entry {
        let loc = self.loc_of("wwid");
        let mut e = Entry::at(loc.clone());
        self.attrs(
            m,
            SectionKind::Multipath,
            &mut e.attrs,
            &format!("multipaths[{i}]"),
        );
        if !e.attrs.contains_key("wwid") {
            self.diags.push(Diagnostic::at(
                Severity::Warning,
                &loc,
                format!("multipaths[{i}] has no wwid: it never matches"),
            ));
        }
        e
    }

    fn loc_of(&mut self, key: &str) -> Loc {
        let at = find_key(self.text, key, self.cursor);
        if at != self.cursor || self.text.get(at..).is_some_and(|t| t.starts_with(key)) {
            self.cursor = at;
        }
        Loc::new(&self.file, line_of(self.text, at), 0)
    }

    fn attrs(&mut self, table: &Table, section: SectionKind, into: &mut Attrs, path: &str) {
        // Keywords in section order first, so the cursor walks forward in
        // the common case of a file written in that order.
        for (kw, v) in table {
            let loc = self.loc_of(kw);
            match value_text(v) {
                Some(t) => ingest(into, section, kw, &t, &loc, &loc, self.diags),
                None => self.diags.push(Diagnostic::at(
                    Severity::Error,
                    &loc,
                    format!("{path}.{kw}: expected a string, integer or boolean"),
                )),
            }
        }
    }

    fn blacklist(&mut self, t: &TomlBlacklist, into: &mut Blacklist, name: &str) {
        for (kw, src, dst) in [
            ("devnode", &t.devnode, &mut into.devnode),
            ("wwid", &t.wwid, &mut into.wwid),
            ("property", &t.property, &mut into.property),
            ("protocol", &t.protocol, &mut into.protocol),
        ] {
            for p in src {
                let loc = self.loc_of(kw);
                if let Some(v) = check_rule(&format!("{name} {kw}"), p, &loc, self.diags) {
                    dst.push(v);
                }
            }
        }
        for d in &t.device {
            let loc = self.loc_of("vendor");
            let mut e = Entry::at(loc.clone());
            let mut table = Table::new();
            if let Some(v) = &d.vendor {
                table.insert("vendor".into(), toml::Value::String(v.clone()));
            }
            if let Some(p) = &d.product {
                table.insert("product".into(), toml::Value::String(p.clone()));
            }
            self.attrs(&table, SectionKind::BlacklistDevice, &mut e.attrs, name);
            into.device.push(e);
        }
    }
}

pub(crate) fn parse_toml_into(
    cfg: &mut Config,
    text: &str,
    file_name: &str,
    diags: &mut Vec<Diagnostic>,
) {
    let file: Arc<str> = Arc::from(file_name);
    let parsed: TomlConfig = match toml::from_str(text) {
        Ok(p) => p,
        Err(e) => {
            diags.push(syntax_error(&e, text, &file));
            return;
        }
    };
    let mut cx = Ctx {
        text,
        file: Arc::clone(&file),
        diags,
        cursor: 0,
    };
    cx.attrs(
        &parsed.defaults,
        SectionKind::Defaults,
        &mut cfg.defaults,
        "defaults",
    );
    cx.blacklist(&parsed.blacklist, &mut cfg.blacklist, "blacklist");
    cx.blacklist(
        &parsed.blacklist_exceptions,
        &mut cfg.blacklist_exceptions,
        "blacklist_exceptions",
    );
    for (i, d) in parsed.devices.iter().enumerate() {
        cfg.devices.push(cx.device(i, d));
    }
    if let Some(o) = &parsed.overrides {
        cfg.has_overrides = true;
        cx.attrs(
            &o.attrs,
            SectionKind::Overrides,
            &mut cfg.overrides,
            "overrides",
        );
        for (i, p) in o.protocol.iter().enumerate() {
            let loc = cx.loc_of("type");
            let mut e = Entry::at(loc);
            cx.attrs(
                p,
                SectionKind::Protocol,
                &mut e.attrs,
                &format!("overrides.protocol[{i}]"),
            );
            cfg.overrides_protocols.push(e);
        }
    }
    for (i, m) in parsed.multipaths.iter().enumerate() {
        cfg.multipaths.push(cx.multipath(i, m));
    }
    cfg.refresh();
}

/// A TOML syntax error at its line and column.
fn syntax_error(e: &toml::de::Error, text: &str, file: &Arc<str>) -> Diagnostic {
    let (line, col) = e
        .span()
        .map(|s| {
            let start = s.start.min(text.len());
            let before = text.get(..start).unwrap_or("");
            let line_start = before.rfind('\n').map(|p| p + 1).unwrap_or(0);
            let col = before.get(line_start..).unwrap_or("").chars().count() as u32 + 1;
            (line_of(text, start), col)
        })
        .unwrap_or((0, 0));
    Diagnostic::at(
        Severity::Error,
        &Loc::new(file, line, col),
        e.message().to_string(),
    )
}

fn to_value(kw: &str, text: &str) -> toml::Value {
    match keywords::kind(kw) {
        Kind::YesNo => toml::Value::Boolean(text == "yes"),
        Kind::Int { .. } | Kind::IntOrWords { .. } => match text.parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => toml::Value::String(text.to_string()),
        },
        _ => toml::Value::String(text.to_string()),
    }
}

fn table(attrs: &Attrs) -> Table {
    attrs
        .iter()
        .map(|(k, v)| (k.clone(), to_value(k, &v.text)))
        .collect()
}

fn bl(b: &Blacklist) -> TomlBlacklist {
    let texts = |l: &[super::Value]| l.iter().map(|v| v.text.clone()).collect();
    TomlBlacklist {
        devnode: texts(&b.devnode),
        wwid: texts(&b.wwid),
        property: texts(&b.property),
        protocol: texts(&b.protocol),
        device: b
            .device
            .iter()
            .map(|e| TomlBlDevice {
                vendor: e.get("vendor").map(str::to_string),
                product: e.get("product").map(str::to_string),
            })
            .collect(),
    }
}

pub(crate) fn to_toml(cfg: &Config) -> String {
    let t = TomlConfig {
        defaults: table(&cfg.defaults),
        blacklist: bl(&cfg.blacklist),
        blacklist_exceptions: bl(&cfg.blacklist_exceptions),
        devices: cfg.devices.iter().map(|e| table(&e.attrs)).collect(),
        overrides: if cfg.has_overrides
            || !cfg.overrides.is_empty()
            || !cfg.overrides_protocols.is_empty()
        {
            Some(TomlOverrides {
                attrs: table(&cfg.overrides),
                protocol: cfg
                    .overrides_protocols
                    .iter()
                    .map(|e| table(&e.attrs))
                    .collect(),
            })
        } else {
            None
        },
        multipaths: cfg.multipaths.iter().map(|e| table(&e.attrs)).collect(),
    };
    toml::to_string(&t).unwrap_or_else(|e| format!("# cannot render TOML: {e}\n"))
}
