//! Request bodies that never enter wasm: a JavaScript pipe that hashes a body with the
//! runtime's `crypto.DigestStream` while it flows to R2 through a `FixedLengthStream`
//! (R2 only accepts streams of known length).

use wasm_bindgen::prelude::*;
use web_sys::ReadableStream;

#[wasm_bindgen(inline_js = r#"
export function hashing_pipe(body, algorithm, length) {
  const digest = new crypto.DigestStream(algorithm);
  const writer = digest.getWriter();
  const hashed = body.pipeThrough(new TransformStream({
    async transform(chunk, controller) {
      await writer.write(chunk);
      controller.enqueue(chunk);
    },
    async flush() {
      await writer.close();
    },
  }));
  const fixed = hashed.pipeThrough(new FixedLengthStream(length));
  return [fixed, digest.digest];
}
"#)]
extern "C" {
    /// Returns `[stream, digestPromise]`: the body to store, and a promise of its digest
    /// (an ArrayBuffer) that settles once the stream has been read to the end.
    fn hashing_pipe(body: ReadableStream, algorithm: &str, length: f64) -> js_sys::Array;
}

/// A body to hand to R2, and the pending digest of what flows through it.
pub struct HashingPipe {
    pub stream: ReadableStream,
    pub digest: js_sys::Promise,
}

pub fn hash_on_the_way(body: ReadableStream, algorithm: &str, length: u64) -> HashingPipe {
    let parts = hashing_pipe(body, algorithm, length as f64);
    HashingPipe { stream: parts.get(0).unchecked_into(), digest: parts.get(1).unchecked_into() }
}
