//! Building responses: the body type shared with the edge glue, and the headers every
//! response carries.

use super::error::ApiError;
use http::{HeaderValue, Response, StatusCode};

/// A response body: nothing, bytes built in wasm, or a storage stream passed through.
pub enum Body<S> {
    Empty,
    Bytes(Vec<u8>),
    Stream(S),
}

impl<S> std::fmt::Debug for Body<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Body::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

/// Sent on every response, as clients of the Docker registry API expect.
pub const API_VERSION_HEADER: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// A response under construction.
pub struct Reply<S> {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: Body<S>,
}

impl<S> Reply<S> {
    pub fn new(status: StatusCode) -> Self {
        Reply { status, headers: Vec::new(), body: Body::Empty }
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn json(self, value: &serde_json::Value) -> Self {
        let bytes = serde_json::to_vec(value).expect("JSON values always serialise");
        self.bytes("application/json", bytes)
    }

    pub fn bytes(mut self, content_type: &str, bytes: Vec<u8>) -> Self {
        self.headers.push(("content-type", content_type.to_owned()));
        self.headers.push(("content-length", bytes.len().to_string()));
        self.body = Body::Bytes(bytes);
        self
    }

    pub fn body(mut self, body: Body<S>) -> Self {
        self.body = body;
        self
    }

    pub fn into_response(self) -> Response<Body<S>> {
        let mut response = Response::new(self.body);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(API_VERSION_HEADER.0, HeaderValue::from_static(API_VERSION_HEADER.1));
        for (name, value) in self.headers {
            // Values come from validated names and digests; anything unprintable is dropped
            // rather than allowed to break the response.
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.append(name, v);
            }
        }
        response
    }
}

impl<S> From<ApiError> for Reply<S> {
    fn from(e: ApiError) -> Self {
        let body = e.body();
        let mut reply = Reply::new(e.status);
        for (name, value) in &e.headers {
            reply = reply.header(name, value.clone());
        }
        reply.bytes("application/json", body)
    }
}
