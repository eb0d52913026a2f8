//! The access decision at the HTTP edge: what an operation needs (its [`Right`] from the
//! route table, bound to the repository in the path), whether the caller has it, and the
//! answers clients expect when not — `401` with a `WWW-Authenticate` challenge that names
//! the scope to ask `/token` for (Basic for the admin API), or `403 DENIED` when the
//! caller is known but not allowed.

use super::endpoint::Right;
use super::route::Params;
use super::{ApiError, Call};
use crate::auth::{Action, Auth, AuthError, Credential, Identity, TokenStore};
use crate::oci::{ErrorCode, RepositoryName};
use http::StatusCode;

/// What one request needs: its operation's [`Right`], on the path's repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needs {
    /// Nothing checked here (the handler authenticates as its protocol says).
    Open,
    /// Valid credentials if any are presented; anonymous callers are welcome.
    Anyone,
    /// A caller who is not anonymous.
    Authenticated,
    /// This action on this repository.
    Repository(RepositoryName, Action),
    /// An admin, for the named purpose.
    Admin(&'static str),
}

impl Needs {
    /// Binds `right` to the repository in `params`.
    pub fn of(right: Right, params: &Params) -> Result<Needs, ApiError> {
        Ok(match right {
            Right::Open => Needs::Open,
            Right::Anyone => Needs::Anyone,
            Right::Authenticated => Needs::Authenticated,
            Right::Repository(action) => Needs::Repository(params.name()?.clone(), action),
            Right::Admin(what) => Needs::Admin(what),
        })
    }

    /// The repository and action to name in a challenge's scope, if any.
    fn scope(&self) -> Option<(RepositoryName, Action)> {
        match self {
            Needs::Repository(name, action) => Some((name.clone(), *action)),
            _ => None,
        }
    }
}

/// Decides whether the caller may go on, and who they are. `None` when access control is
/// off (anyone may do anything, admin included) or when the operation checks for itself.
pub async fn decide<T: TokenStore, N: 'static>(
    auth: Option<&Auth>,
    tokens: &T,
    call: &Call<N>,
    now_ms: u64,
    needs: &Needs,
) -> Result<Option<Identity>, ApiError> {
    let Some(auth) = auth else { return Ok(None) };
    match needs {
        Needs::Open => Ok(None),
        Needs::Admin(what) => require_admin(auth, tokens, call, now_ms, what).await.map(Some),
        needs => {
            let scope = needs.scope();
            let identity = auth
                .authenticate(tokens, call.header("authorization"), now_ms)
                .await
                .map_err(|e| refused(auth, &call.origin, scope.as_ref(), e))?;
            authorize(auth, &call.origin, &identity, needs)?;
            Ok(Some(identity))
        }
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

/// `Bearer realm="<origin>/token",service="...",scope="repository:<name>:<actions>"`; the
/// scope part only when the request names the `required_scope` (repository and action).
pub fn challenge(auth: &Auth, origin: &str, required_scope: Option<&(RepositoryName, Action)>) -> String {
    let mut value = format!("Bearer realm=\"{origin}/token\",service=\"{}\"", auth.config.service);
    if let Some((name, action)) = required_scope {
        value.push_str(&format!(",scope=\"repository:{name}:{}\"", scope_actions(*action)));
    }
    value
}

/// `401` with a Bearer challenge for `required_scope` (see [`challenge`]).
pub fn unauthorized(
    auth: &Auth,
    origin: &str,
    required_scope: Option<&(RepositoryName, Action)>,
    message: String,
) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
        .with_header("www-authenticate", challenge(auth, origin, required_scope))
}

/// Turns refused credentials into 401 (or 429 for a throttled user, 503 for storage).
pub fn refused(
    auth: &Auth,
    origin: &str,
    required_scope: Option<&(RepositoryName, Action)>,
    error: AuthError,
) -> ApiError {
    match error {
        AuthError::Throttled { retry_after_secs } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests, error.to_string())
                .with_header("retry-after", retry_after_secs.to_string())
        }
        AuthError::Storage(e) => crate::registry::RegistryError::Storage(e).into(),
        other => unauthorized(auth, origin, required_scope, other.to_string()),
    }
}

/// `401` asking for a password: the token endpoint and the admin API take Basic credentials.
pub fn basic_challenge(auth: &Auth, message: String) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
        .with_header("www-authenticate", format!("Basic realm=\"{}\"", auth.config.service))
}

/// Refused credentials where a password is expected: a Basic challenge (429 and 503 as
/// for [`refused`]).
pub fn refused_basic(auth: &Auth, error: AuthError) -> ApiError {
    match error {
        AuthError::Throttled { .. } | AuthError::Storage(_) => refused(auth, "", None, error),
        other => basic_challenge(auth, other.to_string()),
    }
}

/// Lets an authenticated caller through, or says why not.
fn authorize(auth: &Auth, origin: &str, identity: &Identity, needs: &Needs) -> Result<(), ApiError> {
    let (name, action) = match needs {
        Needs::Authenticated if identity.is_anonymous() => {
            return Err(unauthorized(auth, origin, None, "authentication required".into()));
        }
        Needs::Repository(name, action) => (name, *action),
        _ => return Ok(()),
    };
    if identity.is_allowed(name, action) {
        return Ok(());
    }
    // What the challenge asks a token for.
    let required_scope = (name.clone(), action);
    // Anonymous callers, and bearers whose token lacks a scope they could get, are told
    // how to authenticate; a known caller without the right is denied.
    if identity.is_anonymous() {
        let message = format!("{} access to {name} requires authentication", action.as_str());
        return Err(unauthorized(auth, origin, Some(&required_scope), message));
    }
    if identity.could_obtain(name, action) {
        // As docker/distribution does: the token is fine, its scope too narrow.
        let message = format!("the token's scope does not include {} on {name}", action.as_str());
        let mut error = unauthorized(auth, origin, Some(&required_scope), message);
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

/// Authenticates the caller and requires an admin: an admin user's Basic credentials, or
/// an access token created with `"admin": true` used as a password. `401` with a Basic
/// challenge when anonymous, unauthenticated or presenting a bearer token (which carries
/// repository scopes only), `403 DENIED` for anyone else. `what` names the action.
async fn require_admin<T: TokenStore, N: 'static>(
    auth: &Auth,
    tokens: &T,
    call: &Call<N>,
    now_ms: u64,
    what: &str,
) -> Result<Identity, ApiError> {
    let identity =
        auth.authenticate(tokens, call.header("authorization"), now_ms).await.map_err(|e| refused_basic(auth, e))?;
    if identity.is_anonymous() {
        return Err(basic_challenge(auth, format!("{what} requires an admin login")));
    }
    if let Credential::Bearer { .. } = identity.credential {
        return Err(basic_challenge(
            auth,
            format!(
                "{what} requires an admin's password or admin access token; bearer tokens carry repository scopes only"
            ),
        ));
    }
    if !identity.admin {
        return Err(ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Denied, format!("{what} is for admins only")));
    }
    Ok(identity)
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
