//! # edge-registry
//!
//! A private OCI container registry that runs as a stateless Rust/WebAssembly handler on
//! Cloudflare Workers, with blob bytes in R2 and a fast metadata index in KV.
//!
//! The crate is layered; each layer may call only the ones below it:
//!
//! - [`api`]: HTTP routing (repository names contain `/`), headers, replies, and the one
//!   place where domain errors become spec-shaped HTTP errors.
//! - [`registry`]: the domain — uploads, blobs, manifests, tags, referrers, catalog, deletes —
//!   written against storage ports, with clock and ids injected.
//! - [`storage`]: the `BlobStore` (R2) and `MetaStore` (KV) ports, every key format, and
//!   in-memory doubles that enforce R2's and KV's limits.
//! - [`auth`]: who the caller is and what they may do (users, access tokens, bearer
//!   tokens of the Docker token protocol, anonymous pull).
//! - [`replication`]: opt-in geo-replication across R2 buckets: routing by location,
//!   read fallback, health back-off, queue-driven verified copies and a repair job.
//! - [`mirror`]: the pull-through cache's upstreams: names under a prefix are fetched from
//!   another registry on a miss (the Docker token flow or Basic to log in upstream).
//! - [`lifecycle`]: garbage collection, retention policies and repository delete, over
//!   the storage ports.
//! - [`oci`]: names, tags, digests, media types and manifests, validated by the spec's rules.
//! - [`ids`]: the injected source of fresh ids and the validated upload-session id, below
//!   `storage`, `registry` and `replication`, which all depend on its format.
//! - [`settings`]: every var and secret, parsed and checked once per isolate into one
//!   value with a section per feature; the layers above receive their section, and only
//!   `edge` reads the environment.
//!
//! `edge` (compiled for wasm32 only) is the workers-rs glue: it binds R2 and KV to the
//! ports and converts between Workers requests and the `api` layer. Everything else is
//! plain Rust and tested natively.

pub mod api;
pub mod auth;
pub mod ids;
pub mod lifecycle;
pub mod mirror;
pub mod oci;
pub mod registry;
pub mod replication;
pub mod settings;
pub mod storage;

#[cfg(target_arch = "wasm32")]
mod edge;
