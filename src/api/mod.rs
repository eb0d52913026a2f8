//! The HTTP face of the registry: routes -> handlers -> `registry` services. It may call
//! `registry`, `oci` and the `replication` admin port; it is the one place where errors
//! become HTTP responses.
//!
//! The types are the `http` crate's, so the same code runs natively in tests and on
//! Workers, where `edge` converts requests and responses at the boundary.

mod access;
pub mod admin;
mod blobs;
mod discovery;
mod drain;
pub mod error;
mod manifests;
pub mod params;
pub mod reply;
pub mod route;
mod token;
mod uploads;

pub use blobs::{CACHE_STATUS_HEADER, IMMUTABLE_CACHE_CONTROL};
pub use discovery::CATALOG_SCAN_LIMIT;
pub use error::ApiError;
pub use reply::{Body, Reply};

use crate::auth::{Action, Auth, Identity};
use crate::oci::ErrorCode;
use crate::registry::{Registry, RequestBody};
use crate::replication::ReplicationAdmin;
use crate::storage::{BlobStore, MetaStore};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use params::Query;
use route::Route;

/// A request as the handlers see it; `N` is the store's native body type.
pub struct Call<N> {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Query,
    /// Who is calling, once authenticated; `None` when access control is off.
    pub identity: Option<Identity>,
    /// The registry's origin as the client sees it (for challenges).
    pub origin: String,
    body: drain::BodySlot<N>,
}

impl<N: 'static> Call<N> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether `If-None-Match` names `etag` (the client already holds this content).
    pub fn etag_matches(&self, etag: &str) -> bool {
        self.header("if-none-match").is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    }

    /// Whether the caller may pull from `name` (always, with access control off).
    pub fn may_pull(&self, name: &crate::oci::RepositoryName) -> bool {
        self.identity.as_ref().is_none_or(|i| i.may(name, Action::Pull))
    }

    /// The request body, for the one handler step that reads it.
    pub fn take_body(&self) -> RequestBody<N> {
        self.body.take()
    }
}

pub type HandlerResult<S> = Result<Reply<S>, ApiError>;

/// Answers one request. Never panics on client input; every failure is a spec error.
/// `auth` is `None` when access control is off (an open registry).
pub async fn handle<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    auth: Option<&Auth>,
    request: Request<RequestBody<B::Native>>,
) -> Response<Body<B::Body>> {
    handle_with::<B, M, admin::NoReplication>(registry, auth, None, request).await
}

/// [`handle`] for a replicated registry: `replication` serves the `/admin/` endpoints.
pub async fn handle_with<B: BlobStore, M: MetaStore, A: ReplicationAdmin>(
    registry: &Registry<B, M>,
    auth: Option<&Auth>,
    replication: Option<&A>,
    request: Request<RequestBody<B::Native>>,
) -> Response<Body<B::Body>> {
    let (parts, body) = request.into_parts();
    let body = drain::BodySlot::new(body);
    let call = Call {
        method: parts.method,
        origin: access::origin(&parts.uri, &parts.headers),
        headers: parts.headers,
        query: Query::parse(parts.uri.query()),
        identity: None,
        body: body.clone(),
    };
    let reply = match route::parse_for(&call.method, parts.uri.path()) {
        Ok(route) => match check_body_limit(registry.config().max_request_bytes, &call) {
            Ok(()) if route.is_admin() && route.allowed_methods().contains(&call.method) => {
                admin::dispatch(registry, auth, replication, route, &call).await
            }
            Ok(()) => dispatch(registry, auth, route, call).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    // A request refused before its body was read still has bytes in flight; answering
    // without reading them makes some HTTP/1.1 peers (workerd's dev proxy among them)
    // reset the connection and report a 503 instead of our error.
    body.drain(drain::DRAIN_LIMIT).await;
    reply.unwrap_or_else(Reply::from).into_response()
}

/// Refuses a body larger than the platform would let through, so local runs behave as a
/// deployment does; the message says how to push instead.
fn check_body_limit<N: 'static>(limit: Option<u64>, call: &Call<N>) -> Result<(), ApiError> {
    let declared = call.header("content-length").and_then(|l| l.trim().parse::<u64>().ok());
    match (limit, declared) {
        (Some(limit), Some(length)) if length > limit => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            crate::oci::ErrorCode::SizeInvalid,
            format!(
                "request body of {length} bytes is over this registry's {limit}-byte limit; \
                 upload the blob in chunks (PATCH) of at most {limit} bytes"
            ),
        )
        .with_header("oci-chunk-max-length", limit.to_string())),
        _ => Ok(()),
    }
}

async fn dispatch<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    auth: Option<&Auth>,
    route: Route,
    mut call: Call<B::Native>,
) -> HandlerResult<B::Body> {
    if !route.allowed_methods().contains(&call.method) {
        return Err(ApiError::method_not_allowed(route.allowed_methods()));
    }
    match (auth, &route) {
        (None, Route::Token | Route::AccessTokens | Route::AccessToken(_)) => {
            return Err(ApiError::new(StatusCode::NOT_FOUND, ErrorCode::Unsupported, "access control is off"));
        }
        (Some(auth), Route::Token) => return token::token(registry, auth, &call).await,
        (Some(auth), Route::AccessTokens) => return token::access_tokens(registry, auth, &call).await,
        (Some(auth), Route::AccessToken(id)) => return token::revoke(registry, auth, id, &call).await,
        (Some(auth), _) => {
            let needed = access::needed(&route, &call.method);
            let identity = auth
                .authenticate(registry.blob_store(), call.header("authorization"), registry.now_millis())
                .await
                .map_err(|e| access::refused(auth, &call.origin, needed.as_ref(), e))?;
            access::authorize(auth, &call.origin, &identity, &route, &call.method)?;
            call.identity = Some(identity);
        }
        (None, _) => {}
    }
    match route {
        Route::Token | Route::AccessTokens | Route::AccessToken(_) => unreachable!("answered above"),
        Route::Replicas | Route::ReplicaRouting(_) | Route::Repair | Route::Faults => {
            Err(ApiError::new(StatusCode::NOT_FOUND, ErrorCode::Unsupported, "replication is off"))
        }
        Route::Base => Ok(Reply::new(StatusCode::OK).json(&serde_json::json!({}))),
        Route::Catalog => discovery::catalog(registry, &call).await,
        Route::Tags(name) => discovery::tags(registry, &name, &call).await,
        Route::Referrers(name, digest) => discovery::referrers(registry, &name, &digest, &call).await,
        Route::Manifest(name, reference) => match call.method {
            Method::PUT => manifests::put(registry, &name, &reference, call).await,
            Method::DELETE => manifests::delete(registry, &name, &reference).await,
            _ => manifests::get(registry, &name, &reference, &call).await,
        },
        Route::Blob(name, digest) => match call.method {
            Method::DELETE => blobs::delete(registry, &name, &digest).await,
            _ => blobs::get(registry, &name, &digest, &call).await,
        },
        Route::UploadStart(name) => uploads::start(registry, &name, call).await,
        Route::Upload(name, id) => match call.method {
            Method::GET => uploads::status(registry, &name, &id).await,
            Method::PATCH => uploads::patch(registry, &name, &id, call).await,
            Method::PUT => uploads::put(registry, &name, &id, call).await,
            _ => uploads::cancel(registry, &name, &id).await,
        },
    }
}
