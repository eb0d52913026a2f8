//! One step of a repository's deletion: at most a budget of storage calls, and no delete
//! later than [`STEP_DEADLINE_MS`] after the step read the record (what `fence` relies
//! on). It keeps no cursor: it lists from the start of the repository's keys, deletes the
//! page, and lists again, tags first (the repository stops serving images at once), then
//! the manifest links, referrer entries and blob links; when nothing is left, the catalog
//! entry, and the record says done. Every delete is of a key listed under the repository,
//! so a step repeated, or two at once, only delete the same keys twice; a retiring marker
//! a retention step holds is left to that step.

use super::super::error::RegistryResult;
use super::super::Registry;
use super::record::{self, DeletionState, RepositoryDeletion, Stored};
use super::STEP_DEADLINE_MS;
use crate::oci::RepositoryName;
use crate::storage::{keys, retiring, BlobStore, ListedKey, MetaStore, PutIf};

/// What a step may spend.
#[derive(Debug, Clone, Copy)]
pub struct StepBudget {
    /// Storage calls, the record's read and save included (a delete of a page of keys is
    /// one call, as R2's `delete(keys[])` is).
    pub calls: u64,
    /// Keys listed, and deleted, per call (R2: at most 1,000).
    pub page: usize,
}

/// What one step did.
#[derive(Debug)]
pub struct Stepped {
    /// The record as saved (with other steps' work, if one saved in between).
    pub deletion: RepositoryDeletion,
    /// This step's storage calls and the keys it removed.
    pub calls: u64,
    pub removed: u64,
}

/// The calls an iteration of a step needs room for: a listing, a delete, and the save
/// that ends the step.
const ITERATION_CALLS: u64 = 3;

/// The fewest calls a step that makes progress needs: the record's read, a listing of the
/// tags, then of the rest, a delete, the save.
pub const MIN_STEP_CALLS: u64 = 5;

/// How many times a step whose save lost to another step's re-reads and merges.
const SAVE_TRIES: usize = 3;

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Moves `stored` (read by the caller, one call) by one step. A finished deletion is
    /// returned as it is.
    pub(super) async fn deletion_step(
        &self,
        repo: &RepositoryName,
        stored: Stored,
        budget: StepBudget,
    ) -> RegistryResult<Stepped> {
        if stored.deletion.is_done() {
            return Ok(Stepped { deletion: stored.deletion, calls: 1, removed: 0 });
        }
        let started = self.clock.now_millis();
        let in_time = || self.clock.now_millis() < started.saturating_add(STEP_DEADLINE_MS);
        let (mut calls, mut removed, mut done) = (1u64, 0u64, false);
        let mut tags_left = true;
        while calls + ITERATION_CALLS <= budget.calls && in_time() {
            let prefix = if tags_left { keys::tags_prefix(repo) } else { keys::repository_own_prefix(repo) };
            let page = self.blobs.list(&prefix, None, budget.page).await?;
            calls += 1;
            if page.keys.is_empty() && tags_left {
                tags_left = false;
                continue;
            }
            if !in_time() {
                break;
            }
            if page.keys.is_empty() {
                self.blobs.delete(&keys::catalog_entry(repo)).await?;
                (calls, removed, done) = (calls + 1, removed + 1, true);
                break;
            }
            // A retiring marker a retention step holds is that step's to delete: deleted here,
            // a push after the deletion could write the key and the step's delete remove it
            // (`storage::retiring`). Its step deletes it within a few calls; one a failed step left
            // is deleted here once stale (`MAX_HOLD_MS` and the skew, about 16 minutes).
            let now = self.clock.now_millis();
            let held = |k: &ListedKey| retiring::is_marker(&k.metadata) && retiring::is_held(&k.metadata, now);
            let batch: Vec<String> = page.keys.into_iter().filter(|k| !held(k)).map(|k| k.key).collect();
            if batch.is_empty() {
                // Only held tags left: on to the other keys; only held keys left: a later step.
                if !tags_left {
                    break;
                }
                tags_left = false;
                continue;
            }
            self.blobs.delete_many(&batch).await?;
            (calls, removed) = (calls + 1, removed + batch.len() as u64);
        }
        let deletion = self.save_step(repo, stored, removed, calls + 1, done).await?;
        Ok(Stepped { deletion, calls: calls + 1, removed })
    }

    /// Adds a step's work to the record, by compare-and-swap; on a lost save, re-reads and
    /// adds it to what the other step saved.
    async fn save_step(
        &self,
        repo: &RepositoryName,
        mut current: Stored,
        removed: u64,
        calls: u64,
        done: bool,
    ) -> RegistryResult<RepositoryDeletion> {
        for _ in 0..SAVE_TRIES {
            let mut next = current.deletion.clone();
            next.keys_removed += removed;
            next.steps += 1;
            next.calls += calls;
            if done && !next.is_done() {
                next.state = DeletionState::Done;
                next.finished_at = Some(self.clock.now_millis());
            }
            if record::save(&self.blobs, &next, PutIf::EtagMatches(&current.etag)).await?.is_some() {
                return Ok(next);
            }
            match record::load(&self.blobs, repo).await? {
                Some(newer) if newer.deletion.started_at == next.started_at => current = newer,
                // A later deletion replaced this one (it had finished): nothing to add to.
                Some(newer) => return Ok(newer.deletion),
                None => return Ok(next),
            }
        }
        // Others keep saving: this step's work is done all the same, only not counted.
        Ok(current.deletion)
    }
}
