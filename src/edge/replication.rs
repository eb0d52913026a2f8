//! Replication on Workers: the replica buckets named by the `REPLICAS` var, the
//! `REPLICATION` queue (producer after each request, consumer below), the routing switch
//! and fault plan in the home replica's bucket (the switch cached per isolate for a few
//! seconds), and each replica's health kept per isolate.

use super::background::Background;
use super::kv::KvIndex;
use super::r2::R2Store;
use super::scheduled::{run, Replicas};
use super::{convert, WorkerClock, META_BINDING};
use crate::api;
use crate::auth::Auth;
use crate::registry::{Clock, RandomIds, Registry};
use crate::replication::switch_cache::Source;
use crate::replication::{
    apply, publish, replica_pinned_ids, Admin, Cluster, FaultPlan, Health, Location, Message, Replica,
    ReplicationQueue, RoutingSwitch, SwitchCache, Timer,
};
use crate::settings::{ReplicationSettings, ScheduledJob, Settings};
use futures::future::LocalBoxFuture;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use worker::{Context, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder, Request, Response};

/// Queue binding carrying replication messages (producer and consumer in this worker).
pub const QUEUE_BINDING: &str = "REPLICATION";
/// Header (test hooks only): serve this request from the named replica alone.
pub const PIN_HEADER: &str = "x-edge-registry-replica";

/// The longest delay before a failed copy is retried.
const MAX_RETRY_SECONDS: u64 = 300;

thread_local! {
    /// Replica health lives as long as the isolate: what one request learns, the next uses.
    static HEALTH: RefCell<Option<Rc<Health>>> = const { RefCell::new(None) };
    /// The routing switch as this isolate last read it from the home bucket.
    static SWITCH: Rc<SwitchCache> = Rc::new(SwitchCache::default());
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

fn cluster(env: &Env, settings: &ReplicationSettings, background: &Background) -> worker::Result<Cluster<R2Store>> {
    let specs = &settings.specs;
    let mut replicas = Vec::with_capacity(specs.len());
    for spec in specs.iter() {
        let store = R2Store::new(env.bucket(&spec.binding)?, background.clone());
        replicas.push(Replica { name: spec.name.clone(), store });
    }
    let health = HEALTH
        .with(|h| h.borrow_mut().get_or_insert_with(|| Rc::new(Health::new(specs.len(), settings.backoff_ms))).clone());
    Ok(Cluster {
        specs: specs.clone(),
        replicas: Rc::new(replicas),
        health,
        switch_cache: SWITCH.with(Rc::clone),
        timer: Rc::new(WorkerTimer),
        now: Rc::new(|| WorkerClock.now_millis()),
        read_timeout_ms: settings.read_timeout_ms,
    })
}

/// The routing switch (this isolate's copy, read again from the home bucket every few
/// seconds) and, with the hooks on, the fault plan (read every time; none if unreadable).
async fn controls(hooks: bool, cluster: &Cluster<R2Store>, meta: &KvIndex) -> (RoutingSwitch, FaultPlan) {
    let faults = if hooks {
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

/// Serves one request with replicas: routed by location, its writes then published.
pub async fn fetch(
    request: Request,
    env: &Env,
    ctx: &Context,
    settings: &Settings,
    replicas: &ReplicationSettings,
    auth: Option<&Auth>,
) -> worker::Result<Response> {
    let background = Background::default();
    let cluster = cluster(env, replicas, &background)?;
    let meta = Rc::new(KvIndex::new(env.kv(META_BINDING)?));
    let (switch, faults) = controls(replicas.test_hooks, &cluster, &meta).await;
    let pin = if replicas.test_hooks { request.headers().get(PIN_HEADER)? } else { None };
    let store =
        cluster.client(&location(&request), &switch, &faults, pin.as_deref()).collector_on(settings.gc.is_some());
    let ids = replica_pinned_ids(&store, Box::new(RandomIds));
    let config = settings.registry.config.clone();
    let registry = Registry::new(store, meta.clone(), Box::new(WorkerClock), Box::new(ids), config);
    let queue = WorkerQueue(env.queue(QUEUE_BINDING)?);
    let admin = Admin {
        cluster: &cluster,
        meta: &*meta,
        queue: &queue,
        hooks: replicas.test_hooks,
        resend_after_ms: replicas.resend_after_ms,
    };
    let http = convert::to_http(request)?;
    let path = http.uri().path().to_owned();
    let response = api::handle_replicated(&registry, auth, Some(&admin), settings.gc, http).await;
    background.hand_to(ctx);
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

/// The queue consumer: applies each message (consulting the collector's states when it is
/// on); a failed copy is retried later, with a delay
/// that grows with the change's age (the queue gives up after its `max_retries`, and the
/// repair job re-sends what is still pending).
pub async fn consume(
    batch: MessageBatch<Message>,
    env: &Env,
    replicas: Option<&ReplicationSettings>,
    collects_garbage: bool,
) -> worker::Result<()> {
    let Some(replicas) = replicas else {
        worker::console_error!("replication messages arrived without REPLICAS set; dropped");
        batch.ack_all();
        return Ok(());
    };
    let cluster = cluster(env, replicas, &Background::default())?; // no request body: nothing outlives it
    let meta = KvIndex::new(env.kv(META_BINDING)?);
    let (switch, faults) = controls(replicas.test_hooks, &cluster, &meta).await;
    // With the collector on, content it is deleting is never copied back.
    let store = cluster.maintenance(&switch, &faults).collector_on(collects_garbage);
    let messages = match batch.messages() {
        Ok(messages) => messages,
        Err(e) => {
            worker::console_error!("unreadable replication batch dropped (the repair job re-sends): {e}");
            batch.ack_all();
            return Ok(());
        }
    };
    let first_retry = replicas.first_retry_seconds;
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

/// The cron jobs with replicas: run over every replica (the upload expiry in each, then
/// the repair across them).
pub async fn scheduled(
    env: &Env,
    settings: &Settings,
    replicas: &ReplicationSettings,
    jobs: &[ScheduledJob],
) -> worker::Result<()> {
    let cluster = cluster(env, replicas, &Background::default())?; // no request body: nothing outlives it
    let meta = Rc::new(KvIndex::new(env.kv(META_BINDING)?));
    let (switch, faults) = controls(replicas.test_hooks, &cluster, &meta).await;
    let registry = Registry::new(
        cluster.maintenance(&switch, &faults),
        meta,
        Box::new(WorkerClock),
        Box::new(RandomIds),
        settings.registry.config.clone(),
    );
    // Without the queue the repair cannot re-send, but the upload expiry still runs.
    let queue = match env.queue(QUEUE_BINDING) {
        Ok(queue) => Some(WorkerQueue(queue)),
        Err(e) => {
            worker::console_error!("the {QUEUE_BINDING} queue binding is missing ({e}): no replication repair");
            None
        }
    };
    let collecting = cluster.collector(&switch, &faults).collector_on(true);
    let replicas = queue.as_ref().map(|queue| Replicas { store: registry.blob_store(), queue });
    run(jobs, &registry, replicas, Some(&collecting)).await;
    Ok(())
}
