//! Blob uploads: sessions, chunks, completion, cancellation, single-request pushes and mounts.
//!
//! Two roads for the bytes. When a whole blob, or the first chunk of a session, arrives
//! with a known length, it is handed to storage untouched and hashed natively (see
//! [`RequestBody`]). Otherwise bytes stream through wasm, are hashed with the state saved
//! between requests, and are cut into equal R2 multipart parts (`ingest`). Either way the
//! digest is verified before anything becomes visible under it (`finish`): "an object
//! under a digest key is only ever written after its bytes were verified".

use super::error::{RegistryError, RegistryResult};
use super::session::UploadSession;
use super::{Registry, RequestBody};
use crate::oci::{Algorithm, Digest, RepositoryName};
use crate::storage::{keys, BlobStore, MetaStore, NativePut, StorageError};

/// Where an upload stands after a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadProgress {
    pub id: String,
    /// Bytes received so far.
    pub offset: u64,
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Opens an upload session (end-4a, end-4c). Nothing is stored yet, so a backend
    /// failure is retried once with a fresh id, which the store may place elsewhere (with
    /// replicas: in the next healthy one, the failed one now being marked unhealthy).
    pub async fn start_upload(&self, repo: &RepositoryName, algorithm: Algorithm) -> RegistryResult<UploadProgress> {
        let session = self.new_session(repo, algorithm);
        let session = match session.save(&self.blobs, self.clock.now_millis()).await {
            Err(RegistryError::Storage(StorageError::Backend(_))) => {
                let fresh = self.new_session(repo, algorithm);
                fresh.save(&self.blobs, self.clock.now_millis()).await?;
                fresh
            }
            saved => saved.map(|()| session)?,
        };
        Ok(UploadProgress { id: session.id, offset: 0 })
    }

    /// Reports how many bytes a session holds (end-13).
    pub async fn upload_status(&self, repo: &RepositoryName, id: &str) -> RegistryResult<UploadProgress> {
        let session = UploadSession::load(&self.blobs, repo, id).await?;
        Ok(UploadProgress { id: session.id, offset: session.offset })
    }

    /// Appends a chunk (end-5). `range` is the `Content-Range`, if sent: "If a chunk is
    /// uploaded out of order, the registry MUST respond with a `416`".
    pub async fn append_chunk(
        &self,
        repo: &RepositoryName,
        id: &str,
        range: Option<(u64, u64)>,
        body: RequestBody<B::Native>,
    ) -> RegistryResult<UploadProgress> {
        let mut session = UploadSession::load(&self.blobs, repo, id).await?;
        check_range(&session, range)?;
        // A first chunk without Content-Range is how skopeo, podman and docker send a whole
        // layer: it takes the native road. A client that numbers its chunks will send more,
        // so its bytes go through wasm from the start rather than be read back later.
        let body = if session.is_empty() && range.is_none() && body.length().is_some_and(|l| l > 0) {
            match body.into_native(self.blobs.max_single_put()) {
                Ok((native, length)) => return self.append_native(session, None, native, length).await,
                Err(body) => body,
            }
        } else {
            body
        };
        let mut hasher = self.materialize(&mut session).await?;
        let received = self.receive(&mut session, &mut hasher, body.into_stream()).await?;
        // Keep whatever arrived, even from a broken stream: the client may resume from the
        // offset a status request reports.
        self.store_tail(&mut session, &received.tail).await?;
        session.set_hasher(&hasher);
        session.save(&self.blobs, self.clock.now_millis()).await?;
        if let Some(reason) = received.interrupted {
            return Err(RegistryError::BodyInterrupted(reason));
        }
        check_declared_length(range, session.offset)?;
        Ok(UploadProgress { id: session.id, offset: session.offset })
    }

    /// The first chunk of a session, stored as it comes; hashed by the store on close.
    async fn append_native(
        &self,
        mut session: UploadSession,
        range: Option<(u64, u64)>,
        native: B::Native,
        length: u64,
    ) -> RegistryResult<UploadProgress> {
        let key = keys::assembled_blob(&session.id);
        match self.blobs.put_native(&key, native, length).await? {
            NativePut::Stored(()) => {
                session.offset = length;
                session.native_chunk = true;
                session.save(&self.blobs, self.clock.now_millis()).await?;
                check_declared_length(range, session.offset)?;
                Ok(UploadProgress { id: session.id, offset: session.offset })
            }
            NativePut::Interrupted(reason) => Err(RegistryError::BodyInterrupted(reason)),
            NativePut::DigestMismatch => unreachable!("a plain put checks no digest"),
        }
    }

    /// Closes a session with an optional last chunk (end-6). "The closing `PUT` request
    /// MUST include the `<digest>` of the whole blob".
    pub async fn complete_upload(
        &self,
        repo: &RepositoryName,
        id: &str,
        expected: &Digest,
        range: Option<(u64, u64)>,
        body: RequestBody<B::Native>,
    ) -> RegistryResult<()> {
        let mut session = UploadSession::load(&self.blobs, repo, id).await?;
        check_range(&session, range)?;
        let body = if session.is_empty() {
            match body.into_native(self.blobs.max_single_put()) {
                Ok((native, length)) => {
                    let outcome = self.put_whole(repo, expected, native, length).await;
                    session.discard(&self.blobs).await?;
                    return outcome;
                }
                Err(body) => body,
            }
        } else {
            body
        };
        // A native first chunk followed by nothing more is verified as it stands.
        if session.native_chunk && body.length() == Some(0) {
            return self.finish(repo, session, None, Vec::new(), expected).await;
        }
        let mut hasher = self.materialize(&mut session).await?;
        let received = self.receive(&mut session, &mut hasher, body.into_stream()).await?;
        if let Some(reason) = received.interrupted {
            session.discard(&self.blobs).await?;
            return Err(RegistryError::BodyInterrupted(reason));
        }
        self.finish(repo, session, Some(hasher), received.tail, expected).await
    }

    /// Cancels a session (end-14), aborting its multipart upload.
    pub async fn cancel_upload(&self, repo: &RepositoryName, id: &str) -> RegistryResult<()> {
        let session = UploadSession::load(&self.blobs, repo, id).await?;
        session.discard(&self.blobs).await
    }

    /// A whole blob in one request (end-4b): nothing is saved unless the digest matches.
    pub async fn push_blob(
        &self,
        repo: &RepositoryName,
        expected: &Digest,
        body: RequestBody<B::Native>,
    ) -> RegistryResult<()> {
        let body = match body.into_native(self.blobs.max_single_put()) {
            Ok((native, length)) => return self.put_whole(repo, expected, native, length).await,
            Err(body) => body,
        };
        let mut session = self.new_session(repo, expected.algorithm());
        let mut hasher = session.hasher()?;
        let received = self.receive(&mut session, &mut hasher, body.into_stream()).await?;
        if let Some(reason) = received.interrupted {
            session.discard(&self.blobs).await?;
            return Err(RegistryError::BodyInterrupted(reason));
        }
        self.finish(repo, session, Some(hasher), received.tail, expected).await
    }

    /// Stores a whole blob straight under its digest; the store verifies it on the way in.
    async fn put_whole(
        &self,
        repo: &RepositoryName,
        expected: &Digest,
        native: B::Native,
        length: u64,
    ) -> RegistryResult<()> {
        match self.blobs.put_verified(&keys::blob(expected), native, length, expected).await? {
            NativePut::Stored(()) => self.link_blob(repo, expected).await,
            NativePut::DigestMismatch => Err(RegistryError::DigestInvalid(format!(
                "the uploaded bytes do not hash to {expected}; nothing was stored"
            ))),
            NativePut::Interrupted(reason) => Err(RegistryError::BodyInterrupted(reason)),
        }
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
