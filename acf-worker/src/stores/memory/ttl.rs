//! Entries that expire like Redis keys: each has a deadline past which it reads as absent, and a sweep frees the
//! expired ones.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// The shortest lifetime of an entry, as Redis's `PEXPIRE` takes whole milliseconds (see `settings::millis`).
const MIN_TTL: Duration = Duration::from_millis(1);

/// Far enough to mean "never" for a TTL too large to add to an instant.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The deadline of an entry written at `now` with `ttl`, as `PEXPIRE key ttl` sets it.
pub(super) fn deadline(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl.max(MIN_TTL))
        .unwrap_or_else(|| now + FAR_FUTURE)
}

#[derive(Debug)]
struct Expiring<V> {
    value: V,
    expires_at: Instant,
}

impl<V> Expiring<V> {
    fn is_live(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

/// A map of expiring entries: an entry past its deadline is absent to every read and write, as a Redis key
/// after expiry, and is freed by the next [`TtlMap::sweep`] or overwrite.
#[derive(Debug)]
pub(super) struct TtlMap<K, V> {
    entries: HashMap<K, Expiring<V>>,
}

impl<K, V> Default for TtlMap<K, V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash, V> TtlMap<K, V> {
    /// The live value of `key`.
    pub(super) fn get<Q>(&self, key: &Q, now: Instant) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries
            .get(key)
            .filter(|entry| entry.is_live(now))
            .map(|entry| &entry.value)
    }

    /// The live value of `key`, to change it without touching its deadline (as `HSET` on a key with a TTL).
    pub(super) fn get_mut<Q>(&mut self, key: &Q, now: Instant) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries
            .get_mut(key)
            .filter(|entry| entry.is_live(now))
            .map(|entry| &mut entry.value)
    }

    /// Whether `key` has a live value.
    pub(super) fn contains_key<Q>(&self, key: &Q, now: Instant) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.get(key, now).is_some()
    }

    /// Stores `value` until `expires_at`, replacing any value (`SET key value PX ttl`).
    pub(super) fn insert(&mut self, key: K, value: V, expires_at: Instant) {
        self.entries.insert(key, Expiring { value, expires_at });
    }

    /// The live value of `key`, or a fresh default in place of an absent or expired one, now expiring at
    /// `expires_at`: a write followed by `PEXPIRE`.
    pub(super) fn refresh(&mut self, key: K, now: Instant, expires_at: Instant) -> &mut V
    where
        V: Default,
    {
        let entry = self.entries.entry(key).or_insert_with(|| Expiring {
            value: V::default(),
            expires_at,
        });
        if !entry.is_live(now) {
            entry.value = V::default();
        }
        entry.expires_at = expires_at;
        &mut entry.value
    }

    /// Moves the deadline of a live `key` to `expires_at` (`PEXPIRE`); returns whether it was live.
    pub(super) fn expire<Q>(&mut self, key: &Q, now: Instant, expires_at: Instant) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self.entries.get_mut(key).filter(|entry| entry.is_live(now)) {
            Some(entry) => {
                entry.expires_at = expires_at;
                true
            }
            None => false,
        }
    }

    /// Removes `key`, returning its live value (`DEL`).
    pub(super) fn remove<Q>(&mut self, key: &Q, now: Instant) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries
            .remove(key)
            .filter(|entry| entry.is_live(now))
            .map(|entry| entry.value)
    }

    /// Keeps the values (expired or not) for which `keep` returns true, letting it change them.
    pub(super) fn retain_values(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        self.entries.retain(|_, entry| keep(&mut entry.value));
    }

    /// Frees every expired entry.
    pub(super) fn sweep(&mut self, now: Instant) {
        self.entries.retain(|_, entry| entry.is_live(now));
    }

    /// How many entries are held, expired ones not yet swept included.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_as_absent_after_its_deadline_and_a_refresh_restarts_it() {
        let start = Instant::now();
        let ttl = Duration::from_secs(10);
        let mut map: TtlMap<&str, Vec<u8>> = TtlMap::default();
        map.refresh("a", start, deadline(start, ttl)).push(1);
        assert_eq!(map.get("a", start + Duration::from_secs(9)), Some(&vec![1]));
        assert_eq!(map.get("a", start + ttl), None);
        // Refreshed before expiry: keeps its value, lives another TTL.
        let later = start + Duration::from_secs(5);
        map.refresh("a", later, deadline(later, ttl)).push(2);
        assert_eq!(
            map.get("a", start + Duration::from_secs(14)),
            Some(&vec![1, 2])
        );
        // Written after expiry: starts afresh, as a Redis key recreated by `RPUSH`.
        let expired = start + Duration::from_secs(20);
        map.refresh("a", expired, deadline(expired, ttl)).push(3);
        assert_eq!(map.get("a", expired), Some(&vec![3]));
        assert!(map.get_mut("a", expired + ttl).is_none());
        assert_eq!(map.len(), 1);
        map.sweep(expired + ttl);
        assert_eq!(map.len(), 0);
    }
}
