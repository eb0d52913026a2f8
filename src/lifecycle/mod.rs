//! The lifecycle feature: garbage collection, retention and repository delete.
//!
//! It may call `oci`, `ids` and `storage`, never `registry`, `api` or `edge`.

pub mod retention;
