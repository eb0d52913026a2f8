//! Access control at the HTTP edge: which action each endpoint needs, and the answers
//! clients expect when it is missing — `401` with a `WWW-Authenticate` challenge that names
//! the scope to ask `/token` for, or `403 DENIED` when the caller is known but not allowed.

use super::route::Route;
use super::ApiError;
use crate::auth::{Action, Auth, AuthError, Identity};
use crate::oci::{ErrorCode, RepositoryName};
use http::{Method, StatusCode};

/// The repository and action an endpoint needs, if any.
pub fn needed(route: &Route, method: &Method) -> Option<(RepositoryName, Action)> {
    let action = |read: bool| if read { Action::Pull } else { Action::Push };
    match route {
        Route::Base | Route::Catalog | Route::Token | Route::AccessTokens | Route::AccessToken(_) => None,
        // Admin-only, checked by the admin handlers themselves.
        Route::Replicas | Route::ReplicaRouting(_) | Route::Repair | Route::Faults => None,
        Route::Tags(name) | Route::Referrers(name, _) => Some((name.clone(), Action::Pull)),
        Route::Manifest(name, _) | Route::Blob(name, _) if *method == Method::DELETE => {
            Some((name.clone(), Action::Delete))
        }
        Route::Manifest(name, _) | Route::Blob(name, _) => {
            Some((name.clone(), action(*method == Method::GET || *method == Method::HEAD)))
        }
        Route::UploadStart(name) | Route::Upload(name, _) => Some((name.clone(), Action::Push)),
    }
}

/// The actions a challenge asks for: pushing clients need pull too (docker asks for both).
fn scope_actions(action: Action) -> &'static str {
    match action {
        Action::Pull => "pull",
        Action::Push => "pull,push",
        Action::Delete => "delete",
    }
}

/// `Bearer realm="<origin>/token",service="...",scope="repository:<name>:<actions>"`.
pub fn challenge(auth: &Auth, origin: &str, needed: Option<&(RepositoryName, Action)>) -> String {
    let mut value = format!("Bearer realm=\"{origin}/token\",service=\"{}\"", auth.config.service);
    if let Some((name, action)) = needed {
        value.push_str(&format!(",scope=\"repository:{name}:{}\"", scope_actions(*action)));
    }
    value
}

pub fn unauthorized(auth: &Auth, origin: &str, needed: Option<&(RepositoryName, Action)>, message: String) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
        .with_header("www-authenticate", challenge(auth, origin, needed))
}

/// Turns refused credentials into 401 (or 429 for a throttled user, 503 for storage).
pub fn refused(auth: &Auth, origin: &str, needed: Option<&(RepositoryName, Action)>, error: AuthError) -> ApiError {
    match error {
        AuthError::Throttled { retry_after_secs } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests, error.to_string())
                .with_header("retry-after", retry_after_secs.to_string())
        }
        AuthError::Storage(e) => crate::registry::RegistryError::Storage(e).into(),
        other => unauthorized(auth, origin, needed, other.to_string()),
    }
}

/// Lets the request through, or says why not.
pub fn authorize(
    auth: &Auth,
    origin: &str,
    identity: &Identity,
    route: &Route,
    method: &Method,
) -> Result<(), ApiError> {
    if *route == Route::Base {
        if identity.is_anonymous() {
            return Err(unauthorized(auth, origin, None, "authentication required".into()));
        }
        return Ok(());
    }
    let Some(needed) = needed(route, method) else { return Ok(()) };
    let (name, action) = (&needed.0, needed.1);
    if identity.may(name, action) {
        return Ok(());
    }
    // Anonymous callers, and bearers whose token lacks a scope they could get, are told
    // how to authenticate; a known caller without the right is denied.
    if identity.is_anonymous() {
        let message = format!("{} access to {name} requires authentication", action.as_str());
        return Err(unauthorized(auth, origin, Some(&needed), message));
    }
    if identity.could(name, action) {
        // As docker/distribution does: the token is fine, its scope too narrow.
        let message = format!("the token's scope does not include {} on {name}", action.as_str());
        let mut error = unauthorized(auth, origin, Some(&needed), message);
        for (header, value) in &mut error.headers {
            if *header == "www-authenticate" {
                value.push_str(",error=\"insufficient_scope\"");
            }
        }
        return Err(error);
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::Denied,
        format!("{} access to repository {name} is denied", action.as_str()),
    ))
}

/// The registry's origin as the client reached it, for the challenge's realm.
pub fn origin(uri: &http::Uri, headers: &http::HeaderMap) -> String {
    if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) {
        return format!("{scheme}://{authority}");
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.len() < 256 && h.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
        .unwrap_or("localhost");
    format!("http://{host}")
}
