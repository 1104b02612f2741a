//! The `-k` client library against a real server, checked with the rules
//! XenServer's storage manager (sm) uses to parse `multipathd -k` output
//! (COMPAT.md section 3).

mod ipc_support;

use std::time::Duration;

use ipc_support::*;
use mpathd::client::{self, Interactive};
use regex::Regex;

const TIMEOUT: Duration = Duration::from_secs(5);

/// What `multipathd -k` prints with `input` on standard input.
fn interactive(s: &TestServer, input: &str, echo: bool) -> String {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let opts = Interactive {
        echo,
        strip_ansi: true,
        timeout: TIMEOUT,
    };
    let status =
        client::run_interactive_with(&mut input.as_bytes(), &mut out, &mut err, &s.names(), &opts);
    assert_eq!(status, 0, "{}", String::from_utf8_lossy(&err));
    String::from_utf8(out).expect("utf-8")
}

/// sm's mpath_cli.mpexec(): only these two outputs count as success.
fn sm_mpexec_ok(cmd: &str, stdout: &str) -> bool {
    stdout == "multipathd> ok\nmultipathd> "
        || stdout == format!("multipathd> {cmd}\nok\nmultipathd> ")
}

/// sm's mpath_cli.list_maps().
fn sm_list_maps(stdout: &str) -> Vec<String> {
    let lines: Vec<&str> = stdout.split('\n').collect();
    let n = lines.len();
    if n < 3 {
        return Vec::new();
    }
    lines[2..n - 1]
        .iter()
        .map(|l| l.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

/// sm's mpath_cli.do_get_topology().
fn sm_topology(stdout: &str) -> Vec<String> {
    let re = Regex::new(r"multipathd>(\s*[^:]*:)?\s+(.*)").expect("regex");
    let mut lines: Vec<String> = stdout.split('\n').map(str::to_string).collect();
    lines.pop();
    if let Some(first) = lines.first_mut() {
        let caps = re
            .captures(first)
            .expect("sm's regex must match the first line");
        *first = caps
            .get(2)
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
    }
    lines
}

/// sm's mpath_cli.list_paths(): device names after H:C:T:L.
fn sm_list_paths(lines: &[String]) -> Vec<String> {
    let re = Regex::new(r"[0-9]+:[0-9]+:[0-9]+:[0-9]+\s*([a-z]*)").expect("regex");
    lines
        .iter()
        .filter_map(|l| re.captures(l))
        .map(|c| c.get(1).map(|m| m.as_str().to_string()).unwrap_or_default())
        .collect()
}

/// sm's mpathcount.get_path_count(): (usable, total).
fn sm_path_count(lines: &[String]) -> (usize, usize) {
    let lun = Regex::new(r"[0-9]*:[0-9]*:[0-9]*:[0-9]*").expect("regex");
    let up = Regex::new(r".*\d+:\d+:\d+:\d+\s+\S+\s+\S+\s+\S+\s+(\S+)").expect("regex");
    let mut count = 0;
    let mut total = 0;
    for l in lines.iter().filter(|l| lun.is_match(l)) {
        total += 1;
        let state = up
            .captures(l)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str())
            .unwrap_or_default();
        if !matches!(state, "faulty" | "shaky" | "failed") {
            count += 1;
        }
    }
    (count, total)
}

#[test]
fn mutations_print_exactly_what_sm_expects() {
    let s = TestServer::start();
    for cmd in [
        "add path sdc",
        "remove path sdc",
        "remove map mpatha",
        "resize map mpatha",
        "reconfigure",
    ] {
        // sm passes the command without a trailing newline.
        let echoed = interactive(&s, cmd, true);
        assert_eq!(echoed, format!("multipathd> {cmd}\nok\nmultipathd> "));
        assert!(sm_mpexec_ok(cmd, &echoed));
        let plain = interactive(&s, &format!("{cmd}\n"), false);
        assert_eq!(plain, "multipathd> ok\nmultipathd> ");
        assert!(sm_mpexec_ok(cmd, &plain));
    }
    // A failure is visible to sm.
    let out = interactive(&s, "remove map busy", true);
    assert!(!sm_mpexec_ok("remove map busy", &out));
    assert_eq!(
        out,
        "multipathd> remove map busy\nfail\nmap or partition in use\nmultipathd> "
    );
}

#[test]
fn sm_list_maps_finds_every_map() {
    let s = TestServer::start();
    let out = interactive(&s, "list maps", true);
    assert_eq!(
        sm_list_maps(&out),
        vec![WWID_A.to_string(), WWID_B.to_string()]
    );
    // No maps: multipathd answers "ok"; sm then finds none.
    s.snapshots
        .send_replace(std::sync::Arc::new(Default::default()));
    let out = interactive(&s, "list maps", true);
    assert_eq!(out, "multipathd> list maps\nok\nmultipathd> ");
    assert!(sm_list_maps(&out).is_empty());
}

#[test]
fn sm_topology_finds_paths_and_states() {
    let s = TestServer::start();
    let cmd = format!("show map {WWID_B} topology");
    for echo in [true, false] {
        let out = interactive(&s, &cmd, echo);
        let lines = sm_topology(&out);
        assert_eq!(sm_list_paths(&lines), vec!["sdb", "sdd"]);
        assert_eq!(sm_path_count(&lines), (1, 2));
        if !echo {
            assert_eq!(lines[0], format!("{WWID_B} dm-1 LIO-ORG,disk"));
        }
    }
    let out = interactive(&s, "show topology", true);
    let lines = sm_topology(&out);
    assert_eq!(sm_list_paths(&lines), vec!["sda", "sdc", "sdb", "sdd"]);
    assert_eq!(sm_path_count(&lines), (3, 4));
    // A map being created shows "create: " first; sm's regex skips it.
    let mut snap = sample_snapshot();
    std::sync::Arc::make_mut(&mut snap.maps[1]).action = "create".into();
    s.snapshots.send_replace(std::sync::Arc::new(snap));
    let lines = sm_topology(&interactive(&s, &format!("{cmd}\n"), false));
    assert_eq!(lines[0], format!("{WWID_B} dm-1 LIO-ORG,disk"));
}

#[test]
fn sm_liveness_check() {
    let s = TestServer::start();
    assert!(interactive(&s, "help", true).contains("switchgroup"));
    assert!(interactive(&s, "help", false).contains("switchgroup"));
}

#[test]
fn session_with_several_commands() {
    let s = TestServer::start();
    let out = interactive(
        &s,
        "show daemon\n\nreconfigure\n  quit  \nshow daemon\n",
        true,
    );
    assert_eq!(
        out,
        "multipathd> show daemon\npid 4242 idle\nmultipathd> \nmultipathd> reconfigure\nok\nmultipathd>   quit  \n"
    );
}

#[test]
fn one_shot_commands() {
    let s = TestServer::start();
    let run = |cmd: &str| {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let st = client::run_command_with(cmd, &s.names(), TIMEOUT, &mut out, &mut err);
        (
            st,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    };
    let (st, out, _) = run(&client::command_from_args(&["show", "daemon"]));
    assert_eq!((st, out.as_str()), (0, "pid 4242 idle\n"));
    let (st, out, _) = run("reconfigure");
    assert_eq!((st, out.as_str()), (0, "ok\n"));
    let (st, out, _) = run("del map busy");
    assert_eq!((st, out.as_str()), (1, "map or partition in use\n"));
    let (st, out, _) = run(&client::command_from_args(&["help"]));
    assert_eq!(st, 1);
    assert!(out.starts_with("help \n: not found\n"), "{out:?}");
    let (st, out, _) = run(&client::command_from_args(&[
        "show", "maps", "raw", "format", "%n %d",
    ]));
    assert_eq!((st, out), (0, format!("{WWID_A} dm-0\n{WWID_B} dm-1\n")));

    let nowhere = [mpathd::ipc::socket::SocketName::Path(s.dir.join("none"))];
    let mut out = Vec::new();
    let mut err = Vec::new();
    assert_eq!(
        client::run_command_with("show maps", &nowhere, TIMEOUT, &mut out, &mut err),
        1
    );
    assert_eq!(
        String::from_utf8_lossy(&err),
        "ERROR: failed to connect to multipathd\n"
    );
}
