//! Completing an upload: verify the digest, then make the blob visible under it and in
//! the repository. Nothing is written under the digest key before the bytes are verified.

use super::error::{RegistryError, RegistryResult};
use super::session::UploadSession;
use super::Registry;
use crate::oci::{media_type, Algorithm, Digest, Hasher, RepositoryName};
use crate::storage::{keys, BlobStore, ByteRange, MetaStore, Metadata, StorageError};

/// Metadata key on a blob pointer naming the assembled object.
pub(crate) const POINTER_TARGET: &str = "assembled";
/// Metadata key on a blob pointer holding the blob's size.
pub(crate) const POINTER_SIZE: &str = "size";

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Verifies and publishes a session's bytes. `hasher` is the running hash of what came
    /// through wasm, or `None` when the bytes were stored and hashed natively.
    pub(crate) async fn finish(
        &self,
        repo: &RepositoryName,
        mut session: UploadSession,
        hasher: Option<Hasher>,
        tail: Vec<u8>,
        expected: &Digest,
    ) -> RegistryResult<()> {
        let blob_key = keys::blob(expected);
        // `digest-algorithm` is only a hint ("SHOULD include"): a client may close a
        // session hashed with sha256 by a sha512 digest. Then the bytes are hashed again
        // below, still before anything is visible under the digest.
        let session_algorithm = session.algorithm()?;
        if session_algorithm == expected.algorithm() {
            let actual = match (hasher, &session.native_digest) {
                (Some(hasher), _) => hasher.finish(),
                (None, Some(hex)) => format!("{}:{hex}", session_algorithm.as_str())
                    .parse()
                    .map_err(|_| StorageError::Backend("native digest is corrupt".into()))?,
                (None, None) => return Err(StorageError::Backend("upload has no hash".into()).into()),
            };
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
        let assembled = self.assemble(&mut session, tail).await?;
        if session_algorithm != expected.algorithm() {
            let actual = match &assembled {
                Assembled::Object(key) => self.rehash(key, session.offset, expected.algorithm()).await?,
                Assembled::Bytes(bytes) => expected.algorithm().digest_of(bytes),
            };
            let already_stored = self.blobs.head(&blob_key).await?.is_some();
            if actual != *expected || already_stored {
                session.discard(&self.blobs).await?;
                if actual != *expected {
                    return Err(mismatch(&actual, expected));
                }
                return self.link_blob(repo, expected).await;
            }
        }
        match assembled {
            Assembled::Object(key) => {
                let pointer = Metadata::from([
                    (POINTER_TARGET.to_owned(), key),
                    (POINTER_SIZE.to_owned(), session.offset.to_string()),
                ]);
                self.blobs.put_bytes(&blob_key, Vec::new(), pointer).await?;
            }
            Assembled::Bytes(bytes) => {
                self.blobs.put_bytes(&blob_key, bytes, Metadata::new()).await?;
            }
        }
        session.forget(&self.blobs).await?;
        self.link_blob(repo, expected).await
    }

    /// Puts the session's bytes in one place: the assembled object (completing the
    /// multipart upload with the tail as last part), or the tail alone when it is all.
    async fn assemble(&self, session: &mut UploadSession, tail: Vec<u8>) -> RegistryResult<Assembled> {
        let key = keys::assembled_blob(&session.id);
        if session.native_digest.is_some() {
            return Ok(Assembled::Object(key));
        }
        let Some(multipart_id) = session.multipart_id.clone() else { return Ok(Assembled::Bytes(tail)) };
        if !tail.is_empty() {
            self.upload_part(session, tail).await?;
        }
        self.blobs.complete_multipart(&key, &multipart_id, &session.parts).await?;
        session.multipart_id = None;
        Ok(Assembled::Object(key))
    }

    /// Hashes a stored object one part at a time, so memory stays at one part.
    async fn rehash(&self, key: &str, size: u64, algorithm: Algorithm) -> RegistryResult<Digest> {
        let mut hasher = Hasher::new(algorithm);
        let mut offset = 0;
        while offset < size {
            let length = self.config.part_size.min(size - offset);
            let bytes = self
                .blobs
                .read_range(key, ByteRange { offset, length })
                .await?
                .ok_or_else(|| StorageError::Backend(format!("{key} vanished while hashing")))?;
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

/// Where a session's bytes are once assembled.
enum Assembled {
    /// In the assembled object (multipart or native), reached through a pointer.
    Object(String),
    /// Small enough to have stayed in the tail: written under the digest key directly.
    Bytes(Vec<u8>),
}

fn mismatch(actual: &Digest, expected: &Digest) -> RegistryError {
    RegistryError::DigestInvalid(format!("the uploaded bytes hash to {actual}, not {expected}; nothing was stored"))
}
