//! Hashing R2 objects without their bytes entering wasm: the runtime's
//! `crypto.DigestStream` reads the R2 stream directly.

use crate::oci::Algorithm;
use wasm_bindgen::prelude::*;
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

/// The raw digest of a stream, computed by the runtime.
pub async fn digest_of_stream(stream: ReadableStream, algorithm: Algorithm) -> Result<Vec<u8>, JsValue> {
    let name = match algorithm {
        Algorithm::Sha256 => "SHA-256",
        Algorithm::Sha512 => "SHA-512",
    };
    let bytes = JsFuture::from(digest_stream(stream, name)).await?;
    Ok(js_sys::Uint8Array::new(&bytes).to_vec())
}
