//! The lifecycle feature: garbage collection ([`gc`]) and, beside it, retention and
//! repository deletes. It may call `oci`, `ids` and `storage`, never `registry`, `api` or
//! `edge`: it works on the stored keys, and meets pushes only through the content-state
//! protocol of `storage::content_state`.

pub mod gc;
