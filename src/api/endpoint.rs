//! What the route table is made of: each endpoint declared once — its name, its path
//! shapes, and per method the right it needs and its handler — grouped in sections, one
//! for the core API and one per feature that may be off. Routing, `405` with `Allow`, the
//! access decision and dispatch all read these declarations.

use super::error::ApiError;
use super::route::{Params, PathShape};
use crate::auth::Action;
use crate::oci::ErrorCode;
use http::{Method, StatusCode};

/// What a method on an endpoint requires of the caller when access control is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Nothing is checked before the handler, which runs its own protocol (the token
    /// endpoint authenticates whatever credentials it is given).
    Open,
    /// Anyone, anonymous included; credentials, when presented, must be valid (the
    /// catalog then lists what they may pull).
    Anyone,
    /// Any authenticated caller (`/v2/` tells clients to log in).
    Authenticated,
    /// This action on the repository named in the path.
    Repository(Action),
    /// An admin. The text names what is being done, for the refusal.
    Admin(&'static str),
}

/// One method of an endpoint: the right it needs and the handler that answers it.
pub struct Operation<H> {
    pub method: Method,
    pub right: Right,
    pub handler: H,
}

impl<H> Operation<H> {
    pub fn new(method: Method, right: Right, handler: H) -> Self {
        Operation { method, right, handler }
    }
}

/// One endpoint. `paths` are tried in order; `operations` list its methods in the order
/// the `Allow` header names them.
pub struct Endpoint<H> {
    pub name: &'static str,
    pub paths: &'static [PathShape],
    pub operations: Vec<Operation<H>>,
}

impl<H> Endpoint<H> {
    /// The methods this endpoint answers; anything else is `405 UNSUPPORTED`.
    pub fn methods(&self) -> Vec<Method> {
        self.operations.iter().map(|o| o.method.clone()).collect()
    }

    /// The operation for `method`, or `405` with `Allow`.
    pub fn operation(&self, method: &Method) -> Result<&Operation<H>, ApiError> {
        self.operations
            .iter()
            .find(|o| o.method == *method)
            .ok_or_else(|| ApiError::method_not_allowed(&self.methods()))
    }
}

/// A feature whose routes exist only when it is configured. `C` is what handlers are
/// given (the request's services), from which `is_on` tells.
pub struct Feature<C> {
    pub name: &'static str,
    pub is_on: fn(&C) -> bool,
    /// The message of the `404 UNSUPPORTED` its routes answer while it is off.
    pub off: &'static str,
}

impl<C> Feature<C> {
    /// The answer of this feature's routes while it is off.
    pub fn off_error(&self) -> ApiError {
        feature_off(self.off)
    }
}

/// `404 UNSUPPORTED`: a feature that is off, as `message` says.
pub fn feature_off(message: &'static str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::Unsupported, message)
}

/// Endpoints that come and go together: the core API (no feature), or one feature's.
pub struct Section<C, H> {
    pub feature: Option<Feature<C>>,
    pub endpoints: Vec<Endpoint<H>>,
}

/// A path matched to its endpoint.
pub struct Found<'t, C, H> {
    pub section: &'t Section<C, H>,
    pub endpoint: &'t Endpoint<H>,
    pub params: Params,
}

/// Finds the endpoint of `method path`: fixed shapes first, in table order, then the
/// `/v2/<name>/...` shapes in table order, the first of which to match claims the path.
pub fn find<'t, C, H>(table: &'t [Section<C, H>], method: &Method, path: &str) -> Result<Found<'t, C, H>, ApiError> {
    for names in [false, true] {
        for section in table {
            for endpoint in &section.endpoints {
                for shape in endpoint.paths.iter().filter(|shape| shape.is_name() == names) {
                    if let Some(params) = shape.matches(method, path) {
                        return Ok(Found { section, endpoint, params: params? });
                    }
                }
            }
        }
    }
    Err(ApiError::not_found(path))
}
