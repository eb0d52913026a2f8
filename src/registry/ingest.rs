//! Bytes through wasm: hashing as they stream in with the state saved between requests,
//! and re-cutting them into R2 multipart parts of one size, whatever chunks the client sends.
//! Every write here happens under the session's claim (see `session`).

use super::error::{RegistryError, RegistryResult};
use super::session::UploadSession;
use super::{ByteStream, Registry};
use crate::oci::Hasher;
use crate::storage::{keys, BlobStore, ByteRange, MetaStore, Metadata, StorageError};
use futures::StreamExt;

/// The tail a request body left after [`Registry::receive`] uploaded its full parts, and
/// why the body ended early if it did.
pub(crate) struct BodyTail {
    /// The bytes past the last full part: the session's new tail.
    pub tail: Vec<u8>,
    /// Why reading stopped early, if it did (`None`: the body was read to its end): the
    /// client stream broke ([`RegistryError::BodyInterrupted`]) or the body crossed the
    /// request limit ([`RegistryError::BodyTooLarge`]).
    pub interrupted: Option<RegistryError>,
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Streams `body` into the claimed session: hashes every byte, uploads each full part
    /// and checkpoints the state after it. Returns the bytes past the last full part (the
    /// new tail) and, if the client stream broke or the body crossed the request limit (a
    /// body without `Content-Length` is counted as it comes), why; `session.offset` and
    /// `hasher` then cover exactly the bytes received (up to the limit).
    pub(crate) async fn receive(
        &self,
        session: &mut UploadSession,
        hasher: &mut Hasher,
        mut body: ByteStream,
    ) -> RegistryResult<BodyTail> {
        let mut tail = self.load_tail(session).await?;
        let mut room = self.config.max_request_bytes.unwrap_or(u64::MAX);
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(reason) => return Ok(BodyTail { tail, interrupted: Some(RegistryError::BodyInterrupted(reason)) }),
            };
            let take = chunk.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            self.take_in(session, hasher, &mut tail, &chunk[..take], true).await?;
            room -= take as u64;
            if take < chunk.len() {
                let limit = self.config.max_request_bytes.unwrap_or(u64::MAX);
                return Ok(BodyTail { tail, interrupted: Some(RegistryError::BodyTooLarge(limit)) });
            }
        }
        Ok(BodyTail { tail, interrupted: None })
    }

    /// The tail the committed state names, checked against the size and etag it was
    /// saved with: bytes that changed since they were hashed are never used.
    async fn load_tail(&self, session: &UploadSession) -> RegistryResult<Vec<u8>> {
        if session.tail_len == 0 {
            return Ok(Vec::new());
        }
        match self.blobs.get_bytes(&session.tail_key()).await? {
            Some((info, bytes))
                if bytes.len() as u64 == session.tail_len
                    && session.tail_etag.as_ref().is_none_or(|etag| *etag == info.etag) =>
            {
                Ok(bytes)
            }
            _ => Err(StorageError::Backend("upload tail is missing or not the one saved".into()).into()),
        }
    }

    /// Saves the tail under this generation's key. The tail it replaces is deleted only
    /// once the state no longer names it (see [`Registry::drop_superseded`]).
    pub(crate) async fn store_tail(&self, session: &mut UploadSession, tail: &[u8]) -> RegistryResult<()> {
        if tail.is_empty() {
            session.tail_key = None;
            session.tail_etag = None;
        } else {
            let key = keys::upload_tail(&session.id, session.generation);
            let info = self.blobs.put_bytes(&key, tail.to_vec(), Metadata::new()).await?;
            session.tail_key = Some(key);
            session.tail_etag = Some(info.etag);
        }
        session.tail_len = tail.len() as u64;
        Ok(())
    }

    /// Uploads the next part, numbered by the committed state.
    pub(crate) async fn upload_part(&self, session: &mut UploadSession, part: Vec<u8>) -> RegistryResult<()> {
        let (multipart_id, number) = self.next_part(session).await?;
        let receipt = self.blobs.upload_part(&session.object_key(), &multipart_id, number, part).await?;
        session.parts.push(receipt);
        Ok(())
    }

    /// The session's multipart upload (begun under this generation's key if there is none
    /// yet) and the number its next part takes, from the committed state.
    pub(crate) async fn next_part(&self, session: &mut UploadSession) -> RegistryResult<(String, u16)> {
        let multipart_id = match &session.multipart_id {
            Some(id) => id.clone(),
            None => {
                let key = session.new_object_key();
                let id = self.blobs.create_multipart(&key).await?;
                session.object_key = Some(key);
                session.multipart_id = Some(id.clone());
                id
            }
        };
        let number = session.parts.len() as u16 + 1;
        if number > crate::storage::limits::R2_MAX_PARTS {
            return Err(RegistryError::UploadInvalid("blob exceeds the largest size this registry stores".into()));
        }
        Ok((multipart_id, number))
    }

    /// Adds `chunk` to the running hash and the tail, uploading every full part. The hash
    /// is fed up to each part boundary first, so that a checkpoint after the part saves a
    /// state that covers exactly the bytes in parts (the tail then being empty).
    async fn take_in(
        &self,
        session: &mut UploadSession,
        hasher: &mut Hasher,
        tail: &mut Vec<u8>,
        mut chunk: &[u8],
        checkpoint: bool,
    ) -> RegistryResult<()> {
        while !chunk.is_empty() {
            let room = (session.part_size as usize).saturating_sub(tail.len()).max(1);
            let (now, later) = chunk.split_at(room.min(chunk.len()));
            hasher.update(now);
            session.offset += now.len() as u64;
            tail.extend_from_slice(now);
            chunk = later;
            if tail.len() as u64 >= session.part_size {
                let part = std::mem::take(tail);
                self.upload_part(session, part).await?;
                if checkpoint {
                    session.set_hasher(hasher);
                    self.store_tail(session, &[]).await?;
                    session.checkpoint(&self.blobs, self.clock.now_millis()).await?;
                }
            }
        }
        Ok(())
    }

    /// The session's running hash, ready for more bytes. A session whose first chunk was
    /// stored natively has no running hash: its bytes are read back one part at a time,
    /// hashed and re-cut into multipart parts of this generation (the native object is
    /// dropped once the state no longer names it). This costs one read of that first
    /// chunk, once.
    pub(crate) async fn running_hash(&self, session: &mut UploadSession) -> RegistryResult<Hasher> {
        let mut hasher = session.hasher()?;
        if session.parts_unhashed {
            // Parts a dead request cut natively: assembled, then read back as a native chunk.
            self.seal_cut_parts(session, None).await?;
        }
        if !session.native_chunk {
            return Ok(hasher);
        }
        session.stored_digest = None;
        let native = session.object_key();
        let size = session.offset;
        session.offset = 0;
        session.object_key = None;
        let mut tail = Vec::new();
        while session.offset < size {
            let range = ByteRange { offset: session.offset, length: session.part_size.min(size - session.offset) };
            let bytes = self
                .blobs
                .read_range(&native, range)
                .await?
                .ok_or_else(|| StorageError::Backend(format!("{native} vanished while re-reading it")))?;
            self.take_in(session, &mut hasher, &mut tail, &bytes, false).await?;
        }
        session.native_chunk = false;
        self.store_tail(session, &tail).await?;
        session.superseded.push(native);
        Ok(hasher)
    }

    /// Deletes objects an earlier generation wrote that the committed state no longer
    /// names. Best effort: one left behind is garbage the session's removal still finds
    /// (tails) or that no pointer names (a native chunk).
    pub(crate) async fn drop_superseded(&self, session: &mut UploadSession, before: &UploadSession) {
        let mut stale = std::mem::take(&mut session.superseded);
        if before.tail_len > 0 && (session.tail_len == 0 || before.tail_key() != session.tail_key()) {
            stale.push(before.tail_key());
        }
        for key in stale {
            let _ = self.blobs.delete(&key).await;
        }
    }
}
