//! The registry's access control as a client meets it: credentials (flags, environment,
//! `~/.docker/config.json`), the `WWW-Authenticate` challenge of a 401, and the token flow
//! (GET the challenge's realm with Basic credentials for a bearer token scoped to
//! `repository:<name>:pull,push`, renewed before it expires). A registry that challenges
//! with Basic gets the credentials on every request.

use base64::Engine as _;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <password>)", self.username)
    }
}

impl Credentials {
    fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }

    /// The `auths` entry for `registry` in a docker config file's JSON (`auth` is
    /// base64 `user:password`; keys may carry a scheme or a path).
    pub fn from_docker_config(json: &str, registry: &str) -> Option<Credentials> {
        let doc: serde_json::Value = serde_json::from_str(json).ok()?;
        let auths = doc.get("auths")?.as_object()?;
        let host_of = |key: &str| {
            let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
            key.split('/').next().unwrap_or(key).to_string()
        };
        let entry = auths.iter().find(|(key, _)| host_of(key) == registry)?.1;
        let decoded = base64::engine::general_purpose::STANDARD.decode(entry.get("auth")?.as_str()?).ok()?;
        let (user, pass) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        Some(Credentials { username: user.to_string(), password: pass.to_string() })
    }
}

/// A parsed `WWW-Authenticate` header: its scheme (lowercase) and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// Parses `Bearer realm="https://r/token",service="reg",scope="repository:a:pull"`
    /// (quoted or bare values; commas inside quotes kept).
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.is_empty() {
            return None;
        }
        let mut params = BTreeMap::new();
        let mut rest = rest.trim_start();
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=')?;
            let after = after.trim_start();
            let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
                let close = quoted.find('"')?;
                (&quoted[..close], &quoted[close + 1..])
            } else {
                after.split_at(after.find(',').unwrap_or(after.len()))
            };
            params.insert(key.trim().to_ascii_lowercase(), value.to_string());
            rest = tail.trim_start().trim_start_matches(',').trim_start();
        }
        Some(Challenge { scheme: scheme.to_ascii_lowercase(), params })
    }
}

/// How requests are authorised now.
enum Scheme {
    /// Nothing sent (an open registry, or before the first challenge).
    Anonymous,
    Basic,
    Bearer {
        token: String,
        renew_at: Instant,
        realm: String,
        service: Option<String>,
        scopes: Vec<String>,
    },
}

/// The answer of a token endpoint.
#[derive(serde::Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The authorisation shared by every request of one push.
pub struct Auth {
    agent: ureq::Agent,
    credentials: Option<Credentials>,
    /// The scope asked for besides the challenge's: pull and push on the target.
    scope: String,
    scheme: Mutex<Scheme>,
}

impl Auth {
    pub fn new(agent: ureq::Agent, credentials: Option<Credentials>, repository: &str) -> Self {
        Auth {
            agent,
            credentials,
            scope: format!("repository:{repository}:pull,push"),
            scheme: Mutex::new(Scheme::Anonymous),
        }
    }

    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.username.as_str())
    }

    /// The `Authorization` value for the next request, renewing a bearer token that is
    /// about to expire.
    pub fn header(&self) -> Result<Option<String>, String> {
        let mut scheme = self.scheme.lock().unwrap_or_else(|e| e.into_inner());
        if let Scheme::Bearer { renew_at, realm, service, scopes, .. } = &*scheme {
            if Instant::now() >= *renew_at {
                let (realm, service, scopes) = (realm.clone(), service.clone(), scopes.clone());
                *scheme = self.fetch_token(realm, service, scopes)?;
            }
        }
        Ok(match &*scheme {
            Scheme::Anonymous => None,
            Scheme::Basic => self.credentials.as_ref().map(Credentials::basic),
            Scheme::Bearer { token, .. } => Some(format!("Bearer {token}")),
        })
    }

    /// Takes a 401's challenge: Basic starts sending the credentials, Bearer fetches a
    /// token. `Err` when nothing more can be tried (no credentials for Basic, or the token
    /// endpoint refused them).
    pub fn answer(&self, www_authenticate: Option<&str>) -> Result<(), String> {
        let challenge = www_authenticate
            .and_then(Challenge::parse)
            .ok_or_else(|| "the registry answered 401 without a usable WWW-Authenticate challenge".to_string())?;
        let mut scheme = self.scheme.lock().unwrap_or_else(|e| e.into_inner());
        match challenge.scheme.as_str() {
            "basic" => {
                if self.credentials.is_none() || matches!(*scheme, Scheme::Basic) {
                    return Err(self.unauthorized());
                }
                *scheme = Scheme::Basic;
                Ok(())
            }
            "bearer" => {
                let realm = challenge.params.get("realm").cloned().ok_or("the Bearer challenge names no realm")?;
                let mut scopes: Vec<String> = challenge.params.get("scope").into_iter().cloned().collect();
                if !scopes.contains(&self.scope) {
                    scopes.push(self.scope.clone());
                }
                *scheme = self.fetch_token(realm, challenge.params.get("service").cloned(), scopes)?;
                Ok(())
            }
            other => Err(format!("the registry asks for {other} authentication, which this tool does not speak")),
        }
    }

    pub fn unauthorized(&self) -> String {
        match self.username() {
            Some(user) => format!("unauthorized: the registry refused the credentials of {user}"),
            None => "unauthorized: the registry wants credentials (--username/--password, EDGE_PUSH_USERNAME/EDGE_PUSH_PASSWORD, or docker login)".into(),
        }
    }

    fn fetch_token(&self, realm: String, service: Option<String>, scopes: Vec<String>) -> Result<Scheme, String> {
        let mut request = self.agent.get(&realm);
        if let Some(service) = &service {
            request = request.query("service", service);
        }
        for scope in &scopes {
            request = request.query("scope", scope);
        }
        if let Some(credentials) = &self.credentials {
            request = request.header("authorization", credentials.basic());
        }
        let mut reply = request.call().map_err(|e| format!("token endpoint {realm}: {e}"))?;
        let status = reply.status().as_u16();
        let body = reply.body_mut().with_config().limit(1 << 20).read_to_string().unwrap_or_default();
        if status == 401 || status == 403 {
            return Err(self.unauthorized());
        }
        if status != 200 {
            return Err(format!("token endpoint {realm} answered {status}: {}", body.trim()));
        }
        let parsed: TokenReply =
            serde_json::from_str(&body).map_err(|e| format!("token endpoint {realm}: not a token answer: {e}"))?;
        let token =
            parsed.token.or(parsed.access_token).ok_or_else(|| format!("token endpoint {realm} sent no token"))?;
        Ok(Scheme::Bearer { token, renew_at: renew_at(parsed.expires_in), realm, service, scopes })
    }
}

/// When to renew a token that lives `expires_in` seconds (60 when unsaid, as the token
/// spec defaults): 30 s early, or halfway for short-lived ones.
fn renew_at(expires_in: Option<u64>) -> Instant {
    let life = expires_in.unwrap_or(60).max(1);
    let early = if life > 60 { life - 30 } else { life / 2 };
    Instant::now() + Duration::from_secs(early)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_registries_send_them() {
        let c = Challenge::parse(
            r#"Bearer realm="http://127.0.0.1:8787/token",service="edge-registry",scope="repository:team/app:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "http://127.0.0.1:8787/token");
        assert_eq!(c.params["service"], "edge-registry");
        assert_eq!(c.params["scope"], "repository:team/app:pull,push", "comma inside quotes kept");
        let basic = Challenge::parse(r#"Basic realm="registry""#).unwrap();
        assert_eq!((basic.scheme.as_str(), basic.params["realm"].as_str()), ("basic", "registry"));
        let bare = Challenge::parse("Bearer realm=https://auth/token, service=x").unwrap();
        assert_eq!((bare.params["realm"].as_str(), bare.params["service"].as_str()), ("https://auth/token", "x"));
        assert_eq!(Challenge::parse("Basic").unwrap().params.len(), 0);
        assert!(Challenge::parse("").is_none());
        assert!(Challenge::parse(r#"Bearer realm="unterminated"#).is_none());
    }

    #[test]
    fn docker_config_auths_are_found_by_host() {
        let auth = base64::engine::general_purpose::STANDARD.encode("writer:writer-pass");
        let json =
            format!(r#"{{"auths":{{"https://other.io/v1/":{{"auth":"eA=="}},"127.0.0.1:5000":{{"auth":"{auth}"}}}}}}"#);
        let found = Credentials::from_docker_config(&json, "127.0.0.1:5000").unwrap();
        assert_eq!((found.username.as_str(), found.password.as_str()), ("writer", "writer-pass"));
        let json = format!(r#"{{"auths":{{"https://reg.example.com":{{"auth":"{auth}"}}}}}}"#);
        assert!(Credentials::from_docker_config(&json, "reg.example.com").is_some(), "scheme stripped");
        assert!(Credentials::from_docker_config(&json, "reg.example.org").is_none());
        assert!(Credentials::from_docker_config(r#"{"auths":{"h":{"auth":"!!"}}}"#, "h").is_none());
        assert!(Credentials::from_docker_config("not json", "h").is_none());
        assert_eq!(format!("{found:?}"), "Credentials(writer, <password>)", "never printed");
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        let now = Instant::now();
        let in_secs = |at: Instant| at.duration_since(now).as_secs();
        assert!((269..=270).contains(&in_secs(renew_at(Some(300)))));
        assert!((29..=30).contains(&in_secs(renew_at(None))));
        assert!(in_secs(renew_at(Some(0))) == 0);
    }
}
