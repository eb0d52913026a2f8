//! KV in memory, enforcing KV's key, value and metadata sizes.

use super::limits::{KV_MAX_KEY_BYTES, KV_MAX_METADATA_BYTES, KV_MAX_VALUE_BYTES};
use super::{MetaEntry, MetaStore, StorageError, StorageResult};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// KV in memory.
#[derive(Default)]
pub struct MemoryMetaStore {
    entries: RefCell<BTreeMap<String, MetaEntry>>,
}

impl MemoryMetaStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn check_kv_key(key: &str) -> StorageResult<()> {
    if key.is_empty() || key.len() > KV_MAX_KEY_BYTES {
        return Err(StorageError::Limit(format!("KV key of {} bytes", key.len())));
    }
    Ok(())
}

impl MetaStore for MemoryMetaStore {
    async fn get(&self, key: &str) -> StorageResult<Option<MetaEntry>> {
        check_kv_key(key)?;
        Ok(self.entries.borrow().get(key).cloned())
    }

    async fn put(&self, key: &str, value: Vec<u8>, metadata: Option<String>) -> StorageResult<()> {
        check_kv_key(key)?;
        if value.len() > KV_MAX_VALUE_BYTES {
            return Err(StorageError::Limit(format!("KV value of {} bytes", value.len())));
        }
        if metadata.as_ref().is_some_and(|m| m.len() > KV_MAX_METADATA_BYTES) {
            return Err(StorageError::Limit("KV metadata over 1024 bytes".into()));
        }
        self.entries.borrow_mut().insert(key.to_owned(), MetaEntry { value, metadata });
        Ok(())
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        check_kv_key(key)?;
        self.entries.borrow_mut().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn keys_and_values_are_bounded() {
        block_on(async {
            let kv = MemoryMetaStore::new();
            assert!(kv.put(&"k".repeat(513), vec![], None).await.is_err());
            assert!(kv.put("k", vec![0; KV_MAX_VALUE_BYTES + 1], None).await.is_err());
            assert!(kv.put("k", vec![], Some("m".repeat(1025))).await.is_err());
        });
    }
}
