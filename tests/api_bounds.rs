//! The work one request may cause is bounded: a manifest with more references than
//! `max_manifest_references` is refused as `MANIFEST_INVALID` before any is checked, and
//! the filtered catalog examines at most `CATALOG_SCAN_LIMIT` names per request, answering
//! a short page with a `Link` to continue.

mod common;

use common::*;
use edge_registry::api::CATALOG_SCAN_LIMIT;
use edge_registry::auth::{Auth, AuthConfig};
use edge_registry::oci::RepositoryName;
use edge_registry::registry::{Config, RequestBody, DEFAULT_MAX_MANIFEST_REFERENCES};
use edge_registry::storage::{keys, BlobStore, Metadata};
use futures::executor::block_on;

fn layers(count: usize) -> Vec<(String, usize)> {
    (0..count).map(|i| (sha256(format!("layer {i}").as_bytes()), 7)).collect()
}

#[track_caller]
fn put_manifest(reg: &TestRegistry, tag: &str, media: &str, body: &[u8]) -> Answer {
    send(reg, "PUT", &format!("/v2/a/manifests/{tag}"), &[("content-type", media)], body)
}

#[test]
fn a_manifest_over_the_reference_limit_is_manifest_invalid_naming_the_limit() {
    let reg = registry();
    let config = push_blob(&reg, "a", b"{}");
    let many = layers(DEFAULT_MAX_MANIFEST_REFERENCES); // + the config: one over
    let refs: Vec<(&str, usize)> = many.iter().map(|(d, s)| (d.as_str(), *s)).collect();
    let a = put_manifest(&reg, "big", OCI_MANIFEST, &image_manifest((&config, 2), &refs, ""));
    a.assert_error(400, "MANIFEST_INVALID");
    let message = a.json()["errors"][0]["message"].as_str().unwrap().to_owned();
    let (over, limit) = (DEFAULT_MAX_MANIFEST_REFERENCES + 1, DEFAULT_MAX_MANIFEST_REFERENCES);
    assert!(message.contains(&over.to_string()) && message.contains(&limit.to_string()), "{message}");
    let children: Vec<String> = many
        .iter()
        .chain(layers(1).iter())
        .map(|(d, _)| format!(r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":7}}"#))
        .collect();
    let index = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#, children.join(","));
    put_manifest(&reg, "idx", OCI_INDEX, index.as_bytes()).assert_error(400, "MANIFEST_INVALID");
}

#[test]
fn the_reference_limit_is_a_setting_and_a_manifest_at_it_is_accepted() {
    let reg = registry_with(Config { part_size: 5 * MIB as u64, max_manifest_references: 3, ..Config::default() });
    let config = push_blob(&reg, "a", b"{}");
    let l1 = push_blob(&reg, "a", b"one");
    let l2 = push_blob(&reg, "a", b"two");
    let l3 = push_blob(&reg, "a", b"three");
    let at = image_manifest((&config, 2), &[(&l1, 3), (&l2, 3)], "");
    assert_eq!(put_manifest(&reg, "at", OCI_MANIFEST, &at).status, 201);
    let over = image_manifest((&config, 2), &[(&l1, 3), (&l2, 3), (&l3, 5)], "");
    let a = put_manifest(&reg, "over", OCI_MANIFEST, &over);
    a.assert_error(400, "MANIFEST_INVALID");
    assert!(a.json()["errors"][0]["message"].as_str().unwrap().contains("limit of 3"));
}

const SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";

fn catalog_page(reg: &TestRegistry, auth: &Auth, uri: &str) -> (Vec<String>, Option<String>) {
    let a =
        send_with_auth(reg, Some(auth), "GET", uri, &[], RequestBody::stream(stream(Feed::Pieces(vec![], 1)), None));
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let names = a.json()["repositories"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    let next = a.header("link").map(|l| l.trim_start_matches('<').split('>').next().unwrap().to_owned());
    (names, next)
}

#[test]
fn the_filtered_catalog_examines_a_bounded_number_of_names_per_request() {
    let reg = registry();
    // More names the caller cannot see than one request examines, then some it can.
    for i in 0..CATALOG_SCAN_LIMIT + 500 {
        let name = RepositoryName::parse(&format!("hidden/r{i:05}")).unwrap();
        block_on(reg.blob_store().put_bytes(&keys::catalog_entry(&name), Vec::new(), Metadata::new())).unwrap();
    }
    for repo in ["team/a", "team/b"] {
        push_blob(&reg, repo, repo.as_bytes());
    }
    let anonymous = r#"[{"repository": "team/*", "actions": ["pull"]}]"#;
    let auth = Auth::new(AuthConfig::from_settings(None, Some(anonymous), Some(SECRET), None).unwrap().unwrap());
    let (first, next) = catalog_page(&reg, &auth, "/v2/_catalog");
    assert!(first.is_empty(), "the bound was reached among hidden names: {first:?}");
    let next = next.expect("a short page says where to continue");
    let (second, after) = catalog_page(&reg, &auth, &next);
    assert_eq!(second, ["team/a", "team/b"]);
    assert_eq!(after, None, "the catalog ended");
    let query = next.split_once('?').unwrap().1;
    let (paged, link) = catalog_page(&reg, &auth, &format!("/v2/_catalog?n=1&{query}"));
    assert_eq!(paged, ["team/a"], "n still pages");
    assert!(link.is_some());
}
