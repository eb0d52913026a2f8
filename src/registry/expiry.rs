//! Expiring abandoned uploads. "If this request fails or is not called, the server SHOULD
//! eventually timeout unfinished uploads": a scheduled job discards sessions idle longer
//! than a limit, aborting their multipart uploads so R2 keeps no orphaned parts.

use super::error::RegistryResult;
use super::session::{UploadSession, ACTIVE_AT};
use super::Registry;
use crate::storage::{self, keys, BlobStore, MetaStore};

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Discards every upload session idle for more than `max_idle_ms`; returns how many.
    pub async fn expire_uploads(&self, max_idle_ms: u64) -> RegistryResult<usize> {
        let cutoff = self.clock.now_millis().saturating_sub(max_idle_ms);
        let mut expired = 0;
        for entry in storage::list_all(&self.blobs, keys::UPLOADS_PREFIX).await? {
            let Some(id) = keys::upload_id_of_state(&entry.key) else { continue };
            let active_at = entry.metadata.get(ACTIVE_AT).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
            if active_at >= cutoff {
                continue;
            }
            if let Some((_, json)) = self.blobs.get_bytes(&entry.key).await? {
                match serde_json::from_slice::<UploadSession>(&json) {
                    Ok(session) => session.discard(&self.blobs).await?,
                    // Unreadable state: remove what the id names.
                    Err(_) => {
                        self.blobs.delete(&keys::upload_tail(id)).await?;
                        self.blobs.delete(&entry.key).await?;
                    }
                }
                expired += 1;
            }
        }
        Ok(expired)
    }
}
