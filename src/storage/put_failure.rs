//! Whose fault a failed streamed put is: the client's (its bytes do not hash to the digest
//! it named, or its body ended before the length it declared) or the storage backend's
//! (anything else). The R2 adapter decides with [`classify_put_failure`], from facts that
//! do not depend on how an error happens to be worded, so that an R2 outage is never
//! answered as a client mistake (4xx: clients give up) but as a backend failure (503:
//! clients retry, and replication marks the replica unhealthy).

use super::{NativePut, StorageError, StorageResult};

/// R2's error code for a put whose bytes do not match the checksum sent with it
/// (`BadDigest`, <https://developers.cloudflare.com/r2/api/error-codes/>). workerd throws
/// every R2 failure as `Error("<action>: <message> (<code>)")` (`R2Result::throwIfError` in
/// `src/workerd/api/r2-rpc.c++`), and the local simulator uses the same code for the same
/// case, so the code, not the wording, is what is matched.
pub const R2_BAD_DIGEST: u32 = 10037;

/// What the request body did while the put read it, counted between the client's stream
/// and the store (on Workers, by a JavaScript stream in between; bytes do not enter wasm).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyReport {
    /// Bytes the client's stream yielded.
    pub delivered: u64,
    /// The client's stream ended (no more bytes), as opposed to being cut off by the store.
    pub ended: bool,
    /// The client's stream failed with this error (a reset connection).
    pub broke: Option<String>,
}

/// The R2 error code at the end of a workerd R2 error message, `... (10037)`.
pub fn r2_code(message: &str) -> Option<u32> {
    let inner = message.trim_end().strip_suffix(')')?;
    let open = inner.rfind('(')?;
    inner[open + 1..].parse().ok()
}

/// The rule, applied in this order to a put of `declared` bytes that failed with `message`:
///
/// 1. the client's stream broke, or ended having yielded other than `declared` bytes:
///    [`NativePut::Interrupted`] (the client's: its body did not arrive whole);
/// 2. the error carries R2's code [`R2_BAD_DIGEST`]: [`NativePut::DigestMismatch`] (the
///    client's: its bytes do not hash to the digest it named);
/// 3. anything else, including a stream the store stopped reading before it ended:
///    `Err(StorageError::Backend)` (ours: the client should retry).
pub fn classify_put_failure(message: &str, body: &BodyReport, declared: u64) -> StorageResult<NativePut<()>> {
    if let Some(reason) = &body.broke {
        return Ok(NativePut::Interrupted(format!("the request body broke after {} bytes: {reason}", body.delivered)));
    }
    if body.ended && body.delivered != declared {
        return Ok(NativePut::Interrupted(format!(
            "the request body ended after {} of its declared {declared} bytes",
            body.delivered
        )));
    }
    if r2_code(message) == Some(R2_BAD_DIGEST) {
        return Ok(NativePut::DigestMismatch);
    }
    Err(StorageError::Backend(format!("R2: {message}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What workerd throws for a put whose sha256 does not match (the message is R2's, the
    /// framing `put: ... (10037)` workerd's; `wrangler dev` answers the same).
    const BAD_DIGEST: &str = "put: The SHA-256 checksum you specified did not match what we received.\n\
        You provided a SHA-256 checksum with value: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n\
        Actual SHA-256 was: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae (10037)";
    const SHA512_BAD_DIGEST: &str = "put: The SHA-512 checksum you specified did not match what we received. (10037)";
    /// Failures that are not the client's, framed as workerd throws them (the texts are
    /// examples, not quotes: the rule never reads them), and what the runtime throws when
    /// the connection to R2 is lost.
    const BACKEND: [&str; 4] = [
        "put: We encountered an internal error. Please try again. (10001)",
        "put: Reduce your concurrent request rate for the same object. (10058)",
        "Network connection lost.",
        "internal error; reference = 8k2j3h4g5f6d7s8a",
    ];
    const WHOLE: BodyReport = BodyReport { delivered: 100, ended: true, broke: None };

    #[test]
    fn a_bad_digest_is_the_clients() {
        assert_eq!(r2_code(BAD_DIGEST), Some(R2_BAD_DIGEST));
        assert_eq!(classify_put_failure(BAD_DIGEST, &WHOLE, 100), Ok(NativePut::DigestMismatch));
        assert_eq!(classify_put_failure(SHA512_BAD_DIGEST, &WHOLE, 100), Ok(NativePut::DigestMismatch));
    }

    #[test]
    fn a_short_or_broken_body_is_the_clients() {
        let short = BodyReport { delivered: 40, ended: true, broke: None };
        // FixedLengthStream refuses the short body, so R2's error is whatever it is.
        for message in [BACKEND[0], BACKEND[2], BAD_DIGEST] {
            assert!(matches!(classify_put_failure(message, &short, 100), Ok(NativePut::Interrupted(_))), "{message}");
        }
        let broke = BodyReport { delivered: 40, ended: false, broke: Some("connection reset".into()) };
        let Ok(NativePut::Interrupted(reason)) = classify_put_failure(BACKEND[2], &broke, 100) else { panic!() };
        assert!(reason.contains("connection reset") && reason.contains("40 bytes"), "{reason}");
    }

    #[test]
    fn anything_else_is_the_backends() {
        for message in BACKEND {
            let outcome = classify_put_failure(message, &WHOLE, 100);
            assert!(matches!(outcome, Err(StorageError::Backend(_))), "{message}: {outcome:?}");
        }
        // The store stopped reading a body that was still arriving: not the client's.
        let cut = BodyReport { delivered: 40, ended: false, broke: None };
        assert!(classify_put_failure(BACKEND[0], &cut, 100).is_err());
        // Words alone do not make a checksum error: only R2's code does.
        assert!(classify_put_failure("put: checksum service unavailable (10001)", &WHOLE, 100).is_err());
        assert_eq!(r2_code("no code here"), None);
        assert_eq!(r2_code("put: odd (text)"), None);
    }
}
