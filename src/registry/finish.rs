//! Completing an upload: verify the digest, then make the blob visible under it and in
//! the repository. Nothing is written under the digest key before the bytes are verified.

use super::error::{RegistryError, RegistryResult};
use super::session::UploadSession;
use super::Registry;
use crate::oci::{media_type, Digest, Hasher, RepositoryName};
use crate::storage::{keys, BlobStore, MetaStore, Metadata, StorageError};

use crate::storage::keys::{POINTER_SIZE, POINTER_TARGET};

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Verifies and publishes a session's bytes. `hasher` is the running hash of what came
    /// through wasm, or `None` when the bytes were stored natively.
    pub(crate) async fn finish(
        &self,
        repo: &RepositoryName,
        mut session: UploadSession,
        hasher: Option<Hasher>,
        tail: Vec<u8>,
        expected: &Digest,
    ) -> RegistryResult<()> {
        let blob_key = keys::blob(expected);
        // The running hash settles it now when it is of the client's algorithm. Otherwise
        // (a first chunk stored natively, or another algorithm: `digest-algorithm` is only
        // a hint, "SHOULD include") the store hashes the assembled bytes below, still
        // before anything is visible under the digest.
        let running = hasher.filter(|h| h.algorithm() == expected.algorithm() && !session.native_chunk);
        let verified_early = running.is_some();
        if let Some(hasher) = running {
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
        let assembled = self.assemble(&mut session, tail).await?;
        if !verified_early {
            let actual = match &assembled {
                Assembled::Object(key) => self
                    .blobs
                    .digest_object(key, expected.algorithm())
                    .await?
                    .ok_or_else(|| StorageError::Backend(format!("{key} vanished before it was hashed")))?,
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
        // The session is forgotten before the blob is published: a crash between the two
        // leaves an unreferenced object (garbage), never a pointer to an object that the
        // expiry job of a still-listed session would delete.
        session.forget(&self.blobs).await?;
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
        self.link_blob(repo, expected).await
    }

    /// Puts the session's bytes in one place: the assembled object (completing the
    /// multipart upload with the tail as last part), or the tail alone when it is all.
    async fn assemble(&self, session: &mut UploadSession, tail: Vec<u8>) -> RegistryResult<Assembled> {
        let key = keys::assembled_blob(&session.id);
        if session.native_chunk {
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
