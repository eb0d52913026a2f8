//! The scheduled repair: re-sends pending markers whose message was lost or ran out of
//! retries, and compares the content-addressed keys (blobs, manifests) of all replicas to
//! re-enqueue whatever one of them misses. Replication converges even if the queue lost
//! everything.

use super::replicate::{message_of_marker, send_all, write_marker, Message, ReplicationQueue};
use super::store::{ChangeKind, Replicated};
use super::tombstone;
use crate::storage::{keys, list_all, BlobStore, StorageResult};
use std::collections::{BTreeMap, BTreeSet};

/// Content keys compared across replicas (never deleted by the registry, so a key present
/// anywhere belongs everywhere).
const CONTENT_PREFIXES: [&str; 3] = ["blobs/sha256/", "blobs/sha512/", "manifests/"];

/// What one repair run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepairReport {
    /// Pending markers whose message was sent again.
    pub resent: usize,
    /// Content keys found missing from a replica and enqueued.
    pub missing: usize,
    /// Replicas that could not be listed this time.
    pub unreachable: Vec<String>,
    /// Deletion records past their time, removed.
    pub expired_tombstones: usize,
}

/// Runs the repair with a maintenance-routed store. Markers last sent less than
/// `resend_after_ms` ago are left to the queue.
pub async fn repair<S: BlobStore, Q: ReplicationQueue>(
    store: &Replicated<S>,
    queue: &Q,
    resend_after_ms: u64,
) -> StorageResult<RepairReport> {
    let now = (store.routing.now)();
    let mut report = RepairReport::default();
    let mut messages = Vec::new();
    let mut pending: BTreeSet<(String, String)> = BTreeSet::new();
    for (source, replica) in store.replicas.iter().enumerate() {
        let markers = match store.run(source, false, list_all(&replica.store, keys::PENDING_PREFIX)).await {
            Ok(markers) => markers,
            Err(_) => {
                report.unreachable.push(replica.name.clone());
                continue;
            }
        };
        for marker in markers {
            let Some((message, sent_at)) = message_of_marker(&replica.name, &marker.key, &marker.metadata) else {
                continue;
            };
            pending.insert((message.target.clone(), message.key.clone()));
            if now.saturating_sub(sent_at) < resend_after_ms {
                continue;
            }
            write_marker(store, source, &message, now).await?;
            report.resent += 1;
            messages.push(message);
        }
    }
    for prefix in CONTENT_PREFIXES {
        let mut holders: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut listed = Vec::new();
        for (i, replica) in store.replicas.iter().enumerate() {
            if let Ok(keys) = store.run(i, false, list_all(&replica.store, prefix)).await {
                listed.push(i);
                for key in keys {
                    holders.entry(key.key).or_default().push(i);
                }
            }
        }
        for (key, holding) in holders {
            for &target in listed.iter().filter(|t| !holding.contains(t)) {
                let target_name = store.routing.name(target).to_owned();
                if pending.contains(&(target_name.clone(), key.clone())) {
                    continue;
                }
                let source = holding[0];
                let message = Message {
                    key: key.clone(),
                    kind: ChangeKind::Put,
                    source: store.routing.name(source).to_owned(),
                    target: target_name,
                    enqueued_at: now,
                };
                write_marker(store, source, &message, now).await?;
                report.missing += 1;
                messages.push(message);
            }
        }
    }
    send_all(queue, messages).await.map_err(crate::storage::StorageError::Backend)?;
    report.expired_tombstones = tombstone::expire(store, now, tombstone::TOMBSTONE_TTL_MS).await;
    Ok(report)
}
