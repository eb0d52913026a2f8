//! A pull-through cache over the in-memory stores and the in-memory upstream
//! (`mirror::fake`): requests go through the whole API with the cache configured.

use super::{answer, bytes, image_manifest, request, Answer, ManualClock, MIB};
use edge_registry::api::{self, admin::NoReplication, Services};
use edge_registry::auth::{Auth, BlobTokenStore};
use edge_registry::lifecycle::gc::job::Job;
use edge_registry::lifecycle::gc::{Collector, GcConfig};
use edge_registry::lifecycle::retention::{Retainer, RetentionRules};
use edge_registry::mirror::auth::TokenCache;
use edge_registry::mirror::config::{DEFAULT_TAG_TTL_MS, DEFAULT_TIMEOUT_MS};
use edge_registry::mirror::fake::{FakeUpstream, FAKE_ORIGIN};
use edge_registry::mirror::{Credentials, Mirror, MirrorConfig, Upstream};
use edge_registry::oci::{RepositoryName, Tag};
use edge_registry::registry::{ByteStream, Config, RequestBody};
use edge_registry::storage::faulty::FaultyBlobStore;
use edge_registry::storage::memory::MemoryBlobStore;
use futures::executor::block_on;
use futures::future::LocalBoxFuture;
use std::rc::Rc;

pub type CacheRegistry = super::AnyRegistry<FaultyBlobStore<MemoryBlobStore>>;

pub const TTL_MS: u64 = DEFAULT_TAG_TTL_MS;

/// The cache's registry, its clock, the upstream behind prefix `hub` (Docker Hub's naming,
/// so `hub/app` is `library/app` upstream) and the mirror over it.
pub struct Cache {
    pub reg: CacheRegistry,
    pub clock: ManualClock,
    pub upstream: FakeUpstream,
    pub mirror: Mirror<ByteStream>,
    /// Access control; `None` runs the cache open.
    pub auth: Option<Auth>,
}

impl Cache {
    pub fn new() -> Self {
        Self::with_credentials(None)
    }

    pub fn with_credentials(credentials: Option<Credentials>) -> Self {
        let (reg, clock) = super::registry_over(
            FaultyBlobStore::new(MemoryBlobStore::new()),
            Config { part_size: 5 * MIB as u64, ..Config::default() },
        );
        let upstream = FakeUpstream::default();
        let config = MirrorConfig {
            upstreams: vec![Upstream {
                prefix: "hub".into(),
                url: FAKE_ORIGIN.into(),
                official_images: true,
                credentials,
                token_hosts: vec!["auth.upstream.test".into()],
            }],
            tag_ttl_ms: TTL_MS,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            hosts: vec![("mirror.test".into(), "hub".into())],
        };
        let mirror = Mirror::new(config, Box::new(upstream.clone()), Rc::new(TokenCache::default()));
        Cache { reg, clock, upstream, mirror, auth: None }
    }

    /// One request through the whole API, the cache configured.
    pub fn send(&self, method: &str, uri: &str, body: &[u8]) -> Answer {
        block_on(self.start(method, uri, body))
    }

    pub fn get(&self, uri: &str) -> Answer {
        self.send("GET", uri, b"")
    }

    /// A request not yet run, to be polled by hand.
    pub fn start<'a>(&'a self, method: &str, uri: &str, body: &[u8]) -> LocalBoxFuture<'a, Answer> {
        self.start_with(method, uri, &[], body)
    }

    /// A request with these headers, run to its answer.
    pub fn send_with(&self, method: &str, uri: &str, headers: &[(&str, &str)]) -> Answer {
        block_on(self.start_with(method, uri, headers, b""))
    }

    fn start_with<'a>(
        &'a self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> LocalBoxFuture<'a, Answer> {
        let length = body.len() as u64;
        let stream: ByteStream = Box::pin(futures::stream::once(futures::future::ready(Ok(body.to_vec()))));
        let mut request = request(method, uri, headers, RequestBody::native(stream, Some(length), |s| s));
        if method == "PUT" {
            request.headers_mut().insert("content-type", super::OCI_MANIFEST.parse().unwrap());
        }
        Box::pin(async move {
            let tokens = BlobTokenStore::new(self.reg.blob_store());
            let services = Services {
                registry: &self.reg,
                auth: self.auth.as_ref(),
                tokens: &tokens,
                replication: None::<&NoReplication>,
                gc: None,
                retention: None,
                usage: None,
                mirror: Some(&self.mirror),
            };
            answer(api::serve(services, request).await)
        })
    }

    /// The upstream requests since the last call, as `METHOD url`, credentials dropped.
    pub fn upstream_requests(&self) -> Vec<String> {
        let log = self.upstream.log();
        self.upstream.clear_log();
        log.into_iter().map(|line| line.split(" [").next().unwrap_or_default().to_owned()).collect()
    }

    /// Runs a whole garbage collection (no grace period) over the cache's store, with the
    /// retention `rules` if given (applied); returns the finished job.
    pub fn collect(&self, rules: Option<&RetentionRules>) -> Job {
        let never_immutable = |_: &RepositoryName, _: &Tag| false;
        let config = GcConfig { grace_ms: 0, calls_per_step: 900, interval_ms: 0 };
        let mut gc = Collector::new(self.reg.blob_store(), self.reg.meta_store(), config);
        if let Some(rules) = rules {
            gc = gc.with_retention(Retainer { rules, apply: true, is_immutable: &never_immutable });
        }
        block_on(async {
            let now = self.reg.now_millis();
            gc.start(now, false).await.unwrap();
            loop {
                let stepped = gc.step(now).await.unwrap();
                if stepped.job.is_done() {
                    return stepped.job;
                }
            }
        })
    }

    /// Whether the store holds `key`.
    pub fn stored(&self, key: &str) -> bool {
        self.reg.blob_store().inner().keys().iter().any(|k| k == key)
    }
}

/// An image upstream: its manifest's digest and bytes, and the config and layer digests.
pub struct UpstreamImage {
    pub digest: String,
    pub manifest: Vec<u8>,
    pub blobs: Vec<(String, Vec<u8>)>,
}

/// A config and three layers under `name`, tagged `tag`.
pub fn upstream_image(upstream: &FakeUpstream, name: &str, tag: &str, seed: u64) -> UpstreamImage {
    let config = format!(r#"{{"seed":{seed}}}"#).into_bytes();
    let layers: Vec<Vec<u8>> = (0..3).map(|i| bytes(2000 + i * 100, seed * 10 + i as u64)).collect();
    let mut blobs = vec![(upstream.put_blob(&config).to_string(), config.clone())];
    for layer in &layers {
        blobs.push((upstream.put_blob(layer).to_string(), layer.clone()));
    }
    let described: Vec<(&str, usize)> = blobs[1..].iter().map(|(d, b)| (d.as_str(), b.len())).collect();
    let manifest = image_manifest((&blobs[0].0, config.len()), &described, "");
    let digest = upstream.put_manifest(name, Some(tag), super::OCI_MANIFEST, &manifest).to_string();
    UpstreamImage { digest, manifest, blobs }
}
