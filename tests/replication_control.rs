//! The routing switch and the fault plan in the home replica's bucket: concurrent changes
//! are compare-and-swapped (the last-replica guard judged against the switch replaced),
//! KV's values are adopted once, each isolate re-reads the switch every few seconds, and a
//! home bucket that is down leaves routing on the last switch known.

mod replica_world;
use edge_registry::replication::control::{ChangeError, Control, HomeFault};
use edge_registry::replication::switch_cache::{Source, SWITCH_TTL_MS};
use edge_registry::storage::{MetaStore, PutIf};
use replica_world::gate::Gated;
use replica_world::*;

fn put_request<N>(path: &str, body: &str) -> http::Request<edge_registry::registry::RequestBody<N>> {
    let stream: ByteStream = futures::stream::iter(vec![Ok(body.as_bytes().to_vec())]).boxed_local();
    let body = RequestBody::stream(stream, Some(body.len() as u64));
    http::Request::builder().method("PUT").uri(path).body(body).unwrap()
}

/// Three replicas whose buckets hold reads and writes of the switch until two requests
/// have arrived at each; home `a` already out of routing.
fn gated_cluster() -> Cluster<Gated> {
    let specs = Rc::new(parse_replicas(SPECS).unwrap());
    let replicas: Vec<Replica<Gated>> =
        specs.iter().map(|s| Replica { name: s.name.clone(), store: Gated::new(keys::routing_switch(), 2) }).collect();
    let initial = br#"{"disabled":["a"]}"#.to_vec();
    block_on(replicas[0].store.inner.put_bytes(&keys::routing_switch(), initial, Default::default())).unwrap();
    Cluster {
        health: Rc::new(Health::new(3, 10_000)),
        switch_cache: Rc::new(SwitchCache::default()),
        specs,
        replicas: Rc::new(replicas),
        timer: Rc::new(NeverFires),
        now: Rc::new(|| 1_000),
        read_timeout_ms: 1000,
    }
}

#[test]
fn two_concurrent_disables_of_the_last_two_replicas_cannot_both_succeed() {
    let cluster = gated_cluster();
    let meta = Rc::new(MemoryMetaStore::new());
    let queue = VecQueue::default();
    let admin = Admin { cluster: &cluster, meta: &*meta, queue: &queue, hooks: false, resend_after_ms: 0 };
    let registry = |from: &str| {
        let store = cluster.client(&Location::from_code(from), &RoutingSwitch::default(), &FaultPlan::default(), None);
        Registry::new(store, meta.clone(), Box::new(Fixed(1_000)), Box::new(Counter(Cell::new(0))), Config::default())
    };
    let (eu, na) = (registry("EU"), registry("NA"));
    let off = r#"{"enabled":false}"#;
    // Both requests read the switch {a} (the gate holds each until both have), so both
    // see another replica still in routing; then both write.
    let (b, c) = block_on(async {
        futures::join!(
            api::handle_with(&eu, None, Some(&admin), put_request("/admin/replicas/b/routing", off)),
            api::handle_with(&na, None, Some(&admin), put_request("/admin/replicas/c/routing", off)),
        )
    });
    let trace = cluster.replicas[0].store.trace.borrow().clone();
    assert_eq!(trace[..2], ["read", "read"], "both read before either wrote: {trace:?}");
    assert_eq!(trace.iter().filter(|t| **t == "write won").count(), 1, "{trace:?}");
    assert_eq!(trace.iter().filter(|t| **t == "write lost").count(), 1, "the other's swap failed: {trace:?}");
    let mut statuses = [(b.status().as_u16(), "b"), (c.status().as_u16(), "c")];
    statuses.sort();
    let [(200, winner), (409, loser)] = statuses else { panic!("not one 200 and one 409: {statuses:?}") };
    let stored = block_on(cluster.replicas[0].store.inner.get_bytes(&keys::routing_switch())).unwrap().unwrap().1;
    let stored: RoutingSwitch = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored.disabled, ["a", winner], "{loser} was refused, against the switch {winner} wrote");
    let control = cluster.control(&*meta, &FaultPlan::default());
    assert_eq!(block_on(cluster.switch_cache.switch(&control, 1_000, false)), (stored, Source::Cached));
}

#[test]
fn two_isolates_adopting_kvs_switch_at_once_agree() {
    let cluster = gated_cluster();
    block_on(cluster.replicas[0].store.inner.delete(&keys::routing_switch())).unwrap();
    let meta = MemoryMetaStore::new();
    block_on(meta.put(keys::KV_ROUTING, br#"{"disabled":["b"]}"#.to_vec(), None)).unwrap();
    let (one, two) = (cluster.control(&meta, &FaultPlan::default()), cluster.control(&meta, &FaultPlan::default()));
    let (one, two) = block_on(async { futures::join!(one.switch(), two.switch()) });
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!((one.value.disabled.clone(), &one), (vec!["b".to_owned()], &two), "the loser read the winner's");
    let trace = cluster.replicas[0].store.trace.borrow().clone();
    assert_eq!(trace, ["read", "read", "write won", "write lost", "read"], "create-only: one put won");
}

#[test]
fn kvs_switch_and_fault_plan_are_adopted_once_and_changes_are_copied_back() {
    let world = World::new();
    block_on(world.meta.put(keys::KV_ROUTING, br#"{"disabled":["c"]}"#.to_vec(), None)).unwrap();
    block_on(world.meta.put(keys::KV_FAULTS, br#"{"fail":["b"]}"#.to_vec(), None)).unwrap();
    assert!(!world.holds("a", &keys::routing_switch()));

    let report = world.admin(None, None, "GET", "/admin/replicas", "");
    let report: serde_json::Value = serde_json::from_slice(&report.body).unwrap();
    assert_eq!(report["replicas"][2]["routing"], "disabled", "the deployment kept its switch");
    assert!(world.holds("a", &keys::routing_switch()), "adopted into the home bucket");
    assert!(!world.holds("b", &keys::routing_switch()) && !world.holds("c", &keys::routing_switch()));
    let control = world.cluster.control(&*world.meta, &FaultPlan::default());
    assert_eq!(block_on(control.faults()).unwrap().fail, ["b"]);
    assert!(world.holds("a", &keys::fault_plan()));

    // From now on the bucket is the truth: a stale KV value does not come back.
    block_on(world.meta.put(keys::KV_ROUTING, br#"{"disabled":[]}"#.to_vec(), None)).unwrap();
    assert_eq!(world.stored_switch().disabled, ["c"]);
    let on = world.admin(None, None, "PUT", "/admin/replicas/c/routing", r#"{"enabled":true}"#);
    assert_eq!(on.status, 200);
    let off = world.admin(None, None, "PUT", "/admin/replicas/b/routing", r#"{"enabled":false}"#);
    assert_eq!(off.status, 200);
    assert_eq!(world.stored_switch().disabled, ["b"]);
    let copy = block_on(world.meta.get(keys::KV_ROUTING)).unwrap().unwrap();
    assert_eq!(copy.value, br#"{"disabled":["b"]}"#, "each change is copied to KV");
}

#[test]
fn each_isolate_reads_the_switch_again_after_its_ttl() {
    let world = World::new();
    let c = &world.cluster;
    let other = Cluster {
        specs: c.specs.clone(),
        replicas: c.replicas.clone(),
        health: c.health.clone(),
        switch_cache: Rc::new(SwitchCache::default()),
        timer: c.timer.clone(),
        now: c.now.clone(),
        read_timeout_ms: c.read_timeout_ms,
    };
    let t = world.clock.get();
    let control = c.control(&*world.meta, &FaultPlan::default());
    assert_eq!(block_on(c.switch_cache.switch(&control, t, false)), (RoutingSwitch::default(), Source::Home));
    let admin = Admin { cluster: &other, meta: &*world.meta, queue: &world.queue, hooks: false, resend_after_ms: 0 };
    use edge_registry::replication::ReplicationAdmin;
    block_on(admin.set_routing("b", false)).unwrap().unwrap();
    let b_off = RoutingSwitch { disabled: vec!["b".into()] };
    let other_control = other.control(&*world.meta, &FaultPlan::default());
    assert_eq!(block_on(other.switch_cache.switch(&other_control, t, false)), (b_off.clone(), Source::Cached));
    let within = block_on(c.switch_cache.switch(&control, t + SWITCH_TTL_MS - 1, false));
    assert_eq!(within, (RoutingSwitch::default(), Source::Cached), "the first isolate routes by its copy");
    let after = block_on(c.switch_cache.switch(&control, t + SWITCH_TTL_MS, false));
    assert_eq!(after, (b_off, Source::Home), "and sees the change once its copy is older than the TTL");
}

#[test]
fn while_the_home_bucket_is_down_routing_keeps_the_last_switch_and_changes_fail() {
    let world = World::new();
    world.hooks.set(true);
    assert_eq!(world.admin(None, None, "PUT", "/admin/replicas/b/routing", r#"{"enabled":false}"#).status, 200);
    let b_off = RoutingSwitch { disabled: vec!["b".into()] };
    assert_eq!(world.admin(None, None, "PUT", "/admin/faults", r#"{"fail":["a"]}"#).status, 200, "a is home");
    let faults = block_on(world.cluster.control(&*world.meta, &FaultPlan::default()).faults()).unwrap();
    let control = world.cluster.control(&*world.meta, &faults);
    assert_eq!(control.fault, HomeFault::Fail);
    let t = world.clock.get() + SWITCH_TTL_MS;

    // This isolate read it before: it keeps routing by it, and asks again a TTL later.
    let (switch, source) = block_on(world.cluster.switch_cache.switch(&control, t, false));
    assert!(matches!(&source, Source::Fallback(e) if e.contains("home replica a")), "{source:?}");
    assert_eq!(switch, b_off);
    let again = block_on(world.cluster.switch_cache.switch(&control, t + 1, false));
    assert_eq!(again, (b_off.clone(), Source::Cached), "one failed read per TTL, not one per request");
    // An isolate that never read it uses KV's copy; without one, every replica is routable.
    let fresh = SwitchCache::default();
    assert_eq!(block_on(fresh.switch(&control, t, false)).0, b_off);
    block_on(world.meta.delete(keys::KV_ROUTING)).unwrap();
    assert_eq!(block_on(SwitchCache::default().switch(&control, t, false)).0, RoutingSwitch::default());

    // The switch cannot change meanwhile; the status report still answers.
    let change = world.admin(None, None, "PUT", "/admin/replicas/c/routing", r#"{"enabled":false}"#);
    assert_eq!(change.status, 503, "{}", String::from_utf8_lossy(&change.body));
    assert!(matches!(block_on(control.set_routing(&world.cluster.specs, "c", false)), Err(ChangeError::Storage(_))));
    let report = world.admin(None, None, "GET", "/admin/replicas", "");
    assert_eq!(report.status, 200);
    let report: serde_json::Value = serde_json::from_slice(&report.body).unwrap();
    assert_eq!(report["replicas"][1]["routing"], "disabled", "reported by the last switch known");

    // A home that stops answering costs the read timeout, then the same fallback.
    struct Immediate;
    impl Timer for Immediate {
        fn sleep(&self, _ms: u64) -> LocalBoxFuture<'static, ()> {
            Box::pin(async {})
        }
    }
    let stalled = Control { fault: HomeFault::Stall, timer: &Immediate, ..control };
    let (switch, source) = block_on(world.cluster.switch_cache.switch(&stalled, t + SWITCH_TTL_MS, false));
    assert!(matches!(&source, Source::Fallback(e) if e.contains("no answer")), "{source:?}");
    assert_eq!(switch, b_off);

    // The plan is exempt from its own faults, so it can be lifted; then home answers again.
    assert_eq!(world.admin(None, None, "PUT", "/admin/faults", r#"{"fail":[]}"#).status, 200);
    assert_eq!(world.admin(None, None, "PUT", "/admin/replicas/c/routing", r#"{"enabled":false}"#).status, 200);
    assert_eq!(world.stored_switch().disabled, ["b", "c"]);
    let healthy = world.cluster.control(&*world.meta, &FaultPlan::default());
    let stored = block_on(healthy.switch()).unwrap();
    let lost =
        block_on(world.store("a").put_bytes_if(&keys::routing_switch(), vec![], Default::default(), PutIf::Absent));
    assert_eq!(lost.unwrap(), None, "the object exists: a create-only put never replaces it");
    assert!(stored.etag.is_some());
}
