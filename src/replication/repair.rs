//! The scheduled repair: re-sends pending markers whose message was lost or ran out of
//! retries, and compares the content-addressed keys (blobs, manifests) of all replicas to
//! re-enqueue whatever one of them misses. Replication converges even if the queue lost
//! everything.

use super::replicate::{message_of_marker, send_all, write_marker, Message, ReplicationQueue, MAX_BATCH};
use super::store::{ChangeKind, Replicated};
use super::tombstone;
use crate::storage::{keys, list_all, BlobStore, StorageResult};
use std::collections::{BTreeMap, BTreeSet};

/// At most this many failures are described in a report (all are counted).
const MAX_DESCRIBED_FAILURES: usize = 10;

/// What one repair run did. A failing item (a marker that cannot be written, a batch the
/// queue refuses, a deletion record that cannot be removed) is counted in `failed` and
/// the run carries on with the next: each is tried again by the next run, since its
/// pending marker or its missing copy is still there to be found.
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
    /// Items that failed this time (left for the next run).
    pub failed: usize,
    /// What the first few failures were.
    pub failures: Vec<String>,
}

impl RepairReport {
    fn failure(&mut self, what: String) {
        self.failed += 1;
        if self.failures.len() < MAX_DESCRIBED_FAILURES {
            self.failures.push(what);
        }
    }

    fn unreachable(&mut self, name: &str) {
        if !self.unreachable.iter().any(|n| n == name) {
            self.unreachable.push(name.to_owned());
        }
    }
}

/// Runs the repair with a maintenance-routed store. Markers last sent less than
/// `resend_after_ms` ago are left to the queue. Never stops at a failing item: see
/// [`RepairReport`].
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
                report.unreachable(&replica.name);
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
            match write_marker(store, source, &message, now).await {
                Ok(()) => {
                    report.resent += 1;
                    messages.push(message);
                }
                Err(e) => report.failure(format!("re-sending {} to {}: {e}", message.key, message.target)),
            }
        }
    }
    for prefix in keys::CONTENT_PREFIXES {
        let mut holders: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut listed = Vec::new();
        for (i, replica) in store.replicas.iter().enumerate() {
            match store.run(i, false, list_all(&replica.store, prefix)).await {
                Ok(keys) => {
                    listed.push(i);
                    for key in keys {
                        holders.entry(key.key).or_default().push(i);
                    }
                }
                Err(_) => report.unreachable(&replica.name),
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
                match write_marker(store, source, &message, now).await {
                    Ok(()) => {
                        report.missing += 1;
                        messages.push(message);
                    }
                    Err(e) => report.failure(format!("marking {key} for {}: {e}", message.target)),
                }
            }
        }
    }
    // Batch by batch: a refused batch keeps its markers, so the next run sends it again.
    for batch in messages.chunks(MAX_BATCH) {
        if let Err(e) = send_all(queue, batch.to_vec()).await {
            for message in batch {
                report.failure(format!("enqueueing {} for {}: {e}", message.key, message.target));
            }
        }
    }
    let expiry = tombstone::expire(store, now, tombstone::TOMBSTONE_TTL_MS).await;
    report.expired_tombstones = expiry.removed;
    for what in expiry.failures {
        report.failure(what);
    }
    for name in expiry.unreachable {
        report.unreachable(&name);
    }
    Ok(report)
}
