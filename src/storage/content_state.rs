//! The garbage collector's state of one content key (a blob, or a manifest's bytes), and
//! the check every push makes before it relies on content that is already stored. This is
//! the one place where the collector and pushes meet, so the safety argument lives here.
//!
//! R2 deletes unconditionally and content is shared by every repository, so neither side
//! can lock. Instead each content key may have a small state object
//! ([`keys::content_state`]), changed only by conditional puts:
//!
//! R2's etag is the MD5 of an object's bytes alone, so every version's body names the
//! version it replaced (its etag) and the time: a swap conditional on one version can
//! never land on another that happens to carry the same metadata.
//!
//! - **absent**: the normal case (no cost beyond one `HEAD` for a push that checks).
//! - **condemned at `Tc`**: a collector run found the content unreachable and wrote this
//!   (create-only, or a compare-and-swap on a rescued state).
//! - **rescued**: a push that relied on condemned content swapped the condemned version
//!   for this one (compare-and-swap on its etag).
//! - **dead**: a later run, whose mark started at least the grace period `G` after `Tc` and
//!   still found the content unreachable, swapped the condemned version for this one; only
//!   then does it delete the bytes, then the links to them, then this state.
//!
//! A push that relies on stored content ([`check_before_use`]) goes on when the state is
//! absent or rescued, rescues a condemned one (and goes on only if its swap landed), and
//! refuses dead content. **Why no image breaks**: say a push checked at `t` and wrote its
//! manifest link by `t + G`, and a run deleted the content. The run swapped a condemned
//! version `E` (written at `Tc`) for dead. If the push read a version before `E`, then
//! `Tc > t`, so the run's mark started after `Tc + G > t + G`, after the link was written:
//! it saw the manifest and marked the content live, a contradiction. If the push read `E`,
//! its swap and the run's swap were both conditional on `E` and only one landed: either
//! the run's failed (no delete), or the push's did and the push refused. If it read dead,
//! it refused. So a push either completes with its content kept, or is refused; it is
//! refused only when it read the content more than `G` after it was condemned, that is
//! when it took longer than the grace period.

use super::fields::{GC_CONDEMNED_AT, GC_STATE};
use super::{keys, BlobStore, Metadata, PutIf, StorageError, StorageResult};

/// A content key's state, with the etag of the version read (what a swap is conditional on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentState {
    Absent,
    Condemned { at_ms: u64, etag: String },
    Rescued { etag: String },
    Dead { etag: String },
}

/// What a push may do with stored content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usable {
    /// Kept for at least the grace period from now.
    Yes,
    /// Being deleted: the push must not rely on it (nor store it again until it is gone).
    Collected,
}

const CONDEMNED: &str = "condemned";
const RESCUED: &str = "rescued";
const DEAD: &str = "dead";

/// Reads the state of `content` (one `HEAD`).
pub async fn read<B: BlobStore>(store: &B, content: &str) -> StorageResult<ContentState> {
    let Some(info) = store.head(&keys::content_state(content)).await? else { return Ok(ContentState::Absent) };
    let etag = info.etag;
    Ok(match GC_STATE.get(&info.metadata) {
        // A condemned state without its time cannot be timed: treated as rescued.
        Some(CONDEMNED) => match GC_CONDEMNED_AT.get(&info.metadata) {
            Some(at_ms) => ContentState::Condemned { at_ms, etag },
            None => ContentState::Rescued { etag },
        },
        Some(DEAD) => ContentState::Dead { etag },
        // A state this release does not know is treated as rescued: never deleted by it.
        _ => ContentState::Rescued { etag },
    })
}

/// The check a push makes before it relies on stored `content` (links it, skips its
/// upload, or references it from a manifest): see the module docs. A condemned state is
/// rescued; two rescues racing are both fine (the one that loses reads the winner's).
pub async fn check_before_use<B: BlobStore>(store: &B, content: &str) -> StorageResult<Usable> {
    for _ in 0..3 {
        match read(store, content).await? {
            ContentState::Absent | ContentState::Rescued { .. } => return Ok(Usable::Yes),
            ContentState::Dead { .. } => return Ok(Usable::Collected),
            ContentState::Condemned { etag, .. } => {
                if absolve(store, content, &etag).await? {
                    return Ok(Usable::Yes);
                }
            }
        }
    }
    Err(StorageError::Backend(format!("the collector's state of {content} kept changing; retry")))
}

/// Condemns `content` at `now_ms`, from the state `current` (absent or rescued); false when
/// that state changed meanwhile (nothing written).
pub async fn condemn<B: BlobStore>(
    store: &B,
    content: &str,
    current: &ContentState,
    now_ms: u64,
) -> StorageResult<bool> {
    let (condition, replaced) = match current {
        ContentState::Absent => (PutIf::Absent, "absent"),
        ContentState::Rescued { etag } => (PutIf::EtagMatches(etag), etag.as_str()),
        ContentState::Condemned { .. } | ContentState::Dead { .. } => return Ok(false),
    };
    let condemned = Metadata::from([GC_STATE.entry(CONDEMNED), GC_CONDEMNED_AT.entry(now_ms)]);
    let body = version_body(CONDEMNED, replaced, Some(now_ms));
    Ok(store.put_bytes_if(&keys::content_state(content), body, condemned, condition).await?.is_some())
}

/// Takes back a condemnation the collector finds wrong (the content is reachable again):
/// swaps the condemned version `etag` for rescued; false when it changed meanwhile.
pub async fn absolve<B: BlobStore>(store: &B, content: &str, etag: &str) -> StorageResult<bool> {
    let rescued = Metadata::from([GC_STATE.entry(RESCUED)]);
    let (key, body) = (keys::content_state(content), version_body(RESCUED, etag, None));
    Ok(store.put_bytes_if(&key, body, rescued, PutIf::EtagMatches(etag)).await?.is_some())
}

/// Marks condemned `content` dead (the version `etag` read): after this lands, and only
/// then, may its bytes be deleted. False when a push rescued it meanwhile.
pub async fn kill<B: BlobStore>(store: &B, content: &str, etag: &str) -> StorageResult<bool> {
    let dead = Metadata::from([GC_STATE.entry(DEAD)]);
    let (key, body) = (keys::content_state(content), version_body(DEAD, etag, None));
    Ok(store.put_bytes_if(&key, body, dead, PutIf::EtagMatches(etag)).await?.is_some())
}

/// A state version's body: its state, the version it replaced and when, so that no two
/// versions share an etag (R2's etag is the MD5 of the bytes).
fn version_body(state: &str, replaced: &str, at_ms: Option<u64>) -> Vec<u8> {
    match at_ms {
        Some(at) => format!("{state} at {at}, replacing {replaced}").into_bytes(),
        None => format!("{state}, replacing {replaced}").into_bytes(),
    }
}

/// Forgets the state of dead `content` once its bytes and links are gone, so that it can
/// be pushed again. Only the collector, which alone writes dead, calls it.
pub async fn forget<B: BlobStore>(store: &B, content: &str) -> StorageResult<()> {
    store.delete(&keys::content_state(content)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryBlobStore;
    use futures::executor::block_on;

    const K: &str = "blobs/sha256/00";

    #[test]
    fn a_push_rescues_condemned_content_and_the_collector_then_cannot_kill_it() {
        block_on(async {
            let store = MemoryBlobStore::new();
            assert_eq!(check_before_use(&store, K).await.unwrap(), Usable::Yes, "absent");
            assert!(condemn(&store, K, &ContentState::Absent, 10).await.unwrap());
            let condemned = read(&store, K).await.unwrap();
            let ContentState::Condemned { at_ms: 10, etag } = condemned.clone() else { panic!("{condemned:?}") };
            assert_eq!(check_before_use(&store, K).await.unwrap(), Usable::Yes);
            assert!(matches!(read(&store, K).await.unwrap(), ContentState::Rescued { .. }));
            assert!(!kill(&store, K, &etag).await.unwrap(), "the collector's swap is on the condemned version");
        });
    }

    #[test]
    fn killed_first_the_push_is_refused() {
        block_on(async {
            let store = MemoryBlobStore::new();
            condemn(&store, K, &ContentState::Absent, 10).await.unwrap();
            let ContentState::Condemned { etag, .. } = read(&store, K).await.unwrap() else { panic!() };
            assert!(kill(&store, K, &etag).await.unwrap());
            assert_eq!(check_before_use(&store, K).await.unwrap(), Usable::Collected);
            forget(&store, K).await.unwrap();
            assert_eq!(check_before_use(&store, K).await.unwrap(), Usable::Yes, "gone: pushable again");
        });
    }

    #[test]
    fn a_condemnation_from_a_stale_read_does_not_land() {
        block_on(async {
            let store = MemoryBlobStore::new();
            assert!(condemn(&store, K, &ContentState::Absent, 1).await.unwrap());
            assert!(!condemn(&store, K, &ContentState::Absent, 2).await.unwrap(), "create-only");
            check_before_use(&store, K).await.unwrap();
            let rescued = read(&store, K).await.unwrap();
            assert!(condemn(&store, K, &rescued, 3).await.unwrap(), "a rescued state is condemned again by swap");
            assert!(!condemn(&store, K, &rescued, 4).await.unwrap(), "not twice from the same read");
        });
    }
}
