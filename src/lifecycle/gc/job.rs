//! The collector's job record (`gc/job`, JSON): the run in progress, where it is (its
//! phase and cursor, and the work queued within a repository), and what it did so far.
//! Saved after every step by compare-and-swap on the etag read at its start, so two
//! steps that ran at once (the cron trigger and the admin endpoint) cannot both move it:
//! the one that loses did idempotent work, which the next step repeats or skips.

use super::meter::Meter;
use crate::lifecycle::retention::work::{Cursor, RetentionReport};
use crate::storage::{keys, BlobStore, MetaStore, Metadata, PutIf, StorageError, StorageResult};
use serde::{Deserialize, Serialize};

/// One collector run and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// When the run started (ms since the epoch): names its marks, and is the start of its
    /// mark, against which a condemnation's grace period is measured.
    pub run: u64,
    /// Reports what it would delete, and deletes and condemns nothing.
    pub dry_run: bool,
    /// The grace period this run keeps (ms).
    pub grace_ms: u64,
    pub phase: Phase,
    /// Work queued within the current repository, done before the cursor moves on.
    #[serde(default)]
    pub tasks: Vec<Task>,
    /// Content keys marked lately, so that a base layer shared by many repositories is
    /// marked once rather than once per manifest (bounded: [`RECENT_MARKS`]).
    #[serde(default)]
    pub recent: Vec<String>,
    pub report: Report,
}

/// How many recently marked keys the job remembers between steps.
pub const RECENT_MARKS: usize = 1000;

/// Where a run is. The phases run in this order; each pages through one listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// Applying the retention policies (only when `RETENTION` is set), before the mark so
    /// that what they delete is collected by the same runs.
    Retain(Box<Cursor>),
    /// Marking what every repository reaches: `repo` is the one in progress (`None`
    /// before the first), `after` the last of its manifest links visited.
    Mark { repo: Option<String>, after: Option<String> },
    /// Sweeping content: `prefix` indexes `keys::CONTENT_PREFIXES`, `after` is the last
    /// content key swept.
    Sweep { prefix: usize, after: Option<String> },
    /// Finishing deletions an earlier run could not finish everywhere (a replica it could
    /// not reach): content whose state is dead, found in the states' listing, `after` the
    /// last state seen.
    Resume { after: Option<String> },
    /// Removing repositories' links to the blobs this run deleted.
    Prune { repo: Option<String>, after: Option<String> },
    /// Forgetting the states of the content this run deleted (pushable again).
    Forget { after: Option<String> },
    /// Removing the run's marks.
    Clean,
    /// Finished.
    Done { finished_at: u64 },
}

/// Work within a repository's mark, queued so that a step can stop between any two calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "kebab-case")]
pub enum Task {
    /// Mark a content key live.
    Mark { key: String },
    /// A child manifest of a live index: marked by its own link when the repository has
    /// one; otherwise read and its references queued (`depth` below the index).
    Child { digest: String, depth: u32 },
}

/// A count of items and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub items: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn add(&mut self, bytes: u64) {
        self.items += 1;
        self.bytes += bytes;
    }
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub repositories: u64,
    pub manifests_visited: u64,
    pub keys_marked: u64,
    /// Content no live manifest reaches, found by the sweep.
    pub unreachable: Tally,
    /// Condemned by this run: deleted by a later one if still unreachable.
    pub condemned: Tally,
    /// Condemned earlier but reachable again: the condemnation was taken back.
    pub absolved: u64,
    /// Deleted by this run (dry: would be).
    pub deleted: Tally,
    /// Referrers whose subject is gone (left unmarked: collected with their content).
    pub referrers_unreachable: u64,
    /// Repositories' links (blob and manifest links, referrer entries) to deleted content,
    /// removed.
    pub links_removed: u64,
    /// Steps (invocations) the run took, and the storage calls they made.
    pub steps: u64,
    pub calls: u64,
    /// Set when the mark could not be completed safely (a manifest it could not read or
    /// parse, an index nested too deep, a replica it could not reach): then nothing is
    /// condemned or deleted.
    #[serde(default)]
    pub incomplete: Option<String>,
    /// What the retention policies deleted (or, not applied, would delete); `None` when
    /// none are set.
    #[serde(default)]
    pub retention: Option<RetentionReport>,
    /// Replicas some call of this run could not reach. While marking, that makes the run
    /// incomplete; later, a deletion may have missed them, so the run forgets no state
    /// (the content stays refused to pushes) and the next run finishes its deletions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreached: Vec<String>,
    /// Deletions an earlier run left unfinished (dead content), finished by this one.
    #[serde(default)]
    pub resumed: u64,
    /// States of deleted content not forgotten because a replica was unreached.
    #[serde(default)]
    pub kept_dead: u64,
}

impl Job {
    /// A run starting at `run`; with `retention`, it applies the policies first.
    pub fn new(run: u64, dry_run: bool, grace_ms: u64, retention: bool) -> Job {
        let phase = match retention {
            true => Phase::Retain(Box::default()),
            false => Phase::Mark { repo: None, after: None },
        };
        let report = Report { retention: retention.then(RetentionReport::default), ..Report::default() };
        Job { run, dry_run, grace_ms, phase, tasks: Vec::new(), recent: Vec::new(), report }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done { .. })
    }

    /// Remembers `key` as marked, forgetting the oldest beyond [`RECENT_MARKS`].
    pub fn remember(&mut self, key: String) {
        if self.recent.len() >= RECENT_MARKS {
            self.recent.remove(0);
        }
        self.recent.push(key);
    }
}

/// The job as stored, with the etag its next save is conditional on (`None`: no job yet).
pub struct Stored {
    pub job: Option<Job>,
    pub etag: Option<String>,
}

/// Reads the job record.
pub async fn load<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>) -> StorageResult<Stored> {
    let Some((info, bytes)) = meter.get_bytes(&keys::gc_job()).await? else {
        return Ok(Stored { job: None, etag: None });
    };
    let job = serde_json::from_slice(&bytes).map_err(|e| {
        StorageError::Backend(format!("the collector's job record {} is unreadable: {e}", keys::gc_job()))
    })?;
    Ok(Stored { job: Some(job), etag: Some(info.etag) })
}

/// Saves `job` if the record is still the version `etag` names; false when another step
/// saved first (nothing written).
pub async fn save<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    job: &Job,
    etag: Option<&str>,
) -> StorageResult<bool> {
    let bytes = serde_json::to_vec(job).map_err(|e| StorageError::Backend(e.to_string()))?;
    let condition = etag.map_or(PutIf::Absent, PutIf::EtagMatches);
    Ok(meter.put_if(&keys::gc_job(), bytes, Metadata::new(), condition).await?.is_some())
}
