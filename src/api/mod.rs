//! The HTTP face of the registry: routes -> handlers -> `registry` services. It may call
//! `registry`, `oci`, `auth` (with its token port) and the `replication` admin port; it is
//! the one place where errors become HTTP responses.
//!
//! Every endpoint is declared once, in the route table ([`table`]): its path, its methods,
//! the right each needs and its handler. A request is matched to an endpoint, refused with
//! `405` for a method it does not have or `404` when its feature is off, let through by the
//! access decision ([`access`]), and answered by the handler.
//!
//! The types are the `http` crate's, so the same code runs natively in tests and on
//! Workers, where `edge` converts requests and responses at the boundary.

mod access;
mod access_tokens;
pub mod admin;
mod blobs;
mod discovery;
mod drain;
pub mod endpoint;
pub mod error;
mod gc;
mod manifests;
pub mod mirror;
pub mod params;
#[cfg(test)]
mod parsing_tests;
pub mod reply;
mod repositories;
pub mod route;
pub mod table;
mod token;
mod uploads;
mod usage;

pub use blobs::{CACHE_STATUS_HEADER, IMMUTABLE_CACHE_CONTROL};
pub use discovery::CATALOG_SCAN_LIMIT;
pub use error::ApiError;
pub use reply::{Body, Reply};

pub use table::Services;

use crate::auth::{Action, Auth, BlobTokenStore, Identity, TokenStore};
use crate::mirror::MirrorConfig;
use crate::registry::{Registry, RequestBody};
use crate::replication::admin::ReplicationAdmin;
use crate::storage::{BlobStore, MetaStore};
use endpoint::Right;
use http::{HeaderMap, Method, Request, Response};
use params::Query;

/// A request as the handlers see it; `N` is the store's native body type.
pub struct Call<N> {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Query,
    /// Who is calling, once authenticated; `None` when access control is off, or when the
    /// endpoint authenticates for itself (`/token`).
    pub identity: Option<Identity>,
    /// The registry's origin as the client sees it (for challenges).
    pub origin: String,
    /// The prefix whose root the request's host is (`MIRROR_HOSTS`), if any: its token
    /// requests name the names it maps.
    pub mirror_prefix: Option<String>,
    body: drain::DrainableBody<N>,
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
    pub fn is_allowed_to_pull(&self, name: &crate::oci::RepositoryName) -> bool {
        self.identity.as_ref().is_none_or(|i| i.is_allowed(name, Action::Pull))
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
/// Access tokens are kept in the registry's blob store, so they replicate with it.
pub async fn handle_with<B: BlobStore, M: MetaStore, A: ReplicationAdmin>(
    registry: &Registry<B, M>,
    auth: Option<&Auth>,
    replication: Option<&A>,
    request: Request<RequestBody<B::Native>>,
) -> Response<Body<B::Body>> {
    handle_replicated(registry, auth, replication, None, request).await
}

/// [`handle_with`] with the garbage collector's settings (`None`: off): with replicas its
/// admin endpoints run over the replication port's collector view.
pub async fn handle_replicated<B: BlobStore, M: MetaStore, A: ReplicationAdmin>(
    registry: &Registry<B, M>,
    auth: Option<&Auth>,
    replication: Option<&A>,
    gc: Option<crate::lifecycle::gc::GcConfig>,
    request: Request<RequestBody<B::Native>>,
) -> Response<Body<B::Body>> {
    let tokens = BlobTokenStore::new(registry.blob_store());
    let services =
        Services { registry, auth, tokens: &tokens, replication, gc, retention: None, usage: None, mirror: None };
    serve(services, request).await
}

/// [`handle`] for a registry with one bucket: the garbage collector's (`gc`, whose runs
/// apply the `retention` policies) and the usage count's (`usage`) admin endpoints answer
/// while they are on.
pub async fn handle_collected<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    auth: Option<&Auth>,
    gc: Option<crate::lifecycle::gc::GcConfig>,
    retention: Option<&crate::lifecycle::retention::RetentionConfig>,
    usage: Option<crate::lifecycle::usage::UsageConfig>,
    request: Request<RequestBody<B::Native>>,
) -> Response<Body<B::Body>> {
    let tokens = BlobTokenStore::new(registry.blob_store());
    let services = Services::<_, _, _, admin::NoReplication> {
        registry,
        auth,
        tokens: &tokens,
        replication: None,
        gc,
        retention,
        usage,
        mirror: None,
    };
    serve(services, request).await
}

/// Answers one request with these services.
pub async fn serve<B: BlobStore, M: MetaStore, T: TokenStore, A: ReplicationAdmin>(
    services: Services<'_, B, M, T, A>,
    request: Request<RequestBody<B::Native>>,
) -> Response<Body<B::Body>> {
    let (parts, body) = request.into_parts();
    let body = drain::DrainableBody::new(body);
    let host = parts.uri.authority().map(|a| a.as_str().to_owned());
    let host = host.or_else(|| parts.headers.get("host")?.to_str().ok().map(str::to_owned));
    let host = host.as_deref();
    // A mirror host's root is an upstream's prefix (docker's `registry-mirrors`).
    let mirror_prefix = services.mirror.zip(host).and_then(|(m, host)| m.config().host_prefix(host)).map(str::to_owned);
    let mapped = mirror_prefix.as_deref().and_then(|prefix| MirrorConfig::host_path(prefix, parts.uri.path()));
    let path = mapped.as_deref().unwrap_or(parts.uri.path()).to_owned();
    let mut call = Call {
        method: parts.method,
        origin: access::origin(&parts.uri, &parts.headers),
        headers: parts.headers,
        query: Query::parse(parts.uri.query()),
        identity: None,
        mirror_prefix: None,
        body: body.clone(),
    };
    call.mirror_prefix = mirror_prefix.clone();
    let reply = answer(services, &path, call).await;
    // A mirror host's challenges name the names its clients know.
    let reply = match (reply, mirror_prefix) {
        (Err(mut e), Some(prefix)) => {
            let (mapped, plain) = (format!("scope=\"repository:{prefix}/"), "scope=\"repository:");
            for (_, value) in e.headers.iter_mut().filter(|(name, _)| *name == "www-authenticate") {
                *value = value.replace(&mapped, plain);
            }
            Err(e)
        }
        (reply, _) => reply,
    };
    // A request refused before its body was read still has bytes in flight; answering
    // without reading them makes some HTTP/1.1 peers (workerd's dev proxy among them)
    // reset the connection and report a 503 instead of our error.
    body.drain(drain::DRAIN_LIMIT).await;
    reply.unwrap_or_else(Reply::from).into_response()
}

/// The request's way through its endpoint's declaration: the path (`404`, `400` for bad
/// parameters), the body limit (`413`), the method (`405` with `Allow`), the feature
/// (`404` while it is off), the right (`401`/`403`), and then the handler.
async fn answer<B: BlobStore, M: MetaStore, T: TokenStore, A: ReplicationAdmin>(
    services: Services<'_, B, M, T, A>,
    path: &str,
    mut call: Call<B::Native>,
) -> HandlerResult<B::Body> {
    let table = table::sections::<B, M, T, A>();
    let found = endpoint::find(&table, &call.method, path)?;
    check_body_limit(services.registry.config().max_request_bytes, &call)?;
    let operation = found.endpoint.operation(&call.method)?;
    if let Some(feature) = found.section.feature.as_ref().filter(|f| !(f.is_on)(&services)) {
        return Err(feature.off_error());
    }
    if let (Right::Repository(Action::Push), Some(name)) = (operation.right, found.params.name.as_ref()) {
        if let Some((_, route)) = services.upstream_of(name) {
            return Err(mirror::refuse_push(&route, name));
        }
    }
    let needs = access::Needs::of(operation.right, &found.params)?;
    let now_ms = services.registry.now_millis();
    call.identity = access::decide(services.auth, services.tokens, &call, now_ms, &needs).await?;
    (operation.handler)(services, found.params, call).await
}

/// Refuses a body larger than the platform would let through, so local runs behave as a
/// deployment does; the message says how to push instead.
fn check_body_limit<N: 'static>(limit: Option<u64>, call: &Call<N>) -> Result<(), ApiError> {
    let declared = call.header("content-length").and_then(|l| l.trim().parse::<u64>().ok());
    match (limit, declared) {
        (Some(limit), Some(length)) if length > limit => Err(ApiError::body_too_large(limit, Some(length))),
        _ => Ok(()),
    }
}
