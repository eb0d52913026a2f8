//! Upload session state: what any isolate needs to continue an upload, kept in R2 (strongly
//! consistent) rather than in memory or in the Location URL, and the protocol that lets
//! only one request at a time write a session.
//!
//! # Serialising writers
//! Two requests for one session may run at once (a client that retries, a hostile one, a
//! PATCH still streaming when the PUT arrives, the expiry job). Every change of the state
//! object is a compare-and-swap on the etag the writer read (R2 `onlyIf.etagMatches`):
//! - A request that will write bytes first **claims** the session: it bumps `generation`
//!   and stamps `claimed_at_ms`, conditionally. Of two requests that read the same state,
//!   one claim lands; the other is refused with `416` and the session's `Range` before it
//!   stores a byte. A fresh claim held by another request refuses the same way.
//! - The claimant names every object it writes by its generation (the tail, the object its
//!   multipart upload or native chunk assembles into), takes part numbers from the
//!   committed state, checkpoints the state after each part (which also renews the claim),
//!   and commits at the end, each time conditionally. A writer whose write fails its
//!   condition has lost the session and stops; what it wrote is named by a generation that
//!   no committed state points at, so nobody reads it.
//! - A claim not renewed for [`CLAIM_LEASE_MS`] belongs to a request that died (an isolate
//!   killed mid-body); the next request may take it over. The old writer may still be
//!   alive and upload a part under a number the new one also uses, so a session taken over
//!   is marked `reverify`: its close hashes the assembled blob again in the store.
//! - Completion, cancellation and expiry first **close** the state conditionally, then
//!   remove the session: whoever closes it owns its end, and every later request gets
//!   `404 BLOB_UPLOAD_UNKNOWN`.

use super::error::{RegistryError, RegistryResult};
use crate::ids::UploadId;
use crate::oci::digest::{from_hex, to_hex};
use crate::oci::{Algorithm, Hasher, RepositoryName};
use crate::storage::{self, fields, keys, BlobStore, Metadata, PartReceipt, PutIf};
use serde::{Deserialize, Serialize};

/// How long a claim holds without being renewed (by a checkpoint after each part). A
/// request streaming slower than one part per lease keeps its claim as long as nobody else
/// comes for the session; it only loses it to a request that arrives after the lease.
pub const CLAIM_LEASE_MS: u64 = 60_000;

/// The persisted state of one upload. Invariant: `offset` bytes were received; the first
/// `parts.len() * part_size` of them are in multipart parts, the remaining `tail_len` in
/// the tail object, and `hash_state` is the running hash of all `offset` bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadSession {
    /// Stored as its 32 hex digits; a state naming anything else does not parse.
    pub id: UploadId,
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
    /// The digest of the native chunk's bytes, taken by the store as it stored them (in
    /// the same request, so of exactly those bytes); `None`: the store hashes the object
    /// when the session closes.
    #[serde(default)]
    pub stored_digest: Option<String>,
    /// The listed parts were cut and hashed by the store in a request that has not
    /// finished (a checkpoint of docker's PATCH): `hash_state` does not cover them. Only a
    /// request that takes the session over finds this, and reads the parts back.
    #[serde(default)]
    pub parts_unhashed: bool,
    /// Bumped by every claim; names the objects the claimant writes. 0 for sessions opened
    /// before generations existed.
    #[serde(default)]
    pub generation: u64,
    /// The object the multipart upload or native chunk assembles into; `None`: the legacy
    /// key of a session from before generations.
    #[serde(default)]
    pub object_key: Option<String>,
    /// The tail object and its etag (R2: the MD5 of its bytes), checked when it is read
    /// back; `None` with a non-zero `tail_len`: the legacy tail key.
    #[serde(default)]
    pub tail_key: Option<String>,
    #[serde(default)]
    pub tail_etag: Option<String>,
    /// When the writer holding the session claimed or last renewed it; `None`: nobody.
    #[serde(default)]
    pub claimed_at_ms: Option<u64>,
    /// A claim was taken over from a writer that stopped renewing it: the close re-hashes.
    #[serde(default)]
    pub reverify: bool,
    /// Completed, cancelled or expired: the session is being removed.
    #[serde(default)]
    pub closed: bool,
    /// The etag of the state object this copy was read as or last written as.
    #[serde(skip)]
    pub etag: String,
    /// Objects of earlier generations this request replaced, deleted after its commit.
    #[serde(skip)]
    pub superseded: Vec<String>,
    /// What the last state this copy wrote or read named: objects this request made since
    /// are known to nobody else.
    #[serde(skip)]
    pub saved: Named,
}

/// The objects one version of the state names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Named {
    pub multipart_id: Option<String>,
    pub object_key: Option<String>,
    pub tail_key: Option<String>,
}

impl UploadSession {
    /// The objects this copy names now.
    pub fn named(&self) -> Named {
        Named {
            multipart_id: self.multipart_id.clone(),
            object_key: self.object_key.clone(),
            tail_key: self.tail_key.clone(),
        }
    }
}

impl UploadSession {
    pub fn new(id: UploadId, repository: &RepositoryName, algorithm: Algorithm, part_size: u64, now_ms: u64) -> Self {
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
            stored_digest: None,
            parts_unhashed: false,
            generation: 1,
            object_key: None,
            tail_key: None,
            tail_etag: None,
            claimed_at_ms: None,
            reverify: false,
            closed: false,
            etag: String::new(),
            superseded: Vec::new(),
            saved: Named::default(),
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

    /// The object this session's bytes assemble into.
    pub fn object_key(&self) -> String {
        self.object_key.clone().unwrap_or_else(|| keys::legacy_assembled_blob(&self.id))
    }

    /// Where the current generation puts a new assembled object.
    pub fn new_object_key(&self) -> String {
        keys::assembled_blob(&self.id, self.generation)
    }

    /// The tail object holding the last `tail_len` bytes.
    pub fn tail_key(&self) -> String {
        self.tail_key.clone().unwrap_or_else(|| keys::legacy_upload_tail(&self.id))
    }

    /// Loads a session, treating one that belongs to another repository, or is closing,
    /// as unknown.
    pub async fn load<B: BlobStore>(store: &B, repo: &RepositoryName, id: &UploadId) -> RegistryResult<Self> {
        match Self::read(store, id).await? {
            Some(session) if session.repository == repo.as_str() && !session.closed => Ok(session),
            _ => Err(RegistryError::UploadUnknown),
        }
    }

    /// Reads a session's state as stored, closed or not.
    pub async fn read<B: BlobStore>(store: &B, id: &UploadId) -> RegistryResult<Option<Self>> {
        let Some((info, bytes)) = store.get_bytes(&keys::upload_state(id)).await? else {
            return Ok(None);
        };
        let mut session: UploadSession = serde_json::from_slice(&bytes).map_err(|_| corrupt("state JSON"))?;
        session.etag = info.etag;
        session.saved = session.named();
        Ok(Some(session))
    }

    /// Stores a new session's first state (create-only).
    pub async fn create<B: BlobStore>(&mut self, store: &B, now_ms: u64) -> RegistryResult<()> {
        match put_state(store, self, now_ms, PutIf::Absent).await? {
            true => Ok(()),
            false => Err(corrupt("id already in use")),
        }
    }

    /// Takes the session for one writing request (see the module docs). Refuses with
    /// `416` while another request holds a fresh claim, or when another claim landed first.
    pub async fn claim<B: BlobStore>(&mut self, store: &B, now_ms: u64) -> RegistryResult<()> {
        if let Some(at) = self.claimed_at_ms {
            if now_ms.saturating_sub(at) < CLAIM_LEASE_MS {
                return Err(RegistryError::ChunkOutOfOrder { expected: self.offset });
            }
            self.reverify = true;
        }
        self.generation += 1;
        self.claimed_at_ms = Some(now_ms);
        self.swap(store, now_ms).await
    }

    /// Records progress mid-request and renews the claim.
    pub async fn checkpoint<B: BlobStore>(&mut self, store: &B, now_ms: u64) -> RegistryResult<()> {
        self.claimed_at_ms = Some(now_ms);
        self.swap(store, now_ms).await
    }

    /// Records the end of a request's writes and releases the claim.
    pub async fn commit<B: BlobStore>(&mut self, store: &B, now_ms: u64) -> RegistryResult<()> {
        self.claimed_at_ms = None;
        self.swap(store, now_ms).await
    }

    /// Marks the session closed, so that this caller alone removes it.
    pub async fn close<B: BlobStore>(&mut self, store: &B, now_ms: u64) -> RegistryResult<()> {
        self.closed = true;
        self.swap(store, now_ms).await
    }

    /// Writes the state if it is still the version this copy holds; otherwise the caller
    /// lost the session: `404` if it is gone or closing, else `416` with its offset.
    async fn swap<B: BlobStore>(&mut self, store: &B, now_ms: u64) -> RegistryResult<()> {
        let etag = std::mem::take(&mut self.etag);
        if put_state(store, self, now_ms, PutIf::EtagMatches(&etag)).await? {
            return Ok(());
        }
        self.etag = etag;
        Err(lost(store, &self.id).await)
    }

    /// True when no byte has been received yet.
    pub fn is_empty(&self) -> bool {
        self.offset == 0 && self.multipart_id.is_none() && !self.native_chunk
    }

    /// Removes every trace of a closed or abandoned session: any unfinished multipart
    /// upload, the assembled object, every tail and the state, the state last. Compare
    /// [`UploadSession::remove_keeping_object`], for a session whose blob was stored.
    pub async fn remove_with_object<B: BlobStore>(&self, store: &B) -> RegistryResult<()> {
        let assembled = self.object_key();
        if let Some(mp) = &self.multipart_id {
            store.abort_multipart(&assembled, mp).await?;
        }
        store.delete(&assembled).await?;
        self.remove_keeping_object(store).await
    }

    /// Removes the bookkeeping (tails of every generation, then the state) of a session
    /// whose blob was stored, keeping the assembled object.
    pub async fn remove_keeping_object<B: BlobStore>(&self, store: &B) -> RegistryResult<()> {
        let state = keys::upload_state(&self.id);
        for entry in storage::list_all(store, &keys::upload_prefix(&self.id)).await? {
            if entry.key != state {
                store.delete(&entry.key).await?;
            }
        }
        store.delete(&state).await?;
        Ok(())
    }
}

/// Writes `session` under `condition`, stamped with the time of this activity so that
/// idle sessions can be found by a listing alone; false when the condition failed.
async fn put_state<B: BlobStore>(
    store: &B,
    session: &mut UploadSession,
    now_ms: u64,
    condition: PutIf<'_>,
) -> RegistryResult<bool> {
    let json = serde_json::to_vec(session).expect("session state always serialises");
    let stamp = Metadata::from([fields::UPLOAD_ACTIVE_AT.entry(now_ms)]);
    match store.put_bytes_if(&keys::upload_state(&session.id), json, stamp, condition).await? {
        Some(info) => {
            session.etag = info.etag;
            session.saved = session.named();
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Why a writer lost its session: gone or closing (`404`), or taken by another request
/// (`416` with the offset that request committed).
pub async fn lost<B: BlobStore>(store: &B, id: &UploadId) -> RegistryError {
    match UploadSession::read(store, id).await {
        Ok(Some(now)) if !now.closed => RegistryError::ChunkOutOfOrder { expected: now.offset },
        Ok(_) => RegistryError::UploadUnknown,
        Err(e) => e,
    }
}

fn corrupt(what: &str) -> RegistryError {
    RegistryError::Storage(crate::storage::StorageError::Backend(format!("upload session {what} is corrupt")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    /// The state is read by the next release (sessions survive upgrades): its field names,
    /// and the id as a plain string, are a stored format.
    #[test]
    fn the_stored_state_keeps_its_shape() {
        let repo = RepositoryName::parse("team/app").unwrap();
        let session = UploadSession::new(UploadId::parse(ID).unwrap(), &repo, Algorithm::Sha256, 5 << 20, 7);
        let json = serde_json::to_value(&session).unwrap();
        assert_eq!(json["id"], ID);
        assert_eq!(json["repository"], "team/app");
        let names: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let expected = [
            "algorithm",
            "claimed_at_ms",
            "closed",
            "generation",
            "hash_state",
            "id",
            "multipart_id",
            "native_chunk",
            "object_key",
            "offset",
            "part_size",
            "parts",
            "parts_unhashed",
            "repository",
            "reverify",
            "started_at_ms",
            "stored_digest",
            "tail_etag",
            "tail_key",
            "tail_len",
        ];
        assert_eq!(names, expected);
    }

    #[test]
    fn a_state_from_an_older_release_still_reads_and_a_bad_id_does_not() {
        let hash_state = to_hex(&Hasher::new(Algorithm::Sha256).save());
        let old = format!(
            r#"{{"id":"{ID}","repository":"a","algorithm":"sha256","offset":0,"hash_state":"{hash_state}",
                "tail_len":0,"part_size":5242880,"multipart_id":null,"parts":[],"started_at_ms":1,"native_chunk":false}}"#
        );
        let session: UploadSession = serde_json::from_str(&old).unwrap();
        assert_eq!(
            (session.id.as_str(), session.generation, session.object_key()),
            (ID, 0, format!("blobs/multipart/{ID}"))
        );
        assert_eq!(session.tail_key(), format!("uploads/{ID}/tail"));
        let bad = old.replace(ID, "../../state");
        assert!(serde_json::from_str::<UploadSession>(&bad).is_err(), "an id that is not one never reaches a key");
    }
}
