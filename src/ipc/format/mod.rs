//! Replies to list/show commands, formatted exactly like multipathd's
//! (print.c / cli_handlers.c) from a [`DaemonSnapshot`].

mod fields;
mod json;
pub mod metrics;

pub use fields::{
    layout, lun_hex, map_paths, progress, render, render_header, rows, size_text, widen,
    wildcards_text, Fields, Wildcard, GROUP_WILDCARDS, MAP_WILDCARDS, MAX_FIELD_WIDTH,
    PATH_WILDCARDS,
};
pub use json::{map_json, maps_json};

use crate::ipc::command::Command;
use crate::ipc::reply;
use crate::model::{ChkState, DaemonSnapshot, MapSnapshot, PathSnapshot};
use crate::transport::net::NetView;

/// `show paths` format.
pub const PRINT_PATH_CHECKER: &str = "%i %d %D %p %t %T %o %C";
/// `show maps status` format.
pub const PRINT_MAP_STATUS: &str = "%n %F %Q %N %t %r";
/// `show maps stats` format.
pub const PRINT_MAP_STATS: &str = "%n %0 %1 %2 %3 %4";
/// `show maps` format.
pub const PRINT_MAP_NAMES: &str = "%n %d %w";
/// Path lines of a topology.
pub const PRINT_PATH_INDENT: &str = "%i %d %D %t %T %o";
/// Second line of a map's topology.
pub const PRINT_MAP_PROPS: &str = "size=%S features='%f' hwhandler='%h' wp=%r";
/// Path-group lines of a topology.
pub const PRINT_PG_INDENT: &str = "policy='%s' prio=%p status=%t";

/// Answer a query. Returns None for commands that are not queries.
/// An empty string means "nothing to show"; the server then replies `ok`
/// like multipathd.
pub fn answer_query(cmd: &Command, snap: &DaemonSnapshot) -> Option<String> {
    use Command as C;
    let not_found = || reply::fail(reply::NO_DEVICE);
    Some(match cmd {
        C::ShowPaths => paths(snap, PRINT_PATH_CHECKER, true),
        C::ShowPathsReasons => path_reasons(snap),
        C::ShowMetrics => {
            metrics::render(snap, metrics::ProcessStats::current(), &NetView::current())
        }
        C::ShowRedundancy { json } => {
            let audits = crate::policy::redundancy::audit(&snap.maps, &NetView::current());
            if *json {
                serde_json::to_string_pretty(&serde_json::json!({ "maps": audits }))
                    .map(|s| s + "\n")
                    .unwrap_or_default()
            } else {
                crate::policy::redundancy::text(&audits)
            }
        }
        C::ShowPathsFormat { format, raw } => paths(snap, format, !raw),
        C::ShowPath { path } => match find_path(snap, path) {
            Some(p) => {
                let mut out = String::new();
                render(&mut out, "%o", p, None);
                out
            }
            None => not_found(),
        },
        C::GetPrStatus { map } => match find_map(snap, map) {
            // multipathd's words, without a newline, as libmpathpersist
            // reads them.
            Some(m) => m.pr.as_str().to_string(),
            None => not_found(),
        },
        C::GetPrKey { map } => match find_map(snap, map) {
            Some(m) => match m.pr_key {
                Some(k) => format!("{k}\n"),
                None => "none\n".to_string(),
            },
            None => not_found(),
        },
        C::ShowMaps => maps(snap, PRINT_MAP_NAMES, true),
        C::ShowMapsFormat { format, raw } => maps(snap, format, !raw),
        C::ShowMapsStatus => maps(snap, PRINT_MAP_STATUS, true),
        C::ShowMapsStats => maps(snap, PRINT_MAP_STATS, true),
        C::ShowTopology => snap.topology.get_or_render(|| topology(snap)).to_string(),
        C::ShowMapsJson => maps_json(snap),
        C::ShowMapTopology { map } => match find_map(snap, map) {
            Some(m) => {
                let mut out = String::new();
                map_topology(&mut out, m, &daemon_path_layout(snap));
                out
            }
            None => not_found(),
        },
        C::ShowMapFormat {
            map,
            format,
            raw: _,
        } => match find_map(snap, map) {
            // multipathd pads to the widths of all maps, raw or not.
            Some(m) => {
                let widths = layout(format, snap.maps.iter(), true);
                let mut out = String::new();
                render(&mut out, format, m, Some(&widths));
                out
            }
            None => not_found(),
        },
        C::ShowMapJson { map } => match find_map(snap, map) {
            Some(m) => map_json(m),
            None => not_found(),
        },
        C::ShowConfig => snap.config_dump.to_string(),
        C::ShowConfigLocal => snap.config_local_dump.text().to_string(),
        C::ShowBlacklist => snap.blacklist_dump.to_string(),
        C::ShowDevices => snap.devices_dump.to_string(),
        C::ShowWildcards => wildcards_text(),
        C::ShowStatus => status(snap),
        C::ShowDaemon => daemon(snap),
        _ => return None,
    })
}

/// Find a map the way multipathd does: `dm-N`, then alias, then WWID.
pub fn find_map<'a>(snap: &'a DaemonSnapshot, name: &str) -> Option<&'a MapSnapshot> {
    let by_minor = name
        .strip_prefix("dm-")
        .and_then(|n| n.parse::<u32>().ok())
        .and_then(|minor| snap.maps.iter().find(|m| m.dm_minor == Some(minor)));
    by_minor
        .or_else(|| snap.maps.iter().find(|m| m.name == name))
        .or_else(|| snap.maps.iter().find(|m| m.wwid == name))
        .map(|m| &**m)
}

/// Find a path by `major:minor`, then by kernel name.
pub fn find_path<'a>(snap: &'a DaemonSnapshot, name: &str) -> Option<&'a PathSnapshot> {
    let by_devt = name
        .parse::<crate::model::DevT>()
        .ok()
        .and_then(|d| snap.paths.iter().find(|p| p.info.devt == Some(d)));
    by_devt
        .or_else(|| snap.paths.iter().find(|p| p.info.dev == name))
        .map(|p| &**p)
}

/// `show paths [raw] format F`: every known path; with a padded header
/// unless raw. No paths: empty.
pub fn paths(snap: &DaemonSnapshot, format: &str, pretty: bool) -> String {
    let mut out = String::new();
    if snap.paths.is_empty() {
        return out;
    }
    rows(&mut out, format, snap.paths.iter().map(|p| &**p), pretty);
    out
}

/// `show maps [raw] format F`: every map; with a padded header unless raw.
pub fn maps(snap: &DaemonSnapshot, format: &str, pretty: bool) -> String {
    let mut out = String::new();
    if snap.maps.is_empty() {
        return out;
    }
    rows(&mut out, format, snap.maps.iter(), pretty);
    out
}

/// Path column widths the daemon uses for topologies: over every known
/// path (multipathd's pathvec), not per map.
pub fn daemon_path_layout(snap: &DaemonSnapshot) -> Vec<usize> {
    let map_members = snap.maps.iter().flat_map(|m| map_paths(m));
    layout(
        PRINT_PATH_INDENT,
        snap.paths.iter().map(|p| &**p).chain(map_members),
        false,
    )
}

/// Path column widths over one map's paths: `multipath -ll` layout.
pub fn map_path_layout(map: &MapSnapshot) -> Vec<usize> {
    layout(PRINT_PATH_INDENT, map_paths(map), false)
}

/// `show topology`: every map, path columns padded over all paths.
pub fn topology(snap: &DaemonSnapshot) -> String {
    let widths = daemon_path_layout(snap);
    let mut out = String::new();
    for m in &snap.maps {
        map_topology(&mut out, m, &widths);
    }
    out
}

/// One map's topology (`multipath -ll` style) with the given path widths:
/// `[action: ]name[ (wwid)] dm-N VEND,PROD`, the properties line, then the
/// groups and their paths as a tree.
pub fn map_topology(out: &mut String, map: &MapSnapshot, path_widths: &[usize]) {
    let mut style = String::new();
    if !map.action.is_empty() {
        style.push_str("%A: ");
    }
    style.push_str("%n");
    if map.field('n').as_deref() != Some(map.wwid.as_str()) {
        style.push_str(" (%w)");
    }
    style.push_str(" %d %s");
    render(out, &style, map, None);
    render(out, PRINT_MAP_PROPS, map, None);
    let ngroups = map.path_groups.len();
    for (j, pg) in map.path_groups.iter().enumerate() {
        let last_group = j + 1 == ngroups;
        out.push_str(if last_group { "`-+- " } else { "|-+- " });
        render(out, PRINT_PG_INDENT, pg, None);
        let npaths = pg.paths.len();
        for (i, p) in pg.paths.iter().enumerate() {
            out.push(if last_group { ' ' } else { '|' });
            out.push(' ');
            out.push(if i + 1 == npaths { '`' } else { '|' });
            out.push_str("- ");
            render(out, PRINT_PATH_INDENT, &**p, Some(path_widths));
        }
    }
}

/// `multipath -ll` text for one map: topology with per-map path widths.
pub fn multipath_ll(map: &MapSnapshot) -> String {
    let mut out = String::new();
    map_topology(&mut out, map, &map_path_layout(map));
    out
}

/// The checker-state names and order of `show status`.
const STATUS_ORDER: &[(ChkState, &str)] = &[
    (ChkState::Undef, "unchecked"),
    (ChkState::Down, "down"),
    (ChkState::Up, "up"),
    (ChkState::Shaky, "shaky"),
    (ChkState::Ghost, "ghost"),
    (ChkState::Pending, "pending"),
    (ChkState::Timeout, "timeout"),
    (ChkState::Delayed, "delayed"),
    (ChkState::Disconnected, "disconnected"),
];

/// `show status`: path counts per checker state, monitored paths, busy.
/// A path still unchecked counts as not monitored yet.
pub fn status(snap: &DaemonSnapshot) -> String {
    let mut out = String::from("path checker states:\n");
    for (state, name) in STATUS_ORDER {
        let n = snap.paths.iter().filter(|p| p.chk_state == *state).count();
        if n > 0 {
            out.push_str(&format!("{name:<20}{n}\n"));
        }
    }
    let monitored = snap
        .paths
        .iter()
        .filter(|p| p.chk_state != ChkState::Undef)
        .count();
    out.push_str(&format!(
        "\npaths: {monitored}\nbusy: {}\n",
        if snap.busy { "True" } else { "False" }
    ));
    out
}

/// `show daemon`: `pid N state`.
pub fn daemon(snap: &DaemonSnapshot) -> String {
    let state = if snap.state.is_empty() {
        "init"
    } else {
        snap.state.as_str()
    };
    format!("pid {} {}\n", snap.pid, state)
}

#[cfg(test)]
mod golden;

/// `show paths reasons`: one line a path, `dev  reason`, padded.
fn path_reasons(snap: &DaemonSnapshot) -> String {
    let width = snap
        .paths
        .iter()
        .map(|p| p.info.dev.len())
        .max()
        .unwrap_or(3)
        .max(3);
    let mut out = format!("{:width$} reason\n", "dev");
    for p in &snap.paths {
        let why = if p.why.is_empty() {
            "not evaluated yet"
        } else {
            &p.why
        };
        out.push_str(&format!("{:width$} {why}\n", p.info.dev));
    }
    out
}

#[cfg(test)]
mod reasons_tests {
    use super::*;
    use crate::model::{PathInfo, PathSnapshot};
    use std::sync::Arc;

    #[test]
    fn reasons_one_line_a_path() {
        let snap = DaemonSnapshot {
            paths: vec![
                Arc::new(PathSnapshot {
                    info: PathInfo {
                        dev: "sda".into(),
                        ..PathInfo::default()
                    }
                    .into(),
                    why: "blacklisted by devnode \"^sda\"".into(),
                    ..PathSnapshot::default()
                }),
                Arc::new(PathSnapshot {
                    info: PathInfo {
                        dev: "sdaa".into(),
                        ..PathInfo::default()
                    }
                    .into(),
                    ..PathSnapshot::default()
                }),
            ],
            ..DaemonSnapshot::default()
        };
        assert_eq!(
            answer_query(&Command::ShowPathsReasons, &snap).as_deref(),
            Some("dev  reason\nsda  blacklisted by devnode \"^sda\"\nsdaa not evaluated yet\n")
        );
    }
}
