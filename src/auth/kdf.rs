//! The slow part of a password check, PBKDF2-HMAC-SHA256, done where it is cheapest. On
//! Workers (wasm32) that is the runtime's WebCrypto (`crypto.subtle.deriveBits`, native
//! code), measured at under a third of the CPU of the same derivation in wasm; WebCrypto
//! takes at most 100,000 iterations, so bigger counts, or a runtime without it, fall back
//! to RustCrypto's `pbkdf2` in wasm. Natively it is always `pbkdf2`.

use super::password::{self, MalformedHash, StoredHash};

/// PBKDF2-HMAC-SHA256 producing 32 bytes.
pub async fn pbkdf2_sha256(secret: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    #[cfg(target_arch = "wasm32")]
    if iterations <= password::DEFAULT_ITERATIONS {
        if let Ok(derived) = webcrypto::pbkdf2_sha256(secret, salt, iterations).await {
            if let Ok(derived) = <[u8; 32]>::try_from(derived.as_slice()) {
                return derived;
            }
        }
    }
    password::pbkdf2_sha256(secret, salt, iterations)
}

/// Checks `secret` against a stored hash (see `password::verify_password`).
pub async fn verify_password(secret: &str, stored: &str) -> Result<bool, MalformedHash> {
    let stored = StoredHash::parse(stored)?;
    Ok(stored.matches(&pbkdf2_sha256(secret.as_bytes(), &stored.salt, stored.iterations).await))
}

/// The runtime's WebCrypto, reached through a small JavaScript function (wasm32 only).
#[cfg(target_arch = "wasm32")]
mod webcrypto {
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsValue;
    use wasm_bindgen_futures::JsFuture;

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn agrees_with_the_synchronous_check() {
        let stored = password::hash_password("s3cret", b"0123456789abcdef", 1000);
        assert_eq!(block_on(verify_password("s3cret", &stored)), Ok(true));
        assert_eq!(block_on(verify_password("s3cre", &stored)), Ok(false));
        assert_eq!(block_on(verify_password("s3cret", "x")), Err(MalformedHash));
        assert_eq!(block_on(pbkdf2_sha256(b"passwd", b"salt", 1)), password::pbkdf2_sha256(b"passwd", b"salt", 1));
    }
}
