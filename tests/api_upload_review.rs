#![cfg(not(target_arch = "wasm32"))]
#![allow(dead_code, unused_imports)]
//! Regression tests from the review of the serialised sessions: a stale writer must not
//! abort the multipart upload its successor committed to; a close that fails after the
//! multipart upload completed can be retried; with replicas, one failure in a session's
//! replica is a 503, not a session that looks gone.
mod common;
mod replica_world;
use common::inflight::InFlight;
use common::*;
use edge_registry::api;
use edge_registry::registry::{Config, RequestBody};
use edge_registry::storage::faulty::{FaultyBlobStore, Op};
use edge_registry::storage::memory::MemoryBlobStore;
use edge_registry::storage::BlobStore;
use futures::channel::mpsc;
use futures::executor::block_on;
use futures::future::LocalBoxFuture;
use futures::{FutureExt, StreamExt};
use std::task::{Context, Poll};

fn clocked() -> (TestRegistry, ManualClock) {
    registry_and_clock(Config { part_size: 5 * MIB as u64, ..Default::default() })
}

/// F1: a stale writer that created the multipart and checkpointed part 1 aborts the
/// multipart the taking-over writer committed to, without uploading any part again.
#[test]
fn a_stale_writer_that_lost_its_claim_leaves_the_winners_multipart_upload_alone() {
    let (reg, clock) = clocked();
    let location = start_upload(&reg, "a");
    let data = bytes(11 * MIB, 9);
    let mut stale = InFlight::start(&reg, "PATCH", &location, &[], None);
    assert!(stale.send(&data[..6 * MIB]).is_none()); // part 1 + checkpoint
    clock.advance(61_000);
    let rest = send_stream(&reg, "PATCH", &location, &[], stream(Feed::Pieces(data[5 * MIB..].to_vec(), MIB)));
    assert_eq!(rest.status, 202);
    // The stale one's body just ends: no part uploaded again.
    let lost = stale.finish(false);
    assert!(matches!(lost.status, 404 | 416), "stale writer: {}", lost.status);
    let close = send(&reg, "PUT", &format!("{location}?digest={}", sha256(&data)), &[], b"");
    assert_eq!(close.status, 201, "winner's accepted bytes lost: {}", String::from_utf8_lossy(&close.body));
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{}", sha256(&data)), &[], b"").body, data);
}

type Faulty = FaultyBlobStore<MemoryBlobStore>;
fn faulty() -> (AnyRegistry<Faulty>, ManualClock) {
    registry_over(
        FaultyBlobStore::new(MemoryBlobStore::new()),
        Config { part_size: 5 * MIB as u64, ..Config::default() },
    )
}

/// F2: a storage failure after complete_multipart leaves the session stuck at 503 forever.
#[test]
fn a_close_that_fails_after_the_multipart_upload_completed_succeeds_when_retried() {
    let (reg, _) = faulty();
    let a = send(&reg, "POST", "/v2/a/blobs/uploads/?digest-algorithm=sha512", &[], b"");
    assert_eq!(a.status, 202);
    let location = a.header("location").unwrap().to_owned();
    let data = bytes(7 * MIB, 3);
    assert_eq!(send_stream(&reg, "PATCH", &location, &[], stream(Feed::Pieces(data.clone(), MIB))).status, 202);
    let close = format!("{location}?digest={}", sha256(&data));
    reg.blob_store().fail_times(Op::DigestObject, "", 1);
    let first = send(&reg, "PUT", &close, &[], b"");
    assert_eq!(first.status, 503);
    reg.blob_store().heal();
    let again = send(&reg, "PUT", &close, &[], b"");
    assert_eq!(again.status, 201, "retry after 503: {} {}", again.status, String::from_utf8_lossy(&again.body));
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{}", sha256(&data)), &[], b"").body, data);
}

/// F5: replicated: a storage failure in the session's home replica answers 404, and the
/// session is unknown while the home replica is in back-off.
#[test]
fn with_replicas_one_failure_in_the_sessions_replica_is_a_503_and_the_session_stays() {
    use replica_world::*;
    let world = World::new();
    let a = world.send("EU", "POST", "/v2/app/blobs/uploads/", b"");
    assert_eq!(a.status, 202);
    let location = a.headers.get("location").unwrap().to_str().unwrap().to_owned();
    assert_eq!(world.send_range("EU", &location, "0-99", &data(100, 1)), 202);
    world.store("a").fail_times(Op::PutBytes, "/tail/", 1);
    let failed = world.send_range("EU", &location, "100-199", &data(100, 2));
    let status = world.send("EU", "GET", &location, b"").status;
    assert_eq!((failed, status), (503, 204), "PATCH {failed}, then status {status}");
}
