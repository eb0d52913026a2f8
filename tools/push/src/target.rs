//! Where to push: `<registry>/<repository>:<tag>` split into its parts, and the URL scheme
//! to reach the registry (plain HTTP for loopback hosts, as docker assumes, or when asked).

use std::fmt;

/// A parsed destination such as `registry.example.com/team/app:1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host` or `host:port`, as written.
    pub registry: String,
    /// The repository name, e.g. `team/app`.
    pub repository: String,
    pub tag: String,
}

impl Target {
    /// Parses `<registry>/<repository>[:<tag>]` (tag `latest` when absent). The registry part
    /// is required: this tool never guesses Docker Hub.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("destination {raw:?}: {why} (expected <registry>/<repository>:<tag>)");
        let raw_trimmed = raw.trim_start_matches("docker://");
        let (registry, rest) = raw_trimmed.split_once('/').ok_or_else(|| bad("no registry host"))?;
        if registry.is_empty() || !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(bad("the first part must be a registry host (with a dot or a port, or localhost)"));
        }
        if rest.contains('@') {
            return Err(bad("push to a tag, not a digest"));
        }
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((repo, tag)) => (repo, tag),
            None => (rest, "latest"),
        };
        if repository.is_empty() || !repository.split('/').all(valid_component) {
            return Err(bad("the repository must be lowercase path components ([a-z0-9] separated by . _ __ or -)"));
        }
        if !valid_tag(tag) {
            return Err(bad("a tag is 1-128 of [A-Za-z0-9_.-], not starting with . or -"));
        }
        Ok(Target { registry: registry.to_string(), repository: repository.to_string(), tag: tag.to_string() })
    }

    /// Whether the registry is reached over plain HTTP unless told otherwise: loopback
    /// hosts, which docker also treats as insecure.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => &self.registry,
        };
        host == "localhost" || host.starts_with("127.") || host == "[::1]"
    }

    /// The registry's base URL, e.g. `https://registry.example.com`.
    pub fn base_url(&self, plain_http: bool) -> String {
        let scheme = if plain_http || self.is_loopback() { "http" } else { "https" };
        format!("{scheme}://{}", self.registry)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

/// One path component of the distribution spec's name grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(&bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(&bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

fn valid_tag(tag: &str) -> bool {
    let first_ok = tag.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    first_ok && tag.len() <= 128 && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_repository_and_tag() {
        let t = Target::parse("registry.example.com/team/app:1").unwrap();
        assert_eq!(
            (t.registry.as_str(), t.repository.as_str(), t.tag.as_str()),
            ("registry.example.com", "team/app", "1")
        );
        assert_eq!(t.base_url(false), "https://registry.example.com");
        assert_eq!(t.to_string(), "registry.example.com/team/app:1");
        let local = Target::parse("127.0.0.1:8787/app").unwrap();
        assert_eq!((local.repository.as_str(), local.tag.as_str()), ("app", "latest"));
        assert_eq!(local.base_url(false), "http://127.0.0.1:8787");
        assert_eq!(Target::parse("localhost/a/b-c:v1.2").unwrap().base_url(false), "http://localhost");
        assert_eq!(Target::parse("reg.internal:5000/x:y").unwrap().base_url(true), "http://reg.internal:5000");
    }

    #[test]
    fn refuses_what_is_not_a_destination() {
        for bad in [
            "app:1",
            "team/app:1",
            "/app:1",
            "reg.io/",
            "reg.io/App:1",
            "reg.io/a//b:1",
            "reg.io/a:",
            "reg.io/a:-x",
            "reg.io/a@sha256:00",
            "reg.io/a-:1",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        assert!(Target::parse("reg.io/a__b.c--d/e_f:1").is_ok());
    }
}
