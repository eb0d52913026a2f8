//! workers-rs glue (wasm32 only): binds R2 and KV to the storage ports, converts Workers
//! requests and responses to and from the `api` layer, and supplies the clock. It may call
//! everything else; nothing calls it.

mod cache;
mod convert;
mod kv;
mod native;
mod r2;

use crate::api;
use crate::registry::{Clock, Config, RandomIds, Registry};
use worker::{event, Context, Env, Request, Response};

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

fn config(env: &Env) -> Config {
    let megabytes = env.var(MAX_REQUEST_BODY_MB_VAR).ok().and_then(|v| v.to_string().trim().parse::<u64>().ok());
    Config { max_request_bytes: megabytes.filter(|mb| *mb > 0).map(|mb| mb * 1_000_000), ..Config::default() }
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let registry = Registry::new(
        r2::R2Store::new(env.bucket(BLOBS_BINDING)?),
        kv::KvIndex::new(env.kv(META_BINDING)?),
        Box::new(WorkerClock),
        Box::new(RandomIds),
        config(&env),
    );
    let request = convert::to_http(request)?;
    let path = request.uri().path().to_owned();
    let response = api::handle(&registry, request).await;
    let mut response = convert::to_worker(response)?;
    cache::keep(&ctx, &path, &mut response)?;
    Ok(response)
}
