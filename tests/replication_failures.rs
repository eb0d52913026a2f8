//! Backend failures with replicas: a failed storage call answers 503 and counts against
//! its replica's health, a client's mistake (a wrong digest, a short body) does not, and
//! the repair job carries on past a failing item and reports how many failed.

mod replica_world;
use replica_world::*;

fn healthy(world: &World, name: &str) -> bool {
    let i = world.cluster.specs.iter().position(|s| s.name == name).unwrap();
    world.cluster.health.report(i, world.clock.get()).healthy
}

/// A native body that breaks after `sent` bytes of the `declared` ones, from `from`.
fn send_broken(world: &World, from: &str, uri: &str, sent: Vec<u8>, declared: u64) -> u16 {
    let registry = world.registry(from, None);
    let pieces = vec![Ok(sent), Err("connection reset".to_owned())];
    let stream: ByteStream = futures::stream::iter(pieces).boxed_local();
    let request = http::Request::builder()
        .method("POST")
        .uri(uri)
        .body(RequestBody::native(stream, Some(declared), |s| s))
        .unwrap();
    block_on(api::handle(&registry, None, request)).status().as_u16()
}

#[test]
fn a_failed_native_put_answers_503_marks_the_replica_down_and_the_retry_lands_elsewhere() {
    let world = World::new();
    let layer = data(3000, 1);
    let uri = format!("/v2/app/blobs/uploads/?digest={}", sha256(&layer));
    world.store("a").fail(Op::PutVerified, "blobs/");
    let failed = world.send("EU", "POST", &uri, &layer);
    assert_eq!(failed.status, 503, "{}", String::from_utf8_lossy(&failed.body));
    assert!(failed.headers.contains_key("retry-after"));
    assert!(!healthy(&world, "a"), "the failure counts against a");
    let retry = world.send("EU", "POST", &uri, &layer);
    assert_eq!(retry.status, 201, "the client's retry lands in the next healthy replica");
    assert!(world.holds("b", &blob_key(&sha256(&layer))));
}

#[test]
fn a_wrong_digest_or_a_short_body_leaves_the_replica_healthy() {
    let world = World::new();
    let layer = data(3000, 2);
    let wrong = world.send("EU", "POST", &format!("/v2/app/blobs/uploads/?digest={}", sha256(b"x")), &layer);
    assert_eq!((wrong.status, code(&wrong)), (400, "DIGEST_INVALID".to_owned()));
    let uri = format!("/v2/app/blobs/uploads/?digest={}", sha256(&layer));
    assert_eq!(send_broken(&world, "EU", &uri, layer[..1000].to_vec(), 3000), 400);
    assert!(healthy(&world, "a"), "the client's mistakes are not the replica's failures");
    assert_eq!(world.send("EU", "POST", &uri, &layer).status, 201);
    assert!(world.holds("a", &blob_key(&sha256(&layer))), "a still takes the writes");
}

#[test]
fn repair_carries_on_past_markers_it_cannot_write_and_counts_them() {
    let world = World::new();
    let in_a = world.push_blob("EU", "app", &data(1000, 3));
    let in_b = world.push_blob("NA", "app", &data(1000, 4));
    world.queue.0.borrow_mut().clear(); // every message lost
    world.store("a").fail(Op::PutBytes, keys::PENDING_PREFIX);
    let report = world.repair();
    assert!(report.failed >= 1, "{report:?}");
    assert!(report.failures.iter().all(|f| f.contains("injected fault")), "{report:?}");
    assert!(report.resent + report.missing >= 2, "b's changes were sent all the same: {report:?}");
    world.deliver();
    assert!(world.holds("a", &blob_key(&in_b)) && world.holds("c", &blob_key(&in_b)));
    world.store("a").heal();
    let again = world.repair();
    assert_eq!(again.failed, 0, "{again:?}");
    world.deliver();
    assert!(world.holds("b", &blob_key(&in_a)) && world.holds("c", &blob_key(&in_a)), "the next run caught up");
}

/// A queue that refuses every batch.
struct RefusingQueue;
impl ReplicationQueue for RefusingQueue {
    async fn send(&self, _messages: Vec<Message>) -> Result<(), String> {
        Err("queue unavailable".into())
    }
}

#[test]
fn repair_counts_batches_the_queue_refuses_and_keeps_their_markers() {
    let world = World::new();
    world.push_blob("EU", "app", &data(1000, 5));
    let markers = world.pending_markers();
    let store = world.cluster.maintenance(&world.switch.borrow(), &world.faults.borrow());
    let report = block_on(repair(&store, &RefusingQueue, 0)).expect("a refused batch does not stop the run");
    assert_eq!(report.failed, report.resent + report.missing, "every unsent message is counted: {report:?}");
    assert!(report.failed > 0);
    assert_eq!(world.pending_markers(), markers, "their markers stay for the next run");
}

#[test]
fn repair_carries_on_past_a_deletion_record_it_cannot_remove() {
    let world = World::new();
    world.push_image("EU", "app", "v1", &data(1000, 6));
    world.deliver();
    assert_eq!(world.send("EU", "DELETE", "/v2/app/manifests/v1", b"").status, 202);
    world.deliver();
    world.clock.set(world.clock.get() + 8 * 24 * 3600 * 1000);
    world.store("a").fail(Op::Delete, keys::TOMBSTONES_PREFIX);
    let report = world.repair();
    assert!(report.failed >= 1, "{report:?}");
    assert!(report.expired_tombstones >= 1, "b's and c's records went all the same: {report:?}");
    world.store("a").heal();
    assert_eq!(world.repair().failed, 0);
}
