//! The token endpoint (`/token`, the Docker token protocol) and the admin API for access
//! tokens (`/auth/tokens`).

use super::access::refused;
use super::drain::{read_limited, ReadError};
use super::params::Query;
use super::{ApiError, Call, HandlerResult, Reply};
use crate::auth::{self, tokens, Auth, AuthError, Credential, Grant, Grants, Identity, RepositoryPattern};
use crate::oci::{ErrorCode, RepositoryName};
use crate::registry::Registry;
use crate::storage::{BlobStore, MetaStore};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

/// Longest form or JSON body these endpoints read.
const MAX_BODY: usize = 64 * 1024;
/// Default and longest lifetime of an access token.
const DEFAULT_TOKEN_DAYS: u64 = 90;
const MAX_TOKEN_DAYS: u64 = 366;

fn basic_challenge(auth: &Auth, message: String) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
        .with_header("www-authenticate", format!("Basic realm=\"{}\"", auth.config.service))
}

fn refuse(auth: &Auth, error: AuthError) -> ApiError {
    match error {
        AuthError::Throttled { .. } | AuthError::Storage(_) => refused(auth, "", None, error),
        other => basic_challenge(auth, other.to_string()),
    }
}

pub(super) async fn read_small_body<N: 'static>(call: &Call<N>) -> Result<Vec<u8>, ApiError> {
    read_limited(call.take_body().into_stream(), MAX_BODY).await.map_err(|e| match e {
        ReadError::TooLarge => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::SizeInvalid, "body too large"),
        ReadError::Broke(e) => ApiError::bad_request(ErrorCode::Unsupported, format!("body broke off: {e}")),
    })
}

/// `GET /token?service=...&scope=...` with Basic credentials (or none, for anonymous
/// pulls), or `POST /token` with an OAuth2 password or refresh-token form. A bearer token
/// presented here yields at most its own scopes, expiring no later than itself. An offline
/// login (`offline_token=true`, or `access_type=offline` on POST) with a user's password
/// also returns a `refresh_token`, stored like an access token so an admin can revoke it.
pub async fn token<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    auth: &Auth,
    call: &Call<B::Native>,
) -> HandlerResult<B::Body> {
    let now_ms = registry.now_millis();
    let (identity, params) = if call.method == Method::POST {
        let form = Query::parse(Some(&String::from_utf8_lossy(&read_small_body(call).await?)));
        let identity = match form.get("grant_type") {
            Some("password") => {
                let (user, password) = (form.get("username").unwrap_or(""), form.get("password").unwrap_or(""));
                auth.login(registry.blob_store(), user, password, now_ms).await
            }
            Some("refresh_token") => {
                auth.refresh(registry.blob_store(), form.get("refresh_token").unwrap_or(""), now_ms).await
            }
            _ => {
                return Err(ApiError::bad_request(
                    ErrorCode::Unsupported,
                    "grant_type must be password or refresh_token",
                ))
            }
        };
        (identity.map_err(|e| refuse(auth, e))?, form)
    } else {
        let identity = auth.authenticate(registry.blob_store(), call.header("authorization"), now_ms).await;
        (identity.map_err(|e| refuse(auth, e))?, call.query.clone())
    };
    let mut scopes = Vec::new();
    for scope in params.all("scope").flat_map(|s| s.split(' ')).filter(|s| !s.is_empty()) {
        match auth::parse_scope(scope) {
            Ok(Some(scope)) => scopes.push(scope),
            Ok(None) => {}
            Err(message) => return Err(ApiError::bad_request(ErrorCode::Unsupported, message)),
        }
    }
    let now = now_ms / 1000;
    let (token, expires_in) = auth.issue(&identity, &scopes, now, registry.new_id());
    let mut body = json!({
        "token": token, "access_token": token, "expires_in": expires_in, "issued_at": auth::rfc3339(now),
    });
    let offline = params.get("offline_token") == Some("true") || params.get("access_type") == Some("offline");
    if offline {
        let (id, secret) = new_token_secret(registry);
        if let Some((record, refresh)) = auth.refresh_token(&identity, id, &secret, now) {
            tokens::save(registry.blob_store(), &record).await.map_err(crate::registry::RegistryError::from)?;
            body["refresh_token"] = json!(refresh);
        }
    }
    Ok(Reply::new(StatusCode::OK).json(&body).header("cache-control", "no-store"))
}

/// A new token id (the last 64 of 128 random bits) and secret (256 random bits), in hex.
fn new_token_secret<B: BlobStore, M: MetaStore>(registry: &Registry<B, M>) -> (String, String) {
    let id = registry.new_id();
    let id = id[id.len().saturating_sub(16)..].to_owned();
    (id, format!("{}{}", registry.new_id(), registry.new_id()))
}

async fn admin<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    auth: &Auth,
    call: &Call<B::Native>,
) -> Result<Identity, ApiError> {
    require_admin(registry, auth, call, "managing access tokens").await
}

/// Authenticates the caller and requires an admin: an admin user's Basic credentials, or
/// an access token created with `"admin": true` used as a password. `401` with a Basic
/// challenge when anonymous, unauthenticated or presenting a bearer token (which carries
/// repository scopes only), `403 DENIED` for anyone else. `what` names the action.
pub(super) async fn require_admin<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    auth: &Auth,
    call: &Call<B::Native>,
    what: &str,
) -> Result<Identity, ApiError> {
    let identity = auth
        .authenticate(registry.blob_store(), call.header("authorization"), registry.now_millis())
        .await
        .map_err(|e| refuse(auth, e))?;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    access: Vec<Grant>,
    #[serde(default)]
    expires_in_days: Option<u64>,
    /// Whether the token may use the admin API itself.
    #[serde(default)]
    admin: bool,
}

fn valid_pattern(pattern: &RepositoryPattern) -> bool {
    let text = serde_json::to_value(pattern).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    text == "*" || RepositoryName::parse(text.strip_suffix("/*").unwrap_or(&text)).is_ok()
}

/// `GET /auth/tokens` lists tokens (never their secrets); `POST` creates one and shows
/// its secret once.
pub async fn access_tokens<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    auth: &Auth,
    call: &Call<B::Native>,
) -> HandlerResult<B::Body> {
    admin(registry, auth, call).await?;
    let store = registry.blob_store();
    if call.method == Method::GET {
        let listed: Vec<_> = tokens::list(store)
            .await
            .map_err(crate::registry::RegistryError::from)?
            .iter()
            .map(|t| t.summary())
            .collect();
        return Ok(Reply::new(StatusCode::OK).json(&json!({ "tokens": listed })));
    }
    let request: NewToken = serde_json::from_slice(&read_small_body(call).await?).map_err(|e| {
        ApiError::bad_request(
            ErrorCode::Unsupported,
            format!("body must be {{\"name\", \"access\", \"expires_in_days\"}}: {e}"),
        )
    })?;
    let days = request.expires_in_days.unwrap_or(DEFAULT_TOKEN_DAYS);
    let name_ok = !request.name.is_empty() && request.name.len() <= 100;
    if !name_ok || days == 0 || days > MAX_TOKEN_DAYS || !request.access.iter().all(|g| valid_pattern(&g.repository)) {
        return Err(ApiError::bad_request(
            ErrorCode::Unsupported,
            format!("name must be 1-100 characters, expires_in_days 1-{MAX_TOKEN_DAYS}, repositories \"*\", a name or \"<name>/*\""),
        ));
    }
    let (id, secret) = new_token_secret(registry);
    let now = registry.now_millis() / 1000;
    let (record, token) =
        tokens::AccessToken::new(id, &secret, request.name, Grants(request.access), now, days * 86_400);
    let record = record.with_admin(request.admin);
    tokens::save(store, &record).await.map_err(crate::registry::RegistryError::from)?;
    let mut body = record.summary();
    body["token"] = json!(token);
    Ok(Reply::new(StatusCode::CREATED).json(&body))
}

/// `DELETE /auth/tokens/<id>`: the token stops working on the next request.
pub async fn revoke<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    auth: &Auth,
    id: &str,
    call: &Call<B::Native>,
) -> HandlerResult<B::Body> {
    admin(registry, auth, call).await?;
    if !tokens::revoke(registry.blob_store(), id).await.map_err(crate::registry::RegistryError::from)? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NameUnknown, format!("no access token {id:?}")));
    }
    Ok(Reply::new(StatusCode::NO_CONTENT).header("content-length", "0"))
}
