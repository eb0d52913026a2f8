//! The storage usage endpoints, for admins only: `GET /admin/usage` answers the last
//! finished run's report (totals, the largest repositories) with a page of repositories
//! (`n`, at most 1,000, default 100, and `last`, as the catalog pages, with a `Link` to the
//! next page); `GET /admin/usage/<name>` one repository; `POST /admin/usage` starts a run
//! unless one is in progress and moves it by one step (one invocation's budget), which
//! `scripts/usage --refresh` repeats until it is done. While the count is off they answer
//! 404 saying how to turn it on. They reach it through its one entry point,
//! `lifecycle::usage::UsageCounter`.

use super::endpoint::{feature_off, Endpoint, Feature, Right, Section};
use super::error::ApiError;
use super::route::PathShape::{Exact, Text};
use super::table::{op, RouteSection, Services};
use super::{Call, HandlerResult, Reply};
use crate::auth::TokenStore;
use crate::lifecycle::usage::{UsageConfig, UsageCounter};
use crate::oci::{ErrorCode, RepositoryName};
use crate::replication::admin::ReplicationAdmin;
use crate::storage::{BlobStore, MetaStore};
use http::{Method, StatusCode};
use serde_json::json;

/// What the usage routes answer while the count is off.
const OFF: &str = "the storage usage count is off: it runs with one bucket unless USAGE is off (README, Storage usage)";

/// Repositories per page when `n` is not given, and the most one page holds.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = crate::storage::limits::R2_MAX_LIST;

/// The usage section of the route table.
pub fn routes<'a, B: BlobStore, M: MetaStore, T: TokenStore, A: ReplicationAdmin>() -> RouteSection<'a, B, M, T, A> {
    const ADMIN: Right = Right::Admin("reading storage usage");
    let endpoints = vec![
        Endpoint {
            name: "storage usage",
            paths: &[Exact("/admin/usage")],
            operations: vec![
                op(Method::GET, ADMIN, |s, _, call| Box::pin(async move { summary(&s, config(&s)?, &call).await })),
                op(Method::POST, ADMIN, |s, _, _| Box::pin(async move { run(&s, config(&s)?).await })),
            ],
        },
        Endpoint {
            name: "storage usage of a repository",
            paths: &[Text { prefix: "/admin/usage/", suffix: "" }],
            operations: vec![op(Method::GET, ADMIN, |s, p, _| {
                Box::pin(async move { repository(&s, config(&s)?, p.text()?).await })
            })],
        },
    ];
    let feature = Feature { name: "storage usage", is_on: |s: &Services<B, M, T, A>| s.usage.is_some(), off: OFF };
    Section { feature: Some(feature), endpoints }
}

fn config<B: BlobStore, M, T, A>(s: &Services<'_, B, M, T, A>) -> Result<UsageConfig, ApiError> {
    s.usage.ok_or_else(|| feature_off(OFF))
}

fn storage(e: crate::storage::StorageError) -> ApiError {
    crate::registry::RegistryError::from(e).into()
}

fn counter<'a, B: BlobStore, M: MetaStore, T, A>(
    s: &Services<'a, B, M, T, A>,
    config: UsageConfig,
) -> UsageCounter<'a, B, M> {
    UsageCounter::new(s.registry.blob_store(), s.registry.meta_store(), config)
}

fn repository_name(text: &str, what: &str) -> Result<RepositoryName, ApiError> {
    RepositoryName::parse(text).map_err(|e| ApiError::name_invalid(format!("{what} {text:?}: {e}")))
}

/// `GET /admin/usage[?n=<int>&last=<name>]`: the report and a page of repositories.
async fn summary<B: BlobStore, M: MetaStore, T, A, N: 'static, S>(
    s: &Services<'_, B, M, T, A>,
    config: UsageConfig,
    call: &Call<N>,
) -> HandlerResult<S> {
    let n = call.query.page_size()?.unwrap_or(DEFAULT_PAGE);
    if n > MAX_PAGE {
        return Err(ApiError::bad_request(ErrorCode::Unsupported, format!("n={n}: at most {MAX_PAGE} a page")));
    }
    let last = call.query.get("last").map(|last| repository_name(last, "last")).transpose()?;
    let counter = counter(s, config);
    let Some(report) = counter.report().await.map_err(storage)? else {
        let body = json!({ "computed_at": null, "repositories": [], "note": "no usage run has finished yet" });
        return Ok(Reply::new(StatusCode::OK).json(&body).header("cache-control", "no-store"));
    };
    let (entries, more) = counter.repositories(&report, last.as_ref(), n).await.map_err(storage)?;
    let next = entries.last().filter(|_| more).map(|e| e.repository.clone());
    let mut body = json!(report);
    body["repositories"] = json!(entries);
    body["next"] = json!(next);
    let mut reply = Reply::new(StatusCode::OK).json(&body).header("cache-control", "no-store");
    if let Some(next) = next {
        reply = reply.header("link", format!("</admin/usage?n={n}&last={next}>; rel=\"next\""));
    }
    Ok(reply)
}

/// `GET /admin/usage/<name>`: one repository in the last report.
async fn repository<B: BlobStore, M: MetaStore, T, A, S>(
    s: &Services<'_, B, M, T, A>,
    config: UsageConfig,
    name: &str,
) -> HandlerResult<S> {
    let repo = repository_name(name, "repository")?;
    let counter = counter(s, config);
    let unknown = |why: &str| ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NameUnknown, format!("{repo}: {why}"));
    let Some(report) = counter.report().await.map_err(storage)? else {
        return Err(unknown("no usage run has finished yet"));
    };
    let Some(entry) = counter.repository(&report, &repo).await.map_err(storage)? else {
        return Err(unknown("not in the last usage report (pushed since, or no such repository)"));
    };
    let mut body = json!(entry);
    body["run"] = json!(report.run);
    body["computed_at"] = json!(report.computed_at);
    Ok(Reply::new(StatusCode::OK).json(&body).header("cache-control", "no-store"))
}

/// `POST /admin/usage`: starts a run unless one is in progress, then one step; the job.
async fn run<B: BlobStore, M: MetaStore, T, A, S>(
    s: &Services<'_, B, M, T, A>,
    config: UsageConfig,
) -> HandlerResult<S> {
    let counter = counter(s, config);
    let now = s.registry.now_millis();
    counter.start(now).await.map_err(storage)?;
    let stepped = counter.step(now).await.map_err(storage)?;
    Ok(Reply::new(StatusCode::OK).json(&json!(stepped.job)).header("cache-control", "no-store"))
}
