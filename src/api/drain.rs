//! Reading what is left of a request body after the handler is done with it.

use crate::registry::ByteStream;
use futures::{Stream, StreamExt};
use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Unread bytes beyond this are abandoned rather than read (the peer may then see a reset).
pub const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// A request body shared between the handler and [`Shared::drain`].
pub struct Shared(Rc<RefCell<ByteStream>>);

impl Shared {
    pub fn new(body: ByteStream) -> Self {
        Shared(Rc::new(RefCell::new(body)))
    }

    /// A stream for the handler that reads from the shared body.
    pub fn handle(&self) -> ByteStream {
        Handle(self.0.clone()).boxed_local()
    }

    /// Reads and discards what the handler left, up to `limit` bytes.
    pub async fn drain(self, limit: u64) {
        let mut seen = 0u64;
        let mut body = Handle(self.0);
        while let Some(Ok(chunk)) = body.next().await {
            seen += chunk.len() as u64;
            if seen > limit {
                return;
            }
        }
    }
}

struct Handle(Rc<RefCell<ByteStream>>);

impl Stream for Handle {
    type Item = Result<Vec<u8>, String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Only one of handler and drain polls at a time, so the borrow never conflicts.
        self.0.borrow_mut().as_mut().poll_next(cx)
    }
}
