//! Deleting a whole repository (admin), as a job: every tag, manifest link, referrer entry
//! and blob link under it, then its catalog entry. The shared bytes stay: the garbage
//! collector deletes what no other repository uses, a grace period later.
//!
//! A request records the deletion (`record`: create-only, so racing requests start one;
//! a repeated request joins it), leaves a marker for the cron trigger, and does a first
//! step at once (`step`: a budget of storage calls); the cron trigger steps every pending
//! deletion until it is done. While it runs, pushes into the repository are refused, and a
//! push that straddles its start is refused rather than accepted and then deleted
//! (`fence`, with the argument). A repository holding an immutable tag is refused, as a
//! delete of that tag is.

mod fence;
mod record;
mod step;

pub use fence::PUSH_QUIET_MS;
pub use record::{DeletionState, RepositoryDeletion};
pub use step::StepBudget;
use step::MIN_STEP_CALLS;

use super::error::{RegistryError, RegistryResult};
use super::immutable::{ImmutableRefusal, Refused};
use super::Registry;
use crate::oci::{RepositoryName, Tag};
use crate::storage::{keys, limits, BlobStore, MetaStore, Metadata, PutIf};
use record::Stored;

/// The default `Config::repository_delete_calls_per_step` (the Free plan allows 50 calls
/// per invocation; each call deletes up to 1,000 keys).
pub const REPOSITORY_DELETE_CALLS_PER_STEP: u64 = 40;

/// The fewest calls `Config::repository_delete_calls_per_step` may be: the cron trigger's
/// pass lists the markers, makes a step that progresses, and removes a finished marker.
pub const MIN_REPOSITORY_DELETE_CALLS_PER_STEP: u64 = MIN_STEP_CALLS + 2;

/// A step makes no delete later than this after it read the record as deleting.
pub const STEP_DEADLINE_MS: u64 = 60_000;

/// What the cron trigger's pass over the pending deletions did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeletionsReport {
    /// Deletions stepped, and of those, finished.
    pub stepped: u64,
    pub finished: u64,
    pub keys_removed: u64,
    pub calls: u64,
    /// Deletions whose step failed (a storage error): the next run retries them.
    pub failed: u64,
}

impl StepBudget {
    /// `calls` per step, in pages of R2's listing limit.
    pub fn calls(calls: u64) -> Self {
        StepBudget { calls, page: limits::R2_MAX_LIST }
    }
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// `DELETE /admin/repositories/<name>`: starts deleting `repo`, or joins the deletion in
    /// progress, and does one step of `budget`. `NAME_UNKNOWN` when there is no such
    /// repository (and none being deleted); `Immutable` when it holds an immutable tag.
    pub async fn delete_repository(
        &self,
        repo: &RepositoryName,
        budget: StepBudget,
    ) -> RegistryResult<RepositoryDeletion> {
        let stored = self.start_deletion(repo).await?;
        let deletion = self.deletion_step(repo, stored, budget).await?.deletion;
        if deletion.is_done() {
            self.blobs.delete(&keys::pending_deletion(deletion.started_at, repo)).await?;
        }
        Ok(deletion)
    }

    /// The deletion in progress or, if none, a new one recorded (create-only, or over the
    /// finished one by compare-and-swap), with its marker for the cron trigger.
    async fn start_deletion(&self, repo: &RepositoryName) -> RegistryResult<Stored> {
        for _ in 0..3 {
            let existing = record::load(&self.blobs, repo).await?;
            let stored = match existing {
                Some(stored) if !stored.deletion.is_done() => stored,
                previous => {
                    if !self.repository_exists(repo).await? {
                        return Err(RegistryError::NameUnknown(repo.to_string()));
                    }
                    self.refuse_if_any_tag_is_immutable(repo).await?;
                    let deletion = RepositoryDeletion::new(repo, self.clock.now_millis());
                    let condition = match &previous {
                        Some(done) => PutIf::EtagMatches(&done.etag),
                        None => PutIf::Absent,
                    };
                    // Lost to a racing request: join what it recorded.
                    let Some(etag) = record::save(&self.blobs, &deletion, condition).await? else { continue };
                    Stored { deletion, etag }
                }
            };
            // Again when joining: the request that recorded it may have stopped before.
            let marker = keys::pending_deletion(stored.deletion.started_at, repo);
            self.blobs.put_bytes(&marker, Vec::new(), Metadata::new()).await?;
            return Ok(stored);
        }
        Err(RegistryError::Storage(crate::storage::StorageError::Backend(format!(
            "the deletion record of {repo} kept changing while this request read it; retry"
        ))))
    }

    /// `GET /admin/repositories/<name>`: the last deletion of `repo`, or `None` for a
    /// repository never deleted; `NAME_UNKNOWN` when there is neither.
    pub async fn repository_deletion(&self, repo: &RepositoryName) -> RegistryResult<Option<RepositoryDeletion>> {
        if let Some(stored) = record::load(&self.blobs, repo).await? {
            return Ok(Some(stored.deletion));
        }
        match self.repository_exists(repo).await? {
            true => Ok(None),
            false => Err(RegistryError::NameUnknown(repo.to_string())),
        }
    }

    /// The cron trigger's work: steps the pending deletions, oldest first, within
    /// `budget.calls` storage calls in all, and removes the markers of finished ones. A
    /// deletion whose step fails is counted and left for the next run; the others go on.
    pub async fn step_repository_deletions(&self, budget: StepBudget) -> RegistryResult<DeletionsReport> {
        let calls = budget.calls;
        let mut report = DeletionsReport { calls: 1, ..DeletionsReport::default() };
        let page = self.blobs.list(keys::PENDING_DELETIONS_PREFIX, None, limits::R2_MAX_LIST).await?;
        for marker in page.keys {
            let left = calls.saturating_sub(report.calls);
            // A step that progresses, and the removal of its marker.
            if left < MIN_STEP_CALLS + 1 {
                break;
            }
            let budget = StepBudget { calls: left, ..budget };
            if self.step_pending(&marker.key, budget, &mut report).await.is_err() {
                report.failed += 1;
            }
        }
        Ok(report)
    }

    /// Steps the deletion a pending marker names (or removes the marker, stale once its
    /// deletion finished or was replaced), adding what it did to `report`.
    async fn step_pending(&self, marker: &str, budget: StepBudget, report: &mut DeletionsReport) -> RegistryResult<()> {
        let Some((started_at, repo)) = keys::pending_deletion_of(marker) else { return Ok(()) };
        let stored = record::load(&self.blobs, &repo).await?;
        report.calls += 1;
        let finished = match stored {
            Some(stored) if stored.deletion.started_at == started_at && !stored.deletion.is_done() => {
                let stepped =
                    self.deletion_step(&repo, stored, StepBudget { calls: budget.calls - 1, ..budget }).await?;
                report.stepped += 1;
                report.calls += stepped.calls - 1;
                report.keys_removed += stepped.removed;
                report.finished += u64::from(stepped.deletion.is_done());
                stepped.deletion.is_done()
            }
            _ => true,
        };
        if finished {
            self.blobs.delete(marker).await?;
            report.calls += 1;
        }
        Ok(())
    }

    /// Whether anything of `repo` is stored: a key of its own, or its catalog entry.
    async fn repository_exists(&self, repo: &RepositoryName) -> RegistryResult<bool> {
        let own = self.blobs.list(&keys::repository_own_prefix(repo), None, 1).await?;
        Ok(!own.keys.is_empty() || self.blobs.head(&keys::catalog_entry(repo)).await?.is_some())
    }

    async fn refuse_if_any_tag_is_immutable(&self, repo: &RepositoryName) -> RegistryResult<()> {
        if self.config.immutable_tags.is_empty() {
            return Ok(());
        }
        for entry in crate::storage::list_all(&self.blobs, &keys::tags_prefix(repo)).await? {
            let Some(name) = entry.key.strip_prefix(&keys::tags_prefix(repo)) else { continue };
            let Ok(tag) = Tag::parse(name) else { continue };
            if let Some(rule) = self.config.immutable_tags.rule_for(repo, &tag) {
                return Err(RegistryError::Immutable(ImmutableRefusal::new(repo, &tag, rule, Refused::DeleteTag)));
            }
        }
        Ok(())
    }
}
