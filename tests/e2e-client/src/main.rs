//! e2e-client: drive edge-registry with a real third-party client, the `oci-client` crate.
//!
//! Usage: `e2e-client --registry 127.0.0.1:PORT [--repo NAME] [--skip-concurrent] [--verbose]`
//!
//! Plain HTTP (`ClientProtocol::Http`), anonymous, loopback only. Steps, each fatal on failure
//! (exit code 1 with a `FAILED:` line naming the step and the failing request):
//!
//! 1. Chunked pushes into a fresh repository `e2e/oci-client-<random>`:
//!    * tag `chunked`: `Client::push` of an image with layers of 1 B, 3 MiB, 9 MiB + 17 B and
//!      21 MiB (random bytes from a fixed seed) plus a JSON config, one blob at a time. With
//!      oci-client 0.18 every blob goes through `push_blob_chunked`, i.e. POST (start upload),
//!      PATCH per 4 MiB chunk (the client's fixed `PUSH_CHUNK_MAX_SIZE`), PUT `?digest=`.
//!    * tag `stream`: other chunk sizes through the public streaming API. `push_blob_stream`
//!      sends one PATCH per stream item (items larger than 4 MiB are split at 4 MiB), so a layer
//!      of 9 MiB + 17 B fed as 1 MiB + 7 B items goes up in 1 MiB + 7 B chunks, and a layer of
//!      13 MiB + 5 B fed as a mix of 1 B .. 6 MiB items (`push_blob_stream_chunked`, digest
//!      computed by the client) goes up in chunks of 1 B .. 4 MiB. The 1 B layer of `chunked` is
//!      reused without being pushed again. The manifest carries `mediaType` (the `chunked` one,
//!      built by `OciImageManifest::build`, does not).
//!    * tag `concurrent` in a second repository: the `chunked` image again with the client's
//!      default 16 concurrent uploads (skip with `--skip-concurrent`).
//!
//!    Every PATCH that oci-client sends is observed through its `tracing` debug event
//!    ("Pushing chunk", fields `range_start` and `chunk_size`), and the run fails if any blob
//!    was not sent in exactly the expected chunks, if a monolithic upload happened ("Pushing
//!    monolithically") or if oci-client logged any warning (e.g. its silent fallback from the
//!    chunked to the monolithic path when the registry violates the spec).
//! 2. Pull every image back: `pull_manifest_raw` by tag and by digest (bytes and digest must be
//!    the ones pushed), `pull` (all layers and the config, compared byte for byte and by digest)
//!    and `pull_blob` for every layer.
//! 3. `list_tags`: the pushed tags are listed, also page by page with `n=1` and `last`.
//!
//! Data is deterministic (fixed seed); only the repository name is random, so reruns against
//! the same registry do not collide.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{
    OciDescriptor, OciImageManifest, OciManifest, IMAGE_LAYER_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::field::{Field, Visit};
use tracing::Level;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

const MIB: usize = 1024 * 1024;
/// oci-client 0.18's private `PUSH_CHUNK_MAX_SIZE`: every PATCH it sends is at most this long.
/// `Client::push_chunk_size` is a private field, always set to this constant; no `ClientConfig`
/// field changes it. Only stream items *smaller* than this give smaller chunks.
const CLIENT_CHUNK: usize = 4 * MIB;
const SEED: u64 = 0x0e2e_c1e7_0c10_0001;
const TAG_CHUNKED: &str = "chunked";
const TAG_STREAM: &str = "stream";
const TAG_CONCURRENT: &str = "concurrent";

type Res<T> = Result<T, String>;

// ------------------------------------------------------------------------------------------
// Observing oci-client's requests through its tracing events
// ------------------------------------------------------------------------------------------

/// What oci-client told us it was sending.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// One PATCH of a chunked upload (`push_chunk`): Content-Range start and length.
    Chunk { start: u64, len: u64 },
    /// A monolithic PUT (`push_monolithically` / `push_stream_monolithically`).
    Monolithic { len: Option<u64> },
    /// Any WARN event from oci-client (spec-violation fallbacks and workarounds).
    Warning(String),
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    chunk_size: Option<u64>,
    range_start: Option<u64>,
    size: Option<u64>,
    all: Vec<String>,
}

impl Fields {
    fn set_num(&mut self, name: &str, v: u64) {
        match name {
            "chunk_size" => self.chunk_size = Some(v),
            "range_start" => self.range_start = Some(v),
            "size" => self.size = Some(v),
            _ => {}
        }
    }
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set_num(field.name(), value);
        self.all.push(format!("{}={value}", field.name()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(v) = u64::try_from(value) {
            self.set_num(field.name(), v);
        }
        self.all.push(format!("{}={value}", field.name()));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.all.push(format!("{}={value}", field.name()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
            return;
        }
        // `?range_start` is recorded as Debug of a usize.
        if let Ok(v) = text.parse::<u64>() {
            self.set_num(field.name(), v);
        }
        self.all.push(format!("{}={text}", field.name()));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("oci_client") {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let seen = if *meta.level() == Level::WARN {
            Seen::Warning(format!("{} {}", f.message, f.all.join(" ")).trim().to_string())
        } else if f.message == "Pushing chunk" {
            match (f.range_start, f.chunk_size) {
                (Some(start), Some(len)) => Seen::Chunk { start, len },
                _ => Seen::Warning(format!(
                    "could not read range_start/chunk_size from oci-client's 'Pushing chunk' \
                     event ({}): this check needs updating for the oci-client version in use",
                    f.all.join(" ")
                )),
            }
        } else if f.message == "Pushing monolithically" {
            Seen::Monolithic { len: f.size }
        } else {
            return;
        };
        self.0.lock().unwrap().push(seen);
    }
}

/// Expected PATCH lengths for `total` bytes cut into `chunk`-sized pieces.
fn split(total: usize, chunk: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk);
        out.push(n as u64);
        left -= n;
    }
    out
}

/// Expected PATCH lengths when a stream yields `items`: oci-client cuts each item at 4 MiB.
fn split_items(items: &[usize]) -> Vec<u64> {
    items.iter().flat_map(|&n| split(n, CLIENT_CHUNK)).collect()
}

fn fmt_sizes(sizes: &[u64]) -> String {
    let parts: Vec<String> = sizes
        .iter()
        .map(|&n| {
            if n >= MIB as u64 && n % (MIB as u64) == 0 {
                format!("{}MiB", n / MIB as u64)
            } else if n > MIB as u64 {
                format!("{}MiB+{}", n / MIB as u64, n % MIB as u64)
            } else {
                n.to_string()
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Split the observed events of a sequential push into one list of PATCH lengths per blob,
/// failing on a monolithic upload, a warning, or non-contiguous ranges.
fn chunk_groups(what: &str, events: &[Seen]) -> Res<Vec<Vec<u64>>> {
    let mut groups: Vec<Vec<u64>> = Vec::new();
    let mut next = 0u64;
    for ev in events {
        match ev {
            Seen::Chunk { start, len } => {
                if *start == 0 {
                    groups.push(Vec::new());
                } else if groups.is_empty() || *start != next {
                    return Err(format!(
                        "{what}: oci-client sent a PATCH with Content-Range starting at {start}, \
                         expected {next}"
                    ));
                }
                groups.last_mut().unwrap().push(*len);
                next = start + len;
            }
            other => return Err(unexpected(what, other)),
        }
    }
    Ok(groups)
}

fn unexpected(what: &str, ev: &Seen) -> String {
    match ev {
        Seen::Monolithic { len } => format!(
            "{what}: oci-client fell back to a monolithic PUT ({} bytes): the chunked path \
             was not used (use_monolithic_push, or push_blob's fallback after a spec \
             violation: run with --verbose to see oci-client's requests)",
            len.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
        ),
        Seen::Warning(msg) => format!("{what}: oci-client warned: {msg}"),
        Seen::Chunk { .. } => format!("{what}: unexpected chunk {ev:?}"),
    }
}

fn expect_chunks(what: &str, events: &[Seen], expected: &[(&str, Vec<u64>)]) -> Res<()> {
    let groups = chunk_groups(what, events)?;
    let want: Vec<&Vec<u64>> = expected.iter().map(|(_, v)| v).collect();
    if groups.iter().collect::<Vec<_>>() != want {
        let mut msg = format!("{what}: PATCH requests differ from the expected chunking\n");
        for (i, (name, sizes)) in expected.iter().enumerate() {
            msg += &format!(
                "  blob {i} ({name}): expected {} got {}\n",
                fmt_sizes(sizes),
                groups.get(i).map(|g| fmt_sizes(g)).unwrap_or_else(|| "nothing".into())
            );
        }
        for (i, g) in groups.iter().enumerate().skip(expected.len()) {
            msg += &format!("  extra blob {i}: {}\n", fmt_sizes(g));
        }
        return Err(msg);
    }
    for ((name, sizes), _) in expected.iter().zip(&groups) {
        println!("    {name}: {} PATCH(es) {}", sizes.len(), fmt_sizes(sizes));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Test data
// ------------------------------------------------------------------------------------------

/// splitmix64: deterministic bytes without extra dependencies.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn bytes(&mut self, n: usize) -> Bytes {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        Bytes::from(v)
    }
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The way oci-client's `push_manifest` serializes a manifest (canonical JSON), so we know
/// the digest the registry must report.
fn canonical_json<T: Serialize>(value: &T) -> Res<Vec<u8>> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, olpc_cjson::CanonicalFormatter::new());
    value.serialize(&mut ser).map_err(|e| format!("serializing manifest: {e}"))?;
    Ok(buf)
}

fn image_config(layers: &[String], note: &str) -> Config {
    let json = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": { "edge-registry.e2e": note } },
        "rootfs": { "type": "layers", "diff_ids": layers },
    });
    Config::oci_v1(serde_json::to_vec(&json).unwrap(), None)
}

fn descriptor(media_type: &str, data: &[u8]) -> OciDescriptor {
    OciDescriptor {
        media_type: media_type.to_string(),
        digest: sha256(data),
        size: data.len() as i64,
        ..Default::default()
    }
}

/// What we pushed under one tag and must get back.
struct Pushed {
    reference: Reference,
    manifest_bytes: Vec<u8>,
    manifest_digest: String,
    /// (name, descriptor, bytes) in manifest order.
    layers: Vec<(String, OciDescriptor, Bytes)>,
    config: Bytes,
}

// ------------------------------------------------------------------------------------------
// Steps
// ------------------------------------------------------------------------------------------

struct Ctx {
    registry: String,
    recorder: Recorder,
    auth: RegistryAuth,
}

/// Set by the hidden `--self-test-monolithic` flag: push monolithically, which the chunk
/// checks must catch (the run has to fail at step 1a). Checks the checker.
static FORCE_MONOLITHIC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn client(max_concurrent_upload: usize) -> Client {
    Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        // Chunking, forced on purpose:
        //  * `use_monolithic_push: false` (the default; `true` only under
        //    `--self-test-monolithic`) makes `Client::push_blob` (used by
        //    `Client::push` for every layer and the config) take `push_blob_chunked`: POST,
        //    one PATCH per `push_chunk_size` (4 MiB, not configurable in 0.18), PUT ?digest=.
        //    With `true` it would do POST + a single PUT instead.
        //  * `push_blob` silently retries monolithically when the chunked path returns
        //    `SpecViolationError` (a 2xx other than the expected 202/201): that only shows as
        //    a WARN event, which `Recorder` turns into a failure, together with any
        //    "Pushing monolithically" event.
        //  * `push_blob_stream` (with `use_monolithic_push: false`) and
        //    `push_blob_stream_chunked` (always) have no fallback; they send one PATCH per
        //    stream item, cut at 4 MiB, which is how other chunk sizes are produced.
        use_monolithic_push: FORCE_MONOLITHIC.load(std::sync::atomic::Ordering::Relaxed),
        // 1: one blob at a time, so the observed PATCHes can be attributed to blobs in order
        // (step 1c uses the default 16 and only compares the multiset of PATCH lengths).
        max_concurrent_upload,
        read_timeout: Some(Duration::from_secs(180)),
        connect_timeout: Some(Duration::from_secs(10)),
        ..Default::default()
    })
}

fn url_digest_mismatch(what: &str, url: &str, digest: &str) -> Res<()> {
    // The spec does not require the digest in Location, but if one is there it must be ours.
    if let Some(pos) = url.find("sha256:") {
        let found: String = url[pos..].chars().take(7 + 64).collect();
        if found != digest {
            return Err(format!("{what}: Location {url} names {found}, expected {digest}"));
        }
    }
    Ok(())
}

async fn push_chunked_image(cx: &Ctx, repo: &str, rng: &mut Rng) -> Res<Pushed> {
    let sizes: [(&str, usize); 4] =
        [("1 B", 1), ("3 MiB", 3 * MIB), ("9 MiB + 17 B", 9 * MIB + 17), ("21 MiB", 21 * MIB)];
    let layers: Vec<ImageLayer> = sizes.iter().map(|&(_, n)| ImageLayer::oci_v1(rng.bytes(n), None)).collect();
    let digests: Vec<String> = layers.iter().map(|l| sha256(&l.data)).collect();
    let config = image_config(&digests, "oci-client chunked push");
    // `push` would build the same manifest itself; building it here tells us its digest.
    let manifest = OciImageManifest::build(&layers, &config, None);
    let manifest_bytes = canonical_json(&OciManifest::Image(manifest.clone()))?;
    let manifest_digest = sha256(&manifest_bytes);
    let reference = Reference::with_tag(cx.registry.clone(), repo.to_string(), TAG_CHUNKED.into());

    println!("[1a] push {reference} (Client::push, 4 MiB chunks, sequential)");
    let t = Instant::now();
    cx.recorder.take();
    let resp = client(1)
        .push(&reference, &layers, config.clone(), &cx.auth, Some(manifest.clone()))
        .await
        .map_err(|e| format!("push {reference}: {e}"))?;
    let events = cx.recorder.take();
    println!("    pushed in {:.1}s, manifest {}", t.elapsed().as_secs_f64(), resp.manifest_url);
    let mut expected: Vec<(&str, Vec<u64>)> = sizes.iter().map(|&(name, n)| (name, split(n, CLIENT_CHUNK))).collect();
    expected.push(("config", split(config.data.len(), CLIENT_CHUNK)));
    expect_chunks(&format!("push {reference}"), &events, &expected)?;
    url_digest_mismatch("config blob", &resp.config_url, &manifest.config.digest)?;
    url_digest_mismatch("manifest", &resp.manifest_url, &manifest_digest)?;

    Ok(Pushed {
        reference,
        manifest_bytes,
        manifest_digest,
        layers: sizes
            .iter()
            .zip(&layers)
            .zip(&manifest.layers)
            .map(|((&(name, _), l), d)| (name.to_string(), d.clone(), l.data.clone()))
            .collect(),
        config: config.data,
    })
}

fn item_stream(
    data: &Bytes,
    items: &[usize],
) -> impl futures_util::Stream<Item = oci_client::errors::Result<Bytes>> + Send + 'static {
    let mut pieces = Vec::new();
    let mut at = 0;
    for &n in items {
        pieces.push(Ok(data.slice(at..at + n)));
        at += n;
    }
    assert_eq!(at, data.len());
    stream::iter(pieces)
}

/// Cut `total` into items of the given pattern (repeated), the last one truncated.
fn items_from_pattern(total: usize, pattern: &[usize]) -> Vec<usize> {
    let mut items = Vec::new();
    let mut left = total;
    for &n in pattern.iter().cycle() {
        if left == 0 {
            break;
        }
        let n = n.min(left);
        items.push(n);
        left -= n;
    }
    items
}

async fn push_stream_image(cx: &Ctx, repo: &str, rng: &mut Rng, reuse: &Pushed) -> Res<Pushed> {
    let reference = Reference::with_tag(cx.registry.clone(), repo.to_string(), TAG_STREAM.into());
    let c = client(1);
    println!("[1b] push {reference} (push_blob_stream / push_blob_stream_chunked, other chunk sizes)");

    // Layer 1: 9 MiB + 17 B in 1 MiB + 7 B chunks, digest known up front.
    let data1 = rng.bytes(9 * MIB + 17);
    let items1 = items_from_pattern(data1.len(), &[MIB + 7]);
    let digest1 = sha256(&data1);
    cx.recorder.take();
    let t = Instant::now();
    let url1 = c
        .push_blob_stream(&reference, item_stream(&data1, &items1), &digest1, Some(data1.len() as u64))
        .await
        .map_err(|e| format!("push_blob_stream {digest1} (9 MiB + 17 B in 1 MiB + 7 B chunks): {e}"))?;
    let ev1 = cx.recorder.take();
    println!("    layer 1 pushed in {:.1}s -> {url1}", t.elapsed().as_secs_f64());
    expect_chunks("push_blob_stream", &ev1, &[("9 MiB + 17 B", split_items(&items1))])?;
    url_digest_mismatch("push_blob_stream", &url1, &digest1)?;

    // Layer 2: 13 MiB + 5 B, stream items of 1 B .. 6 MiB; oci-client computes the digest.
    let data2 = rng.bytes(13 * MIB + 5);
    let items2 =
        items_from_pattern(data2.len(), &[1, 5 * MIB + 3, 17, 4 * MIB, 2 * MIB + 9, 6 * MIB, 4 * MIB - 1, 65536]);
    let t = Instant::now();
    let r2 = c
        .push_blob_stream_chunked(&reference, item_stream(&data2, &items2))
        .await
        .map_err(|e| format!("push_blob_stream_chunked (13 MiB + 5 B, mixed chunks): {e}"))?;
    let ev2 = cx.recorder.take();
    println!("    layer 2 pushed in {:.1}s -> {}", t.elapsed().as_secs_f64(), r2.blob_url);
    expect_chunks("push_blob_stream_chunked", &ev2, &[("13 MiB + 5 B", split_items(&items2))])?;
    let digest2 = sha256(&data2);
    if r2.blob_digest != digest2 || r2.size != data2.len() as u64 {
        return Err(format!(
            "push_blob_stream_chunked reported {} / {} bytes, expected {digest2} / {}",
            r2.blob_digest,
            r2.size,
            data2.len()
        ));
    }
    url_digest_mismatch("push_blob_stream_chunked", &r2.blob_url, &digest2)?;

    // Layer 3: the 1-byte layer of the `chunked` image, already in this repository: not pushed.
    let (_, reused_desc, reused_data) = reuse.layers[0].clone();

    let layers = vec![
        ("9 MiB + 17 B (1 MiB + 7 B chunks)".to_string(), descriptor(IMAGE_LAYER_MEDIA_TYPE, &data1), data1),
        ("13 MiB + 5 B (mixed chunks)".to_string(), descriptor(IMAGE_LAYER_MEDIA_TYPE, &data2), data2),
        ("1 B (reused, not pushed again)".to_string(), reused_desc, reused_data),
    ];
    let diff_ids: Vec<String> = layers.iter().map(|(_, d, _)| d.digest.clone()).collect();
    let config = image_config(&diff_ids, "oci-client stream push");
    let config_desc = descriptor(&config.media_type, &config.data);
    let t = Instant::now();
    let config_url = c
        .push_blob(&reference, config.data.clone(), &config_desc.digest)
        .await
        .map_err(|e| format!("push_blob config {}: {e}", config_desc.digest))?;
    expect_chunks("push_blob config", &cx.recorder.take(), &[("config", split(config.data.len(), CLIENT_CHUNK))])?;
    url_digest_mismatch("config blob", &config_url, &config_desc.digest)?;

    let mut annotations = BTreeMap::new();
    annotations.insert("org.opencontainers.image.title".to_string(), "e2e oci-client stream".to_string());
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
        config: config_desc,
        layers: layers.iter().map(|(_, d, _)| d.clone()).collect(),
        annotations: Some(annotations),
        ..Default::default()
    };
    let manifest = OciManifest::Image(manifest);
    let manifest_bytes = canonical_json(&manifest)?;
    let manifest_digest = sha256(&manifest_bytes);
    let manifest_url =
        c.push_manifest(&reference, &manifest).await.map_err(|e| format!("push_manifest {reference}: {e}"))?;
    if let Some(ev) = cx.recorder.take().first() {
        return Err(unexpected("push_manifest", ev));
    }
    println!("    config + manifest pushed in {:.1}s -> {manifest_url}", t.elapsed().as_secs_f64());
    url_digest_mismatch("manifest", &manifest_url, &manifest_digest)?;

    Ok(Pushed { reference, manifest_bytes, manifest_digest, layers, config: config.data })
}

async fn push_concurrent(cx: &Ctx, repo: &str, src: &Pushed) -> Res<Pushed> {
    let reference = Reference::with_tag(cx.registry.clone(), repo.to_string(), TAG_CONCURRENT.into());
    println!("[1c] push {reference} (Client::push, default 16 concurrent uploads)");
    let layers: Vec<ImageLayer> =
        src.layers.iter().map(|(_, d, data)| ImageLayer::new(data.clone(), d.media_type.clone(), None)).collect();
    let config = Config::oci_v1(src.config.clone(), None);
    let manifest = OciImageManifest::build(&layers, &config, None);
    cx.recorder.take();
    let t = Instant::now();
    let resp = client(oci_client::client::DEFAULT_MAX_CONCURRENT_UPLOAD)
        .push(&reference, &layers, config.clone(), &cx.auth, Some(manifest))
        .await
        .map_err(|e| format!("push {reference}: {e}"))?;
    let events = cx.recorder.take();
    println!("    pushed in {:.1}s -> {}", t.elapsed().as_secs_f64(), resp.manifest_url);
    // Interleaved: compare the multiset of PATCH lengths only.
    let mut got = Vec::new();
    for ev in &events {
        match ev {
            Seen::Chunk { len, .. } => got.push(*len),
            other => return Err(unexpected(&format!("push {reference}"), other)),
        }
    }
    let mut want: Vec<u64> = src.layers.iter().flat_map(|(_, _, d)| split(d.len(), CLIENT_CHUNK)).collect();
    want.extend(split(src.config.len(), CLIENT_CHUNK));
    got.sort_unstable();
    want.sort_unstable();
    if got != want {
        return Err(format!(
            "push {reference}: PATCH lengths {} differ from expected {}",
            fmt_sizes(&got),
            fmt_sizes(&want)
        ));
    }
    println!("    {} PATCHes, all as expected", got.len());
    url_digest_mismatch("manifest", &resp.manifest_url, &src.manifest_digest)?;
    Ok(Pushed {
        reference,
        manifest_bytes: src.manifest_bytes.clone(),
        manifest_digest: src.manifest_digest.clone(),
        layers: src.layers.clone(),
        config: src.config.clone(),
    })
}

async fn verify_pull(cx: &Ctx, img: &Pushed) -> Res<()> {
    let c = client(1);
    let r = &img.reference;
    println!("[2] pull {r}");
    let t = Instant::now();

    // Manifest, by tag and by digest.
    let by_digest =
        Reference::with_digest(r.registry().to_string(), r.repository().to_string(), img.manifest_digest.clone());
    for rf in [r, &by_digest] {
        let (bytes, digest) = c
            .pull_manifest_raw(rf, &cx.auth, &[OCI_IMAGE_MEDIA_TYPE])
            .await
            .map_err(|e| format!("pull_manifest_raw {rf}: {e}"))?;
        if digest != img.manifest_digest {
            return Err(format!(
                "pull_manifest_raw {rf}: digest {digest}, but push sent a manifest with digest {}",
                img.manifest_digest
            ));
        }
        if sha256(&bytes) != img.manifest_digest || bytes.as_ref() != img.manifest_bytes.as_slice() {
            return Err(format!(
                "pull_manifest_raw {rf}: body differs from the pushed manifest\n  pushed: {}\n  pulled: {}",
                String::from_utf8_lossy(&img.manifest_bytes),
                String::from_utf8_lossy(&bytes)
            ));
        }
    }
    println!("    manifest {} matches (by tag and by digest)", img.manifest_digest);

    // Whole image.
    let data = c.pull(r, &cx.auth, vec![IMAGE_LAYER_MEDIA_TYPE]).await.map_err(|e| format!("pull {r}: {e}"))?;
    if data.digest.as_deref() != Some(img.manifest_digest.as_str()) {
        return Err(format!("pull {r}: digest {:?}, expected {}", data.digest, img.manifest_digest));
    }
    let pulled_manifest = data.manifest.as_ref().ok_or_else(|| format!("pull {r}: no manifest"))?;
    let want_digests: Vec<&str> = img.layers.iter().map(|(_, d, _)| d.digest.as_str()).collect();
    let got_digests: Vec<&str> = pulled_manifest.layers.iter().map(|d| d.digest.as_str()).collect();
    if got_digests != want_digests {
        return Err(format!("pull {r}: manifest layers {got_digests:?}, expected {want_digests:?}"));
    }
    if data.config.data != img.config {
        return Err(format!("pull {r}: config blob differs from the pushed one"));
    }
    if data.layers.len() != img.layers.len() {
        return Err(format!("pull {r}: {} layers, expected {}", data.layers.len(), img.layers.len()));
    }
    // `pull` downloads concurrently and returns layers in completion order: match by digest.
    let mut pulled: Vec<(String, &Bytes)> = data.layers.iter().map(|l| (l.sha256_digest(), &l.data)).collect();
    for (name, desc, bytes) in &img.layers {
        let pos = pulled.iter().position(|(d, _)| *d == desc.digest).ok_or_else(|| {
            format!("pull {r}: layer {name} ({}) missing or corrupted in the pulled image", desc.digest)
        })?;
        let (_, got) = pulled.swap_remove(pos);
        if got != bytes {
            return Err(format!("pull {r}: layer {name} bytes differ"));
        }
    }

    // Every layer again with pull_blob.
    for (name, desc, bytes) in &img.layers {
        let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
        c.pull_blob(r, desc, &mut out)
            .await
            .map_err(|e| format!("pull_blob {} ({name}) from {r}: {e}", desc.digest))?;
        if out.len() != bytes.len() || out.as_slice() != bytes.as_ref() {
            return Err(format!(
                "pull_blob {} ({name}): got {} bytes (digest {}), pushed {} bytes",
                desc.digest,
                out.len(),
                sha256(&out),
                bytes.len()
            ));
        }
    }
    let total: usize = img.layers.iter().map(|(_, _, b)| b.len()).sum();
    println!(
        "    {} layers ({:.1} MiB) + config identical via pull and pull_blob ({:.1}s)",
        img.layers.len(),
        total as f64 / MIB as f64,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn verify_tags(cx: &Ctx, reference: &Reference, want: &[&str]) -> Res<()> {
    let c = client(1);
    println!("[3] list_tags {}", reference.repository());
    let all = c
        .list_tags(reference, &cx.auth, None, None)
        .await
        .map_err(|e| format!("list_tags {}: {e}", reference.repository()))?;
    if all.name != reference.repository() {
        return Err(format!("list_tags: name {:?}, expected {:?}", all.name, reference.repository()));
    }
    let mut want_sorted: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want_sorted.sort();
    if all.tags != want_sorted {
        return Err(format!("list_tags {}: tags {:?}, expected {:?}", all.name, all.tags, want_sorted));
    }
    // Paginated: n=1, then last=<previous>.
    let mut paged = Vec::new();
    let mut last: Option<String> = None;
    for _ in 0..=want_sorted.len() {
        let page = c
            .list_tags(reference, &cx.auth, Some(1), last.as_deref())
            .await
            .map_err(|e| format!("list_tags n=1 last={last:?}: {e}"))?;
        if page.tags.len() > 1 {
            return Err(format!("list_tags n=1 last={last:?}: {} tags {:?}", page.tags.len(), page.tags));
        }
        match page.tags.into_iter().next() {
            Some(t) => {
                last = Some(t.clone());
                paged.push(t);
            }
            None => break,
        }
    }
    if paged != want_sorted {
        return Err(format!("list_tags page by page (n=1): {paged:?}, expected {want_sorted:?}"));
    }
    println!("    tags {:?} (also page by page with n=1)", all.tags);
    Ok(())
}

// ------------------------------------------------------------------------------------------
// main
// ------------------------------------------------------------------------------------------

struct Args {
    registry: String,
    repo: Option<String>,
    concurrent: bool,
    verbose: bool,
}

const USAGE: &str = "usage: e2e-client --registry 127.0.0.1:PORT [--repo NAME] [--skip-concurrent] [--verbose]";

fn parse_args() -> Res<Args> {
    let mut args = Args { registry: String::new(), repo: None, concurrent: true, verbose: false };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--registry" => args.registry = it.next().ok_or("--registry needs a value")?,
            "--repo" => args.repo = Some(it.next().ok_or("--repo needs a value")?),
            "--skip-concurrent" => args.concurrent = false,
            "--verbose" | "-v" => args.verbose = true,
            "--self-test-monolithic" => FORCE_MONOLITHIC.store(true, std::sync::atomic::Ordering::Relaxed),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if args.registry.is_empty() {
        return Err(format!("--registry is required\n{USAGE}"));
    }
    let reg = args.registry.trim_start_matches("http://").trim_end_matches('/').to_string();
    let host = if let Some(rest) = reg.strip_prefix('[') {
        rest.split(']').next().unwrap_or("").to_string()
    } else {
        reg.rsplit_once(':').map(|(h, _)| h).unwrap_or(&reg).to_string()
    };
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false);
    if !loopback {
        return Err(format!("refusing to talk to {reg}: only loopback registries are allowed"));
    }
    args.registry = reg;
    Ok(args)
}

async fn run(args: Args, recorder: Recorder) -> Res<()> {
    let cx = Ctx { registry: args.registry, recorder, auth: RegistryAuth::Anonymous };
    let nonce = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        ^ (std::process::id() as u128) << 64;
    let repo = args.repo.unwrap_or_else(|| format!("e2e/oci-client-{:x}", nonce as u64 ^ (nonce >> 64) as u64));
    println!("e2e-client: oci-client 0.18 against http://{} repository {repo}", cx.registry);
    let mut rng = Rng(SEED);

    let chunked = push_chunked_image(&cx, &repo, &mut rng).await?;
    let streamed = push_stream_image(&cx, &repo, &mut rng, &chunked).await?;
    let concurrent =
        if args.concurrent { Some(push_concurrent(&cx, &format!("{repo}-concurrent"), &chunked).await?) } else { None };

    verify_pull(&cx, &chunked).await?;
    verify_pull(&cx, &streamed).await?;
    if let Some(img) = &concurrent {
        verify_pull(&cx, img).await?;
    }

    verify_tags(&cx, &chunked.reference, &[TAG_CHUNKED, TAG_STREAM]).await?;
    if let Some(img) = &concurrent {
        verify_tags(&cx, &img.reference, &[TAG_CONCURRENT]).await?;
    }
    if let Some(ev) = cx.recorder.take().iter().find(|e| matches!(e, Seen::Warning(_))) {
        return Err(unexpected("pull", ev));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("e2e-client: {e}");
            return ExitCode::from(2);
        }
    };
    // Loopback only: never go through a proxy from the environment (reqwest honours these).
    for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
        std::env::remove_var(var);
    }

    let recorder = Recorder::default();
    let verbose = args.verbose.then(|| {
        let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "oci_client=debug".into());
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::EnvFilter::new(filter))
    });
    let subscriber = tracing_subscriber::registry().with(recorder.clone()).with(verbose);
    tracing::subscriber::set_global_default(subscriber).expect("tracing subscriber");

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let t = Instant::now();
    match rt.block_on(run(args, recorder)) {
        Ok(()) => {
            println!("e2e-client: OK ({:.1}s)", t.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("e2e-client: FAILED after {:.1}s: {e}", t.elapsed().as_secs_f64());
            println!("e2e-client: FAILED");
            ExitCode::FAILURE
        }
    }
}
