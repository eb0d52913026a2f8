//! What a token presented to `/token` may yield (issue 9): a bearer token gets at most its
//! own scopes and never a later expiry; refresh tokens are stored, revocable and bound to
//! the user who logged in; the admin API takes an admin's password or an admin access
//! token, never a bearer token.
#![cfg(not(target_arch = "wasm32"))]

mod auth_fixture;
mod common;
use auth_fixture::*;
use common::*;

fn bearer_of(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    format!("Bearer {}", answer.json()["token"].as_str().unwrap())
}

fn form(reg: &TestRegistry, auth: &edge_registry::auth::Auth, body: &str) -> Answer {
    send_as(reg, auth, "POST", "/token", &[("content-type", "application/x-www-form-urlencoded")], body.as_bytes())
}

#[test]
fn a_pull_token_presented_to_token_gets_no_push() {
    let auth = auth();
    let reg = seeded();
    let manifest = send(&reg, "GET", "/v2/team/app/manifests/v1", &[], b"").body;
    // The writer holds push on team/*, but this token carries pull on team/app only.
    let pull = bearer_of(&token_for(&reg, &auth, Some(&login("writer")), &["repository:team/app:pull"]));
    let traded =
        token_for(&reg, &auth, Some(&pull), &["repository:team/app:pull,push,delete", "repository:team/b:push"]);
    let traded_bearer = bearer_of(&traded);
    assert_eq!(
        claims(traded.json()["token"].as_str().unwrap())["access"],
        serde_json::json!([
            {"type": "repository", "name": "team/app", "actions": ["pull"]},
            {"type": "repository", "name": "team/b", "actions": []},
        ])
    );
    for bearer in [&pull, &traded_bearer] {
        let put = call(&reg, &auth, Some(bearer), "PUT", "/v2/team/app/manifests/v9", &manifest);
        assert_eq!(put.status, 401, "push with a traded-up token");
        assert!(put.header("www-authenticate").unwrap().ends_with(",error=\"insufficient_scope\""));
        assert_eq!(call(&reg, &auth, Some(bearer), "POST", "/v2/team/b/blobs/uploads/", b"").status, 401);
        assert_eq!(call(&reg, &auth, Some(bearer), "GET", "/v2/team/app/manifests/v1", b"").status, 200);
    }
    // An anonymous token cannot be traded for more than anonymous pull either.
    let anon = bearer_of(&token_for(&reg, &auth, None, &["repository:public/img:pull"]));
    let traded = token_for(&reg, &auth, Some(&anon), &["repository:public/img:pull,push"]);
    assert_eq!(claims(traded.json()["token"].as_str().unwrap())["access"][0]["actions"], serde_json::json!(["pull"]));
}

#[test]
fn a_bearer_token_never_renews_itself() {
    let auth = auth();
    let (reg, clock) = seeded_with_clock();
    let first = token_for(&reg, &auth, Some(&login("reader")), &["repository:team/app:pull"]);
    let exp = claims(first.json()["token"].as_str().unwrap())["exp"].as_u64().unwrap();
    let mut bearer = bearer_of(&first);
    // Trade it in every 100 s: each new token expires when the first one does.
    for step in 1..=2 {
        clock.advance(100_000);
        let next = token_for(&reg, &auth, Some(&bearer), &["repository:team/app:pull"]);
        assert_eq!(claims(next.json()["token"].as_str().unwrap())["exp"].as_u64(), Some(exp));
        assert_eq!(next.json()["expires_in"], 300 - 100 * step);
        bearer = bearer_of(&next);
    }
    clock.advance(100_000);
    assert_eq!(token_for(&reg, &auth, Some(&bearer), &["repository:team/app:pull"]).status, 401);
    assert_eq!(call(&reg, &auth, Some(&bearer), "GET", "/v2/team/app/tags/list", b"").status, 401);
}

#[test]
fn the_refresh_grant_takes_no_bearer_token_and_no_password() {
    let auth = auth();
    let reg = seeded();
    let jwt = token_for(&reg, &auth, Some(&login("writer")), &["repository:team/app:pull"]).json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for refresh in [jwt.as_str(), "writer-pass", "", "ert_00_00"] {
        let a = form(
            &reg,
            &auth,
            &format!("grant_type=refresh_token&refresh_token={refresh}&scope=repository%3Ateam%2Fapp%3Apush"),
        );
        assert_eq!(a.status, 401, "refresh_token={refresh:.20}");
    }
}

#[test]
fn refresh_tokens_are_bound_to_the_login_and_revocable() {
    let auth = auth();
    let reg = seeded();
    let offline = call(
        &reg,
        &auth,
        Some(&login("writer")),
        "GET",
        "/token?service=edge-registry&offline_token=true&client_id=docker",
        b"",
    );
    let refresh = offline.json()["refresh_token"].as_str().unwrap().to_owned();
    let scope = "scope=repository%3Ateam%2Fapp%3Apull%2Cpush";
    let grant = format!("grant_type=refresh_token&refresh_token={refresh}&{scope}&service=edge-registry");
    let renewed = form(&reg, &auth, &grant);
    assert_eq!(claims(renewed.json()["token"].as_str().unwrap())["sub"], "writer");
    assert_eq!(
        claims(renewed.json()["token"].as_str().unwrap())["access"][0]["actions"],
        serde_json::json!(["pull", "push"])
    );
    // A refresh grant, a bearer token or an anonymous caller gets no new refresh token.
    let bearer = bearer_of(&renewed);
    for creds in [Some(bearer.as_str()), None] {
        let a = call(&reg, &auth, creds, "GET", "/token?service=edge-registry&offline_token=true", b"");
        assert!(a.json().get("refresh_token").is_none());
    }
    assert!(form(&reg, &auth, &format!("{grant}&access_type=offline")).json().get("refresh_token").is_none());
    // Not a password anywhere.
    assert_eq!(call(&reg, &auth, Some(&basic("writer", &refresh)), "GET", "/v2/", b"").status, 401);
    let posted = form(&reg, &auth, &format!("grant_type=password&username=writer&password={refresh}"));
    assert_eq!(posted.status, 401);
    // A changed password ends it.
    assert_eq!(form(&reg, &auth_with("new-writer-pass"), &grant).status, 401);
    // An admin lists it and revokes it.
    let listed = call(&reg, &auth, Some(&login("admin")), "GET", "/auth/tokens", b"").json();
    let entry = listed["tokens"].as_array().unwrap().iter().find(|t| t["refresh_for"] == "writer").unwrap().clone();
    let id = entry["id"].as_str().unwrap();
    assert_eq!(call(&reg, &auth, Some(&login("admin")), "DELETE", &format!("/auth/tokens/{id}"), b"").status, 204);
    assert_eq!(form(&reg, &auth, &grant).status, 401);
    // The POST form of an offline login returns one too.
    let posted = form(&reg, &auth, "grant_type=password&username=reader&password=reader-pass&access_type=offline");
    assert!(posted.json()["refresh_token"].as_str().unwrap().starts_with("ert_"));
}

#[test]
fn the_admin_api_takes_an_admin_password_or_admin_access_token_but_no_bearer_token() {
    let auth = auth();
    let reg = seeded();
    let admin_token = access_token(&reg, &auth, "[]", 30, true);
    let plain_token = access_token(&reg, &auth, r#"[{"repository": "*", "actions": ["pull"]}]"#, 30, false);
    let admin_bearer = bearer_of(&token_for(&reg, &auth, Some(&login("admin")), &["repository:team/app:pull,push"]));
    let token_bearer = bearer_of(&token_for(&reg, &auth, Some(&basic("ci", &admin_token)), &["repository:x:pull"]));
    for (creds, want) in [
        (login("admin"), 200),
        (basic("ci", &admin_token), 200),
        (basic("ci", &plain_token), 403),
        (login("writer"), 403),
        (admin_bearer.clone(), 401),
        (token_bearer.clone(), 401),
    ] {
        let a = call(&reg, &auth, Some(&creds), "GET", "/auth/tokens", b"");
        assert_eq!(a.status, want, "{creds:.30}: {}", String::from_utf8_lossy(&a.body));
        if want == 401 {
            assert!(a.header("www-authenticate").unwrap().starts_with("Basic realm="));
        }
    }
    let body = br#"{"name": "x", "access": [{"repository": "*", "actions": ["pull", "push", "delete"]}]}"#;
    assert_eq!(call(&reg, &auth, Some(&admin_bearer), "POST", "/auth/tokens", body).status, 401);
    assert_eq!(call(&reg, &auth, Some(&basic("ci", &admin_token)), "POST", "/auth/tokens", body).status, 201);
    // An admin bearer token still does what its scopes say, and no more.
    assert_eq!(call(&reg, &auth, Some(&admin_bearer), "POST", "/v2/team/app/blobs/uploads/", b"").status, 202);
    assert_eq!(call(&reg, &auth, Some(&admin_bearer), "DELETE", "/v2/team/app/manifests/v1", b"").status, 401);
}
