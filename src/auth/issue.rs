//! Issuing bearer tokens at `/token`. A token carries, of each requested scope, only the
//! actions the caller may take with the credential it presented: a bearer token presented
//! here yields at most its own scopes and never outlives itself, so a leaked pull token
//! can neither become a push token nor be renewed without the password.

use super::identity::{Credential, Identity};
use super::jwt::{self, AccessEntry, Claims};
use super::scope::Scope;
use super::Auth;

impl Auth {
    /// Signs a token for `identity` carrying, of each requested scope, the actions the
    /// identity may take. Returns the token and its lifetime in seconds.
    pub fn issue(&self, identity: &Identity, scopes: &[Scope], now_secs: u64, jti: String) -> (String, u64) {
        let mut access: Vec<AccessEntry> = Vec::new();
        for scope in scopes {
            let actions = identity.allowed(&scope.name, &scope.actions);
            match access.iter_mut().find(|e| e.name == scope.name.as_str()) {
                Some(entry) => {
                    entry.actions.extend(actions);
                    entry.actions.sort();
                    entry.actions.dedup();
                }
                None => access.push(AccessEntry { kind: "repository".into(), name: scope.name.to_string(), actions }),
            }
        }
        let mut exp = now_secs.saturating_add(self.config.token_ttl_secs);
        if let Credential::Bearer { expires_at } = identity.credential {
            exp = exp.min(expires_at);
        }
        let claims = Claims {
            iss: self.config.service.clone(),
            sub: identity.principal.subject(),
            aud: self.config.service.clone(),
            iat: now_secs,
            nbf: now_secs,
            exp,
            jti,
            access,
        };
        (jwt::sign(&claims, &self.config.token_key), exp.saturating_sub(now_secs))
    }
}

/// How long a refresh token from an offline login lasts.
pub const REFRESH_TOKEN_TTL_SECS: u64 = 30 * 86_400;

impl Auth {
    /// A refresh token for a caller who logged in with a user's password (`None` for any
    /// other credential: a refresh token or a bearer token cannot mint another one).
    /// Returns the record to save and the string to hand out.
    pub fn refresh_token(
        &self,
        identity: &Identity,
        id: String,
        secret: &str,
        now_secs: u64,
    ) -> Option<(super::tokens::AccessToken, String)> {
        let super::Principal::User(user) = &identity.principal else { return None };
        let entry = self.config.users.get(user).filter(|_| identity.credential == Credential::Password)?;
        let tag = self.user_tag(&entry.password);
        let name = format!("refresh token for {user}");
        let (record, token) = super::tokens::AccessToken::new(
            id,
            secret,
            name,
            super::Grants::default(),
            now_secs,
            REFRESH_TOKEN_TTL_SECS,
        );
        Some((record.refreshing(user, tag), token))
    }
}
