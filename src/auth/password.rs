//! Password hashes: PBKDF2-HMAC-SHA256 (RFC 8018), salted, with the iteration count in the
//! stored string, compared in constant time. Stored as (no `$`, which shells and .env
//! files would expand)
//! `pbkdf2-sha256:<iterations>:<salt, base64>:<hash, base64>`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest as _, Sha256};

/// Iterations for new hashes: slow enough to make guessing costly, fast enough for a
/// login on Workers (credentials are then exchanged for a token).
pub const DEFAULT_ITERATIONS: u32 = 100_000;
const BLOCK: usize = 64;

/// HMAC-SHA256 (RFC 2104) with the key's pads absorbed once, so each use costs two
/// compressions of the message.
#[derive(Clone)]
pub struct HmacSha256 {
    inner: Sha256,
    outer: Sha256,
}

impl HmacSha256 {
    pub fn new(key: &[u8]) -> Self {
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| -> Vec<u8> { block.iter().map(|b| b ^ byte).collect() };
        let mut inner = Sha256::new();
        inner.update(pad(0x36));
        let mut outer = Sha256::new();
        outer.update(pad(0x5c));
        HmacSha256 { inner, outer }
    }

    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        inner.update(message);
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

/// PBKDF2-HMAC-SHA256 producing 32 bytes (one block).
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let prf = HmacSha256::new(password);
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = prf.mac(&first);
    let mut out = u;
    for _ in 1..iterations {
        u = prf.mac(&u);
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hashes `password` with `salt` for storage.
pub fn hash_password(password: &str, salt: &[u8], iterations: u32) -> String {
    let hash = pbkdf2_sha256(password.as_bytes(), salt, iterations);
    format!("pbkdf2-sha256:{iterations}:{}:{}", B64.encode(salt), B64.encode(hash))
}

/// Why a stored hash could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored password hash is malformed (want pbkdf2-sha256:<iterations>:<salt>:<hash>)")]
pub struct MalformedHash;

/// Checks `password` against a stored hash.
pub fn verify_password(password: &str, stored: &str) -> Result<bool, MalformedHash> {
    let mut parts = stored.split(':');
    let (Some("pbkdf2-sha256"), Some(iterations), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MalformedHash);
    };
    let iterations: u32 = iterations.parse().map_err(|_| MalformedHash)?;
    if iterations == 0 || iterations > 10_000_000 {
        return Err(MalformedHash);
    }
    let salt = B64.decode(salt).map_err(|_| MalformedHash)?;
    let expected = B64.decode(hash).map_err(|_| MalformedHash)?;
    Ok(constant_time_eq(&pbkdf2_sha256(password.as_bytes(), &salt, iterations), &expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::digest::to_hex;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = HmacSha256::new(b"Jefe").mac(b"what do ya want for nothing?");
        assert_eq!(to_hex(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        // Test case 6: a key longer than the block.
        let mac = HmacSha256::new(&[0xaa; 131]).mac(b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(to_hex(&mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn pbkdf2_matches_known_vectors() {
        // RFC 7914 section 11.
        let out = pbkdf2_sha256(b"passwd", b"salt", 1);
        assert_eq!(to_hex(&out), "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc");
        let out = pbkdf2_sha256(b"password", b"salt", 4096);
        assert_eq!(to_hex(&out), "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
    }

    #[test]
    fn stored_hashes_verify_only_the_right_password() {
        let stored = hash_password("s3cret", b"0123456789abcdef", 1000);
        assert_eq!(verify_password("s3cret", &stored), Ok(true));
        assert_eq!(verify_password("s3cret ", &stored), Ok(false));
        assert_eq!(verify_password("", &stored), Ok(false));
        for bad in
            ["", "plain", "pbkdf2-sha256$x$a$b", "pbkdf2-sha256$0$AAAA$AAAA", "md5$1$a$b", &format!("{stored}$x")]
        {
            assert_eq!(verify_password("s3cret", bad), Err(MalformedHash), "{bad}");
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
