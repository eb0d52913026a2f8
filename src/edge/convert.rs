//! Request and response conversion at the Workers boundary. Blob bodies from R2 pass
//! through as JavaScript streams and are never copied into wasm memory.

use crate::api::Body;
use crate::registry::{ByteStream, RequestBody};
use futures::StreamExt;
use web_sys::ReadableStream;
use worker::{Headers, Request, Response, ResponseBody};

/// A Workers request as an `http::Request`. The body stays a JavaScript stream that the
/// store can take natively, and becomes a chunk stream through wasm only if read so.
pub fn to_http(request: Request) -> worker::Result<http::Request<RequestBody<ReadableStream>>> {
    let url = request.url()?;
    // The absolute URL, so challenges can name this origin's token endpoint.
    let path_and_query = url.as_str().to_owned();
    let method = http::Method::from_bytes(request.inner().method().as_bytes())
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    let mut builder = http::Request::builder().method(method).uri(path_and_query);
    for (name, value) in request.headers().entries() {
        builder = builder.header(name, value);
    }
    let length = request.headers().get("content-length").ok().flatten().and_then(|l| l.trim().parse::<u64>().ok());
    // A request without a body has no stream: treat it as empty.
    let body = match request.inner().body() {
        Some(stream) => RequestBody::native(stream, length, through_wasm),
        None => RequestBody::stream(futures::stream::empty().boxed_local(), Some(0)),
    };
    builder.body(body).map_err(|e| worker::Error::RustError(e.to_string()))
}

/// Reads a JavaScript body chunk by chunk into wasm.
fn through_wasm(stream: ReadableStream) -> ByteStream {
    worker::ByteStream::from(stream).map(|chunk| chunk.map_err(|e| e.to_string())).boxed_local()
}

/// An `api` response as a Workers response.
pub fn to_worker(response: http::Response<Body<ResponseBody>>) -> worker::Result<Response> {
    let (parts, body) = response.into_parts();
    let headers = Headers::new();
    for (name, value) in parts.headers.iter() {
        if let Ok(value) = value.to_str() {
            headers.append(name.as_str(), value)?;
        }
    }
    let body = match body {
        Body::Empty => ResponseBody::Empty,
        Body::Bytes(bytes) => ResponseBody::Body(bytes),
        Body::Stream(stream) => stream,
    };
    Ok(Response::from_body(body)?.with_status(parts.status.as_u16()).with_headers(headers))
}
