//! The multipath.conf grammar, read the way multipath-tools reads it, with
//! precise diagnostics.
//!
//! Lines are `keyword value`, `section {` or `}`. Values are one bare word
//! (no whitespace, `"`, `#`, `!`, `{`, `}`) or one "quoted string" in which
//! `""` stands for a literal quote. `#` and `!` outside quotes start a
//! comment. multipath-tools skips what it does not understand with a log
//! line; mpathd reports structural damage (unclosed or unmatched braces,
//! stray values, bad numbers, unterminated quotes) as errors, and unknown,
//! misplaced, deprecated or unsupported keywords as warnings.

use std::sync::Arc;

use super::diag::{suggest, Diagnostic, Loc, Severity};
use super::ingest::{check_rule, ingest, sections_of};
use super::keywords::{self, SectionKind};
use super::{Attrs, Blacklist, Config, Entry};

/// Largest configuration file read (multipath.conf files are a few KiB).
pub const MAX_FILE_SIZE: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    quoted: bool,
    /// 1-based character column.
    col: u32,
}

impl Token {
    fn is(&self, s: &str) -> bool {
        !self.quoted && self.text == s
    }
}

/// Split one line into tokens. Errors carry the column.
fn tokenize(line: &str) -> Result<Vec<Token>, (u32, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i as u32 + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' || c == '!' {
            break;
        }
        if c == '“' || c == '”' || c == '„' {
            return Err((
                col,
                format!(
                    "typographic quote '{c}' (copied from a word processor or web page?): \
                     use a plain '\"'"
                ),
            ));
        }
        if c == '{' || c == '}' {
            toks.push(Token {
                text: c.to_string(),
                quoted: false,
                col,
            });
            i += 1;
            continue;
        }
        if c == '"' {
            let mut text = String::new();
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => {
                        return Err((
                            col,
                            "missing closing quote for the string starting here".into(),
                        ))
                    }
                    Some('"') if chars.get(j + 1) == Some(&'"') => {
                        text.push('"');
                        j += 2;
                    }
                    Some('"') => {
                        j += 1;
                        break;
                    }
                    Some(&ch) => {
                        text.push(ch);
                        j += 1;
                    }
                }
            }
            toks.push(Token {
                text,
                quoted: true,
                col,
            });
            i = j;
            continue;
        }
        let start = i;
        while i < chars.len() {
            let ch = chars[i];
            if ch.is_whitespace() || matches!(ch, '"' | '#' | '!' | '{' | '}') {
                break;
            }
            i += 1;
        }
        toks.push(Token {
            text: chars[start..i].iter().collect(),
            quoted: false,
            col,
        });
    }
    Ok(toks)
}

/// What an open section is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Root,
    Defaults,
    Blacklist {
        exceptions: bool,
    },
    BlacklistDevice {
        exceptions: bool,
        idx: usize,
    },
    Devices,
    Device {
        idx: usize,
    },
    Overrides,
    Protocol {
        idx: usize,
    },
    Multipaths,
    Multipath {
        idx: usize,
    },
    /// An unknown section: skipped with its nested braces.
    Skip,
}

struct Open {
    frame: Frame,
    name: String,
    loc: Loc,
}

/// Parser state for one file, appending into a `Config`.
struct FileParser<'a> {
    cfg: &'a mut Config,
    diags: &'a mut Vec<Diagnostic>,
    file: Arc<str>,
    stack: Vec<Open>,
    /// Top-level sections opened so far in this file, with their line.
    roots_seen: Vec<(String, u32)>,
}

/// Parse multipath.conf text, appending what it sets to `cfg`. Later
/// files (drop-ins) are parsed into the same `cfg`, so later settings win.
pub fn parse_into(cfg: &mut Config, text: &str, file_name: &str, diags: &mut Vec<Diagnostic>) {
    let file: Arc<str> = Arc::from(file_name);
    let mut p = FileParser {
        cfg,
        diags,
        file: Arc::clone(&file),
        stack: vec![Open {
            frame: Frame::Root,
            name: String::new(),
            loc: Loc::new(&file, 0, 0),
        }],
        roots_seen: Vec::new(),
    };
    for (n, line) in text.lines().enumerate() {
        p.line(n as u32 + 1, line);
    }
    // Unclosed sections: one error each, innermost first, at the line that
    // opened it (that is where the missing '}' belongs after).
    while p.stack.len() > 1 {
        if let Some(open) = p.stack.pop() {
            p.close(&open);
            p.diags.push(Diagnostic::at(
                Severity::Error,
                &open.loc,
                format!(
                    "section '{}' opened here is never closed: add a line with '}}' \
                     after its last setting",
                    open.name
                ),
            ));
        }
    }
}

impl FileParser<'_> {
    fn loc(&self, line: u32, col: u32) -> Loc {
        Loc::new(&self.file, line, col)
    }

    fn err(&mut self, line: u32, col: u32, msg: impl Into<String>) {
        let loc = self.loc(line, col);
        self.diags.push(Diagnostic::at(Severity::Error, &loc, msg));
    }

    fn warn(&mut self, line: u32, col: u32, msg: impl Into<String>) {
        let loc = self.loc(line, col);
        self.diags
            .push(Diagnostic::at(Severity::Warning, &loc, msg));
    }

    fn top(&self) -> Frame {
        self.stack.last().map(|o| o.frame).unwrap_or(Frame::Root)
    }

    fn line(&mut self, n: u32, line: &str) {
        let toks = match tokenize(line) {
            Ok(t) => t,
            Err((col, msg)) => {
                self.err(n, col, msg);
                return;
            }
        };
        let Some(first) = toks.first() else { return };
        if first.is("}") {
            if let Some(extra) = toks.get(1) {
                self.err(
                    n,
                    extra.col,
                    format!(
                        "stray '{}' after '}}': '}}' must be alone on its line",
                        extra.text
                    ),
                );
            }
            if self.stack.len() <= 1 {
                self.err(n, first.col, "unmatched '}': no section is open here");
            } else if let Some(open) = self.stack.pop() {
                self.close(&open);
            }
            return;
        }
        if first.is("{") {
            self.err(
                n,
                first.col,
                "'{' must be on the same line as the section name (e.g. 'devices {')",
            );
            return;
        }
        if self.top() == Frame::Skip {
            // Inside an unknown section: only track nesting.
            if toks.get(1).is_some_and(|t| t.is("{")) {
                let loc = self.loc(n, first.col);
                self.stack.push(Open {
                    frame: Frame::Skip,
                    name: first.text.clone(),
                    loc,
                });
            }
            return;
        }
        if toks.get(1).is_some_and(|t| t.is("{")) {
            if let Some(extra) = toks.get(2) {
                self.err(
                    n,
                    extra.col,
                    format!(
                        "stray '{}' after '{{': nothing may follow '{{' on its line",
                        extra.text
                    ),
                );
            }
            let name = first.text.clone();
            self.open_section(n, first.col, &name);
            return;
        }
        self.attribute(n, &toks);
    }

    /// The frame a `name {` line opens inside `parent`, if allowed there.
    fn child(parent: Frame, name: &str) -> Option<Frame> {
        Some(match (parent, name) {
            (Frame::Root, "defaults") => Frame::Defaults,
            (Frame::Root, "blacklist") => Frame::Blacklist { exceptions: false },
            (Frame::Root, "blacklist_exceptions") => Frame::Blacklist { exceptions: true },
            (Frame::Root, "devices") => Frame::Devices,
            (Frame::Root, "overrides") => Frame::Overrides,
            (Frame::Root, "multipaths") => Frame::Multipaths,
            (Frame::Blacklist { exceptions }, "device") => {
                Frame::BlacklistDevice { exceptions, idx: 0 }
            }
            (Frame::Devices, "device") => Frame::Device { idx: 0 },
            (Frame::Overrides, "protocol") => Frame::Protocol { idx: 0 },
            (Frame::Multipaths, "multipath") => Frame::Multipath { idx: 0 },
            _ => return None,
        })
    }

    fn open_section(&mut self, n: u32, col: u32, name: &str) {
        let loc = self.loc(n, col);
        let parent = self.top();
        let known_section = keywords::ROOT_SECTIONS.contains(&name)
            || matches!(name, "device" | "multipath" | "protocol");
        if parent == Frame::Root && keywords::ROOT_SECTIONS.contains(&name) {
            self.repeated_root(n, col, name);
        }
        let frame = match Self::child(parent, name) {
            Some(f) => f,
            None if parent == Frame::Root && name == "device" => {
                self.warn(
                    n,
                    col,
                    "'device' section at top level: multipathd ignores it (\"invalid \
                     keyword: device\"); mpathd reads it as if it were inside 'devices { }'. \
                     Wrap it in 'devices { ... }' to stay compatible",
                );
                Frame::Device { idx: 0 }
            }
            None if parent == Frame::Root && name == "multipath" => {
                self.warn(
                    n,
                    col,
                    "'multipath' section at top level: multipathd ignores it; mpathd reads \
                     it as if it were inside 'multipaths { }'. Wrap it in 'multipaths { ... }'",
                );
                Frame::Multipath { idx: 0 }
            }
            None if known_section && parent != Frame::Root => {
                // A section that cannot nest here: the enclosing one was
                // not closed. Point at where it was opened.
                let inner = self.stack.last().map(|o| (o.name.clone(), o.loc.clone()));
                if let Some((open_name, open_loc)) = inner {
                    self.diags.push(Diagnostic::at(
                        Severity::Error,
                        &open_loc,
                        format!(
                            "section '{open_name}' opened here is not closed before \
                             '{name} {{' at line {n}: add a line with '}}' after its last setting"
                        ),
                    ));
                }
                // Recover: close sections until one accepts `name`.
                while self.stack.len() > 1 && Self::child(self.top(), name).is_none() {
                    if let Some(open) = self.stack.pop() {
                        self.close(&open);
                    }
                }
                self.open_section(n, col, name);
                return;
            }
            None => {
                self.unknown_section(n, col, name, parent);
                Frame::Skip
            }
        };
        let frame = self.register(frame, &loc);
        self.stack.push(Open {
            frame,
            name: name.to_string(),
            loc,
        });
    }

    fn unknown_section(&mut self, n: u32, col: u32, name: &str, parent: Frame) {
        let here = self.section_name();
        let cands: Vec<&str> = match parent {
            Frame::Root => keywords::ROOT_SECTIONS.to_vec(),
            Frame::Blacklist { .. } | Frame::Devices => vec!["device"],
            Frame::Overrides => vec!["protocol"],
            Frame::Multipaths => vec!["multipath"],
            _ => vec![],
        };
        let hint = suggest(name, cands.iter().copied())
            .map(|s| format!(" (did you mean '{s}'?)"))
            .unwrap_or_default();
        self.warn(
            n,
            col,
            format!("unknown section '{name}' in {here}{hint}: skipped up to its '}}'"),
        );
    }

    /// A new entry for the sections that make one (device, multipath,
    /// protocol, blacklist device), and the frame pointing at it.
    fn register(&mut self, frame: Frame, loc: &Loc) -> Frame {
        match frame {
            Frame::Device { .. } => {
                self.cfg.devices.push(Entry::at(loc.clone()));
                Frame::Device {
                    idx: self.cfg.devices.len() - 1,
                }
            }
            Frame::Multipath { .. } => {
                self.cfg.multipaths.push(Entry::at(loc.clone()));
                Frame::Multipath {
                    idx: self.cfg.multipaths.len() - 1,
                }
            }
            Frame::Protocol { .. } => {
                self.cfg.overrides_protocols.push(Entry::at(loc.clone()));
                Frame::Protocol {
                    idx: self.cfg.overrides_protocols.len() - 1,
                }
            }
            Frame::BlacklistDevice { exceptions, .. } => {
                let bl = self.blacklist(exceptions);
                bl.device.push(Entry::at(loc.clone()));
                Frame::BlacklistDevice {
                    exceptions,
                    idx: bl.device.len() - 1,
                }
            }
            Frame::Overrides => {
                self.cfg.has_overrides = true;
                Frame::Overrides
            }
            f => f,
        }
    }

    /// A top-level section opened twice in one file: multipath-tools logs
    /// "duplicate keyword" and does not apply the second one, mpathd merges
    /// it into the first. Either way the file says one thing and means
    /// another to one of them, so it is said.
    fn repeated_root(&mut self, n: u32, col: u32, name: &str) {
        match self.roots_seen.iter().find(|(s, _)| s == name) {
            Some((_, first)) => {
                let first = *first;
                self.warn(
                    n,
                    col,
                    format!(
                        "second '{name}' section in this file (the first is at line {first}): \
                         mpathd merges it into the first, multipathd logs \"duplicate keyword\" \
                         and does not apply it. Move its lines into the first '{name}' section"
                    ),
                );
            }
            None => self.roots_seen.push((name.to_string(), n)),
        }
    }

    fn blacklist(&mut self, exceptions: bool) -> &mut Blacklist {
        if exceptions {
            &mut self.cfg.blacklist_exceptions
        } else {
            &mut self.cfg.blacklist
        }
    }

    fn section_name(&self) -> String {
        match self.stack.last() {
            Some(o) if o.frame != Frame::Root => format!("the '{}' section", o.name),
            _ => "the top level".to_string(),
        }
    }

    /// Checks when a section ends.
    fn close(&mut self, open: &Open) {
        match open.frame {
            Frame::Device { idx } => {
                let Some(e) = self.cfg.devices.get(idx) else {
                    return;
                };
                let has_v = e.attrs.contains_key("vendor");
                let has_p = e.attrs.contains_key("product");
                if !has_v {
                    self.diags.push(Diagnostic::at(
                        Severity::Error,
                        &open.loc,
                        "device entry without 'vendor': it would match every device \
                         (multipathd drops such entries); add vendor \"REGEX\"",
                    ));
                } else if !has_p {
                    self.diags.push(Diagnostic::at(
                        Severity::Warning,
                        &open.loc,
                        "device entry without 'product': multipathd drops such entries \
                         (\"missing vendor or product parameter\"); mpathd applies it to \
                         every product of this vendor. Add product \".*\" to say so explicitly",
                    ));
                }
            }
            Frame::Multipath { idx }
                if self
                    .cfg
                    .multipaths
                    .get(idx)
                    .is_some_and(|e| !e.attrs.contains_key("wwid")) =>
            {
                self.diags.push(Diagnostic::at(
                    Severity::Warning,
                    &open.loc,
                    "multipath entry without 'wwid' never matches any map",
                ));
            }
            Frame::Protocol { idx }
                if self
                    .cfg
                    .overrides_protocols
                    .get(idx)
                    .is_some_and(|e| !e.attrs.contains_key("type")) =>
            {
                self.diags.push(Diagnostic::at(
                    Severity::Warning,
                    &open.loc,
                    "protocol subsection without 'type' never matches any path",
                ));
            }
            Frame::BlacklistDevice { exceptions, idx } => {
                let empty = self.blacklist(exceptions).device.get(idx).is_some_and(|e| {
                    !e.attrs.contains_key("vendor") && !e.attrs.contains_key("product")
                });
                if empty {
                    self.diags.push(Diagnostic::at(
                        Severity::Warning,
                        &open.loc,
                        "device rule without vendor or product never matches",
                    ));
                }
            }
            _ => {}
        }
    }

    fn attribute(&mut self, n: u32, toks: &[Token]) {
        let Some(kw_tok) = toks.first() else { return };
        let kw = kw_tok.text.as_str();
        let frame = self.top();
        let section = match frame {
            Frame::Defaults => Some(SectionKind::Defaults),
            Frame::Device { .. } => Some(SectionKind::Device),
            Frame::Overrides => Some(SectionKind::Overrides),
            Frame::Protocol { .. } => Some(SectionKind::Protocol),
            Frame::Multipath { .. } => Some(SectionKind::Multipath),
            Frame::BlacklistDevice { .. } => Some(SectionKind::BlacklistDevice),
            _ => None,
        };
        let is_bl_rule = matches!(frame, Frame::Blacklist { .. })
            && matches!(kw, "devnode" | "wwid" | "property" | "protocol");
        let valid_here = is_bl_rule
            || section
                .is_some_and(|s| s.accepts(kw) || (kw == "checker" && s.accepts("path_checker")));
        let Some(val) = self.value_token(n, toks, frame, valid_here) else {
            return;
        };
        let vloc = self.loc(n, val.col);
        let kloc = self.loc(n, kw_tok.col);
        match frame {
            Frame::Root | Frame::Devices | Frame::Multipaths => {
                self.outside_section(n, kw_tok, frame);
            }
            Frame::Blacklist { exceptions } if is_bl_rule => {
                if let Some(v) = check_rule(kw, &val.text, &vloc, self.diags) {
                    let bl = self.blacklist(exceptions);
                    let list = match kw {
                        "devnode" => &mut bl.devnode,
                        "wwid" => &mut bl.wwid,
                        "property" => &mut bl.property,
                        _ => &mut bl.protocol,
                    };
                    list.push(v);
                }
            }
            Frame::Blacklist { exceptions } => {
                let hint = suggest(kw, ["devnode", "wwid", "property", "protocol", "device"])
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                let sname = if exceptions {
                    "blacklist_exceptions"
                } else {
                    "blacklist"
                };
                self.warn(
                    n,
                    kw_tok.col,
                    format!("unknown keyword '{kw}' in the '{sname}' section{hint}: ignored"),
                );
            }
            Frame::Skip => {}
            _ => {
                let Some(section) = section else { return };
                let Some(attrs) = attrs_of(self.cfg, frame) else {
                    return;
                };
                ingest(attrs, section, kw, &val.text, &kloc, &vloc, self.diags);
            }
        }
    }

    /// The value of a `keyword value` line, or None with the error said:
    /// a section name without its brace, no value, or more than one.
    fn value_token<'t>(
        &mut self,
        n: u32,
        toks: &'t [Token],
        frame: Frame,
        valid_here: bool,
    ) -> Option<&'t Token> {
        let kw_tok = toks.first()?;
        let kw = kw_tok.text.as_str();
        let section_word = keywords::ROOT_SECTIONS.contains(&kw)
            || matches!(kw, "device" | "multipath" | "protocol");
        if !valid_here && section_word && (Self::child(frame, kw).is_some() || frame == Frame::Root)
        {
            self.err(
                n,
                kw_tok.col,
                format!("expected '{{' after '{kw}' on the same line"),
            );
            return None;
        }
        let Some(val) = toks.get(1) else {
            let col = kw_tok.col + kw.chars().count() as u32;
            let bang = if matches!(frame, Frame::Blacklist { .. }) {
                " ('!' outside quotes starts a comment: quote an inverted pattern, \"!^sd\")"
            } else {
                ""
            };
            self.err(n, col, format!("missing value for '{kw}'{bang}"));
            return None;
        };
        if let Some(extra) = toks.get(2) {
            let hint = if !val.quoted {
                " (quote values containing spaces: \"...\")"
            } else {
                ""
            };
            self.err(
                n,
                extra.col,
                format!(
                    "stray value '{}' after the value of '{kw}': one value per line{hint}",
                    extra.text
                ),
            );
            return None;
        }
        Some(val)
    }

    /// A setting at top level or directly in `devices`/`multipaths`.
    fn outside_section(&mut self, n: u32, kw_tok: &Token, frame: Frame) {
        let kw = kw_tok.text.as_str();
        let inside = match frame {
            Frame::Devices => "'devices' holds only 'device { }' subsections",
            Frame::Multipaths => "'multipaths' holds only 'multipath { }' subsections",
            _ => "settings must be inside a section",
        };
        let belongs = sections_of(kw);
        let hint = if belongs.is_empty() {
            String::new()
        } else {
            format!(" ('{kw}' belongs in {})", belongs.join(", "))
        };
        self.err(
            n,
            kw_tok.col,
            format!("'{kw}' outside its section: {inside}{hint}"),
        );
    }
}

/// The attribute table a frame's settings go into.
fn attrs_of(cfg: &mut Config, frame: Frame) -> Option<&mut Attrs> {
    match frame {
        Frame::Defaults => Some(&mut cfg.defaults),
        Frame::Overrides => Some(&mut cfg.overrides),
        Frame::Device { idx } => cfg.devices.get_mut(idx).map(|e| &mut e.attrs),
        Frame::Protocol { idx } => cfg.overrides_protocols.get_mut(idx).map(|e| &mut e.attrs),
        Frame::Multipath { idx } => cfg.multipaths.get_mut(idx).map(|e| &mut e.attrs),
        Frame::BlacklistDevice { exceptions, idx } => {
            let bl = if exceptions {
                &mut cfg.blacklist_exceptions
            } else {
                &mut cfg.blacklist
            };
            bl.device.get_mut(idx).map(|e| &mut e.attrs)
        }
        _ => None,
    }
}

/// Read a file with the size limit and UTF-8 check, as diagnostics.
pub fn read_file(path: &std::path::Path) -> Result<String, Diagnostic> {
    use std::io::Read;
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| {
        Diagnostic::file(
            Severity::Error,
            &name,
            format!("cannot read configuration file: {e}"),
        )
    })?;
    let mut buf = Vec::new();
    f.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| {
            Diagnostic::file(
                Severity::Error,
                &name,
                format!("cannot read configuration file: {e}"),
            )
        })?;
    if buf.len() as u64 > MAX_FILE_SIZE {
        return Err(Diagnostic::file(
            Severity::Error,
            &name,
            format!(
                "configuration file is larger than {} MiB: refusing to read it",
                MAX_FILE_SIZE / (1024 * 1024)
            ),
        ));
    }
    decode(buf, &name)
}

/// UTF-8 check with the place of the first bad byte.
pub fn decode(buf: Vec<u8>, name: &str) -> Result<String, Diagnostic> {
    match String::from_utf8(buf) {
        Ok(s) => Ok(s),
        Err(e) => {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let good = &bytes[..at];
            let line = good.iter().filter(|b| **b == b'\n').count() as u32 + 1;
            let line_start = good
                .iter()
                .rposition(|b| *b == b'\n')
                .map(|p| p + 1)
                .unwrap_or(0);
            let col = String::from_utf8_lossy(&good[line_start..]).chars().count() as u32 + 1;
            let byte = bytes.get(at).copied().unwrap_or(0);
            Err(Diagnostic {
                severity: Severity::Error,
                file: name.to_string(),
                line,
                column: col,
                message: format!(
                    "byte 0x{byte:02x} is not UTF-8 (Latin-1 or a binary file?): save the file as UTF-8"
                ),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = tokenize(r#"  vendor "2.5"" SSD" # comment"#).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].text, "2.5\" SSD");
        assert!(t[1].quoted);
        assert_eq!(t[1].col, 10);
        let t = tokenize("devices{").unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[1].is("{"));
        let t = tokenize(r#"devnode "!^sd" ! comment"#).unwrap();
        assert_eq!(t[1].text, "!^sd");
        assert_eq!(t.len(), 2);
        assert!(tokenize("! whole line").unwrap().is_empty());
        assert_eq!(tokenize(r#"vendor "abc"#).unwrap_err().0, 8);
        assert!(tokenize("vendor “eSSM”").is_err());
        let t = tokenize(r#"prio_args """#).unwrap();
        assert_eq!(t[1].text, "");
    }
}
