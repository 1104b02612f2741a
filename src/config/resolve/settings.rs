//! A path's settings, keyword group by keyword group, from the layers
//! that apply to it (see the parent module for precedence and the
//! detect_* rules).

use super::*;

/// san_path_err_* when all three are set above 0; else delay_watch_checks
/// and delay_wait_checks mapped onto it as multipath-tools 0.9 maps them
/// (threshold 1, forget_rate delay_watch_checks, recovery_time
/// delay_wait_checks x max_polling_interval).
fn san_path_err(
    r: &mut Resolver<'_>,
    watch: Option<u32>,
    wait: Option<u32>,
    max_polling_interval: u32,
) -> Option<SanPathErr> {
    let t = opt_no(r.get("san_path_err_threshold")).filter(|&v| v > 0);
    let f = opt_no(r.get("san_path_err_forget_rate")).filter(|&v| v > 0);
    let rt = opt_no(r.get("san_path_err_recovery_time")).filter(|&v| v > 0);
    if let (Some(threshold), Some(forget_rate), Some(recovery_time)) = (t, f, rt) {
        return Some(SanPathErr {
            threshold,
            forget_rate,
            recovery_time,
        });
    }
    if t.is_some() || f.is_some() || rt.is_some() {
        r.note(
            "san_path_err_threshold",
            "off: san_path_err_threshold, _forget_rate and _recovery_time must all be set".into(),
        );
        return None;
    }
    let (watch, wait) = (watch.filter(|&v| v > 0)?, wait.filter(|&v| v > 0)?);
    r.note(
        "san_path_err_threshold",
        format!(
            "delay_watch_checks {watch} / delay_wait_checks {wait}: threshold 1, forget_rate {watch}, recovery_time {wait} x max_polling_interval {max_polling_interval} s"
        ),
    );
    Some(SanPathErr {
        threshold: 1,
        forget_rate: watch,
        recovery_time: wait.saturating_mul(max_polling_interval.max(1)),
    })
}

fn opt_no(t: Option<String>) -> Option<u32> {
    t.and_then(|t| t.parse::<u32>().ok())
}

/// Remove `word` (and the count) from a features string.
fn remove_feature(features: &str, word: &str) -> String {
    let mut words: Vec<&str> = features.split_whitespace().collect();
    if words.is_empty() {
        return "0".into();
    }
    words.remove(0);
    words.retain(|w| *w != word);
    if words.is_empty() {
        "0".into()
    } else {
        format!("{} {}", words.len(), words.join(" "))
    }
}

pub(crate) fn resolve(cfg: &Config, info: Option<&PathKey>) -> Explained {
    let mut r = Resolver {
        layers: layers(cfg, info),
        origins: BTreeMap::new(),
    };
    let p = PathCtx {
        info,
        tpgs: info.map(|i| i.tpgs).unwrap_or(0),
        scsi: info.is_some_and(|i| i.transport != Transport::Nvme),
    };
    let mut s = Settings::default();
    resolve_detection_prio_checker_pgpolicy(&mut r, &mut s, &p);
    resolve_selector_failback(&mut r, &mut s, &p);
    resolve_queueing(&mut r, &mut s, &p);
    resolve_hardware_handler(&mut r, &mut s, &p);
    resolve_naming_and_grouping(&mut r, &mut s, &p);
    resolve_timers(&mut r, &mut s, &p);
    resolve_lifecycle(&mut r, &mut s, &p);
    // A devices entry (built-in or configured) set something: smart
    // find_multipaths gives known hardware the full timeout.
    s.known_hardware = r.origins.values().any(|o| o.source.starts_with("devices"));
    Explained {
        settings: s,
        origins: r.origins,
    }
}

/// What resolution knows of the path.
#[derive(Clone, Copy)]
struct PathCtx<'a> {
    info: Option<&'a PathKey>,
    /// TPGS bits from INQUIRY (0 when unknown).
    tpgs: u8,
    /// A SCSI path (not NVMe).
    scsi: bool,
}

/// prio, prio_args, path_checker and path_grouping_policy, with
/// the detect_* rules for ALUA-capable paths.
fn resolve_detection_prio_checker_pgpolicy(
    r: &mut Resolver<'_>,
    s: &mut Settings,
    p: &PathCtx<'_>,
) {
    let d = Settings::default();
    s.detect_prio = r.yes("detect_prio", d.detect_prio);
    s.detect_checker = r.yes("detect_checker", d.detect_checker);
    s.detect_pgpolicy = r.yes("detect_pgpolicy", d.detect_pgpolicy);
    s.detect_pgpolicy_use_tpg = r.yes("detect_pgpolicy_use_tpg", d.detect_pgpolicy_use_tpg);
    let rdac = r.rdac();
    let (prio, prio_args) = resolve_prio(r, s.detect_prio, rdac, p);
    s.path_checker = resolve_checker(r, s.detect_checker, rdac, p);
    s.path_grouping_policy = resolve_pgpolicy(r, s, &prio, p);
    s.prio = prio;
    s.prio_args = prio_args;
}

/// prio and prio_args: detect_prio for ALUA paths, else the configured
/// ones; alua on a path without TPGS falls back to const.
fn resolve_prio(
    r: &mut Resolver<'_>,
    detect_prio: bool,
    rdac: bool,
    p: &PathCtx<'_>,
) -> (String, String) {
    let PathCtx { info, tpgs, scsi } = *p;
    let (mut prio, mut prio_args) = if detect_prio && scsi && tpgs != 0 {
        let access = info.is_some_and(|i| i.access_state);
        let prio = if (tpgs == 2 || !rdac) && access {
            "sysfs"
        } else {
            "alua"
        };
        let why = format!(
            "detect_prio (path reports TPGS {tpgs}{})",
            if prio == "sysfs" {
                ", kernel exposes access_state"
            } else {
                ""
            }
        );
        r.note("prio", why.clone());
        r.note("prio_args", why);
        (prio.to_string(), String::new())
    } else {
        configured_prio(r)
    };
    if prio == "alua" && tpgs == 0 && info.is_some() {
        prio = "const".into();
        prio_args = String::new();
        r.note(
            "prio",
            "emergency fallback: prio alua, but the path reports no TPGS (ALUA) support".into(),
        );
    }
    (prio, prio_args)
}

/// The configured prio and its args. Device entries: the first one with
/// prio_args gives the args (set_prio_from_vec); other layers: the layer
/// that sets prio.
fn configured_prio(r: &mut Resolver<'_>) -> (String, String) {
    let Some(i) = r.layers.iter().position(|l| l.attrs.contains_key("prio")) else {
        r.note("prio", "built-in default".into());
        r.note("prio_args", "built-in default".into());
        return (Settings::default().prio, String::new());
    };
    let l = &r.layers[i];
    let v = &l.attrs["prio"];
    let prio = v.text.clone();
    let po = l.origin(v);
    let args = if l.kind == LayerKind::Device {
        r.layers[i..]
            .iter()
            .filter(|l| l.kind == LayerKind::Device)
            .find_map(|l| {
                l.attrs
                    .get("prio_args")
                    .map(|v| (v.text.clone(), l.origin(v)))
            })
    } else {
        l.attrs
            .get("prio_args")
            .map(|v| (v.text.clone(), l.origin(v)))
    };
    r.note("prio", po.clone());
    match args {
        Some((a, o)) => {
            r.note("prio_args", o);
            (prio, a)
        }
        None => {
            r.note("prio_args", po);
            (prio, String::new())
        }
    }
}

/// path_checker: detect_checker for ALUA paths (rdac on RDAC arrays, tur
/// otherwise), else the configured one.
fn resolve_checker(
    r: &mut Resolver<'_>,
    detect_checker: bool,
    rdac: bool,
    p: &PathCtx<'_>,
) -> String {
    if !(detect_checker && p.scsi && p.tpgs != 0) {
        return r
            .get("path_checker")
            .unwrap_or(Settings::default().path_checker);
    }
    if rdac {
        r.note("path_checker", "detect_checker (RDAC array)".into());
        "rdac".to_string()
    } else {
        r.note(
            "path_checker",
            format!("detect_checker (path reports TPGS {})", p.tpgs),
        );
        "tur".to_string()
    }
}

/// path_grouping_policy: detect_pgpolicy for ALUA prioritizers, else the
/// configured one; group_by_tpg without an ALUA prio falls back to failover.
fn resolve_pgpolicy(r: &mut Resolver<'_>, s: &Settings, prio: &str, p: &PathCtx<'_>) -> PgPolicy {
    let alua_like = prio == "alua" || prio == "sysfs";
    let mut pgp = if s.detect_pgpolicy && alua_like && p.info.is_some() {
        r.note(
            "path_grouping_policy",
            format!("detect_pgpolicy (prio {prio})"),
        );
        if s.detect_pgpolicy_use_tpg {
            PgPolicy::GroupByTpg
        } else {
            PgPolicy::GroupByPrio
        }
    } else {
        r.get("path_grouping_policy")
            .and_then(|t| t.parse().ok())
            .unwrap_or(Settings::default().path_grouping_policy)
    };
    if pgp == PgPolicy::GroupByTpg && !alua_like {
        pgp = PgPolicy::Failover;
        r.note(
            "path_grouping_policy",
            "emergency fallback: group_by_tpg needs prio alua or sysfs".into(),
        );
    }
    pgp
}

/// path_selector and failback.
fn resolve_selector_failback(r: &mut Resolver<'_>, s: &mut Settings, _p: &PathCtx<'_>) {
    let d = Settings::default();
    let path_selector = r.get("path_selector").unwrap_or(d.path_selector.clone());
    let failback = match r.get("failback").as_deref() {
        Some("immediate") => Failback::Immediate,
        Some("followover") => Failback::Followover,
        Some("manual") | None => Failback::Manual,
        Some(n) => n
            .parse()
            .map(Failback::Deferred)
            .unwrap_or(Failback::Manual),
    };
    s.path_selector = path_selector;
    s.failback = failback;
}

/// features and no_path_retry, reconciled as multipath-tools does, and
/// pg_init_retries from the features.
fn resolve_queueing(r: &mut Resolver<'_>, s: &mut Settings, _p: &PathCtx<'_>) {
    let d = Settings::default();
    // features and no_path_retry, reconciled as multipath-tools does.
    let mut features = r.get("features").unwrap_or(d.features.to_string());
    let npr_conf = r.find("no_path_retry");
    let mut no_path_retry = match npr_conf.as_ref().map(|(t, _)| t.as_str()) {
        Some("queue") => NoPathRetry::Queue,
        Some("fail") | Some("0") | None => NoPathRetry::Fail,
        Some(n) => n
            .parse()
            .map(NoPathRetry::Retries)
            .unwrap_or(NoPathRetry::Fail),
    };
    match &npr_conf {
        Some((_, o)) => r.note("no_path_retry", o.clone()),
        None => r.note("no_path_retry", "built-in default".into()),
    }
    if features.split_whitespace().any(|w| w == "queue_if_no_path") {
        let fo = r
            .origins
            .get("features")
            .map(|o| o.source.clone())
            .unwrap_or_default();
        if npr_conf.is_none() {
            no_path_retry = NoPathRetry::Queue;
            r.note(
                "no_path_retry",
                format!("features \"queue_if_no_path\" ({fo})"),
            );
        } else if no_path_retry != NoPathRetry::Queue {
            features = remove_feature(&features, "queue_if_no_path");
            r.note(
                "features",
                format!("{fo}; queue_if_no_path dropped because no_path_retry is {no_path_retry}"),
            );
        }
    }
    let pg_init_retries = {
        let w: Vec<&str> = features.split_whitespace().collect();
        w.iter()
            .position(|x| *x == "pg_init_retries")
            .and_then(|i| w.get(i + 1))
            .and_then(|n| n.parse().ok())
    };
    r.note(
        "pg_init_retries",
        r.origins
            .get("features")
            .map(|o| o.source.clone())
            .unwrap_or_default(),
    );
    s.features = features.parse().unwrap_or_default();
    s.no_path_retry = no_path_retry;
    s.pg_init_retries = pg_init_retries;
}

/// The hardware handler: the one the kernel attached (with
/// retain_attached_hw_handler), else configured, else detected from TPGS.
fn resolve_hardware_handler(r: &mut Resolver<'_>, s: &mut Settings, p: &PathCtx<'_>) {
    let d = Settings::default();
    let PathCtx { info, tpgs, .. } = *p;
    // hardware_handler
    let retain = r.yes("retain_attached_hw_handler", d.retain_attached_hw_handler);
    let attached = info.and_then(|i| i.dh_state.as_deref());
    let mut hardware_handler = match (retain, attached) {
        (true, Some(h)) => {
            r.note(
                "hardware_handler",
                format!("retained: the kernel attached scsi_dh \"{h}\""),
            );
            format!("1 {h}")
        }
        _ => r
            .get("hardware_handler")
            .unwrap_or(d.hardware_handler.to_string()),
    };
    if info.is_some() {
        let from_default = r
            .origins
            .get("hardware_handler")
            .is_some_and(|o| o.source == "built-in default");
        if tpgs != 0 && hardware_handler == "0" && from_default {
            hardware_handler = "1 alua".into();
            r.note("hardware_handler", format!("autodetected from TPGS {tpgs}"));
        } else if tpgs == 0 && hardware_handler == "1 alua" {
            hardware_handler = "0".into();
            r.note(
                "hardware_handler",
                "autodetected: \"1 alua\" dropped, the path reports no TPGS".into(),
            );
        }
    }
    s.retain_attached_hw_handler = retain;
    s.hardware_handler = hardware_handler.parse().unwrap_or_default();
}

/// Path group weights, the map's name and find_multipaths.
fn resolve_naming_and_grouping(r: &mut Resolver<'_>, s: &mut Settings, _p: &PathCtx<'_>) {
    let d = Settings::default();
    let rr_weight = match r.get("rr_weight").as_deref() {
        Some("priorities") => RrWeight::Priorities,
        _ => RrWeight::Uniform,
    };
    let rr_min_io = r.num("rr_min_io", d.rr_min_io);
    let rr_min_io_rq = r.num("rr_min_io_rq", d.rr_min_io_rq);
    let alias = r.find("alias").map(|(t, o)| {
        r.note("alias", o);
        t
    });
    if alias.is_none() {
        r.note(
            "alias",
            "none (the map is named by WWID or user_friendly_names)".into(),
        );
    }
    let user_friendly_names = r.yes("user_friendly_names", d.user_friendly_names);
    let find_multipaths = match r.get("find_multipaths").as_deref() {
        Some("yes") | Some("on") => FindMultipaths::Yes,
        Some("no") | Some("off") => FindMultipaths::No,
        Some("greedy") => FindMultipaths::Greedy,
        Some("smart") => FindMultipaths::Smart,
        _ => FindMultipaths::Strict,
    };
    let find_multipaths_timeout = r.num("find_multipaths_timeout", d.find_multipaths_timeout);
    s.rr_weight = rr_weight;
    s.rr_min_io = rr_min_io;
    s.rr_min_io_rq = rr_min_io_rq;
    s.alias = alias;
    s.user_friendly_names = user_friendly_names;
    s.find_multipaths = find_multipaths;
    s.find_multipaths_timeout = find_multipaths_timeout;
}

/// Check intervals and timeouts, transport timeouts and flap damping.
fn resolve_timers(r: &mut Resolver<'_>, s: &mut Settings, p: &PathCtx<'_>) {
    let d = Settings::default();
    let PathCtx { info, .. } = *p;
    let mut polling_interval = r.num("polling_interval", d.polling_interval);
    let max_polling_interval = match r.find("max_polling_interval") {
        Some((t, o)) => {
            r.note("max_polling_interval", o);
            t.parse().unwrap_or(d.max_polling_interval)
        }
        None => {
            r.note(
                "max_polling_interval",
                "built-in default (4 x polling_interval)".into(),
            );
            polling_interval.saturating_mul(4)
        }
    };
    if polling_interval > max_polling_interval {
        polling_interval = max_polling_interval;
        r.note("polling_interval", "capped at max_polling_interval".into());
    }
    let checker_timeout = match r.find("checker_timeout") {
        Some((t, o)) => {
            r.note("checker_timeout", o);
            t.parse().ok()
        }
        None => {
            let t = info.and_then(|i| i.timeout_secs);
            r.note(
                "checker_timeout",
                match t {
                    Some(t) => format!("kernel: /sys/block/DEV/device/timeout ({t} s)"),
                    None => "kernel: /sys/block/DEV/device/timeout (else 30 s)".into(),
                },
            );
            None
        }
    };
    let fast_io_fail_tmo = match r.get("fast_io_fail_tmo").as_deref() {
        Some("off") => None,
        Some(n) => n.parse().ok(),
        None => d.fast_io_fail_tmo,
    };
    let dev_loss_tmo = match r.get("dev_loss_tmo").as_deref() {
        Some("infinity") => Some(u32::MAX),
        Some(n) => n.parse().ok(),
        None => None,
    };
    let eh_deadline = match r.get("eh_deadline").as_deref() {
        Some("off") => Some(Tmo::Off),
        Some(n) => n.parse().ok().map(Tmo::Secs),
        None => None,
    };
    let delay_watch_checks = opt_no(r.get("delay_watch_checks"));
    let delay_wait_checks = opt_no(r.get("delay_wait_checks"));
    let san_path_err = san_path_err(
        r,
        delay_watch_checks,
        delay_wait_checks,
        max_polling_interval,
    );
    s.polling_interval = polling_interval;
    s.max_polling_interval = max_polling_interval;
    s.checker_timeout = checker_timeout;
    s.fast_io_fail_tmo = fast_io_fail_tmo;
    s.dev_loss_tmo = dev_loss_tmo;
    s.eh_deadline = eh_deadline;
    s.delay_watch_checks = delay_watch_checks;
    s.delay_wait_checks = delay_wait_checks;
    s.san_path_err = san_path_err;
}

/// What happens to maps and paths around the daemon: last path gone,
/// kpartx, udev identity, persistent reservations, and the prio args'
/// exclusive_pref_bit.
fn resolve_lifecycle(r: &mut Resolver<'_>, s: &mut Settings, _p: &PathCtx<'_>) {
    let d = Settings::default();
    let flush_on_last_del = matches!(
        r.get("flush_on_last_del").as_deref(),
        Some("yes" | "always")
    );
    let queue_without_daemon = r.yes("queue_without_daemon", d.queue_without_daemon);
    let deferred_remove = r.yes("deferred_remove", d.deferred_remove);
    let uid_attribute = r.get("uid_attribute").unwrap_or(d.uid_attribute.clone());
    let skip_kpartx = r.yes("skip_kpartx", d.skip_kpartx);
    // Values were checked when the file was read.
    let reservation_key = r
        .get("reservation_key")
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    let all_tg_pt = r.yes("all_tg_pt", d.all_tg_pt);
    let exclusive_pref_bit = s
        .prio_args
        .split_whitespace()
        .any(|w| w == "exclusive_pref_bit");
    let po = r.origins.get("prio_args").cloned();
    if let Some(po) = po {
        r.origins.insert("exclusive_pref_bit".into(), po);
    }
    s.flush_on_last_del = flush_on_last_del;
    s.queue_without_daemon = queue_without_daemon;
    s.deferred_remove = deferred_remove;
    s.uid_attribute = uid_attribute;
    s.skip_kpartx = skip_kpartx;
    s.exclusive_pref_bit = exclusive_pref_bit;
    s.reservation_key = reservation_key;
    s.all_tg_pt = all_tg_pt;
}
