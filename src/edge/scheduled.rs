//! The cron trigger: runs the jobs the settings list ([`Settings::scheduled_jobs`]), in
//! their order, against the one bucket or, with replicas, against every replica.
//!
//! [`Settings::scheduled_jobs`]: crate::settings::Settings::scheduled_jobs

use super::r2::R2Store;
use super::replication::{self, WorkerQueue};
use super::settings::configured;
use crate::lifecycle::gc::Collector;
use crate::lifecycle::retention::Retainer;
use crate::lifecycle::usage::UsageCounter;
use crate::oci::{RepositoryName, Tag};
use crate::registry::{Registry, StepBudget};
use crate::replication::repair::repair;
use crate::replication::Replicated;
use crate::settings::{ScheduledJob, Settings};
use crate::storage::{BlobStore, MetaStore};
use worker::{event, Env, ScheduleContext, ScheduledEvent};

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let configured = match configured(&env) {
        Ok(configured) => configured,
        Err(e) => {
            worker::console_error!("scheduled jobs skipped: edge-registry is misconfigured: {e}");
            return;
        }
    };
    let settings = &configured.settings;
    let jobs = settings.scheduled_jobs();
    let done = match &settings.replication {
        Some(replicas) => replication::scheduled(&env, settings, replicas, &jobs).await,
        None => one_bucket(&env, settings, &jobs).await,
    };
    if let Err(e) = done {
        worker::console_error!("scheduled jobs not run (bindings missing?): {e}");
    }
}

/// The cron jobs without replicas: run over the one bucket.
async fn one_bucket(env: &Env, settings: &Settings, jobs: &[ScheduledJob]) -> worker::Result<()> {
    let registry = super::registry(env, &settings.registry, &super::Background::default())?;
    run(jobs, &registry, None, None).await;
    Ok(())
}

/// What the replication repair runs against: every replica, and the queue it re-sends to.
pub struct Replicas<'a> {
    pub store: &'a Replicated<R2Store>,
    pub queue: &'a WorkerQueue,
}

/// Runs `jobs` in order; each one's failure is logged, and the next one runs all the same.
/// With replicas the collector runs over `collecting`, the strict view of every replica.
/// At most one budgeted lifecycle step runs per invocation (a repository deletion's, else
/// the collector's, else the usage count's), so that two budgets never add up past the
/// plan's limit.
pub async fn run<B: BlobStore, M: MetaStore>(
    jobs: &[ScheduledJob],
    registry: &Registry<B, M>,
    replicas: Option<Replicas<'_>>,
    collecting: Option<&Replicated<R2Store>>,
) {
    // Whether a budgeted step ran in this invocation already, and whose.
    let mut stepped: Option<&str> = None;
    for job in jobs {
        match job {
            &ScheduledJob::ExpireUploads { idle_ms } => match registry.expire_uploads(idle_ms).await {
                Ok(r) => worker::console_log!(
                    "expired {} upload sessions idle for over {} s ({} failed, left for the next run)",
                    r.expired,
                    idle_ms / 1000,
                    r.failed
                ),
                Err(e) => worker::console_error!("expiring uploads failed: {e}"),
            },
            &ScheduledJob::DeleteRepositories { calls_per_step } => {
                match registry.step_repository_deletions(StepBudget::calls(calls_per_step)).await {
                    Ok(r) if r.stepped == 0 && r.failed == 0 => {}
                    Ok(r) => {
                        stepped = stepped.or((r.stepped > 0).then_some("a repository deletion"));
                        worker::console_log!("repository deletes: {r:?}")
                    }
                    Err(e) => worker::console_error!("repository deletes not stepped (the next run retries): {e}"),
                }
            }
            ScheduledJob::CollectGarbage { .. } | ScheduledJob::CountUsage(_) if stepped.is_some() => {
                let what =
                    if matches!(job, ScheduledJob::CountUsage(_)) { "storage usage" } else { "garbage collection" };
                worker::console_log!("{what}: no step ({} used this invocation's budget)", stepped.unwrap_or_default())
            }
            ScheduledJob::CollectGarbage { gc, retention } => {
                let now = registry.now_millis();
                let immutable =
                    |repo: &RepositoryName, tag: &Tag| registry.config().immutable_tags.rule_for(repo, tag).is_some();
                // Retention runs with one bucket only (the settings refuse it with replicas).
                let ticked = match (collecting, retention) {
                    (Some(view), _) => Collector::new(view, registry.meta_store(), *gc).tick(now).await,
                    (None, Some(r)) => {
                        let retainer = Retainer { rules: &r.rules, apply: r.apply, is_immutable: &immutable };
                        let collector = Collector::new(registry.blob_store(), registry.meta_store(), *gc);
                        collector.with_retention(retainer).tick(now).await
                    }
                    (None, None) => Collector::new(registry.blob_store(), registry.meta_store(), *gc).tick(now).await,
                };
                if !matches!(ticked, Ok(None)) {
                    stepped = Some("the garbage collector");
                }
                match ticked {
                    Ok(Some(stepped)) => worker::console_log!(
                        "garbage collection run {}: {:?} ({} steps so far): {:?}",
                        stepped.job.run,
                        stepped.job.phase,
                        stepped.job.report.steps,
                        stepped.job.report
                    ),
                    Ok(None) => {}
                    Err(e) => worker::console_error!("garbage collection step failed (the next one retries): {e}"),
                }
            }
            &ScheduledJob::CountUsage(config) => {
                let counter = UsageCounter::new(registry.blob_store(), registry.meta_store(), config);
                match counter.tick(registry.now_millis()).await {
                    Ok(Some(stepped)) => worker::console_log!(
                        "storage usage run {}: {:?} ({} steps so far, {} repositories counted)",
                        stepped.job.run,
                        stepped.job.phase,
                        stepped.job.steps,
                        stepped.job.totals.repositories
                    ),
                    Ok(None) => {}
                    Err(e) => worker::console_error!("storage usage step failed (the next one retries): {e}"),
                }
            }
            &ScheduledJob::RepairReplicas { resend_after_ms } => {
                let Some(Replicas { store, queue }) = &replicas else {
                    worker::console_error!("replication repair skipped: no replicas, or no queue to re-send to");
                    continue;
                };
                match repair(store, *queue, resend_after_ms).await {
                    Ok(report) if report.failed > 0 => worker::console_error!(
                        "replication repair: {} items failed (the next run retries them): {report:?}",
                        report.failed
                    ),
                    Ok(report) => worker::console_log!("replication repair: {report:?}"),
                    Err(e) => worker::console_error!("replication repair failed: {e}"),
                }
            }
        }
    }
}
