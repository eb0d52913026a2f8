//! The replication admin endpoints refuse bearer tokens, even an admin's: `/token` issues
//! repository scopes only. Admin Basic credentials and admin access tokens still work.

mod replica_world;
use edge_registry::auth::jwt::{self, Claims};
use edge_registry::auth::AuthConfig;
use replica_world::*;

const KEY: &str = "a-test-signing-key-of-some-length-0123";

#[test]
fn admin_replica_endpoints_refuse_bearer_tokens() {
    use base64::Engine;
    let hash = edge_registry::auth::password::hash_password("admin-pass", b"salt-of-test", 1000);
    let users = format!(r#"{{"admin": {{"password": "{hash}", "admin": true}}}}"#);
    let auth = Auth::new(AuthConfig::from_settings(Some(&users), Some("[]"), Some(KEY), None).unwrap().unwrap());
    let world = World::new();
    let now = world.clock.get() / 1000;
    let claims = Claims {
        iss: "edge-registry".into(),
        sub: "admin".into(),
        aud: "edge-registry".into(),
        iat: now,
        nbf: now,
        exp: now + 300,
        jti: "j".into(),
        access: vec![],
    };
    let bearer = format!("Bearer {}", jwt::sign(&claims, KEY.as_bytes()));
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("admin:admin-pass"));
    for (method, path, body) in [
        ("GET", "/admin/replicas", ""),
        ("PUT", "/admin/replicas/b/routing", r#"{"enabled":false}"#),
        ("POST", "/admin/repair", ""),
    ] {
        let refused = world.admin(Some(&auth), Some(&bearer), method, path, body);
        assert_eq!((refused.status, code(&refused)), (401, "UNAUTHORIZED".to_owned()), "{method} {path}");
    }
    assert!(world.admin(Some(&auth), Some(&basic), "GET", "/admin/replicas", "").status == 200);
}
