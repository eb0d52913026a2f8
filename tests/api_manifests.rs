//! Manifests over the in-memory stores: byte-for-byte storage, every kind, reference
//! checks, tags, sizes, deletes, and that a rejected manifest changes nothing.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

fn put(reg: &TestRegistry, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> Answer {
    send(reg, "PUT", &format!("/v2/{repo}/manifests/{reference}"), &[("content-type", media_type)], body)
}

#[test]
fn manifests_come_back_byte_for_byte_by_tag_and_digest() {
    let reg = registry();
    let c = push_blob(&reg, "a", b"{}x");
    let l = push_blob(&reg, "a", b"layer");
    // Odd whitespace and key order must survive.
    let body = format!(
        "{{\n  \"layers\": [ {{\"size\":5,\"digest\":\"{l}\",\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\"}} ],\n\t\"schemaVersion\":2, \"mediaType\":\"{OCI_MANIFEST}\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{c}\",\"size\":3}} }}  "
    );
    let a = put(&reg, "a", "v1", OCI_MANIFEST, body.as_bytes());
    assert_eq!(a.status, 201);
    let digest = sha256(body.as_bytes());
    assert_eq!(a.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(a.header("location").unwrap(), format!("/v2/a/manifests/{digest}"));
    for reference in ["v1", digest.as_str()] {
        let got = send(&reg, "GET", &format!("/v2/a/manifests/{reference}"), &[], b"");
        assert_eq!(got.status, 200);
        assert_eq!(got.body, body.as_bytes());
        assert_eq!(got.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(got.header("docker-content-digest"), Some(digest.as_str()));
        let head = send(&reg, "HEAD", &format!("/v2/a/manifests/{reference}"), &[], b"");
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some(&*body.len().to_string()));
        assert!(head.body.is_empty());
    }
}

#[test]
fn every_manifest_kind_is_accepted() {
    let reg = registry();
    let c = push_blob(&reg, "a", b"cfg");
    let l = push_blob(&reg, "a", b"layer");
    let docker = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{c}","size":3}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{l}","size":5}}]}}"#
    );
    let a = put(&reg, "a", "docker", DOCKER_MANIFEST, docker.as_bytes());
    assert_eq!(a.status, 201);
    let docker_digest = a.header("docker-content-digest").unwrap().to_owned();
    let oci_digest = push_image(&reg, "a", "oci", 1);
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"{docker_digest}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
        docker.len()
    );
    assert_eq!(put(&reg, "a", "list", DOCKER_LIST, list.as_bytes()).status, 201);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{oci_digest}","size":1}}]}}"#
    );
    assert_eq!(put(&reg, "a", "index", OCI_INDEX, index.as_bytes()).status, 201);
    // An artifact: artifactType and the empty config, which need not be pushed.
    let artifact = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example+type","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="}},"layers":[{{"mediaType":"text/plain","digest":"{l}","size":5}}]}}"#
    );
    assert_eq!(put(&reg, "a", "artifact", OCI_MANIFEST, artifact.as_bytes()).status, 201);
    let empty = send(
        &reg,
        "GET",
        "/v2/a/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        &[],
        b"",
    );
    assert_eq!((empty.status, empty.body.as_slice()), (200, &b"{}"[..]));
    // Stored on the manifest's behalf, it is an ordinary blob: deleting it hides it.
    let empty_url = "/v2/a/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    assert_eq!(send(&reg, "DELETE", empty_url, &[], b"").status, 202);
    assert_eq!(send(&reg, "HEAD", empty_url, &[], b"").status, 404);
    for (tag, media) in
        [("docker", DOCKER_MANIFEST), ("list", DOCKER_LIST), ("index", OCI_INDEX), ("artifact", OCI_MANIFEST)]
    {
        let got = send(&reg, "GET", &format!("/v2/a/manifests/{tag}"), &[], b"");
        assert_eq!(got.header("content-type"), Some(media), "{tag}");
    }
}

#[test]
fn missing_references_are_refused_and_change_no_tag() {
    let reg = registry();
    let first = push_image(&reg, "a", "latest", 1);
    let c = push_blob(&reg, "a", b"c");
    let missing = sha256(b"never pushed");
    let m = image_manifest((&c, 1), &[(&missing, 12)], "");
    put(&reg, "a", "latest", OCI_MANIFEST, &m).assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{missing}","size":1}}]}}"#
    );
    put(&reg, "a", "latest", OCI_INDEX, index.as_bytes()).assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    // A blob in another repository does not count.
    let elsewhere = push_blob(&reg, "other", b"elsewhere");
    let m = image_manifest((&c, 1), &[(&elsewhere, 9)], "");
    put(&reg, "a", "latest", OCI_MANIFEST, &m).assert_error(400, "MANIFEST_BLOB_UNKNOWN");
    let still = send(&reg, "GET", "/v2/a/manifests/latest", &[], b"");
    assert_eq!(still.header("docker-content-digest"), Some(first.as_str()));
}

#[test]
fn invalid_manifests_get_manifest_invalid() {
    let reg = registry();
    let c = push_blob(&reg, "a", b"c");
    let good = image_manifest((&c, 1), &[], "");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (OCI_MANIFEST, b"{not json".to_vec()),
        (OCI_MANIFEST, b"[1,2]".to_vec()),
        (OCI_MANIFEST, vec![0xff, 0xfe, 0x00]),
        ("application/vnd.example.unknown+json", good.clone()),
        (OCI_INDEX, good.clone()),
        (
            OCI_MANIFEST,
            String::from_utf8(good.clone()).unwrap().replace("\"schemaVersion\":2", "\"schemaVersion\":3").into_bytes(),
        ),
    ];
    for (media, body) in cases {
        put(&reg, "a", "t", media, &body).assert_error(400, "MANIFEST_INVALID");
    }
    assert_eq!(send(&reg, "GET", "/v2/a/manifests/t", &[], b"").status, 404);
}

#[test]
fn digest_references_must_match_the_bytes() {
    let reg = registry();
    let c = push_blob(&reg, "a", b"c");
    let m = image_manifest((&c, 1), &[], "");
    put(&reg, "a", &sha256(b"other"), OCI_MANIFEST, &m).assert_error(400, "DIGEST_INVALID");
    assert_eq!(put(&reg, "a", &sha256(&m), OCI_MANIFEST, &m).status, 201);
    let d512 = sha512(&m);
    let a = put(&reg, "a", &d512, OCI_MANIFEST, &m);
    assert_eq!(a.header("docker-content-digest"), Some(d512.as_str()));
    assert_eq!(send(&reg, "GET", &format!("/v2/a/manifests/{d512}"), &[], b"").body, m);
}

#[test]
fn several_tags_in_one_put() {
    let reg = registry();
    let c = push_blob(&reg, "a", b"c");
    let m = image_manifest((&c, 1), &[], "");
    let d = sha256(&m);
    let a = send(
        &reg,
        "PUT",
        &format!("/v2/a/manifests/{d}?tag=1.0&tag=1&tag=latest"),
        &[("content-type", OCI_MANIFEST)],
        &m,
    );
    assert_eq!(a.status, 201);
    let tags: Vec<&str> = a.headers.get_all("oci-tag").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(tags, ["1.0", "1", "latest"]);
    for t in ["1.0", "1", "latest"] {
        assert_eq!(send(&reg, "GET", &format!("/v2/a/manifests/{t}"), &[], b"").body, m);
    }
    let bad = send(&reg, "PUT", &format!("/v2/a/manifests/{d}?tag=ok&tag=-bad"), &[("content-type", OCI_MANIFEST)], &m);
    bad.assert_error(400, "MANIFEST_INVALID");
    assert_eq!(send(&reg, "GET", "/v2/a/manifests/ok", &[], b"").status, 404, "no tag from a refused push");
}

#[test]
fn manifests_over_4_mib_get_413() {
    let reg = registry();
    let c = push_blob(&reg, "a", b"c");
    let pad = "x".repeat(4 * MIB);
    let m = image_manifest((&c, 1), &[], &format!(r#","annotations":{{"pad":"{pad}"}}"#));
    put(&reg, "a", "big", OCI_MANIFEST, &m).assert_error(413, "SIZE_INVALID");
    let just_under =
        image_manifest((&c, 1), &[], &format!(r#","annotations":{{"pad":"{}"}}"#, "x".repeat(4 * MIB - 400)));
    assert!(just_under.len() <= 4 * MIB);
    assert_eq!(put(&reg, "a", "fits", OCI_MANIFEST, &just_under).status, 201);
}

#[test]
fn deleting_a_tag_keeps_the_manifest() {
    let reg = registry();
    let d = push_image(&reg, "a", "v1", 1);
    assert_eq!(send(&reg, "DELETE", "/v2/a/manifests/v1", &[], b"").status, 202);
    send(&reg, "GET", "/v2/a/manifests/v1", &[], b"").assert_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(send(&reg, "GET", &format!("/v2/a/manifests/{d}"), &[], b"").status, 200);
    send(&reg, "DELETE", "/v2/a/manifests/v1", &[], b"").assert_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn deleting_a_manifest_removes_it_and_every_tag_on_it() {
    let reg = registry();
    let d = push_image(&reg, "a", "v1", 1);
    let c = push_blob(&reg, "a", br#"{"seed":1}"#);
    let _ = c;
    send(
        &reg,
        "PUT",
        &format!("/v2/a/manifests/{d}?tag=v2"),
        &[("content-type", OCI_MANIFEST)],
        &send(&reg, "GET", "/v2/a/manifests/v1", &[], b"").body,
    );
    let other = push_image(&reg, "a", "keep", 2);
    assert_eq!(send(&reg, "DELETE", &format!("/v2/a/manifests/{d}"), &[], b"").status, 202);
    for r in ["v1", "v2", d.as_str()] {
        send(&reg, "GET", &format!("/v2/a/manifests/{r}"), &[], b"").assert_error(404, "MANIFEST_UNKNOWN");
    }
    assert_eq!(
        send(&reg, "GET", "/v2/a/manifests/keep", &[], b"").header("docker-content-digest"),
        Some(other.as_str())
    );
    let tags = send(&reg, "GET", "/v2/a/tags/list", &[], b"").json();
    assert_eq!(tags["tags"], serde_json::json!(["keep"]));
    send(&reg, "DELETE", &format!("/v2/a/manifests/{d}"), &[], b"").assert_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn manifests_are_per_repository() {
    let reg = registry();
    let d = push_image(&reg, "a", "v1", 1);
    send(&reg, "GET", &format!("/v2/b/manifests/{d}"), &[], b"").assert_error(404, "MANIFEST_UNKNOWN");
    send(&reg, "GET", "/v2/b/manifests/v1", &[], b"").assert_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn blob_delete_hides_the_blob_in_that_repository_only() {
    let reg = registry();
    let d = push_blob(&reg, "a", b"data");
    push_blob(&reg, "b", b"data");
    assert_eq!(send(&reg, "DELETE", &format!("/v2/a/blobs/{d}"), &[], b"").status, 202);
    send(&reg, "GET", &format!("/v2/a/blobs/{d}"), &[], b"").assert_error(404, "BLOB_UNKNOWN");
    assert_eq!(send(&reg, "GET", &format!("/v2/b/blobs/{d}"), &[], b"").body, b"data");
    send(&reg, "DELETE", &format!("/v2/a/blobs/{d}"), &[], b"").assert_error(404, "BLOB_UNKNOWN");
}

/// The OCI conformance suite (v1.1.1) reads `.INVALID_MANIFEST_NAME` and expects `404`: a
/// reference that cannot exist is not found; writing one is still a bad request.
#[test]
fn a_reference_that_cannot_exist_is_not_found_on_reads_and_invalid_on_writes() {
    let reg = registry();
    let d = push_image(&reg, "a", "v1", 1);
    let uri = "/v2/a/manifests/.INVALID_MANIFEST_NAME";
    send(&reg, "GET", uri, &[], b"").assert_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(send(&reg, "HEAD", uri, &[], b"").status, 404);
    let manifest = send(&reg, "GET", &format!("/v2/a/manifests/{d}"), &[], b"").body;
    send(&reg, "PUT", uri, &[("content-type", OCI_MANIFEST)], &manifest).assert_error(400, "MANIFEST_INVALID");
    send(&reg, "DELETE", uri, &[], b"").assert_error(400, "MANIFEST_INVALID");
}
