//! Establishing who a request comes from: anonymous, a user with a password, an access
//! token used as a password, a refresh token (only at `/token`), or the bearer of a token
//! we signed. Failed logins are throttled per user name (see `throttle`), and a verified
//! password is remembered briefly under a keyed hash (see `verified`).

use super::grants::{Action, Grant, Grants, RepositoryPattern};
use super::jwt;
use super::kdf;
use super::password::{self, DEFAULT_ITERATIONS};
use super::throttle::Failures;
use super::token_store::TokenStore;
use super::tokens::{self, TOKEN_PREFIX};
use super::verified::VerifiedCache;
use super::Auth;
use crate::oci::RepositoryName;
use crate::storage::StorageError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::cell::RefCell;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User(String),
    /// An access token, by id.
    Token(String),
}

impl Principal {
    pub(super) fn subject(&self) -> String {
        match self {
            Principal::Anonymous => String::new(),
            Principal::User(name) => name.clone(),
            Principal::Token(id) => format!("token:{id}"),
        }
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    None,
    Password,
    AccessToken,
    RefreshToken,
    /// A token we signed, valid until `expires_at` (Unix seconds).
    Bearer {
        expires_at: u64,
    },
}

/// A caller and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub principal: Principal,
    /// Everything the principal may do.
    pub grants: Grants,
    /// For a bearer token: the scopes it carries, which narrow `grants`.
    pub scope: Option<Grants>,
    /// May use the admin API. Never true for a bearer token.
    pub admin: bool,
    pub credential: Credential,
}

impl Identity {
    /// Whether this request is allowed to take `action` on `name`: the principal holds the
    /// right and, for a bearer token, the token's scope carries it.
    pub fn is_allowed(&self, name: &RepositoryName, action: Action) -> bool {
        self.grants.allows(name, action) && self.scope.as_ref().is_none_or(|s| s.allows(name, action))
    }

    /// Whether the principal holds the right, so that it could obtain a token whose scope
    /// allows `action` on `name` (even if the token it presents does not).
    pub fn could_obtain(&self, name: &RepositoryName, action: Action) -> bool {
        self.grants.allows(name, action)
    }

    /// Of `wanted`, the actions this request may take on `name` (what a token it asks
    /// for may carry: never more than the bearer token it presents).
    pub fn allowed(&self, name: &RepositoryName, wanted: &[Action]) -> Vec<Action> {
        let mut actions = self.grants.allowed(name, wanted);
        if let Some(scope) = &self.scope {
            actions.retain(|a| scope.allows(name, *a));
        }
        actions
    }

    pub fn is_anonymous(&self) -> bool {
        self.principal == Principal::Anonymous
    }
}

/// Why credentials were refused. Every variant is a 401 except `Throttled` (429) and
/// `Storage` (500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    #[error("invalid username or password")]
    BadCredentials,
    #[error("invalid bearer token: {0}")]
    BadToken(String),
    #[error("invalid refresh token: it must be one this registry issued at an offline login")]
    BadRefreshToken,
    #[error("too many failed logins for this user; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Longest Authorization header looked at; longer ones are refused unread.
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

thread_local! {
    /// Per isolate: failed logins per user name.
    static FAILURES: RefCell<Failures> = RefCell::new(Failures::default());
    /// Per isolate: keyed hashes of recently verified passwords (`None`: no randomness).
    static VERIFIED: RefCell<Option<VerifiedCache>> = RefCell::new(VerifiedCache::random());
}

impl Auth {
    /// The identity behind an `Authorization` header (or its absence).
    pub async fn authenticate<T: TokenStore>(
        &self,
        store: &T,
        header: Option<&str>,
        now_ms: u64,
    ) -> Result<Identity, AuthError> {
        let Some(header) = header else { return Ok(self.anonymous()) };
        if header.len() > MAX_AUTHORIZATION_BYTES {
            return Err(AuthError::Malformed("too long"));
        }
        let (scheme, value) = header.trim().split_once(' ').ok_or(AuthError::Malformed("no scheme"))?;
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let decoded =
                    B64.decode(value.trim()).map_err(|_| AuthError::Malformed("Basic value is not base64"))?;
                let decoded =
                    String::from_utf8(decoded).map_err(|_| AuthError::Malformed("Basic value is not UTF-8"))?;
                let (user, secret) = decoded.split_once(':').ok_or(AuthError::Malformed("Basic value has no ':'"))?;
                self.login(store, user, secret, now_ms).await
            }
            "bearer" => self.bearer(store, value.trim(), now_ms).await,
            _ => Err(AuthError::Malformed("scheme must be Basic or Bearer")),
        }
    }

    pub fn anonymous(&self) -> Identity {
        Identity {
            principal: Principal::Anonymous,
            grants: self.config.anonymous.clone(),
            scope: None,
            admin: false,
            credential: Credential::None,
        }
    }

    /// A user name and password, or any name and an access token (not a refresh token).
    pub async fn login<T: TokenStore>(
        &self,
        store: &T,
        user: &str,
        secret: &str,
        now_ms: u64,
    ) -> Result<Identity, AuthError> {
        if secret.starts_with(TOKEN_PREFIX) {
            let token = tokens::verify(store, secret, now_ms / 1000).await?.ok_or(AuthError::BadCredentials)?;
            if token.is_refresh() {
                return Err(AuthError::BadCredentials);
            }
            return Ok(self.token_identity(token));
        }
        let entry = self.config.users.get(user);
        let known = entry.is_some();
        if let Some(retry_after_secs) = FAILURES.with(|f| f.borrow().throttled(user, known, now_ms)) {
            return Err(AuthError::Throttled { retry_after_secs });
        }
        let valid = match entry.map(|u| u.password.as_str()) {
            Some(stored) if recently_verified(user, stored, secret, now_ms) => true,
            Some(stored) => kdf::verify_password(secret, stored).await.unwrap_or(false),
            None => {
                // Spend the same work for unknown users, so timing does not tell them apart.
                let _ = kdf::pbkdf2_sha256(secret.as_bytes(), b"edge-registry-dummy", DEFAULT_ITERATIONS).await;
                false
            }
        };
        match (valid, entry) {
            (true, Some(entry)) => {
                VERIFIED.with(|v| v.borrow_mut().as_mut().map(|c| c.insert(user, &entry.password, secret, now_ms)));
                FAILURES.with(|f| f.borrow_mut().clear(user));
                Ok(self.user_identity(user, Credential::Password))
            }
            _ => {
                FAILURES.with(|f| f.borrow_mut().record(user, known, now_ms));
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// `POST /token` with `grant_type=refresh_token`: a refresh token from an offline
    /// login (its user must still exist with the same password), or an access token.
    /// Anything else, a bearer token or a password included, is refused.
    pub async fn refresh<T: TokenStore>(&self, store: &T, presented: &str, now_ms: u64) -> Result<Identity, AuthError> {
        if !presented.starts_with(TOKEN_PREFIX) {
            return Err(AuthError::BadRefreshToken);
        }
        let token = tokens::verify(store, presented, now_ms / 1000).await?.ok_or(AuthError::BadRefreshToken)?;
        let Some(user) = token.user.as_deref() else { return Ok(self.token_identity(token)) };
        let bound = self.config.users.get(user).is_some_and(|entry| {
            token.user_tag.as_deref().is_some_and(|tag| {
                password::constant_time_eq(tag.as_bytes(), self.user_tag(&entry.password).as_bytes())
            })
        });
        if !bound {
            return Err(AuthError::BadRefreshToken);
        }
        Ok(self.user_identity(user, Credential::RefreshToken))
    }

    /// What binds a refresh token to a user's stored password hash.
    pub(super) fn user_tag(&self, stored: &str) -> String {
        crate::oci::digest::to_hex(&password::hmac_sha256(&self.config.token_key, stored.as_bytes()))
    }

    /// A user's grants, plus what anyone may do (public repositories stay public).
    fn user_identity(&self, user: &str, credential: Credential) -> Identity {
        let (grants, admin) = match self.config.users.get(user) {
            Some(entry) if entry.admin => (Grants::everything(), true),
            Some(entry) => (entry.access.union(&self.config.anonymous), false),
            None => (self.config.anonymous.clone(), false),
        };
        Identity { principal: Principal::User(user.to_owned()), grants, scope: None, admin, credential }
    }

    fn token_identity(&self, token: tokens::AccessToken) -> Identity {
        let grants = token.access.union(&self.config.anonymous);
        let admin = token.admin;
        Identity {
            principal: Principal::Token(token.id),
            grants,
            scope: None,
            admin,
            credential: Credential::AccessToken,
        }
    }

    async fn bearer<T: TokenStore>(&self, store: &T, token: &str, now_ms: u64) -> Result<Identity, AuthError> {
        let now = now_ms / 1000;
        let claims = jwt::verify(token, &self.config.token_key, now, &self.config.service)
            .map_err(|e| AuthError::BadToken(e.to_string()))?;
        let mut identity = if claims.sub.is_empty() {
            self.anonymous()
        } else if let Some(id) = claims.sub.strip_prefix("token:") {
            // Checked on every request: a revoked token stops working at once.
            let token = tokens::still_valid(store, id, now)
                .await?
                .ok_or_else(|| AuthError::BadToken("its access token was revoked or expired".into()))?;
            self.token_identity(token)
        } else if self.config.users.contains_key(&claims.sub) {
            self.user_identity(&claims.sub, Credential::Password)
        } else {
            return Err(AuthError::BadToken("its user no longer exists".into()));
        };
        let scope = claims
            .access
            .iter()
            .filter(|entry| entry.kind == "repository")
            .map(|entry| Grant { repository: RepositoryPattern::new(&entry.name), actions: entry.actions.clone() })
            .collect();
        identity.scope = Some(Grants(scope));
        // A bearer token carries repository scopes only: never admin rights.
        identity.admin = false;
        identity.credential = Credential::Bearer { expires_at: claims.exp };
        Ok(identity)
    }
}

fn recently_verified(user: &str, stored: &str, secret: &str, now_ms: u64) -> bool {
    VERIFIED.with(|v| v.borrow().as_ref().is_some_and(|c| c.contains(user, stored, secret, now_ms)))
}
