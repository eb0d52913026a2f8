//! Upload ids at the API: the ids sessions get, and that a URL segment which is not one
//! (anything but 32 lowercase hex digits) names no session, whatever the method, without
//! touching storage, and after the checks that came before it.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;

fn is_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn sessions_get_32_lowercase_hex_ids_that_name_their_storage() {
    let reg = registry();
    let location = start_upload(&reg, "team/app");
    let id = location.strip_prefix("/v2/team/app/blobs/uploads/").unwrap();
    assert!(is_upload_id(id), "{id}");
    assert!(reg.blob_store().keys().contains(&format!("uploads/{id}/state")));
    let a = send(&reg, "GET", &location, &[], b"");
    assert_eq!((a.status, a.header("docker-upload-uuid")), (204, Some(id)));
}

#[test]
fn a_segment_that_is_not_an_upload_id_is_unknown_for_every_method() {
    let reg = registry();
    // The harness numbers ids: the tenth is the first with a letter, to write in upper case.
    let location = (0..10).map(|_| start_upload(&reg, "a")).last().unwrap();
    let id = location.rsplit('/').next().unwrap().to_owned();
    assert!(id.ends_with('a'), "{id}");
    let stored = reg.blob_store().keys();
    let digest = sha256(b"x");
    let not_ids = [
        id.to_uppercase(),
        id[..31].to_owned(),
        format!("{id}0"),
        format!("{}g", &id[..31]),
        format!("{}%2f", &id[..29]),
        "uploads".to_owned(),
    ];
    for segment in &not_ids {
        let at = format!("/v2/a/blobs/uploads/{segment}");
        send(&reg, "GET", &at, &[], b"").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
        send(&reg, "PATCH", &at, &[], b"x").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
        send(&reg, "PUT", &format!("{at}?digest={digest}"), &[], b"x").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
        send(&reg, "DELETE", &at, &[], b"").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    }
    assert_eq!(reg.blob_store().keys(), stored, "nothing stored, nothing removed");
    assert_eq!(send(&reg, "GET", &location, &[], b"").status, 204, "the real session is untouched");
}

#[test]
fn an_upload_id_no_session_has_is_unknown() {
    let reg = registry();
    let unused = "f".repeat(32);
    let at = format!("/v2/a/blobs/uploads/{unused}");
    send(&reg, "GET", &at, &[], b"").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
    send(&reg, "DELETE", &at, &[], b"").assert_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn a_closing_put_without_digest_is_refused_first_whatever_the_id() {
    let reg = registry();
    send(&reg, "PUT", "/v2/a/blobs/uploads/NOT-AN-ID", &[], b"x").assert_error(400, "DIGEST_INVALID");
}
