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
    /// An error listed before this one in the body, for clients that act on the first
    /// error only (see [`ApiError::body_too_large`]).
    pub leading: Option<(ErrorCode, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), headers: Vec::new(), leading: None }
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
    /// as it arrived); `OCI-Chunk-Max-Length` names the limit. An `UNSUPPORTED` error comes
    /// first, saying how to push instead: docker acts on the first error only, and retries
    /// `SIZE_INVALID` four more times over about a minute (the same body, refused each
    /// time), while it gives up on `UNSUPPORTED` at once and shows its message.
    pub fn body_too_large(limit: u64, declared: Option<u64>) -> Self {
        let body = match declared {
            Some(length) => format!("a request body of {length} bytes"),
            None => "a request body".to_owned(),
        };
        let advice = format!(
            "this registry takes at most {limit} bytes per request (MAX_REQUEST_BODY_MB), and {body} went past it: \
             upload the blob in chunks (PATCH with Content-Range) of at most {limit} bytes. docker, podman and \
             containerd send a layer in one request: push such a layer with edge-push (scripts/push) or regctl"
        );
        let mut error =
            Self::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::SizeInvalid, format!("{body} is over {limit} bytes"))
                .with_header("oci-chunk-max-length", limit.to_string());
        error.leading = Some((ErrorCode::Unsupported, advice));
        error
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The JSON body: `{"errors":[{"code":...,"message":...,"detail":...}]}`.
    pub fn body(&self) -> Vec<u8> {
        let entry = |code: ErrorCode, message: &str| serde_json::json!({ "code": code.as_str(), "message": message, "detail": null });
        let mut errors: Vec<serde_json::Value> = self.leading.iter().map(|(c, m)| entry(*c, m)).collect();
        errors.push(entry(self.code, &self.message));
        let body = serde_json::json!({ "errors": errors });
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
            // An immutable tag: the change is not allowed, whoever asks (spec `DENIED`).
            RegistryError::Immutable(_) => (S::FORBIDDEN, C::Denied),
            RegistryError::UpstreamTooLarge { .. } => (S::BAD_GATEWAY, C::BlobUnknown),
            // A push into a repository being deleted: refused until the deletion is done.
            RegistryError::RepositoryDeleting(_) => (S::FORBIDDEN, C::Denied),
            // A backend failure is ours, never the client's, and passes: "503 Service
            // Unavailable" with `Retry-After` tells clients to retry (RFC 9110 15.6.4).
            // Nothing already accepted is undone by it.
            // Content the collector is deleting cannot be stored again until it is gone,
            // which takes one of its steps: a retry after a short while succeeds.
            RegistryError::BeingCollected(_) | RegistryError::Storage(StorageError::Backend(_)) => {
                return ApiError::new(S::SERVICE_UNAVAILABLE, C::Unsupported, message)
                    .with_header("retry-after", RETRY_AFTER_SECONDS.to_string());
            }
            // A storage limit the registry should have kept (a bug): retrying cannot help.
            RegistryError::Storage(StorageError::Limit(_)) => (S::INTERNAL_SERVER_ERROR, C::Unsupported),
        };
        ApiError::new(status, code, message)
    }
}
