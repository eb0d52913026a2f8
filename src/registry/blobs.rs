//! Reading and deleting blobs in a repository (end-2, end-10).

use super::error::{RegistryError, RegistryResult};
use super::Registry;
use crate::oci::{Digest, RepositoryName};
use crate::storage::fields::{POINTER_SIZE, POINTER_TARGET};
use crate::storage::{keys, BlobStore, ByteRange, MetaStore, ObjectInfo};

/// A blob's size, as HEAD reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobStat {
    pub size: u64,
}

/// A blob opened for reading.
pub struct BlobRead<T> {
    pub size: u64,
    /// The part to send, or `None` for all of it.
    pub range: Option<ByteRange>,
    pub body: T,
    /// Served from the platform's cache rather than R2.
    pub from_cache: bool,
}

/// Where a blob's bytes live (the object key) and how many there are, after following a
/// multipart pointer.
struct BlobLocation {
    key: String,
    size: u64,
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Size of a blob that `repo` may serve.
    pub async fn stat_blob(&self, repo: &RepositoryName, digest: &Digest) -> RegistryResult<BlobStat> {
        // A push asks before it skips an upload: content the collector is deleting is
        // unknown (the client uploads it again), condemned content is rescued. The state
        // first, then the link and bytes (`collected`).
        if !self.blob_usable(digest).await? {
            return Err(RegistryError::BlobUnknown(digest.clone()));
        }
        let located = self.locate(repo, digest).await?;
        Ok(BlobStat { size: located.size })
    }

    /// Opens a blob, or `range` of it, for streaming. `range` is resolved against the
    /// size by the caller through `resolve`.
    pub async fn open_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        resolve: impl FnOnce(u64) -> RegistryResult<Option<ByteRange>>,
    ) -> RegistryResult<BlobRead<B::Body>> {
        let located = self.locate(repo, digest).await?;
        let range = resolve(located.size)?;
        if range.is_none() {
            if let Some(copy) = self.blobs.cached(&keys::cache_name(digest)).await? {
                return Ok(BlobRead { size: located.size, range, body: copy.body, from_cache: true });
            }
        }
        let object =
            self.blobs.get(&located.key, range).await?.ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))?;
        Ok(BlobRead { size: located.size, range, body: object.body, from_cache: false })
    }

    /// Removes a blob from `repo` (end-10). The shared bytes stay for other repositories.
    pub async fn delete_blob(&self, repo: &RepositoryName, digest: &Digest) -> RegistryResult<()> {
        let link = keys::repository_blob(repo, digest);
        if self.blobs.head(&link).await?.is_none() {
            return Err(RegistryError::BlobUnknown(digest.clone()));
        }
        self.blobs.delete(&link).await?;
        Ok(())
    }

    async fn locate(&self, repo: &RepositoryName, digest: &Digest) -> RegistryResult<BlobLocation> {
        let unknown = || RegistryError::BlobUnknown(digest.clone());
        if self.blobs.head(&keys::repository_blob(repo, digest)).await?.is_none() {
            return Err(unknown());
        }
        let key = keys::blob(digest);
        let info = self.blobs.head(&key).await?.ok_or_else(unknown)?;
        Ok(follow_pointer(key, &info))
    }
}

/// A blob assembled by multipart upload is an empty pointer naming the assembled object.
fn follow_pointer(key: String, info: &ObjectInfo) -> BlobLocation {
    match (POINTER_TARGET.get(&info.metadata), POINTER_SIZE.get(&info.metadata)) {
        (Some(target), Some(size)) => BlobLocation { key: target.to_owned(), size },
        _ => BlobLocation { key, size: info.size },
    }
}
