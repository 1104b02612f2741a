//! Rendering a map's desired device-mapper `multipath` table parameters
//! from resolved settings and path groups.

use std::str::FromStr;

use crate::dm::{Features, HwHandler, MultipathTable, Selector};
use crate::model::DevT;
use crate::model::{NoPathRetry, Settings};

use super::grouping::PathGroup;

/// The map's features: the configured ones with queue_if_no_path forced on
/// or off by no_path_retry, as in multipath-tools, plus pg_init_retries.
pub fn features(settings: &Settings) -> Features {
    let mut f = settings.features.clone();
    f.queue_if_no_path = !matches!(settings.no_path_retry, NoPathRetry::Fail);
    if f.pg_init_retries.is_none() {
        f.pg_init_retries = settings.pg_init_retries;
    }
    f
}

/// The hardware handler for the map. With retain_attached_hw_handler the
/// handler the kernel already attached to the paths wins, as multipathd
/// does, so a reload never fights scsi_dh.
pub fn hwhandler(settings: &Settings, attached: Option<&str>) -> HwHandler {
    if settings.retain_attached_hw_handler {
        if let Some(h) = attached {
            if !h.is_empty() && h != "detached" {
                return HwHandler::named(h);
            }
        }
    }
    settings.hardware_handler.clone()
}

/// The table: features, handler, then one group per path group in
/// priority order, each with the configured selector.
pub fn render(
    settings: &Settings,
    attached_handler: Option<&str>,
    groups: &[PathGroup],
) -> MultipathTable {
    let selector =
        Selector::from_str(&normalize_selector(&settings.path_selector)).unwrap_or_else(|_| {
            Selector {
                name: "service-time".into(),
                args: vec!["0".into()],
            }
        });
    let groups: Vec<Vec<(DevT, u32)>> = groups
        .iter()
        .map(|g| g.paths.iter().map(|(_, d, r)| (*d, *r)).collect())
        .collect();
    MultipathTable::from_groups(
        features(settings),
        hwhandler(settings, attached_handler),
        &selector,
        &groups,
    )
}

/// `round-robin` alone means `round-robin 0`: the kernel always prints the
/// selector's argument count.
pub fn normalize_selector(sel: &str) -> String {
    let words: Vec<&str> = sel.split_whitespace().collect();
    match words.len() {
        0 => "service-time 0".to_string(),
        1 => format!("{} 0", words[0]),
        _ => words.join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::TableMatch;

    fn g(prio: i32, dev: &str, devt: DevT) -> PathGroup {
        PathGroup {
            prio,
            paths: vec![(dev.into(), devt, 1)],
        }
    }

    #[test]
    fn renders_compat_example() {
        let s = Settings {
            no_path_retry: NoPathRetry::Queue,
            hardware_handler: HwHandler::named("alua"),
            ..Settings::default()
        };
        let groups = vec![
            g(50, "sdc", DevT::new(8, 32)),
            g(10, "sdb", DevT::new(8, 16)),
        ];
        assert_eq!(
            render(&s, None, &groups).to_string(),
            "1 queue_if_no_path 1 alua 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1"
        );
    }

    #[test]
    fn no_path_retry_fail_drops_queueing_feature() {
        let s = Settings {
            features: "1 queue_if_no_path".parse().unwrap_or_default(),
            no_path_retry: NoPathRetry::Fail,
            pg_init_retries: Some(50),
            ..Settings::default()
        };
        assert_eq!(features(&s).to_string(), "2 pg_init_retries 50");
    }

    #[test]
    fn kernel_rewrites_are_not_changes() {
        let t = |s: &str| MultipathTable::from_str(s).unwrap_or_default();
        let ours = t("0 1 alua 2 1 service-time 0 1 1 8:0 1 service-time 0 1 1 8:64 1");
        let kernel = t("0 1 alua 2 2 service-time 0 1 2 8:0 1 1 service-time 0 1 2 8:64 1 1");
        assert_eq!(ours.compare(&kernel), TableMatch::Same);
        let swapped = t("0 1 alua 2 1 service-time 0 1 1 8:64 1 service-time 0 1 1 8:0 1");
        assert_eq!(swapped.compare(&kernel), TableMatch::ReloadNeeded);
        let queue =
            t("1 queue_if_no_path 1 alua 2 1 service-time 0 1 1 8:0 1 service-time 0 1 1 8:64 1");
        assert_eq!(queue.compare(&kernel), TableMatch::QueueingDiffers);
    }

    #[test]
    fn attached_handler_is_retained() {
        let s = Settings::default();
        assert_eq!(hwhandler(&s, Some("alua")).to_string(), "1 alua");
        assert_eq!(hwhandler(&s, Some("detached")).to_string(), "0");
        assert_eq!(render(&s, None, &[]).to_string(), "0 0 0 0");
    }
}
