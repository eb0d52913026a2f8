//! Test harness for replication: three limit-enforcing in-memory buckets behind one KV
//! namespace and a queue, driven through the whole HTTP API with a location per request.
#![allow(dead_code, unused_imports)]

pub mod gate;

pub use edge_registry::api::{self, Body};
pub use edge_registry::auth::Auth;
pub use edge_registry::oci::digest::to_hex;
pub use edge_registry::registry::{ByteStream, Config, IdSource, Registry, RequestBody};
pub use edge_registry::replication::repair::repair;
pub use edge_registry::replication::{
    apply, parse_replicas, publish, replica_pinned_ids, Admin, Applied, Cluster, FaultPlan, Health, Location, Message,
    Replica, Replicated, ReplicationQueue, RoutingSwitch, SwitchCache, Timer,
};
pub use edge_registry::storage::faulty::{FaultyBlobStore, Op};
pub use edge_registry::storage::memory::MemoryBlobStore;
pub use edge_registry::storage::memory_kv::MemoryMetaStore;
pub use edge_registry::storage::{keys, BlobStore};
pub use futures::executor::block_on;
pub use futures::future::LocalBoxFuture;
pub use futures::StreamExt;
pub use sha2::{Digest as _, Sha256};
pub use std::cell::{Cell, RefCell};
pub use std::rc::Rc;

pub const MIB: usize = 1024 * 1024;
pub const SPECS: &str = r#"[
    {"name": "a", "binding": "A", "region": "weur", "serves": ["EU"], "home": true},
    {"name": "b", "binding": "B", "region": "enam", "serves": ["NA"]},
    {"name": "c", "binding": "C", "region": "apac", "serves": ["AS"]}
]"#;
/// Each replica's bucket: in memory, and failing chosen operations on demand.
pub type Bucket = FaultyBlobStore<MemoryBlobStore>;

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Memory operations never hang, so the read timeout never fires.
pub struct NeverFires;
impl Timer for NeverFires {
    fn sleep(&self, _ms: u64) -> LocalBoxFuture<'static, ()> {
        Box::pin(futures::future::pending())
    }
}

#[derive(Default)]
pub struct VecQueue(pub RefCell<Vec<Message>>);
impl ReplicationQueue for VecQueue {
    async fn send(&self, messages: Vec<Message>) -> Result<(), String> {
        self.0.borrow_mut().extend(messages);
        Ok(())
    }
}

pub struct Counter(pub Cell<u64>);
impl IdSource for Counter {
    fn new_id(&self) -> String {
        self.0.set(self.0.get() + 1);
        format!("{:032x}", self.0.get())
    }
}

/// Three replicas, one KV namespace, a queue and a clock, as one deployment.
pub struct World {
    pub cluster: Cluster<Bucket>,
    pub meta: Rc<MemoryMetaStore>,
    pub queue: VecQueue,
    pub clock: Rc<Cell<u64>>,
    pub switch: RefCell<RoutingSwitch>,
    pub faults: RefCell<FaultPlan>,
    pub ids: Rc<Counter>,
    /// Whether the admin port serves the fault hooks (`REPLICATION_TEST_HOOKS=on`).
    pub hooks: Cell<bool>,
    /// The registry's immutable-tag rules (`IMMUTABLE_TAGS`); none by default.
    pub immutable_tags: RefCell<edge_registry::registry::ImmutableTags>,
    /// Whether the garbage collector is on (`GC=on`): every view then knows it.
    pub collects: Cell<bool>,
}

pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

pub struct SharedIds(pub Rc<Counter>);
impl IdSource for SharedIds {
    fn new_id(&self) -> String {
        self.0.new_id()
    }
}

impl World {
    pub fn new() -> Self {
        let specs = Rc::new(parse_replicas(SPECS).unwrap());
        let replicas = specs
            .iter()
            .map(|s| Replica { name: s.name.clone(), store: FaultyBlobStore::new(MemoryBlobStore::new()) })
            .collect();
        let clock = Rc::new(Cell::new(1_700_000_000_000u64));
        let now = {
            let clock = clock.clone();
            Rc::new(move || clock.get())
        };
        World {
            cluster: Cluster {
                health: Rc::new(Health::new(specs.len(), 10_000)),
                switch_cache: Rc::new(SwitchCache::default()),
                specs,
                replicas: Rc::new(replicas),
                timer: Rc::new(NeverFires),
                now,
                read_timeout_ms: 1000,
            },
            meta: Rc::new(MemoryMetaStore::new()),
            queue: VecQueue::default(),
            clock,
            switch: RefCell::new(RoutingSwitch::default()),
            faults: RefCell::new(FaultPlan::default()),
            ids: Rc::new(Counter(Cell::new(0))),
            hooks: Cell::new(false),
            immutable_tags: RefCell::default(),
            collects: Cell::new(false),
        }
    }

    /// The routing switch as the home bucket holds it.
    pub fn stored_switch(&self) -> RoutingSwitch {
        block_on(self.cluster.control(&*self.meta, &FaultPlan::default()).switch()).unwrap().value
    }

    pub fn store(&self, name: &str) -> &Bucket {
        &self.cluster.replicas.iter().find(|r| r.name == name).unwrap().store
    }

    pub fn holds(&self, name: &str, key: &str) -> bool {
        block_on(self.store(name).head(key)).unwrap().is_some()
    }

    pub fn client(&self, from: &str, pin: Option<&str>) -> Replicated<Bucket> {
        self.cluster
            .client(&Location::from_code(from), &self.switch.borrow(), &self.faults.borrow(), pin)
            .collector_on(self.collects.get())
    }

    /// The view replication, repair and status run over.
    pub fn maintenance(&self) -> Replicated<Bucket> {
        self.cluster.maintenance(&self.switch.borrow(), &self.faults.borrow()).collector_on(self.collects.get())
    }

    /// The registry one request from `from` sees: its routing, upload ids naming the
    /// writer replica, the shared KV, and the world's clock at this moment.
    pub fn registry(&self, from: &str, pin: Option<&str>) -> Registry<Replicated<Bucket>, Rc<MemoryMetaStore>> {
        let store = self.client(from, pin);
        let ids = replica_pinned_ids(&store, Box::new(SharedIds(self.ids.clone())));
        let immutable_tags = self.immutable_tags.borrow().clone();
        let config =
            Config { part_size: 5 * MIB as u64, immutable_tags, yield_to_retention: false, ..Config::default() };
        Registry::new(store, self.meta.clone(), Box::new(Fixed(self.clock.get())), Box::new(ids), config)
    }

    /// One request from `from` (a continent code), then its changes published.
    pub fn send_pinned(
        &self,
        from: &str,
        pin: Option<&str>,
        method: &str,
        uri: &str,
        ctype: &str,
        body: &[u8],
    ) -> Answer {
        let registry = self.registry(from, pin);
        let length = body.len() as u64;
        let pieces: Vec<Result<Vec<u8>, String>> = body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
        let stream: ByteStream = futures::stream::iter(pieces).boxed_local();
        let mut request = http::Request::builder().method(method).uri(uri);
        if !ctype.is_empty() {
            request = request.header("content-type", ctype);
        }
        let request = request.body(RequestBody::native(stream, Some(length), |s| s)).unwrap();
        let response = block_on(api::handle(&registry, None, request));
        let changes = registry.blob_store().take_changes();
        block_on(publish(registry.blob_store(), &self.queue, changes)).unwrap();
        let (parts, body) = response.into_parts();
        let body = match body {
            Body::Empty => Vec::new(),
            Body::Bytes(b) | Body::Stream(b) => b,
        };
        Answer { status: parts.status.as_u16(), headers: parts.headers, body }
    }

    pub fn send(&self, from: &str, method: &str, uri: &str, body: &[u8]) -> Answer {
        self.send_pinned(from, None, method, uri, "", body)
    }

    /// Delivers every queued message once; failed ones stay queued. Returns the outcomes.
    pub fn deliver(&self) -> Vec<Result<Applied, String>> {
        let messages = std::mem::take(&mut *self.queue.0.borrow_mut());
        let store = self.maintenance();
        let mut outcomes = Vec::new();
        for message in messages {
            let outcome = block_on(apply(&store, &message));
            if outcome.is_err() {
                self.queue.0.borrow_mut().push(message);
            }
            outcomes.push(outcome);
        }
        outcomes
    }

    pub fn repair(&self) -> edge_registry::replication::repair::RepairReport {
        let store = self.maintenance();
        block_on(repair(&store, &self.queue, 0)).unwrap()
    }

    pub fn pending_markers(&self) -> usize {
        self.cluster
            .replicas
            .iter()
            .map(|r| r.store.keys().iter().filter(|k| k.starts_with(keys::PENDING_PREFIX)).count())
            .sum()
    }

    pub fn push_blob(&self, from: &str, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let a = self.send(from, "POST", &format!("/v2/{repo}/blobs/uploads/?digest={digest}"), data);
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
        digest
    }

    /// Pushes a config, a layer and a manifest tagged `tag`; returns (manifest, layer) digests.
    pub fn push_image(&self, from: &str, repo: &str, tag: &str, layer: &[u8]) -> (String, String) {
        let config = br#"{"architecture":"amd64"}"#;
        let c = self.push_blob(from, repo, config);
        let l = self.push_blob(from, repo, layer);
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{c}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{l}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        );
        let a =
            self.send_pinned(from, None, "PUT", &format!("/v2/{repo}/manifests/{tag}"), MANIFEST, manifest.as_bytes());
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
        (a.headers["docker-content-digest"].to_str().unwrap().to_owned(), l)
    }

    pub fn ops(&self, name: &str) -> (u64, u64) {
        let i = self.cluster.specs.iter().position(|s| s.name == name).unwrap();
        let report = self.cluster.health.report(i, self.clock.get());
        (report.client_ops, report.replication_ops)
    }
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", to_hex(&Sha256::digest(data)))
}

pub fn blob_key(digest: &str) -> String {
    keys::blob(&digest.parse().unwrap())
}

pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

impl World {
    pub fn send_range(&self, from: &str, location: &str, range: &str, chunk: &[u8]) -> u16 {
        let registry = self.registry(from, None);
        let pieces: Vec<Result<Vec<u8>, String>> = vec![Ok(chunk.to_vec())];
        let stream: ByteStream = futures::stream::iter(pieces).boxed_local();
        let request = http::Request::builder()
            .method("PATCH")
            .uri(location)
            .header("content-range", range)
            .body(RequestBody::stream(stream, Some(chunk.len() as u64)))
            .unwrap();
        let status = block_on(api::handle(&registry, None, request)).status().as_u16();
        assert!(registry.blob_store().take_changes().is_empty(), "session writes are not replicated");
        status
    }
}

impl World {
    /// An admin request (with `authorization`, under access control `auth`) through the
    /// replication admin port.
    pub fn admin(
        &self,
        auth: Option<&Auth>,
        authorization: Option<&str>,
        method: &str,
        path: &str,
        body: &str,
    ) -> Answer {
        let registry = self.registry("NA", None);
        let admin = Admin {
            cluster: &self.cluster,
            meta: &*self.meta,
            queue: &self.queue,
            hooks: self.hooks.get(),
            resend_after_ms: 0,
        };
        let mut request = http::Request::builder().method(method).uri(path);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let stream: ByteStream = futures::stream::iter(vec![Ok(body.as_bytes().to_vec())]).boxed_local();
        let request = request.body(RequestBody::stream(stream, Some(body.len() as u64))).unwrap();
        let response = block_on(api::handle_with(&registry, auth, Some(&admin), request));
        let (parts, body) = response.into_parts();
        let body = match body {
            Body::Empty => Vec::new(),
            Body::Bytes(b) | Body::Stream(b) => b,
        };
        Answer { status: parts.status.as_u16(), headers: parts.headers, body }
    }
}

pub struct Fixed(pub u64);
impl edge_registry::registry::Clock for Fixed {
    fn now_millis(&self) -> u64 {
        self.0
    }
}

pub fn code(answer: &Answer) -> String {
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    body["errors"][0]["code"].as_str().unwrap().to_owned()
}
