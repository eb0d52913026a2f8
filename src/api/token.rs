//! Access control's endpoints: the token endpoint (`/token`, the Docker token protocol)
//! here, and the admin API for access tokens (`/auth/tokens`, in `access_tokens`). Their
//! route-table section lives here too; without access control they answer 404.

use super::access::refused_basic;
use super::access_tokens;
use super::drain::{read_limited, ReadError};
use super::endpoint::{feature_off, Endpoint, Feature, Right, Section};
use super::params::Query;
use super::route::PathShape::{Exact, Text};
use super::table::{op, RouteSection, Services};
use super::{ApiError, Call, HandlerResult, Reply};
use crate::auth::{self, Auth, TokenStore};
use crate::oci::ErrorCode;
use crate::registry::{Registry, RegistryError};
use crate::replication::admin::ReplicationAdmin;
use crate::storage::{BlobStore, MetaStore};
use http::{Method, StatusCode};
use serde_json::json;

/// What access control's routes answer while it is off.
const OFF: &str = "access control is off";

/// Access control's section of the route table.
pub fn routes<'a, B: BlobStore, M: MetaStore, T: TokenStore, A: ReplicationAdmin>() -> RouteSection<'a, B, M, T, A> {
    const MANAGING: Right = Right::Admin("managing access tokens");
    let endpoints = vec![
        Endpoint {
            name: "token",
            paths: &[Exact("/token")],
            operations: vec![op(Method::GET, Right::Open, token_handler), op(Method::POST, Right::Open, token_handler)],
        },
        Endpoint {
            name: "access tokens",
            paths: &[Exact("/auth/tokens")],
            operations: vec![
                op(Method::GET, MANAGING, |s, _, _| Box::pin(async move { access_tokens::list(s.tokens).await })),
                op(Method::POST, MANAGING, |s, _, call| {
                    Box::pin(async move { access_tokens::create(s.registry, s.tokens, &call).await })
                }),
            ],
        },
        Endpoint {
            name: "access token",
            paths: &[Text { prefix: "/auth/tokens/", suffix: "" }],
            operations: vec![op(Method::DELETE, MANAGING, |s, p, _| {
                Box::pin(async move { access_tokens::revoke(s.tokens, p.text()?).await })
            })],
        },
    ];
    let feature = Feature { name: "access control", is_on: |s: &Services<B, M, T, A>| s.auth.is_some(), off: OFF };
    Section { feature: Some(feature), endpoints }
}

fn token_handler<'a, B: BlobStore, M: MetaStore, T: TokenStore, A>(
    s: Services<'a, B, M, T, A>,
    _: super::route::Params,
    call: Call<B::Native>,
) -> futures::future::LocalBoxFuture<'a, HandlerResult<B::Body>> {
    Box::pin(async move {
        let auth = s.auth.ok_or_else(|| feature_off(OFF))?;
        token(s.registry, auth, s.tokens, &call).await
    })
}

/// Longest form or JSON body these endpoints read.
const MAX_BODY: usize = 64 * 1024;

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
pub async fn token<B: BlobStore, M: MetaStore, T: TokenStore>(
    registry: &Registry<B, M>,
    auth: &Auth,
    tokens: &T,
    call: &Call<B::Native>,
) -> HandlerResult<B::Body> {
    let now_ms = registry.now_millis();
    let (identity, params) = if call.method == Method::POST {
        let form = Query::parse(Some(&String::from_utf8_lossy(&read_small_body(call).await?)));
        let identity = match form.get("grant_type") {
            Some("password") => {
                let (user, password) = (form.get("username").unwrap_or(""), form.get("password").unwrap_or(""));
                auth.login(tokens, user, password, now_ms).await
            }
            Some("refresh_token") => auth.refresh(tokens, form.get("refresh_token").unwrap_or(""), now_ms).await,
            _ => {
                return Err(ApiError::bad_request(
                    ErrorCode::Unsupported,
                    "grant_type must be password or refresh_token",
                ))
            }
        };
        (identity.map_err(|e| refused_basic(auth, e))?, form)
    } else {
        let identity = auth.authenticate(tokens, call.header("authorization"), now_ms).await;
        (identity.map_err(|e| refused_basic(auth, e))?, call.query.clone())
    };
    let mut scopes = Vec::new();
    // On a mirror host, the names are the ones it maps (docker asks for `library/alpine`).
    let asked: Vec<String> = match call.mirror_prefix.as_deref() {
        Some(prefix) => params.all("scope").map(|s| crate::mirror::MirrorConfig::host_scope(prefix, s)).collect(),
        None => params.all("scope").map(str::to_owned).collect(),
    };
    for scope in asked.iter().flat_map(|s| s.split(' ')).filter(|s| !s.is_empty()) {
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
            tokens.save(&record).await.map_err(RegistryError::from)?;
            body["refresh_token"] = json!(refresh);
        }
    }
    Ok(Reply::new(StatusCode::OK).json(&body).header("cache-control", "no-store"))
}

/// A new token id (the last 64 of 128 random bits) and secret (256 random bits), in hex.
pub(super) fn new_token_secret<B: BlobStore, M: MetaStore>(registry: &Registry<B, M>) -> (String, String) {
    let id = registry.new_id();
    let id = id[id.len().saturating_sub(16)..].to_owned();
    (id, format!("{}{}", registry.new_id(), registry.new_id()))
}
