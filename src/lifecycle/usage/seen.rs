//! The digests a usage run has counted so far, and in which repository it last counted
//! each: what makes a digest count once per repository and once in the total. Repositories
//! are counted one after the other, each with the next ordinal, so one map answers both
//! questions: a digest never seen is new to the total and to the repository, one last
//! seen by an earlier repository is new to this one only, one seen by this repository is
//! counted already.
//!
//! It is saved with the job after every step, so it is compact: a sorted array of
//! fixed-size entries (the digest's first [`KEY_BYTES`] bytes and the ordinal), read and
//! searched in place, with the step's new digests kept aside and merged in on save.
//! 128 bits of a SHA-256 or SHA-512 digest tell contents apart as surely as the whole:
//! making two pushed contents share them takes about 2^64 hashes.

use crate::oci::Digest;
use std::collections::BTreeMap;

/// Bytes of a digest kept per entry.
pub const KEY_BYTES: usize = 16;
/// Bytes of one stored entry: the key, then the ordinal (big-endian `u32`).
const ENTRY_BYTES: usize = KEY_BYTES + 4;
/// The most digests one run holds (40 MB saved with the job); a registry with more
/// distinct contents is not counted (the run ends incomplete, the last report stays).
pub const MAX_SEEN: usize = 2_000_000;

type Key = [u8; KEY_BYTES];

/// What counting a digest in a repository found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Never counted in this run: new to the total and to the repository.
    First,
    /// Counted by an earlier repository: new to this one only.
    FirstInRepository,
    /// Counted by this repository already.
    Again,
}

/// The set, as a step holds it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Sorted entries as saved, updated in place.
    base: Vec<u8>,
    /// Digests first seen in this step.
    added: BTreeMap<Key, u32>,
}

impl Seen {
    /// The set saved as `bytes` (by [`Seen::encode`]).
    pub fn decode(bytes: Vec<u8>) -> Result<Seen, String> {
        if !bytes.len().is_multiple_of(ENTRY_BYTES) {
            return Err(format!("{} bytes are not whole entries of {ENTRY_BYTES}", bytes.len()));
        }
        Ok(Seen { base: bytes, added: BTreeMap::new() })
    }

    /// The set as saved: every entry, sorted by key.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.base.len() + self.added.len() * ENTRY_BYTES);
        let mut added = self.added.iter().peekable();
        for entry in self.base.chunks_exact(ENTRY_BYTES) {
            while let Some((key, repo)) = added.next_if(|(key, _)| key.as_slice() < &entry[..KEY_BYTES]) {
                push(&mut out, key, *repo);
            }
            out.extend_from_slice(entry);
        }
        for (key, repo) in added {
            push(&mut out, key, *repo);
        }
        out
    }

    /// How many digests it holds.
    pub fn len(&self) -> usize {
        self.base.len() / ENTRY_BYTES + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts `digest` in the repository of ordinal `repo` (repositories are counted in
    /// increasing ordinals), remembering it.
    pub fn count(&mut self, digest: &Digest, repo: u32) -> Counted {
        let key = key_of(digest);
        let (last, first) = match self.find(&key) {
            Some(i) => {
                let ordinal = &mut self.base[i * ENTRY_BYTES + KEY_BYTES..(i + 1) * ENTRY_BYTES];
                let last = u32::from_be_bytes([ordinal[0], ordinal[1], ordinal[2], ordinal[3]]);
                ordinal.copy_from_slice(&repo.to_be_bytes());
                (Some(last), false)
            }
            None => match self.added.insert(key, repo) {
                Some(last) => (Some(last), false),
                None => (None, true),
            },
        };
        match last {
            _ if first => Counted::First,
            Some(last) if last == repo => Counted::Again,
            _ => Counted::FirstInRepository,
        }
    }

    /// The index of `key` among the saved entries.
    fn find(&self, key: &Key) -> Option<usize> {
        let (mut low, mut high) = (0, self.base.len() / ENTRY_BYTES);
        while low < high {
            let mid = (low + high) / 2;
            match self.base[mid * ENTRY_BYTES..mid * ENTRY_BYTES + KEY_BYTES].cmp(key.as_slice()) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

fn push(out: &mut Vec<u8>, key: &Key, repo: u32) {
    out.extend_from_slice(key);
    out.extend_from_slice(&repo.to_be_bytes());
}

/// The first [`KEY_BYTES`] bytes of the digest (its hex is at least 64 digits long).
fn key_of(digest: &Digest) -> Key {
    let hex = digest.hex().as_bytes();
    let mut key = [0u8; KEY_BYTES];
    for (i, byte) in key.iter_mut().enumerate() {
        let nibble = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
        *byte = nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        format!("sha256:{:02x}{}", n, "0".repeat(62)).parse().unwrap()
    }

    #[test]
    fn a_digest_counts_once_per_repository_and_once_in_all() {
        let mut seen = Seen::default();
        assert_eq!(seen.count(&d(1), 1), Counted::First);
        assert_eq!(seen.count(&d(1), 1), Counted::Again);
        assert_eq!(seen.count(&d(1), 2), Counted::FirstInRepository);
        assert_eq!(seen.count(&d(1), 2), Counted::Again);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn saved_and_read_back_between_steps_it_answers_the_same() {
        let mut seen = Seen::default();
        for n in [9, 3, 7] {
            seen.count(&d(n), 1);
        }
        let mut next = Seen::decode(seen.encode()).unwrap();
        assert_eq!(next.count(&d(3), 1), Counted::Again);
        assert_eq!(next.count(&d(5), 2), Counted::First);
        assert_eq!(next.count(&d(7), 2), Counted::FirstInRepository);
        let bytes = next.encode();
        assert_eq!(bytes.len(), 4 * ENTRY_BYTES);
        let keys: Vec<u8> = bytes.chunks_exact(ENTRY_BYTES).map(|e| e[0]).collect();
        assert_eq!(keys, [3, 5, 7, 9], "merged in order");
        let mut last = Seen::decode(bytes).unwrap();
        assert_eq!(last.count(&d(7), 2), Counted::Again, "the ordinal updated in place was saved");
        assert_eq!(last.count(&d(9), 2), Counted::FirstInRepository);
        assert!(Seen::decode(vec![0; ENTRY_BYTES + 1]).is_err());
    }
}
