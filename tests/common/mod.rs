//! Test harness: the whole HTTP API over the in-memory stores, driven natively.
#![allow(dead_code)]

pub mod cache;
pub mod inflight;

use edge_registry::api::{self, Body};
use edge_registry::auth::Auth;
use edge_registry::oci::digest::to_hex;
use edge_registry::registry::{ByteStream, Clock, Config, IdSource, Registry, RequestBody};
use edge_registry::storage::memory::MemoryBlobStore;
use edge_registry::storage::memory_kv::MemoryMetaStore;
use edge_registry::storage::BlobStore;
use futures::executor::block_on;
use futures::StreamExt;
use sha2::{Digest as _, Sha256, Sha512};
use std::cell::Cell;
use std::rc::Rc;

pub const MIB: usize = 1024 * 1024;

pub type TestRegistry = Registry<MemoryBlobStore, MemoryMetaStore>;

/// A registry over any in-memory-bodied blob store (the plain one, or one that fails on demand).
pub type AnyRegistry<B> = Registry<B, MemoryMetaStore>;

/// The blob stores the harness drives: bodies are in-memory streams and byte vectors.
pub trait TestStore: BlobStore<Native = ByteStream, Body = Vec<u8>> {}
impl<B: BlobStore<Native = ByteStream, Body = Vec<u8>>> TestStore for B {}

/// A clock the test moves by hand.
#[derive(Clone)]
pub struct ManualClock(pub Rc<Cell<u64>>);
impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.0.get()
    }
}
impl ManualClock {
    pub fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }
}

/// Sequential 32-hex-digit ids, so tests can predict them.
#[derive(Default)]
struct SequentialIds(Cell<u64>);
impl IdSource for SequentialIds {
    fn new_id(&self) -> String {
        self.0.set(self.0.get() + 1);
        format!("{:032x}", self.0.get())
    }
}

pub fn registry() -> TestRegistry {
    registry_with(Config { part_size: 5 * MIB as u64, ..Config::default() })
}

pub fn registry_with(config: Config) -> TestRegistry {
    registry_and_clock(config).0
}

pub fn registry_and_clock(config: Config) -> (TestRegistry, ManualClock) {
    registry_over(MemoryBlobStore::new(), config)
}

/// A registry over `store`, with the harness's clock and ids.
pub fn registry_over<B: TestStore>(store: B, config: Config) -> (AnyRegistry<B>, ManualClock) {
    let clock = ManualClock(Rc::new(Cell::new(1_700_000_000_000)));
    let registry = Registry::new(
        store,
        MemoryMetaStore::new(),
        Box::new(clock.clone()),
        Box::new(SequentialIds::default()),
        config,
    );
    (registry, clock)
}

/// A response with its body collected.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The spec error code of a JSON error body.
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or("").to_owned()
    }

    /// `413` for a body over the request limit: `UNSUPPORTED` first (what docker acts on),
    /// with advice on how to push instead, then `SIZE_INVALID`; the limit in
    /// `OCI-Chunk-Max-Length`.
    #[track_caller]
    pub fn assert_over_limit(&self, limit: usize) {
        assert_eq!(self.status, 413, "status; body {}", String::from_utf8_lossy(&self.body));
        let errors = self.json()["errors"].as_array().cloned().unwrap_or_default();
        let codes: Vec<&str> = errors.iter().map(|e| e["code"].as_str().unwrap_or("")).collect();
        assert_eq!(codes, ["UNSUPPORTED", "SIZE_INVALID"]);
        let advice = errors[0]["message"].as_str().unwrap_or("");
        assert!(advice.contains("chunks") && advice.contains("edge-push"), "says what to do instead: {advice}");
        assert_eq!(self.header("oci-chunk-max-length"), Some(limit.to_string().as_str()));
    }

    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status; body {}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.error_code(), code, "error code");
        let message = self.json()["errors"][0]["message"].as_str().unwrap_or("").to_owned();
        assert!(!message.is_empty(), "error message is empty");
    }
}

/// How a request body reaches the registry.
pub enum Feed {
    /// In pieces of this size.
    Pieces(Vec<u8>, usize),
    /// These bytes, then the stream breaks.
    Broken(Vec<u8>),
}

pub fn stream(feed: Feed) -> ByteStream {
    match feed {
        Feed::Pieces(bytes, size) => {
            let pieces: Vec<Result<Vec<u8>, String>> = bytes.chunks(size.max(1)).map(|c| Ok(c.to_vec())).collect();
            futures::stream::iter(pieces).boxed_local()
        }
        Feed::Broken(bytes) => futures::stream::iter(vec![Ok(bytes), Err("connection reset".to_owned())]).boxed_local(),
    }
}

/// Sends a body that can only be read through wasm (as without `Content-Length`).
pub fn send_stream<B: TestStore>(
    reg: &AnyRegistry<B>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: ByteStream,
) -> Answer {
    send_body(reg, method, uri, headers, RequestBody::stream(body, None))
}

/// Sends `body` as the worker does for a request with `Content-Length`: the store may
/// take it natively.
pub fn send<B: TestStore>(
    reg: &AnyRegistry<B>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    send_body(reg, method, uri, headers, native_body(body))
}

/// `body` as the worker hands over a request with `Content-Length`: a native stream of
/// 64 KiB pieces with its length.
fn native_body(body: &[u8]) -> RequestBody<ByteStream> {
    let length = body.len() as u64;
    RequestBody::native(stream(Feed::Pieces(body.to_vec(), 64 * 1024)), Some(length), |s| s)
}

/// Sends `body` as the worker hands over a request without `Content-Length` (docker's
/// PATCH, chunked transfer encoding): a native stream of `piece`-byte pieces, no length.
pub fn send_chunked<B: TestStore>(reg: &AnyRegistry<B>, method: &str, uri: &str, feed: Feed) -> Answer {
    send_body(reg, method, uri, &[], RequestBody::native(stream(feed), None, |s| s))
}

/// Sends a native body that breaks after `bytes`, though it declared `declared` bytes.
pub fn send_broken_native<B: TestStore>(
    reg: &AnyRegistry<B>,
    method: &str,
    uri: &str,
    bytes: Vec<u8>,
    declared: u64,
) -> Answer {
    send_body(reg, method, uri, &[], RequestBody::native(stream(Feed::Broken(bytes)), Some(declared), |s| s))
}

pub fn send_body<B: TestStore>(
    reg: &AnyRegistry<B>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: RequestBody<ByteStream>,
) -> Answer {
    send_with_auth(reg, None, method, uri, headers, body)
}

/// Sends a request to a registry with access control `auth`.
pub fn send_as(
    reg: &TestRegistry,
    auth: &Auth,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    send_with_auth(reg, Some(auth), method, uri, headers, native_body(body))
}

pub fn send_with_auth<B: TestStore>(
    reg: &AnyRegistry<B>,
    auth: Option<&Auth>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: RequestBody<ByteStream>,
) -> Answer {
    answer(block_on(api::handle(reg, auth, request(method, uri, headers, body))))
}

/// A request as the edge hands it to the API.
pub fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: RequestBody<ByteStream>,
) -> http::Request<RequestBody<ByteStream>> {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(body).unwrap()
}

/// A response with its body collected, checked for the API version header.
pub fn answer(response: http::Response<Body<Vec<u8>>>) -> Answer {
    let (parts, body) = response.into_parts();
    assert_eq!(
        parts.headers.get("docker-distribution-api-version").map(|v| v.to_str().unwrap()),
        Some("registry/2.0"),
        "every response carries the API version header"
    );
    let body = match body {
        Body::Empty => Vec::new(),
        Body::Bytes(b) | Body::Stream(b) => b,
    };
    Answer { status: parts.status.as_u16(), headers: parts.headers, body }
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", to_hex(&Sha256::digest(bytes)))
}

pub fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", to_hex(&Sha512::digest(bytes)))
}

/// Deterministic pseudo-random bytes.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Pushes a blob in one POST and returns its digest.
#[track_caller]
pub fn push_blob<B: TestStore>(reg: &AnyRegistry<B>, repo: &str, data: &[u8]) -> String {
    let digest = sha256(data);
    let a = send(reg, "POST", &format!("/v2/{repo}/blobs/uploads/?digest={digest}"), &[], data);
    assert_eq!(a.status, 201, "push blob: {:?}", String::from_utf8_lossy(&a.body));
    digest
}

/// Starts an upload session and returns its location.
#[track_caller]
pub fn start_upload<B: TestStore>(reg: &AnyRegistry<B>, repo: &str) -> String {
    let a = send(reg, "POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    assert_eq!(a.status, 202);
    a.header("location").unwrap().to_owned()
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An OCI image manifest over a config and layers (digest, size).
pub fn image_manifest(config: (&str, usize), layers: &[(&str, usize)], extra: &str) -> Vec<u8> {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, s)| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{s}}}"#))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]{extra}}}"#,
        config.0,
        config.1,
        layers.join(",")
    )
    .into_bytes()
}

/// Pushes config + one layer + a manifest under `reference`; returns the manifest digest.
#[track_caller]
pub fn push_image<B: TestStore>(reg: &AnyRegistry<B>, repo: &str, reference: &str, seed: u64) -> String {
    let config = format!(r#"{{"seed":{seed}}}"#).into_bytes();
    let layer = bytes(1000 + seed as usize, seed);
    let c = push_blob(reg, repo, &config);
    let l = push_blob(reg, repo, &layer);
    let manifest = image_manifest((&c, config.len()), &[(&l, layer.len())], "");
    let a =
        send(reg, "PUT", &format!("/v2/{repo}/manifests/{reference}"), &[("content-type", OCI_MANIFEST)], &manifest);
    assert_eq!(a.status, 201, "push manifest: {:?}", String::from_utf8_lossy(&a.body));
    a.header("docker-content-digest").unwrap().to_owned()
}

/// The blob `data` is published in repository `a` and serves exactly those bytes.
#[track_caller]
pub fn assert_blob(reg: &TestRegistry, data: &[u8]) {
    let got = send(reg, "GET", &format!("/v2/a/blobs/{}", sha256(data)), &[], b"");
    assert_eq!(got.status, 200);
    assert!(got.body == data, "the published blob is not the bytes its digest names");
}

/// No session object, tail, multipart upload or assembled object that no blob pointer
/// names is left behind.
#[track_caller]
pub fn assert_nothing_left(reg: &TestRegistry) {
    let store = reg.blob_store();
    let named: Vec<String> = store
        .keys()
        .iter()
        .filter(|k| k.starts_with("blobs/sha256/"))
        .filter_map(|k| futures::executor::block_on(store.head(k)).unwrap()?.metadata.get("assembled").cloned())
        .collect();
    let left: Vec<String> = store
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("uploads/") || k.starts_with("blobs/multipart/"))
        .filter(|k| !named.contains(k))
        .collect();
    assert_eq!(store.pending_multipart_uploads(), 0, "multipart uploads left open");
    assert!(left.is_empty(), "left behind: {left:?}");
}
