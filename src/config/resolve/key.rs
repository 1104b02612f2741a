//! What settings resolution reads of a path ([`PathKey`]), and the
//! settings already resolved per key ([`SettingsCache`]).
//!
//! A SAN's paths share a handful of keys, while one resolution walks the
//! built-in hardware table's regexes and records an origin per keyword.
//! A cold start resolves every path twice (the blacklist's uid_attribute,
//! then the path's settings), so a cache turns thousands of resolutions
//! into a few. Resolution sees a path only through its key, so two paths
//! with equal keys cannot resolve differently.

use std::collections::HashMap;
use std::sync::Mutex;

use super::Config;
use crate::model::{PathInfo, Settings, Transport};

/// The inputs of one path's resolution, normalised as resolution uses them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct PathKey {
    /// The WWID, only when a `multipaths` entry names it: any other WWID
    /// resolves as no WWID does.
    pub wwid: Option<String>,
    pub transport: Transport,
    /// Vendor, product and revision without trailing blanks.
    pub vendor: String,
    pub product: String,
    pub rev: String,
    /// TPGS bits from INQUIRY (0 when unknown).
    pub tpgs: u8,
    /// The kernel exposes `access_state` (an ALUA device handler).
    pub access_state: bool,
    /// The device handler the kernel attached, if any.
    pub dh_state: Option<String>,
    /// `device/timeout` (explain names it as checker_timeout's source).
    pub timeout_secs: Option<u32>,
}

impl PathKey {
    pub(crate) fn of(cfg: &Config, info: &PathInfo) -> PathKey {
        let wwid = info
            .wwid
            .as_deref()
            .filter(|w| !w.is_empty() && cfg.multipaths.iter().any(|e| e.get("wwid") == Some(*w)))
            .map(str::to_string);
        PathKey {
            wwid,
            transport: info.transport,
            vendor: info.vendor.trim_end().to_string(),
            product: info.product.trim_end().to_string(),
            rev: info.rev.trim_end().to_string(),
            tpgs: info.tpgs,
            access_state: info.access_state.is_some(),
            dh_state: info
                .dh_state
                .as_deref()
                .map(str::trim)
                .filter(|h| !h.is_empty() && *h != "detached")
                .map(str::to_string),
            timeout_secs: info.timeout_secs,
        }
    }
}

/// Keys beyond this are resolved every time rather than kept: a bound on
/// memory for hosts with unusually many kinds of device.
const CACHE_MAX: usize = 1024;

/// Resolved settings per key (`None`: the defaults of no particular path).
/// Lives in the configuration's compiled state, so it never outlives the
/// configuration it was resolved from.
#[derive(Default)]
pub(crate) struct SettingsCache(Mutex<HashMap<Option<PathKey>, Settings>>);

impl SettingsCache {
    /// The cached settings for `key`, else `resolve`'s, kept for next time.
    pub(crate) fn get_or_resolve(
        &self,
        key: Option<PathKey>,
        resolve: impl FnOnce(Option<&PathKey>) -> Settings,
    ) -> Settings {
        if let Ok(cache) = self.0.lock() {
            if let Some(s) = cache.get(&key) {
                return s.clone();
            }
        }
        // Resolved outside the lock; a poisoned lock only loses the cache.
        let s = resolve(key.as_ref());
        if let Ok(mut cache) = self.0.lock() {
            if cache.len() < CACHE_MAX {
                cache.insert(key, s.clone());
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::NoPathRetry;

    fn config(text: &str) -> Config {
        Config::parse_str(text, "test.conf").unwrap().0
    }

    fn path(dev: &str, wwid: &str, vendor: &str, tpgs: u8) -> PathInfo {
        PathInfo {
            dev: dev.into(),
            wwid: Some(wwid.into()),
            vendor: vendor.into(),
            product: "VIRTUAL-DISK    ".into(),
            tpgs,
            access_state: (tpgs != 0).then(|| "active/optimized".into()),
            timeout_secs: Some(30),
            ..Default::default()
        }
    }

    const CONF: &str = "defaults {\n\tpolling_interval 7\n}\n\
        devices {\n\tdevice {\n\t\tvendor \"ACME\"\n\t\tproduct \".*\"\n\t\tno_path_retry 3\n\t}\n}\n\
        multipaths {\n\tmultipath {\n\t\twwid 36001\n\t\tno_path_retry 9\n\t}\n}\n";

    #[test]
    fn cached_settings_equal_a_fresh_resolution_for_every_kind_of_path() {
        let cfg = config(CONF);
        let paths = [
            path("sda", "36001", "ACME", 1),
            path("sdb", "36002", "ACME", 1),
            path("sdc", "36002", "ACME", 0),
            path("sdd", "36003", "Linux", 3),
            path("sde", "36001", "Linux", 0),
        ];
        // Twice: the second round is answered from the cache.
        for _ in 0..2 {
            for p in &paths {
                assert_eq!(
                    cfg.resolve(p),
                    cfg.resolve_explained(p).settings,
                    "{}",
                    p.dev
                );
            }
        }
        assert_eq!(
            cfg.resolve(&paths[0]).no_path_retry,
            NoPathRetry::Retries(9)
        );
        assert_eq!(
            cfg.resolve(&paths[1]).no_path_retry,
            NoPathRetry::Retries(3)
        );
        assert_eq!(cfg.defaults_settings().polling_interval, 7);
    }

    #[test]
    fn a_wwid_counts_in_the_key_only_when_a_multipaths_entry_names_it() {
        let cfg = config(CONF);
        let named = PathKey::of(&cfg, &path("sda", "36001", "ACME", 1));
        let other = PathKey::of(&cfg, &path("sdb", "36002", "ACME", 1));
        let third = PathKey::of(&cfg, &path("sdc", "36003", "ACME", 1));
        assert_eq!(named.wwid.as_deref(), Some("36001"));
        assert_eq!(other, third, "LUNs of one array share a key");
        assert_ne!(named, other);
    }

    #[test]
    fn the_key_holds_what_resolution_normalises() {
        let cfg = config(CONF);
        let mut p = path("sda", "36002", "ACME    ", 1);
        p.dh_state = Some("detached".into());
        let k = PathKey::of(&cfg, &p);
        assert_eq!(
            (k.vendor.as_str(), k.product.as_str()),
            ("ACME", "VIRTUAL-DISK")
        );
        assert_eq!(k.dh_state, None);
        p.dh_state = Some(" alua\n".into());
        assert_eq!(PathKey::of(&cfg, &p).dh_state.as_deref(), Some("alua"));
    }
}
