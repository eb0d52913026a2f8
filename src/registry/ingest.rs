//! Bytes through wasm: hashing as they stream in with the state saved between requests,
//! and re-cutting them into R2 multipart parts of one size, whatever chunks the client sends.

use super::error::{RegistryError, RegistryResult};
use super::session::UploadSession;
use super::{ByteStream, Registry};
use crate::oci::Hasher;
use crate::storage::{keys, BlobStore, ByteRange, MetaStore, Metadata, StorageError};
use futures::StreamExt;

/// What [`Registry::receive`] got from a request body.
pub(crate) struct Received {
    pub tail: Vec<u8>,
    pub interrupted: Option<String>,
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Streams `body` into the session: hashes every byte and uploads each full part.
    /// Returns the bytes past the last full part (the new tail) and, if the client stream
    /// broke, why; `session.offset` and `hasher` then cover exactly the bytes received.
    pub(crate) async fn receive(
        &self,
        session: &mut UploadSession,
        hasher: &mut Hasher,
        mut body: ByteStream,
    ) -> RegistryResult<Received> {
        let mut tail = self.load_tail(session).await?;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => self.absorb(session, hasher, &mut tail, &chunk).await?,
                Err(reason) => return Ok(Received { tail, interrupted: Some(reason) }),
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
            _ => Err(StorageError::Backend("upload tail is missing or truncated".into()).into()),
        }
    }

    pub(crate) async fn store_tail(&self, session: &mut UploadSession, tail: &[u8]) -> RegistryResult<()> {
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

    pub(crate) async fn upload_part(&self, session: &mut UploadSession, part: Vec<u8>) -> RegistryResult<()> {
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
    /// Adds `chunk` to the running hash and the tail, uploading every full part.
    async fn absorb(
        &self,
        session: &mut UploadSession,
        hasher: &mut Hasher,
        tail: &mut Vec<u8>,
        chunk: &[u8],
    ) -> RegistryResult<()> {
        hasher.update(chunk);
        session.offset += chunk.len() as u64;
        tail.extend_from_slice(chunk);
        while tail.len() as u64 >= session.part_size {
            let rest = tail.split_off(session.part_size as usize);
            let part = std::mem::replace(tail, rest);
            self.upload_part(session, part).await?;
        }
        Ok(())
    }

    /// The session's running hash, ready for more bytes. A session whose first chunk was
    /// stored natively has no running hash: its bytes are read back one part at a time,
    /// hashed and re-cut into multipart parts (the assembled object is replaced when the
    /// multipart upload completes). This costs one read of that first chunk, once.
    pub(crate) async fn materialize(&self, session: &mut UploadSession) -> RegistryResult<Hasher> {
        let mut hasher = session.hasher()?;
        if !session.native_chunk {
            return Ok(hasher);
        }
        let key = keys::assembled_blob(&session.id);
        let size = session.offset;
        session.offset = 0;
        let mut tail = Vec::new();
        while session.offset < size {
            let range = ByteRange { offset: session.offset, length: session.part_size.min(size - session.offset) };
            let bytes = self
                .blobs
                .read_range(&key, range)
                .await?
                .ok_or_else(|| StorageError::Backend(format!("{key} vanished while re-reading it")))?;
            self.absorb(session, &mut hasher, &mut tail, &bytes).await?;
        }
        session.native_chunk = false;
        self.store_tail(session, &tail).await?;
        Ok(hasher)
    }
}
