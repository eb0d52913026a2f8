//! Establishing who a request comes from, and issuing bearer tokens.

use super::grants::{Action, Grant, Grants, RepositoryPattern};
use super::jwt::{self, AccessEntry, Claims};
use super::password::{self, DEFAULT_ITERATIONS};
use super::scope::Scope;
use super::tokens::{self, TOKEN_PREFIX};
use super::Auth;
use crate::oci::RepositoryName;
use crate::storage::{BlobStore, StorageError};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest as _, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User(String),
    /// An access token, by id.
    Token(String),
}

impl Principal {
    fn subject(&self) -> String {
        match self {
            Principal::Anonymous => String::new(),
            Principal::User(name) => name.clone(),
            Principal::Token(id) => format!("token:{id}"),
        }
    }
}

/// A caller and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub principal: Principal,
    /// Everything the principal may do.
    pub grants: Grants,
    /// For a bearer token: the scopes it carries, which narrow `grants` for this request.
    pub scope: Option<Grants>,
    pub admin: bool,
}

impl Identity {
    /// Whether this request may take `action` on `name`.
    pub fn may(&self, name: &RepositoryName, action: Action) -> bool {
        self.grants.allows(name, action) && self.scope.as_ref().is_none_or(|s| s.allows(name, action))
    }

    /// Whether the principal could, with a token of the right scope.
    pub fn could(&self, name: &RepositoryName, action: Action) -> bool {
        self.grants.allows(name, action)
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
    #[error("too many failed logins for this user; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Longest Authorization header looked at; longer ones are refused unread.
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;
/// Failed logins per user within [`FAILURE_WINDOW_MS`] before further tries get 429.
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW_MS: u64 = 60_000;
/// How long a verified password is remembered (per isolate) to spare the slow hash.
const VERIFIED_TTL_MS: u64 = 60_000;

thread_local! {
    /// Per isolate: failed logins per user name, with the start of their window.
    static FAILURES: RefCell<HashMap<String, (u32, u64)>> = RefCell::new(HashMap::new());
    /// Per isolate: user -> (SHA-256 of stored hash and password, expiry).
    static VERIFIED: RefCell<HashMap<String, ([u8; 32], u64)>> = RefCell::new(HashMap::new());
}

impl Auth {
    /// The identity behind an `Authorization` header (or its absence).
    pub async fn authenticate<B: BlobStore>(
        &self,
        store: &B,
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
        Identity { principal: Principal::Anonymous, grants: self.config.anonymous.clone(), scope: None, admin: false }
    }

    /// A user name and password, or any name and an access token.
    pub async fn login<B: BlobStore>(
        &self,
        store: &B,
        user: &str,
        secret: &str,
        now_ms: u64,
    ) -> Result<Identity, AuthError> {
        if secret.starts_with(TOKEN_PREFIX) {
            let token = tokens::verify(store, secret, now_ms / 1000).await?.ok_or(AuthError::BadCredentials)?;
            return Ok(self.token_identity(token));
        }
        check_throttle(user, now_ms)?;
        let entry = self.config.users.get(user);
        let stored = entry.map(|u| u.password.as_str());
        let valid = match stored {
            Some(stored) if recently_verified(user, stored, secret, now_ms) => true,
            Some(stored) => password::verify_password(secret, stored).unwrap_or(false),
            None => {
                // Spend the same work for unknown users, so timing does not tell them apart.
                let _ = password::pbkdf2_sha256(secret.as_bytes(), b"edge-registry-dummy", DEFAULT_ITERATIONS);
                false
            }
        };
        match (valid, entry) {
            (true, Some(entry)) => {
                remember_verified(user, &entry.password, secret, now_ms);
                Ok(self.user_identity(user))
            }
            _ => {
                record_failure(user, now_ms);
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// A user's grants, plus what anyone may do (public repositories stay public).
    fn user_identity(&self, user: &str) -> Identity {
        let entry = &self.config.users[user];
        let grants = if entry.admin { Grants::everything() } else { entry.access.union(&self.config.anonymous) };
        Identity { principal: Principal::User(user.to_owned()), grants, scope: None, admin: entry.admin }
    }

    fn token_identity(&self, token: tokens::AccessToken) -> Identity {
        let grants = token.access.union(&self.config.anonymous);
        Identity { principal: Principal::Token(token.id), grants, scope: None, admin: false }
    }

    async fn bearer<B: BlobStore>(&self, store: &B, token: &str, now_ms: u64) -> Result<Identity, AuthError> {
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
            self.user_identity(&claims.sub)
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
        Ok(identity)
    }

    /// Signs a token for `identity` carrying, of each requested scope, the actions the
    /// identity holds. Returns the token and its lifetime in seconds.
    pub fn issue(&self, identity: &Identity, scopes: &[Scope], now_secs: u64, jti: String) -> (String, u64) {
        let mut access: Vec<AccessEntry> = Vec::new();
        for scope in scopes {
            let actions = identity.grants.allowed(&scope.name, &scope.actions);
            match access.iter_mut().find(|e| e.name == scope.name.as_str()) {
                Some(entry) => {
                    entry.actions.extend(actions);
                    entry.actions.sort();
                    entry.actions.dedup();
                }
                None => access.push(AccessEntry { kind: "repository".into(), name: scope.name.to_string(), actions }),
            }
        }
        let ttl = self.config.token_ttl_secs;
        let claims = Claims {
            iss: self.config.service.clone(),
            sub: identity.principal.subject(),
            aud: self.config.service.clone(),
            iat: now_secs,
            nbf: now_secs,
            exp: now_secs + ttl,
            jti,
            access,
        };
        (jwt::sign(&claims, &self.config.token_key), ttl)
    }
}

fn check_throttle(user: &str, now_ms: u64) -> Result<(), AuthError> {
    FAILURES.with(|f| match f.borrow().get(user) {
        Some((count, start)) if *count >= MAX_FAILURES && now_ms < start + FAILURE_WINDOW_MS => {
            Err(AuthError::Throttled { retry_after_secs: (start + FAILURE_WINDOW_MS - now_ms).div_ceil(1000) })
        }
        _ => Ok(()),
    })
}

fn record_failure(user: &str, now_ms: u64) {
    FAILURES.with(|f| {
        let mut failures = f.borrow_mut();
        if failures.len() > 10_000 {
            failures.clear();
        }
        let entry = failures.entry(user.to_owned()).or_insert((0, now_ms));
        if now_ms >= entry.1 + FAILURE_WINDOW_MS {
            *entry = (0, now_ms);
        }
        entry.0 += 1;
    });
}

fn verified_key(stored: &str, secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(stored.as_bytes());
    h.update([0]);
    h.update(secret.as_bytes());
    h.finalize().into()
}

fn recently_verified(user: &str, stored: &str, secret: &str, now_ms: u64) -> bool {
    let key = verified_key(stored, secret);
    VERIFIED
        .with(|v| v.borrow().get(user).is_some_and(|(k, until)| now_ms < *until && password::constant_time_eq(k, &key)))
}

fn remember_verified(user: &str, stored: &str, secret: &str, now_ms: u64) {
    VERIFIED.with(|v| {
        let mut verified = v.borrow_mut();
        if verified.len() > 1000 {
            verified.clear();
        }
        verified.insert(user.to_owned(), (verified_key(stored, secret), now_ms + VERIFIED_TTL_MS));
    });
    FAILURES.with(|f| f.borrow_mut().remove(user));
}
