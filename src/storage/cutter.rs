//! Bodies of unknown length read by the store itself: docker sends a whole layer as one
//! `PATCH` with `Transfer-Encoding: chunked` and no `Content-Length`, and R2 takes a body of
//! unknown length only as a multipart upload of equal parts. A store's cutter reads such a
//! body, hashes every byte as it passes and hands back one part at a time for the store to
//! upload ([`super::BlobStore::upload_cut_part`]), so the bytes never enter wasm (on Workers
//! the cutter is JavaScript: `crypto.DigestStream` and R2's `uploadPart`), and nothing is
//! buffered beyond the part being filled: the body is read only as fast as parts are stored.
//!
//! [`StreamCutter`] is the same logic over a [`ByteStream`], for the in-memory store.

use super::ByteStream;
use super::PartReceipt;
use crate::oci::{Algorithm, Digest, Hasher};
use futures::StreamExt;

/// What one step of a cutter did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CutPart {
    /// A part was uploaded: `part_size` bytes, or fewer when the body ended (or broke, or
    /// crossed the limit) within it, in which case the next step says which.
    Uploaded(PartReceipt),
    /// The body ended: the digest of every byte it brought.
    Ended(Digest),
    /// The client's stream broke; the parts uploaded before hold every byte it delivered.
    Broke(String),
    /// The body went past the limit: the parts uploaded hold its first `limit` bytes, and
    /// reading stopped there.
    OverLimit(u64),
}

/// How a body's reading ended, once it has.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    Ended,
    Broke(String),
    OverLimit(u64),
}

/// A cutter over a stream of chunks (the in-memory store's native body), hashing natively.
pub struct StreamCutter {
    body: ByteStream,
    hasher: Option<Hasher>,
    /// The unread rest of the last chunk (already hashed).
    pending: Vec<u8>,
    /// Bytes taken from the body so far.
    read: u64,
    limit: Option<u64>,
    end: Option<End>,
}

impl StreamCutter {
    pub fn new(body: ByteStream, algorithm: Algorithm, limit: Option<u64>) -> Self {
        StreamCutter { body, hasher: Some(Hasher::new(algorithm)), pending: Vec::new(), read: 0, limit, end: None }
    }

    /// The next part's bytes, at most `part_size`; empty once the body has ended.
    pub async fn fill(&mut self, part_size: u64) -> Vec<u8> {
        let part_size = part_size as usize;
        let mut part = Vec::with_capacity(part_size.min(self.pending.len().max(64 * 1024)));
        while part.len() < part_size {
            if self.pending.is_empty() {
                if self.end.is_some() {
                    break;
                }
                match self.body.next().await {
                    None => self.end = Some(End::Ended),
                    Some(Err(reason)) => self.end = Some(End::Broke(reason)),
                    Some(Ok(mut chunk)) => {
                        if let Some(limit) = self.limit.filter(|l| self.read + chunk.len() as u64 > *l) {
                            chunk.truncate((limit - self.read) as usize);
                            self.end = Some(End::OverLimit(limit));
                        }
                        if let Some(hasher) = self.hasher.as_mut() {
                            hasher.update(&chunk);
                        }
                        self.read += chunk.len() as u64;
                        self.pending = chunk;
                    }
                }
                continue;
            }
            let take = (part_size - part.len()).min(self.pending.len());
            part.extend(self.pending.drain(..take));
        }
        part
    }

    /// What the body did, once [`StreamCutter::fill`] returned nothing.
    pub fn outcome(&mut self) -> CutPart {
        match self.end.clone().unwrap_or(End::Ended) {
            End::Ended => CutPart::Ended(self.hasher.take().expect("the outcome is taken once").finish()),
            End::Broke(reason) => CutPart::Broke(reason),
            End::OverLimit(limit) => CutPart::OverLimit(limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    fn chunks(parts: Vec<Result<Vec<u8>, String>>) -> ByteStream {
        futures::stream::iter(parts).boxed_local()
    }

    #[test]
    fn cuts_chunks_of_any_size_into_equal_parts_and_hashes_them_all() {
        let data: Vec<u8> = (0..25u32).map(|i| i as u8).collect();
        let body = chunks(vec![Ok(data[..3].to_vec()), Ok(data[3..20].to_vec()), Ok(data[20..].to_vec())]);
        let mut cutter = StreamCutter::new(body, Algorithm::Sha256, None);
        let parts: Vec<Vec<u8>> = block_on(async {
            let mut parts = Vec::new();
            loop {
                let part = cutter.fill(10).await;
                if part.is_empty() {
                    break parts;
                }
                parts.push(part);
            }
        });
        assert_eq!(parts, vec![data[..10].to_vec(), data[10..20].to_vec(), data[20..].to_vec()]);
        assert_eq!(cutter.outcome(), CutPart::Ended(Algorithm::Sha256.digest_of(&data)));
    }

    #[test]
    fn stops_at_the_limit_and_keeps_the_bytes_before_it() {
        let body = chunks(vec![Ok(vec![1; 6]), Ok(vec![2; 6]), Ok(vec![3; 6])]);
        let mut cutter = StreamCutter::new(body, Algorithm::Sha256, Some(8));
        let first = block_on(cutter.fill(100));
        assert_eq!(first, [vec![1; 6], vec![2; 2]].concat());
        assert!(block_on(cutter.fill(100)).is_empty());
        assert_eq!(cutter.outcome(), CutPart::OverLimit(8));
    }

    #[test]
    fn a_broken_stream_keeps_what_it_delivered() {
        let body = chunks(vec![Ok(vec![7; 4]), Err("reset".into())]);
        let mut cutter = StreamCutter::new(body, Algorithm::Sha256, None);
        assert_eq!(block_on(cutter.fill(10)), vec![7; 4]);
        assert!(block_on(cutter.fill(10)).is_empty());
        assert_eq!(cutter.outcome(), CutPart::Broke("reset".into()));
    }
}
