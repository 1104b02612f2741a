#![allow(clippy::unwrap_used)]
use super::*;
use std::os::unix::fs::symlink;

/// A fake sysfs tree in a temporary directory, removed on drop.
pub(crate) struct FakeSysfs {
    pub root: PathBuf,
}

impl Drop for FakeSysfs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

impl FakeSysfs {
    pub(crate) fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "mpathd-sysfs-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("block")).unwrap();
        FakeSysfs { root }
    }

    pub(crate) fn sysfs(&self) -> SysfsRoot {
        SysfsRoot::new(&self.root)
    }

    pub(crate) fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    /// A SCSI disk under `devices/<parent>/hostH/target.../H:C:T:L`,
    /// with `block/<dev>` linking into it as the kernel does.
    pub(crate) fn disk(&self, dev: &str, parent: &str, hcil: &str, devt: &str) {
        self.disk_via(dev, parent, "", hcil, devt)
    }

    /// A disk whose target sits under `via` below its host (an FC
    /// `rport-H:C-N`, a SAS `port-H:P/end_device-H:P`).
    pub(crate) fn disk_via(&self, dev: &str, parent: &str, via: &str, hcil: &str, devt: &str) {
        let h: Hcil = hcil.parse().unwrap();
        let via = if via.is_empty() {
            String::new()
        } else {
            format!("{via}/")
        };
        let sdev = format!(
            "devices/{parent}/host{}/{via}target{}:{}:{}/{hcil}",
            h.host, h.host, h.channel, h.target
        );
        let bdir = format!("{sdev}/block/{dev}");
        fs::create_dir_all(self.root.join(&bdir)).unwrap();
        symlink(self.root.join(&bdir), self.root.join("block").join(dev)).unwrap();
        symlink(self.root.join(&sdev), self.root.join(&bdir).join("device")).unwrap();
        self.write(&format!("{bdir}/dev"), format!("{devt}\n"));
        self.write(&format!("{bdir}/size"), "32768\n");
        self.write(&format!("{bdir}/ro"), "0\n");
        self.write(&format!("{sdev}/vendor"), "Linux   \n");
        self.write(&format!("{sdev}/model"), "scsi_debug      \n");
        self.write(&format!("{sdev}/rev"), "0191\n");
        self.write(&format!("{sdev}/state"), "running\n");
        self.write(&format!("{sdev}/timeout"), "30\n");
    }

    pub(crate) fn host_class(&self, class: &str, host: u32) {
        fs::create_dir_all(self.root.join(format!("class/{class}/host{host}"))).unwrap();
    }
}

fn pg83_naa(naa: &[u8; 16], tpg: u16) -> Vec<u8> {
    let mut body = vec![0x01, 0x03, 0, 16];
    body.extend_from_slice(naa);
    body.extend_from_slice(&[0x61, 0x95, 0, 4, 0, 0]);
    body.extend_from_slice(&tpg.to_be_bytes());
    let mut p = vec![0, 0x83];
    p.extend_from_slice(&(body.len() as u16).to_be_bytes());
    p.extend_from_slice(&body);
    p
}

#[test]
fn reads_a_complete_scsi_debug_like_path() {
    let fs_ = FakeSysfs::new("good");
    fs_.disk("sdb", "pseudo_0/adapter0", "2:0:0:1", "8:16");
    let sdev = "devices/pseudo_0/adapter0/host2/target2:0:0/2:0:0:1";
    let mut inq = vec![0u8; 36];
    inq[5] = 0x10;
    fs_.write(&format!("{sdev}/inquiry"), &inq);
    let naa = [
        0x60, 0x01, 0x40, 0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    fs_.write(&format!("{sdev}/vpd_pg83"), pg83_naa(&naa, 1));
    let mut pg80 = vec![0, 0x80, 0, 6];
    pg80.extend_from_slice(b" 2000 ");
    fs_.write(&format!("{sdev}/vpd_pg80"), pg80);
    fs_.write(&format!("{sdev}/dh_state"), "alua\n");
    fs_.write(&format!("{sdev}/access_state"), "active/optimized\n");
    fs_.write(&format!("{sdev}/preferred_path"), "1\n");

    let p = read_path(&fs_.sysfs(), "sdb").unwrap();
    assert_eq!(p.problems, Vec::<String>::new());
    let i = &p.info;
    assert_eq!(i.dev, "sdb");
    assert_eq!(i.devt, Some(DevT::new(8, 16)));
    assert_eq!(i.hcil.unwrap().to_string(), "2:0:0:1");
    assert_eq!(
        (i.vendor.as_str(), i.product.as_str(), i.rev.as_str()),
        ("Linux", "scsi_debug", "0191")
    );
    assert_eq!(i.size, 32768);
    assert!(!i.read_only);
    assert_eq!(i.dev_state, DevState::Running);
    assert_eq!(i.timeout_secs, Some(30));
    assert_eq!(i.tpgs, 1);
    assert_eq!(i.tpg_id, Some(1));
    assert_eq!(i.serial.as_deref(), Some("2000"));
    assert_eq!(i.dh_state.as_deref(), Some("alua"));
    assert_eq!(i.access_state.as_deref(), Some("active/optimized"));
    assert!(i.preferred_path);
    assert_eq!(i.transport, Transport::Unspecified);
    assert_eq!(
        p.vpd_wwid.as_deref(),
        Some("36001405a0102030405060708090a0b0c")
    );
    assert_eq!(i.wwid, None, "identity is assigned later");
}

#[test]
fn garbage_attributes_are_reported_not_fatal() {
    let fs_ = FakeSysfs::new("garbage");
    fs_.disk("sdc", "pseudo_0/adapter0", "3:0:0:0", "8:32");
    let sdev = "devices/pseudo_0/adapter0/host3/target3:0:0/3:0:0:0";
    let bdir = format!("{sdev}/block/sdc");
    fs_.write(&format!("{bdir}/size"), "lots\n");
    fs_.write(&format!("{bdir}/ro"), "maybe\n");
    fs_.write(&format!("{sdev}/timeout"), "-3x\n");
    fs_.write(&format!("{sdev}/state"), "sleepy\n");
    fs_.write(&format!("{sdev}/inquiry"), [0u8, 1]);
    fs_.write(&format!("{sdev}/vpd_pg83"), b"\xff\xfe garbage");
    fs_.write(&format!("{sdev}/vpd_pg80"), b"");
    fs_.write(&format!("{sdev}/preferred_path"), "yes\n");
    fs::remove_file(fs_.root.join(format!("{sdev}/rev"))).unwrap();
    fs_.write(&format!("{sdev}/dh_state"), "detached\n");

    let p = read_path(&fs_.sysfs(), "sdc").unwrap();
    let all = p.problems.join("\n");
    for needle in [
        "sdc/size: 'lots' is not a number",
        "sdc/ro: 'maybe' is neither 0 nor 1",
        "sdc/device/timeout: '-3x' is not a number",
        "sdc/device/state: unknown state 'sleepy'",
        "sdc/device/inquiry: INQUIRY data: 2 bytes",
        "sdc/device/vpd_pg83: VPD page 0x83: page code byte is 0xfe",
        "sdc/device/vpd_pg80: VPD page 0x80: 0 bytes",
        "sdc/device/preferred_path: 'yes' is neither 0 nor 1",
        "sdc/device/rev: missing",
    ] {
        assert!(
            all.contains(needle),
            "missing problem {needle:?} in:\n{all}"
        );
    }
    let i = &p.info;
    assert_eq!(i.size, 0);
    assert_eq!(i.dev_state, DevState::Unknown);
    assert_eq!(i.timeout_secs, None);
    assert_eq!(i.dh_state, None);
    assert_eq!(p.vpd_wwid, None);
    assert_eq!(i.devt, Some(DevT::new(8, 32)));
}

#[test]
fn non_scsi_or_missing_devices_are_errors() {
    let fs_ = FakeSysfs::new("bad");
    let sysfs = fs_.sysfs();
    let e = read_path(&sysfs, "sdz").unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");
    assert!(read_path(&sysfs, "../etc").is_err());
    assert!(read_path(&sysfs, "").is_err());

    // A block device without a SCSI `device` link (e.g. a dm or loop device).
    fs_.write("devices/virtual/block/loop0/dev", "7:0\n");
    symlink(
        fs_.root.join("devices/virtual/block/loop0"),
        fs_.root.join("block/loop0"),
    )
    .unwrap();
    let e = read_path(&sysfs, "loop0").unwrap_err().to_string();
    assert!(e.contains("not a SCSI device"), "{e}");

    // A `device` link that does not end in H:C:T:L.
    fs_.write("devices/virtual/block/vda/dev", "254:0\n");
    fs::create_dir_all(fs_.root.join("devices/virtio1")).unwrap();
    symlink(
        fs_.root.join("devices/virtual/block/vda"),
        fs_.root.join("block/vda"),
    )
    .unwrap();
    symlink(
        fs_.root.join("devices/virtio1"),
        fs_.root.join("devices/virtual/block/vda/device"),
    )
    .unwrap();
    let e = read_path(&sysfs, "vda").unwrap_err().to_string();
    assert!(e.contains("not a SCSI device"), "{e}");

    // Garbage dev number.
    fs_.disk("sdd", "pseudo_0/adapter0", "4:0:0:0", "8:48");
    fs_.write(
        "devices/pseudo_0/adapter0/host4/target4:0:0/4:0:0:0/block/sdd/dev",
        "eight\n",
    );
    let e = read_path(&sysfs, "sdd").unwrap_err().to_string();
    assert!(e.contains("sdd/dev"), "{e}");
}

#[test]
fn fc_transport_names_and_pci_adapter() {
    let fs_ = FakeSysfs::new("fc");
    fs_.disk_via(
        "sde",
        "pci0000:00/0000:05:00.0",
        "rport-5:0-2",
        "5:0:1:3",
        "8:64",
    );
    fs_.host_class("fc_host", 5);
    fs_.write("class/fc_host/host5/node_name", "0x20000024ff000001\n");
    fs_.write("class/fc_host/host5/port_name", "0x21000024ff000001\n");
    fs_.write(
        "class/fc_transport/target5:0:1/node_name",
        "0x50060e8000000001\n",
    );
    fs_.write(
        "class/fc_transport/target5:0:1/port_name",
        "0x50060e8000000002\n",
    );
    let p = read_path(&fs_.sysfs(), "sde").unwrap();
    let i = &p.info;
    assert_eq!(i.transport, Transport::Fcp);
    assert_eq!(i.host_wwnn.as_deref(), Some("0x20000024ff000001"));
    assert_eq!(i.host_wwpn.as_deref(), Some("0x21000024ff000001"));
    assert_eq!(i.target_wwnn.as_deref(), Some("0x50060e8000000001"));
    assert_eq!(i.target_wwpn.as_deref(), Some("0x50060e8000000002"));
    assert_eq!(i.host_adapter.as_deref(), Some("0000:05:00.0"));
    assert_eq!(
        i.endpoint,
        Some(Endpoint::Fc {
            rport: "rport-5:0-2".into()
        })
    );
}

#[test]
fn sas_end_device_is_the_endpoint() {
    let fs_ = FakeSysfs::new("sas");
    fs_.disk_via(
        "sdg",
        "pci0000:00/0000:03:00.0",
        "port-0:1/end_device-0:1",
        "0:0:1:0",
        "8:96",
    );
    fs_.host_class("sas_host", 0);
    let p = read_path(&fs_.sysfs(), "sdg").unwrap();
    assert_eq!(p.info.transport, Transport::Sas);
    assert_eq!(
        p.info.endpoint,
        Some(Endpoint::Sas {
            end_device: "end_device-0:1".into()
        })
    );
}

#[test]
fn iscsi_session_target_and_portal() {
    let fs_ = FakeSysfs::new("iscsi");
    fs_.disk("sdf", "platform/host6/session3", "6:0:0:0", "8:80");
    // disk() nests hostN under the parent; iSCSI's real layout is
    // platform/hostN/sessionM/target..., close enough for the walk.
    fs_.host_class("iscsi_host", 6);
    fs_.write("class/iscsi_host/host6/ipaddress", "192.168.10.1\n");
    fs_.write(
        "class/iscsi_session/session3/targetname",
        "iqn.2003-01.org.example:t1\n",
    );
    fs_.write(
        "class/iscsi_connection/connection3:0/persistent_address",
        "192.168.10.2\n",
    );
    fs_.write(
        "class/iscsi_connection/connection3:0/persistent_port",
        "3260\n",
    );
    let p = read_path(&fs_.sysfs(), "sdf").unwrap();
    let i = &p.info;
    assert_eq!(i.transport, Transport::Iscsi);
    assert_eq!(i.target_wwnn.as_deref(), Some("iqn.2003-01.org.example:t1"));
    assert_eq!(i.host_adapter.as_deref(), Some("192.168.10.1"));
    assert_eq!(
        i.properties.get(PROP_ISCSI_PORTAL).map(String::as_str),
        Some("192.168.10.2:3260")
    );
    assert_eq!(
        i.properties.get(PROP_ISCSI_SESSION).map(String::as_str),
        Some("session3")
    );
    assert_eq!(
        i.endpoint,
        Some(Endpoint::Iscsi {
            session: "session3".into()
        })
    );
}

#[test]
fn lists_scsi_disks_in_kernel_order() {
    let fs_ = FakeSysfs::new("list");
    for d in ["sdb", "sdaa", "sda", "loop0", "sr0", "sdz", "nvme0n1"] {
        fs::create_dir_all(fs_.root.join("block").join(d)).unwrap();
    }
    assert_eq!(
        fs_.sysfs().scsi_disks().unwrap(),
        ["sda", "sdb", "sdz", "sdaa"]
    );
    assert!(SysfsRoot::new("/nonexistent-mpathd").scsi_disks().is_err());
    assert!(is_scsi_disk_name("sdq") && !is_scsi_disk_name("sdq1") && !is_scsi_disk_name("sd"));
}

#[test]
fn attribute_read_errors() {
    let fs_ = FakeSysfs::new("attr-errors");
    fs_.write("big", vec![b'x'; MAX_ATTR_BYTES as usize + 1]);
    fs_.write("small", "1\n");
    let at = |rel: &str| read_bytes(&fs_.root.join(rel));
    assert!(matches!(at("big"), Err(AttrError::TooLarge)));
    assert_eq!(
        at("big").unwrap_err().to_string(),
        format!("larger than {MAX_ATTR_BYTES} bytes")
    );
    assert!(matches!(at("missing"), Ok(None)));
    assert_eq!(at("small").unwrap(), Some(b"1\n".to_vec()));
    // A directory opens but does not read: the kernel's reason, unchanged.
    match at("block") {
        Err(AttrError::Io(e)) => {
            assert_eq!(e.raw_os_error(), Some(libc::EISDIR));
            assert_eq!(
                AttrError::Io(e).to_string(),
                std::io::Error::from_raw_os_error(libc::EISDIR).to_string()
            );
        }
        other => panic!("{other:?}"),
    }
}
