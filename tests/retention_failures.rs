//! Retention and manifest deletes where they can go wrong beyond a moved tag
//! (`tests/retention.rs`): a push during the repository's read, a nested index pushed while
//! its grandchild is being deleted, a storage error between a marker's write and its
//! delete (in a retention step and in a `DELETE`), each driven step by step over the
//! memory store, failures injected by `FaultyBlobStore`.

mod common;

use common::*;
use edge_registry::lifecycle::gc::job::{Job, Phase};
use edge_registry::lifecycle::gc::{Collector, GcConfig};
use edge_registry::lifecycle::retention::work::Stage;
use edge_registry::lifecycle::retention::{Retainer, RetentionRules, DAY_MS};
use edge_registry::oci::{Digest, RepositoryName, Tag};
use edge_registry::registry::Config;
use edge_registry::storage::faulty::{FaultyBlobStore, Op};
use edge_registry::storage::memory::MemoryBlobStore;
use edge_registry::storage::retiring::{self, CLOCK_SKEW_MS, MAX_HOLD_MS};
use edge_registry::storage::{keys, BlobStore};
use futures::executor::block_on;

const GRACE: u64 = 3_600_000;
/// Keep the newest two tags; every untagged manifest past the grace period goes.
const KEEP_2: &str = r#"[{"repositories": "ci/*", "keep_last": 2, "untagged_older_than_days": 0}]"#;

type Faulty = AnyRegistry<FaultyBlobStore<MemoryBlobStore>>;

fn world() -> (Faulty, ManualClock) {
    registry_over(FaultyBlobStore::new(MemoryBlobStore::new()), Config::default())
}

/// Steps a collector run with retention applied (started at the clock's time if none is
/// in progress), `calls` per step, until `until` holds; a step's storage error is
/// returned as `Err` (the job stays as last saved).
fn run_until(reg: &Faulty, calls: u64, until: impl Fn(&Job) -> bool) -> Result<Job, String> {
    let rules = RetentionRules::parse(KEEP_2).unwrap();
    let immutable = |_: &RepositoryName, _: &Tag| false;
    let retainer = Retainer { rules: &rules, apply: true, is_immutable: &immutable };
    let config = GcConfig { grace_ms: GRACE, calls_per_step: calls, interval_ms: 0 };
    let gc = Collector::new(reg.blob_store(), reg.meta_store(), config).with_retention(retainer);
    block_on(async {
        let now = reg.now_millis();
        gc.start(now, false).await.map_err(|e| e.to_string())?;
        for _ in 0..10_000 {
            let stepped = gc.step(now).await.map_err(|e| e.to_string())?;
            if until(&stepped.job) {
                return Ok(stepped.job);
            }
        }
        panic!("not reached in 10,000 steps");
    })
}

fn run(reg: &Faulty) -> Job {
    run_until(reg, 40, Job::is_done).unwrap()
}

fn at(job: &Job, stage: Stage) -> bool {
    let Phase::Retain(cursor) = &job.phase else { return false };
    cursor.work.as_ref().is_some_and(|w| w.repo == "ci/app" && w.stage == stage)
}

fn get(reg: &Faulty, uri: &str) -> u16 {
    send(reg, "GET", uri, &[], b"").status
}

fn link_key(digest: &str) -> String {
    keys::repository_manifest(&RepositoryName::parse("ci/app").unwrap(), &digest.parse::<Digest>().unwrap())
}

fn exists(reg: &Faulty, key: &str) -> bool {
    block_on(reg.blob_store().inner().head(key)).unwrap().is_some()
}

/// Three old tags, one pushed a second apart; their digests.
fn three_old_tags(reg: &Faulty, clock: &ManualClock) -> Vec<String> {
    let digests = ["t1", "t2", "t3"].iter().zip(10..).map(|(t, seed)| {
        clock.advance(1000);
        push_image(reg, "ci/app", t, seed)
    });
    let digests = digests.collect();
    clock.advance(2 * DAY_MS);
    digests
}

/// A tag pushed after the tag listing and before the link listing: the link listing sees
/// its manifest, the tag listing did not see the tag, so the manifest looks untagged. The
/// plan is made as of the read's start, when that manifest was not pushed yet (within
/// grace), so it is kept even when the plan runs past the grace period.
#[test]
fn a_tag_pushed_while_the_repository_is_read_keeps_its_manifest() {
    let (reg, clock) = world();
    three_old_tags(&reg, &clock);
    run_until(&reg, 6, |job| at(job, Stage::Links { after: None })).unwrap();
    let late = push_image(&reg, "ci/app", "late", 99);
    clock.advance(2 * GRACE);

    let report = run(&reg).report.retention.unwrap();
    assert_eq!(report.tags_deleted, 1, "t1 only (t2, t3 are the newest two seen): {report:?}");
    assert!(!report.sample.contains(&format!("ci/app@{late}")), "{report:?}");
    assert_eq!(get(&reg, "/v2/ci/app/manifests/late"), 200);
    assert_eq!(get(&reg, &format!("/v2/ci/app/manifests/{late}")), 200);
}

/// An index over an index over an image, the inner two untagged and decided for deletion;
/// a new index pushed over the inner index before the deletions reach it. Its push writes
/// the links of every manifest below it (the grandchild's too), so none of them goes.
#[test]
fn a_nested_index_pushed_during_the_deletions_keeps_its_grandchild() {
    let (reg, clock) = world();
    let image = push_image(&reg, "ci/app", "image", 10);
    let index = |child: &str, child_type: &str, extra: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{child_type}","digest":"{child}","size":1}}]{extra}}}"#
        )
        .into_bytes()
    };
    let put = |reference: &str, bytes: &[u8]| {
        let uri = format!("/v2/ci/app/manifests/{reference}");
        let a = send(&reg, "PUT", &uri, &[("content-type", OCI_INDEX)], bytes);
        assert_eq!(a.status, 201, "{:?}", String::from_utf8_lossy(&a.body));
        a.header("docker-content-digest").unwrap().to_owned()
    };
    let inner_bytes = index(&image, OCI_MANIFEST, "");
    let inner = put(&sha256(&inner_bytes), &inner_bytes);
    put("outer", &index(&inner, OCI_INDEX, ""));
    assert_eq!(send(&reg, "DELETE", "/v2/ci/app/manifests/image", &[], b"").status, 202);
    clock.advance(1000);
    push_image(&reg, "ci/app", "t2", 20);
    push_image(&reg, "ci/app", "t3", 21);
    clock.advance(2 * DAY_MS);
    // The plan deletes the tag `outer`, then the two indexes, then the image.
    let planned = run_until(&reg, 6, |job| at(job, Stage::Apply { next: 1 })).unwrap();
    let sample = &planned.report.retention.as_ref().unwrap().sample;
    assert!(sample.contains(&format!("ci/app@{image}")) && sample.contains(&format!("ci/app@{inner}")), "{sample:?}");
    put("new", &index(&inner, OCI_INDEX, r#","annotations":{"n":"2"}"#));

    let report = run(&reg).report.retention.unwrap();
    assert_eq!(report.changed, 2, "the inner index's and the image's deletions did not land: {report:?}");
    assert_eq!(get(&reg, "/v2/ci/app/manifests/new"), 200);
    assert_eq!(get(&reg, &format!("/v2/ci/app/manifests/{inner}")), 200);
    assert_eq!(get(&reg, &format!("/v2/ci/app/manifests/{image}")), 200);
    assert_eq!(get(&reg, "/v2/ci/app/manifests/outer"), 404);
}

/// A retention step fails (R2 answers an error) after swapping a manifest's link for its
/// marker and before deleting the marker. The manifest is gone for readers, as decided;
/// the marker keeps nothing alive: the collector deletes the manifest's bytes past the
/// grace period, and removes the marker once no step can hold it.
#[test]
fn a_marker_a_failed_step_left_keeps_nothing_and_is_removed() {
    let (reg, clock) = world();
    let digests = three_old_tags(&reg, &clock);
    let link = link_key(&digests[0]);
    reg.blob_store().fail_times(Op::Delete, &link, 1);
    let failed = run_until(&reg, 40, Job::is_done).unwrap_err();
    assert!(failed.contains(&link), "{failed}");
    assert!(retiring::is_marker(&block_on(reg.blob_store().inner().head(&link)).unwrap().unwrap().metadata));
    assert_eq!(get(&reg, &format!("/v2/ci/app/manifests/{}", digests[0])), 404);

    // The next step reads the repository again (the failed step's progress was not saved):
    // the tag and the link are gone for it too, so there is nothing left to decide, and
    // nothing marks the manifest.
    let report = run(&reg).report;
    let retention = report.retention.as_ref().unwrap();
    assert_eq!((retention.tags_kept, retention.manifests_kept, retention.manifests_deleted), (2, 2, 0), "{report:?}");
    assert_eq!(report.condemned.items, 3, "the manifest, its config and its layer: {report:?}");
    clock.advance(GRACE + MAX_HOLD_MS + CLOCK_SKEW_MS + 1000);
    run(&reg);
    let manifest_bytes = keys::manifest(&digests[0].parse().unwrap());
    assert!(!exists(&reg, &manifest_bytes), "the manifest's bytes were collected");
    assert!(!exists(&reg, &link), "the stale marker was removed");
    assert_eq!(get(&reg, &format!("/v2/ci/app/manifests/{}", digests[1])), 200, "the kept images pull");
    assert_eq!(get(&reg, "/v2/ci/app/manifests/t3"), 200);
}

/// A `DELETE` by digest that fails midway (a storage error deleting its second tag): the
/// client's retry finds the manifest and finishes; no tag is left pointing at it.
#[test]
fn a_manifest_delete_that_fails_midway_finishes_on_retry() {
    let (reg, _clock) = world();
    let digest = push_image(&reg, "ci/app", "a", 1);
    push_image(&reg, "ci/app", "b", 1);
    let repo = RepositoryName::parse("ci/app").unwrap();
    let second = keys::tag(&repo, &Tag::parse("b").unwrap());
    reg.blob_store().fail_times(Op::Delete, &second, 1);
    let uri = format!("/v2/ci/app/manifests/{digest}");
    let failed = send(&reg, "DELETE", &uri, &[], b"");
    assert_eq!(failed.status, 503, "{:?}", String::from_utf8_lossy(&failed.body));
    assert_eq!(get(&reg, &uri), 200, "the manifest is still there to delete");

    assert_eq!(send(&reg, "DELETE", &uri, &[], b"").status, 202);
    assert_eq!(get(&reg, &uri), 404);
    assert_eq!(get(&reg, "/v2/ci/app/manifests/a"), 404);
    assert_eq!(get(&reg, "/v2/ci/app/manifests/b"), 404);
    let listed = send(&reg, "GET", "/v2/ci/app/tags/list", &[], b"").json();
    assert!(listed["tags"].as_array().is_none_or(|t| t.is_empty()), "{listed}");
}

fn put_index(reg: &Faulty, repo: &str, reference: &str, bytes: &[u8]) -> Answer {
    send(reg, "PUT", &format!("/v2/{repo}/manifests/{reference}"), &[("content-type", OCI_INDEX)], bytes)
}

fn index_over(child: &str, child_type: &str) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{child_type}","digest":"{child}","size":1}}]}}"#
    )
    .into_bytes()
}

/// An image whose `DELETE` failed at its link's marker, still named by a live index: the
/// collector marks it through the index (a marker is no root of its own), so none of its
/// bytes is condemned; an index pushed over that index is refused, naming the image (its
/// link is gone from the repository), rather than linking it again unchecked.
#[test]
fn an_image_whose_delete_failed_stays_alive_through_its_index() {
    let (reg, clock) = world();
    let image = push_image(&reg, "x/app", "gone", 5);
    let index = index_over(&image, OCI_MANIFEST);
    assert_eq!(put_index(&reg, "x/app", "multi", &index).status, 201);
    let link = link_key(&image).replace("ci/app", "x/app");
    reg.blob_store().fail_times(Op::Delete, &link, 1);
    assert_eq!(send(&reg, "DELETE", &format!("/v2/x/app/manifests/{image}"), &[], b"").status, 503);
    assert!(retiring::is_marker(&block_on(reg.blob_store().inner().head(&link)).unwrap().unwrap().metadata));

    clock.advance(GRACE + MAX_HOLD_MS + CLOCK_SKEW_MS + 1000);
    let first = run(&reg).report;
    assert_eq!(first.condemned.items, 0, "everything is reachable from the index: {first:?}");
    clock.advance(GRACE + 1000);
    let second = run(&reg).report;
    assert_eq!(second.deleted.items, 0, "{second:?}");
    let manifest = send(&reg, "GET", &format!("/v2/x/app/manifests/{}", sha256(&index)), &[], b"");
    assert_eq!(manifest.status, 200);
    let over = put_index(&reg, "x/app", "outer", &index_over(&sha256(&index), OCI_INDEX));
    over.assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert!(String::from_utf8_lossy(&over.body).contains(&image), "{:?}", String::from_utf8_lossy(&over.body));
}

/// A nested index's descriptor that claims the wrong media type for a manifest: the push
/// over it writes that manifest's link with the media type its own link names, so the
/// manifest is served as it was pushed.
#[test]
fn a_nested_descriptor_cannot_change_a_manifests_media_type() {
    let (reg, _clock) = world();
    let image = push_image(&reg, "x/app", "v1", 5);
    let lying = index_over(&image, OCI_INDEX);
    assert_eq!(put_index(&reg, "x/app", "lying", &lying).status, 201);
    assert_eq!(put_index(&reg, "x/app", "outer", &index_over(&sha256(&lying), OCI_INDEX)).status, 201);
    let got = send(&reg, "GET", &format!("/v2/x/app/manifests/{image}"), &[], b"");
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some(OCI_MANIFEST));
}
