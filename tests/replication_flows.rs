//! Geo-replication over three limit-enforcing in-memory buckets: routing, read fallback,
//! failover and failback, the routing switch, verified copies, and the repair job.

mod replica_world;
use replica_world::*;

#[test]
fn a_push_lands_in_the_nearest_replica_and_replicates_everywhere_verified() {
    let world = World::new();
    let (manifest, layer) = world.push_image("AS", "team/app", "v1", &data(3000, 1));
    let layer_key = blob_key(&layer);
    assert!(world.holds("c", &layer_key), "the push landed in the Asian replica");
    assert!(!world.holds("a", &layer_key) && !world.holds("b", &layer_key), "replication is asynchronous");
    assert!(world.pending_markers() > 0, "pending changes are recorded in the source replica");

    let outcomes = world.deliver();
    assert!(!outcomes.is_empty() && outcomes.iter().all(|o| matches!(o, Ok(Applied::Copied))), "{outcomes:?}");
    let manifest_key = keys::manifest(&manifest.parse().unwrap());
    for replica in ["a", "b", "c"] {
        assert!(world.holds(replica, &layer_key), "{replica} holds the layer");
        assert!(world.holds(replica, &manifest_key), "{replica} holds the manifest");
        assert!(world.holds(replica, "repositories/team/app/_tags/v1"), "{replica} holds the tag");
        assert!(world.holds(replica, "catalog/team/app"), "{replica} lists the repository");
    }
    assert_eq!(world.pending_markers(), 0, "markers are removed once copied");
    // Each replica serves the image on its own, without falling back.
    for replica in ["a", "b"] {
        let a = world.send_pinned("EU", Some(replica), "GET", "/v2/team/app/manifests/v1", "", b"");
        assert_eq!(a.status, 200, "{replica} serves the tag alone");
        let a = world.send_pinned("EU", Some(replica), "GET", &format!("/v2/team/app/blobs/{layer}"), "", b"");
        assert_eq!((a.status, sha256(&a.body)), (200, layer.clone()));
    }
    // Delivering the same messages again changes nothing.
    let again = world.repair();
    assert_eq!((again.resent, again.missing), (0, 0));
}

#[test]
fn a_pull_falls_back_to_the_replica_that_has_the_content_before_it_replicates() {
    let world = World::new();
    let (_, layer) = world.push_image("EU", "app", "v1", &data(5000, 2));
    let a = world.send("NA", "GET", &format!("/v2/app/blobs/{layer}"), b"");
    assert_eq!((a.status, sha256(&a.body)), (200, layer.clone()), "served from Europe to America");
    assert_eq!(world.send("NA", "GET", "/v2/app/manifests/v1", b"").status, 200);
    let tags = world.send("NA", "GET", "/v2/app/tags/list", b"");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&tags.body).unwrap()["tags"], serde_json::json!(["v1"]));
    let pinned = world.send_pinned("NA", Some("b"), "GET", &format!("/v2/app/blobs/{layer}"), "", b"");
    assert_eq!(pinned.status, 404, "America itself does not have it yet");
}

#[test]
fn a_failing_replica_is_routed_around_then_probed_again_after_its_backoff() {
    let world = World::new();
    let (_, layer) = world.push_image("NA", "app", "v1", &data(4000, 3));
    world.deliver();
    world.faults.borrow_mut().fail = vec!["b".into()];
    let a = world.send("NA", "GET", &format!("/v2/app/blobs/{layer}"), b"");
    assert_eq!((a.status, sha256(&a.body)), (200, layer.clone()), "the pull completes from another replica");
    // A push from America while its replica is down lands elsewhere and still completes.
    let (_, layer2) = world.push_image("NA", "app", "v2", &data(6000, 4));
    assert!(!world.holds("b", &blob_key(&layer2)));
    assert!(world.holds("a", &blob_key(&layer2)), "home took the writes");
    let b = world.cluster.specs.iter().position(|s| s.name == "b").unwrap();
    assert!(!world.cluster.health.report(b, world.clock.get()).healthy);
    // Replication into the failed replica is retried, not lost.
    let outcomes = world.deliver();
    assert!(outcomes.iter().any(|o| o.is_err()), "copies into b fail while it is down");
    world.faults.borrow_mut().fail.clear();
    let (client_before, _) = world.ops("b");
    world.send("NA", "GET", "/v2/app/manifests/v2", b"");
    assert_eq!(world.ops("b").0, client_before, "still skipped during the back-off");
    // Each failed copy attempt doubled the back-off; past the longest one, b is probed.
    world.clock.set(world.clock.get() + edge_registry::replication::health::MAX_BACKOFF_MS);
    assert_eq!(world.send("NA", "GET", "/v2/app/manifests/v2", b"").status, 200);
    assert!(world.ops("b").0 > client_before, "probed after the back-off");
    assert!(world.cluster.health.report(b, world.clock.get()).healthy, "failback without intervention");
    assert!(world.deliver().iter().all(|o| o.is_ok()));
    assert!(world.holds("b", &blob_key(&layer2)), "b caught up");
}

#[test]
fn a_replica_out_of_routing_gets_no_client_traffic_but_keeps_receiving_replication() {
    let world = World::new();
    world.switch.borrow_mut().disabled = vec!["a".into()];
    let before = world.ops("a");
    let (manifest, layer) = world.push_image("EU", "app", "v1", &data(7000, 5));
    assert_eq!(world.send("EU", "GET", &format!("/v2/app/blobs/{layer}"), b"").status, 200);
    assert_eq!(world.send("EU", "GET", "/v2/app/manifests/v1", b"").status, 200);
    assert_eq!(world.ops("a").0, before.0, "no client operation touched a");
    assert!(!world.holds("a", &blob_key(&layer)));
    world.deliver();
    assert!(world.holds("a", &blob_key(&layer)), "replication into a continues");
    assert!(world.ops("a").1 > before.1);
    world.switch.borrow_mut().disabled.clear();
    let a = world.send_pinned("EU", Some("a"), "GET", "/v2/app/manifests/v1", "", b"");
    assert_eq!(a.status, 200, "re-enabled, a serves what was pushed meanwhile");
    assert_eq!(a.headers["docker-content-digest"].to_str().unwrap(), manifest);
}

#[test]
fn a_lost_message_is_restored_by_the_repair_job() {
    let world = World::new();
    world.faults.borrow_mut().drop = vec!["b".into()];
    let (_, layer) = world.push_image("EU", "app", "v1", &data(2000, 6));
    let outcomes = world.deliver();
    assert!(outcomes.iter().any(|o| matches!(o, Ok(Applied::Dropped))));
    assert!(!world.holds("b", &blob_key(&layer)) && world.holds("c", &blob_key(&layer)));
    world.faults.borrow_mut().drop.clear();
    let report = world.repair();
    assert!(report.resent > 0, "{report:?}");
    world.deliver();
    assert!(world.holds("b", &blob_key(&layer)), "repair restored the copy");
    assert!(world.holds("b", "repositories/app/_tags/v1"));
    assert_eq!(world.pending_markers(), 0);
}

#[test]
fn repair_finds_content_missing_without_any_marker() {
    let world = World::new();
    let (_, layer) = world.push_image("EU", "app", "v1", &data(2500, 7));
    world.queue.0.borrow_mut().clear();
    for replica in world.cluster.replicas.iter() {
        for key in replica.store.keys().into_iter().filter(|k| k.starts_with("replication/")) {
            block_on(replica.store.delete(&key)).unwrap();
        }
    }
    let report = world.repair();
    assert!(report.missing >= 2 * 3, "3 content keys missing from 2 replicas: {report:?}");
    world.deliver();
    assert!(world.holds("c", &blob_key(&layer)));
}

#[test]
fn a_corrupt_source_is_never_copied() {
    let world = World::new();
    let layer = world.push_blob("EU", "app", &data(3000, 8));
    world.store("a").corrupt(&blob_key(&layer), b"not the layer".to_vec());
    let outcomes = world.deliver();
    assert!(outcomes.iter().any(|o| o.as_ref().is_err_and(|e| e.contains("does not hash"))), "{outcomes:?}");
    assert!(!world.holds("b", &blob_key(&layer)) && !world.holds("c", &blob_key(&layer)));
}

#[test]
fn an_assembled_multipart_blob_replicates_with_its_bytes() {
    let world = World::new();
    let layer = data(11 * MIB + 7, 9);
    let digest = sha256(&layer);
    let post = world.send("AS", "POST", "/v2/big/blobs/uploads/", b"");
    let location = post.headers["location"].to_str().unwrap().to_owned();
    assert!(location.rsplit('/').next().unwrap().starts_with('2'), "the session id names replica c");
    let mut offset = 0;
    for chunk in layer.chunks(4 * MIB) {
        let range = format!("{}-{}", offset, offset + chunk.len() - 1);
        // Requests from elsewhere still find the session in its replica.
        let store_request = world.send_range("EU", &location, &range, chunk);
        assert_eq!(store_request, 202);
        offset += chunk.len();
    }
    let put = world.send("EU", "PUT", &format!("{location}?digest={digest}"), b"");
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    let pointer = block_on(world.store("c").head(&blob_key(&digest))).unwrap().unwrap();
    assert!(pointer.metadata.contains_key(keys::POINTER_TARGET), "stored as a pointer to the assembled object");
    assert!(world.deliver().iter().all(|o| o.is_ok()));
    let a = world.send_pinned("EU", Some("a"), "GET", &format!("/v2/big/blobs/{digest}"), "", b"");
    assert_eq!((a.status, a.body.len(), sha256(&a.body)), (200, layer.len(), digest));
}

#[test]
fn deletes_and_moved_tags_replicate_and_the_newest_write_wins() {
    let world = World::new();
    let (first, _) = world.push_image("EU", "app", "v1", &data(1000, 10));
    world.deliver();
    world.clock.set(world.clock.get() + 1000);
    let (second, _) = world.push_image("AS", "app", "v1", &data(1100, 11));
    world.deliver();
    for replica in ["a", "b", "c"] {
        let a = world.send_pinned("EU", Some(replica), "GET", "/v2/app/manifests/v1", "", b"");
        assert_eq!(a.headers["docker-content-digest"].to_str().unwrap(), second, "{replica} has the moved tag");
    }
    assert_ne!(first, second);
    // An older message delivered late does not undo the newer tag.
    let stale = Message {
        key: "repositories/app/_tags/v1".into(),
        kind: edge_registry::replication::ChangeKind::Put,
        source: "a".into(),
        target: "c".into(),
        enqueued_at: 0,
    };
    let store = world.cluster.maintenance(&RoutingSwitch::default(), &FaultPlan::default());
    assert_eq!(block_on(apply(&store, &stale)), Ok(Applied::AlreadyThere));
    // A delete reaches every routable replica at once.
    world.switch.borrow_mut().disabled = vec!["b".into()];
    assert_eq!(world.send("EU", "DELETE", "/v2/app/manifests/v1", b"").status, 202);
    assert!(!world.holds("a", "repositories/app/_tags/v1") && !world.holds("c", "repositories/app/_tags/v1"));
    assert!(world.holds("b", "repositories/app/_tags/v1"), "b is out of routing: replication deletes it");
    world.deliver();
    assert!(!world.holds("b", "repositories/app/_tags/v1"));
}

#[test]
fn listings_merge_every_replica_without_skipping_keys() {
    let world = World::new();
    let digest = world.push_blob("EU", "app", b"{}");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":2}},"layers":[]}}"#
    );
    for (i, from) in ["EU", "NA", "AS"].iter().cycle().take(9).enumerate() {
        let a = world.send_pinned(from, None, "PUT", &format!("/v2/app/manifests/t{i}"), MANIFEST, manifest.as_bytes());
        assert_eq!(a.status, 201);
    }
    let mut seen = Vec::new();
    let mut uri = "/v2/app/tags/list?n=2".to_owned();
    loop {
        let a = world.send("NA", "GET", &uri, b"");
        let page: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        seen.extend(page["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()));
        match a.headers.get("link") {
            Some(link) => {
                let link = link.to_str().unwrap();
                uri = link[link.find('<').unwrap() + 1..link.find('>').unwrap()].to_owned();
            }
            None => break,
        }
    }
    let expected: Vec<String> = (0..9).map(|i| format!("t{i}")).collect();
    assert_eq!(seen, expected, "tags written in three replicas list once each, in order, before replication");
}

#[test]
fn a_single_replica_records_nothing_to_replicate() {
    let specs = r#"[{"name":"only","binding":"BLOBS","region":"auto","home":true}]"#;
    let specs = Rc::new(parse_replicas(specs).unwrap());
    let cluster = Cluster {
        replicas: Rc::new(vec![Replica { name: "only".into(), store: MemoryBlobStore::new() }]),
        health: Rc::new(Health::new(1, 1000)),
        switch_cache: Rc::new(SwitchCache::default()),
        specs,
        timer: Rc::new(NeverFires),
        now: Rc::new(|| 0),
        read_timeout_ms: 1000,
    };
    let store = cluster.client(&Location::default(), &RoutingSwitch::default(), &FaultPlan::default(), None);
    block_on(store.put_bytes("catalog/x", Vec::new(), Default::default())).unwrap();
    assert!(store.take_changes().is_empty());
}

#[test]
fn an_upload_open_in_a_failed_replica_gets_503s_until_it_is_back_and_a_restarted_one_lands_elsewhere() {
    let world = World::new();
    let post = world.send("NA", "POST", "/v2/app/blobs/uploads/", b"");
    let location = post.headers["location"].to_str().unwrap().to_owned();
    assert!(location.rsplit('/').next().unwrap().starts_with('1'), "the session lives in b");
    world.faults.borrow_mut().fail = vec!["b".into()];
    let first = world.send("NA", "GET", &location, b"");
    assert_eq!(first.status, 503, "the failure that reveals the outage (retry later)");
    assert!(first.headers.contains_key("retry-after"));
    // The session lives in b alone: while b is in its back-off it is still asked (never
    // "unknown", which would tell the client its bytes are gone).
    let later = world.send("NA", "GET", &location, b"");
    assert_eq!(later.status, 503, "while b is down the session is unavailable, not unknown");
    let retry = world.send("NA", "POST", "/v2/app/blobs/uploads/", b"");
    assert_eq!(retry.status, 202);
    let id = retry.headers["location"].to_str().unwrap().rsplit('/').next().unwrap().to_owned();
    assert!(id.starts_with('0'), "the new session opened in home (a), the next replica: {id}");
    let digest = world.push_blob("NA", "app", b"restarted");
    assert!(world.holds("a", &blob_key(&digest)));
    world.faults.borrow_mut().fail.clear();
    assert_eq!(world.send("NA", "GET", &location, b"").status, 204, "back: the session continues");
}

#[test]
fn a_blob_over_the_single_put_limit_is_copied_part_by_part_and_rehashed() {
    let world = World::new();
    for replica in world.cluster.replicas.iter() {
        replica.store.set_single_put_limit(6 * MIB as u64); // stands in for R2's 5 GiB
    }
    let layer = data(13 * MIB + 3, 12);
    let digest = sha256(&layer);
    let location =
        world.send("EU", "POST", "/v2/big/blobs/uploads/", b"").headers["location"].to_str().unwrap().to_owned();
    let mut offset = 0;
    for chunk in layer.chunks(5 * MIB) {
        let range = format!("{}-{}", offset, offset + chunk.len() - 1);
        assert_eq!(world.send_range("EU", &location, &range, chunk), 202);
        offset += chunk.len();
    }
    assert_eq!(world.send("EU", "PUT", &format!("{location}?digest={digest}"), b"").status, 201);
    let outcomes = world.deliver();
    assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
    for replica in ["b", "c"] {
        let a = world.send_pinned("EU", Some(replica), "GET", &format!("/v2/big/blobs/{digest}"), "", b"");
        assert_eq!((a.status, a.body.len(), sha256(&a.body)), (200, layer.len(), digest.clone()), "{replica}");
        assert_eq!(world.store(replica).pending_multipart_uploads(), 0, "{replica}: the multipart copy completed");
    }
}

#[test]
fn opening_an_upload_when_the_nearest_replica_just_failed_lands_in_the_next() {
    let world = World::new();
    world.faults.borrow_mut().fail = vec!["b".into()];
    // The first request from America learns of the outage while creating the session.
    let post = world.send("NA", "POST", "/v2/app/blobs/uploads/", b"");
    assert_eq!(post.status, 202, "{}", String::from_utf8_lossy(&post.body));
    let id = post.headers["location"].to_str().unwrap().rsplit('/').next().unwrap().to_owned();
    assert!(id.starts_with('0'), "the session opened in home (a): {id}");
    assert_eq!(world.ops("b").0, 0, "the failed write did not count as served by b");
}
