//! Replication: after a request, each [`Change`] becomes a pending marker in its source
//! replica and a queue message per target; the queue consumer applies a message by
//! copying (verified against the digest) or deleting, then removes the marker. Applying is
//! idempotent, so a repeated or re-sent message does no harm. With the garbage collector
//! on, content is copied only while its state (in the home replica) is not dead, checked
//! before and after the copy, so neither a late message nor the repair brings collected
//! content back.

use super::placement::is_content;
use super::store::{written_at, Change, ChangeKind, Replicated};
use super::tombstone;
use crate::oci::Digest;
use crate::storage::content_state::{self, ContentState};
use crate::storage::fields::{MARKER_ENQUEUED_AT, MARKER_KEY, MARKER_KIND, MARKER_SENT_AT, POINTER_TARGET};
use crate::storage::{keys, BlobStore, ByteRange, Metadata, NativePut, ObjectInfo, StorageError, StorageResult};
use serde::{Deserialize, Serialize};

/// A queue allows at most this many messages per send.
pub const MAX_BATCH: usize = 100;

/// One key to bring from `source` to `target` (by replica name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub key: String,
    pub kind: ChangeKind,
    pub source: String,
    pub target: String,
    /// When the change was first enqueued (ms): the age of the oldest pending item.
    pub enqueued_at: u64,
}

/// The replication queue's producer side (a Cloudflare Queue on Workers).
#[allow(async_fn_in_trait)]
pub trait ReplicationQueue {
    async fn send(&self, messages: Vec<Message>) -> Result<(), String>;
}

/// Sends `messages` in batches the queue accepts.
pub async fn send_all<Q: ReplicationQueue>(queue: &Q, messages: Vec<Message>) -> Result<(), String> {
    for batch in messages.chunks(MAX_BATCH) {
        queue.send(batch.to_vec()).await?;
    }
    Ok(())
}

/// A pending marker's contents.
fn marker_metadata(message: &Message, sent_at: u64) -> Metadata {
    let kind = serde_json::to_value(message.kind).ok().and_then(|v| v.as_str().map(str::to_owned));
    Metadata::from([
        MARKER_KEY.entry(message.key.clone()),
        MARKER_KIND.entry(kind.unwrap_or_default()),
        MARKER_ENQUEUED_AT.entry(message.enqueued_at),
        MARKER_SENT_AT.entry(sent_at),
    ])
}

/// Writes (or rewrites) the pending marker of `message` in its source replica `source`.
pub(crate) async fn write_marker<S: BlobStore>(
    store: &Replicated<S>,
    source: usize,
    message: &Message,
    sent_at: u64,
) -> StorageResult<()> {
    let marker = keys::pending_marker(&message.target, &message.key);
    let put = store.replicas[source].store.put_bytes(&marker, Vec::new(), marker_metadata(message, sent_at));
    store.run(source, false, put).await.map(|_| ())
}

/// The message a marker in `source` stands for, and when it was last sent.
pub(crate) fn message_of_marker(source: &str, marker_key: &str, metadata: &Metadata) -> Option<(Message, u64)> {
    let target = keys::pending_target_of(marker_key)?.to_owned();
    let kind = serde_json::from_value(serde_json::Value::String(MARKER_KIND.get(metadata)?.to_owned())).ok()?;
    let message = Message {
        key: MARKER_KEY.get(metadata)?.to_owned(),
        kind,
        source: source.to_owned(),
        target,
        enqueued_at: MARKER_ENQUEUED_AT.get(metadata)?,
    };
    let sent = MARKER_SENT_AT.get(metadata).unwrap_or(message.enqueued_at);
    Some((message, sent))
}

/// Records `changes` as pending in their source replicas and enqueues one message per
/// target. A marker that cannot be written is logged by the caller's repair: content keys
/// are found again by the repair's full comparison. Returns the messages sent.
pub async fn publish<S: BlobStore, Q: ReplicationQueue>(
    store: &Replicated<S>,
    queue: &Q,
    changes: Vec<Change>,
) -> Result<usize, String> {
    let now = (store.routing.now)();
    let mut pending = Vec::new();
    for change in changes {
        let source = store.routing.name(change.source).to_owned();
        for target in (0..store.routing.len()).filter(|&t| t != change.source) {
            let message = Message {
                key: change.key.clone(),
                kind: change.kind,
                source: source.clone(),
                target: store.routing.name(target).to_owned(),
                enqueued_at: now,
            };
            pending.push((change.source, message));
        }
    }
    // The markers are independent small writes: all at once, so a push pays one round trip.
    let marked =
        futures::future::join_all(pending.iter().map(|(source, message)| write_marker(store, *source, message, now)))
            .await;
    let unmarked = marked.into_iter().filter_map(Result::err).next();
    // The messages go even if a marker could not be written: without them such a change
    // would depend on the repair, which compares only content keys.
    let messages: Vec<Message> = pending.into_iter().map(|(_, message)| message).collect();
    let sent = messages.len();
    send_all(queue, messages).await?;
    match unmarked {
        Some(e) => Err(format!("sent, but a pending marker could not be written: {e}")),
        None => Ok(sent),
    }
}

/// What applying one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The target now holds the source's copy, verified.
    Copied,
    /// The key was deleted in the target.
    Deleted,
    /// The target already held this or a newer version.
    AlreadyThere,
    /// The source no longer holds what the message is about; a later message covers it.
    Superseded,
    /// The fault hook dropped the message; its marker stays for the repair job.
    Dropped,
    /// The content is being collected (its state is dead): not copied, or the copy that
    /// landed meanwhile deleted again.
    Collected,
}

/// Applies one message with a maintenance-routed store; `Err` means retry later.
pub async fn apply<S: BlobStore>(store: &Replicated<S>, message: &Message) -> Result<Applied, String> {
    let (Some(source), Some(target)) =
        (store.routing.index_of(&message.source), store.routing.index_of(&message.target))
    else {
        return Ok(Applied::Superseded); // a replica no longer declared
    };
    if store.routing.dropping.get(target).copied().unwrap_or(false) {
        return Ok(Applied::Dropped);
    }
    let applied = sync_key(store, source, target, message).await.map_err(|e| e.to_string())?;
    // The marker is this change's only if no later change of the key rewrote it: a later
    // one's marker stays until its own message is applied.
    let marker = keys::pending_marker(&message.target, &message.key);
    let src = &store.replicas[source].store;
    let current = store.run(source, true, src.head(&marker)).await.map_err(|e| e.to_string())?;
    let enqueued = |info: &ObjectInfo| MARKER_ENQUEUED_AT.get(&info.metadata);
    if current.as_ref().is_some_and(|info| enqueued(info) == Some(message.enqueued_at)) {
        store.run(source, false, src.delete(&marker)).await.map_err(|e| e.to_string())?;
    }
    Ok(applied)
}

async fn sync_key<S: BlobStore>(
    store: &Replicated<S>,
    source: usize,
    target: usize,
    message: &Message,
) -> StorageResult<Applied> {
    let key = message.key.as_str();
    let (src, dst) = (&store.replicas[source].store, &store.replicas[target].store);
    let in_source = store.run(source, true, src.head(key)).await?;
    let in_target = store.run(target, true, dst.head(key)).await?;
    let Some(info) = in_source else {
        return Ok(match (message.kind, in_target) {
            (ChangeKind::Delete, Some(there)) if written_at(&there.metadata) <= message.enqueued_at => {
                store.run(target, false, dst.delete(key)).await?;
                tombstone::record(store, target, key, message.enqueued_at).await?;
                Applied::Deleted
            }
            (ChangeKind::Delete, None) => {
                tombstone::record(store, target, key, message.enqueued_at).await?;
                Applied::AlreadyThere
            }
            (ChangeKind::Delete, Some(_)) => Applied::AlreadyThere,
            (ChangeKind::Put, _) => Applied::Superseded,
        });
    };
    if in_target.as_ref().is_some_and(|there| written_at(&there.metadata) >= written_at(&info.metadata)) {
        return Ok(Applied::AlreadyThere);
    }
    // Content the collector deletes is judged by its state, which outlives no copy of it
    // (the collector forgets a state only once every replica's copy is gone): a record of
    // the deletion would keep a later push of the same content from replicating.
    let checks_state = store.collecting && is_content(key);
    if checks_state {
        if being_collected(store, key).await? {
            return Ok(Applied::Collected);
        }
    } else if tombstone::deleted_at(store, target, key)
        .await?
        .is_some_and(|deleted| deleted >= written_at(&info.metadata))
    {
        return Ok(Applied::Superseded); // deleted there after this copy was written
    }
    copy_key(store, source, target, key, &info).await?;
    if checks_state && being_collected(store, key).await? {
        // Killed while it was being copied: the collector may have deleted every copy
        // before this one landed. Dead content is never relied on (pushes of it are
        // refused until the collector forgets it), so this copy is removed.
        let dst = &store.replicas[target].store;
        if let Some(assembled) = POINTER_TARGET.get(&info.metadata) {
            store.run(target, false, dst.delete(assembled)).await?;
        }
        store.run(target, false, dst.delete(key)).await?;
        return Ok(Applied::Collected);
    }
    Ok(Applied::Copied)
}

/// Whether the collector's state of `key` (read in the home replica) is dead.
async fn being_collected<S: BlobStore>(store: &Replicated<S>, key: &str) -> StorageResult<bool> {
    Ok(matches!(content_state::read(store, key).await?, ContentState::Dead { .. }))
}

/// Copies `key` (described by `info` in the source) to the target: a blob's bytes verified
/// (and its pointer after them), anything else whole (a manifest verified).
async fn copy_key<S: BlobStore>(
    store: &Replicated<S>,
    source: usize,
    target: usize,
    key: &str,
    info: &ObjectInfo,
) -> StorageResult<()> {
    if let Some(digest) = keys::blob_digest_of(key) {
        match POINTER_TARGET.get(&info.metadata) {
            Some(assembled) => {
                copy_blob_bytes(store, source, target, assembled, &digest).await?;
                copy_small(store, source, target, key, None).await?;
            }
            None => copy_blob_bytes(store, source, target, key, &digest).await?,
        }
    } else {
        copy_small(store, source, target, key, keys::manifest_digest_of(key)).await?;
    }
    Ok(())
}

/// Copies a small object through memory with its metadata; when `digest` is given the
/// bytes must hash to it.
async fn copy_small<S: BlobStore>(
    store: &Replicated<S>,
    source: usize,
    target: usize,
    key: &str,
    digest: Option<Digest>,
) -> StorageResult<()> {
    let src = &store.replicas[source].store;
    let Some((info, bytes)) = store.run(source, true, src.get_bytes(key)).await? else {
        return Err(StorageError::Backend(format!("{key} vanished from {} while copying", store.routing.name(source))));
    };
    if let Some(expected) = digest {
        let actual = expected.algorithm().digest_of(&bytes);
        if actual != expected {
            return Err(StorageError::Backend(format!("{key} in {} hashes to {actual}", store.routing.name(source))));
        }
    }
    let dst = &store.replicas[target].store;
    store.run(target, false, dst.put_bytes(key, bytes, info.metadata)).await.map(|_| ())
}

/// Copies blob bytes stored under `key` so that the target holds them under the same key
/// only once they are verified to hash to `digest`: a single verified put (R2 checks the
/// checksum) up to the single-put limit, a multipart copy re-hashed by the store above it.
async fn copy_blob_bytes<S: BlobStore>(
    store: &Replicated<S>,
    source: usize,
    target: usize,
    key: &str,
    digest: &Digest,
) -> StorageResult<()> {
    let (src, dst) = (&store.replicas[source].store, &store.replicas[target].store);
    if store.run(target, true, dst.head(key)).await?.is_some()
        && store.run(target, false, dst.digest_object(key, digest.algorithm())).await?.as_ref() == Some(digest)
    {
        return Ok(());
    }
    let Some(info) = store.run(source, true, src.head(key)).await? else {
        return Err(StorageError::Backend(format!("{key} vanished from {}", store.routing.name(source))));
    };
    if info.size > dst.max_single_put() {
        return copy_multipart(store, source, target, key, info.size, digest).await;
    }
    let object = store.run(source, true, src.get(key, None)).await?;
    let object = object.ok_or_else(|| StorageError::Backend(format!("{key} vanished while copying")))?;
    let stored = match dst.reuse_body(object.body) {
        Some(native) => store.run(target, false, dst.put_verified(key, native, info.size, digest)).await?,
        None => {
            let bytes = store.run(source, true, src.get_bytes(key)).await?.map(|(_, b)| b).unwrap_or_default();
            if digest.algorithm().digest_of(&bytes) != *digest {
                NativePut::DigestMismatch
            } else {
                store.run(target, false, dst.put_bytes(key, bytes, Metadata::new())).await?;
                NativePut::Stored(())
            }
        }
    };
    match stored {
        NativePut::Stored(()) => Ok(()),
        NativePut::DigestMismatch => Err(StorageError::Backend(format!(
            "{key} in {} does not hash to {digest}: not copied",
            store.routing.name(source)
        ))),
        NativePut::Interrupted(e) => Err(StorageError::Backend(format!("copying {key}: {e}"))),
    }
}

/// Above the single-put limit: copies part by part, then re-hashes the assembled copy
/// (natively, on Workers) and deletes it if it does not match.
async fn copy_multipart<S: BlobStore>(
    store: &Replicated<S>,
    source: usize,
    target: usize,
    key: &str,
    size: u64,
    digest: &Digest,
) -> StorageResult<()> {
    let (src, dst) = (&store.replicas[source].store, &store.replicas[target].store);
    let min_part = crate::storage::limits::R2_MIN_PART_BYTES.max(8 * 1024 * 1024);
    let part_size = size.div_ceil(crate::storage::limits::R2_MAX_PARTS as u64).max(min_part);
    let upload = store.run(target, false, dst.create_multipart(key)).await?;
    let copied = async {
        let mut parts = Vec::new();
        let mut offset = 0;
        while offset < size {
            let range = ByteRange { offset, length: part_size.min(size - offset) };
            let bytes = store.run(source, false, src.read_range(key, range)).await?;
            let bytes = bytes.ok_or_else(|| StorageError::Backend(format!("{key} vanished while copying")))?;
            let number = (parts.len() + 1) as u16;
            parts.push(store.run(target, false, dst.upload_part(key, &upload, number, bytes)).await?);
            offset += range.length;
        }
        store.run(target, false, dst.complete_multipart(key, &upload, &parts)).await
    };
    if let Err(e) = copied.await {
        // No orphaned parts on every retry. (The assembled key is reachable only through a
        // pointer, which is copied after this verified copy.)
        let _ = store.run(target, false, dst.abort_multipart(key, &upload)).await;
        return Err(e);
    }
    if store.run(target, false, dst.digest_object(key, digest.algorithm())).await?.as_ref() != Some(digest) {
        store.run(target, false, dst.delete(key)).await?;
        return Err(StorageError::Backend(format!("the copy of {key} does not hash to {digest}; deleted")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Markers written by one release are re-sent by the repair job of the next: their
    /// metadata is a stored format (see `storage::fields`), pinned here literally.
    #[test]
    fn marker_metadata_is_pinned_and_reads_back() {
        let message = Message {
            key: "catalog/app".into(),
            kind: ChangeKind::Delete,
            source: "a".into(),
            target: "eu".into(),
            enqueued_at: 1_700_000_000_001,
        };
        let metadata = marker_metadata(&message, 1_700_000_000_009);
        let expected = [
            ("enqueued-at", "1700000000001"),
            ("key", "catalog/app"),
            ("kind", "delete"),
            ("sent-at", "1700000000009"),
        ];
        let expected: Metadata = expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(metadata, expected);
        let put = marker_metadata(&Message { kind: ChangeKind::Put, ..message.clone() }, 0);
        assert_eq!(put.get("kind").map(String::as_str), Some("put"));

        let marker = keys::pending_marker(&message.target, &message.key);
        assert_eq!(message_of_marker("a", &marker, &metadata), Some((message.clone(), 1_700_000_000_009)));
        let mut unsent = metadata.clone();
        unsent.remove("sent-at");
        assert_eq!(message_of_marker("a", &marker, &unsent), Some((message, 1_700_000_000_001)), "sent when enqueued");
        let mut broken = metadata;
        broken.insert("enqueued-at".into(), "yesterday".into());
        assert_eq!(message_of_marker("a", &marker, &broken), None);
    }
}
