//! Which paths get multipathed: blacklists (through the configuration's
//! [`PathFilter`]), identity, and `find_multipaths` as multipath.conf(5)
//! (0.9.x) defines it. Pure: every input, including the clock, is a
//! parameter, and every path gets a human-readable `why`.
//!
//! - `strict`: only WWIDs in the wwids file.
//! - `yes` (`on`): the wwids file, or two or more paths with the WWID.
//! - `greedy`: every non-blacklisted path.
//! - `smart`: like `yes`, but a single new path is held back for
//!   `find_multipaths_timeout` seconds waiting for a second one, then
//!   released (left to the rest of the system).
//! - `no` (`off`): every non-blacklisted path.
//!
//! In every mode a path whose WWID already has a map belongs to it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::model::{FilterResult, FindMultipaths, PathFilter, PathInfo, Settings};

use super::identity::{find_conflicts, IdentityConflict};

/// One path as the decision sees it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub info: &'a PathInfo,
    /// When discovery first saw the path: the smart timeout runs from here.
    pub first_seen: Instant,
    /// The path matches a `devices` entry (built-in or configured); with a
    /// negative find_multipaths_timeout only such paths wait the full time.
    pub known_hardware: bool,
    /// Why the path has no WWID, when `info.wwid` is None (from identity).
    pub identity_error: Option<super::identity::NoWwid>,
}

/// WWIDs the decision may treat as already multipathed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownWwids {
    /// Contents of the wwids file.
    pub in_wwids_file: BTreeSet<String>,
    /// WWIDs that have a multipath map now.
    pub with_map: BTreeSet<String>,
}

/// What the decision asks of the WWIDs known elsewhere. A trait, so the
/// daemon answers from its own tables instead of copying every WWID for
/// each path that joins.
pub trait WwidsKnown {
    /// The WWID is in the wwids file.
    fn in_wwids_file(&self, wwid: &str) -> bool;
    /// The WWID has a multipath map now.
    fn has_map(&self, wwid: &str) -> bool;
}

impl WwidsKnown for KnownWwids {
    fn in_wwids_file(&self, wwid: &str) -> bool {
        self.in_wwids_file.contains(wwid)
    }
    fn has_map(&self, wwid: &str) -> bool {
        self.with_map.contains(wwid)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Put the path in the map for `wwid`.
    Multipath { wwid: String },
    /// smart: hold the path until `until`, then decide again.
    Wait { wwid: String, until: Instant },
    /// Leave the path alone.
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub dev: String,
    pub decision: Decision,
    /// Why, for `show paths` / logs.
    pub why: String,
}

impl Verdict {
    pub fn is_multipathed(&self) -> bool {
        matches!(self.decision, Decision::Multipath { .. })
    }
}

/// The smart-mode wait for one path, from `find_multipaths_timeout`:
/// positive applies to every path; negative applies its absolute value to
/// known hardware and 1 s to other devices; 0 means the built-in -10.
pub fn smart_timeout(find_multipaths_timeout: i32, known_hardware: bool) -> Duration {
    let t = if find_multipaths_timeout == 0 {
        -10
    } else {
        find_multipaths_timeout
    };
    if t > 0 || known_hardware {
        Duration::from_secs(t.unsigned_abs().into())
    } else {
        Duration::from_secs(1)
    }
}

pub(crate) fn mode_name(m: FindMultipaths) -> &'static str {
    match m {
        FindMultipaths::No => "off",
        FindMultipaths::Yes => "on",
        FindMultipaths::Greedy => "greedy",
        FindMultipaths::Smart => "smart",
        FindMultipaths::Strict => "strict",
    }
}

fn secs_left(until: Instant, now: Instant) -> u64 {
    let d = until.saturating_duration_since(now);
    // Round up: "0 s left" while still waiting would read wrong.
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Decides, for every path, whether it is multipathed and why.
/// Verdicts come back in input order. Conflicting identities are returned
/// too so the caller can log them (see [`super::identity::log_conflicts`]).
pub fn decide(
    paths: &[Candidate<'_>],
    filter: &dyn PathFilter,
    known: &dyn WwidsKnown,
    settings: &Settings,
    now: Instant,
) -> (Vec<Verdict>, Vec<IdentityConflict>) {
    let filtered: Vec<FilterResult> = paths.iter().map(|c| filter.filter_path(c.info)).collect();

    // Identity conflicts and path counts only among paths the blacklist lets through.
    let eligible: Vec<&PathInfo> = paths
        .iter()
        .zip(&filtered)
        .filter(|(c, f)| !f.is_blacklisted() && c.info.wwid.is_some())
        .map(|(c, _)| c.info)
        .collect();
    let conflicts = find_conflicts(eligible.iter().copied());
    let conflict_of: BTreeMap<&str, &IdentityConflict> =
        conflicts.iter().map(|c| (c.wwid.as_str(), c)).collect();
    let mut siblings: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in &eligible {
        if let Some(w) = p.wwid.as_deref() {
            siblings.entry(w).or_default().push(&p.dev);
        }
    }

    let d = Decider {
        known,
        settings,
        now,
        conflict_of,
        siblings,
    };
    let verdicts = paths
        .iter()
        .zip(&filtered)
        .map(|(c, f)| d.path(c, f))
        .collect();
    (verdicts, conflicts)
}

/// What [`decide`] knows of all paths, to decide one.
struct Decider<'a> {
    known: &'a dyn WwidsKnown,
    settings: &'a Settings,
    now: Instant,
    conflict_of: BTreeMap<&'a str, &'a IdentityConflict>,
    siblings: BTreeMap<&'a str, Vec<&'a str>>,
}

impl Decider<'_> {
    fn path(&self, c: &Candidate<'_>, f: &FilterResult) -> Verdict {
        let dev = c.info.dev.clone();
        let exception = match f {
            FilterResult::Blacklisted { by } => {
                return Verdict::skip(dev, format!("blacklisted by {by}"))
            }
            FilterResult::Excepted { by } => format!(" (blacklist exception {by})"),
            FilterResult::Allowed => String::new(),
        };
        let Some(wwid) = c.info.wwid.clone() else {
            let why = c
                .identity_error
                .as_ref()
                .map_or_else(|| "identity not read".to_string(), ToString::to_string);
            return Verdict::skip(dev, format!("no usable WWID: {why}"));
        };
        if let Some(conf) = self.conflict_of.get(wwid.as_str()) {
            let why = conf.why_for(&dev);
            return Verdict::skip(dev, why);
        }
        let mut v = self.by_mode(c, dev, wwid);
        if matches!(v.decision, Decision::Multipath { .. }) {
            v.why.push_str(&exception);
        }
        v
    }

    /// A path that passed the blacklist, has a WWID and no conflict.
    fn by_mode(&self, c: &Candidate<'_>, dev: String, wwid: String) -> Verdict {
        let multipath = |dev: String, why: String| Verdict {
            dev,
            decision: Decision::Multipath { wwid: wwid.clone() },
            why,
        };
        if self.known.has_map(&wwid) {
            return multipath(dev, format!("WWID {wwid} has a map"));
        }
        let mode = self.settings.find_multipaths;
        let in_file = self.known.in_wwids_file(&wwid);
        let sibs = self
            .siblings
            .get(wwid.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let others: Vec<&str> = sibs.iter().copied().filter(|d| *d != dev).collect();
        match mode {
            FindMultipaths::No | FindMultipaths::Greedy => multipath(
                dev,
                format!(
                    "find_multipaths {}: every path not blacklisted",
                    mode_name(mode)
                ),
            ),
            _ if in_file => multipath(dev, format!("WWID {wwid} is in the wwids file")),
            FindMultipaths::Strict => Verdict::skip(
                dev,
                format!("find_multipaths strict: WWID {wwid} is not in the wwids file"),
            ),
            _ if !others.is_empty() => {
                let why = format!(
                    "{} paths with WWID {wwid} (also {})",
                    others.len() + 1,
                    others.join(", ")
                );
                multipath(dev, why)
            }
            FindMultipaths::Yes => Verdict::skip(
                dev,
                format!("find_multipaths on: only path with WWID {wwid}, not in the wwids file"),
            ),
            FindMultipaths::Smart => self.smart(c, dev, wwid),
        }
    }

    /// find_multipaths smart, one path so far: wait for a second one until
    /// the timeout, then release.
    fn smart(&self, c: &Candidate<'_>, dev: String, wwid: String) -> Verdict {
        let tmo = smart_timeout(self.settings.find_multipaths_timeout, c.known_hardware);
        let until = c.first_seen + tmo;
        if self.now >= until {
            return Verdict::skip(
                dev,
                format!(
                    "find_multipaths smart: no second path with WWID {wwid} within {} s; released",
                    tmo.as_secs()
                ),
            );
        }
        let why = format!(
            "find_multipaths smart: waiting {} s more for a second path with WWID {wwid} (timeout {} s)",
            secs_left(until, self.now),
            tmo.as_secs()
        );
        Verdict {
            dev,
            decision: Decision::Wait { wwid, until },
            why,
        }
    }
}

impl Verdict {
    fn skip(dev: String, why: String) -> Verdict {
        Verdict {
            dev,
            decision: Decision::Skip,
            why,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::identity::{Gap, NoWwid};
    use std::collections::HashMap;

    /// Blacklist with fixed answers per device name.
    #[derive(Default)]
    struct FakeFilter(HashMap<String, FilterResult>);

    impl FakeFilter {
        fn with(mut self, dev: &str, r: FilterResult) -> Self {
            self.0.insert(dev.into(), r);
            self
        }
    }

    impl PathFilter for FakeFilter {
        fn filter_path(&self, info: &PathInfo) -> FilterResult {
            self.0
                .get(&info.dev)
                .cloned()
                .unwrap_or(FilterResult::Allowed)
        }
        fn filter_devnode(&self, dev: &str) -> FilterResult {
            self.0.get(dev).cloned().unwrap_or(FilterResult::Allowed)
        }
    }

    fn p(dev: &str, wwid: Option<&str>) -> PathInfo {
        PathInfo {
            dev: dev.into(),
            wwid: wwid.map(str::to_string),
            size: 2048,
            vendor: "LIO-ORG".into(),
            product: "disk".into(),
            ..PathInfo::default()
        }
    }

    fn settings(m: FindMultipaths) -> Settings {
        Settings {
            find_multipaths: m,
            ..Settings::default()
        }
    }

    struct World {
        paths: Vec<PathInfo>,
        t0: Instant,
    }

    impl World {
        fn new() -> Self {
            World {
                paths: vec![
                    p("sda", Some("3A")),
                    p("sdb", Some("3A")),
                    p("sdc", Some("3B")),
                    p("sdd", None),
                ],
                t0: Instant::now(),
            }
        }
        fn cands(&self) -> Vec<Candidate<'_>> {
            self.paths
                .iter()
                .map(|info| Candidate {
                    info,
                    first_seen: self.t0,
                    known_hardware: false,
                    identity_error: info.wwid.is_none().then(|| NoWwid {
                        udev: Some(("ID_SERIAL".into(), Gap::Absent)),
                        vpd: Gap::Absent,
                    }),
                })
                .collect()
        }
        fn run(
            &self,
            m: FindMultipaths,
            known: &KnownWwids,
            f: &FakeFilter,
            at: Duration,
        ) -> Vec<(bool, String)> {
            let (v, _) = decide(&self.cands(), f, known, &settings(m), self.t0 + at);
            assert_eq!(
                v.iter().map(|v| v.dev.as_str()).collect::<Vec<_>>(),
                ["sda", "sdb", "sdc", "sdd"]
            );
            v.into_iter().map(|v| (v.is_multipathed(), v.why)).collect()
        }
    }

    fn file(ws: &[&str]) -> KnownWwids {
        KnownWwids {
            in_wwids_file: ws.iter().map(|s| s.to_string()).collect(),
            with_map: BTreeSet::new(),
        }
    }

    fn flags(v: &[(bool, String)]) -> Vec<bool> {
        v.iter().map(|x| x.0).collect()
    }

    #[test]
    fn strict_needs_the_wwids_file() {
        let w = World::new();
        let f = FakeFilter::default();
        let v = w.run(FindMultipaths::Strict, &file(&[]), &f, Duration::ZERO);
        assert_eq!(flags(&v), [false, false, false, false]);
        assert_eq!(
            v[0].1,
            "find_multipaths strict: WWID 3A is not in the wwids file"
        );
        assert_eq!(
            v[3].1,
            "no usable WWID: udev property ID_SERIAL is not set; no identity in VPD page 0x83"
        );
        let v = w.run(FindMultipaths::Strict, &file(&["3B"]), &f, Duration::ZERO);
        assert_eq!(flags(&v), [false, false, true, false]);
        assert_eq!(v[2].1, "WWID 3B is in the wwids file");
    }

    #[test]
    fn yes_needs_file_or_two_paths() {
        let w = World::new();
        let f = FakeFilter::default();
        let v = w.run(FindMultipaths::Yes, &file(&[]), &f, Duration::ZERO);
        assert_eq!(flags(&v), [true, true, false, false]);
        assert_eq!(v[0].1, "2 paths with WWID 3A (also sdb)");
        assert_eq!(
            v[2].1,
            "find_multipaths on: only path with WWID 3B, not in the wwids file"
        );
        let v = w.run(FindMultipaths::Yes, &file(&["3B"]), &f, Duration::ZERO);
        assert_eq!(flags(&v), [true, true, true, false]);
    }

    #[test]
    fn greedy_and_off_take_every_allowed_path() {
        let w = World::new();
        let f = FakeFilter::default().with(
            "sdb",
            FilterResult::Blacklisted {
                by: "devnode \"^sdb\"".into(),
            },
        );
        for m in [FindMultipaths::Greedy, FindMultipaths::No] {
            let v = w.run(m, &file(&[]), &f, Duration::ZERO);
            assert_eq!(flags(&v), [true, false, true, false], "{m:?}");
            assert_eq!(v[1].1, "blacklisted by devnode \"^sdb\"");
        }
        let v = w.run(FindMultipaths::No, &file(&[]), &f, Duration::ZERO);
        assert_eq!(v[0].1, "find_multipaths off: every path not blacklisted");
    }

    #[test]
    fn blacklisted_sibling_does_not_count_as_second_path() {
        let w = World::new();
        let f = FakeFilter::default().with(
            "sdb",
            FilterResult::Blacklisted {
                by: "wwid \"3A\"".into(),
            },
        );
        let v = w.run(FindMultipaths::Yes, &file(&[]), &f, Duration::ZERO);
        assert_eq!(flags(&v), [false, false, false, false]);
    }

    #[test]
    fn exception_is_mentioned() {
        let w = World::new();
        let f = FakeFilter::default().with(
            "sdc",
            FilterResult::Excepted {
                by: "wwid \"^3B\" (multipath.conf:3)".into(),
            },
        );
        let v = w.run(FindMultipaths::Greedy, &file(&[]), &f, Duration::ZERO);
        assert!(
            v[2].1
                .ends_with("(blacklist exception wwid \"^3B\" (multipath.conf:3))"),
            "{}",
            v[2].1
        );
    }

    #[test]
    fn smart_waits_then_releases() {
        let w = World::new();
        let f = FakeFilter::default();
        let k = file(&[]);
        let (v, _) = decide(
            &w.cands(),
            &f,
            &k,
            &settings(FindMultipaths::Smart),
            w.t0 + Duration::from_millis(200),
        );
        assert!(v[0].is_multipathed() && v[1].is_multipathed());
        assert_eq!(
            v[2].decision,
            Decision::Wait {
                wwid: "3B".into(),
                until: w.t0 + Duration::from_secs(1)
            }
        );
        assert_eq!(
            v[2].why,
            "find_multipaths smart: waiting 1 s more for a second path with WWID 3B (timeout 1 s)"
        );
        let v = w.run(FindMultipaths::Smart, &k, &f, Duration::from_secs(1));
        assert_eq!(
            v[2],
            (
                false,
                "find_multipaths smart: no second path with WWID 3B within 1 s; released".into()
            )
        );
        // A second path arriving later still forms a map.
        let mut w2 = World::new();
        w2.paths.push(p("sde", Some("3B")));
        let (v, _) = decide(
            &w2.cands(),
            &f,
            &k,
            &settings(FindMultipaths::Smart),
            w2.t0 + Duration::from_secs(60),
        );
        assert!(v[2].is_multipathed() && v[4].is_multipathed());
    }

    #[test]
    fn smart_timeout_rules() {
        assert_eq!(smart_timeout(-10, true), Duration::from_secs(10));
        assert_eq!(smart_timeout(-10, false), Duration::from_secs(1));
        assert_eq!(smart_timeout(0, true), Duration::from_secs(10));
        assert_eq!(smart_timeout(30, false), Duration::from_secs(30));
        let w = World::new();
        let mut c = w.cands();
        c[2].known_hardware = true;
        let s = Settings {
            find_multipaths_timeout: -5,
            ..settings(FindMultipaths::Smart)
        };
        let (v, _) = decide(
            &c,
            &FakeFilter::default(),
            &file(&[]),
            &s,
            w.t0 + Duration::from_secs(4),
        );
        assert!(matches!(v[2].decision, Decision::Wait { .. }));
    }

    #[test]
    fn existing_map_wins_in_every_mode() {
        let w = World::new();
        let k = KnownWwids {
            with_map: ["3B".to_string()].into(),
            ..file(&[])
        };
        for m in [
            FindMultipaths::Strict,
            FindMultipaths::Yes,
            FindMultipaths::Smart,
        ] {
            let v = w.run(m, &k, &FakeFilter::default(), Duration::ZERO);
            assert_eq!(v[2], (true, "WWID 3B has a map".into()), "{m:?}");
        }
    }

    #[test]
    fn conflicting_paths_are_never_grouped() {
        let mut w = World::new();
        w.paths[1].size = 4096;
        let (v, conflicts) = decide(
            &w.cands(),
            &FakeFilter::default(),
            &file(&["3A"]),
            &settings(FindMultipaths::No),
            w.t0,
        );
        assert_eq!(conflicts.len(), 1);
        assert!(!v[0].is_multipathed() && !v[1].is_multipathed());
        assert!(
            v[0].why.starts_with("identity conflict with sdb: WWID 3A"),
            "{}",
            v[0].why
        );
        assert!(
            v[1].why.starts_with("identity conflict with sda"),
            "{}",
            v[1].why
        );
        assert!(v[2].is_multipathed());
        // A blacklisted impostor does not poison the others.
        let f = FakeFilter::default().with("sdb", FilterResult::Blacklisted { by: "x".into() });
        let (v, conflicts) = decide(
            &w.cands(),
            &f,
            &file(&["3A"]),
            &settings(FindMultipaths::No),
            w.t0,
        );
        assert!(conflicts.is_empty());
        assert!(v[0].is_multipathed());
    }
}
