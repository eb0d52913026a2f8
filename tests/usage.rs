//! The storage usage count over the in-memory stores: what it counts per repository and
//! in total (shared content once in each repository and once in all), indexes and their
//! children, referrers, a repository counted over many steps, each step within its
//! budget, racing and late steps, and the admin endpoints.

mod common;

use common::*;
use edge_registry::api;
use edge_registry::lifecycle::meter::Meter;
use edge_registry::lifecycle::usage::job::{self, Job, Phase, RepositoryUsage, Stage};
use edge_registry::lifecycle::usage::report::Report;
use edge_registry::lifecycle::usage::{UsageConfig, UsageCounter};
use edge_registry::oci::RepositoryName;
use edge_registry::registry::RequestBody;
use edge_registry::storage::{keys, BlobStore, MetaStore};
use futures::executor::block_on;
use serde_json::json;

fn config(calls_per_step: u64) -> UsageConfig {
    UsageConfig { calls_per_step, interval_ms: 0 }
}

fn counter(reg: &TestRegistry, calls: u64) -> UsageCounter<'_, impl BlobStore + '_, impl MetaStore + '_> {
    UsageCounter::new(reg.blob_store(), reg.meta_store(), config(calls))
}

/// Runs a whole count at the clock's time in steps of `calls`; the report and the calls
/// each step made.
fn count(reg: &TestRegistry, calls: u64) -> (Report, Vec<u64>) {
    let counter = counter(reg, calls);
    block_on(async {
        let now = reg.now_millis();
        counter.start(now).await.unwrap();
        let mut per_step = Vec::new();
        let mut spent = 0;
        for _ in 0..10_000 {
            let stepped = counter.step(now).await.unwrap();
            assert!(stepped.saved, "nothing else steps the job here");
            per_step.push(stepped.job.calls - spent);
            spent = stepped.job.calls;
            if stepped.job.is_done() {
                assert_eq!(stepped.job.incomplete, None);
                return (counter.report().await.unwrap().expect("a finished run publishes"), per_step);
            }
        }
        panic!("the run did not finish in 10,000 steps");
    })
}

/// The last report's entry for `repo`.
fn usage_of(reg: &TestRegistry, repo: &str) -> RepositoryUsage {
    let counter = counter(reg, 900);
    block_on(async {
        let report = counter.report().await.unwrap().unwrap();
        let name = RepositoryName::parse(repo).unwrap();
        counter.repository(&report, &name).await.unwrap().unwrap_or_else(|| panic!("{repo} has no entry")).usage
    })
}

fn put_manifest(reg: &TestRegistry, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> String {
    let a = send(reg, "PUT", &format!("/v2/{repo}/manifests/{reference}"), &[("content-type", media_type)], body);
    assert_eq!(a.status, 201, "{:?}", String::from_utf8_lossy(&a.body));
    a.header("docker-content-digest").unwrap().to_owned()
}

fn len(bytes: &[u8]) -> u64 {
    bytes.len() as u64
}

/// Two repositories share a layer and a config; one repository's two images share them
/// too. Each counts them once; the total counts them once in all.
#[test]
fn shared_blobs_count_once_per_repository_and_once_in_the_total() {
    let reg = registry();
    let (shared, only_a, only_b) = (bytes(3000, 1), bytes(1000, 2), bytes(1500, 3));
    let s = push_blob(&reg, "team/a", &shared);
    let c = push_blob(&reg, "team/a", b"{}");
    let a_own = push_blob(&reg, "team/a", &only_a);
    let a1 = image_manifest((&c, 2), &[(&s, shared.len()), (&a_own, only_a.len())], "");
    let a2 = image_manifest((&c, 2), &[(&s, shared.len())], "");
    put_manifest(&reg, "team/a", "v1", OCI_MANIFEST, &a1);
    put_manifest(&reg, "team/a", "v2", OCI_MANIFEST, &a2);
    put_manifest(&reg, "team/a", "latest", OCI_MANIFEST, &a2);
    push_blob(&reg, "team/b", &shared);
    push_blob(&reg, "team/b", b"{}");
    let b_own = push_blob(&reg, "team/b", &only_b);
    let b1 = image_manifest((&c, 2), &[(&s, shared.len()), (&b_own, only_b.len())], "");
    put_manifest(&reg, "team/b", "v1", OCI_MANIFEST, &b1);

    let (report, _) = count(&reg, 900);
    let a = usage_of(&reg, "team/a");
    let a_blobs = 2 + len(&shared) + len(&only_a);
    let a_manifests = len(&a1) + len(&a2);
    let expected_a = RepositoryUsage {
        bytes: a_blobs + a_manifests,
        manifest_bytes: a_manifests,
        blob_bytes: a_blobs,
        tags: 3,
        manifests: 2,
        blobs: 3,
        unreadable: 0,
    };
    assert_eq!(a, expected_a);
    let b = usage_of(&reg, "team/b");
    let b_blobs = 2 + len(&shared) + len(&only_b);
    let expected_b = RepositoryUsage {
        bytes: b_blobs + len(&b1),
        manifest_bytes: len(&b1),
        blob_bytes: b_blobs,
        tags: 1,
        manifests: 1,
        blobs: 3,
        unreadable: 0,
    };
    assert_eq!(b, expected_b);
    let t = report.totals;
    assert_eq!((t.repositories, t.tags, t.manifests, t.blobs), (2, 4, 3, 4));
    assert_eq!(t.blob_bytes, 2 + len(&shared) + len(&only_a) + len(&only_b), "the shared layer and config once");
    assert_eq!(t.manifest_bytes, len(&a1) + len(&a2) + len(&b1));
    assert_eq!(t.bytes, t.blob_bytes + t.manifest_bytes);
    assert_eq!(t.repository_bytes, a.bytes + b.bytes, "each repository counts what it shares");
    assert!(b.bytes > a.bytes, "b's own layer is the larger");
    let largest: Vec<(&str, u64)> = report.largest.iter().map(|l| (l.repository.as_str(), l.bytes)).collect();
    assert_eq!(largest, [("team/b", b.bytes), ("team/a", a.bytes)], "largest first");
}

/// An index counts itself and its children (each child's own link is visited once, not
/// twice); a child without a link of its own in the repository is read through the index.
#[test]
fn an_index_counts_its_children_once_even_those_without_a_link() {
    let reg = registry();
    let mut children = Vec::new();
    let mut blob_bytes = 0;
    for seed in [11, 12] {
        let config = format!(r#"{{"arch":{seed}}}"#).into_bytes();
        let layer = bytes(700 + seed as usize, seed);
        let c = push_blob(&reg, "multi", &config);
        let l = push_blob(&reg, "multi", &layer);
        let m = image_manifest((&c, config.len()), &[(&l, layer.len())], "");
        let d = put_manifest(&reg, "multi", &sha256(&m), OCI_MANIFEST, &m);
        blob_bytes += len(&config) + len(&layer);
        children.push((d, m));
    }
    let descriptors: Vec<String> = children
        .iter()
        .map(|(d, m)| format!(r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":{}}}"#, m.len()))
        .collect();
    let index = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#, descriptors.join(","))
        .into_bytes();
    put_manifest(&reg, "multi", "v1", OCI_INDEX, &index);
    // The second child loses its own link (as an older release could leave it): only the
    // index reaches it now.
    let repo = RepositoryName::parse("multi").unwrap();
    let unlinked = keys::repository_manifest(&repo, &children[1].0.parse().unwrap());
    block_on(reg.blob_store().delete(&unlinked)).unwrap();

    let (report, _) = count(&reg, 900);
    let manifest_bytes = len(&index) + len(&children[0].1) + len(&children[1].1);
    let expected = RepositoryUsage {
        bytes: manifest_bytes + blob_bytes,
        manifest_bytes,
        blob_bytes,
        tags: 1,
        manifests: 3,
        blobs: 4,
        unreadable: 0,
    };
    assert_eq!(usage_of(&reg, "multi"), expected);
    assert_eq!(report.totals.bytes, manifest_bytes + blob_bytes);
}

/// A referrer (a signature pushed with a `subject`) is the repository's content too.
#[test]
fn a_referrer_counts_with_its_blobs() {
    let reg = registry();
    let subject = push_image(&reg, "app", "v1", 21);
    let before = {
        count(&reg, 900);
        usage_of(&reg, "app")
    };
    let config = push_blob(&reg, "app", b"{}");
    let signature = bytes(120, 22);
    let sig = push_blob(&reg, "app", &signature);
    let extra = format!(r#","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":1}}"#);
    let referrer = image_manifest((&config, 2), &[(&sig, signature.len())], &extra);
    put_manifest(&reg, "app", &sha256(&referrer), OCI_MANIFEST, &referrer);

    count(&reg, 900);
    let after = usage_of(&reg, "app");
    assert_eq!(after.manifests, before.manifests + 1);
    assert_eq!(after.blobs, before.blobs + 2);
    assert_eq!(after.bytes, before.bytes + len(&referrer) + 2 + len(&signature));
    assert_eq!(after.tags, 1, "the referrer is untagged");
}

/// A repository of 30 images counted with 10 calls a step takes many steps, resumes
/// within the repository, counts the same as one big step, and no step exceeds 10 calls.
#[test]
fn a_repository_larger_than_a_step_is_counted_over_many_within_the_budget() {
    let reg = registry();
    for seed in 1..=30 {
        push_image(&reg, "big", &format!("v{seed}"), seed);
    }
    push_image(&reg, "small", "v1", 1);
    let (whole, _) = count(&reg, 900);
    let big = usage_of(&reg, "big");
    assert_eq!((big.manifests, big.blobs, big.tags), (30, 60, 30));

    let counter = counter(&reg, 10);
    let mut resumed_within = false;
    let mut per_step = Vec::new();
    block_on(async {
        let now = reg.now_millis() + 1;
        counter.start(now).await.unwrap();
        let mut spent = 0;
        loop {
            let job = counter.step(now).await.unwrap().job;
            per_step.push(job.calls - spent);
            spent = job.calls;
            let in_big = |j: &Job| matches!(&j.phase, Phase::Count { repo: Some(r), stage: Stage::Manifests { after: Some(_) } } if r == "big");
            resumed_within |= in_big(&job);
            if job.is_done() {
                break;
            }
        }
    });
    let small_steps = per_step.len();
    assert!(resumed_within, "a step ended inside the repository");
    assert!(small_steps > 5, "{small_steps} steps");
    assert!(per_step.iter().all(|&calls| calls <= 10), "a step made more than its budget: {per_step:?}");
    let report = block_on(counter.report()).unwrap().unwrap();
    assert_eq!(report.totals, whole.totals, "the same numbers whatever the budget");
    assert_eq!(usage_of(&reg, "big"), big);
}

/// Two steps of one run racing (the cron trigger and the admin endpoint): the one that
/// read the job before the other saved cannot save over it.
#[test]
fn a_step_that_read_an_older_job_cannot_save_over_a_newer_one() {
    let reg = registry();
    push_image(&reg, "a", "v1", 5);
    let counter = counter(&reg, 10);
    block_on(async {
        let now = reg.now_millis();
        counter.start(now).await.unwrap();
        let meter = Meter::new(reg.blob_store(), reg.meta_store(), 10);
        let stale = job::load(&meter).await.unwrap();
        assert!(counter.step(now).await.unwrap().saved, "the other step saves first");
        let ((job, seen), etag) = (stale.job.unwrap(), stale.etag);
        assert!(!job::save(&meter, &job, &seen, etag.as_deref()).await.unwrap(), "the stale one is refused");
        assert_ne!(counter.status().await.unwrap().unwrap(), job, "the newer job stands");
    });
}

/// A step of a finished run that runs late (it read the job before its run ended, and a
/// newer run has published since) neither puts its report over the newer one nor removes
/// the newer run's entries.
#[test]
fn a_late_step_of_an_older_run_cannot_replace_the_newer_report() {
    let (reg, clock) = registry_and_clock(Default::default());
    push_image(&reg, "a", "v1", 6);
    let counter = counter(&reg, 900);
    let step_until = |until: &dyn Fn(&Phase) -> bool| {
        block_on(async {
            loop {
                let job = counter.step(reg.now_millis()).await.unwrap().job;
                if until(&job.phase) {
                    return job;
                }
            }
        })
    };
    block_on(counter.start(reg.now_millis())).unwrap();
    step_until(&|p| matches!(p, Phase::Publish));
    let late = block_on(reg.blob_store().get_bytes(&keys::usage_job())).unwrap().unwrap().1;
    step_until(&|p| matches!(p, Phase::Done { .. }));
    clock.advance(1000);
    push_image(&reg, "b", "v1", 7);
    let (newer, _) = count(&reg, 900);
    assert_eq!(newer.totals.repositories, 2);
    // The late step: it read the job at its Publish, and runs now.
    block_on(reg.blob_store().put_bytes(&keys::usage_job(), late, Default::default())).unwrap();
    step_until(&|p| matches!(p, Phase::Done { .. }));
    let report = block_on(counter.report()).unwrap().unwrap();
    assert_eq!(report, newer, "the newer report stands");
    assert_eq!(usage_of(&reg, "b").manifests, 1, "and its entries");
}

fn admin(reg: &TestRegistry, method: &str, uri: &str) -> Answer {
    let body = RequestBody::native(stream(Feed::Pieces(Vec::new(), 1)), Some(0), |s| s);
    let request = request(method, uri, &[], body);
    answer(block_on(api::handle_collected(reg, None, None, None, Some(config(900)), request)))
}

/// The endpoints: nothing before a run; the report with a page of repositories and a
/// `Link` to the next; one repository; what was pushed after a run shows after the next
/// one, whose entries replace the older run's.
#[test]
fn the_endpoints_answer_the_last_report_in_pages() {
    let (reg, clock) = registry_and_clock(Default::default());
    assert_eq!(admin(&reg, "GET", "/admin/usage").json()["computed_at"], json!(null));
    admin(&reg, "GET", "/admin/usage/a").assert_error(404, "NAME_UNKNOWN");
    for repo in ["a", "b", "c/d"] {
        push_image(&reg, repo, "v1", 9);
    }
    let mut job = admin(&reg, "POST", "/admin/usage").json();
    while job["phase"]["phase"] != "done" {
        job = admin(&reg, "POST", "/admin/usage").json();
    }
    let first = admin(&reg, "GET", "/admin/usage?n=2");
    assert_eq!(first.status, 200);
    let body = first.json();
    assert_eq!(body["totals"]["repositories"], 3);
    assert_eq!(body["totals"]["blobs"], 2, "one image pushed three times");
    let names: Vec<&str> =
        body["repositories"].as_array().unwrap().iter().map(|r| r["repository"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(first.header("link"), Some("</admin/usage?n=2&last=b>; rel=\"next\""));
    let rest = admin(&reg, "GET", "/admin/usage?n=2&last=b");
    assert_eq!(rest.json()["repositories"][0]["repository"], "c/d");
    assert_eq!(rest.header("link"), None);
    let one = admin(&reg, "GET", "/admin/usage/c/d").json();
    assert_eq!((one["repository"].clone(), one["manifests"].clone()), (json!("c/d"), json!(1)));
    assert_eq!(one["bytes"], body["repositories"][0]["bytes"]);
    admin(&reg, "GET", "/admin/usage/Bad%20Name").assert_error(400, "NAME_INVALID");
    admin(&reg, "GET", "/admin/usage?last=Bad%20Name").assert_error(400, "NAME_INVALID");
    admin(&reg, "GET", "/admin/usage?n=1001").assert_error(400, "UNSUPPORTED");

    clock.advance(1000);
    push_image(&reg, "e", "v1", 10);
    admin(&reg, "GET", "/admin/usage/e").assert_error(404, "NAME_UNKNOWN");
    count(&reg, 900);
    assert_eq!(admin(&reg, "GET", "/admin/usage/e").json()["blobs"], 2);
    let report = block_on(counter(&reg, 900).report()).unwrap().unwrap();
    let runs: Vec<String> =
        reg.blob_store().keys().into_iter().filter(|k| k.starts_with(keys::USAGE_RUNS_PREFIX)).collect();
    assert_eq!(runs.len(), 4, "{runs:?}");
    assert!(
        runs.iter().all(|k| keys::usage_run_of(k) == Some(report.run)),
        "only the last run's entries stay: {runs:?}"
    );
}

/// The cron trigger's tick starts a run when none ran or the interval has passed since
/// the last ended, steps the one in progress, and does nothing in between.
#[test]
fn the_tick_starts_a_run_when_due_and_steps_it() {
    let (reg, clock) = registry_and_clock(Default::default());
    push_image(&reg, "a", "v1", 3);
    let counter =
        UsageCounter::new(reg.blob_store(), reg.meta_store(), UsageConfig { calls_per_step: 10, interval_ms: 60_000 });
    block_on(async {
        let first = counter.tick(reg.now_millis()).await.unwrap().unwrap().job;
        let mut job = first.clone();
        while !job.is_done() {
            job = counter.tick(reg.now_millis()).await.unwrap().unwrap().job;
            assert_eq!(job.run, first.run, "one run at a time");
        }
        assert_eq!(counter.tick(reg.now_millis()).await.unwrap(), None, "not due yet");
        clock.advance(60_000);
        let next = counter.tick(reg.now_millis()).await.unwrap().unwrap().job;
        assert!(next.run > first.run, "due again an interval later");
    });
}
