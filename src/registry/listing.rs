//! Tag listing (end-8) and the catalog, both paged with `n` and `last` in ASCII order.

use super::error::{RegistryError, RegistryResult};
use super::Registry;
use crate::oci::RepositoryName;
use crate::storage::{keys, limits, retiring, BlobStore, MetaStore};

/// One page of names, and whether more follow it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub items: Vec<String>,
    pub more: bool,
    /// Where the next page starts, when not after the last item (a filtered listing that
    /// stopped at its bound after names the caller does not see).
    pub resume_after: Option<String>,
}

impl Page {
    /// The `last` a client sends for the next page, if there is one.
    pub fn next_last(&self) -> Option<&String> {
        if !self.more {
            return None;
        }
        self.resume_after.as_ref().or(self.items.last())
    }
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Tags of `repo` after `last`, at most `n`. "When `n` is zero, this endpoint MUST
    /// return an empty list".
    pub async fn list_tags(&self, repo: &RepositoryName, n: Option<usize>, last: Option<&str>) -> RegistryResult<Page> {
        if self.blobs.head(&keys::catalog_entry(repo)).await?.is_none() {
            return Err(RegistryError::NameUnknown(repo.to_string()));
        }
        self.list_names(&keys::tags_prefix(repo), n, last).await
    }

    /// Repository names after `last`, at most `n`.
    pub async fn catalog(&self, n: Option<usize>, last: Option<&str>) -> RegistryResult<Page> {
        self.list_names(keys::CATALOG_PREFIX, n, last).await
    }

    async fn list_names(&self, prefix: &str, n: Option<usize>, last: Option<&str>) -> RegistryResult<Page> {
        let wanted = n.unwrap_or(usize::MAX);
        let mut page = Page::default();
        if wanted == 0 {
            return Ok(page);
        }
        let mut after = last.map(|l| format!("{prefix}{l}"));
        loop {
            let room = (wanted - page.items.len()).min(limits::R2_MAX_LIST);
            let listed = self.blobs.list(prefix, after.as_deref(), room).await?;
            // A tag being deleted by retention is absent (`storage::retiring`).
            let live = listed.keys.iter().filter(|k| !retiring::is_marker(&k.metadata));
            page.items.extend(live.map(|k| k.key[prefix.len()..].to_owned()));
            let Some(last_key) = listed.keys.last() else {
                return Ok(page);
            };
            if !listed.truncated {
                return Ok(page);
            }
            if page.items.len() >= wanted {
                page.more = true;
                return Ok(page);
            }
            after = Some(last_key.key.clone());
        }
    }
}
