//! The storage calls one step of a lifecycle job (the collector with its retention phase,
//! the usage count) makes, counted as they are made, so that a step stops before the
//! platform's per-invocation limit (50 calls to Cloudflare services on a Free plan, 1,000
//! on a Paid one): each job reaches storage only through a [`Meter`]. Over replicas, where
//! one call may make several backend calls, the meter counts those the store reports and
//! reserves each unit of work as if every call made the most a call may.

use crate::storage::{
    content_state, retiring, BlobStore, ListPage, MetaStore, Metadata, ObjectInfo, PutIf, StorageResult,
};
use std::cell::Cell;

/// The stores of one step, with a count of the calls made through them and the budget.
pub struct Meter<'a, B, M> {
    blobs: &'a B,
    meta: &'a M,
    /// Calls made through the meter (one each).
    spent: Cell<u64>,
    /// Of those, calls to the index (always one backend call).
    indexed: Cell<u64>,
    /// The store's backend calls when the meter was made, and the most one call makes.
    backend: Option<(u64, u64)>,
    budget: u64,
}

impl<'a, B: BlobStore, M: MetaStore> Meter<'a, B, M> {
    pub fn new(blobs: &'a B, meta: &'a M, budget: u64) -> Self {
        let backend = blobs.backend_calls();
        Meter { blobs, meta, spent: Cell::new(0), indexed: Cell::new(0), backend, budget }
    }

    /// The calls this step may make.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Calls made so far (backend calls, over replicas).
    pub fn spent(&self) -> u64 {
        match (self.backend, self.blobs.backend_calls()) {
            (Some((start, _)), Some((now, _))) => now.saturating_sub(start) + self.indexed.get(),
            _ => self.spent.get(),
        }
    }

    /// Whether `calls` more (each as many backend calls as one may make) fit the budget.
    pub fn affords(&self, calls: u64) -> bool {
        let most = self.backend.map_or(1, |(_, most)| most.max(1));
        self.spent() + calls * most <= self.budget
    }

    fn count(&self, calls: u64) {
        self.spent.set(self.spent.get() + calls);
    }

    pub async fn head(&self, key: &str) -> StorageResult<Option<ObjectInfo>> {
        self.count(1);
        self.blobs.head(key).await
    }

    pub async fn get_bytes(&self, key: &str) -> StorageResult<Option<(ObjectInfo, Vec<u8>)>> {
        self.count(1);
        self.blobs.get_bytes(key).await
    }

    pub async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> StorageResult<ListPage> {
        self.count(1);
        self.blobs.list(prefix, after, limit).await
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>, metadata: Metadata) -> StorageResult<ObjectInfo> {
        self.count(1);
        self.blobs.put_bytes(key, bytes, metadata).await
    }

    pub async fn put_if(
        &self,
        key: &str,
        bytes: Vec<u8>,
        metadata: Metadata,
        condition: PutIf<'_>,
    ) -> StorageResult<Option<ObjectInfo>> {
        self.count(1);
        self.blobs.put_bytes_if(key, bytes, metadata, condition).await
    }

    pub async fn delete(&self, key: &str) -> StorageResult<()> {
        self.count(1);
        self.blobs.delete(key).await
    }

    /// Deletes a page of keys (at most 1,000) in one call.
    pub async fn delete_page(&self, keys: &[String]) -> StorageResult<()> {
        self.count(1);
        self.blobs.delete_many(keys).await
    }

    pub async fn delete_indexed(&self, key: &str) -> StorageResult<()> {
        self.count(1);
        self.indexed.set(self.indexed.get() + 1);
        self.meta.delete(key).await
    }

    pub async fn state(&self, content: &str) -> StorageResult<content_state::ContentState> {
        self.count(1);
        content_state::read(self.blobs, content).await
    }

    pub async fn condemn(&self, content: &str, current: &content_state::ContentState, now: u64) -> StorageResult<bool> {
        self.count(1);
        content_state::condemn(self.blobs, content, current, now).await
    }

    pub async fn absolve(&self, content: &str, etag: &str) -> StorageResult<bool> {
        self.count(1);
        content_state::absolve(self.blobs, content, etag).await
    }

    pub async fn kill(&self, content: &str, etag: &str) -> StorageResult<bool> {
        self.count(1);
        content_state::kill(self.blobs, content, etag).await
    }

    /// `storage::retiring::retire`: swaps the version `etag` of `key` for a marker.
    pub async fn retire(&self, key: &str, etag: &str, now: u64) -> StorageResult<bool> {
        self.count(1);
        retiring::retire(self.blobs, key, etag, now).await
    }

    /// `storage::retiring::release`: deletes the marker this step wrote.
    pub async fn release(&self, key: &str) -> StorageResult<()> {
        self.count(1);
        retiring::release(self.blobs, key).await
    }

    pub async fn forget(&self, content: &str) -> StorageResult<()> {
        self.count(1);
        content_state::forget(self.blobs, content).await
    }
}
