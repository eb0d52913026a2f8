//! The collector's budget at the issue's scale: a registry of 10,000 repositories and
//! 100,001 blobs (10 of its own per repository and one base layer shared by all), 1,000 of
//! whose images were deleted, generated straight into the in-memory R2. Two runs (one
//! condemns, one a grace period later deletes) are counted step by step: no step makes
//! more storage calls than its budget (and the job's own save), and the totals per 1,000
//! blobs are printed for the record (`cargo test --test gc_scale -- --nocapture`).

use edge_registry::lifecycle::gc::sweep::{CLOCK_SKEW_MS, MAX_STEP_MS};
use edge_registry::lifecycle::gc::{Collector, GcConfig};
use edge_registry::oci::{Digest, RepositoryName, Tag};
use edge_registry::storage::fields::{MANIFEST_MEDIA_TYPE, TAG_DIGEST};
use edge_registry::storage::memory::MemoryBlobStore;
use edge_registry::storage::memory_kv::MemoryMetaStore;
use edge_registry::storage::{keys, BlobStore, Metadata};
use futures::executor::block_on;
use sha2::{Digest as _, Sha256};

const REPOSITORIES: usize = 10_000;
const OWN_BLOBS: usize = 10;
const DELETED: usize = 1_000;
const BUDGET: u64 = 900;
const GRACE: u64 = 3_600_000;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn digest_of(bytes: &[u8]) -> Digest {
    format!("sha256:{}", edge_registry::oci::digest::to_hex(&Sha256::digest(bytes))).parse().unwrap()
}

/// Writes the registry; returns the deleted images' blob count.
fn generate(store: &MemoryBlobStore) -> usize {
    block_on(async {
        let put = |key: String, bytes: Vec<u8>, metadata: Metadata| async move {
            store.put_bytes(&key, bytes, metadata).await.unwrap();
        };
        let base = b"shared base layer".to_vec();
        let base_digest = digest_of(&base);
        put(keys::blob(&base_digest), base, Metadata::new()).await;
        for r in 0..REPOSITORIES {
            let repo = RepositoryName::parse(&format!("team{}/app{r}", r % 100)).unwrap();
            let mut layers = vec![(base_digest.clone(), 17)];
            for b in 0..OWN_BLOBS {
                let bytes = format!("repository {r} blob {b}").into_bytes();
                let d = digest_of(&bytes);
                layers.push((d.clone(), bytes.len()));
                put(keys::blob(&d), bytes, Metadata::new()).await;
                put(keys::repository_blob(&repo, &d), Vec::new(), Metadata::new()).await;
            }
            put(keys::repository_blob(&repo, &base_digest), Vec::new(), Metadata::new()).await;
            let (config, rest) = layers.split_last().unwrap();
            let layer_json: Vec<String> = rest
                .iter()
                .map(|(d, s)| {
                    format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{s}}}"#)
                })
                .collect();
            let manifest = format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
                config.0,
                config.1,
                layer_json.join(",")
            );
            let m = digest_of(manifest.as_bytes());
            let media = Metadata::from([MANIFEST_MEDIA_TYPE.entry(OCI_MANIFEST)]);
            put(keys::manifest(&m), manifest.into_bytes(), media.clone()).await;
            put(keys::catalog_entry(&repo), Vec::new(), Metadata::new()).await;
            if r < DELETED {
                continue; // its image was deleted: its blobs and links stay, no manifest link
            }
            put(keys::repository_manifest(&repo, &m), Vec::new(), media).await;
            let tag = Tag::parse("latest").unwrap();
            put(keys::tag(&repo, &tag), m.to_string().into_bytes(), Metadata::from([TAG_DIGEST.entry(m.to_string())]))
                .await;
        }
        DELETED * (OWN_BLOBS + 1) // their own blobs and their manifests' bytes
    })
}

/// One whole run at `now`; (steps, calls, the most calls one step made).
fn run(
    gc: &Collector<'_, MemoryBlobStore, MemoryMetaStore>,
    now: u64,
) -> (u64, u64, u64, edge_registry::lifecycle::gc::job::Report) {
    block_on(async {
        gc.start(now, false).await.unwrap();
        let mut most = 0;
        let mut calls = 0;
        loop {
            let stepped = gc.step(now).await.unwrap();
            most = most.max(stepped.job.report.calls - calls);
            calls = stepped.job.report.calls;
            if stepped.job.is_done() {
                return (stepped.job.report.steps, calls, most, stepped.job.report);
            }
        }
    })
}

#[test]
fn a_registry_of_100000_blobs_is_collected_in_steps_within_the_budget() {
    let store = MemoryBlobStore::new();
    let meta = MemoryMetaStore::new();
    let unreachable = generate(&store);
    let blobs = REPOSITORIES * OWN_BLOBS + 1;
    let gc = Collector::new(&store, &meta, GcConfig { grace_ms: GRACE, calls_per_step: BUDGET, interval_ms: 0 });
    let t0 = 1_800_000_000_000;
    let (steps1, calls1, most1, first) = run(&gc, t0);
    assert_eq!(first.repositories, REPOSITORIES as u64);
    assert_eq!(first.condemned.items, unreachable as u64, "{first:?}");
    let (steps2, calls2, most2, second) = run(&gc, t0 + GRACE + MAX_STEP_MS + CLOCK_SKEW_MS + 1);
    assert_eq!(second.deleted.items, unreachable as u64, "{second:?}");
    assert_eq!(second.links_removed, (DELETED * OWN_BLOBS) as u64, "the base layer's links stay");
    // The job's save and, at the end, its report come on top of the step's own calls.
    assert!(most1 <= BUDGET + 2 && most2 <= BUDGET + 2, "a step made {most1} / {most2} calls");
    let per_thousand = |x: u64| x as f64 * 1000.0 / blobs as f64;
    println!(
        "gc scale: {REPOSITORIES} repositories, {blobs} blobs, {unreachable} unreachable; budget {BUDGET} calls a step\n\
         gc scale: run 1 (condemns): {steps1} steps, {calls1} calls, at most {most1} in a step: \
         {:.1} steps and {:.0} calls per 1,000 blobs\n\
         gc scale: run 2 (deletes): {steps2} steps, {calls2} calls, at most {most2} in a step: \
         {:.1} steps and {:.0} calls per 1,000 blobs",
        per_thousand(steps1),
        per_thousand(calls1),
        per_thousand(steps2),
        per_thousand(calls2)
    );
}
