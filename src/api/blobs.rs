//! Blob reads and deletes (end-2, end-10).

use super::{params, Body, Call, HandlerResult, Reply};
use crate::oci::{Digest, RepositoryName};
use crate::registry::Registry;
use crate::storage::{BlobStore, MetaStore};
use http::{Method, StatusCode};

/// Blobs by digest never change, so caches may keep them; `private` because access to a
/// repository may be restricted.
pub const IMMUTABLE_CACHE_CONTROL: &str = "private, max-age=31536000, immutable";

/// Says whether a blob came from the platform's cache (`hit`) or from R2 (`miss`).
pub const CACHE_STATUS_HEADER: &str = "x-edge-registry-cache";

/// GET or HEAD a blob, honouring `Range` on GET. "A successful response MUST contain the
/// digest of the uploaded blob in the header `Docker-Content-Digest`."
pub async fn get<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    name: &RepositoryName,
    digest: &Digest,
    call: &Call<B::Native>,
) -> HandlerResult<B::Body> {
    let etag = format!("\"{digest}\"");
    let common = |reply: Reply<B::Body>| {
        reply
            .header("docker-content-digest", digest.to_string())
            .header("etag", etag.clone())
            .header("accept-ranges", "bytes")
            .header("cache-control", IMMUTABLE_CACHE_CONTROL)
    };
    if call.method == Method::HEAD {
        let stat = registry.stat_blob(name, digest).await?;
        return Ok(common(Reply::new(StatusCode::OK))
            .header("content-type", "application/octet-stream")
            .header("content-length", stat.size.to_string()));
    }
    if call.etag_matches(&etag) {
        registry.stat_blob(name, digest).await?;
        return Ok(common(Reply::new(StatusCode::NOT_MODIFIED)));
    }
    let range_header = call.header("range").map(str::to_owned);
    let read = registry.open_blob(name, digest, |size| params::byte_range(range_header.as_deref(), size)).await?;
    let reply = common(Reply::new(StatusCode::OK))
        .header("content-type", "application/octet-stream")
        .header(CACHE_STATUS_HEADER, if read.from_cache { "hit" } else { "miss" });
    let reply = match read.range {
        None => reply.header("content-length", read.size.to_string()),
        Some(r) => reply
            .status(StatusCode::PARTIAL_CONTENT)
            .header("content-length", r.length.to_string())
            .header("content-range", format!("bytes {}-{}/{}", r.offset, r.offset + r.length - 1, read.size)),
    };
    Ok(reply.body(Body::Stream(read.body)))
}

pub async fn delete<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    name: &RepositoryName,
    digest: &Digest,
) -> HandlerResult<B::Body> {
    registry.delete_blob(name, digest).await?;
    Ok(Reply::new(StatusCode::ACCEPTED).header("content-length", "0"))
}
