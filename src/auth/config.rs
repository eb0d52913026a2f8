//! Access-control settings, parsed from the values of the Workers vars and secrets
//! `AUTH_USERS` (users, password hashes, grants), `AUTH_ANONYMOUS` (what anyone may do),
//! `AUTH_TOKEN_SECRET` (the key that signs bearer tokens), `AUTH_SERVICE` (token audience);
//! `settings::access` reads them.

use super::grants::Grants;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One user: a password hash (see `password`), grants, and whether they may manage tokens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub password: String,
    #[serde(default)]
    pub access: Grants,
    #[serde(default)]
    pub admin: bool,
}

/// The parsed settings. Without users and anonymous grants there is no access control.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub users: BTreeMap<String, User>,
    pub anonymous: Grants,
    pub token_key: Vec<u8>,
    pub service: String,
    /// Lifetime of issued bearer tokens.
    pub token_ttl_secs: u64,
}

/// A setting that cannot be used; the registry refuses to serve rather than run open. The
/// text says what is wrong with the setting the variant names (`settings::access` puts the
/// var's name in front).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `AUTH_USERS`.
    #[error("not valid JSON of {{\"name\": {{\"password\": ..., \"access\": [...]}}}}: {0}")]
    Users(String),
    /// `AUTH_ANONYMOUS`.
    #[error("not a valid JSON list of grants, e.g. [{{\"repository\": \"public/*\", \"actions\": [\"pull\"]}}]: {0}")]
    Anonymous(String),
    /// `AUTH_TOKEN_SECRET`.
    #[error(
        "must be set (at least 32 characters, e.g. from `openssl rand -hex 32`) when access control is on \
         (AUTH_USERS or AUTH_ANONYMOUS is set)"
    )]
    TokenSecret,
}

pub const DEFAULT_SERVICE: &str = "edge-registry";
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 300;

fn present(setting: Option<&str>) -> Option<&str> {
    setting.map(str::trim).filter(|s| !s.is_empty())
}

impl AuthConfig {
    /// `None` when neither users nor anonymous grants are configured: the registry is open.
    pub fn from_settings(
        users: Option<&str>,
        anonymous: Option<&str>,
        token_secret: Option<&str>,
        service: Option<&str>,
    ) -> Result<Option<Self>, ConfigError> {
        let (users, anonymous) = (present(users), present(anonymous));
        if users.is_none() && anonymous.is_none() {
            return Ok(None);
        }
        let users: BTreeMap<String, User> = match users {
            Some(json) => serde_json::from_str(json).map_err(|e| ConfigError::Users(e.to_string()))?,
            None => BTreeMap::new(),
        };
        let anonymous: Grants = match anonymous {
            Some(json) => serde_json::from_str(json).map_err(|e| ConfigError::Anonymous(e.to_string()))?,
            None => Grants::default(),
        };
        let token_key = present(token_secret).filter(|s| s.len() >= 32).ok_or(ConfigError::TokenSecret)?;
        Ok(Some(AuthConfig {
            users,
            anonymous,
            token_key: token_key.as_bytes().to_vec(),
            service: present(service).unwrap_or(DEFAULT_SERVICE).to_owned(),
            token_ttl_secs: DEFAULT_TOKEN_TTL_SECS,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn open_without_users_or_anonymous_grants() {
        assert!(AuthConfig::from_settings(None, Some("  "), None, None).unwrap().is_none());
    }

    #[test]
    fn parses_users_and_anonymous_grants() {
        let users = r#"{"reader": {"password": "pbkdf2-sha256:1:AA==:AA==", "access": [{"repository": "*", "actions": ["pull"]}]}}"#;
        let anon = r#"[{"repository": "public/*", "actions": ["pull"]}]"#;
        let config = AuthConfig::from_settings(Some(users), Some(anon), Some(SECRET), None).unwrap().unwrap();
        assert_eq!(config.users["reader"].access.0.len(), 1);
        assert_eq!(config.anonymous.0.len(), 1);
        assert_eq!(config.service, DEFAULT_SERVICE);
    }

    #[test]
    fn refuses_unusable_settings() {
        assert!(matches!(AuthConfig::from_settings(Some("{"), None, Some(SECRET), None), Err(ConfigError::Users(_))));
        assert!(matches!(
            AuthConfig::from_settings(None, Some("{}"), Some(SECRET), None),
            Err(ConfigError::Anonymous(_))
        ));
        assert_eq!(AuthConfig::from_settings(None, Some("[]"), None, None).unwrap_err(), ConfigError::TokenSecret);
        assert_eq!(
            AuthConfig::from_settings(None, Some("[]"), Some("short"), None).unwrap_err(),
            ConfigError::TokenSecret
        );
        let typo = r#"{"u": {"pasword": "x"}}"#;
        assert!(matches!(AuthConfig::from_settings(Some(typo), None, Some(SECRET), None), Err(ConfigError::Users(_))));
    }
}
