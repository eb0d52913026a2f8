//! Completing an upload: verify the digest, then make the blob visible under it and in
//! the repository. Nothing is written under the digest key before the bytes are verified.

use super::error::{RegistryError, RegistryResult};
use super::session::UploadSession;
use super::Registry;
use crate::oci::{media_type, Digest, Hasher, RepositoryName};
use crate::storage::{keys, BlobStore, MetaStore, Metadata, StorageError};

use crate::storage::fields::{POINTER_SIZE, POINTER_TARGET};

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Verifies and publishes a claimed session's bytes. `hasher` is the running hash of
    /// what came through wasm, or `None` when the bytes were stored natively.
    ///
    /// The running hash is trusted only for bytes it can be shown to cover: parts the
    /// committed state lists by the etag their upload returned (R2 completes a multipart
    /// upload only with those, and refuses one whose part was uploaded again), a tail
    /// checked against its saved etag and size, and an assembled object of exactly
    /// `offset` bytes. So is the digest the store took of a native chunk as it stored it
    /// (`stored_digest`: the same request wrote and hashed those bytes). Anything else (a
    /// native chunk of unknown digest, a session taken over from a writer that may still be
    /// uploading, a size that does not add up) is hashed again by the store before anything
    /// is visible under the digest.
    pub(crate) async fn finish(
        &self,
        repo: &RepositoryName,
        session: &mut UploadSession,
        hasher: Option<Hasher>,
        tail: Vec<u8>,
        expected: &Digest,
    ) -> RegistryResult<()> {
        let blob_key = keys::blob(expected);
        // Before anything is stored or linked under the digest (see `collected`).
        self.before_storing_blob(expected).await?;
        // The running hash settles it now when it is of the client's algorithm. Otherwise
        // (`digest-algorithm` is only a hint, "SHOULD include") the store hashes the
        // assembled bytes below, still before anything is visible under the digest.
        let running =
            hasher.filter(|h| h.algorithm() == expected.algorithm() && !session.native_chunk && !session.reverify);
        let mut verified = false;
        if let Some(actual) = running.map(Hasher::finish).or_else(|| stored_digest(session, expected)) {
            if actual != *expected {
                self.end_session(session).await?;
                return Err(mismatch(&actual, expected));
            }
            if self.blobs.head(&blob_key).await?.is_some() {
                // Already stored (global dedup): keep the one copy.
                self.end_session(session).await?;
                return self.link_blob(repo, expected).await;
            }
            verified = true;
        }
        let (assembled, whole) = self.assemble(session, tail).await?;
        if !verified || !whole {
            let actual = match &assembled {
                Assembled::Object(key) => self
                    .blobs
                    .digest_object(key, expected.algorithm())
                    .await?
                    .ok_or_else(|| StorageError::Backend(format!("{key} vanished before it was hashed")))?,
                Assembled::Tail(bytes) => expected.algorithm().digest_of(bytes),
            };
            let already_stored = self.blobs.head(&blob_key).await?.is_some();
            if actual != *expected || already_stored {
                self.end_session(session).await?;
                if actual != *expected {
                    return Err(mismatch(&actual, expected));
                }
                return self.link_blob(repo, expected).await;
            }
        }
        // Closed first, so that no other request can still write this session; then the
        // session's bookkeeping is removed before the blob is published: a crash between the two
        // leaves an unreferenced object (garbage), never a pointer to an object that the
        // expiry job of a still-listed session would delete.
        if let Assembled::Object(key) = &assembled {
            self.before_publishing_assembled(key, expected).await?;
        }
        session.close(&self.blobs, self.clock.now_millis()).await?;
        session.remove_keeping_object(&self.blobs).await?;
        match assembled {
            Assembled::Object(key) => {
                let pointer = Metadata::from([POINTER_TARGET.entry(key), POINTER_SIZE.entry(session.offset)]);
                self.blobs.put_bytes(&blob_key, Vec::new(), pointer).await?;
            }
            Assembled::Tail(bytes) => {
                self.blobs.put_bytes(&blob_key, bytes, Metadata::new()).await?;
            }
        }
        self.link_blob(repo, expected).await
    }

    /// Puts the session's bytes in one place: the assembled object (completing the
    /// multipart upload with the tail as last part), or the tail alone when it is all.
    /// Also says whether the result holds exactly `offset` bytes.
    async fn assemble(&self, session: &mut UploadSession, tail: Vec<u8>) -> RegistryResult<(Assembled, bool)> {
        if session.native_chunk {
            // Whole as stored: the store's digest, if it took one, covers exactly its bytes.
            return Ok((Assembled::Object(session.object_key()), session.stored_digest.is_some()));
        }
        let Some(multipart_id) = session.multipart_id.clone() else {
            let whole = tail.len() as u64 == session.offset;
            return Ok((Assembled::Tail(tail), whole));
        };
        if !tail.is_empty() {
            self.upload_part(session, tail).await?;
        }
        let key = session.object_key();
        let info = match self.blobs.complete_multipart(&key, &multipart_id, &session.parts).await {
            Ok(info) => info,
            // A writer that lost its claim may have uploaded a part over one this state
            // lists, and R2 then refuses the completion: the session cannot be finished,
            // and the client restarts the blob.
            Err(_) if session.reverify => {
                self.end_session(session).await?;
                return Err(RegistryError::UploadUnknown);
            }
            Err(e) => return Err(e.into()),
        };
        // From here the assembled object holds the bytes: saved at once, so that a retry
        // after any later failure finds them there (hashed by the store, as a native
        // chunk is) rather than in a multipart upload that no longer exists.
        session.multipart_id = None;
        session.parts.clear();
        session.native_chunk = true;
        self.store_tail(session, &[]).await?;
        session.checkpoint(&self.blobs, self.clock.now_millis()).await?;
        Ok((Assembled::Object(key), info.size == session.offset))
    }

    /// Lets `repo` serve `digest`, and records the repository in the catalog; refused
    /// while `repo` is being deleted (`repository_delete::fence`).
    pub(crate) async fn link_blob(&self, repo: &RepositoryName, digest: &Digest) -> RegistryResult<()> {
        self.enter_fence(repo).await?;
        self.link_blob_unfenced(repo, digest).await
    }

    /// [`Self::link_blob`] within a fence the caller entered.
    pub(crate) async fn link_blob_unfenced(&self, repo: &RepositoryName, digest: &Digest) -> RegistryResult<()> {
        // The catalog entry first: the collector finds repositories through the catalog,
        // so no link may exist in one it cannot find.
        self.ensure_in_catalog(repo).await?;
        self.blobs.put_bytes(&keys::repository_blob(repo, digest), Vec::new(), Metadata::new()).await?;
        Ok(())
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

/// Where a session's bytes are once assembled, as `Registry::assemble` returns it. The name
/// fits: each variant is the place the bytes were assembled in.
enum Assembled {
    /// In the assembled object (multipart or native), reached through a pointer.
    Object(String),
    /// Small enough to have stayed in the tail: written under the digest key directly.
    Tail(Vec<u8>),
}

/// The digest the store took of the session's native chunk as it stored it, when it is of
/// the client's algorithm and the session was not taken over from another writer.
fn stored_digest(session: &UploadSession, expected: &Digest) -> Option<Digest> {
    let stored: Digest = session.stored_digest.as_deref()?.parse().ok()?;
    (session.native_chunk && !session.reverify && stored.algorithm() == expected.algorithm()).then_some(stored)
}

fn mismatch(actual: &Digest, expected: &Digest) -> RegistryError {
    RegistryError::DigestInvalid(format!("the uploaded bytes hash to {actual}, not {expected}; nothing was stored"))
}
