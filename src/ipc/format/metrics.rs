//! `show metrics`: the daemon's state in the Prometheus text exposition
//! format (version 0.0.4), for node_exporter's textfile collector
//! (`mpathutil metrics`) or any scraper that can run a command.
//!
//! Rendered from the snapshot like every other query; the process's own
//! CPU time and memory are read from /proc at query time.

use std::fmt::Write as _;

use crate::model::{ChkState, DaemonSnapshot, MapSnapshot};
use crate::transport::net::NetView;

/// The daemon process's own use, from /proc/self.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub open_fds: u64,
}

impl ProcessStats {
    /// This process's figures; None where /proc cannot be read.
    pub fn current() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|t| *t > 0)
            .unwrap_or(100) as f64;
        let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
        Some(ProcessStats {
            cpu_seconds: cpu_ticks(&stat)? as f64 / tick,
            resident_bytes: resident_kib(&status)? * 1024,
            open_fds,
        })
    }
}

/// utime + stime from /proc/PID/stat (fields 14 and 15, counted after the
/// command name, which may hold spaces and parentheses).
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// VmRSS from /proc/PID/status, in KiB.
pub fn resident_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// A label value as the exposition format wants it.
fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

const STATES: &[ChkState] = &[
    ChkState::Up,
    ChkState::Down,
    ChkState::Ghost,
    ChkState::Shaky,
    ChkState::Pending,
    ChkState::Timeout,
    ChkState::Delayed,
    ChkState::Disconnected,
    ChkState::Undef,
];

/// Whether a map queues I/O now (`show maps status`'s queueing column).
fn queueing(m: &MapSnapshot) -> bool {
    m.queueing == "on" || m.queueing.ends_with(" sec")
}

fn per_map(
    out: &mut String,
    snap: &DaemonSnapshot,
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&MapSnapshot) -> String,
) {
    header(out, name, kind, help);
    for m in &snap.maps {
        let _ = writeln!(out, "{name}{{map=\"{}\"}} {}", label(&m.name), value(m));
    }
}

/// How long path checks took, as a Prometheus histogram.
fn check_latency(out: &mut String, h: &crate::model::CheckLatency) {
    let name = "mpathd_checker_duration_seconds";
    header(
        out,
        name,
        "histogram",
        "How long path checks took (checks that got no answer are counted by state, not here).",
    );
    let mut cum = 0;
    for (i, b) in crate::model::CheckLatency::BOUNDS_MS.iter().enumerate() {
        cum += h.counts[i];
        let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cum}", *b as f64 / 1000.0);
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count());
    let _ = writeln!(out, "{name}_sum {}", h.sum_ms as f64 / 1000.0);
    let _ = writeln!(out, "{name}_count {}", h.count());
}

/// The exposition text for `snap`.
/// `net` is the host's interfaces, for the redundancy findings.
pub fn render(snap: &DaemonSnapshot, process: Option<ProcessStats>, net: &NetView) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "mpathd_maps",
        "gauge",
        "Multipath maps the daemon manages.",
    );
    let _ = writeln!(out, "mpathd_maps {}", snap.maps.len());
    header(
        &mut out,
        "mpathd_paths",
        "gauge",
        "Known paths by checker state.",
    );
    for st in STATES {
        let n = snap.paths.iter().filter(|p| p.chk_state == *st).count();
        let _ = writeln!(out, "mpathd_paths{{state=\"{}\"}} {n}", st.as_str());
    }
    header(
        &mut out,
        "mpathd_map_paths",
        "gauge",
        "Paths of a map by checker state.",
    );
    for m in &snap.maps {
        for st in STATES {
            let n = m
                .path_groups
                .iter()
                .flat_map(|g| &g.paths)
                .filter(|p| p.chk_state == *st)
                .count();
            let _ = writeln!(
                out,
                "mpathd_map_paths{{map=\"{}\",state=\"{}\"}} {n}",
                label(&m.name),
                st.as_str()
            );
        }
    }
    map_counters(&mut out, snap, net);
    if let Some(p) = process {
        process_families(&mut out, p);
    }
    out
}

/// The per-map gauges and counters.
fn map_counters(out: &mut String, snap: &DaemonSnapshot, net: &NetView) {
    per_map(
        out,
        snap,
        "mpathd_map_active_paths",
        "gauge",
        "Paths the kernel may send a map's I/O to.",
        |m| m.nr_active.to_string(),
    );
    per_map(
        out,
        snap,
        "mpathd_map_redundant",
        "gauge",
        "1 when a map has two or more active paths, else 0.",
        |m| u8::from(m.nr_active >= 2).to_string(),
    );
    per_map(
        out,
        snap,
        "mpathd_map_redundancy_findings",
        "gauge",
        "Single points of failure and warnings the redundancy audit finds for a map (show redundancy).",
        |m| crate::policy::redundancy::audit_map(m, net).findings.len().to_string(),
    );
    per_map(
        out,
        snap,
        "mpathd_map_queueing",
        "gauge",
        "1 while a map queues I/O with no usable path (queue_if_no_path in force).",
        |m| u8::from(queueing(m)).to_string(),
    );
    per_map(
        out,
        snap,
        "mpathd_map_path_faults_total",
        "counter",
        "Path failures seen on a map.",
        |m| m.stats.path_faults.to_string(),
    );
    per_map(
        out,
        snap,
        "mpathd_map_path_reinstates_total",
        "counter",
        "Paths the daemon reinstated in a map (its checker found them good again).",
        |m| m.stats.path_reinstates.to_string(),
    );
    check_latency(out, &snap.check_latency.get());
    per_map(
        out,
        snap,
        "mpathd_map_switch_group_total",
        "counter",
        "Path group switches of a map.",
        |m| m.stats.switch_grp.to_string(),
    );
    per_map(
        out,
        snap,
        "mpathd_map_loads_total",
        "counter",
        "Table loads (creates and reloads) of a map.",
        |m| m.stats.map_loads.to_string(),
    );
    per_map(
        out,
        snap,
        "mpathd_map_queueing_seconds_total",
        "counter",
        "Seconds a map spent queueing with no usable path.",
        |m| m.stats.total_q_time.to_string(),
    );
    per_map(
        out,
        snap,
        "mpathd_map_queueing_timeouts_total",
        "counter",
        "no_path_retry countdowns that ran out on a map.",
        |m| m.stats.q_timeouts.to_string(),
    );
}

/// The daemon process's own use (standard process_* names).
fn process_families(out: &mut String, p: ProcessStats) {
    header(
        out,
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time of the daemon.",
    );
    let _ = writeln!(out, "process_cpu_seconds_total {}", p.cpu_seconds);
    header(
        out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory of the daemon.",
    );
    let _ = writeln!(out, "process_resident_memory_bytes {}", p.resident_bytes);
    header(
        out,
        "process_open_fds",
        "gauge",
        "Open file descriptors of the daemon.",
    );
    let _ = writeln!(out, "process_open_fds {}", p.open_fds);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{PathGroupSnapshot, PathInfo, PathSnapshot};
    use std::sync::Arc;

    fn snap() -> DaemonSnapshot {
        let path = |dev: &str, st| {
            Arc::new(PathSnapshot {
                info: Arc::new(PathInfo {
                    dev: dev.into(),
                    ..PathInfo::default()
                }),
                chk_state: st,
                ..PathSnapshot::default()
            })
        };
        let (a, b) = (path("sda", ChkState::Up), path("sdb", ChkState::Down));
        let map = MapSnapshot {
            name: "odd \"name\"\\x".into(),
            nr_active: 1,
            queueing: "5 sec".into(),
            path_groups: vec![PathGroupSnapshot {
                paths: vec![a.clone(), b.clone()],
                ..PathGroupSnapshot::default()
            }],
            ..MapSnapshot::default()
        };
        let check_latency = crate::model::LiveCheckLatency::default();
        check_latency.record(7);
        check_latency.record(200);
        DaemonSnapshot {
            maps: vec![Arc::new(map)],
            paths: vec![a, b],
            check_latency,
            ..DaemonSnapshot::default()
        }
    }

    #[test]
    fn families_and_values() {
        let text = render(
            &snap(),
            Some(ProcessStats {
                cpu_seconds: 1.5,
                resident_bytes: 4096,
                open_fds: 9,
            }),
            &NetView::default(),
        );
        assert!(text.contains("mpathd_maps 1\n"));
        assert!(text.contains("mpathd_paths{state=\"ready\"} 1\n"));
        assert!(
            text.contains("mpathd_map_paths{map=\"odd \\\"name\\\"\\\\x\",state=\"faulty\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("mpathd_map_redundant{map=\"odd \\\"name\\\"\\\\x\"} 0\n"));
        assert!(text.contains("mpathd_map_queueing{map=\"odd \\\"name\\\"\\\\x\"} 1\n"));
        assert!(text.contains("process_resident_memory_bytes 4096\n"));
        assert!(
            text.contains("mpathd_checker_duration_seconds_bucket{le=\"0.01\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("mpathd_checker_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("mpathd_checker_duration_seconds_sum 0.207\n"));
        // Every sample line belongs to a family declared before it.
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split_whitespace().next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                // A histogram's samples carry suffixes.
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|x| name.strip_suffix(x).filter(|f| declared.contains(*f)))
                    .unwrap_or(name);
                assert!(declared.contains(family), "{line}");
            }
        }
    }

    #[test]
    fn proc_files() {
        let stat = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 1000 10";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("garbage"), None);
        assert_eq!(resident_kib("Name:\tx\nVmRSS:\t  1234 kB\n"), Some(1234));
        assert_eq!(resident_kib("Name:\tx\n"), None);
        assert!(ProcessStats::current().is_some());
    }

    /// The text parses with Prometheus' own Python parser (Debian's
    /// python3-prometheus-client, which tests/vm/install-deps installs; the
    /// system interpreter, since another python3 on PATH lacks it).
    #[test]
    fn prometheus_parser_reads_it() {
        let text = render(&snap(), ProcessStats::current(), &NetView::default());
        let script = "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\nfams = list(p(sys.stdin.read()))\nprint(len(fams))\n";
        let child = std::process::Command::new("/usr/bin/python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            return skip("python3 is not installed");
        };
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(text.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No module named 'prometheus_client'") {
            return skip("python3-prometheus-client is not installed");
        }
        assert!(out.status.success(), "{err}\n{text}");
        let families: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert_eq!(
            families,
            text.matches("# TYPE ").count(),
            "families the parser found"
        );
    }

    fn skip(why: &str) {
        eprintln!("skipped: {why}");
        if let Ok(f) = std::env::var("MPATHD_SKIP_LOG") {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(f)
            {
                let _ = writeln!(f, "ipc::format::metrics::prometheus_parser_reads_it: {why}");
            }
        }
    }
}
