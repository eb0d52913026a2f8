//! What a retention phase keeps in the collector's job record between steps: the
//! repository in progress (what was read of it so far, then the deletions its plan
//! decided, each with the version it was decided on), and the report.

use serde::{Deserialize, Serialize};

/// Where the retention phase is: the last repository finished, and the one in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The last repository finished (catalog order); `None` before the first.
    pub finished: Option<String>,
    /// The repository in progress.
    pub work: Option<Work>,
}

/// One repository's evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Work {
    pub repo: String,
    pub stage: Stage,
    /// When its read began (the tag listing's step): the plan's now, so that a manifest
    /// pushed during the read (a tag the listing missed, a link it saw) is within grace.
    #[serde(default)]
    pub read_at: u64,
    #[serde(default)]
    pub tags: Vec<SeenTag>,
    #[serde(default)]
    pub manifests: Vec<SeenManifest>,
    /// The plan's deletions, tags first, then manifests (indexes before their children).
    #[serde(default)]
    pub actions: Vec<Action>,
}

impl Work {
    pub fn new(repo: String, read_at: u64) -> Work {
        let stage = Stage::Tags { after: None };
        Work { repo, stage, read_at, tags: Vec::new(), manifests: Vec::new(), actions: Vec::new() }
    }
}

/// What the repository's evaluation does next; each read stage pages through a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "kebab-case")]
pub enum Stage {
    Tags {
        after: Option<String>,
    },
    Links {
        after: Option<String>,
    },
    Referrers {
        after: Option<String>,
    },
    /// Reading the indexes' bytes for their children: `next` indexes `manifests`.
    Indexes {
        next: usize,
    },
    /// Carrying out the plan: `next` indexes `actions`.
    Apply {
        next: usize,
    },
}

/// A tag as listed: what it points at and when it was pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenTag {
    pub name: String,
    pub digest: String,
    pub pushed_at: u64,
}

/// A manifest link as listed, with what its bytes and the referrer entries say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenManifest {
    pub digest: String,
    pub pushed_at: u64,
    /// The media type its link names (an index's children are read from its bytes).
    pub media_type: String,
    #[serde(default)]
    pub children: Vec<String>,
    #[serde(default)]
    pub subject: Option<String>,
}

/// One deletion of the plan, with the version it was decided on: carried out only if the
/// key still holds that version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "delete", rename_all = "kebab-case")]
pub enum Action {
    Tag { name: String, digest: String, pushed_at: u64 },
    Manifest { digest: String, pushed_at: u64, subject: Option<String> },
}

/// What retention did in a run (with `applied` false: would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionReport {
    /// Deletions were carried out (false: a dry run, or `RETENTION_MODE` is `dry-run`).
    pub applied: bool,
    pub repositories: u64,
    /// Repositories a policy applies to.
    pub evaluated: u64,
    pub tags_kept: u64,
    pub tags_deleted: u64,
    pub manifests_kept: u64,
    pub manifests_deleted: u64,
    /// Deletions not carried out because the tag or link changed since it was read (a
    /// push moved or re-pushed it) or is being deleted by someone else.
    pub changed: u64,
    /// Repositories left as they are because an index of theirs could not be read (its
    /// children would look unreachable).
    #[serde(default)]
    pub unreadable: Vec<String>,
    /// The first deletions, as `repo:tag` and `repo@digest`, for a person to check.
    #[serde(default)]
    pub sample: Vec<String>,
}

/// How many deletions the report names.
pub const SAMPLE: usize = 100;

impl RetentionReport {
    pub fn note(&mut self, what: String) {
        if self.sample.len() < SAMPLE {
            self.sample.push(what);
        }
    }
}
