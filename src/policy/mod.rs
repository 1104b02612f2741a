//! The pure policy core.
//!
//! Events (paths added/changed/removed, checker results, dm status, timer
//! ticks, operator commands) go in; actions (create/reload/remove a map,
//! send a dm message, probe a path, record a WWID) come out. The core owns
//! all state and never does I/O, so a simulator can drive it with a fake
//! clock. The executor in [`crate::daemon`] applies the actions through the
//! kernel traits and feeds the results back as events. Queries read the
//! snapshot the core publishes after every change.

pub mod engine;
pub mod grouping;
pub mod redundancy;
pub mod table;

pub use engine::{Action, Engine, Event, MapChange, MapCommand, ProbeRequest, ProbeResult};

use crate::model::{FilterResult, PathFilter, PathInfo, Settings};

/// Resolves the effective settings for a path. Implemented by the
/// configuration; [`StaticPolicy`] gives fixed answers for tests.
pub trait Resolver: Send + Sync {
    fn resolve(&self, info: &PathInfo) -> Settings;
    fn defaults(&self) -> Settings;
    /// Prefix of user_friendly_names aliases.
    fn alias_prefix(&self) -> String {
        "mpath".to_string()
    }
}

/// Configuration as the core sees it: settings resolution plus blacklist.
pub trait Policy: Resolver + PathFilter + Send + Sync {}
impl<T: Resolver + PathFilter + Send + Sync> Policy for T {}

/// Same settings for every path, no blacklist: for tests and simulators.
#[derive(Debug, Clone, Default)]
pub struct StaticPolicy {
    pub settings: Settings,
    /// Devnode names that are blacklisted.
    pub blacklisted: Vec<String>,
}

impl Resolver for StaticPolicy {
    fn resolve(&self, _info: &PathInfo) -> Settings {
        self.settings.clone()
    }
    fn defaults(&self) -> Settings {
        self.settings.clone()
    }
}

impl PathFilter for StaticPolicy {
    fn filter_path(&self, info: &PathInfo) -> FilterResult {
        self.filter_devnode(&info.dev)
    }
    fn filter_devnode(&self, dev: &str) -> FilterResult {
        if self.blacklisted.iter().any(|b| b == dev) {
            FilterResult::Blacklisted {
                by: format!("devnode \"{dev}\" (test)"),
            }
        } else {
            FilterResult::Allowed
        }
    }
}
