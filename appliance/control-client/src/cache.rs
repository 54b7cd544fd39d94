//! The getters' cache: answers by what was asked, each with its version and when it came.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::types::Announcement;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Agent(String),
    Prompt(String),
    Policy(String),
    Roles(String),
    Config(String),
}

impl Key {
    /// The entries an announced change makes stale.
    fn stale_after(announcement: &Announcement) -> Vec<Key> {
        let id = announcement.id.clone();
        match announcement.kind.as_str() {
            "prompt" => vec![Key::Prompt(id)],
            "policy" => vec![Key::Policy(id)],
            // The policy answer carries the agent's enabled flag.
            "agent" => vec![
                Key::Policy(id.clone()),
                Key::Prompt(id.clone()),
                Key::Agent(id),
            ],
            "user_roles" => vec![Key::Roles(id)],
            "config" => vec![Key::Config(id)],
            _ => vec![],
        }
    }
}

struct Entry {
    value: Value,
    version: i64,
    fetched: Instant,
}

#[derive(Default)]
pub(crate) struct Cache {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Cache {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        // A panic elsewhere while holding the lock leaves the map whole: keep using it.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value and version, if fetched less than `ttl` ago.
    pub(crate) fn fresh(&self, key: &Key, ttl: Duration) -> Option<(Value, i64)> {
        self.lock()
            .get(key)
            .filter(|e| e.fetched.elapsed() < ttl)
            .map(|e| (e.value.clone(), e.version))
    }

    /// The last value known, however old.
    pub(crate) fn last(&self, key: &Key) -> Option<(Value, i64)> {
        self.lock().get(key).map(|e| (e.value.clone(), e.version))
    }

    pub(crate) fn put(&self, key: Key, value: Value, version: i64) {
        let entry = Entry {
            value,
            version,
            fetched: Instant::now(),
        };
        self.lock().insert(key, entry);
    }

    pub(crate) fn remove(&self, key: &Key) {
        self.lock().remove(key);
    }

    pub(crate) fn invalidate(&self, announcement: &Announcement) {
        let keys = Key::stale_after(announcement);
        if keys.is_empty() {
            return;
        }
        let mut entries = self.lock();
        for key in keys {
            entries.remove(&key);
        }
        tracing::debug!(kind = %announcement.kind, "control-plane cache entry dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announced(kind: &str, id: &str) -> Announcement {
        Announcement {
            kind: kind.into(),
            id: id.into(),
            version: 1,
        }
    }

    #[test]
    fn an_announcement_drops_exactly_what_it_names() {
        let cache = Cache::default();
        let keys = [
            Key::Agent("a".into()),
            Key::Prompt("a".into()),
            Key::Policy("a".into()),
            Key::Prompt("b".into()),
            Key::Config("routing.main".into()),
            Key::Roles("alice".into()),
        ];
        let fill = || {
            for key in &keys {
                cache.put(key.clone(), Value::Null, 1);
            }
        };
        let kept = || {
            keys.iter()
                .map(|k| cache.last(k).is_some())
                .collect::<Vec<_>>()
        };
        for (kind, id, expected) in [
            ("agent", "a", [false, false, false, true, true, true]),
            ("prompt", "b", [true, true, true, false, true, true]),
            (
                "config",
                "routing.main",
                [true, true, true, true, false, true],
            ),
            ("user_roles", "alice", [true, true, true, true, true, false]),
            ("quota", "user:alice", [true; 6]),
        ] {
            fill();
            cache.invalidate(&announced(kind, id));
            assert_eq!(kept(), expected, "{kind} {id}");
        }
    }

    #[test]
    fn fresh_honours_the_ttl_and_last_does_not() {
        let cache = Cache::default();
        let key = Key::Agent("a".into());
        cache.put(key.clone(), Value::Bool(true), 7);
        assert_eq!(
            cache.fresh(&key, Duration::from_secs(60)),
            Some((Value::Bool(true), 7))
        );
        assert_eq!(cache.fresh(&key, Duration::ZERO), None);
        assert_eq!(cache.last(&key), Some((Value::Bool(true), 7)));
    }
}
