#![allow(clippy::unwrap_used)]
use super::*;
use crate::model::{DmPathState, PgState};

fn d(s: &str) -> DevT {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn table(s: &str) -> MultipathTable {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn status(s: &str) -> MultipathStatus {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Tables from COMPAT.md section 5, the reference captures, and the
/// shapes multipath-tools loads.
const TABLES: &[&str] = &[
    "1 queue_if_no_path 1 alua 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1",
    "0 0 1 1 round-robin 0 2 1 8:32 1 65:0 1",
    "3 queue_if_no_path pg_init_retries 50 1 alua 2 1 round-robin 0 2 1 8:32 1 65:0 1 round-robin 0 2 1 8:16 1 8:240 1",
    "4 queue_if_no_path pg_init_retries 50 retain_attached_hw_handler 1 alua 1 1 service-time 0 4 2 65:16 1 1 8:96 1 1 65:176 1 1 66:96 1 1",
    "0 0 2 2 queue-length 0 1 1 8:16 1 queue-length 0 1 1 8:32 1",
    "2 pg_init_delay_msecs 100 2 emc 1 1 1 round-robin 0 1 1 8:16 1",
    "2 queue_mode bio 0 1 1 service-time 0 1 0 8:16",
    "0 0 0 0",
];

#[test]
fn tables_round_trip() {
    for s in TABLES {
        let t = table(s);
        assert_eq!(t.to_string(), *s);
        assert!(t.validate().is_ok(), "{s}");
    }
}

#[test]
fn table_fields() {
    let t = table(TABLES[2]);
    assert!(t.features.queue_if_no_path);
    assert_eq!(t.features.pg_init_retries, Some(50));
    assert_eq!(t.hwhandler, HwHandler::named("alua"));
    assert_eq!(t.init_pg, 1);
    assert_eq!(t.groups.len(), 2);
    assert_eq!(t.groups[1].selector, "round-robin 0".parse().unwrap());
    assert_eq!(t.group_of(d("8:240")), Some(2));
    assert_eq!(t.paths().count(), 4);
    let h = table(TABLES[5]).hwhandler;
    assert_eq!(h.name.as_deref(), Some("emc"));
    assert_eq!(h.args, vec!["1".to_string()]);
}

#[test]
fn kernel_loaded_features_come_back_canonical() {
    let f: Features = "3 pg_init_retries 50 queue_if_no_path".parse().unwrap();
    assert_eq!(f.to_string(), "3 queue_if_no_path pg_init_retries 50");
    let f: Features = "1 no_partitions".parse().unwrap();
    assert_eq!(f.other, vec!["no_partitions".to_string()]);
    assert_eq!(f.to_string(), "1 no_partitions");
}

#[test]
fn bad_tables_name_the_problem() {
    for (s, needle) in [
        ("", "missing feature count"),
        ("1", "missing feature"),
        ("0 0 1 1 service-time 0 1 1 8:16", "missing path argument"),
        ("0 0 1 1 service-time 0 1 1 sdb 1", "not major:minor"),
        ("0 0 2 1 service-time 0 1 1 8:16 1", "missing path selector"),
        ("0 0 1 0 service-time 0 1 1 8:16 1", "initial group"),
        ("0 0 1 1 service-time 0 0 1", "group without paths"),
        ("0 0 0 0 extra", "trailing"),
        ("99999999999 0", "exceeds"),
        ("x", "not a number"),
    ] {
        let e = s.parse::<MultipathTable>().unwrap_err().to_string();
        assert!(e.contains(needle), "{s:?}: {e}");
        assert!(e.starts_with("multipath table: word"), "{e}");
    }
}

#[test]
fn builder_matches_multipath_tools_layout() {
    let t = MultipathTable::from_groups(
        "1 queue_if_no_path".parse().unwrap(),
        HwHandler::named("alua"),
        &"service-time 0".parse().unwrap(),
        &[vec![(d("8:32"), 1)], vec![(d("8:16"), 1)], vec![]],
    );
    assert_eq!(t.to_string(), TABLES[0]);
    let empty = MultipathTable::from_groups(
        Features::default(),
        HwHandler::none(),
        &Selector::new("service-time"),
        &[],
    );
    assert_eq!(empty.to_string(), "0 0 0 0");
}

#[test]
fn validate_catches_inconsistent_groups() {
    let mut t = table(TABLES[1]);
    t.groups[0].paths[1].args.clear();
    assert!(t.validate().is_err());
    let mut t = table(TABLES[1]);
    t.init_pg = 2;
    assert!(t.validate().is_err());
}

#[test]
fn kernel_form_is_what_the_kernel_prints() {
    // Loaded by multipath-tools / read back from a 6.1 kernel.
    let loaded = table(
        "3 pg_init_retries 50 queue_if_no_path 2 alua x 2 1 service-time 0 1 1 8:32 1 round-robin 0 1 1 8:16 10",
    );
    assert_eq!(
        loaded.kernel_form().to_string(),
        "3 queue_if_no_path pg_init_retries 50 1 alua 2 1 service-time 0 1 2 8:32 1 1 round-robin 0 1 1 8:16 1"
    );
    let kernel = table(&loaded.kernel_form().to_string());
    assert_eq!(loaded.compare(&kernel), TableMatch::Same);
}

#[test]
fn compare_ignores_kernel_rewrites() {
    let want = table(TABLES[0]);
    // next group 2, handler kept, retain flag added, path args padded.
    let kernel = table(
        "2 queue_if_no_path retain_attached_hw_handler 1 alua 2 2 service-time 0 1 2 8:32 1 1 service-time 0 1 2 8:16 1 1",
    );
    assert_eq!(want.compare(&kernel), TableMatch::Same);
    // We asked for no handler; the kernel retained alua.
    let mut no_hwh = want.clone();
    no_hwh.hwhandler = HwHandler::none();
    assert_eq!(no_hwh.compare(&kernel), TableMatch::Same);
    // Path order inside a group does not matter.
    let a = table("0 0 1 1 round-robin 0 2 1 8:32 1 65:0 1");
    let b = table("0 0 1 1 round-robin 0 2 1 65:0 1 8:32 1");
    assert_eq!(a.compare(&b), TableMatch::Same);
}

#[test]
fn compare_detects_real_changes() {
    let want = table(TABLES[0]);
    let swapped =
        table("1 queue_if_no_path 1 alua 2 1 service-time 0 1 1 8:16 1 service-time 0 1 1 8:32 1");
    assert_eq!(want.compare(&swapped), TableMatch::ReloadNeeded);
    assert!(want.needs_reload(&swapped));
    let merged = table("1 queue_if_no_path 1 alua 1 1 service-time 0 2 1 8:16 1 8:32 1");
    assert_eq!(want.compare(&merged), TableMatch::ReloadNeeded);
    let rr =
        table("1 queue_if_no_path 1 alua 2 1 round-robin 0 1 1 8:32 1 round-robin 0 1 1 8:16 1");
    assert_eq!(want.compare(&rr), TableMatch::ReloadNeeded);
    let no_hwh =
        table("1 queue_if_no_path 0 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1");
    assert_eq!(want.compare(&no_hwh), TableMatch::ReloadNeeded);
    let retries = table("3 queue_if_no_path pg_init_retries 50 1 alua 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1");
    assert_eq!(want.compare(&retries), TableMatch::ReloadNeeded);
    let throughput = table(
        "1 queue_if_no_path 1 alua 2 1 service-time 0 1 2 8:32 1 5 service-time 0 1 1 8:16 1",
    );
    assert_eq!(want.compare(&throughput), TableMatch::ReloadNeeded);
    let no_queue = table("0 1 alua 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1");
    assert_eq!(want.compare(&no_queue), TableMatch::QueueingDiffers);
    assert!(!want.needs_reload(&no_queue));
}

/// Status lines: synthesized from the kernel's format and captured in
/// the guest (kernel 6.1, scsi_debug, 2 paths).
const STATUSES: &[&str] = &[
    "2 0 0 0 2 1 A 0 1 2 8:32 A 0 0 1 E 0 1 2 8:16 A 0 0 1",
    "2 0 1 0 2 1 A 0 2 2 8:32 A 0 0 1 65:0 F 3 0 1 E 0 2 2 8:16 A 0 0 1 8:240 A 0 0 1",
    "2 1 0 0 1 1 E 0 2 0 8:16 F 1 8:32 F 2",
    "2 0 0 0 2 2 D 0 1 1 8:16 A 0 0 E 0 1 1 8:32 A 0 3",
    "3 0 0 7 1 x 0 0",
    "2 0 0 0 0 0",
];

#[test]
fn statuses_round_trip() {
    for s in STATUSES {
        assert_eq!(status(s).to_string(), *s);
    }
}

#[test]
fn status_fields() {
    let st = status(STATUSES[1]);
    assert_eq!(st.queue_io(), Some(0));
    assert_eq!(st.pg_init_count(), Some(1));
    assert!(st.hwhandler.is_empty());
    assert_eq!(st.next_pg, 1);
    assert_eq!(st.active_group(), Some(1));
    assert_eq!(st.groups[1].state, PgState::Enabled);
    assert_eq!(st.nr_active_paths(), 3);
    let (grp, p) = st.path(d("65:0")).unwrap();
    assert_eq!(grp, 1);
    assert_eq!(p.state, DmPathState::Failed);
    assert_eq!(p.fail_count, 3);
    assert_eq!(p.selector_args, vec!["0".to_string(), "1".to_string()]);
    assert_eq!(st.path(d("8:240")).unwrap().0, 2);
    assert!(st.path(d("9:9")).is_none());

    let rr = status(STATUSES[2]);
    assert_eq!(rr.queue_io(), Some(1));
    assert_eq!(rr.active_group(), None);
    assert_eq!(rr.nr_active_paths(), 0);
    let dis = status(STATUSES[3]);
    assert_eq!(dis.groups[0].state, PgState::Disabled);
    assert_eq!(dis.next_pg, 2);
}

/// (loaded, kernel table, kernel status) captured in the guest
/// (Debian kernel 6.1, scsi_debug with scsi_dh_alua attached, no I/O
/// error), by tests/guest_dm.rs.
const CAPTURED: &[(&str, &str, &str)] = &[
    (
        "0 0 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:0 1",
        "0 0 2 1 service-time 0 1 2 8:32 1 1 service-time 0 1 2 8:0 1 1",
        "2 0 0 0 2 1 A 0 1 2 8:32 A 0 0 1 E 0 1 2 8:0 A 0 0 1",
    ),
    (
        "1 queue_if_no_path 1 alua 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:0 1",
        "1 queue_if_no_path 1 alua 2 1 service-time 0 1 2 8:32 1 1 service-time 0 1 2 8:0 1 1",
        "2 0 1 0 2 1 A 0 1 2 8:32 A 0 0 1 E 0 1 2 8:0 A 0 0 1",
    ),
    (
        "3 pg_init_retries 50 queue_if_no_path 1 alua 2 1 round-robin 0 1 1 8:32 1 round-robin 0 1 1 8:0 1",
        "3 queue_if_no_path pg_init_retries 50 1 alua 2 1 round-robin 0 1 1 8:32 1 round-robin 0 1 1 8:0 1",
        "2 0 1 0 2 1 A 0 1 0 8:32 A 0 E 0 1 0 8:0 A 0",
    ),
    (
        // The kernel names the handler it kept attached.
        "1 retain_attached_hw_handler 0 1 1 queue-length 0 2 1 8:32 1 8:0 1",
        "1 retain_attached_hw_handler 1 alua 1 1 queue-length 0 2 1 8:32 1 8:0 1",
        "2 0 1 0 1 1 A 0 2 1 8:32 A 0 0 8:0 A 0 0",
    ),
    (
        // rr_weight priorities: repeat counts above 1 come back as 1.
        "0 0 1 1 service-time 0 2 1 8:32 10 8:0 50",
        "0 0 1 1 service-time 0 2 2 8:32 1 1 8:0 1 1",
        "2 0 0 0 1 1 A 0 2 2 8:32 A 0 0 1 8:0 A 0 0 1",
    ),
    (
        "2 pg_init_delay_msecs 100 0 2 2 service-time 0 1 2 8:0 1 3 service-time 0 1 0 8:32",
        "2 pg_init_delay_msecs 100 0 2 2 service-time 0 1 2 8:0 1 3 service-time 0 1 2 8:32 1 1",
        "2 0 0 0 2 2 E 0 1 2 8:0 A 0 0 3 A 0 1 2 8:32 A 0 0 1",
    ),
];

#[test]
fn captured_kernel_strings() {
    for (loaded, back, st) in CAPTURED {
        let want = table(loaded);
        let kernel = table(back);
        assert_eq!(kernel.to_string(), *back);
        assert_eq!(want.compare(&kernel), TableMatch::Same, "{loaded}");
        let mut expect = want.kernel_form();
        expect.hwhandler = kernel.hwhandler.clone();
        assert_eq!(expect.to_string(), *back, "kernel_form of {loaded}");
        let s = status(st);
        assert_eq!(s.to_string(), *st);
        assert_eq!(s.nr_active_paths(), 2);
    }
    // After fail_path 8:32, and after disable_group 1.
    let failed = status("2 0 0 0 2 1 A 0 1 2 8:32 F 1 0 1 E 0 1 2 8:0 A 0 0 1");
    assert_eq!(failed.path(d("8:32")).unwrap().1.state, DmPathState::Failed);
    let disabled = status("2 0 0 0 2 2 D 0 1 2 8:32 A 1 0 1 E 0 1 2 8:0 A 0 0 1");
    assert_eq!(disabled.groups[0].state, PgState::Disabled);
    assert_eq!(disabled.path(d("8:32")).unwrap().1.fail_count, 1);
}

#[test]
fn bad_statuses_name_the_problem() {
    for (s, needle) in [
        ("2 0 0 0 1 1 X 0 1 0 8:16 A 0", "group state 'X'"),
        ("2 0 0 0 1 1 A 0 1 0 8:16 Q 0", "path state 'Q'"),
        ("2 0 0 0 1 1 A 0 1 0 8:16 A", "missing fail count"),
        ("2 0 0 0 1 1 A 0 1 0 8:16 A x", "not a number"),
        ("2 0 0", "missing hardware handler count"),
    ] {
        let e = s.parse::<MultipathStatus>().unwrap_err().to_string();
        assert!(e.contains(needle), "{s:?}: {e}");
    }
}
