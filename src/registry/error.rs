//! The domain's one error enum. `api::error` maps each variant once to a status and a spec code.

use super::immutable::ImmutableRefusal;
use crate::oci::Digest;
use crate::storage::StorageError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    #[error("repository {0} is not known to this registry")]
    NameUnknown(String),
    #[error("blob {0} is not known in this repository")]
    BlobUnknown(Digest),
    #[error("upload session is not known (it may have completed, been cancelled or expired)")]
    UploadUnknown,
    #[error("invalid upload: {0}")]
    UploadInvalid(String),
    #[error("chunk must start at byte {expected}, the current size of the upload")]
    ChunkOutOfOrder { expected: u64 },
    #[error("invalid digest: {0}")]
    DigestInvalid(String),
    #[error("invalid manifest: {0}")]
    ManifestInvalid(String),
    #[error("manifest {0} is not known in this repository")]
    ManifestUnknown(String),
    #[error("manifest references {0}, which is not in this repository; push it first")]
    ManifestBlobUnknown(Digest),
    #[error("manifest is larger than the {0}-byte limit")]
    ManifestTooLarge(usize),
    #[error("requested range is not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("request body is over this registry's {0}-byte limit")]
    BodyTooLarge(u64),
    #[error("request body broke off: {0}")]
    BodyInterrupted(String),
    #[error("{0} is being deleted by the garbage collector (unreferenced for longer than the grace period); retry in a minute and it can be pushed again")]
    BeingCollected(Digest),
    #[error("{0}")]
    Immutable(ImmutableRefusal),
    /// A push into a repository being deleted (the message says which case and what to do).
    #[error("{0}")]
    RepositoryDeleting(String),
    /// An upstream blob over the largest object one put may store (R2: 5 GiB).
    #[error("upstream blob {digest} has {size} bytes, more than this cache stores in one put (5 GiB); pull it from the upstream directly")]
    UpstreamTooLarge { digest: Digest, size: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub type RegistryResult<T> = Result<T, RegistryError>;
