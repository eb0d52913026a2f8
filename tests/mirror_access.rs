//! The pull-through cache with access control on: cache names follow the grants as any
//! other, and docker's `registry-mirrors` works through the mirror host, whose token
//! requests name Docker Hub's names (docker asks for the scope of the name it pulls).

mod common;

use common::cache::{upstream_image, Cache};
use edge_registry::auth::{Auth, AuthConfig};

fn anonymous_pull_on_hub() -> Auth {
    let anonymous = r#"[{"repository": "hub/*", "actions": ["pull"]}]"#;
    let secret = "test-signing-key-0123456789abcdef-0123";
    Auth::new(AuthConfig::from_settings(None, Some(anonymous), Some(secret), None).unwrap().unwrap())
}

/// A user `puller` (password `pw`) who may pull `hub/*`, and no anonymous grants.
fn a_puller_of_hub() -> Auth {
    let hash = edge_registry::auth::password::hash_password("pw", b"salt-puller", 1000);
    let users = format!(
        r#"{{"puller": {{"password": "{hash}", "access": [{{"repository": "hub/*", "actions": ["pull"]}}]}}}}"#
    );
    let secret = "test-signing-key-0123456789abcdef-0123";
    Auth::new(AuthConfig::from_settings(Some(&users), None, Some(secret), None).unwrap().unwrap())
}

fn token(answer: common::Answer) -> String {
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    format!("Bearer {}", answer.json()["token"].as_str().unwrap())
}

#[test]
fn the_mirror_host_maps_the_scopes_docker_asks_for() {
    let mut cache = Cache::new();
    cache.auth = Some(a_puller_of_hub());
    let image = upstream_image(&cache.upstream, "library/app", "1", 1);

    let ping = cache.get("http://mirror.test/v2/");
    assert_eq!(ping.status, 401);
    assert!(ping.header("www-authenticate").unwrap().contains(r#"realm="http://mirror.test/token""#));
    // The challenge names the name the client asked for (containerd echoes its scope).
    let challenged = cache.get("http://mirror.test/v2/library/app/manifests/1");
    assert_eq!(challenged.status, 401);
    let challenge = challenged.header("www-authenticate").unwrap().to_owned();
    assert!(challenge.contains(r#"scope="repository:library/app:pull""#), "{challenge}");
    let basic = format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "puller:pw"));
    let asked = "http://mirror.test/token?service=edge-registry&scope=repository:library/app:pull";
    let mirrored = token(cache.send_with("GET", asked, &[("authorization", &basic)]));
    let pulled =
        cache.send_with("GET", "http://mirror.test/v2/library/app/manifests/1", &[("authorization", &mirrored)]);
    assert_eq!(pulled.status, 200, "{}", String::from_utf8_lossy(&pulled.body));
    assert_eq!(pulled.header("docker-content-digest"), Some(image.digest.as_str()));

    // The same scope asked on the registry's own host is for `library/app`, which the
    // anonymous grant does not cover: the mapping is what lets docker in.
    let plain = "http://registry.test/token?service=edge-registry&scope=repository:library/app:pull";
    let plain = token(cache.send_with("GET", plain, &[("authorization", &basic)]));
    let refused = cache.send_with("GET", "http://mirror.test/v2/library/app/manifests/1", &[("authorization", &plain)]);
    assert_eq!(refused.status, 401, "{}", String::from_utf8_lossy(&refused.body));
    assert!(refused.header("www-authenticate").unwrap().contains(r#"scope="repository:library/app:pull""#));
}

#[test]
fn cache_names_follow_the_grants() {
    let mut cache = Cache::new();
    cache.auth = Some(anonymous_pull_on_hub());
    upstream_image(&cache.upstream, "library/app", "1", 1);
    upstream_image(&cache.upstream, "team/x", "1", 2);
    let hub = token(cache.get("/token?scope=repository:hub/app:pull"));
    assert_eq!(cache.send_with("GET", "/v2/hub/app/manifests/1", &[("authorization", &hub)]).status, 200);
    assert_eq!(cache.get("/v2/team/x/manifests/1").status, 401, "not a cache name, not granted");
    let pushing = token(cache.get("/token?scope=repository:hub/app:pull,push"));
    let refused = cache.send_with("POST", "/v2/hub/app/blobs/uploads/", &[("authorization", &pushing)]);
    refused.assert_error(403, "DENIED");
    assert!(cache.upstream_requests().len() <= 1, "nothing fetched for a refused request");
}
