//! The admin API for access tokens (`/auth/tokens`): list, create (the secret is shown
//! once) and revoke. The route table lets only admins reach these handlers.

use super::token::{new_token_secret, read_small_body};
use super::{ApiError, Call, HandlerResult, Reply};
use crate::auth::{tokens, Grant, Grants, RepositoryPattern, TokenStore};
use crate::oci::{ErrorCode, RepositoryName};
use crate::registry::{Registry, RegistryError};
use crate::storage::{BlobStore, MetaStore};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

/// Default and longest lifetime of an access token.
const DEFAULT_TOKEN_DAYS: u64 = 90;
const MAX_TOKEN_DAYS: u64 = 366;

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

/// `GET /auth/tokens` lists tokens, never their secrets.
pub async fn list<T: TokenStore, S>(store: &T) -> HandlerResult<S> {
    let listed: Vec<_> = store.list().await.map_err(RegistryError::from)?.iter().map(|t| t.summary()).collect();
    Ok(Reply::new(StatusCode::OK).json(&json!({ "tokens": listed })))
}

/// `POST /auth/tokens` creates a token and shows its secret once.
pub async fn create<B: BlobStore, M: MetaStore, T: TokenStore>(
    registry: &Registry<B, M>,
    store: &T,
    call: &Call<B::Native>,
) -> HandlerResult<B::Body> {
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
    store.save(&record).await.map_err(RegistryError::from)?;
    let mut body = record.summary();
    body["token"] = json!(token);
    Ok(Reply::new(StatusCode::CREATED).json(&body))
}

/// `DELETE /auth/tokens/<id>`: the token stops working on the next request.
pub async fn revoke<T: TokenStore, S>(store: &T, id: &str) -> HandlerResult<S> {
    if !tokens::revoke(store, id).await.map_err(RegistryError::from)? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NameUnknown, format!("no access token {id:?}")));
    }
    Ok(Reply::new(StatusCode::NO_CONTENT).header("content-length", "0"))
}
