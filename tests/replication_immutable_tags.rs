//! Immutable tags with replicas: the create-only put of an immutable tag is decided in the
//! home replica's bucket wherever the push lands, so a push in another region cannot
//! create the same tag a second time in its own replica before replication catches up.
#![cfg(not(target_arch = "wasm32"))]

mod replica_world;
use replica_world::*;

const TAG_KEY: &str = "repositories/release/app/_tags/v1";

fn world() -> World {
    let world = World::new();
    let rules = serde_json::from_str(r#"[{"repositories": "release/*", "tags": ["v*"]}]"#).unwrap();
    *world.immutable_tags.borrow_mut() = edge_registry::registry::ImmutableTags { rules };
    world
}

/// Pushes the blobs of an image over `layer` from `from` and its manifest as `tag`.
fn push(world: &World, from: &str, tag: &str, layer: &[u8]) -> (Answer, String) {
    let config = br#"{"architecture":"amd64"}"#;
    let c = world.push_blob(from, "release/app", config);
    let l = world.push_blob(from, "release/app", layer);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{c}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{l}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let uri = format!("/v2/release/app/manifests/{tag}");
    (world.send_pinned(from, None, "PUT", &uri, MANIFEST, manifest.as_bytes()), sha256(manifest.as_bytes()))
}

fn resolved(world: &World, from: &str, tag: &str) -> Option<String> {
    let a = world.send(from, "HEAD", &format!("/v2/release/app/manifests/{tag}"), b"");
    (a.status == 200).then(|| a.headers["docker-content-digest"].to_str().unwrap().to_owned())
}

#[test]
fn an_immutable_tag_is_created_in_the_home_replica_and_a_second_region_cannot_move_it() {
    let world = world();
    let (first, digest) = push(&world, "NA", "v1", &data(1000, 1));
    assert_eq!(first.status, 201);
    assert!(world.holds("a", TAG_KEY), "decided in the home replica");
    assert!(!world.holds("b", TAG_KEY) && !world.holds("c", TAG_KEY), "nowhere else before replication");
    let (mutable, _) = push(&world, "NA", "latest", &data(1000, 1));
    assert_eq!(mutable.status, 201);
    assert!(world.holds("b", "repositories/release/app/_tags/latest"), "a mutable tag goes to the writer, as before");
    // Asia's replica has not heard of v1 yet; its push is still decided at home.
    let (second, _) = push(&world, "AS", "v1", &data(1000, 2));
    assert_eq!(second.status, 403, "{}", String::from_utf8_lossy(&second.body));
    assert_eq!(code(&second), "DENIED");
    assert!(!world.holds("c", TAG_KEY), "the refused push created no copy of the tag");
    world.deliver();
    for (from, name) in [("EU", "a"), ("NA", "b"), ("AS", "c")] {
        assert!(world.holds(name, TAG_KEY), "replicated to {name}");
        assert_eq!(resolved(&world, from, "v1"), Some(digest.clone()), "read from {from}");
    }
    let (again, _) = push(&world, "AS", "v1", &data(1000, 1));
    assert_eq!(again.status, 201, "the same manifest again is fine from anywhere");
}

#[test]
fn while_the_home_replica_is_out_of_routing_immutable_tags_wait_and_others_do_not() {
    let world = world();
    world.switch.borrow_mut().disabled = vec!["a".into()];
    let (immutable, _) = push(&world, "NA", "v1", &data(1000, 1));
    assert_eq!(immutable.status, 503, "not decided anywhere but home: {}", String::from_utf8_lossy(&immutable.body));
    assert!(immutable.headers.contains_key("retry-after"));
    assert!(String::from_utf8_lossy(&immutable.body).contains("home replica a"));
    let (mutable, _) = push(&world, "NA", "latest", &data(1000, 1));
    assert_eq!(mutable.status, 201);
    world.switch.borrow_mut().disabled.clear();
    let (retried, digest) = push(&world, "NA", "v1", &data(1000, 1));
    assert_eq!(retried.status, 201, "the retry lands once home is back");
    assert_eq!(resolved(&world, "NA", "v1"), Some(digest));
}
