//! Expiring abandoned uploads. "If this request fails or is not called, the server SHOULD
//! eventually timeout unfinished uploads": a scheduled job discards sessions idle longer
//! than a limit, aborting their multipart uploads so R2 keeps no orphaned parts.
//!
//! The job races requests for the same sessions. It closes a session only with a
//! conditional write on the version it judged idle, so a request that touched the session
//! meanwhile (its claim or checkpoint changed the etag) keeps it; and a request still
//! streaming into a session the job closed finds it gone and answers `404`.

use super::error::{RegistryError, RegistryResult};
use super::session::UploadSession;
use super::Registry;
use crate::ids::UploadId;
use crate::storage::{self, keys, BlobStore, MetaStore};

/// What one run of the expiry job did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryReport {
    /// Sessions discarded.
    pub expired: usize,
    /// Sessions whose discarding failed (left for the next run).
    pub failed: usize,
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Discards every upload session idle for more than `max_idle_ms`, carrying on past a
    /// session that fails. Only the listing failing fails the run.
    pub async fn expire_uploads(&self, max_idle_ms: u64) -> RegistryResult<ExpiryReport> {
        let cutoff = self.clock.now_millis().saturating_sub(max_idle_ms);
        let mut report = ExpiryReport::default();
        for entry in storage::list_all(&self.blobs, keys::UPLOADS_PREFIX).await? {
            let Some(id) = keys::upload_id_of_state(&entry.key) else { continue };
            if active_at(&entry.metadata) >= cutoff {
                continue;
            }
            match self.expire_one(&id, cutoff).await {
                Ok(true) => report.expired += 1,
                Ok(false) => {}
                Err(_) => report.failed += 1,
            }
        }
        Ok(report)
    }

    /// Expires one session if it is still idle when read again; true when it was removed.
    async fn expire_one(&self, id: &UploadId, cutoff: u64) -> RegistryResult<bool> {
        let state = keys::upload_state(id);
        let Some((info, json)) = self.blobs.get_bytes(&state).await? else { return Ok(false) };
        if active_at(&info.metadata) >= cutoff {
            return Ok(false);
        }
        match serde_json::from_slice::<UploadSession>(&json) {
            Ok(mut session) => {
                session.etag = info.etag;
                if !session.closed {
                    match session.close(&self.blobs, self.clock.now_millis()).await {
                        // Touched (or removed) since it was read: not idle after all.
                        Err(RegistryError::ChunkOutOfOrder { .. } | RegistryError::UploadUnknown) => return Ok(false),
                        closed => closed?,
                    }
                }
                session.remove_with_object(&self.blobs).await?;
            }
            // Unreadable state: remove what the id names.
            Err(_) => {
                for entry in storage::list_all(&self.blobs, &keys::upload_prefix(id)).await? {
                    self.blobs.delete(&entry.key).await?;
                }
            }
        }
        Ok(true)
    }
}

fn active_at(metadata: &storage::Metadata) -> u64 {
    storage::fields::UPLOAD_ACTIVE_AT.get(metadata).unwrap_or(0)
}
