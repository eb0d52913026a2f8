//! Deleting a tag, a repository's link to a manifest or a referrer entry while pushes may
//! write the same key: the protocol retention uses, and the put every push makes instead of
//! a plain one. This is where retention and pushes meet, so the safety argument lives here.
//!
//! R2 deletes unconditionally: a delete decided from a version read earlier would remove
//! whatever a push wrote since (a tag moved to a fresh image, a manifest pushed again).
//! So retention never deletes a live version. It first swaps the version it decided on for
//! a **retiring marker** (a compare-and-swap on that version's etag, [`retire`]), and only
//! the step that wrote a marker deletes it ([`release`]), within [`MAX_HOLD_MS`] of writing
//! it. Every writer of these keys uses [`put_yielding`]: it reads the key, then writes by a
//! compare-and-swap on what it read (create-only if absent); a marker younger than
//! `MAX_HOLD_MS` (plus the clocks' skew) it never overwrites (it re-reads, and after a few
//! reads gives up with a retryable error); an older one it replaces by compare-and-swap.
//! Every reader treats a marker as absent ([`is_marker`]).
//!
//! **Why no push is lost.** A push's write lands on a version it read. If it read a live
//! version `V` and retention swapped `V` for a marker, one of the two swaps failed: either
//! the push's (it re-reads, finds the marker and waits) or retention's (it keeps the key).
//! A push never writes over a fresh marker, so between a marker's write and its delete
//! nothing but the marker is under the key, and the unconditional delete removes only the
//! marker. A marker older than `MAX_HOLD_MS` belongs to a step that has ended (a step is
//! one invocation, bounded in time), so nobody will delete it any more: a push may replace
//! it. A later retention step that finds a marker (its writer crashed) takes it over by the
//! same compare-and-swap before deleting it, so a push and that step cannot both win.
//!
//! The versions retention decides on carry `pushed-at` in their bytes (tags: the digest and
//! the time; links: the time), so their etag (the MD5 of the bytes) changes with every
//! push, even a push of the same digest; a marker's body names the version it replaced
//! and its time.

use super::fields::RETIRING_AT;
use super::{BlobStore, Metadata, ObjectInfo, PutIf, StorageError, StorageResult};

/// The longest a retention step may hold a marker before deleting it: the wall time one
/// invocation may run (a cron invocation's limit is 15 minutes).
pub const MAX_HOLD_MS: u64 = 15 * 60_000;
/// How far apart two isolates' clocks may be.
pub const CLOCK_SKEW_MS: u64 = 60_000;
/// How many times a push reads a key held by a fresh marker before it gives up (`503`).
const ATTEMPTS: usize = 6;

/// Whether an object (by its metadata, from a `HEAD` or a listing) is a retiring marker,
/// which every reader treats as absent.
pub fn is_marker(metadata: &Metadata) -> bool {
    metadata.contains_key(RETIRING_AT.name())
}

/// Whether a marker is still held by the step that wrote it, at `now_ms`.
pub fn is_held(metadata: &Metadata, now_ms: u64) -> bool {
    // A marker whose time is unreadable was not written by this protocol: nobody holds it.
    RETIRING_AT.get(metadata).is_some_and(|at| now_ms < at.saturating_add(MAX_HOLD_MS + CLOCK_SKEW_MS))
}

/// How a push may treat a live version already under the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Replace it (a mutable tag, a link).
    Overwrite,
    /// Leave it and report it (an immutable tag is created only if absent).
    CreateOnly,
}

/// What [`put_yielding`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    Written(ObjectInfo),
    /// [`Mode::CreateOnly`] found this live version; nothing was written.
    Exists(ObjectInfo),
}

/// The put of every writer of a key retention may delete: see the module docs. A fresh
/// marker that stays for all the reads gives a retryable storage error (`503`).
pub async fn put_yielding<B: BlobStore>(
    store: &B,
    key: &str,
    body: Vec<u8>,
    metadata: Metadata,
    mode: Mode,
    now_ms: u64,
) -> StorageResult<Landed> {
    for _ in 0..ATTEMPTS {
        let condition = match store.head_for_condition(key).await? {
            None => None,
            Some(info) if is_marker(&info.metadata) => {
                if is_held(&info.metadata, now_ms) {
                    continue;
                }
                Some(info.etag)
            }
            Some(info) if mode == Mode::CreateOnly => return Ok(Landed::Exists(info)),
            Some(info) => Some(info.etag),
        };
        let condition = condition.as_deref().map_or(PutIf::Absent, PutIf::EtagMatches);
        if let Some(info) = store.put_bytes_if(key, body.clone(), metadata.clone(), condition).await? {
            return Ok(Landed::Written(info));
        }
    }
    Err(StorageError::Backend(format!(
        "{key} is being deleted by a retention policy at this moment; retry in a few seconds"
    )))
}

/// Retention's first move: swaps the version `etag` (live, or a marker a crashed step
/// left) for a marker written at `now_ms`. False when the key changed since it was read:
/// then it must be kept. The caller must [`release`] the marker within [`MAX_HOLD_MS`].
pub async fn retire<B: BlobStore>(store: &B, key: &str, etag: &str, now_ms: u64) -> StorageResult<bool> {
    let marker = Metadata::from([RETIRING_AT.entry(now_ms)]);
    let body = format!("retiring at {now_ms}, replacing {etag}").into_bytes();
    Ok(store.put_bytes_if(key, body, marker, PutIf::EtagMatches(etag)).await?.is_some())
}

/// Deletes the marker the caller's [`retire`] wrote, in the same step.
pub async fn release<B: BlobStore>(store: &B, key: &str) -> StorageResult<()> {
    store.delete(key).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryBlobStore;
    use futures::executor::block_on;

    const K: &str = "repositories/r/_tags/t";

    fn put(store: &MemoryBlobStore, body: &str, mode: Mode, now: u64) -> StorageResult<Landed> {
        block_on(put_yielding(store, K, body.into(), Metadata::new(), mode, now))
    }

    fn etag(store: &MemoryBlobStore) -> String {
        block_on(store.head(K)).unwrap().unwrap().etag
    }

    #[test]
    fn a_push_creates_then_replaces_by_compare_and_swap() {
        let store = MemoryBlobStore::new();
        assert!(matches!(put(&store, "a", Mode::Overwrite, 1).unwrap(), Landed::Written(_)));
        assert!(matches!(put(&store, "b", Mode::Overwrite, 2).unwrap(), Landed::Written(_)));
        assert_eq!(block_on(store.get_bytes(K)).unwrap().unwrap().1, b"b");
        let Landed::Exists(found) = put(&store, "c", Mode::CreateOnly, 3).unwrap() else { panic!("create-only") };
        assert_eq!(found.etag, etag(&store));
    }

    #[test]
    fn retiring_a_version_a_push_replaced_does_not_land() {
        let store = MemoryBlobStore::new();
        put(&store, "old", Mode::Overwrite, 1).unwrap();
        let read_by_retention = etag(&store);
        put(&store, "new", Mode::Overwrite, 2).unwrap();
        assert!(!block_on(retire(&store, K, &read_by_retention, 3)).unwrap());
        assert_eq!(block_on(store.get_bytes(K)).unwrap().unwrap().1, b"new", "the push's version stays");
    }

    #[test]
    fn a_push_waits_for_a_fresh_marker_and_writes_once_it_is_released() {
        let store = MemoryBlobStore::new();
        put(&store, "old", Mode::Overwrite, 1).unwrap();
        assert!(block_on(retire(&store, K, &etag(&store), 10)).unwrap());
        let held = put(&store, "new", Mode::Overwrite, 10 + MAX_HOLD_MS).unwrap_err();
        assert!(held.to_string().contains("retention"), "{held}");
        assert!(is_marker(&block_on(store.head(K)).unwrap().unwrap().metadata), "the marker is untouched");
        block_on(release(&store, K)).unwrap();
        assert!(block_on(store.head(K)).unwrap().is_none());
        assert!(matches!(put(&store, "new", Mode::Overwrite, 11).unwrap(), Landed::Written(_)));
        assert!(!is_marker(&block_on(store.head(K)).unwrap().unwrap().metadata));
    }

    #[test]
    fn a_stale_marker_is_replaced_by_a_push_or_taken_over_by_retention_but_not_both() {
        let store = MemoryBlobStore::new();
        put(&store, "old", Mode::Overwrite, 1).unwrap();
        assert!(block_on(retire(&store, K, &etag(&store), 10)).unwrap());
        let stale = etag(&store);
        let later = 10 + MAX_HOLD_MS + CLOCK_SKEW_MS;
        // A create-only push replaces a stale marker too: a marker is absent to it.
        assert!(matches!(put(&store, "new", Mode::CreateOnly, later).unwrap(), Landed::Written(_)));
        assert!(!block_on(retire(&store, K, &stale, later)).unwrap(), "retention's takeover lost");
        assert_eq!(block_on(store.get_bytes(K)).unwrap().unwrap().1, b"new");

        // The other order: retention takes the stale marker over first; the push then waits.
        let other = "repositories/r/_tags/u";
        block_on(store.put_bytes(other, b"x".to_vec(), Metadata::from([RETIRING_AT.entry(10)]))).unwrap();
        let stale = block_on(store.head(other)).unwrap().unwrap().etag;
        assert!(block_on(retire(&store, other, &stale, later)).unwrap());
        let held = block_on(put_yielding(&store, other, b"y".to_vec(), Metadata::new(), Mode::Overwrite, later));
        assert!(held.is_err(), "a marker taken over is fresh again");
    }
}
