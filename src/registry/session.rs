//! Upload session state: what any isolate needs to continue an upload, kept in R2 (strongly
//! consistent) rather than in memory or in the Location URL.

use super::error::{RegistryError, RegistryResult};
use crate::oci::digest::{from_hex, to_hex};
use crate::oci::{Algorithm, Hasher, RepositoryName};
use crate::storage::{keys, BlobStore, Metadata, PartReceipt};
use serde::{Deserialize, Serialize};

/// The persisted state of one upload. Invariant: `offset` bytes were received; the first
/// `parts.len() * part_size` of them are in multipart parts, the remaining `tail_len` in
/// the tail object, and `hash_state` is the running hash of all `offset` bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadSession {
    pub id: String,
    pub repository: String,
    pub algorithm: String,
    pub offset: u64,
    pub hash_state: String,
    pub tail_len: u64,
    pub part_size: u64,
    pub multipart_id: Option<String>,
    pub parts: Vec<PartReceipt>,
    pub started_at_ms: u64,
    /// Set when the first chunk was stored natively (without passing through wasm) as the
    /// assembled object; its `offset` bytes are hashed by the store when the session closes.
    #[serde(default)]
    pub native_chunk: bool,
}

impl UploadSession {
    pub fn new(id: String, repository: &RepositoryName, algorithm: Algorithm, part_size: u64, now_ms: u64) -> Self {
        UploadSession {
            id,
            repository: repository.as_str().to_owned(),
            algorithm: algorithm.as_str().to_owned(),
            offset: 0,
            hash_state: to_hex(&Hasher::new(algorithm).save()),
            tail_len: 0,
            part_size,
            multipart_id: None,
            parts: Vec::new(),
            started_at_ms: now_ms,
            native_chunk: false,
        }
    }

    pub fn algorithm(&self) -> RegistryResult<Algorithm> {
        Algorithm::parse(&self.algorithm).map_err(|_| corrupt("algorithm"))
    }

    pub fn hasher(&self) -> RegistryResult<Hasher> {
        let saved = from_hex(&self.hash_state).ok_or_else(|| corrupt("hash state"))?;
        Hasher::restore(self.algorithm()?, &saved).map_err(|_| corrupt("hash state"))
    }

    pub fn set_hasher(&mut self, hasher: &Hasher) {
        self.hash_state = to_hex(&hasher.save());
    }

    /// Loads a session, treating one that belongs to another repository as unknown.
    pub async fn load<B: BlobStore>(store: &B, repo: &RepositoryName, id: &str) -> RegistryResult<Self> {
        if !is_valid_id(id) {
            return Err(RegistryError::UploadUnknown);
        }
        let Some((_, bytes)) = store.get_bytes(&keys::upload_state(id)).await? else {
            return Err(RegistryError::UploadUnknown);
        };
        let session: UploadSession = serde_json::from_slice(&bytes).map_err(|_| corrupt("state JSON"))?;
        if session.repository != repo.as_str() {
            return Err(RegistryError::UploadUnknown);
        }
        Ok(session)
    }

    /// Saves the state, stamped with the time of this activity so idle sessions can be
    /// found by a listing alone.
    pub async fn save<B: BlobStore>(&self, store: &B, now_ms: u64) -> RegistryResult<()> {
        let json = serde_json::to_vec(self).expect("session state always serialises");
        let stamp = Metadata::from([(ACTIVE_AT.to_owned(), now_ms.to_string())]);
        store.put_bytes(&keys::upload_state(&self.id), json, stamp).await?;
        Ok(())
    }

    /// True when no byte has been received yet.
    pub fn is_empty(&self) -> bool {
        self.offset == 0 && self.multipart_id.is_none() && !self.native_chunk
    }

    /// Removes every trace of an abandoned session: state, tail, any unfinished multipart
    /// upload and any assembled object.
    pub async fn discard<B: BlobStore>(&self, store: &B) -> RegistryResult<()> {
        let assembled = keys::assembled_blob(&self.id);
        if let Some(mp) = &self.multipart_id {
            store.abort_multipart(&assembled, mp).await?;
        }
        store.delete(&assembled).await?;
        self.forget(store).await
    }

    /// Removes the bookkeeping of a session whose blob was stored.
    pub async fn forget<B: BlobStore>(&self, store: &B) -> RegistryResult<()> {
        store.delete(&keys::upload_tail(&self.id)).await?;
        store.delete(&keys::upload_state(&self.id)).await?;
        Ok(())
    }
}

/// Metadata key on a session's state object: when the session was last written (ms).
pub const ACTIVE_AT: &str = "active-at";

/// Upload ids are 32 lowercase hex characters; anything else cannot name a session and
/// must never reach a storage key.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn corrupt(what: &str) -> RegistryError {
    RegistryError::Storage(crate::storage::StorageError::Backend(format!("upload session {what} is corrupt")))
}
