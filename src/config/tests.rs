#![allow(clippy::unwrap_used)]
//! Unit tests: grammar, errors, precedence, detect_*, lints, eSSM seed,
//! hwtable parity with multipath-tools 0.9.4, round trips.

use super::*;
use crate::model::{
    Failback, FilterResult, NoPathRetry, PathFilter, PathInfo, PgPolicy, RrWeight, Transport,
};

const FIXTURE: &str = include_str!("../../tests/data/multipath-t-0.9.4.txt");

/// The euroNAS stanza exactly as the vendor guide prints it (seed 002).
const ESSM_AS_PRINTED: &str = "device {
vendor \"eSSM*\"
getuid_callout \"/sbin/scsi_id -g -u -s /block/%n\"
features \"1 queue_if_no_path\"
hardware_handler \"1 alua\"
path_grouping_policy group_by_prio
failback immediate
rr_weight uniform
rr_min_io 100
path_checker tur
no_path_retry queue
prio alua
";

fn parse(text: &str) -> (Config, Vec<Diagnostic>) {
    match Config::parse_str(text, "test.conf") {
        Ok(r) => r,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match Config::parse_str(text, "test.conf") {
        Ok((_, d)) => panic!("expected an error, got none (diags: {d:?})"),
        Err(e) => e.errors().cloned().collect(),
    }
}

fn has(diags: &[Diagnostic], sev: Severity, needle: &str) -> bool {
    diags
        .iter()
        .any(|d| d.severity == sev && d.message.contains(needle))
}

fn path(vendor: &str, product: &str) -> PathInfo {
    PathInfo {
        dev: "sdc".into(),
        vendor: vendor.into(),
        product: product.into(),
        ..Default::default()
    }
}

// ---------------------------------------------------------------- grammar

#[test]
fn grammar_basics() {
    let (c, d) = parse(
        "# comment\n! another\ndefaults {\n\tpolling_interval 10 # trailing\n\tuser_friendly_names yes\n\
         \talias_prefix \"my\"\"pfx\"\n}\nblacklist {\n\tdevnode \"^sda$\"\n\twwid 3600\n\
         \tdevice {\n\t\tvendor QEMU\n\t\tproduct \".*\"\n\t}\n}\n\
         overrides {\n\tno_path_retry 5\n\tprotocol {\n\t\ttype scsi:iscsi\n\t\tdev_loss_tmo 60\n\t}\n}\n\
         multipaths {\n\tmultipath {\n\t\twwid 36001\n\t\talias data\n\t}\n}\n",
    );
    assert!(d.iter().all(|d| d.severity != Severity::Error), "{d:?}");
    assert_eq!(c.defaults["polling_interval"].text, "10");
    assert_eq!(c.defaults["user_friendly_names"].text, "yes");
    assert_eq!(c.defaults["alias_prefix"].text, "my\"pfx");
    assert_eq!(c.blacklist.devnode[0].text, "^sda$");
    assert_eq!(c.blacklist.wwid[0].text, "3600");
    assert_eq!(c.blacklist.device[0].get("vendor"), Some("QEMU"));
    assert_eq!(c.overrides["no_path_retry"].text, "5");
    assert_eq!(c.overrides_protocols[0].get("type"), Some("scsi:iscsi"));
    assert_eq!(c.multipaths[0].get("alias"), Some("data"));
    let loc = c.defaults["polling_interval"].loc.clone().unwrap();
    assert_eq!((loc.line, loc.column), (4, 2));
}

#[test]
fn brace_without_space_and_checker_alias() {
    let (c, _) = parse("devices{\ndevice{\nvendor X\nproduct Y\nchecker directio\n}\n}\n");
    assert_eq!(c.devices[0].get("path_checker"), Some("directio"));
}

#[test]
fn error_unclosed_section_points_at_its_line() {
    let e = errors(
        "defaults {\n polling_interval 5\n}\ndevices {\n  device {\n   vendor A\n   product B\n}\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].line, e[0].column), (4, 1));
    assert!(e[0]
        .message
        .contains("'devices' opened here is never closed"));
}

#[test]
fn error_unclosed_before_next_section() {
    let e = errors(
        "devices {\n  device {\n   vendor A\n   product B\n\ndefaults {\n polling_interval 5\n}\n",
    );
    // device (line 2) and devices (line 1) are both unclosed at 'defaults {'.
    assert!(
        e.iter().any(|d| d.line == 2
            && d.message
                .contains("'device' opened here is not closed before 'defaults {' at line 6")),
        "{e:?}"
    );
}

#[test]
fn error_unmatched_brace_stray_value_bad_number() {
    let e = errors("}\n");
    assert_eq!((e[0].line, e[0].column), (1, 1));
    assert!(e[0].message.contains("unmatched"));

    let e = errors("defaults {\n\tpath_selector round-robin 0\n}\n");
    assert_eq!((e[0].line, e[0].column), (2, 28));
    assert!(e[0].message.contains("stray value '0'"));
    assert!(e[0].message.contains("quote values containing spaces"));

    let e = errors("defaults {\n\tpolling_interval 5s\n}\n");
    assert_eq!((e[0].line, e[0].column), (2, 19));
    assert!(e[0]
        .message
        .contains("bad number \"5s\" for polling_interval"));

    let e = errors("defaults {\n\tno_path_retry qeueu\n}\n");
    assert!(
        e[0].message.contains("did you mean \"queue\""),
        "{}",
        e[0].message
    );

    let e = errors("defaults {\n\tpolling_interval\n}\n");
    assert!(e[0].message.contains("missing value"));

    let e = errors("blacklist {\n\tdevnode !^sd\n}\n");
    assert!(e[0].message.contains("'!' outside quotes starts a comment"));

    let e = errors("devices\n{\n}\n");
    assert!(e
        .iter()
        .any(|d| d.line == 1 && d.message.contains("expected '{' after 'devices'")));

    let e = errors("defaults {\n\tuid_attribute \"ID_SERIAL\n}\n");
    assert_eq!((e[0].line, e[0].column), (2, 16));
    assert!(e[0].message.contains("missing closing quote"));

    let e = errors("devices {\n device {\n  vendor “eSSM”\n }\n}\n");
    assert!(e[0].message.contains("typographic quote"));

    let e = errors("devices {\n device {\n  vendor *SSM\n  product .*\n }\n}\n");
    assert!(e[0].message.contains("repeats nothing"));

    let e = errors("defaults {\n} extra\n");
    assert!(e[0].message.contains("stray 'extra'"));
}

#[test]
fn error_non_utf8_and_size() {
    let e = Config::parse_bytes(b"defaults {\n\tprio \"c\xe9\"\n}\n", "latin1.conf").unwrap_err();
    let d = e.errors().next().unwrap();
    assert_eq!((d.line, d.column), (2, 9));
    assert!(d.message.contains("0xe9"));
    assert_eq!(
        d.to_string(),
        format!("latin1.conf:2:9: error: {}", d.message)
    );

    let big = vec![b'#'; (parser::MAX_FILE_SIZE + 1) as usize];
    assert!(Config::parse_bytes(&big, "big.conf").is_err());
}

#[test]
fn unreadable_file_is_an_error() {
    let dir = std::env::temp_dir().join(format!("mpathd-cfg-unreadable-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    // A directory in place of the main file: exists, cannot be read.
    let paths = ConfigPaths {
        main: dir.clone(),
        conf_dir: dir.join("none"),
    };
    let e = Config::load(&paths).unwrap_err();
    assert!(e.errors().next().unwrap().message.contains("cannot read"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn warnings_unknown_deprecated_unsupported_misplaced() {
    let (c, d) = parse(
        "defaults {\n\tpolling_intervall 5\n\tgetuid_callout \"/lib/udev/scsi_id\"\n\
         \tverbosity 2\n\tmax_fds max\n\tvendor X\n}\n",
    );
    assert!(has(&d, Severity::Warning, "unknown keyword 'polling_intervall' in the 'defaults' section (did you mean 'polling_interval'?)"));
    let dep = d
        .iter()
        .find(|x| x.message.contains("getuid_callout"))
        .unwrap();
    assert!(dep.message.contains("deprecated") && dep.message.contains("uid_attribute"));
    assert_eq!((dep.line, dep.column), (3, 2));
    // max_fds has its effect (the open-file limit): no complaint.
    assert!(!d.iter().any(|x| x.message.contains("'max_fds'")));
    assert!(has(
        &d,
        Severity::Warning,
        "'vendor' is not valid in the 'defaults' section (it belongs in devices/device)"
    ));
    assert!(!c.defaults.contains_key("getuid_callout"));
    let line = d
        .iter()
        .find(|x| x.message.contains("polling_intervall"))
        .unwrap()
        .to_string();
    assert!(
        line.starts_with("test.conf:2:2: warning: unknown keyword"),
        "{line}"
    );

    for kw in [
        "multipath_dir \"/lib\"",
        "pg_timeout 10",
        "config_dir \"/etc/x\"",
        "bindings_file \"/b\"",
        "wwids_file \"/w\"",
        "prkeys_file \"/p\"",
    ] {
        let (_, d) = parse(&format!("defaults {{\n\t{kw}\n}}\n"));
        assert!(
            has(&d, Severity::Warning, "is deprecated and ignored"),
            "{kw}: {d:?}"
        );
    }
}

#[test]
fn every_documented_keyword_is_known() {
    // Every keyword of every section parses without "unknown keyword".
    for (sec, kws) in [
        ("defaults {\n", keywords::DEFAULTS),
        ("devices {\ndevice {\n", keywords::DEVICE),
        ("overrides {\n", keywords::OVERRIDES),
        ("multipaths {\nmultipath {\n", keywords::MULTIPATH),
    ] {
        for kw in kws {
            let value = match keywords::kind(kw) {
                keywords::Kind::YesNo => "no".to_string(),
                keywords::Kind::Int { min, .. } => min.max(1).to_string(),
                keywords::Kind::Words(w) => w[0].to_string(),
                keywords::Kind::IntOrWords { words, .. } => words[0].to_string(),
                _ => "\"x\"".to_string(),
            };
            let value = match *kw {
                "features" | "hardware_handler" => "\"0\"".to_string(),
                "path_selector" => "\"service-time 0\"".to_string(),
                "path_checker" => "tur".to_string(),
                "prio" => "const".to_string(),
                _ => value,
            };
            let close = if sec.matches('{').count() == 2 {
                "}\n}\n"
            } else {
                "}\n"
            };
            let extra = if *kw == "vendor" {
                "product y\n"
            } else if sec.starts_with("devices") {
                "vendor y\nproduct y\n"
            } else {
                ""
            };
            let text = format!("{sec}{extra}{kw} {value}\n{close}");
            let d = match Config::parse_str(&text, "test.conf") {
                Ok((_, d)) => d,
                Err(e) => e.diagnostics,
            };
            assert!(
                !d.iter().any(|x| x.message.contains("unknown keyword")),
                "{kw}: {d:?}"
            );
        }
    }
}

// ---------------------------------------------------------------- eSSM

#[test]
fn essm_as_printed_gives_one_clear_error() {
    let e = Config::parse_str(ESSM_AS_PRINTED, "/etc/multipath.conf").unwrap_err();
    let errs: Vec<_> = e.errors().collect();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].line, 1);
    assert_eq!(
        errs[0].to_string(),
        "/etc/multipath.conf:1:1: error: section 'device' opened here is never closed: add a \
         line with '}' after its last setting"
    );
    // Pasted into an existing devices section, before another entry.
    let text = format!("devices {{\n{ESSM_AS_PRINTED}device {{\nvendor X\nproduct Y\n}}\n}}\n");
    let e = Config::parse_str(&text, "m.conf").unwrap_err();
    let errs: Vec<_> = e.errors().collect();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].line, 2);
    assert!(errs[0]
        .message
        .contains("not closed before 'device {' at line 14"));
}

fn assert_essm_settings(c: &Config) {
    let info = PathInfo {
        tpgs: 1,
        ..path("eSSM_BIO", "testdisk_0")
    };
    let s = c.resolve_explained(&info);
    assert_eq!(s.path_grouping_policy, PgPolicy::GroupByPrio);
    assert_eq!(s.features.to_string(), "1 queue_if_no_path");
    assert_eq!(s.hardware_handler.to_string(), "1 alua");
    assert_eq!(s.failback, Failback::Immediate);
    assert_eq!(s.rr_weight, RrWeight::Uniform);
    assert_eq!(s.rr_min_io, 100);
    assert_eq!(s.path_checker, "tur");
    assert_eq!(s.no_path_retry, NoPathRetry::Queue);
    assert_eq!(s.prio, "alua");
    // Where they come from: the user's entry (not the built-in one).
    assert!(
        s.origins["rr_min_io"]
            .source
            .starts_with("devices (essm.conf:"),
        "{:?}",
        s.origins["rr_min_io"]
    );
    assert!(s.origins["features"]
        .source
        .starts_with("devices (essm.conf:"));
    for kw in [
        "path_grouping_policy",
        "prio",
        "path_checker",
        "failback",
        "no_path_retry",
        "hardware_handler",
        "rr_weight",
    ] {
        assert!(s.origins.contains_key(kw), "{kw}");
    }
}

#[test]
fn essm_corrected_inside_devices() {
    let text = format!("devices {{\n{ESSM_AS_PRINTED}}}\n}}\n");
    let (c, d) = Config::parse_str(&text, "essm.conf").unwrap();
    assert!(has(&d, Severity::Warning, "getuid_callout' is deprecated"));
    assert!(has(
        &d,
        Severity::Warning,
        "\"eSS\" followed by any number of 'M'"
    ));
    assert!(has(&d, Severity::Warning, "device entry without 'product'"));
    assert!(has(
        &d,
        Severity::Warning,
        "features \"queue_if_no_path\" is deprecated"
    ));
    assert!(has(
        &d,
        Severity::Note,
        "rr_min_io only applies to bio-based maps"
    ));
    assert_essm_settings(&c);
}

#[test]
fn essm_bare_at_top_level_with_brace() {
    let text = format!("{ESSM_AS_PRINTED}}}\n");
    let (c, d) = Config::parse_str(&text, "essm.conf").unwrap();
    assert!(has(&d, Severity::Warning, "'device' section at top level"));
    assert_essm_settings(&c);
}

#[test]
fn essm_conf_example_file() {
    let text = include_str!("../../conf/conf.d/euronas-essm.conf");
    let (c, d) = Config::parse_str(text, "euronas-essm.conf").unwrap();
    assert!(!d.iter().any(|x| x.severity == Severity::Warning), "{d:?}");
    let s = c.resolve(&PathInfo {
        tpgs: 1,
        ..path("eSSM_BIO", "testdisk_0")
    });
    assert_eq!(s.no_path_retry, NoPathRetry::Queue);
    assert_eq!(s.prio, "alua");
    assert_eq!(s.rr_min_io, 100);
    assert_eq!(s.path_grouping_policy, PgPolicy::GroupByPrio);
    // The built-in entry alone gives the same for eSSM.
    let b = Config::default().resolve_explained(&PathInfo {
        tpgs: 1,
        ..path("eSSM_BIO", "testdisk_0")
    });
    assert_eq!(b.prio, "alua");
    assert_eq!(b.no_path_retry, NoPathRetry::Queue);
    assert_eq!(b.origins["rr_min_io"].source, "devices (built-in ^eSSM/.*)");
}

#[test]
fn example_files_parse() {
    let text = include_str!("../../conf/multipath.conf");
    let (_, d) = Config::parse_str(text, "multipath.conf").unwrap();
    assert!(!d.iter().any(|x| x.severity == Severity::Warning), "{d:?}");
    let (c, d) =
        Config::from_toml_str(include_str!("../../conf/mpathd.toml"), "mpathd.toml").unwrap();
    assert!(!d.iter().any(|x| x.severity == Severity::Warning), "{d:?}");
    assert!(!c.devices.is_empty());
}

// ---------------------------------------------------------------- precedence

#[test]
fn precedence_full_chain() {
    let (c, _) = parse(
        "defaults {\n\tfailback 11\n\trr_min_io_rq 2\n\tno_path_retry 3\n\tpath_selector \"round-robin 0\"\n\tflush_on_last_del yes\n}\n\
         devices {\n\tdevice {\n\t\tvendor ACME\n\t\tproduct \".*\"\n\t\tfailback 22\n\t\trr_min_io_rq 4\n\t\tno_path_retry 5\n\t}\n\
         \tdevice {\n\t\tvendor ACME\n\t\tproduct \"^Box\"\n\t\tfailback 33\n\t}\n}\n\
         overrides {\n\tno_path_retry 7\n}\n\
         multipaths {\n\tmultipath {\n\t\twwid 3600a\n\t\tno_path_retry 9\n\t}\n}\n",
    );
    let mut info = path("ACME", "Box1");
    let s = c.resolve_explained(&info);
    assert_eq!(s.failback, Failback::Deferred(33)); // later matching device entry
    assert_eq!(s.origins["failback"].source, "devices (test.conf:19)");
    assert_eq!(s.rr_min_io_rq, 4); // earlier device entry, later lacks it
    assert_eq!(s.no_path_retry, NoPathRetry::Retries(7)); // overrides over devices
    assert_eq!(
        s.origins["no_path_retry"].source,
        "overrides (test.conf:23)"
    );
    assert_eq!(s.path_selector, "round-robin 0"); // defaults
    assert_eq!(s.origins["path_selector"].source, "defaults (test.conf:5)");
    assert!(s.flush_on_last_del);
    assert_eq!(s.path_checker, "tur");
    assert_eq!(s.origins["path_checker"].source, "built-in default");
    info.wwid = Some("3600a".into());
    let s = c.resolve_explained(&info);
    assert_eq!(s.no_path_retry, NoPathRetry::Retries(9)); // multipaths wins
    assert!(s.origins["no_path_retry"]
        .source
        .starts_with("multipaths (test.conf:"));
    // Every Settings field has an origin.
    for (kw, _) in show::settings_lines(&s) {
        assert!(s.origins.contains_key(kw), "no origin for {kw}");
    }
}

#[test]
fn user_device_over_builtin_and_builtin_origin() {
    // HITACHI OPEN- is built in with group_by_prio/alua... use 3PARdata VV.
    let s = Config::default().resolve_explained(&path("3PARdata", "VV"));
    assert_eq!(s.no_path_retry, NoPathRetry::Retries(18));
    assert_eq!(
        s.origins["no_path_retry"].source,
        "devices (built-in 3PARdata/VV)"
    );
    let (c, _) =
        parse("devices {\n device {\n  vendor 3PARdata\n  product VV\n  no_path_retry 2\n }\n}\n");
    let s = c.resolve(&path("3PARdata", "VV"));
    assert_eq!(s.no_path_retry, NoPathRetry::Retries(2));
    assert_eq!(s.dev_loss_tmo, Some(u32::MAX)); // still from the built-in entry
    assert_eq!(s.fast_io_fail_tmo, Some(10));
}

#[test]
fn overrides_protocol_subsection() {
    let (c, _) = parse(
        "overrides {\n dev_loss_tmo 30\n protocol {\n  type scsi:iscsi\n  dev_loss_tmo 60\n }\n}\n",
    );
    let mut info = path("X", "Y");
    assert_eq!(c.resolve(&info).dev_loss_tmo, Some(30));
    info.transport = Transport::Iscsi;
    let s = c.resolve_explained(&info);
    assert_eq!(s.dev_loss_tmo, Some(60));
    assert!(s.origins["dev_loss_tmo"]
        .source
        .starts_with("overrides protocol scsi:iscsi ("));
}

#[test]
fn max_polling_interval_follows_polling_interval() {
    let (c, _) = parse("defaults {\n polling_interval 10\n}\n");
    let s = c.defaults_settings();
    assert_eq!((s.polling_interval, s.max_polling_interval), (10, 40));
    let d = c.daemon();
    assert_eq!(d.max_polling_interval, 40);
    assert_eq!(d.uxsock_timeout_ms, 4000);
    assert_eq!(
        Config::default().defaults_settings().max_polling_interval,
        20
    );
}

#[test]
fn max_fds_is_a_number_or_max() {
    assert_eq!(Config::default().daemon().max_fds, None);
    let (c, _) = parse("defaults {\n max_fds 8192\n}\n");
    assert_eq!(c.daemon().max_fds, Some(8192));
    let (c, _) = parse("defaults {\n max_fds max\n}\n");
    assert_eq!(c.daemon().max_fds, None);
}

// ---------------------------------------------------------------- detect_*

#[test]
fn detect_prio_checker_pgpolicy() {
    let (c, _) = parse(
        "devices {\n device {\n  vendor ACME\n  product .*\n  prio const\n  path_checker directio\n  path_grouping_policy multibus\n }\n}\n",
    );
    let mut info = path("ACME", "Z");
    let s = c.resolve(&info);
    assert_eq!(
        (s.prio.as_str(), s.path_checker.as_str()),
        ("const", "directio")
    );
    assert_eq!(s.path_grouping_policy, PgPolicy::Multibus);
    assert_eq!(s.hardware_handler.to_string(), "0");

    info.tpgs = 1;
    let s = c.resolve_explained(&info);
    assert_eq!(s.prio, "alua");
    assert!(s.origins["prio"].source.starts_with("detect_prio"));
    assert_eq!(s.path_checker, "tur");
    assert!(s.origins["path_checker"]
        .source
        .starts_with("detect_checker"));
    assert_eq!(s.path_grouping_policy, PgPolicy::GroupByPrio);
    assert!(s.origins["path_grouping_policy"]
        .source
        .starts_with("detect_pgpolicy"));
    assert_eq!(s.hardware_handler.to_string(), "1 alua");

    // The kernel's ALUA handler exposes access_state: sysfs prio.
    info.access_state = Some("active/optimized".into());
    assert_eq!(c.resolve(&info).prio, "sysfs");

    // detect_* off: configured values stand, even with TPGS.
    let (c, _) = parse(
        "defaults {\n detect_prio no\n detect_checker no\n detect_pgpolicy no\n prio const\n path_checker directio\n}\n",
    );
    let s = c.resolve(&info);
    assert_eq!(
        (s.prio.as_str(), s.path_checker.as_str()),
        ("const", "directio")
    );
    assert_eq!(s.path_grouping_policy, PgPolicy::Failover);

    // Even a multipaths prio loses to detect_prio (propsel.c order).
    let (c, _) = parse("multipaths {\n multipath {\n  wwid w1\n  prio const\n }\n}\n");
    let s = c.resolve(&PathInfo {
        tpgs: 1,
        wwid: Some("w1".into()),
        ..path("X", "Y")
    });
    assert_eq!(s.prio, "alua");
}

#[test]
fn alua_without_tpgs_falls_back_to_const() {
    let (c, _) = parse("defaults {\n prio alua\n}\n");
    let s = c.resolve_explained(&path("X", "Y"));
    assert_eq!(s.prio, "const");
    assert!(s.origins["prio"].source.contains("emergency fallback"));
}

#[test]
fn features_queue_if_no_path_reconciled() {
    let (c, _) = parse("defaults {\n features \"1 queue_if_no_path\"\n}\n");
    let s = c.resolve(&path("X", "Y"));
    assert_eq!(s.no_path_retry, NoPathRetry::Queue);
    let (c, _) = parse(
        "defaults {\n features \"2 queue_if_no_path pg_init_retries 50\"\n no_path_retry 4\n}\n",
    );
    let s = c.resolve(&path("X", "Y"));
    assert_eq!(s.no_path_retry, NoPathRetry::Retries(4));
    assert_eq!(s.features.to_string(), "2 pg_init_retries 50");
    assert_eq!(s.pg_init_retries, Some(50));
}

// ---------------------------------------------------------------- blacklist

#[test]
fn blacklist_semantics() {
    let c = Config::default();
    let mut info = path("ACME", "Disk");
    info.properties.insert("ID_SERIAL".into(), "x".into());
    // No SCSI_IDENT_/ID_WWN property while ID_SERIAL is present.
    match c.filter_path(&info) {
        FilterResult::Blacklisted { by } => assert!(by.contains("udev property missing"), "{by}"),
        r => panic!("{r:?}"),
    }
    info.properties.insert("ID_WWN".into(), "0x6".into());
    match c.filter_path(&info) {
        FilterResult::Excepted { by } => {
            assert!(by.contains("(SCSI_IDENT_|ID_WWN)") && by.contains("built-in"))
        }
        r => panic!("{r:?}"),
    }
    // Built-in devnode rule.
    assert!(c.filter_devnode("dm-0").is_blacklisted());
    assert!(!c.filter_devnode("sdc").is_blacklisted());
    // product_blacklist of the built-in table.
    assert!(c
        .filter_path(&path("DELL", "Universal Xport"))
        .is_blacklisted());

    let (c, _) = parse(
        "blacklist {\n devnode \"^sd[a-b]$\"\n wwid \"^36\"\n protocol \"scsi:usb\"\n device {\n  vendor QEMU\n }\n}\n\
         blacklist_exceptions {\n wwid \"^3600a\"\n}\n",
    );
    match c.filter_devnode("sda") {
        FilterResult::Blacklisted { by } => assert_eq!(
            by,
            "blacklist devnode \"^sd[a-b]$\" (test.conf:2) matched device node \"sda\""
        ),
        r => panic!("{r:?}"),
    }
    assert!(c.filter_path(&path("QEMU", "HARDDISK")).is_blacklisted());
    let mut info = path("ACME", "Disk");
    info.wwid = Some("36001".into());
    assert!(c.filter_path(&info).is_blacklisted());
    info.wwid = Some("3600a1".into());
    assert!(matches!(
        c.filter_path(&info),
        FilterResult::Excepted { .. }
    ));
    info.wwid = None;
    assert_eq!(c.filter_path(&info), FilterResult::Allowed);
}

// ---------------------------------------------------------------- hwtable

fn fixture_devices() -> Vec<Vec<(String, String)>> {
    // Parse the fixture with our own parser, keep per-entry keyword order
    // from the text itself.
    let mut out = Vec::new();
    let mut cur: Option<Vec<(String, String)>> = None;
    let mut in_devices = false;
    for line in FIXTURE.lines() {
        if line == "devices {" {
            in_devices = true;
            continue;
        }
        if in_devices && line == "}" {
            break;
        }
        if !in_devices {
            continue;
        }
        match line.trim() {
            "device {" => cur = Some(Vec::new()),
            "}" => out.extend(cur.take()),
            l => {
                let (k, v) = l.split_once(' ').unwrap_or((l, ""));
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                if let Some(c) = cur.as_mut() {
                    c.push((k.to_string(), v.replace("\"\"", "\"")));
                }
            }
        }
    }
    out
}

#[test]
fn hwtable_parity() {
    let fx = fixture_devices();
    assert_eq!(fx.len(), 123);
    assert_eq!(hwtable::UPSTREAM_DEVICE_COUNT, 123);
    assert_eq!(hwtable::BUILTIN_DEVICES.len(), 124); // + eSSM
    for (i, (ours, theirs)) in hwtable::BUILTIN_DEVICES.iter().zip(fx.iter()).enumerate() {
        assert_eq!(ours.len(), theirs.len(), "entry {i}: {theirs:?}");
        for ((k1, v1), (k2, v2)) in ours.iter().zip(theirs.iter()) {
            assert_eq!((*k1, *v1), (k2.as_str(), v2.as_str()), "entry {i}");
        }
    }
    // Every built-in regex compiles, and every built-in value is valid.
    for e in hwtable::BUILTIN_DEVICES {
        for (k, v) in e.iter() {
            assert!(keywords::check_value(k, v).is_ok(), "{k} {v}");
            if keywords::kind(k) == keywords::Kind::Regex {
                assert!(posix::compile(v).is_ok(), "{k} {v}");
            }
        }
    }
    // multipath -t counts 137 `device {` blocks: 123 devices + 14 blacklist.
    assert_eq!(FIXTURE.lines().count(), 1136);
    assert_eq!(FIXTURE.matches("device {").count(), 137);
}

/// Our `show config` for an empty configuration is `multipath -t` of
/// 0.9.4 plus our eSSM entry.
#[test]
fn show_config_matches_multipath_t() {
    let ours = Config::default().show_config();
    let expected: Vec<&str> = FIXTURE.lines().collect();
    let essm_start = ours
        .find("\tdevice {\n\t\tvendor \"^eSSM\"")
        .expect("eSSM entry");
    let essm_end = essm_start + ours[essm_start..].find("\t}\n").unwrap() + 3;
    let without_essm = format!("{}{}", &ours[..essm_start], &ours[essm_end..]);
    let ours_lines: Vec<&str> = without_essm.lines().collect();
    for (i, (a, b)) in ours_lines.iter().zip(expected.iter()).enumerate() {
        assert_eq!(a, b, "line {} differs", i + 1);
    }
    assert_eq!(ours_lines.len(), expected.len());
}

// ---------------------------------------------------------------- round trips

#[test]
fn fixture_round_trip() {
    // multipath -t's dump, pasted whole: the one keyword mpathd does not
    // implement (3PAR's vpd_vendor) is refused with its line, and the
    // rest parses once that line is gone.
    let e = Config::parse_str(FIXTURE, "multipath-t-0.9.4.txt").unwrap_err();
    let errs: Vec<String> = e.errors().map(|x| x.to_string()).collect();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("multipath-t-0.9.4.txt:144:3: error: 'vpd_vendor' is not supported"),
        "{errs:?}"
    );
    let fixture: String = FIXTURE
        .lines()
        .filter(|l| !l.trim_start().starts_with("vpd_vendor"))
        .map(|l| format!("{l}\n"))
        .collect();
    let (c, d) = Config::parse_str(&fixture, "multipath-t-0.9.4.txt").unwrap();
    assert!(
        !d.iter().any(|x| x.message.contains("unknown keyword")),
        "{d:?}"
    );
    assert!(!d.iter().any(|x| x.is_error()));
    assert_eq!(c.devices.len(), 123);
    // show config of it: the same effective table (user entries replace
    // the identical built-in ones), and it parses to the same model again.
    // The built-in 3PAR entry's vpd_vendor is printed like multipath -t
    // prints it, and refused like the pasted one above.
    let shown = c.show_config();
    assert!(Config::parse_str(&shown, "shown").is_err());
    let strip = |t: &str| -> String {
        t.lines()
            .filter(|l| !l.trim_start().starts_with("vpd_vendor"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let shown = strip(&shown);
    let (c2, _) = Config::parse_str(&shown, "shown").unwrap();
    let (c3, _) = Config::parse_str(&strip(&c2.show_config()), "shown2").unwrap();
    assert_eq!(c2, c3);
    assert_eq!(
        shown.matches("\tdevice {").count(),
        FIXTURE.matches("\tdevice {").count() + 1
    );
    // Model round trips, both syntaxes.
    let (c4, _) = Config::parse_str(&c.to_conf_string(), "conf").unwrap();
    assert_eq!(c, c4);
    let (c5, _) = Config::from_toml_str(&c.to_toml_string(), "toml").unwrap();
    assert_eq!(c, c5);
}

#[test]
fn toml_round_trip_and_errors() {
    let text = "defaults {\n polling_interval 10\n user_friendly_names yes\n}\nblacklist {\n devnode \"!^sd\"\n device {\n  vendor QEMU\n }\n}\n\
                devices {\n device {\n  vendor \"^eSSM\"\n  product \".*\"\n  no_path_retry queue\n  failback 15\n }\n}\n\
                overrides {\n protocol {\n  type scsi:fcp\n  fast_io_fail_tmo off\n }\n}\n\
                multipaths {\n multipath {\n  wwid 3600\n  alias \"a b\"\n }\n}\n";
    let (c, _) = parse(text);
    let t = c.to_toml_string();
    assert!(t.contains("user_friendly_names = true"), "{t}");
    assert!(t.contains("failback = 15"), "{t}");
    let (c2, _) = Config::from_toml_str(&t, "x.toml").unwrap();
    assert_eq!(c, c2);
    let (c3, _) = parse(&c2.to_conf_string());
    assert_eq!(c, c3);

    let e =
        Config::from_toml_str("[defaults]\npolling_interval = \"x\"\n", "bad.toml").unwrap_err();
    let d = e.errors().next().unwrap();
    assert_eq!(d.line, 2);
    assert!(d.message.contains("bad number"));
    let e = Config::from_toml_str("[defaults\n", "bad.toml").unwrap_err();
    assert_eq!(e.errors().next().unwrap().line, 1);
    let e = Config::from_toml_str("[nonsense]\n", "bad.toml").unwrap_err();
    assert!(e.errors().next().is_some());
}

// ---------------------------------------------------------------- load

#[test]
fn load_main_then_dropins_in_name_order() {
    let dir = std::env::temp_dir().join(format!("mpathd-cfg-load-{}", std::process::id()));
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::write(
        dir.join("multipath.conf"),
        "defaults {\n polling_interval 7\n}\n",
    )
    .unwrap();
    std::fs::write(
        conf_d.join("20-b.conf"),
        "defaults {\n polling_interval 9\n}\n",
    )
    .unwrap();
    std::fs::write(
        conf_d.join("10-a.conf"),
        "defaults {\n polling_interval 8\n}\n",
    )
    .unwrap();
    std::fs::write(
        conf_d.join("30-c.toml"),
        "[defaults]\nmax_polling_interval = 99\n",
    )
    .unwrap();
    std::fs::write(conf_d.join("ignored.txt"), "garbage {\n").unwrap();
    let paths = ConfigPaths {
        main: dir.join("multipath.conf"),
        conf_dir: conf_d.clone(),
    };
    let (c, d) = Config::load(&paths).unwrap();
    let s = c.defaults_explained();
    assert_eq!(s.polling_interval, 9);
    assert!(s.origins["polling_interval"].source.contains("20-b.conf:2"));
    assert_eq!(s.max_polling_interval, 99);
    // Each drop-in sets polling_interval again: warned as duplicates.
    assert!(d.iter().all(|x| !x.is_error()));
    // Missing main file is fine.
    let paths2 = ConfigPaths {
        main: dir.join("absent.conf"),
        conf_dir: dir.join("absent.d"),
    };
    assert!(Config::load(&paths2).is_ok());
    // check() reports errors without failing.
    std::fs::write(conf_d.join("40-bad.conf"), "devices {\n").unwrap();
    let diags = Config::check(&paths);
    assert!(diags
        .iter()
        .any(|x| x.is_error() && x.file.ends_with("40-bad.conf") && x.line == 1));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------- output

#[test]
fn show_blacklist_layout() {
    let (c, _) = parse("blacklist {\n devnode \"^sda$\"\n}\n");
    let s = c.show_blacklist();
    assert!(s.starts_with(
        "device node rules:\n- blacklist:\n        (config file rule) ^sda$\n        (default rule)     !^(sd[a-z]|dasd[a-z]|nvme[0-9])\n- exceptions:\n        <empty>\nudev property rules:\n"
    ), "{s}");
    assert!(
        s.contains("device rules:\n- blacklist:\n        (default rule)     SGI:Universal Xport\n")
    );
    assert!(s.ends_with("- exceptions:\n        <empty>\n"), "{s}");
}

#[test]
fn show_devices_layout() {
    let c = Config::default();
    let s = c.show_devices(&[
        ("sda".into(), true),
        ("sr0".into(), false),
        ("sdb".into(), false),
    ]);
    assert_eq!(
        s,
        "available block devices:\n    sda  devnode whitelisted, monitored\n    sr0 devnode blacklisted, unmonitored\n    sdb devnode whitelisted, unmonitored\n"
    );
}

#[test]
fn explain_mentions_entries_and_origins() {
    let text = format!("devices {{\n{ESSM_AS_PRINTED}}}\n}}\n");
    let (c, _) = Config::parse_str(&text, "essm.conf").unwrap();
    let e = c.explain("eSSM_BIO", "testdisk_0", "", None);
    assert!(
        e.contains("vendor \"eSSM*\" product \"\" (essm.conf:3)"),
        "{e}"
    );
    assert!(
        e.contains("vendor \"^eSSM\" product \".*\" (built-in)"),
        "{e}"
    );
    assert!(e.contains("rr_min_io"), "{e}");
    assert!(
        e.contains("a path with ALUA (TPGS) support gets instead"),
        "{e}"
    );
}

/// Mangled inputs never panic: deterministic mutations of the fixture.
#[test]
fn mutations_never_panic() {
    let specials = [
        '{', '}', '"', '!', '#', '\n', ' ', '*', '[', '\\', 'é', '“', '0',
    ];
    let base: Vec<char> = FIXTURE.chars().take(6000).collect();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..40 {
        let mut text = base.clone();
        for _ in 0..4 {
            let at = (next() % text.len() as u64) as usize;
            let c = specials[(next() % specials.len() as u64) as usize];
            text[at] = c;
        }
        let s: String = text.into_iter().collect();
        if let Ok((c, _)) = Config::parse_str(&s, "m.conf") {
            let _ = c.show_config();
            let _ = c.resolve(&path("HP", "OPEN-V"));
        }
        let _ = Config::from_toml_str(&s, "m.toml");
    }
}

#[test]
#[ignore = "prints sample output"]
fn print_samples() {
    let text = format!("{ESSM_AS_PRINTED}}}\n");
    match Config::parse_str(&text, "/etc/multipath/conf.d/essm.conf") {
        Ok((c, d)) => {
            for x in &d {
                println!("{x}");
            }
            println!("{}", c.explain("eSSM_BIO", "testdisk_0", "", None));
            println!("{}", c.show_blacklist());
            println!("{}", c.to_toml_string());
        }
        Err(e) => println!("{e}"),
    }
    if let Err(e) = Config::parse_str(ESSM_AS_PRINTED, "/etc/multipath.conf") {
        for x in &e.diagnostics {
            println!("{x}");
        }
    }
}

#[test]
fn explain_says_which_transport_timeouts_are_written_where() {
    let (c, _) = parse(
        "defaults {\n no_path_retry 12\n eh_deadline 30\n}\n\
         overrides {\n protocol {\n  type scsi:fcp\n  dev_loss_tmo 30\n }\n}\n",
    );
    let text = c.explain("Linux", "scsi_debug", "", None);
    assert!(
        text.contains("scsi:iscsi write class/iscsi_session/sessionN/recovery_tmo=5"),
        "{text}"
    );
    // 12 x 5 s of queueing outlast dev_loss_tmo 30: raised to 60.
    assert!(
        text.contains(
            "fast_io_fail_tmo=5; write class/fc_remote_ports/rport-H:C-N/dev_loss_tmo=60"
        ),
        "{text}"
    );
    assert!(text.contains("dev_loss_tmo 30 raised to 60"), "{text}");
    assert!(
        text.contains("write class/scsi_host/hostN/eh_deadline=30"),
        "{text}"
    );
}

#[test]
fn unsupported_keywords_are_refused_unless_at_their_default() {
    let e = errors("defaults {\n\treassign_maps yes\n}\n");
    assert_eq!(
        e[0].to_string(),
        "test.conf:2:2: error: 'reassign_maps' is not supported by mpathd (see UNSUPPORTED \
         KEYWORDS in mpathd.conf(5)); delete this line or set it to multipath-tools' default 'no'"
    );
    let (_, d) = parse("defaults {\n\treassign_maps no\n}\n");
    assert!(d.is_empty(), "{d:?}");
    // Implemented now: accepted without a word.
    let (_, d) =
        parse("defaults {\n\tfast_io_fail_tmo 10\n\tdev_loss_tmo 60\n\teh_deadline off\n}\n");
    assert!(d.is_empty(), "{d:?}");
    assert!(keywords::unsupported_keywords().contains(&"reassign_maps"));
    assert!(!keywords::unsupported_keywords().contains(&"fast_io_fail_tmo"));
}

#[test]
fn delay_checks_map_onto_san_path_err_and_partial_san_path_err_is_off() {
    let (c, _) = parse(
        "defaults {\n delay_watch_checks 12\n delay_wait_checks 3\n max_polling_interval 20\n}\n",
    );
    let s = c.resolve(&PathInfo::default());
    assert_eq!(
        s.san_path_err,
        Some(crate::model::SanPathErr {
            threshold: 1,
            forget_rate: 12,
            recovery_time: 60
        })
    );
    let (c, _) = parse(
        "defaults {\n san_path_err_threshold 3\n san_path_err_forget_rate 50\n san_path_err_recovery_time 120\n delay_watch_checks 12\n delay_wait_checks 3\n}\n",
    );
    assert_eq!(
        c.resolve(&PathInfo::default()).san_path_err,
        Some(crate::model::SanPathErr {
            threshold: 3,
            forget_rate: 50,
            recovery_time: 120
        })
    );
    let (c, _) = parse("defaults {\n san_path_err_threshold 3\n}\n");
    let s = c.resolve_explained(&PathInfo::default());
    assert_eq!(s.san_path_err, None);
    assert!(s.origins["san_path_err_threshold"]
        .source
        .contains("must all be set"));
}

#[test]
fn checkers_and_prios_run_in_place_of_others_are_warned_about() {
    let (_, d) = parse("defaults {\n\tpath_checker cciss_tur\n\tprio ana\n}\n");
    assert!(has(
        &d,
        Severity::Warning,
        "path_checker cciss_tur is not implemented by mpathd: tur runs in its place"
    ));
    assert!(has(
        &d,
        Severity::Warning,
        "prio ana is not implemented by mpathd: const (prio 1) runs in its place"
    ));
    let (_, d) = parse("defaults {\n\tpath_checker tur\n\tprio alua\n}\n");
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn show_config_local_keeps_the_entries_of_present_devices() {
    let c = Config::default();
    let full = c.show_config();
    let local = c.show_config_local(
        &[("NETAPP".into(), "LUN C-Mode".into(), "9300".into())],
        &["3600a".into()],
    );
    assert!(
        local.ends_with("multipaths {\n\tmultipath {\n\t\twwid \"3600a\"\n\t}\n}\n"),
        "{local}"
    );
    let entries = |t: &str| {
        let devices = t.split("\ndevices {\n").nth(1).unwrap_or_default();
        devices
            .split("\n}\n")
            .next()
            .unwrap_or_default()
            .matches("\tdevice {\n")
            .count()
    };
    assert!(entries(&full) > 100, "the full table has every array");
    assert!(entries(&local) < 5, "{local}");
    assert!(local.contains("vendor \"NETAPP\""), "{local}");
    // Nothing present: an empty devices section, the rest as `show config`.
    let none = c.show_config_local(&[], &[]);
    assert!(none.contains("devices {\n}\n"), "{none}");
    assert!(none.starts_with("defaults {\n"));
}

// ------------------------------------------------- persistent reservations

#[test]
fn reservation_key_in_defaults_and_multipaths() {
    use crate::pr::{PrKey, ReservationKey};
    let (c, d) = parse(
        "defaults {\n reservation_key file\n all_tg_pt yes\n}\n\
         multipaths {\n multipath {\n wwid 3600a\n reservation_key 0x1A2B:aptpl\n }\n}\n",
    );
    assert!(d.is_empty(), "{d:?}");
    let mut p = path("LIO-ORG", "disk");
    let s = c.resolve(&p);
    assert_eq!(s.reservation_key, ReservationKey::File);
    assert!(s.all_tg_pt);
    p.wwid = Some("3600a".into());
    let s = c.resolve_explained(&p);
    assert_eq!(
        s.reservation_key,
        ReservationKey::Key(PrKey {
            key: 0x1a2b,
            aptpl: true
        })
    );
    assert!(s.origins["reservation_key"]
        .source
        .starts_with("multipaths"));
}

#[test]
fn reservation_key_bad_value_or_place_is_named() {
    let e = errors("defaults {\n reservation_key 0xZZ\n}\n");
    assert!(
        has(&e, Severity::Error, "invalid reservation key \"0xZZ\""),
        "{e:?}"
    );
    assert_eq!((e[0].file.as_str(), e[0].line), ("test.conf", 2));
    let e = errors("defaults {\n reservation_key 0x0\n}\n");
    assert!(has(&e, Severity::Error, "is no key"), "{e:?}");
    // multipath-tools reads it in defaults and multipaths only, and so
    // does mpathpersist: a devices entry would make the two disagree.
    let (_, d) = parse("devices {\n device {\n vendor X\n reservation_key 0x1\n }\n}\n");
    assert!(
        has(
            &d,
            Severity::Warning,
            "'reservation_key' is not valid in the 'device' section"
        ),
        "{d:?}"
    );
}

#[test]
fn a_repeated_top_level_section_is_merged_and_said() {
    let (cfg, diags) = parse(
        "blacklist {\n\tdevnode \"^sr\"\n}\ndefaults {\n\tpolling_interval 3\n}\nblacklist {\n\twwid \"abc\"\n}\n",
    );
    let d = diags
        .iter()
        .find(|d| d.to_string().contains("second 'blacklist' section"))
        .expect("warned");
    assert!(d.to_string().contains("first is at line 1"), "{d}");
    assert!(d.to_string().contains("test.conf:7"), "{d}");
    assert!(cfg.blacklist.wwid.iter().any(|w| w.text == "abc"));
    // One of each is fine.
    let (_, diags) = parse("blacklist {\n}\nblacklist_exceptions {\n}\n");
    assert!(!diags.iter().any(|d| d.to_string().contains("second")));
}
