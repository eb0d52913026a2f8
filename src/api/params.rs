//! Query strings and the range headers: `Range` on blob reads (RFC 9110) and the spec's
//! `Content-Range: <start>-<end>` on chunk uploads.

use super::error::ApiError;
use super::route::percent_decode;
use crate::oci::ErrorCode;
use crate::registry::RegistryError;
use crate::storage::ByteRange;

/// Decoded query parameters in order; a key may repeat (`?tag=a&tag=b`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let plus = |s: &str| s.replace('+', " ");
                (percent_decode(&plus(k)), percent_decode(&plus(v)))
            })
            .collect();
        Query(pairs)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Replaces every value of `key` by `f` of it.
    pub fn map_values(&mut self, key: &str, f: impl Fn(&str) -> String) {
        for (_, v) in self.0.iter_mut().filter(|(k, _)| k == key) {
            *v = f(v);
        }
    }

    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `n` for paged listings: a non-negative integer.
    pub fn page_size(&self) -> Result<Option<usize>, ApiError> {
        match self.get("n") {
            None => Ok(None),
            Some(n) => n.parse().map(Some).map_err(|_| {
                ApiError::bad_request(ErrorCode::Unsupported, format!("n must be a non-negative integer, not {n:?}"))
            }),
        }
    }
}

/// Parses the `Content-Range` of a chunk: "MUST match `^[0-9]+-[0-9]+$`". A leading
/// `bytes ` or `bytes=` and a trailing `/total`, which some clients send, are tolerated.
pub fn content_range(header: Option<&str>) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(raw) = header else { return Ok(None) };
    let invalid = || {
        ApiError::bad_request(
            ErrorCode::BlobUploadInvalid,
            format!("Content-Range must look like <start>-<end>, not {:?}", raw.chars().take(80).collect::<String>()),
        )
    };
    let value = raw.trim();
    let value = value.strip_prefix("bytes").map(|v| v.trim_start_matches([' ', '='])).unwrap_or(value);
    let value = value.split('/').next().unwrap_or(value);
    let (start, end) = value.split_once('-').ok_or_else(invalid)?;
    let number = |s: &str| -> Result<u64, ApiError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        s.parse().map_err(|_| invalid())
    };
    Ok(Some((number(start)?, number(end)?)))
}

/// Resolves a blob read's `Range` header against the blob's size. A header this parser
/// does not understand (several ranges, other units) is ignored and the whole blob sent,
/// as RFC 9110 allows; a range that lies outside the blob, or ends before it starts, gets 416.
pub fn byte_range(header: Option<&str>, size: u64) -> Result<Option<ByteRange>, RegistryError> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let parse = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    let unsatisfiable = RegistryError::RangeNotSatisfiable { size };
    let (offset, end) = match (first, last) {
        ("", suffix) => {
            let Some(n) = parse(suffix) else {
                return Ok(None);
            };
            if n == 0 || size == 0 {
                return Err(unsatisfiable);
            }
            (size.saturating_sub(n), size - 1)
        }
        (start, "") => {
            let Some(start) = parse(start) else {
                return Ok(None);
            };
            (start, size.saturating_sub(1))
        }
        (start, end) => {
            let (Some(start), Some(end)) = (parse(start), parse(end)) else {
                return Ok(None);
            };
            // "A range-spec is invalid if the last-pos value is present and less than the
            // first-pos" (RFC 9110): rejected rather than ignored.
            if end < start {
                return Err(unsatisfiable);
            }
            (start, end.min(size.saturating_sub(1)))
        }
    };
    if offset >= size {
        return Err(unsatisfiable);
    }
    Ok(Some(ByteRange { offset, length: end - offset + 1 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_and_repeat() {
        let q = Query::parse(Some("tag=a&tag=b&digest=sha256%3Aab&x"));
        assert_eq!(q.all("tag").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(q.get("digest"), Some("sha256:ab"));
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(Query::parse(Some("n=-1")).page_size().unwrap_err().status, 400);
    }

    #[test]
    fn content_ranges() {
        assert_eq!(content_range(None).unwrap(), None);
        assert_eq!(content_range(Some("0-99")).unwrap(), Some((0, 99)));
        assert_eq!(content_range(Some("bytes 5-9/*")).unwrap(), Some((5, 9)));
        for bad in ["", "-", "1-", "a-b", "5", "1--2", "+1-2"] {
            assert!(content_range(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn blob_ranges() {
        let r = |h: &str| byte_range(Some(h), 100);
        assert_eq!(r("bytes=0-9").unwrap(), Some(ByteRange { offset: 0, length: 10 }));
        assert_eq!(r("bytes=90-").unwrap(), Some(ByteRange { offset: 90, length: 10 }));
        assert_eq!(r("bytes=-5").unwrap(), Some(ByteRange { offset: 95, length: 5 }));
        assert_eq!(r("bytes=-500").unwrap(), Some(ByteRange { offset: 0, length: 100 }));
        assert_eq!(r("bytes=50-500").unwrap(), Some(ByteRange { offset: 50, length: 50 }));
        assert!(r("bytes=100-").is_err());
        assert!(r("bytes=-0").is_err());
        assert!(r("bytes=50-10").is_err());
        assert_eq!(r("bytes=0-1,5-6").unwrap(), None);
        assert_eq!(r("items=0-1").unwrap(), None);
        assert_eq!(byte_range(None, 100).unwrap(), None);
        assert!(byte_range(Some("bytes=0-0"), 0).is_err());
    }
}
