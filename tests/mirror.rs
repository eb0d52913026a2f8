//! The pull-through cache end to end over the in-memory stores and upstream: a miss
//! fetches and stores, a second pull needs no upstream, a tag is checked again only after
//! its TTL, a failing upstream gives the stale copy, and credentials stay upstream.

mod common;

use common::cache::{upstream_image, Cache, TTL_MS};
use edge_registry::mirror::fake::Health;
use edge_registry::mirror::Credentials;

const HEADER: &str = "x-edge-registry-upstream";

/// Pulls `hub/app:<tag>` as a client does: the manifest, then each blob.
fn pull(cache: &Cache, tag: &str) -> (String, Vec<Vec<u8>>) {
    let manifest = cache.get(&format!("/v2/hub/app/manifests/{tag}"));
    assert_eq!(manifest.status, 200, "{}", String::from_utf8_lossy(&manifest.body));
    let parsed: serde_json::Value = serde_json::from_slice(&manifest.body).unwrap();
    let mut digests = vec![parsed["config"]["digest"].as_str().unwrap().to_owned()];
    digests.extend(parsed["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()));
    let blobs = digests
        .iter()
        .map(|d| {
            let blob = cache.get(&format!("/v2/hub/app/blobs/{d}"));
            assert_eq!(blob.status, 200, "{}", String::from_utf8_lossy(&blob.body));
            assert_eq!(&common::sha256(&blob.body), d, "a blob is served as its digest names");
            blob.body
        })
        .collect();
    (manifest.header("docker-content-digest").unwrap().to_owned(), blobs)
}

#[test]
fn a_miss_is_fetched_once_and_a_second_pull_needs_no_upstream() {
    let cache = Cache::new();
    let image = upstream_image(&cache.upstream, "library/app", "1", 1);
    let (digest, blobs) = pull(&cache, "1");
    assert_eq!(digest, image.digest, "the digest upstream's");
    assert_eq!(blobs, image.blobs.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>());
    let cold = cache.upstream_requests();
    assert_eq!(cold.len(), 5, "one GET per manifest and blob, nothing more: {cold:#?}");
    assert!(cold[0].starts_with("GET https://upstream.test/v2/library/app/manifests/1"), "{cold:#?}");
    assert!(cold.iter().all(|r| r.starts_with("GET ")), "{cold:#?}");

    cache.upstream.set_health(Health::Down);
    let (again, blobs_again) = pull(&cache, "1");
    assert_eq!((again, blobs_again), (image.digest.clone(), blobs), "served from the cache");
    assert!(cache.upstream_requests().is_empty(), "within the TTL nothing is asked upstream");
    let by_digest = cache.get(&format!("/v2/hub/app/manifests/{}", image.digest));
    assert_eq!((by_digest.status, by_digest.header(HEADER)), (200, Some("hit")));
    assert_eq!(by_digest.body, image.manifest, "the bytes upstream sent");
    // Another name under the prefix is not cached: the failing upstream is a 502 to retry.
    let other = cache.get("/v2/hub/other/manifests/1");
    other.assert_error(502, "MANIFEST_UNKNOWN");
    assert!(other.header("retry-after").is_some());
}

#[test]
fn a_moved_tag_is_seen_after_the_ttl_and_not_before() {
    let cache = Cache::new();
    let first = upstream_image(&cache.upstream, "library/app", "latest", 1);
    assert_eq!(pull(&cache, "latest").0, first.digest);
    cache.upstream_requests();
    let second = upstream_image(&cache.upstream, "library/app", "latest", 2);

    cache.clock.advance(TTL_MS - 1);
    let within = cache.get("/v2/hub/app/manifests/latest");
    assert_eq!(
        (within.header("docker-content-digest"), within.header(HEADER)),
        (Some(first.digest.as_str()), Some("hit"))
    );
    assert!(cache.upstream_requests().is_empty());

    cache.clock.advance(1);
    let (digest, _) = pull(&cache, "latest");
    assert_eq!(digest, second.digest, "moved upstream, moved here");
    let refresh = cache.upstream_requests();
    assert!(
        refresh[0].starts_with("HEAD ") && refresh[1].starts_with("GET "),
        "a HEAD, then the new manifest: {refresh:#?}"
    );
    assert_eq!(refresh.len(), 2 + 4, "and the new image's blobs: {refresh:#?}");

    // Unchanged after another TTL: one HEAD, nothing fetched.
    cache.clock.advance(TTL_MS);
    let checked = cache.get("/v2/hub/app/manifests/latest");
    assert_eq!(checked.header(HEADER), Some("revalidated"));
    assert_eq!(cache.upstream_requests().len(), 1, "one HEAD");
    assert_eq!(cache.get("/v2/hub/app/manifests/latest").header(HEADER), Some("hit"), "trusted again");
}

#[test]
fn a_failing_upstream_gives_the_stale_tag() {
    let cache = Cache::new();
    let image = upstream_image(&cache.upstream, "library/app", "1", 1);
    pull(&cache, "1");
    for health in [Health::Status(429), Health::Status(503), Health::Status(500), Health::Down] {
        cache.clock.advance(TTL_MS);
        cache.upstream.set_health(health);
        let stale = cache.get("/v2/hub/app/manifests/1");
        assert_eq!(stale.status, 200, "{health:?}");
        assert_eq!(stale.header("docker-content-digest"), Some(image.digest.as_str()));
        assert_eq!(stale.header(HEADER), Some("stale"), "{health:?}");
        assert!(stale.header("warning").is_some_and(|w| w.starts_with("110")), "{health:?}");
        let uncached = cache.get("/v2/hub/app/manifests/2");
        uncached.assert_error(502, "MANIFEST_UNKNOWN");
    }
    cache.upstream.set_health(Health::Up);
    cache.clock.advance(TTL_MS);
    assert_eq!(cache.get("/v2/hub/app/manifests/1").header(HEADER), Some("revalidated"), "back once it answers");
    // A tag the upstream removed is gone here too (not an error to hide).
    cache.upstream.set_health(Health::Status(404));
    cache.clock.advance(TTL_MS);
    cache.get("/v2/hub/app/manifests/1").assert_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn the_token_flow_logs_in_once_and_credentials_never_reach_the_client() {
    let password = "upstream-hunter2";
    let cache = Cache::with_credentials(Some(Credentials { username: "bot".into(), password: password.into() }));
    cache.upstream.require_login("bot", password);
    let image = upstream_image(&cache.upstream, "library/app", "1", 1);
    let (digest, _) = pull(&cache, "1");
    assert_eq!(digest, image.digest);
    let log = cache.upstream.log();
    let token_requests: Vec<&String> = log.iter().filter(|l| l.contains("auth.upstream.test/token")).collect();
    assert_eq!(token_requests.len(), 1, "one token for the pull (cached): {log:#?}");
    assert!(
        token_requests[0].contains("scope=repository%3Alibrary%2Fapp%3Apull") && token_requests[0].contains("[Basic ")
    );
    let unauthenticated = log.iter().filter(|l| !l.contains(" [")).count();
    assert_eq!(unauthenticated, 1, "only the first request goes without a token: {log:#?}");
    assert!(log.iter().filter(|l| l.contains("/v2/")).skip(1).all(|l| l.contains("[Bearer token-1]")), "{log:#?}");
    let absent = format!("/v2/hub/app/blobs/sha256:{}", "0".repeat(64));
    for uri in ["/v2/hub/app/manifests/1", absent.as_str(), "/v2/hub/nope/manifests/1"] {
        let a = cache.get(uri);
        let seen = format!("{:?} {}", a.headers, String::from_utf8_lossy(&a.body));
        assert!(!seen.contains(password) && !seen.contains("token-1") && !seen.contains("Basic "), "{seen}");
    }

    let wrong = Cache::with_credentials(Some(Credentials { username: "bot".into(), password: "wrong".into() }));
    wrong.upstream.require_login("bot", password);
    upstream_image(&wrong.upstream, "library/app", "1", 1);
    let refused = wrong.get("/v2/hub/app/manifests/1");
    refused.assert_error(502, "MANIFEST_UNKNOWN");
    let message = refused.json()["errors"][0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("check its credentials") && !message.contains("wrong"), "{message}");
}

/// Cached content is content: the cache prefix's own retention policy (`UPSTREAM_RETENTION`,
/// after the `RETENTION` policies) trims it like any repository, and a trimmed tag is
/// fetched again on the next pull.
#[test]
fn the_cache_prefix_has_its_own_retention_policy() {
    let pairs = [
        ("UPSTREAMS", r#"[{"prefix": "hub", "url": "https://upstream.test"}]"#),
        ("UPSTREAM_RETENTION", r#"{"keep_last": 1}"#),
        ("RETENTION_MODE", "apply"),
    ];
    let settings = edge_registry::settings::Settings::from_lookup(&edge_registry::settings::lookup_in(&pairs)).unwrap();
    let retention = settings.retention.expect("the cache prefix gets a policy without RETENTION");
    let cache = Cache::new();
    upstream_image(&cache.upstream, "library/app", "1", 1);
    let second = upstream_image(&cache.upstream, "library/app", "2", 2);
    pull(&cache, "1");
    cache.clock.advance(1_000);
    pull(&cache, "2");
    assert!(retention.apply, "RETENTION_MODE=apply");
    let job = cache.collect(Some(&retention.rules));
    let report = job.report.retention.expect("retention ran");
    assert_eq!(report.tags_deleted, 1, "{report:?}");
    cache.upstream_requests();
    let kept = cache.get("/v2/hub/app/manifests/2");
    assert_eq!(
        (kept.header("docker-content-digest"), kept.header(HEADER)),
        (Some(second.digest.as_str()), Some("hit"))
    );
    let trimmed = cache.get("/v2/hub/app/manifests/1");
    assert_eq!((trimmed.status, trimmed.header(HEADER)), (200, Some("fetched")), "fetched again");
    assert_eq!(cache.upstream_requests().len(), 1);
}

/// Docker Hub answers a repository that does not exist with 401, even to a fresh token: a
/// 404 here, as docker reports it, and no stale copy of a repository gone upstream.
#[test]
fn a_401_to_a_fresh_token_is_not_found() {
    let cache = Cache::with_credentials(Some(Credentials { username: "bot".into(), password: "pw".into() }));
    cache.upstream.require_login("bot", "pw");
    cache.upstream.hide_unknown();
    upstream_image(&cache.upstream, "library/app", "1", 1);
    cache.get("/v2/hub/typo/manifests/1").assert_error(404, "MANIFEST_UNKNOWN");
    cache.get(&format!("/v2/hub/app/blobs/sha256:{}", "1".repeat(64))).assert_error(404, "BLOB_UNKNOWN");
    assert_eq!(pull(&cache, "1").0.len(), 71, "what exists is pulled");
}

/// A fill meets a repository delete as a push does, but the puller is told to retry (503),
/// not that it was denied; once the quiet period is over the name fills again.
#[test]
fn a_fill_into_a_repository_being_deleted_is_a_retry() {
    let cache = Cache::new();
    let image = upstream_image(&cache.upstream, "library/app", "1", 1);
    pull(&cache, "1");
    assert!(cache.stored("repositories/hub/app/_upstream/checked/1"), "the tag's check is recorded");
    let deleted = cache.send("DELETE", "/admin/repositories/hub/app", b"");
    assert!(deleted.status == 200 || deleted.status == 202, "{}", String::from_utf8_lossy(&deleted.body));
    assert!(!cache.stored("repositories/hub/app/_upstream/checked/1"), "removed with the repository");
    let refused = cache.get("/v2/hub/app/manifests/1");
    refused.assert_error(503, "MANIFEST_UNKNOWN");
    assert!(refused.header("retry-after").is_some());
    cache.get(&format!("/v2/hub/app/blobs/{}", image.blobs[1].0)).assert_error(503, "BLOB_UNKNOWN");
    cache.clock.advance(edge_registry::registry::PUSH_QUIET_MS + 1);
    assert_eq!(pull(&cache, "1").0, image.digest, "fetched again");
}

/// Docker Hub sends blobs from its CDN by a redirect: followed, without the token.
#[test]
fn a_redirected_blob_is_fetched_without_the_token() {
    let cache = Cache::with_credentials(Some(Credentials { username: "bot".into(), password: "pw".into() }));
    cache.upstream.require_login("bot", "pw");
    cache.upstream.redirect_blobs();
    let image = upstream_image(&cache.upstream, "library/app", "1", 1);
    let (digest, blobs) = pull(&cache, "1");
    assert_eq!(digest, image.digest);
    assert_eq!(blobs.len(), 4);
    let log = cache.upstream.log();
    let cdn: Vec<&String> = log.iter().filter(|l| l.contains("cdn.example")).collect();
    assert_eq!(cdn.len(), 4, "every blob from the CDN: {log:#?}");
    assert!(cdn.iter().all(|l| !l.contains(" [")), "no Authorization to the CDN: {cdn:#?}");
}
