//! Password hashes: PBKDF2-HMAC-SHA256 (RFC 8018), salted, with the iteration count in the
//! stored string, compared in constant time. Stored as (no `$`, which shells and .env
//! files would expand)
//! `pbkdf2-sha256:<iterations>:<salt, base64>:<hash, base64>`.
//!
//! No primitive is written here: HMAC is RustCrypto's `hmac`, PBKDF2 its `pbkdf2` (both on
//! the `digest` 0.11 that `sha2` 0.11 implements), and equality of secrets is `subtle`'s
//! constant-time comparison.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// Iterations for new hashes: slow enough to make guessing costly, fast enough for a
/// login on Workers (credentials are then exchanged for a token). Also the most that
/// workerd's WebCrypto PBKDF2 accepts.
pub const DEFAULT_ITERATIONS: u32 = 100_000;
/// Stored hashes with more iterations than this are refused as malformed.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length (longer ones are hashed first): this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA256 producing 32 bytes (one block).
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations)
}

/// Equality that takes the same time wherever the inputs differ (lengths are not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
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

/// A parsed stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHash {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
}

impl StoredHash {
    pub fn parse(stored: &str) -> Result<Self, MalformedHash> {
        let mut parts = stored.split(':');
        let (Some("pbkdf2-sha256"), Some(iterations), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MalformedHash);
        };
        let iterations: u32 = iterations.parse().map_err(|_| MalformedHash)?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(MalformedHash);
        }
        let salt = B64.decode(salt).map_err(|_| MalformedHash)?;
        let hash = B64.decode(hash).map_err(|_| MalformedHash)?;
        Ok(StoredHash { iterations, salt, hash })
    }

    /// Whether `derived` (PBKDF2 of a candidate password with this salt and count) matches.
    pub fn matches(&self, derived: &[u8]) -> bool {
        constant_time_eq(derived, &self.hash)
    }
}

/// Checks `password` against a stored hash.
pub fn verify_password(password: &str, stored: &str) -> Result<bool, MalformedHash> {
    let stored = StoredHash::parse(stored)?;
    Ok(stored.matches(&pbkdf2_sha256(password.as_bytes(), &stored.salt, stored.iterations)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::digest::to_hex;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(to_hex(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
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
            ["", "plain", "pbkdf2-sha256$x$a$b", "pbkdf2-sha256:0:AAAA:AAAA", "md5:1:a:b", &format!("{stored}:x")]
        {
            assert_eq!(verify_password("s3cret", bad), Err(MalformedHash), "{bad}");
        }
        assert_eq!(verify_password("s3cret", "pbkdf2-sha256:10000001:AAAA:AAAA"), Err(MalformedHash));
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
