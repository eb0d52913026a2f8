//! Fill leases: concurrent misses of one blob of a cache repository fetch it from the
//! upstream once. The first request creates the lease (create-only) and fetches; the others
//! see a fresh lease and wait for the blob's link in the repository, checking a few times
//! with growing pauses; they fetch for themselves when the lease is gone without a link (the
//! fetch failed), older than [`FILL_LEASE_MS`], or the wait ran out. The lease is an economy,
//! not a guard: the copy is verified by whoever stores it, and two fetches still store one
//! content-addressed object, so a lost or stale lease costs a second transfer, never a
//! wrong byte.

use super::error::RegistryResult;
use super::Registry;
use crate::oci::{Digest, RepositoryName};
use crate::storage::fields::FILL_STARTED_AT;
use crate::storage::{keys, BlobStore, MetaStore, Metadata, PutIf};

/// A lease older than this is taken to belong to a request that died, and is taken over.
/// Short, so that a dead request delays misses by at most this long; a live transfer that
/// takes longer has its waiters fetch for themselves (as with no lease), never wait on it.
pub const FILL_LEASE_MS: u64 = 30_000;

/// Whose turn it is to fetch a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FillTurn {
    /// This request holds the lease (of this etag): fetch, then [`Registry::end_fill`].
    Mine(String),
    /// Another request is fetching it: wait ([`Registry::fill_landed`]).
    Another,
}

/// How a wait for another request's fill stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillWait {
    /// Linked in the repository: serve it.
    Landed,
    /// Still being fetched.
    Pending,
    /// The lease is gone without a link, or stale: fetch it yourself.
    Abandoned,
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Takes the lease to fetch `digest` for `repo`, or learns that another request holds
    /// a fresh one. A stale lease is replaced by compare-and-swap on its etag, so of two
    /// requests taking it over one wins.
    pub async fn take_fill(&self, repo: &RepositoryName, digest: &Digest) -> RegistryResult<FillTurn> {
        let key = keys::upstream_fill(repo, digest);
        let now = self.clock.now_millis();
        let lease = || Metadata::from([FILL_STARTED_AT.entry(now)]);
        if let Some(created) = self.blobs.put_bytes_if(&key, Vec::new(), lease(), PutIf::Absent).await? {
            return Ok(FillTurn::Mine(created.etag));
        }
        let Some(held) = self.blobs.head_for_condition(&key).await? else {
            // Ended between the two calls: landed, or failed; a waiter's check says which.
            return Ok(FillTurn::Another);
        };
        let started = FILL_STARTED_AT.get(&held.metadata).unwrap_or(0);
        if now < started.saturating_add(FILL_LEASE_MS) {
            return Ok(FillTurn::Another);
        }
        let taken = self.blobs.put_bytes_if(&key, Vec::new(), lease(), PutIf::EtagMatches(&held.etag)).await?;
        Ok(taken.map_or(FillTurn::Another, |info| FillTurn::Mine(info.etag)))
    }

    /// Ends this request's lease (the one of `etag`), whatever its fetch came to; a lease
    /// another request took over since is left to it. (R2 has no conditional delete: a
    /// takeover between the read and the delete loses that lease, and its waiters fetch
    /// for themselves, which costs a transfer and nothing else.)
    pub async fn end_fill(&self, repo: &RepositoryName, digest: &Digest, etag: &str) -> RegistryResult<()> {
        let key = keys::upstream_fill(repo, digest);
        if self.blobs.head_for_condition(&key).await?.is_some_and(|lease| lease.etag == etag) {
            self.blobs.delete(&key).await?;
        }
        Ok(())
    }

    /// Whether another request's fill of `digest` for `repo` has landed (two calls).
    pub async fn fill_landed(&self, repo: &RepositoryName, digest: &Digest) -> RegistryResult<FillWait> {
        if self.blobs.head(&keys::repository_blob(repo, digest)).await?.is_some() {
            return Ok(FillWait::Landed);
        }
        let now = self.clock.now_millis();
        match self.blobs.head(&keys::upstream_fill(repo, digest)).await? {
            Some(lease) if now < FILL_STARTED_AT.get(&lease.metadata).unwrap_or(0).saturating_add(FILL_LEASE_MS) => {
                Ok(FillWait::Pending)
            }
            // Gone: landed just now, or failed; the link says which.
            None if self.blobs.head(&keys::repository_blob(repo, digest)).await?.is_some() => Ok(FillWait::Landed),
            _ => Ok(FillWait::Abandoned),
        }
    }
}
