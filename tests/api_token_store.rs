//! `api` keeps access tokens only through `auth`'s token port: served with another store
//! behind that port, tokens are created, used and revoked there, and the blob store never
//! sees them.
#![cfg(not(target_arch = "wasm32"))]

mod auth_fixture;
mod common;
use auth_fixture::*;
use common::*;
use edge_registry::api::admin::NoReplication;
use edge_registry::api::{self, Services};
use edge_registry::auth::{Auth, MemoryTokenStore};
use edge_registry::registry::RequestBody;
use futures::executor::block_on;

fn serve(
    reg: &TestRegistry,
    auth: &Auth,
    tokens: &MemoryTokenStore,
    creds: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Answer {
    let services = Services {
        registry: reg,
        auth: Some(auth),
        tokens,
        replication: None::<&NoReplication>,
        gc: None,
        retention: None,
        usage: None,
        mirror: None,
    };
    let stream = stream(Feed::Pieces(body.as_bytes().to_vec(), 1024));
    let request =
        request(method, path, &[("authorization", creds)], RequestBody::native(stream, Some(body.len() as u64), |s| s));
    answer(block_on(api::serve(services, request)))
}

#[test]
fn access_tokens_live_behind_the_port() {
    let auth = auth();
    let reg = seeded();
    let tokens = MemoryTokenStore::new();
    let admin = login("admin");
    let body = r#"{"name": "ci", "access": [{"repository": "other/*", "actions": ["pull"]}]}"#;
    let created = serve(&reg, &auth, &tokens, &admin, "POST", "/auth/tokens", body);
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let (id, token) =
        (created.json()["id"].as_str().unwrap().to_owned(), created.json()["token"].as_str().unwrap().to_owned());
    assert_eq!(tokens.len(), 1);
    assert!(!reg.blob_store().keys().iter().any(|k| k.starts_with("auth/")), "the blob store holds no token");

    let ci = basic("ci", &token);
    assert_eq!(serve(&reg, &auth, &tokens, &ci, "GET", "/v2/other/x/tags/list", "").status, 200);
    assert_eq!(serve(&reg, &auth, &tokens, &ci, "GET", "/v2/team/app/tags/list", "").status, 403);
    let listed = serve(&reg, &auth, &tokens, &admin, "GET", "/auth/tokens", "");
    assert_eq!(listed.json()["tokens"][0]["id"], id.as_str());
    // The registry's own store knows nothing of it.
    assert_eq!(call(&reg, &auth, Some(&ci), "GET", "/v2/other/x/tags/list", b"").status, 401);

    // A refresh token from an offline login is kept there too.
    let offline =
        serve(&reg, &auth, &tokens, &login("reader"), "GET", "/token?service=edge-registry&offline_token=true", "");
    assert!(offline.json()["refresh_token"].is_string());
    assert_eq!(tokens.len(), 2);

    assert_eq!(serve(&reg, &auth, &tokens, &admin, "DELETE", &format!("/auth/tokens/{id}"), "").status, 204);
    assert_eq!(serve(&reg, &auth, &tokens, &ci, "GET", "/v2/other/x/tags/list", "").status, 401);
    assert_eq!(tokens.len(), 1);
}
