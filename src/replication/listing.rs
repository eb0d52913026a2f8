//! Listings through a [`Replicated`] store: one page merged from every candidate replica,
//! so that a key written in one replica and not yet copied is listed all the same.

use super::placement::backend;
use super::store::{written_at, Replicated};
use crate::storage::{BlobStore, ListPage, ListedKey, Metadata, StorageResult};
use std::collections::BTreeMap;

impl<S: BlobStore> Replicated<S> {
    /// Merges one listing page from every candidate replica: keys in order, each once with
    /// its newest copy's metadata, cut where the first truncated replica's page ends so
    /// that no key is skipped. A replica that fails is left out (the strict view records
    /// it as unreached); an error only when none could be listed.
    pub(crate) async fn merged_list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> StorageResult<ListPage> {
        if let Some(home) = self.home_scoped(prefix) {
            let i = home?;
            return self.run_judged(i, true, false, self.replicas[i].store.list(prefix, start_after, limit)).await;
        }
        let mut merged: BTreeMap<String, Metadata> = BTreeMap::new();
        let mut cutoff: Option<String> = None;
        let mut failure = None;
        let mut answered = false;
        for i in self.read_candidates() {
            let store = &self.replicas[i].store;
            match self.run(i, true, store.list(prefix, start_after, limit)).await {
                Ok(page) => {
                    answered = true;
                    if page.truncated {
                        if let Some(last) = page.keys.last() {
                            if cutoff.as_ref().is_none_or(|c| last.key < *c) {
                                cutoff = Some(last.key.clone());
                            }
                        }
                    }
                    for listed in page.keys {
                        // The newest copy's metadata (a tag's digest) wins.
                        let newer = |known: &Metadata| written_at(&listed.metadata) > written_at(known);
                        if merged.get(&listed.key).is_none_or(newer) {
                            merged.insert(listed.key, listed.metadata);
                        }
                    }
                }
                Err(e) => {
                    self.unreached(i);
                    failure = Some(e);
                }
            }
        }
        if !answered {
            return Err(failure.unwrap_or_else(|| backend("no replica may be listed".into())));
        }
        let total = merged.len();
        let keys: Vec<ListedKey> = merged
            .into_iter()
            .filter(|(key, _)| cutoff.as_ref().is_none_or(|c| key <= c))
            .take(limit)
            .map(|(key, metadata)| ListedKey { key, metadata })
            .collect();
        Ok(ListPage { truncated: cutoff.is_some() || keys.len() < total, keys })
    }
}
