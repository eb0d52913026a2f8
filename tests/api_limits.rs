//! The platform's request body limit: advertised, enforced with a clear 413, and no
//! obstacle to a client that pushes big layers in chunks.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;
use edge_registry::registry::Config;

const LIMIT: usize = 6 * MIB;

fn limited() -> TestRegistry {
    registry_with(Config { part_size: 5 * MIB as u64, max_request_bytes: Some(LIMIT as u64), ..Config::default() })
}

#[test]
fn sessions_advertise_the_largest_chunk() {
    let reg = limited();
    let a = send(&reg, "POST", "/v2/a/blobs/uploads/", &[], b"");
    assert_eq!(a.header("oci-chunk-max-length"), Some(&*LIMIT.to_string()));
    assert_eq!(send(&registry(), "POST", "/v2/a/blobs/uploads/", &[], b"").header("oci-chunk-max-length"), None);
}

#[test]
fn bodies_over_the_limit_get_413_and_store_nothing() {
    let reg = limited();
    let data = bytes(LIMIT + 1, 1);
    let d = sha256(&data);
    let length = data.len().to_string();
    let a = send(&reg, "POST", &format!("/v2/a/blobs/uploads/?digest={d}"), &[("content-length", &length)], &data);
    a.assert_over_limit(LIMIT);
    assert_eq!(send(&reg, "HEAD", &format!("/v2/a/blobs/{d}"), &[], b"").status, 404);
    let location = start_upload(&reg, "a");
    send(&reg, "PATCH", &location, &[("content-length", &length)], &data).assert_over_limit(LIMIT);
    assert_eq!(send(&reg, "GET", &location, &[], b"").header("range"), Some("0-0"));
}

#[test]
fn a_layer_bigger_than_the_limit_goes_through_in_chunks() {
    let reg = limited();
    let data = bytes(3 * LIMIT + 12345, 2);
    let location = start_upload(&reg, "a");
    for (i, chunk) in data.chunks(LIMIT).enumerate() {
        let start = i * LIMIT;
        let range = format!("{start}-{}", start + chunk.len() - 1);
        let length = chunk.len().to_string();
        let a = send(&reg, "PATCH", &location, &[("content-range", &range), ("content-length", &length)], chunk);
        assert_eq!(a.status, 202, "chunk {i}");
    }
    let d = sha256(&data);
    assert_eq!(send(&reg, "PUT", &format!("{location}?digest={d}"), &[("content-length", "0")], b"").status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{d}"), &[], b"").body, data);
}

#[test]
fn bodies_over_the_single_put_limit_go_multipart() {
    // R2 takes at most 5 GiB in one put; scaled down here to 7 MiB.
    let reg = registry();
    reg.blob_store().set_single_put_limit(7 * MIB as u64);
    let data = bytes(7 * MIB + 1, 5);
    let d = sha256(&data);
    assert_eq!(send(&reg, "POST", &format!("/v2/a/blobs/uploads/?digest={d}"), &[], &data).status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{d}"), &[], b"").body, data);
    let location = start_upload(&reg, "b");
    assert_eq!(send(&reg, "PATCH", &location, &[], &data).status, 202);
    assert_eq!(send(&reg, "PUT", &format!("{location}?digest={d}"), &[], b"").status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/b/blobs/{d}"), &[], b"").body, data);
    let location = start_upload(&reg, "c");
    assert_eq!(send(&reg, "PUT", &format!("{location}?digest={d}"), &[], &data).status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/c/blobs/{d}"), &[], b"").body, data);
}
