//! The replication admin endpoints: admins only, spec-shaped errors for bad input, and
//! absent when replication is off.

mod replica_world;
use edge_registry::auth::AuthConfig;
use replica_world::*;

#[test]
fn admin_endpoints_are_for_admins_and_refuse_bad_input() {
    use base64::Engine;
    let hash = |password: &str| edge_registry::auth::password::hash_password(password, b"salt-of-test", 1000);
    let users = format!(
        r#"{{"reader": {{"password": "{}", "access": [{{"repository": "*", "actions": ["pull"]}}]}},
            "admin": {{"password": "{}", "admin": true}}}}"#,
        hash("reader-pass"),
        hash("admin-pass")
    );
    let config =
        AuthConfig::from_settings(Some(&users), Some("[]"), Some("a-test-signing-key-of-some-length-0123"), None);
    let auth = Auth::new(config.unwrap().unwrap());
    let basic = |user: &str, password: &str| {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
    };
    let (reader, admin) = (basic("reader", "reader-pass"), basic("admin", "admin-pass"));
    let world = World::new();

    let anonymous = world.admin(Some(&auth), None, "GET", "/admin/replicas", "");
    assert_eq!((anonymous.status, code(&anonymous)), (401, "UNAUTHORIZED".to_owned()));
    assert!(anonymous.headers["www-authenticate"].to_str().unwrap().starts_with("Basic "));
    let denied = world.admin(Some(&auth), Some(&reader), "PUT", "/admin/replicas/a/routing", r#"{"enabled":false}"#);
    assert_eq!((denied.status, code(&denied)), (403, "DENIED".to_owned()));
    assert!(world.stored_switch().disabled.is_empty());

    let report = world.admin(Some(&auth), Some(&admin), "GET", "/admin/replicas", "");
    assert_eq!(report.status, 200);
    let report: serde_json::Value = serde_json::from_slice(&report.body).unwrap();
    let names: Vec<&str> = report["replicas"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let switched = world.admin(Some(&auth), Some(&admin), "PUT", "/admin/replicas/b/routing", r#"{"enabled":false}"#);
    assert_eq!(switched.status, 200);
    let switched: serde_json::Value = serde_json::from_slice(&switched.body).unwrap();
    assert_eq!((switched["name"].as_str(), switched["routing"].as_str()), (Some("b"), Some("disabled")));
    *world.switch.borrow_mut() = world.stored_switch();
    assert_eq!(world.switch.borrow().disabled, ["b"]);

    let unknown = world.admin(Some(&auth), Some(&admin), "PUT", "/admin/replicas/zz/routing", r#"{"enabled":true}"#);
    assert_eq!((unknown.status, code(&unknown)), (404, "UNSUPPORTED".to_owned()));
    let garbage = world.admin(Some(&auth), Some(&admin), "PUT", "/admin/replicas/a/routing", r#"{"enabled":"yes"}"#);
    assert_eq!(garbage.status, 400);
    let hooks_off = world.admin(Some(&auth), Some(&admin), "PUT", "/admin/faults", r#"{"fail":["a"]}"#);
    assert_eq!((hooks_off.status, code(&hooks_off)), (404, "UNSUPPORTED".to_owned()), "no fault hooks in production");
    let wrong_method = world.admin(None, None, "DELETE", "/admin/replicas", "");
    assert_eq!(wrong_method.status, 405);
    let repair = world.admin(None, None, "POST", "/admin/repair", "");
    assert_eq!(repair.status, 200, "open registry: anyone is admin");
}

#[test]
fn without_replication_the_admin_endpoints_do_not_exist() {
    let registry = Registry::new(
        MemoryBlobStore::new(),
        MemoryMetaStore::new(),
        Box::new(Fixed(0)),
        Box::new(Counter(Cell::new(0))),
        Config::default(),
    );
    for (method, path) in [("GET", "/admin/replicas"), ("POST", "/admin/repair"), ("PUT", "/admin/faults")] {
        let stream: ByteStream = futures::stream::iter(Vec::<Result<Vec<u8>, String>>::new()).boxed_local();
        let request =
            http::Request::builder().method(method).uri(path).body(RequestBody::stream(stream, Some(0))).unwrap();
        let response = block_on(api::handle(&registry, None, request));
        assert_eq!(response.status(), 404, "{method} {path}");
    }
}
