//! Repository delete (admins only). `DELETE /admin/repositories/<name>` starts deleting a
//! repository as a job (or joins the one in progress) and does a first step at once:
//! `200` when that finished it, else `202 Accepted` with `Location:
//! /admin/repositories/<name>`, where `GET` shows how far it got; the cron trigger does
//! the rest. The shared bytes are the garbage collector's to delete. With replicas the
//! routes answer 404 (not offered: pushes do not read the deletion records there).

use super::endpoint::{Endpoint, Feature, Right, Section};
use super::error::ApiError;
use super::route::{Params, PathShape::Text};
use super::table::{op, RouteSection, Services};
use super::{HandlerResult, Reply};
use crate::auth::TokenStore;
use crate::oci::{ErrorCode, RepositoryName};
use crate::registry::StepBudget;
use crate::replication::admin::ReplicationAdmin;
use crate::storage::{BlobStore, MetaStore};
use http::{Method, StatusCode};
use serde_json::json;

/// What the routes answer with replicas.
const OFF: &str = "repository delete runs with one bucket only: with REPLICAS, delete the repository's tags and \
                   manifests one by one (README, Garbage collection)";

/// The repository admin section (on with one bucket).
pub fn routes<'a, B: BlobStore, M: MetaStore, T: TokenStore, A: ReplicationAdmin>() -> RouteSection<'a, B, M, T, A> {
    const DELETE: Right = Right::Admin("deleting a repository");
    const STATUS: Right = Right::Admin("reading a repository's deletion");
    let endpoints = vec![Endpoint {
        name: "repository delete",
        paths: &[Text { prefix: "/admin/repositories/", suffix: "" }],
        operations: vec![
            op(Method::GET, STATUS, |s, p, _| Box::pin(async move { status(&s, &p).await })),
            op(Method::DELETE, DELETE, |s, p, _| Box::pin(async move { delete(&s, &p).await })),
        ],
    }];
    let feature = Feature { name: "repository delete", is_on: is_on::<B, M, T, A>, off: OFF };
    Section { feature: Some(feature), endpoints }
}

/// On unless the settings turned it off (they do with `REPLICAS`).
fn is_on<B: BlobStore, M: MetaStore, T, A>(s: &Services<'_, B, M, T, A>) -> bool {
    s.registry.config().repository_deletes
}

fn repository(p: &Params) -> Result<RepositoryName, ApiError> {
    let name = p.text()?;
    RepositoryName::parse(name)
        .map_err(|e| ApiError::bad_request(ErrorCode::NameInvalid, format!("{name:?} is not a repository name: {e}")))
}

/// Where a deletion's status is read.
fn location(repo: &RepositoryName) -> String {
    format!("/admin/repositories/{repo}")
}

/// `DELETE`: records the deletion (or joins it) and steps it once.
async fn delete<B: BlobStore, M: MetaStore, T, A, S>(s: &Services<'_, B, M, T, A>, p: &Params) -> HandlerResult<S> {
    let repo = repository(p)?;
    let budget = StepBudget::calls(s.registry.config().repository_delete_calls_per_step);
    let deletion = s.registry.delete_repository(&repo, budget).await?;
    let status = if deletion.is_done() { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok(Reply::new(status)
        .json(&json!(deletion))
        .header("location", location(&repo))
        .header("cache-control", "no-store"))
}

/// `GET`: the repository's last deletion, `"state": "never-deleted"` for a repository that
/// has none, `404 NAME_UNKNOWN` when there is neither.
async fn status<B: BlobStore, M: MetaStore, T, A, S>(s: &Services<'_, B, M, T, A>, p: &Params) -> HandlerResult<S> {
    let repo = repository(p)?;
    let body = match s.registry.repository_deletion(&repo).await? {
        Some(deletion) => json!(deletion),
        None => json!({ "repository": repo.to_string(), "state": "never-deleted" }),
    };
    Ok(Reply::new(StatusCode::OK).json(&body).header("cache-control", "no-store"))
}
