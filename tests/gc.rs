//! The garbage collector over the in-memory stores: what it deletes and keeps, its report,
//! dry runs, and the races with pushes, each driven step by step (a step is one
//! invocation's work; a small budget makes a run take many). The protocol these check is
//! in `storage::content_state`.

mod common;

use common::*;
use edge_registry::lifecycle::gc::job::{self, Job, Phase};
use edge_registry::lifecycle::gc::meter::Meter;
use edge_registry::lifecycle::gc::sweep::{CLOCK_SKEW_MS, MAX_STEP_MS};
use edge_registry::lifecycle::gc::{Collector, GcConfig};
use edge_registry::storage::BlobStore;
use futures::executor::block_on;

const GRACE: u64 = 3_600_000;

fn config(calls_per_step: u64) -> GcConfig {
    GcConfig { grace_ms: GRACE, calls_per_step, interval_ms: 0 }
}

fn collector(
    reg: &TestRegistry,
    calls: u64,
) -> Collector<'_, impl BlobStore + '_, impl edge_registry::storage::MetaStore + '_> {
    Collector::new(reg.blob_store(), reg.meta_store(), config(calls))
}

/// Runs a whole collection at the clock's time, in steps of `calls` storage calls.
fn collect(reg: &TestRegistry, dry_run: bool, calls: u64) -> Job {
    let gc = collector(reg, calls);
    block_on(async {
        let now = reg.now_millis();
        gc.start(now, dry_run).await.unwrap();
        for _ in 0..10_000 {
            let stepped = gc.step(now).await.unwrap();
            assert!(stepped.saved, "nothing else steps the job here");
            if stepped.job.is_done() {
                return stepped.job;
            }
        }
        panic!("the run did not finish in 10,000 steps");
    })
}

/// Steps the run in progress until `until` holds for its phase.
fn step_until(reg: &TestRegistry, calls: u64, until: impl Fn(&Phase) -> bool) -> Job {
    let gc = collector(reg, calls);
    block_on(async {
        for _ in 0..10_000 {
            let job = gc.step(reg.now_millis()).await.unwrap().job;
            if until(&job.phase) {
                return job;
            }
        }
        panic!("the phase was never reached");
    })
}

fn past_grace(clock: &ManualClock) {
    clock.advance(GRACE + MAX_STEP_MS + CLOCK_SKEW_MS + 1);
}

fn status(reg: &TestRegistry, uri: &str) -> u16 {
    send(reg, "GET", uri, &[], b"").status
}

fn gc_keys(reg: &TestRegistry) -> Vec<String> {
    reg.blob_store()
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("gc/") && k != "gc/job" && !k.starts_with("gc/reports/"))
        .collect()
}

/// Two images share a layer; one is deleted. The first run condemns what only it held,
/// the second, a grace period later, deletes it with its links; the other image and the
/// shared layer stay, and every run cleans its marks up.
#[test]
fn unreachable_content_is_condemned_then_deleted_a_grace_period_later_and_the_rest_still_pulls() {
    let (reg, clock) = registry_and_clock(Default::default());
    let shared = bytes(3000, 1);
    let (only_b, config) = (bytes(5000, 2), b"{}".to_vec());
    let s = push_blob(&reg, "team/a", &shared);
    let c = push_blob(&reg, "team/a", &config);
    let a = image_manifest((&c, 2), &[(&s, shared.len())], "");
    assert_eq!(send(&reg, "PUT", "/v2/team/a/manifests/v1", &[("content-type", OCI_MANIFEST)], &a).status, 201);
    push_blob(&reg, "team/b", &shared);
    push_blob(&reg, "team/b", &config);
    let b_layer = push_blob(&reg, "team/b", &only_b);
    let b = image_manifest((&c, 2), &[(&s, shared.len()), (&b_layer, only_b.len())], "");
    let put = send(&reg, "PUT", "/v2/team/b/manifests/v1", &[("content-type", OCI_MANIFEST)], &b);
    let b_digest = put.header("docker-content-digest").unwrap().to_owned();
    assert_eq!(send(&reg, "DELETE", &format!("/v2/team/b/manifests/{b_digest}"), &[], b"").status, 202);

    let first = collect(&reg, false, 15);
    assert_eq!(first.report.repositories, 2);
    assert_eq!(first.report.unreachable.items, 2, "b's own layer and b's manifest bytes: {:?}", first.report);
    assert_eq!(first.report.condemned.items, 2);
    assert_eq!(first.report.deleted.items, 0, "nothing is deleted by the run that condemns");
    assert!(first.report.steps > 3, "a 15-call budget takes several steps: {}", first.report.steps);
    assert_eq!(status(&reg, &format!("/v2/team/b/blobs/{b_layer}")), 200, "kept for the grace period");
    assert!(gc_keys(&reg).iter().all(|k| k.starts_with("gc/state/")), "only states outlive a run: {:?}", gc_keys(&reg));

    past_grace(&clock);
    let second = collect(&reg, false, 40);
    assert_eq!(second.report.deleted.items, 2, "{:?}", second.report);
    assert_eq!(second.report.deleted.bytes, (only_b.len() + b.len()) as u64);
    assert_eq!(second.report.links_removed, 1, "team/b's link to its own layer");
    assert_eq!(status(&reg, &format!("/v2/team/b/blobs/{b_layer}")), 404);
    assert!(!reg.blob_store().keys().iter().any(|k| k.ends_with(&b_layer[7..])), "no key names the deleted layer");
    assert!(gc_keys(&reg).is_empty(), "states of deleted content are forgotten: {:?}", gc_keys(&reg));
    // What stays pulls, byte for byte.
    assert_eq!(send(&reg, "GET", "/v2/team/a/manifests/v1", &[], b"").body, a);
    assert_eq!(send(&reg, "GET", &format!("/v2/team/a/blobs/{s}"), &[], b"").body, shared);
    assert_eq!(
        send(&reg, "GET", &format!("/v2/team/b/blobs/{s}"), &[], b"").body,
        shared,
        "b's link to a live blob stays"
    );
    // And the deleted layer can be pushed again.
    assert_eq!(push_blob(&reg, "team/b", &only_b), b_layer);
    assert_eq!(status(&reg, &format!("/v2/team/b/blobs/{b_layer}")), 200);
}

/// A dry run reports what the real runs would do, and changes nothing.
#[test]
fn a_dry_run_reports_and_changes_nothing() {
    let (reg, clock) = registry_and_clock(Default::default());
    let layer = push_blob(&reg, "a", &bytes(4000, 3));
    let before = reg.blob_store().keys();
    let dry = collect(&reg, true, 900);
    assert_eq!(dry.report.unreachable, dry.report.condemned);
    assert_eq!(dry.report.unreachable.items, 1);
    assert_eq!(dry.report.unreachable.bytes, 4000);
    let after: Vec<String> = reg.blob_store().keys().into_iter().filter(|k| !k.starts_with("gc/")).collect();
    assert_eq!(after, before, "no content, link or state changed");
    assert!(gc_keys(&reg).is_empty());
    collect(&reg, false, 900); // condemns
    past_grace(&clock);
    let dry = collect(&reg, true, 900);
    assert_eq!(dry.report.deleted.items, 1, "would delete now: {:?}", dry.report);
    assert_eq!(status(&reg, &format!("/v2/a/blobs/{layer}")), 200, "a dry run deletes nothing");
}

/// docker's push: a layer is uploaded, a run condemns it (no manifest yet), the manifest
/// arrives within the grace period and rescues it, and the next run keeps it.
#[test]
fn a_push_that_finishes_within_the_grace_period_keeps_its_layers() {
    let (reg, clock) = registry_and_clock(Default::default());
    let layer_bytes = bytes(2000, 4);
    let layer = push_blob(&reg, "app", &layer_bytes);
    let config = push_blob(&reg, "app", b"{}");
    let run = collect(&reg, false, 900);
    assert_eq!(run.report.condemned.items, 2, "layer and config, not yet referenced");
    clock.advance(GRACE - 1);
    assert_eq!(send(&reg, "HEAD", &format!("/v2/app/blobs/{layer}"), &[], b"").status, 200, "docker's HEAD");
    let manifest = image_manifest((&config, 2), &[(&layer, layer_bytes.len())], "");
    assert_eq!(send(&reg, "PUT", "/v2/app/manifests/v1", &[("content-type", OCI_MANIFEST)], &manifest).status, 201);
    past_grace(&clock);
    let next = collect(&reg, false, 900);
    assert_eq!(next.report.deleted.items, 0, "{:?}", next.report);
    assert_eq!(send(&reg, "GET", &format!("/v2/app/blobs/{layer}"), &[], b"").body, layer_bytes);
}

/// The manifest PUT lands after the deleting run's mark has passed its repository, before
/// the sweep reaches its layer: the mark missed it, but the PUT rescued the condemned
/// layer, so the sweep finds it rescued and condemns it anew instead of deleting it.
#[test]
fn a_manifest_put_between_the_mark_and_the_sweep_is_kept_by_its_rescue() {
    let (reg, clock) = registry_and_clock(Default::default());
    let layer_bytes = bytes(2000, 5);
    let layer = push_blob(&reg, "app", &layer_bytes);
    let config = push_blob(&reg, "app", b"{}");
    collect(&reg, false, 900);
    past_grace(&clock);
    block_on(collector(&reg, 900).start(reg.now_millis(), false)).unwrap();
    step_until(&reg, 12, |p| matches!(p, Phase::Sweep { .. }));
    let manifest = image_manifest((&config, 2), &[(&layer, layer_bytes.len())], "");
    assert_eq!(send(&reg, "PUT", "/v2/app/manifests/v1", &[("content-type", OCI_MANIFEST)], &manifest).status, 201);
    let done = step_until(&reg, 12, |p| matches!(p, Phase::Done { .. }));
    assert_eq!(done.report.deleted.items, 0, "{:?}", done.report);
    assert_eq!(done.report.condemned.items, 3, "condemned anew: the mark did not see the manifest");
    assert_eq!(send(&reg, "GET", &format!("/v2/app/blobs/{layer}"), &[], b"").body, layer_bytes);
    // The run after that sees the manifest and keeps everything.
    past_grace(&clock);
    let after = collect(&reg, false, 900);
    assert_eq!((after.report.deleted.items, after.report.absolved), (0, 3), "{:?}", after.report);
}

/// A push that comes back after the grace period, while its layer is being deleted: the
/// manifest is refused with MANIFEST_BLOB_UNKNOWN (never accepted pointing at deleted
/// bytes), the blob is unknown to a HEAD, a re-upload is told to retry (503) until the run
/// is done, and then the push completes.
#[test]
fn a_push_later_than_the_grace_period_is_refused_while_its_layer_is_deleted_then_succeeds() {
    let (reg, clock) = registry_and_clock(Default::default());
    let layer_bytes = bytes(2000, 6);
    let layer = push_blob(&reg, "app", &layer_bytes);
    let config = push_blob(&reg, "app", b"{}");
    collect(&reg, false, 900);
    past_grace(&clock);
    block_on(collector(&reg, 900).start(reg.now_millis(), false)).unwrap();
    step_until(&reg, 12, |p| matches!(p, Phase::Prune { .. }));
    let manifest = image_manifest((&config, 2), &[(&layer, layer_bytes.len())], "");
    send(&reg, "PUT", "/v2/app/manifests/v1", &[("content-type", OCI_MANIFEST)], &manifest)
        .assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(send(&reg, "HEAD", &format!("/v2/app/blobs/{layer}"), &[], b"").status, 404);
    let retry = send(&reg, "POST", &format!("/v2/app/blobs/uploads/?digest={layer}"), &[], &layer_bytes);
    assert_eq!(retry.status, 503, "{:?}", String::from_utf8_lossy(&retry.body));
    assert!(retry.header("retry-after").is_some());
    step_until(&reg, 12, |p| matches!(p, Phase::Done { .. }));
    push_blob(&reg, "app", &layer_bytes);
    push_blob(&reg, "app", b"{}");
    assert_eq!(send(&reg, "PUT", "/v2/app/manifests/v1", &[("content-type", OCI_MANIFEST)], &manifest).status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/app/blobs/{layer}"), &[], b"").body, layer_bytes);
}

/// A mount from another repository rescues the condemned blob like an upload would.
#[test]
fn a_mount_of_condemned_content_rescues_it() {
    let (reg, clock) = registry_and_clock(Default::default());
    let data = bytes(1500, 7);
    let digest = push_blob(&reg, "src", &data);
    collect(&reg, false, 900);
    clock.advance(GRACE / 2);
    let mount = send(&reg, "POST", &format!("/v2/dst/blobs/uploads/?mount={digest}&from=src"), &[], b"");
    assert_eq!(mount.status, 201);
    let config = push_blob(&reg, "dst", b"{}");
    let manifest = image_manifest((&config, 2), &[(&digest, data.len())], "");
    assert_eq!(send(&reg, "PUT", "/v2/dst/manifests/v1", &[("content-type", OCI_MANIFEST)], &manifest).status, 201);
    past_grace(&clock);
    let run = collect(&reg, false, 900);
    assert_eq!(run.report.deleted.items, 0, "{:?}", run.report);
    assert_eq!(send(&reg, "GET", &format!("/v2/dst/blobs/{digest}"), &[], b"").body, data);
}

/// An index keeps its children and their layers, also a child whose own link was deleted.
#[test]
fn an_index_keeps_its_children_even_unlinked_ones() {
    let (reg, clock) = registry_and_clock(Default::default());
    let child = push_image(&reg, "multi", "amd64", 11);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{child}","size":1}}]}}"#
    );
    assert_eq!(
        send(&reg, "PUT", "/v2/multi/manifests/latest", &[("content-type", OCI_INDEX)], index.as_bytes()).status,
        201
    );
    let unlink = send(&reg, "DELETE", &format!("/v2/multi/manifests/{child}"), &[], b"");
    assert_eq!(unlink.status, 202, "the child's own link (and tag) go; the index still names it");
    collect(&reg, false, 900);
    past_grace(&clock);
    let run = collect(&reg, false, 900);
    assert_eq!(run.report.unreachable.items, 0, "{:?}", run.report);
    let bytes = reg.blob_store().keys().into_iter().filter(|k| k.starts_with("manifests/")).count();
    assert_eq!(bytes, 2, "the index's and the unlinked child's bytes stay");
    let index_pull = send(&reg, "GET", "/v2/multi/manifests/latest", &[], b"");
    assert_eq!(index_pull.status, 200);
}

/// Two steps of the same run racing (the cron trigger and the admin endpoint): the one
/// that read the job before the other saved cannot save over it (its work was idempotent,
/// and the next step redoes or skips it).
#[test]
fn a_step_that_read_an_older_job_cannot_save_over_a_newer_one() {
    let (reg, _clock) = registry_and_clock(Default::default());
    push_blob(&reg, "a", &bytes(100, 8));
    let gc = collector(&reg, 900);
    block_on(async {
        let now = reg.now_millis();
        gc.start(now, false).await.unwrap();
        let meter = Meter::new(reg.blob_store(), reg.meta_store(), 10);
        let stale = job::load(&meter).await.unwrap();
        assert!(gc.step(now).await.unwrap().saved, "the other step saves first");
        let (job, etag) = (stale.job.unwrap(), stale.etag);
        assert!(!job::save(&meter, &job, etag.as_deref()).await.unwrap(), "the stale one is refused");
        assert_ne!(gc.status().await.unwrap().unwrap(), job, "the newer job stands");
    });
}

/// An admin deletes a whole repository: its tags, links and referrers go (not a nested
/// repository's), it leaves the catalog, and the collector then takes the bytes only it
/// used, while a layer another repository shares stays.
#[test]
fn a_deleted_repository_is_gone_and_its_bytes_are_collected_but_shared_ones_stay() {
    let (reg, clock) = registry_and_clock(Default::default());
    let shared = bytes(1200, 21);
    let own = bytes(1300, 22);
    let s = push_blob(&reg, "team/app", &shared);
    let o = push_blob(&reg, "team/app", &own);
    let c = push_blob(&reg, "team/app", b"{}");
    let manifest = image_manifest((&c, 2), &[(&s, shared.len()), (&o, own.len())], "");
    assert_eq!(
        send(&reg, "PUT", "/v2/team/app/manifests/v1", &[("content-type", OCI_MANIFEST)], &manifest).status,
        201
    );
    let nested = push_image(&reg, "team/app/nested", "v1", 23);
    push_blob(&reg, "other", &shared);
    let other = image_manifest((&c, 2), &[(&s, shared.len())], "");
    assert_eq!(send(&reg, "PUT", "/v2/other/manifests/v1", &[("content-type", OCI_MANIFEST)], &other).status, 201);

    let gone = send(&reg, "DELETE", "/admin/repositories/team/app", &[], b"");
    assert_eq!(gone.status, 200, "{:?}", String::from_utf8_lossy(&gone.body));
    assert_eq!(gone.json()["state"], "done");
    assert_eq!(status(&reg, "/v2/team/app/manifests/v1"), 404);
    assert_eq!(status(&reg, &format!("/v2/team/app/blobs/{o}")), 404);
    assert_eq!(status(&reg, &format!("/v2/team/app/nested/manifests/{nested}")), 200, "a nested repository stays");
    let catalog = send(&reg, "GET", "/v2/_catalog", &[], b"").json();
    assert_eq!(catalog["repositories"], serde_json::json!(["other", "team/app/nested"]));
    send(&reg, "DELETE", "/admin/repositories/team/app", &[], b"").assert_error(404, "NAME_UNKNOWN");
    send(&reg, "DELETE", "/admin/repositories/Bad%20Name", &[], b"").assert_error(400, "NAME_INVALID");

    collect(&reg, false, 900);
    past_grace(&clock);
    let run = collect(&reg, false, 900);
    assert_eq!(run.report.deleted.items, 2, "own layer and manifest bytes: {:?}", run.report);
    assert_eq!(send(&reg, "GET", &format!("/v2/other/blobs/{s}"), &[], b"").body, shared);
}

/// A deleting step whose save is lost (another step saved first, or a later call failed):
/// the job record still says nothing was deleted, but the dead marks say otherwise, so the
/// links to the deleted layer are removed all the same and no manifest can reference it.
#[test]
fn a_deleting_step_whose_save_was_lost_still_has_its_links_removed() {
    let (reg, clock) = registry_and_clock(Default::default());
    let layer_bytes = bytes(2000, 31);
    let layer = push_blob(&reg, "app", &layer_bytes);
    let config = push_blob(&reg, "app", b"{}");
    collect(&reg, false, 900);
    past_grace(&clock);
    block_on(collector(&reg, 900).start(reg.now_millis(), false)).unwrap();
    step_until(&reg, 900, |p| matches!(p, Phase::Sweep { .. }));
    let before_sweep = block_on(reg.blob_store().get_bytes("gc/job")).unwrap().unwrap().1;
    step_until(&reg, 900, |p| matches!(p, Phase::Prune { .. }));
    // The sweep's save is lost: the record is put back as it was before it.
    block_on(reg.blob_store().put_bytes("gc/job", before_sweep, Default::default())).unwrap();
    let done = step_until(&reg, 900, |p| matches!(p, Phase::Done { .. }));
    assert_eq!(done.report.deleted.items, 0, "the record never learnt of the deletes: {:?}", done.report);
    assert_eq!(done.report.links_removed, 2, "found from the dead marks: {:?}", done.report);
    let manifest = image_manifest((&config, 2), &[(&layer, layer_bytes.len())], "");
    send(&reg, "PUT", "/v2/app/manifests/v1", &[("content-type", OCI_MANIFEST)], &manifest)
        .assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(status(&reg, &format!("/v2/app/blobs/{layer}")), 404);
}

/// A referrer whose subject never arrived is collected with its content after the grace
/// period: its link and referrer entry go with its bytes; one whose subject is there stays.
#[test]
fn a_referrer_without_its_subject_is_collected_after_the_grace_period() {
    let (reg, clock) = registry_and_clock(Default::default());
    let subject = push_image(&reg, "app", "v1", 41);
    let config = push_blob(&reg, "app", b"{}");
    let missing = format!("sha256:{}", "0".repeat(64));
    let push_referrer = |of: &str, seed: u8| {
        let extra = format!(
            r#","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{of}","size":1}},"annotations":{{"n":"{seed}"}}"#
        );
        let m = image_manifest((&config, 2), &[], &extra);
        let a = send(&reg, "PUT", &format!("/v2/app/manifests/{}", sha256(&m)), &[("content-type", OCI_MANIFEST)], &m);
        assert_eq!(a.status, 201, "{:?}", String::from_utf8_lossy(&a.body));
        sha256(&m)
    };
    let kept = push_referrer(&subject, 1);
    let orphan = push_referrer(&missing, 2);
    let first = collect(&reg, false, 900);
    assert_eq!(first.report.referrers_unreachable, 0, "within the grace period: {:?}", first.report);
    past_grace(&clock);
    let second = collect(&reg, false, 900);
    assert_eq!(second.report.referrers_unreachable, 1, "{:?}", second.report);
    past_grace(&clock);
    let third = collect(&reg, false, 900);
    assert_eq!(third.report.deleted.items, 1, "the orphan's bytes: {:?}", third.report);
    assert_eq!(status(&reg, &format!("/v2/app/manifests/{orphan}")), 404);
    assert_eq!(status(&reg, &format!("/v2/app/manifests/{kept}")), 200);
    let listed = send(&reg, "GET", &format!("/v2/app/referrers/{missing}"), &[], b"").json();
    assert_eq!(listed["manifests"], serde_json::json!([]), "its referrer entry went with it");
}

/// A blob stored as a multipart object (a pointer naming the object its session assembled)
/// keeps that object; an assembled object no pointer names and no open session owns (an
/// upload that failed between assembling and publishing) is collected like any leftover.
#[test]
fn assembled_objects_stay_while_a_pointer_names_them_and_leftovers_are_collected() {
    let (reg, clock) =
        registry_and_clock(edge_registry::registry::Config { part_size: 5 * MIB as u64, ..Default::default() });
    let big = bytes(6 * MIB, 51);
    let location = start_upload(&reg, "app");
    let chunk = send(&reg, "PATCH", &location, &[("content-range", &format!("0-{}", big.len() - 1))], &big);
    assert_eq!(chunk.status, 202);
    let digest = sha256(&big);
    assert_eq!(send(&reg, "PUT", &format!("{location}?digest={digest}"), &[], b"").status, 201);
    let config = push_blob(&reg, "app", b"{}");
    let manifest = image_manifest((&config, 2), &[(&digest, big.len())], "");
    assert_eq!(send(&reg, "PUT", "/v2/app/manifests/v1", &[("content-type", OCI_MANIFEST)], &manifest).status, 201);
    let assembled: Vec<String> =
        reg.blob_store().keys().into_iter().filter(|k| k.starts_with("blobs/multipart/")).collect();
    assert_eq!(assembled.len(), 1, "the big blob is a pointer to its assembled object");
    let leftover = format!("blobs/multipart/{}/1", "f".repeat(32));
    block_on(reg.blob_store().put_bytes(&leftover, vec![7; 4096], Default::default())).unwrap();

    let first = collect(&reg, false, 900);
    assert_eq!(first.report.condemned.items, 1, "only the leftover: {:?}", first.report);
    past_grace(&clock);
    let second = collect(&reg, false, 900);
    assert_eq!((second.report.deleted.items, second.report.deleted.bytes), (1, 4096), "{:?}", second.report);
    let keys = reg.blob_store().keys();
    assert!(!keys.contains(&leftover) && keys.contains(&assembled[0]));
    assert_eq!(send(&reg, "GET", &format!("/v2/app/blobs/{digest}"), &[], b"").body, big);
}

/// An upload still open keeps the object its first chunk was stored in, however many runs
/// pass; its close then publishes the blob.
#[test]
fn an_open_upload_keeps_its_assembled_object_across_runs() {
    let (reg, clock) =
        registry_and_clock(edge_registry::registry::Config { part_size: 5 * MIB as u64, ..Default::default() });
    let data = bytes(6 * MIB, 61);
    let location = start_upload(&reg, "app");
    let first = send_chunked(&reg, "PATCH", &location, Feed::Pieces(data.clone(), 50_000)); // docker's road
    assert_eq!(first.status, 202);
    assert!(reg.blob_store().keys().iter().any(|k| k.starts_with("blobs/multipart/")), "assembled at the PATCH's end");
    for _ in 0..2 {
        let run = collect(&reg, false, 900);
        assert_eq!(run.report.unreachable.items, 0, "{:?}", run.report);
        past_grace(&clock);
    }
    let digest = sha256(&data);
    assert_eq!(send(&reg, "PUT", &format!("{location}?digest={digest}"), &[], b"").status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/app/blobs/{digest}"), &[], b"").body, data);
}
