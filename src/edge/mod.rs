//! workers-rs glue (wasm32 only): binds R2 and KV to the storage ports, converts Workers
//! requests and responses to and from the `api` layer, and supplies the clock. It may call
//! everything else; nothing calls it. It alone reads the environment: the settings once per
//! isolate ([`settings`]), the bindings per event.

mod background;
mod cache;
mod convert;
mod kv;
pub(crate) mod native;
mod r2;
mod replication;
mod scheduled;
mod settings;
mod upstream;

use crate::api;
use crate::registry::{Clock, RandomIds, Registry};
use crate::settings::RegistrySettings;
use background::Background;
use worker::{event, Context, Env, Request, Response};

/// R2 bucket binding holding blob bytes, manifests, tags and upload state.
pub const BLOBS_BINDING: &str = "BLOBS";
/// KV namespace binding holding the immutable manifest index (with replicas, also the
/// fallback copies of the routing switch and fault plan, whose truth is in the home bucket).
pub const META_BINDING: &str = "META";

/// Wall-clock time from the JavaScript `Date`.
struct WorkerClock;

impl Clock for WorkerClock {
    fn now_millis(&self) -> u64 {
        worker::Date::now().as_millis()
    }
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The registry over the one bucket, `BLOBS`.
fn registry(
    env: &Env,
    settings: &RegistrySettings,
    background: &Background,
) -> worker::Result<Registry<r2::R2Store, kv::KvIndex>> {
    Ok(Registry::new(
        r2::R2Store::new(env.bucket(BLOBS_BINDING)?, background.clone()),
        kv::KvIndex::new(env.kv(META_BINDING)?),
        Box::new(WorkerClock),
        Box::new(RandomIds),
        settings.config.clone(),
    ))
}

/// The replication queue's consumer.
#[event(queue)]
async fn queue(
    batch: worker::MessageBatch<crate::replication::Message>,
    env: Env,
    _ctx: Context,
) -> worker::Result<()> {
    let configured = match settings::configured(&env) {
        Ok(configured) => configured,
        Err(e) => {
            // Kept for the queue's retries (and, after them, the repair job's re-send).
            worker::console_error!("replication batch left for a retry: edge-registry is misconfigured: {e}");
            batch.retry_all();
            return Ok(());
        }
    };
    if let Err(e) =
        replication::consume(batch, &env, configured.settings.replication.as_ref(), configured.settings.gc.is_some())
            .await
    {
        // Returning an error would fail the whole batch; the markers keep every change.
        worker::console_error!("replication batch failed: {e}");
    }
    Ok(())
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let configured = match settings::configured(&env) {
        Ok(configured) => configured,
        Err(e) => return settings::misconfigured(&e),
    };
    let (settings, auth) = (&configured.settings, configured.auth.as_ref());
    if let Some(replicas) = &settings.replication {
        return replication::fetch(request, &env, &ctx, settings, replicas, auth).await;
    }
    let background = Background::default();
    let registry = registry(&env, &settings.registry, &background)?;
    let request = convert::to_http(request)?;
    let path = request.uri().path().to_owned();
    let mirror = settings.mirror.as_ref().map(upstream::mirror);
    let tokens = crate::auth::BlobTokenStore::new(registry.blob_store());
    let services = api::Services::<_, _, _, api::admin::NoReplication> {
        registry: &registry,
        auth,
        tokens: &tokens,
        replication: None,
        gc: settings.gc,
        retention: settings.retention.as_ref(),
        usage: settings.usage,
        mirror: mirror.as_ref(),
    };
    let response = api::serve(services, request).await;
    background.hand_to(&ctx);
    let mut response = convert::to_worker(response)?;
    cache::keep(&ctx, &path, &mut response)?;
    Ok(response)
}
