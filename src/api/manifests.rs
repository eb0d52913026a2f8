//! Manifest endpoints (end-3, end-7, end-9).

use super::drain::{read_limited, ReadError};
use super::{ApiError, Call, HandlerResult, Reply};
use crate::oci::{ErrorCode, MediaType, Reference, RepositoryName, Tag};
use crate::registry::{ManifestContent, Registry, RegistryError};
use crate::storage::{BlobStore, MetaStore};
use http::{Method, StatusCode};

pub async fn get<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    name: &RepositoryName,
    reference: &Reference,
    call: &Call<B::Native>,
) -> HandlerResult<B::Body> {
    let manifest = registry.get_manifest(name, reference).await?;
    Ok(answer(manifest, call, Reply::new(StatusCode::OK)))
}

/// The answer to a `GET` or `HEAD` of `manifest`, on top of `reply` (which may carry
/// headers of its own): its digest and etag, then its bytes, only its length for a `HEAD`,
/// or `304` when `If-None-Match` names it.
pub(super) fn answer<S, N: 'static>(manifest: ManifestContent, call: &Call<N>, reply: Reply<S>) -> Reply<S> {
    let etag = format!("\"{}\"", manifest.digest);
    let reply = reply.header("docker-content-digest", manifest.digest.to_string()).header("etag", etag.clone());
    if call.method == Method::HEAD {
        return reply
            .header("content-type", manifest.media_type)
            .header("content-length", manifest.bytes.len().to_string());
    }
    if call.etag_matches(&etag) {
        return reply.status(StatusCode::NOT_MODIFIED);
    }
    reply.bytes(manifest.media_type.as_str(), manifest.bytes)
}

/// PUT a manifest; `?tag=` may add tags when pushing by digest (end-7b), each reported in
/// an `OCI-Tag` header as the spec requires.
pub async fn put<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    name: &RepositoryName,
    reference: &Reference,
    call: Call<B::Native>,
) -> HandlerResult<B::Body> {
    let extra_tags = call
        .query
        .all("tag")
        .map(|t| {
            Tag::parse(t).map_err(|e| ApiError::bad_request(ErrorCode::ManifestInvalid, format!("tag {t:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let content_type = call.header("content-type").and_then(MediaType::from_content_type);
    let limit = registry.config().max_manifest_bytes;
    let bytes = read_limited(call.take_body().into_stream(), limit).await.map_err(|e| match e {
        ReadError::TooLarge => ApiError::from(RegistryError::ManifestTooLarge(limit)),
        ReadError::Broke(e) => ApiError::from(RegistryError::BodyInterrupted(e)),
    })?;
    let pushed = registry.put_manifest(name, reference, &extra_tags, content_type.as_ref(), bytes).await?;
    let mut reply = Reply::new(StatusCode::CREATED)
        .header("location", format!("/v2/{name}/manifests/{}", pushed.digest))
        .header("docker-content-digest", pushed.digest.to_string())
        .header("content-length", "0");
    if let Some(subject) = &pushed.subject {
        reply = reply.header("oci-subject", subject.to_string());
    }
    if !extra_tags.is_empty() {
        for tag in &pushed.tags {
            reply = reply.header("oci-tag", tag.to_string());
        }
    }
    Ok(reply)
}

pub async fn delete<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    name: &RepositoryName,
    reference: &Reference,
) -> HandlerResult<B::Body> {
    registry.delete_manifest(name, reference).await?;
    Ok(Reply::new(StatusCode::ACCEPTED).header("content-length", "0"))
}
