//! Validating and storing one keyword's value: shared by the
//! multipath.conf grammar ([`super::parser`]) and the TOML form, so both
//! accept and refuse the same values with the same words.

use super::diag::{suggest, Diagnostic, Loc, Severity};
use super::keywords::{self, Kind, SectionKind, Support};
use super::posix;
use super::{Attrs, Value};

/// Validate a blacklist rule (`devnode`, `wwid`, `property`, `protocol`).
/// A leading `!` inverts it; `\!` is a literal `!`.
pub(crate) fn check_rule(
    kw: &str,
    text: &str,
    loc: &Loc,
    diags: &mut Vec<Diagnostic>,
) -> Option<Value> {
    let (_, pat) = split_invert(text);
    if let Err(e) = posix::compile(pat) {
        diags.push(Diagnostic::at(Severity::Error, loc, format!("{kw}: {e}")));
        return None;
    }
    for l in posix::lint(kw, pat) {
        diags.push(Diagnostic::at(Severity::Warning, loc, l));
    }
    Some(Value {
        text: text.to_string(),
        loc: Some(loc.clone()),
    })
}

/// (inverted, pattern) for a blacklist pattern.
pub(crate) fn split_invert(text: &str) -> (bool, &str) {
    if let Some(rest) = text.strip_prefix('!') {
        (true, rest)
    } else if text.starts_with("\\!") {
        (false, &text[1..])
    } else {
        (false, text)
    }
}

/// An unsupported keyword is an error unless it holds multipath-tools'
/// default (then it changes nothing).
fn unsupported(kw: &str, text: &str, kloc: &Loc, diags: &mut Vec<Diagnostic>) {
    let default = super::hwtable::BUILTIN_DEFAULTS
        .iter()
        .find(|(k, _)| *k == kw)
        .map(|(_, v)| *v);
    if default == Some(text) {
        return;
    }
    diags.push(Diagnostic::at(
        Severity::Error,
        kloc,
        format!(
            "'{kw}' is not supported by mpathd (see UNSUPPORTED KEYWORDS in \
             mpathd.conf(5)); delete this line{}",
            default
                .map(|d| format!(" or set it to multipath-tools' default '{d}'"))
                .unwrap_or_default()
        ),
    ));
}

/// Validate and store one attribute of an attribute section. Shared by the
/// multipath.conf and the TOML readers.
pub(crate) fn ingest(
    attrs: &mut Attrs,
    section: SectionKind,
    kw: &str,
    raw: &str,
    kloc: &Loc,
    vloc: &Loc,
    diags: &mut Vec<Diagnostic>,
) {
    let kw = if kw == "checker" && section.accepts("path_checker") {
        "path_checker"
    } else {
        kw
    };
    let sname = section_title(section);
    if !section.accepts(kw) {
        let belongs = sections_of(kw);
        let msg = if !belongs.is_empty() {
            format!(
                "'{kw}' is not valid in the {sname} section (it belongs in {}): ignored",
                belongs.join(", ")
            )
        } else {
            let hint = suggest(kw, section.keywords().iter().copied())
                .or_else(|| suggest(kw, keywords::all_keywords()))
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            format!("unknown keyword '{kw}' in the {sname} section{hint}: ignored")
        };
        diags.push(Diagnostic::at(Severity::Warning, kloc, msg));
        return;
    }
    if let Support::Deprecated(instead) = keywords::support(kw) {
        diags.push(Diagnostic::at(
            Severity::Warning,
            kloc,
            format!("'{kw}' is deprecated and ignored: {instead}"),
        ));
        return;
    }
    let (text, adjust) = match keywords::check_value(kw, raw) {
        Ok(v) => v,
        Err(e) => {
            diags.push(Diagnostic::at(Severity::Error, vloc, e.to_string()));
            return;
        }
    };
    if let Some(w) = adjust {
        diags.push(Diagnostic::at(Severity::Warning, vloc, w));
    }
    if keywords::kind(kw) == Kind::Regex {
        if let Err(e) = posix::compile(&text) {
            diags.push(Diagnostic::at(Severity::Error, vloc, format!("{kw}: {e}")));
            return;
        }
        for l in posix::lint(kw, &text) {
            diags.push(Diagnostic::at(Severity::Warning, vloc, l));
        }
    }
    for (sev, msg) in value_lints(kw, &text) {
        diags.push(Diagnostic::at(sev, vloc, msg));
    }
    if keywords::support(kw) == Support::Unsupported {
        unsupported(kw, &text, kloc, diags);
    }
    if let Some(prev) = attrs.get(kw) {
        let at = prev
            .loc
            .as_ref()
            .map(|l| format!(" (first set at {})", l.file_line()))
            .unwrap_or_default();
        diags.push(Diagnostic::at(
            Severity::Warning,
            kloc,
            format!("duplicate '{kw}' in this {sname} section{at}: the later value wins"),
        ));
    }
    attrs.insert(
        kw.to_string(),
        Value {
            text,
            loc: Some(kloc.clone()),
        },
    );
}

fn section_title(s: SectionKind) -> &'static str {
    match s {
        SectionKind::Defaults => "'defaults'",
        SectionKind::Device => "'device'",
        SectionKind::Overrides => "'overrides'",
        SectionKind::Protocol => "'overrides/protocol'",
        SectionKind::Multipath => "'multipath'",
        SectionKind::BlacklistDevice => "blacklist 'device'",
    }
}

/// Explanations for values that are valid but often misunderstood.
fn value_lints(kw: &str, v: &str) -> Vec<(Severity, String)> {
    let mut out = Vec::new();
    match kw {
        "rr_min_io" => out.push((
            Severity::Note,
            "rr_min_io only applies to bio-based maps; request-based maps (the default) \
             use rr_min_io_rq, and service-time/queue-length ignore both"
                .to_string(),
        )),
        "features" => out.extend(features_lints(v)),
        "hardware_handler" => {
            let words: Vec<&str> = v.split_whitespace().collect();
            let ok = match words.first().map(|w| w.parse::<usize>()) {
                Some(Ok(n)) => n == words.len() - 1,
                _ => false,
            };
            if !ok {
                out.push((
                    Severity::Warning,
                    format!("hardware_handler \"{v}\" must be a count then the handler, e.g. \"1 alua\""),
                ));
            }
        }
        "path_checker" if !keywords::CHECKERS.contains(&v) => {
            let hint = suggest(v, keywords::CHECKERS.iter().copied())
                .map(|s| format!(" (did you mean \"{s}\"?)"))
                .unwrap_or_default();
            out.push((
                Severity::Warning,
                format!(
                    "unknown path_checker \"{v}\"{hint}; known: {}",
                    keywords::CHECKERS.join(", ")
                ),
            ));
        }
        "prio" if !keywords::PRIOS.contains(&v) => {
            let hint = suggest(v, keywords::PRIOS.iter().copied())
                .map(|s| format!(" (did you mean \"{s}\"?)"))
                .unwrap_or_default();
            out.push((
                Severity::Warning,
                format!(
                    "unknown prio \"{v}\"{hint}; known: {}",
                    keywords::PRIOS.join(", ")
                ),
            ));
        }
        "path_checker" => {
            out.extend(crate::checker::substitute_note(v).map(|n| (Severity::Warning, n)));
        }
        "prio" => {
            out.extend(crate::prio::substitute_note(v).map(|n| (Severity::Warning, n)));
        }
        "path_selector" => out.extend(selector_lint(v)),
        _ => {}
    }
    out
}

/// features: a word count that matches, and the deprecated
/// queue_if_no_path.
fn features_lints(v: &str) -> Vec<(Severity, String)> {
    let mut out = Vec::new();
    let words: Vec<&str> = v.split_whitespace().collect();
    match words.first().map(|w| w.parse::<usize>()) {
        Some(Ok(n)) if n == words.len() - 1 => {}
        Some(Ok(n)) => out.push((
            Severity::Warning,
            format!(
                "features \"{v}\" announces {n} word(s) but lists {}: the count \
                 must equal the number of words after it",
                words.len() - 1
            ),
        )),
        _ => out.push((
            Severity::Warning,
            format!(
                "features \"{v}\" must start with the number of words that follow, e.g. \"1 {v}\""
            ),
        )),
    }
    if words.contains(&"queue_if_no_path") {
        out.push((
            Severity::Warning,
            "features \"queue_if_no_path\" is deprecated: use 'no_path_retry queue' \
             (mpathd, like multipathd, turns it into no_path_retry queue when \
             no_path_retry is not set, and ignores it when it is)"
                .to_string(),
        ));
    }
    out
}

/// path_selector: a known selector with its argument count.
fn selector_lint(v: &str) -> Option<(Severity, String)> {
    let mut words = v.split_whitespace();
    let name = words.next().unwrap_or("");
    let msg = if !keywords::SELECTORS.contains(&name) {
        format!(
            "unknown path_selector \"{v}\"; known: {}",
            keywords::SELECTORS.join(", ")
        )
    } else if words.next().is_none() {
        format!("path_selector \"{v}\" lacks its argument count: write \"{name} 0\"")
    } else {
        return None;
    };
    Some((Severity::Warning, msg))
}

/// Sections where `kw` is valid, for "belongs in" hints.
pub(crate) fn sections_of(kw: &str) -> Vec<&'static str> {
    let mut v = Vec::new();
    for s in [
        SectionKind::Defaults,
        SectionKind::Device,
        SectionKind::Overrides,
        SectionKind::Multipath,
    ] {
        if s.accepts(kw) {
            v.push(match s {
                SectionKind::Defaults => "defaults",
                SectionKind::Device => "devices/device",
                SectionKind::Overrides => "overrides",
                _ => "multipaths/multipath",
            });
        }
    }
    if matches!(kw, "devnode" | "wwid" | "property" | "protocol") {
        v.push("blacklist/blacklist_exceptions");
    }
    v
}
