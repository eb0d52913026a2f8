//! Abandoned uploads expire: the scheduled job discards sessions idle past the limit,
//! aborting their multipart uploads, and leaves active ones alone.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;
use edge_registry::registry::Config;
use futures::executor::block_on;

const HOUR: u64 = 3_600_000;

#[test]
fn idle_sessions_expire_and_active_ones_stay() {
    let (reg, clock) = registry_and_clock(Config { part_size: 5 * MIB as u64, ..Config::default() });
    let abandoned = start_upload(&reg, "a");
    let chunk = bytes(12 * MIB, 1);
    assert_eq!(send_stream(&reg, "PATCH", &abandoned, &[], stream(Feed::Pieces(chunk, MIB))).status, 202);
    let native = start_upload(&reg, "a");
    assert_eq!(send(&reg, "PATCH", &native, &[], &bytes(MIB, 2)).status, 202);
    assert_eq!(reg.blob_store().pending_multipart_uploads(), 1);

    clock.advance(20 * HOUR);
    let active = start_upload(&reg, "a");
    assert_eq!(send(&reg, "PATCH", &active, &[], b"still here").status, 202);
    clock.advance(5 * HOUR);

    assert_eq!(block_on(reg.expire_uploads(24 * HOUR)).unwrap().expired, 2);
    for gone in [&abandoned, &native] {
        send(&reg, "GET", gone, &[], b"").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    }
    assert_eq!(reg.blob_store().pending_multipart_uploads(), 0);
    let left: Vec<String> = reg
        .blob_store()
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("uploads/") || k.starts_with("blobs/multipart/"))
        .collect();
    let active_id = active.rsplit('/').next().unwrap();
    assert!(left.iter().all(|k| k.contains(active_id)), "left behind: {left:?}");
    assert_eq!(send(&reg, "GET", &active, &[], b"").header("range"), Some("0-9"));
    assert_eq!(block_on(reg.expire_uploads(24 * HOUR)).unwrap().expired, 0);
}

#[test]
fn completed_blobs_are_not_touched_by_expiry() {
    let (reg, clock) = registry_and_clock(Config { part_size: 5 * MIB as u64, ..Config::default() });
    let data = bytes(11 * MIB, 3);
    let location = start_upload(&reg, "a");
    assert_eq!(send_stream(&reg, "PATCH", &location, &[], stream(Feed::Pieces(data.clone(), MIB))).status, 202);
    let d = sha256(&data);
    assert_eq!(send(&reg, "PUT", &format!("{location}?digest={d}"), &[], b"").status, 201);
    clock.advance(100 * HOUR);
    assert_eq!(block_on(reg.expire_uploads(HOUR)).unwrap().expired, 0);
    assert_eq!(send(&reg, "GET", &format!("/v2/a/blobs/{d}"), &[], b"").body, data);
}
