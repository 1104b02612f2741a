//! The mpathutil binary against a real server.

mod ipc_support;

use std::process::Command;

use ipc_support::*;

fn mpathutil(socket: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mpathutil"))
        .args(args)
        .env("MULTIPATH_SOCKET_NAME", socket)
        .env("MPATHUTIL_WAIT", "1")
        .output()
        .expect("run mpathutil");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn list_and_status() {
    let s = TestServer::start();
    assert_eq!(
        mpathutil(&s.path, &["list"]),
        (0, format!("{WWID_A}\n{WWID_B}\n"))
    );
    let (st, out) = mpathutil(&s.path, &["status"]);
    assert_eq!(st, 0);
    assert!(out.starts_with(&format!("{WWID_A} dm-0 LIO-ORG,disk\n")));
    assert!(out.contains("`- 3:0:0:1 sdd 8:48 failed faulty running\n"));
    let (st, out) = mpathutil(&s.path, &["show", "maps", "raw", "format", "%n %N"]);
    assert_eq!((st, out), (0, format!("{WWID_A} 2\n{WWID_B} 1\n")));
    let (st, out) = mpathutil(&s.path, &["paths", "--json"]);
    assert_eq!(st, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["paths"][3]["chk_st"], "faulty");
    assert_eq!(v["paths"][0]["multipath"], WWID_A);
    let (st, out) = mpathutil(&s.path, &["list", "--json"]);
    assert_eq!(st, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["maps"][1]["name"], WWID_B);
}

#[test]
fn usage_and_unreachable_daemon() {
    let s = TestServer::start();
    let (st, out) = mpathutil(&s.path, &[]);
    assert_eq!(st, 255);
    assert!(out.starts_with("Usage:\n"));
    assert!(out.contains(" list\n") && out.contains(" status\n"));
    let (st, out) = mpathutil(&s.path, &["bogus"]);
    assert_eq!(st, 255);
    assert!(out.starts_with("Usage:\n"));
    let (st, out) = mpathutil(&s.dir.join("nothing-here"), &["list"]);
    assert_eq!(
        (st, out.as_str()),
        (255, "Unable to contact Multipathd daemon\n")
    );
}
