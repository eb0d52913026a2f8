//! Repository names, tags and manifest references, validated by the spec's grammars.

use super::digest::{Digest, DigestError};
use std::fmt;

/// Longest repository name accepted. The spec notes that many clients limit
/// `host/name` to 255 characters; the name alone may not exceed that.
pub const MAX_NAME_LEN: usize = 255;

/// A repository name. "`<name>` MUST match the following regular expression:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

/// Why a repository name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("repository name is empty")]
    Empty,
    #[error("repository name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error(
        "repository name component {0:?} must be lowercase letters and digits, joined by '.', '_', '__' or dashes"
    )]
    BadComponent(String),
}

impl RepositoryName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        for component in s.split('/') {
            if !is_name_component(component) {
                return Err(NameError::BadComponent(component.chars().take(64).collect()));
            }
        }
        Ok(RepositoryName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_name_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            while i < bytes.len() && alnum(bytes[i]) {
                i += 1;
            }
            expect_alnum = false;
            continue;
        }
        if expect_alnum {
            return false;
        }
        // A separator: '.', '_', '__' or one or more '-'.
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > start);
        expect_alnum = true;
    }
    !bytes.is_empty() && !expect_alnum
}

/// A tag. "MUST be at most 128 characters in length and MUST match the following regular
/// expression: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

/// A tag did not match the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag must be 1-128 characters of [a-zA-Z0-9_.-] and may not start with '.' or '-'")]
pub struct TagError;

impl Tag {
    pub fn parse(s: &str) -> Result<Self, TagError> {
        let bytes = s.as_bytes();
        let head_ok = bytes.first().is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        let rest_ok = bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if head_ok && rest_ok && bytes.len() <= 128 {
            Ok(Tag(s.to_owned()))
        } else {
            Err(TagError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `<tag-or-digest>`: "MUST be either (a) the digest of the manifest or (b) a tag".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

/// A reference that is neither a valid tag nor a valid digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error(transparent)]
    Tag(#[from] TagError),
    #[error(transparent)]
    Digest(#[from] DigestError),
}

impl Reference {
    /// A reference containing ':' is a digest, anything else a tag.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(Tag::parse(s)?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_grammar() {
        for good in ["a", "team/app", "a.b", "a_b", "a__b", "a---b", "x/y/z9", "0"] {
            assert!(RepositoryName::parse(good).is_ok(), "{good} refused");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a___b", "a.-b", "-a", "a-", "a/../b", "a%2fb", "a b", "ä", "team/..", "a.",
            "_a",
        ] {
            assert!(RepositoryName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(RepositoryName::parse(&"a".repeat(255)).is_ok());
        assert_eq!(RepositoryName::parse(&"a".repeat(256)), Err(NameError::TooLong));
    }

    #[test]
    fn tags_follow_the_spec_grammar() {
        for good in ["latest", "v1.0", "_x", "A-b_c.d", &"t".repeat(128)] {
            assert!(Tag::parse(good).is_ok(), "{good} refused");
        }
        for bad in ["", ".a", "-a", "a/b", "a:b", "a b", &"t".repeat(129)] {
            assert!(Tag::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn references_are_tags_or_digests() {
        assert!(matches!(Reference::parse("latest"), Ok(Reference::Tag(_))));
        let d = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(Reference::parse(&d), Ok(Reference::Digest(_))));
        assert!(Reference::parse("sha256:zz").is_err());
    }
}
