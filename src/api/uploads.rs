//! Upload endpoints: start, mount and single-request push (end-4, end-11), chunks
//! (end-5), status (end-13), completion (end-6) and cancel (end-14).

use super::{params, ApiError, Call, HandlerResult, Reply};
use crate::oci::{Algorithm, Digest, ErrorCode, RepositoryName};
use crate::registry::{Registry, RegistryError, UploadId, UploadProgress};
use crate::storage::{BlobStore, MetaStore};
use http::StatusCode;

fn upload_location(name: &RepositoryName, id: &UploadId) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// The session the `<id>` URL segment names: a segment that is not an upload id names none
/// (`404 BLOB_UPLOAD_UNKNOWN`).
fn session_id(segment: &str) -> Result<UploadId, ApiError> {
    UploadId::parse(segment).map_err(|_| RegistryError::UploadUnknown.into())
}

fn blob_location(name: &RepositoryName, digest: &Digest) -> String {
    format!("/v2/{name}/blobs/{digest}")
}

/// `Range: 0-<end-of-range>`, the last byte received (`0-0` when none yet, as
/// docker/distribution reports it).
fn range_header(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

fn progress_reply<S>(status: StatusCode, name: &RepositoryName, progress: &UploadProgress) -> Reply<S> {
    Reply::new(status)
        .header("location", upload_location(name, &progress.id))
        .header("range", range_header(progress.offset))
        .header("docker-upload-uuid", progress.id.as_str())
        .header("content-length", "0")
}

fn created<S>(name: &RepositoryName, digest: &Digest) -> Reply<S> {
    Reply::new(StatusCode::CREATED)
        .header("location", blob_location(name, digest))
        .header("docker-content-digest", digest.to_string())
        .header("content-length", "0")
}

fn digest_param<N>(call: &Call<N>, key: &str) -> Result<Option<Digest>, ApiError> {
    call.query
        .get(key)
        .map(|d| d.parse().map_err(|e: crate::oci::DigestError| ApiError::digest_invalid(e.to_string())))
        .transpose()
}

/// POST `/v2/<name>/blobs/uploads/`: mount, single-request push, or a new session.
pub async fn start<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    name: &RepositoryName,
    call: Call<B::Native>,
) -> HandlerResult<B::Body> {
    if let Some(digest) = digest_param(&call, "mount")? {
        let from = call
            .query
            .get("from")
            .map(|f| RepositoryName::parse(f).map_err(|e| ApiError::name_invalid(format!("from: {e}"))))
            .transpose()?;
        // "Cross-repository mount needs pull on the source": otherwise, and for a mount
        // from anywhere by a caller who cannot read everywhere, a plain session follows,
        // which tells nothing about whether the blob exists.
        let may_mount = match (&call.identity, &from) {
            (None, _) => true,
            (Some(identity), Some(source)) => identity.is_allowed(source, crate::auth::Action::Pull),
            (Some(identity), None) => identity.admin,
        };
        if may_mount && registry.mount_blob(name, &digest, from.as_ref()).await? {
            return Ok(created(name, &digest));
        }
        // "if a registry ... is unable to mount the requested blob, it SHOULD return a 202"
    } else if let Some(digest) = digest_param(&call, "digest")? {
        registry.push_blob(name, &digest, call.take_body()).await?;
        return Ok(created(name, &digest));
    }
    let algorithm = match call.query.get("digest-algorithm") {
        None => Algorithm::Sha256,
        Some(a) => Algorithm::parse(a).map_err(|e| ApiError::digest_invalid(e.to_string()))?,
    };
    let progress = registry.start_upload(name, algorithm).await?;
    let mut reply = progress_reply(StatusCode::ACCEPTED, name, &progress)
        .header("oci-chunk-min-length", registry.config().part_size.to_string());
    if let Some(max) = registry.config().max_request_bytes {
        reply = reply.header("oci-chunk-max-length", max.to_string());
    }
    Ok(reply)
}

pub async fn status<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    name: &RepositoryName,
    id: &str,
) -> HandlerResult<B::Body> {
    let progress = registry.upload_status(name, &session_id(id)?).await?;
    Ok(progress_reply(StatusCode::NO_CONTENT, name, &progress))
}

pub async fn patch<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    name: &RepositoryName,
    id: &str,
    call: Call<B::Native>,
) -> HandlerResult<B::Body> {
    let range = params::content_range(call.header("content-range"))?;
    let progress = registry.append_chunk(name, &session_id(id)?, range, call.take_body()).await?;
    Ok(progress_reply(StatusCode::ACCEPTED, name, &progress))
}

pub async fn put<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    name: &RepositoryName,
    id: &str,
    call: Call<B::Native>,
) -> HandlerResult<B::Body> {
    let digest = digest_param(&call, "digest")?.ok_or_else(|| {
        ApiError::bad_request(ErrorCode::DigestInvalid, "the closing PUT must carry ?digest=<digest of the whole blob>")
    })?;
    let range = params::content_range(call.header("content-range"))?;
    registry.complete_upload(name, &session_id(id)?, &digest, range, call.take_body()).await?;
    Ok(created(name, &digest))
}

pub async fn cancel<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    name: &RepositoryName,
    id: &str,
) -> HandlerResult<B::Body> {
    registry.cancel_upload(name, &session_id(id)?).await?;
    Ok(Reply::new(StatusCode::NO_CONTENT).header("content-length", "0"))
}
