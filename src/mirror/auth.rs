//! Logging in to an upstream: the challenge of a `401` (`WWW-Authenticate: Bearer
//! realm="...",service="...",scope="..."` of the Docker token protocol, or `Basic`), the
//! token request to the realm, and a cache of tokens per upstream and scope so that a
//! pull does not ask for a token per request.

use super::config::Credentials;
use base64::Engine;
use std::cell::RefCell;
use std::collections::HashMap;

/// What a `401` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
    Basic,
}

/// Parses a `WWW-Authenticate` value; `None` for a scheme this cache cannot answer.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |key: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.clone());
    let realm = get("realm").filter(|r| r.starts_with("https://") || r.starts_with("http://"))?;
    Some(Challenge::Bearer { realm, service: get("service"), scope: get("scope") })
}

/// `key="value", key=value` pairs; a quoted value may contain commas (`scope="a,b"`).
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = text.trim_start_matches([' ', ',']);
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().to_owned();
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (quoted[..end].to_owned(), quoted.get(end + 1..).unwrap_or(""))
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            }
        };
        params.push((key, value));
        rest = next.trim_start_matches([' ', ',']);
    }
    params
}

/// The `Authorization` value for Basic credentials.
pub fn basic(credentials: &Credentials) -> String {
    let pair = format!("{}:{}", credentials.username, credentials.password);
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

/// A URL's scheme and host (lower case, an IPv6 literal with its brackets) and port, if it
/// is an `http(s)` URL this cache follows: nothing a URL parser could read another way
/// (backslashes, userinfo, whitespace, control characters) is accepted.
fn parts(url: &str) -> Option<(String, String, Option<u16>)> {
    if url.chars().any(|c| c == '\\' || c == '@' || c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (address, after) = v6.split_once(']')?;
            (format!("[{address}]"), after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (authority.to_owned(), None),
        },
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    (!host.is_empty()).then(|| (scheme, host.to_ascii_lowercase(), port))
}

/// `scheme://host[:port]` of a URL, for messages; `?` when it is not one.
pub fn origin_of(url: &str) -> String {
    match parts(url) {
        Some((scheme, host, Some(port))) => format!("{scheme}://{host}:{port}"),
        Some((scheme, host, None)) => format!("{scheme}://{host}"),
        None => "?".to_owned(),
    }
}

/// Whether two URLs have the same scheme, host and port.
pub fn same_origin(a: &str, b: &str) -> bool {
    matches!((parts(a), parts(b)), (Some(a), Some(b)) if a == b)
}

/// Where a redirect's `Location` sends a request made to `from`: an absolute `http(s)` URL,
/// a scheme-relative one, a path, or a path relative to `from`'s.
pub fn resolve(from: &str, location: &str) -> Option<String> {
    let (scheme, _, _) = parts(from)?;
    let lower = location.to_ascii_lowercase();
    let target = if lower.starts_with("https://") || lower.starts_with("http://") {
        location.to_owned()
    } else if location.split(['/', '?', '#']).next().is_some_and(|first| first.contains(':')) {
        return None; // another scheme (ftp:, file:, data:, ...)
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else {
        let origin = origin_of(from);
        let path = from.split_once("://")?.1.find('/').map_or("/", |at| &from.split_once("://").unwrap().1[at..]);
        let path = path.split(['?', '#']).next().unwrap_or("/");
        if location.starts_with('/') {
            format!("{origin}{location}")
        } else if location.starts_with('?') {
            format!("{origin}{path}{location}")
        } else {
            let directory = &path[..path.rfind('/').map_or(0, |at| at + 1)];
            format!("{origin}{directory}{location}")
        }
    };
    parts(&target).map(|_| target)
}

/// Whether Basic credentials for the upstream at `upstream_url` may be sent to `realm`:
/// the same scheme (never `http` for an `https` upstream), and the upstream's own host, one
/// of `token_hosts` (an upstream's `token_hosts`, e.g. `gitlab.com` for
/// `registry.gitlab.com`), or Docker Hub's `auth.docker.io`. A hostile or misconfigured
/// upstream cannot send this cache's service account anywhere else.
pub fn realm_may_see_credentials(upstream_url: &str, realm: &str, token_hosts: &[String]) -> bool {
    let (Some((scheme, host, _)), Some((realm_scheme, realm_host, _))) = (parts(upstream_url), parts(realm)) else {
        return false;
    };
    let known = host == "registry-1.docker.io" && realm_host == "auth.docker.io";
    let listed = token_hosts.iter().any(|h| h.eq_ignore_ascii_case(&realm_host));
    scheme == realm_scheme && (realm_host == host || known || listed)
}

/// The URL of a token request to `realm` for `scope`.
pub fn token_url(realm: &str, service: Option<&str>, scope: &str) -> String {
    let mut url = realm.to_owned();
    let mut sep = if realm.contains('?') { '&' } else { '?' };
    if let Some(service) = service {
        url.push_str(&format!("{sep}service={}", encode(service)));
        sep = '&';
    }
    url.push_str(&format!("{sep}scope={}", encode(scope)));
    url
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A token service's answer: `token` (or OAuth's `access_token`) and its lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in_s: u64,
}

/// Reads a token service's JSON answer; `None` when it holds no token.
pub fn parse_token(body: &[u8]) -> Option<IssuedToken> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = value.get("token").or_else(|| value.get("access_token"))?.as_str()?.to_owned();
    // The protocol's default lifetime is 60 seconds.
    let expires_in_s = value.get("expires_in").and_then(|e| e.as_u64()).unwrap_or(60);
    (!token.is_empty()).then_some(IssuedToken { token, expires_in_s })
}

/// Tokens kept for the isolate's life, by upstream and scope, until shortly before they
/// expire. Kept in memory only: a token is never stored or returned to a client.
#[derive(Default)]
pub struct TokenCache {
    tokens: RefCell<HashMap<(String, String), (String, u64)>>,
}

/// A token is dropped this long before it expires, so that one never lapses in flight.
const EXPIRY_MARGIN_MS: u64 = 10_000;

impl TokenCache {
    pub fn get(&self, upstream: &str, scope: &str, now_ms: u64) -> Option<String> {
        let tokens = self.tokens.borrow();
        let (token, until) = tokens.get(&(upstream.to_owned(), scope.to_owned()))?;
        (*until > now_ms).then(|| token.clone())
    }

    pub fn put(&self, upstream: &str, scope: &str, issued: &IssuedToken, now_ms: u64) {
        let until = now_ms.saturating_add(issued.expires_in_s.saturating_mul(1000).saturating_sub(EXPIRY_MARGIN_MS));
        let mut tokens = self.tokens.borrow_mut();
        // Bounded: a long-lived isolate that pulled many repositories starts over.
        if tokens.len() >= 1000 {
            tokens.clear();
        }
        tokens.insert((upstream.to_owned(), scope.to_owned()), (issued.token.clone(), until));
    }

    pub fn forget(&self, upstream: &str, scope: &str) {
        self.tokens.borrow_mut().remove(&(upstream.to_owned(), scope.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_as_docker_and_distribution_send_them() {
        let hub = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        assert_eq!(
            parse_challenge(hub),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            })
        );
        let spaced = r#"bearer realm="http://127.0.0.1:1/token", scope="repository:a:pull,push""#;
        let Some(Challenge::Bearer { scope, service, .. }) = parse_challenge(spaced) else { panic!() };
        assert_eq!((scope.as_deref(), service), (Some("repository:a:pull,push"), None));
        assert_eq!(parse_challenge(r#"Basic realm="registry""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge(r#"Bearer realm="file:///etc/passwd""#), None);
        assert_eq!(parse_challenge("Bearer"), None);
    }

    #[test]
    fn token_urls_and_answers() {
        let url = token_url("https://auth.example/token", Some("reg"), "repository:library/a:pull");
        assert_eq!(url, "https://auth.example/token?service=reg&scope=repository%3Alibrary%2Fa%3Apull");
        assert!(token_url("https://a/t?x=1", None, "s").ends_with("?x=1&scope=s"));
        let issued = parse_token(br#"{"access_token": "t1", "expires_in": 300}"#).unwrap();
        assert_eq!(issued, IssuedToken { token: "t1".into(), expires_in_s: 300 });
        assert_eq!(parse_token(br#"{"token": "t2"}"#).unwrap().expires_in_s, 60);
        assert_eq!(parse_token(b"{}"), None);
        assert_eq!(parse_token(b"<html>"), None);
    }

    #[test]
    fn cached_tokens_lapse_before_they_expire() {
        let cache = TokenCache::default();
        cache.put("hub", "s", &IssuedToken { token: "t".into(), expires_in_s: 60 }, 1_000);
        assert_eq!(cache.get("hub", "s", 50_000).as_deref(), Some("t"));
        assert_eq!(cache.get("hub", "s", 51_000), None);
        assert_eq!(cache.get("ghcr", "s", 2_000), None);
        cache.forget("hub", "s");
        assert_eq!(cache.get("hub", "s", 2_000), None);
    }

    #[test]
    fn credentials_go_only_to_the_upstreams_own_host_and_scheme() {
        let hub = "https://registry-1.docker.io";
        let none: &[String] = &[];
        assert!(realm_may_see_credentials(hub, "https://auth.docker.io/token", none));
        assert!(realm_may_see_credentials("https://ghcr.io", "https://GHCR.io/token", none));
        assert!(realm_may_see_credentials("http://127.0.0.1:5000", "http://127.0.0.1:5000/token", none));
        let gitlab = ["gitlab.com".to_owned()];
        assert!(realm_may_see_credentials("https://registry.gitlab.com", "https://gitlab.com/jwt/auth", &gitlab));
        assert!(!realm_may_see_credentials("https://registry.gitlab.com", "https://gitlab.com/jwt/auth", none));
        assert!(!realm_may_see_credentials(hub, "http://auth.docker.io/token", none), "no downgrade");
        assert!(!realm_may_see_credentials(hub, "https://auth.evil.example/token", none));
        assert!(!realm_may_see_credentials(hub, r"https://evil.example\@auth.docker.io/token", none));
        assert!(!realm_may_see_credentials(hub, "https://evil.example@auth.docker.io/token", none));
        assert!(!realm_may_see_credentials("https://me.azurecr.io", "https://attacker.azurecr.io/t", none));
        assert!(!realm_may_see_credentials("http://[fd00::1]:5000", "http://[fd00::2]/token", none));
        assert!(realm_may_see_credentials("http://[fd00::1]:5000", "http://[FD00::1]:5000/token", none));
    }

    #[test]
    fn redirects_resolve_as_urls_do() {
        let from = "https://up.example/v2/a/blobs/sha256:1?x=1";
        assert_eq!(resolve(from, "https://cdn.example/b").as_deref(), Some("https://cdn.example/b"));
        assert_eq!(resolve(from, "HTTPS://cdn.example/b").as_deref(), Some("HTTPS://cdn.example/b"));
        assert_eq!(resolve(from, "//cdn.example/b").as_deref(), Some("https://cdn.example/b"));
        assert_eq!(resolve(from, "/other").as_deref(), Some("https://up.example/other"));
        assert_eq!(resolve(from, "x").as_deref(), Some("https://up.example/v2/a/blobs/x"));
        assert_eq!(resolve(from, "?q=2").as_deref(), Some("https://up.example/v2/a/blobs/sha256:1?q=2"));
        assert_eq!(resolve(from, "ftp://x/y"), None);
        assert_eq!(resolve(from, r"https://a\@b/"), None);
        assert!(same_origin("https://Up.example/x", "https://up.example/y"));
        assert!(!same_origin("https://up.example/x", "https://up.example:8443/y"));
        assert!(!same_origin("https://up.example", "http://up.example"));
    }

    #[test]
    fn basic_credentials_are_base64() {
        let c = Credentials { username: "u".into(), password: "p".into() };
        assert_eq!(basic(&c), "Basic dTpw");
    }
}
