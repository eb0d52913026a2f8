//! Blob pushes over the in-memory stores: sessions, chunks of every shape, completion,
//! cancel, single-request pushes, mounts, and that a failed upload stores nothing.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;

#[test]
fn post_opens_a_session_with_location_and_chunk_minimum() {
    let reg = registry();
    let a = send(&reg, "POST", "/v2/team/app/blobs/uploads/", &[], b"");
    assert_eq!(a.status, 202);
    let location = a.header("location").unwrap();
    assert!(location.starts_with("/v2/team/app/blobs/uploads/"), "{location}");
    assert_eq!(a.header("range"), Some("0-0"));
    assert_eq!(a.header("oci-chunk-min-length"), Some(&*(5 * MIB).to_string()));
    assert_eq!(a.header("docker-upload-uuid").map(|u| location.ends_with(u)), Some(true));
}

#[test]
fn chunked_uploads_of_every_shape_round_trip() {
    // (chunk sizes in bytes, piece size of the request stream)
    let shapes: Vec<(Vec<usize>, usize)> = vec![
        (vec![1], 1),
        (vec![4 * MIB, 4 * MIB, 4 * MIB, 100], 64 * 1024),
        (vec![5 * MIB], 5 * MIB),
        (vec![5 * MIB, 5 * MIB], 1 << 20),
        (vec![7 * MIB + 3, 1, 2 * MIB, 9 * MIB], 300_000),
        (vec![13 * MIB], 13 * MIB),
        (vec![0, 10], 4),
    ];
    for (i, (chunks, piece)) in shapes.into_iter().enumerate() {
        let reg = registry();
        let total: usize = chunks.iter().sum();
        let data = bytes(total, i as u64);
        let digest = sha256(&data);
        let mut location = start_upload(&reg, "team/app");
        let mut offset = 0;
        for size in &chunks {
            let chunk = data[offset..offset + size].to_vec();
            let range = format!("{}-{}", offset, (offset + size).saturating_sub(1));
            let headers: Vec<(&str, &str)> = if *size > 0 { vec![("content-range", &range)] } else { vec![] };
            let a = send_stream(&reg, "PATCH", &location, &headers, stream(Feed::Pieces(chunk, piece)));
            assert_eq!(a.status, 202, "shape {i}: {:?}", String::from_utf8_lossy(&a.body));
            offset += size;
            assert_eq!(a.header("range").unwrap(), format!("0-{}", offset.saturating_sub(1)));
            location = a.header("location").unwrap().to_owned();
        }
        let status = send(&reg, "GET", &location, &[], b"");
        assert_eq!(status.status, 204);
        assert_eq!(status.header("range").unwrap(), format!("0-{}", total.saturating_sub(1)));
        let put = send(&reg, "PUT", &format!("{location}?digest={digest}"), &[], b"");
        assert_eq!(put.status, 201, "shape {i}: {:?}", String::from_utf8_lossy(&put.body));
        assert_eq!(put.header("location").unwrap(), format!("/v2/team/app/blobs/{digest}"));
        let got = send(&reg, "GET", &format!("/v2/team/app/blobs/{digest}"), &[], b"");
        assert_eq!(got.status, 200);
        assert_eq!(got.body.len(), total, "shape {i}");
        assert!(got.body == data, "shape {i}: bytes differ");
        assert_eq!(reg.blob_store().pending_multipart_uploads(), 0, "shape {i}: multipart left open");
        assert!(
            !reg.blob_store().keys().iter().any(|k| k.starts_with("uploads/")),
            "shape {i}: session state left behind"
        );
    }
}

#[test]
fn final_put_may_carry_the_last_chunk() {
    let reg = registry();
    let data = bytes(6 * MIB + 5, 9);
    let digest = sha256(&data);
    let location = start_upload(&reg, "a");
    let a = send(&reg, "PATCH", &location, &[("content-range", &format!("0-{}", 6 * MIB - 1))], &data[..6 * MIB]);
    assert_eq!(a.status, 202);
    let range = format!("{}-{}", 6 * MIB, data.len() - 1);
    let put = send(&reg, "PUT", &format!("{location}?digest={digest}"), &[("content-range", &range)], &data[6 * MIB..]);
    assert_eq!(put.status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{digest}"), &[], b"").body, data);
}

#[test]
fn out_of_order_and_overlapping_chunks_get_416_and_keep_the_upload() {
    let reg = registry();
    let location = start_upload(&reg, "a");
    assert_eq!(send(&reg, "PATCH", &location, &[("content-range", "0-9")], &[1; 10]).status, 202);
    for range in ["0-9", "5-14", "11-20"] {
        let a = send(&reg, "PATCH", &location, &[("content-range", range)], &[2; 10]);
        a.assert_error(416, "BLOB_UPLOAD_INVALID");
        assert_eq!(a.header("range"), Some("0-9"));
    }
    assert_eq!(send(&reg, "GET", &location, &[], b"").header("range"), Some("0-9"));
    let put_out_of_order =
        send(&reg, "PUT", &format!("{location}?digest={}", sha256(&[1; 10])), &[("content-range", "3-4")], &[0; 2]);
    put_out_of_order.assert_error(416, "BLOB_UPLOAD_INVALID");
}

#[test]
fn malformed_content_range_is_refused() {
    let reg = registry();
    let location = start_upload(&reg, "a");
    for bad in ["abc", "5", "9-3", "-1-2"] {
        send(&reg, "PATCH", &location, &[("content-range", bad)], b"x").assert_error(400, "BLOB_UPLOAD_INVALID");
    }
}

#[test]
fn digest_mismatch_stores_nothing_and_ends_the_session() {
    let reg = registry();
    let data = bytes(11 * MIB, 3);
    let wrong = sha256(b"something else");
    let location = start_upload(&reg, "a");
    assert_eq!(send(&reg, "PATCH", &location, &[], &data).status, 202);
    let a = send(&reg, "PUT", &format!("{location}?digest={wrong}"), &[], b"");
    a.assert_error(400, "DIGEST_INVALID");
    for d in [&wrong, &sha256(&data)] {
        assert_eq!(send(&reg, "HEAD", &format!("/v2/a/blobs/{d}"), &[], b"").status, 404, "{d} is visible");
    }
    send(&reg, "GET", &location, &[], b"").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(reg.blob_store().pending_multipart_uploads(), 0);
    let left: Vec<String> = reg.blob_store().keys().into_iter().filter(|k| !k.starts_with("catalog/")).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn single_post_push_verifies_the_digest() {
    let reg = registry();
    let data = bytes(100, 1);
    let d = push_blob(&reg, "a", &data);
    let head = send(&reg, "HEAD", &format!("/v2/a/blobs/{d}"), &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("100"));
    assert_eq!(head.header("docker-content-digest"), Some(d.as_str()));
    let wrong = sha256(b"x");
    send(&reg, "POST", &format!("/v2/a/blobs/uploads/?digest={wrong}"), &[], &data).assert_error(400, "DIGEST_INVALID");
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{wrong}"), &[], b"").status, 404);
    send(&reg, "POST", "/v2/a/blobs/uploads/?digest=sha256:nope", &[], &data).assert_error(400, "DIGEST_INVALID");
}

#[test]
fn sha512_uploads_work_both_ways() {
    let reg = registry();
    let data = bytes(6 * MIB, 5);
    let d512 = sha512(&data);
    assert_eq!(send(&reg, "POST", &format!("/v2/a/blobs/uploads/?digest={d512}"), &[], &data).status, 201);
    let a = send(&reg, "POST", "/v2/b/blobs/uploads/?digest-algorithm=sha512", &[], b"");
    assert_eq!(a.status, 202);
    let location = a.header("location").unwrap().to_owned();
    assert_eq!(send(&reg, "PATCH", &location, &[], &data).status, 202);
    assert_eq!(send(&reg, "PUT", &format!("{location}?digest={d512}"), &[], b"").status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/b/blobs/{d512}"), &[], b"").body, data);
    send(&reg, "POST", "/v2/b/blobs/uploads/?digest-algorithm=md5", &[], b"").assert_error(400, "DIGEST_INVALID");
}

#[test]
fn a_session_without_an_algorithm_hint_accepts_a_sha512_digest() {
    // "digest-algorithm" is only a SHOULD: the bytes are hashed again before the blob shows.
    for (size, seed) in [(3, 1), (12 * MIB + 9, 2)] {
        let reg = registry();
        let data = bytes(size, seed);
        let location = start_upload(&reg, "a");
        assert_eq!(send(&reg, "PATCH", &location, &[], &data).status, 202);
        let wrong = sha512(b"other bytes");
        let refused = send(&reg, "PUT", &format!("{location}?digest={wrong}"), &[], b"");
        refused.assert_error(400, "DIGEST_INVALID");
        assert_eq!(send(&reg, "HEAD", &format!("/v2/a/blobs/{wrong}"), &[], b"").status, 404);
        let left: Vec<String> = reg.blob_store().keys().into_iter().filter(|k| !k.starts_with("catalog/")).collect();
        assert!(left.is_empty(), "left behind: {left:?}");

        let location = start_upload(&reg, "a");
        assert_eq!(send(&reg, "PATCH", &location, &[], &data).status, 202);
        let d512 = sha512(&data);
        assert_eq!(send(&reg, "PUT", &format!("{location}?digest={d512}"), &[], b"").status, 201);
        assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{d512}"), &[], b"").body, data);
        assert_eq!(reg.blob_store().pending_multipart_uploads(), 0);
    }
}

#[test]
fn a_broken_stream_keeps_what_arrived_and_can_resume() {
    let reg = registry();
    let data = bytes(12 * MIB, 8);
    let location = start_upload(&reg, "a");
    let first = 7 * MIB;
    let a = send_stream(&reg, "PATCH", &location, &[], stream(Feed::Broken(data[..first].to_vec())));
    a.assert_error(400, "BLOB_UPLOAD_INVALID");
    let status = send(&reg, "GET", &location, &[], b"");
    assert_eq!(status.header("range").unwrap(), format!("0-{}", first - 1));
    let rest = format!("{first}-{}", data.len() - 1);
    assert_eq!(send(&reg, "PATCH", &location, &[("content-range", &rest)], &data[first..]).status, 202);
    assert_eq!(send(&reg, "PUT", &format!("{location}?digest={}", sha256(&data)), &[], b"").status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{}", sha256(&data)), &[], b"").body, data);
}

#[test]
fn a_broken_single_post_stores_nothing() {
    let reg = registry();
    let data = bytes(6 * MIB, 2);
    let d = sha256(&data);
    let a = send_stream(&reg, "POST", &format!("/v2/a/blobs/uploads/?digest={d}"), &[], stream(Feed::Broken(data)));
    a.assert_error(400, "BLOB_UPLOAD_INVALID");
    assert_eq!(send(&reg, "HEAD", &format!("/v2/a/blobs/{d}"), &[], b"").status, 404);
    assert_eq!(reg.blob_store().pending_multipart_uploads(), 0);
}

#[test]
fn cancel_ends_the_session() {
    let reg = registry();
    let location = start_upload(&reg, "a");
    send(&reg, "PATCH", &location, &[], &bytes(6 * MIB, 1));
    assert_eq!(send(&reg, "DELETE", &location, &[], b"").status, 204);
    send(&reg, "GET", &location, &[], b"").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    send(&reg, "DELETE", &location, &[], b"").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(reg.blob_store().pending_multipart_uploads(), 0);
}

#[test]
fn sessions_are_bound_to_their_repository_and_ids_are_checked() {
    let reg = registry();
    let location = start_upload(&reg, "a");
    let id = location.rsplit('/').next().unwrap();
    send(&reg, "GET", &format!("/v2/b/blobs/uploads/{id}"), &[], b"").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    for bad in ["nope", "..%2f..%2fstate", &"0".repeat(33)] {
        send(&reg, "PATCH", &format!("/v2/a/blobs/uploads/{bad}"), &[], b"x").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    }
}

#[test]
fn put_without_digest_is_refused() {
    let reg = registry();
    let location = start_upload(&reg, "a");
    send(&reg, "PUT", &location, &[], b"x").assert_error(400, "DIGEST_INVALID");
}

#[test]
fn mount_from_another_repository() {
    let reg = registry();
    let d = push_blob(&reg, "src", b"shared layer");
    assert_eq!(send(&reg, "GET", &format!("/v2/dst/blobs/{d}"), &[], b"").status, 404);
    let a = send(&reg, "POST", &format!("/v2/dst/blobs/uploads/?mount={d}&from=src"), &[], b"");
    assert_eq!(a.status, 201);
    assert_eq!(a.header("location").unwrap(), format!("/v2/dst/blobs/{d}"));
    assert_eq!(send(&reg, "GET", &format!("/v2/dst/blobs/{d}"), &[], b"").body, b"shared layer");
    // Without `from`, a blob anywhere in the registry is mounted.
    assert_eq!(send(&reg, "POST", &format!("/v2/third/blobs/uploads/?mount={d}"), &[], b"").status, 201);
    // From a repository that lacks it, or for an unknown blob: a new session instead.
    let a = send(&reg, "POST", &format!("/v2/dst2/blobs/uploads/?mount={d}&from=empty"), &[], b"");
    assert_eq!(a.status, 202);
    assert!(a.header("location").unwrap().starts_with("/v2/dst2/blobs/uploads/"));
    let unknown = sha256(b"never pushed");
    assert_eq!(send(&reg, "POST", &format!("/v2/dst2/blobs/uploads/?mount={unknown}"), &[], b"").status, 202);
    send(&reg, "POST", &format!("/v2/dst2/blobs/uploads/?mount={d}&from=Bad"), &[], b"")
        .assert_error(400, "NAME_INVALID");
}

#[test]
fn blobs_are_stored_once_however_many_repositories_push_them() {
    let reg = registry();
    let data = bytes(2 * MIB, 4);
    push_blob(&reg, "one", &data);
    push_blob(&reg, "two", &data);
    let stored = reg.blob_store().keys().into_iter().filter(|k| k.starts_with("blobs/")).count();
    assert_eq!(stored, 1);
}
