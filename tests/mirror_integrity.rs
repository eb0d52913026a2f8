//! What the pull-through cache stores, and only that: bytes that hash to their digest, one
//! copy when misses race, an index without the children nobody asked for (and the
//! collector keeps what was asked for), nothing pushed into a cache prefix; and the
//! mirror host that docker's `registry-mirrors` needs.

mod common;

use common::cache::{upstream_image, Cache};
use common::{sha256, OCI_INDEX, OCI_MANIFEST};
use edge_registry::mirror::fake::Health;
use edge_registry::storage::faulty::Op;
use futures::executor::block_on;
use std::task::{Context, Poll};

fn blob_key(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap())
}

#[test]
fn a_corrupt_upstream_blob_is_refused_and_not_stored() {
    let cache = Cache::new();
    let image = upstream_image(&cache.upstream, "library/app", "1", 1);
    let (layer, bytes) = image.blobs[1].clone();
    cache.upstream.corrupt(&layer.parse().unwrap());
    assert_eq!(cache.get("/v2/hub/app/manifests/1").status, 200);
    let refused = cache.get(&format!("/v2/hub/app/blobs/{layer}"));
    refused.assert_error(502, "BLOB_UNKNOWN");
    assert!(refused.json()["errors"][0]["message"].as_str().unwrap().contains("nothing was stored"));
    assert!(!cache.stored(&blob_key(&layer)), "no object under the digest");
    assert!(!cache.stored(&format!("repositories/hub/app/_blobs/sha256/{}", &layer[7..])), "no link");
    cache.upstream.set_health(Health::Down);
    cache.get(&format!("/v2/hub/app/blobs/{layer}")).assert_error(502, "BLOB_UNKNOWN");
    // Once the upstream serves it intact, the same cache takes it.
    cache.upstream.set_health(Health::Up);
    cache.upstream.serve_intact(&layer.parse().unwrap());
    assert_eq!(cache.get(&format!("/v2/hub/app/blobs/{layer}")).body, bytes);
}

/// A blob this registry holds for another name is linked into a cache name only once the
/// upstream's bytes hash to it: an upstream cannot make a cache name serve a private blob
/// by naming its digest.
#[test]
fn a_blob_stored_for_another_name_is_linked_only_on_the_upstreams_proof() {
    let cache = Cache::new();
    let private = common::bytes(3000, 9);
    let digest = sha256(&private);
    let pushed = cache.send("POST", &format!("/v2/team/secret/blobs/uploads/?digest={digest}"), &private);
    assert_eq!(pushed.status, 201, "{}", String::from_utf8_lossy(&pushed.body));
    let uri = format!("/v2/hub/app/blobs/{digest}");
    cache.get(&uri).assert_error(404, "BLOB_UNKNOWN");
    let parsed = digest.parse().unwrap();
    assert_eq!(cache.upstream.put_blob(&private), parsed);
    cache.upstream.corrupt(&parsed);
    cache.get(&uri).assert_error(502, "BLOB_UNKNOWN");
    assert!(!cache.stored(&format!("repositories/hub/app/_blobs/sha256/{}", &digest[7..])), "not linked");
    cache.upstream.serve_intact(&parsed);
    let proven = cache.get(&uri);
    assert_eq!((proven.status, proven.body == private), (200, true));
}

#[test]
fn a_manifest_that_does_not_hash_to_its_digest_is_refused() {
    let cache = Cache::new();
    let image = upstream_image(&cache.upstream, "library/app", "1", 1);
    cache.upstream.corrupt(&image.digest.parse().unwrap());
    cache.get("/v2/hub/app/manifests/1").assert_error(502, "MANIFEST_UNKNOWN");
    cache.get(&format!("/v2/hub/app/manifests/{}", image.digest)).assert_error(502, "MANIFEST_UNKNOWN");
    assert!(!cache.stored(&format!("manifests/sha256/{}", &image.digest[7..])));
    assert!(!cache.stored("repositories/hub/app/_tags/1"));
}

fn poll(request: &mut futures::future::LocalBoxFuture<'_, common::Answer>) -> Option<common::Answer> {
    match request.as_mut().poll(&mut Context::from_waker(futures::task::noop_waker_ref())) {
        Poll::Ready(answer) => Some(answer),
        Poll::Pending => None,
    }
}

/// Two misses of one blob: the first is held just before its put; the second, its wait for
/// the first's lease run out, fills the blob itself; the first then lands its put of the same verified bytes on the same key: both
/// clients are served the one verified object. A put refused because the other landed
/// (R2's one write a second per key) is a 503, and the retry links what is stored once the
/// upstream's bytes prove it.
#[test]
fn racing_misses_of_one_blob_leave_one_verified_copy() {
    let cache = Cache::new();
    let image = upstream_image(&cache.upstream, "library/app", "1", 1);
    let (layer, bytes) = image.blobs[2].clone();
    let uri = format!("/v2/hub/app/blobs/{layer}");
    cache.reg.blob_store().hold(Op::PutVerified, &blob_key(&layer));
    let mut first = cache.start("GET", &uri, b"");
    assert!(poll(&mut first).is_none(), "held before its put");
    cache.reg.blob_store().release();
    let second = cache.get(&uri);
    assert_eq!((second.status, second.body == bytes), (200, true));
    let first = block_on(first);
    assert_eq!((first.status, first.body == bytes), (200, true));
    let stored =
        block_on(edge_registry::storage::BlobStore::get_bytes(cache.reg.blob_store().inner(), &blob_key(&layer)));
    assert_eq!(stored.unwrap().unwrap().1, bytes, "the one object holds the verified bytes");

    // A put that fails though the other landed is a 503; the retry proves and links.
    let (other, other_bytes) = image.blobs[3].clone();
    let uri = format!("/v2/hub/app/blobs/{other}");
    cache.reg.blob_store().hold(Op::PutVerified, &blob_key(&other));
    let mut first = cache.start("GET", &uri, b"");
    assert!(poll(&mut first).is_none(), "held before its put");
    cache.reg.blob_store().release();
    assert_eq!(cache.get(&uri).status, 200, "the other request fills the blob");
    cache.reg.blob_store().fail_times(Op::PutVerified, &blob_key(&other), 1);
    block_on(first).assert_error(503, "UNSUPPORTED");
    let retried = cache.get(&uri);
    assert_eq!((retried.status, retried.body == other_bytes), (200, true));
}

/// An index is stored without its children; the one platform asked for is fetched with
/// its blobs, the other never; the collector keeps what was fetched, and the cached index
/// and platform are served with the upstream gone.
#[test]
fn an_index_is_cached_without_the_children_nobody_asked_for() {
    let cache = Cache::new();
    let amd = upstream_image(&cache.upstream, "library/app", "amd64-only", 1);
    let arm = upstream_image(&cache.upstream, "library/app", "arm64-only", 2);
    let entry = |d: &str, n: usize, arch: &str| {
        format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":{n},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#
        )
    };
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{},{}]}}"#,
        entry(&amd.digest, amd.manifest.len(), "amd64"),
        entry(&arm.digest, arm.manifest.len(), "arm64")
    );
    let index_digest =
        cache.upstream.put_manifest("library/app", Some("multi"), OCI_INDEX, index.as_bytes()).to_string();
    assert_eq!(cache.get("/v2/hub/app/manifests/multi").header("docker-content-digest"), Some(index_digest.as_str()));
    assert_eq!(cache.get(&format!("/v2/hub/app/manifests/{}", amd.digest)).status, 200);
    for (digest, _) in &amd.blobs {
        assert_eq!(cache.get(&format!("/v2/hub/app/blobs/{digest}")).status, 200);
    }
    let fetched = cache.upstream_requests();
    assert!(!fetched.iter().any(|r| r.contains(&arm.digest[7..])), "the other platform is never fetched: {fetched:#?}");
    assert!(!cache.stored(&format!("manifests/sha256/{}", &arm.digest[7..])));

    for _ in 0..2 {
        cache.clock.advance(1_000);
        let job = cache.collect(None);
        assert_eq!(job.report.incomplete, None, "an absent child is absent, not a failure");
        assert_eq!(job.report.deleted.items, 0, "nothing fetched is garbage: {:?}", job.report);
    }
    cache.upstream.set_health(Health::Down);
    assert_eq!(cache.get("/v2/hub/app/manifests/multi").status, 200);
    for (digest, bytes) in &amd.blobs {
        assert_eq!(&cache.get(&format!("/v2/hub/app/blobs/{digest}")).body, bytes);
    }
    cache.get(&format!("/v2/hub/app/manifests/{}", arm.digest)).assert_error(502, "MANIFEST_UNKNOWN");
}

#[test]
fn pushes_into_a_cache_prefix_are_refused_and_a_head_stores_nothing() {
    let cache = Cache::new();
    let image = upstream_image(&cache.upstream, "library/app", "1", 1);
    for (method, uri) in [
        ("POST", "/v2/hub/app/blobs/uploads/".to_owned()),
        ("PUT", "/v2/hub/app/manifests/2".to_owned()),
        ("POST", format!("/v2/hub/app/blobs/uploads/?mount={}&from=team/app", image.blobs[0].0)),
    ] {
        let refused = cache.send(method, &uri, &image.manifest);
        refused.assert_error(403, "DENIED");
        assert!(refused.json()["errors"][0]["message"].as_str().unwrap().contains("pull-through cache"));
    }
    assert_eq!(cache.send("POST", "/v2/team/app/blobs/uploads/", b"").status, 202, "other names take pushes");

    let (layer, bytes) = image.blobs[1].clone();
    let head = cache.send("HEAD", &format!("/v2/hub/app/blobs/{layer}"), b"");
    assert_eq!((head.status, head.header("content-length")), (200, Some(bytes.len().to_string().as_str())));
    assert!(!cache.stored(&blob_key(&layer)), "a HEAD asks upstream and stores nothing");
    assert_eq!(sha256(&cache.get(&format!("/v2/hub/app/blobs/{layer}")).body), layer);
}

/// docker's `registry-mirrors` sends Docker Hub's names to the mirror host's root.
#[test]
fn a_mirror_host_serves_docker_hub_names_from_the_hub_prefix() {
    let cache = Cache::new();
    let image = upstream_image(&cache.upstream, "library/app", "1", 1);
    let mirrored = cache.get("http://mirror.test/v2/library/app/manifests/1");
    assert_eq!(mirrored.header("docker-content-digest"), Some(image.digest.as_str()));
    let same = cache.get("/v2/hub/library/app/manifests/1");
    assert_eq!(same.header("x-edge-registry-upstream"), Some("hit"), "the same repository as hub/library/app");
    assert_eq!(cache.get("http://mirror.test/v2/").status, 200);
    assert_eq!(cache.get("http://other.test/v2/library/app/manifests/1").status, 404, "other hosts are not mapped");
}

/// A second miss of a blob another request is fetching waits for that fetch (the lease):
/// one upstream transfer, both served, the lease gone after.
#[test]
fn a_second_miss_waits_for_the_first_fetch() {
    let cache = Cache::new();
    let image = upstream_image(&cache.upstream, "library/app", "1", 1);
    let (layer, bytes) = image.blobs[1].clone();
    let uri = format!("/v2/hub/app/blobs/{layer}");
    cache.upstream_requests();
    cache.reg.blob_store().hold(Op::PutVerified, &blob_key(&layer));
    let mut first = cache.start("GET", &uri, b"");
    assert!(poll(&mut first).is_none(), "held before its put");
    let mut second = cache.start("GET", &uri, b"");
    assert!(poll(&mut second).is_none(), "waiting");
    assert_eq!(cache.upstream.pauses(), 1);
    cache.reg.blob_store().release();
    assert_eq!(block_on(first).body, bytes);
    let second = block_on(second);
    assert_eq!(
        (second.status, second.body == bytes, second.header("x-edge-registry-upstream")),
        (200, true, Some("hit"))
    );
    let fetched = cache.upstream_requests();
    assert_eq!(fetched.iter().filter(|r| r.contains(&layer)).count(), 1, "one transfer: {fetched:#?}");
    assert!(!cache.stored(&format!("repositories/hub/app/_upstream/fills/sha256/{}", &layer[7..])), "lease ended");
}

/// A waiter whose filler failed fetches for itself; a stale lease (its request died) is
/// taken over at once.
#[test]
fn an_abandoned_or_stale_lease_is_no_wait() {
    let cache = Cache::new();
    let image = upstream_image(&cache.upstream, "library/app", "1", 1);
    let (layer, bytes) = image.blobs[1].clone();
    let uri = format!("/v2/hub/app/blobs/{layer}");
    cache.upstream.corrupt(&layer.parse().unwrap());
    cache.reg.blob_store().hold(Op::PutVerified, &blob_key(&layer));
    let mut first = cache.start("GET", &uri, b"");
    assert!(poll(&mut first).is_none());
    let mut second = cache.start("GET", &uri, b"");
    assert!(poll(&mut second).is_none(), "waiting");
    cache.reg.blob_store().release();
    block_on(first).assert_error(502, "BLOB_UNKNOWN");
    cache.upstream_requests();
    block_on(second).assert_error(502, "BLOB_UNKNOWN");
    assert_eq!(cache.upstream_requests().len(), 1, "it fetched for itself");

    cache.upstream.serve_intact(&layer.parse().unwrap());
    let (other, other_bytes) = image.blobs[2].clone();
    let lease = format!("repositories/hub/app/_upstream/fills/sha256/{}", &other[7..]);
    let stale = cache.reg.now_millis() - edge_registry::registry::FILL_LEASE_MS;
    let metadata = [("started-at".to_owned(), stale.to_string())].into_iter().collect();
    block_on(edge_registry::storage::BlobStore::put_bytes(cache.reg.blob_store(), &lease, Vec::new(), metadata))
        .unwrap();
    let pauses = cache.upstream.pauses();
    let taken = cache.get(&format!("/v2/hub/app/blobs/{other}"));
    assert_eq!((taken.status, taken.body == other_bytes), (200, true));
    assert_eq!(cache.upstream.pauses(), pauses, "no wait for a dead request");
    assert_eq!(cache.get(&uri).body, bytes);
}

/// Two requests refreshing one tag while the upstream moves it: the first, with the old
/// digest, is held before its tag write; the second writes the new digest; the first then
/// lands last. The tag names a manifest that is stored either way (each request stores and
/// links its manifest before the tag), and the next check after the TTL corrects it.
#[test]
fn racing_refreshes_of_a_tag_leave_a_stored_manifest_corrected_at_the_next_check() {
    let cache = Cache::new();
    let old = upstream_image(&cache.upstream, "library/app", "latest", 1);
    let tag_key = "repositories/hub/app/_tags/latest";
    cache.reg.blob_store().hold(Op::PutBytes, tag_key);
    let mut slow = cache.start("GET", "/v2/hub/app/manifests/latest", b"");
    assert!(poll(&mut slow).is_none(), "held before its tag write");
    cache.reg.blob_store().release();
    let new = upstream_image(&cache.upstream, "library/app", "latest", 2);
    let fast = cache.get("/v2/hub/app/manifests/latest");
    assert_eq!(fast.header("docker-content-digest"), Some(new.digest.as_str()));
    assert_eq!(block_on(slow).header("docker-content-digest"), Some(old.digest.as_str()));

    cache.upstream.set_health(Health::Down);
    let tagged = cache.get("/v2/hub/app/manifests/latest");
    assert_eq!(tagged.header("docker-content-digest"), Some(old.digest.as_str()), "the last write won");
    for digest in [&old.digest, &new.digest] {
        assert_eq!(cache.get(&format!("/v2/hub/app/manifests/{digest}")).status, 200, "both stored");
    }
    cache.upstream.set_health(Health::Up);
    cache.clock.advance(common::cache::TTL_MS);
    let corrected = cache.get("/v2/hub/app/manifests/latest");
    assert_eq!(corrected.header("docker-content-digest"), Some(new.digest.as_str()), "corrected at the next check");
}
