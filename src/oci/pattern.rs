//! Name patterns, as lifecycle rules (immutable tags, retention) and other per-repository
//! settings write them: `*` matches any run of characters (`/` included, so `team/*`
//! matches `team/app` and `team/a/b`), `?` exactly one, anything else itself. A pattern
//! without wildcards matches only the same string. Matching is linear in the name's length
//! times the pattern's, with no backtracking blow-up.

use std::fmt;

/// A validated pattern over repository names or tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("a pattern may not be empty (use \"*\" for every name)")]
    Empty,
    #[error("pattern {0:?} is over 255 characters")]
    TooLong(String),
    #[error("pattern {0:?} has a character a repository name or tag never has (only a-z A-Z 0-9 . _ - / and the wildcards * ?)")]
    Character(String),
}

impl Pattern {
    /// Checks `text` (non-empty, at most 255 characters, only characters names and tags
    /// may have, plus `*` and `?`).
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.len() > 255 {
            return Err(PatternError::TooLong(text.to_owned()));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/*?".contains(c);
        if !text.chars().all(allowed) {
            return Err(PatternError::Character(text.to_owned()));
        }
        Ok(Pattern(text.to_owned()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let (p, n) = (self.0.as_bytes(), name.as_bytes());
        // `reach[j]`: the pattern read so far matches the first `j` bytes of the name.
        let mut reach = vec![false; n.len() + 1];
        reach[0] = true;
        for &c in p {
            let mut next = vec![false; n.len() + 1];
            match c {
                b'*' => {
                    let mut on = false;
                    for j in 0..=n.len() {
                        on |= reach[j];
                        next[j] = on;
                    }
                }
                _ => {
                    for j in 0..n.len() {
                        next[j + 1] = reach[j] && (c == b'?' || c == n[j]);
                    }
                }
            }
            reach = next;
        }
        reach[n.len()]
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Pattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(name)
    }

    #[test]
    fn wildcards_match_as_documented() {
        let table = [
            ("*", "anything/at/all", true),
            ("team/*", "team/app", true),
            ("team/*", "team/a/b", true),
            ("team/*", "team", false),
            ("team/*", "other/app", false),
            ("v*", "v1.2.3", true),
            ("v*", "latest", false),
            ("*-rc*", "v1.0-rc1", true),
            ("*-rc*", "v1.0", false),
            ("v?", "v1", true),
            ("v?", "v10", false),
            ("latest", "latest", true),
            ("latest", "latest2", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXcYb", false),
            ("**", "", true),
        ];
        for (pattern, name, expected) in table {
            assert_eq!(m(pattern, name), expected, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn bad_patterns_say_why() {
        assert_eq!(Pattern::parse(""), Err(PatternError::Empty));
        assert!(matches!(Pattern::parse("a b"), Err(PatternError::Character(_))));
        assert!(matches!(Pattern::parse(&"a".repeat(256)), Err(PatternError::TooLong(_))));
        let e: Result<Pattern, _> = serde_json::from_str("\"[x]\"");
        assert!(e.unwrap_err().to_string().contains("never has"));
    }

    #[test]
    fn a_long_name_against_many_stars_stays_cheap() {
        let pattern = Pattern::parse(&"*a".repeat(50)).unwrap();
        assert!(!pattern.matches(&"a".repeat(49)));
        assert!(pattern.matches(&"a".repeat(200)));
    }
}
