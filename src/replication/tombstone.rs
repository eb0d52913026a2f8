//! Deletion records: a replica that deleted a replicated key keeps when it did, so that a
//! copy older than the delete, arriving late from another replica, is not written back.
//! The repair job removes records older than [`TOMBSTONE_TTL_MS`], well past the queue's
//! retries and the repair's own re-sends.

use super::store::Replicated;
use crate::storage::fields::{TOMBSTONE_DELETED_AT, TOMBSTONE_KEY};
use crate::storage::{keys, list_all, BlobStore, Metadata, StorageResult};

/// How long deletion records are kept: 7 days.
pub const TOMBSTONE_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

/// Records in replica `i` that `key` was deleted at `at` (unless a later delete is known).
pub(crate) async fn record<S: BlobStore>(store: &Replicated<S>, i: usize, key: &str, at: u64) -> StorageResult<()> {
    if deleted_at(store, i, key).await?.is_some_and(|known| known >= at) {
        return Ok(());
    }
    let metadata = Metadata::from([TOMBSTONE_KEY.entry(key), TOMBSTONE_DELETED_AT.entry(at)]);
    let record = keys::tombstone(key);
    let put = store.replicas[i].store.put_bytes(&record, Vec::new(), metadata);
    store.run(i, true, put).await.map(|_| ())
}

/// When replica `i` last deleted `key`, if it keeps a record of it.
pub(crate) async fn deleted_at<S: BlobStore>(store: &Replicated<S>, i: usize, key: &str) -> StorageResult<Option<u64>> {
    let record = keys::tombstone(key);
    let head = store.run(i, true, store.replicas[i].store.head(&record)).await?;
    Ok(head.and_then(|info| TOMBSTONE_DELETED_AT.get(&info.metadata)))
}

/// What expiring deletion records did.
#[derive(Debug, Default)]
pub(crate) struct Expiry {
    pub removed: usize,
    /// The records that could not be removed (tried again next time).
    pub failures: Vec<String>,
    /// Replicas whose records could not be listed.
    pub unreachable: Vec<String>,
}

/// Removes the records older than `ttl_ms` from every replica it can list, carrying on
/// past any that fails.
pub(crate) async fn expire<S: BlobStore>(store: &Replicated<S>, now: u64, ttl_ms: u64) -> Expiry {
    let mut expiry = Expiry::default();
    for (i, replica) in store.replicas.iter().enumerate() {
        let Ok(records) = store.run(i, false, list_all(&replica.store, keys::TOMBSTONES_PREFIX)).await else {
            expiry.unreachable.push(replica.name.clone());
            continue;
        };
        for listed in records {
            let at = TOMBSTONE_DELETED_AT.get(&listed.metadata).unwrap_or(0);
            if now.saturating_sub(at) <= ttl_ms {
                continue;
            }
            match store.run(i, false, replica.store.delete(&listed.key)).await {
                Ok(()) => expiry.removed += 1,
                Err(e) => expiry.failures.push(format!("removing {} in {}: {e}", listed.key, replica.name)),
            }
        }
    }
    expiry
}
