//! The lifecycle feature: garbage collection ([`gc`]) and retention policies
//! ([`retention`]). It may call `oci`, `ids` and `storage`, never `registry`, `api` or
//! `edge`: it works on the stored keys, and meets pushes only through the content-state
//! protocol of `storage::content_state`.

pub mod gc;
pub mod retention;
