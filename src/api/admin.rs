//! The replication admin endpoints (`/admin/...`), for admins only: the status report,
//! each replica's routing switch, an on-demand repair, and the fault-injection plan that
//! exists only when the test hooks are on. Without replication they answer 404. They reach
//! replication through its admin port only; their route-table section lives here.

use super::endpoint::{feature_off, Endpoint, Feature, Right, Section};
use super::error::ApiError;
use super::route::PathShape::{Exact, Text};
use super::table::{op, RouteSection, Services};
use super::token::read_small_body;
use super::{Call, HandlerResult, Reply};
use crate::auth::TokenStore;
use crate::oci::ErrorCode;
use crate::replication::admin::{FaultPlan, RepairReport, ReplicaStatus, ReplicationAdmin};
use crate::storage::{BlobStore, MetaStore, StorageResult};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

/// What replication's routes answer while it is off.
const OFF: &str = "replication is off: declare REPLICAS to enable it (README, Reliability)";

/// Replication's section of the route table.
pub fn routes<'a, B: BlobStore, M: MetaStore, T: TokenStore, A: ReplicationAdmin>() -> RouteSection<'a, B, M, T, A> {
    const ADMIN: Right = Right::Admin("administering replication");
    let endpoints = vec![
        Endpoint {
            name: "replicas",
            paths: &[Exact("/admin/replicas")],
            operations: vec![op(Method::GET, ADMIN, |s, _, _| Box::pin(async move { replicas(port(&s)?).await }))],
        },
        Endpoint {
            name: "replica routing",
            paths: &[Text { prefix: "/admin/replicas/", suffix: "/routing" }],
            operations: vec![op(Method::GET, ADMIN, routing_handler), op(Method::PUT, ADMIN, routing_handler)],
        },
        Endpoint {
            name: "repair",
            paths: &[Exact("/admin/repair")],
            operations: vec![op(Method::POST, ADMIN, |s, _, _| Box::pin(async move { repair(port(&s)?).await }))],
        },
        Endpoint {
            name: "faults",
            paths: &[Exact("/admin/faults")],
            operations: vec![op(Method::GET, ADMIN, faults_handler), op(Method::PUT, ADMIN, faults_handler)],
        },
    ];
    let feature = Feature { name: "replication", is_on: |s: &Services<B, M, T, A>| s.replication.is_some(), off: OFF };
    Section { feature: Some(feature), endpoints }
}

/// The replication port; the route table answers for it being off before any handler runs.
fn port<'a, B: BlobStore, M, T, A>(s: &Services<'a, B, M, T, A>) -> Result<&'a A, ApiError> {
    s.replication.ok_or_else(|| feature_off(OFF))
}

fn routing_handler<'a, B: BlobStore, M: MetaStore, T, A: ReplicationAdmin>(
    s: Services<'a, B, M, T, A>,
    p: super::route::Params,
    call: Call<B::Native>,
) -> futures::future::LocalBoxFuture<'a, HandlerResult<B::Body>> {
    Box::pin(async move { routing(port(&s)?, p.text()?, &call).await })
}

fn faults_handler<'a, B: BlobStore, M: MetaStore, T, A: ReplicationAdmin>(
    s: Services<'a, B, M, T, A>,
    _: super::route::Params,
    call: Call<B::Native>,
) -> futures::future::LocalBoxFuture<'a, HandlerResult<B::Body>> {
    Box::pin(async move { faults(port(&s)?, &call).await })
}

/// The admin port of a registry without replication: no value exists.
pub enum NoReplication {}

impl ReplicationAdmin for NoReplication {
    async fn status(&self) -> StorageResult<Vec<ReplicaStatus>> {
        match *self {}
    }
    async fn set_routing(&self, _: &str, _: bool) -> Result<StorageResult<Option<ReplicaStatus>>, String> {
        match *self {}
    }
    async fn repair(&self) -> StorageResult<RepairReport> {
        match *self {}
    }
    fn hooks_enabled(&self) -> bool {
        match *self {}
    }
    async fn faults(&self) -> StorageResult<FaultPlan> {
        match *self {}
    }
    async fn set_faults(&self, _: FaultPlan) -> Result<StorageResult<()>, String> {
        match *self {}
    }
    type Collecting = crate::storage::memory::MemoryBlobStore;
    async fn collector_view(&self) -> StorageResult<Self::Collecting> {
        match *self {}
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingFlag {
    enabled: bool,
}

fn storage(e: crate::storage::StorageError) -> ApiError {
    crate::registry::RegistryError::from(e).into()
}

fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(ErrorCode::Unsupported, format!("the body must be JSON like {shape}: {e}")))
}

fn not_found(message: String) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::Unsupported, message)
}

/// `GET /admin/replicas`: the status report.
async fn replicas<A: ReplicationAdmin, S>(replication: &A) -> HandlerResult<S> {
    let replicas = replication.status().await.map_err(storage)?;
    Ok(Reply::new(StatusCode::OK).json(&json!({ "replicas": replicas })).header("cache-control", "no-store"))
}

/// `GET` or `PUT /admin/replicas/<name>/routing`: one replica's line of the report, after
/// setting its routing flag on `PUT`.
async fn routing<A: ReplicationAdmin, N: 'static, S>(replication: &A, name: &str, call: &Call<N>) -> HandlerResult<S> {
    let flag = match call.method {
        Method::PUT => Some(parse_json::<RoutingFlag>(&read_small_body(call).await?, r#"{"enabled": false}"#)?),
        _ => None,
    };
    let report = match flag {
        Some(flag) => replication
            .set_routing(name, flag.enabled)
            .await
            .map_err(|e| ApiError::new(StatusCode::CONFLICT, ErrorCode::Denied, e))?
            .map_err(storage)?,
        None => replication.status().await.map_err(storage)?.into_iter().find(|s| s.name == name),
    };
    let report = report.ok_or_else(|| not_found(format!("no replica is named {name:?}")))?;
    Ok(Reply::new(StatusCode::OK).json(&json!(report)).header("cache-control", "no-store"))
}

/// `POST /admin/repair`: a repair run now.
async fn repair<A: ReplicationAdmin, S>(replication: &A) -> HandlerResult<S> {
    let report = replication.repair().await.map_err(storage)?;
    Ok(Reply::new(StatusCode::OK).json(&json!(report)))
}

/// `GET` or `PUT /admin/faults`: the fault plan, when the test hooks are on.
async fn faults<A: ReplicationAdmin, N: 'static, S>(replication: &A, call: &Call<N>) -> HandlerResult<S> {
    if !replication.hooks_enabled() {
        return Err(not_found("fault injection is off (REPLICATION_TEST_HOOKS is not set)".into()));
    }
    if call.method == Method::PUT {
        let plan = parse_json::<FaultPlan>(&read_small_body(call).await?, r#"{"fail": ["b"], "drop": []}"#)?;
        replication
            .set_faults(plan)
            .await
            .map_err(|e| ApiError::bad_request(ErrorCode::Unsupported, e))?
            .map_err(storage)?;
    }
    let plan = replication.faults().await.map_err(storage)?;
    Ok(Reply::new(StatusCode::OK).json(&json!(plan)))
}
