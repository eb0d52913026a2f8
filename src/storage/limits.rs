//! The platform limits of R2 and KV that the design must respect, in one place.
//! The in-memory stores enforce them so a test that passes natively does not fail on R2/KV.

/// R2: "Object key length: 1,024 bytes".
pub const R2_MAX_KEY_BYTES: usize = 1024;
/// R2: custom metadata is limited to 8,192 bytes per object (keys plus values).
pub const R2_MAX_METADATA_BYTES: usize = 8192;
/// R2: multipart parts are at least 5 MiB, except the last.
pub const R2_MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// R2: parts are at most 5 GiB.
pub const R2_MAX_PART_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// R2: at most 10,000 parts per multipart upload.
pub const R2_MAX_PARTS: u16 = 10_000;
/// R2: a single put is at most 5 GiB.
pub const R2_MAX_SINGLE_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// R2: a listing returns at most 1,000 keys per call.
pub const R2_MAX_LIST: usize = 1000;

/// KV: keys up to 512 bytes.
pub const KV_MAX_KEY_BYTES: usize = 512;
/// KV: values up to 25 MiB.
pub const KV_MAX_VALUE_BYTES: usize = 25 * 1024 * 1024;
/// KV: metadata up to 1,024 bytes (serialised).
pub const KV_MAX_METADATA_BYTES: usize = 1024;
