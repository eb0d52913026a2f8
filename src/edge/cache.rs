//! Keeping small blobs in the Workers Cache API, near the clients that pull them. The
//! registry reads the cache only after its access check (`BlobStore::cached`); this module
//! writes to it, off the response path, once a blob has been served from R2.

use crate::api::{CACHE_STATUS_HEADER, IMMUTABLE_CACHE_CONTROL};
use crate::oci::Digest;
use crate::storage::keys;
use worker::{Cache, Context, Response};

/// Blobs up to this size are cached. The copy for the cache is a tee of the R2 stream,
/// which buffers whatever one branch has read ahead of the other, so the bound keeps
/// memory flat for big layers.
pub const CACHE_MAX_BYTES: u64 = 32 * 1024 * 1024;

/// Caches a blob just served from R2 (a full `200` with our cache status `miss`).
pub fn keep(ctx: &Context, path: &str, response: &mut Response) -> worker::Result<()> {
    let headers = response.headers();
    let served_from_r2 = response.status_code() == 200
        && headers.get(CACHE_STATUS_HEADER)?.as_deref() == Some("miss")
        && path.contains("/blobs/")
        && !path.contains("/blobs/uploads");
    let size = headers.get("content-length")?.and_then(|l| l.parse::<u64>().ok());
    let digest = headers.get("docker-content-digest")?.and_then(|d| d.parse::<Digest>().ok());
    let (Some(size), Some(digest)) = (size, digest) else { return Ok(()) };
    if !served_from_r2 || size > CACHE_MAX_BYTES {
        return Ok(());
    }
    let mut copy = response.cloned()?;
    // The shared cache holds the bytes for every repository; access is checked before
    // any read, so the copy may be public to it.
    copy.headers_mut().set("cache-control", &IMMUTABLE_CACHE_CONTROL.replace("private", "public"))?;
    copy.headers_mut().set(CACHE_STATUS_HEADER, "hit")?;
    let name = keys::cache_name(&digest);
    ctx.wait_until(async move {
        if let Err(e) = Cache::default().put(name.as_str(), copy).await {
            worker::console_warn!("caching {name} failed: {e}");
        }
    });
    Ok(())
}
