//! The keywords multipath.conf(5) documents (multipath-tools 0.9.x up to
//! 0.14), per section, in the order multipath-tools prints them, with the
//! kind of value each takes and what mpathd does with it.

/// What a value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text, printed quoted.
    Str,
    /// POSIX extended regular expression, printed quoted.
    Regex,
    /// Integer in range, printed bare.
    Int { min: i64, max: i64 },
    /// `yes` or `no` (`1`/`0` accepted and normalized), printed quoted.
    YesNo,
    /// One of these words, printed quoted.
    Words(&'static [&'static str]),
    /// An integer in range (printed bare) or one of these words (quoted).
    IntOrWords {
        min: i64,
        max: i64,
        words: &'static [&'static str],
    },
}

/// What mpathd does with a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Has an effect (resolved settings, blacklist or daemon defaults).
    Implemented,
    /// Not implemented by mpathd: set to anything but multipath-tools'
    /// default, it is a configuration error (never silently ignored).
    Unsupported,
    /// Accepted with a warning and ignored; the text says what to use.
    Deprecated(&'static str),
}

/// Sections that hold attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionKind {
    Defaults,
    Device,
    Overrides,
    Protocol,
    Multipath,
    BlacklistDevice,
}

impl SectionKind {
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Defaults => "defaults",
            SectionKind::Device => "device",
            SectionKind::Overrides => "overrides",
            SectionKind::Protocol => "protocol",
            SectionKind::Multipath => "multipath",
            SectionKind::BlacklistDevice => "device",
        }
    }

    /// Keywords valid in this section, in multipath-tools' print order.
    pub fn keywords(self) -> &'static [&'static str] {
        match self {
            SectionKind::Defaults => DEFAULTS,
            SectionKind::Device => DEVICE,
            SectionKind::Overrides => OVERRIDES,
            SectionKind::Protocol => PROTOCOL,
            SectionKind::Multipath => MULTIPATH,
            SectionKind::BlacklistDevice => &["vendor", "product"],
        }
    }

    pub fn accepts(self, kw: &str) -> bool {
        self.keywords().contains(&kw)
    }
}

pub const DEFAULTS: &[&str] = &[
    "verbosity",
    "polling_interval",
    "max_polling_interval",
    "reassign_maps",
    "multipath_dir",
    "path_selector",
    "path_grouping_policy",
    "uid_attrs",
    "uid_attribute",
    "getuid_callout",
    "prio",
    "prio_args",
    "features",
    "path_checker",
    "alias_prefix",
    "failback",
    "rr_min_io",
    "rr_min_io_rq",
    "max_fds",
    "rr_weight",
    "no_path_retry",
    "queue_without_daemon",
    "checker_timeout",
    "allow_usb_devices",
    "pg_timeout",
    "flush_on_last_del",
    "user_friendly_names",
    "mode",
    "uid",
    "gid",
    "fast_io_fail_tmo",
    "dev_loss_tmo",
    "eh_deadline",
    "max_retries",
    "bindings_file",
    "wwids_file",
    "prkeys_file",
    "log_checker_err",
    "reservation_key",
    "all_tg_pt",
    "retain_attached_hw_handler",
    "detect_prio",
    "detect_checker",
    "detect_pgpolicy",
    "detect_pgpolicy_use_tpg",
    "force_sync",
    "strict_timing",
    "deferred_remove",
    "partition_delimiter",
    "config_dir",
    "delay_watch_checks",
    "delay_wait_checks",
    "san_path_err_threshold",
    "san_path_err_forget_rate",
    "san_path_err_recovery_time",
    "marginal_path_err_sample_time",
    "marginal_path_err_rate_threshold",
    "marginal_path_err_recheck_gap_time",
    "marginal_path_double_failed_time",
    "find_multipaths",
    "uxsock_timeout",
    "retrigger_tries",
    "retrigger_delay",
    "missing_uev_wait_timeout",
    "skip_kpartx",
    "purge_disconnected",
    "disable_changed_wwids",
    "remove_retries",
    "max_sectors_kb",
    "ghost_delay",
    "auto_resize",
    "find_multipaths_timeout",
    "enable_foreign",
    "marginal_pathgroups",
    "recheck_wwid",
];

pub const DEVICE: &[&str] = &[
    "vendor",
    "product",
    "revision",
    "product_blacklist",
    "path_grouping_policy",
    "uid_attribute",
    "getuid_callout",
    "path_selector",
    "path_checker",
    "alias_prefix",
    "features",
    "hardware_handler",
    "prio",
    "prio_args",
    "failback",
    "rr_weight",
    "no_path_retry",
    "rr_min_io",
    "rr_min_io_rq",
    "pg_timeout",
    "flush_on_last_del",
    "fast_io_fail_tmo",
    "dev_loss_tmo",
    "eh_deadline",
    "user_friendly_names",
    "retain_attached_hw_handler",
    "detect_prio",
    "detect_checker",
    "detect_pgpolicy",
    "detect_pgpolicy_use_tpg",
    "deferred_remove",
    "delay_watch_checks",
    "delay_wait_checks",
    "san_path_err_threshold",
    "san_path_err_forget_rate",
    "san_path_err_recovery_time",
    "marginal_path_err_sample_time",
    "marginal_path_err_rate_threshold",
    "marginal_path_err_recheck_gap_time",
    "marginal_path_double_failed_time",
    "skip_kpartx",
    "purge_disconnected",
    "max_sectors_kb",
    "ghost_delay",
    "all_tg_pt",
    "vpd_vendor",
    "recheck_wwid",
];

pub const OVERRIDES: &[&str] = &[
    "path_grouping_policy",
    "uid_attribute",
    "getuid_callout",
    "path_selector",
    "path_checker",
    "alias_prefix",
    "features",
    "prio",
    "prio_args",
    "failback",
    "rr_weight",
    "no_path_retry",
    "rr_min_io",
    "rr_min_io_rq",
    "flush_on_last_del",
    "fast_io_fail_tmo",
    "dev_loss_tmo",
    "eh_deadline",
    "user_friendly_names",
    "retain_attached_hw_handler",
    "detect_prio",
    "detect_checker",
    "detect_pgpolicy",
    "detect_pgpolicy_use_tpg",
    "deferred_remove",
    "delay_watch_checks",
    "delay_wait_checks",
    "san_path_err_threshold",
    "san_path_err_forget_rate",
    "san_path_err_recovery_time",
    "marginal_path_err_sample_time",
    "marginal_path_err_rate_threshold",
    "marginal_path_err_recheck_gap_time",
    "marginal_path_double_failed_time",
    "skip_kpartx",
    "purge_disconnected",
    "max_sectors_kb",
    "ghost_delay",
    "all_tg_pt",
    "recheck_wwid",
];

pub const PROTOCOL: &[&str] = &["type", "fast_io_fail_tmo", "dev_loss_tmo", "eh_deadline"];

pub const MULTIPATH: &[&str] = &[
    "wwid",
    "alias",
    "path_grouping_policy",
    "path_selector",
    "prio",
    "prio_args",
    "failback",
    "rr_weight",
    "no_path_retry",
    "rr_min_io",
    "rr_min_io_rq",
    "pg_timeout",
    "flush_on_last_del",
    "features",
    "mode",
    "uid",
    "gid",
    "reservation_key",
    "user_friendly_names",
    "deferred_remove",
    "delay_watch_checks",
    "delay_wait_checks",
    "san_path_err_threshold",
    "san_path_err_forget_rate",
    "san_path_err_recovery_time",
    "marginal_path_err_sample_time",
    "marginal_path_err_rate_threshold",
    "marginal_path_err_recheck_gap_time",
    "marginal_path_double_failed_time",
    "skip_kpartx",
    "purge_disconnected",
    "max_sectors_kb",
    "ghost_delay",
];

/// Protocol names multipath-tools knows (blacklist `protocol`, overrides
/// `protocol { type ... }`).
pub const PROTOCOLS: &[&str] = &[
    "scsi:fcp",
    "scsi:spi",
    "scsi:ssa",
    "scsi:sbp",
    "scsi:srp",
    "scsi:iscsi",
    "scsi:sas",
    "scsi:adt",
    "scsi:ata",
    "scsi:usb",
    "scsi:unspec",
    "nvme:pcie",
    "nvme:rdma",
    "nvme:fc",
    "nvme:tcp",
    "nvme:loop",
    "nvme:apple-nvme",
    "nvme:unspec",
    "nvme",
    "ccw",
    "cciss",
    "undef",
];

/// Section names, for structural checks and suggestions.
pub const ROOT_SECTIONS: &[&str] = &[
    "defaults",
    "blacklist",
    "blacklist_exceptions",
    "devices",
    "overrides",
    "multipaths",
];

/// Checkers and prioritizers multipath-tools ships, for lints.
pub const CHECKERS: &[&str] = &[
    "tur",
    "directio",
    "readsector0",
    "emc_clariion",
    "hp_sw",
    "rdac",
    "cciss_tur",
    "none",
];
pub const PRIOS: &[&str] = &[
    "const",
    "sysfs",
    "emc",
    "alua",
    "ontap",
    "rdac",
    "hp_sw",
    "hds",
    "random",
    "weightedpath",
    "path_latency",
    "ana",
    "datacore",
    "iet",
    "none",
];
pub const SELECTORS: &[&str] = &[
    "round-robin",
    "queue-length",
    "service-time",
    "historical-service-time",
    "io-affinity",
];

const NO: &[&str] = &["no"];
const BIG: i64 = i32::MAX as i64;

pub fn kind(kw: &str) -> Kind {
    use Kind::*;
    match kw {
        "verbosity" => Int { min: 0, max: 6 },
        "polling_interval"
        | "max_polling_interval"
        | "checker_timeout"
        | "rr_min_io"
        | "rr_min_io_rq"
        | "max_sectors_kb" => Int { min: 1, max: BIG },
        "uxsock_timeout"
        | "retrigger_tries"
        | "retrigger_delay"
        | "missing_uev_wait_timeout"
        | "remove_retries" => Int { min: 0, max: BIG },
        "find_multipaths_timeout" => Int {
            min: -BIG,
            max: BIG,
        },
        "reassign_maps"
        | "queue_without_daemon"
        | "allow_usb_devices"
        | "user_friendly_names"
        | "all_tg_pt"
        | "retain_attached_hw_handler"
        | "detect_prio"
        | "detect_checker"
        | "detect_pgpolicy"
        | "detect_pgpolicy_use_tpg"
        | "force_sync"
        | "strict_timing"
        | "deferred_remove"
        | "purge_disconnected"
        | "recheck_wwid" => YesNo,
        "path_grouping_policy" => Words(&[
            "failover",
            "multibus",
            "group_by_serial",
            "group_by_prio",
            "group_by_node_name",
            "group_by_tpg",
        ]),
        "rr_weight" => Words(&["uniform", "priorities"]),
        "log_checker_err" => Words(&["once", "always"]),
        "find_multipaths" => Words(&["yes", "no", "strict", "greedy", "smart", "on", "off"]),
        "flush_on_last_del" => Words(&["yes", "no", "always", "unused", "never"]),
        "marginal_pathgroups" => Words(&["on", "off", "fpin", "yes", "no"]),
        "auto_resize" => Words(&["never", "grow_only", "grow_shrink"]),
        "vpd_vendor" => Words(&["hp3par"]),
        "type" => Words(PROTOCOLS),
        "failback" => IntOrWords {
            min: 1,
            max: BIG,
            words: &["manual", "immediate", "followover"],
        },
        "no_path_retry" => IntOrWords {
            min: 0,
            max: BIG,
            words: &["fail", "queue"],
        },
        "max_fds" => IntOrWords {
            min: 1,
            max: BIG,
            words: &["max"],
        },
        "fast_io_fail_tmo" | "eh_deadline" => IntOrWords {
            min: 0,
            max: BIG,
            words: &["off"],
        },
        "max_retries" => IntOrWords {
            min: 0,
            max: 5,
            words: &["off"],
        },
        "dev_loss_tmo" => IntOrWords {
            min: 0,
            max: u32::MAX as i64,
            words: &["infinity"],
        },
        "ghost_delay" => IntOrWords {
            min: 0,
            max: BIG,
            words: NO,
        },
        "delay_watch_checks"
        | "san_path_err_threshold"
        | "san_path_err_forget_rate"
        | "san_path_err_recovery_time"
        | "marginal_path_err_sample_time"
        | "marginal_path_err_rate_threshold"
        | "marginal_path_err_recheck_gap_time"
        | "marginal_path_double_failed_time" => IntOrWords {
            min: 1,
            max: BIG,
            words: NO,
        },
        "vendor" | "product" | "revision" | "product_blacklist" => Regex,
        _ => Str,
    }
}

pub fn support(kw: &str) -> Support {
    use Support::*;
    match kw {
        "path_grouping_policy"
        | "path_selector"
        | "path_checker"
        | "prio"
        | "prio_args"
        | "failback"
        | "no_path_retry"
        | "features"
        | "hardware_handler"
        | "rr_weight"
        | "rr_min_io"
        | "rr_min_io_rq"
        | "retain_attached_hw_handler"
        | "alias"
        | "wwid"
        | "user_friendly_names"
        | "find_multipaths"
        | "find_multipaths_timeout"
        | "polling_interval"
        | "max_polling_interval"
        | "checker_timeout"
        | "flush_on_last_del"
        | "queue_without_daemon"
        | "uid_attribute"
        | "detect_prio"
        | "detect_checker"
        | "detect_pgpolicy"
        | "detect_pgpolicy_use_tpg"
        | "delay_wait_checks"
        | "delay_watch_checks"
        | "san_path_err_threshold"
        | "san_path_err_forget_rate"
        | "san_path_err_recovery_time"
        | "skip_kpartx"
        | "vendor"
        | "product"
        | "revision"
        | "product_blacklist"
        | "type"
        | "verbosity"
        | "alias_prefix"
        | "uxsock_timeout"
        | "allow_usb_devices"
        | "fast_io_fail_tmo"
        | "dev_loss_tmo"
        | "eh_deadline"
        | "max_fds"
        | "reservation_key"
        | "all_tg_pt"
        | "deferred_remove" => Implemented,
        "getuid_callout" => Deprecated(
            "no callout is run; the WWID comes from the udev property named by \
             uid_attribute (ID_SERIAL for SCSI) — delete this line, or set \
             uid_attribute if the array needs another property",
        ),
        "multipath_dir" => Deprecated("checkers and prioritizers are built in; delete this line"),
        "pg_timeout" => Deprecated(
            "the kernel dropped path group timeouts; delete this line \
             (no_path_retry controls queueing)",
        ),
        "config_dir" => Deprecated(
            "drop-ins are always read from /etc/multipath/conf.d/*.conf; delete this line",
        ),
        "bindings_file" => {
            Deprecated("the bindings file is always /etc/multipath/bindings; delete this line")
        }
        "wwids_file" => {
            Deprecated("the WWIDs file is always /etc/multipath/wwids; delete this line")
        }
        "prkeys_file" => {
            Deprecated("the prkeys file is always /etc/multipath/prkeys; delete this line")
        }
        "disable_changed_wwids" => Deprecated(
            "paths whose WWID changes are always removed from their map; delete this line",
        ),
        _ => Unsupported,
    }
}

/// The keywords mpathd refuses (see [`Support::Unsupported`]), sorted, for
/// mpathd.conf(5).
pub fn unsupported_keywords() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = all_keywords()
        .filter(|k| support(k) == Support::Unsupported)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Every keyword of every section, for suggestions.
pub fn all_keywords() -> impl Iterator<Item = &'static str> {
    DEFAULTS
        .iter()
        .chain(DEVICE)
        .chain(OVERRIDES)
        .chain(PROTOCOL)
        .chain(MULTIPATH)
        .chain(ROOT_SECTIONS)
        .chain(["devnode", "property", "protocol", "device", "multipath"].iter())
        .copied()
}

/// Why a value is refused for its keyword; the text is what the
/// configuration diagnostics show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// `reservation_key` parsed, but as no key (0).
    #[error("reservation_key \"{0}\" is no key: give a key (0x...), file, or delete this line")]
    NoReservationKey(String),
    #[error("{0}, or the word file")]
    BadReservationKey(#[source] crate::pr::PrError),
    #[error("{kw} takes yes or no, not \"{raw}\"")]
    NotYesNo { kw: String, raw: String },
    /// Not one of the keyword's words (nor, with `numbers`, a number).
    #[error("bad value \"{raw}\" for {kw}: expected {}", expected(.words, *.numbers, .raw))]
    NotAWord {
        kw: String,
        raw: String,
        words: &'static [&'static str],
        /// The range when a number is accepted too.
        numbers: Option<(i64, i64)>,
    },
    #[error("bad number \"{raw}\" for {kw}")]
    NotANumber { kw: String, raw: String },
}

/// What a word-valued keyword accepts, with a suggestion for `raw`.
fn expected(words: &[&str], numbers: Option<(i64, i64)>, raw: &str) -> String {
    let mut msg = String::new();
    if let Some((min, max)) = numbers {
        if max >= BIG {
            msg.push_str(&format!("a number >= {min} or "));
        } else {
            msg.push_str(&format!("a number {min}..{max} or "));
        }
    }
    msg.push_str(&words.join(", "));
    if let Some(s) = super::diag::suggest(raw, words.iter().copied()) {
        msg.push_str(&format!(" (did you mean \"{s}\"?)"));
    }
    msg
}

/// Normalize and validate a value for `kw`. Returns the stored text;
/// `Ok((text, Some(warning)))` when the value was adjusted (e.g. capped)
/// the way multipath-tools adjusts it.
pub fn check_value(kw: &str, raw: &str) -> Result<(String, Option<String>), ValueError> {
    if kw == "reservation_key" {
        return match raw.parse::<crate::pr::ReservationKey>() {
            Ok(crate::pr::ReservationKey::None) => {
                Err(ValueError::NoReservationKey(raw.to_string()))
            }
            Ok(_) => Ok((raw.to_string(), None)),
            Err(e) => Err(ValueError::BadReservationKey(e)),
        };
    }
    match kind(kw) {
        Kind::Str | Kind::Regex => Ok((raw.to_string(), None)),
        Kind::YesNo => match raw {
            "yes" | "1" => Ok(("yes".into(), None)),
            "no" | "0" => Ok(("no".into(), None)),
            _ => Err(ValueError::NotYesNo {
                kw: kw.to_string(),
                raw: raw.to_string(),
            }),
        },
        Kind::Words(words) => {
            if words.contains(&raw) {
                Ok((raw.to_string(), None))
            } else {
                Err(not_a_word(kw, raw, words, None))
            }
        }
        Kind::Int { min, max } => check_int(kw, raw, min, max, None),
        Kind::IntOrWords { min, max, words } => {
            if words.contains(&raw) {
                Ok((raw.to_string(), None))
            } else {
                check_int(kw, raw, min, max, Some(words))
            }
        }
    }
}

fn not_a_word(
    kw: &str,
    raw: &str,
    words: &'static [&'static str],
    numbers: Option<(i64, i64)>,
) -> ValueError {
    ValueError::NotAWord {
        kw: kw.to_string(),
        raw: raw.to_string(),
        words,
        numbers,
    }
}

fn check_int(
    kw: &str,
    raw: &str,
    min: i64,
    max: i64,
    words: Option<&'static [&'static str]>,
) -> Result<(String, Option<String>), ValueError> {
    let t = raw.trim();
    let n: i64 = match t.parse() {
        Ok(n) => n,
        Err(_) => {
            return Err(match words {
                Some(w) => not_a_word(kw, raw, w, Some((min, max))),
                None => ValueError::NotANumber {
                    kw: kw.to_string(),
                    raw: raw.to_string(),
                },
            })
        }
    };
    if n < min || n > max {
        let capped = n.clamp(min, max);
        return Ok((
            capped.to_string(),
            Some(format!(
                "value {n} for {kw} is too {}, using {capped} (as multipath-tools does)",
                if n < min { "small" } else { "large" }
            )),
        ));
    }
    Ok((n.to_string(), None))
}

/// Whether `kw`'s value prints bare (a number) or quoted.
pub fn prints_bare(kw: &str, value: &str) -> bool {
    match kind(kw) {
        Kind::Int { .. } => true,
        Kind::IntOrWords { .. } => value.parse::<i64>().is_ok(),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn refusals_by_kind() {
        let e = |kw: &str, raw: &str| check_value(kw, raw).unwrap_err();
        assert!(matches!(
            e("reservation_key", "0x0"),
            ValueError::NoReservationKey(_)
        ));
        assert!(matches!(
            e("reservation_key", "0xzz"),
            ValueError::BadReservationKey(crate::pr::PrError::BadKey(_))
        ));
        assert_eq!(
            e("user_friendly_names", "maybe").to_string(),
            "user_friendly_names takes yes or no, not \"maybe\""
        );
        assert_eq!(
            e("rr_weight", "uniformm").to_string(),
            "bad value \"uniformm\" for rr_weight: expected uniform, priorities \
             (did you mean \"uniform\"?)"
        );
        let failback = e("failback", "later");
        assert!(
            matches!(
                failback,
                ValueError::NotAWord {
                    numbers: Some((1, BIG)),
                    ..
                }
            ),
            "{failback:?}"
        );
        assert!(failback
            .to_string()
            .starts_with("bad value \"later\" for failback: expected a number >= 1 or manual"));
        assert_eq!(
            e("polling_interval", "5s"),
            ValueError::NotANumber {
                kw: "polling_interval".into(),
                raw: "5s".into()
            }
        );
        assert_eq!(
            e("polling_interval", "5s").to_string(),
            "bad number \"5s\" for polling_interval"
        );
    }
}
