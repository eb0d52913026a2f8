//! The garbage collector over three replicas (the replica world: memory buckets a, b, c,
//! home a, one KV, a queue delivered by hand): its mark sees what is still pending
//! replication, a replica it cannot reach makes it keep what it cannot account for and say
//! so, its deletions reach every replica or are finished by a later run, and neither a
//! late queue message nor the repair brings what it collected back. Each race is driven
//! step by step; the protocol is the README's "Garbage collection".

mod replica_world;

use edge_registry::lifecycle::gc::job::{Job, Phase};
use edge_registry::lifecycle::gc::sweep::{CLOCK_SKEW_MS, MAX_STEP_MS};
use edge_registry::lifecycle::gc::{Collector, GcConfig};
use edge_registry::storage::content_state::{self, ContentState};
use replica_world::*;

const GRACE: u64 = 3_600_000;

/// A world with the collector on (`GC=on`).
fn world() -> World {
    let world = World::new();
    world.collects.set(true);
    world
}

/// The collector as the cron trigger and `/admin/gc` run it with replicas: over the strict
/// view of every replica.
fn collector_view(world: &World) -> Replicated<Bucket> {
    world.cluster.collector(&world.switch.borrow(), &world.faults.borrow()).collector_on(true)
}

fn config(calls_per_step: u64) -> GcConfig {
    GcConfig { grace_ms: GRACE, calls_per_step, interval_ms: 0 }
}

/// Starts a run at the world's time.
fn start(world: &World) {
    let view = collector_view(world);
    block_on(Collector::new(&view, &*world.meta, config(900)).start(world.clock.get(), false)).unwrap();
}

/// Steps the run in progress (each step a fresh view, as each invocation has) until
/// `until` holds for its phase.
fn step_until(world: &World, until: impl Fn(&Phase) -> bool) -> Job {
    for _ in 0..1_000 {
        let view = collector_view(world);
        let gc = Collector::new(&view, &*world.meta, config(900));
        let stepped = block_on(gc.step(world.clock.get())).unwrap();
        assert!(stepped.saved, "nothing else steps the job here");
        if until(&stepped.job.phase) {
            return stepped.job;
        }
    }
    panic!("the phase was never reached");
}

/// A whole run at the world's time.
fn collect(world: &World) -> Job {
    start(world);
    step_until(world, |p| matches!(p, Phase::Done { .. }))
}

fn past_grace(world: &World) {
    world.clock.set(world.clock.get() + GRACE + MAX_STEP_MS + CLOCK_SKEW_MS + 1);
}

fn manifest(config: &str, config_len: usize, layer: &str, layer_len: usize) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_len}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{layer_len}}}]}}"#
    )
    .into_bytes()
}

fn put_manifest(world: &World, from: &str, repo: &str, tag: &str, body: &[u8]) -> Answer {
    world.send_pinned(from, None, "PUT", &format!("/v2/{repo}/manifests/{tag}"), MANIFEST, body)
}

/// The replicas whose bucket holds `key` (looked at past any injected fault).
fn holders(world: &World, key: &str) -> Vec<&'static str> {
    let holds = |name: &&str| block_on(world.store(name).inner().head(key)).unwrap().is_some();
    ["a", "b", "c"].into_iter().filter(holds).collect()
}

/// The collector's state of `content`, read in the home replica's bucket.
fn state(world: &World, content: &str) -> ContentState {
    block_on(content_state::read(world.store("a"), content)).unwrap()
}

/// The collector's keys other than its job and reports, in replica `name`.
fn gc_keys(world: &World, name: &str) -> Vec<String> {
    let keys = world.store(name).keys();
    keys.into_iter().filter(|k| k.starts_with("gc/") && k != "gc/job" && !k.starts_with("gc/reports/")).collect()
}

/// A manifest pushed in b (from North America) and not yet copied: the mark reads the
/// union of the replicas, so its layers stay while an unreferenced blob beside them goes;
/// once delivered the image pulls from Europe byte for byte.
#[test]
fn a_manifest_not_yet_replicated_keeps_its_blobs_alive_in_every_replica() {
    let world = world();
    let layer_bytes = data(3000, 1);
    let (digest, layer) = world.push_image("NA", "app", "v1", &layer_bytes);
    let junk = world.push_blob("NA", "app", &data(1500, 2));
    assert_eq!(holders(&world, &blob_key(&layer)), ["b"], "not replicated yet");

    let first = collect(&world);
    assert_eq!(first.report.unreachable.items, 1, "only the unreferenced blob: {:?}", first.report);
    assert_eq!(first.report.condemned.items, 1);
    past_grace(&world);
    let second = collect(&world);
    assert_eq!((second.report.deleted.items, second.report.deleted.bytes), (1, 1500), "{:?}", second.report);
    assert!(second.report.unreached.is_empty() && second.report.incomplete.is_none());
    assert!(holders(&world, &blob_key(&junk)).is_empty());

    let outcomes = world.deliver();
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert!(holders(&world, &blob_key(&junk)).is_empty(), "the late copy of the collected blob found nothing");
    assert_eq!(holders(&world, &blob_key(&layer)), ["a", "b", "c"]);
    let pulled = world.send("EU", "GET", "/v2/app/manifests/v1", b"");
    assert_eq!(pulled.status, 200);
    assert_eq!(pulled.headers["docker-content-digest"].to_str().unwrap(), digest);
    assert_eq!(world.send("EU", "GET", &format!("/v2/app/blobs/{layer}"), b"").body, layer_bytes);
    for name in ["b", "c"] {
        assert!(world.store(name).keys().iter().all(|k| !k.starts_with("gc/")), "collector keys only in home");
    }
}

/// Layers pushed from Europe and replicated, their manifest pushed in c (Asia) and not yet
/// copied, and c down while a run marks: the run cannot see the manifest, so it is
/// incomplete, says which replica it missed, and condemns and deletes nothing. Without that,
/// the layers (listed in a and b) would be condemned, then deleted a grace period later,
/// under c's manifest.
#[test]
fn a_replica_down_while_marking_makes_the_run_keep_everything_and_say_so() {
    let world = world();
    let config_bytes = br#"{"architecture":"arm64"}"#;
    let layer_bytes = data(4000, 3);
    let config = world.push_blob("EU", "app", config_bytes);
    let layer = world.push_blob("EU", "app", &layer_bytes);
    world.deliver();
    let body = manifest(&config, config_bytes.len(), &layer, layer_bytes.len());
    assert_eq!(put_manifest(&world, "AS", "app", "v1", &body).status, 201);
    world.store("c").fail_everything();

    for _ in 0..2 {
        let run = collect(&world);
        assert_eq!(run.report.unreached, ["c"]);
        let why = run.report.incomplete.as_deref().unwrap_or_default();
        assert!(why.contains("replica c could not be reached while marking"), "{why}");
        assert_eq!((run.report.condemned.items, run.report.deleted.items), (0, 0), "{:?}", run.report);
        assert_eq!(state(&world, &blob_key(&layer)), ContentState::Absent);
        past_grace(&world);
    }

    world.store("c").heal();
    let complete = collect(&world);
    assert!(complete.report.unreached.is_empty() && complete.report.incomplete.is_none());
    assert_eq!(complete.report.unreachable.items, 0, "c's manifest reaches both: {:?}", complete.report);
    world.deliver();
    assert_eq!(world.send("EU", "GET", &format!("/v2/app/blobs/{layer}"), b"").body, layer_bytes);
    assert_eq!(world.send("EU", "GET", "/v2/app/manifests/v1", b"").body, body);
}

/// c goes down after the mark, while the run deletes: the bytes go from a and b, c keeps
/// its copy, and the run forgets no state (the report says c was not reached and how many
/// states stay dead). Meanwhile the blob is refused to pushes, the repair's copies from c
/// are refused by its state, and the next run, reaching c, deletes it there; only then is
/// it pushable again, and the new push replicates.
#[test]
fn a_replica_down_while_deleting_keeps_the_content_dead_until_a_later_run_finishes() {
    let world = world();
    let junk_bytes = data(2500, 4);
    let junk = world.push_blob("EU", "app", &junk_bytes);
    world.deliver();
    let key = blob_key(&junk);
    assert_eq!(holders(&world, &key), ["a", "b", "c"]);
    collect(&world);
    past_grace(&world);

    start(&world);
    step_until(&world, |p| matches!(p, Phase::Sweep { .. }));
    world.store("c").fail_everything();
    let run = step_until(&world, |p| matches!(p, Phase::Done { .. }));
    assert_eq!(run.report.deleted.items, 1, "{:?}", run.report);
    assert_eq!(run.report.unreached, ["c"]);
    assert!(run.report.incomplete.is_none(), "the mark was complete: deleting was sound");
    assert_eq!(run.report.kept_dead, 1);
    assert_eq!(holders(&world, &key), ["c"]);
    assert!(matches!(state(&world, &key), ContentState::Dead { .. }), "not forgotten");

    let again = world.send("NA", "POST", &format!("/v2/app/blobs/uploads/?digest={junk}"), &junk_bytes);
    assert_eq!(again.status, 503, "refused while a replica may still hold the collected copy");
    assert_eq!(world.send("EU", "HEAD", &format!("/v2/app/blobs/{junk}"), b"").status, 404);

    world.store("c").heal();
    let repair = world.repair();
    assert_eq!(repair.missing, 2, "c's copy looks missing from a and b: {repair:?}");
    let outcomes = world.deliver();
    assert!(outcomes.iter().all(|o| matches!(o, Ok(Applied::Collected))), "{outcomes:?}");
    assert_eq!(holders(&world, &key), ["c"], "the repair brought nothing back");

    past_grace(&world);
    let next = collect(&world);
    assert_eq!(next.report.deleted.items, 1, "the copy in c: {:?}", next.report);
    assert!(next.report.unreached.is_empty());
    assert_eq!(next.report.links_removed, 1, "c's link (a's and b's went with the first run)");
    assert!(holders(&world, &key).is_empty());
    assert!(world.store("c").keys().iter().all(|k| !k.contains(&junk[7..])), "nothing in c names it");
    assert!(gc_keys(&world, "a").is_empty(), "forgotten: {:?}", gc_keys(&world, "a"));

    assert_eq!(world.push_blob("NA", "app", &junk_bytes), junk, "pushable again");
    world.deliver();
    assert_eq!(holders(&world, &key), ["a", "b", "c"], "and it replicates: no deletion record holds it back");
}

/// Every replica deleted the bytes but c failed the removal of its link: the run keeps the
/// state dead, so a manifest pushed through c cannot use that link; the next run finds the
/// dead state without content (the sweep lists nothing), finishes the deletion from the
/// states' listing, removes c's link and forgets the state.
#[test]
fn a_link_an_unreached_replica_kept_is_removed_by_the_next_run() {
    let world = world();
    let config_bytes = b"{}";
    let junk_bytes = data(2000, 5);
    let config = world.push_blob("EU", "app", config_bytes);
    let junk = world.push_blob("EU", "app", &junk_bytes);
    world.deliver();
    collect(&world);
    past_grace(&world);
    world.store("c").fail(Op::Delete, &format!("_blobs/sha256/{}", &junk[7..]));
    let run = collect(&world);
    assert_eq!((run.report.deleted.items, run.report.unreached.clone()), (2, vec!["c".to_owned()]), "{:?}", run.report);
    assert_eq!(run.report.kept_dead, 2);
    assert!(holders(&world, &blob_key(&junk)).is_empty());
    let link =
        keys::repository_blob(&edge_registry::oci::RepositoryName::parse("app").unwrap(), &junk.parse().unwrap());
    assert_eq!(holders(&world, &link), ["c"]);

    let body = manifest(&config, config_bytes.len(), &junk, junk_bytes.len());
    let refused = put_manifest(&world, "AS", "app", "v1", &body);
    assert_eq!((refused.status, code(&refused)), (400, "MANIFEST_BLOB_UNKNOWN".to_owned()));

    world.store("c").heal();
    past_grace(&world);
    let next = collect(&world);
    assert_eq!(next.report.resumed, 2, "both dead states, found without content: {:?}", next.report);
    assert!(next.report.unreached.is_empty());
    assert!(holders(&world, &link).is_empty(), "c's link removed");
    assert!(gc_keys(&world, "a").is_empty(), "forgotten: {:?}", gc_keys(&world, "a"));
}

/// A blob pushed in b with its copies still queued; the run deletes it from b but b fails
/// that delete, so b keeps it with its state dead. The queued messages, delivered then,
/// copy nothing; the next run deletes b's copy, after which a late re-send finds nothing.
#[test]
fn a_copy_queued_before_the_collection_and_delivered_after_it_copies_nothing() {
    let world = world();
    let junk = world.push_blob("NA", "app", &data(1800, 6));
    let key = blob_key(&junk);
    let queued = world.queue.0.borrow().clone();
    assert!(queued.iter().any(|m| m.key == key), "copies to a and c are queued");
    world.queue.0.borrow_mut().clear();
    collect(&world);
    past_grace(&world);
    world.store("b").fail(Op::Delete, &key);
    let run = collect(&world);
    assert_eq!((run.report.deleted.items, run.report.unreached.clone()), (1, vec!["b".to_owned()]));
    assert_eq!(holders(&world, &key), ["b"]);

    world.store("b").heal();
    world.queue.0.borrow_mut().extend(queued.clone());
    let outcomes = world.deliver();
    let for_junk: Vec<_> = outcomes.iter().zip(&queued).filter(|(_, m)| m.key == key).map(|(o, _)| o).collect();
    assert!(for_junk.iter().all(|o| matches!(o, Ok(Applied::Collected))), "{for_junk:?}");
    assert_eq!(holders(&world, &key), ["b"]);

    past_grace(&world);
    collect(&world);
    assert!(holders(&world, &key).is_empty());
    world.queue.0.borrow_mut().extend(queued);
    world.deliver();
    assert!(holders(&world, &key).is_empty(), "re-sent after the run: the source holds nothing to copy");
    let repair = world.repair();
    assert_eq!(repair.missing, 0, "{repair:?}");
}

/// The states are decided in the home replica alone: a push from another region rescues a
/// condemned blob there, and with the collector on a push waits (503) while home is out of
/// routing rather than read a state elsewhere; with it off, nothing waits for home.
#[test]
fn states_live_in_the_home_replica_and_pushes_wait_for_it_only_while_the_collector_is_on() {
    let world = world();
    let layer_bytes = data(2200, 7);
    let config_bytes = b"{}";
    let layer = world.push_blob("EU", "app", &layer_bytes);
    let config = world.push_blob("EU", "app", config_bytes);
    world.deliver();
    collect(&world);
    assert!(matches!(state(&world, &blob_key(&layer)), ContentState::Condemned { .. }));
    assert!(gc_keys(&world, "b").is_empty() && gc_keys(&world, "c").is_empty(), "states only in a");

    let body = manifest(&config, config_bytes.len(), &layer, layer_bytes.len());
    assert_eq!(put_manifest(&world, "AS", "app", "v1", &body).status, 201, "pushed in c");
    assert!(matches!(state(&world, &blob_key(&layer)), ContentState::Rescued { .. }), "rescued in a");
    assert!(world.queue.0.borrow().iter().all(|m| !m.key.starts_with("gc/")), "states are not replicated");
    past_grace(&world);
    assert_eq!(collect(&world).report.deleted.items, 0);
    world.deliver();
    let pinned = world.send_pinned("NA", Some("c"), "HEAD", &format!("/v2/app/blobs/{layer}"), "", b"");
    assert_eq!(pinned.status, 200, "a request pinned to c still reads the state in a");

    world.switch.borrow_mut().disabled = vec!["a".into()];
    let waiting = put_manifest(&world, "NA", "app", "v2", &body);
    assert_eq!(waiting.status, 503, "{}", String::from_utf8_lossy(&waiting.body));
    world.collects.set(false);
    assert_eq!(put_manifest(&world, "NA", "app", "v2", &body).status, 201, "the collector off: no wait");
}

/// `POST /admin/gc` with replicas runs over the replication port's collector view (every
/// replica, strict), not the request's routed view: c failing shows in its report.
#[test]
fn the_admin_endpoint_runs_over_every_replica_and_reports_the_one_it_missed() {
    let world = world();
    world.push_blob("EU", "app", &data(1200, 8));
    world.deliver();
    world.store("c").fail_everything();
    let admin =
        Admin { cluster: &world.cluster, meta: &*world.meta, queue: &world.queue, hooks: false, resend_after_ms: 0 };
    let post = || {
        let registry = world.registry("EU", None);
        let request = http::Request::builder()
            .method("POST")
            .uri("/admin/gc")
            .body(RequestBody::stream(futures::stream::iter(Vec::new()).boxed_local(), Some(0)))
            .unwrap();
        let response = block_on(api::handle_replicated(&registry, None, Some(&admin), Some(config(900)), request));
        assert_eq!(response.status().as_u16(), 200);
        let Body::Bytes(body) = response.into_body() else { panic!("a JSON body") };
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    };
    let mut job = post();
    while job["phase"]["phase"] != "done" {
        job = post();
    }
    assert_eq!(job["report"]["unreached"], serde_json::json!(["c"]), "{job}");
    assert_eq!(job["report"]["condemned"]["items"], 0, "incomplete: nothing condemned");
}
