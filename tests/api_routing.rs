//! Table-driven routing: every endpoint with every method, and bad input of every kind
//! answered with a 4xx and a spec error body, never a panic or a 500.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

#[test]
fn every_endpoint_answers_its_methods_and_refuses_the_rest() {
    let reg = registry();
    let digest = push_image(&reg, "team/app", "v1", 1);
    let upload = start_upload(&reg, "team/app");
    // (path, methods it serves)
    let endpoints: Vec<(String, &[&str])> = vec![
        ("/v2/".into(), &["GET", "HEAD"]),
        ("/v2/_catalog".into(), &["GET"]),
        ("/v2/team/app/tags/list".into(), &["GET"]),
        ("/v2/team/app/manifests/v1".into(), &["GET", "HEAD", "PUT", "DELETE"]),
        (format!("/v2/team/app/blobs/{digest}"), &["GET", "HEAD", "DELETE"]),
        ("/v2/team/app/blobs/uploads/".into(), &["POST"]),
        (upload.clone(), &["GET", "PATCH", "PUT", "DELETE"]),
        (format!("/v2/team/app/referrers/{digest}"), &["GET"]),
    ];
    for (path, allowed) in &endpoints {
        for method in METHODS {
            if allowed.contains(&method) {
                continue;
            }
            let a = send(&reg, method, path, &[], b"");
            a.assert_error(405, "UNSUPPORTED");
            assert_eq!(a.header("allow"), Some(&*allowed.join(", ")), "{method} {path}");
        }
    }
    // The served methods reach their handlers (statuses from the spec's table).
    let expect: Vec<(&str, String, u16)> = vec![
        ("GET", "/v2/".into(), 200),
        ("HEAD", "/v2/".into(), 200),
        ("GET", "/v2/_catalog".into(), 200),
        ("GET", "/v2/team/app/tags/list".into(), 200),
        ("GET", "/v2/team/app/manifests/v1".into(), 200),
        ("HEAD", "/v2/team/app/manifests/v1".into(), 200),
        ("GET", format!("/v2/team/app/referrers/{digest}"), 200),
        ("GET", upload.clone(), 204),
        ("PATCH", upload.clone(), 202),
        ("DELETE", upload.clone(), 204),
        ("POST", "/v2/team/app/blobs/uploads/".into(), 202),
        ("DELETE", "/v2/team/app/manifests/v1".into(), 202),
    ];
    for (method, path, status) in expect {
        assert_eq!(send(&reg, method, &path, &[], b"").status, status, "{method} {path}");
    }
}

/// (method, path, headers, body, expected status, expected code)
type BadInput = (&'static str, String, Vec<(&'static str, String)>, Vec<u8>, u16, &'static str);

#[test]
fn bad_input_gets_spec_errors() {
    let reg = registry();
    let d = push_blob(&reg, "a", b"x");
    let long_name = format!("/v2/{}/tags/list", "a".repeat(256));
    let cases: Vec<BadInput> = vec![
        ("GET", "/v2/Upper/tags/list".into(), vec![], vec![], 400, "NAME_INVALID"),
        ("GET", "/v2/a//b/tags/list".into(), vec![], vec![], 400, "NAME_INVALID"),
        ("GET", "/v2/a/../b/tags/list".into(), vec![], vec![], 400, "NAME_INVALID"),
        ("GET", "/v2/a%2Fb/tags/list".into(), vec![], vec![], 400, "NAME_INVALID"),
        ("GET", "/v2/caf\u{e9}/tags/list".into(), vec![], vec![], 400, "NAME_INVALID"),
        ("GET", long_name, vec![], vec![], 400, "NAME_INVALID"),
        // A reference that cannot exist is not found on reads, and invalid on writes.
        ("GET", "/v2/a/manifests/-bad".into(), vec![], vec![], 404, "MANIFEST_UNKNOWN"),
        ("GET", format!("/v2/a/manifests/{}", "t".repeat(129)), vec![], vec![], 404, "MANIFEST_UNKNOWN"),
        ("GET", "/v2/a/manifests/sha256:123".into(), vec![], vec![], 404, "MANIFEST_UNKNOWN"),
        ("DELETE", "/v2/a/manifests/-bad".into(), vec![], vec![], 400, "MANIFEST_INVALID"),
        ("PUT", format!("/v2/a/manifests/{}", "t".repeat(129)), vec![], vec![], 400, "MANIFEST_INVALID"),
        ("DELETE", "/v2/a/manifests/sha256:123".into(), vec![], vec![], 400, "DIGEST_INVALID"),
        ("GET", "/v2/a/blobs/sha256:XYZ".into(), vec![], vec![], 400, "DIGEST_INVALID"),
        ("GET", format!("/v2/a/blobs/{}", d.to_uppercase()), vec![], vec![], 400, "DIGEST_INVALID"),
        ("GET", "/v2/a/blobs/md5:abc".into(), vec![], vec![], 400, "DIGEST_INVALID"),
        ("GET", format!("/v2/a/blobs/{}", sha256(b"unknown")), vec![], vec![], 404, "BLOB_UNKNOWN"),
        ("GET", "/v2/a/manifests/nope".into(), vec![], vec![], 404, "MANIFEST_UNKNOWN"),
        (
            "GET",
            "/v2/a/blobs/uploads/00000000000000000000000000000bad".into(),
            vec![],
            vec![],
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        ("POST", "/v2/a/blobs/uploads/?digest=sha256:short".into(), vec![], b"x".to_vec(), 400, "DIGEST_INVALID"),
        ("POST", "/v2/a/blobs/uploads/?mount=bad".into(), vec![], vec![], 400, "DIGEST_INVALID"),
        (
            "PUT",
            "/v2/a/manifests/t".into(),
            vec![("content-type", OCI_MANIFEST.into())],
            b"\x00\x01binary".to_vec(),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "PUT",
            "/v2/a/manifests/t".into(),
            vec![("content-type", "x".repeat(8000))],
            b"{}".to_vec(),
            400,
            "MANIFEST_INVALID",
        ),
        ("GET", "/v2/_catalog?last=Bad!".into(), vec![], vec![], 400, "NAME_INVALID"),
        ("GET", "/v3/".into(), vec![], vec![], 404, "UNSUPPORTED"),
        ("GET", "/".into(), vec![], vec![], 404, "UNSUPPORTED"),
        ("GET", "/v2/a/unknown/thing".into(), vec![], vec![], 404, "UNSUPPORTED"),
    ];
    for (method, path, headers, body, status, code) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = send(&reg, method, &path, &headers, &body);
        assert_eq!((a.status, a.error_code().as_str()), (status, code), "{method} {path}");
    }
}

#[test]
fn random_garbage_never_causes_a_server_error() {
    let reg = registry();
    push_image(&reg, "a", "v1", 1);
    let segments = [
        "a",
        "v2",
        "blobs",
        "uploads",
        "manifests",
        "tags",
        "list",
        "referrers",
        "_catalog",
        "sha256:00",
        "",
        "..",
        "%00",
        "%ff",
        "A",
    ];
    let mut seed = 12345u64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for _ in 0..3000 {
        let len = 1 + next(6);
        let path: Vec<&str> = (0..len).map(|_| segments[next(segments.len())]).collect();
        let uri = format!("/v2/{}", path.join("/"));
        if uri.parse::<http::Uri>().is_err() {
            continue;
        }
        let method = METHODS[next(METHODS.len())];
        let body = bytes(next(64), 7);
        let a = send(&reg, method, &uri, &[("content-range", "0-1"), ("content-type", OCI_MANIFEST)], &body);
        assert!(a.status < 500, "{method} {uri} gave {}", a.status);
        if a.status >= 400 {
            assert!(!a.error_code().is_empty(), "{method} {uri}: no error code");
        }
    }
}
