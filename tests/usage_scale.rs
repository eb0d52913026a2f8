//! The usage count's budget at the issue's scale: 10,000 repositories and 100,001 blobs
//! (10 of each repository's own and a base layer all share), one tagged image each,
//! generated straight into the in-memory R2 and counted step by step: no step makes more
//! storage calls than its budget, the totals count the base layer once, and the steps,
//! calls and the job record's size are printed for the record
//! (`cargo test --release --test usage_scale -- --nocapture`).

use edge_registry::lifecycle::usage::{UsageConfig, UsageCounter};
use edge_registry::oci::{Digest, RepositoryName, Tag};
use edge_registry::storage::fields::{MANIFEST_MEDIA_TYPE, TAG_DIGEST};
use edge_registry::storage::memory::MemoryBlobStore;
use edge_registry::storage::memory_kv::MemoryMetaStore;
use edge_registry::storage::{keys, BlobStore, Metadata};
use futures::executor::block_on;
use sha2::{Digest as _, Sha256};

const OWN_BLOBS: usize = 10;
const BASE_SIZE: u64 = 17;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn digest_of(bytes: &[u8]) -> Digest {
    format!("sha256:{}", edge_registry::oci::digest::to_hex(&Sha256::digest(bytes))).parse().unwrap()
}

/// Writes `repositories` repositories (links, tags, manifests; blob bytes are not read by
/// the count); returns the bytes of the repositories' own blobs and manifests.
fn generate(store: &MemoryBlobStore, repositories: usize) -> u64 {
    block_on(async {
        let put = |key: String, bytes: Vec<u8>, metadata: Metadata| async move {
            store.put_bytes(&key, bytes, metadata).await.unwrap();
        };
        let base = digest_of(b"shared base layer");
        let mut own = 0;
        for r in 0..repositories {
            let repo = RepositoryName::parse(&format!("team{}/app{r}", r % 100)).unwrap();
            let layers: Vec<String> = (0..OWN_BLOBS)
                .map(|b| {
                    let d = digest_of(format!("repository {r} blob {b}").as_bytes());
                    own += 1000 + b as u64;
                    format!(
                        r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{}}}"#,
                        1000 + b
                    )
                })
                .collect();
            let manifest = format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{base}","size":{BASE_SIZE}}},"layers":[{}]}}"#,
                layers.join(",")
            );
            own += manifest.len() as u64;
            let m = digest_of(manifest.as_bytes());
            let media = Metadata::from([MANIFEST_MEDIA_TYPE.entry(OCI_MANIFEST)]);
            put(keys::manifest(&m), manifest.into_bytes(), media.clone()).await;
            put(keys::catalog_entry(&repo), Vec::new(), Metadata::new()).await;
            put(keys::repository_manifest(&repo, &m), Vec::new(), media).await;
            let tag = Tag::parse("latest").unwrap();
            let digest = Metadata::from([TAG_DIGEST.entry(m.to_string())]);
            put(keys::tag(&repo, &tag), m.to_string().into_bytes(), digest).await;
        }
        own
    })
}

/// One whole run; (steps, calls, the most calls one step made, the largest job record).
fn run(store: &MemoryBlobStore, budget: u64, repositories: usize, own: u64) -> (u64, u64, u64, usize) {
    let meta = MemoryMetaStore::new();
    let counter = UsageCounter::new(store, &meta, UsageConfig { calls_per_step: budget, interval_ms: 0 });
    block_on(async {
        let now = 1_800_000_000_000;
        counter.start(now).await.unwrap();
        let (mut most, mut calls, mut record) = (0, 0, 0);
        loop {
            let job = counter.step(now).await.unwrap().job;
            most = most.max(job.calls - calls);
            calls = job.calls;
            record = record.max(store.get_bytes(&keys::usage_job()).await.unwrap().unwrap().1.len());
            if job.is_done() {
                let report = counter.report().await.unwrap().unwrap();
                let n = repositories as u64;
                assert_eq!(report.totals.repositories, n);
                assert_eq!(report.totals.blobs, n * OWN_BLOBS as u64 + 1);
                assert_eq!(report.totals.bytes, own + BASE_SIZE, "the base layer once");
                assert_eq!(report.totals.repository_bytes, own + n * BASE_SIZE, "the base layer in each");
                return (job.steps, calls, most, record);
            }
        }
    })
}

#[test]
fn a_registry_of_10000_repositories_and_100001_blobs_is_counted_within_the_budget() {
    let store = MemoryBlobStore::new();
    let own = generate(&store, 10_000);
    let (steps, calls, most, record) = run(&store, 900, 10_000, own);
    assert!(most <= 900, "a step made {most} calls");
    println!(
        "usage scale: 10,000 repositories, 100,001 blobs, budget 900: {steps} steps, {calls} calls (at most {most} \
         in a step, {:.1} per repository), job record at most {:.1} MB",
        calls as f64 / 10_000.0,
        record as f64 / 1e6
    );
}

#[test]
fn a_free_plan_budget_counts_a_thousand_repositories_in_steps_of_40() {
    let store = MemoryBlobStore::new();
    let own = generate(&store, 1_000);
    let (steps, calls, most, _) = run(&store, 40, 1_000, own);
    assert!(most <= 40, "a step made {most} calls");
    println!("usage scale: 1,000 repositories, budget 40: {steps} steps, {calls} calls (at most {most} in a step)");
}
