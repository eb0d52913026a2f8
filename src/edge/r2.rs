//! The [`BlobStore`] port over an R2 bucket. Object bodies are handed on as JavaScript
//! streams (`ResponseBody::Stream`), so blob bytes never pass through wasm on a pull.

use super::background::Background;
use super::native::{digest_of_stream, RuntimeCutter, TrackedBody};
use crate::oci::digest::{from_hex, to_hex};
use crate::oci::{Algorithm, Digest};
use crate::storage::put_failure::classify_put_failure;
use crate::storage::{
    BlobStore, ByteRange, CutPart, ListPage, ListedKey, Metadata, NativePut, Object, ObjectInfo, PartReceipt, PutIf,
    StorageError, StorageResult,
};
use std::collections::HashMap;
use web_sys::ReadableStream;
use worker::{Bucket, Cache, Conditional, Data, Include, Range, ResponseBody, UploadedPart};

pub struct R2Store {
    bucket: Bucket,
    /// Where work that outlives the request goes (see [`Background`]).
    background: Background,
}

impl R2Store {
    pub fn new(bucket: Bucket, background: Background) -> Self {
        R2Store { bucket, background }
    }
}

fn backend(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(format!("R2: {e}"))
}

fn info(object: &worker::Object) -> ObjectInfo {
    let metadata: Metadata = object.custom_metadata().unwrap_or_default().into_iter().collect();
    ObjectInfo { size: object.size(), etag: object.etag(), metadata }
}

/// Puts a request body, counted on its way in, and says whose fault a failure was: the
/// rule is [`classify_put_failure`]'s (a body that broke or ended short, or R2's BadDigest
/// code, is the client's; anything else is R2's and an `Err`).
/// What a counted put checks: R2 verifies a checksum, or the runtime hashes the body.
enum Check {
    Checksum(Algorithm, Vec<u8>),
    Hash(Algorithm),
}

/// Puts a request body, counted on its way in, and says whose fault a failure was; with
/// [`Check::Hash`], also the digest of the bytes stored.
async fn counted_put(
    bucket: &Bucket,
    key: &str,
    body: ReadableStream,
    length: u64,
    check: Check,
) -> StorageResult<NativePut<Option<Digest>>> {
    let hashing = match check {
        Check::Hash(algorithm) => Some(algorithm),
        Check::Checksum(..) => None,
    };
    let tracked = TrackedBody::new(body, length, hashing);
    let put = bucket.put(key, Data::ReadableStream(tracked.stream.clone()));
    let put = match check {
        Check::Checksum(Algorithm::Sha256, raw) => put.sha256(raw),
        Check::Checksum(Algorithm::Sha512, raw) => put.sha512(raw),
        Check::Hash(_) => put,
    };
    match put.execute().await {
        Ok(_) => Ok(NativePut::Stored(tracked.digest().await)),
        Err(e) => Ok(classify_put_failure(&e.to_string(), &tracked.report(), length)?.map(|()| None)),
    }
}

impl BlobStore for R2Store {
    type Body = ResponseBody;
    type Native = ReadableStream;

    fn reuse_body(&self, body: ResponseBody) -> Option<ReadableStream> {
        match body {
            ResponseBody::Stream(stream) => Some(stream),
            _ => None,
        }
    }

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectInfo>> {
        Ok(self.bucket.head(key).await.map_err(backend)?.as_ref().map(info))
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> StorageResult<Option<Object<ResponseBody>>> {
        let mut get = self.bucket.get(key);
        if let Some(r) = range {
            get = get.range(Range::OffsetWithLength { offset: r.offset, length: r.length });
        }
        let Some(object) = get.execute().await.map_err(backend)? else {
            return Ok(None);
        };
        let info = info(&object);
        let body = object.body().ok_or_else(|| backend("object has no body"))?;
        Ok(Some(Object { info, body: body.response_body().map_err(backend)? }))
    }

    async fn cached(&self, name: &str) -> StorageResult<Option<Object<ResponseBody>>> {
        let Some(response) = Cache::default().get(name, false).await.map_err(backend)? else { return Ok(None) };
        let size = response.headers().get("content-length").ok().flatten().and_then(|l| l.parse().ok()).unwrap_or(0);
        let (_, body) = response.into_parts();
        Ok(Some(Object { info: ObjectInfo { size, etag: String::new(), metadata: Metadata::new() }, body }))
    }

    async fn get_bytes(&self, key: &str) -> StorageResult<Option<(ObjectInfo, Vec<u8>)>> {
        let Some(object) = self.bucket.get(key).execute().await.map_err(backend)? else {
            return Ok(None);
        };
        let info = info(&object);
        let bytes = match object.body() {
            Some(body) => body.bytes().await.map_err(backend)?,
            None => Vec::new(),
        };
        Ok(Some((info, bytes)))
    }

    async fn read_range(&self, key: &str, range: ByteRange) -> StorageResult<Option<Vec<u8>>> {
        let get = self.bucket.get(key).range(Range::OffsetWithLength { offset: range.offset, length: range.length });
        let Some(object) = get.execute().await.map_err(backend)? else { return Ok(None) };
        match object.body() {
            Some(body) => Ok(Some(body.bytes().await.map_err(backend)?)),
            None => Ok(Some(Vec::new())),
        }
    }

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>, metadata: Metadata) -> StorageResult<ObjectInfo> {
        let metadata: HashMap<String, String> = metadata.into_iter().collect();
        let object = self
            .bucket
            .put(key, Data::Bytes(bytes))
            .custom_metadata(metadata)
            .execute()
            .await
            .map_err(backend)?
            .ok_or_else(|| backend("put returned no object"))?;
        Ok(info(&object))
    }

    /// R2 checks `onlyIf` and writes in one step; a failed condition returns no object.
    async fn put_bytes_if(
        &self,
        key: &str,
        bytes: Vec<u8>,
        metadata: Metadata,
        condition: PutIf<'_>,
    ) -> StorageResult<Option<ObjectInfo>> {
        let metadata: HashMap<String, String> = metadata.into_iter().collect();
        let only_if = match condition {
            PutIf::Absent => Conditional { etag_does_not_match: Some("*".into()), ..Conditional::default() },
            PutIf::EtagMatches(etag) => Conditional { etag_matches: Some(etag.to_owned()), ..Conditional::default() },
        };
        let put = self.bucket.put(key, Data::Bytes(bytes)).custom_metadata(metadata).only_if(only_if);
        Ok(put.execute().await.map_err(backend)?.as_ref().map(info))
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.bucket.delete(key).await.map_err(backend)
    }

    async fn delete_many(&self, keys: &[String]) -> StorageResult<()> {
        self.bucket.delete_multiple(keys.to_vec()).await.map_err(backend)
    }

    async fn put_verified(
        &self,
        key: &str,
        body: ReadableStream,
        length: u64,
        digest: &Digest,
    ) -> StorageResult<NativePut<()>> {
        let raw = from_hex(digest.hex()).ok_or_else(|| backend("digest is not hex"))?;
        let check = Check::Checksum(digest.algorithm(), raw);
        Ok(counted_put(&self.bucket, key, body, length, check).await?.map(|_| ()))
    }

    async fn put_native(
        &self,
        key: &str,
        body: ReadableStream,
        length: u64,
        algorithm: Algorithm,
    ) -> StorageResult<NativePut<Digest>> {
        match counted_put(&self.bucket, key, body, length, Check::Hash(algorithm)).await? {
            NativePut::Stored(Some(digest)) => Ok(NativePut::Stored(digest)),
            NativePut::Stored(None) => Err(backend(format!("put of {key} stored, but its body was not hashed"))),
            // No checksum was sent, so R2 cannot have refused one: not the client's.
            NativePut::DigestMismatch => Err(backend(format!("put of {key} refused as a checksum mismatch"))),
            NativePut::Interrupted(reason) => Ok(NativePut::Interrupted(reason)),
        }
    }

    async fn digest_object(&self, key: &str, algorithm: Algorithm) -> StorageResult<Option<Digest>> {
        let Some(object) = self.bucket.get(key).execute().await.map_err(backend)? else { return Ok(None) };
        let body = object.body().ok_or_else(|| backend("object has no body"))?;
        let ResponseBody::Stream(stream) = body.response_body().map_err(backend)? else {
            return Err(backend("object body is not a stream"));
        };
        let raw = digest_of_stream(stream, algorithm).await.map_err(|e| backend(format!("{e:?}")))?;
        let digest = format!("{}:{}", algorithm.as_str(), to_hex(&raw)).parse().map_err(backend)?;
        Ok(Some(digest))
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> StorageResult<ListPage> {
        let mut list = self
            .bucket
            .list()
            .prefix(prefix)
            .limit(limit.clamp(1, crate::storage::limits::R2_MAX_LIST) as u32)
            .include(vec![Include::CustomMetadata]);
        if let Some(after) = start_after {
            list = list.start_after(after);
        }
        let objects = list.execute().await.map_err(backend)?;
        let keys = objects.objects().iter().map(|o| ListedKey { key: o.key(), metadata: info(o).metadata }).collect();
        Ok(ListPage { keys, truncated: objects.truncated() })
    }

    type Cutter = RuntimeCutter;

    fn cut_parts(
        &self,
        body: ReadableStream,
        algorithm: Algorithm,
        limit: Option<u64>,
    ) -> Result<RuntimeCutter, ReadableStream> {
        Ok(RuntimeCutter::new(body, algorithm, limit))
    }

    async fn upload_cut_part(
        &self,
        cutter: &mut RuntimeCutter,
        key: &str,
        upload_id: &str,
        number: u16,
        part_size: u64,
    ) -> StorageResult<CutPart> {
        let step =
            cutter.upload_next(self.bucket.as_ref(), key, upload_id, number, part_size).await.map_err(backend)?;
        if let (CutPart::OverLimit(_), Some(rest)) = (&step, cutter.rest()) {
            self.background.add(rest);
        }
        Ok(step)
    }

    async fn create_multipart(&self, key: &str) -> StorageResult<String> {
        let upload = self.bucket.create_multipart_upload(key).execute().await.map_err(backend)?;
        Ok(upload.upload_id().await)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u16,
        bytes: Vec<u8>,
    ) -> StorageResult<PartReceipt> {
        let size = bytes.len() as u64;
        let upload = self.bucket.resume_multipart_upload(key, upload_id).map_err(backend)?;
        let part = upload.upload_part(part_number, Data::Bytes(bytes)).await.map_err(backend)?;
        Ok(PartReceipt { part_number: part.part_number(), etag: part.etag(), size })
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[PartReceipt]) -> StorageResult<ObjectInfo> {
        let upload = self.bucket.resume_multipart_upload(key, upload_id).map_err(backend)?;
        let parts = parts.iter().map(|p| UploadedPart::new(p.part_number, p.etag.clone()));
        let object = upload.complete(parts).await.map_err(backend)?;
        Ok(info(&object))
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StorageResult<()> {
        let upload = self.bucket.resume_multipart_upload(key, upload_id).map_err(backend)?;
        upload.abort().await.map_err(backend)
    }
}
