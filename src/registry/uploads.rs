//! Blob uploads: sessions, chunks, completion, cancellation, single-request pushes and mounts.
//!
//! Two roads for the bytes. When a whole blob, or the first chunk of a session, arrives
//! with a known length, it is handed to storage untouched and hashed natively (see
//! [`RequestBody`]). Otherwise bytes stream through wasm, are hashed with the state saved
//! between requests, and are cut into equal R2 multipart parts (`ingest`). Either way the
//! digest is verified before anything becomes visible under it (`finish`): "an object
//! under a digest key is only ever written after its bytes were verified".

use super::error::{RegistryError, RegistryResult};
use super::session::{Named, UploadSession};
use super::{Registry, RequestBody};
use crate::ids::UploadId;
use crate::oci::{Algorithm, Digest, RepositoryName};
use crate::storage::{keys, BlobStore, MetaStore, NativePut, StorageError};

/// Where an upload stands after a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadProgress {
    pub id: UploadId,
    /// Bytes received so far.
    pub offset: u64,
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Opens an upload session (end-4a, end-4c). Nothing is stored yet, so a backend
    /// failure is retried once with a fresh id, which the store may place elsewhere (with
    /// replicas: in the next healthy one, the failed one now being marked unhealthy).
    pub async fn start_upload(&self, repo: &RepositoryName, algorithm: Algorithm) -> RegistryResult<UploadProgress> {
        // Refused early while the repository is being deleted (its link would be refused).
        self.enter_fence(repo).await?;
        let mut session = self.new_session(repo, algorithm);
        if let Err(RegistryError::Storage(StorageError::Backend(_))) = session.create(&self.blobs, self.now()).await {
            session = self.new_session(repo, algorithm);
            session.create(&self.blobs, self.now()).await?;
        }
        Ok(UploadProgress { id: session.id, offset: 0 })
    }

    /// Reports how many bytes a session holds (end-13).
    pub async fn upload_status(&self, repo: &RepositoryName, id: &UploadId) -> RegistryResult<UploadProgress> {
        let session = UploadSession::load(&self.blobs, repo, id).await?;
        Ok(UploadProgress { id: session.id, offset: session.offset })
    }

    /// Appends a chunk (end-5). `range` is the `Content-Range`, if sent: "If a chunk is
    /// uploaded out of order, the registry MUST respond with a `416`". One request writes
    /// a session at a time: a second one gets `416` with the current `Range`.
    pub async fn append_chunk(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        range: Option<(u64, u64)>,
        body: RequestBody<B::Native>,
    ) -> RegistryResult<UploadProgress> {
        let mut session = UploadSession::load(&self.blobs, repo, id).await?;
        check_range(&session, range, body.length())?;
        session.claim(&self.blobs, self.now()).await?;
        let before = session.clone();
        let outcome = self.write_chunk(&mut session, range, body).await;
        self.settle(&mut session, &before, outcome).await?;
        Ok(UploadProgress { id: session.id, offset: session.offset })
    }

    /// The claimed part of [`Registry::append_chunk`]: stores the bytes and commits.
    async fn write_chunk(
        &self,
        session: &mut UploadSession,
        range: Option<(u64, u64)>,
        body: RequestBody<B::Native>,
    ) -> RegistryResult<()> {
        // A first chunk without Content-Range is how skopeo, podman and docker send a whole
        // layer: it takes the native road. A client that numbers its chunks will send more,
        // so its bytes go through wasm from the start rather than be read back later.
        let body = if session.is_empty() && range.is_none() && body.length() != Some(0) {
            match self.take_first_chunk(session, body)? {
                Ok(FirstChunk::Whole(native, length)) => return self.write_native_chunk(session, native, length).await,
                Ok(FirstChunk::Cut(cutter)) => return self.write_cut_chunk(session, cutter).await,
                Err(body) => body,
            }
        } else {
            body
        };
        let mut hasher = self.running_hash(session).await?;
        let received = self.receive(session, &mut hasher, body.into_stream()).await?;
        // Keep whatever arrived, even from a broken stream: the client may resume from the
        // offset a status request reports.
        self.store_tail(session, &received.tail).await?;
        session.set_hasher(&hasher);
        session.commit(&self.blobs, self.now()).await?;
        if let Some(interruption) = received.interrupted {
            return Err(interruption);
        }
        check_declared_length(range, session.offset)
    }

    /// How the store takes a session's first chunk natively: in one put when its length is
    /// known and fits, else cut into parts by the store's cutter; the body back (to be read
    /// through wasm) when the store can do neither.
    fn take_first_chunk(
        &self,
        session: &UploadSession,
        body: RequestBody<B::Native>,
    ) -> RegistryResult<TakenFirstChunk<B>> {
        let (max, algorithm) = (self.blobs.max_single_put(), session.algorithm()?);
        Ok(body.into_native_with(|native, length| match length {
            Some(length) if length <= max => Ok(FirstChunk::Whole(native, length)),
            _ => self.blobs.cut_parts(native, algorithm, self.config.max_request_bytes).map(FirstChunk::Cut),
        }))
    }

    /// The first chunk of a session, stored as it comes under this generation's key and
    /// hashed by the store on the way in.
    async fn write_native_chunk(
        &self,
        session: &mut UploadSession,
        native: B::Native,
        length: u64,
    ) -> RegistryResult<()> {
        let key = session.new_object_key();
        match self.blobs.put_native(&key, native, length, session.algorithm()?).await? {
            NativePut::Stored(digest) => {
                session.offset = length;
                session.native_chunk = true;
                session.stored_digest = Some(digest.to_string());
                session.object_key = Some(key);
                session.commit(&self.blobs, self.now()).await
            }
            NativePut::Interrupted(reason) => {
                session.commit(&self.blobs, self.now()).await?;
                Err(RegistryError::BodyInterrupted(reason))
            }
            // A plain put checks no digest: a store that says otherwise is misbehaving.
            NativePut::DigestMismatch => {
                Err(StorageError::Backend(format!("a plain put of {key} reported a digest mismatch")).into())
            }
        }
    }

    /// Ends a claimed request. On success, drops what the committed state no longer names.
    /// On a storage failure, the session may have been taken, closed or removed meanwhile
    /// (an upload aborted under a streaming PATCH): that is reported as `416` or `404`;
    /// otherwise the claim is released so that the client can resume at once.
    async fn settle(
        &self,
        session: &mut UploadSession,
        before: &UploadSession,
        outcome: RegistryResult<()>,
    ) -> RegistryResult<()> {
        match outcome {
            Ok(()) => {
                self.drop_superseded(session, before).await;
                Ok(())
            }
            Err(e @ (RegistryError::BodyInterrupted(_) | RegistryError::BodyTooLarge(_)))
            | Err(e @ RegistryError::UploadInvalid(_)) => {
                if session.claimed_at_ms.is_none() {
                    self.drop_superseded(session, before).await;
                }
                self.release(session.generation, &session.id).await;
                Err(e)
            }
            Err(e @ RegistryError::Storage(_)) => match UploadSession::read(&self.blobs, &session.id).await {
                Ok(Some(now)) if !now.closed && now.generation == session.generation => {
                    self.release(session.generation, &session.id).await;
                    Err(e)
                }
                Ok(now) => {
                    self.abandon(session, before).await;
                    Err(match now {
                        Some(now) if !now.closed => RegistryError::ChunkOutOfOrder { expected: now.offset },
                        _ => RegistryError::UploadUnknown,
                    })
                }
                Err(_) => Err(e),
            },
            Err(e @ (RegistryError::ChunkOutOfOrder { .. } | RegistryError::UploadUnknown)) => {
                self.abandon(session, before).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Removes what a request that lost its session wrote. What it made after its last
    /// successful write of the state is known to nobody else and goes at once; what a
    /// checkpoint of it named goes only if the state now stored does not name it (the
    /// winner may have built on it). When the session is gone, its closer may have
    /// published such an object, so that is left (at worst garbage, never a hole).
    async fn abandon(&self, session: &UploadSession, before: &UploadSession) {
        let current = match UploadSession::read(&self.blobs, &session.id).await {
            Ok(Some(now)) if !now.closed => Some(now.named()),
            Ok(_) => None,
            Err(_) => return,
        };
        let (mine, saved, was) = (session.named(), &session.saved, before.named());
        let drop =
            |key: &Option<String>, saved: &Option<String>, was: &Option<String>, kept: Option<&Option<String>>| {
                let key = key.as_ref()?;
                let unsaved = Some(key) != saved.as_ref();
                let unnamed = Some(key) != was.as_ref() && kept.is_some_and(|k| Some(key) != k.as_ref());
                (unsaved || unnamed).then(|| key.clone())
            };
        let kept = |f: fn(&Named) -> &Option<String>| current.as_ref().map(f);
        if let Some(mp) = drop(&mine.multipart_id, &saved.multipart_id, &was.multipart_id, kept(|n| &n.multipart_id)) {
            let _ = self.blobs.abort_multipart(&session.object_key(), &mp).await;
        } else if session.native_chunk {
            if let Some(key) = drop(&mine.object_key, &saved.object_key, &was.object_key, kept(|n| &n.object_key)) {
                let _ = self.blobs.delete(&key).await;
            }
        }
        if let Some(tail) = drop(&mine.tail_key, &saved.tail_key, &was.tail_key, kept(|n| &n.tail_key)) {
            let _ = self.blobs.delete(&tail).await;
        }
    }

    /// Releases a claim this request still holds, keeping the last committed progress.
    async fn release(&self, generation: u64, id: &UploadId) {
        if let Ok(Some(mut now)) = UploadSession::read(&self.blobs, id).await {
            if !now.closed && now.generation == generation && now.claimed_at_ms.is_some() {
                let _ = now.commit(&self.blobs, self.now()).await;
            }
        }
    }

    /// Closes a session with an optional last chunk (end-6). "The closing `PUT` request
    /// MUST include the `<digest>` of the whole blob".
    pub async fn complete_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        expected: &Digest,
        range: Option<(u64, u64)>,
        body: RequestBody<B::Native>,
    ) -> RegistryResult<()> {
        let mut session = UploadSession::load(&self.blobs, repo, id).await?;
        check_range(&session, range, body.length())?;
        session.claim(&self.blobs, self.now()).await?;
        let before = session.clone();
        let outcome = self.write_last_chunk(repo, &mut session, expected, body).await;
        self.settle(&mut session, &before, outcome).await
    }

    /// The claimed part of [`Registry::complete_upload`].
    async fn write_last_chunk(
        &self,
        repo: &RepositoryName,
        session: &mut UploadSession,
        expected: &Digest,
        body: RequestBody<B::Native>,
    ) -> RegistryResult<()> {
        let body = if session.is_empty() {
            match self.take_first_chunk(session, body)? {
                Ok(FirstChunk::Cut(cutter)) => {
                    self.write_cut_chunk(session, cutter).await?;
                    return self.finish(repo, session, None, Vec::new(), expected).await;
                }
                Ok(FirstChunk::Whole(native, length)) => {
                    let outcome = self.put_whole(repo, expected, native, length).await;
                    // A backend failure keeps the session: the client retries the PUT.
                    if !matches!(outcome, Err(RegistryError::Storage(_))) {
                        self.end_session(session).await?;
                    }
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
        let mut hasher = self.running_hash(session).await?;
        let received = self.receive(session, &mut hasher, body.into_stream()).await?;
        if let Some(interruption) = received.interrupted {
            // Keep the chunks accepted before, and what this body brought: the client may
            // resume from the offset a status request reports.
            self.store_tail(session, &received.tail).await?;
            session.set_hasher(&hasher);
            session.commit(&self.blobs, self.now()).await?;
            return Err(interruption);
        }
        self.finish(repo, session, Some(hasher), received.tail, expected).await
    }

    /// Cancels a session (end-14), aborting its multipart upload. A cancel wins over a
    /// request writing the session: that request's next write fails and it answers `404`.
    pub async fn cancel_upload(&self, repo: &RepositoryName, id: &UploadId) -> RegistryResult<()> {
        for _ in 0..3 {
            let mut session = UploadSession::load(&self.blobs, repo, id).await?;
            match self.end_session(&mut session).await {
                Err(RegistryError::ChunkOutOfOrder { .. }) => continue,
                ended => return ended,
            }
        }
        Err(StorageError::Backend(format!("upload {id} kept changing while it was cancelled")).into())
    }

    /// Closes the session (conditionally: only the caller that closes it removes it), then
    /// removes every trace of it.
    pub(crate) async fn end_session(&self, session: &mut UploadSession) -> RegistryResult<()> {
        session.close(&self.blobs, self.now()).await?;
        session.remove_with_object(&self.blobs).await
    }

    /// A whole blob in one request (end-4b): nothing is saved unless the digest matches.
    pub async fn push_blob(
        &self,
        repo: &RepositoryName,
        expected: &Digest,
        body: RequestBody<B::Native>,
    ) -> RegistryResult<()> {
        // Natively, or else through wasm; either way but the first, in a session of its own,
        // claimed from the start, so that the parts it uploads are checkpointed and found by
        // the expiry job if this request dies.
        let mut session = self.new_session(repo, expected.algorithm());
        session.claimed_at_ms = Some(self.now());
        let body = match self.take_first_chunk(&session, body)? {
            Ok(FirstChunk::Whole(native, length)) => return self.put_whole(repo, expected, native, length).await,
            Ok(FirstChunk::Cut(cutter)) => {
                session.create(&self.blobs, self.now()).await?;
                if let Err(e) = self.write_cut_chunk(&mut session, cutter).await {
                    let _ = self.end_session(&mut session).await;
                    return Err(e);
                }
                return self.finish(repo, &mut session, None, Vec::new(), expected).await;
            }
            Err(body) => body,
        };
        session.create(&self.blobs, self.now()).await?;
        let mut hasher = session.hasher()?;
        let received = self.receive(&mut session, &mut hasher, body.into_stream()).await?;
        if let Some(interruption) = received.interrupted {
            self.end_session(&mut session).await?;
            return Err(interruption);
        }
        self.finish(repo, &mut session, Some(hasher), received.tail, expected).await
    }

    /// Stores a whole blob straight under its digest; the store verifies it on the way in.
    async fn put_whole(
        &self,
        repo: &RepositoryName,
        expected: &Digest,
        native: B::Native,
        length: u64,
    ) -> RegistryResult<()> {
        self.before_storing_blob(expected).await?;
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
        // The collector's state first, then the bytes and links (`collected`).
        if !self.blob_usable(digest).await? {
            return Ok(false);
        }
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

    fn now(&self) -> u64 {
        self.clock.now_millis()
    }

    fn new_session(&self, repo: &RepositoryName, algorithm: Algorithm) -> UploadSession {
        UploadSession::new(UploadId::fresh(&*self.ids), repo, algorithm, self.config.part_size, self.clock.now_millis())
    }
}

/// A first chunk the store took natively, or the body back when it cannot.
type TakenFirstChunk<B> =
    Result<FirstChunk<<B as BlobStore>::Native, <B as BlobStore>::Cutter>, RequestBody<<B as BlobStore>::Native>>;

/// A first chunk the store takes natively.
enum FirstChunk<N, C> {
    /// Of known length, stored in one put.
    Whole(N, u64),
    /// Of unknown length (or too long for one put), cut into parts by the store.
    Cut(C),
}

/// Checks a chunk's `Content-Range` against the session and its `Content-Length` before
/// any byte is stored.
fn check_range(session: &UploadSession, range: Option<(u64, u64)>, length: Option<u64>) -> RegistryResult<()> {
    let Some((start, end)) = range else { return Ok(()) };
    if end < start {
        return Err(RegistryError::UploadInvalid(format!("Content-Range {start}-{end} ends before it starts")));
    }
    if start != session.offset {
        return Err(RegistryError::ChunkOutOfOrder { expected: session.offset });
    }
    // end >= start, so this cannot underflow; +1 cannot overflow past u64::MAX - start.
    let declared = (end - start).checked_add(1);
    match (declared, length) {
        (Some(declared), Some(length)) if declared != length => Err(RegistryError::UploadInvalid(format!(
            "Content-Range {start}-{end} declares {declared} bytes but Content-Length is {length}"
        ))),
        (None, _) => Err(RegistryError::UploadInvalid(format!("Content-Range {start}-{end} is too large"))),
        _ => Ok(()),
    }
}

/// A body without `Content-Length` is measured once it has arrived.
fn check_declared_length(range: Option<(u64, u64)>, offset: u64) -> RegistryResult<()> {
    match range {
        Some((_, end)) if end.checked_add(1) != Some(offset) => Err(RegistryError::UploadInvalid(format!(
            "Content-Range ends at byte {end} but the upload now holds {offset} bytes"
        ))),
        _ => Ok(()),
    }
}
