//! The replication admin endpoints (`/admin/...`), for admins only: the status report,
//! each replica's routing switch, an on-demand repair, and the fault-injection plan that
//! exists only when the test hooks are on. Without replication they answer 404.

use super::error::ApiError;
use super::route::Route;
use super::token::{read_small_body, require_admin};
use super::{Call, HandlerResult, Reply};
use crate::auth::Auth;
use crate::oci::ErrorCode;
use crate::registry::Registry;
use crate::replication::admin::ReplicationAdmin;
use crate::replication::status::ReplicaStatus;
use crate::replication::FaultPlan;
use crate::storage::{BlobStore, MetaStore, StorageResult};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

/// The admin port of a registry without replication: no value exists.
pub enum NoReplication {}

impl ReplicationAdmin for NoReplication {
    async fn status(&self) -> StorageResult<Vec<ReplicaStatus>> {
        match *self {}
    }
    async fn set_routing(&self, _: &str, _: bool) -> Result<StorageResult<Option<ReplicaStatus>>, String> {
        match *self {}
    }
    async fn repair(&self) -> StorageResult<crate::replication::repair::RepairReport> {
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

/// Answers an admin route. `auth` is `None` when access control is off (anyone is admin).
pub async fn dispatch<B: BlobStore, M: MetaStore, A: ReplicationAdmin>(
    registry: &Registry<B, M>,
    auth: Option<&Auth>,
    replication: Option<&A>,
    route: Route,
    call: &Call<B::Native>,
) -> HandlerResult<B::Body> {
    let Some(replication) = replication else {
        return Err(not_found("replication is off: declare REPLICAS to enable it (README, Reliability)".into()));
    };
    if let Some(auth) = auth {
        require_admin(registry, auth, call, "administering replication").await?;
    }
    match route {
        Route::Replicas => {
            let replicas = replication.status().await.map_err(storage)?;
            Ok(Reply::new(StatusCode::OK).json(&json!({ "replicas": replicas })).header("cache-control", "no-store"))
        }
        Route::ReplicaRouting(name) => {
            let flag = match call.method {
                Method::PUT => Some(parse_json::<RoutingFlag>(&read_small_body(call).await?, r#"{"enabled": false}"#)?),
                _ => None,
            };
            let report = match flag {
                Some(flag) => replication
                    .set_routing(&name, flag.enabled)
                    .await
                    .map_err(|e| ApiError::new(StatusCode::CONFLICT, ErrorCode::Denied, e))?
                    .map_err(storage)?,
                None => replication.status().await.map_err(storage)?.into_iter().find(|s| s.name == name),
            };
            let report = report.ok_or_else(|| not_found(format!("no replica is named {name:?}")))?;
            Ok(Reply::new(StatusCode::OK).json(&json!(report)).header("cache-control", "no-store"))
        }
        Route::Repair => {
            let report = replication.repair().await.map_err(storage)?;
            Ok(Reply::new(StatusCode::OK).json(&json!(report)))
        }
        Route::Faults => {
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
        other => Err(ApiError::not_found(&format!("{other:?}"))),
    }
}
