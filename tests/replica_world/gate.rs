//! [`Gated`]: a memory bucket that holds reads and writes of one key until
//! `parties` of each have arrived, so that concurrent requests driven by `join!` on one
//! thread interleave exactly: all read, then all write. It records what happened.

use edge_registry::oci::{Algorithm, Digest};
use edge_registry::storage::cutter::StreamCutter;
use edge_registry::storage::memory::MemoryBlobStore;
use edge_registry::storage::{
    BlobStore, ByteRange, ByteStream, CutPart, ListPage, Metadata, NativePut, Object, ObjectInfo, PartReceipt, PutIf,
    StorageResult,
};
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

pub struct Gated {
    pub inner: MemoryBlobStore,
    pub key: String,
    pub parties: usize,
    reads: Rc<Cell<usize>>,
    writes: Rc<Cell<usize>>,
    /// `read`, `write won` and `write lost`, in the order they happened.
    pub trace: Rc<RefCell<Vec<&'static str>>>,
}

impl Gated {
    pub fn new(key: String, parties: usize) -> Self {
        Gated {
            inner: MemoryBlobStore::new(),
            key,
            parties,
            reads: Rc::default(),
            writes: Rc::default(),
            trace: Rc::default(),
        }
    }

    /// Arrives at a gate, then waits until `parties` have arrived there.
    async fn gate(&self, arrived: &Cell<usize>) {
        arrived.set(arrived.get() + 1);
        poll_fn(|cx| {
            if arrived.get() >= self.parties {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await
    }
}

impl BlobStore for Gated {
    type Body = Vec<u8>;
    type Native = ByteStream;

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectInfo>> {
        self.inner.head(key).await
    }
    async fn get(&self, key: &str, range: Option<ByteRange>) -> StorageResult<Option<Object<Vec<u8>>>> {
        self.inner.get(key, range).await
    }
    async fn get_bytes(&self, key: &str) -> StorageResult<Option<(ObjectInfo, Vec<u8>)>> {
        if key == self.key {
            let read = self.inner.get_bytes(key).await;
            self.trace.borrow_mut().push("read");
            self.gate(&self.reads).await;
            return read;
        }
        self.inner.get_bytes(key).await
    }
    async fn read_range(&self, key: &str, range: ByteRange) -> StorageResult<Option<Vec<u8>>> {
        self.inner.read_range(key, range).await
    }
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>, metadata: Metadata) -> StorageResult<ObjectInfo> {
        if key == self.key {
            self.gate(&self.writes).await;
            let written = self.inner.put_bytes(key, bytes, metadata).await;
            self.trace.borrow_mut().push("write won");
            return written;
        }
        self.inner.put_bytes(key, bytes, metadata).await
    }
    async fn put_bytes_if(
        &self,
        key: &str,
        bytes: Vec<u8>,
        metadata: Metadata,
        condition: PutIf<'_>,
    ) -> StorageResult<Option<ObjectInfo>> {
        if key == self.key {
            self.gate(&self.writes).await;
            let written = self.inner.put_bytes_if(key, bytes, metadata, condition).await;
            let outcome = if matches!(written, Ok(Some(_))) { "write won" } else { "write lost" };
            self.trace.borrow_mut().push(outcome);
            return written;
        }
        self.inner.put_bytes_if(key, bytes, metadata, condition).await
    }
    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.inner.delete(key).await
    }
    async fn put_verified(
        &self,
        key: &str,
        body: ByteStream,
        length: u64,
        digest: &Digest,
    ) -> StorageResult<NativePut<()>> {
        self.inner.put_verified(key, body, length, digest).await
    }
    async fn put_native(
        &self,
        key: &str,
        body: ByteStream,
        length: u64,
        algorithm: Algorithm,
    ) -> StorageResult<NativePut<Digest>> {
        self.inner.put_native(key, body, length, algorithm).await
    }
    async fn digest_object(&self, key: &str, algorithm: Algorithm) -> StorageResult<Option<Digest>> {
        self.inner.digest_object(key, algorithm).await
    }
    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> StorageResult<ListPage> {
        self.inner.list(prefix, start_after, limit).await
    }
    type Cutter = StreamCutter;
    fn cut_parts(
        &self,
        body: ByteStream,
        algorithm: Algorithm,
        limit: Option<u64>,
    ) -> Result<StreamCutter, ByteStream> {
        self.inner.cut_parts(body, algorithm, limit)
    }
    async fn upload_cut_part(
        &self,
        cutter: &mut StreamCutter,
        key: &str,
        id: &str,
        number: u16,
        part_size: u64,
    ) -> StorageResult<CutPart> {
        self.inner.upload_cut_part(cutter, key, id, number, part_size).await
    }
    async fn create_multipart(&self, key: &str) -> StorageResult<String> {
        self.inner.create_multipart(key).await
    }
    async fn upload_part(&self, key: &str, id: &str, part: u16, bytes: Vec<u8>) -> StorageResult<PartReceipt> {
        self.inner.upload_part(key, id, part, bytes).await
    }
    async fn complete_multipart(&self, key: &str, id: &str, parts: &[PartReceipt]) -> StorageResult<ObjectInfo> {
        self.inner.complete_multipart(key, id, parts).await
    }
    async fn abort_multipart(&self, key: &str, id: &str) -> StorageResult<()> {
        self.inner.abort_multipart(key, id).await
    }
}
