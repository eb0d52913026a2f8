//! The request body's slot: handed to the one handler step that reads it, and afterwards
//! drained of whatever that step left unread. A request refused before its body was read
//! still has bytes in flight; answering without reading them makes some HTTP/1.1 peers
//! (workerd's dev proxy among them) reset the connection and report a 503 instead.

use crate::registry::{ByteStream, RequestBody};
use futures::{Stream, StreamExt};
use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Unread bytes beyond this are abandoned rather than read (the peer may then see a reset).
pub const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

struct Slot<N> {
    /// The body until a handler takes it.
    unread: Option<RequestBody<N>>,
    /// The stream a taken body became, if it was read through wasm.
    stream: Option<ByteStream>,
}

/// The request body, shared between the handler step that takes it and the drain that
/// afterwards reads what the step left: clones share one `Slot`.
pub struct DrainableBody<N>(Rc<RefCell<Slot<N>>>);

impl<N> Clone for DrainableBody<N> {
    fn clone(&self) -> Self {
        DrainableBody(self.0.clone())
    }
}

impl<N: 'static> DrainableBody<N> {
    pub fn new(body: RequestBody<N>) -> Self {
        DrainableBody(Rc::new(RefCell::new(Slot { unread: Some(body), stream: None })))
    }
}

impl<N> DrainableBody<N> {
    /// The body, whose stream (if it is read through wasm) stays reachable for draining.
    /// A second take gets an empty body.
    pub fn take(&self) -> RequestBody<N>
    where
        N: 'static,
    {
        let taken = self.0.borrow_mut().unread.take();
        let Some(body) = taken else {
            return RequestBody::stream(futures::stream::empty().boxed_local(), Some(0));
        };
        let slot = self.0.clone();
        body.map_stream(move |stream| {
            slot.borrow_mut().stream = Some(stream);
            SlotReader(slot).boxed_local()
        })
    }

    /// Reads and discards what is left, up to `limit` bytes.
    pub async fn drain(self, limit: u64)
    where
        N: 'static,
    {
        let untouched = self.0.borrow_mut().unread.take();
        if let Some(body) = untouched {
            self.0.borrow_mut().stream = Some(body.into_stream());
        }
        let mut seen = 0u64;
        let mut rest = SlotReader(self.0);
        while let Some(Ok(chunk)) = rest.next().await {
            seen += chunk.len() as u64;
            if seen > limit {
                return;
            }
        }
    }
}

/// A stream that reads from the stream kept in the slot, so that the handler and the drain
/// read the same body one after the other.
struct SlotReader<N>(Rc<RefCell<Slot<N>>>);

impl<N> Stream for SlotReader<N> {
    type Item = Result<Vec<u8>, String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Only one of handler and drain polls at a time, so the borrow never conflicts.
        match self.0.borrow_mut().stream.as_mut() {
            Some(stream) => stream.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

/// Why a body could not be read whole.
pub enum ReadError {
    /// It is longer than the limit; reading stopped there.
    TooLarge,
    /// The client stream broke.
    Broke(String),
}

/// Reads a body of at most `limit` bytes, stopping as soon as it crosses the limit.
pub async fn read_limited(mut body: ByteStream, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(ReadError::Broke)?;
        if bytes.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
