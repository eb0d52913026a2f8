//! One call to one replica through a [`Replicated`] store: injected faults, the read
//! timeout, the replica's health and the count of backend calls; the replicas a strict
//! view could not reach; and the [`Change`]s a request's writes leave for replication.

use super::placement::{backend, is_replicated};
use super::store::Replicated;
use crate::storage::{BlobStore, StorageError, StorageResult};
use futures::future::{select, Either};
use std::future::Future;

/// What a write did, to be replicated to the other replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Put,
    Delete,
}

/// A write to a replicated key in the replica `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub kind: ChangeKind,
    pub source: usize,
}

impl<S: BlobStore> Replicated<S> {
    /// Records replica `i` as not reached by a call of the strict view.
    pub(crate) fn unreached(&self, i: usize) {
        let name = &self.replicas[i].name;
        let mut unreached = self.unreached.borrow_mut();
        if self.strict && !unreached.contains(name) {
            unreached.push(name.clone());
        }
    }

    /// The writes this request made to replicated keys, each once (the last per key).
    pub fn take_changes(&self) -> Vec<Change> {
        let mut changes = std::mem::take(&mut *self.changes.borrow_mut());
        let mut seen = std::collections::HashSet::new();
        changes.reverse();
        changes.retain(|c| seen.insert(c.key.clone()));
        changes.reverse();
        changes
    }

    pub(crate) fn record(&self, key: &str, kind: ChangeKind, source: usize) {
        if is_replicated(key) && self.routing.len() > 1 {
            self.changes.borrow_mut().push(Change { key: key.to_owned(), kind, source });
        }
    }

    /// Runs one operation on replica `i`: applies injected faults and the read timeout,
    /// counts it, and keeps the replica's health. Limit errors are the caller's, not the
    /// replica's, and do not make it unhealthy.
    pub(crate) async fn run<T>(
        &self,
        i: usize,
        timed: bool,
        op: impl Future<Output = StorageResult<T>>,
    ) -> StorageResult<T> {
        self.run_judged(i, timed, true, op).await
    }

    /// [`Self::run`] for an operation that had to go to replica `i` whatever its health
    /// (the collector's keys, in the home replica): unless `judged`, its success does not
    /// end the replica's back-off, which other traffic keeps observing.
    pub(crate) async fn run_judged<T>(
        &self,
        i: usize,
        timed: bool,
        judged: bool,
        op: impl Future<Output = StorageResult<T>>,
    ) -> StorageResult<T> {
        let health = &self.routing.health;
        let name = &self.replicas[i].name;
        self.calls.set(self.calls.get() + 1);
        if self.routing.failing.get(i).copied().unwrap_or(false) {
            let message = format!("replica {name}: injected fault");
            health.failed(i, (self.routing.now)(), &message);
            return Err(backend(message));
        }
        if self.routing.stalling.get(i).copied().unwrap_or(false) {
            self.timer.sleep(self.read_timeout_ms).await;
            let message = format!("replica {name}: no answer in {} ms (injected stall)", self.read_timeout_ms);
            health.failed(i, (self.routing.now)(), &message);
            return Err(backend(message));
        }
        health.count(i, self.routing.traffic);
        let result = if timed {
            let op = std::pin::pin!(op);
            match select(op, self.timer.sleep(self.read_timeout_ms)).await {
                Either::Left((result, _)) => result,
                Either::Right(_) => Err(backend(format!("replica {name}: no answer in {} ms", self.read_timeout_ms))),
            }
        } else {
            op.await
        };
        match &result {
            Ok(_) if judged => health.succeeded(i),
            Ok(_) => {}
            Err(StorageError::Backend(e)) => health.failed(i, (self.routing.now)(), e),
            Err(StorageError::Limit(_)) => {}
        }
        result
    }
}
