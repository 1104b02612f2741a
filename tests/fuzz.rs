//! Generated-input tests of every parser that takes outside input (the
//! targets in `tests/fuzz/targets.rs`). Each input is either random or a
//! valid sample with random edits (bytes changed, inserted, cut), which
//! reaches past the first check of each parser. `cargo test --test fuzz`
//! runs a short round (MPATHD_FUZZ_CASES sets the cases); the long,
//! coverage-guided runs are libFuzzer's (`tests/fuzz/run`).

use proptest::prelude::*;

#[path = "fuzz/targets.rs"]
mod targets;
use targets::*;

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

proptest! {
    #![proptest_config(config())]

    #[test]
    fn multipath_conf(input in bytes_or_mutated(CONF_SEEDS)) {
        targets::multipath_conf(&input);
    }

    #[test]
    fn multipath_conf_resolves(input in mutated(CONF_SEEDS)) {
        targets::multipath_conf_resolves(&input);
    }

    #[test]
    fn toml_form(input in bytes_or_mutated(TOML_SEEDS)) {
        targets::toml_form(&input);
    }

    #[test]
    fn dm_table_grammar(input in bytes_or_mutated(TABLE_SEEDS)) {
        targets::dm_table_grammar(&input);
    }

    #[test]
    fn dm_status_grammar(input in bytes_or_mutated(STATUS_SEEDS)) {
        targets::dm_status_grammar(&input);
    }

    #[test]
    fn socket_command_grammar(input in bytes_or_mutated(COMMAND_SEEDS)) {
        targets::socket_command_grammar(&input);
    }

    #[test]
    fn socket_framing(input in bytes_or_mutated(COMMAND_SEEDS)) {
        targets::socket_framing(&input);
    }

    #[test]
    fn scsi_replies(input in bytes_or_mutated(SCSI_SEEDS)) {
        targets::scsi_replies(&input);
    }

    #[test]
    fn vendor_pages(input in bytes_or_mutated(SCSI_SEEDS), args in ".{0,40}") {
        vendor_pages_with(&input, &args);
    }

    #[test]
    fn state_files(input in prop::collection::vec(any::<u8>(), 0..400)) {
        targets::state_files(&input);
    }

    #[test]
    fn sysfs_and_udev_attributes(
        edits in prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..80)), ATTRS.len()),
        props in prop::collection::btree_map("[A-Z_]{1,12}", ".{0,40}", 0..6),
    ) {
        sysfs_with(edits, props);
    }

    #[test]
    fn reservation_keys(input in bytes_or_mutated(KEY_SEEDS)) {
        targets::reservation_keys(&input);
    }
}

#[test]
fn seeds_parse() {
    use std::str::FromStr;
    // The samples themselves are valid: mutations start from real inputs.
    let tree = SysfsTree::new();
    for (rel, v) in ATTRS {
        tree.write(rel, v);
    }
    let root = mpathd::discovery::sysfs::SysfsRoot::new(&tree.0);
    let p = mpathd::discovery::sysfs::read_path(&root, "sda").expect("valid tree");
    assert_eq!(p.info.transport, mpathd::model::Transport::Iscsi);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(mpathd::dm::MultipathTable::from_str(&text(TABLE_SEEDS[0])).is_ok());
    assert!(mpathd::dm::MultipathStatus::from_str(&text(STATUS_SEEDS[0])).is_ok());
    assert!(mpathd::ipc::parse("show topology").is_ok());
    assert!(mpathd::discovery::vpd::parse_pg83(SCSI_SEEDS[0]).is_ok());
    for (name, _) in TARGETS {
        assert!(!seeds(name).is_empty(), "{name} has no seeds");
    }
}
