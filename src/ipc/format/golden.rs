//! Golden tests: snapshots built to match real daemons' captured output
//! (testdata/, copied from the project's reference samples).

use std::sync::Arc;

use super::*;
use crate::model::{
    DevState, DevT, DmPathState, Hcil, MapSnapshot, PathGroupSnapshot, PathInfo, PgState,
};

fn path(
    hcil: &str,
    dev: &str,
    devt: &str,
    dm: DmPathState,
    chk: ChkState,
    map: &str,
) -> PathSnapshot {
    PathSnapshot {
        info: PathInfo {
            dev: dev.into(),
            devt: devt.parse::<DevT>().ok(),
            hcil: hcil.parse::<Hcil>().ok(),
            dev_state: DevState::Running,
            ..Default::default()
        }
        .into(),
        chk_state: chk,
        dm_state: dm,
        checker: "tur".into(),
        map: Some(map.into()),
        ..Default::default()
    }
}

fn group(selector: &str, prio: i32, st: PgState, paths: Vec<PathSnapshot>) -> PathGroupSnapshot {
    PathGroupSnapshot {
        selector: selector.into(),
        prio,
        dm_state: st,
        marginal: false,
        paths: paths.into_iter().map(Arc::new).collect(),
    }
}

fn huawei_map() -> MapSnapshot {
    let wwid = "368caaaaaaaaae2069fb9e3e1000001c4";
    let up = |h: &str, d: &str, t: &str| {
        let mut p = path(h, d, t, DmPathState::Active, ChkState::Up, "mpatha");
        std::sync::Arc::make_mut(&mut p.info).vendor = "HUAWEI".into();
        std::sync::Arc::make_mut(&mut p.info).product = "XSG1".into();
        p
    };
    MapSnapshot {
        name: "mpatha".into(),
        wwid: wwid.into(),
        uuid: format!("mpath-{wwid}"),
        dm_minor: Some(6),
        vendor: "HUAWEI".into(),
        product: "XSG1".into(),
        size: 2 * 1024 * 1024 * 1024,
        features: "1 queue_if_no_path".into(),
        hwhandler: "1 alua".into(),
        action: "create".into(),
        dm_st: "active".into(),
        path_groups: vec![
            group(
                "round-robin 0",
                50,
                PgState::Active,
                vec![up("1:0:1:1", "sdc", "8:32"), up("2:0:7:1", "sdq", "65:0")],
            ),
            group(
                "round-robin 0",
                10,
                PgState::Enabled,
                vec![up("1:0:0:1", "sdb", "8:16"), up("2:0:6:1", "sdp", "8:240")],
            ),
        ],
        ..Default::default()
    }
}

#[test]
fn list_maps_golden() {
    let snap = DaemonSnapshot {
        maps: vec![huawei_map().into()],
        ..Default::default()
    };
    let got = answer_query(&Command::ShowMaps, &snap).unwrap_or_default();
    assert_eq!(got, include_str!("testdata/list_maps.txt"));
}

#[test]
fn show_status_golden() {
    let mut paths: Vec<PathSnapshot> = (0..16)
        .map(|i| {
            path(
                &format!("1:0:0:{i}"),
                &format!("sd{}", (b'a' + i as u8) as char),
                &format!("8:{}", i * 16),
                DmPathState::Active,
                ChkState::Up,
                "m",
            )
        })
        .collect();
    paths.push(PathSnapshot::default());
    let snap = DaemonSnapshot {
        paths: paths.into_iter().map(Arc::new).collect(),
        ..Default::default()
    };
    let got = answer_query(&Command::ShowStatus, &snap).unwrap_or_default();
    assert_eq!(got, include_str!("testdata/show_status.txt"));
}

#[test]
fn multipath_ll_golden() {
    assert_eq!(
        multipath_ll(&huawei_map()),
        include_str!("testdata/show_topology_head.txt")
    );
}

fn netapp_snapshot() -> DaemonSnapshot {
    let name = "3600a098038303973743f486833396d44";
    let p = |h: &str, d: &str, t: &str, ok: bool| {
        let (dm, chk) = if ok {
            (DmPathState::Active, ChkState::Up)
        } else {
            (DmPathState::Failed, ChkState::Down)
        };
        let mut p = path(h, d, t, dm, chk, name);
        std::sync::Arc::make_mut(&mut p.info).vendor = "NETAPP  ".into();
        std::sync::Arc::make_mut(&mut p.info).product = "LUN C-Mode".into();
        p
    };
    let paths = vec![
        p("0:0:0:4", "sdr", "65:16", true),
        p("0:0:1:4", "sdg", "8:96", true),
        p("7:0:0:4", "sdab", "65:176", false),
        p("7:0:1:4", "sdam", "66:96", false),
    ];
    let map = MapSnapshot {
        name: name.into(),
        wwid: name.into(),
        uuid: format!("mpath-{name}"),
        dm_minor: Some(1),
        size: 200 * 1024 * 1024 * 2,
        features: "4 queue_if_no_path pg_init_retries 50 retain_attached_hw_handle".into(),
        hwhandler: "1 alua".into(),
        dm_st: "active".into(),
        path_groups: vec![group("service-time 0", 50, PgState::Active, paths.clone())],
        ..Default::default()
    };
    // The daemon pads path columns over every path it knows, including
    // those of other maps (here one with a two-digit LUN).
    let mut all = paths;
    all.push(p("0:0:0:10", "sdz", "65:144", true));
    DaemonSnapshot {
        maps: vec![map.into()],
        paths: all.into_iter().map(Arc::new).collect(),
        ..Default::default()
    }
}

#[test]
fn sm_show_map_topology_golden() {
    let snap = netapp_snapshot();
    let cmd = parse_ok("show map 3600a098038303973743f486833396d44 topology");
    let got = answer_query(&cmd, &snap).unwrap_or_default();
    let sample = include_str!("testdata/sm_show_map_topology.txt");
    // The sample is the interactive client's output: echo line first.
    let (echo, reply) = sample.split_once('\n').unwrap_or_default();
    assert_eq!(
        echo,
        "multipathd> show map 3600a098038303973743f486833396d44 topology"
    );
    assert_eq!(got, reply);
    // By dm name too.
    assert_eq!(
        answer_query(&parse_ok("show map dm-1 topology"), &snap),
        Some(got)
    );
}

fn parse_ok(s: &str) -> Command {
    crate::ipc::command::parse(s).unwrap_or(Command::ShowDaemon)
}

#[test]
fn show_paths_layout() {
    let snap = netapp_snapshot();
    let mut snap = snap;
    for p in &mut snap.paths {
        let p = Arc::make_mut(p);
        p.prio = 50;
        p.check_interval = 20;
        p.check_elapsed = 16;
    }
    snap.paths.push(Arc::new(PathSnapshot {
        info: PathInfo {
            dev: "sda".into(),
            devt: Some(DevT::new(8, 0)),
            hcil: Some(Hcil {
                host: 2,
                channel: 0,
                target: 0,
                lun: 0,
            }),
            ..Default::default()
        }
        .into(),
        prio: -1,
        ..Default::default()
    }));
    let got = answer_query(&Command::ShowPaths, &snap).unwrap_or_default();
    let want = "\
hcil     dev  dev_t  pri dm_st  chk_st dev_st  next_check     
0:0:0:4  sdr  65:16  50  active ready  running XX........ 4/20
0:0:1:4  sdg  8:96   50  active ready  running XX........ 4/20
7:0:0:4  sdab 65:176 50  failed faulty running XX........ 4/20
7:0:1:4  sdam 66:96  50  failed faulty running XX........ 4/20
0:0:0:10 sdz  65:144 50  active ready  running XX........ 4/20
2:0:0:0  sda  8:0    -1  undef  undef  unknown orphan         
";
    assert_eq!(got, want);
    let raw = answer_query(&parse_ok("show paths raw format \"%d %m\""), &snap).unwrap_or_default();
    assert!(raw.starts_with("sdr 3600a098038303973743f486833396d44\n"));
    assert!(raw.ends_with("sda [orphan]\n"));
    assert_eq!(
        answer_query(&parse_ok("show path 65:176"), &snap).as_deref(),
        Some("running\n")
    );
    assert_eq!(
        answer_query(&parse_ok("show path sdnope"), &snap).as_deref(),
        Some("fail\ndevice not found\n")
    );
}

#[test]
fn maps_status_stats_and_format() {
    let mut m = huawei_map();
    m.queueing = "on".into();
    m.nr_active = 4;
    m.stats.path_faults = 3;
    m.stats.map_loads = 12;
    let snap = DaemonSnapshot {
        maps: vec![m.into()],
        ..Default::default()
    };
    assert_eq!(
        answer_query(&Command::ShowMapsStatus, &snap).unwrap_or_default(),
        "name   failback queueing paths dm-st  write_prot\n\
         mpatha manual   on       4     active rw        \n"
    );
    assert_eq!(
        answer_query(&Command::ShowMapsStats, &snap).unwrap_or_default(),
        "name   path_faults switch_grp map_loads total_q_time q_timeouts\n\
         mpatha 3           0          12        0            0         \n"
    );
    assert_eq!(
        answer_query(&parse_ok("show maps raw format \"%n %S %s\""), &snap).unwrap_or_default(),
        "mpatha 1.0T HUAWEI,XSG1\n"
    );
    assert_eq!(
        answer_query(&parse_ok("show map dm-6 format \"%n:%N\""), &snap).unwrap_or_default(),
        "mpatha:4    \n"
    );
    // Nothing to show: empty (the server turns it into "ok").
    let empty = DaemonSnapshot::default();
    assert_eq!(
        answer_query(&Command::ShowMaps, &empty).as_deref(),
        Some("")
    );
    assert_eq!(
        answer_query(&Command::ShowTopology, &empty).as_deref(),
        Some("")
    );
    assert_eq!(
        answer_query(&Command::ShowPaths, &empty).as_deref(),
        Some("")
    );
}

#[test]
fn daemon_line() {
    let snap = DaemonSnapshot {
        pid: 1234,
        state: "idle".into(),
        ..Default::default()
    };
    assert_eq!(daemon(&snap), "pid 1234 idle\n");
}

#[test]
fn json_layout() {
    let mut m = huawei_map();
    m.path_groups.truncate(1);
    m.path_groups[0].paths.truncate(1);
    m.action = String::new();
    m.queueing = "on".into();
    m.nr_active = 1;
    let want = r###"{
   "major_version": 0,
   "minor_version": 1,
   "maps": [{
      "name" : "mpatha",
      "uuid" : "368caaaaaaaaae2069fb9e3e1000001c4",
      "sysfs" : "dm-6",
      "failback" : "manual",
      "queueing" : "on",
      "paths" : 1,
      "write_prot" : "rw",
      "dm_st" : "active",
      "features" : "1 queue_if_no_path",
      "hwhandler" : "1 alua",
      "action" : "",
      "path_faults" : 0,
      "vend" : "HUAWEI",
      "prod" : "XSG1",
      "rev" : "##",
      "switch_grp" : 0,
      "map_loads" : 0,
      "total_q_time" : 0,
      "q_timeouts" : 0,
      "path_groups": [{
         "selector" : "round-robin 0",
         "pri" : 50,
         "dm_st" : "active",
         "marginal_st" : "normal",
         "group" : 1,
         "paths": [{
            "dev" : "sdc",
            "dev_t" : "8:32",
            "dm_st" : "active",
            "dev_st" : "running",
            "chk_st" : "ready",
            "checker" : "tur",
            "pri" : 0,
            "host_wwnn" : "[undef]",
            "target_wwnn" : "[undef]",
            "host_wwpn" : "[undef]",
            "target_wwpn" : "[undef]",
            "host_adapter" : "[undef]",
            "lun_hex" : "0x0001000000000000",
            "marginal_st" : "normal"
         }]
      }]
   }]
}
"###;
    let snap = DaemonSnapshot {
        maps: vec![m.clone().into()],
        ..Default::default()
    };
    let got = maps_json(&snap);
    assert_eq!(got, want);
    let v: serde_json::Value = serde_json::from_str(&got).unwrap_or_default();
    assert_eq!(v["maps"][0]["path_groups"][0]["paths"][0]["dev"], "sdc");

    // Two maps, two groups: still valid JSON; the single-map form too.
    let snap = DaemonSnapshot {
        maps: vec![huawei_map().into(), netapp_snapshot().maps[0].clone()],
        ..Default::default()
    };
    let v: serde_json::Value = serde_json::from_str(&maps_json(&snap)).unwrap_or_default();
    assert_eq!(
        v["maps"][1]["path_groups"][0]["paths"][3]["chk_st"],
        "faulty"
    );
    assert_eq!(v["maps"][0]["path_groups"][1]["group"], 2);
    let one = map_json(&m);
    assert!(
        one.starts_with("{\n   \"major_version\": 0,\n   \"minor_version\": 1,\n   \"map\":{\n")
    );
    assert!(one.ends_with("      }]\n   }\n}\n"));
    let v: serde_json::Value = serde_json::from_str(&one).unwrap_or_default();
    assert_eq!(v["map"]["name"], "mpatha");
    let empty = maps_json(&DaemonSnapshot::default());
    assert_eq!(
        empty,
        "{\n   \"major_version\": 0,\n   \"minor_version\": 1,\n   \"maps\": []\n}\n"
    );
}
