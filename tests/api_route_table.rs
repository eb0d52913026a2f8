//! Walks the route table itself: for every endpoint and each of its path shapes, every
//! declared method reaches its handler, every other method gets `405` with the declared
//! `Allow`, the declared right is enforced (anonymous callers are challenged with the
//! scope, callers without the right denied, admin routes refuse non-admins), bad path
//! parameters get their specific errors, and a feature's routes answer `404` while it is
//! off. A new endpoint is covered as soon as it is in the table.
#![cfg(not(target_arch = "wasm32"))]

mod auth_fixture;
mod common;
use auth_fixture::*;
use common::*;
use edge_registry::api::endpoint::{find, Endpoint, Right};
use edge_registry::api::route::{PathShape, Segment};
use edge_registry::api::table::{sections, Handler, RouteSection};
use edge_registry::api::{self, Services};
use edge_registry::auth::{Action, Auth, BlobTokenStore};
use edge_registry::lifecycle::gc::GcConfig;
use edge_registry::lifecycle::usage::UsageConfig;
use edge_registry::registry::{Config, RequestBody};
use edge_registry::replication::admin::{FaultPlan, RepairReport, ReplicaStatus, ReplicationAdmin};
use edge_registry::storage::memory::MemoryBlobStore;
use edge_registry::storage::memory_kv::MemoryMetaStore;
use edge_registry::storage::StorageResult;
use futures::executor::block_on;
use http::Method;

const METHODS: [Method; 6] = [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
/// The repository of the sample paths: the writer holds no right on it, the admin all.
const REPO: &str = "other/x";

/// Replication that is on and answers everything (empty reports, no replicas).
struct SomeReplication;
impl ReplicationAdmin for SomeReplication {
    async fn status(&self) -> StorageResult<Vec<ReplicaStatus>> {
        Ok(Vec::new())
    }
    async fn set_routing(&self, _: &str, _: bool) -> Result<StorageResult<Option<ReplicaStatus>>, String> {
        Ok(Ok(None))
    }
    async fn repair(&self) -> StorageResult<RepairReport> {
        Ok(RepairReport::default())
    }
    fn hooks_enabled(&self) -> bool {
        true
    }
    async fn faults(&self) -> StorageResult<FaultPlan> {
        Ok(FaultPlan::default())
    }
    async fn set_faults(&self, _: FaultPlan) -> Result<StorageResult<()>, String> {
        Ok(Ok(()))
    }
    type Collecting = MemoryBlobStore;
    async fn collector_view(&self) -> StorageResult<MemoryBlobStore> {
        Ok(MemoryBlobStore::new())
    }
}

type Tokens = BlobTokenStore<'static, MemoryBlobStore>;
type Table = Vec<RouteSection<'static, MemoryBlobStore, MemoryMetaStore, Tokens, SomeReplication>>;
type Entry = Endpoint<Handler<MemoryBlobStore, MemoryMetaStore, Tokens, SomeReplication>>;

fn table() -> Table {
    sections()
}

/// What a request is sent with: access control and replication, each on or off.
#[derive(Clone, Copy)]
struct Setup<'a> {
    auth: Option<&'a Auth>,
    replication: Option<&'a SomeReplication>,
    gc: Option<GcConfig>,
    usage: Option<UsageConfig>,
}

/// The garbage collector on, as it is by default.
const GC_ON: Option<GcConfig> = Some(GcConfig { grace_ms: 3_600_000, calls_per_step: 900, interval_ms: 3_600_000 });
/// The usage count on, as it is by default.
const USAGE_ON: Option<UsageConfig> = Some(UsageConfig { calls_per_step: 40, interval_ms: 3_600_000 });

fn send_to(reg: &TestRegistry, setup: Setup, creds: Option<&str>, method: &Method, path: &str) -> Answer {
    let mut headers = vec![];
    if let Some(c) = creds {
        headers.push(("authorization", c));
    }
    let body = RequestBody::native(stream(Feed::Pieces(Vec::new(), 1)), Some(0), |s| s);
    let request = request(method.as_str(), path, &headers, body);
    let tokens = BlobTokenStore::new(reg.blob_store());
    let services = Services {
        registry: reg,
        auth: setup.auth,
        tokens: &tokens,
        replication: setup.replication,
        gc: setup.gc,
        retention: None,
        usage: setup.usage,
        mirror: None,
    };
    answer(block_on(api::serve(services, request)))
}

/// A path of this shape on [`REPO`], with valid parameters.
fn sample(shape: &PathShape, digest: &str) -> String {
    match *shape {
        PathShape::Exact(path) => path.to_owned(),
        PathShape::Text { prefix, suffix } => format!("{prefix}ab12{suffix}"),
        PathShape::Name(segments) => {
            let tail: Vec<String> = segments.iter().map(|s| segment(s, digest).to_owned()).collect();
            format!("/v2/{REPO}/{}", tail.join("/"))
        }
    }
}

fn segment<'a>(segment: &'a Segment, digest: &'a str) -> &'a str {
    match segment {
        Segment::Lit(word) => word,
        Segment::Digest => digest,
        Segment::Reference => "v1",
        Segment::Id => "00000000000000000000000000000bad",
    }
}

/// The router's own answers, as opposed to a handler's.
fn routed(a: &Answer) -> bool {
    let router_404 =
        a.status == 404 && a.json()["errors"][0]["message"].as_str().unwrap_or("").starts_with("no endpoint");
    a.status != 405 && a.status != 500 && !router_404
}

fn scope_actions(action: Action) -> &'static str {
    match action {
        Action::Pull => "pull",
        Action::Push => "pull,push",
        Action::Delete => "delete",
    }
}

#[test]
fn the_table_is_well_formed() {
    let table = table();
    let entries: Vec<&Entry> = table.iter().flat_map(|s| &s.endpoints).collect();
    let mut names: Vec<&str> = entries.iter().map(|e| e.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), entries.len(), "endpoint names are unique");
    for entry in entries {
        let methods = entry.methods();
        assert!(!methods.is_empty() && !entry.paths.is_empty(), "{}", entry.name);
        assert!(methods.iter().enumerate().all(|(i, m)| !methods[..i].contains(m)), "{}: a method twice", entry.name);
        for operation in &entry.operations {
            if let Right::Repository(_) = operation.right {
                assert!(entry.paths.iter().all(PathShape::is_name), "{}: a repository right needs a name", entry.name);
            }
        }
    }
}

#[test]
fn every_entry_routes_its_methods_refuses_the_rest_and_enforces_its_rights() {
    let auth = auth();
    let setup = Setup { auth: Some(&auth), replication: Some(&SomeReplication), gc: GC_ON, usage: USAGE_ON };
    let table = table();
    let mut checked = 0;
    for entry in table.iter().flat_map(|s| &s.endpoints) {
        let reg = seeded();
        let digest = sha256(b"a blob");
        let bearer = token_for(&reg, &auth, Some(&login("admin")), &[]).json()["token"].as_str().unwrap().to_owned();
        let bearer = format!("Bearer {bearer}");
        let allow: Vec<&str> = entry.operations.iter().map(|o| o.method.as_str()).collect();
        for shape in entry.paths {
            let path = sample(shape, &digest);
            let at = |method: &Method| format!("{} {method} {path}", entry.name);
            for method in &METHODS {
                let found = find(&table, method, &path).unwrap_or_else(|e| panic!("{}: {e:?}", at(method)));
                assert_eq!(found.endpoint.name, entry.name, "{}: taken by another endpoint", at(method));
                let Ok(operation) = entry.operation(method) else {
                    let a = send_to(&reg, setup, Some(&login("admin")), method, &path);
                    a.assert_error(405, "UNSUPPORTED");
                    assert_eq!(a.header("allow"), Some(&*allow.join(", ")), "{}", at(method));
                    continue;
                };
                let anonymous = send_to(&reg, setup, None, method, &path);
                let writer = send_to(&reg, setup, Some(&login("writer")), method, &path);
                let challenge = anonymous.header("www-authenticate").unwrap_or_default().to_owned();
                match operation.right {
                    Right::Open => assert!(routed(&anonymous) && anonymous.status != 401, "{}", at(method)),
                    Right::Anyone => {
                        assert!(routed(&anonymous) && anonymous.status != 401, "{}", at(method));
                        let wrong = send_to(&reg, setup, Some(&basic("reader", "wrong")), method, &path);
                        assert_eq!(wrong.status, 401, "{}: bad credentials are refused", at(method));
                    }
                    Right::Authenticated => {
                        anonymous.assert_error(401, "UNAUTHORIZED");
                        assert!(challenge.starts_with("Bearer realm=") && !challenge.contains("scope="), "{challenge}");
                        assert!(routed(&writer) && writer.status != 401 && writer.status != 403, "{}", at(method));
                    }
                    Right::Repository(action) => {
                        anonymous.assert_error(401, "UNAUTHORIZED");
                        let scope = format!("scope=\"repository:{REPO}:{}\"", scope_actions(action));
                        assert!(challenge.starts_with("Bearer realm=") && challenge.contains(&scope), "{challenge}");
                        writer.assert_error(403, "DENIED");
                    }
                    Right::Admin(_) => {
                        anonymous.assert_error(401, "UNAUTHORIZED");
                        assert!(challenge.starts_with("Basic realm="), "{}: {challenge}", at(method));
                        writer.assert_error(403, "DENIED");
                        let bearer = send_to(&reg, setup, Some(&bearer), method, &path);
                        bearer.assert_error(401, "UNAUTHORIZED");
                    }
                }
                let admin = send_to(&reg, setup, Some(&login("admin")), method, &path);
                assert!(routed(&admin) && admin.status != 401 && admin.status != 403, "{}: {admin:?}", at(method));
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "walked {checked} operations");
}

#[test]
fn bad_path_parameters_get_their_specific_errors_before_any_access_check() {
    let auth = auth();
    let setup = Setup { auth: Some(&auth), replication: Some(&SomeReplication), gc: GC_ON, usage: USAGE_ON };
    let reg = seeded();
    let digest = sha256(b"a blob");
    let table = table();
    let mut checked = 0;
    for entry in table.iter().flat_map(|s| &s.endpoints) {
        for shape in entry.paths {
            let good = sample(shape, &digest);
            let PathShape::Name(segments) = *shape else {
                if let PathShape::Text { prefix, suffix } = *shape {
                    if !suffix.is_empty() {
                        let empty = send_to(&reg, setup, None, &Method::GET, &format!("{prefix}{suffix}"));
                        empty.assert_error(404, "UNSUPPORTED");
                        checked += 1;
                    }
                }
                continue;
            };
            let tail = good.strip_prefix(&format!("/v2/{REPO}/")).unwrap();
            for method in &METHODS {
                let read = *method == Method::GET || *method == Method::HEAD;
                let mut cases = vec![
                    (format!("/v2/Other/x/{tail}"), 400, "NAME_INVALID"),
                    (format!("/v2/other//x/{tail}"), 400, "NAME_INVALID"),
                    (format!("/v2/{tail}"), 404, "UNSUPPORTED"),
                ];
                for (i, segment) in segments.iter().enumerate() {
                    let with = |bad: &str| {
                        let mut parts: Vec<&str> = segments.iter().map(|s| self::segment(s, &digest)).collect();
                        parts[i] = bad;
                        format!("/v2/{REPO}/{}", parts.join("/"))
                    };
                    match segment {
                        Segment::Digest => cases.push((with("sha256:xyz"), 400, "DIGEST_INVALID")),
                        Segment::Reference if read => {
                            cases.push((with("-bad"), 404, "MANIFEST_UNKNOWN"));
                            cases.push((with("sha256:123"), 404, "MANIFEST_UNKNOWN"));
                        }
                        Segment::Reference => {
                            cases.push((with("-bad"), 400, "MANIFEST_INVALID"));
                            cases.push((with("sha256:123"), 400, "DIGEST_INVALID"));
                        }
                        Segment::Lit(_) | Segment::Id => {}
                    }
                }
                for (path, status, code) in cases {
                    let a = send_to(&reg, setup, None, method, &path);
                    assert_eq!((a.status, a.error_code().as_str()), (status, code), "{} {method} {path}", entry.name);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 100, "checked {checked} bad paths");
}

#[test]
fn a_feature_that_is_off_answers_404_on_its_routes_and_405_on_other_methods() {
    let auth = auth();
    let (seeded, no_deletes) = (seeded(), registry_with(Config { repository_deletes: false, ..Config::default() }));
    let table = sections::<MemoryBlobStore, MemoryMetaStore, BlobTokenStore<'_, MemoryBlobStore>, SomeReplication>();
    let tokens = BlobTokenStore::new(seeded.blob_store());
    let mut checked = 0;
    for section in &table {
        let Some(feature) = &section.feature else { continue };
        // Each feature says here how it is turned off.
        let setup = match feature.name {
            "access control" => Setup { auth: None, replication: Some(&SomeReplication), gc: GC_ON, usage: USAGE_ON },
            "replication" => Setup { auth: Some(&auth), replication: None, gc: GC_ON, usage: USAGE_ON },
            "garbage collection" => {
                Setup { auth: Some(&auth), replication: Some(&SomeReplication), gc: None, usage: USAGE_ON }
            }
            "storage usage" => Setup { auth: Some(&auth), replication: Some(&SomeReplication), gc: GC_ON, usage: None },
            // Off in the registry's config (the settings turn it off with replicas).
            "repository delete" => {
                Setup { auth: Some(&auth), replication: Some(&SomeReplication), gc: GC_ON, usage: USAGE_ON }
            }
            other => panic!("feature {other:?}: add how to turn it off to this test"),
        };
        let reg = if feature.name == "repository delete" { &no_deletes } else { &seeded };
        let services = Services {
            registry: reg,
            auth: setup.auth,
            tokens: &tokens,
            replication: setup.replication,
            gc: setup.gc,
            retention: None,
            usage: setup.usage,
            mirror: None,
        };
        assert!(!(feature.is_on)(&services), "{} is off here", feature.name);
        for entry in &section.endpoints {
            for shape in entry.paths {
                let path = sample(shape, "sha256:00");
                for method in &METHODS {
                    let a = send_to(reg, setup, Some(&login("admin")), method, &path);
                    if entry.operation(method).is_ok() {
                        a.assert_error(404, "UNSUPPORTED");
                        assert_eq!(a.json()["errors"][0]["message"], feature.off, "{method} {path}");
                    } else {
                        assert_eq!(a.status, 405, "{method} {path}");
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 2 * METHODS.len(), "checked {checked}");
}
