//! The %-wildcards of multipathd's print.c: one table for maps, one for
//! paths, one for path groups, and the engine that expands a format with
//! optional column widths.

use crate::model::{DevState, Failback, MapSnapshot, PathGroupSnapshot, PathSnapshot, Transport};

/// Widths are clamped like multipathd's `unsigned char` field widths.
pub const MAX_FIELD_WIDTH: usize = 255;
/// Length of the `next_check` / failback progress bar.
const PROGRESS_LEN: u32 = 10;

/// A wildcard: its letter and its column header.
#[derive(Debug, Clone, Copy)]
pub struct Wildcard {
    pub letter: char,
    pub header: &'static str,
}

const fn wc(letter: char, header: &'static str) -> Wildcard {
    Wildcard { letter, header }
}

/// Map wildcards, in multipathd's order.
pub const MAP_WILDCARDS: &[Wildcard] = &[
    wc('n', "name"),
    wc('w', "uuid"),
    wc('d', "sysfs"),
    wc('F', "failback"),
    wc('Q', "queueing"),
    wc('N', "paths"),
    wc('r', "write_prot"),
    wc('t', "dm-st"),
    wc('S', "size"),
    wc('f', "features"),
    wc('x', "failures"),
    wc('h', "hwhandler"),
    wc('A', "action"),
    wc('0', "path_faults"),
    wc('1', "switch_grp"),
    wc('2', "map_loads"),
    wc('3', "total_q_time"),
    wc('4', "q_timeouts"),
    wc('s', "vend/prod"),
    wc('v', "vend"),
    wc('p', "prod"),
    wc('e', "rev"),
    wc('G', "foreign"),
    wc('g', "vpd page data"),
    wc('k', "max_sectors_kb"),
];

/// Path wildcards, in multipathd's order.
pub const PATH_WILDCARDS: &[Wildcard] = &[
    wc('w', "uuid"),
    wc('i', "hcil"),
    wc('d', "dev"),
    wc('D', "dev_t"),
    wc('t', "dm_st"),
    wc('o', "dev_st"),
    wc('T', "chk_st"),
    wc('s', "vend/prod/rev"),
    wc('c', "checker"),
    wc('C', "next_check"),
    wc('p', "pri"),
    wc('S', "size"),
    wc('z', "serial"),
    wc('M', "marginal_st"),
    wc('m', "multipath"),
    wc('N', "host WWNN"),
    wc('n', "target WWNN"),
    wc('R', "host WWPN"),
    wc('r', "target WWPN"),
    wc('a', "host adapter"),
    wc('G', "foreign"),
    wc('g', "vpd page data"),
    wc('0', "failures"),
    wc('P', "protocol"),
    wc('I', "init_st"),
    wc('L', "LUN hex"),
    wc('A', "TPG"),
    wc('k', "max_sectors_kb"),
];

/// The `show wildcards` text.
pub fn wildcards_text() -> String {
    let mut out = String::from("multipath format wildcards:\n");
    for w in MAP_WILDCARDS {
        out.push_str(&format!("%{}  {}\n", w.letter, w.header));
    }
    out.push_str("\npath format wildcards:\n");
    for w in PATH_WILDCARDS {
        out.push_str(&format!("%{}  {}\n", w.letter, w.header));
    }
    out
}

/// Something that can expand wildcards of one table.
/// An implementation provides `field` or `write_field` (each defaults to
/// the other).
pub trait Fields {
    fn table() -> &'static [Wildcard];
    /// The value for a wildcard of the table; None for unknown letters.
    fn field(&self, letter: char) -> Option<String> {
        let mut v = String::new();
        self.write_field(letter, &mut v).then_some(v)
    }
    /// Append the value for a wildcard; false (nothing written) for
    /// unknown letters.
    fn write_field(&self, letter: char, out: &mut String) -> bool {
        match self.field(letter) {
            Some(v) => {
                out.push_str(&v);
                true
            }
            None => false,
        }
    }
}

/// Snapshots hold maps and paths behind `Arc`s.
impl<T: Fields> Fields for std::sync::Arc<T> {
    fn table() -> &'static [Wildcard] {
        T::table()
    }
    fn field(&self, letter: char) -> Option<String> {
        (**self).field(letter)
    }
    fn write_field(&self, letter: char, out: &mut String) -> bool {
        (**self).write_field(letter, out)
    }
}

fn index_of(table: &[Wildcard], letter: char) -> Option<usize> {
    table.iter().position(|w| w.letter == letter)
}

/// Expand `format` for one item and append it with a newline. Unknown
/// wildcards vanish (with their `%`), known ones are padded to `widths`.
pub fn render<T: Fields>(out: &mut String, format: &str, item: &T, widths: Option<&[usize]>) {
    expand(out, format, T::table(), widths, |letter| item.field(letter));
}

/// Expand `format` as a header line: every wildcard becomes its header.
pub fn render_header<T: Fields>(out: &mut String, format: &str, widths: &[usize]) {
    let table = T::table();
    expand(out, format, table, Some(widths), |letter| {
        index_of(table, letter).map(|i| table[i].header.to_string())
    });
}

fn expand(
    out: &mut String,
    format: &str,
    table: &[Wildcard],
    widths: Option<&[usize]>,
    mut value: impl FnMut(char) -> Option<String>,
) {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(letter) = chars.next() else { break };
        let Some(idx) = index_of(table, letter) else {
            continue;
        };
        let Some(v) = value(letter) else { continue };
        out.push_str(&v);
        if let Some(w) = widths.and_then(|w| w.get(idx)) {
            for _ in v.len()..*w {
                out.push(' ');
            }
        }
    }
    out.push('\n');
}

/// A format split once: literal text, or a wildcard's table index and
/// letter. Unknown wildcards are dropped here, as `expand` drops them.
enum Seg<'f> {
    Lit(&'f str),
    Col(usize, char),
}

fn compile<'f>(format: &'f str, table: &[Wildcard]) -> Vec<Seg<'f>> {
    let mut segs = Vec::new();
    let mut lit = 0;
    let mut chars = format.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '%' {
            continue;
        }
        if lit < at {
            segs.push(Seg::Lit(&format[lit..at]));
        }
        let Some((l_at, letter)) = chars.next() else {
            lit = format.len();
            break;
        };
        lit = l_at + letter.len_utf8();
        if let Some(i) = index_of(table, letter) {
            segs.push(Seg::Col(i, letter));
        }
    }
    if lit < format.len() {
        segs.push(Seg::Lit(&format[lit..]));
    }
    segs
}

fn push_padded(out: &mut String, v: &str, width: usize) {
    out.push_str(v);
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(v.len())));
}

/// `items` as lines of `format`; when `pretty`, under a header line with
/// every column padded to its widest value. Same output as `layout`,
/// `render_header` and `render`, but each value is computed once (they
/// compute it twice), into one buffer: `show paths` over 1024 paths is
/// what monitoring polls.
pub fn rows<'a, T: Fields + 'a>(
    out: &mut String,
    format: &str,
    items: impl IntoIterator<Item = &'a T>,
    pretty: bool,
) {
    let table = T::table();
    let segs = compile(format, table);
    if !pretty {
        for item in items {
            for seg in &segs {
                match *seg {
                    Seg::Lit(t) => out.push_str(t),
                    Seg::Col(_, letter) => {
                        item.write_field(letter, out);
                    }
                }
            }
            out.push('\n');
        }
        return;
    }
    let mut widths = vec![0; table.len()];
    for seg in &segs {
        if let Seg::Col(i, _) = *seg {
            widths[i] = table[i].header.len();
        }
    }
    let mut values = String::new();
    let mut cells: Vec<Option<(usize, usize)>> = Vec::new();
    let mut lines = 0;
    for item in items {
        lines += 1;
        for seg in &segs {
            if let Seg::Col(i, letter) = *seg {
                let start = values.len();
                let cell = item
                    .write_field(letter, &mut values)
                    .then_some((start, values.len()));
                if let Some((s, e)) = cell {
                    widths[i] = widths[i].max((e - s).min(MAX_FIELD_WIDTH));
                }
                cells.push(cell);
            }
        }
    }
    let line_len: usize = segs
        .iter()
        .map(|seg| match *seg {
            Seg::Lit(t) => t.len(),
            Seg::Col(i, _) => widths[i],
        })
        .sum::<usize>()
        + 1;
    out.reserve(line_len * (lines + 1));
    for seg in &segs {
        match *seg {
            Seg::Lit(t) => out.push_str(t),
            Seg::Col(i, _) => push_padded(out, table[i].header, widths[i]),
        }
    }
    out.push('\n');
    let mut cells = cells.into_iter();
    for _ in 0..lines {
        for seg in &segs {
            match *seg {
                Seg::Lit(t) => out.push_str(t),
                Seg::Col(i, _) => {
                    if let Some(Some((s, e))) = cells.next() {
                        push_padded(out, &values[s..e], widths[i]);
                    }
                }
            }
        }
        out.push('\n');
    }
}

/// Column widths over `items` for the wildcards `format` uses (others stay
/// 0), starting from the headers' lengths when `with_header`.
pub fn layout<'a, T: Fields + 'a>(
    format: &str,
    items: impl IntoIterator<Item = &'a T>,
    with_header: bool,
) -> Vec<usize> {
    let table = T::table();
    let mut widths = vec![0; table.len()];
    if with_header {
        for i in used(format, table) {
            widths[i] = table[i].header.len();
        }
    }
    widen(format, &mut widths, items);
    widths
}

/// Widen `widths` so every item's values of the wildcards `format` uses
/// fit. Only those: a topology over 1024 paths pads 6 of 28 path columns,
/// and computing the rest cost most of its time.
pub fn widen<'a, T: Fields + 'a>(
    format: &str,
    widths: &mut [usize],
    items: impl IntoIterator<Item = &'a T>,
) {
    let table = T::table();
    let cols: Vec<(usize, char)> = used(format, table)
        .into_iter()
        .filter(|&i| i < widths.len())
        .map(|i| (i, table[i].letter))
        .collect();
    for item in items {
        for &(i, letter) in &cols {
            if let Some(v) = item.field(letter) {
                widths[i] = widths[i].max(v.len().min(MAX_FIELD_WIDTH));
            }
        }
    }
}

/// Table indices of the wildcards in `format`, each once, in table order.
fn used(format: &str, table: &[Wildcard]) -> Vec<usize> {
    let mut seen = vec![false; table.len()];
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let Some(letter) = chars.next() else { break };
        if let Some(i) = index_of(table, letter) {
            seen[i] = true;
        }
    }
    (0..table.len()).filter(|&i| seen[i]).collect()
}

/// multipathd's size printing: KiB, MiB, ... with one decimal below 10.
pub fn size_text(sectors: u64) -> String {
    // Single precision like multipathd's `float`, so rounding matches.
    let mut s = (sectors >> 1) as f32;
    let units = ['K', 'M', 'G', 'T', 'P'];
    let mut u = 0;
    while s >= 1024.0 && u < units.len() - 1 {
        s /= 1024.0;
        u += 1;
    }
    let unit = units.get(u).copied().unwrap_or('P');
    if s < 10.0 {
        format!("{s:.1}{unit}")
    } else {
        format!("{s:.0}{unit}")
    }
}

/// `XX........ 4/20`, or just ` 0/0` when there is no interval.
pub fn progress(cur: u32, total: u32) -> String {
    let mut out = String::new();
    write_progress(&mut out, cur, total);
    out
}

fn write_progress(out: &mut String, cur: u32, total: u32) {
    use std::fmt::Write as _;
    if total > 0 {
        let i = (u64::from(PROGRESS_LEN) * u64::from(cur) / u64::from(total))
            .min(u64::from(PROGRESS_LEN)) as usize;
        out.extend(std::iter::repeat_n('X', i));
        out.extend(std::iter::repeat_n('.', PROGRESS_LEN as usize - i));
    }
    let _ = write!(out, " {cur}/{total}");
}

fn or_unknown(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("[unknown]")
}

fn or_undef(v: &Option<String>) -> String {
    match v {
        Some(s) if !s.is_empty() => s.clone(),
        _ => "[undef]".to_string(),
    }
}

/// A path's LUN in SCSI wire order (the kernel's int_to_scsilun()).
pub fn lun_hex(lun: Option<u64>) -> String {
    let v = match lun {
        None => u64::MAX,
        Some(l) => {
            ((l & 0xffff) << 48)
                | ((l & 0xffff_0000) << 16)
                | ((l & 0xffff_0000_0000) >> 16)
                | ((l & 0xffff_0000_0000_0000) >> 48)
        }
    };
    format!("0x{v:016x}")
}

impl Fields for PathSnapshot {
    fn table() -> &'static [Wildcard] {
        PATH_WILDCARDS
    }

    // Written straight into the reply: `show paths` over a thousand paths
    // is polled by monitoring, one String per cell was most of its cost.
    fn write_field(&self, letter: char, out: &mut String) -> bool {
        use std::fmt::Write as _;
        let info = &self.info;
        // multipathd reports some states only for paths that belong to a map.
        let orphan = self.map.is_none();
        let fc = info.transport == Transport::Fcp;
        // Writing to a String cannot fail.
        let _ = match letter {
            'w' => write!(out, "{}", info.wwid.as_deref().unwrap_or_default()),
            'i' => match info.hcil {
                Some(h) => write!(out, "{h}"),
                None => write!(out, "#:#:#:#"),
            },
            'd' if info.dev.is_empty() => write!(out, "-"),
            'd' => write!(out, "{}", info.dev),
            'D' => match (info.dev.is_empty(), info.devt) {
                (false, Some(d)) => write!(out, "{d}"),
                _ => write!(out, "#:#"),
            },
            't' => write!(out, "{}", self.dm_state.as_str()),
            'o' if orphan => write!(out, "unknown"),
            'o' if info.dev_state == DevState::Offline => write!(out, "offline"),
            'o' => write!(out, "running"),
            'T' if orphan => write!(out, "undef"),
            'T' => write!(out, "{}", self.chk_state.as_str()),
            's' => {
                let dflt = |s: &str| if s.is_empty() { "##" } else { s }.to_string();
                write!(
                    out,
                    "{},{},{}",
                    dflt(&info.vendor),
                    dflt(&info.product),
                    dflt(&info.rev)
                )
            }
            'c' if self.checker.is_empty() => write!(out, "(null)"),
            'c' => write!(out, "{}", self.checker),
            'C' if orphan => write!(out, "orphan"),
            'C' => {
                // multipathd counts down to the next check.
                let elapsed = match self.checked_at {
                    Some(t) => u32::try_from(t.elapsed().as_secs()).unwrap_or(u32::MAX),
                    None => self.check_elapsed,
                };
                let remaining = self.check_interval.saturating_sub(elapsed);
                write_progress(out, remaining, self.check_interval);
                Ok(())
            }
            'p' => write!(out, "{}", self.prio),
            'S' => write!(out, "{}", size_text(info.size)),
            'z' => write!(out, "{}", info.serial.as_deref().unwrap_or_default()),
            'M' => write!(out, "{}", marginal(self.marginal)),
            'm' => match &self.map {
                Some(m) if !m.is_empty() => write!(out, "{m}"),
                Some(_) => write!(out, "[unknown]"),
                None => write!(out, "[orphan]"),
            },
            'N' | 'R' | 'r' if !fc => write!(out, "[undef]"),
            'N' => write!(out, "{}", or_unknown(&info.host_wwnn)),
            'R' => write!(out, "{}", or_unknown(&info.host_wwpn)),
            'r' => write!(out, "{}", or_unknown(&info.target_wwpn)),
            'n' => write!(out, "{}", or_undef(&info.target_wwnn)),
            'a' => write!(out, "{}", or_undef(&info.host_adapter)),
            'G' => write!(out, "--"),
            'g' => write!(out, "[undef]"),
            '0' => write!(out, "0"),
            'P' => write!(out, "{}", info.transport.protocol_name()),
            'I' => write!(out, "ok"),
            'L' => write!(out, "{}", lun_hex(info.hcil.map(|h| h.lun))),
            'A' => match info.tpg_id {
                Some(t) => write!(out, "0x{t:04x}"),
                None => write!(out, "[undef]"),
            },
            'k' => write!(out, "n/a"),
            _ => return false,
        };
        true
    }
}

fn marginal(m: bool) -> String {
    if m { "marginal" } else { "normal" }.into()
}

/// Every path of a map, group by group.
pub fn map_paths(map: &MapSnapshot) -> impl Iterator<Item = &PathSnapshot> + Clone {
    map.path_groups
        .iter()
        .flat_map(|g| g.paths.iter().map(|p| &**p))
}

/// First non-empty value of a path attribute across the map's paths.
fn first_path_attr(map: &MapSnapshot, get: impl Fn(&PathSnapshot) -> &str) -> Option<String> {
    map_paths(map)
        .map(get)
        .find(|s| !s.is_empty())
        .map(str::to_string)
}

impl Fields for MapSnapshot {
    fn table() -> &'static [Wildcard] {
        MAP_WILDCARDS
    }

    fn field(&self, letter: char) -> Option<String> {
        let has_dm = self.dm_minor.is_some();
        let hash = || "##".to_string();
        Some(match letter {
            'n' => {
                if self.name.is_empty() {
                    self.wwid.clone()
                } else {
                    self.name.clone()
                }
            }
            'w' => self.wwid.clone(),
            'd' => match self.dm_minor {
                Some(m) => format!("dm-{m}"),
                None => "undef".into(),
            },
            'F' => match self.failback {
                Failback::Manual => "manual".into(),
                Failback::Immediate => "immediate".into(),
                Failback::Followover => "followover".into(),
                Failback::Deferred(n) => format!("deferred:{n}"),
            },
            'Q' => {
                if self.queueing.is_empty() {
                    "-".into()
                } else {
                    self.queueing.clone()
                }
            }
            'N' => self.nr_active.to_string(),
            'r' => match (has_dm, self.write_prot) {
                (false, _) => "undef".into(),
                (true, true) => "ro".into(),
                (true, false) => "rw".into(),
            },
            't' => match (has_dm, self.dm_st.as_str()) {
                (false, _) => "undef".into(),
                (true, "") => "active".into(),
                (true, s) => s.into(),
            },
            'S' => size_text(self.size),
            'f' => self.features.clone(),
            'x' => "0".into(),
            'h' => self.hwhandler.clone(),
            'A' => self.action.clone(),
            '0' => self.stats.path_faults.to_string(),
            '1' => self.stats.switch_grp.to_string(),
            '2' => self.stats.map_loads.to_string(),
            '3' => self.stats.total_q_time.to_string(),
            '4' => self.stats.q_timeouts.to_string(),
            's' => {
                let both = map_paths(self)
                    .find(|p| !p.info.vendor.is_empty() && !p.info.product.is_empty())
                    .map(|p| format!("{},{}", p.info.vendor, p.info.product));
                match both {
                    Some(vp) => vp,
                    None if !self.vendor.is_empty() && !self.product.is_empty() => {
                        format!("{},{}", self.vendor, self.product)
                    }
                    None => "##,##".into(),
                }
            }
            'v' => first_path_attr(self, |p| &p.info.vendor)
                .or_else(|| Some(self.vendor.clone()).filter(|s| !s.is_empty()))
                .unwrap_or_else(hash),
            'p' => first_path_attr(self, |p| &p.info.product)
                .or_else(|| Some(self.product.clone()).filter(|s| !s.is_empty()))
                .unwrap_or_else(hash),
            'e' => first_path_attr(self, |p| &p.info.rev)
                .or_else(|| Some(self.rev.clone()).filter(|s| !s.is_empty()))
                .unwrap_or_else(hash),
            'G' => "--".into(),
            'g' => "[undef]".into(),
            'k' => "n/a".into(),
            _ => return None,
        })
    }
}

/// Path-group wildcards (not listed by `show wildcards`).
pub const GROUP_WILDCARDS: &[Wildcard] = &[
    wc('s', "selector"),
    wc('p', "pri"),
    wc('t', "dm_st"),
    wc('M', "marginal_st"),
];

impl Fields for PathGroupSnapshot {
    fn table() -> &'static [Wildcard] {
        GROUP_WILDCARDS
    }

    fn field(&self, letter: char) -> Option<String> {
        Some(match letter {
            's' => self.selector.clone(),
            'p' => self.prio.to_string(),
            't' => self.dm_state.as_str().into(),
            'M' => marginal(self.marginal),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_multipathd() {
        assert_eq!(size_text(2 * 1024 * 1024 * 1024), "1.0T");
        assert_eq!(size_text(200 * 1024 * 1024 * 2), "200G");
        assert_eq!(size_text(32768), "16M");
        assert_eq!(size_text(0), "0.0K");
        assert_eq!(size_text(3), "1.0K");
        // 2.5 G rounds half to even with one decimal kept below 10.
        assert_eq!(size_text(5 * 1024 * 1024), "2.5G");
        assert_eq!(size_text(25 * 1024 * 1024), "12G"); // 12.5 -> 12
    }

    #[test]
    fn progress_bar() {
        assert_eq!(progress(4, 20), "XX........ 4/20");
        assert_eq!(progress(0, 0), " 0/0");
        assert_eq!(progress(5, 5), "XXXXXXXXXX 5/5");
    }

    #[test]
    fn next_check_bar_counts_from_the_check() {
        let p = PathSnapshot {
            map: Some("mpatha".into()),
            check_elapsed: 2,
            check_interval: 10,
            checked_at: std::time::Instant::now().checked_sub(std::time::Duration::from_secs(5)),
            ..Default::default()
        };
        assert_eq!(p.field('C').as_deref(), Some("XXXXX..... 5/10"));
        // Without a real clock: the seconds the snapshot was built with.
        let simulated = PathSnapshot {
            checked_at: None,
            ..p
        };
        assert_eq!(simulated.field('C').as_deref(), Some("XXXXXXXX.. 8/10"));
    }

    #[test]
    fn lun_hex_wire_order() {
        assert_eq!(lun_hex(Some(1)), "0x0001000000000000");
        assert_eq!(lun_hex(Some(0x4001)), "0x4001000000000000");
        assert_eq!(lun_hex(None), "0xffffffffffffffff");
    }

    #[test]
    fn unknown_wildcards_vanish() {
        let m = MapSnapshot {
            name: "a".into(),
            ..Default::default()
        };
        let mut out = String::new();
        render(&mut out, "<%n|%X|%%|%", &m, None);
        assert_eq!(out, "<a|||\n");
    }

    #[test]
    fn rows_render_like_layout_and_render() {
        let maps = [
            MapSnapshot {
                name: "mpatha".into(),
                size: 2048,
                ..Default::default()
            },
            MapSnapshot {
                name: "a-much-longer-alias".into(),
                ..Default::default()
            },
        ];
        for format in ["%n %S|%X%%é %w %n%", "%n", "plain", ""] {
            let widths = layout(format, maps.iter(), true);
            let mut want = String::new();
            render_header::<MapSnapshot>(&mut want, format, &widths);
            let mut raw = String::new();
            for m in &maps {
                render(&mut want, format, m, Some(&widths));
                render(&mut raw, format, m, None);
            }
            let mut got = String::new();
            rows(&mut got, format, maps.iter(), true);
            assert_eq!(got, want, "{format}");
            let mut got_raw = String::new();
            rows(&mut got_raw, format, maps.iter(), false);
            assert_eq!(got_raw, raw, "{format}");
        }
    }

    #[test]
    fn wildcards_listing() {
        let t = wildcards_text();
        assert!(t.starts_with("multipath format wildcards:\n%n  name\n%w  uuid\n"));
        assert!(t.contains("\n\npath format wildcards:\n%w  uuid\n%i  hcil\n"));
        assert!(t.ends_with("%A  TPG\n%k  max_sectors_kb\n"));
    }
}
