//! In-memory [`BlobStore`] (and, in `memory_kv`, [`MetaStore`]) for native tests. They enforce R2's and KV's
//! limits (key and value sizes, equal multipart parts) so the core cannot rely on anything
//! the real stores would refuse.

use super::cutter::StreamCutter;
use super::limits::*;
use super::{
    BlobStore, ByteRange, ByteStream, CutPart, ListPage, ListedKey, Metadata, NativePut, Object, ObjectInfo,
    PartReceipt, PutIf, StorageError, StorageResult,
};
use crate::oci::{Algorithm, Digest};
use futures::StreamExt;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

#[derive(Clone)]
struct StoredObject {
    bytes: Vec<u8>,
    etag: String,
    metadata: Metadata,
}

struct PendingMultipart {
    key: String,
    /// Each part's bytes with the etag its upload returned; a part uploaded again under the
    /// same number replaces the earlier one, as in R2.
    parts: BTreeMap<u16, (Vec<u8>, String)>,
}

/// R2 in memory.
#[derive(Default)]
pub struct MemoryBlobStore {
    objects: RefCell<BTreeMap<String, StoredObject>>,
    multipart: RefCell<BTreeMap<String, PendingMultipart>>,
    counter: Cell<u64>,
    /// R2's 5 GiB single-put limit, lowered by tests that check what happens above it.
    single_put_limit: Cell<Option<u64>>,
    native_puts: Cell<u64>,
    hash_reads: Cell<u64>,
}

fn limit(message: String) -> StorageError {
    StorageError::Limit(message)
}

fn check_key(key: &str) -> StorageResult<()> {
    if key.is_empty() || key.len() > R2_MAX_KEY_BYTES {
        return Err(limit(format!("R2 key of {} bytes", key.len())));
    }
    Ok(())
}

impl MemoryBlobStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn next_id(&self) -> String {
        self.counter.set(self.counter.get() + 1);
        format!("upload-{}", self.counter.get())
    }

    /// Lowers the single-put limit so tests can cross it with small blobs.
    pub fn set_single_put_limit(&self, bytes: u64) {
        self.single_put_limit.set(Some(bytes));
    }

    /// How many bodies, or parts of a body cut by the store, were taken natively
    /// (`put_verified`, `put_native`, `upload_cut_part`).
    pub fn native_puts(&self) -> u64 {
        self.native_puts.get()
    }

    /// How many stored objects were read back to be hashed (`digest_object`).
    pub fn hash_reads(&self) -> u64 {
        self.hash_reads.get()
    }

    /// All keys currently stored, for tests that check nothing leaked.
    pub fn keys(&self) -> Vec<String> {
        self.objects.borrow().keys().cloned().collect()
    }

    /// Multipart uploads begun and neither completed nor aborted.
    pub fn pending_multipart_uploads(&self) -> usize {
        self.multipart.borrow().len()
    }

    /// Overwrites an object's bytes in place, as a corrupting peer would.
    pub fn corrupt(&self, key: &str, bytes: Vec<u8>) {
        if let Some(obj) = self.objects.borrow_mut().get_mut(key) {
            obj.bytes = bytes;
        }
    }

    /// One put, checked against R2's limits and, if given, its condition, which is decided
    /// and applied in one step (the store is single-threaded), as R2 does atomically.
    /// `None` when the condition did not hold.
    fn store(
        &self,
        key: &str,
        bytes: Vec<u8>,
        metadata: Metadata,
        condition: Option<PutIf>,
    ) -> StorageResult<Option<ObjectInfo>> {
        check_key(key)?;
        let meta_size: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if meta_size > R2_MAX_METADATA_BYTES {
            return Err(limit(format!("R2 custom metadata of {meta_size} bytes")));
        }
        if bytes.len() as u64 > self.max_single_put() {
            return Err(limit(format!("single put of {} bytes is over the limit", bytes.len())));
        }
        let mut objects = self.objects.borrow_mut();
        let holds = match (condition, objects.get(key)) {
            (None, _) => true,
            (Some(PutIf::Absent), current) => current.is_none(),
            (Some(PutIf::EtagMatches(etag)), current) => current.is_some_and(|o| o.etag == etag),
        };
        if !holds {
            return Ok(None);
        }
        let obj = StoredObject { etag: md5_hex(&bytes), bytes, metadata };
        let info = Self::info(&obj);
        objects.insert(key.to_owned(), obj);
        Ok(Some(info))
    }

    fn info(obj: &StoredObject) -> ObjectInfo {
        ObjectInfo { size: obj.bytes.len() as u64, etag: obj.etag.clone(), metadata: obj.metadata.clone() }
    }
}

impl BlobStore for MemoryBlobStore {
    type Body = Vec<u8>;
    type Native = ByteStream;

    fn max_single_put(&self) -> u64 {
        self.single_put_limit.get().unwrap_or(R2_MAX_SINGLE_PUT_BYTES)
    }

    fn reuse_body(&self, body: Vec<u8>) -> Option<ByteStream> {
        Some(Box::pin(futures::stream::once(async move { Ok(body) })))
    }

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectInfo>> {
        check_key(key)?;
        Ok(self.objects.borrow().get(key).map(Self::info))
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> StorageResult<Option<Object<Vec<u8>>>> {
        check_key(key)?;
        let objects = self.objects.borrow();
        let Some(obj) = objects.get(key) else {
            return Ok(None);
        };
        let body = match range {
            None => obj.bytes.clone(),
            Some(r) => {
                let end = r.offset.checked_add(r.length).filter(|e| *e <= obj.bytes.len() as u64);
                let end = end.ok_or_else(|| StorageError::Backend(format!("range {r:?} outside object")))?;
                obj.bytes[r.offset as usize..end as usize].to_vec()
            }
        };
        Ok(Some(Object { info: Self::info(obj), body }))
    }

    async fn get_bytes(&self, key: &str) -> StorageResult<Option<(ObjectInfo, Vec<u8>)>> {
        check_key(key)?;
        Ok(self.objects.borrow().get(key).map(|o| (Self::info(o), o.bytes.clone())))
    }

    async fn read_range(&self, key: &str, range: ByteRange) -> StorageResult<Option<Vec<u8>>> {
        Ok(self.get(key, Some(range)).await?.map(|object| object.body))
    }

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>, metadata: Metadata) -> StorageResult<ObjectInfo> {
        Ok(self.store(key, bytes, metadata, None)?.expect("an unconditional put always lands"))
    }

    async fn put_bytes_if(
        &self,
        key: &str,
        bytes: Vec<u8>,
        metadata: Metadata,
        condition: PutIf<'_>,
    ) -> StorageResult<Option<ObjectInfo>> {
        self.store(key, bytes, metadata, Some(condition))
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        check_key(key)?;
        self.objects.borrow_mut().remove(key);
        Ok(())
    }

    async fn put_verified(
        &self,
        key: &str,
        body: ByteStream,
        length: u64,
        digest: &Digest,
    ) -> StorageResult<NativePut<()>> {
        self.native_puts.set(self.native_puts.get() + 1);
        let bytes = match collect(body, length).await {
            Ok(bytes) => bytes,
            Err(reason) => return Ok(NativePut::Interrupted(reason)),
        };
        if digest.algorithm().digest_of(&bytes) != *digest {
            return Ok(NativePut::DigestMismatch);
        }
        self.put_bytes(key, bytes, Metadata::new()).await?;
        Ok(NativePut::Stored(()))
    }

    async fn put_native(
        &self,
        key: &str,
        body: ByteStream,
        length: u64,
        algorithm: Algorithm,
    ) -> StorageResult<NativePut<Digest>> {
        self.native_puts.set(self.native_puts.get() + 1);
        let bytes = match collect(body, length).await {
            Ok(bytes) => bytes,
            Err(reason) => return Ok(NativePut::Interrupted(reason)),
        };
        let digest = algorithm.digest_of(&bytes);
        self.put_bytes(key, bytes, Metadata::new()).await?;
        Ok(NativePut::Stored(digest))
    }

    async fn digest_object(&self, key: &str, algorithm: Algorithm) -> StorageResult<Option<Digest>> {
        check_key(key)?;
        self.hash_reads.set(self.hash_reads.get() + 1);
        Ok(self.objects.borrow().get(key).map(|o| algorithm.digest_of(&o.bytes)))
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> StorageResult<ListPage> {
        let limit = limit.clamp(1, R2_MAX_LIST);
        let objects = self.objects.borrow();
        // A range scan from the later of the prefix and `start_after`: R2's order, without
        // walking the whole map (the collector's scale test lists a registry of 100,000 blobs).
        use std::ops::Bound;
        let from = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after.to_owned()),
            _ => Bound::Included(prefix.to_owned()),
        };
        let mut matching = objects
            .range::<String, _>((from, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| start_after.is_none_or(|after| k.as_str() > after));
        let keys: Vec<ListedKey> = matching
            .by_ref()
            .take(limit)
            .map(|(k, o)| ListedKey { key: k.clone(), metadata: o.metadata.clone() })
            .collect();
        let truncated = matching.next().is_some();
        Ok(ListPage { keys, truncated })
    }

    type Cutter = StreamCutter;

    fn cut_parts(
        &self,
        body: ByteStream,
        algorithm: Algorithm,
        limit: Option<u64>,
    ) -> Result<StreamCutter, ByteStream> {
        Ok(StreamCutter::new(body, algorithm, limit))
    }

    async fn upload_cut_part(
        &self,
        cutter: &mut StreamCutter,
        key: &str,
        upload_id: &str,
        number: u16,
        part_size: u64,
    ) -> StorageResult<CutPart> {
        let part = cutter.fill(part_size).await;
        if part.is_empty() {
            return Ok(cutter.outcome());
        }
        self.native_puts.set(self.native_puts.get() + 1);
        Ok(CutPart::Uploaded(self.upload_part(key, upload_id, number, part).await?))
    }

    async fn create_multipart(&self, key: &str) -> StorageResult<String> {
        check_key(key)?;
        let id = self.next_id();
        self.multipart
            .borrow_mut()
            .insert(id.clone(), PendingMultipart { key: key.to_owned(), parts: BTreeMap::new() });
        Ok(id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u16,
        bytes: Vec<u8>,
    ) -> StorageResult<PartReceipt> {
        if part_number == 0 || part_number > R2_MAX_PARTS {
            return Err(limit(format!("R2 part number {part_number}")));
        }
        if bytes.len() as u64 > R2_MAX_PART_BYTES {
            return Err(limit("R2 part over 5 GiB".into()));
        }
        let etag = md5_hex(&bytes);
        let mut uploads = self.multipart.borrow_mut();
        let upload = uploads
            .get_mut(upload_id)
            .filter(|u| u.key == key)
            .ok_or_else(|| StorageError::Backend(format!("no multipart upload {upload_id} for {key}")))?;
        let size = bytes.len() as u64;
        upload.parts.insert(part_number, (bytes, etag.clone()));
        Ok(PartReceipt { part_number, etag, size })
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[PartReceipt]) -> StorageResult<ObjectInfo> {
        // As in R2, a completion that fails leaves the upload open.
        let uploads = self.multipart.borrow();
        let upload = uploads
            .get(upload_id)
            .filter(|u| u.key == key)
            .ok_or_else(|| StorageError::Backend(format!("no multipart upload {upload_id} for {key}")))?;
        if parts.is_empty() {
            return Err(limit("R2 multipart completed with no parts".into()));
        }
        let mut bytes = Vec::new();
        let mut part_md5s = Vec::new();
        let first_size = parts[0].size;
        for (i, receipt) in parts.iter().enumerate() {
            // R2 completes only with the etag each part's upload returned: a part uploaded
            // again since (another writer) makes the completion fail.
            let (part, _) =
                upload.parts.get(&receipt.part_number).filter(|(_, etag)| *etag == receipt.etag).ok_or_else(|| {
                    StorageError::Backend(format!(
                        "part {} with etag {} is not in the upload",
                        receipt.part_number, receipt.etag
                    ))
                })?;
            let is_last = i + 1 == parts.len();
            if !is_last && (part.len() as u64) < R2_MIN_PART_BYTES {
                return Err(limit(format!("R2 part {} of {} bytes is under 5 MiB", receipt.part_number, part.len())));
            }
            if !is_last && part.len() as u64 != first_size {
                return Err(limit("R2 parts other than the last must all be the same size".into()));
            }
            if is_last && part.len() as u64 > first_size {
                return Err(limit("R2 last part is larger than the others".into()));
            }
            bytes.extend_from_slice(part);
            part_md5s.extend_from_slice(&<md5::Md5 as md5::Digest>::digest(part));
        }
        if parts.windows(2).any(|w| w[0].part_number >= w[1].part_number) {
            return Err(limit("R2 parts must be listed in ascending order".into()));
        }
        // As S3 and R2 name a multipart object: the MD5 of the parts' MD5s, and the count.
        let etag = format!("{}-{}", md5_hex(&part_md5s), parts.len());
        drop(uploads);
        self.multipart.borrow_mut().remove(upload_id);
        let obj = StoredObject { bytes, etag, metadata: Metadata::new() };
        let info = Self::info(&obj);
        self.objects.borrow_mut().insert(key.to_owned(), obj);
        Ok(info)
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StorageResult<()> {
        let mut uploads = self.multipart.borrow_mut();
        if uploads.get(upload_id).is_some_and(|u| u.key == key) {
            uploads.remove(upload_id);
        }
        Ok(())
    }
}

/// The etag R2 gives a single put: the hex MD5 of its bytes.
fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    crate::oci::digest::to_hex(&md5::Md5::digest(bytes))
}

/// Reads a native body whole, as R2 would consume it: exactly `length` bytes or an error.
async fn collect(mut body: ByteStream, length: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk?);
        if bytes.len() as u64 > length {
            return Err(format!("body is longer than its declared {length} bytes"));
        }
    }
    if (bytes.len() as u64) < length {
        return Err(format!("body ended after {} of {length} bytes", bytes.len()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn multipart_enforces_equal_parts_of_at_least_5_mib() {
        block_on(async {
            let store = MemoryBlobStore::new();
            let id = store.create_multipart("k").await.unwrap();
            let a = store.upload_part("k", &id, 1, vec![0; 4 * MIB]).await.unwrap();
            let b = store.upload_part("k", &id, 2, vec![0; 10]).await.unwrap();
            assert!(matches!(store.complete_multipart("k", &id, &[a, b]).await, Err(StorageError::Limit(_))));
            store.abort_multipart("k", &id).await.unwrap();

            let id = store.create_multipart("k").await.unwrap();
            let a = store.upload_part("k", &id, 1, vec![1; 5 * MIB]).await.unwrap();
            let b = store.upload_part("k", &id, 2, vec![2; 6 * MIB]).await.unwrap();
            let c = store.upload_part("k", &id, 3, vec![3; 1]).await.unwrap();
            assert!(store.complete_multipart("k", &id, &[a, b, c]).await.is_err());
            store.abort_multipart("k", &id).await.unwrap();

            let id = store.create_multipart("k").await.unwrap();
            let a = store.upload_part("k", &id, 1, vec![1; 5 * MIB]).await.unwrap();
            let b = store.upload_part("k", &id, 2, vec![2; 3]).await.unwrap();
            let info = store.complete_multipart("k", &id, &[a, b]).await.unwrap();
            assert_eq!(info.size, 5 * MIB as u64 + 3);
            assert_eq!(store.pending_multipart_uploads(), 0);
        });
    }

    #[test]
    fn listing_is_sorted_and_paged() {
        block_on(async {
            let r2 = MemoryBlobStore::new();
            for k in ["p/b", "p/a", "p/c", "q/a"] {
                r2.put_bytes(k, vec![], Metadata::new()).await.unwrap();
            }
            let page = r2.list("p/", Some("p/a"), 1).await.unwrap();
            assert_eq!(page.keys[0].key, "p/b");
            assert!(page.truncated);
            let page = r2.list("p/", Some("p/b"), 5).await.unwrap();
            assert_eq!(page.keys.len(), 1);
            assert!(!page.truncated);
        });
    }

    #[test]
    fn etags_are_md5_and_conditional_puts_compare_and_swap() {
        block_on(async {
            let r2 = MemoryBlobStore::new();
            // MD5("abc"), as local R2 names a single put.
            let first = r2.put_bytes_if("k", b"abc".to_vec(), Metadata::new(), PutIf::Absent).await.unwrap().unwrap();
            assert_eq!(first.etag, "900150983cd24fb0d6963f7d28e17f72");
            assert_eq!(r2.put_bytes_if("k", b"x".to_vec(), Metadata::new(), PutIf::Absent).await.unwrap(), None);
            // Two writers that read the same version: the first wins, the second changes nothing.
            let a = r2.put_bytes_if("k", b"a".to_vec(), Metadata::new(), PutIf::EtagMatches(&first.etag)).await;
            let b = r2.put_bytes_if("k", b"b".to_vec(), Metadata::new(), PutIf::EtagMatches(&first.etag)).await;
            assert!(a.unwrap().is_some());
            assert_eq!(b.unwrap(), None);
            assert_eq!(r2.get_bytes("k").await.unwrap().unwrap().1, b"a");
            // No object: an etag condition fails.
            assert_eq!(r2.put_bytes_if("gone", vec![], Metadata::new(), PutIf::EtagMatches("x")).await.unwrap(), None);
        });
    }

    #[test]
    fn a_part_uploaded_again_makes_completion_with_the_old_receipt_fail() {
        block_on(async {
            let r2 = MemoryBlobStore::new();
            let id = r2.create_multipart("k").await.unwrap();
            let first = r2.upload_part("k", &id, 1, vec![1; 5 * MIB]).await.unwrap();
            let again = r2.upload_part("k", &id, 1, vec![2; 5 * MIB]).await.unwrap();
            assert_ne!(first.etag, again.etag);
            assert!(r2.complete_multipart("k", &id, &[first]).await.is_err());
            let info = r2.complete_multipart("k", &id, &[again]).await.unwrap();
            assert!(info.etag.ends_with("-1"), "multipart etag {}", info.etag);
        });
    }
}
