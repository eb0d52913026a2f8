//! [`Replicated`]: the [`BlobStore`] the registry sees when there are replicas. Reads go to
//! the nearest replica holding the content and fall back on a miss, an error or a timeout;
//! writes land in one replica and are recorded as [`Change`]s for asynchronous
//! replication; upload sessions stay in the replica that opened them; conditional puts of
//! replicated keys (immutable tags) and the garbage collector's keys live in the home
//! replica ([`placement`](super::placement) says where each key goes). The collector's
//! view is strict: it reads every replica, and records those it could not reach.

pub use super::calls::{Change, ChangeKind};
use super::placement::{backend, is_content, is_home_scoped, is_replicated};
use super::routing::Routing;
use crate::oci::{Algorithm, Digest};
use crate::storage::fields::{POINTER_TARGET, WRITTEN_AT};
use crate::storage::{
    keys, BlobStore, ByteRange, CutPart, ListPage, Metadata, NativePut, Object, ObjectInfo, PartReceipt, PutIf,
    StorageError, StorageResult,
};
use futures::future::LocalBoxFuture;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Reads slower than this count as failed, and the next replica is tried.
pub const DEFAULT_READ_TIMEOUT_MS: u64 = 5_000;

/// Sleeping without a thread: `worker::Delay` on Workers.
pub trait Timer {
    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()>;
}

/// One replica: its declared name and its bucket.
pub struct Replica<S> {
    pub name: String,
    pub store: S,
}

/// The replicas seen through one request's [`Routing`].
pub struct Replicated<S> {
    pub replicas: Rc<Vec<Replica<S>>>,
    pub routing: Rc<Routing>,
    pub(crate) timer: Rc<dyn Timer>,
    pub(crate) read_timeout_ms: u64,
    pub(crate) changes: RefCell<Vec<Change>>,
    /// The garbage collector's view: reads and listings try every replica, and a replica
    /// that fails is recorded in `unreached` (see [`BlobStore::take_unreached`]).
    pub(crate) strict: bool,
    pub(crate) unreached: RefCell<Vec<String>>,
    /// Backend calls made (see [`BlobStore::backend_calls`]).
    pub(crate) calls: Cell<u64>,
    /// Whether the garbage collector is on: then copies of content consult its state
    /// first, and pushes read states in the home replica; with it off there are none to
    /// read, so a read of the collector's keys finds nothing without a call.
    pub(crate) collecting: bool,
}

/// When a replicated object was written (its `written-at` metadata; 0 if unstamped).
pub(crate) fn written_at(metadata: &Metadata) -> u64 {
    WRITTEN_AT.get(metadata).unwrap_or(0)
}

/// Tries `$op` (an expression over `$store`) on each replica of `$order`; the first hit
/// wins, a miss or an error moves on. A miss is the answer when at least one replica
/// answered: content only in a failed replica is unavailable until it replicates or the
/// replica is back, and a pushing client that asks first uploads it again. An error is
/// returned only when no replica answered at all. The collector's keys are read in the
/// home replica alone.
macro_rules! read_fallback {
    ($self:ident, $key:expr, |$store:ident| $op:expr) => {
        read_fallback!(@run $self, $key, true, |$store| $op)
    };
    ($self:ident, $key:expr, untimed, |$store:ident| $op:expr) => {
        read_fallback!(@run $self, $key, false, |$store| $op)
    };
    (@run $self:ident, $key:expr, $timed:expr, |$store:ident| $op:expr) => {{
        // The collector's keys go to the home replica whatever its health: a success there
        // says nothing about the replica's health for other traffic.
        let judged = !super::placement::is_home_scoped($key);
        let mut failure = None;
        let mut failed = Vec::new();
        let mut found = None;
        let mut answered = false;
        for i in $self.read_order($key)? {
            let $store = &$self.replicas[i].store;
            match $self.run_judged(i, $timed, judged, $op).await {
                Ok(Some(value)) => {
                    found = Some(value);
                    break;
                }
                Ok(None) => answered = true,
                Err(e) => {
                    failed.push(i);
                    failure = Some(e);
                }
            }
        }
        match (found, failure) {
            (Some(value), _) => Ok(Some(value)),
            (None, Some(e)) if !answered => Err(e),
            (None, _) => {
                // A miss that a failed replica may not share.
                failed.into_iter().for_each(|i| $self.unreached(i));
                Ok(None)
            }
        }
    }};
}

impl<S: BlobStore> Replicated<S> {
    pub fn new(
        replicas: Rc<Vec<Replica<S>>>,
        routing: Rc<Routing>,
        timer: Rc<dyn Timer>,
        read_timeout_ms: u64,
    ) -> Self {
        Replicated {
            replicas,
            routing,
            timer,
            read_timeout_ms,
            changes: RefCell::new(Vec::new()),
            strict: false,
            unreached: RefCell::new(Vec::new()),
            calls: Cell::new(0),
            collecting: false,
        }
    }

    /// The garbage collector's view of these replicas: every read and listing tries every
    /// replica, and one that fails is recorded ([`BlobStore::take_unreached`]) rather than
    /// hidden, so that the collector never mistakes "not reached" for "not there".
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// Whether the garbage collector is on (see the field `collecting`): set from the
    /// settings for every view.
    pub fn collector_on(mut self, on: bool) -> Self {
        self.collecting = on;
        self
    }
}

impl<S: BlobStore> BlobStore for Replicated<S> {
    type Body = S::Body;
    type Native = S::Native;

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectInfo>> {
        read_fallback!(self, key, |store| store.head(key))
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> StorageResult<Option<Object<S::Body>>> {
        read_fallback!(self, key, |store| store.get(key, range))
    }

    async fn get_bytes(&self, key: &str) -> StorageResult<Option<(ObjectInfo, Vec<u8>)>> {
        read_fallback!(self, key, |store| store.get_bytes(key))
    }

    fn max_single_put(&self) -> u64 {
        self.replicas
            .iter()
            .map(|r| r.store.max_single_put())
            .min()
            .unwrap_or(crate::storage::limits::R2_MAX_SINGLE_PUT_BYTES)
    }

    async fn cached(&self, name: &str) -> StorageResult<Option<Object<S::Body>>> {
        // The Cache API belongs to the data centre, not to a bucket.
        self.replicas[0].store.cached(name).await
    }

    fn reuse_body(&self, body: S::Body) -> Option<S::Native> {
        self.replicas[0].store.reuse_body(body)
    }

    async fn read_range(&self, key: &str, range: ByteRange) -> StorageResult<Option<Vec<u8>>> {
        read_fallback!(self, key, untimed, |store| store.read_range(key, range))
    }

    /// A replicated key is written to the writer, or the next candidate if it fails (a
    /// small put is safe to repeat), stamped with the time so replication keeps the newest.
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>, mut metadata: Metadata) -> StorageResult<ObjectInfo> {
        if !is_replicated(key) {
            let i = self.write_target(key)?;
            let judged = !is_home_scoped(key);
            return self.run_judged(i, false, judged, self.replicas[i].store.put_bytes(key, bytes, metadata)).await;
        }
        WRITTEN_AT.set(&mut metadata, (self.routing.now)());
        // A blob pointer goes where its assembled bytes are, so that a replica never holds
        // a pointer to bytes it does not have: the replica holding the session's bytes.
        let replica_with_bytes = POINTER_TARGET.get(&metadata).and_then(|target| {
            keys::session_of(target)
                .and_then(|id| self.routing.session_replica(&id))
                .filter(|&i| self.routing.routable(i))
        });
        let mut failure = None;
        let order = match replica_with_bytes {
            Some(home) => vec![home],
            None => self.routing.candidates(),
        };
        for i in order {
            let put = self.replicas[i].store.put_bytes(key, bytes.clone(), metadata.clone());
            match self.run(i, false, put).await {
                Ok(info) => {
                    self.record(key, ChangeKind::Put, i);
                    return Ok(info);
                }
                Err(e @ StorageError::Limit(_)) => return Err(e),
                Err(e) => failure = Some(e),
            }
        }
        Err(failure.unwrap_or_else(|| backend(format!("no replica may take a write of {key}"))))
    }

    /// A condition holds in one place only, so a conditional put goes to the key's
    /// [condition target](Self::condition_target) and never falls back.
    async fn put_bytes_if(
        &self,
        key: &str,
        bytes: Vec<u8>,
        mut metadata: Metadata,
        condition: PutIf<'_>,
    ) -> StorageResult<Option<ObjectInfo>> {
        let i = self.condition_target(key)?;
        let replicated = is_replicated(key);
        if replicated {
            WRITTEN_AT.set(&mut metadata, (self.routing.now)());
        }
        let put = self.replicas[i].store.put_bytes_if(key, bytes, metadata, condition);
        let written = self.run_judged(i, false, !is_home_scoped(key), put).await?;
        if replicated && written.is_some() {
            self.record(key, ChangeKind::Put, i);
        }
        Ok(written)
    }

    /// Read where [`BlobStore::put_bytes_if`] decides, without falling back: another
    /// replica's copy may be older than the one the condition was checked against.
    async fn head_for_condition(&self, key: &str) -> StorageResult<Option<ObjectInfo>> {
        let i = self.condition_target(key)?;
        self.run_judged(i, true, !is_home_scoped(key), self.replicas[i].store.head(key)).await
    }

    /// A delete reaches every replica client traffic may touch at once, healthy or not (so
    /// a read cannot fall back to a stale copy), and the others through replication; the
    /// strict view records those that failed.
    async fn delete(&self, key: &str) -> StorageResult<()> {
        if !is_replicated(key) {
            let i = self.write_target(key)?;
            return self.run_judged(i, false, !is_home_scoped(key), self.replicas[i].store.delete(key)).await;
        }
        let mut deleted_in = None;
        let mut deleted_from = Vec::new();
        let mut failure = None;
        // Unhealthy replicas too: one that comes back after its back-off must not serve
        // the deleted copy to a read falling back to it. Those that fail get the delete
        // through replication.
        for i in self.routing.routable_in_order() {
            match self.run(i, true, self.replicas[i].store.delete(key)).await {
                Ok(()) => {
                    deleted_in.get_or_insert(i);
                    deleted_from.push(i);
                }
                Err(e) => {
                    self.unreached(i);
                    failure = Some(e);
                }
            }
        }
        match (deleted_in, failure) {
            (Some(source), _) => {
                self.record(key, ChangeKind::Delete, source);
                if self.strict && is_content(key) {
                    // The collector's: copies of content consult its state, not these records.
                    return Ok(());
                }
                // Best effort: without the record a late, older copy could come back; the
                // delete itself has happened and is replicated either way.
                let now = (self.routing.now)();
                let records = deleted_from.iter().map(|&i| super::tombstone::record(self, i, key, now));
                let _ = futures::future::join_all(records).await;
                Ok(())
            }
            (None, failure) => Err(failure.unwrap_or_else(|| backend(format!("no replica may delete {key}")))),
        }
    }

    /// The collector's keys in one call to the home replica; others one by one.
    async fn delete_many(&self, keys: &[String]) -> StorageResult<()> {
        if let Some(home) = keys.first().and_then(|k| self.home_scoped(k)) {
            if keys.iter().all(|k| is_home_scoped(k)) {
                let i = home?;
                return self.run_judged(i, false, false, self.replicas[i].store.delete_many(keys)).await;
            }
        }
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }

    /// A delete makes a call and records its deletion (two calls) in each replica.
    fn backend_calls(&self) -> Option<(u64, u64)> {
        Some((self.calls.get(), 3 * self.replicas.len() as u64))
    }

    fn take_unreached(&self) -> Vec<String> {
        std::mem::take(&mut *self.unreached.borrow_mut())
    }

    async fn put_verified(
        &self,
        key: &str,
        body: S::Native,
        length: u64,
        digest: &Digest,
    ) -> StorageResult<NativePut<()>> {
        let i = self.write_target(key)?;
        let outcome = self.run(i, false, self.replicas[i].store.put_verified(key, body, length, digest)).await?;
        if outcome == NativePut::Stored(()) {
            self.record(key, ChangeKind::Put, i);
        }
        Ok(outcome)
    }

    async fn put_native(
        &self,
        key: &str,
        body: S::Native,
        length: u64,
        algorithm: Algorithm,
    ) -> StorageResult<NativePut<Digest>> {
        let i = self.write_target(key)?;
        let outcome = self.run(i, false, self.replicas[i].store.put_native(key, body, length, algorithm)).await?;
        if matches!(outcome, NativePut::Stored(_)) {
            self.record(key, ChangeKind::Put, i);
        }
        Ok(outcome)
    }

    /// Hashing reads the whole object: it may take far longer than the read timeout, which
    /// is for finding an object, so it is not timed.
    async fn digest_object(&self, key: &str, algorithm: Algorithm) -> StorageResult<Option<Digest>> {
        read_fallback!(self, key, untimed, |store| store.digest_object(key, algorithm))
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> StorageResult<ListPage> {
        self.merged_list(prefix, start_after, limit).await
    }

    type Cutter = S::Cutter;

    fn cut_parts(&self, body: S::Native, algorithm: Algorithm, limit: Option<u64>) -> Result<S::Cutter, S::Native> {
        self.replicas[0].store.cut_parts(body, algorithm, limit)
    }

    /// Parts go where the session's multipart upload is, as [`BlobStore::upload_part`]'s do.
    async fn upload_cut_part(
        &self,
        cutter: &mut S::Cutter,
        key: &str,
        upload_id: &str,
        number: u16,
        part_size: u64,
    ) -> StorageResult<CutPart> {
        let i = self.write_target(key)?;
        self.run(i, false, self.replicas[i].store.upload_cut_part(cutter, key, upload_id, number, part_size)).await
    }

    async fn create_multipart(&self, key: &str) -> StorageResult<String> {
        let i = self.write_target(key)?;
        self.run(i, false, self.replicas[i].store.create_multipart(key)).await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u16,
        bytes: Vec<u8>,
    ) -> StorageResult<PartReceipt> {
        let i = self.write_target(key)?;
        self.run(i, false, self.replicas[i].store.upload_part(key, upload_id, part_number, bytes)).await
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[PartReceipt]) -> StorageResult<ObjectInfo> {
        let i = self.write_target(key)?;
        self.run(i, false, self.replicas[i].store.complete_multipart(key, upload_id, parts)).await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StorageResult<()> {
        let i = self.write_target(key)?;
        self.run(i, false, self.replicas[i].store.abort_multipart(key, upload_id)).await
    }
}
