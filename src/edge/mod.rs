//! workers-rs glue (wasm32 only): binds R2 and KV to the storage ports, converts Workers
//! requests and responses to and from the `api` layer, and supplies the clock. It may call
//! everything else; nothing calls it.

mod cache;
mod convert;
mod kv;
pub(crate) mod native;
mod r2;
mod replication;

use crate::api;
use crate::auth::{Auth, AuthConfig, ConfigError};
use crate::registry::{Clock, Config, RandomIds, Registry};
use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

/// R2 bucket binding holding blob bytes, manifests, tags and upload state.
pub const BLOBS_BINDING: &str = "BLOBS";
/// KV namespace binding holding the immutable manifest index.
pub const META_BINDING: &str = "META";

/// Wall-clock time from the JavaScript `Date`.
struct WorkerClock;

impl Clock for WorkerClock {
    fn now_millis(&self) -> u64 {
        worker::Date::now().as_millis()
    }
}

/// Var: the plan's request body limit in MB (100 Free/Pro, 200 Business, 500 Enterprise);
/// 0 or unset for none.
pub const MAX_REQUEST_BODY_MB_VAR: &str = "MAX_REQUEST_BODY_MB";

/// Var: the most references (blobs, child manifests) one manifest may have; default 500,
/// below the 1,000 calls to Cloudflare services one request may make.
pub const MAX_MANIFEST_REFERENCES_VAR: &str = "MAX_MANIFEST_REFERENCES";

fn number_var(env: &Env, name: &str) -> Option<u64> {
    env.var(name).ok().and_then(|v| v.to_string().trim().parse::<u64>().ok())
}

fn config(env: &Env) -> Config {
    let megabytes = number_var(env, MAX_REQUEST_BODY_MB_VAR);
    let references = number_var(env, MAX_MANIFEST_REFERENCES_VAR).filter(|n| *n > 0).map(|n| n as usize);
    Config {
        max_request_bytes: megabytes.filter(|mb| *mb > 0).map(|mb| mb * 1_000_000),
        max_manifest_references: references.unwrap_or(crate::registry::DEFAULT_MAX_MANIFEST_REFERENCES),
        ..Config::default()
    }
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// Var: seconds an upload session may stay idle before the scheduled job discards it.
pub const UPLOAD_EXPIRY_SECONDS_VAR: &str = "UPLOAD_EXPIRY_SECONDS";
const DEFAULT_UPLOAD_EXPIRY_SECONDS: u64 = 24 * 3600;

fn registry(env: &Env) -> worker::Result<Registry<r2::R2Store, kv::KvIndex>> {
    Ok(Registry::new(
        r2::R2Store::new(env.bucket(BLOBS_BINDING)?),
        kv::KvIndex::new(env.kv(META_BINDING)?),
        Box::new(WorkerClock),
        Box::new(RandomIds),
        config(env),
    ))
}

/// The cron trigger: expires abandoned upload sessions (and, with replicas, repairs).
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let seconds = env
        .var(UPLOAD_EXPIRY_SECONDS_VAR)
        .ok()
        .and_then(|v| v.to_string().trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_UPLOAD_EXPIRY_SECONDS);
    match replication::specs(&env) {
        Ok(Some(specs)) => {
            if let Err(e) = replication::scheduled(&env, specs, seconds * 1000).await {
                worker::console_error!("replicated cron job failed: {e}");
            }
            return;
        }
        Ok(None) => {}
        Err(e) => {
            worker::console_error!("REPLICAS is invalid: {e}");
            return;
        }
    }
    match registry(&env) {
        Ok(registry) => match registry.expire_uploads(seconds * 1000).await {
            Ok(r) => worker::console_log!(
                "expired {} upload sessions idle for over {seconds} s ({} failed, left for the next run)",
                r.expired,
                r.failed
            ),
            Err(e) => worker::console_error!("expiring uploads failed: {e}"),
        },
        Err(e) => worker::console_error!("bindings missing: {e}"),
    }
}

/// A var or secret, whichever holds `name`.
fn setting(env: &Env, name: &str) -> Option<String> {
    env.var(name).map(|v| v.to_string()).or_else(|_| env.secret(name).map(|s| s.to_string())).ok()
}

thread_local! {
    static WARNED_OPEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Access control from `AUTH_USERS`, `AUTH_ANONYMOUS`, `AUTH_TOKEN_SECRET`, `AUTH_SERVICE`.
fn access_control(env: &Env) -> Result<Option<Auth>, ConfigError> {
    let config = AuthConfig::from_settings(
        setting(env, "AUTH_USERS").as_deref(),
        setting(env, "AUTH_ANONYMOUS").as_deref(),
        setting(env, "AUTH_TOKEN_SECRET").as_deref(),
        setting(env, "AUTH_SERVICE").as_deref(),
    )?;
    if config.is_none() && !WARNED_OPEN.with(|w| w.replace(true)) {
        worker::console_warn!(
            "edge-registry is running OPEN: anyone who can reach it may push, pull and delete. \
             Set AUTH_USERS / AUTH_ANONYMOUS and AUTH_TOKEN_SECRET (see README, Access control)."
        );
    }
    Ok(config.map(Auth::new))
}

/// The replication queue's consumer.
#[event(queue)]
async fn queue(
    batch: worker::MessageBatch<crate::replication::Message>,
    env: Env,
    _ctx: Context,
) -> worker::Result<()> {
    if let Err(e) = replication::consume(batch, &env).await {
        // Returning an error would fail the whole batch; the markers keep every change.
        worker::console_error!("replication batch failed: {e}");
    }
    Ok(())
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let auth = match access_control(&env) {
        Ok(auth) => auth,
        Err(e) => {
            worker::console_error!("refusing to serve: {e}");
            return Response::error(format!("edge-registry is misconfigured: {e}"), 500);
        }
    };
    match replication::specs(&env) {
        Ok(Some(specs)) => return replication::fetch(request, &env, &ctx, specs, auth.as_ref()).await,
        Ok(None) => {}
        Err(e) => {
            worker::console_error!("refusing to serve: {e}");
            return Response::error(format!("edge-registry is misconfigured: {e}"), 500);
        }
    }
    let registry = registry(&env)?;
    let request = convert::to_http(request)?;
    let path = request.uri().path().to_owned();
    let response = api::handle(&registry, auth.as_ref(), request).await;
    let mut response = convert::to_worker(response)?;
    cache::keep(&ctx, &path, &mut response)?;
    Ok(response)
}
