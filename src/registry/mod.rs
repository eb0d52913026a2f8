//! The domain: uploads, blobs, manifests, tags, referrers, catalog and deletes, written
//! against the storage ports. It may call `oci`, `ids` and `storage`, never `api` or `edge`, and
//! knows nothing of HTTP beyond the spec's error codes (mapped in `api`).

mod blobs;
mod body;
mod collected;
mod cut;
mod deletes;
mod error;
mod expiry;
mod finish;
mod immutable;
mod ingest;
mod listing;
mod manifests;
mod referrers;
mod repository_delete;
mod session;
mod uploads;
mod upstream;
mod upstream_fill;

pub use blobs::{BlobRead, BlobStat};
pub use cut::CUT_CHECKPOINT_EVERY_MS;
pub use error::RegistryError;
pub use expiry::ExpiryReport;
pub use immutable::{ImmutableRefusal, ImmutableRule, ImmutableTags, Refused};
pub use listing::Page;
pub use manifests::{ManifestContent, PushedManifest};
pub use repository_delete::{
    DeletionState, DeletionsReport, RepositoryDeletion, StepBudget, MIN_REPOSITORY_DELETE_CALLS_PER_STEP,
    PUSH_QUIET_MS, REPOSITORY_DELETE_CALLS_PER_STEP, STEP_DEADLINE_MS,
};
pub use uploads::UploadProgress;
pub use upstream::{BlobFill, CachedBlob};
pub use upstream_fill::{FillTurn, FillWait, FILL_LEASE_MS};

use crate::storage::{BlobStore, MetaStore};

/// The id port and upload ids live below the registry (replication uses them too); they
/// are re-exported here, where the registry is assembled.
pub use crate::ids::{IdSource, RandomIds, UploadId};
pub use crate::storage::ByteStream;
pub use body::RequestBody;

/// Milliseconds since the Unix epoch. Injected: `SystemTime::now()` panics on wasm32.
pub trait Clock {
    fn now_millis(&self) -> u64;
}

/// Tunables, with defaults that respect the platform limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// Size of every multipart part but the last (R2: equal parts of at least 5 MiB).
    pub part_size: u64,
    /// Largest manifest accepted; the spec asks registries to take at least 4 MiB.
    pub max_manifest_bytes: usize,
    /// Largest request body the platform lets through (Cloudflare: 100 MB on Free and Pro,
    /// 200 MB on Business, 500 MB on Enterprise); `None` for no limit. Advertised as
    /// `OCI-Chunk-Max-Length` so that clients split bigger layers into chunks.
    pub max_request_bytes: Option<u64>,
    /// Most references (blobs and child manifests) one manifest may have. Each costs two
    /// storage calls when the manifest is pushed (its link, and its state with the garbage
    /// collector), and one request may make at most 1,000 calls to Cloudflare services, so
    /// the default, 400, leaves room for the rest.
    pub max_manifest_references: usize,
    /// Tags that never move and are never deleted (`IMMUTABLE_TAGS`); none by default.
    pub immutable_tags: ImmutableTags,
    /// Tags and manifest links are written by a compare-and-swap that yields to retention
    /// deleting them (`storage::retiring`): true on one bucket. With replicas, where
    /// retention does not run and a conditional put needs the home replica, false: they
    /// are written plainly.
    pub yield_to_retention: bool,
    /// Whether repositories may be deleted (`DELETE /admin/repositories/<name>`), and so
    /// whether pushes read a repository's deletion record (one `HEAD` as they start, two
    /// for a manifest); off with replicas, where repository delete is not offered.
    pub repository_deletes: bool,
    /// The most storage calls one step of a repository deletion makes (a request's, or the
    /// cron trigger's over all pending deletions); each deletes up to 1,000 keys.
    pub repository_delete_calls_per_step: u64,
}

/// The default [`Config::max_manifest_references`].
pub const DEFAULT_MAX_MANIFEST_REFERENCES: usize = 400;

impl Default for Config {
    fn default() -> Self {
        Config {
            part_size: 8 * 1024 * 1024,
            max_manifest_bytes: 4 * 1024 * 1024,
            max_request_bytes: None,
            max_manifest_references: DEFAULT_MAX_MANIFEST_REFERENCES,
            immutable_tags: ImmutableTags::default(),
            yield_to_retention: true,
            repository_deletes: true,
            repository_delete_calls_per_step: REPOSITORY_DELETE_CALLS_PER_STEP,
        }
    }
}

/// The registry over a blob store (R2) and a metadata index (KV).
pub struct Registry<B, M> {
    pub(crate) blobs: B,
    pub(crate) meta: M,
    pub(crate) clock: Box<dyn Clock>,
    pub(crate) ids: Box<dyn IdSource>,
    pub(crate) config: Config,
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    pub fn new(blobs: B, meta: M, clock: Box<dyn Clock>, ids: Box<dyn IdSource>, config: Config) -> Self {
        assert!(config.part_size >= crate::storage::limits::R2_MIN_PART_BYTES, "part size below R2's 5 MiB minimum");
        Registry { blobs, meta, clock, ids, config }
    }

    /// The injected clock's time.
    pub fn now_millis(&self) -> u64 {
        self.clock.now_millis()
    }

    /// A fresh identifier (32 lowercase hex digits) from the injected source.
    pub fn new_id(&self) -> String {
        self.ids.new_id()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn blob_store(&self) -> &B {
        &self.blobs
    }

    pub fn meta_store(&self) -> &M {
        &self.meta
    }
}
