//! What differs on wasm32, run under Node with wasm-bindgen-test: hash state saved and
//! restored across "requests", random ids from crypto.getRandomValues, and a whole chunked
//! upload through the API compiled to wasm.
#![cfg(target_arch = "wasm32")]

mod common;
use common::*;
use edge_registry::oci::{Algorithm, Hasher};
use edge_registry::registry::{IdSource, RandomIds};
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn hash_state_survives_save_and_restore_on_wasm() {
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        let data = bytes(3 * MIB + 11, 1);
        let mut hasher = Hasher::new(algorithm);
        // Cut at awkward places, saving and restoring at every cut as separate requests do.
        for piece in data.chunks(1_000_003) {
            let saved = hasher.save();
            assert!(saved.len() < 300, "saved state is {} bytes", saved.len());
            hasher = Hasher::restore(algorithm, &saved).unwrap();
            hasher.update(piece);
        }
        assert_eq!(hasher.finish(), algorithm.digest_of(&data));
    }
    let expected = sha256(b"abc");
    assert_eq!(Algorithm::Sha256.digest_of(b"abc").to_string(), expected);
}

#[wasm_bindgen_test]
fn random_ids_are_unique_hex_on_wasm() {
    let ids: std::collections::BTreeSet<String> = (0..200).map(|_| RandomIds.new_id()).collect();
    assert_eq!(ids.len(), 200);
    assert!(ids.iter().all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
}

#[wasm_bindgen_test]
fn wall_clock_is_available_on_wasm() {
    let now = js_sys::Date::now() as u64;
    assert!(now > 1_700_000_000_000, "Date.now() = {now}");
}

#[wasm_bindgen_test]
fn a_chunked_upload_completes_through_the_wasm_build() {
    let reg = registry();
    let data = bytes(6 * MIB + 3, 2);
    let digest = sha256(&data);
    let location = start_upload(&reg, "wasm/test");
    let first = format!("0-{}", 4 * MIB - 1);
    assert_eq!(send(&reg, "PATCH", &location, &[("content-range", &first)], &data[..4 * MIB]).status, 202);
    let rest = format!("{}-{}", 4 * MIB, data.len() - 1);
    assert_eq!(send(&reg, "PATCH", &location, &[("content-range", &rest)], &data[4 * MIB..]).status, 202);
    assert_eq!(send(&reg, "PUT", &format!("{location}?digest={digest}"), &[], b"").status, 201);
    assert_eq!(send(&reg, "GET", &format!("/v2/wasm/test/blobs/{digest}"), &[], b"").body, data);
}

#[wasm_bindgen_test]
fn password_hashes_and_bearer_tokens_work_on_wasm() {
    use edge_registry::auth::jwt::{self, Claims};
    use edge_registry::auth::password::{hash_password, verify_password};
    let stored = hash_password("s3cret", b"wasm-salt", 2000);
    assert_eq!(verify_password("s3cret", &stored), Ok(true));
    assert_eq!(verify_password("S3cret", &stored), Ok(false));
    let claims = Claims {
        iss: "edge-registry".into(),
        sub: "alice".into(),
        aud: "edge-registry".into(),
        iat: 10,
        nbf: 10,
        exp: 310,
        jti: "j".into(),
        access: vec![],
    };
    let token = jwt::sign(&claims, b"key");
    assert_eq!(jwt::verify(&token, b"key", 100, "edge-registry"), Ok(claims));
    assert!(jwt::verify(&token, b"other", 100, "edge-registry").is_err());
}
