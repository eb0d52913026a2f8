//! The [`MetaStore`] port over a Workers KV namespace.

use crate::storage::{MetaEntry, MetaStore, StorageError, StorageResult};
use worker::KvStore;

pub struct KvIndex {
    kv: KvStore,
}

impl KvIndex {
    pub fn new(kv: KvStore) -> Self {
        KvIndex { kv }
    }
}

fn backend(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(format!("KV: {e}"))
}

impl MetaStore for KvIndex {
    async fn get(&self, key: &str) -> StorageResult<Option<MetaEntry>> {
        let (value, metadata) = self.kv.get(key).bytes_with_metadata::<String>().await.map_err(backend)?;
        Ok(value.map(|value| MetaEntry { value, metadata }))
    }

    async fn put(&self, key: &str, value: Vec<u8>, metadata: Option<String>) -> StorageResult<()> {
        let mut put = self.kv.put_bytes(key, &value).map_err(backend)?;
        if let Some(m) = metadata {
            put = put.metadata(m).map_err(backend)?;
        }
        put.execute().await.map_err(backend)
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.kv.delete(key).await.map_err(backend)
    }
}
