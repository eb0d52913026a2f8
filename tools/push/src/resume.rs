//! Resuming an upload: what the registry's `Range` header says it holds, what to do with a
//! chunk's answer, and how long to wait before the next try.

use std::time::Duration;

/// How many bytes of an upload the registry holds, from its `Range: 0-<last byte>` header
/// (`bytes=` prefix tolerated). `0-0` is read as none: docker/distribution, and this
/// repository's registry, report an empty session that way (a session that holds exactly one
/// byte reads the same, and resending that byte is answered 416 with the same range; the
/// retries then run out and the next run starts that blob afresh).
pub fn held_bytes(range: Option<&str>) -> Option<u64> {
    let value = range?.trim();
    let value = value.strip_prefix("bytes=").unwrap_or(value);
    let (start, end) = value.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    let end: u64 = end.trim().parse().ok()?;
    Some(if end == 0 { 0 } else { end + 1 })
}

/// What a chunk's (or a closing PUT's) answer means for the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Taken (202, 201, 204): go on.
    Accepted,
    /// 416: out of order, or another request holds the session; the answer's `Range` (or
    /// a status request) tells where to continue.
    Resync,
    /// 401: the token expired or was never sent; get one and continue from the status.
    Reauthenticate,
    /// 408, 429, 5xx, or no answer at all: wait, ask for the status, continue from there.
    Retry,
    /// Any other 4xx: the registry refused the upload and says why; stop.
    Refused,
}

pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Accepted,
        416 => Verdict::Resync,
        401 => Verdict::Reauthenticate,
        408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Refused,
    }
}

/// Tries per chunk before the push gives up (each after a status request).
pub const MAX_TRIES: u32 = 6;

/// The wait before try `attempt` (1 = the first retry): 0.5 s doubling, at most 8 s, or the
/// registry's `Retry-After` seconds when it sent one (at most 60 s).
pub fn backoff(attempt: u32, retry_after: Option<&str>) -> Duration {
    if let Some(secs) = retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
        return Duration::from_secs(secs.min(60));
    }
    let ms = 500u64.saturating_mul(1 << attempt.saturating_sub(1).min(4));
    Duration::from_millis(ms.min(8000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_header_to_bytes_held() {
        assert_eq!(held_bytes(Some("0-0")), Some(0));
        assert_eq!(held_bytes(Some("0-99")), Some(100));
        assert_eq!(held_bytes(Some("bytes=0-104857599")), Some(100 * 1024 * 1024));
        assert_eq!(held_bytes(Some(" 0-9 ")), Some(10));
        for bad in [None, Some(""), Some("5-9"), Some("0-"), Some("0-x"), Some("garbage")] {
            assert_eq!(held_bytes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn answers_sort_into_verdicts() {
        assert_eq!(verdict(202), Verdict::Accepted);
        assert_eq!(verdict(201), Verdict::Accepted);
        assert_eq!(verdict(416), Verdict::Resync);
        assert_eq!(verdict(401), Verdict::Reauthenticate);
        for transient in [408, 429, 500, 502, 503, 504] {
            assert_eq!(verdict(transient), Verdict::Retry, "{transient}");
        }
        for refused in [400, 403, 404, 405, 413] {
            assert_eq!(verdict(refused), Verdict::Refused, "{refused}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_a_cap_and_honours_retry_after() {
        let waits: Vec<u64> = (1..=7).map(|a| backoff(a, None).as_millis() as u64).collect();
        assert_eq!(waits, vec![500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(backoff(1, Some("3")), Duration::from_secs(3));
        assert_eq!(backoff(1, Some("3600")), Duration::from_secs(60));
        assert_eq!(backoff(2, Some("soon")), Duration::from_millis(1000));
    }
}
