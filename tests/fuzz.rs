//! Generated-input tests of every parser that takes outside input: the
//! configuration (multipath.conf and TOML), the control socket's framing
//! and command grammar, the device-mapper table and status grammar, the
//! SCSI replies (sense, INQUIRY, VPD 0x80/0x83, RTPG, the vendor pages of
//! the checkers and prioritizers) and the files discovery reads (wwids,
//! bindings). Each input is either random or a valid sample with random
//! edits (bytes changed, inserted, cut), which reaches past the first
//! check of each parser. Nothing may panic; the grammars that print what
//! they parse must read their own output back the same.
//!
//! `cargo test --test fuzz` runs a short round; `tests/fuzz/run [MINUTES]`
//! runs each target for longer (MPATHD_FUZZ_CASES sets the cases a round).

use std::str::FromStr;

use proptest::prelude::*;

use mpathd::config::Config;
use mpathd::dm::{MultipathStatus, MultipathTable};

fn cases() -> u32 {
    std::env::var("MPATHD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A valid sample with random edits.
fn mutated(seeds: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    (
        0..seeds.len(),
        prop::collection::vec((any::<u16>(), any::<u8>(), 0u8..4), 0..12),
        any::<u16>(),
    )
        .prop_map(move |(i, edits, cut)| {
            let mut v = seeds[i].to_vec();
            for (pos, byte, op) in edits {
                let at = if v.is_empty() {
                    0
                } else {
                    usize::from(pos) % v.len()
                };
                match op {
                    0 if !v.is_empty() => v[at] = byte,
                    1 => v.insert(at, byte),
                    2 if !v.is_empty() => {
                        v.remove(at);
                    }
                    _ => v.insert(at, b' '),
                }
            }
            if cut % 4 == 0 && !v.is_empty() {
                v.truncate(usize::from(cut) % v.len());
            }
            v
        })
}

fn bytes_or_mutated(seeds: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..600), mutated(seeds)]
}

const CONF_SEEDS: &[&[u8]] = &[
    include_bytes!("../conf/multipath.conf"),
    b"defaults {\n\tpolling_interval 5\n\tno_path_retry queue\n}\nblacklist {\n\tdevnode \"^sd[a-z]\"\n\tdevice {\n\t\tvendor \"X\"\n\t\tproduct \"Y\"\n\t}\n}\nmultipaths {\n\tmultipath {\n\t\twwid 3600\n\t\talias a\n\t}\n}\n",
    b"devices {\n device {\n  vendor \"eSSM*\"\n  product \"\"\n  path_grouping_policy group_by_prio\n  prio alua\n  features \"1 queue_if_no_path\"\n }\n}\noverrides {\n protocol {\n  type scsi:fcp\n  fast_io_fail_tmo 5\n }\n}\n",
];

const TOML_SEEDS: &[&[u8]] = &[
    b"[defaults]\npolling_interval = 5\nno_path_retry = \"queue\"\n[[devices]]\nvendor = \"X\"\nproduct = \"Y\"\n",
    b"[blacklist]\ndevnode = [\"^sd\"]\n[[multipaths]]\nwwid = \"3600\"\nalias = \"a\"\n",
];

const TABLE_SEEDS: &[&[u8]] = &[
    b"1 queue_if_no_path 1 alua 2 1 service-time 0 1 2 8:0 1 1 service-time 0 1 2 8:32 1 1",
    b"0 0 1 1 round-robin 0 2 1 8:16 1000 8:48 1000",
    b"3 queue_if_no_path pg_init_retries 50 1 rdac 1 1 queue-length 0 1 1 65:0 1",
];

const STATUS_SEEDS: &[&[u8]] = &[
    b"2 0 0 0 2 1 A 0 1 2 8:0 A 0 0 1 E 0 1 2 8:32 F 1 0 1",
    b"2 0 1 0 2 2 E 0 1 2 8:0 F 1 0 1 A 0 1 2 8:16 A 0 0 1",
    b"0 0 0 0",
];

const COMMAND_SEEDS: &[&[u8]] = &[
    b"show topology",
    b"show paths format \"%d %t %T\"",
    b"fail path sda",
    b"switchgroup map 3600a group 2",
    b"show map 3600a json",
    b"reconfigure all",
    b"del map 3600a",
];

const SCSI_SEEDS: &[&[u8]] = &[
    // VPD 0x83 (NAA 6 + target port group 1)
    &[
        0x00, 0x83, 0x00, 0x1C, 0x01, 0x03, 0x00, 0x10, 0x60, 0x01, 0x40, 0x50, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x05, 0x00, 0x04,
        0x00, 0x00, 0x00, 0x01,
    ],
    // VPD 0x80
    &[0x00, 0x80, 0x00, 0x04, b'S', b'N', b'0', b'1'],
    // RTPG: two groups, one port each
    &[
        0x00, 0x00, 0x00, 0x18, 0x80, 0x8F, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x01, 0x01, 0x8F, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
    ],
    // fixed sense: NOT READY 04/02
    &[0x70, 0x00, 0x02, 0, 0, 0, 0, 0x0A, 0, 0, 0, 0, 0x04, 0x02, 0, 0, 0, 0],
    // descriptor sense
    &[0x72, 0x06, 0x29, 0x00, 0, 0, 0, 0],
    // standard INQUIRY
    b"\x00\x00\x06\x12\x5b\x00\x10\x02Linux   scsi_debug      0191",
    // RDAC volume access page
    b"\x00\xc9\x00\x2cvac1\x00\x00\x00\x00\x11\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn multipath_conf(input in bytes_or_mutated(CONF_SEEDS)) {
        // Errors are fine; a panic or a hang is not.
        let _ = Config::parse_bytes(&input, "fuzz.conf");
    }

    #[test]
    fn multipath_conf_resolves(input in mutated(CONF_SEEDS)) {
        if let Ok((cfg, _)) = Config::parse_bytes(&input, "fuzz.conf") {
            let _ = cfg.show_config();
            let _ = cfg.show_blacklist();
            let _ = cfg.explain("eSSM_BIO", "testdisk_0", "", None);
            let _ = cfg.to_toml_string();
        }
    }

    #[test]
    fn toml_form(input in bytes_or_mutated(TOML_SEEDS)) {
        let text = String::from_utf8_lossy(&input);
        let _ = Config::from_toml_str(&text, "fuzz.toml");
    }

    #[test]
    fn dm_table_grammar_round_trips(input in bytes_or_mutated(TABLE_SEEDS)) {
        let text = String::from_utf8_lossy(&input);
        if let Ok(t) = MultipathTable::from_str(&text) {
            let again = MultipathTable::from_str(&t.to_string());
            prop_assert_eq!(again.as_ref().ok(), Some(&t), "printed: {}", t);
        }
    }

    #[test]
    fn dm_status_grammar_round_trips(input in bytes_or_mutated(STATUS_SEEDS)) {
        let text = String::from_utf8_lossy(&input);
        if let Ok(s) = MultipathStatus::from_str(&text) {
            let again = MultipathStatus::from_str(&s.to_string());
            prop_assert_eq!(again.as_ref().ok(), Some(&s), "printed: {}", s);
        }
    }

    #[test]
    fn socket_command_grammar(input in bytes_or_mutated(COMMAND_SEEDS)) {
        let text = String::from_utf8_lossy(&input);
        let _ = mpathd::ipc::parse(&text);
    }

    #[test]
    fn socket_framing(input in bytes_or_mutated(COMMAND_SEEDS)) {
        let mut framed = mpathd::ipc::codec::encode(&String::from_utf8_lossy(&input));
        let _ = mpathd::ipc::codec::read_frame_blocking(&mut framed.as_slice(), 4096);
        // The raw bytes as a frame (a length prefix of garbage).
        let _ = mpathd::ipc::codec::read_frame_blocking(&mut input.as_slice(), 1 << 20);
        framed.truncate(framed.len() / 2);
        let _ = mpathd::ipc::codec::read_frame_blocking(&mut framed.as_slice(), 4096);
    }

    #[test]
    fn scsi_replies(input in bytes_or_mutated(SCSI_SEEDS)) {
        use mpathd::scsi::parse;
        let _ = mpathd::scsi::parse_sense(&input);
        let _ = parse::parse_std_inquiry(&input);
        let _ = parse::parse_vpd80_serial(&input);
        let _ = parse::parse_vpd83(&input);
        let _ = parse::vpd83_target_port_group(&input);
        let _ = parse::parse_rtpg(&input);
        let _ = parse::vpd_page_len(&input);
        let _ = parse::rtpg_data_len(&input);
        let _ = mpathd::scsi::Outcome::classify(2, 0, 8, &input);
        if let Ok(pg) = mpathd::discovery::vpd::parse_pg83(&input) {
            let _ = mpathd::discovery::vpd::wwid_from_pg83(&pg);
            let _ = mpathd::discovery::vpd::target_port_group(&pg);
        }
        let _ = mpathd::discovery::vpd::parse_pg80(&input);
        let _ = mpathd::discovery::vpd::tpgs_from_inquiry(&input);
    }

    #[test]
    fn vendor_pages(input in bytes_or_mutated(SCSI_SEEDS), args in ".{0,40}") {
        let _ = mpathd::checker::vendor::rdac_state(&input);
        let _ = mpathd::checker::vendor::clariion_state(&input);
        let _ = mpathd::prio::vendor::rdac_prio(&input);
        let _ = mpathd::prio::vendor::emc_prio(&input);
        let _ = mpathd::prio::vendor::hds_prio(&input);
        let _ = mpathd::prio::vendor::ontap_gva(&input);
        let _ = mpathd::prio::vendor::ontap_proxy(&input);
        let _ = mpathd::prio::vendor::datacore_prio(&input, &args);
        let _ = mpathd::prio::vendor::datacore_args(&args);
        let _ = mpathd::prio::vendor::iet_prio(&args, Some("10.0.0.1"));
        let _ = mpathd::prio::vendor::path_latency_args(&args);
        let _ = mpathd::prio::weighted_prio(&mpathd::model::PathInfo::default(), &args);
    }

    #[test]
    fn state_files(input in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&input);
        let _ = mpathd::discovery::wwids::parse_wwids(&text);
        let _ = mpathd::daemon::bindings::parse_bindings(&text);
        // The prkeys file: whatever it holds, a key set in it reads back.
        let key = mpathd::pr::PrKey { key: 0x1234, aptpl: false };
        let again = mpathd::pr::prkeys::update(&text, "3600a", Some(key));
        let read = mpathd::pr::prkeys::parse(&again);
        prop_assert_eq!(read.get("3600a"), Some(&key));
        let gone = mpathd::pr::prkeys::update(&again, "3600a", None);
        prop_assert!(!mpathd::pr::prkeys::parse(&gone).contains_key("3600a"));
    }

    #[test]
    fn sysfs_and_udev_attributes(
        edits in prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..80)), ATTRS.len()),
        props in prop::collection::btree_map("[A-Z_]{1,12}", ".{0,40}", 0..6),
    ) {
        // Every attribute discovery reads, each either valid or anything,
        // in a disk's sysfs tree (an iSCSI one, so the transport readers
        // run too): valid ones let the reader get past its first checks.
        let tree = SysfsTree::new();
        let values: Vec<Vec<u8>> = ATTRS
            .iter()
            .zip(edits)
            .map(|((_, valid), e)| e.unwrap_or_else(|| valid.to_vec()))
            .collect();
        for ((rel, _), v) in ATTRS.iter().zip(&values) {
            tree.write(rel, v);
        }
        let root = mpathd::discovery::sysfs::SysfsRoot::new(&tree.0);
        let _ = mpathd::discovery::sysfs::read_path(&root, "sda");
        for v in &values {
            let text = String::from_utf8_lossy(v);
            let _ = text.parse::<mpathd::model::DevT>();
            let _ = text.parse::<mpathd::model::Hcil>();
            let _ = mpathd::model::DevState::from_sysfs(&text);
            let _ = mpathd::transport::Endpoint::from_path_component(&text);
        }
        let mut props: std::collections::BTreeMap<String, String> = props;
        props.insert("ID_SERIAL".into(), String::from_utf8_lossy(&values[0]).into_owned());
        let vpd = String::from_utf8_lossy(&values[1]).into_owned();
        if let Ok((w, _)) = mpathd::discovery::identity::choose_wwid(&props, "ID_SERIAL", Some(&vpd)) {
            prop_assert!(mpathd::discovery::identity::validate_wwid(&w).is_ok());
        }
    }

    #[test]
    fn reservation_keys_and_read_keys(input in bytes_or_mutated(&[b"0x1a2b:aptpl", b"file", &[0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x12, 0x34]])) {
        let text = String::from_utf8_lossy(&input);
        if let Ok(k) = text.parse::<mpathd::pr::PrKey>() {
            prop_assert_eq!(k.to_string().parse::<mpathd::pr::PrKey>(), Ok(k));
        }
        let _ = text.parse::<mpathd::pr::ReservationKey>();
        let _ = mpathd::pr::scsi::parse_read_keys(&input);
    }
}

/// The attributes a SCSI disk's sysfs tree holds, relative to the root,
/// each with a valid sample.
const ATTRS: &[(&str, &[u8])] = &[
    ("block/sda/dev", b"8:0\n"),
    ("block/sda/size", b"65536\n"),
    ("block/sda/ro", b"0\n"),
    ("block/sda/device/vendor", b"LIO-ORG \n"),
    ("block/sda/device/model", b"FILEIO          \n"),
    ("block/sda/device/rev", b"4.0 \n"),
    ("block/sda/device/state", b"running\n"),
    ("block/sda/device/timeout", b"30\n"),
    ("block/sda/device/access_state", b"active/optimized\n"),
    ("block/sda/device/dh_state", b"alua\n"),
    ("block/sda/device/preferred_path", b"0\n"),
    (
        "block/sda/device/vpd_pg80",
        &[0, 0x80, 0, 4, b'a', b'b', b'c', b'd'],
    ),
    (
        "block/sda/device/vpd_pg83",
        &[
            0, 0x83, 0, 20, 1, 3, 0, 16, 0x60, 1, 0x40, 5, 0xc0, 0xff, 0xee, 0, 0, 0, 0, 0, 0, 0,
            0, 1,
        ],
    ),
    (
        "block/sda/device/inquiry",
        b"\0\0\x06\x02\x1fLIO-ORG FILEIO          4.0 ",
    ),
    ("class/iscsi_host/host3/ipaddress", b"192.168.201.1\n"),
    (
        "class/iscsi_session/session1/targetname",
        b"iqn.2003-01.org.example:t\n",
    ),
    (
        "class/iscsi_connection/connection1:0/persistent_address",
        b"192.168.201.2\n",
    ),
    (
        "class/iscsi_connection/connection1:0/persistent_port",
        b"3260\n",
    ),
];

/// A fake sysfs tree: `block/sda` links to an iSCSI-attached disk, as the
/// kernel lays it out. Removed on drop.
struct SysfsTree(std::path::PathBuf);

impl SysfsTree {
    fn new() -> SysfsTree {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "mpathd-fuzz-sysfs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        let sdev = root.join("devices/platform/host3/session1/target3:0:0/3:0:0:0");
        let bdir = sdev.join("block/sda");
        std::fs::create_dir_all(&bdir).expect("tree");
        std::fs::create_dir_all(root.join("block")).expect("tree");
        std::fs::create_dir_all(root.join("class/iscsi_host/host3")).expect("tree");
        std::os::unix::fs::symlink(&bdir, root.join("block/sda")).expect("tree");
        std::os::unix::fs::symlink(&sdev, bdir.join("device")).expect("tree");
        SysfsTree(root)
    }

    fn write(&self, rel: &str, content: &[u8]) {
        let p = self.0.join(rel);
        if let Some(d) = p.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let _ = std::fs::write(p, content);
    }
}

impl Drop for SysfsTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn seeds_parse() {
    // The samples themselves are valid: mutations start from real inputs.
    let tree = SysfsTree::new();
    for (rel, v) in ATTRS {
        tree.write(rel, v);
    }
    let root = mpathd::discovery::sysfs::SysfsRoot::new(&tree.0);
    let p = mpathd::discovery::sysfs::read_path(&root, "sda").expect("valid tree");
    assert_eq!(p.info.transport, mpathd::model::Transport::Iscsi);
    assert!(MultipathTable::from_str(std::str::from_utf8(TABLE_SEEDS[0]).unwrap_or("")).is_ok());
    assert!(MultipathStatus::from_str(std::str::from_utf8(STATUS_SEEDS[0]).unwrap_or("")).is_ok());
    assert!(mpathd::ipc::parse("show topology").is_ok());
    assert!(mpathd::discovery::vpd::parse_pg83(SCSI_SEEDS[0]).is_ok());
}
