//! The lifecycle feature: garbage collection ([`gc`]), retention policies ([`retention`])
//! and storage usage ([`usage`]). It may call `oci`, `ids` and `storage`, never
//! `registry`, `api` or `edge`: it works on the stored keys, and meets pushes only through
//! the content-state protocol of `storage::content_state`. Its jobs reach storage through
//! a [`meter::Meter`], which counts each step's calls against its budget.

pub mod gc;
pub mod meter;
pub mod retention;
pub mod usage;

/// How a step of a lifecycle job (a collector run, a usage count) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stepped<J> {
    /// The job after the step (or as another step saved it, when that one won).
    pub job: J,
    /// Whether this step's progress was saved (false: another step saved first).
    pub saved: bool,
}
