//! `DELETE /admin/repositories/<name>` (admins only): deletes a whole repository, at most
//! `REPOSITORY_DELETE_BUDGET` keys per request. `202` with `{"deleted", "done": false}`
//! while keys remain (send it again), `200` with `"done": true` once nothing is left.
//! The shared bytes are the garbage collector's to delete.

use super::endpoint::{Endpoint, Right, Section};
use super::error::ApiError;
use super::route::PathShape::Text;
use super::table::{op, RouteSection};
use super::{HandlerResult, Reply};
use crate::auth::TokenStore;
use crate::oci::{ErrorCode, RepositoryName};
use crate::registry::REPOSITORY_DELETE_BUDGET;
use crate::replication::admin::ReplicationAdmin;
use crate::storage::{BlobStore, MetaStore};
use http::{Method, StatusCode};
use serde_json::json;

/// The repository admin section (always on).
pub fn routes<'a, B: BlobStore, M: MetaStore, T: TokenStore, A: ReplicationAdmin>() -> RouteSection<'a, B, M, T, A> {
    const ADMIN: Right = Right::Admin("deleting a repository");
    let endpoints = vec![Endpoint {
        name: "repository delete",
        paths: &[Text { prefix: "/admin/repositories/", suffix: "" }],
        operations: vec![op(Method::DELETE, ADMIN, |s, p, _| {
            Box::pin(async move {
                let name = p.text()?;
                let repo = RepositoryName::parse(name).map_err(|e| {
                    ApiError::bad_request(ErrorCode::NameInvalid, format!("{name:?} is not a repository name: {e}"))
                })?;
                let progress = s.registry.delete_repository(&repo, REPOSITORY_DELETE_BUDGET).await?;
                let status = if progress.done { StatusCode::OK } else { StatusCode::ACCEPTED };
                Ok(Reply::new(status).json(&json!(progress)).header("cache-control", "no-store"))
            }) as futures::future::LocalBoxFuture<'_, HandlerResult<B::Body>>
        })],
    }];
    Section { feature: None, endpoints }
}
