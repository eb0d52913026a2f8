//! Retention policies as the first phase of a collector run, over the in-memory stores:
//! what they delete and keep, dry runs, and the races with pushes, each driven step by
//! step (a small budget makes the phase stop between any two storage calls). The protocol
//! these check is in `storage::retiring`.

mod common;

use common::*;
use edge_registry::lifecycle::gc::job::{Job, Phase};
use edge_registry::lifecycle::gc::{Collector, GcConfig};
use edge_registry::lifecycle::retention::work::Stage;
use edge_registry::lifecycle::retention::{Retainer, RetentionRules, DAY_MS};
use edge_registry::oci::{RepositoryName, Tag};
use edge_registry::registry::{Config, ImmutableRule, ImmutableTags};
use edge_registry::storage::retiring::{self, MAX_HOLD_MS};
use edge_registry::storage::{keys, BlobStore};
use futures::executor::block_on;

const GRACE: u64 = 3_600_000;

fn world(immutable: &str) -> (TestRegistry, ManualClock) {
    let rules: Vec<ImmutableRule> = serde_json::from_str(immutable).unwrap();
    registry_and_clock(Config { immutable_tags: ImmutableTags { rules }, ..Config::default() })
}

/// Steps a run (started at the clock's time if none is in progress) until `until` holds
/// for the job, with `calls` per step; returns that job.
fn run_until(reg: &TestRegistry, policy: &str, apply: bool, calls: u64, until: impl Fn(&Job) -> bool) -> Job {
    let rules = RetentionRules::parse(policy).unwrap();
    let immutable = |r: &RepositoryName, t: &Tag| reg.config().immutable_tags.rule_for(r, t).is_some();
    let retainer = Retainer { rules: &rules, apply, is_immutable: &immutable };
    let config = GcConfig { grace_ms: GRACE, calls_per_step: calls, interval_ms: 0 };
    let gc = Collector::new(reg.blob_store(), reg.meta_store(), config).with_retention(retainer);
    block_on(async {
        let now = reg.now_millis();
        gc.start(now, false).await.unwrap();
        for _ in 0..10_000 {
            let stepped = gc.step(now).await.unwrap();
            assert!(stepped.saved, "nothing else steps the job here");
            if until(&stepped.job) {
                return stepped.job;
            }
        }
        panic!("not reached in 10,000 steps");
    })
}

fn run(reg: &TestRegistry, policy: &str, apply: bool) -> Job {
    run_until(reg, policy, apply, 40, Job::is_done)
}

/// Whether the run's retention phase is at `stage` in `repo`.
fn at(job: &Job, repo: &str, stage: Stage) -> bool {
    let Phase::Retain(cursor) = &job.phase else { return false };
    cursor.work.as_ref().is_some_and(|w| w.repo == repo && w.stage == stage)
}

/// Whether the run is carrying out its deletions in `repo` and has done `done` of them.
fn applying(job: &Job, repo: &str, done: usize) -> bool {
    at(job, repo, Stage::Apply { next: done })
}

fn get(reg: &TestRegistry, uri: &str) -> u16 {
    send(reg, "GET", uri, &[], b"").status
}

fn tags(reg: &TestRegistry, repo: &str) -> Vec<String> {
    let listed = send(reg, "GET", &format!("/v2/{repo}/tags/list"), &[], b"").json();
    listed["tags"].as_array().map(|t| t.iter().map(|v| v.as_str().unwrap().to_owned()).collect()).unwrap_or_default()
}

/// Pushes `tags` to `repo` a second apart (the first is the oldest); their digests.
fn push_tags(reg: &TestRegistry, clock: &ManualClock, repo: &str, tags: &[&str], seed: u64) -> Vec<String> {
    tags.iter()
        .enumerate()
        .map(|(i, tag)| {
            clock.advance(1000);
            push_image(reg, repo, tag, seed + i as u64)
        })
        .collect()
}

const KEEP_2: &str = r#"[{"repositories": "ci/*", "keep_last": 2, "untagged_older_than_days": 1}]"#;

/// Four tags, keep the newest two: the older two go with their manifests (untagged and
/// over a day old), the repository no policy matches keeps everything, and the next two
/// collector runs free the deleted images' bytes while the kept ones still pull.
#[test]
fn a_policy_deletes_old_tags_and_their_manifests_and_the_collector_frees_their_bytes() {
    let (reg, clock) = world("[]");
    let digests = push_tags(&reg, &clock, "ci/app", &["t1", "t2", "t3", "t4"], 10);
    let other = push_tags(&reg, &clock, "prod/app", &["old"], 50);
    clock.advance(2 * DAY_MS);

    let job = run(&reg, KEEP_2, true);
    let report = job.report.retention.clone().unwrap();
    assert!(report.applied);
    assert_eq!((report.repositories, report.evaluated), (2, 1), "{report:?}");
    assert_eq!((report.tags_deleted, report.tags_kept), (2, 2), "{report:?}");
    assert_eq!((report.manifests_deleted, report.manifests_kept), (2, 2), "{report:?}");
    assert_eq!(report.changed, 0);
    assert!(report.sample.contains(&"ci/app:t1".to_owned()), "{:?}", report.sample);
    assert_eq!(tags(&reg, "ci/app"), ["t3", "t4"]);
    assert_eq!(get(&reg, &format!("/v2/ci/app/manifests/{}", digests[0])), 404);
    assert_eq!(get(&reg, &format!("/v2/ci/app/manifests/{}", digests[2])), 200);
    assert_eq!(get(&reg, "/v2/prod/app/manifests/old"), 200);
    assert_eq!(job.report.condemned.items, 6, "t1's and t2's manifests, configs and layers: {:?}", job.report);

    clock.advance(GRACE + MAX_HOLD_MS + 120_000);
    let second = run(&reg, KEEP_2, true);
    assert_eq!(second.report.deleted.items, 6, "{:?}", second.report);
    assert!(block_on(reg.blob_store().head(&keys::manifest(&digests[0].parse().unwrap()))).unwrap().is_none());
    for digest in [&digests[2], &digests[3], &other[0]] {
        assert!(block_on(reg.blob_store().head(&keys::manifest(&digest.parse().unwrap()))).unwrap().is_some());
    }
    assert_eq!(get(&reg, "/v2/ci/app/manifests/t4"), 200);
}

/// Dry: by the run (`?dry-run`) or by the mode (`RETENTION_MODE=dry-run`), the report
/// names what would go and nothing goes.
#[test]
fn a_dry_run_reports_what_would_be_deleted_and_deletes_nothing() {
    let (reg, clock) = world("[]");
    push_tags(&reg, &clock, "ci/app", &["t1", "t2", "t3"], 10);
    clock.advance(2 * DAY_MS);
    let job = run(&reg, KEEP_2, false);
    let report = job.report.retention.unwrap();
    assert!(!report.applied);
    assert_eq!((report.tags_deleted, report.manifests_deleted), (1, 1), "{report:?}");
    assert_eq!(report.sample[0], "ci/app:t1");
    assert_eq!(tags(&reg, "ci/app"), ["t1", "t2", "t3"]);
    assert_eq!(job.report.condemned.items, 0, "nothing became unreachable");
}

/// Immutable tags are never deleted, whatever the policy; their manifests stay with them.
#[test]
fn an_immutable_tag_is_never_deleted() {
    let (reg, clock) = world(r#"[{"repositories": "ci/*", "tags": ["v*"]}]"#);
    push_tags(&reg, &clock, "ci/app", &["v1", "t2", "t3", "t4"], 10);
    clock.advance(2 * DAY_MS);
    let report = run(&reg, KEEP_2, true).report.retention.unwrap();
    assert_eq!(report.tags_deleted, 1, "{report:?}");
    assert_eq!(tags(&reg, "ci/app"), ["t3", "t4", "v1"]);
}

/// A push moves a tag after retention read it (and before the plan and the deletion): the
/// deletion's swap is on the version it read, so it does not land and the moved tag stays.
#[test]
fn a_tag_moved_between_the_read_and_its_deletion_is_kept() {
    let (reg, clock) = world("[]");
    push_tags(&reg, &clock, "ci/app", &["t1", "t2", "t3"], 10);
    clock.advance(2 * DAY_MS);
    let read = run_until(&reg, KEEP_2, true, 6, |job| at(job, "ci/app", Stage::Indexes { next: 0 }));
    let Phase::Retain(cursor) = &read.phase else { unreachable!() };
    assert_eq!(cursor.work.as_ref().unwrap().tags.len(), 3, "every tag read, none decided yet");
    let moved = push_image(&reg, "ci/app", "t1", 99);

    let report = run(&reg, KEEP_2, true).report.retention.unwrap();
    assert_eq!(report.changed, 1, "the tag's deletion did not land: {report:?}");
    let got = send(&reg, "GET", "/v2/ci/app/manifests/t1", &[], b"");
    assert_eq!(got.status, 200);
    assert_eq!(got.header("docker-content-digest"), Some(moved.as_str()));
}

/// An untagged manifest pushed again (tagged) after the plan decided to delete it: the
/// push rewrote its link (a new `pushed-at`, a new etag), so the deletion does not land.
#[test]
fn a_manifest_pushed_again_between_the_plan_and_its_deletion_is_kept() {
    let (reg, clock) = world("[]");
    let digests = push_tags(&reg, &clock, "ci/app", &["t1", "t2", "t3"], 10);
    clock.advance(2 * DAY_MS);
    run_until(&reg, KEEP_2, true, 6, |job| applying(job, "ci/app", 1));
    assert_eq!(get(&reg, "/v2/ci/app/manifests/t1"), 404, "the tag went first");
    // The same image (seed 10) under a new tag: same manifest bytes, same digest.
    assert_eq!(push_image(&reg, "ci/app", "again", 10), digests[0]);

    let report = run(&reg, KEEP_2, true).report.retention.unwrap();
    assert_eq!(report.changed, 1, "{report:?}");
    assert_eq!(get(&reg, &format!("/v2/ci/app/manifests/{}", digests[0])), 200);
    assert_eq!(get(&reg, "/v2/ci/app/manifests/again"), 200);
}

/// An index pushed over an old child that the plan decided to delete (its old parent is
/// deleted too): the push writes the child's link again, so the child stays with it.
#[test]
fn an_index_pushed_over_a_child_being_deleted_keeps_the_child() {
    let (reg, clock) = world("[]");
    let child = push_image(&reg, "ci/app", "child-tag", 10);
    let index = |extra: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{child}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}}]{extra}}}"#
        )
        .into_bytes()
    };
    let put_index = |tag: &str, bytes: &[u8]| {
        let a = send(&reg, "PUT", &format!("/v2/ci/app/manifests/{tag}"), &[("content-type", OCI_INDEX)], bytes);
        assert_eq!(a.status, 201, "{:?}", String::from_utf8_lossy(&a.body));
    };
    put_index("old", &index(""));
    // The child's own tag goes, so only the old index holds it.
    assert_eq!(send(&reg, "DELETE", "/v2/ci/app/manifests/child-tag", &[], b"").status, 202);
    push_tags(&reg, &clock, "ci/app", &["t2", "t3"], 20);
    clock.advance(2 * DAY_MS);
    // Tags first (old), then the index, then its child: stop before the child's deletion.
    let held = run_until(&reg, KEEP_2, true, 6, |job| applying(job, "ci/app", 2));
    assert!(held.report.retention.as_ref().unwrap().sample.contains(&format!("ci/app@{child}")));
    put_index("new", &index(r#","annotations":{"n":"2"}"#));

    let report = run(&reg, KEEP_2, true).report.retention.unwrap();
    assert_eq!(report.changed, 1, "the child's deletion did not land: {report:?}");
    assert_eq!(get(&reg, &format!("/v2/ci/app/manifests/{child}")), 200);
    assert_eq!(get(&reg, "/v2/ci/app/manifests/new"), 200);
    assert_eq!(get(&reg, "/v2/ci/app/manifests/old"), 404);
}

/// While a retention step holds a tag's marker, a push of that tag waits and then gives
/// up with a retryable 503; once the marker is deleted it lands. A marker its step left
/// behind (a crash) is absent to readers and replaced by the next push once it is stale.
#[test]
fn a_push_yields_to_a_held_marker_and_replaces_a_stale_one() {
    let (reg, clock) = world("[]");
    push_image(&reg, "ci/app", "t", 1);
    let key = keys::tag(&RepositoryName::parse("ci/app").unwrap(), &Tag::parse("t").unwrap());
    let store = reg.blob_store();
    let etag = block_on(store.head(&key)).unwrap().unwrap().etag;
    assert!(block_on(retiring::retire(store, &key, &etag, reg.now_millis())).unwrap());
    assert_eq!(get(&reg, "/v2/ci/app/manifests/t"), 404, "a marker is absent to readers");
    assert!(tags(&reg, "ci/app").is_empty());
    assert_eq!(send(&reg, "DELETE", "/v2/ci/app/manifests/t", &[], b"").status, 404);

    let config = format!(r#"{{"seed":{}}}"#, 2).into_bytes();
    let layer = bytes(1002, 2);
    let (c, l) = (push_blob(&reg, "ci/app", &config), push_blob(&reg, "ci/app", &layer));
    let manifest = image_manifest((&c, config.len()), &[(&l, layer.len())], "");
    let put = || send(&reg, "PUT", "/v2/ci/app/manifests/t", &[("content-type", OCI_MANIFEST)], &manifest);
    let refused = put();
    assert_eq!(refused.status, 503, "{:?}", String::from_utf8_lossy(&refused.body));
    assert!(refused.header("retry-after").is_some());
    assert!(retiring::is_marker(&block_on(store.head(&key)).unwrap().unwrap().metadata), "the marker is untouched");

    // The step that held it crashed: once stale, the next push replaces it.
    clock.advance(MAX_HOLD_MS + 120_000);
    assert_eq!(put().status, 201);
    assert_eq!(tags(&reg, "ci/app"), ["t"]);
}
