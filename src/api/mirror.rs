//! The pull-through cache's reads: a manifest or blob of a name under an upstream's prefix
//! is served from the cache when it is there (and, for a tag, confirmed upstream within
//! `UPSTREAM_TAG_TTL_SECONDS`), else fetched from the upstream (`mirror`), stored by the
//! registry core (`registry::upstream`) and served as stored. When the upstream fails
//! (a timeout, the network, a `429`, a `5xx`), a cached tag is served as it is, saying so
//! in [`UPSTREAM_STATUS_HEADER`] and `Warning`. Pushes into a cache prefix are refused in
//! `api::answer` ([`refuse_push`]).

use super::{blobs, manifests, ApiError, Call, HandlerResult, Reply};
use crate::mirror::{Mirror, Route, UpstreamError};
use crate::oci::{Algorithm, Digest, ErrorCode, MediaType, Reference, RepositoryName, Tag};
use crate::registry::{BlobFill, CachedBlob, FillTurn, FillWait, ManifestContent, Registry, RegistryError};
use crate::storage::{BlobStore, MetaStore};
use http::{Method, StatusCode};

/// Says where a cache repository's answer came from: `hit` (the cache, trusted),
/// `revalidated` (the cache, confirmed upstream just now), `fetched` (the upstream, now
/// stored) or `stale` (the cache, because the upstream failed).
pub const UPSTREAM_STATUS_HEADER: &str = "x-edge-registry-upstream";

/// Seconds a client is asked to wait after an upstream failure with nothing cached.
const UPSTREAM_RETRY_AFTER_SECONDS: u64 = 10;

/// `403 DENIED` for a push into a name the cache fills from an upstream.
pub fn refuse_push(route: &Route<'_>, name: &RepositoryName) -> ApiError {
    let message = format!(
        "{name} is under {}/, a pull-through cache of {}: it cannot be pushed to; push to a name outside the \
         cache prefixes",
        route.upstream.prefix, route.upstream.url
    );
    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Denied, message)
}

/// GET or HEAD a manifest of a cache repository (end-3).
pub async fn manifest<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    mirror: &Mirror<B::Native>,
    route: Route<'_>,
    name: &RepositoryName,
    reference: &Reference,
    call: &Call<B::Native>,
) -> HandlerResult<B::Body> {
    let local = match registry.get_manifest(name, reference).await {
        Ok(content) => Some(content),
        Err(RegistryError::ManifestUnknown(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let (content, status) = match (reference, local) {
        (Reference::Digest(_), Some(content)) => (content, "hit"),
        (Reference::Digest(_), None) => (fetch_new(registry, mirror, &route, name, reference, None).await?, "fetched"),
        (Reference::Tag(tag), None) => {
            (fetch_new(registry, mirror, &route, name, reference, Some(tag)).await?, "fetched")
        }
        (Reference::Tag(tag), Some(content)) => refresh_tag(registry, mirror, &route, name, tag, content).await?,
    };
    let mut reply = Reply::new(StatusCode::OK).header(UPSTREAM_STATUS_HEADER, status);
    if status == "stale" {
        reply = reply.header("warning", "110 edge-registry \"Response is Stale\"");
    }
    Ok(manifests::answer(content, call, reply))
}

/// A manifest not cached at all, fetched and stored.
async fn fetch_new<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    mirror: &Mirror<B::Native>,
    route: &Route<'_>,
    name: &RepositoryName,
    reference: &Reference,
    tag: Option<&Tag>,
) -> Result<ManifestContent, ApiError> {
    let fetched = fetch_manifest(registry, mirror, route, name, reference, tag, None).await?;
    fetched.ok_or_else(|| ApiError::manifest_unknown(format!("{reference} vanished while it was fetched")))
}

/// A cached tag: trusted within the TTL of its last check; else checked with a `HEAD`
/// (fetched again if the upstream moved it), or served stale if the upstream fails, which
/// also counts as a check: a failing upstream is asked once per TTL, not on every pull.
async fn refresh_tag<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    mirror: &Mirror<B::Native>,
    route: &Route<'_>,
    name: &RepositoryName,
    tag: &Tag,
    cached: ManifestContent,
) -> Result<(ManifestContent, &'static str), ApiError> {
    let now = registry.now_millis();
    let checked = registry.upstream_checked_at(name, tag).await?;
    if checked.is_some_and(|at| now < at.saturating_add(mirror.config().tag_ttl_ms)) {
        return Ok((cached, "hit"));
    }
    let reference = Reference::Tag(tag.clone());
    let fresh = match mirror.head_manifest(route, &reference, now).await {
        Ok(Some(digest)) if digest == cached.digest => Ok(None),
        Ok(_) => fetch_manifest(registry, mirror, route, name, &reference, Some(tag), Some(&cached.digest)).await,
        Err(UpstreamError::NotFound(message)) => return Err(ApiError::manifest_unknown(message)),
        Err(UpstreamError::Failed(message)) => Err(bad_gateway(ErrorCode::ManifestUnknown, message)),
    };
    match fresh {
        Ok(Some(fetched)) => Ok((fetched, "fetched")),
        Ok(None) => {
            // Confirmed: served even if the record of it cannot be written (asked again next time).
            let _ = registry.mark_upstream_checked(name, tag).await;
            Ok((cached, "revalidated"))
        }
        // The upstream (or storing its answer) failed; also an immutable tag the upstream
        // moved, which keeps what it points at here.
        Err(e) if e.status.is_server_error() || e.code == ErrorCode::Denied => {
            // At worst the next pull asks again.
            let _ = registry.mark_upstream_checked(name, tag).await;
            Ok((cached, "stale"))
        }
        Err(e) => Err(e),
    }
}

/// Fetches a manifest upstream, checks that its bytes are what was asked for (the digest
/// asked for, or the digest the upstream says it sent), and stores it; `None` when its
/// digest is `known` (the cached one: nothing to store).
async fn fetch_manifest<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    mirror: &Mirror<B::Native>,
    route: &Route<'_>,
    name: &RepositoryName,
    reference: &Reference,
    tag: Option<&Tag>,
    known: Option<&Digest>,
) -> Result<Option<ManifestContent>, ApiError> {
    let now = registry.now_millis();
    let limit = registry.config().max_manifest_bytes;
    let fetched = mirror.get_manifest(route, reference, limit, now).await.map_err(|e| manifest_error(e, reference))?;
    let claimed = match reference {
        Reference::Digest(digest) => Some(digest.clone()),
        Reference::Tag(_) => fetched.digest.clone(),
    };
    let algorithm = claimed.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
    let actual = algorithm.digest_of(&fetched.bytes);
    if claimed.as_ref().is_some_and(|claimed| *claimed != actual) {
        let claimed = claimed.unwrap_or_else(|| actual.clone());
        let url = &route.upstream.url;
        let message = format!("upstream {url} sent a manifest hashing to {actual}, not {claimed}; nothing was stored");
        return Err(bad_gateway(ErrorCode::ManifestUnknown, message));
    }
    if known == Some(&actual) {
        return Ok(None);
    }
    let content_type = fetched.media_type.as_deref().and_then(MediaType::from_content_type);
    let stored = registry.store_upstream_manifest(name, tag, content_type.as_ref(), algorithm, fetched.bytes).await;
    let content = stored.map_err(|e| match e {
        RegistryError::ManifestInvalid(m) => bad_gateway(ErrorCode::ManifestInvalid, m),
        RegistryError::ManifestTooLarge(limit) => bad_gateway(
            ErrorCode::ManifestInvalid,
            format!("the upstream's manifest is over this registry's {limit}-byte limit"),
        ),
        other => fill_error(other, ErrorCode::ManifestUnknown),
    })?;
    if let Some(tag) = tag {
        registry.mark_upstream_checked(name, tag).await?;
    }
    Ok(Some(content))
}

/// GET or HEAD a blob of a cache repository (end-2): from the cache, else from the
/// upstream, stored first (verified by the store's checksum as it streams in) and then
/// served as any stored blob. A `HEAD` of a blob not cached asks the upstream and stores
/// nothing.
pub async fn blob<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    mirror: &Mirror<B::Native>,
    route: Route<'_>,
    name: &RepositoryName,
    digest: &Digest,
    call: &Call<B::Native>,
) -> HandlerResult<B::Body> {
    match registry.stat_blob(name, digest).await {
        Ok(_) => return Ok(blobs::get(registry, name, digest, call).await?.header(UPSTREAM_STATUS_HEADER, "hit")),
        Err(RegistryError::BlobUnknown(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let now = registry.now_millis();
    if call.method == Method::HEAD {
        let size = mirror.head_blob(&route, digest, now).await.map_err(|e| blob_error(e, digest))?;
        return Ok(Reply::new(StatusCode::OK)
            .header("docker-content-digest", digest.to_string())
            .header("content-type", "application/octet-stream")
            .header("content-length", size.to_string())
            .header(UPSTREAM_STATUS_HEADER, "upstream"));
    }
    let url = &route.upstream.url;
    let mismatch = || {
        let message = format!("upstream {url} sent bytes for {digest} that hash to another digest; nothing was stored");
        bad_gateway(ErrorCode::BlobUnknown, message)
    };
    let filled = match registry.upstream_blob_fill(digest).await? {
        BlobFill::LinkOnceVerified => {
            if !mirror.verify_blob(&route, digest, now).await.map_err(|e| blob_error(e, digest))? {
                return Err(mismatch());
            }
            let linked = registry.link_upstream_blob(name, digest).await;
            linked.map(|()| CachedBlob::Stored).map_err(|e| fill_error(e, ErrorCode::BlobUnknown))
        }
        BlobFill::Store => {
            let turn = registry.take_fill(name, digest).await?;
            if turn == FillTurn::Another && wait_for_fill(registry, mirror, name, digest).await? {
                return Ok(blobs::get(registry, name, digest, call).await?.header(UPSTREAM_STATUS_HEADER, "hit"));
            }
            let stored = match mirror.get_blob(&route, digest, now).await {
                Ok(fetched) => registry
                    .store_upstream_blob(name, digest, fetched.body, fetched.length)
                    .await
                    .map_err(|e| fill_error(e, ErrorCode::BlobUnknown)),
                Err(e) => Err(blob_error(e, digest)),
            };
            if let FillTurn::Mine(etag) = &turn {
                // At worst the lease goes stale, and a waiter fetches for itself.
                let _ = registry.end_fill(name, digest, etag).await;
            }
            stored
        }
    };
    match filled? {
        CachedBlob::Stored => {
            Ok(blobs::get(registry, name, digest, call).await?.header(UPSTREAM_STATUS_HEADER, "fetched"))
        }
        CachedBlob::DigestMismatch => Err(mismatch()),
        CachedBlob::Interrupted(reason) => Err(bad_gateway(
            ErrorCode::BlobUnknown,
            format!("upstream {url}'s transfer of {digest} broke off ({reason}); nothing was stored, retry"),
        )),
    }
}

/// Pauses between checks for another request's fill: 0.1 s doubling to 5 s, 10 of them
/// (about 26 s, within a lease's 30 s; two storage calls each).
const FILL_WAIT_PAUSES: usize = 10;
const FILL_WAIT_FIRST_MS: u64 = 100;
const FILL_WAIT_MAX_MS: u64 = 5_000;

/// Waits for another request's fill of `digest`; true once it is linked in `name`, false
/// when that fill was abandoned or the wait ran out (this request then fetches it).
async fn wait_for_fill<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    mirror: &Mirror<B::Native>,
    name: &RepositoryName,
    digest: &Digest,
) -> Result<bool, ApiError> {
    let mut pause = FILL_WAIT_FIRST_MS;
    for _ in 0..FILL_WAIT_PAUSES {
        mirror.pause(pause).await;
        match registry.fill_landed(name, digest).await? {
            FillWait::Landed => return Ok(true),
            FillWait::Abandoned => return Ok(false),
            FillWait::Pending => pause = (pause * 2).min(FILL_WAIT_MAX_MS),
        }
    }
    Ok(false)
}

/// A fill refused by what guards pushes is no fault of the puller: a repository being
/// deleted (or just deleted) is `503` for a while, as content being collected is.
fn fill_error(e: RegistryError, code: ErrorCode) -> ApiError {
    match e {
        RegistryError::RepositoryDeleting(message) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
            .with_header("retry-after", UPSTREAM_RETRY_AFTER_SECONDS.to_string()),
        other => other.into(),
    }
}

fn manifest_error(e: UpstreamError, reference: &Reference) -> ApiError {
    match e {
        UpstreamError::NotFound(m) => ApiError::manifest_unknown(format!("{reference}: {m}")),
        UpstreamError::Failed(m) => {
            bad_gateway(ErrorCode::ManifestUnknown, format!("{reference} is not cached and {m}"))
        }
    }
}

fn blob_error(e: UpstreamError, digest: &Digest) -> ApiError {
    match e {
        UpstreamError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::BlobUnknown, m),
        UpstreamError::Failed(m) => bad_gateway(ErrorCode::BlobUnknown, format!("{digest} is not cached and {m}")),
    }
}

/// `502`: the upstream failed or sent something unusable; clients retry.
fn bad_gateway(code: ErrorCode, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, code, message)
        .with_header("retry-after", UPSTREAM_RETRY_AFTER_SECONDS.to_string())
}
