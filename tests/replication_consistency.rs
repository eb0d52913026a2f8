//! Replication under races and outages: deletes that must not come back, markers that
//! must outlive older messages, and the routing switch that must leave one replica.

mod replica_world;
use replica_world::*;

#[test]
fn a_delete_reaches_a_replica_in_its_backoff_so_no_read_falls_back_to_the_copy() {
    let world = World::new();
    world.push_image("EU", "app", "v1", &data(1000, 1));
    world.deliver();
    world.faults.borrow_mut().fail = vec!["c".into()];
    assert_eq!(world.send("AS", "GET", "/v2/app/manifests/v1", b"").status, 200, "served elsewhere; c marked");
    world.faults.borrow_mut().fail.clear(); // c is back, but this isolate still skips it
    assert_eq!(world.send("EU", "DELETE", "/v2/app/manifests/v1", b"").status, 202);
    assert!(!world.holds("c", "repositories/app/_tags/v1"), "the delete reached c despite its back-off");
    world.clock.set(world.clock.get() + 11_000);
    assert_eq!(world.send("EU", "GET", "/v2/app/manifests/v1", b"").status, 404);
}

#[test]
fn an_older_message_leaves_the_marker_of_a_newer_change() {
    let world = World::new();
    world.push_image("EU", "app", "v1", &data(1000, 2));
    let first: Vec<Message> = std::mem::take(&mut *world.queue.0.borrow_mut());
    world.clock.set(world.clock.get() + 1000);
    world.push_image("EU", "app", "v1", &data(1100, 3)); // moves v1: new markers for the tag
    let second: Vec<Message> = std::mem::take(&mut *world.queue.0.borrow_mut());
    // Only the first change's messages arrive; the second's are lost.
    world.queue.0.borrow_mut().extend(first);
    assert!(world.deliver().iter().all(|o| o.is_ok()));
    let tag_marker = keys::pending_marker("b", "repositories/app/_tags/v1");
    assert!(world.holds("a", &tag_marker), "the newer change is still pending");
    drop(second);
    let report = world.repair();
    assert!(report.resent > 0);
    world.deliver();
    let b = world.send_pinned("EU", Some("b"), "GET", "/v2/app/manifests/v1", "", b"");
    let a = world.send_pinned("EU", Some("a"), "GET", "/v2/app/manifests/v1", "", b"");
    assert_eq!(b.headers["docker-content-digest"], a.headers["docker-content-digest"], "b has the moved tag");
    assert_eq!(world.pending_markers(), 0);
}

#[test]
fn the_last_replica_in_routing_cannot_be_taken_out() {
    let world = World::new();
    for name in ["a", "b"] {
        let off = world.admin(None, None, "PUT", &format!("/admin/replicas/{name}/routing"), r#"{"enabled":false}"#);
        assert_eq!(off.status, 200);
    }
    let last = world.admin(None, None, "PUT", "/admin/replicas/c/routing", r#"{"enabled":false}"#);
    assert_eq!((last.status, code(&last)), (409, "DENIED".to_owned()));
    let switch = world.stored_switch();
    assert_eq!(switch.disabled, ["a", "b"], "refused: nothing changed");
    let routing = world.admin(None, None, "GET", "/admin/replicas/routing", "");
    assert_eq!(routing.status, 404, "a path without a replica name is not found, not a panic");
}

#[test]
fn a_late_older_copy_does_not_bring_a_deleted_tag_back() {
    let world = World::new();
    world.push_image("AS", "app", "v1", &data(1000, 4));
    world.deliver();
    world.clock.set(world.clock.get() + 1000);
    world.push_image("AS", "app", "v1", &data(1100, 5)); // v1 moved in c; its copies wait
    let delayed: Vec<Message> = std::mem::take(&mut *world.queue.0.borrow_mut());
    world.faults.borrow_mut().fail = vec!["c".into()];
    world.clock.set(world.clock.get() + 1000);
    assert_eq!(world.send("EU", "DELETE", "/v2/app/manifests/v1", b"").status, 202, "deleted while c is down");
    world.faults.borrow_mut().fail.clear();
    world.clock.set(world.clock.get() + 10 * 60_000);
    // c's older messages arrive before the delete's.
    let deletes: Vec<Message> = std::mem::take(&mut *world.queue.0.borrow_mut());
    world.queue.0.borrow_mut().extend(delayed);
    world.queue.0.borrow_mut().extend(deletes);
    let outcomes = world.deliver();
    assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
    for replica in ["a", "b", "c"] {
        assert!(!world.holds(replica, "repositories/app/_tags/v1"), "{replica} keeps v1 deleted");
    }
    assert_eq!(world.send("EU", "GET", "/v2/app/manifests/v1", b"").status, 404);
    // Pushed again later, the tag replicates as usual.
    world.clock.set(world.clock.get() + 1000);
    world.push_image("EU", "app", "v1", &data(1200, 6));
    world.deliver();
    assert!(["a", "b", "c"].iter().all(|r| world.holds(r, "repositories/app/_tags/v1")));
}

#[test]
fn deletion_records_expire_after_their_time() {
    let world = World::new();
    world.push_image("EU", "app", "v1", &data(1000, 7));
    world.deliver();
    assert_eq!(world.send("EU", "DELETE", "/v2/app/manifests/v1", b"").status, 202);
    let record = keys::tombstone("repositories/app/_tags/v1");
    assert!(world.holds("a", &record));
    assert_eq!(world.repair().expired_tombstones, 0);
    world.clock.set(world.clock.get() + edge_registry::replication::tombstone::TOMBSTONE_TTL_MS + 1);
    let expired = world.repair().expired_tombstones;
    assert!(expired >= 3, "every replica's record of the delete expired: {expired}");
    assert!(!world.holds("a", &record));
}

#[test]
fn deleting_a_manifest_keeps_a_tag_moved_elsewhere_meanwhile() {
    let world = World::new();
    let (first, _) = world.push_image("EU", "app", "latest", &data(1000, 8));
    world.deliver();
    world.clock.set(world.clock.get() + 1000);
    let (second, _) = world.push_image("AS", "app", "latest", &data(1100, 9)); // moved in c only
    assert_ne!(first, second);
    world.clock.set(world.clock.get() + 1000);
    assert_eq!(world.send("NA", "DELETE", &format!("/v2/app/manifests/{first}"), b"").status, 202);
    world.deliver();
    let latest = world.send("AS", "GET", "/v2/app/manifests/latest", b"");
    assert_eq!(latest.status, 200, "the listing's newest copy says latest is no longer on the deleted manifest");
    assert_eq!(latest.headers["docker-content-digest"].to_str().unwrap(), second);
}
