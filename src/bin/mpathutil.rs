//! mpathutil: XenServer's multipath helper. `list` prints one map name a
//! line, `status` the topology of every map; both first wait up to 120 s
//! for the daemon. Extras: `paths`, `show ...` (any show command) and
//! `--json`.

use std::process::ExitCode;
use std::time::Duration;

use mpathd::client::{self, ClientError};
use mpathd::ipc::reply;

/// XenServer's tool exits with -1.
const FAILURE: u8 = 255;
/// Seconds to wait for the daemon; `MPATHUTIL_WAIT` overrides (tests).
const WAIT_SECS: u64 = 120;

/// The usage text; exit 0 when it was asked for (--help), -1 (255) for a
/// wrong command line, as XenServer's tool.
fn usage(argv0: &str, asked: bool) -> ExitCode {
    println!("Usage:");
    println!("{argv0} list");
    println!("{argv0} status");
    println!("{argv0} metrics    (Prometheus text format, for node_exporter's textfile collector)");
    println!(
        "{argv0} check      (redundancy audit: exit 0 when no map has a single point of failure)"
    );
    println!("{argv0} paths");
    println!("{argv0} show ARGS...");
    println!("(list, status, paths and check accept --json)");
    if asked {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    }
}

fn wait_for_daemon() -> bool {
    let secs = std::env::var("MPATHUTIL_WAIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(WAIT_SECS);
    for i in 0..secs.max(1) {
        if client::is_working() {
            return true;
        }
        if i + 1 < secs {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    false
}

/// Why a mode printed nothing on stdout; the text goes to stderr as is.
#[derive(Debug, thiserror::Error)]
enum UtilError {
    /// The daemon answered `fail`: its reason, with the reply's newline.
    #[error("{0}")]
    Refused(String),
    #[error("{0}\n")]
    NoAnswer(#[from] ClientError),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// A mode `main` lets through but `run` has no case for.
    #[error("")]
    NoSuchMode,
}

/// Ask the daemon; a `fail` reply or no answer is an error.
fn ask(cmd: &str) -> Result<String, UtilError> {
    match client::query(cmd) {
        Ok(r) if reply::is_fail(&r) => Err(UtilError::Refused(
            r.trim_start_matches(reply::FAIL).to_string(),
        )),
        // multipathd answers "ok" when there is nothing to show.
        Ok(r) if r == reply::OK => Ok(String::new()),
        Ok(r) => Ok(r),
        Err(e) => Err(e.into()),
    }
}

/// Map names from `show maps` (header dropped, first word of each line).
fn map_names(text: &str) -> Vec<&str> {
    let mut lines = text.lines();
    if !text.starts_with("name") {
        return Vec::new();
    }
    lines.next();
    lines.filter_map(|l| l.split_whitespace().next()).collect()
}

/// Whether `show redundancy` found nothing to report.
fn audit_clean(text: &str, json: bool) -> bool {
    if json {
        return serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| {
            v["maps"].as_array().is_some_and(|maps| {
                maps.iter()
                    .all(|m| m["findings"].as_array().is_some_and(Vec::is_empty))
            })
        });
    }
    text.lines().all(|l| l.contains(": ok: "))
}

const PATH_FIELDS: &[(&str, &str)] = &[
    ("dev", "%d"),
    ("hcil", "%i"),
    ("dev_t", "%D"),
    ("dm_st", "%t"),
    ("chk_st", "%T"),
    ("dev_st", "%o"),
    ("pri", "%p"),
    ("checker", "%c"),
    ("multipath", "%m"),
    ("uuid", "%w"),
];

fn paths_json() -> Result<String, UtilError> {
    let format: Vec<&str> = PATH_FIELDS.iter().map(|(_, w)| *w).collect();
    let text = ask(&format!("show paths raw format \"{}\"", format.join("\t")))?;
    let paths: Vec<serde_json::Value> = text
        .lines()
        .map(|line| {
            let obj: serde_json::Map<String, serde_json::Value> = PATH_FIELDS
                .iter()
                .zip(line.split('\t'))
                .map(|((k, _), v)| (k.to_string(), serde_json::Value::String(v.to_string())))
                .collect();
            serde_json::Value::Object(obj)
        })
        .collect();
    Ok(serde_json::to_string_pretty(&serde_json::json!({ "paths": paths }))? + "\n")
}

fn run(mode: &str, rest: &[String], json: bool) -> Result<String, UtilError> {
    match (mode, json) {
        ("list", false) => {
            let text = ask("show maps")?;
            Ok(map_names(&text).iter().map(|n| format!("{n}\n")).collect())
        }
        ("list", true) | ("status", true) => ask("show maps json"),
        ("status", false) => ask("show topology"),
        ("paths", false) => ask("show paths"),
        ("paths", true) => paths_json(),
        ("metrics", _) => ask("show metrics"),
        ("check", false) => ask("show redundancy"),
        ("check", true) => ask("show redundancy json"),
        ("show", _) => {
            let mut words = vec!["show".to_string()];
            words.extend(rest.iter().cloned());
            ask(&client::command_from_args(&words))
        }
        _ => Err(UtilError::NoSuchMode),
    }
}

fn main() -> ExitCode {
    client::use_configured_timeout(&mpathd::config::ConfigPaths::default());
    let args: Vec<String> = std::env::args().collect();
    let argv0 = args.first().map(String::as_str).unwrap_or("mpathutil");
    let json = args.iter().skip(1).any(|a| a == "--json");
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .filter(|a| *a != "--json")
        .cloned()
        .collect();
    let Some(mode) = words.first() else {
        return usage(argv0, false);
    };
    if matches!(mode.as_str(), "--help" | "-h" | "help") {
        return usage(argv0, true);
    }
    if !matches!(
        mode.as_str(),
        "list" | "status" | "paths" | "show" | "metrics" | "check"
    ) {
        return usage(argv0, false);
    }
    if !wait_for_daemon() {
        println!("Unable to contact Multipathd daemon");
        return ExitCode::from(FAILURE);
    }
    match run(mode, &words[1..], json) {
        Ok(text) => {
            print!("{text}");
            if mode == "check" && !audit_clean(&text, json) {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_show_maps() {
        assert_eq!(
            map_names("name   sysfs uuid\nmpatha dm-6  3600\nmpathb dm-7  3601\n"),
            vec!["mpatha", "mpathb"]
        );
        assert!(map_names("").is_empty());
    }

    #[test]
    fn errors_print_as_the_tool_prints_them() {
        assert!(matches!(
            run("bogus", &[], false),
            Err(UtilError::NoSuchMode)
        ));
        assert_eq!(UtilError::NoSuchMode.to_string(), "");
        assert_eq!(
            UtilError::Refused("no such map\n".into()).to_string(),
            "no such map\n"
        );
        let e = UtilError::from(ClientError::Connect("refused".into()));
        assert_eq!(e.to_string(), "failed to connect to multipathd (refused)\n");
    }

    #[test]
    fn audit_exit_status() {
        assert!(audit_clean(
            "a: ok: 2 usable paths share no single point of failure\n",
            false
        ));
        assert!(!audit_clean(
            "a: ok: 2 usable\nb: spof: only one usable path (sdc)\n",
            false
        ));
        assert!(audit_clean("{\"maps\":[{\"findings\":[]}]}", true));
        assert!(!audit_clean(
            "{\"maps\":[{\"findings\":[{\"kind\":\"spof\"}]}]}",
            true
        ));
        assert!(!audit_clean("not json", true));
    }
}
