//! Access control over the whole API: a matrix of identities against endpoints with the
//! exact status of every cell, the token flow, access tokens and their revocation, and
//! bad credentials of every kind (each refused, none let in).
#![cfg(not(target_arch = "wasm32"))]

mod auth_fixture;
mod common;
use auth_fixture::*;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use common::*;
use edge_registry::registry::Config;

#[test]
fn identity_by_endpoint_matrix() {
    let auth = auth();
    let probe = seeded();
    let manifest = send(&probe, "GET", "/v2/team/app/manifests/v1", &[], b"").body;
    let blob = serde_json::from_slice::<serde_json::Value>(&manifest).unwrap()["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();

    // Access tokens: scoped (pull on team/app), expired, revoked.
    let make_token = |reg: &TestRegistry, access: &str, days: u64| access_token(reg, &auth, access, days, false);

    let endpoints: Vec<(&str, String, &[u8])> = vec![
        ("GET", "/v2/".into(), b""),
        ("GET", "/v2/team/app/tags/list".into(), b""),
        ("GET", "/v2/team/app/manifests/v1".into(), b""),
        ("HEAD", format!("/v2/team/app/blobs/{blob}"), b""),
        ("PUT", "/v2/team/app/manifests/v2".into(), &manifest),
        ("POST", "/v2/team/app/blobs/uploads/".into(), b""),
        ("DELETE", "/v2/team/app/manifests/v1".into(), b""),
        ("GET", "/v2/public/img/manifests/v1".into(), b""),
        ("POST", "/v2/public/img/blobs/uploads/".into(), b""),
        ("GET", "/v2/other/x/tags/list".into(), b""),
        ("GET", "/auth/tokens".into(), b""),
    ];
    // Expected status per identity, in the order of `endpoints`.
    let matrix: Vec<(&str, [u16; 11])> = vec![
        ("anonymous", [401, 401, 401, 401, 401, 401, 401, 200, 401, 401, 401]),
        ("reader", [200, 200, 200, 200, 403, 403, 403, 200, 403, 200, 403]),
        ("writer", [200, 200, 200, 200, 201, 202, 403, 200, 403, 403, 403]),
        ("admin", [200, 200, 200, 200, 201, 202, 202, 200, 202, 200, 200]),
        ("scoped token", [200, 200, 200, 200, 403, 403, 403, 200, 403, 403, 403]),
        ("expired token", [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
        ("revoked token", [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
        // The eleventh wrong password in a minute is throttled.
        ("wrong password", [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 429]),
    ];
    let mut cells = 0;
    for (who, expected) in &matrix {
        let (reg, clock) = seeded_with_clock();
        let creds: Option<String> = match *who {
            "anonymous" => None,
            "reader" | "writer" | "admin" => Some(login(who)),
            "scoped token" => {
                Some(basic("ci", &make_token(&reg, r#"[{"repository": "team/app", "actions": ["pull"]}]"#, 30)))
            }
            "expired token" => {
                let token = make_token(&reg, r#"[{"repository": "*", "actions": ["pull", "push", "delete"]}]"#, 1);
                clock.advance(2 * 86_400_000);
                Some(basic("ci", &token))
            }
            "revoked token" => {
                let token = make_token(&reg, r#"[{"repository": "*", "actions": ["pull", "push", "delete"]}]"#, 30);
                let id = token.trim_start_matches("ert_").split('_').next().unwrap().to_owned();
                assert_eq!(
                    call(&reg, &auth, Some(&login("admin")), "DELETE", &format!("/auth/tokens/{id}"), b"").status,
                    204
                );
                Some(basic("ci", &token))
            }
            "wrong password" => Some(basic("writer", "nope")),
            _ => unreachable!(),
        };
        for ((method, uri, body), want) in endpoints.iter().zip(expected) {
            let a = call(&reg, &auth, creds.as_deref(), method, uri, body);
            assert_eq!(a.status, *want, "{who}: {method} {uri}: {}", String::from_utf8_lossy(&a.body));
            if a.status == 401 && !uri.starts_with("/auth/") {
                let challenge = a.header("www-authenticate").unwrap_or_default();
                assert!(
                    challenge.starts_with("Bearer realm=\"http://localhost/token\",service=\"edge-registry\""),
                    "{challenge}"
                );
                if *method != "GET" || uri != "/v2/" {
                    assert!(challenge.contains(",scope=\"repository:"), "{who} {method} {uri}: {challenge}");
                }
            }
            if a.status == 403 {
                assert_eq!(a.error_code(), "DENIED");
            }
            cells += 1;
        }
    }
    assert_eq!(cells, 88);
}

#[test]
fn token_flow_grants_only_what_the_identity_holds() {
    let auth = auth();
    let reg = seeded();
    let a = token_for(&reg, &auth, Some(&login("writer")), &["repository:team/app:pull,push,delete,admin"]);
    assert_eq!(a.status, 200);
    let body = a.json();
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    let token = body["token"].as_str().unwrap().to_owned();
    let claims: serde_json::Value =
        serde_json::from_slice(&B64URL.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}])
    );
    let bearer = format!("Bearer {token}");
    let manifest = send(&reg, "GET", "/v2/team/app/manifests/v1", &[], b"").body;
    assert_eq!(call(&reg, &auth, Some(&bearer), "PUT", "/v2/team/app/manifests/v3", &manifest).status, 201);
    // A token for team/app used on team/other: the writer could, so 401 with the scope to ask for.
    let other = call(&reg, &auth, Some(&bearer), "POST", "/v2/team/other/blobs/uploads/", b"");
    assert_eq!(other.status, 401);
    assert!(other.header("www-authenticate").unwrap().contains("scope=\"repository:team/other:pull,push\""));
    assert!(other.header("www-authenticate").unwrap().ends_with(",error=\"insufficient_scope\""));
    // ...and on other/x, which the writer may not touch at all: 403.
    assert_eq!(call(&reg, &auth, Some(&bearer), "POST", "/v2/other/x/blobs/uploads/", b"").status, 403);
    // Delete was asked for but not granted.
    assert_eq!(call(&reg, &auth, Some(&bearer), "DELETE", "/v2/team/app/manifests/v1", b"").status, 403);

    // Anonymous tokens carry the anonymous grants only.
    let anon = token_for(&reg, &auth, None, &["repository:public/img:pull,push", "repository:team/app:pull"]);
    let anon_bearer = format!("Bearer {}", anon.json()["token"].as_str().unwrap());
    assert_eq!(call(&reg, &auth, Some(&anon_bearer), "GET", "/v2/public/img/manifests/v1", b"").status, 200);
    assert_eq!(call(&reg, &auth, Some(&anon_bearer), "GET", "/v2/team/app/manifests/v1", b"").status, 401);

    // POST /token with an OAuth2 password grant.
    let form = "grant_type=password&username=reader&password=reader-pass&scope=repository%3Ateam%2Fapp%3Apull&service=edge-registry";
    let posted = send_as(
        &reg,
        &auth,
        "POST",
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(posted.status, 200);
    // Bad credentials at /token: 401 with a Basic challenge; bad scopes: 400.
    let bad = token_for(&reg, &auth, Some(&basic("writer", "wrong")), &["repository:team/app:pull"]);
    assert_eq!(bad.status, 401);
    assert!(bad.header("www-authenticate").unwrap().starts_with("Basic realm="));
    assert_eq!(token_for(&reg, &auth, Some(&login("writer")), &["repository:team/../x:pull"]).status, 400);
}

#[test]
fn forged_and_foreign_tokens_are_refused() {
    let auth = auth();
    let reg = seeded();
    let token = token_for(&reg, &auth, Some(&login("reader")), &["repository:team/app:pull"]).json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    claims["access"][0]["actions"] = serde_json::json!(["pull", "push", "delete"]);
    claims["access"][0]["name"] = serde_json::json!("other/x");
    let altered = B64URL.encode(serde_json::to_vec(&claims).unwrap());
    let none_header = B64URL.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let forged = [
        format!("{}.{altered}.{}", parts[0], parts[2]), // altered claims, old signature
        format!("{none_header}.{altered}."),            // alg: none
        format!("{none_header}.{}.", parts[1]),
        format!("{}.{}.{}", parts[0], parts[1], B64URL.encode([0u8; 32])), // re-signed with another key
        format!("{}.{}", parts[0], parts[1]),
        "garbage".to_owned(),
    ];
    for token in forged {
        let a = call(&reg, &auth, Some(&format!("Bearer {token}")), "GET", "/v2/other/x/tags/list", b"");
        assert_eq!(a.status, 401, "{token}");
        assert_eq!(a.error_code(), "UNAUTHORIZED");
    }
    // The genuine token is scoped to team/app: not usable on other/x even by a reader.
    let a = call(&reg, &auth, Some(&format!("Bearer {token}")), "GET", "/v2/other/x/tags/list", b"");
    assert_eq!(a.status, 401);
    assert_eq!(call(&reg, &auth, Some(&format!("Bearer {token}")), "GET", "/v2/team/app/tags/list", b"").status, 200);
}

#[test]
fn malformed_authorization_headers_are_refused() {
    let auth = auth();
    let reg = seeded();
    let long = format!("Basic {}", "A".repeat(10_000));
    let no_colon = format!("Basic {}", B64.encode("readerreader-pass"));
    let not_utf8 = format!("Basic {}", B64.encode([0xff, 0xfe, b':', b'x']));
    for header in
        ["Basic", "Basic !!!", &no_colon, &not_utf8, "Bearer", "Digest x=y", "reader:reader-pass", &long, "Basic  "]
    {
        let a = call(&reg, &auth, Some(header), "GET", "/v2/team/app/tags/list", b"");
        assert_eq!(a.status, 401, "{header:.40}");
        assert!(a.header("www-authenticate").is_some());
    }
}

#[test]
fn names_that_try_to_escape_a_pattern_never_get_access() {
    let auth = auth();
    let reg = seeded();
    let writer = login("writer");
    for path in [
        "/v2/team/../other/x/tags/list",
        "/v2/team%2f..%2fother/tags/list",
        "/v2/team/app/../../other/x/tags/list",
        "/v2/t\u{435}am/app/tags/list",
        "/v2/team/app//tags/list",
        "/v2/team//tags/list",
    ] {
        let uri: http::Uri = match path.parse() {
            Ok(uri) => uri,
            Err(_) => continue,
        };
        let a = call(&reg, &auth, Some(&writer), "POST", &uri.to_string(), b"");
        assert!(a.status == 400 || a.status == 404, "{path}: {}", a.status);
    }
    // Patterns match whole components: team/* does not cover teamx/app.
    assert_eq!(call(&reg, &auth, Some(&writer), "POST", "/v2/teamx/app/blobs/uploads/", b"").status, 403);
    assert_eq!(call(&reg, &auth, Some(&writer), "POST", "/v2/team/blobs/uploads/", b"").status, 403);
}

#[test]
fn a_stream_of_wrong_passwords_is_throttled() {
    let auth = auth();
    let (reg, clock) = registry_and_clock(Config { part_size: 5 * MIB as u64, ..Config::default() });
    push_image(&reg, "team/app", "v1", 1);
    for i in 0..10 {
        let a = call(&reg, &auth, Some(&basic("reader", &format!("guess-{i}"))), "GET", "/v2/", b"");
        assert_eq!(a.status, 401, "try {i}");
    }
    for creds in [basic("reader", "guess-11"), login("reader")] {
        let a = call(&reg, &auth, Some(&creds), "GET", "/v2/", b"");
        a.assert_error(429, "TOOMANYREQUESTS");
        assert!(a.header("retry-after").unwrap().parse::<u64>().unwrap() <= 60);
    }
    // Other users are unaffected; after the window the right password works again.
    assert_eq!(call(&reg, &auth, Some(&login("writer")), "GET", "/v2/", b"").status, 200);
    clock.advance(61_000);
    assert_eq!(call(&reg, &auth, Some(&login("reader")), "GET", "/v2/", b"").status, 200);
}

#[test]
fn catalog_and_mounts_respect_pull_rights() {
    let auth = auth();
    let reg = seeded();
    let names = |creds: Option<&str>| -> serde_json::Value {
        call(&reg, &auth, creds, "GET", "/v2/_catalog", b"").json()["repositories"].clone()
    };
    assert_eq!(names(None), serde_json::json!(["public/img"]));
    assert_eq!(names(Some(&login("writer"))), serde_json::json!(["public/img", "team/app"]));
    assert_eq!(names(Some(&login("reader"))), serde_json::json!(["other/x", "public/img", "team/app"]));
    let paged = call(&reg, &auth, Some(&login("writer")), "GET", "/v2/_catalog?n=1", b"");
    assert_eq!(paged.json()["repositories"], serde_json::json!(["public/img"]));
    assert!(paged.header("link").is_some());

    let layer = |repo: &str| -> String {
        let m = send(&reg, "GET", &format!("/v2/{repo}/manifests/v1"), &[], b"").json();
        m["config"]["digest"].as_str().unwrap().to_owned()
    };
    let writer = login("writer");
    // From a repository the writer may pull: mounted.
    let ok = call(
        &reg,
        &auth,
        Some(&writer),
        "POST",
        &format!("/v2/team/new/blobs/uploads/?mount={}&from=public/img", layer("public/img")),
        b"",
    );
    assert_eq!(ok.status, 201);
    // From one it may not: a plain session, as if the blob did not exist.
    let hidden = call(
        &reg,
        &auth,
        Some(&writer),
        "POST",
        &format!("/v2/team/new/blobs/uploads/?mount={}&from=other/x", layer("other/x")),
        b"",
    );
    assert_eq!(hidden.status, 202);
    let unknown = call(
        &reg,
        &auth,
        Some(&writer),
        "POST",
        &format!("/v2/team/new/blobs/uploads/?mount={}&from=other/x", sha256(b"nothing")),
        b"",
    );
    assert_eq!(unknown.status, 202);
    // Without `from`, only admins mount from anywhere.
    let anywhere = call(
        &reg,
        &auth,
        Some(&writer),
        "POST",
        &format!("/v2/team/new/blobs/uploads/?mount={}", layer("other/x")),
        b"",
    );
    assert_eq!(anywhere.status, 202);
}

#[test]
fn access_tokens_are_managed_by_admins_and_revocation_is_immediate() {
    let auth = auth();
    let reg = seeded();
    let admin = login("admin");
    let body = br#"{"name": "ci-deploy", "access": [{"repository": "team/*", "actions": ["pull", "push"]}], "expires_in_days": 7}"#;
    assert_eq!(call(&reg, &auth, None, "POST", "/auth/tokens", body).status, 401);
    assert_eq!(call(&reg, &auth, Some(&login("writer")), "POST", "/auth/tokens", body).status, 403);
    for bad in [
        &br#"{"name": "", "access": []}"#[..],
        br#"{"name": "x", "access": [{"repository": "Bad/*", "actions": ["pull"]}]}"#,
        br#"{"name": "x", "access": [], "expires_in_days": 9999}"#,
        b"not json",
    ] {
        assert_eq!(call(&reg, &auth, Some(&admin), "POST", "/auth/tokens", bad).status, 400);
    }
    let created = call(&reg, &auth, Some(&admin), "POST", "/auth/tokens", body);
    assert_eq!(created.status, 201);
    let token = created.json()["token"].as_str().unwrap().to_owned();
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let listed = call(&reg, &auth, Some(&admin), "GET", "/auth/tokens", b"");
    assert_eq!(listed.json()["tokens"][0]["id"], id.as_str());
    assert!(
        !String::from_utf8_lossy(&listed.body).contains(&token[token.len() - 20..]),
        "a secret leaked into the listing"
    );

    // Used directly, and exchanged for a bearer token.
    let creds = basic("ci", &token);
    assert_eq!(call(&reg, &auth, Some(&creds), "POST", "/v2/team/app/blobs/uploads/", b"").status, 202);
    let bearer = format!(
        "Bearer {}",
        token_for(&reg, &auth, Some(&creds), &["repository:team/app:pull,push"]).json()["token"].as_str().unwrap()
    );
    assert_eq!(call(&reg, &auth, Some(&bearer), "POST", "/v2/team/app/blobs/uploads/", b"").status, 202);
    // A wrong secret for the right id.
    let wrong = format!("{}{}", &token[..token.len() - 1], if token.ends_with('0') { '1' } else { '0' });
    assert_eq!(call(&reg, &auth, Some(&basic("ci", &wrong)), "GET", "/v2/team/app/tags/list", b"").status, 401);

    assert_eq!(call(&reg, &auth, Some(&admin), "DELETE", &format!("/auth/tokens/{id}"), b"").status, 204);
    // The very next request fails, with the token or with a bearer derived from it.
    assert_eq!(call(&reg, &auth, Some(&creds), "GET", "/v2/team/app/tags/list", b"").status, 401);
    assert_eq!(call(&reg, &auth, Some(&bearer), "GET", "/v2/team/app/tags/list", b"").status, 401);
    assert_eq!(call(&reg, &auth, Some(&admin), "DELETE", &format!("/auth/tokens/{id}"), b"").status, 404);
}
