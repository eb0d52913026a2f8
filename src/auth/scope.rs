//! Token scopes as clients request them: `repository:<name>:<action>,<action>`.

use super::grants::Action;
use crate::oci::RepositoryName;

/// A requested scope on one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub name: RepositoryName,
    pub actions: Vec<Action>,
}

/// Parses a repository scope. Other resource types (`registry:catalog:*`) are `Ok(None)`:
/// the catalog is filtered by pull rights instead. Unknown actions are dropped, so a scope
/// with extra actions grants no more than the known ones the identity holds.
pub fn parse_scope(scope: &str) -> Result<Option<Scope>, String> {
    let (kind, rest) = scope.split_once(':').ok_or_else(|| format!("scope {scope:?} is not type:name:actions"))?;
    let (name, actions) = rest.rsplit_once(':').ok_or_else(|| format!("scope {scope:?} has no actions"))?;
    if kind != "repository" {
        return Ok(None);
    }
    let name = RepositoryName::parse(name).map_err(|e| format!("scope {scope:?}: {e}"))?;
    Ok(Some(Scope { name, actions: Action::parse_list(actions) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse() {
        let s = parse_scope("repository:team/app:pull,push").unwrap().unwrap();
        assert_eq!((s.name.as_str(), s.actions), ("team/app", vec![Action::Pull, Action::Push]));
        assert_eq!(parse_scope("repository:a:pull,admin,*x").unwrap().unwrap().actions, vec![Action::Pull]);
        assert_eq!(parse_scope("registry:catalog:*").unwrap(), None);
        for bad in
            ["", "repository", "repository:a", "repository:Bad:pull", "repository:team/../x:pull", "repository:a/:pull"]
        {
            assert!(parse_scope(bad).is_err(), "{bad}");
        }
    }
}
