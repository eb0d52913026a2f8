//! Deleting a whole repository (admin): every tag, manifest link, referrer entry and blob
//! link under it, then its catalog entry. The shared bytes stay: the garbage collector
//! deletes what no other repository uses, a grace period later. A big repository is
//! deleted over several requests, each removing at most a budget of keys (the client, or
//! `scripts/repo-delete`, repeats until done); tags go first, so that the repository stops
//! serving images at once. A repository holding an immutable tag is refused, as a delete
//! of that tag is.

use super::error::{RegistryError, RegistryResult};
use super::immutable::{ImmutableRefusal, Refused};
use super::Registry;
use crate::oci::{RepositoryName, Tag};
use crate::storage::{keys, BlobStore, MetaStore};

/// Keys one request removes at most (each delete is a storage call; a request may make
/// 1,000).
pub const REPOSITORY_DELETE_BUDGET: usize = 800;

/// How far a repository delete got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RepositoryDeletion {
    /// Keys removed by this request.
    pub deleted: usize,
    /// Nothing of the repository is left (its catalog entry is gone too).
    pub done: bool,
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Removes up to `budget` keys of `repo` (see the module docs); `NAME_UNKNOWN` when
    /// there is no such repository.
    pub async fn delete_repository(&self, repo: &RepositoryName, budget: usize) -> RegistryResult<RepositoryDeletion> {
        // `repositories/<name>/_`: this repository's keys, none of a nested one's.
        let root = keys::repository_own_prefix(repo);
        let catalog = keys::catalog_entry(repo);
        let first = self.blobs.list(&root, None, 1).await?;
        if first.keys.is_empty() {
            if self.blobs.head(&catalog).await?.is_none() {
                return Err(RegistryError::NameUnknown(repo.to_string()));
            }
            self.blobs.delete(&catalog).await?;
            return Ok(RepositoryDeletion { deleted: 1, done: true });
        }
        self.refuse_if_any_tag_is_immutable(repo).await?;
        let mut deleted = 0;
        // Tags first: the repository stops serving images before anything else goes.
        for prefix in [keys::tags_prefix(repo), root.clone()] {
            while deleted < budget {
                let room = (budget - deleted).min(crate::storage::limits::R2_MAX_LIST);
                let page = self.blobs.list(&prefix, None, room).await?;
                if page.keys.is_empty() {
                    break;
                }
                let batch: Vec<String> = page.keys.into_iter().map(|k| k.key).collect();
                self.blobs.delete_many(&batch).await?;
                deleted += batch.len();
            }
        }
        let done = self.blobs.list(&root, None, 1).await?.keys.is_empty();
        if done {
            self.blobs.delete(&catalog).await?;
        }
        Ok(RepositoryDeletion { deleted, done })
    }

    async fn refuse_if_any_tag_is_immutable(&self, repo: &RepositoryName) -> RegistryResult<()> {
        if self.config.immutable_tags.is_empty() {
            return Ok(());
        }
        for entry in crate::storage::list_all(&self.blobs, &keys::tags_prefix(repo)).await? {
            let Some(name) = entry.key.strip_prefix(&keys::tags_prefix(repo)) else { continue };
            let Ok(tag) = Tag::parse(name) else { continue };
            if let Some(rule) = self.config.immutable_tags.rule_for(repo, &tag) {
                return Err(RegistryError::Immutable(ImmutableRefusal::new(repo, &tag, rule, Refused::DeleteTag)));
            }
        }
        Ok(())
    }
}
