//! Deleting tags and manifests (end-9). Retention may be deleting the same keys, so every
//! delete here takes the key as retention does (`storage::retiring`): it swaps the version
//! it read for a retiring marker, deletes what goes with it while it holds the marker, then
//! deletes the marker. A key already held by a marker is being deleted: absent to a delete.

use super::error::{RegistryError, RegistryResult};
use super::Registry;
use crate::oci::manifest;
use crate::oci::{MediaType, Reference, RepositoryName};
use crate::storage::fields::{MANIFEST_MEDIA_TYPE, TAG_DIGEST};
use crate::storage::retiring::{self, Landed, Mode};
use crate::storage::{keys, BlobStore, MetaStore, Metadata, ObjectInfo, PutIf, StorageError};

/// How many times a delete reads a key that keeps changing under it before it gives up.
const ATTEMPTS: usize = 3;

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Deletes a tag, or a manifest with its tags and referrer entry (end-9). An immutable
    /// tag, and a manifest an immutable tag points at, are refused (`Immutable`) before
    /// anything is deleted.
    pub async fn delete_manifest(&self, repo: &RepositoryName, reference: &Reference) -> RegistryResult<()> {
        let unknown = || RegistryError::ManifestUnknown(reference.to_string());
        let digest = match reference {
            Reference::Tag(tag) => {
                let key = keys::tag(repo, tag);
                let info = self.blobs.head(&key).await?.filter(|i| !retiring::is_marker(&i.metadata));
                info.ok_or_else(unknown)?;
                self.refuse_deleting_tag(repo, tag)?;
                if !self.take(&key).await? {
                    return Err(unknown());
                }
                retiring::release(&self.blobs, &key).await?;
                return Ok(());
            }
            Reference::Digest(d) => d.clone(),
        };
        let link = keys::repository_manifest(repo, &digest);
        let info = self.link(repo, &digest).await?.ok_or_else(unknown)?;
        let pointing = self.tags_pointing_at(repo, &digest).await?;
        self.refuse_deleting_tagged(repo, &digest, &pointing)?;
        // The tags first: a delete that fails midway (a storage error) leaves the link, so
        // the client's retry finds the manifest and finishes. Only while a tag still points
        // here: a tag moved meanwhile is another image's.
        let target = digest.to_string();
        for tag in pointing {
            if self.take_if(&tag.key, |i| TAG_DIGEST.get(&i.metadata) == Some(target.as_str())).await? {
                retiring::release(&self.blobs, &tag.key).await?;
            }
        }
        // Held while its referrer entry goes: a push of the manifest waits for it. A failure
        // after this leaves a marker, absent to every reader, that the collector removes
        // once nobody holds it (`lifecycle::gc::prune`).
        if !self.take(&link).await? {
            return Err(unknown());
        }
        if let Some((_, bytes)) = self.blobs.get_bytes(&keys::manifest(&digest)).await? {
            let media_type = MANIFEST_MEDIA_TYPE.get(&info.metadata).unwrap_or_default();
            if let Ok(parsed) = manifest::parse(&bytes, MediaType::from_content_type(media_type).as_ref()) {
                if let Some(subject) = parsed.subject {
                    self.blobs.delete(&keys::referrer(repo, &subject.digest, &digest)).await?;
                }
            }
        }
        retiring::release(&self.blobs, &link).await?;
        Ok(())
    }

    /// Swaps the live version under `key` for a retiring marker this request then holds;
    /// false when there is none (absent, or already being deleted).
    async fn take(&self, key: &str) -> RegistryResult<bool> {
        self.take_if(key, |_| true).await
    }

    /// As [`Self::take`], only while the live version is one `wanted` accepts. Without
    /// retention (replicas) nothing is swapped: the release deletes what is there.
    async fn take_if(&self, key: &str, wanted: impl Fn(&ObjectInfo) -> bool) -> RegistryResult<bool> {
        if !self.config.yield_to_retention {
            return Ok(self.blobs.head(key).await?.is_some_and(|info| wanted(&info)));
        }
        for _ in 0..ATTEMPTS {
            let Some(info) = self.blobs.head_for_condition(key).await? else { return Ok(false) };
            if retiring::is_marker(&info.metadata) || !wanted(&info) {
                return Ok(false);
            }
            if retiring::retire(&self.blobs, key, &info.etag, self.clock.now_millis()).await? {
                return Ok(true);
            }
        }
        Err(RegistryError::Storage(StorageError::Backend(format!("{key} kept changing while it was deleted; retry"))))
    }

    /// Writes a tag or a manifest link: by `storage::retiring`'s put, which yields to
    /// retention, on one bucket; with replicas (no retention) plainly, an immutable tag
    /// create-only.
    pub(super) async fn put_yielding(
        &self,
        key: &str,
        body: Vec<u8>,
        metadata: Metadata,
        mode: Mode,
    ) -> RegistryResult<Landed> {
        if self.config.yield_to_retention {
            return Ok(retiring::put_yielding(&self.blobs, key, body, metadata, mode, self.clock.now_millis()).await?);
        }
        if mode == Mode::Overwrite {
            return Ok(Landed::Written(self.blobs.put_bytes(key, body, metadata).await?));
        }
        if let Some(info) = self.blobs.put_bytes_if(key, body, metadata, PutIf::Absent).await? {
            return Ok(Landed::Written(info));
        }
        match self.blobs.head_for_condition(key).await? {
            Some(info) => Ok(Landed::Exists(info)),
            None => {
                Err(RegistryError::Storage(StorageError::Backend(format!("{key} changed while it was written; retry"))))
            }
        }
    }
}
