//! The access-control section: users, anonymous grants, the token signing key and the
//! token service, parsed by [`AuthConfig::from_settings`] (which keeps its checks: JSON of
//! the right shape, no unknown fields, a signing key of at least 32 characters once access
//! control is on). Without users or anonymous grants the registry runs open.

use super::{SettingsError, Vars};
use crate::auth::{AuthConfig, ConfigError};

/// Secret: the users, their password hashes, grants and admin flag (JSON).
pub const AUTH_USERS: &str = "AUTH_USERS";
/// Secret or var: the grants everyone holds (a JSON list), e.g. pull on `public/*`.
pub const AUTH_ANONYMOUS: &str = "AUTH_ANONYMOUS";
/// Secret: the key that signs bearer tokens, at least 32 characters.
pub const AUTH_TOKEN_SECRET: &str = "AUTH_TOKEN_SECRET";
/// Var: the `service` named in challenges and tokens; default `edge-registry`.
pub const AUTH_SERVICE: &str = "AUTH_SERVICE";

/// Access control, or `None` (open) when neither users nor anonymous grants are set.
pub fn read(vars: &Vars) -> Result<Option<AuthConfig>, SettingsError> {
    AuthConfig::from_settings(
        vars.raw(AUTH_USERS).as_deref(),
        vars.raw(AUTH_ANONYMOUS).as_deref(),
        vars.raw(AUTH_TOKEN_SECRET).as_deref(),
        vars.raw(AUTH_SERVICE).as_deref(),
    )
    .map_err(|e| SettingsError::new(var_of(&e), e.to_string()))
}

fn var_of(error: &ConfigError) -> &'static str {
    match error {
        ConfigError::Users(_) => AUTH_USERS,
        ConfigError::Anonymous(_) => AUTH_ANONYMOUS,
        ConfigError::TokenSecret => AUTH_TOKEN_SECRET,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::vars::lookup_in;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn read_with(pairs: &[(&str, &str)]) -> Result<Option<AuthConfig>, SettingsError> {
        read(&Vars::new(&lookup_in(pairs)))
    }

    #[test]
    fn open_unless_users_or_anonymous_grants_are_set() {
        assert!(read_with(&[]).unwrap().is_none());
        assert!(read_with(&[(AUTH_TOKEN_SECRET, SECRET), (AUTH_SERVICE, "x")]).unwrap().is_none());
        let on = read_with(&[(AUTH_ANONYMOUS, "[]"), (AUTH_TOKEN_SECRET, SECRET), (AUTH_SERVICE, " reg ")]).unwrap();
        let on = on.expect("access control on");
        assert_eq!(on.service, "reg");
        assert_eq!(on.token_key, SECRET.as_bytes());
    }

    #[test]
    fn each_refusal_names_its_var() {
        let users = read_with(&[(AUTH_USERS, "{"), (AUTH_TOKEN_SECRET, SECRET)]).unwrap_err();
        assert_eq!(users.var, AUTH_USERS);
        assert!(users.to_string().starts_with("AUTH_USERS: not valid JSON of"), "{users}");
        let anonymous = read_with(&[(AUTH_ANONYMOUS, "{}"), (AUTH_TOKEN_SECRET, SECRET)]).unwrap_err();
        assert_eq!(anonymous.var, AUTH_ANONYMOUS);
        let secret = read_with(&[(AUTH_ANONYMOUS, "[]")]).unwrap_err();
        assert_eq!(secret.var, AUTH_TOKEN_SECRET);
        assert!(secret.problem.contains("at least 32 characters"), "{secret}");
        let short = read_with(&[(AUTH_USERS, "{}"), (AUTH_TOKEN_SECRET, "short")]).unwrap_err();
        assert_eq!(short.var, AUTH_TOKEN_SECRET);
    }
}
