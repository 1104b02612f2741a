//! The command lines, as the binaries run.

use std::process::Command;

#[test]
fn mpathutil_help_exits_0_and_a_wrong_command_255() {
    let help = Command::new(env!("CARGO_BIN_EXE_mpathutil"))
        .arg("--help")
        .output()
        .expect("run mpathutil");
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("list"));
    let bad = Command::new(env!("CARGO_BIN_EXE_mpathutil"))
        .arg("frobnicate")
        .output()
        .expect("run mpathutil");
    assert_eq!(bad.status.code(), Some(255));
}

#[test]
fn global_options_before_config_explain_are_read() {
    let dir = std::env::temp_dir().join(format!("mpathd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let conf = dir.join("m.conf");
    std::fs::write(
        &conf,
        "devices {\n\tdevice {\n\t\tvendor \"ACME\"\n\t\tproduct \"X\"\n\t\tno_path_retry 7\n\t}\n}\n",
    )
    .expect("conf");
    let out = Command::new(env!("CARGO_BIN_EXE_mpathd"))
        .args(["--config"])
        .arg(&conf)
        .args(["--config-dir"])
        .arg(&dir)
        .args(["config", "explain", "--vendor", "ACME", "--product", "X"])
        .output()
        .expect("run mpathd");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("no_path_retry") && text.contains(" 7 "),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
