//! Hashing R2 objects without their bytes entering wasm: the runtime's
//! `crypto.DigestStream` reads the R2 stream directly. And PBKDF2 for password checks in
//! the runtime's WebCrypto, which costs far less CPU than the same loop in wasm.

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

#[wasm_bindgen(inline_js = r#"
export async function pbkdf2_sha256_bits(password, salt, iterations) {
  // Copies first: the views point into wasm memory, which may move while we await.
  password = password.slice();
  salt = salt.slice();
  const key = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
  const params = { name: "PBKDF2", hash: "SHA-256", salt, iterations };
  return new Uint8Array(await crypto.subtle.deriveBits(params, key, 256));
}
"#)]
extern "C" {
    /// A promise of 32 bytes of PBKDF2-HMAC-SHA256, by the runtime's WebCrypto.
    fn pbkdf2_sha256_bits(password: &[u8], salt: &[u8], iterations: u32) -> js_sys::Promise;
}

/// PBKDF2-HMAC-SHA256 (32 bytes) in the runtime's native WebCrypto, which is far cheaper
/// in CPU than the same loop in wasm. workerd refuses more than 100,000 iterations.
pub async fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> Result<Vec<u8>, JsValue> {
    let bits = JsFuture::from(pbkdf2_sha256_bits(password, salt, iterations)).await?;
    Ok(js_sys::Uint8Array::new(&bits).to_vec())
}
