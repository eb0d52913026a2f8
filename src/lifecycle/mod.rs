//! The lifecycle feature: garbage collection ([`gc`]), retention policies ([`retention`])
//! and storage usage ([`usage`]). It may call `oci`, `ids` and `storage`, never
//! `registry`, `api` or `edge`: it works on the stored keys, and meets pushes only through
//! the content-state protocol of `storage::content_state`. Its jobs reach storage through
//! a [`meter::Meter`], which counts each step's calls against its budget.

pub mod gc;
pub mod meter;
pub mod retention;
pub mod usage;
