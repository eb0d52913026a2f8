//! The garbage collector's admin endpoints, for admins only: `GET /admin/gc` reports the
//! run in progress or the last one; `POST /admin/gc` starts a run (`?dry-run=true` for a
//! report of what it would delete) unless one is in progress, and moves it by one step
//! (one invocation's budget); `scripts/gc` posts until the run is done. While the collector
//! is off they answer 404 saying how to turn it on. They reach it through its one entry
//! point, `lifecycle::gc::Collector`, over the registry's bucket or, with replicas, over
//! replication's collector view (every replica, strict), never a request's routed view.

use super::endpoint::{feature_off, Endpoint, Feature, Right, Section};
use super::error::ApiError;
use super::route::PathShape::Exact;
use super::table::{op, RouteSection, Services};
use super::{Call, HandlerResult, Reply};
use crate::auth::TokenStore;
use crate::lifecycle::gc::job::Job;
use crate::lifecycle::gc::{Collector, GcConfig};
use crate::lifecycle::retention::Retainer;
use crate::oci::{ErrorCode, RepositoryName, Tag};
use crate::replication::admin::ReplicationAdmin;
use crate::storage::{BlobStore, MetaStore};
use http::{Method, StatusCode};
use serde_json::json;

/// What the collector's routes answer while it is off.
const OFF: &str =
    "the garbage collector is off: it runs with one bucket unless GC is off, and with REPLICAS when GC is on \
                   (README, Garbage collection)";

/// The collector's section of the route table.
pub fn routes<'a, B: BlobStore, M: MetaStore, T: TokenStore, A: ReplicationAdmin>() -> RouteSection<'a, B, M, T, A> {
    const ADMIN: Right = Right::Admin("running the garbage collector");
    let endpoints = vec![Endpoint {
        name: "garbage collection",
        paths: &[Exact("/admin/gc")],
        operations: vec![
            op(Method::GET, ADMIN, |s, _, _| Box::pin(async move { status(&s, config(&s)?).await })),
            op(Method::POST, ADMIN, |s, _, call| Box::pin(async move { run(&s, config(&s)?, &call).await })),
        ],
    }];
    let feature = Feature { name: "garbage collection", is_on: |s: &Services<B, M, T, A>| s.gc.is_some(), off: OFF };
    Section { feature: Some(feature), endpoints }
}

fn config<B: BlobStore, M, T, A>(s: &Services<'_, B, M, T, A>) -> Result<GcConfig, ApiError> {
    s.gc.ok_or_else(|| feature_off(OFF))
}

/// Whether a tag is immutable, as the registry's config says (retention never deletes one).
fn immutable_tags<'s, B: BlobStore, M: MetaStore, T, A>(
    s: &'s Services<'_, B, M, T, A>,
) -> impl Fn(&RepositoryName, &Tag) -> bool + 's {
    |repo, tag| s.registry.config().immutable_tags.rule_for(repo, tag).is_some()
}

/// The collector, with the retention policies when they are set.
fn collector<'s, B: BlobStore, M: MetaStore, T, A>(
    s: &'s Services<'_, B, M, T, A>,
    config: GcConfig,
    is_immutable: &'s dyn Fn(&RepositoryName, &Tag) -> bool,
) -> Collector<'s, B, M> {
    let collector = Collector::new(s.registry.blob_store(), s.registry.meta_store(), config);
    match s.retention {
        Some(r) => collector.with_retention(Retainer { rules: &r.rules, apply: r.apply, is_immutable }),
        None => collector,
    }
}

fn storage(e: crate::storage::StorageError) -> ApiError {
    crate::registry::RegistryError::from(e).into()
}

/// `GET /admin/gc`: the job record, or that no run ever started.
async fn status<B: BlobStore, M: MetaStore, T, A: ReplicationAdmin, S>(
    s: &Services<'_, B, M, T, A>,
    config: GcConfig,
) -> HandlerResult<S> {
    let job = match s.replication {
        Some(admin) => {
            let view = admin.collector_view().await.map_err(storage)?;
            Collector::new(&view, s.registry.meta_store(), config).status().await
        }
        None => collector(s, config, &immutable_tags(s)).status().await,
    };
    let body = match job.map_err(storage)? {
        Some(job) => json!(job),
        None => json!({ "phase": "never-run" }),
    };
    Ok(Reply::new(StatusCode::OK).json(&body).header("cache-control", "no-store"))
}

/// `POST /admin/gc[?dry-run=true]`: starts a run unless one is in progress, then one step.
async fn run<B: BlobStore, M: MetaStore, T, A: ReplicationAdmin, N: 'static, S>(
    s: &Services<'_, B, M, T, A>,
    config: GcConfig,
    call: &Call<N>,
) -> HandlerResult<S> {
    let dry_run = match call.query.get("dry-run") {
        None | Some("false") => false,
        Some("true") | Some("") => true,
        Some(other) => {
            let message = format!("dry-run={other:?}: use dry-run=true or leave it out");
            return Err(ApiError::bad_request(ErrorCode::Unsupported, message));
        }
    };
    let now = s.registry.now_millis();
    let job = match s.replication {
        Some(admin) => {
            let view = admin.collector_view().await.map_err(storage)?;
            start_and_step(&Collector::new(&view, s.registry.meta_store(), config), now, dry_run).await?
        }
        None => {
            let immutable = immutable_tags(s);
            start_and_step(&collector(s, config, &immutable), now, dry_run).await?
        }
    };
    Ok(Reply::new(StatusCode::OK).json(&json!(job)).header("cache-control", "no-store"))
}

/// Starts a run at `now` unless one is in progress (refused when it is of the other kind),
/// then moves it by one step.
async fn start_and_step<B: BlobStore, M: MetaStore>(
    collector: &Collector<'_, B, M>,
    now: u64,
    dry_run: bool,
) -> Result<Job, ApiError> {
    let current = collector.start(now, dry_run).await.map_err(storage)?;
    if current.dry_run != dry_run && current.run != now {
        let message = format!(
            "a {} run (started at {} ms) is in progress: POST without changing dry-run until it is done",
            if current.dry_run { "dry" } else { "real" },
            current.run
        );
        return Err(ApiError::new(StatusCode::CONFLICT, ErrorCode::Denied, message));
    }
    Ok(collector.step(now).await.map_err(storage)?.job)
}
