//! Pushing and pulling manifests (end-3, end-7); deleting them is `deletes.rs`.
//!
//! "The registry MUST store the manifest in the exact byte representation provided by the
//! client": bytes go to R2 untouched and are served back byte for byte; parsing is for
//! validation and indexing only. Writes go in an order that never lets a tag or index
//! entry point at something not yet stored: bytes, repository link, referrer, tags.
//! Tags and links are stamped with when they were pushed (`pushed-at`, for retention).
//! Immutable tags (`immutable.rs`) are never moved or deleted. A push into a repository
//! being deleted is refused, before it writes and after (`repository_delete::fence`).

use super::error::{RegistryError, RegistryResult};
use super::Registry;
use crate::oci::manifest::{self, ParsedManifest};
use crate::oci::MediaType;
use crate::oci::{Digest, Reference, RepositoryName, Tag};
use crate::storage::fields::{MANIFEST_MEDIA_TYPE, PUSHED_AT, TAG_DIGEST};
use crate::storage::retiring::{self, Mode};
use crate::storage::{self, keys, BlobStore, ListedKey, MetaStore, Metadata, ObjectInfo};
use std::collections::HashSet;

/// The outcome of a manifest push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedManifest {
    pub digest: Digest,
    /// The `subject` the manifest refers to, for the `OCI-Subject` response header.
    pub subject: Option<Digest>,
    /// Every tag now pointing at the manifest.
    pub tags: Vec<Tag>,
}

/// A manifest as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestContent {
    pub digest: Digest,
    pub media_type: MediaType,
    pub bytes: Vec<u8>,
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Stores a manifest under `reference` plus any extra `tags` (end-7a, end-7b), given the
    /// media type the request's `Content-Type` names, if any.
    ///
    /// A push that would move an immutable tag is refused with `Immutable`: before any
    /// write when the tag already points elsewhere, else by the tag's create-only put,
    /// which a racing push may win. Refused that late, the push leaves its manifest bytes,
    /// KV entry and repository link (an untagged manifest, harmless, collectable like any
    /// other) and any new immutable tags of the same push created before the refused one
    /// (immutable tags go first, so no mutable tag moved); no existing tag changed.
    pub async fn put_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        extra_tags: &[Tag],
        content_type: Option<&MediaType>,
        bytes: Vec<u8>,
    ) -> RegistryResult<PushedManifest> {
        if bytes.len() > self.config.max_manifest_bytes {
            return Err(RegistryError::ManifestTooLarge(self.config.max_manifest_bytes));
        }
        let parsed =
            manifest::parse(&bytes, content_type).map_err(|e| RegistryError::ManifestInvalid(e.to_string()))?;
        self.check_reference_count(&parsed)?;
        let digest = match reference {
            Reference::Digest(claimed) => {
                let actual = claimed.algorithm().digest_of(&bytes);
                if actual != *claimed {
                    return Err(RegistryError::DigestInvalid(format!(
                        "the manifest bytes hash to {actual}, not {claimed}"
                    )));
                }
                actual
            }
            Reference::Tag(_) => crate::oci::Algorithm::Sha256.digest_of(&bytes),
        };
        // Before anything it relies on is checked or written: see `repository_delete::fence`.
        let fence = self.enter_fence(repo).await?;
        let (missing_empty_json, mut children) = self.check_references(repo, &parsed).await?;
        let below = self.descendants(repo, &children).await?;
        children.extend(below);
        let tags = self.tags_to_write(repo, reference, extra_tags);
        self.refuse_moving_immutable_tags(repo, &tags, &digest).await?;
        self.before_storing_manifest(&digest).await?;
        // The catalog entry before any link: the collector finds repositories through it.
        self.ensure_in_catalog(repo).await?;

        if let Some(empty) = missing_empty_json {
            self.store_empty_json(repo, &empty).await?;
        }
        let media = Metadata::from([MANIFEST_MEDIA_TYPE.entry(parsed.media_type.to_string())]);
        self.blobs.put_bytes(&keys::manifest(&digest), bytes.clone(), media.clone()).await?;
        self.meta.put(&keys::kv_manifest(&digest), bytes, Some(parsed.media_type.to_string())).await?;
        let pushed_at = self.clock.now_millis();
        // Each descendant's link is written again first (the deepest ones' too), so that
        // retention cannot be deleting one the index relies on (`storage::retiring`).
        for (child, metadata) in children {
            self.write_link(repo, &child, metadata, pushed_at).await?;
        }
        self.write_link(repo, &digest, media, pushed_at).await?;
        if let Some(subject) = &parsed.subject {
            self.add_referrer(repo, &subject.digest, &digest, &parsed).await?;
        }
        for tag in &tags {
            let pointer = Metadata::from([TAG_DIGEST.entry(digest.to_string()), PUSHED_AT.entry(pushed_at)]);
            self.write_tag(repo, tag, &digest, pointer).await?;
        }
        self.leave_fence(repo, fence).await?;
        Ok(PushedManifest { digest, subject: parsed.subject.map(|s| s.digest), tags })
    }

    /// The tags a push points at its manifest, each once: the reference's, then the extra
    /// ones, immutable tags first.
    fn tags_to_write(&self, repo: &RepositoryName, reference: &Reference, extra_tags: &[Tag]) -> Vec<Tag> {
        let mut tags: Vec<Tag> = Vec::new();
        let named = if let Reference::Tag(tag) = reference { Some(tag) } else { None };
        for tag in named.into_iter().chain(extra_tags) {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        tags.sort_by_key(|tag| self.config.immutable_tags.rule_for(repo, tag).is_none());
        tags
    }

    /// Writes `repo`'s link to the manifest `digest`, stamped `pushed_at` (in its bytes too,
    /// so that every push changes its etag), yielding to retention (`storage::retiring`).
    pub(super) async fn write_link(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        mut link: Metadata,
        pushed_at: u64,
    ) -> RegistryResult<()> {
        PUSHED_AT.set(&mut link, pushed_at);
        let (key, body) = (keys::repository_manifest(repo, digest), format!("pushed at {pushed_at}").into_bytes());
        self.put_yielding(&key, body, link, Mode::Overwrite).await?;
        Ok(())
    }

    /// `repo`'s link to the manifest `digest`, unless absent (or being deleted by retention).
    pub(super) async fn link(&self, repo: &RepositoryName, digest: &Digest) -> RegistryResult<Option<ObjectInfo>> {
        let link = self.blobs.head(&keys::repository_manifest(repo, digest)).await?;
        Ok(link.filter(|info| !retiring::is_marker(&info.metadata)))
    }

    /// The manifests below an index's children (a child index's own manifests, and so on),
    /// each with its link's metadata, for the push to write their links again too:
    /// retention may be deleting a grandchild that only an untagged child index names, and
    /// a link written again is kept (`storage::retiring`). Each must be in the repository
    /// as a child must (a live link, content the collector is not deleting), and all of
    /// them with the children count against `MAX_MANIFEST_REFERENCES`. One read per
    /// nested index, and none without retention (replicas).
    async fn descendants(
        &self,
        repo: &RepositoryName,
        children: &[(Digest, Metadata)],
    ) -> RegistryResult<Vec<(Digest, Metadata)>> {
        let mut found: Vec<(Digest, Metadata)> = Vec::new();
        if !self.config.yield_to_retention {
            return Ok(found);
        }
        let limit = self.config.max_manifest_references;
        let media_of = |m: &Metadata| MediaType::from(MANIFEST_MEDIA_TYPE.get(m).unwrap_or_default());
        let mut seen: HashSet<Digest> = children.iter().map(|(d, _)| d.clone()).collect();
        let mut pending: Vec<Digest> =
            children.iter().filter(|(_, m)| media_of(m).is_index()).map(|(d, _)| d.clone()).collect();
        while let Some(index) = pending.pop() {
            let Some((info, bytes)) = self.blobs.get_bytes(&keys::manifest(&index)).await? else { continue };
            let Ok(parsed) = manifest::parse(&bytes, Some(&media_of(&info.metadata))) else { continue };
            for child in parsed.manifests {
                if !seen.insert(child.digest.clone()) {
                    continue;
                }
                if seen.len() > limit {
                    return Err(RegistryError::ManifestInvalid(format!(
                        "with the manifests its indexes name in turn, it references over {limit} manifests, this \
                         registry's limit (MAX_MANIFEST_REFERENCES); split it into several indexes"
                    )));
                }
                let link = match self.manifest_usable(&child.digest).await? {
                    true => self.link(repo, &child.digest).await?,
                    false => None,
                };
                let Some(link) = link else { return Err(RegistryError::ManifestBlobUnknown(child.digest)) };
                // The media type its link names, never what the nesting index claims.
                let media = media_of(&link.metadata);
                if media.is_index() {
                    pending.push(child.digest.clone());
                }
                found.push((child.digest, Metadata::from([MANIFEST_MEDIA_TYPE.entry(media.to_string())])));
            }
        }
        Ok(found)
    }

    /// Fetches a manifest by tag or digest (end-3).
    pub async fn get_manifest(&self, repo: &RepositoryName, reference: &Reference) -> RegistryResult<ManifestContent> {
        let digest = self.resolve(repo, reference).await?;
        let unknown = || RegistryError::ManifestUnknown(reference.to_string());
        let link = self.link(repo, &digest).await?.ok_or_else(unknown)?;
        let media_type = MediaType::from(MANIFEST_MEDIA_TYPE.get(&link.metadata).unwrap_or_default());
        if let Some(entry) = self.meta.get(&keys::kv_manifest(&digest)).await? {
            return Ok(ManifestContent { digest, media_type, bytes: entry.value });
        }
        // KV is eventually consistent: on a miss, R2 is the truth.
        let (_, bytes) = self.blobs.get_bytes(&keys::manifest(&digest)).await?.ok_or_else(unknown)?;
        Ok(ManifestContent { digest, media_type, bytes })
    }

    async fn resolve(&self, repo: &RepositoryName, reference: &Reference) -> RegistryResult<Digest> {
        match reference {
            Reference::Digest(d) => Ok(d.clone()),
            Reference::Tag(tag) => {
                let unknown = || RegistryError::ManifestUnknown(reference.to_string());
                let info = self.blobs.head(&keys::tag(repo, tag)).await?.ok_or_else(unknown)?;
                let target = TAG_DIGEST.get(&info.metadata).ok_or_else(unknown)?;
                target.parse().map_err(|_| unknown())
            }
        }
    }

    /// Bounds the work one push causes: each reference is checked with a storage call,
    /// and one request may make at most 1,000. Refused as the spec's `MANIFEST_INVALID`
    /// ("manifest invalid", error code-6), a 400, with a message naming the limit.
    pub(super) fn check_reference_count(&self, parsed: &ParsedManifest) -> RegistryResult<()> {
        let count = parsed.blobs.len() + parsed.manifests.len();
        let limit = self.config.max_manifest_references;
        if count > limit {
            return Err(RegistryError::ManifestInvalid(format!(
                "it references {count} blobs and manifests, over this registry's limit of {limit} \
                 (MAX_MANIFEST_REFERENCES); split it into several manifests under an index"
            )));
        }
        Ok(())
    }

    /// "The registry MAY reject a manifest ... with descriptors in other fields that
    /// reference a manifest or blob that does not exist ... it MUST result in one or more
    /// `MANIFEST_BLOB_UNKNOWN` errors". A `subject` may dangle. The empty JSON blob `{}`
    /// is known to everyone, so a manifest may use it unpushed; its digest is returned so
    /// the registry stores it once the manifest is accepted. So are the children (an
    /// index's manifests) with their links' metadata, for the push to write them again.
    async fn check_references(
        &self,
        repo: &RepositoryName,
        parsed: &ParsedManifest,
    ) -> RegistryResult<(Option<Digest>, Vec<(Digest, Metadata)>)> {
        let mut missing_empty_json = None;
        for blob in &parsed.blobs {
            // The collector's state first, then the link (`collected`): a link seen after a
            // state read as kept is one the collector has not removed.
            let usable = self.blob_usable(&blob.digest).await?;
            if self.blobs.head(&keys::repository_blob(repo, &blob.digest)).await?.is_some() {
                if usable {
                    continue;
                }
                return Err(RegistryError::ManifestBlobUnknown(blob.digest.clone()));
            }
            if Self::is_empty_json(&blob.digest) {
                missing_empty_json = Some(blob.digest.clone());
                continue;
            }
            return Err(RegistryError::ManifestBlobUnknown(blob.digest.clone()));
        }
        let mut children = Vec::with_capacity(parsed.manifests.len());
        for child in &parsed.manifests {
            let link = match self.manifest_usable(&child.digest).await? {
                true => self.link(repo, &child.digest).await?,
                false => None,
            };
            let Some(link) = link else { return Err(RegistryError::ManifestBlobUnknown(child.digest.clone())) };
            if !children.iter().any(|(d, _)| d == &child.digest) {
                let media = link.metadata.get(MANIFEST_MEDIA_TYPE.name()).cloned().unwrap_or_default();
                children.push((child.digest.clone(), Metadata::from([MANIFEST_MEDIA_TYPE.entry(media)])));
            }
        }
        Ok((missing_empty_json, children))
    }

    async fn store_empty_json(&self, repo: &RepositoryName, digest: &Digest) -> RegistryResult<()> {
        let key = keys::blob(digest);
        self.before_storing_blob(digest).await?;
        if self.blobs.head(&key).await?.is_none() {
            self.blobs.put_bytes(&key, b"{}".to_vec(), Metadata::new()).await?;
        }
        // Within the manifest push's fence.
        self.link_blob_unfenced(repo, digest).await
    }

    /// The tags of `repo` pointing at `digest`, as listed.
    pub(super) async fn tags_pointing_at(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> RegistryResult<Vec<ListedKey>> {
        let target = digest.to_string();
        let mut tags = storage::list_all(&self.blobs, &keys::tags_prefix(repo)).await?;
        tags.retain(|entry| TAG_DIGEST.get(&entry.metadata) == Some(target.as_str()));
        Ok(tags)
    }
}
