//! Access control: who the caller is (anonymous, a user with a password, an access token,
//! or the bearer of a token we signed) and what they may do (pull, push, delete on
//! repository patterns). It may call `oci` and `storage`; access and refresh tokens are
//! kept through its own port, [`TokenStore`] (in R2, through the blob store, in a
//! deployment). `api` turns its answers into 401 challenges, 403s and the `/token` endpoint.
//!
//! The flow is the Docker token protocol: a request without credentials gets 401 with a
//! `WWW-Authenticate: Bearer realm=.../token,service=...,scope=...` challenge; `GET /token`
//! with Basic credentials returns a short-lived HS256 token limited to the requested
//! scopes the identity holds. Basic credentials straight on `/v2/` work too. A bearer token
//! presented to `/token` yields at most its own scopes and expiry, and never admin rights;
//! refresh tokens (offline logins) are stored, revocable and bound to the user.

pub mod config;
pub mod grants;
mod identity;
mod issue;
pub mod jwt;
pub mod kdf;
pub mod password;
mod scope;
pub mod throttle;
mod time;
pub mod token_store;
pub mod tokens;
pub mod verified;

pub use config::{AuthConfig, ConfigError, User};
pub use grants::{Action, Grant, Grants, RepositoryPattern};
pub use identity::{AuthError, Credential, Identity, Principal};
pub use issue::REFRESH_TOKEN_TTL_SECS;
pub use scope::{parse_scope, Scope};
pub use time::rfc3339;
pub use token_store::{BlobTokenStore, MemoryTokenStore, TokenId, TokenStore};

/// The access-control service for one request.
pub struct Auth {
    pub config: AuthConfig,
}

impl Auth {
    pub fn new(config: AuthConfig) -> Self {
        Auth { config }
    }
}
