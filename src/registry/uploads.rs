//! Blob uploads: sessions, chunks, completion, cancellation, single-request pushes and mounts.
//!
//! Bytes are hashed as they stream in and cut into equal R2 multipart parts; only the
//! remainder smaller than a part (the tail) is kept between requests. Completion verifies
//! the digest before anything becomes visible under it: "an object under a digest key is
//! only ever written after its bytes were verified to hash to that digest".

use super::error::{RegistryError, RegistryResult};
use super::session::UploadSession;
use super::{ByteStream, Registry};
use crate::oci::{media_type, Algorithm, Digest, Hasher, RepositoryName};
use crate::storage::{keys, BlobStore, MetaStore, Metadata};
use futures::StreamExt;

/// Where an upload stands after a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadProgress {
    pub id: String,
    /// Bytes received so far.
    pub offset: u64,
}

/// What [`Registry::receive`] got from a request body.
struct Received {
    tail: Vec<u8>,
    interrupted: Option<String>,
}

/// Metadata key on a blob pointer naming the assembled multipart object.
pub(crate) const POINTER_TARGET: &str = "assembled";
/// Metadata key on a blob pointer holding the blob's size.
pub(crate) const POINTER_SIZE: &str = "size";

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Opens an upload session (end-4a, end-4c).
    pub async fn start_upload(&self, repo: &RepositoryName, algorithm: Algorithm) -> RegistryResult<UploadProgress> {
        let session = self.new_session(repo, algorithm);
        session.save(&self.blobs).await?;
        Ok(UploadProgress { id: session.id, offset: 0 })
    }

    /// Reports how many bytes a session holds (end-13).
    pub async fn upload_status(&self, repo: &RepositoryName, id: &str) -> RegistryResult<UploadProgress> {
        let session = UploadSession::load(&self.blobs, repo, id).await?;
        Ok(UploadProgress { id: session.id, offset: session.offset })
    }

    /// Appends a chunk (end-5). `start` is the first byte of a `Content-Range`, if sent:
    /// "If a chunk is uploaded out of order, the registry MUST respond with a `416`".
    pub async fn append_chunk(
        &self,
        repo: &RepositoryName,
        id: &str,
        range: Option<(u64, u64)>,
        body: ByteStream,
    ) -> RegistryResult<UploadProgress> {
        let mut session = UploadSession::load(&self.blobs, repo, id).await?;
        check_range(&session, range)?;
        let mut hasher = session.hasher()?;
        let received = self.receive(&mut session, &mut hasher, body).await?;
        // Keep whatever arrived, even from a broken stream: the client may resume from the
        // offset a status request reports.
        self.store_tail(&mut session, &received.tail).await?;
        session.set_hasher(&hasher);
        session.save(&self.blobs).await?;
        if let Some(reason) = received.interrupted {
            return Err(RegistryError::BodyInterrupted(reason));
        }
        check_declared_length(range, session.offset)?;
        Ok(UploadProgress { id: session.id, offset: session.offset })
    }

    /// Closes a session with an optional last chunk (end-6). "The closing `PUT` request
    /// MUST include the `<digest>` of the whole blob".
    pub async fn complete_upload(
        &self,
        repo: &RepositoryName,
        id: &str,
        expected: &Digest,
        range: Option<(u64, u64)>,
        body: ByteStream,
    ) -> RegistryResult<()> {
        let mut session = UploadSession::load(&self.blobs, repo, id).await?;
        check_range(&session, range)?;
        let mut hasher = session.hasher()?;
        let received = self.receive(&mut session, &mut hasher, body).await?;
        if let Some(reason) = received.interrupted {
            session.discard(&self.blobs).await?;
            return Err(RegistryError::BodyInterrupted(reason));
        }
        self.finish(repo, session, hasher, received.tail, expected).await
    }

    /// Cancels a session (end-14), aborting its multipart upload.
    pub async fn cancel_upload(&self, repo: &RepositoryName, id: &str) -> RegistryResult<()> {
        let session = UploadSession::load(&self.blobs, repo, id).await?;
        session.discard(&self.blobs).await
    }

    /// A whole blob in one request (end-4b): nothing is saved unless the digest matches.
    pub async fn push_blob(&self, repo: &RepositoryName, expected: &Digest, body: ByteStream) -> RegistryResult<()> {
        let mut session = self.new_session(repo, expected.algorithm());
        let mut hasher = Hasher::new(expected.algorithm());
        let received = self.receive(&mut session, &mut hasher, body).await?;
        if let Some(reason) = received.interrupted {
            session.discard(&self.blobs).await?;
            return Err(RegistryError::BodyInterrupted(reason));
        }
        self.finish(repo, session, hasher, received.tail, expected).await
    }

    /// Cross-repository mount (end-11). With `from`, the blob must be in that repository;
    /// without it, anywhere in the registry ("The registry MAY treat the `from` parameter
    /// as optional"). Returns false when there is nothing to mount.
    pub async fn mount_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        from: Option<&RepositoryName>,
    ) -> RegistryResult<bool> {
        if let Some(source) = from {
            if self.blobs.head(&keys::repository_blob(source, digest)).await?.is_none() {
                return Ok(false);
            }
        }
        if self.blobs.head(&keys::blob(digest)).await?.is_none() {
            return Ok(false);
        }
        self.link_blob(repo, digest).await?;
        Ok(true)
    }

    fn new_session(&self, repo: &RepositoryName, algorithm: Algorithm) -> UploadSession {
        UploadSession::new(self.ids.new_id(), repo, algorithm, self.config.part_size, self.clock.now_millis())
    }

    /// Streams `body` into the session: hashes every byte and uploads each full part.
    /// Returns the bytes past the last full part (the new tail) and, if the client stream
    /// broke, why; `session.offset` and `hasher` then cover exactly the bytes received.
    async fn receive(
        &self,
        session: &mut UploadSession,
        hasher: &mut Hasher,
        mut body: ByteStream,
    ) -> RegistryResult<Received> {
        let mut tail = self.load_tail(session).await?;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(reason) => return Ok(Received { tail, interrupted: Some(reason) }),
            };
            hasher.update(&chunk);
            session.offset += chunk.len() as u64;
            tail.extend_from_slice(&chunk);
            while tail.len() as u64 >= session.part_size {
                let rest = tail.split_off(session.part_size as usize);
                let part = std::mem::replace(&mut tail, rest);
                self.upload_part(session, part).await?;
            }
        }
        Ok(Received { tail, interrupted: None })
    }

    async fn load_tail(&self, session: &UploadSession) -> RegistryResult<Vec<u8>> {
        if session.tail_len == 0 {
            return Ok(Vec::new());
        }
        match self.blobs.get_bytes(&keys::upload_tail(&session.id)).await? {
            Some((_, bytes)) if bytes.len() as u64 == session.tail_len => Ok(bytes),
            _ => Err(crate::storage::StorageError::Backend("upload tail is missing or truncated".into()).into()),
        }
    }

    async fn store_tail(&self, session: &mut UploadSession, tail: &[u8]) -> RegistryResult<()> {
        let key = keys::upload_tail(&session.id);
        if tail.is_empty() {
            if session.tail_len > 0 {
                self.blobs.delete(&key).await?;
            }
        } else {
            self.blobs.put_bytes(&key, tail.to_vec(), Metadata::new()).await?;
        }
        session.tail_len = tail.len() as u64;
        Ok(())
    }

    async fn upload_part(&self, session: &mut UploadSession, part: Vec<u8>) -> RegistryResult<()> {
        let key = keys::assembled_blob(&session.id);
        let multipart_id = match &session.multipart_id {
            Some(id) => id.clone(),
            None => {
                let id = self.blobs.create_multipart(&key).await?;
                session.multipart_id = Some(id.clone());
                id
            }
        };
        let number = session.parts.len() as u16 + 1;
        if number > crate::storage::limits::R2_MAX_PARTS {
            return Err(RegistryError::UploadInvalid("blob exceeds the largest size this registry stores".into()));
        }
        let receipt = self.blobs.upload_part(&key, &multipart_id, number, part).await?;
        session.parts.push(receipt);
        Ok(())
    }

    /// Verifies the digest, then makes the blob visible under it and in `repo`.
    async fn finish(
        &self,
        repo: &RepositoryName,
        mut session: UploadSession,
        hasher: Hasher,
        tail: Vec<u8>,
        expected: &Digest,
    ) -> RegistryResult<()> {
        let blob_key = keys::blob(expected);
        // `digest-algorithm` is only a hint ("SHOULD include"): a client may close a
        // session hashed with sha256 by a sha512 digest. Then the bytes are hashed again
        // below, still before anything is visible under the digest.
        let verified_by_session = hasher.algorithm() == expected.algorithm();
        if verified_by_session {
            let actual = hasher.finish();
            if actual != *expected {
                session.discard(&self.blobs).await?;
                return Err(mismatch(&actual, expected));
            }
            if self.blobs.head(&blob_key).await?.is_some() {
                // Already stored (global dedup): keep the one copy.
                session.discard(&self.blobs).await?;
                return self.link_blob(repo, expected).await;
            }
        }
        let assembled = match session.multipart_id.clone() {
            Some(multipart_id) => {
                let key = keys::assembled_blob(&session.id);
                if !tail.is_empty() {
                    self.upload_part(&mut session, tail.clone()).await?;
                }
                self.blobs.complete_multipart(&key, &multipart_id, &session.parts).await?;
                session.multipart_id = None;
                Some(key)
            }
            None => None,
        };
        if !verified_by_session {
            let actual = match &assembled {
                Some(key) => self.rehash(key, session.offset, expected.algorithm()).await?,
                None => expected.algorithm().digest_of(&tail),
            };
            let already_stored = self.blobs.head(&blob_key).await?.is_some();
            if actual != *expected || already_stored {
                if let Some(key) = &assembled {
                    self.blobs.delete(key).await?;
                }
                session.discard(&self.blobs).await?;
                if actual != *expected {
                    return Err(mismatch(&actual, expected));
                }
                return self.link_blob(repo, expected).await;
            }
        }
        match assembled {
            Some(key) => {
                let pointer = Metadata::from([
                    (POINTER_TARGET.to_owned(), key),
                    (POINTER_SIZE.to_owned(), session.offset.to_string()),
                ]);
                self.blobs.put_bytes(&blob_key, Vec::new(), pointer).await?;
            }
            None => {
                self.blobs.put_bytes(&blob_key, tail, Metadata::new()).await?;
            }
        }
        session.discard(&self.blobs).await?;
        self.link_blob(repo, expected).await
    }

    /// Hashes a stored object one part at a time, so memory stays at one part.
    async fn rehash(&self, key: &str, size: u64, algorithm: Algorithm) -> RegistryResult<Digest> {
        let mut hasher = Hasher::new(algorithm);
        let mut offset = 0;
        while offset < size {
            let length = self.config.part_size.min(size - offset);
            let bytes = self
                .blobs
                .read_range(key, crate::storage::ByteRange { offset, length })
                .await?
                .ok_or_else(|| crate::storage::StorageError::Backend(format!("{key} vanished while hashing")))?;
            hasher.update(&bytes);
            offset += length;
        }
        Ok(hasher.finish())
    }

    /// Lets `repo` serve `digest`, and records the repository in the catalog.
    pub(crate) async fn link_blob(&self, repo: &RepositoryName, digest: &Digest) -> RegistryResult<()> {
        self.blobs.put_bytes(&keys::repository_blob(repo, digest), Vec::new(), Metadata::new()).await?;
        self.ensure_in_catalog(repo).await
    }

    pub(crate) async fn ensure_in_catalog(&self, repo: &RepositoryName) -> RegistryResult<()> {
        let key = keys::catalog_entry(repo);
        if self.blobs.head(&key).await?.is_none() {
            self.blobs.put_bytes(&key, Vec::new(), Metadata::new()).await?;
        }
        Ok(())
    }

    /// True for the digest of the empty JSON blob `{}` (image-spec's empty descriptor).
    pub(crate) fn is_empty_json(digest: &Digest) -> bool {
        digest.to_string() == media_type::EMPTY_JSON_DIGEST
    }
}

fn mismatch(actual: &Digest, expected: &Digest) -> RegistryError {
    RegistryError::DigestInvalid(format!("the uploaded bytes hash to {actual}, not {expected}; nothing was stored"))
}

fn check_range(session: &UploadSession, range: Option<(u64, u64)>) -> RegistryResult<()> {
    match range {
        Some((start, end)) if end < start => {
            Err(RegistryError::UploadInvalid(format!("Content-Range {start}-{end} ends before it starts")))
        }
        Some((start, _)) if start != session.offset => Err(RegistryError::ChunkOutOfOrder { expected: session.offset }),
        _ => Ok(()),
    }
}

fn check_declared_length(range: Option<(u64, u64)>, offset: u64) -> RegistryResult<()> {
    match range {
        Some((_, end)) if end + 1 != offset => Err(RegistryError::UploadInvalid(format!(
            "Content-Range ends at byte {end} but the upload now holds {offset} bytes"
        ))),
        _ => Ok(()),
    }
}
