//! What an identity may do: actions on repository patterns.

use crate::oci::RepositoryName;
use serde::{Deserialize, Serialize};

/// An action on a repository, as in a token scope (`repository:<name>:pull,push`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    /// Parses one action; `*` means all of them. Unknown words are `None` (never granted).
    pub fn parse_list(s: &str) -> Vec<Action> {
        let mut actions: Vec<Action> = s
            .split(',')
            .flat_map(|word| match word.trim() {
                "pull" => vec![Action::Pull],
                "push" => vec![Action::Push],
                "delete" => vec![Action::Delete],
                "*" => vec![Action::Pull, Action::Push, Action::Delete],
                _ => vec![],
            })
            .collect();
        actions.sort();
        actions.dedup();
        actions
    }
}

/// A repository pattern: `*` (every repository), `team/*` (every repository under
/// `team/`, at any depth), or an exact name. Patterns match validated names only, so
/// `team/../other`, percent-encoded separators or look-alike characters never reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RepositoryPattern(String);

impl RepositoryPattern {
    pub fn new(pattern: &str) -> Self {
        RepositoryPattern(pattern.to_owned())
    }

    pub fn matches(&self, name: &RepositoryName) -> bool {
        let name = name.as_str();
        match self.0.as_str() {
            "*" => true,
            pattern => match pattern.strip_suffix("/*") {
                Some(prefix) => {
                    name.len() > prefix.len() + 1 && name.starts_with(prefix) && name.as_bytes()[prefix.len()] == b'/'
                }
                None => name == pattern,
            },
        }
    }
}

/// Permission to take `actions` on repositories matching `repository`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub repository: RepositoryPattern,
    pub actions: Vec<Action>,
}

/// The union of some grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Grants(pub Vec<Grant>);

impl Grants {
    pub fn allows(&self, name: &RepositoryName, action: Action) -> bool {
        self.0.iter().any(|g| g.actions.contains(&action) && g.repository.matches(name))
    }

    /// The subset of `wanted` these grants allow on `name`.
    pub fn allowed(&self, name: &RepositoryName, wanted: &[Action]) -> Vec<Action> {
        wanted.iter().copied().filter(|a| self.allows(name, *a)).collect()
    }

    pub fn union(&self, other: &Grants) -> Grants {
        Grants(self.0.iter().chain(other.0.iter()).cloned().collect())
    }

    pub fn everything() -> Self {
        Grants(vec![Grant {
            repository: RepositoryPattern::new("*"),
            actions: vec![Action::Pull, Action::Push, Action::Delete],
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> RepositoryName {
        RepositoryName::parse(s).unwrap()
    }

    #[test]
    fn patterns_match_by_whole_components() {
        let team = RepositoryPattern::new("team/*");
        assert!(team.matches(&name("team/app")));
        assert!(team.matches(&name("team/a/b")));
        assert!(!team.matches(&name("team")));
        assert!(!team.matches(&name("teamx/app")));
        assert!(!team.matches(&name("other/team/app")));
        assert!(RepositoryPattern::new("*").matches(&name("any/thing")));
        assert!(RepositoryPattern::new("a/b").matches(&name("a/b")));
        assert!(!RepositoryPattern::new("a/b").matches(&name("a/bc")));
    }

    #[test]
    fn action_lists_ignore_unknown_words() {
        assert_eq!(Action::parse_list("pull,push,admin,pull"), vec![Action::Pull, Action::Push]);
        assert_eq!(Action::parse_list("*").len(), 3);
        assert!(Action::parse_list("").is_empty());
    }

    #[test]
    fn grants_union() {
        let grants = Grants(vec![
            Grant { repository: RepositoryPattern::new("*"), actions: vec![Action::Pull] },
            Grant { repository: RepositoryPattern::new("team/*"), actions: vec![Action::Push] },
        ]);
        assert_eq!(
            grants.allowed(&name("team/x"), &[Action::Pull, Action::Push, Action::Delete]),
            vec![Action::Pull, Action::Push]
        );
        assert_eq!(grants.allowed(&name("other"), &[Action::Push]), vec![]);
    }
}
