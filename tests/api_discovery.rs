//! Tags, catalog and referrers over the in-memory stores, and blob range reads.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;
use serde_json::json;

#[test]
fn tags_are_sorted_and_paged_with_link_headers() {
    let reg = registry();
    let tags = ["b", "A", "a", "latest", "1.0", "_x", "Z9"];
    let d = push_image(&reg, "team/app", "seed", 1);
    let m = send(&reg, "GET", &format!("/v2/team/app/manifests/{d}"), &[], b"").body;
    for t in tags {
        assert_eq!(
            send(&reg, "PUT", &format!("/v2/team/app/manifests/{t}"), &[("content-type", OCI_MANIFEST)], &m).status,
            201
        );
    }
    let mut all: Vec<&str> = tags.to_vec();
    all.push("seed");
    all.sort();
    let full = send(&reg, "GET", "/v2/team/app/tags/list", &[], b"");
    assert_eq!(full.json(), json!({"name": "team/app", "tags": all}));
    assert_eq!(full.header("link"), None);

    let mut collected: Vec<String> = Vec::new();
    let mut next = Some("/v2/team/app/tags/list?n=3".to_owned());
    let mut pages = 0;
    while let Some(url) = next {
        let page = send(&reg, "GET", &url, &[], b"");
        assert_eq!(page.status, 200);
        let items: Vec<String> = serde_json::from_value(page.json()["tags"].clone()).unwrap();
        assert!(items.len() <= 3);
        collected.extend(items);
        next = page.header("link").map(|l| l.trim_start_matches('<').split('>').next().unwrap().to_owned());
        pages += 1;
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(collected, all);
    assert_eq!(pages, 3);

    let after = send(&reg, "GET", "/v2/team/app/tags/list?last=a", &[], b"").json();
    assert_eq!(after["tags"], json!(["b", "latest", "seed"]));
    let zero = send(&reg, "GET", "/v2/team/app/tags/list?n=0", &[], b"");
    assert_eq!((zero.json()["tags"].clone(), zero.header("link")), (json!([]), None));
    send(&reg, "GET", "/v2/team/app/tags/list?n=x", &[], b"").assert_error(400, "UNSUPPORTED");
    send(&reg, "GET", "/v2/nothing/here/tags/list", &[], b"").assert_error(404, "NAME_UNKNOWN");
}

#[test]
fn catalog_lists_repositories_in_order_with_paging() {
    let reg = registry();
    for repo in ["zeta", "alpha/one", "alpha", "mid/x/y"] {
        push_blob(&reg, repo, repo.as_bytes());
    }
    let all = send(&reg, "GET", "/v2/_catalog", &[], b"").json();
    assert_eq!(all, json!({"repositories": ["alpha", "alpha/one", "mid/x/y", "zeta"]}));
    let first = send(&reg, "GET", "/v2/_catalog?n=2", &[], b"");
    assert_eq!(first.json()["repositories"], json!(["alpha", "alpha/one"]));
    assert_eq!(first.header("link"), Some("</v2/_catalog?n=2&last=alpha/one>; rel=\"next\""));
    let second = send(&reg, "GET", "/v2/_catalog?n=2&last=alpha/one", &[], b"");
    assert_eq!(second.json()["repositories"], json!(["mid/x/y", "zeta"]));
    assert_eq!(second.header("link"), None);
}

#[test]
fn referrers_list_descriptors_filter_and_forget_deleted_ones() {
    let reg = registry();
    let subject = push_image(&reg, "a", "v1", 1);
    let blob = push_blob(&reg, "a", b"sig");
    let referrer = |artifact: &str, annotation: &str| {
        image_manifest(
            ("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", 2),
            &[(&blob, 3)],
            &format!(
                r#","artifactType":"{artifact}","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":1}},"annotations":{{"note":"{annotation}"}}"#
            ),
        )
    };
    let sig = referrer("application/vnd.example.sig", "one");
    let sbom = referrer("application/vnd.example.sbom", "two");
    let mut digests = Vec::new();
    for m in [&sig, &sbom] {
        let a = send(&reg, "PUT", &format!("/v2/a/manifests/{}", sha256(m)), &[("content-type", OCI_MANIFEST)], m);
        assert_eq!(a.status, 201);
        assert_eq!(a.header("oci-subject"), Some(subject.as_str()));
        digests.push(sha256(m));
    }
    let all = send(&reg, "GET", &format!("/v2/a/referrers/{subject}"), &[], b"");
    assert_eq!(all.status, 200);
    assert_eq!(all.header("content-type"), Some(OCI_INDEX));
    let index = all.json();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let sig_entry = listed.iter().find(|d| d["digest"] == digests[0].as_str()).unwrap();
    assert_eq!(
        sig_entry,
        &json!({"mediaType": OCI_MANIFEST, "digest": digests[0], "size": sig.len(), "artifactType": "application/vnd.example.sig", "annotations": {"note": "one"}})
    );
    let filtered =
        send(&reg, "GET", &format!("/v2/a/referrers/{subject}?artifactType=application/vnd.example.sbom"), &[], b"");
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    let only: Vec<String> = filtered.json()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(only, [digests[1].clone()]);

    assert_eq!(send(&reg, "DELETE", &format!("/v2/a/manifests/{}", digests[0]), &[], b"").status, 202);
    let after = send(&reg, "GET", &format!("/v2/a/referrers/{subject}"), &[], b"").json();
    assert_eq!(after["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(after["manifests"][0]["digest"], digests[1].as_str());
    // Other repositories see none; no referrers is an empty list, never a 404.
    let none = send(&reg, "GET", &format!("/v2/b/referrers/{subject}"), &[], b"");
    assert_eq!((none.status, none.json()["manifests"].clone()), (200, json!([])));
    send(&reg, "GET", "/v2/a/referrers/sha256:zz", &[], b"").assert_error(400, "DIGEST_INVALID");
}

#[test]
fn a_referrer_may_arrive_before_its_subject() {
    let reg = registry();
    let dangling = sha256(b"image pushed later");
    let m = image_manifest(
        ("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", 2),
        &[],
        &format!(r#","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{dangling}","size":1}}"#),
    );
    let a = send(&reg, "PUT", "/v2/a/manifests/sig", &[("content-type", OCI_MANIFEST)], &m);
    assert_eq!(a.status, 201);
    let listed = send(&reg, "GET", &format!("/v2/a/referrers/{dangling}"), &[], b"").json();
    // artifactType falls back to the config media type.
    assert_eq!(listed["manifests"][0]["artifactType"], "application/vnd.oci.image.config.v1+json");
}

#[test]
fn blob_ranges_and_conditional_reads() {
    let reg = registry();
    let data = bytes(1000, 7);
    let d = push_blob(&reg, "a", &data);
    let url = format!("/v2/a/blobs/{d}");
    let part = send(&reg, "GET", &url, &[("range", "bytes=10-19")], b"");
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(part.body, &data[10..20]);
    let tail = send(&reg, "GET", &url, &[("range", "bytes=-100")], b"");
    assert_eq!((tail.status, tail.body.as_slice()), (206, &data[900..]));
    let open = send(&reg, "GET", &url, &[("range", "bytes=990-")], b"");
    assert_eq!(open.body, &data[990..]);
    let bad = send(&reg, "GET", &url, &[("range", "bytes=1000-")], b"");
    assert_eq!(bad.status, 416);
    assert_eq!(bad.header("content-range"), Some("bytes */1000"));
    let etag = part.header("etag").unwrap().to_owned();
    let cached = send(&reg, "GET", &url, &[("if-none-match", &etag)], b"");
    assert_eq!((cached.status, cached.body.len()), (304, 0));
}

#[test]
fn big_multipart_blobs_serve_ranges_across_parts() {
    let reg = registry();
    let data = bytes(11 * MIB + 7, 3);
    let d = push_blob(&reg, "a", &data);
    let from = 5 * MIB - 3;
    let range = format!("bytes={from}-{}", from + 9);
    let got = send(&reg, "GET", &format!("/v2/a/blobs/{d}"), &[("range", &range)], b"");
    assert_eq!(got.body, &data[from..from + 10]);
    assert_eq!(
        send(&reg, "HEAD", &format!("/v2/a/blobs/{d}"), &[], b"").header("content-length"),
        Some(&*data.len().to_string())
    );
}
