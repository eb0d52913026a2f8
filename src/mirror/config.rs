//! What the pull-through cache is configured with: the upstreams, each under a prefix of
//! this registry's names, their credentials, how long a tag is trusted before it is
//! checked again, and the hosts whose root is an upstream (docker's `registry-mirrors`).

use crate::oci::RepositoryName;

/// How this registry logs in to an upstream. Never printed: `Debug` shows only the user.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ username: {:?}, password: <redacted> }}", self.username)
    }
}

/// One upstream registry, cached under `<prefix>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The first segment(s) of the names it is cached under (`hub`, `ghcr`, `mirrors/quay`).
    pub prefix: String,
    /// Its origin, without a trailing slash (`https://registry-1.docker.io`).
    pub url: String,
    /// Docker Hub's naming: a one-segment name is an official image under `library/`.
    pub official_images: bool,
    /// Basic credentials, sent to the upstream's token service (the Docker token flow) or,
    /// when the upstream asks for Basic, to the upstream itself.
    pub credentials: Option<Credentials>,
    /// Hosts besides its own whose token service may be sent the credentials (its
    /// `token_hosts`; Docker Hub's `auth.docker.io` is known).
    pub token_hosts: Vec<String>,
}

/// The pull-through cache's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    pub upstreams: Vec<Upstream>,
    /// How long a cached tag is served without asking the upstream (a HEAD) again.
    pub tag_ttl_ms: u64,
    /// How long an upstream request may take before it counts as failed.
    pub timeout_ms: u64,
    /// Hosts whose `/v2/<name>` is `/v2/<prefix>/<name>` (host, prefix), for clients
    /// that take a registry host without a path (docker's `registry-mirrors`).
    pub hosts: Vec<(String, String)>,
}

/// Default [`MirrorConfig::tag_ttl_ms`]: five minutes.
pub const DEFAULT_TAG_TTL_MS: u64 = 300_000;
/// Default [`MirrorConfig::timeout_ms`]: 20 seconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 20_000;

/// A repository name of this registry resolved to its upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'a> {
    pub upstream: &'a Upstream,
    /// The name in the upstream (`library/alpine` for `hub/alpine`).
    pub remote: String,
}

impl MirrorConfig {
    /// The upstream `name` is cached from, if it is under a prefix; the longest prefix wins.
    pub fn route(&self, name: &RepositoryName) -> Option<Route<'_>> {
        let name = name.as_str();
        let upstream = self
            .upstreams
            .iter()
            .filter(|u| name.strip_prefix(u.prefix.as_str()).is_some_and(|rest| rest.starts_with('/')))
            .max_by_key(|u| u.prefix.len())?;
        let rest = &name[upstream.prefix.len() + 1..];
        let remote = match upstream.official_images && !rest.contains('/') {
            true => format!("library/{rest}"),
            false => rest.to_owned(),
        };
        Some(Route { upstream, remote })
    }

    /// The prefix whose root `host` is, if it is a mirror host.
    /// A host configured without a port matches it on any port (`mirror.example.com:443`).
    pub fn host_prefix(&self, host: &str) -> Option<&str> {
        let bare = host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()));
        let bare = bare.map_or(host, |(name, _)| name);
        let matches = |h: &str| h.eq_ignore_ascii_case(host) || (!h.contains(':') && h.eq_ignore_ascii_case(bare));
        self.hosts.iter().find(|(h, _)| matches(h)).map(|(_, p)| p.as_str())
    }

    /// A token request's scope as a client of the mirror host under `prefix` means it:
    /// `repository:library/alpine:pull` is `repository:<prefix>/library/alpine:pull`
    /// (docker asks for the scope of the name it pulls, not the challenge's).
    pub fn host_scope(prefix: &str, scopes: &str) -> String {
        let each = scopes.split(' ').map(|scope| match scope.strip_prefix("repository:") {
            Some(rest) if !rest.is_empty() => format!("repository:{prefix}/{rest}"),
            _ => scope.to_owned(),
        });
        each.collect::<Vec<_>>().join(" ")
    }

    /// The path a request to a mirror host of `prefix` means: `/v2/<name>/...` is
    /// `/v2/<prefix>/<name>/...`; `None` when the path is not under `/v2/<name>`.
    pub fn host_path(prefix: &str, path: &str) -> Option<String> {
        let rest = path.strip_prefix("/v2/")?;
        if rest.is_empty() || rest.starts_with('_') {
            return None;
        }
        Some(format!("/v2/{prefix}/{rest}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MirrorConfig {
        let upstream = |prefix: &str, url: &str, official_images| Upstream {
            prefix: prefix.into(),
            url: url.into(),
            official_images,
            credentials: None,
            token_hosts: Vec::new(),
        };
        MirrorConfig {
            upstreams: vec![
                upstream("hub", "https://registry-1.docker.io", true),
                upstream("mirrors", "https://a.example", false),
                upstream("mirrors/quay", "https://quay.io", false),
            ],
            tag_ttl_ms: DEFAULT_TAG_TTL_MS,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            hosts: vec![("mirror.example.com".into(), "hub".into())],
        }
    }

    fn name(s: &str) -> RepositoryName {
        RepositoryName::parse(s).unwrap()
    }

    #[test]
    fn names_route_by_their_longest_prefix() {
        let config = config();
        let route = config.route(&name("hub/alpine")).unwrap();
        assert_eq!((route.upstream.prefix.as_str(), route.remote.as_str()), ("hub", "library/alpine"));
        assert_eq!(config.route(&name("hub/bitnami/redis")).unwrap().remote, "bitnami/redis");
        let quay = config.route(&name("mirrors/quay/coreos/etcd")).unwrap();
        assert_eq!((quay.upstream.url.as_str(), quay.remote.as_str()), ("https://quay.io", "coreos/etcd"));
        assert_eq!(config.route(&name("mirrors/x")).unwrap().remote, "x");
        assert!(config.route(&name("hubble/x")).is_none());
        assert!(config.route(&name("team/hub/x")).is_none());
        assert!(config.route(&name("team/app")).is_none());
    }

    #[test]
    fn a_mirror_host_maps_its_root_to_the_prefix() {
        let config = config();
        assert_eq!(config.host_prefix("Mirror.Example.com"), Some("hub"));
        let mapped = MirrorConfig::host_path("hub", "/v2/library/alpine/manifests/3");
        assert_eq!(mapped.as_deref(), Some("/v2/hub/library/alpine/manifests/3"));
        assert_eq!(config.host_prefix("mirror.example.com:443"), Some("hub"));
        assert_eq!(config.host_prefix("mirror.example.com.evil:443"), None);
        assert_eq!(config.host_prefix("registry.example.com"), None);
        assert_eq!(MirrorConfig::host_path("hub", "/v2/"), None);
        assert_eq!(MirrorConfig::host_path("hub", "/v2/_catalog"), None);
        let scopes = MirrorConfig::host_scope("hub", "repository:library/alpine:pull registry:catalog:*");
        assert_eq!(scopes, "repository:hub/library/alpine:pull registry:catalog:*");
    }

    #[test]
    fn credentials_never_print_the_password() {
        let c = Credentials { username: "bot".into(), password: "hunter2".into() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
