//! The first chunk of unknown length (docker's one `PATCH` with chunked transfer encoding):
//! cut into equal multipart parts and hashed by the store's cutter, so its bytes never
//! enter wasm, then assembled at the end of the request into the session's native chunk,
//! whose digest the store took on the way. A `PUT` that closes the session with no more
//! bytes then publishes it without reading it again; more chunks read it back once, as
//! they do any native chunk (`ingest`). Every write happens under the session's claim.

use super::error::{RegistryError, RegistryResult};
use super::session::UploadSession;
use super::Registry;
use crate::oci::Digest;
use crate::storage::{BlobStore, CutPart, MetaStore, StorageError};

/// How often a cutting request checkpoints its session: a sixth of
/// [`CLAIM_LEASE_MS`](super::session::CLAIM_LEASE_MS), so the claim never lapses.
pub const CUT_CHECKPOINT_EVERY_MS: u64 = 10_000;

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Streams a body of unknown length into the claimed, empty session. After a full part,
    /// once [`CUT_CHECKPOINT_EVERY_MS`] passed since the last one, the state is
    /// checkpointed (renewing the claim), marked `parts_unhashed` so
    /// that a request taking over from this one, should it die, knows its hash state does
    /// not cover them. Whatever arrives is kept, also from a body that broke or crossed
    /// the limit: the client may resume from the offset a status request reports.
    pub(crate) async fn write_cut_chunk(
        &self,
        session: &mut UploadSession,
        mut cutter: B::Cutter,
    ) -> RegistryResult<()> {
        loop {
            let (multipart_id, number) = self.next_part(session).await?;
            let key = session.object_key();
            let step = self.blobs.upload_cut_part(&mut cutter, &key, &multipart_id, number, session.part_size).await?;
            let failure = match step {
                CutPart::Uploaded(receipt) => {
                    let full = receipt.size == session.part_size;
                    session.offset += receipt.size;
                    session.parts.push(receipt);
                    session.parts_unhashed = true;
                    if full && self.checkpoint_due(session) {
                        session.checkpoint(&self.blobs, self.now_millis()).await?;
                    }
                    continue;
                }
                CutPart::Ended(digest) => {
                    self.seal_cut_parts(session, Some(digest)).await?;
                    None
                }
                CutPart::Broke(reason) => {
                    self.seal_cut_parts(session, None).await?;
                    Some(RegistryError::BodyInterrupted(reason))
                }
                CutPart::OverLimit(limit) => {
                    self.seal_cut_parts(session, None).await?;
                    Some(RegistryError::BodyTooLarge(limit))
                }
            };
            session.commit(&self.blobs, self.now_millis()).await?;
            return failure.map_or(Ok(()), Err);
        }
    }

    /// Whether the claim was last renewed [`CUT_CHECKPOINT_EVERY_MS`] ago or more. A state
    /// write per 8 MiB part costs more than a part's upload saves, so only a request that
    /// dies loses (the record of) the parts it uploaded since: its client resumes from the
    /// last checkpoint, and the claim, renewed well inside its lease, never lapses.
    fn checkpoint_due(&self, session: &UploadSession) -> bool {
        let since = self.now_millis().saturating_sub(session.claimed_at_ms.unwrap_or(0));
        since >= CUT_CHECKPOINT_EVERY_MS
    }

    /// Assembles the session's cut parts into its object, which becomes its native chunk,
    /// with `digest` (the store's hash of exactly those bytes) when it is known. A multipart
    /// upload that got no part is aborted.
    pub(crate) async fn seal_cut_parts(
        &self,
        session: &mut UploadSession,
        digest: Option<Digest>,
    ) -> RegistryResult<()> {
        let Some(multipart_id) = session.multipart_id.clone() else { return Ok(()) };
        let key = session.object_key();
        if session.parts.is_empty() {
            self.blobs.abort_multipart(&key, &multipart_id).await?;
            session.object_key = None;
        } else {
            let info = self.blobs.complete_multipart(&key, &multipart_id, &session.parts).await?;
            if info.size != session.offset {
                return Err(StorageError::Backend(format!(
                    "{key} assembled {} bytes where its parts hold {}",
                    info.size, session.offset
                ))
                .into());
            }
            session.native_chunk = true;
            session.stored_digest = digest.map(|d| d.to_string());
        }
        session.multipart_id = None;
        session.parts.clear();
        session.parts_unhashed = false;
        Ok(())
    }
}
