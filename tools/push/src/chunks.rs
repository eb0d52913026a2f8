//! Chunk planning: how big each PATCH is, given what the registry advertises on the
//! upload session (`OCI-Chunk-Max-Length`, `OCI-Chunk-Min-Length`), and where the next chunk
//! ends when an upload resumes from an offset the registry reported.

/// Chunk size when the registry sets no maximum: small enough that a resumed upload loses
/// little, big enough that requests are few.
pub const DEFAULT_CHUNK: u64 = 64 * 1024 * 1024;

/// What an upload session's answer said about chunk sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkLimits {
    /// `OCI-Chunk-Min-Length`: every chunk but the last should be at least this long.
    pub min: Option<u64>,
    /// `OCI-Chunk-Max-Length`: no request body may be longer.
    pub max: Option<u64>,
}

impl ChunkLimits {
    /// Reads the two headers (absent, empty, zero or unparsable: no limit).
    pub fn from_headers(min: Option<&str>, max: Option<&str>) -> Self {
        let parse = |v: Option<&str>| v.and_then(|v| v.trim().parse::<u64>().ok()).filter(|&n| n > 0);
        ChunkLimits { min: parse(min), max: parse(max) }
    }

    /// The chunk size to use: `requested` (the `--chunk-size` flag) or the maximum or
    /// [`DEFAULT_CHUNK`], never over the maximum, and rounded down to a multiple of the
    /// minimum when the maximum leaves room for one (a registry that re-cuts chunks into
    /// storage parts of the minimum's size then takes every chunk whole).
    pub fn chunk_size(&self, requested: Option<u64>) -> u64 {
        let mut size = requested.or(self.max).unwrap_or(DEFAULT_CHUNK).max(1);
        if let Some(max) = self.max {
            size = size.min(max);
        }
        if let Some(min) = self.min {
            if size >= min {
                size -= size % min;
            }
        }
        size
    }
}

/// Where the chunk that starts at `offset` ends (exclusive), for a blob of `total` bytes cut
/// into chunks of `size` whose ends fall on multiples of `align` (the registry's minimum, or
/// 1). From an aligned offset that is simply `offset + size`; after a resume from an offset
/// the registry reported (any byte count), the chunk is cut short so that the next ones are
/// aligned again, and never longer than `size`.
pub fn chunk_end(offset: u64, total: u64, size: u64, align: u64) -> u64 {
    let size = size.max(1);
    let align = if align == 0 || align > size { 1 } else { align };
    let reach = offset.saturating_add(size);
    let aligned = reach - reach % align;
    let end = if aligned > offset { aligned } else { reach };
    end.min(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    /// Every chunk of a blob from `offset` on, as `(start, end)` pairs (end exclusive).
    fn plan(offset: u64, total: u64, limits: &ChunkLimits, requested: Option<u64>) -> Vec<(u64, u64)> {
        let size = limits.chunk_size(requested);
        let align = limits.min.unwrap_or(1);
        let mut chunks = Vec::new();
        let mut at = offset;
        while at < total {
            let end = chunk_end(at, total, size, align);
            chunks.push((at, end));
            at = end;
        }
        chunks
    }

    /// What this registry advertises with MAX_REQUEST_BODY_MB=100 and its 8 MiB parts.
    const OURS: ChunkLimits = ChunkLimits { min: Some(8 * MIB), max: Some(100_000_000) };

    #[test]
    fn chunk_size_honours_both_limits() {
        assert_eq!(OURS.chunk_size(None), 88 * MIB, "largest multiple of 8 MiB under 100 MB");
        assert_eq!(OURS.chunk_size(Some(500 * MIB)), 88 * MIB, "never over the max");
        assert_eq!(OURS.chunk_size(Some(20 * MIB)), 16 * MIB, "rounded down to the min's multiple");
        assert_eq!(OURS.chunk_size(Some(MIB)), MIB, "below the min: as asked (the registry may refuse)");
        assert_eq!(ChunkLimits::default().chunk_size(None), DEFAULT_CHUNK);
        assert_eq!(ChunkLimits { min: Some(10), max: Some(7) }.chunk_size(None), 7, "max below min: max");
        assert_eq!(ChunkLimits { min: None, max: Some(1000) }.chunk_size(Some(0)), 1);
    }

    #[test]
    fn limits_come_from_the_headers() {
        assert_eq!(ChunkLimits::from_headers(Some("8388608"), Some(" 100000000 ")), OURS);
        assert_eq!(ChunkLimits::from_headers(None, Some("0")), ChunkLimits::default());
        assert_eq!(ChunkLimits::from_headers(Some("x"), Some("")), ChunkLimits::default());
    }

    #[test]
    fn a_300_mib_layer_goes_in_four_chunks_under_100_mb() {
        let chunks = plan(0, 300 * MIB, &OURS, None);
        assert_eq!(chunks, vec![(0, 88 * MIB), (88 * MIB, 176 * MIB), (176 * MIB, 264 * MIB), (264 * MIB, 300 * MIB)]);
        assert!(chunks.iter().all(|(s, e)| e - s <= 100_000_000));
    }

    #[test]
    fn a_resumed_upload_realigns_and_stays_under_the_max() {
        // The registry kept 100 MiB + 12345 bytes of an interrupted request.
        let held = 100 * MIB + 12345;
        let chunks = plan(held, 300 * MIB, &OURS, None);
        assert_eq!(chunks[0], (held, 184 * MIB), "cut short to the next multiple of 8 MiB");
        assert_eq!(chunks[1], (184 * MIB, 272 * MIB));
        assert_eq!(chunks.last().unwrap().1, 300 * MIB);
        assert!(chunks.iter().all(|(s, e)| e > s && e - s <= 88 * MIB));
        assert!(chunks.windows(2).all(|w| w[0].1 == w[1].0), "contiguous");
    }

    #[test]
    fn edge_cases() {
        assert!(plan(10, 10, &OURS, None).is_empty(), "nothing left");
        assert_eq!(plan(0, 1, &OURS, None), vec![(0, 1)]);
        assert_eq!(plan(0, 10, &ChunkLimits::default(), Some(4)), vec![(0, 4), (4, 8), (8, 10)]);
        assert_eq!(chunk_end(3, 100, 4, 4), 4, "a resumed chunk may be short to realign");
        assert_eq!(chunk_end(5, 100, 4, 0), 9, "no alignment");
        assert_eq!(chunk_end(5, 100, 4, 8), 9, "alignment bigger than a chunk is ignored");
        assert_eq!(chunk_end(u64::MAX - 1, u64::MAX, 88, 8), u64::MAX);
    }
}
