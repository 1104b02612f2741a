//! Text output: the model as multipath.conf, `show config`, `show
//! blacklist`, `show devices`, and `config explain`.

use std::fmt::Write;

use super::hwtable::BUILTIN_DEFAULTS;
use super::keywords::{self, SectionKind, Support};
use super::resolve::{self, BUILTIN_ENTRIES};
use super::{Attrs, Blacklist, Config, Entry};
use crate::model::{PathFilter, PathInfo, Settings};

/// `value` as multipath-tools prints it for `kw`.
fn fmt_value(kw: &str, value: &str) -> String {
    if keywords::prints_bare(kw, value) {
        value.to_string()
    } else {
        format!("\"{}\"", value.replace('"', "\"\""))
    }
}

fn print_attrs(out: &mut String, indent: &str, section: SectionKind, attrs: &Attrs) {
    for kw in section.keywords() {
        if let Some(v) = attrs.get(*kw) {
            let _ = writeln!(out, "{indent}{kw} {}", fmt_value(kw, &v.text));
        }
    }
    // Anything outside the section's list (only possible if the model was
    // built by hand) still prints, so nothing is lost.
    for (kw, v) in attrs {
        if !section.accepts(kw) {
            let _ = writeln!(out, "{indent}{kw} {}", fmt_value(kw, &v.text));
        }
    }
}

fn print_entry(out: &mut String, indent: &str, name: &str, section: SectionKind, e: &Entry) {
    let _ = writeln!(out, "{indent}{name} {{");
    print_attrs(out, &format!("{indent}\t"), section, &e.attrs);
    let _ = writeln!(out, "{indent}}}");
}

fn print_blacklist(out: &mut String, name: &str, bl: &Blacklist) {
    let _ = writeln!(out, "{name} {{");
    for (kw, list) in [
        ("devnode", &bl.devnode),
        ("wwid", &bl.wwid),
        ("property", &bl.property),
        ("protocol", &bl.protocol),
    ] {
        for v in list {
            let _ = writeln!(out, "\t{kw} {}", fmt_value(kw, &v.text));
        }
    }
    for e in &bl.device {
        print_entry(out, "\t", "device", SectionKind::BlacklistDevice, e);
    }
    out.push_str("}\n");
}

/// The model (what the files say) as multipath.conf.
pub(crate) fn to_conf(cfg: &Config) -> String {
    let mut out = String::new();
    if !cfg.defaults.is_empty() {
        out.push_str("defaults {\n");
        print_attrs(&mut out, "\t", SectionKind::Defaults, &cfg.defaults);
        out.push_str("}\n");
    }
    if !cfg.blacklist.is_empty() {
        print_blacklist(&mut out, "blacklist", &cfg.blacklist);
    }
    if !cfg.blacklist_exceptions.is_empty() {
        print_blacklist(&mut out, "blacklist_exceptions", &cfg.blacklist_exceptions);
    }
    if !cfg.devices.is_empty() {
        out.push_str("devices {\n");
        for e in &cfg.devices {
            print_entry(&mut out, "\t", "device", SectionKind::Device, e);
        }
        out.push_str("}\n");
    }
    if cfg.has_overrides || !cfg.overrides.is_empty() || !cfg.overrides_protocols.is_empty() {
        print_overrides(&mut out, cfg);
    }
    if !cfg.multipaths.is_empty() {
        print_multipaths(&mut out, cfg);
    }
    out
}

fn print_overrides(out: &mut String, cfg: &Config) {
    out.push_str("overrides {\n");
    print_attrs(out, "\t", SectionKind::Overrides, &cfg.overrides);
    for e in &cfg.overrides_protocols {
        print_entry(out, "\t", "protocol", SectionKind::Protocol, e);
    }
    out.push_str("}\n");
}

fn print_multipaths(out: &mut String, cfg: &Config) {
    out.push_str("multipaths {\n");
    for e in &cfg.multipaths {
        print_entry(out, "\t", "multipath", SectionKind::Multipath, e);
    }
    out.push_str("}\n");
}

fn same_id(a: &Entry, b: &Entry) -> bool {
    a.get("vendor") == b.get("vendor")
        && a.get("product") == b.get("product")
        && a.get("revision") == b.get("revision")
}

/// The effective hardware table: built-in then user entries; an entry
/// with the same vendor/product/revision strings as a later one is merged
/// into it (the later one's values win), as factorize_hwtable does.
pub(crate) fn effective_devices(cfg: &Config) -> Vec<Entry> {
    let mut list: Vec<Entry> = BUILTIN_ENTRIES
        .iter()
        .cloned()
        .chain(cfg.devices.iter().cloned())
        .collect();
    let mut i = 0;
    while i < list.len() {
        let later = (i + 1..list.len()).find(|&j| same_id(&list[i], &list[j]));
        match later {
            Some(j) => {
                let earlier = list.remove(i);
                let target = &mut list[j - 1];
                for (k, v) in earlier.attrs {
                    target.attrs.entry(k).or_insert(v);
                }
            }
            None => i += 1,
        }
    }
    list
}

/// Deprecated keywords `multipath -t` prints, with the value in force.
const FIXED_DEPRECATED: &[(&str, &str)] = &[
    ("bindings_file", "/etc/multipath/bindings"),
    ("wwids_file", "/etc/multipath/wwids"),
    ("prkeys_file", "/etc/multipath/prkeys"),
    ("disable_changed_wwids", "ignored"),
];

/// `multipathd show config` / `multipath -t`.
pub(crate) fn show_config(cfg: &Config) -> String {
    show_config_for(cfg, None, &[])
}

/// `multipathd show config local` / `multipath -T`: the devices section
/// holds only the entries that match a present path (vendor, product,
/// revision), and the multipaths section one entry for each map present
/// (`maps`: their WWIDs), as `multipath -T` prints it.
pub(crate) fn show_config_local(
    cfg: &Config,
    present: &[(String, String, String)],
    maps: &[String],
) -> String {
    show_config_for(cfg, Some(present), maps)
}

fn show_config_for(
    cfg: &Config,
    present: Option<&[(String, String, String)]>,
    maps: &[String],
) -> String {
    let mut out = String::from("defaults {\n");
    let polling: u32 = cfg
        .defaults
        .get("polling_interval")
        .and_then(|v| v.text.parse().ok())
        .unwrap_or(5);
    for kw in keywords::DEFAULTS {
        if matches!(keywords::support(kw), Support::Deprecated(_)) {
            // multipath -t still prints these four with the values in
            // force (mpathd's are fixed).
            if let Some((_, v)) = FIXED_DEPRECATED.iter().find(|(k, _)| k == kw) {
                let _ = writeln!(out, "\t{kw} {}", fmt_value(kw, v));
            }
            continue;
        }
        let value = match cfg.defaults.get(*kw) {
            Some(v) => Some(v.text.clone()),
            None if *kw == "max_polling_interval" => Some((polling.saturating_mul(4)).to_string()),
            None => BUILTIN_DEFAULTS
                .iter()
                .find(|(k, _)| k == kw)
                .map(|(_, v)| v.to_string()),
        };
        if let Some(v) = value {
            let _ = writeln!(out, "\t{kw} {}", fmt_value(kw, &v));
        }
    }
    out.push_str("}\n");
    let c = cfg.compiled();
    for (name, rules) in [
        ("blacklist", &c.blacklist),
        ("blacklist_exceptions", &c.exceptions),
    ] {
        let _ = writeln!(out, "{name} {{");
        for (kw, list) in [
            ("devnode", &rules.devnode),
            ("wwid", &rules.wwid),
            ("property", &rules.property),
            ("protocol", &rules.protocol),
        ] {
            for r in list {
                let _ = writeln!(out, "\t{kw} {}", fmt_value(kw, &r.text));
            }
        }
        for d in &rules.device {
            out.push_str("\tdevice {\n");
            let _ = writeln!(out, "\t\tvendor {}", fmt_value("vendor", &d.vendor_text));
            let _ = writeln!(out, "\t\tproduct {}", fmt_value("product", &d.product_text));
            out.push_str("\t}\n");
        }
        out.push_str("}\n");
    }
    out.push_str("devices {\n");
    for e in effective_devices(cfg) {
        if let Some(present) = present {
            if !present
                .iter()
                .any(|(v, p, r)| resolve::entry_matches(&e, v, p, r))
            {
                continue;
            }
        }
        print_entry(&mut out, "\t", "device", SectionKind::Device, &e);
    }
    out.push_str("}\n");
    print_overrides(&mut out, cfg);
    if present.is_some() {
        print_local_multipaths(&mut out, cfg, maps);
    } else if !cfg.multipaths.is_empty() {
        print_multipaths(&mut out, cfg);
    }
    out
}

/// The multipaths section for the maps present: the configured entry of
/// each, or just its WWID.
fn print_local_multipaths(out: &mut String, cfg: &Config, maps: &[String]) {
    if maps.is_empty() {
        return;
    }
    out.push_str("multipaths {\n");
    for wwid in maps {
        match cfg
            .multipaths
            .iter()
            .find(|e| e.get("wwid") == Some(wwid.as_str()))
        {
            Some(e) => print_entry(out, "\t", "multipath", SectionKind::Multipath, e),
            None => {
                let _ = writeln!(
                    out,
                    "\tmultipath {{\n\t\twwid {}\n\t}}",
                    fmt_value("wwid", wwid)
                );
            }
        }
    }
    out.push_str("}\n");
}

/// `multipathd show blacklist`.
pub(crate) fn show_blacklist(cfg: &Config) -> String {
    let c = cfg.compiled();
    let mut out = String::new();
    let tag = |builtin: bool| {
        if builtin {
            "(default rule)    "
        } else {
            "(config file rule)"
        }
    };
    let group = |out: &mut String, rules: &[resolve::Rule]| {
        if rules.is_empty() {
            out.push_str("        <empty>\n");
        }
        for r in rules {
            let _ = writeln!(out, "        {} {}", tag(r.builtin), r.text);
        }
    };
    for (title, b, e) in [
        (
            "device node rules",
            &c.blacklist.devnode,
            &c.exceptions.devnode,
        ),
        (
            "udev property rules",
            &c.blacklist.property,
            &c.exceptions.property,
        ),
        (
            "protocol rules",
            &c.blacklist.protocol,
            &c.exceptions.protocol,
        ),
        ("wwid rules", &c.blacklist.wwid, &c.exceptions.wwid),
    ] {
        let _ = writeln!(out, "{title}:\n- blacklist:");
        group(&mut out, b);
        out.push_str("- exceptions:\n");
        group(&mut out, e);
    }
    out.push_str("device rules:\n- blacklist:\n");
    for list in [&c.blacklist.device, &c.exceptions.device] {
        if list.is_empty() {
            out.push_str("        <empty>\n");
        }
        for d in list.iter() {
            let _ = writeln!(
                out,
                "        {} {}:{}",
                tag(d.builtin),
                d.vendor_text,
                d.product_text
            );
        }
        if std::ptr::eq(list, &c.blacklist.device) {
            out.push_str("- exceptions:\n");
        }
    }
    out
}

/// `multipathd show devices`.
pub(crate) fn show_devices(cfg: &Config, devices: &[(String, bool)]) -> String {
    let mut out = String::from("available block devices:\n");
    for (dev, monitored) in devices {
        let status = if *monitored {
            // multipathd prints this one with a leading space.
            " devnode whitelisted, monitored"
        } else if cfg.filter_devnode(dev).is_blacklisted() {
            "devnode blacklisted, unmonitored"
        } else {
            "devnode whitelisted, unmonitored"
        };
        let _ = writeln!(out, "    {dev} {status}");
    }
    out
}

/// (keyword, value) pairs of resolved settings, in a stable order.
pub fn settings_lines(s: &Settings) -> Vec<(&'static str, String)> {
    let opt = |o: Option<String>, none: &str| o.unwrap_or_else(|| none.to_string());
    vec![
        (
            "path_grouping_policy",
            s.path_grouping_policy.as_str().to_string(),
        ),
        ("path_selector", s.path_selector.clone()),
        ("path_checker", s.path_checker.clone()),
        ("prio", s.prio.clone()),
        ("prio_args", s.prio_args.clone()),
        ("failback", s.failback.to_string()),
        ("no_path_retry", s.no_path_retry.to_string()),
        ("features", s.features.to_string()),
        ("hardware_handler", s.hardware_handler.to_string()),
        ("rr_weight", format!("{:?}", s.rr_weight).to_lowercase()),
        ("rr_min_io", s.rr_min_io.to_string()),
        ("rr_min_io_rq", s.rr_min_io_rq.to_string()),
        (
            "pg_init_retries",
            opt(s.pg_init_retries.map(|v| v.to_string()), "unset"),
        ),
        (
            "retain_attached_hw_handler",
            yn(s.retain_attached_hw_handler),
        ),
        ("alias", opt(s.alias.clone(), "none")),
        ("user_friendly_names", yn(s.user_friendly_names)),
        (
            "find_multipaths",
            format!("{:?}", s.find_multipaths).to_lowercase(),
        ),
        (
            "find_multipaths_timeout",
            s.find_multipaths_timeout.to_string(),
        ),
        ("polling_interval", s.polling_interval.to_string()),
        ("max_polling_interval", s.max_polling_interval.to_string()),
        (
            "checker_timeout",
            opt(s.checker_timeout.map(|v| v.to_string()), "device timeout"),
        ),
        (
            "fast_io_fail_tmo",
            opt(s.fast_io_fail_tmo.map(|v| v.to_string()), "off"),
        ),
        (
            "dev_loss_tmo",
            match s.dev_loss_tmo {
                Some(u32::MAX) => "infinity".into(),
                Some(v) => v.to_string(),
                None => "kernel default".into(),
            },
        ),
        (
            "eh_deadline",
            opt(s.eh_deadline.map(|v| v.to_string()), "not set"),
        ),
        (
            "san_path_err_threshold",
            match s.san_path_err {
                Some(d) => format!(
                    "{} (forget_rate {}, recovery_time {} s)",
                    d.threshold, d.forget_rate, d.recovery_time
                ),
                None => "no".into(),
            },
        ),
        ("flush_on_last_del", yn(s.flush_on_last_del)),
        ("deferred_remove", yn(s.deferred_remove)),
        ("queue_without_daemon", yn(s.queue_without_daemon)),
        ("uid_attribute", s.uid_attribute.clone()),
        ("detect_prio", yn(s.detect_prio)),
        ("detect_checker", yn(s.detect_checker)),
        ("detect_pgpolicy", yn(s.detect_pgpolicy)),
        ("detect_pgpolicy_use_tpg", yn(s.detect_pgpolicy_use_tpg)),
        (
            "delay_watch_checks",
            opt(s.delay_watch_checks.map(|v| v.to_string()), "no"),
        ),
        (
            "delay_wait_checks",
            opt(s.delay_wait_checks.map(|v| v.to_string()), "no"),
        ),
        ("skip_kpartx", yn(s.skip_kpartx)),
        ("exclusive_pref_bit", yn(s.exclusive_pref_bit)),
        (
            "reservation_key",
            match s.reservation_key {
                crate::pr::ReservationKey::None => "not set".into(),
                k => k.to_string(),
            },
        ),
        ("all_tg_pt", yn(s.all_tg_pt)),
    ]
}

fn yn(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// `mpathd config explain VENDOR PRODUCT [REVISION] [WWID]`.
pub(crate) fn explain(
    cfg: &Config,
    vendor: &str,
    product: &str,
    revision: &str,
    wwid: Option<&str>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "device: vendor \"{vendor}\" product \"{product}\" revision \"{revision}\"{}",
        wwid.map(|w| format!(" wwid {w}")).unwrap_or_default()
    );
    let matches = resolve::matching_devices(cfg, vendor, product, revision);
    if matches.is_empty() {
        out.push_str("matching device entries: none (defaults apply)\n");
    } else {
        out.push_str("matching device entries, highest precedence first:\n");
        for m in &matches {
            let _ = writeln!(out, "  {m}");
        }
    }
    let base = PathInfo {
        dev: "sdx".into(),
        vendor: vendor.into(),
        product: product.into(),
        rev: revision.into(),
        wwid: wwid.map(str::to_string),
        ..Default::default()
    };
    let bl = cfg.filter_path(&base);
    let _ = writeln!(out, "blacklist: {}", describe_filter(&bl));
    let plain = cfg.resolve_explained(&base);
    out.push_str("settings for a path without ALUA (TPGS 0):\n");
    let lines = settings_lines(&plain);
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &lines {
        let origin = plain
            .origins
            .get(*k)
            .map(|o| o.source.as_str())
            .unwrap_or("");
        let _ = writeln!(out, "  {k:width$} {v:<20} <- {origin}");
    }
    for note in substitutes(&plain) {
        let _ = writeln!(out, "  note: {note}");
    }
    let alua = cfg.resolve_explained(&PathInfo {
        tpgs: 1,
        ..base.clone()
    });
    let diffs: Vec<_> = settings_lines(&alua)
        .into_iter()
        .zip(lines.iter())
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| a)
        .collect();
    if diffs.is_empty() {
        out.push_str("a path with ALUA (TPGS) support gets the same settings\n");
    } else {
        out.push_str("a path with ALUA (TPGS) support gets instead:\n");
        for (k, v) in diffs {
            let origin = alua.origins.get(k).map(|o| o.source.as_str()).unwrap_or("");
            let _ = writeln!(out, "  {k:width$} {v:<20} <- {origin}");
        }
        out.push_str(
            "  (prio is sysfs instead of alua when the kernel's ALUA handler exposes access_state)\n",
        );
    }
    explain_transport(cfg, &base, &mut out);
    out
}

/// Checkers and prioritizers mpathd runs something else in place of.
fn substitutes(s: &crate::model::Settings) -> Vec<String> {
    crate::checker::substitute_note(&s.path_checker)
        .into_iter()
        .chain(crate::prio::substitute_note(&s.prio))
        .collect()
}

/// What a path of each transport gets written when it joins a map.
fn explain_transport(cfg: &Config, base: &PathInfo, out: &mut String) {
    use crate::model::Transport;
    use crate::transport::{plan, Endpoint, TimeoutSettings};
    out.push_str("transport timeouts written when a path joins a map:\n");
    let kinds = [
        (
            Transport::Iscsi,
            Endpoint::Iscsi {
                session: "sessionN".into(),
            },
        ),
        (
            Transport::Fcp,
            Endpoint::Fc {
                rport: "rport-H:C-N".into(),
            },
        ),
        (
            Transport::Sas,
            Endpoint::Sas {
                end_device: "end_device-H:P".into(),
            },
        ),
    ];
    for (transport, endpoint) in kinds {
        let s = cfg.resolve(&PathInfo {
            transport,
            ..base.clone()
        });
        let p = plan(
            &TimeoutSettings {
                fast_io_fail: s.fast_io_fail_tmo.and_then(|v| u32::try_from(v).ok()),
                dev_loss: s.dev_loss_tmo,
                eh_deadline: None,
                no_path_retry: s.no_path_retry,
                polling_interval: s.polling_interval,
            },
            None,
            Some(&endpoint),
        );
        let mut parts: Vec<String> = p.writes.iter().map(|w| format!("write {w}")).collect();
        parts.extend(p.notes);
        if parts.is_empty() {
            parts.push("nothing (fast_io_fail_tmo and dev_loss_tmo not set)".into());
        }
        let _ = writeln!(
            out,
            "  {:10} {}",
            transport.protocol_name(),
            parts.join("; ")
        );
    }
    let eh = cfg.resolve(base).eh_deadline;
    let _ = writeln!(
        out,
        "  {:10} {}",
        "any SCSI",
        match eh {
            Some(v) => format!("write class/scsi_host/hostN/eh_deadline={v}"),
            None => "eh_deadline not set: the SCSI host keeps its own".into(),
        }
    );
}

fn describe_filter(f: &crate::model::FilterResult) -> String {
    match f {
        crate::model::FilterResult::Allowed => "not blacklisted".into(),
        crate::model::FilterResult::Excepted { by } => format!("not blacklisted (exception: {by})"),
        crate::model::FilterResult::Blacklisted { by } => format!("BLACKLISTED by {by}"),
    }
}
