//! Where pushes meet the garbage collector: before a push relies on content that may
//! already be stored (skips an upload, links a blob, references it from a manifest, writes
//! a manifest's bytes), it checks the content's collector state, rescuing condemned
//! content and refusing content being deleted. The protocol and why it keeps every image
//! whole: `storage::content_state`.

use super::error::{RegistryError, RegistryResult};
use super::Registry;
use crate::oci::Digest;
use crate::storage::content_state::{check_before_use, Usable};
use crate::storage::{keys, BlobStore, MetaStore};

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Whether the blob `digest` may be relied on (kept for at least the grace period).
    pub(crate) async fn blob_usable(&self, digest: &Digest) -> RegistryResult<bool> {
        Ok(check_before_use(&self.blobs, &keys::blob(digest)).await? == Usable::Yes)
    }

    /// Whether the manifest bytes of `digest` may be relied on.
    pub(crate) async fn manifest_usable(&self, digest: &Digest) -> RegistryResult<bool> {
        Ok(check_before_use(&self.blobs, &keys::manifest(digest)).await? == Usable::Yes)
    }

    /// Before the blob `digest` is stored or linked: refused (`503`, retry) while the
    /// collector deletes it, since a copy written now could be deleted with it.
    pub(crate) async fn before_storing_blob(&self, digest: &Digest) -> RegistryResult<()> {
        match self.blob_usable(digest).await? {
            true => Ok(()),
            false => Err(RegistryError::BeingCollected(digest.clone())),
        }
    }

    /// Before a blob pointer naming the assembled object `key` is published: refused
    /// (`503`, retry) while the collector deletes that object as an upload's leftover; a
    /// condemned one is rescued.
    pub(crate) async fn before_publishing_assembled(&self, key: &str, digest: &Digest) -> RegistryResult<()> {
        match check_before_use(&self.blobs, key).await? {
            Usable::Yes => Ok(()),
            Usable::Collected => Err(RegistryError::BeingCollected(digest.clone())),
        }
    }

    /// Before the manifest bytes of `digest` are written: as [`Self::before_storing_blob`].
    pub(crate) async fn before_storing_manifest(&self, digest: &Digest) -> RegistryResult<()> {
        match self.manifest_usable(digest).await? {
            true => Ok(()),
            false => Err(RegistryError::BeingCollected(digest.clone())),
        }
    }
}
