//! The pull-through cache's settings: the upstreams by prefix (`UPSTREAMS`), their
//! credentials (`UPSTREAM_CREDENTIALS`, a secret), how long a tag is trusted
//! (`UPSTREAM_TAG_TTL_SECONDS`), how long an upstream may take (`UPSTREAM_TIMEOUT_SECONDS`)
//! and the hosts whose root is an upstream (`MIRROR_HOSTS`). Off without `UPSTREAMS`.

use super::vars::Vars;
use super::SettingsError;
use crate::mirror::config::{DEFAULT_TAG_TTL_MS, DEFAULT_TIMEOUT_MS};
use crate::mirror::{Credentials, MirrorConfig, Upstream};
use crate::oci::RepositoryName;
use serde_json::{Map, Value};

/// Var: a JSON list of upstreams, each `{"prefix": "hub", "url":
/// "https://registry-1.docker.io"}`, with `"official_images": true` for Docker Hub's
/// `library/` naming (the default for Docker Hub's URL), and `"token_hosts": [...]` for a
/// token service on another host than the registry's (GitLab's `gitlab.com`).
pub const UPSTREAMS: &str = "UPSTREAMS";
/// Secret: a JSON object of credentials by prefix, `{"hub": {"username": "...",
/// "password": "..."}}` (for Docker Hub, an access token as the password).
pub const UPSTREAM_CREDENTIALS: &str = "UPSTREAM_CREDENTIALS";
/// Var: seconds a cached tag is served before the upstream is asked again; default 300.
pub const UPSTREAM_TAG_TTL_SECONDS: &str = "UPSTREAM_TAG_TTL_SECONDS";
/// Var: seconds an upstream request may take before the upstream counts as failed; default 20.
pub const UPSTREAM_TIMEOUT_SECONDS: &str = "UPSTREAM_TIMEOUT_SECONDS";
/// Var: a JSON object mapping a host (`host` or `host:port`) to an upstream's prefix, so
/// that `https://<host>/v2/<name>` is `<prefix>/<name>` (docker's `registry-mirrors`).
pub const MIRROR_HOSTS: &str = "MIRROR_HOSTS";

const EXAMPLE: &str = r#"[{"prefix": "hub", "url": "https://registry-1.docker.io"}]"#;
const DOCKER_HUB: &str = "https://registry-1.docker.io";

/// Reads the pull-through cache's settings; `None` without `UPSTREAMS`.
pub fn read(vars: &Vars, replicated: bool) -> Result<Option<MirrorConfig>, SettingsError> {
    let tag_ttl_ms = vars
        .seconds_as_ms(UPSTREAM_TAG_TTL_SECONDS, "set the seconds a tag is trusted, e.g. 300 (the default)")?
        .unwrap_or(DEFAULT_TAG_TTL_MS);
    let timeout_ms = vars
        .seconds_as_ms(UPSTREAM_TIMEOUT_SECONDS, "set the seconds an upstream may take, e.g. 20 (the default)")?
        .unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 {
        return Err(SettingsError::new(UPSTREAM_TIMEOUT_SECONDS, "0 would fail every request; set at least 1"));
    }
    let Some(text) = vars.text(UPSTREAMS) else {
        for var in [UPSTREAM_CREDENTIALS, MIRROR_HOSTS] {
            if vars.text(var).is_some() {
                return Err(SettingsError::new(var, "is set but UPSTREAMS is not; set UPSTREAMS or remove it"));
            }
        }
        return Ok(None);
    };
    if replicated {
        return Err(SettingsError::new(
            UPSTREAMS,
            "the pull-through cache does not run with REPLICAS yet; remove UPSTREAMS or REPLICAS",
        ));
    }
    let mut upstreams = parse_upstreams(&text).map_err(|p| SettingsError::new(UPSTREAMS, p))?;
    if let Some(text) = vars.text(UPSTREAM_CREDENTIALS) {
        add_credentials(&mut upstreams, &text).map_err(|p| SettingsError::new(UPSTREAM_CREDENTIALS, p))?;
    }
    let hosts = match vars.text(MIRROR_HOSTS) {
        Some(text) => parse_hosts(&upstreams, &text).map_err(|p| SettingsError::new(MIRROR_HOSTS, p))?,
        None => Vec::new(),
    };
    Ok(Some(MirrorConfig { upstreams, tag_ttl_ms, timeout_ms, hosts }))
}

fn parse_upstreams(text: &str) -> Result<Vec<Upstream>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("is not JSON ({e}); e.g. {EXAMPLE}"))?;
    let list =
        value.as_array().filter(|l| !l.is_empty()).ok_or(format!("is not a list of upstreams; e.g. {EXAMPLE}"))?;
    let mut upstreams: Vec<Upstream> = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let at = format!("upstream {}", i + 1);
        let object = entry.as_object().ok_or(format!("{at} is not an object; e.g. {EXAMPLE}"))?;
        let fields = ["prefix", "url", "official_images", "token_hosts"];
        if let Some(unknown) = object.keys().find(|k| !fields.contains(&k.as_str())) {
            return Err(format!("{at}: unknown field {unknown:?}; the fields are {}", fields.join(", ")));
        }
        let prefix = text_field(object, "prefix", &at)?;
        let valid = RepositoryName::parse(&prefix).is_ok() && !prefix.ends_with('/');
        if !valid {
            return Err(format!("{at}: prefix {prefix:?} is not a repository name (e.g. \"hub\")"));
        }
        if upstreams.iter().any(|u| u.prefix == prefix) {
            return Err(format!("{at}: prefix {prefix:?} is given twice"));
        }
        let url = text_field(object, "url", &at)?.trim_end_matches('/').to_owned();
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        if rest.is_some_and(|host| host.contains('@')) {
            // Never quoted: it holds a password, which belongs in UPSTREAM_CREDENTIALS.
            return Err(format!("{at}: url has credentials in it; put them in UPSTREAM_CREDENTIALS"));
        }
        if rest.is_none_or(|host| host.is_empty() || host.contains(['/', '?', '#', ' '])) {
            return Err(format!("{at}: url {url:?} is not an origin like \"https://ghcr.io\" (no path)"));
        }
        let official_images = match object.get("official_images") {
            None | Some(Value::Null) => url == DOCKER_HUB,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(format!("{at}: official_images is not true or false")),
        };
        let token_hosts = match object.get("token_hosts") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(hosts)) => hosts
                .iter()
                .map(|h| h.as_str().filter(|h| !h.is_empty() && !h.contains(['/', '@', ' ', '\\'])).map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(format!("{at}: token_hosts is not a list of host names (e.g. [\"gitlab.com\"])"))?,
            Some(_) => return Err(format!("{at}: token_hosts is not a list of host names (e.g. [\"gitlab.com\"])")),
        };
        upstreams.push(Upstream { prefix, url, official_images, credentials: None, token_hosts });
    }
    Ok(upstreams)
}

fn text_field(object: &Map<String, Value>, field: &str, at: &str) -> Result<String, String> {
    match object.get(field).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => Ok(text.to_owned()),
        None => Err(format!("{at}: {field} is missing or not text; e.g. {EXAMPLE}")),
    }
}

/// Never quotes a value: the secret's text holds passwords.
fn add_credentials(upstreams: &mut [Upstream], text: &str) -> Result<(), String> {
    const SHAPE: &str = r#"{"hub": {"username": "...", "password": "..."}}"#;
    let value: Value = serde_json::from_str(text).map_err(|_| format!("is not JSON; set e.g. {SHAPE}"))?;
    let object = value.as_object().ok_or(format!("is not an object; set e.g. {SHAPE}"))?;
    for (prefix, entry) in object {
        let upstream = upstreams
            .iter_mut()
            .find(|u| &u.prefix == prefix)
            .ok_or(format!("names {prefix:?}, which is not a prefix in UPSTREAMS"))?;
        let field = |name: &str| entry.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let (Some(username), Some(password)) = (field("username"), field("password")) else {
            return Err(format!("{prefix:?} needs a username and a password (text); set e.g. {SHAPE}"));
        };
        upstream.credentials = Some(Credentials { username, password });
    }
    Ok(())
}

fn parse_hosts(upstreams: &[Upstream], text: &str) -> Result<Vec<(String, String)>, String> {
    const SHAPE: &str = r#"{"mirror.example.com": "hub"}"#;
    let value: Value = serde_json::from_str(text).map_err(|e| format!("is not JSON ({e}); set e.g. {SHAPE}"))?;
    let object = value.as_object().ok_or(format!("is not an object; set e.g. {SHAPE}"))?;
    let mut hosts = Vec::new();
    for (host, prefix) in object {
        let prefix = prefix.as_str().ok_or(format!("{host:?}: the prefix is not text; set e.g. {SHAPE}"))?;
        if !upstreams.iter().any(|u| u.prefix == prefix) {
            return Err(format!("{host:?} maps to {prefix:?}, which is not a prefix in UPSTREAMS"));
        }
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(format!("{host:?} is not a host (e.g. \"mirror.example.com\" or \"localhost:8788\")"));
        }
        hosts.push((host.to_ascii_lowercase(), prefix.to_owned()));
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::vars::lookup_in;

    fn parse(pairs: &[(&str, &str)]) -> Result<Option<MirrorConfig>, SettingsError> {
        read(&Vars::new(&lookup_in(pairs)), false)
    }

    const TWO: &str =
        r#"[{"prefix": "hub", "url": "https://registry-1.docker.io/"}, {"prefix": "ghcr", "url": "https://ghcr.io"}]"#;

    #[test]
    fn upstreams_with_defaults() {
        assert_eq!(parse(&[]).unwrap(), None);
        let config = parse(&[(UPSTREAMS, TWO)]).unwrap().unwrap();
        assert_eq!(config.upstreams.len(), 2);
        assert_eq!(config.upstreams[0].url, "https://registry-1.docker.io");
        assert!(config.upstreams[0].official_images);
        assert!(!config.upstreams[1].official_images);
        assert_eq!((config.tag_ttl_ms, config.timeout_ms), (300_000, 20_000));
        assert!(config.hosts.is_empty());
    }

    #[test]
    fn credentials_and_hosts() {
        let creds = r#"{"ghcr": {"username": "bot", "password": "s3cret"}}"#;
        let pairs = [
            (UPSTREAMS, TWO),
            (UPSTREAM_CREDENTIALS, creds),
            (MIRROR_HOSTS, r#"{"Mirror.Example.com": "hub"}"#),
            (UPSTREAM_TAG_TTL_SECONDS, "5"),
        ];
        let config = parse(&pairs).unwrap().unwrap();
        assert_eq!(config.upstreams[1].credentials.as_ref().unwrap().username, "bot");
        assert!(config.upstreams[0].credentials.is_none());
        assert_eq!(config.hosts, vec![("mirror.example.com".to_owned(), "hub".to_owned())]);
        assert_eq!(config.tag_ttl_ms, 5_000);
    }

    #[test]
    fn mistakes_name_the_var_and_never_quote_a_password() {
        let bad = [
            (UPSTREAMS, "[]"),
            (UPSTREAMS, r#"[{"prefix": "hub"}]"#),
            (UPSTREAMS, r#"[{"prefix": "Hub", "url": "https://a"}]"#),
            (UPSTREAMS, r#"[{"prefix": "a", "url": "ftp://a"}]"#),
            (UPSTREAMS, r#"[{"prefix": "a", "url": "https://a/v2"}]"#),
            (UPSTREAMS, r#"[{"prefix": "a", "url": "https://a"}, {"prefix": "a", "url": "https://b"}]"#),
            (UPSTREAMS, r#"[{"prefix": "a", "url": "https://a", "tls": false}]"#),
        ];
        for (var, value) in bad {
            assert_eq!(parse(&[(var, value)]).unwrap_err().var, var, "{value}");
        }
        let creds = r#"{"nope": {"username": "u", "password": "hunter2"}}"#;
        let e = parse(&[(UPSTREAMS, TWO), (UPSTREAM_CREDENTIALS, creds)]).unwrap_err();
        assert_eq!(e.var, UPSTREAM_CREDENTIALS);
        let e2 =
            parse(&[(UPSTREAMS, TWO), (UPSTREAM_CREDENTIALS, "{\"hub\": {\"password\": \"hunter2\"}")]).unwrap_err();
        let e3 = parse(&[(UPSTREAMS, r#"[{"prefix": "a", "url": "https://u:hunter2@a.example"}]"#)]).unwrap_err();
        assert_eq!(e3.var, UPSTREAMS);
        for e in [e, e2, e3] {
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        assert_eq!(parse(&[(UPSTREAMS, TWO), (MIRROR_HOSTS, r#"{"m": "quay"}"#)]).unwrap_err().var, MIRROR_HOSTS);
        assert_eq!(parse(&[(MIRROR_HOSTS, r#"{"m": "hub"}"#)]).unwrap_err().var, MIRROR_HOSTS);
        assert_eq!(
            parse(&[(UPSTREAMS, TWO), (UPSTREAM_TIMEOUT_SECONDS, "0")]).unwrap_err().var,
            UPSTREAM_TIMEOUT_SECONDS
        );
        assert_eq!(read(&Vars::new(&lookup_in(&[(UPSTREAMS, TWO)])), true).unwrap_err().var, UPSTREAMS);
    }
}
