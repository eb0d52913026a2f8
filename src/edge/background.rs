//! Work a request leaves running after its answer (`ctx.waitUntil`). Stores built for a
//! request add it here as they start it (the rest of a refused body being read, so that the
//! client gets the answer rather than a reset), and `fetch` hands it to the runtime once the
//! response is ready.

use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen_futures::JsFuture;
use worker::Context;

/// One request's background work; clones share it.
#[derive(Clone, Default)]
pub struct Background(Rc<RefCell<Vec<js_sys::Promise>>>);

impl Background {
    /// Work already running, to be kept alive past the response.
    pub fn add(&self, work: js_sys::Promise) {
        self.0.borrow_mut().push(work);
    }

    /// Hands everything added so far to the runtime.
    pub fn hand_to(&self, ctx: &Context) {
        for work in self.0.borrow_mut().drain(..) {
            ctx.wait_until(async move {
                let _ = JsFuture::from(work).await;
            });
        }
    }
}
