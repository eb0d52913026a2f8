//! [`FaultyBlobStore`]: failure injection around any [`BlobStore`], for tests of what a
//! storage outage does. It delegates every operation to the store it wraps, except those a
//! test has told it to fail, which answer `Err(StorageError::Backend)` as an unreachable
//! R2 bucket would. It can also hold chosen operations until the test releases them (so a
//! request polled by hand stops between two storage calls while another runs), and run a
//! hook before an operation (to move a test clock). Nothing in production builds one.

use super::{
    BlobStore, ByteRange, CutPart, ListPage, Metadata, NativePut, Object, ObjectInfo, PartReceipt, PutIf, StorageError,
    StorageResult,
};
use crate::oci::{Algorithm, Digest};
use std::cell::{Cell, RefCell};

/// A storage operation, as a fault rule names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Head,
    Get,
    GetBytes,
    ReadRange,
    PutBytes,
    Delete,
    PutVerified,
    PutNative,
    DigestObject,
    List,
    CreateMultipart,
    UploadPart,
    CompleteMultipart,
    AbortMultipart,
}

/// Fail `op` (or every operation, with `None`) on keys containing `key` ("" for all).
#[derive(Debug, Clone)]
struct Rule {
    op: Option<Op>,
    key: String,
    /// Failures left; `None` for as long as the rule stands.
    remaining: Option<usize>,
}

/// What [`FaultyBlobStore::before`] runs.
type Hook = Box<dyn Fn()>;

/// A [`BlobStore`] that fails chosen operations on chosen keys, on demand.
pub struct FaultyBlobStore<B> {
    inner: B,
    rules: RefCell<Vec<Rule>>,
    injected: Cell<usize>,
    /// Operations held until [`FaultyBlobStore::release`]: an op on keys containing a key.
    holds: RefCell<Vec<(Op, String)>>,
    waiting: Cell<usize>,
    /// Run before every call of an op.
    hooks: RefCell<Vec<(Op, Hook)>>,
}

impl<B> FaultyBlobStore<B> {
    pub fn new(inner: B) -> Self {
        FaultyBlobStore {
            inner,
            rules: RefCell::new(Vec::new()),
            injected: Cell::new(0),
            holds: RefCell::new(Vec::new()),
            waiting: Cell::new(0),
            hooks: RefCell::new(Vec::new()),
        }
    }

    /// The wrapped store, to inspect what was really stored.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Fails every `op` on keys containing `key` until [`FaultyBlobStore::heal`].
    pub fn fail(&self, op: Op, key: &str) {
        self.rules.borrow_mut().push(Rule { op: Some(op), key: key.to_owned(), remaining: None });
    }

    /// Fails the next `times` calls of `op` on keys containing `key`.
    pub fn fail_times(&self, op: Op, key: &str, times: usize) {
        self.rules.borrow_mut().push(Rule { op: Some(op), key: key.to_owned(), remaining: Some(times) });
    }

    /// Fails every operation on every key: the bucket is down.
    pub fn fail_everything(&self) {
        self.rules.borrow_mut().push(Rule { op: None, key: String::new(), remaining: None });
    }

    /// Removes every rule: the bucket is back.
    pub fn heal(&self) {
        self.rules.borrow_mut().clear();
    }

    /// How many failures were injected so far.
    pub fn injected(&self) -> usize {
        self.injected.get()
    }

    /// Holds every `op` on keys containing `key` (`PutBytes` holds conditional puts too)
    /// until [`FaultyBlobStore::release`]: the request making it stays pending. A hold wakes
    /// no one: the test polls the held request by hand.
    pub fn hold(&self, op: Op, key: &str) {
        self.holds.borrow_mut().push((op, key.to_owned()));
    }

    /// Lets every held operation go on, when its request is next polled.
    pub fn release(&self) {
        self.holds.borrow_mut().clear();
    }

    /// How many operations are waiting at a hold.
    pub fn waiting(&self) -> usize {
        self.waiting.get()
    }

    /// Runs `hook` before every call of `op`.
    pub fn before(&self, op: Op, hook: impl Fn() + 'static) {
        self.hooks.borrow_mut().push((op, Box::new(hook)));
    }

    fn held(&self, op: Op, key: &str) -> bool {
        self.holds.borrow().iter().any(|(o, k)| *o == op && key.contains(k.as_str()))
    }

    /// Before `op` on `key`: its hooks, any hold, then the fault rules.
    async fn enter(&self, op: Op, key: &str) -> StorageResult<()> {
        for (_, hook) in self.hooks.borrow().iter().filter(|(o, _)| *o == op) {
            hook();
        }
        if self.held(op, key) {
            self.waiting.set(self.waiting.get() + 1);
            std::future::poll_fn(|_| match self.held(op, key) {
                true => std::task::Poll::Pending,
                false => std::task::Poll::Ready(()),
            })
            .await;
            self.waiting.set(self.waiting.get() - 1);
        }
        self.check(op, key)
    }

    /// `Err` if a rule fails `op` on `key` now (using up one of a counted rule's failures).
    fn check(&self, op: Op, key: &str) -> StorageResult<()> {
        let mut rules = self.rules.borrow_mut();
        let hit = rules.iter_mut().find(|r| {
            r.op.is_none_or(|o| o == op) && key.contains(r.key.as_str()) && r.remaining.is_none_or(|n| n > 0)
        });
        let Some(rule) = hit else { return Ok(()) };
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        self.injected.set(self.injected.get() + 1);
        Err(StorageError::Backend(format!("injected fault: {op:?} {key}")))
    }
}

impl<B> std::ops::Deref for FaultyBlobStore<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.inner
    }
}

impl<B: BlobStore> BlobStore for FaultyBlobStore<B> {
    type Body = B::Body;
    type Native = B::Native;

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectInfo>> {
        self.enter(Op::Head, key).await?;
        self.inner.head(key).await
    }
    async fn get(&self, key: &str, range: Option<ByteRange>) -> StorageResult<Option<Object<B::Body>>> {
        self.enter(Op::Get, key).await?;
        self.inner.get(key, range).await
    }
    async fn get_bytes(&self, key: &str) -> StorageResult<Option<(ObjectInfo, Vec<u8>)>> {
        self.enter(Op::GetBytes, key).await?;
        self.inner.get_bytes(key).await
    }
    fn max_single_put(&self) -> u64 {
        self.inner.max_single_put()
    }
    async fn cached(&self, name: &str) -> StorageResult<Option<Object<B::Body>>> {
        self.inner.cached(name).await
    }
    fn reuse_body(&self, body: B::Body) -> Option<B::Native> {
        self.inner.reuse_body(body)
    }
    async fn read_range(&self, key: &str, range: ByteRange) -> StorageResult<Option<Vec<u8>>> {
        self.enter(Op::ReadRange, key).await?;
        self.inner.read_range(key, range).await
    }
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>, metadata: Metadata) -> StorageResult<ObjectInfo> {
        self.enter(Op::PutBytes, key).await?;
        self.inner.put_bytes(key, bytes, metadata).await
    }
    /// Counted as a put: a rule on `PutBytes` fails conditional puts of the key too.
    async fn put_bytes_if(
        &self,
        key: &str,
        bytes: Vec<u8>,
        metadata: Metadata,
        condition: PutIf<'_>,
    ) -> StorageResult<Option<ObjectInfo>> {
        self.enter(Op::PutBytes, key).await?;
        self.inner.put_bytes_if(key, bytes, metadata, condition).await
    }
    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.enter(Op::Delete, key).await?;
        self.inner.delete(key).await
    }
    /// A failed verified put consumes nothing of the body: like R2 refusing the request.
    async fn put_verified(
        &self,
        key: &str,
        body: B::Native,
        length: u64,
        digest: &Digest,
    ) -> StorageResult<NativePut<()>> {
        self.enter(Op::PutVerified, key).await?;
        self.inner.put_verified(key, body, length, digest).await
    }
    async fn put_native(
        &self,
        key: &str,
        body: B::Native,
        length: u64,
        algorithm: Algorithm,
    ) -> StorageResult<NativePut<Digest>> {
        self.enter(Op::PutNative, key).await?;
        self.inner.put_native(key, body, length, algorithm).await
    }
    async fn digest_object(&self, key: &str, algorithm: Algorithm) -> StorageResult<Option<Digest>> {
        self.enter(Op::DigestObject, key).await?;
        self.inner.digest_object(key, algorithm).await
    }
    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> StorageResult<ListPage> {
        self.enter(Op::List, prefix).await?;
        self.inner.list(prefix, start_after, limit).await
    }
    type Cutter = B::Cutter;

    fn cut_parts(&self, body: B::Native, algorithm: Algorithm, limit: Option<u64>) -> Result<B::Cutter, B::Native> {
        self.inner.cut_parts(body, algorithm, limit)
    }

    async fn upload_cut_part(
        &self,
        cutter: &mut B::Cutter,
        key: &str,
        upload_id: &str,
        number: u16,
        part_size: u64,
    ) -> StorageResult<CutPart> {
        self.enter(Op::UploadPart, key).await?;
        self.inner.upload_cut_part(cutter, key, upload_id, number, part_size).await
    }

    async fn create_multipart(&self, key: &str) -> StorageResult<String> {
        self.enter(Op::CreateMultipart, key).await?;
        self.inner.create_multipart(key).await
    }
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u16,
        bytes: Vec<u8>,
    ) -> StorageResult<PartReceipt> {
        self.enter(Op::UploadPart, key).await?;
        self.inner.upload_part(key, upload_id, part_number, bytes).await
    }
    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[PartReceipt]) -> StorageResult<ObjectInfo> {
        self.enter(Op::CompleteMultipart, key).await?;
        self.inner.complete_multipart(key, upload_id, parts).await
    }
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StorageResult<()> {
        self.enter(Op::AbortMultipart, key).await?;
        self.inner.abort_multipart(key, upload_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryBlobStore;
    use futures::executor::block_on;

    #[test]
    fn fails_only_what_it_is_told_then_heals() {
        let store = FaultyBlobStore::new(MemoryBlobStore::new());
        block_on(store.put_bytes("a/1", b"x".to_vec(), Metadata::new())).unwrap();
        store.fail(Op::Head, "a/");
        assert!(matches!(block_on(store.head("a/1")), Err(StorageError::Backend(_))));
        assert!(block_on(store.head("b/1")).unwrap().is_none(), "other keys are untouched");
        assert!(block_on(store.get_bytes("a/1")).unwrap().is_some(), "other operations are untouched");
        store.heal();
        assert!(block_on(store.head("a/1")).unwrap().is_some());
        store.fail_times(Op::Delete, "", 1);
        assert!(block_on(store.delete("a/1")).is_err());
        assert!(block_on(store.delete("a/1")).is_ok(), "a counted rule runs out");
        store.fail_everything();
        assert!(block_on(store.list("a/", None, 10)).is_err());
        assert_eq!(store.injected(), 3);
    }
}
