//! Settings behind an atomically swapped snapshot, and what a new snapshot changed: readers
//! never lock, and a reload tells which changes need a restart.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::properties::{Properties, flatten};
use super::settings::Settings;
use super::source::LoadedSource;
use super::unknown::UnknownSetting;

/// Settings together with what they were built from, so `/info` can name the source and a bus
/// environment change can be applied without loading again.
#[derive(Debug, Clone)]
pub struct Snapshot<S> {
    /// The typed, validated settings.
    pub settings: S,
    /// The config source's properties and description.
    pub source: LoadedSource,
    /// Values set by bus environment changes; they survive refreshes, as in Spring.
    pub overrides: Properties,
    /// Keys the sources set that no setting reads, each with the source that sets it.
    pub unknown: Vec<UnknownSetting>,
}

impl<S> Snapshot<S> {
    /// The unknown settings this snapshot has and `previous` had not: what a reload warns
    /// about, so that a key left misspelt is warned about once, not at every refresh.
    pub fn unknown_since<'a>(
        &'a self,
        previous: &'a Snapshot<S>,
    ) -> impl Iterator<Item = &'a UnknownSetting> {
        self.unknown
            .iter()
            .filter(|unknown| !previous.unknown.contains(unknown))
    }
}

/// The current snapshot of a service's settings, replaced whole on reload.
#[derive(Debug)]
pub struct Refreshable<S> {
    current: ArcSwap<Snapshot<S>>,
}

impl<S: Settings> Refreshable<S> {
    /// Starts from the snapshot loaded at startup.
    pub fn new(first: Snapshot<S>) -> Self {
        Self {
            current: ArcSwap::from_pointee(first),
        }
    }

    /// The current snapshot; hold it for the length of one request or message.
    pub fn current(&self) -> Arc<Snapshot<S>> {
        self.current.load_full()
    }

    /// Makes `next` current and reports what changed.
    pub fn replace(&self, next: Snapshot<S>) -> Changes {
        let next = Arc::new(next);
        let previous = self.current.swap(Arc::clone(&next));
        changes(&previous.settings, &next.settings)
    }
}

/// The flattened keys whose value differs between two settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Changed keys that took effect at once.
    pub applied: Vec<String>,
    /// Changed keys that take effect only after a restart ([`Settings::RESTART_KEYS`]).
    pub needs_restart: Vec<String>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty() && self.needs_restart.is_empty()
    }
}

/// Compares two settings key by key. Settings that cannot be serialized compare as empty.
pub fn changes<S: Settings>(old: &S, new: &S) -> Changes {
    let flat = |settings: &S| {
        serde_json::to_value(settings)
            .map(|tree| flatten(&tree))
            .unwrap_or_default()
    };
    let (old, new) = (flat(old), flat(new));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let (needs_restart, applied) = keys
        .into_iter()
        .filter(|key| old.get(*key) != new.get(*key))
        .cloned()
        .partition(|key| S::needs_restart(key));
    Changes {
        applied,
        needs_restart,
    }
}

/// Whether `key` is `prefix` or one of its nested keys or list items.
pub(crate) fn is_under(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::config::SourceInfo;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Demo {
        server_port: u16,
        server_name: String,
        vip_account_ids: Vec<String>,
        amqp: Amqp,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Amqp {
        url: String,
        prefetch: u16,
    }

    impl Settings for Demo {
        const RESTART_KEYS: &'static [&'static str] = &["server_port", "amqp.url"];
    }

    fn demo() -> Demo {
        Demo {
            server_port: 6767,
            server_name: "a".into(),
            vip_account_ids: vec!["1".into()],
            amqp: Amqp {
                url: "amqp://x".into(),
                prefetch: 10,
            },
        }
    }

    fn snapshot(settings: Demo) -> Snapshot<Demo> {
        Snapshot {
            settings,
            source: LoadedSource {
                properties: Properties::default(),
                info: SourceInfo {
                    description: "test".into(),
                    version: None,
                    property_sources: vec![],
                },
                keys: vec![],
            },
            overrides: Properties::default(),
            unknown: vec![],
        }
    }

    #[test]
    fn sorts_changed_keys_into_applied_and_needing_a_restart() {
        let mut new = demo();
        new.server_port = 8080;
        new.server_name = "b".into();
        new.vip_account_ids.push("2".into());
        new.amqp.url = "amqp://y".into();
        new.amqp.prefetch = 20;
        let changes = changes(&demo(), &new);
        assert_eq!(
            changes.applied,
            ["amqp.prefetch", "server_name", "vip_account_ids[1]"]
        );
        assert_eq!(changes.needs_restart, ["amqp.url", "server_port"]);
    }

    #[test]
    fn replace_swaps_the_snapshot_and_reports_the_difference() {
        let settings = Refreshable::new(snapshot(demo()));
        let held = settings.current();
        let mut new = demo();
        new.server_name = "b".into();
        let changes = settings.replace(snapshot(new));
        assert_eq!(changes.applied, ["server_name"]);
        assert!(changes.needs_restart.is_empty());
        assert_eq!(held.settings.server_name, "a");
        assert_eq!(settings.current().settings.server_name, "b");
        assert!(
            settings
                .replace(snapshot(settings.current().settings.clone()))
                .is_empty()
        );
    }

    #[test]
    fn a_prefix_covers_nested_keys_only() {
        assert!(is_under("amqp.url", "amqp"));
        assert!(is_under("ids[0]", "ids"));
        assert!(is_under("amqp", "amqp"));
        assert!(!is_under("amqp_server_url", "amqp"));
    }
}
