//! Immutable tags through the whole API: a covered tag never moves and is never deleted
//! (403 `DENIED`, naming the rule), the same manifest may be pushed again, tags no rule
//! covers (other repositories, other tags, exceptions) behave as before, and two pushes
//! racing to create the same tag with different manifests cannot both win. Pushes stamp
//! tags and manifest links with `pushed-at`.
#![cfg(not(target_arch = "wasm32"))]

mod common;
#[path = "replica_world/gate.rs"]
mod gate;

use common::*;
use edge_registry::api;
use edge_registry::registry::{Config, ImmutableTags, RequestBody};
use edge_registry::storage::BlobStore;
use futures::executor::block_on;
use gate::Gated;

const RULES: &str = r#"[{"repositories": "release/*", "tags": ["v*"], "except": ["*-rc*"]}]"#;
const RULE_TEXT: &str = r#"IMMUTABLE_TAGS rule "release/*" tags ["v*"] except ["*-rc*"]"#;
const TAG_KEY: &str = "repositories/release/app/_tags/v1";

fn config() -> Config {
    let immutable_tags = ImmutableTags { rules: serde_json::from_str(RULES).unwrap() };
    Config { part_size: 5 * MIB as u64, immutable_tags, ..Config::default() }
}

fn immutable_registry() -> (TestRegistry, ManualClock) {
    registry_and_clock(config())
}

/// The digest `reference` of `repo` resolves to, if any.
fn resolved<B: TestStore>(reg: &AnyRegistry<B>, repo: &str, reference: &str) -> Option<String> {
    let a = send(reg, "HEAD", &format!("/v2/{repo}/manifests/{reference}"), &[], b"");
    (a.status == 200).then(|| a.header("docker-content-digest").unwrap().to_owned())
}

/// Pushes config + layer of `seed` and returns the manifest bytes over them (not pushed).
fn stage_image<B: TestStore>(reg: &AnyRegistry<B>, repo: &str, seed: u64) -> Vec<u8> {
    let config = format!(r#"{{"seed":{seed}}}"#).into_bytes();
    let layer = bytes(500 + seed as usize, seed);
    let c = push_blob(reg, repo, &config);
    let l = push_blob(reg, repo, &layer);
    image_manifest((&c, config.len()), &[(&l, layer.len())], "")
}

fn put_manifest<B: TestStore>(reg: &AnyRegistry<B>, repo: &str, reference: &str, manifest: &[u8]) -> Answer {
    send(reg, "PUT", &format!("/v2/{repo}/manifests/{reference}"), &[("content-type", OCI_MANIFEST)], manifest)
}

#[track_caller]
fn assert_denied(a: &Answer, says: &str) {
    a.assert_error(403, "DENIED");
    let message = a.json()["errors"][0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains(says), "{message}");
    assert!(message.contains(RULE_TEXT), "names the rule: {message}");
}

#[test]
fn an_immutable_tag_is_not_moved_and_the_refused_push_writes_nothing() {
    let (reg, _) = immutable_registry();
    let first = push_image(&reg, "release/app", "v1", 1);
    let other = stage_image(&reg, "release/app", 2);
    let keys_before = reg.blob_store().keys().len();
    let refused = put_manifest(&reg, "release/app", "v1", &other);
    assert_denied(&refused, &format!("tag v1 of release/app is immutable ({RULE_TEXT}) and points at {first}"));
    assert!(refused.json()["errors"][0]["message"].as_str().unwrap().ends_with("push a new tag instead"));
    assert_eq!(resolved(&reg, "release/app", "v1"), Some(first));
    assert_eq!(reg.blob_store().keys().len(), keys_before, "refused before any write");
    assert_eq!(resolved(&reg, "release/app", &sha256(&other)), None, "the refused manifest is not stored");
    // By digest with ?tag=: refused as well, and the mutable tag beside it is not moved.
    let latest = push_image(&reg, "release/app", "latest", 3);
    let by_digest = send(
        &reg,
        "PUT",
        &format!("/v2/release/app/manifests/{}?tag=latest&tag=v1", sha256(&other)),
        &[("content-type", OCI_MANIFEST)],
        &other,
    );
    assert_denied(&by_digest, "tag v1 of release/app is immutable");
    assert_eq!(resolved(&reg, "release/app", "latest"), Some(latest));
}

#[test]
fn the_same_manifest_may_be_pushed_again_under_an_immutable_tag() {
    let (reg, clock) = immutable_registry();
    let manifest = stage_image(&reg, "release/app", 1);
    assert_eq!(put_manifest(&reg, "release/app", "v1", &manifest).status, 201);
    clock.advance(60_000);
    let again = put_manifest(&reg, "release/app", "v1", &manifest);
    assert_eq!(again.status, 201, "{}", String::from_utf8_lossy(&again.body));
    assert_eq!(again.header("docker-content-digest"), Some(sha256(&manifest).as_str()));
    let by_digest = sha256(&manifest);
    let tagged = send(
        &reg,
        "PUT",
        &format!("/v2/release/app/manifests/{by_digest}?tag=v1&tag=v2"),
        &[("content-type", OCI_MANIFEST)],
        &manifest,
    );
    assert_eq!(tagged.status, 201);
    assert_eq!(resolved(&reg, "release/app", "v1"), Some(by_digest.clone()));
    assert_eq!(resolved(&reg, "release/app", "v2"), Some(by_digest));
}

#[test]
fn tags_no_rule_covers_move_and_delete_as_before() {
    let (reg, _) = immutable_registry();
    for (repo, tag) in [("release/app", "latest"), ("release/app", "v1-rc1"), ("dev/app", "v1"), ("release", "v1")] {
        push_image(&reg, repo, tag, 1);
        let moved = push_image(&reg, repo, tag, 2);
        assert_eq!(resolved(&reg, repo, tag), Some(moved.clone()), "{repo}:{tag} moves");
        let deleted = send(&reg, "DELETE", &format!("/v2/{repo}/manifests/{tag}"), &[], b"");
        assert_eq!(deleted.status, 202, "{repo}:{tag} may be deleted");
        push_image(&reg, repo, tag, 3);
        let by_digest =
            send(&reg, "DELETE", &format!("/v2/{repo}/manifests/{}", resolved(&reg, repo, tag).unwrap()), &[], b"");
        assert_eq!(by_digest.status, 202, "{repo}:{tag}'s manifest may be deleted");
        assert_eq!(resolved(&reg, repo, tag), None);
    }
}

#[test]
fn an_immutable_tag_and_the_manifest_it_points_at_are_not_deleted() {
    let (reg, _) = immutable_registry();
    let digest = push_image(&reg, "release/app", "v1", 1);
    let tag = send(&reg, "DELETE", "/v2/release/app/manifests/v1", &[], b"");
    assert_denied(&tag, "tag v1 of release/app is immutable");
    assert!(tag.json()["errors"][0]["message"].as_str().unwrap().contains("cannot be deleted"));
    let manifest = send(&reg, "DELETE", &format!("/v2/release/app/manifests/{digest}"), &[], b"");
    assert_denied(&manifest, &format!("manifest {digest} cannot be deleted: tag v1 of release/app points at it"));
    assert_eq!(resolved(&reg, "release/app", "v1"), Some(digest.clone()));
    assert_eq!(resolved(&reg, "release/app", &digest), Some(digest.clone()));
    // A mutable tag on the same manifest is refused nothing, and is not taken with a
    // refused manifest delete.
    let manifest_bytes = send(&reg, "GET", &format!("/v2/release/app/manifests/{digest}"), &[], b"").body;
    let retag =
        send(&reg, "PUT", "/v2/release/app/manifests/latest", &[("content-type", OCI_MANIFEST)], &manifest_bytes);
    assert_eq!(retag.status, 201);
    assert_denied(&send(&reg, "DELETE", &format!("/v2/release/app/manifests/{digest}"), &[], b""), "points at it");
    assert_eq!(resolved(&reg, "release/app", "latest"), Some(digest));
    // A tag that does not exist is unknown, whatever the rules say.
    send(&reg, "DELETE", "/v2/release/app/manifests/v9", &[], b"").assert_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn two_pushes_racing_to_create_an_immutable_tag_cannot_both_win() {
    // The gate holds every write of the tag until both pushes have reached it: each has
    // read the tag as absent and stored its manifest, so only the write can decide.
    let (reg, _) = registry_over(Gated::new(TAG_KEY.to_owned(), 2), config());
    let one = stage_image(&reg, "release/app", 1);
    let two = stage_image(&reg, "release/app", 2);
    let push = |manifest: &[u8]| {
        let body =
            RequestBody::native(stream(Feed::Pieces(manifest.to_vec(), 1 << 16)), Some(manifest.len() as u64), |s| s);
        let request = request("PUT", "/v2/release/app/manifests/v1", &[("content-type", OCI_MANIFEST)], body);
        api::handle(&reg, None, request)
    };
    let (a, b) = block_on(async { futures::join!(push(&one), push(&two)) });
    let (a, b) = (answer(a), answer(b));
    assert_eq!(*reg.blob_store().trace.borrow(), ["write won", "write lost"], "one conditional write each");
    let (won, lost, winner, loser) = if a.status == 201 { (a, b, &one, &two) } else { (b, a, &two, &one) };
    assert_eq!(won.status, 201, "{}", String::from_utf8_lossy(&won.body));
    assert_denied(&lost, &format!("tag v1 of release/app is immutable ({RULE_TEXT}) and points at {}", sha256(winner)));
    assert_eq!(resolved(&reg, "release/app", "v1"), Some(sha256(winner)));
    // What the refused push leaves: its manifest, untagged.
    assert_eq!(resolved(&reg, "release/app", &sha256(loser)), Some(sha256(loser)));
}

#[test]
fn tags_and_manifest_links_carry_when_they_were_pushed() {
    let (reg, clock) = immutable_registry();
    let pushed_at = |key: &str| {
        let info = block_on(reg.blob_store().head(key)).unwrap().unwrap_or_else(|| panic!("{key} missing"));
        info.metadata.get("pushed-at").cloned()
    };
    let t0 = 1_700_000_000_000u64;
    let manifest = stage_image(&reg, "release/app", 1);
    let digest = sha256(&manifest);
    let link = format!("repositories/release/app/_manifests/sha256/{}", &digest["sha256:".len()..]);
    assert_eq!(put_manifest(&reg, "release/app", "v1", &manifest).status, 201);
    assert_eq!(put_manifest(&reg, "release/app", "latest", &manifest).status, 201);
    assert_eq!(pushed_at(TAG_KEY), Some(t0.to_string()));
    assert_eq!(pushed_at(&link), Some(t0.to_string()));
    clock.advance(5_000);
    assert_eq!(put_manifest(&reg, "release/app", "latest", &manifest).status, 201);
    assert_eq!(put_manifest(&reg, "release/app", "v1", &manifest).status, 201);
    assert_eq!(pushed_at("repositories/release/app/_tags/latest"), Some((t0 + 5_000).to_string()), "rewritten");
    assert_eq!(pushed_at(&link), Some((t0 + 5_000).to_string()), "the link is stamped by every push");
    assert_eq!(pushed_at(TAG_KEY), Some(t0.to_string()), "an immutable tag is never rewritten");
}
