//! The pull-through cache's port to upstream registries on Workers: `fetch`, with the
//! request abandoned (and aborted) when the answer's headers take longer than
//! `UPSTREAM_TIMEOUT_SECONDS`; redirects are handed back (the mirror follows them without
//! `Authorization`). A body is handed on as the JavaScript stream it is, so an
//! upstream blob streams into R2 without passing through wasm.

use super::native::{digest_from_raw, digest_of_stream};
use crate::mirror::auth::TokenCache;
use crate::mirror::http::{UpstreamHttp, UpstreamRequest, UpstreamResponse};
use crate::mirror::{Mirror, MirrorConfig};
use crate::oci::{Algorithm, Digest};
use futures::future::{select, Either, LocalBoxFuture};
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::ReadableStream;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect, ResponseBody};

thread_local! {
    /// Upstream tokens live as long as the isolate: one login serves many pulls.
    static TOKENS: Rc<TokenCache> = Rc::new(TokenCache::default());
}

/// The mirror over `fetch`, with this isolate's tokens.
pub fn mirror(config: &MirrorConfig) -> Mirror<ReadableStream> {
    let http = FetchUpstream { timeout_ms: config.timeout_ms };
    Mirror::new(config.clone(), Box::new(http), TOKENS.with(Rc::clone))
}

struct FetchUpstream {
    timeout_ms: u64,
}

impl FetchUpstream {
    async fn exchange(&self, request: UpstreamRequest) -> Result<UpstreamResponse<ReadableStream>, String> {
        let headers = Headers::new();
        for (name, value) in &request.headers {
            headers.set(name, value).map_err(|e| format!("header {name}: {e}"))?;
        }
        let method = if request.method == http::Method::HEAD { Method::Head } else { Method::Get };
        let mut init = RequestInit::new();
        // Redirects come back to the mirror, which follows them without `Authorization`.
        init.with_method(method).with_headers(headers).with_redirect(RequestRedirect::Manual);
        let outgoing = Request::new_with_init(&request.url, &init).map_err(|e| e.to_string())?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(outgoing);
        let sent = Box::pin(fetch.send_with_signal(&signal));
        let timeout = Delay::from(Duration::from_millis(self.timeout_ms));
        let mut response = match select(sent, timeout).await {
            Either::Left((answer, _)) => answer.map_err(|e| e.to_string())?,
            Either::Right(_) => {
                controller.abort();
                return Err(format!("no answer within {} ms (UPSTREAM_TIMEOUT_SECONDS)", self.timeout_ms));
            }
        };
        let status = response.status_code();
        let headers = response.headers_mut().entries().map(|(n, v)| (n.to_ascii_lowercase(), v)).collect();
        let (_, body) = response.into_parts();
        let body = match body {
            ResponseBody::Stream(stream) => Some(stream),
            ResponseBody::Empty | ResponseBody::Body(_) => None,
        };
        Ok(UpstreamResponse { status, headers, body })
    }
}

impl UpstreamHttp<ReadableStream> for FetchUpstream {
    fn send(&self, request: UpstreamRequest) -> LocalBoxFuture<'_, Result<UpstreamResponse<ReadableStream>, String>> {
        Box::pin(self.exchange(request))
    }

    fn read_body(&self, body: ReadableStream, limit: usize) -> LocalBoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(read_limited(body, limit))
    }

    fn pause(&self, ms: u64) -> LocalBoxFuture<'_, ()> {
        Box::pin(Delay::from(Duration::from_millis(ms)))
    }

    fn digest_body(&self, body: ReadableStream, algorithm: Algorithm) -> LocalBoxFuture<'_, Result<Digest, String>> {
        Box::pin(async move {
            let raw = digest_of_stream(body, algorithm).await.map_err(|e| format!("{e:?}"))?;
            digest_from_raw(algorithm, &raw).ok_or_else(|| "the runtime's digest has the wrong length".to_owned())
        })
    }
}

/// Reads a stream chunk by chunk, cancelling it once past `limit` bytes: an upstream's
/// oversized answer never fills the isolate's memory.
async fn read_limited(body: ReadableStream, limit: usize) -> Result<Vec<u8>, String> {
    let reader: web_sys::ReadableStreamDefaultReader =
        body.get_reader().dyn_into().map_err(|_| "the body cannot be read".to_owned())?;
    let mut bytes = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| format!("the body broke off: {e:?}"))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true);
        if done {
            return Ok(bytes);
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into()).map_err(|_| "the body broke off".to_owned())?;
        bytes.extend(js_sys::Uint8Array::new(&value).to_vec());
        if bytes.len() > limit {
            let _ = reader.cancel();
            return Err(format!("over {limit} bytes"));
        }
    }
}
