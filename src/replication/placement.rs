//! Where each key's operations go in a [`Replicated`] store: which keys replicate, which
//! live in the home replica alone (the garbage collector's), the replicas a read tries in
//! order, the one a write lands in, and the one that decides a conditional put.

use super::store::Replicated;
use crate::storage::{keys, BlobStore, StorageError, StorageResult};

/// Whether writes to `key` are replicated: everything but upload sessions (which live in
/// one replica), the objects they assemble (copied with the blob that points at them),
/// the replication bookkeeping itself, and the collector's keys (in the home replica).
pub fn is_replicated(key: &str) -> bool {
    !keys::is_session_scoped(key) && !key.starts_with(keys::REPLICATION_PREFIX) && !is_home_scoped(key)
}

/// Whether `key` (or a listing of the prefix `key`) lives in the home replica alone: the
/// garbage collector's job, marks and content states, so that the collector and every
/// push read and swap one copy of each state, whichever replica the push lands in.
pub fn is_home_scoped(key: &str) -> bool {
    key.starts_with(keys::GC_PREFIX)
}

/// Whether `key` is content (a blob or a manifest's bytes), which the collector deletes.
pub(crate) fn is_content(key: &str) -> bool {
    keys::CONTENT_PREFIXES.iter().any(|prefix| key.starts_with(prefix))
}

pub(crate) fn backend(message: String) -> StorageError {
    StorageError::Backend(message)
}

impl<S: BlobStore> Replicated<S> {
    /// The home replica for a home-scoped key (`None` for any other); an error while the
    /// home replica is out of this traffic's routing: such a key is never read or written
    /// elsewhere, so a push waits (503) rather than read a state that is not the one.
    pub(crate) fn home_scoped(&self, key: &str) -> Option<StorageResult<usize>> {
        if !is_home_scoped(key) {
            return None;
        }
        let home = self.routing.home();
        Some(if self.routing.home_reachable() {
            Ok(home)
        } else {
            let name = self.routing.name(home);
            Err(backend(format!(
                "{key} is the garbage collector's, kept in the home replica {name} alone, which is out of routing"
            )))
        })
    }

    /// The replicas a strict view (the collector's) or this traffic reads from: every
    /// routable replica, healthy or not, for the strict view; else the usable ones.
    pub(crate) fn read_candidates(&self) -> Vec<usize> {
        if self.strict {
            self.routing.routable_in_order()
        } else {
            self.routing.candidates()
        }
    }

    /// Replicas to read `key` from: the home replica alone for the collector's keys; an
    /// upload session's own replica alone; an assembled object's session replica first;
    /// anything else in the routing order.
    pub(crate) fn read_order(&self, key: &str) -> StorageResult<Vec<usize>> {
        match self.home_scoped(key) {
            // With the collector off there is no state to read (as before it existed): a
            // push neither calls nor waits for the home replica.
            Some(_) if !self.collecting => return Ok(Vec::new()),
            Some(home) => return Ok(vec![home?]),
            None => {}
        }
        let candidates = self.read_candidates();
        let session = keys::session_of(key).and_then(|id| self.routing.session_replica(&id));
        Ok(match session {
            // A session's state lives in its replica alone: read there whenever it is in
            // routing, healthy or in back-off, so that one failed operation gives 503s
            // (clients retry) rather than a session that looks gone.
            Some(home) if key.starts_with(keys::UPLOADS_PREFIX) => {
                if self.routing.routable(home) {
                    vec![home]
                } else {
                    Vec::new()
                }
            }
            Some(home) => {
                let rest = candidates.iter().copied().filter(|&i| i != home);
                candidates.contains(&home).then_some(home).into_iter().chain(rest).collect()
            }
            None => candidates,
        })
    }

    /// The one replica that takes a write to `key`: the home replica for the collector's
    /// keys, its session's replica, or the writer.
    pub(crate) fn write_target(&self, key: &str) -> StorageResult<usize> {
        if let Some(home) = self.home_scoped(key) {
            return home;
        }
        let session = keys::session_of(key).and_then(|id| self.routing.session_replica(&id));
        let target = match session {
            Some(home) => Some(home).filter(|&i| self.routing.routable(i)),
            None => self.routing.writer(),
        };
        target.ok_or_else(|| backend(format!("no replica may take a write of {key}: all are out of routing")))
    }

    /// The one replica where a conditional put of `key` is decided: an upload session's
    /// replica for its keys, the home replica for the collector's; for a replicated key,
    /// the home replica, whichever replica the request is nearest to, so that two writers
    /// in different regions race on one copy (each replica deciding alone would let both
    /// create an immutable tag). While the home replica is out of routing such a put fails
    /// (503, the client retries) rather than be decided elsewhere.
    pub(crate) fn condition_target(&self, key: &str) -> StorageResult<usize> {
        if !is_replicated(key) {
            return self.write_target(key);
        }
        let home = self.routing.home();
        if self.routing.routable(home) {
            return Ok(home);
        }
        let name = self.routing.name(home);
        Err(backend(format!(
            "{key} is written conditionally, which only the home replica {name} decides, and it is out of routing"
        )))
    }
}
