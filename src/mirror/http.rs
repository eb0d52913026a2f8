//! The port to upstream registries: one HTTP exchange. On Workers it is `fetch` with a
//! timeout (`edge`); natively [`super::fake::FakeUpstream`], an in-memory registry.
//!
//! `N` is the blob store's native body type, so that an upstream blob's body can be put
//! into R2 as it arrives, without passing through wasm.

use crate::oci::{Algorithm, Digest};
use futures::future::LocalBoxFuture;

/// A request to an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    pub method: http::Method,
    pub url: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
}

impl UpstreamRequest {
    pub fn new(method: http::Method, url: impl Into<String>) -> Self {
        UpstreamRequest { method, url: url.into(), headers: Vec::new() }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
}

/// An upstream's answer; header names in lower case.
pub struct UpstreamResponse<N> {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// `None` for an answer without a body (a `HEAD`).
    pub body: Option<N>,
}

impl<N> UpstreamResponse<N> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends requests upstream. An `Err` is a failure to get any answer (the network, a
/// timeout): the text says which, and never contains credentials.
pub trait UpstreamHttp<N> {
    fn send(&self, request: UpstreamRequest) -> LocalBoxFuture<'_, Result<UpstreamResponse<N>, String>>;
    /// Reads a small body whole, failing past `limit` bytes.
    fn read_body(&self, body: N, limit: usize) -> LocalBoxFuture<'_, Result<Vec<u8>, String>>;
    /// Waits `ms` milliseconds (the cache's one timer: a request waiting for another's fill).
    fn pause(&self, ms: u64) -> LocalBoxFuture<'_, ()>;
    /// The digest of a body (on Workers hashed by the runtime, never in wasm).
    fn digest_body(&self, body: N, algorithm: Algorithm) -> LocalBoxFuture<'_, Result<Digest, String>>;
}
