//! Access tokens for CI and machines: created and revoked by an admin, each with its own
//! grants and expiry. Only a SHA-256 of the secret is stored (the secret is 256 random
//! bits, so a slow hash adds nothing), in R2, which is strongly consistent: a revoked
//! token fails on the very next request, in every region.
//!
//! The same records hold refresh tokens (Docker's `offline_token` login): bound to the
//! user who logged in with a password and to that user's stored password hash (changing
//! the password revokes them), listed and revoked like any access token, and accepted only
//! by `POST /token` with `grant_type=refresh_token`, never as a password.
//!
//! Records are kept through the [`TokenStore`] port.

use super::grants::Grants;
use super::password::constant_time_eq;
use super::token_store::{TokenId, TokenStore};
use crate::oci::digest::to_hex;
use crate::storage::StorageResult;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Every access token starts with this, so it is recognisable in a password field.
pub const TOKEN_PREFIX: &str = "ert_";

/// A stored access token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    pub id: String,
    pub name: String,
    pub access: Grants,
    pub created_at: u64,
    pub expires_at: u64,
    /// May use the admin API (`/auth/tokens`, `/admin/...`) when presented as a password.
    #[serde(default)]
    pub admin: bool,
    /// For a refresh token: the user it logs in as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// For a refresh token: a keyed hash of the user's stored password hash when it was
    /// made; a refresh token whose user changed password no longer matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_tag: Option<String>,
    secret_sha256: String,
}

impl AccessToken {
    /// A new token; returns it and the string to hand to the user (shown once).
    pub fn new(id: String, secret: &str, name: String, access: Grants, now_secs: u64, ttl_secs: u64) -> (Self, String) {
        let token = AccessToken {
            secret_sha256: to_hex(&Sha256::digest(secret.as_bytes())),
            id: id.clone(),
            name,
            access,
            created_at: now_secs,
            expires_at: now_secs.saturating_add(ttl_secs),
            admin: false,
            user: None,
            user_tag: None,
        };
        (token, format!("{TOKEN_PREFIX}{id}_{secret}"))
    }

    /// Gives the token admin rights.
    pub fn with_admin(mut self, admin: bool) -> Self {
        self.admin = admin;
        self
    }

    /// Makes it a refresh token for `user`, whose stored password hash has tag `tag`.
    pub fn refreshing(mut self, user: &str, tag: String) -> Self {
        self.user = Some(user.to_owned());
        self.user_tag = Some(tag);
        self.admin = false;
        self
    }

    /// Whether this is a refresh token (bound to a user) rather than an access token.
    pub fn is_refresh(&self) -> bool {
        self.user.is_some()
    }

    /// The public view (what an admin listing shows).
    pub fn summary(&self) -> serde_json::Value {
        let mut summary = serde_json::json!({
            "id": self.id, "name": self.name, "access": self.access,
            "created_at": self.created_at, "expires_at": self.expires_at, "admin": self.admin,
        });
        if let Some(user) = &self.user {
            summary["refresh_for"] = serde_json::json!(user);
        }
        summary
    }
}

/// Ids and secrets are 1-64 lowercase hex digits.
fn is_hex(s: &str) -> bool {
    TokenId::parse(s).is_some()
}

/// Splits `ert_<id>_<secret>`.
fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.strip_prefix(TOKEN_PREFIX)?.split_once('_')?;
    (is_hex(id) && is_hex(secret)).then_some((id, secret))
}

/// The token a presented string names, if it exists, matches and has not expired.
pub async fn verify<T: TokenStore>(store: &T, presented: &str, now_secs: u64) -> StorageResult<Option<AccessToken>> {
    let Some((id, secret)) = parse(presented) else { return Ok(None) };
    let Some(id) = TokenId::parse(id) else { return Ok(None) };
    let Some(token) = store.load(&id).await? else { return Ok(None) };
    let presented_hash = to_hex(&Sha256::digest(secret.as_bytes()));
    let valid =
        constant_time_eq(presented_hash.as_bytes(), token.secret_sha256.as_bytes()) && now_secs < token.expires_at;
    Ok(valid.then_some(token))
}

/// A token by id, if it exists and has not expired (for tokens derived from it).
pub async fn still_valid<T: TokenStore>(store: &T, id: &str, now_secs: u64) -> StorageResult<Option<AccessToken>> {
    let Some(id) = TokenId::parse(id) else { return Ok(None) };
    Ok(store.load(&id).await?.filter(|t| now_secs < t.expires_at))
}

/// Deletes a token; false if there was none.
pub async fn revoke<T: TokenStore>(store: &T, id: &str) -> StorageResult<bool> {
    let Some(id) = TokenId::parse(id) else { return Ok(false) };
    if store.load(&id).await?.is_none() {
        return Ok(false);
    }
    store.delete(&id).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_strings_parse_strictly() {
        assert_eq!(parse("ert_ab12_cd34"), Some(("ab12", "cd34")));
        assert_eq!(parse("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"), None);
        for bad in ["", "ert_", "ert_ab", "ert_ab_", "ert__cd", "xrt_ab_cd", "ert_AB_cd", "ert_ab_c/d", "ert_../x_cd"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn records_from_before_admin_and_refresh_tokens_still_load() {
        let old = r#"{"id":"ab","name":"ci","access":[],"created_at":1,"expires_at":2,"secret_sha256":"00"}"#;
        let token: AccessToken = serde_json::from_str(old).unwrap();
        assert!(!token.admin && !token.is_refresh());
        let (refresh, _) = AccessToken::new("cd".into(), "ef", "login".into(), Grants::default(), 1, 2);
        let refresh = refresh.with_admin(true).refreshing("reader", "tag".into());
        assert!(refresh.is_refresh() && !refresh.admin);
        assert_eq!(refresh.summary()["refresh_for"], "reader");
    }
}
