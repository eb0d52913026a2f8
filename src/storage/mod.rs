//! Ports to storage: [`BlobStore`] (R2: strongly consistent objects, multipart uploads) and
//! [`MetaStore`] (KV: an eventually consistent, fast-read index), every key format in
//! [`keys`], every metadata field stored beside an object in [`fields`], and in-memory test
//! doubles in [`memory`] that enforce R2's and KV's limits.
//!
//! This module may call nothing but `oci` and `ids` (for key formats). The traits use `async fn`
//! without `Send` bounds on purpose: on Workers everything runs on one thread, and the
//! JavaScript handles behind R2 and KV are not `Send`.

pub mod content_state;
pub mod cutter;
pub mod faulty;
pub mod fields;
pub mod keys;
pub mod limits;
pub mod memory;
pub mod memory_kv;
pub mod put_failure;
pub mod retiring;

pub use cutter::CutPart;

use crate::oci::{Algorithm, Digest};
use std::collections::BTreeMap;

/// A failure of the storage backend. Never caused by client input: a `Backend` failure
/// becomes a 503 with `Retry-After` (the client retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("storage backend failed: {0}")]
    Backend(String),
    #[error("storage limit exceeded: {0}")]
    Limit(String),
}

pub type StorageResult<T> = Result<T, StorageError>;

/// A body arriving in pieces through wasm; an `Err` means the client stream broke.
pub type ByteStream = futures::stream::LocalBoxStream<'static, Result<Vec<u8>, String>>;

/// Custom metadata stored beside an object (R2 `customMetadata`).
pub type Metadata = BTreeMap<String, String>;

/// What a HEAD of an object returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub etag: String,
    pub metadata: Metadata,
}

/// A byte range already resolved against the object's size: `length` bytes from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

/// An object opened for reading: its info and a body the runtime can stream.
pub struct Object<B> {
    pub info: ObjectInfo,
    pub body: B,
}

/// One key of a listing, with its custom metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedKey {
    pub key: String,
    pub metadata: Metadata,
}

/// A page of a listing in ascending key order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub keys: Vec<ListedKey>,
    /// More keys follow the last one returned.
    pub truncated: bool,
}

/// The receipt for one uploaded multipart part, needed to complete the upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartReceipt {
    pub part_number: u16,
    pub etag: String,
    pub size: u64,
}

/// A condition on a put (R2 `onlyIf`): the object is written only if it holds, and
/// atomically with the check, so two writers that read the same version cannot both win.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutIf<'a> {
    /// No object is stored under the key (create-only; R2 `etagDoesNotMatch: "*"`).
    Absent,
    /// The object under the key has exactly this etag (R2 `etagMatches`): a
    /// compare-and-swap against the version the writer read.
    EtagMatches(&'a str),
}

/// How a native put ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativePut<T> {
    /// Stored.
    Stored(T),
    /// The bytes did not hash to the expected digest: nothing was stored.
    DigestMismatch,
    /// The body ended early or broke: nothing was stored.
    Interrupted(String),
}

impl<T> NativePut<T> {
    /// The same outcome with what a stored put returns changed by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> NativePut<U> {
        match self {
            NativePut::Stored(t) => NativePut::Stored(f(t)),
            NativePut::DigestMismatch => NativePut::DigestMismatch,
            NativePut::Interrupted(reason) => NativePut::Interrupted(reason),
        }
    }
}

/// Object storage with R2's semantics: strong consistency, sorted listings, multipart
/// uploads whose parts are all the same size except the last.
#[allow(async_fn_in_trait)]
pub trait BlobStore {
    /// A streamable body; on Workers an R2 stream handed to the response untouched.
    type Body;
    /// A request body the store can consume without it passing through wasm.
    type Native: 'static;

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectInfo>>;
    /// Opens an object, or the given part of it, for streaming.
    async fn get(&self, key: &str, range: Option<ByteRange>) -> StorageResult<Option<Object<Self::Body>>>;
    /// Reads a small object whole (session state, manifests, records).
    async fn get_bytes(&self, key: &str) -> StorageResult<Option<(ObjectInfo, Vec<u8>)>>;
    /// The largest object one put may store (R2: 5 GiB); bigger ones go multipart.
    fn max_single_put(&self) -> u64 {
        limits::R2_MAX_SINGLE_PUT_BYTES
    }
    /// A copy of immutable content that the platform keeps near the client (on Workers, the
    /// Cache API), by a name from [`keys::cache_name`]. Consulted only after the access
    /// check; a store without such a cache has none.
    async fn cached(&self, _name: &str) -> StorageResult<Option<Object<Self::Body>>> {
        Ok(None)
    }
    /// The body of an object read from this store as a body this store can put again
    /// (copying an object between replicas without it passing through wasm); `None` when
    /// the store cannot, and the caller copies through memory.
    fn reuse_body(&self, _body: Self::Body) -> Option<Self::Native> {
        None
    }
    /// Reads part of an object into memory (re-hashing a blob one part at a time).
    async fn read_range(&self, key: &str, range: ByteRange) -> StorageResult<Option<Vec<u8>>>;
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>, metadata: Metadata) -> StorageResult<ObjectInfo>;
    /// Like [`BlobStore::put_bytes`], but only if `condition` holds when the write lands;
    /// `Ok(None)` when it did not (nothing was written).
    async fn put_bytes_if(
        &self,
        key: &str,
        bytes: Vec<u8>,
        metadata: Metadata,
        condition: PutIf<'_>,
    ) -> StorageResult<Option<ObjectInfo>>;
    /// The object that a [`BlobStore::put_bytes_if`] of `key` is checked against: with one
    /// bucket, [`BlobStore::head`]; with replicas, the copy in the replica that decides
    /// conditional puts, so that a writer whose put did not land sees what won.
    async fn head_for_condition(&self, key: &str) -> StorageResult<Option<ObjectInfo>> {
        self.head(key).await
    }
    async fn delete(&self, key: &str) -> StorageResult<()>;
    /// Deletes up to [`limits::R2_MAX_LIST`] keys, in one call where the store can (R2:
    /// `delete(keys[])`); by default one at a time.
    async fn delete_many(&self, keys: &[String]) -> StorageResult<()> {
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }
    /// Stores `length` bytes of `body` under `key` only if they hash to `digest`; the store
    /// verifies (R2: the put's sha256/sha512 checksum), so nothing unverified is ever visible.
    async fn put_verified(
        &self,
        key: &str,
        body: Self::Native,
        length: u64,
        digest: &Digest,
    ) -> StorageResult<NativePut<()>>;
    /// Stores `length` bytes of `body` under `key` as they come (not visible under any
    /// digest), and hashes them with `algorithm` on the way in: the digest of exactly the
    /// bytes stored, for the caller to check before publishing them under a digest.
    async fn put_native(
        &self,
        key: &str,
        body: Self::Native,
        length: u64,
        algorithm: Algorithm,
    ) -> StorageResult<NativePut<Digest>>;
    /// The digest of a stored object, computed by the store (on Workers by the runtime's
    /// `crypto.DigestStream` over the R2 stream, never in wasm); `None` if there is none.
    async fn digest_object(&self, key: &str, algorithm: Algorithm) -> StorageResult<Option<Digest>>;
    /// Lists keys under `prefix` strictly after `start_after`, at most `limit` (<= 1000).
    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> StorageResult<ListPage>;

    /// For a store over several copies (replicas), which make several backend calls per
    /// call: the backend calls made so far and the most one call may make. `None` (one
    /// bucket): every call is one backend call. The garbage collector's budget counts these.
    fn backend_calls(&self) -> Option<(u64, u64)> {
        None
    }
    /// The copies (replicas) that some call since the last take could not reach, so that
    /// its answer may lack what they hold (the garbage collector's view only; others fail
    /// or fall back instead). Always empty for one bucket: a call that cannot reach it fails.
    fn take_unreached(&self) -> Vec<String> {
        Vec::new()
    }

    /// The store's reader of a body of unknown length (see [`cutter`]); the body back when
    /// this store has none, and it is read through wasm instead. `limit`: the most bytes
    /// one request body may bring.
    type Cutter;
    fn cut_parts(
        &self,
        body: Self::Native,
        algorithm: Algorithm,
        limit: Option<u64>,
    ) -> Result<Self::Cutter, Self::Native>;
    /// Reads the next `part_size` bytes (fewer at the end) from `cutter` and uploads them
    /// as part `number` of the multipart upload `upload_id` of `key`; once the body is
    /// read, says how it ended.
    async fn upload_cut_part(
        &self,
        cutter: &mut Self::Cutter,
        key: &str,
        upload_id: &str,
        number: u16,
        part_size: u64,
    ) -> StorageResult<CutPart>;

    async fn create_multipart(&self, key: &str) -> StorageResult<String>;
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u16,
        bytes: Vec<u8>,
    ) -> StorageResult<PartReceipt>;
    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[PartReceipt]) -> StorageResult<ObjectInfo>;
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StorageResult<()>;
}

/// A value read from the key-value index, with its small metadata string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEntry {
    pub value: Vec<u8>,
    pub metadata: Option<String>,
}

/// Key-value storage with KV's semantics: fast reads at the edge, eventual consistency.
/// Only ever used for content-addressed (immutable) entries, so a stale read is never wrong;
/// a miss falls back to the [`BlobStore`].
#[allow(async_fn_in_trait)]
pub trait MetaStore {
    async fn get(&self, key: &str) -> StorageResult<Option<MetaEntry>>;
    async fn put(&self, key: &str, value: Vec<u8>, metadata: Option<String>) -> StorageResult<()>;
    async fn delete(&self, key: &str) -> StorageResult<()>;
}

/// A shared index (one KV namespace behind every request of a test or an isolate).
impl<M: MetaStore> MetaStore for std::rc::Rc<M> {
    async fn get(&self, key: &str) -> StorageResult<Option<MetaEntry>> {
        (**self).get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>, metadata: Option<String>) -> StorageResult<()> {
        (**self).put(key, value, metadata).await
    }
    async fn delete(&self, key: &str) -> StorageResult<()> {
        (**self).delete(key).await
    }
}

/// Every key under `prefix`, in order, with its metadata: pages through listings of at
/// most 1,000 keys. For prefixes that stay small (a repository's tags, a subject's
/// referrers, open uploads, access tokens).
pub async fn list_all<B: BlobStore>(store: &B, prefix: &str) -> StorageResult<Vec<ListedKey>> {
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(prefix, after.as_deref(), limits::R2_MAX_LIST).await?;
        let next = page.keys.last().map(|k| k.key.clone());
        keys.extend(page.keys);
        match (page.truncated, next) {
            (true, Some(last)) => after = Some(last),
            _ => return Ok(keys),
        }
    }
}
