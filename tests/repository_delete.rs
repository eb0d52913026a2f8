//! Repository delete as a job, over the in-memory stores: the request records it and does
//! a first step, the cron trigger steps it to the end, its status, repeated and racing
//! requests, immutable tags, and pushes that meet a deletion, each interleaving driven
//! step by step (a request held between two storage calls by the store, `FaultyBlobStore`,
//! and polled by hand, while another runs).
//! The protocol these check is in `registry::repository_delete::fence`.

mod common;

use common::*;
use edge_registry::api;
use edge_registry::oci::{RepositoryName, Tag};
use edge_registry::registry::{Config, DeletionsReport, StepBudget, PUSH_QUIET_MS, STEP_DEADLINE_MS};
use edge_registry::registry::{ImmutableRule, ImmutableTags};
use edge_registry::storage::faulty::{FaultyBlobStore, Op};
use edge_registry::storage::fields::TAG_DIGEST;
use edge_registry::storage::memory::MemoryBlobStore;
use edge_registry::storage::retiring;
use edge_registry::storage::{keys, BlobStore, Metadata};
use futures::executor::block_on;
use futures::future::LocalBoxFuture;
use std::future::Future;
use std::task::{Context, Poll};

/// A registry whose store holds chosen calls until the test releases them.
type PausedRegistry = AnyRegistry<FaultyBlobStore<MemoryBlobStore>>;

fn name(repo: &str) -> RepositoryName {
    RepositoryName::parse(repo).unwrap()
}

fn paused_registry() -> (PausedRegistry, ManualClock) {
    registry_over(
        FaultyBlobStore::new(MemoryBlobStore::new()),
        Config { part_size: 5 * MIB as u64, ..Config::default() },
    )
}

fn cron<B: TestStore>(reg: &AnyRegistry<B>, budget: StepBudget) -> DeletionsReport {
    block_on(reg.step_repository_deletions(budget)).unwrap()
}

/// `n` tags of `repo` pointing at `digest`, written straight into the bucket (a repository
/// far bigger than one step, without pushing each tag).
fn fill_tags<B: TestStore>(reg: &AnyRegistry<B>, repo: &str, n: usize, digest: &str) {
    block_on(async {
        for i in 0..n {
            let metadata = Metadata::from([TAG_DIGEST.entry(digest)]);
            let key = format!("repositories/{repo}/_tags/x{i:05}");
            reg.blob_store().put_bytes(&key, digest.as_bytes().to_vec(), metadata).await.unwrap();
        }
    });
}

fn keys_of<B: TestStore>(reg: &AnyRegistry<B>, prefix: &str) -> usize {
    block_on(edge_registry::storage::list_all(reg.blob_store(), prefix)).unwrap().len()
}

fn status<B: TestStore>(reg: &AnyRegistry<B>, repo: &str) -> serde_json::Value {
    let a = send(reg, "GET", &format!("/admin/repositories/{repo}"), &[], b"");
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    a.json()
}

/// A request started but not yet run: polled by hand, so that it stops where the store
/// holds it.
fn start<'a>(reg: &'a PausedRegistry, method: &str, uri: &str, body: Vec<u8>) -> LocalBoxFuture<'a, Answer> {
    let length = body.len() as u64;
    let body = edge_registry::registry::RequestBody::native(stream(Feed::Pieces(body, 64 * 1024)), Some(length), |s| s);
    let request = request(method, uri, &[("content-type", OCI_MANIFEST)], body);
    Box::pin(async move { answer(api::handle(reg, None, request).await) })
}

fn poll(request: &mut LocalBoxFuture<'_, Answer>) -> Option<Answer> {
    match request.as_mut().poll(&mut Context::from_waker(futures::task::noop_waker_ref())) {
        Poll::Ready(answer) => Some(answer),
        Poll::Pending => None,
    }
}

/// The manifest of a second image in `repo`, its blobs pushed: ready for a `PUT`.
fn second_image<B: TestStore>(reg: &AnyRegistry<B>, repo: &str) -> Vec<u8> {
    let layer = bytes(3000, 77);
    let l = push_blob(reg, repo, &layer);
    let c = push_blob(reg, repo, b"{\"v\":2}");
    image_manifest((&c, 7), &[(&l, layer.len())], "")
}

/// Image v1 in `app`, then a push of v2 started and held before its manifest link (it has
/// read no deletion record).
fn held_push(reg: &PausedRegistry) -> LocalBoxFuture<'_, Answer> {
    push_image(reg, "app", "v1", 1);
    let manifest = second_image(reg, "app");
    reg.blob_store().hold(Op::PutBytes, "repositories/app/_manifests/");
    let mut push = start(reg, "PUT", "/v2/app/manifests/v2", manifest);
    assert!(poll(&mut push).is_none(), "held before its manifest link");
    push
}

fn message(a: &Answer) -> String {
    a.json()["errors"][0]["message"].as_str().unwrap_or("").to_owned()
}

/// A repository bigger than one request's step: `202` with the status's `Location`; pushes
/// are refused while it runs; the cron trigger finishes it; the status follows; a few
/// minutes after it is done the repository can be pushed again.
#[test]
fn a_big_repository_is_deleted_as_a_job_the_cron_finishes() {
    let (reg, clock) = registry_and_clock(Config::default());
    let digest = push_image(&reg, "big", "v1", 1);
    let other = push_image(&reg, "other", "v1", 2);
    fill_tags(&reg, "big", 20_000, &digest);

    let first = send(&reg, "DELETE", "/admin/repositories/big", &[], b"");
    assert_eq!(first.status, 202, "{}", String::from_utf8_lossy(&first.body));
    assert_eq!(first.header("location"), Some("/admin/repositories/big"));
    let job = first.json();
    assert_eq!(job["state"], "deleting");
    let removed = job["keys_removed"].as_u64().unwrap();
    assert!(removed > 0 && removed < 20_000, "a first slice at once: {job}");
    assert!(job["calls"].as_u64().unwrap() <= 40, "within the step's budget: {job}");
    assert_eq!(status(&reg, "big"), job, "the status is the record");
    assert_eq!(send(&reg, "GET", "/v2/big/manifests/v1", &[], b"").status, 404, "tags go first");

    let refused = send(&reg, "POST", "/v2/big/blobs/uploads/", &[], b"");
    refused.assert_error(403, "DENIED");
    assert!(message(&refused).contains("is being deleted"), "{}", message(&refused));
    let unpushed = format!("sha256:{}", "ab".repeat(32));
    let manifest = image_manifest((&unpushed, 2), &[], "");
    send(&reg, "PUT", "/v2/big/manifests/v2", &[("content-type", OCI_MANIFEST)], &manifest).assert_error(403, "DENIED");

    let report = cron(&reg, StepBudget::calls(40));
    assert_eq!((report.stepped, report.finished, report.failed), (1, 1, 0), "{report:?}");
    assert!(report.calls <= 40, "{report:?}");
    let done = status(&reg, "big");
    assert_eq!(done["state"], "done");
    assert_eq!(done["keys_removed"].as_u64().unwrap(), 20_000 + 4 + 1, "tags, 1 manifest and 2 blob links, catalog");
    assert_eq!(done["started_at"], job["started_at"]);
    assert!(done["finished_at"].as_u64().is_some());
    assert_eq!(keys_of(&reg, "repositories/big/"), 0);
    assert_eq!(keys_of(&reg, "deletions/pending/"), 0, "the marker goes with it");
    assert_eq!(send(&reg, "GET", "/v2/_catalog", &[], b"").json()["repositories"], serde_json::json!(["other"]));
    assert_eq!(send(&reg, "GET", &format!("/v2/other/manifests/{other}"), &[], b"").status, 200);
    assert_eq!(cron(&reg, StepBudget::calls(40)), DeletionsReport { calls: 1, ..Default::default() }, "idle");
    send(&reg, "DELETE", "/admin/repositories/big", &[], b"").assert_error(404, "NAME_UNKNOWN");

    let soon = send(&reg, "POST", "/v2/big/blobs/uploads/", &[], b"");
    soon.assert_error(403, "DENIED");
    assert!(message(&soon).contains("deleted moments ago"), "{}", message(&soon));
    clock.advance(PUSH_QUIET_MS);
    let again = push_image(&reg, "big", "v1", 1);
    assert_eq!(again, digest, "pushed again once the quiet period is over");
}

/// A tag a retention step holds (its retiring marker, not yet deleted) is left to that
/// step: the deletion waits for it instead of deleting a key a later push could reuse.
#[test]
fn a_retiring_marker_a_retention_step_holds_is_left_to_it() {
    let reg = registry_with(Config::default());
    push_image(&reg, "held", "v1", 1);
    let key = keys::tag(&name("held"), &Tag::parse("v1").unwrap());
    let etag = block_on(reg.blob_store().head(&key)).unwrap().unwrap().etag;
    assert!(block_on(retiring::retire(reg.blob_store(), &key, &etag, reg.now_millis())).unwrap());

    assert_eq!(send(&reg, "DELETE", "/admin/repositories/held", &[], b"").status, 202);
    cron(&reg, StepBudget::calls(40));
    assert_eq!(status(&reg, "held")["state"], "deleting", "not done while the marker is held");
    assert_eq!(keys_of(&reg, "repositories/held/"), 1, "everything but the held marker went");
    assert!(block_on(reg.blob_store().head(&key)).unwrap().is_some());

    block_on(retiring::release(reg.blob_store(), &key)).unwrap();
    cron(&reg, StepBudget::calls(40));
    assert_eq!(status(&reg, "held")["state"], "done");
    assert_eq!(keys_of(&reg, "repositories/held/"), 0);
}

/// Small steps (a few calls, pages of two keys): the cron trigger takes the deletion to
/// the end over many invocations, each within its budget, oldest deletion first.
#[test]
fn the_cron_steps_every_pending_deletion_to_the_end_within_its_budget() {
    let (reg, _clock) = registry_and_clock(Config::default());
    for (repo, seed) in [("a", 1), ("b", 2)] {
        for tag in ["v1", "v2", "v3", "v4"] {
            push_image(&reg, repo, tag, seed);
        }
    }
    let small = StepBudget { calls: 6, page: 3 };
    for repo in ["a", "b"] {
        let started = block_on(reg.delete_repository(&name(repo), small)).unwrap();
        assert!(!started.is_done(), "{started:?}");
    }
    let mut runs = 0;
    while keys_of(&reg, "deletions/pending/") > 0 {
        let report = cron(&reg, StepBudget { calls: 7, page: 2 });
        assert!(report.calls <= 7, "{report:?}");
        runs += 1;
        assert!(runs < 50, "the deletions never finished");
    }
    assert!(runs >= 3, "over several invocations ({runs})");
    for repo in ["a", "b"] {
        assert_eq!(status(&reg, repo)["state"], "done");
        assert_eq!(keys_of(&reg, &format!("repositories/{repo}/")), 0);
    }
    assert!(send(&reg, "GET", "/v2/_catalog", &[], b"").json()["repositories"].as_array().unwrap().is_empty());
}

/// Repeating the request joins the deletion in progress; two requests racing to start it
/// (both read no record, then both create it) start one, and both report it.
#[test]
fn repeated_and_racing_deletes_join_one_deletion() {
    let (reg, _clock) = paused_registry();
    let digest = push_image(&reg, "app", "v1", 1);
    fill_tags(&reg, "app", 45_000, &digest);

    reg.blob_store().hold(Op::PutBytes, "deletions/repositories/app");
    let mut a = start(&reg, "DELETE", "/admin/repositories/app", Vec::new());
    let mut b = start(&reg, "DELETE", "/admin/repositories/app", Vec::new());
    assert!(poll(&mut a).is_none() && poll(&mut b).is_none());
    assert_eq!(reg.blob_store().waiting(), 2, "both read no record and went to create it");
    reg.blob_store().release();
    let (a, b) = (poll(&mut a).unwrap(), poll(&mut b).unwrap());
    assert_eq!((a.status, b.status), (202, 202), "{}", String::from_utf8_lossy(&b.body));
    assert_eq!(a.json()["started_at"], b.json()["started_at"], "one deletion");
    assert_eq!(keys_of(&reg, "deletions/pending/"), 1, "one marker");
    let joined = send(&reg, "DELETE", "/admin/repositories/app", &[], b"");
    assert_eq!(joined.status, 200, "the third request finishes it");
    let done = joined.json();
    assert_eq!((done["started_at"].clone(), done["steps"].as_u64()), (a.json()["started_at"].clone(), Some(3)));
    assert_eq!(keys_of(&reg, "repositories/app/"), 0);
    assert_eq!(keys_of(&reg, "deletions/pending/"), 0);
}

/// Two steps at once (the cron trigger and a request): the one whose save lost re-reads the
/// record and adds its work to it, so no step's count is lost and the state stays right.
#[test]
fn a_step_whose_save_lost_adds_its_work_to_the_other_steps() {
    let (reg, _clock) = paused_registry();
    let digest = push_image(&reg, "app", "v1", 1);
    fill_tags(&reg, "app", 30, &digest);
    let small = StepBudget { calls: 6, page: 5 };
    block_on(reg.delete_repository(&name("app"), small)).unwrap();
    let before = status(&reg, "app")["keys_removed"].as_u64().unwrap();

    reg.blob_store().hold(Op::PutBytes, "deletions/repositories/app");
    let mut cron_step = Box::pin(reg.step_repository_deletions(StepBudget { calls: 10, page: 5 }));
    assert!(cron_step.as_mut().poll(&mut Context::from_waker(futures::task::noop_waker_ref())).is_pending());
    reg.blob_store().release();
    let by_request = block_on(reg.delete_repository(&name("app"), small)).unwrap();
    let report = block_on(cron_step).unwrap();
    let record = status(&reg, "app");
    assert_eq!(record["steps"].as_u64(), Some(by_request.steps + 1), "both steps counted: {record}");
    assert_eq!(record["keys_removed"].as_u64(), Some(by_request.keys_removed + report.keys_removed));
    assert!(record["keys_removed"].as_u64().unwrap() > before);
    assert_eq!(record["state"], "deleting");
}

/// A step makes no delete later than `STEP_DEADLINE_MS` after it began, whatever its
/// budget left (what the fence's quiet period relies on).
#[test]
fn a_step_stops_deleting_at_its_deadline() {
    let (reg, clock) = paused_registry();
    let digest = push_image(&reg, "app", "v1", 1);
    fill_tags(&reg, "app", 100, &digest);
    let step_clock = clock.clone();
    reg.blob_store().before(Op::List, move || step_clock.advance(STEP_DEADLINE_MS * 2 / 5));
    let deletion = block_on(reg.delete_repository(&name("app"), StepBudget { calls: 40, page: 10 })).unwrap();
    assert_eq!(deletion.keys_removed, 20, "two pages listed in time, the third too late: {deletion:?}");
    assert!(!deletion.is_done());
}

/// The race a fence exists for: a manifest push writes, then the whole repository is
/// deleted (its writes with it), then the push reads the record again: it is refused, not
/// accepted with its image gone.
#[test]
fn a_push_whose_writes_a_deletion_removed_is_refused_not_lost() {
    let (reg, _clock) = paused_registry();
    let mut push = held_push(&reg);
    reg.blob_store().release();
    reg.blob_store().hold(Op::Head, "deletions/repositories/app");
    assert!(poll(&mut push).is_none(), "held after its last write, before it reads the record again");
    assert_eq!(send(&reg, "GET", "/v2/app/manifests/v2", &[], b"").status, 200, "written");

    assert_eq!(send(&reg, "DELETE", "/admin/repositories/app", &[], b"").status, 200);
    assert_eq!(send(&reg, "GET", "/v2/app/manifests/v2", &[], b"").status, 404, "deleted with the repository");
    reg.blob_store().release();
    let refused = poll(&mut push).unwrap();
    refused.assert_error(403, "DENIED");
    assert!(message(&refused).contains("began to be deleted while this push was in progress"), "{}", message(&refused));
    assert_eq!(keys_of(&reg, "repositories/app/"), 0);
}

/// The other order: the deletion runs to the end while a push waits before its writes;
/// the push then writes (what it wrote stays) but is refused all the same, as it cannot
/// know whether a step still deletes. Once the quiet period is over, the same push works.
#[test]
fn a_push_that_straddles_a_deletion_is_refused_and_a_later_one_accepted() {
    let (reg, clock) = paused_registry();
    let mut push = held_push(&reg);
    reg.blob_store().release();
    // The deletion's own links are not held: only the push's put is waiting.
    assert_eq!(send(&reg, "DELETE", "/admin/repositories/app", &[], b"").status, 200);
    poll(&mut push).unwrap().assert_error(403, "DENIED");
    assert_eq!(status(&reg, "app")["state"], "done");

    clock.advance(PUSH_QUIET_MS);
    let again = second_image(&reg, "app");
    let put = send(&reg, "PUT", "/v2/app/manifests/v2", &[("content-type", OCI_MANIFEST)], &again);
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(send(&reg, "GET", "/v2/app/manifests/v2", &[], b"").status, 200);
    assert_eq!(status(&reg, "app")["state"], "done", "the last deletion's record stays");
}

/// A repository holding an immutable tag is refused as before: no deletion is recorded,
/// and pushes go on.
#[test]
fn a_repository_with_an_immutable_tag_is_refused_and_nothing_is_recorded() {
    let rule: ImmutableRule = serde_json::from_str(r#"{"repositories": "release/*", "tags": ["v*"]}"#).unwrap();
    let config = Config { immutable_tags: ImmutableTags { rules: vec![rule] }, ..Config::default() };
    let (reg, _clock) = registry_and_clock(config);
    push_image(&reg, "release/app", "v1", 1);
    let refused = send(&reg, "DELETE", "/admin/repositories/release/app", &[], b"");
    refused.assert_error(403, "DENIED");
    assert!(message(&refused).contains("immutable"), "{}", message(&refused));
    assert_eq!(status(&reg, "release/app")["state"], "never-deleted");
    assert_eq!(keys_of(&reg, "deletions/"), 0);
    push_image(&reg, "release/app", "latest", 2);
}

/// The status endpoint: `404 NAME_UNKNOWN` with neither repository nor deletion, `400` for
/// a bad name, admins only; with repository deletes off (replicas) the routes answer 404
/// and pushes read no record.
#[test]
fn the_status_answers_for_known_names_and_the_routes_are_off_with_replicas() {
    let reg = registry();
    send(&reg, "GET", "/admin/repositories/nothing", &[], b"").assert_error(404, "NAME_UNKNOWN");
    send(&reg, "DELETE", "/admin/repositories/nothing", &[], b"").assert_error(404, "NAME_UNKNOWN");
    send(&reg, "GET", "/admin/repositories/Bad%20Name", &[], b"").assert_error(400, "NAME_INVALID");

    let off = registry_with(Config { repository_deletes: false, ..Config::default() });
    push_image(&off, "app", "v1", 1);
    send(&off, "DELETE", "/admin/repositories/app", &[], b"").assert_error(404, "UNSUPPORTED");
    send(&off, "GET", "/admin/repositories/app", &[], b"").assert_error(404, "UNSUPPORTED");
    assert_eq!(off.blob_store().keys().iter().filter(|k| k.starts_with("deletions/")).count(), 0);
}
