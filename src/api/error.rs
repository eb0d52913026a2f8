//! The one place where errors become HTTP: each domain error is mapped once to the spec's
//! status and code, and rendered as the spec's JSON error body.

use crate::oci::ErrorCode;
use crate::registry::RegistryError;
use crate::storage::StorageError;
use http::StatusCode;

/// Seconds a client is asked to wait before retrying after a storage failure. R2 outages
/// are usually brief, and with replicas the retry lands in the next healthy one at once.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// An error on its way to the client: status, spec code, a message a person understands,
/// and any headers the status calls for (`Allow`, `Range`, `Content-Range`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), headers: Vec::new() }
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn not_found(path: &str) -> Self {
        let shown: String = path.chars().take(200).collect();
        Self::new(StatusCode::NOT_FOUND, ErrorCode::Unsupported, format!("no endpoint at {shown}"))
    }

    pub fn name_invalid(message: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::NameInvalid, message)
    }

    pub fn digest_invalid(message: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::DigestInvalid, message)
    }

    pub fn reference_invalid(message: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::ManifestInvalid, format!("invalid tag or digest: {message}"))
    }

    pub fn manifest_unknown(message: String) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::ManifestUnknown, message)
    }

    pub fn method_not_allowed(allowed: &[http::Method]) -> Self {
        let list: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Unsupported,
            format!("this endpoint accepts {}", list.join(", ")),
        )
        .with_header("allow", list.join(", "))
    }

    /// `413 SIZE_INVALID` for a request body over the platform's limit (declared, or counted
    /// as it arrived), saying how to push instead; `OCI-Chunk-Max-Length` names the limit.
    pub fn body_too_large(limit: u64, declared: Option<u64>) -> Self {
        let body = match declared {
            Some(length) => format!("request body of {length} bytes"),
            None => "request body".to_owned(),
        };
        let message = format!(
            "{body} is over this registry's {limit}-byte limit (MAX_REQUEST_BODY_MB); upload the blob in chunks \
             (PATCH with Content-Range) of at most {limit} bytes: docker, podman and containerd send a layer in one \
             request, so push such a layer with edge-push (scripts/push in the registry's repository) or regctl"
        );
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::SizeInvalid, message)
            .with_header("oci-chunk-max-length", limit.to_string())
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The JSON body: `{"errors":[{"code":...,"message":...,"detail":...}]}`.
    pub fn body(&self) -> Vec<u8> {
        let body = serde_json::json!({
            "errors": [{ "code": self.code.as_str(), "message": self.message, "detail": null }]
        });
        serde_json::to_vec(&body).expect("error bodies always serialise")
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use ErrorCode as C;
        use StatusCode as S;
        let message = e.to_string();
        let (status, code) = match &e {
            RegistryError::NameInvalid(_) => (S::BAD_REQUEST, C::NameInvalid),
            RegistryError::NameUnknown(_) => (S::NOT_FOUND, C::NameUnknown),
            RegistryError::BlobUnknown(_) => (S::NOT_FOUND, C::BlobUnknown),
            RegistryError::UploadUnknown => (S::NOT_FOUND, C::BlobUploadUnknown),
            RegistryError::UploadInvalid(_) => (S::BAD_REQUEST, C::BlobUploadInvalid),
            RegistryError::ChunkOutOfOrder { expected } => {
                let last = expected.saturating_sub(1);
                return ApiError::new(S::RANGE_NOT_SATISFIABLE, C::BlobUploadInvalid, message)
                    .with_header("range", format!("0-{last}"));
            }
            RegistryError::DigestInvalid(_) => (S::BAD_REQUEST, C::DigestInvalid),
            RegistryError::ManifestInvalid(_) => (S::BAD_REQUEST, C::ManifestInvalid),
            RegistryError::ManifestUnknown(_) => (S::NOT_FOUND, C::ManifestUnknown),
            RegistryError::ManifestBlobUnknown(_) => (S::BAD_REQUEST, C::ManifestBlobUnknown),
            RegistryError::ManifestTooLarge(_) => (S::PAYLOAD_TOO_LARGE, C::SizeInvalid),
            RegistryError::RangeNotSatisfiable { size } => {
                return ApiError::new(S::RANGE_NOT_SATISFIABLE, C::SizeInvalid, message)
                    .with_header("content-range", format!("bytes */{size}"));
            }
            RegistryError::BodyTooLarge(limit) => return ApiError::body_too_large(*limit, None),
            RegistryError::BodyInterrupted(_) => (S::BAD_REQUEST, C::BlobUploadInvalid),
            // A backend failure is ours, never the client's, and passes: "503 Service
            // Unavailable" with `Retry-After` tells clients to retry (RFC 9110 15.6.4).
            // Nothing already accepted is undone by it.
            RegistryError::Storage(StorageError::Backend(_)) => {
                return ApiError::new(S::SERVICE_UNAVAILABLE, C::Unsupported, message)
                    .with_header("retry-after", RETRY_AFTER_SECONDS.to_string());
            }
            // A storage limit the registry should have kept (a bug): retrying cannot help.
            RegistryError::Storage(StorageError::Limit(_)) => (S::INTERNAL_SERVER_ERROR, C::Unsupported),
        };
        ApiError::new(status, code, message)
    }
}
