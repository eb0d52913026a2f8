//! Replication on Workers: the replica buckets named by the `REPLICAS` var, the
//! `REPLICATION` queue (producer after each request, consumer below), the routing switch
//! and fault plan in the home replica's bucket (the switch cached per isolate for a few
//! seconds), and each replica's health kept per isolate.

use super::kv::KvIndex;
use super::r2::R2Store;
use super::{config, convert, WorkerClock, META_BINDING};
use crate::api;
use crate::auth::Auth;
use crate::registry::{Clock, RandomIds, Registry};
use crate::replication::repair::repair;
use crate::replication::switch_cache::Source;
use crate::replication::{
    apply, health, parse_replicas, publish, replica_pinned_ids, Admin, Cluster, FaultPlan, Health, Location, Message,
    Replica, ReplicaSpec, ReplicationQueue, RoutingSwitch, SwitchCache, Timer,
};
use futures::future::LocalBoxFuture;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use worker::{Context, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder, Request, Response};

/// Var: the replicas, a JSON list (see README, Reliability). Unset: one bucket, `BLOBS`.
pub const REPLICAS_VAR: &str = "REPLICAS";
/// Queue binding carrying replication messages (producer and consumer in this worker).
pub const QUEUE_BINDING: &str = "REPLICATION";
/// Var: `on` enables the fault-injection endpoint and the replica-pinning header. Never
/// set it in a deployment.
pub const HOOKS_VAR: &str = "REPLICATION_TEST_HOOKS";
/// Header (test hooks only): serve this request from the named replica alone.
pub const PIN_HEADER: &str = "x-edge-registry-replica";
/// Var: seconds a failed replica is skipped before it is probed (doubling per failure).
pub const BACKOFF_VAR: &str = "REPLICA_BACKOFF_SECONDS";
/// Var: milliseconds a replica read may take before the next replica is tried.
pub const READ_TIMEOUT_VAR: &str = "REPLICA_READ_TIMEOUT_MS";
/// Var: seconds after which the repair re-sends a change still pending.
pub const RESEND_VAR: &str = "REPLICATION_RESEND_AFTER_SECONDS";
/// Var: the first retry delay of a failed copy, in seconds; later ones grow with its age.
pub const RETRY_VAR: &str = "REPLICATION_RETRY_SECONDS";

const DEFAULT_RESEND_SECONDS: u64 = 600;
const DEFAULT_RETRY_SECONDS: u64 = 10;
const MAX_RETRY_SECONDS: u64 = 300;

thread_local! {
    /// Replica health lives as long as the isolate: what one request learns, the next uses.
    static HEALTH: RefCell<Option<Rc<Health>>> = const { RefCell::new(None) };
    /// The routing switch as this isolate last read it from the home bucket.
    static SWITCH: Rc<SwitchCache> = Rc::new(SwitchCache::default());
}

fn number(env: &Env, name: &str) -> Option<u64> {
    env.var(name).ok().and_then(|v| v.to_string().trim().parse().ok())
}

fn hooks(env: &Env) -> bool {
    env.var(HOOKS_VAR).is_ok_and(|v| v.to_string().trim() == "on")
}

/// The declared replicas, or `None` when `REPLICAS` is unset (replication off).
pub fn specs(env: &Env) -> Result<Option<Vec<ReplicaSpec>>, String> {
    match env.var(REPLICAS_VAR).map(|v| v.to_string()) {
        Ok(json) if !json.trim().is_empty() => parse_replicas(&json).map(Some).map_err(|e| e.to_string()),
        _ => Ok(None),
    }
}

struct WorkerTimer;

impl Timer for WorkerTimer {
    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        Box::pin(worker::Delay::from(Duration::from_millis(ms)))
    }
}

/// The replication queue's producer.
pub struct WorkerQueue(worker::Queue);

impl ReplicationQueue for WorkerQueue {
    async fn send(&self, messages: Vec<Message>) -> Result<(), String> {
        self.0.send_batch(messages).await.map_err(|e| format!("queue {QUEUE_BINDING}: {e}"))
    }
}

fn cluster(env: &Env, specs: Vec<ReplicaSpec>) -> worker::Result<Cluster<R2Store>> {
    let mut replicas = Vec::with_capacity(specs.len());
    for spec in &specs {
        replicas.push(Replica { name: spec.name.clone(), store: R2Store::new(env.bucket(&spec.binding)?) });
    }
    let backoff_ms = number(env, BACKOFF_VAR).map_or(health::DEFAULT_BACKOFF_MS, |s| s * 1000);
    let health =
        HEALTH.with(|h| h.borrow_mut().get_or_insert_with(|| Rc::new(Health::new(specs.len(), backoff_ms))).clone());
    Ok(Cluster {
        specs: Rc::new(specs),
        replicas: Rc::new(replicas),
        health,
        switch_cache: SWITCH.with(Rc::clone),
        timer: Rc::new(WorkerTimer),
        now: Rc::new(|| WorkerClock.now_millis()),
        read_timeout_ms: number(env, READ_TIMEOUT_VAR).unwrap_or(crate::replication::store::DEFAULT_READ_TIMEOUT_MS),
    })
}

/// The routing switch (this isolate's copy, read again from the home bucket every few
/// seconds) and, with the hooks on, the fault plan (read every time; none if unreadable).
async fn controls(env: &Env, cluster: &Cluster<R2Store>, meta: &KvIndex) -> (RoutingSwitch, FaultPlan) {
    let faults = if hooks(env) {
        cluster.control(meta, &FaultPlan::default()).faults().await.unwrap_or_default()
    } else {
        FaultPlan::default()
    };
    let control = cluster.control(meta, &faults);
    let (switch, source) = cluster.switch_cache.switch(&control, WorkerClock.now_millis(), false).await;
    if let Source::Fallback(e) = source {
        worker::console_error!("routing switch unreadable in the home bucket, routing by {switch:?}: {e}");
    }
    (switch, faults)
}

fn location(request: &Request) -> Location {
    match request.cf() {
        Some(cf) => Location { colo: Some(cf.colo()), country: cf.country(), continent: cf.continent() },
        None => Location::default(),
    }
}

fn resend_after_ms(env: &Env) -> u64 {
    number(env, RESEND_VAR).unwrap_or(DEFAULT_RESEND_SECONDS) * 1000
}

/// Serves one request with replicas: routed by location, its writes then published.
pub async fn fetch(
    request: Request,
    env: &Env,
    ctx: &Context,
    specs: Vec<ReplicaSpec>,
    auth: Option<&Auth>,
) -> worker::Result<Response> {
    let cluster = cluster(env, specs)?;
    let meta = Rc::new(KvIndex::new(env.kv(META_BINDING)?));
    let (switch, faults) = controls(env, &cluster, &meta).await;
    let pin = if hooks(env) { request.headers().get(PIN_HEADER)? } else { None };
    let store = cluster.client(&location(&request), &switch, &faults, pin.as_deref());
    let ids = replica_pinned_ids(&store, Box::new(RandomIds));
    let registry = Registry::new(store, meta.clone(), Box::new(WorkerClock), Box::new(ids), config(env));
    let queue = WorkerQueue(env.queue(QUEUE_BINDING)?);
    let admin = Admin {
        cluster: &cluster,
        meta: &*meta,
        queue: &queue,
        hooks: hooks(env),
        resend_after_ms: resend_after_ms(env),
    };
    let http = convert::to_http(request)?;
    let path = http.uri().path().to_owned();
    let response = api::handle_with(&registry, auth, Some(&admin), http).await;
    let changes = registry.blob_store().take_changes();
    if !changes.is_empty() {
        // Awaited before answering: once the client sees success, the change is recorded
        // (a marker in the source replica) even if the queue loses the message.
        if let Err(e) = publish(registry.blob_store(), &queue, changes).await {
            worker::console_error!("replication not enqueued (the repair job will find it): {e}");
        }
    }
    let mut response = convert::to_worker(response)?;
    super::cache::keep(ctx, &path, &mut response)?;
    Ok(response)
}

/// The queue consumer: applies each message; a failed copy is retried later, with a delay
/// that grows with the change's age (the queue gives up after its `max_retries`, and the
/// repair job re-sends what is still pending).
pub async fn consume(batch: MessageBatch<Message>, env: &Env) -> worker::Result<()> {
    let specs = match specs(env) {
        Ok(Some(specs)) => specs,
        other => {
            worker::console_error!("replication messages arrived without valid REPLICAS ({other:?}); dropped");
            batch.ack_all();
            return Ok(());
        }
    };
    let cluster = cluster(env, specs)?;
    let meta = KvIndex::new(env.kv(META_BINDING)?);
    let (switch, faults) = controls(env, &cluster, &meta).await;
    let store = cluster.maintenance(&switch, &faults);
    let messages = match batch.messages() {
        Ok(messages) => messages,
        Err(e) => {
            worker::console_error!("unreadable replication batch dropped (the repair job re-sends): {e}");
            batch.ack_all();
            return Ok(());
        }
    };
    let first_retry = number(env, RETRY_VAR).unwrap_or(DEFAULT_RETRY_SECONDS).max(1);
    for message in messages {
        let body = message.body();
        match apply(&store, body).await {
            Ok(applied) => {
                worker::console_log!("replicated {} to {}: {applied:?}", body.key, body.target);
                message.ack();
            }
            Err(e) => {
                let age = WorkerClock.now_millis().saturating_sub(body.enqueued_at) / 1000;
                let delay = age.clamp(first_retry, MAX_RETRY_SECONDS.max(first_retry));
                worker::console_warn!("replicating {} to {} failed, retry in {delay} s: {e}", body.key, body.target);
                message.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(delay as u32).build());
            }
        }
    }
    Ok(())
}

/// The cron job with replicas: expire abandoned uploads in every replica, then repair.
pub async fn scheduled(env: &Env, specs: Vec<ReplicaSpec>, expiry_ms: u64) -> worker::Result<()> {
    let cluster = cluster(env, specs)?;
    let meta = Rc::new(KvIndex::new(env.kv(META_BINDING)?));
    let (switch, faults) = controls(env, &cluster, &meta).await;
    let registry = Registry::new(
        cluster.maintenance(&switch, &faults),
        meta,
        Box::new(WorkerClock),
        Box::new(RandomIds),
        config(env),
    );
    match registry.expire_uploads(expiry_ms).await {
        Ok(r) => worker::console_log!("expired {} upload sessions ({} failed)", r.expired, r.failed),
        Err(e) => worker::console_error!("expiring uploads failed: {e}"),
    }
    let queue = WorkerQueue(env.queue(QUEUE_BINDING)?);
    match repair(registry.blob_store(), &queue, resend_after_ms(env)).await {
        Ok(report) if report.failed > 0 => {
            worker::console_error!(
                "replication repair: {} items failed (the next run retries them): {report:?}",
                report.failed
            )
        }
        Ok(report) => worker::console_log!("replication repair: {report:?}"),
        Err(e) => worker::console_error!("replication repair failed: {e}"),
    }
    Ok(())
}
