//! The route table: the core distribution API declared here, then one section per feature,
//! each declared beside its handlers (access control in `token`, replication in `admin`).
//! A feature adds its endpoints by adding its section to [`sections`]; while it is off its
//! routes answer `404 UNSUPPORTED` saying so.
//!
//! The distribution endpoints are numbered as in the spec's table (end-1 ... end-14).

use super::endpoint::{Endpoint, Operation, Right, Section};
use super::route::{Params, PathShape, Segment};
use super::{
    admin, blobs, discovery, gc, manifests, mirror, repositories, token, uploads, usage, Call, HandlerResult, Reply,
};
use crate::auth::{Action, Auth, TokenStore};
use crate::mirror::{Mirror, Route};
use crate::oci::RepositoryName;
use crate::registry::Registry;
use crate::replication::admin::ReplicationAdmin;
use crate::storage::{BlobStore, MetaStore};
use futures::future::LocalBoxFuture;
use http::{Method, StatusCode};

/// What handlers may use to answer one request.
pub struct Services<'a, B: BlobStore, M, T, A> {
    pub registry: &'a Registry<B, M>,
    /// `None` when access control is off (an open registry).
    pub auth: Option<&'a Auth>,
    /// Where access and refresh tokens are kept.
    pub tokens: &'a T,
    /// `None` without replication.
    pub replication: Option<&'a A>,
    /// The garbage collector's settings; `None` while it is off.
    pub gc: Option<crate::lifecycle::gc::GcConfig>,
    /// The retention policies the collector's runs apply; `None` when none are set.
    pub retention: Option<&'a crate::lifecycle::retention::RetentionConfig>,
    /// The storage usage count's settings; `None` while it is off.
    pub usage: Option<crate::lifecycle::usage::UsageConfig>,
    /// The pull-through cache's upstreams; `None` when no `UPSTREAMS` are set.
    pub mirror: Option<&'a Mirror<B::Native>>,
}

impl<B: BlobStore, M, T, A> Clone for Services<'_, B, M, T, A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: BlobStore, M, T, A> Copy for Services<'_, B, M, T, A> {}

impl<'a, B: BlobStore, M, T, A> Services<'a, B, M, T, A> {
    /// The pull-through cache and the upstream `name` is cached from, if it is under one.
    pub fn upstream_of<'n>(&self, name: &'n RepositoryName) -> Option<(&'a Mirror<B::Native>, Route<'a>)> {
        let mirror = self.mirror?;
        Some((mirror, mirror.config().route(name)?))
    }
}

/// Answers one operation, given the path's parameters and the request.
pub type Handler<B, M, T, A> = for<'a> fn(
    Services<'a, B, M, T, A>,
    Params,
    Call<<B as BlobStore>::Native>,
) -> LocalBoxFuture<'a, HandlerResult<<B as BlobStore>::Body>>;

/// A section of the route table over these services.
pub type RouteSection<'a, B, M, T, A> = Section<Services<'a, B, M, T, A>, Handler<B, M, T, A>>;

/// An operation of the table; a helper so each handler closure is typed as a [`Handler`].
pub fn op<B: BlobStore, M, T, A>(
    method: Method,
    right: Right,
    handler: Handler<B, M, T, A>,
) -> Operation<Handler<B, M, T, A>> {
    Operation::new(method, right, handler)
}

/// The whole table: the core API, then each feature.
pub fn sections<'a, B: BlobStore, M: MetaStore, T: TokenStore, A: ReplicationAdmin>(
) -> Vec<RouteSection<'a, B, M, T, A>> {
    vec![core(), token::routes(), admin::routes(), gc::routes(), repositories::routes(), usage::routes()]
}

const PULL: Right = Right::Repository(Action::Pull);
const PUSH: Right = Right::Repository(Action::Push);
const DELETE: Right = Right::Repository(Action::Delete);

/// The distribution API. Order matters among the name shapes: the first whose literal
/// segments match claims the path, so `.../blobs/uploads` is an upload before it is a blob.
fn core<'a, B: BlobStore, M: MetaStore, T: TokenStore, A: ReplicationAdmin>() -> RouteSection<'a, B, M, T, A> {
    use Method as V;
    use PathShape::{Exact, Name};
    use Segment::{Digest, Id, Lit, Reference};
    let endpoints = vec![
        // end-1
        Endpoint {
            name: "base",
            paths: &[Exact("/v2/"), Exact("/v2")],
            operations: vec![
                op(V::GET, Right::Authenticated, |_, _, _| Box::pin(async { Ok(base()) })),
                op(V::HEAD, Right::Authenticated, |_, _, _| Box::pin(async { Ok(base()) })),
            ],
        },
        Endpoint {
            name: "catalog",
            paths: &[Exact("/v2/_catalog")],
            operations: vec![op(V::GET, Right::Anyone, |s, _, call| {
                Box::pin(async move { discovery::catalog(s.registry, &call).await })
            })],
        },
        // end-4, end-11
        Endpoint {
            name: "upload start",
            paths: &[Name(&[Lit("blobs"), Lit("uploads"), Lit("")]), Name(&[Lit("blobs"), Lit("uploads")])],
            operations: vec![op(V::POST, PUSH, |s, p, call| {
                Box::pin(async move { uploads::start(s.registry, p.name()?, call).await })
            })],
        },
        // end-5, end-6, end-13, end-14
        Endpoint {
            name: "upload session",
            paths: &[Name(&[Lit("blobs"), Lit("uploads"), Id])],
            operations: vec![
                op(V::GET, PUSH, |s, p, _| {
                    Box::pin(async move { uploads::status(s.registry, p.name()?, p.text()?).await })
                }),
                op(V::PATCH, PUSH, |s, p, call| {
                    Box::pin(async move { uploads::patch(s.registry, p.name()?, p.text()?, call).await })
                }),
                op(V::PUT, PUSH, |s, p, call| {
                    Box::pin(async move { uploads::put(s.registry, p.name()?, p.text()?, call).await })
                }),
                op(V::DELETE, PUSH, |s, p, _| {
                    Box::pin(async move { uploads::cancel(s.registry, p.name()?, p.text()?).await })
                }),
            ],
        },
        // end-8
        Endpoint {
            name: "tags",
            paths: &[Name(&[Lit("tags"), Lit("list")])],
            operations: vec![op(V::GET, PULL, |s, p, call| {
                Box::pin(async move { discovery::tags(s.registry, p.name()?, &call).await })
            })],
        },
        // end-3, end-7, end-9
        Endpoint {
            name: "manifest",
            paths: &[Name(&[Lit("manifests"), Reference])],
            operations: vec![
                op(V::GET, PULL, manifest_get),
                op(V::HEAD, PULL, manifest_get),
                op(V::PUT, PUSH, |s, p, call| {
                    Box::pin(async move { manifests::put(s.registry, p.name()?, p.reference()?, call).await })
                }),
                op(V::DELETE, DELETE, |s, p, _| {
                    Box::pin(async move { manifests::delete(s.registry, p.name()?, p.reference()?).await })
                }),
            ],
        },
        // end-2, end-10
        Endpoint {
            name: "blob",
            paths: &[Name(&[Lit("blobs"), Digest])],
            operations: vec![
                op(V::GET, PULL, blob_get),
                op(V::HEAD, PULL, blob_get),
                op(V::DELETE, DELETE, |s, p, _| {
                    Box::pin(async move { blobs::delete(s.registry, p.name()?, p.digest()?).await })
                }),
            ],
        },
        // end-12
        Endpoint {
            name: "referrers",
            paths: &[Name(&[Lit("referrers"), Digest])],
            operations: vec![op(V::GET, PULL, |s, p, call| {
                Box::pin(async move { discovery::referrers(s.registry, p.name()?, p.digest()?, &call).await })
            })],
        },
    ];
    Section { feature: None, endpoints }
}

/// The version check (end-1): `200` with an empty JSON object says this is a registry of
/// the distribution API and the caller may use it.
fn base<S>() -> Reply<S> {
    Reply::new(StatusCode::OK).json(&serde_json::json!({}))
}

fn manifest_get<'a, B: BlobStore, M: MetaStore, T, A>(
    s: Services<'a, B, M, T, A>,
    p: Params,
    call: Call<B::Native>,
) -> LocalBoxFuture<'a, HandlerResult<B::Body>> {
    Box::pin(async move {
        let (name, reference) = (p.name()?, p.reference()?);
        match s.upstream_of(name) {
            Some((cache, route)) => mirror::manifest(s.registry, cache, route, name, reference, &call).await,
            None => manifests::get(s.registry, name, reference, &call).await,
        }
    })
}

fn blob_get<'a, B: BlobStore, M: MetaStore, T, A>(
    s: Services<'a, B, M, T, A>,
    p: Params,
    call: Call<B::Native>,
) -> LocalBoxFuture<'a, HandlerResult<B::Body>> {
    Box::pin(async move {
        let (name, digest) = (p.name()?, p.digest()?);
        match s.upstream_of(name) {
            Some((cache, route)) => mirror::blob(s.registry, cache, route, name, digest, &call).await,
            None => blobs::get(s.registry, name, digest, &call).await,
        }
    })
}
