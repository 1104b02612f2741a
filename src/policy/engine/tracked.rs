//! Paths and maps by key, remembering which entries were handed out
//! mutably since the last snapshot: publishing then rebuilds those alone
//! (what is left per publish is copying the pointers to every entry).

use std::collections::{BTreeMap, HashSet};
use std::ops::Deref;

/// What was handed out mutably since the last `take_touched`.
#[derive(Debug)]
pub(super) enum Touched {
    All,
    Some(HashSet<String>),
}

impl Touched {
    pub(super) fn contains(&self, key: &str) -> bool {
        match self {
            Touched::All => true,
            Touched::Some(s) => s.contains(key),
        }
    }
}

/// A `BTreeMap<String, V>` whose mutable accessors record the key. Reads
/// go through `Deref`; there is no `DerefMut`, so every mutation is seen.
#[derive(Debug, Clone)]
pub(super) struct Tracked<V> {
    items: BTreeMap<String, V>,
    touched: HashSet<String>,
    all: bool,
    keys_changed: bool,
}

impl<V> Default for Tracked<V> {
    fn default() -> Self {
        Tracked {
            items: BTreeMap::new(),
            touched: HashSet::new(),
            // Nothing was published yet: the first snapshot visits all.
            all: true,
            keys_changed: true,
        }
    }
}

impl<V> Deref for Tracked<V> {
    type Target = BTreeMap<String, V>;
    fn deref(&self) -> &Self::Target {
        &self.items
    }
}

impl<V> Tracked<V> {
    fn touch(&mut self, key: &str) {
        if !self.all && !self.touched.contains(key) {
            self.touched.insert(key.to_string());
        }
    }

    pub(super) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        if self.items.contains_key(key) {
            self.touch(key);
        }
        self.items.get_mut(key)
    }

    /// Every entry, all marked touched.
    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.all = true;
        self.items.values_mut()
    }

    /// Every entry, none marked: only for fields no snapshot shows (a
    /// path's check schedule), and for the snapshot pass itself.
    pub(super) fn values_mut_unshown(&mut self) -> impl Iterator<Item = &mut V> {
        self.items.values_mut()
    }

    /// One entry, not marked (the snapshot pass).
    pub(super) fn get_mut_unshown(&mut self, key: &str) -> Option<&mut V> {
        self.items.get_mut(key)
    }

    pub(super) fn insert(&mut self, key: String, value: V) -> Option<V> {
        self.touch(&key);
        self.keys_changed = true;
        self.items.insert(key, value)
    }

    pub(super) fn remove(&mut self, key: &str) -> Option<V> {
        let v = self.items.remove(key)?;
        self.keys_changed = true;
        Some(v)
    }

    /// The entry for `key`, made with `make` if there is none.
    pub(super) fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> V) -> &mut V {
        if !self.items.contains_key(key) {
            self.keys_changed = true;
        }
        self.touch(key);
        self.items.entry(key.to_string()).or_insert_with(make)
    }

    /// What was touched since the last call; starts afresh.
    pub(super) fn take_touched(&mut self) -> Touched {
        let all = std::mem::take(&mut self.all);
        let touched = std::mem::take(&mut self.touched);
        if all {
            Touched::All
        } else {
            Touched::Some(touched)
        }
    }

    /// Whether keys came or went since the last call.
    pub(super) fn take_keys_changed(&mut self) -> bool {
        std::mem::take(&mut self.keys_changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutable_access_is_recorded_reads_are_not() {
        let mut t: Tracked<u32> = Tracked::default();
        t.insert("a".into(), 1);
        t.insert("b".into(), 2);
        assert!(
            matches!(t.take_touched(), Touched::All),
            "first pass sees all"
        );
        assert!(t.take_keys_changed());
        assert_eq!(t.get("a"), Some(&1));
        let Touched::Some(s) = t.take_touched() else {
            panic!("reads touch nothing")
        };
        assert!(s.is_empty());
        *t.get_mut("b").expect("b") += 1;
        assert!(t.get_mut("zz").is_none());
        let touched = t.take_touched();
        assert!(touched.contains("b") && !touched.contains("a") && !touched.contains("zz"));
        assert!(!t.take_keys_changed());
        t.values_mut().for_each(|v| *v += 1);
        assert!(matches!(t.take_touched(), Touched::All));
        t.values_mut_unshown().for_each(|v| *v += 1);
        assert!(matches!(t.take_touched(), Touched::Some(s) if s.is_empty()));
        t.remove("a");
        assert!(t.take_keys_changed());
        *t.get_or_insert_with("c", || 7) += 1;
        assert!(t.take_keys_changed());
        assert!(t.take_touched().contains("c"));
        assert_eq!(t.get("c"), Some(&8));
    }
}
