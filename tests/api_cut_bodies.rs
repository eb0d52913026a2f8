//! docker's road: a first chunk without `Content-Length` (one PATCH, chunked transfer
//! encoding) is cut into parts and hashed by the store's cutter, and the closing PUT
//! publishes it without reading it back. These tests pin that this road keeps every promise
//! of the others: verified before visible, resumable after a break, bounded by the request
//! limit, safe when a request dies mid-body and another takes the session over.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::inflight::InFlight;
use common::*;
use edge_registry::registry::{Config, CUT_CHECKPOINT_EVERY_MS};

const PART: usize = 5 * MIB;

fn limited(limit: usize) -> (TestRegistry, ManualClock) {
    registry_and_clock(Config { part_size: PART as u64, max_request_bytes: Some(limit as u64), ..Config::default() })
}

fn close(reg: &TestRegistry, location: &str, data: &[u8]) -> Answer {
    send(reg, "PUT", &format!("{location}?digest={}", sha256(data)), &[], b"")
}

#[test]
fn a_chunked_first_patch_is_published_by_an_empty_put_without_being_read_back() {
    for size in [1, PART, PART + 1, 3 * PART + 12_345] {
        let reg = registry();
        let data = bytes(size, 21);
        let location = start_upload(&reg, "a");
        let patch = send_chunked(&reg, "PATCH", &location, Feed::Pieces(data.clone(), 100_000));
        assert_eq!(patch.status, 202, "{size}: {}", patch.error_code());
        assert_eq!(patch.header("range").unwrap(), format!("0-{}", size - 1));
        assert_eq!(reg.blob_store().native_puts(), size.div_ceil(PART) as u64, "one cut part per {PART} bytes");
        assert_eq!(close(&reg, &location, &data).status, 201);
        assert_eq!(reg.blob_store().hash_reads(), 0, "{size}: the store's digest was used, not a second read");
        assert_blob(&reg, &data);
        assert_nothing_left(&reg);
    }
}

#[test]
fn a_chunked_first_patch_with_the_wrong_digest_publishes_nothing_and_leaves_nothing() {
    let reg = registry();
    let data = bytes(2 * PART + 3, 22);
    let location = start_upload(&reg, "a");
    assert_eq!(send_chunked(&reg, "PATCH", &location, Feed::Pieces(data.clone(), 65_536)).status, 202);
    let wrong = sha256(b"something else");
    send(&reg, "PUT", &format!("{location}?digest={wrong}"), &[], b"").assert_error(400, "DIGEST_INVALID");
    assert_eq!(send(&reg, "HEAD", &format!("/v2/a/blobs/{}", sha256(&data)), &[], b"").status, 404);
    assert_nothing_left(&reg);
}

#[test]
fn more_chunks_after_a_chunked_first_patch_read_it_back_once_and_the_blob_is_right() {
    let reg = registry();
    let data = bytes(4 * PART + 7, 23);
    let first = 2 * PART + 100;
    let location = start_upload(&reg, "a");
    assert_eq!(send_chunked(&reg, "PATCH", &location, Feed::Pieces(data[..first].to_vec(), 70_000)).status, 202);
    let range = format!("{first}-{}", data.len() - 1);
    assert_eq!(send(&reg, "PATCH", &location, &[("content-range", &range)], &data[first..]).status, 202);
    assert_eq!(close(&reg, &location, &data).status, 201);
    assert_blob(&reg, &data);
    assert_nothing_left(&reg);
}

#[test]
fn a_chunked_patch_that_breaks_keeps_what_arrived_and_the_client_resumes_from_the_status() {
    let reg = registry();
    let data = bytes(3 * PART, 24);
    let arrived = PART + 4_321;
    let location = start_upload(&reg, "a");
    let broken = send_chunked(&reg, "PATCH", &location, Feed::Broken(data[..arrived].to_vec()));
    broken.assert_error(400, "BLOB_UPLOAD_INVALID");
    let status = send(&reg, "GET", &location, &[], b"");
    assert_eq!((status.status, status.header("range").unwrap()), (204, format!("0-{}", arrived - 1).as_str()));
    let range = format!("{arrived}-{}", data.len() - 1);
    assert_eq!(send(&reg, "PATCH", &location, &[("content-range", &range)], &data[arrived..]).status, 202);
    assert_eq!(close(&reg, &location, &data).status, 201);
    assert_blob(&reg, &data);
    assert_nothing_left(&reg);
}

#[test]
fn a_chunked_patch_over_the_request_limit_is_refused_with_413_keeping_the_bytes_before_it() {
    let limit = 2 * PART + 10;
    let (reg, _) = limited(limit);
    let data = bytes(3 * PART, 25);
    let location = start_upload(&reg, "a");
    let refused = send_chunked(&reg, "PATCH", &location, Feed::Pieces(data.clone(), 1_000_000));
    refused.assert_over_limit(limit);
    // Nothing is lost: the first `limit` bytes are the session's, and the upload goes on.
    let status = send(&reg, "GET", &location, &[], b"");
    assert_eq!(status.header("range").unwrap(), format!("0-{}", limit - 1));
    let range = format!("{limit}-{}", data.len() - 1);
    assert_eq!(send(&reg, "PATCH", &location, &[("content-range", &range)], &data[limit..]).status, 202);
    assert_eq!(close(&reg, &location, &data).status, 201);
    assert_blob(&reg, &data);
    assert_nothing_left(&reg);
}

#[test]
fn a_body_through_wasm_over_the_request_limit_is_refused_with_413_too() {
    let (reg, _) = limited(PART);
    let data = bytes(PART + 1, 26);
    let location = start_upload(&reg, "a");
    let range = format!("0-{}", data.len() - 1);
    let body = stream(Feed::Pieces(data.clone(), 65_536));
    send_stream(&reg, "PATCH", &location, &[("content-range", &range)], body).assert_over_limit(PART);
    let status = send(&reg, "GET", &location, &[], b"");
    assert_eq!(status.header("range").unwrap(), format!("0-{}", PART - 1));
}

#[test]
fn a_whole_blob_without_content_length_in_a_post_or_a_put_is_cut_by_the_store() {
    let reg = registry();
    let data = bytes(2 * PART + 99, 27);
    let post = send_chunked(
        &reg,
        "POST",
        &format!("/v2/a/blobs/uploads/?digest={}", sha256(&data)),
        Feed::Pieces(data.clone(), 50_000),
    );
    assert_eq!(post.status, 201);
    assert_blob(&reg, &data);
    let other = bytes(PART + 5, 28);
    let location = start_upload(&reg, "a");
    let put = send_chunked(
        &reg,
        "PUT",
        &format!("{location}?digest={}", sha256(&other)),
        Feed::Pieces(other.clone(), 50_000),
    );
    assert_eq!(put.status, 201);
    assert_blob(&reg, &other);
    assert_eq!(reg.blob_store().hash_reads(), 0);
    assert_nothing_left(&reg);
}

/// A PATCH whose request dies after the store cut two parts: its checkpoint (taken once
/// `CUT_CHECKPOINT_EVERY_MS` passed, not after every part) lists parts its hash state does
/// not cover. The request that takes the session over after the lease assembles and reads
/// them back, and the blob is right.
#[test]
fn a_session_taken_over_from_a_dead_chunked_patch_reads_its_parts_back_and_completes() {
    let (reg, clock) = registry_and_clock(Config { part_size: PART as u64, ..Config::default() });
    let data = bytes(4 * PART, 29);
    let location = start_upload(&reg, "a");
    let mut dying = InFlight::start_chunked(&reg, "PATCH", &location);
    assert!(dying.send(&data[..PART + 10]).is_none(), "still streaming");
    let status = send(&reg, "GET", &location, &[], b"");
    assert_eq!(status.header("range"), Some("0-0"), "one part in a moment: not checkpointed yet");
    clock.advance(CUT_CHECKPOINT_EVERY_MS);
    assert!(dying.send(&data[PART + 10..2 * PART + 10]).is_none(), "still streaming");
    drop(dying);
    let status = send(&reg, "GET", &location, &[], b"");
    assert_eq!(status.header("range").unwrap(), format!("0-{}", 2 * PART - 1), "the checkpointed parts");
    let early = format!("{}-{}", 2 * PART, data.len() - 1);
    send(&reg, "PATCH", &location, &[("content-range", &early)], &data[2 * PART..])
        .assert_error(416, "BLOB_UPLOAD_INVALID");
    clock.advance(61_000); // past the 60 s claim lease
    assert_eq!(send(&reg, "PATCH", &location, &[("content-range", &early)], &data[2 * PART..]).status, 202);
    assert_eq!(close(&reg, &location, &data).status, 201);
    assert_blob(&reg, &data);
    assert!(reg.blob_store().hash_reads() > 0, "a taken-over session is hashed again");
    assert_nothing_left(&reg);
}
