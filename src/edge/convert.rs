//! Request and response conversion at the Workers boundary. Blob bodies from R2 pass
//! through as JavaScript streams and are never copied into wasm memory.

use crate::api::Body;
use crate::registry::ByteStream;
use futures::StreamExt;
use worker::{Headers, Request, Response, ResponseBody};

/// A Workers request as an `http::Request` whose body streams chunk by chunk.
pub fn to_http(mut request: Request) -> worker::Result<http::Request<ByteStream>> {
    let url = request.url()?;
    let path_and_query = match url.query() {
        Some(q) => format!("{}?{}", url.path(), q),
        None => url.path().to_owned(),
    };
    let method = http::Method::from_bytes(request.inner().method().as_bytes())
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    let mut builder = http::Request::builder().method(method).uri(path_and_query);
    for (name, value) in request.headers().entries() {
        builder = builder.header(name, value);
    }
    // A request without a body has no stream: treat it as empty.
    let body: ByteStream = match request.stream() {
        Ok(stream) => stream.map(|chunk| chunk.map_err(|e| e.to_string())).boxed_local(),
        Err(_) => futures::stream::empty().boxed_local(),
    };
    builder.body(body).map_err(|e| worker::Error::RustError(e.to_string()))
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
