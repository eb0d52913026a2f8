//! Storing what the pull-through cache fetched from an upstream, as a push would store it
//! but for the rule that a manifest's references must be present: a cache holds only what
//! clients asked for (one platform of an index, not all), and absent children are absent
//! to every reader and to the lifecycle jobs. Every write meets the collector, retention
//! and repository delete as a push's does (`collected`, `storage::retiring`,
//! `repository_delete::fence`), and nothing is stored under a digest before its bytes are
//! shown to hash to it: a blob by the store's checksum as it streams in, a manifest in
//! memory.

use super::error::{RegistryError, RegistryResult};
use super::{ManifestContent, Registry};
use crate::oci::manifest;
use crate::oci::{Algorithm, Digest, MediaType, RepositoryName, Tag};
use crate::storage::fields::{CHECKED_AT, MANIFEST_MEDIA_TYPE, PUSHED_AT, TAG_DIGEST};
use crate::storage::{keys, BlobStore, MetaStore, Metadata, NativePut};

/// How storing an upstream blob ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachedBlob {
    /// Stored (or already stored) and linked in the repository.
    Stored,
    /// The bytes did not hash to the digest: nothing was stored.
    DigestMismatch,
    /// The upstream's body broke off or ended short: nothing was stored.
    Interrupted(String),
}

/// What filling a blob from an upstream takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobFill {
    /// Not stored yet: store the upstream's bytes ([`Registry::store_upstream_blob`]).
    Store,
    /// Stored already (pushed elsewhere, or cached for another name): link it, but only
    /// once the upstream's bytes are shown to hash to the digest, so that an upstream
    /// cannot make a cache name serve content it does not have.
    LinkOnceVerified,
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// What a fill of the blob `digest` takes; refused (`503`, retry) while the collector
    /// deletes it. Asked before the upstream is, so a refusal costs no transfer.
    pub async fn upstream_blob_fill(&self, digest: &Digest) -> RegistryResult<BlobFill> {
        self.before_storing_blob(digest).await?;
        match self.blobs.head(&keys::blob(digest)).await? {
            Some(_) => Ok(BlobFill::LinkOnceVerified),
            None => Ok(BlobFill::Store),
        }
    }

    /// Stores `length` bytes of an upstream's `body` as the blob `digest` of `repo`, only
    /// if they hash to it (the store's checksum), then links it. Two requests filling the
    /// same blob at once both write the one content-addressed key with bytes the store
    /// verified: one copy, whichever lands last. A put that fails is a failure (`503`, the
    /// client retries), even if the key appeared meanwhile: that would link without proof.
    pub async fn store_upstream_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        body: B::Native,
        length: u64,
    ) -> RegistryResult<CachedBlob> {
        if length > self.blobs.max_single_put() {
            return Err(RegistryError::UpstreamTooLarge { digest: digest.clone(), size: length });
        }
        self.before_storing_blob(digest).await?;
        match self.blobs.put_verified(&keys::blob(digest), body, length, digest).await? {
            NativePut::Stored(()) => {}
            NativePut::DigestMismatch => return Ok(CachedBlob::DigestMismatch),
            NativePut::Interrupted(reason) => return Ok(CachedBlob::Interrupted(reason)),
        }
        self.link_blob(repo, digest).await?;
        Ok(CachedBlob::Stored)
    }

    /// Links the stored blob `digest` into `repo`, once the caller has shown that the
    /// upstream's bytes hash to it ([`BlobFill::LinkOnceVerified`]).
    pub async fn link_upstream_blob(&self, repo: &RepositoryName, digest: &Digest) -> RegistryResult<()> {
        self.before_storing_blob(digest).await?;
        self.link_blob(repo, digest).await
    }

    /// Stores manifest `bytes` from an upstream in `repo`, tagged `tag` if given, and
    /// returns them as stored. The children of an index that `repo` holds get their links
    /// written again (as a push's do, so that retention keeps them); absent ones stay
    /// absent. Upstream tags move as the upstream moves them: a cached tag is replaced
    /// plainly (two isolates refreshing it at once leave one of two digests the upstream
    /// named within the last `UPSTREAM_TAG_TTL_SECONDS`, corrected at the next check).
    pub async fn store_upstream_manifest(
        &self,
        repo: &RepositoryName,
        tag: Option<&Tag>,
        content_type: Option<&MediaType>,
        algorithm: Algorithm,
        bytes: Vec<u8>,
    ) -> RegistryResult<ManifestContent> {
        if bytes.len() > self.config.max_manifest_bytes {
            return Err(RegistryError::ManifestTooLarge(self.config.max_manifest_bytes));
        }
        let parsed = manifest::parse(&bytes, content_type)
            .map_err(|e| RegistryError::ManifestInvalid(format!("the upstream's manifest: {e}")))?;
        self.check_reference_count(&parsed)?;
        let digest = algorithm.digest_of(&bytes);
        let fence = self.enter_fence(repo).await?;
        self.before_storing_manifest(&digest).await?;
        // What it references and this registry holds is relied on from now: rescued from
        // the collector as a push's references are (`collected`); absent ones stay absent.
        for blob in &parsed.blobs {
            self.blob_usable(&blob.digest).await?;
        }
        self.ensure_in_catalog(repo).await?;
        let media = Metadata::from([MANIFEST_MEDIA_TYPE.entry(parsed.media_type.to_string())]);
        self.blobs.put_bytes(&keys::manifest(&digest), bytes.clone(), media.clone()).await?;
        self.meta.put(&keys::kv_manifest(&digest), bytes.clone(), Some(parsed.media_type.to_string())).await?;
        let pushed_at = self.clock.now_millis();
        for child in &parsed.manifests {
            if !self.manifest_usable(&child.digest).await? {
                continue;
            }
            if let Some(link) = self.link(repo, &child.digest).await? {
                let media = link.metadata.get(MANIFEST_MEDIA_TYPE.name()).cloned().unwrap_or_default();
                self.write_link(repo, &child.digest, Metadata::from([MANIFEST_MEDIA_TYPE.entry(media)]), pushed_at)
                    .await?;
            }
        }
        self.write_link(repo, &digest, media, pushed_at).await?;
        if let Some(tag) = tag {
            let pointer = Metadata::from([TAG_DIGEST.entry(digest.to_string()), PUSHED_AT.entry(pushed_at)]);
            self.write_tag(repo, tag, &digest, pointer).await?;
        }
        self.leave_fence(repo, fence).await?;
        Ok(ManifestContent { digest, media_type: parsed.media_type, bytes })
    }

    /// When the cached `tag` was last fetched or confirmed upstream; `None` if never.
    pub async fn upstream_checked_at(&self, repo: &RepositoryName, tag: &Tag) -> RegistryResult<Option<u64>> {
        let record = self.blobs.head(&keys::upstream_checked(repo, tag)).await?;
        Ok(record.and_then(|info| CHECKED_AT.get(&info.metadata)))
    }

    /// Records that the cached `tag` was fetched or confirmed upstream now.
    pub async fn mark_upstream_checked(&self, repo: &RepositoryName, tag: &Tag) -> RegistryResult<()> {
        let metadata = Metadata::from([CHECKED_AT.entry(self.clock.now_millis())]);
        self.blobs.put_bytes(&keys::upstream_checked(repo, tag), Vec::new(), metadata).await?;
        Ok(())
    }
}
