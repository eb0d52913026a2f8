//! Two requests for one upload session at once, driven step by step: each request's body
//! is fed by hand, and a request is polled only when the test says so, so every
//! interleaving below is deterministic. The in-memory store honours etags and conditional
//! puts as R2 does, so these are the races a deployment can meet.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::inflight::InFlight;
use common::*;
use futures::executor::block_on;

const HOUR: u64 = 3_600_000;

/// A registry with 5 MiB parts and a clock the test moves.
fn clocked() -> (TestRegistry, ManualClock) {
    registry_and_clock(edge_registry::registry::Config { part_size: 5 * MIB as u64, ..Default::default() })
}

fn range(start: usize, len: usize) -> String {
    format!("{start}-{}", start + len - 1)
}

fn put(reg: &TestRegistry, location: &str, data: &[u8]) -> Answer {
    send(reg, "PUT", &format!("{location}?digest={}", sha256(data)), &[], b"")
}

#[test]
fn two_patches_at_the_same_offset_one_wins_the_other_gets_416_and_changes_nothing() {
    for (first, second) in [(MIB, 9 * MIB), (9 * MIB, MIB)] {
        let reg = registry();
        let location = start_upload(&reg, "a");
        let a_bytes = bytes(first, 1);
        let b_bytes = bytes(second, 2);
        let a_range = range(0, first);
        let mut a = InFlight::start(&reg, "PATCH", &location, &[("content-range", &a_range)], None);
        assert!(a.send(&a_bytes[..first / 2]).is_none());
        // B read the same offset (0) and arrives while A streams.
        let b = send_stream(&reg, "PATCH", &location, &[("content-range", &range(0, second))], {
            stream(Feed::Pieces(b_bytes.clone(), MIB))
        });
        b.assert_error(416, "BLOB_UPLOAD_INVALID");
        assert_eq!(b.header("range"), Some("0-0"));
        assert!(a.send(&a_bytes[first / 2..]).is_none());
        let a = a.finish(false);
        assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(a.header("range").unwrap(), a_range);
        assert_eq!(put(&reg, &location, &a_bytes).status, 201);
        assert_blob(&reg, &a_bytes);
        assert_nothing_left(&reg);
    }
}

#[test]
fn a_put_while_a_patch_streams_gets_416_with_the_checkpointed_range_then_the_upload_completes() {
    let reg = registry();
    let location = start_upload(&reg, "a");
    let data = bytes(12 * MIB, 3);
    let mut patch = InFlight::start(&reg, "PATCH", &location, &[("content-range", &range(0, data.len()))], None);
    // Past the first 5 MiB part: it is uploaded and checkpointed.
    assert!(patch.send(&data[..6 * MIB]).is_none());
    let early = put(&reg, &location, &data);
    early.assert_error(416, "BLOB_UPLOAD_INVALID");
    assert_eq!(early.header("range"), Some(range(0, 5 * MIB).as_str()));
    let status = send(&reg, "GET", &location, &[], b"");
    assert_eq!(status.header("range"), Some(range(0, 5 * MIB).as_str()), "the checkpoint is durable");
    assert!(patch.send(&data[6 * MIB..]).is_none());
    assert_eq!(patch.finish(false).status, 202);
    assert_eq!(put(&reg, &location, &data).status, 201);
    assert_blob(&reg, &data);
}

#[test]
fn two_closing_puts_one_publishes_the_other_gets_416_then_404() {
    let reg = registry();
    let location = start_upload(&reg, "a");
    let data = bytes(7 * MIB, 4);
    let first = send_stream(&reg, "PATCH", &location, &[], stream(Feed::Pieces(data[..6 * MIB].to_vec(), MIB)));
    assert_eq!(first.status, 202);
    let uri = format!("{location}?digest={}", sha256(&data));
    let mut a = InFlight::start(&reg, "PUT", &uri, &[], None);
    assert!(a.send(&data[6 * MIB..6 * MIB + 10]).is_none());
    send(&reg, "PUT", &uri, &[], b"").assert_error(416, "BLOB_UPLOAD_INVALID");
    assert!(a.send(&data[6 * MIB + 10..]).is_none());
    assert_eq!(a.finish(false).status, 201);
    send(&reg, "PUT", &uri, &[], b"").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    assert_blob(&reg, &data);
    assert_nothing_left(&reg);
}

#[test]
fn expiry_during_a_streaming_patch_wins_and_the_patch_answers_404_leaving_nothing() {
    let (reg, clock) = clocked();
    let location = start_upload(&reg, "a");
    let data = bytes(12 * MIB, 5);
    let mut patch = InFlight::start(&reg, "PATCH", &location, &[], None);
    assert!(patch.send(&data[..6 * MIB]).is_none());
    clock.advance(25 * HOUR);
    let report = block_on(reg.expire_uploads(24 * HOUR)).unwrap();
    assert_eq!((report.expired, report.failed), (1, 0));
    assert!(patch.send(&data[6 * MIB..]).is_none());
    patch.finish(false).assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    send(&reg, "GET", &location, &[], b"").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    assert_nothing_left(&reg);
}

#[test]
fn expiry_spares_a_session_a_patch_touched_within_the_limit() {
    let (reg, clock) = clocked();
    let location = start_upload(&reg, "a");
    let data = bytes(12 * MIB, 6);
    let mut patch = InFlight::start(&reg, "PATCH", &location, &[], None);
    clock.advance(25 * HOUR);
    // The part boundary checkpoints the session, which renews its activity stamp.
    assert!(patch.send(&data[..6 * MIB]).is_none());
    assert_eq!(block_on(reg.expire_uploads(24 * HOUR)).unwrap().expired, 0);
    assert!(patch.send(&data[6 * MIB..]).is_none());
    assert_eq!(patch.finish(false).status, 202);
    assert_eq!(put(&reg, &location, &data).status, 201);
    assert_blob(&reg, &data);
}

#[test]
fn a_patch_still_streaming_after_its_session_was_taken_over_and_completed_gets_404_and_the_blob_stays() {
    let (reg, clock) = clocked();
    let location = start_upload(&reg, "a");
    let stale_bytes = bytes(16 * MIB, 7);
    let mut stale = InFlight::start(&reg, "PATCH", &location, &[], None);
    assert!(stale.send(&stale_bytes[..MIB]).is_none());
    // The first request stops renewing its claim; past the lease another one takes over.
    clock.advance(61_000);
    let data = bytes(9 * MIB, 8);
    assert_eq!(send_stream(&reg, "PATCH", &location, &[], stream(Feed::Pieces(data.clone(), MIB))).status, 202);
    assert_eq!(put(&reg, &location, &data).status, 201);
    // The stale request wakes up and streams 15 MiB more, crossing part boundaries.
    assert!(stale.send(&stale_bytes[MIB..]).is_none());
    stale.finish(false).assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    assert_blob(&reg, &data);
    assert_nothing_left(&reg);
}

#[test]
fn a_claim_taken_over_makes_the_close_hash_the_assembled_blob_again() {
    let (reg, clock) = clocked();
    let location = start_upload(&reg, "a");
    let data = bytes(11 * MIB, 9);
    let mut stale = InFlight::start(&reg, "PATCH", &location, &[], None);
    assert!(stale.send(&data[..6 * MIB]).is_none()); // part 1 uploaded and checkpointed
    clock.advance(61_000);
    let rest = send_stream(&reg, "PATCH", &location, &[], stream(Feed::Pieces(data[5 * MIB..].to_vec(), MIB)));
    assert_eq!(rest.status, 202);
    // The stale writer uploads its part 2 over the new writer's part 2, then finds at its
    // checkpoint that it lost the session.
    // (The API then drains the rest of the body before it answers.)
    assert!(stale.send(&bytes(5 * MIB, 10)).is_none());
    let lost = stale.finish(false);
    lost.assert_error(416, "BLOB_UPLOAD_INVALID");
    // R2 refuses to complete with a part that was uploaded again: nothing is published
    // and the client is told to restart the blob.
    put(&reg, &location, &data).assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    let got = send(&reg, "GET", &format!("/v2/a/blobs/{}", sha256(&data)), &[], b"");
    assert_eq!(got.status, 404);
    assert_nothing_left(&reg);
    let again = start_upload(&reg, "a");
    assert_eq!(send_stream(&reg, "PATCH", &again, &[], stream(Feed::Pieces(data.clone(), MIB))).status, 202);
    assert_eq!(put(&reg, &again, &data).status, 201);
    assert_blob(&reg, &data);
}

#[test]
fn a_content_range_that_disagrees_with_content_length_is_refused_before_any_byte_is_stored() {
    let reg = registry();
    let location = start_upload(&reg, "a");
    let before = reg.blob_store().keys();
    let a = send(&reg, "PATCH", &location, &[("content-range", "0-99")], &[7; 50]);
    a.assert_error(400, "BLOB_UPLOAD_INVALID");
    assert_eq!(reg.blob_store().keys().len(), before.len(), "nothing stored");
    let huge = send(&reg, "PATCH", &location, &[("content-range", "0-18446744073709551615")], &[7; 50]);
    huge.assert_error(400, "BLOB_UPLOAD_INVALID");
    let status = send(&reg, "GET", &location, &[], b"");
    assert_eq!((status.status, status.header("range")), (204, Some("0-0")));
}

#[test]
fn a_closing_put_whose_body_breaks_keeps_the_chunks_accepted_and_the_client_resumes() {
    let reg = registry();
    let location = start_upload(&reg, "a");
    let data = bytes(8 * MIB, 11);
    let first = send_stream(&reg, "PATCH", &location, &[], stream(Feed::Pieces(data[..6 * MIB].to_vec(), MIB)));
    assert_eq!(first.status, 202);
    let uri = format!("{location}?digest={}", sha256(&data));
    let broken = send_stream(&reg, "PUT", &uri, &[], stream(Feed::Broken(data[6 * MIB..7 * MIB].to_vec())));
    assert_eq!(broken.status, 400);
    let status = send(&reg, "GET", &location, &[], b"");
    assert_eq!(status.header("range"), Some(range(0, 7 * MIB).as_str()));
    let rest = send_stream(&reg, "PUT", &uri, &[], stream(Feed::Pieces(data[7 * MIB..].to_vec(), MIB)));
    assert_eq!(rest.status, 201, "{}", String::from_utf8_lossy(&rest.body));
    assert_blob(&reg, &data);
}

#[test]
fn a_cancel_while_a_patch_streams_wins_and_the_patch_answers_404() {
    let reg = registry();
    let location = start_upload(&reg, "a");
    let data = bytes(12 * MIB, 12);
    let mut patch = InFlight::start(&reg, "PATCH", &location, &[], None);
    assert!(patch.send(&data[..6 * MIB]).is_none());
    assert_eq!(send(&reg, "DELETE", &location, &[], b"").status, 204);
    assert!(patch.send(&data[6 * MIB..]).is_none());
    patch.finish(false).assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    assert_nothing_left(&reg);
}
