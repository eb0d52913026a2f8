//! The usage count's job record (`usage/job`): the run in progress, where it is (the
//! repository, the listing cursor within it, the children of indexes still to read), what
//! it counted so far, and the digests it has seen ([`Seen`]). One object, saved after
//! every step by compare-and-swap on the etag read at the step's start, so a step that
//! lost the race (or ran late, after a newer run started) changes nothing: its work was
//! idempotent, and the next step repeats it. The body is the job as JSON behind its length
//! (a big-endian `u32`), then the seen set's entries.

use super::seen::Seen;
use crate::lifecycle::meter::Meter;
use crate::storage::{keys, BlobStore, MetaStore, Metadata, PutIf, StorageError, StorageResult};
use serde::{Deserialize, Serialize};

/// One usage run and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// When the run started (ms since the epoch); names its repository entries.
    pub run: u64,
    pub phase: Phase,
    /// The ordinal of the repository in progress (the first is 1).
    #[serde(default)]
    pub ordinal: u32,
    /// The repository in progress, as counted so far.
    #[serde(default)]
    pub current: RepositoryUsage,
    /// Child manifests of an index still to read in this repository (digest, depth).
    #[serde(default)]
    pub tasks: Vec<(String, u32)>,
    /// The registry as counted so far.
    pub totals: Totals,
    /// The largest repositories so far, largest first (at most [`LARGEST`]).
    #[serde(default)]
    pub largest: Vec<Largest>,
    /// Steps (invocations) the run took, and the storage calls they made.
    pub steps: u64,
    pub calls: u64,
    /// When the count finished (ms since the epoch), once it has.
    #[serde(default)]
    pub counted_at: Option<u64>,
    /// Why the run cannot be trusted (its report is not published), if so.
    #[serde(default)]
    pub incomplete: Option<String>,
}

/// How many of the largest repositories the report names.
pub const LARGEST: usize = 10;

/// Where a run is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// Counting repository `repo` (`None` before the first) at `stage`.
    Count { repo: Option<String>, stage: Stage },
    /// Publishing the report (`usage/report`).
    Publish,
    /// Removing the entries of earlier runs, after the key `after`.
    Clean { after: Option<String> },
    /// Finished.
    Done { finished_at: u64 },
}

/// Where the count of one repository is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "kebab-case")]
pub enum Stage {
    /// Counting tags, after the tag key `after`.
    Tags { after: Option<String> },
    /// Reading manifests by their links, after the link key `after`.
    Manifests { after: Option<String> },
    /// Every link visited: the queued children, then the repository's entry.
    Finish,
}

/// What one repository holds; also what its entry stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryUsage {
    /// Manifest and blob bytes, each digest once.
    pub bytes: u64,
    pub manifest_bytes: u64,
    pub blob_bytes: u64,
    pub tags: u64,
    /// Distinct manifests: every linked one, and children of indexes.
    pub manifests: u64,
    /// Distinct blobs (configs and layers) the manifests reference.
    pub blobs: u64,
    /// Manifests whose bytes were missing or could not be parsed (their own size and
    /// references are not counted).
    #[serde(default)]
    pub unreadable: u64,
}

/// The registry's totals: each digest once across every repository.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub repositories: u64,
    pub tags: u64,
    pub manifests: u64,
    pub blobs: u64,
    pub manifest_bytes: u64,
    pub blob_bytes: u64,
    /// Bytes, each digest once in the whole registry (what shared content costs once).
    pub bytes: u64,
    /// The repositories' bytes added up (shared content counted in each repository).
    pub repository_bytes: u64,
    #[serde(default)]
    pub unreadable: u64,
}

/// A repository and its bytes, for the report's list of the largest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Largest {
    pub repository: String,
    pub bytes: u64,
}

impl Job {
    pub fn new(run: u64) -> Job {
        Job {
            run,
            phase: Phase::Count { repo: None, stage: Stage::Tags { after: None } },
            ordinal: 0,
            current: RepositoryUsage::default(),
            tasks: Vec::new(),
            totals: Totals::default(),
            largest: Vec::new(),
            steps: 0,
            calls: 0,
            counted_at: None,
            incomplete: None,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done { .. })
    }

    /// Adds the finished repository `name` to the totals and the largest.
    pub fn add_repository(&mut self, name: &str) {
        let usage = self.current;
        self.totals.repositories += 1;
        self.totals.tags += usage.tags;
        self.totals.repository_bytes += usage.bytes;
        self.totals.unreadable += usage.unreadable;
        let at = self.largest.partition_point(|l| l.bytes >= usage.bytes);
        if at < LARGEST {
            self.largest.insert(at, Largest { repository: name.to_owned(), bytes: usage.bytes });
            self.largest.truncate(LARGEST);
        }
    }
}

/// The job as stored, with the etag its next save is conditional on (`None`: no job yet).
pub struct Stored {
    pub job: Option<(Job, Seen)>,
    pub etag: Option<String>,
}

fn unreadable(problem: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(format!("the usage job record {} is unreadable: {problem}", keys::usage_job()))
}

/// Reads the job record.
pub async fn load<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>) -> StorageResult<Stored> {
    let Some((info, bytes)) = meter.get_bytes(&keys::usage_job()).await? else {
        return Ok(Stored { job: None, etag: None });
    };
    let (length, rest) = bytes.split_at_checked(4).ok_or_else(|| unreadable("too short"))?;
    let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize;
    let (json, seen) = rest.split_at_checked(length).ok_or_else(|| unreadable("cut short"))?;
    let job = serde_json::from_slice(json).map_err(unreadable)?;
    let seen = Seen::decode(seen.to_vec()).map_err(unreadable)?;
    Ok(Stored { job: Some((job, seen)), etag: Some(info.etag) })
}

/// Saves `job` and `seen` if the record is still the version `etag` names; false when
/// another step saved first (nothing written).
pub async fn save<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    job: &Job,
    seen: &Seen,
    etag: Option<&str>,
) -> StorageResult<bool> {
    let json = serde_json::to_vec(job).map_err(|e| StorageError::Backend(e.to_string()))?;
    let mut bytes = (json.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&json);
    bytes.extend_from_slice(&seen.encode());
    let condition = etag.map_or(PutIf::Absent, PutIf::EtagMatches);
    Ok(meter.put_if(&keys::usage_job(), bytes, Metadata::new(), condition).await?.is_some())
}
