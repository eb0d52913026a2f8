//! The per-isolate cache of recently verified passwords, which spares a repeated login the
//! 100,000 PBKDF2 iterations. It holds neither passwords nor plain hashes of them: each
//! entry is an HMAC-SHA256, under a random key drawn once per isolate, of the user name,
//! the stored hash and the password, so a dump of the isolate's memory gives nothing to
//! guess against offline, and a changed stored hash misses at once.

use super::password::hmac_sha256;
use std::collections::HashMap;

/// How long a verified password is remembered.
pub const VERIFIED_TTL_MS: u64 = 60_000;
/// Most entries kept; the ones closest to expiry go first.
pub const MAX_ENTRIES: usize = 1024;

/// Keyed fingerprints of verified credentials, each with its expiry.
pub struct VerifiedCache {
    key: [u8; 32],
    entries: HashMap<[u8; 32], u64>,
}

impl VerifiedCache {
    /// A cache keyed with `key`, which must be secret and random (see [`Self::random`]).
    pub fn with_key(key: [u8; 32]) -> Self {
        VerifiedCache { key, entries: HashMap::new() }
    }

    /// A cache with a fresh key from the platform's CSPRNG; `None` (no caching) if there is
    /// no randomness to be had.
    pub fn random() -> Option<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).ok()?;
        Some(Self::with_key(key))
    }

    fn fingerprint(&self, user: &str, stored: &str, secret: &str) -> [u8; 32] {
        // Lengths first, so no two (user, stored, secret) triples share an input.
        let mut message = Vec::with_capacity(user.len() + stored.len() + secret.len() + 16);
        for part in [user, stored, secret] {
            message.extend_from_slice(&(part.len() as u64).to_be_bytes());
            message.extend_from_slice(part.as_bytes());
        }
        hmac_sha256(&self.key, &message)
    }

    /// Whether this exact credential was verified less than [`VERIFIED_TTL_MS`] ago.
    pub fn contains(&self, user: &str, stored: &str, secret: &str, now_ms: u64) -> bool {
        // A lookup by a keyed MAC: its timing tells an attacker nothing about the key.
        self.entries.get(&self.fingerprint(user, stored, secret)).is_some_and(|until| now_ms < *until)
    }

    pub fn insert(&mut self, user: &str, stored: &str, secret: &str, now_ms: u64) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, until| now_ms < *until);
            if self.entries.len() >= MAX_ENTRIES {
                if let Some(first) = self.entries.iter().min_by_key(|(_, until)| **until).map(|(k, _)| *k) {
                    self.entries.remove(&first);
                }
            }
        }
        self.entries.insert(self.fingerprint(user, stored, secret), now_ms + VERIFIED_TTL_MS);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_exact_credentials_for_a_while() {
        let mut cache = VerifiedCache::with_key([7; 32]);
        cache.insert("reader", "pbkdf2-sha256:1:AA==:AA==", "pass", 0);
        assert!(cache.contains("reader", "pbkdf2-sha256:1:AA==:AA==", "pass", 1));
        assert!(!cache.contains("reader", "pbkdf2-sha256:1:AA==:AA==", "pass", VERIFIED_TTL_MS));
        assert!(!cache.contains("reader", "pbkdf2-sha256:1:AA==:AA==", "pass ", 1));
        assert!(!cache.contains("reader", "pbkdf2-sha256:2:AA==:AA==", "pass", 1));
        assert!(!cache.contains("writer", "pbkdf2-sha256:1:AA==:AA==", "pass", 1));
        // Moving bytes between the fields is another credential.
        assert!(!cache.contains("reade", "rpbkdf2-sha256:1:AA==:AA==", "pass", 1));
    }

    #[test]
    fn entries_are_keyed_macs_not_the_credential_or_its_plain_hash() {
        let mut a = VerifiedCache::with_key([1; 32]);
        let mut b = VerifiedCache::with_key([2; 32]);
        a.insert("u", "s", "p", 0);
        b.insert("u", "s", "p", 0);
        assert_ne!(a.entries.keys().next(), b.entries.keys().next());
        assert!(VerifiedCache::random().is_some_and(|c| c.key != [0; 32]));
    }

    #[test]
    fn stays_bounded() {
        let mut cache = VerifiedCache::with_key([3; 32]);
        for i in 0..(2 * MAX_ENTRIES) {
            cache.insert(&format!("user-{i}"), "s", "p", i as u64);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert!(cache.contains(&format!("user-{}", 2 * MAX_ENTRIES - 1), "s", "p", 3000));
    }
}
