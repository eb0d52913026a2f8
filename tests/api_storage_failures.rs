//! Storage failures are 5xx, client mistakes are 4xx: a backend failure injected on each
//! road a request takes (single-request push, native first PATCH, PATCH through wasm,
//! closing PUT, manifest PUT, blob GET) answers `503` with `Retry-After`, loses nothing
//! already accepted, and a wrong digest or a short body is still the client's 4xx.

mod common;

use common::*;
use edge_registry::registry::Config;
use edge_registry::storage::faulty::{FaultyBlobStore, Op};
use edge_registry::storage::memory::MemoryBlobStore;

type Faulty = FaultyBlobStore<MemoryBlobStore>;

fn faulty_registry() -> AnyRegistry<Faulty> {
    registry_over(
        FaultyBlobStore::new(MemoryBlobStore::new()),
        Config { part_size: 5 * MIB as u64, ..Config::default() },
    )
    .0
}

#[track_caller]
fn assert_unavailable(a: &Answer) {
    a.assert_error(503, "UNSUPPORTED");
    let retry: u64 = a.header("retry-after").expect("a 503 says when to retry").parse().unwrap();
    assert!(retry > 0);
}

fn status(reg: &AnyRegistry<Faulty>, location: &str) -> Answer {
    send(reg, "GET", location, &[], b"")
}

#[test]
fn single_request_push_fails_as_503_then_succeeds_on_retry() {
    let reg = faulty_registry();
    let data = bytes(3000, 1);
    let digest = sha256(&data);
    reg.blob_store().fail(Op::PutVerified, "blobs/");
    let uri = format!("/v2/a/blobs/uploads/?digest={digest}");
    assert_unavailable(&send(&reg, "POST", &uri, &[], &data));
    reg.blob_store().heal();
    assert_eq!(send(&reg, "POST", &uri, &[], &data).status, 201, "the retry the 503 asked for works");
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{digest}"), &[], b"").body, data);
}

#[test]
fn native_first_patch_fails_as_503_and_the_session_survives() {
    let reg = faulty_registry();
    let location = start_upload(&reg, "a");
    reg.blob_store().fail(Op::PutNative, "");
    assert_unavailable(&send(&reg, "PATCH", &location, &[], &bytes(2000, 2)));
    reg.blob_store().heal();
    assert_eq!(status(&reg, &location).status, 204, "the session is still open");
    let data = bytes(2000, 2);
    assert_eq!(send(&reg, "PATCH", &location, &[], &data).status, 202);
    let close = send(&reg, "PUT", &format!("{location}?digest={}", sha256(&data)), &[], b"");
    assert_eq!(close.status, 201, "{:?}", String::from_utf8_lossy(&close.body));
}

#[test]
fn patch_through_wasm_fails_as_503_and_keeps_what_was_accepted() {
    let reg = faulty_registry();
    let location = start_upload(&reg, "a");
    let first = bytes(6 * MIB, 3);
    let a = send(&reg, "PATCH", &location, &[("content-range", &format!("0-{}", first.len() - 1))], &first);
    assert_eq!(a.status, 202);
    let second = bytes(6 * MIB, 4);
    let range = format!("{}-{}", first.len(), first.len() + second.len() - 1);
    reg.blob_store().fail(Op::UploadPart, "");
    assert_unavailable(&send(&reg, "PATCH", &location, &[("content-range", &range)], &second));
    reg.blob_store().heal();
    let progress = status(&reg, &location);
    assert_eq!(progress.status, 204);
    let end: u64 = progress.header("range").unwrap().trim_start_matches("0-").parse().unwrap();
    assert!(end + 1 >= first.len() as u64, "the first chunk is still accepted (range 0-{end})");
    // The client resumes from the offset the status reports.
    let whole = [first.clone(), second.clone()].concat();
    let rest = &whole[end as usize + 1..];
    let range = format!("{}-{}", end + 1, whole.len() - 1);
    assert_eq!(send(&reg, "PATCH", &location, &[("content-range", &range)], rest).status, 202);
    let close = send(&reg, "PUT", &format!("{location}?digest={}", sha256(&whole)), &[], b"");
    assert_eq!(close.status, 201, "{:?}", String::from_utf8_lossy(&close.body));
}

#[test]
fn closing_put_fails_as_503_and_can_be_repeated() {
    let reg = faulty_registry();
    let location = start_upload(&reg, "a");
    let data = bytes(4000, 5);
    let a = send(&reg, "PATCH", &location, &[("content-range", &format!("0-{}", data.len() - 1))], &data);
    assert_eq!(a.status, 202);
    let close = format!("{location}?digest={}", sha256(&data));
    // Fails while the blob is being checked for, before the session is let go. (A failure
    // after that, while the blob is published, still ends the session: registry/finish.rs.)
    reg.blob_store().fail(Op::Head, "blobs/");
    assert_unavailable(&send(&reg, "PUT", &close, &[], b""));
    reg.blob_store().heal();
    assert_eq!(send(&reg, "PUT", &close, &[], b"").status, 201, "the session survived the failed close");
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{}", sha256(&data)), &[], b"").body, data);
}

#[test]
fn closing_put_of_an_empty_session_fails_as_503() {
    let reg = faulty_registry();
    let location = start_upload(&reg, "a");
    let data = bytes(1000, 6);
    reg.blob_store().fail(Op::PutVerified, "");
    assert_unavailable(&send(&reg, "PUT", &format!("{location}?digest={}", sha256(&data)), &[], &data));
}

#[test]
fn manifest_put_and_reads_fail_as_503() {
    let reg = faulty_registry();
    let digest = push_image(&reg, "a", "v1", 7);
    let config = br#"{"seed":8}"#.to_vec();
    let c = push_blob(&reg, "a", &config);
    let manifest = image_manifest((&c, config.len()), &[], "");
    reg.blob_store().fail(Op::PutBytes, "manifests/");
    let put = send(&reg, "PUT", "/v2/a/manifests/v2", &[("content-type", OCI_MANIFEST)], &manifest);
    assert_unavailable(&put);
    reg.blob_store().heal();
    assert_eq!(send(&reg, "GET", "/v2/a/manifests/v2", &[], b"").status, 404, "a refused manifest changes no tag");
    reg.blob_store().fail(Op::Head, "tags/");
    assert_unavailable(&send(&reg, "GET", "/v2/a/manifests/v1", &[], b""));
    reg.blob_store().heal();
    let get = send(&reg, "GET", "/v2/a/manifests/v1", &[], b"");
    assert_eq!(get.header("docker-content-digest"), Some(digest.as_str()), "nothing accepted was lost");
}

#[test]
fn blob_get_fails_as_503() {
    let reg = faulty_registry();
    let data = bytes(500, 9);
    let digest = push_blob(&reg, "a", &data);
    reg.blob_store().fail(Op::Get, "blobs/");
    assert_unavailable(&send(&reg, "GET", &format!("/v2/a/blobs/{digest}"), &[], b""));
    reg.blob_store().fail_everything();
    assert_unavailable(&send(&reg, "HEAD", &format!("/v2/a/blobs/{digest}"), &[], b""));
    assert_unavailable(&send(&reg, "GET", "/v2/a/tags/list", &[], b""));
}

#[test]
fn a_wrong_digest_or_a_short_body_stays_the_clients_4xx() {
    let reg = faulty_registry();
    let data = bytes(3000, 10);
    let wrong = sha256(b"something else");
    send(&reg, "POST", &format!("/v2/a/blobs/uploads/?digest={wrong}"), &[], &data).assert_error(400, "DIGEST_INVALID");
    let digest = sha256(&data);
    let uri = format!("/v2/a/blobs/uploads/?digest={digest}");
    send_broken_native(&reg, "POST", &uri, data[..1000].to_vec(), 3000).assert_error(400, "BLOB_UPLOAD_INVALID");
    let location = start_upload(&reg, "a");
    send_broken_native(&reg, "PATCH", &location, data[..1000].to_vec(), 3000).assert_error(400, "BLOB_UPLOAD_INVALID");
    assert_eq!(reg.blob_store().injected(), 0, "no fault was needed: these are the client's");
}

#[test]
fn expiry_counts_a_session_it_could_not_close_and_carries_on() {
    let (reg, clock) = registry_over(FaultyBlobStore::new(MemoryBlobStore::new()), Config::default());
    let stuck = start_upload(&reg, "a");
    let other = start_upload(&reg, "a");
    clock.advance(48 * 3_600_000);
    let stuck_id = stuck.rsplit('/').next().unwrap();
    reg.blob_store().fail(Op::PutBytes, &format!("uploads/{stuck_id}/state"));
    let report = futures::executor::block_on(reg.expire_uploads(24 * 3_600_000)).unwrap();
    assert_eq!((report.expired, report.failed), (1, 1));
    reg.blob_store().heal();
    assert_eq!(send(&reg, "GET", &stuck, &[], b"").status, 204, "left for the next run");
    assert_eq!(send(&reg, "GET", &other, &[], b"").status, 404);
}
