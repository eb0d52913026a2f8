//! Shared by the access-control tests: three users (reader, writer, admin) and anonymous
//! pull on `public/*`, a seeded registry, and helpers to call it with credentials.
#![allow(dead_code)]

use crate::common::*;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use edge_registry::auth::password::hash_password;
use edge_registry::auth::{Auth, AuthConfig};
use edge_registry::registry::Config;

pub const SECRET: &str = "test-signing-key-0123456789abcdef-0123";
pub const PASSWORDS: [(&str, &str); 3] =
    [("reader", "reader-pass"), ("writer", "writer-pass"), ("admin", "admin-pass")];

/// The access control of these tests; `writer_password` replaces the writer's.
pub fn auth_with(writer_password: &str) -> Auth {
    let hash = |user: &str| {
        let password =
            if user == "writer" { writer_password } else { PASSWORDS.iter().find(|(u, _)| *u == user).unwrap().1 };
        hash_password(password, format!("salt-{user}").as_bytes(), 1000)
    };
    let users = format!(
        r#"{{
        "reader": {{"password": "{}", "access": [{{"repository": "*", "actions": ["pull"]}}]}},
        "writer": {{"password": "{}", "access": [{{"repository": "team/*", "actions": ["pull", "push"]}}]}},
        "admin": {{"password": "{}", "admin": true}}
    }}"#,
        hash("reader"),
        hash("writer"),
        hash("admin")
    );
    let anonymous = r#"[{"repository": "public/*", "actions": ["pull"]}]"#;
    Auth::new(AuthConfig::from_settings(Some(&users), Some(anonymous), Some(SECRET), None).unwrap().unwrap())
}

pub fn auth() -> Auth {
    auth_with("writer-pass")
}

pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", B64.encode(format!("{user}:{password}")))
}

pub fn login(user: &str) -> String {
    basic(user, PASSWORDS.iter().find(|(u, _)| *u == user).unwrap().1)
}

/// A registry (and its clock) with team/app, public/img and other/x, each holding image v1.
pub fn seeded_with_clock() -> (TestRegistry, ManualClock) {
    let (reg, clock) = registry_and_clock(Config { part_size: 5 * MIB as u64, ..Config::default() });
    for repo in ["team/app", "public/img", "other/x"] {
        push_image(&reg, repo, "v1", 1);
    }
    (reg, clock)
}

pub fn seeded() -> TestRegistry {
    seeded_with_clock().0
}

pub fn call(reg: &TestRegistry, auth: &Auth, creds: Option<&str>, method: &str, uri: &str, body: &[u8]) -> Answer {
    let mut headers = vec![("content-type", OCI_MANIFEST)];
    if let Some(c) = creds {
        headers.push(("authorization", c));
    }
    send_as(reg, auth, method, uri, &headers, body)
}

pub fn token_for(reg: &TestRegistry, auth: &Auth, creds: Option<&str>, scopes: &[&str]) -> Answer {
    let query: Vec<String> = scopes.iter().map(|s| format!("scope={s}")).collect();
    call(reg, auth, creds, "GET", &format!("/token?service=edge-registry&{}", query.join("&")), b"")
}

/// The claims of a signed token (not verified: for looking at what was issued).
pub fn claims(token: &str) -> serde_json::Value {
    serde_json::from_slice(&B64URL.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

/// An admin's access token with `access` (JSON), optionally with admin rights.
pub fn access_token(reg: &TestRegistry, auth: &Auth, access: &str, days: u64, admin: bool) -> String {
    let body = format!(r#"{{"name": "ci", "access": {access}, "expires_in_days": {days}, "admin": {admin}}}"#);
    let a = call(reg, auth, Some(&login("admin")), "POST", "/auth/tokens", body.as_bytes());
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    a.json()["token"].as_str().unwrap().to_owned()
}
