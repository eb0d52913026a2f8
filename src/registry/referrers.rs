//! The referrers API (end-12): manifests whose `subject` names a digest.
//!
//! Each referrer is a small R2 object under its subject's prefix, carrying the descriptor
//! the API lists in its custom metadata, so one listing answers a query.

use super::error::RegistryResult;
use super::Registry;
use crate::oci::manifest::ParsedManifest;
use crate::oci::{Descriptor, Digest, RepositoryName};
use crate::storage::fields::REFERRER_DESCRIPTOR;
use crate::storage::{self, keys, limits, BlobStore, MetaStore, Metadata};

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    pub(crate) async fn add_referrer(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        digest: &Digest,
        parsed: &ParsedManifest,
    ) -> RegistryResult<()> {
        let size = self.blobs.head(&keys::manifest(digest)).await?.map(|i| i.size).unwrap_or(0);
        let descriptor = Descriptor {
            media_type: parsed.media_type.clone(),
            digest: digest.clone(),
            size,
            artifact_type: parsed.referrer_artifact_type(),
            annotations: parsed.annotations.clone(),
            urls: None,
        };
        let json = serde_json::to_string(&descriptor).expect("descriptors always serialise");
        // Large annotation sets do not fit R2's metadata limit; those are read from the body.
        let metadata = if json.len() <= limits::R2_MAX_METADATA_BYTES / 2 {
            Metadata::from([REFERRER_DESCRIPTOR.entry(json.clone())])
        } else {
            Metadata::new()
        };
        self.blobs.put_bytes(&keys::referrer(repo, subject, digest), json.into_bytes(), metadata).await?;
        Ok(())
    }

    /// Descriptors of every manifest in `repo` whose subject is `subject`, optionally only
    /// those of `artifact_type`. "If a query results in no matching referrers, an empty
    /// manifest list MUST be returned."
    pub async fn referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> RegistryResult<Vec<Descriptor>> {
        let mut found = Vec::new();
        for entry in storage::list_all(&self.blobs, &keys::referrers_prefix(repo, subject)).await? {
            let json = match REFERRER_DESCRIPTOR.get(&entry.metadata) {
                Some(json) => json.as_bytes().to_vec(),
                None => match self.blobs.get_bytes(&entry.key).await? {
                    Some((_, body)) => body,
                    None => continue,
                },
            };
            let Ok(descriptor) = serde_json::from_slice::<Descriptor>(&json) else { continue };
            if artifact_type.is_none_or(|t| descriptor.artifact_type.as_ref().is_some_and(|a| a == t)) {
                found.push(descriptor);
            }
        }
        Ok(found)
    }
}
