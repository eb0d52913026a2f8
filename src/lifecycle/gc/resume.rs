//! After the sweep: finishes deletions an earlier run started and could not finish
//! everywhere. With replicas, a run that could not reach one of them while deleting
//! forgets no state, so the content stays dead (refused to pushes) and its links may
//! remain in that replica. Content the sweep found again was finished there; what it did
//! not find (gone from every replica it listed) is found here, from the states' listing:
//! a dead state without this run's dead mark is deleted again, so that prune removes its
//! links and forget its state. With one bucket there is none (a step that stops half-way
//! leaves its dead mark, or its content for the sweep).

use super::job::{Job, Phase};
use super::meter::Meter;
use super::sweep::{delete, PER_KEY};
use crate::storage::fields::GC_STATE;
use crate::storage::{keys, BlobStore, ListedKey, MetaStore, Metadata, StorageResult};

/// States listed per call.
const PAGE: usize = 1000;

/// Advances the resumption as far as the budget allows; `Ok(true)` once every state is seen.
pub async fn step<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>, job: &mut Job) -> StorageResult<bool> {
    loop {
        let Phase::Resume { after } = &job.phase else { return Ok(true) };
        let after = after.clone();
        if !meter.affords(1 + PER_KEY) {
            return Ok(false);
        }
        let page = meter.list(keys::GC_STATE_PREFIX, after.as_deref(), PAGE).await?;
        if page.keys.is_empty() {
            return Ok(true);
        }
        for state in page.keys {
            if !meter.affords(PER_KEY) {
                return Ok(false);
            }
            let dead = GC_STATE.get(&state.metadata) == Some("dead");
            if let Some(content) = keys::content_of_state(&state.key).filter(|_| dead) {
                if meter.head(&keys::gc_dead(job.run, content)).await?.is_none() {
                    let entry = ListedKey { key: content.to_owned(), metadata: Metadata::new() };
                    delete(meter, job, &entry).await?;
                    job.report.resumed += 1;
                }
            }
            job.phase = Phase::Resume { after: Some(state.key) };
        }
    }
}
