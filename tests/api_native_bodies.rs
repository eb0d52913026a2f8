//! The native road: bodies with a known length are stored and hashed by the store itself
//! (on Workers, without passing through wasm). These tests pin that the road keeps every
//! promise of the wasm road: verified before visible, resumable, nothing left behind.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;

fn leftovers(reg: &TestRegistry) -> Vec<String> {
    reg.blob_store()
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("uploads/") || k.starts_with("blobs/multipart/"))
        .collect()
}

#[test]
fn a_native_first_chunk_closed_by_an_empty_put() {
    for size in [1, 3 * MIB, 11 * MIB + 1] {
        let reg = registry();
        let data = bytes(size, 4);
        let location = start_upload(&reg, "a");
        let patch = send(&reg, "PATCH", &location, &[], &data);
        assert_eq!(patch.status, 202);
        assert_eq!(patch.header("range").unwrap(), format!("0-{}", size - 1));
        let status = send(&reg, "GET", &location, &[], b"");
        assert_eq!(status.header("range").unwrap(), format!("0-{}", size - 1));
        let d = sha256(&data);
        assert_eq!(send(&reg, "PUT", &format!("{location}?digest={d}"), &[], b"").status, 201);
        assert_eq!(reg.blob_store().hash_reads(), 0, "hashed as it was stored, not read back to be hashed");
        assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{d}"), &[], b"").body, data);
        let range = send(&reg, "GET", &format!("/v2/a/blobs/{d}"), &[("range", "bytes=0-0")], b"");
        assert_eq!(range.body, &data[..1]);
        assert!(leftovers(&reg).iter().all(|k| k.starts_with("blobs/multipart/")), "{:?}", leftovers(&reg));
    }
}

#[test]
fn a_native_first_chunk_with_a_wrong_digest_leaves_nothing() {
    let reg = registry();
    let data = bytes(6 * MIB, 5);
    let location = start_upload(&reg, "a");
    assert_eq!(send(&reg, "PATCH", &location, &[], &data).status, 202);
    let wrong = sha256(b"other");
    send(&reg, "PUT", &format!("{location}?digest={wrong}"), &[], b"").assert_error(400, "DIGEST_INVALID");
    assert_eq!(send(&reg, "HEAD", &format!("/v2/a/blobs/{}", sha256(&data)), &[], b"").status, 404);
    assert_eq!(leftovers(&reg), Vec::<String>::new());
}

#[test]
fn more_chunks_after_a_native_first_chunk_are_re_cut_into_parts() {
    let reg = registry();
    let data = bytes(17 * MIB + 5, 6);
    let location = start_upload(&reg, "a");
    let first = 7 * MIB + 3;
    assert_eq!(send(&reg, "PATCH", &location, &[], &data[..first]).status, 202);
    let rest = stream(Feed::Pieces(data[first..].to_vec(), 100_000));
    let range = format!("{first}-{}", data.len() - 1);
    let a = send_stream(&reg, "PATCH", &location, &[("content-range", &range)], rest);
    assert_eq!(a.status, 202);
    let d = sha256(&data);
    assert_eq!(send(&reg, "PUT", &format!("{location}?digest={d}"), &[], b"").status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{d}"), &[], b"").body, data);
    assert_eq!(reg.blob_store().pending_multipart_uploads(), 0);
}

#[test]
fn a_native_first_chunk_may_be_closed_with_a_sha512_digest() {
    let reg = registry();
    let data = bytes(9 * MIB, 7);
    let location = start_upload(&reg, "a");
    assert_eq!(send(&reg, "PATCH", &location, &[], &data).status, 202);
    let d = sha512(&data);
    assert_eq!(send(&reg, "PUT", &format!("{location}?digest={d}"), &[], b"").status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{d}"), &[], b"").body, data);
}

#[test]
fn a_whole_blob_in_the_closing_put_is_verified_by_the_store() {
    let reg = registry();
    let data = bytes(2 * MIB, 8);
    let location = start_upload(&reg, "a");
    let wrong = sha256(b"nope");
    send(&reg, "PUT", &format!("{location}?digest={wrong}"), &[], &data).assert_error(400, "DIGEST_INVALID");
    assert_eq!(send(&reg, "HEAD", &format!("/v2/a/blobs/{wrong}"), &[], b"").status, 404);
    send(&reg, "GET", &location, &[], b"").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    let location = start_upload(&reg, "a");
    let d = sha256(&data);
    assert_eq!(send(&reg, "PUT", &format!("{location}?digest={d}"), &[], &data).status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{d}"), &[], b"").body, data);
    assert_eq!(leftovers(&reg), Vec::<String>::new());
}

#[test]
fn broken_native_bodies_store_nothing() {
    let reg = registry();
    let data = bytes(3 * MIB, 9);
    let d = sha256(&data);
    let post = send_broken_native(
        &reg,
        "POST",
        &format!("/v2/a/blobs/uploads/?digest={d}"),
        data[..MIB].to_vec(),
        data.len() as u64,
    );
    post.assert_error(400, "BLOB_UPLOAD_INVALID");
    assert_eq!(send(&reg, "HEAD", &format!("/v2/a/blobs/{d}"), &[], b"").status, 404);
    let location = start_upload(&reg, "a");
    let patch = send_broken_native(&reg, "PATCH", &location, data[..MIB].to_vec(), data.len() as u64);
    patch.assert_error(400, "BLOB_UPLOAD_INVALID");
    // The session is untouched and can start over.
    assert_eq!(send(&reg, "GET", &location, &[], b"").header("range"), Some("0-0"));
    assert_eq!(send(&reg, "PATCH", &location, &[], &data).status, 202);
    assert_eq!(send(&reg, "PUT", &format!("{location}?digest={d}"), &[], b"").status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{d}"), &[], b"").body, data);
}

#[test]
fn cancelling_a_native_session_removes_its_object() {
    let reg = registry();
    let location = start_upload(&reg, "a");
    assert_eq!(send(&reg, "PATCH", &location, &[], &bytes(MIB, 1)).status, 202);
    assert_eq!(send(&reg, "DELETE", &location, &[], b"").status, 204);
    assert_eq!(leftovers(&reg), Vec::<String>::new());
}

#[test]
fn the_road_depends_on_how_the_client_sends() {
    let reg = registry();
    let data = bytes(MIB, 10);
    // A whole layer in one PATCH without Content-Range (skopeo, podman, docker): native.
    let location = start_upload(&reg, "a");
    assert_eq!(send(&reg, "PATCH", &location, &[], &data).status, 202);
    assert_eq!(reg.blob_store().native_puts(), 1);
    // Numbered chunks (oci-client and other chunking clients): through wasm from the start.
    let location = start_upload(&reg, "a");
    let range = format!("0-{}", data.len() - 1);
    assert_eq!(send(&reg, "PATCH", &location, &[("content-range", &range)], &data).status, 202);
    assert_eq!(reg.blob_store().native_puts(), 1);
    // A body only wasm can read: through wasm.
    let location = start_upload(&reg, "a");
    assert_eq!(send_stream(&reg, "PATCH", &location, &[], stream(Feed::Pieces(data.clone(), 4096))).status, 202);
    assert_eq!(reg.blob_store().native_puts(), 1);
    // No Content-Length (docker): cut into parts by the store, one part here.
    let location = start_upload(&reg, "a");
    assert_eq!(send_chunked(&reg, "PATCH", &location, Feed::Pieces(data.clone(), 4096)).status, 202);
    assert_eq!(reg.blob_store().native_puts(), 2);
    // Whole blobs with a digest: native.
    push_blob(&reg, "a", &data);
    assert_eq!(reg.blob_store().native_puts(), 3);
}
