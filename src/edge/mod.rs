//! workers-rs glue (wasm32 only): binds R2 and KV to the storage ports, converts Workers
//! requests and responses to and from the `api` layer, and supplies the clock. It may call
//! everything else; nothing calls it.

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

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let registry = Registry::new(
        r2::R2Store::new(env.bucket(BLOBS_BINDING)?),
        kv::KvIndex::new(env.kv(META_BINDING)?),
        Box::new(WorkerClock),
        Box::new(RandomIds),
        Config::default(),
    );
    let request = convert::to_http(request)?;
    let response = api::handle(&registry, request).await;
    convert::to_worker(response)
}
