//! Storage usage: the bytes each repository's manifests reference (its manifests and the
//! configs and layers they name, each digest once in the repository) and the registry's
//! total (each digest once across every repository), with counts of tags, manifests and
//! blobs; counted by a job that walks the catalog in steps within a budget of storage
//! calls ([`count`]), whose place is one job record saved by compare-and-swap ([`job`]),
//! and whose finished results are a report and one entry per repository ([`report`]).
//!
//! Sizes come from what is stored: a manifest's is its bytes' length, a blob's its
//! descriptor's. Shared content is found with the run's set of seen digests ([`seen`]),
//! rather than by marking each digest in storage (a put per digest and repository) or by
//! summing the sizes of content objects (which would count content no manifest
//! references, and has no size for a multipart blob's pointer): it costs no call beyond
//! the job's own read and save.
//!
//! The one entry point is [`UsageCounter`]; it calls `storage` and `oci` only.

pub mod count;
pub mod job;
pub mod report;
pub mod seen;

use crate::lifecycle::meter::Meter;
use crate::oci::RepositoryName;
use crate::storage::{BlobStore, MetaStore, StorageError, StorageResult};
use job::{Job, Phase};
use report::{Cleaned, Entry, Report};
use seen::Seen;

/// The usage count's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageConfig {
    /// The most storage calls one step (one invocation) makes.
    pub calls_per_step: u64,
    /// The cron trigger starts a run when the last one finished this long ago.
    pub interval_ms: u64,
}

/// The default budget of one step: below the 50 calls a Free plan's invocation may make
/// (as the collector's); a Paid plan may set 900.
pub const DEFAULT_CALLS_PER_STEP: u64 = 40;
/// The default interval between runs: an hour.
pub const DEFAULT_INTERVAL_MS: u64 = 3_600_000;

/// How a step ended.
pub type Stepped = super::Stepped<Job>;

/// The usage count over the stores.
pub struct UsageCounter<'a, B, M> {
    blobs: &'a B,
    meta: &'a M,
    config: UsageConfig,
}

fn vanished() -> StorageError {
    StorageError::Backend("the usage job vanished".into())
}

impl<'a, B: BlobStore, M: MetaStore> UsageCounter<'a, B, M> {
    pub fn new(blobs: &'a B, meta: &'a M, config: UsageConfig) -> Self {
        UsageCounter { blobs, meta, config }
    }

    fn meter(&self) -> Meter<'a, B, M> {
        Meter::new(self.blobs, self.meta, self.config.calls_per_step)
    }

    /// The job record: the run in progress, or the last one.
    pub async fn status(&self) -> StorageResult<Option<Job>> {
        Ok(job::load(&self.meter()).await?.job.map(|(job, _)| job))
    }

    /// The last finished run's report; `None` before any finished.
    pub async fn report(&self) -> StorageResult<Option<Report>> {
        Ok(report::load(&self.meter()).await?.map(|(report, _)| report))
    }

    /// Up to `n` repositories of the report's run after `after`, and whether more follow.
    pub async fn repositories(
        &self,
        report: &Report,
        after: Option<&RepositoryName>,
        n: usize,
    ) -> StorageResult<(Vec<Entry>, bool)> {
        report::entries(&self.meter(), report.run, after, n).await
    }

    /// One repository in the report's run; `None` when the run did not find it.
    pub async fn repository(&self, report: &Report, repo: &RepositoryName) -> StorageResult<Option<Entry>> {
        report::entry(&self.meter(), report.run, repo).await
    }

    /// Starts a run at `now` unless one is in progress, which is returned as it is.
    pub async fn start(&self, now: u64) -> StorageResult<Job> {
        let meter = self.meter();
        let stored = job::load(&meter).await?;
        if let Some((current, _)) = stored.job.filter(|(j, _)| !j.is_done()) {
            return Ok(current);
        }
        let fresh = Job::new(now);
        if job::save(&meter, &fresh, &Seen::default(), stored.etag.as_deref()).await? {
            return Ok(fresh);
        }
        job::load(&meter).await?.job.map(|(job, _)| job).ok_or_else(vanished)
    }

    /// The cron trigger's work: starts a run when the last one finished an interval ago
    /// (or none ever ran), else moves the one in progress by a step; `None` when idle.
    pub async fn tick(&self, now: u64) -> StorageResult<Option<Stepped>> {
        let current = self.status().await?;
        let due = match &current {
            None => true,
            Some(Job { phase: Phase::Done { finished_at }, .. }) => now >= finished_at + self.config.interval_ms,
            Some(_) => false,
        };
        if due {
            self.start(now).await?;
        } else if current.as_ref().is_some_and(Job::is_done) {
            return Ok(None);
        }
        self.step(now).await.map(Some)
    }

    /// One step of the run in progress, within the budget; the job as it then is.
    pub async fn step(&self, now: u64) -> StorageResult<Stepped> {
        let meter = self.meter();
        let stored = job::load(&meter).await?;
        let Some((mut job, mut seen)) = stored.job else {
            return Err(StorageError::Backend("no usage run was started".into()));
        };
        if job.is_done() {
            return Ok(Stepped { job, saved: false });
        }
        // A phase's end ends its step: the next one starts with a fresh budget.
        job.phase = match job.phase.clone() {
            Phase::Count { .. } => match count::step(&meter, &mut job, &mut seen).await? {
                false => job.phase,
                true if job.incomplete.is_some() => Phase::Done { finished_at: now },
                true => {
                    job.counted_at = Some(now);
                    Phase::Publish
                }
            },
            Phase::Publish => {
                report::publish(&meter, &Report::of(&job, job.counted_at.unwrap_or(now))).await?;
                Phase::Clean { after: None }
            }
            Phase::Clean { after } => match report::clean_step(&meter, job.run, after, count::SAVE).await? {
                Cleaned::Done => Phase::Done { finished_at: now },
                Cleaned::Stopped { after } => Phase::Clean { after },
            },
            Phase::Done { .. } => job.phase,
        };
        if job.is_done() {
            seen = Seen::default(); // not needed any more: the record shrinks back
            job.tasks.clear();
        }
        job.steps += 1;
        job.calls += meter.spent() + 1;
        let saved = job::save(&meter, &job, &seen, stored.etag.as_deref()).await?;
        if !saved {
            let theirs = job::load(&meter).await?.job.map(|(job, _)| job).ok_or_else(vanished)?;
            return Ok(Stepped { job: theirs, saved });
        }
        Ok(Stepped { job, saved })
    }
}
