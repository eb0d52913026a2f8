//! The record of a repository's deletion (`keys::repository_deletion`, JSON): its state,
//! when it started and finished, and what its steps did. Created create-only (or over a
//! finished one, by compare-and-swap on its etag) and changed only by compare-and-swap, so
//! two requests that race to delete a repository start one deletion, and two steps that
//! race cannot both save. Its state and end time are also in its metadata, so that a push
//! reads them with one `HEAD`. Never removed: a push compares the record's etag before and
//! after it writes (`fence`), which only works if no deletion can leave without a trace.

use super::super::error::{RegistryError, RegistryResult};
use crate::oci::RepositoryName;
use crate::storage::fields::{DELETION_FINISHED_AT, DELETION_STATE};
use crate::storage::{keys, BlobStore, Metadata, PutIf, StorageError};
use serde::{Deserialize, Serialize};

/// Where a repository's deletion is, as `GET /admin/repositories/<name>` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryDeletion {
    pub repository: String,
    pub state: DeletionState,
    /// When it was requested (ms since the epoch).
    pub started_at: u64,
    /// When its last key went (ms since the epoch); `None` while deleting.
    pub finished_at: Option<u64>,
    /// Keys (tags, manifest and blob links, referrer entries, the catalog entry) removed so
    /// far. Two steps racing over the same keys may both count one.
    pub keys_removed: u64,
    /// Steps (requests and cron invocations) that worked on it, and their storage calls.
    pub steps: u64,
    pub calls: u64,
}

/// A deletion's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeletionState {
    /// Keys are left: pushes into the repository are refused.
    Deleting,
    /// Nothing of the repository is left (pushes may create it again, a few minutes on).
    Done,
}

impl DeletionState {
    /// The state as the record's metadata carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeletionState::Deleting => "deleting",
            DeletionState::Done => "done",
        }
    }
}

impl RepositoryDeletion {
    pub fn new(repo: &RepositoryName, now: u64) -> Self {
        RepositoryDeletion {
            repository: repo.to_string(),
            state: DeletionState::Deleting,
            started_at: now,
            finished_at: None,
            keys_removed: 0,
            steps: 0,
            calls: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == DeletionState::Done
    }
}

/// The record as stored, with the etag a save is conditional on.
pub struct Stored {
    pub deletion: RepositoryDeletion,
    pub etag: String,
}

/// Reads the record of `repo`'s last deletion; `None` when it never was deleted.
pub async fn load<B: BlobStore>(store: &B, repo: &RepositoryName) -> RegistryResult<Option<Stored>> {
    let key = keys::repository_deletion(repo);
    let Some((info, bytes)) = store.get_bytes(&key).await? else {
        return Ok(None);
    };
    let deletion = serde_json::from_slice(&bytes).map_err(|e| {
        RegistryError::Storage(StorageError::Backend(format!(
            "the repository deletion record {key} is unreadable: {e}"
        )))
    })?;
    Ok(Some(Stored { deletion, etag: info.etag }))
}

/// Writes `deletion` if `condition` holds; the new etag, or `None` when another writer got
/// there first (nothing was written).
pub async fn save<B: BlobStore>(
    store: &B,
    deletion: &RepositoryDeletion,
    condition: PutIf<'_>,
) -> RegistryResult<Option<String>> {
    let repo = RepositoryName::parse(&deletion.repository)
        .map_err(|e| RegistryError::NameInvalid(format!("{}: {e}", deletion.repository)))?;
    let mut metadata = Metadata::from([DELETION_STATE.entry(deletion.state.as_str())]);
    if let Some(at) = deletion.finished_at {
        DELETION_FINISHED_AT.set(&mut metadata, at);
    }
    let body = serde_json::to_vec(deletion).expect("a deletion record serializes");
    let written = store.put_bytes_if(&keys::repository_deletion(&repo), body, metadata, condition).await?;
    Ok(written.map(|info| info.etag))
}
