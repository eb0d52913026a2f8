//! Online garbage collection: deletes the blobs and manifests' bytes no repository
//! reaches, while pushes and pulls go on, in steps that each fit one invocation's budget.
//!
//! A run marks ([`mark`]) what every repository's manifests reach, sweeps ([`sweep`]) all
//! content against the marks (condemning what is unreachable, deleting what a run at
//! least the grace period earlier condemned and nobody rescued), removes the links to
//! what it deleted and forgets its states ([`prune`]), and cleans its marks up. Where it
//! is lives in one job record ([`job`]), so any invocation (the cron trigger, the admin
//! endpoint) continues it; every storage call goes through a [`meter::Meter`], and a step
//! stops before its budget. Safety against concurrent pushes is the content-state
//! protocol of `storage::content_state`.
//!
//! The one entry point is [`Collector`]; it calls `storage` and `oci` only.

/// The shared meter, where the collector's steps have always found it.
pub use super::meter;

pub mod job;
pub mod mark;
pub mod prune;
pub mod resume;
pub mod sweep;

use crate::lifecycle::retention::{self, Retainer, Timing};
use crate::storage::{keys, BlobStore, MetaStore, Metadata, StorageError, StorageResult};
use job::{Job, Phase};
use meter::Meter;

/// The collector's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcConfig {
    /// Content condemned is deleted only by a run whose mark starts this long after.
    pub grace_ms: u64,
    /// The most storage calls one step (one invocation) makes.
    pub calls_per_step: u64,
    /// The cron trigger starts a run when the last one finished this long ago.
    pub interval_ms: u64,
}

/// The default grace period: an hour.
pub const DEFAULT_GRACE_MS: u64 = 3_600_000;
/// The default budget of one step: below the 50 calls a Free plan's invocation may make
/// (with room for the cron invocation's other work); a Paid plan may set 900.
pub const DEFAULT_CALLS_PER_STEP: u64 = 40;

/// How a step ended.
pub type Stepped = super::Stepped<Job>;

/// The garbage collector over the stores.
pub struct Collector<'a, B, M> {
    blobs: &'a B,
    meta: &'a M,
    config: GcConfig,
    retainer: Option<Retainer<'a>>,
}

impl<'a, B: BlobStore, M: MetaStore> Collector<'a, B, M> {
    pub fn new(blobs: &'a B, meta: &'a M, config: GcConfig) -> Self {
        Collector { blobs, meta, config, retainer: None }
    }

    /// The same, with a retention phase before each run's mark.
    pub fn with_retention(mut self, retainer: Retainer<'a>) -> Self {
        self.retainer = Some(retainer);
        self
    }

    fn meter(&self) -> Meter<'a, B, M> {
        Meter::new(self.blobs, self.meta, self.config.calls_per_step)
    }

    /// The job record: the run in progress, or the last one with its report.
    pub async fn status(&self) -> StorageResult<Option<Job>> {
        Ok(job::load(&self.meter()).await?.job)
    }

    /// Starts a run at `now` unless one is in progress, which is returned as it is.
    pub async fn start(&self, now: u64, dry_run: bool) -> StorageResult<Job> {
        let meter = self.meter();
        let stored = job::load(&meter).await?;
        if let Some(current) = stored.job.filter(|j| !j.is_done()) {
            return Ok(current);
        }
        let fresh = Job::new(now, dry_run, self.config.grace_ms, self.retainer.is_some());
        if job::save(&meter, &fresh, stored.etag.as_deref()).await? {
            return Ok(fresh);
        }
        job::load(&meter).await?.job.ok_or_else(|| StorageError::Backend("the collector's job vanished".into()))
    }

    /// The cron trigger's work: starts a (real) run when the last one finished an
    /// interval ago (or none ever ran), else moves the one in progress by a step.
    pub async fn tick(&self, now: u64) -> StorageResult<Option<Stepped>> {
        let current = self.status().await?;
        let due = match &current {
            None => true,
            Some(Job { phase: Phase::Done { finished_at }, .. }) => now >= finished_at + self.config.interval_ms,
            Some(_) => false,
        };
        if due {
            self.start(now, false).await?;
        } else if current.as_ref().is_some_and(Job::is_done) {
            return Ok(None);
        }
        self.step(now).await.map(Some)
    }

    /// One step of the run in progress, within the budget; the job as it then is.
    pub async fn step(&self, now: u64) -> StorageResult<Stepped> {
        let meter = self.meter();
        let stored = job::load(&meter).await?;
        let Some(mut job) = stored.job else {
            return Err(StorageError::Backend("no collector run was started".into()));
        };
        if job.is_done() {
            return Ok(Stepped { job, saved: false });
        }
        let mut marking = mark::Marking::new(&job);
        let marking_phase = matches!(job.phase, Phase::Mark { .. });
        self.blobs.take_unreached(); // what earlier calls missed is not this step's
        let finished = match &mut job.phase {
            Phase::Retain(cursor) => match (&self.retainer, job.report.retention.as_mut()) {
                (Some(retainer), Some(report)) => {
                    let timing = Timing { now_ms: now, grace_ms: job.grace_ms };
                    retention::step(&meter, cursor, report, retainer, timing, job.dry_run).await?
                }
                // Started with policies that are no longer set: nothing to apply.
                _ => true,
            },
            Phase::Mark { .. } => mark::step(&meter, &mut job, now, &mut marking).await?,
            Phase::Sweep { .. } => sweep::step(&meter, &mut job, now).await?,
            Phase::Resume { .. } => resume::step(&meter, &mut job).await?,
            Phase::Prune { .. } => prune::prune_step(&meter, &mut job, now).await?,
            Phase::Forget { .. } => prune::forget_step(&meter, &mut job).await?,
            Phase::Clean => prune::clean_step(&meter, &job).await?,
            Phase::Done { .. } => true,
        };
        account_for_unreached(&mut job, self.blobs.take_unreached(), marking_phase);
        // A phase's end ends its step: the next phase starts with a fresh budget, and a
        // test (or an operator reading the status) sees every phase.
        if finished {
            job.phase = match job.phase {
                Phase::Retain(_) => Phase::Mark { repo: None, after: None },
                Phase::Mark { .. } => Phase::Sweep { prefix: 0, after: None },
                Phase::Sweep { .. } if job.dry_run => Phase::Clean,
                Phase::Sweep { .. } => Phase::Resume { after: None },
                Phase::Resume { .. } => Phase::Prune { repo: None, after: None },
                Phase::Prune { .. } => Phase::Forget { after: None },
                Phase::Forget { .. } => Phase::Clean,
                Phase::Clean | Phase::Done { .. } => Phase::Done { finished_at: now },
            };
        }
        job.report.steps += 1;
        job.report.calls += meter.spent() + 1 + u64::from(job.is_done());
        if job.is_done() {
            job.recent.clear();
            let report = serde_json::to_vec(&job).map_err(|e| StorageError::Backend(e.to_string()))?;
            meter.put(&keys::gc_report(job.run), report, Metadata::new()).await?;
        }
        let saved = job::save(&meter, &job, stored.etag.as_deref()).await?;
        if !saved {
            let theirs = job::load(&meter).await?.job.unwrap_or(job);
            return Ok(Stepped { job: theirs, saved });
        }
        Ok(Stepped { job, saved })
    }
}

/// Records the replicas a step could not reach (see [`job::Report::unreached`]): while
/// marking, what only they hold is unknown, so the run becomes incomplete and condemns
/// and deletes nothing; later, the forget phase keeps every state (see [`prune`]).
fn account_for_unreached(job: &mut Job, unreached: Vec<String>, marking: bool) {
    if unreached.is_empty() {
        return;
    }
    if marking && job.report.incomplete.is_none() {
        job.report.incomplete = Some(format!(
            "replica {} could not be reached while marking: what only it holds is unknown, so this run condemns and \
             deletes nothing",
            unreached.join(", ")
        ));
    }
    for name in unreached {
        if !job.report.unreached.contains(&name) {
            job.report.unreached.push(name);
        }
    }
}
