//! The port to where access tokens and refresh tokens are kept, with its implementation
//! over a [`BlobStore`] (R2 in a deployment: strongly consistent, so a revoked token fails
//! on the very next request in every region) and an in-memory double.
//!
//! Callers hand `auth` a [`TokenStore`], never a blob store: the key format and the record
//! encoding stay behind this port.

use super::tokens::AccessToken;
use crate::storage::{self, keys, BlobStore, Metadata, StorageResult};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A token id: 1-64 lowercase hex digits. Nothing else may reach a storage key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenId(String);

impl TokenId {
    /// `None` unless `id` is 1-64 lowercase hex digits.
    pub fn parse(id: &str) -> Option<Self> {
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        (!id.is_empty() && id.len() <= 64 && id.bytes().all(hex)).then(|| TokenId(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where token records live.
#[allow(async_fn_in_trait)]
pub trait TokenStore {
    /// Stores `token` under its id, replacing any record there.
    async fn save(&self, token: &AccessToken) -> StorageResult<()>;
    /// The record under `id`; `None` when there is none or it cannot be read.
    async fn load(&self, id: &TokenId) -> StorageResult<Option<AccessToken>>;
    /// Every readable record.
    async fn list(&self) -> StorageResult<Vec<AccessToken>>;
    async fn delete(&self, id: &TokenId) -> StorageResult<()>;
}

/// Token records as JSON objects in a blob store, under [`keys::access_token`].
pub struct BlobTokenStore<'a, B> {
    store: &'a B,
}

impl<'a, B: BlobStore> BlobTokenStore<'a, B> {
    pub fn new(store: &'a B) -> Self {
        BlobTokenStore { store }
    }
}

impl<B: BlobStore> TokenStore for BlobTokenStore<'_, B> {
    async fn save(&self, token: &AccessToken) -> StorageResult<()> {
        let json = serde_json::to_vec(token).expect("tokens always serialise");
        self.store.put_bytes(&keys::access_token(&token.id), json, Metadata::new()).await?;
        Ok(())
    }

    async fn load(&self, id: &TokenId) -> StorageResult<Option<AccessToken>> {
        let Some((_, json)) = self.store.get_bytes(&keys::access_token(id.as_str())).await? else { return Ok(None) };
        Ok(serde_json::from_slice(&json).ok())
    }

    async fn list(&self) -> StorageResult<Vec<AccessToken>> {
        let mut found = Vec::new();
        for entry in storage::list_all(self.store, keys::ACCESS_TOKENS_PREFIX).await? {
            if let Some((_, json)) = self.store.get_bytes(&entry.key).await? {
                if let Ok(token) = serde_json::from_slice(&json) {
                    found.push(token);
                }
            }
        }
        Ok(found)
    }

    async fn delete(&self, id: &TokenId) -> StorageResult<()> {
        self.store.delete(&keys::access_token(id.as_str())).await
    }
}

/// Token records in memory, for tests of code that only needs the port.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    records: RefCell<BTreeMap<String, AccessToken>>,
}

impl MemoryTokenStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records are kept.
    pub fn len(&self) -> usize {
        self.records.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.borrow().is_empty()
    }
}

impl TokenStore for MemoryTokenStore {
    async fn save(&self, token: &AccessToken) -> StorageResult<()> {
        self.records.borrow_mut().insert(token.id.clone(), token.clone());
        Ok(())
    }

    async fn load(&self, id: &TokenId) -> StorageResult<Option<AccessToken>> {
        Ok(self.records.borrow().get(id.as_str()).cloned())
    }

    async fn list(&self) -> StorageResult<Vec<AccessToken>> {
        Ok(self.records.borrow().values().cloned().collect())
    }

    async fn delete(&self, id: &TokenId) -> StorageResult<()> {
        self.records.borrow_mut().remove(id.as_str());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Grants;
    use crate::storage::memory::MemoryBlobStore;
    use futures::executor::block_on;

    fn token(id: &str) -> AccessToken {
        AccessToken::new(id.into(), "5ec7e7", format!("token {id}"), Grants::default(), 10, 100).0
    }

    /// Both implementations keep the same records the same way.
    fn round_trip<T: TokenStore>(tokens: &T) {
        let (a, b) = (TokenId::parse("a1").unwrap(), TokenId::parse("b2").unwrap());
        block_on(async {
            tokens.save(&token("a1")).await.unwrap();
            tokens.save(&token("b2")).await.unwrap();
            assert_eq!(tokens.load(&a).await.unwrap(), Some(token("a1")));
            let mut ids: Vec<String> = tokens.list().await.unwrap().into_iter().map(|t| t.id).collect();
            ids.sort();
            assert_eq!(ids, ["a1", "b2"]);
            tokens.delete(&a).await.unwrap();
            assert_eq!(tokens.load(&a).await.unwrap(), None);
            assert_eq!(tokens.load(&b).await.unwrap(), Some(token("b2")));
        });
    }

    #[test]
    fn the_blob_store_and_the_memory_double_keep_tokens_alike() {
        let blobs = MemoryBlobStore::new();
        round_trip(&BlobTokenStore::new(&blobs));
        assert_eq!(blobs.keys(), ["auth/tokens/b2"], "one record per token, under its key");
        let memory = MemoryTokenStore::new();
        round_trip(&memory);
        assert_eq!(memory.len(), 1);
    }

    #[test]
    fn only_hex_ids_are_ids() {
        assert_eq!(TokenId::parse("ab12").unwrap().as_str(), "ab12");
        for bad in ["", "AB", "a/b", "../x", "g", &"a".repeat(65)] {
            assert_eq!(TokenId::parse(bad), None, "{bad}");
        }
    }
}
