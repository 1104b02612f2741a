//! Rendering a map's desired device-mapper `multipath` table parameters
//! from resolved settings and path groups.

use std::str::FromStr;

use crate::dm::{MultipathTable, TableMatch};
use crate::model::{NoPathRetry, Settings};

use super::grouping::PathGroup;

/// The features words for a map: the configured `features` with
/// queue_if_no_path forced on or off by no_path_retry, plus
/// pg_init_retries. Returned without the leading count.
pub fn feature_words(settings: &Settings) -> Vec<String> {
    let mut words: Vec<String> = settings
        .features
        .split_whitespace()
        .skip(1) // the count
        .map(str::to_string)
        .collect();
    // no_path_retry decides queueing, as in multipath-tools.
    words.retain(|w| w != "queue_if_no_path");
    let queue = !matches!(settings.no_path_retry, NoPathRetry::Fail);
    if queue {
        words.insert(0, "queue_if_no_path".to_string());
    }
    if let Some(n) = settings.pg_init_retries {
        if !words.iter().any(|w| w == "pg_init_retries") {
            words.push("pg_init_retries".into());
            words.push(n.to_string());
        }
    }
    words
}

fn counted(words: &[String]) -> String {
    if words.is_empty() {
        "0".to_string()
    } else {
        format!("{} {}", words.len(), words.join(" "))
    }
}

/// The hardware handler for the map. With retain_attached_hw_handler the
/// handler the kernel already attached to the paths wins, as multipathd
/// does, so a reload never fights scsi_dh.
pub fn hwhandler(settings: &Settings, attached: Option<&str>) -> String {
    if settings.retain_attached_hw_handler {
        if let Some(h) = attached {
            if !h.is_empty() && h != "detached" {
                return format!("1 {h}");
            }
        }
    }
    let h = settings.hardware_handler.trim();
    if h.is_empty() {
        "0".into()
    } else {
        h.to_string()
    }
}

/// Full table parameters: `<features> <hwhandler> <nr_pg> <init_pg>
/// {<selector> <nr_paths> 1 {<maj:min> <repeat>}}`.
pub fn render(settings: &Settings, attached_handler: Option<&str>, groups: &[PathGroup]) -> String {
    let mut out = String::new();
    out.push_str(&counted(&feature_words(settings)));
    out.push(' ');
    out.push_str(&hwhandler(settings, attached_handler));
    let init_pg = usize::from(!groups.is_empty());
    out.push_str(&format!(" {} {}", groups.len(), init_pg));
    let selector = normalize_selector(&settings.path_selector);
    for g in groups {
        out.push_str(&format!(" {} {} 1", selector, g.paths.len()));
        for (_, devt, repeat) in &g.paths {
            out.push_str(&format!(" {devt} {repeat}"));
        }
    }
    out
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

/// Compare the desired parameters with those loaded (or read back from
/// the kernel, which rewrites some of them). Unparseable input compares
/// word by word.
pub fn compare(loaded: &str, desired: &str) -> TableMatch {
    match (
        MultipathTable::from_str(loaded),
        MultipathTable::from_str(desired),
    ) {
        (Ok(old), Ok(new)) => new.compare(&old),
        _ if loaded.split_whitespace().eq(desired.split_whitespace()) => TableMatch::Same,
        _ => TableMatch::ReloadNeeded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DevT;

    #[test]
    fn renders_compat_example() {
        let s = Settings {
            no_path_retry: NoPathRetry::Queue,
            hardware_handler: "1 alua".into(),
            ..Settings::default()
        };
        let groups = vec![
            PathGroup {
                prio: 50,
                paths: vec![("sdc".into(), DevT::new(8, 32), 1)],
            },
            PathGroup {
                prio: 10,
                paths: vec![("sdb".into(), DevT::new(8, 16), 1)],
            },
        ];
        assert_eq!(
            render(&s, None, &groups),
            "1 queue_if_no_path 1 alua 2 1 service-time 0 1 1 8:32 1 service-time 0 1 1 8:16 1"
        );
    }

    #[test]
    fn no_path_retry_fail_drops_queueing_feature() {
        let s = Settings {
            features: "1 queue_if_no_path".into(),
            no_path_retry: NoPathRetry::Fail,
            pg_init_retries: Some(50),
            ..Settings::default()
        };
        assert_eq!(counted(&feature_words(&s)), "2 pg_init_retries 50");
    }

    #[test]
    fn kernel_rewrites_are_not_changes() {
        let ours = "0 1 alua 2 1 service-time 0 1 1 8:0 1 service-time 0 1 1 8:64 1";
        let kernel = "0 1 alua 2 2 service-time 0 1 2 8:0 1 1 service-time 0 1 2 8:64 1 1";
        assert_eq!(compare(kernel, ours), TableMatch::Same);
        let swapped = "0 1 alua 2 1 service-time 0 1 1 8:64 1 service-time 0 1 1 8:0 1";
        assert_eq!(compare(kernel, swapped), TableMatch::ReloadNeeded);
        let queue =
            "1 queue_if_no_path 1 alua 2 1 service-time 0 1 1 8:0 1 service-time 0 1 1 8:64 1";
        assert_eq!(compare(kernel, queue), TableMatch::QueueingDiffers);
    }

    #[test]
    fn attached_handler_is_retained() {
        let s = Settings::default();
        assert_eq!(hwhandler(&s, Some("alua")), "1 alua");
        assert_eq!(hwhandler(&s, Some("detached")), "0");
        assert_eq!(render(&s, None, &[]), "0 0 0 0");
    }
}
