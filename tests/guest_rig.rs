//! Proves the rig's GUEST_TESTS contract: an integration-test binary built
//! on the host runs in the guest with `--ignored` and reaches device-mapper.
//! Run by tests/vm/cases/rig/00-env.sh; plain `cargo test` skips it.

use devicemapper::DM;

#[test]
#[ignore = "needs the guest"]
fn device_mapper_answers_with_multipath_target() {
    let dm = DM::new().expect("open /dev/mapper/control");
    let (major, _, _) = dm.version().expect("DM version ioctl");
    assert_eq!(major, 4, "device-mapper ioctl interface major version");
    let targets = dm.list_versions().expect("list target types");
    assert!(
        targets.iter().any(|(name, ..)| name == "multipath"),
        "multipath target not loaded: {targets:?}"
    );
}
