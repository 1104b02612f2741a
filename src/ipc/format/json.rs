//! `show maps json` / `show map M json`: multipathd's hand-made JSON
//! (schema 0.1), byte for byte: its key order, spacing and indentation.

use super::fields::{render, Fields};
use crate::model::{DaemonSnapshot, MapSnapshot};

const MAJOR: u32 = 0;
const MINOR: u32 = 1;
const INDENT: usize = 3;

const JSON_MAP: &str = concat!(
    "{\n",
    "      \"name\" : \"%n\",\n",
    "      \"uuid\" : \"%w\",\n",
    "      \"sysfs\" : \"%d\",\n",
    "      \"failback\" : \"%F\",\n",
    "      \"queueing\" : \"%Q\",\n",
    "      \"paths\" : %N,\n",
    "      \"write_prot\" : \"%r\",\n",
    "      \"dm_st\" : \"%t\",\n",
    "      \"features\" : \"%f\",\n",
    "      \"hwhandler\" : \"%h\",\n",
    "      \"action\" : \"%A\",\n",
    "      \"path_faults\" : %0,\n",
    "      \"vend\" : \"%v\",\n",
    "      \"prod\" : \"%p\",\n",
    "      \"rev\" : \"%e\",\n",
    "      \"switch_grp\" : %1,\n",
    "      \"map_loads\" : %2,\n",
    "      \"total_q_time\" : %3,\n",
    "      \"q_timeouts\" : %4,"
);

const JSON_GROUP: &str = concat!(
    "{\n",
    "         \"selector\" : \"%s\",\n",
    "         \"pri\" : %p,\n",
    "         \"dm_st\" : \"%t\",\n",
    "         \"marginal_st\" : \"%M\","
);

const JSON_PATH: &str = concat!(
    "{\n",
    "            \"dev\" : \"%d\",\n",
    "            \"dev_t\" : \"%D\",\n",
    "            \"dm_st\" : \"%t\",\n",
    "            \"dev_st\" : \"%o\",\n",
    "            \"chk_st\" : \"%T\",\n",
    "            \"checker\" : \"%c\",\n",
    "            \"pri\" : %p,\n",
    "            \"host_wwnn\" : \"%N\",\n",
    "            \"target_wwnn\" : \"%n\",\n",
    "            \"host_wwpn\" : \"%R\",\n",
    "            \"target_wwpn\" : \"%r\",\n",
    "            \"host_adapter\" : \"%a\",\n",
    "            \"lun_hex\" : \"%L\",\n",
    "            \"marginal_st\" : \"%M\""
);

/// Escapes what would break the JSON. multipathd writes values raw; for
/// every sane value (no quote, backslash or control character) the two
/// agree byte for byte.
struct Escaped<'a, T>(&'a T);

impl<T: Fields> Fields for Escaped<'_, T> {
    fn table() -> &'static [super::Wildcard] {
        T::table()
    }
    fn field(&self, letter: char) -> Option<String> {
        self.0.field(letter).map(|v| escape(&v))
    }
}

fn escape(v: &str) -> String {
    if !v.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        return v.to_string();
    }
    let quoted = serde_json::Value::String(v.to_string()).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_default()
        .to_string()
}

fn indent(out: &mut String, n: usize) {
    out.push_str(&" ".repeat(n * INDENT));
}

fn footer(out: &mut String, n: usize, last: bool) {
    indent(out, n);
    out.push_str(if last { "}" } else { "}," });
}

fn header(out: &mut String) {
    out.push_str("{\n");
    out.push_str(&format!(
        "   \"major_version\": {MAJOR},\n   \"minor_version\": {MINOR},\n"
    ));
}

fn map_fields(out: &mut String, map: &MapSnapshot, last: bool) {
    render(out, JSON_MAP, &Escaped(map), None);
    // mpathd's own keys, only for maps with a reservation key, so every
    // other map reads byte for byte as multipathd's.
    if let Some(k) = map.pr_key {
        indent(out, 2);
        out.push_str(&format!("\"pr_status\" : \"{}\",\n", map.pr.as_str()));
        indent(out, 2);
        out.push_str(&format!("\"reservation_key\" : \"{k}\",\n"));
    }
    indent(out, 2);
    out.push_str("\"path_groups\": [");
    let ngroups = map.path_groups.len();
    for (i, pg) in map.path_groups.iter().enumerate() {
        render(out, JSON_GROUP, &Escaped(pg), None);
        out.push_str(&format!("         \"group\" : {},\n", i + 1));
        indent(out, 3);
        out.push_str("\"paths\": [");
        let npaths = pg.paths.len();
        for (j, p) in pg.paths.iter().enumerate() {
            render(out, JSON_PATH, &Escaped(&**p), None);
            footer(out, 3, j + 1 == npaths);
        }
        out.push_str("]\n");
        footer(out, 2, i + 1 == ngroups);
    }
    out.push_str("]\n");
    footer(out, 1, last);
}

/// `show maps json`.
pub fn maps_json(snap: &DaemonSnapshot) -> String {
    let mut out = String::new();
    header(&mut out);
    indent(&mut out, 1);
    out.push_str("\"maps\": [");
    let n = snap.maps.len();
    for (i, m) in snap.maps.iter().enumerate() {
        map_fields(&mut out, m, i + 1 == n);
    }
    out.push_str("]\n");
    out.push_str("}\n");
    out
}

/// `show map M json`.
pub fn map_json(map: &MapSnapshot) -> String {
    let mut out = String::new();
    header(&mut out);
    out.push_str("   \"map\":");
    map_fields(&mut out, map, true);
    out.push('\n');
    out.push_str("}\n");
    out
}
