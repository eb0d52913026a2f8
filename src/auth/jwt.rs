//! Bearer tokens: compact JWTs signed with HMAC-SHA256, in the shape the Docker token
//! protocol uses (`access: [{type, name, actions}]`). Verification accepts exactly HS256
//! with our key: `alg: none`, other algorithms, re-signed or altered tokens are refused.

use super::grants::Action;
use super::password::{constant_time_eq, hmac_sha256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// One entry of a token's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<Action>,
}

/// The claims of a registry token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user name, or `token:<id>` for an access token, or empty for anonymous.
    pub sub: String,
    pub aud: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub jti: String,
    pub access: Vec<AccessEntry>,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is not a well-formed JWT")]
    Malformed,
    #[error("token algorithm must be HS256")]
    WrongAlgorithm,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued for another service")]
    WrongAudience,
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Signs `claims` with `key`.
pub fn sign(claims: &Claims, key: &[u8]) -> String {
    let payload = serde_json::to_vec(claims).expect("claims always serialise");
    let signing_input = format!("{}.{}", B64URL.encode(HEADER), B64URL.encode(payload));
    let signature = hmac_sha256(key, signing_input.as_bytes());
    format!("{signing_input}.{}", B64URL.encode(signature))
}

/// Verifies a token's algorithm, signature, time window (seconds) and audience.
pub fn verify(token: &str, key: &[u8], now_secs: u64, audience: &str) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: serde_json::Value = serde_json::from_slice(&B64URL.decode(header).map_err(|_| TokenError::Malformed)?)
        .map_err(|_| TokenError::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(TokenError::WrongAlgorithm);
    }
    let signature = B64URL.decode(signature).map_err(|_| TokenError::Malformed)?;
    let signing_input = &token[..token.len() - token.rsplit('.').next().map_or(0, |s| s.len() + 1)];
    let expected = hmac_sha256(key, signing_input.as_bytes());
    if !constant_time_eq(&expected, &signature) {
        return Err(TokenError::BadSignature);
    }
    let claims: Claims = serde_json::from_slice(&B64URL.decode(payload).map_err(|_| TokenError::Malformed)?)
        .map_err(|_| TokenError::Malformed)?;
    if now_secs >= claims.exp {
        return Err(TokenError::Expired);
    }
    if now_secs + 60 < claims.nbf {
        return Err(TokenError::NotYetValid);
    }
    if claims.aud != audience {
        return Err(TokenError::WrongAudience);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            iss: "edge-registry".into(),
            sub: "alice".into(),
            aud: "registry".into(),
            iat: 1000,
            nbf: 1000,
            exp: 1300,
            jti: "j1".into(),
            access: vec![AccessEntry { kind: "repository".into(), name: "a".into(), actions: vec![Action::Pull] }],
        }
    }

    #[test]
    fn round_trip() {
        let token = sign(&claims(), b"key");
        assert_eq!(verify(&token, b"key", 1100, "registry"), Ok(claims()));
    }

    #[test]
    fn refuses_forged_expired_and_foreign_tokens() {
        let token = sign(&claims(), b"key");
        assert_eq!(verify(&token, b"other key", 1100, "registry"), Err(TokenError::BadSignature));
        assert_eq!(verify(&token, b"key", 1300, "registry"), Err(TokenError::Expired));
        assert_eq!(verify(&token, b"key", 800, "registry"), Err(TokenError::NotYetValid));
        assert_eq!(verify(&token, b"key", 1100, "elsewhere"), Err(TokenError::WrongAudience));
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert_eq!(verify(bad, b"key", 1100, "registry"), Err(TokenError::Malformed), "{bad}");
        }
    }

    #[test]
    fn refuses_alg_none_and_altered_claims() {
        let mut c = claims();
        c.access[0].actions.push(Action::Push);
        let payload = B64URL.encode(serde_json::to_vec(&c).unwrap());
        let none = format!("{}.{payload}.", B64URL.encode(r#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(verify(&none, b"key", 1100, "registry"), Err(TokenError::WrongAlgorithm));
        let genuine = sign(&claims(), b"key");
        let signature = genuine.rsplit('.').next().unwrap();
        let altered = format!("{}.{payload}.{signature}", B64URL.encode(HEADER));
        assert_eq!(verify(&altered, b"key", 1100, "registry"), Err(TokenError::BadSignature));
        let rs256 = format!("{}.{payload}.{signature}", B64URL.encode(r#"{"alg":"RS256"}"#));
        assert_eq!(verify(&rs256, b"key", 1100, "registry"), Err(TokenError::WrongAlgorithm));
    }
}
