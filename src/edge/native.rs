//! Work handed to the runtime so that bytes never enter wasm, or cost less CPU there:
//! hashing an R2 object (`crypto.DigestStream` reads the R2 stream directly), counting a
//! request body on its way into R2 (so that a failed put can be told apart as the
//! client's, its body ended early, or R2's). (PBKDF2 in WebCrypto, for password checks,
//! lives with the rest of the password check in `auth::kdf`.)

use crate::oci::Algorithm;
use crate::storage::put_failure::BodyReport;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::ReadableStream;

#[wasm_bindgen(inline_js = r#"
export async function digest_stream(stream, algorithm) {
  const digest = new crypto.DigestStream(algorithm);
  await stream.pipeTo(digest);
  return new Uint8Array(await digest.digest);
}
"#)]
extern "C" {
    /// A promise of the digest (bytes) of everything `stream` yields.
    fn digest_stream(stream: ReadableStream, algorithm: &str) -> js_sys::Promise;
}

#[wasm_bindgen(inline_js = r#"
export function tracked_body(source, length) {
  const report = { delivered: 0, ended: false, broke: null };
  const reader = source.getReader();
  const counted = new ReadableStream({
    async pull(controller) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        report.broke = String((e && e.message) || e);
        controller.error(e);
        return;
      }
      if (chunk.done) {
        report.ended = true;
        controller.close();
        return;
      }
      report.delivered += chunk.value.byteLength;
      controller.enqueue(chunk.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  const fixed = new FixedLengthStream(length);
  counted.pipeTo(fixed.writable).catch(() => {});
  return [fixed.readable, report];
}
"#)]
extern "C" {
    /// `[stream, report]`: `source` passed through a counter into a `FixedLengthStream` of
    /// `length` bytes (R2 needs a known length, and refuses a body that ends short).
    fn tracked_body(source: ReadableStream, length: f64) -> js_sys::Array;
}

/// A request body on its way into R2, counted by the runtime.
pub struct TrackedBody {
    pub stream: ReadableStream,
    report: JsValue,
}

impl TrackedBody {
    pub fn new(source: ReadableStream, length: u64) -> Self {
        let pair = tracked_body(source, length as f64);
        TrackedBody { stream: pair.get(0).unchecked_into(), report: pair.get(1) }
    }

    /// What the client's stream did so far.
    pub fn report(&self) -> BodyReport {
        let field = |name: &str| js_sys::Reflect::get(&self.report, &JsValue::from_str(name)).unwrap_or(JsValue::NULL);
        BodyReport {
            delivered: field("delivered").as_f64().unwrap_or(0.0) as u64,
            ended: field("ended").as_bool().unwrap_or(false),
            broke: field("broke").as_string(),
        }
    }
}

/// The raw digest of a stream, computed by the runtime.
pub async fn digest_of_stream(stream: ReadableStream, algorithm: Algorithm) -> Result<Vec<u8>, JsValue> {
    let name = match algorithm {
        Algorithm::Sha256 => "SHA-256",
        Algorithm::Sha512 => "SHA-512",
    };
    let bytes = JsFuture::from(digest_stream(stream, name)).await?;
    Ok(js_sys::Uint8Array::new(&bytes).to_vec())
}
