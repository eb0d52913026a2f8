//! A request in flight whose body a test feeds by hand, polled only when the test says:
//! the means to drive two requests for one session step by step.

use super::{answer, request, Answer, TestRegistry};
use edge_registry::api;
use edge_registry::registry::RequestBody;
use futures::channel::mpsc;
use futures::future::LocalBoxFuture;
use futures::{FutureExt, StreamExt};
use std::task::{Context, Poll};

/// A request in flight whose body the test feeds piece by piece.
pub struct InFlight<'a> {
    future: LocalBoxFuture<'a, Answer>,
    feed: Option<mpsc::UnboundedSender<Result<Vec<u8>, String>>>,
}

impl<'a> InFlight<'a> {
    /// Starts a request; `length` is its `Content-Length`, if it declares one.
    pub fn start(
        reg: &'a TestRegistry,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        length: Option<u64>,
    ) -> Self {
        let (feed, body) = mpsc::unbounded();
        Self::begin(reg, method, uri, headers, RequestBody::stream(body.boxed_local(), length), feed)
    }

    /// Starts a request whose body the store may take natively, without `Content-Length`
    /// (docker's PATCH): the store's cutter reads it.
    pub fn start_chunked(reg: &'a TestRegistry, method: &str, uri: &str) -> Self {
        let (feed, body) = mpsc::unbounded();
        Self::begin(reg, method, uri, &[], RequestBody::native(body.boxed_local(), None, |s| s), feed)
    }

    fn begin(
        reg: &'a TestRegistry,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: RequestBody<edge_registry::storage::ByteStream>,
        feed: mpsc::UnboundedSender<Result<Vec<u8>, String>>,
    ) -> Self {
        let request = request(method, uri, headers, body);
        let future = api::handle(reg, None, request).map(answer).boxed_local();
        let mut flight = InFlight { future, feed: Some(feed) };
        assert!(flight.poll().is_none(), "the request waits for its body");
        flight
    }

    /// Sends `bytes` and lets the request run until it waits for more.
    pub fn send(&mut self, bytes: &[u8]) -> Option<Answer> {
        self.feed.as_ref().unwrap().unbounded_send(Ok(bytes.to_vec())).unwrap();
        self.poll()
    }

    /// Ends the body (cleanly, or broken) and runs the request to its answer.
    pub fn finish(mut self, broken: bool) -> Answer {
        let feed = self.feed.take().unwrap();
        if broken {
            feed.unbounded_send(Err("connection reset".into())).unwrap();
        }
        drop(feed);
        self.poll().expect("the request answers once its body ended")
    }

    fn poll(&mut self) -> Option<Answer> {
        match self.future.poll_unpin(&mut Context::from_waker(futures::task::noop_waker_ref())) {
            Poll::Ready(answer) => Some(answer),
            Poll::Pending => None,
        }
    }
}
