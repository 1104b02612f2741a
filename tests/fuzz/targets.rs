//! The fuzz targets: one function per parser that takes outside input,
//! each taking raw bytes. Shared by the generated-input tests
//! (`tests/fuzz.rs`, proptest), the coverage-guided fuzzer
//! (`tests/fuzz/libfuzzer`, libFuzzer) and the corpus replay
//! (`tests/fuzz_corpus.rs`). Errors are fine; a panic, a hang or a grammar
//! that cannot read its own output back is a failure.

#![allow(dead_code)]

use std::str::FromStr;

use mpathd::config::Config;
use mpathd::dm::{MultipathStatus, MultipathTable};

/// A target: what it is called (the fuzzer's and the corpus directory's
/// name) and the function that takes an input.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("multipath_conf", multipath_conf),
    ("multipath_conf_resolves", multipath_conf_resolves),
    ("toml_form", toml_form),
    ("dm_table_grammar", dm_table_grammar),
    ("dm_status_grammar", dm_status_grammar),
    ("socket_command_grammar", socket_command_grammar),
    ("socket_framing", socket_framing),
    ("scsi_replies", scsi_replies),
    ("vendor_pages", vendor_pages),
    ("state_files", state_files),
    ("sysfs_and_udev_attributes", sysfs_and_udev_attributes),
    ("reservation_keys", reservation_keys),
];

pub fn by_name(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

pub fn multipath_conf(input: &[u8]) {
    let _ = Config::parse_bytes(input, "fuzz.conf");
}

pub fn multipath_conf_resolves(input: &[u8]) {
    if let Ok((cfg, _)) = Config::parse_bytes(input, "fuzz.conf") {
        let _ = cfg.show_config();
        let _ = cfg.show_blacklist();
        let _ = cfg.explain("eSSM_BIO", "testdisk_0", "", None);
        let _ = cfg.to_toml_string();
    }
}

pub fn toml_form(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let _ = Config::from_toml_str(&text, "fuzz.toml");
}

pub fn dm_table_grammar(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    if let Ok(t) = MultipathTable::from_str(&text) {
        let again = MultipathTable::from_str(&t.to_string());
        assert_eq!(again.as_ref().ok(), Some(&t), "printed: {t}");
    }
}

pub fn dm_status_grammar(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    if let Ok(s) = MultipathStatus::from_str(&text) {
        let again = MultipathStatus::from_str(&s.to_string());
        assert_eq!(again.as_ref().ok(), Some(&s), "printed: {s}");
    }
}

pub fn socket_command_grammar(input: &[u8]) {
    let _ = mpathd::ipc::parse(&String::from_utf8_lossy(input));
}

pub fn socket_framing(input: &[u8]) {
    use mpathd::ipc::codec;
    let mut framed = codec::encode(&String::from_utf8_lossy(input));
    let _ = codec::read_frame_blocking(&mut framed.as_slice(), 4096);
    // The raw bytes as a frame (a length prefix of garbage).
    let _ = codec::read_frame_blocking(&mut &input[..], 1 << 20);
    framed.truncate(framed.len() / 2);
    let _ = codec::read_frame_blocking(&mut framed.as_slice(), 4096);
}

pub fn scsi_replies(input: &[u8]) {
    use mpathd::discovery::vpd;
    use mpathd::scsi::parse;
    let _ = mpathd::scsi::parse_sense(input);
    let _ = parse::parse_std_inquiry(input);
    let _ = parse::parse_vpd80_serial(input);
    let _ = parse::parse_vpd83(input);
    let _ = parse::vpd83_target_port_group(input);
    let _ = parse::parse_rtpg(input);
    let _ = parse::vpd_page_len(input);
    let _ = parse::rtpg_data_len(input);
    let _ = mpathd::scsi::Outcome::classify(2, 0, 8, input);
    if let Ok(pg) = vpd::parse_pg83(input) {
        let _ = vpd::wwid_from_pg83(&pg);
        let _ = vpd::target_port_group(&pg);
    }
    let _ = vpd::parse_pg80(input);
    let _ = vpd::tpgs_from_inquiry(input);
}

/// The page, then after the first 0xff byte the prioritizer's args.
pub fn vendor_pages(input: &[u8]) {
    let (page, args) = split_at_marker(input);
    vendor_pages_with(page, &String::from_utf8_lossy(args));
}

pub fn vendor_pages_with(page: &[u8], args: &str) {
    use mpathd::prio::vendor;
    let _ = mpathd::checker::vendor::rdac_state(page);
    let _ = mpathd::checker::vendor::clariion_state(page);
    let _ = vendor::rdac_prio(page);
    let _ = vendor::emc_prio(page);
    let _ = vendor::hds_prio(page);
    let _ = vendor::ontap_gva(page);
    let _ = vendor::ontap_proxy(page);
    let _ = vendor::datacore_prio(page, args);
    let _ = vendor::datacore_args(args);
    let _ = vendor::iet_prio(args, Some("10.0.0.1"));
    let _ = vendor::path_latency_args(args);
    let _ = mpathd::prio::weighted_prio(&mpathd::model::PathInfo::default(), args);
}

pub fn state_files(input: &[u8]) {
    use mpathd::pr::prkeys;
    let text = String::from_utf8_lossy(input);
    let _ = mpathd::discovery::wwids::parse_wwids(&text);
    let _ = mpathd::daemon::bindings::parse_bindings(&text);
    // The prkeys file: whatever it holds, a key set in it reads back.
    let key = mpathd::pr::PrKey {
        key: 0x1234,
        aptpl: false,
    };
    let again = prkeys::update(&text, "3600a", Some(key));
    assert_eq!(prkeys::parse(&again).get("3600a"), Some(&key), "{again:?}");
    let gone = prkeys::update(&again, "3600a", None);
    assert!(!prkeys::parse(&gone).contains_key("3600a"), "{gone:?}");
}

pub fn reservation_keys(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    if let Ok(k) = text.parse::<mpathd::pr::PrKey>() {
        assert_eq!(k.to_string().parse::<mpathd::pr::PrKey>(), Ok(k));
    }
    let _ = text.parse::<mpathd::pr::ReservationKey>();
    let _ = mpathd::pr::scsi::parse_read_keys(input);
}

/// Records of (attribute index, length, bytes) replace attributes of a
/// valid tree; what follows a 0xff marker is udev properties, `KEY=value`
/// lines.
pub fn sysfs_and_udev_attributes(input: &[u8]) {
    let (records, props) = split_at_marker(input);
    let mut values: Vec<Option<Vec<u8>>> = vec![None; ATTRS.len()];
    let mut rest = records;
    while let [index, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        values[usize::from(*index) % ATTRS.len()] = Some(tail[..n].to_vec());
        rest = &tail[n..];
    }
    let props = String::from_utf8_lossy(props)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    sysfs_with(values, props);
}

/// Every attribute discovery reads, each either its valid sample (None)
/// or the bytes given, in an iSCSI disk's sysfs tree (so the transport
/// readers run too).
pub fn sysfs_with(
    edits: Vec<Option<Vec<u8>>>,
    mut props: std::collections::BTreeMap<String, String>,
) {
    use mpathd::discovery::{identity, sysfs};
    let tree = SysfsTree::new();
    let values: Vec<Vec<u8>> = ATTRS
        .iter()
        .zip(edits)
        .map(|((_, valid), e)| e.unwrap_or_else(|| valid.to_vec()))
        .collect();
    for ((rel, _), v) in ATTRS.iter().zip(&values) {
        tree.write(rel, v);
    }
    let root = sysfs::SysfsRoot::new(&tree.0);
    let _ = sysfs::read_path(&root, "sda");
    for v in &values {
        let text = String::from_utf8_lossy(v);
        let _ = text.parse::<mpathd::model::DevT>();
        let _ = text.parse::<mpathd::model::Hcil>();
        let _ = mpathd::model::DevState::from_sysfs(&text);
        let _ = mpathd::transport::Endpoint::from_path_component(&text);
    }
    props.insert(
        "ID_SERIAL".into(),
        String::from_utf8_lossy(&values[0]).into_owned(),
    );
    let vpd = String::from_utf8_lossy(&values[1]).into_owned();
    if let Ok((w, _)) = identity::choose_wwid(&props, "ID_SERIAL", Some(&vpd)) {
        assert!(identity::validate_wwid(&w).is_ok(), "{w:?}");
    }
}

fn split_at_marker(input: &[u8]) -> (&[u8], &[u8]) {
    match input.iter().position(|&b| b == 0xff) {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[]),
    }
}

pub const CONF_SEEDS: &[&[u8]] = &[
    include_bytes!("../../conf/multipath.conf"),
    b"defaults {\n\tpolling_interval 5\n\tno_path_retry queue\n}\nblacklist {\n\tdevnode \"^sd[a-z]\"\n\tdevice {\n\t\tvendor \"X\"\n\t\tproduct \"Y\"\n\t}\n}\nmultipaths {\n\tmultipath {\n\t\twwid 3600\n\t\talias a\n\t}\n}\n",
    b"devices {\n device {\n  vendor \"eSSM*\"\n  product \"\"\n  path_grouping_policy group_by_prio\n  prio alua\n  features \"1 queue_if_no_path\"\n }\n}\noverrides {\n protocol {\n  type scsi:fcp\n  fast_io_fail_tmo 5\n }\n}\n",
];

pub const TOML_SEEDS: &[&[u8]] = &[
    b"[defaults]\npolling_interval = 5\nno_path_retry = \"queue\"\n[[devices]]\nvendor = \"X\"\nproduct = \"Y\"\n",
    b"[blacklist]\ndevnode = [\"^sd\"]\n[[multipaths]]\nwwid = \"3600\"\nalias = \"a\"\n",
];

pub const TABLE_SEEDS: &[&[u8]] = &[
    b"1 queue_if_no_path 1 alua 2 1 service-time 0 1 2 8:0 1 1 service-time 0 1 2 8:32 1 1",
    b"0 0 1 1 round-robin 0 2 1 8:16 1000 8:48 1000",
    b"3 queue_if_no_path pg_init_retries 50 1 rdac 1 1 queue-length 0 1 1 65:0 1",
];

pub const STATUS_SEEDS: &[&[u8]] = &[
    b"2 0 0 0 2 1 A 0 1 2 8:0 A 0 0 1 E 0 1 2 8:32 F 1 0 1",
    b"2 0 1 0 2 2 E 0 1 2 8:0 F 1 0 1 A 0 1 2 8:16 A 0 0 1",
    b"0 0 0 0",
];

pub const COMMAND_SEEDS: &[&[u8]] = &[
    b"show topology",
    b"show paths format \"%d %t %T\"",
    b"fail path sda",
    b"switchgroup map 3600a group 2",
    b"show map 3600a json",
    b"reconfigure all",
    b"del map 3600a",
];

pub const SCSI_SEEDS: &[&[u8]] = &[
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

pub const KEY_SEEDS: &[&[u8]] = &[
    b"0x1a2b:aptpl",
    b"file",
    &[0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x12, 0x34],
];

/// The valid samples a target's inputs start from.
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    let of = |s: &[&[u8]]| s.iter().map(|b| b.to_vec()).collect::<Vec<_>>();
    match name {
        "multipath_conf" | "multipath_conf_resolves" => of(CONF_SEEDS),
        "toml_form" => of(TOML_SEEDS),
        "dm_table_grammar" => of(TABLE_SEEDS),
        "dm_status_grammar" => of(STATUS_SEEDS),
        "socket_command_grammar" | "socket_framing" => of(COMMAND_SEEDS),
        "scsi_replies" => of(SCSI_SEEDS),
        "vendor_pages" => SCSI_SEEDS
            .iter()
            .map(|p| [p, &[0xff][..], b"10.0.0.1:20"].concat())
            .collect(),
        "state_files" => vec![
            b"# wwids\n/3600a/\n".to_vec(),
            b"mpatha 3600a\n".to_vec(),
            b"3600a 0x1234\n".to_vec(),
        ],
        "reservation_keys" => of(KEY_SEEDS),
        "sysfs_and_udev_attributes" => vec![
            b"\xffID_SERIAL=3600a\n".to_vec(),
            [&[6u8, 8][..], b"offline\n", &[0xff], b"DEVTYPE=disk\n"].concat(),
        ],
        _ => Vec::new(),
    }
}

/// The attributes a SCSI disk's sysfs tree holds, relative to the root,
/// each with a valid sample.
pub const ATTRS: &[(&str, &[u8])] = &[
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
pub struct SysfsTree(pub std::path::PathBuf);

impl SysfsTree {
    pub fn new() -> SysfsTree {
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

    pub fn write(&self, rel: &str, content: &[u8]) {
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
