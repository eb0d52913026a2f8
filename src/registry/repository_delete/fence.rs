//! Where pushes meet a repository's deletion: a push never ends accepted but deleted.
//!
//! A push *enters* before it writes anything into the repository (opening an upload,
//! linking a blob, storing a manifest): it reads the deletion record (one `HEAD`) and is
//! refused while a deletion is in progress, or finished less than [`PUSH_QUIET_MS`] ago. A
//! manifest push, the step that completes a push, also *leaves* after its last write: it
//! reads the record again and is refused if it changed.
//!
//! Why no accepted push is lost. A deletion's record is created before any of its deletes,
//! is never removed, and every step of it makes its last delete within
//! [`STEP_DEADLINE_MS`](super::STEP_DEADLINE_MS) of reading the record as deleting, so
//! before its end time plus [`PUSH_QUIET_MS`] (which adds a margin for the call in flight
//! and the clocks of different isolates). Take a write `W` of a manifest push that entered
//! at `R0` and left at `R1` (`R0 < W < R1`), deleted by a deletion `J` after it landed. If
//! `R0` saw `J` deleting, or finished within the quiet period, the push was refused. `R0`
//! cannot have seen `J` finished longer ago: every delete of `J` came before `R0 < W`. So
//! `J`'s record did not exist at `R0`. If it existed at `R1`, the record changed in between
//! and the push was refused; if not, `J` was requested after the push was accepted, and
//! deleting what it pushed is what was asked. R2 is strongly consistent, so "before" is
//! real time. A refused push may leave what it wrote; a step still running removes it, or
//! the repository holds it (a blob link, an untagged manifest) once the deletion is done.

use super::super::error::{RegistryError, RegistryResult};
use super::super::Registry;
use super::STEP_DEADLINE_MS;
use crate::oci::RepositoryName;
use crate::storage::fields::{DELETION_FINISHED_AT, DELETION_STATE};
use crate::storage::{keys, BlobStore, MetaStore};

/// How long after a deletion finished pushes into the repository are still refused: a
/// step may delete until [`STEP_DEADLINE_MS`] after it started, plus two minutes for a call
/// in flight and the clock skew between isolates.
pub const PUSH_QUIET_MS: u64 = STEP_DEADLINE_MS + 120_000;

/// What a push saw of the deletion record when it entered: checked again when it leaves.
#[derive(Debug)]
pub(crate) struct Fence {
    /// The record's etag, `None` when there was none.
    seen: Option<String>,
    /// Repository deletes are off (replicas): nothing is read.
    off: bool,
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Before a push writes into `repo`: refused while `repo` is being deleted.
    pub(crate) async fn enter_fence(&self, repo: &RepositoryName) -> RegistryResult<Fence> {
        if !self.config.repository_deletes {
            return Ok(Fence { seen: None, off: true });
        }
        let Some(info) = self.blobs.head(&keys::repository_deletion(repo)).await? else {
            return Ok(Fence { seen: None, off: false });
        };
        if DELETION_STATE.get(&info.metadata) != Some("done") {
            return Err(RegistryError::RepositoryDeleting(format!(
                "repository {repo} is being deleted (GET /admin/repositories/{repo} shows how far): pushes into \
                 it are refused until the deletion is done; push again then"
            )));
        }
        let until = DELETION_FINISHED_AT.get(&info.metadata).unwrap_or(0).saturating_add(PUSH_QUIET_MS);
        let now = self.clock.now_millis();
        if now < until {
            let seconds = (until - now).div_ceil(1000);
            return Err(RegistryError::RepositoryDeleting(format!(
                "repository {repo} was deleted moments ago: pushes into it are refused for {seconds} more seconds, \
                 while the deletion's last steps may still be running; push again then"
            )));
        }
        Ok(Fence { seen: Some(info.etag), off: false })
    }

    /// After a manifest push's last write into `repo`: refused if a deletion of `repo`
    /// started (or moved) since the push entered, as it may have deleted what was written.
    pub(crate) async fn leave_fence(&self, repo: &RepositoryName, fence: Fence) -> RegistryResult<()> {
        if fence.off {
            return Ok(());
        }
        let now = self.blobs.head(&keys::repository_deletion(repo)).await?.map(|info| info.etag);
        if now == fence.seen {
            return Ok(());
        }
        Err(RegistryError::RepositoryDeleting(format!(
            "repository {repo} began to be deleted while this push was in progress, and what it wrote may have \
             been deleted with it: the push was not accepted; push again once the deletion is done (GET \
             /admin/repositories/{repo})"
        )))
    }
}
