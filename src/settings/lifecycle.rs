//! The lifecycle section: what happens to tags and manifests after they are pushed. For
//! now the immutable tags (`IMMUTABLE_TAGS`), which the registry core enforces
//! ([`crate::registry::ImmutableTags`]); [`Settings::from_lookup`](super::Settings::from_lookup)
//! hands them to its config.

use super::{SettingsError, Vars};
use crate::registry::{ImmutableRule, ImmutableTags};

/// Var: the immutable-tag rules, a JSON list of
/// `{"repositories": PATTERN, "tags": [PATTERN...], "except": [PATTERN...]}` (`tags`
/// default `["*"]`, `except` default `[]`); unset or blank for none.
pub const IMMUTABLE_TAGS: &str = "IMMUTABLE_TAGS";

const IMMUTABLE_HINT: &str = "set a JSON list of rules such as [{\"repositories\": \"release/*\", \"tags\": [\"v*\"], \
                              \"except\": [\"*-rc*\"]}] (patterns: * any run of characters, ? one), or leave it \
                              unset for none";

/// The lifecycle section.
#[derive(Debug, Clone, Default)]
pub struct LifecycleSettings {
    /// Tags that never move and are never deleted; none by default.
    pub immutable_tags: ImmutableTags,
}

impl LifecycleSettings {
    pub fn read(vars: &Vars) -> Result<Self, SettingsError> {
        let Some(text) = vars.text(IMMUTABLE_TAGS) else { return Ok(LifecycleSettings::default()) };
        let rules: Vec<ImmutableRule> = serde_json::from_str(&text)
            .map_err(|e| SettingsError::new(IMMUTABLE_TAGS, format!("not a list of rules ({e}); {IMMUTABLE_HINT}")))?;
        if let Some(empty) = rules.iter().position(|rule| rule.tags.is_empty()) {
            let problem =
                format!("rule {} has an empty \"tags\" list, which covers no tag; {IMMUTABLE_HINT}", empty + 1);
            return Err(SettingsError::new(IMMUTABLE_TAGS, problem));
        }
        Ok(LifecycleSettings { immutable_tags: ImmutableTags { rules } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{RepositoryName, Tag};
    use crate::settings::vars::lookup_in;

    fn read(value: &str) -> Result<LifecycleSettings, SettingsError> {
        LifecycleSettings::read(&Vars::new(&lookup_in(&[(IMMUTABLE_TAGS, value)])))
    }

    fn immutable(settings: &LifecycleSettings, repo: &str, tag: &str) -> bool {
        let (repo, tag) = (RepositoryName::parse(repo).unwrap(), Tag::parse(tag).unwrap());
        settings.immutable_tags.rule_for(&repo, &tag).is_some()
    }

    #[test]
    fn unset_or_blank_is_no_rule() {
        assert!(LifecycleSettings::read(&Vars::new(&lookup_in(&[]))).unwrap().immutable_tags.is_empty());
        assert!(read("  ").unwrap().immutable_tags.is_empty());
        assert!(read("[]").unwrap().immutable_tags.is_empty());
    }

    #[test]
    fn rules_take_their_defaults() {
        let settings = read(
            r#"[{"repositories": "release/*", "tags": ["v*"], "except": ["*-rc*"]},
                {"repositories": "prod"}]"#,
        )
        .unwrap();
        assert_eq!(settings.immutable_tags.rules.len(), 2);
        assert!(immutable(&settings, "release/app", "v1"));
        assert!(!immutable(&settings, "release/app", "v1-rc2"), "excepted");
        assert!(!immutable(&settings, "release/app", "latest"));
        assert!(immutable(&settings, "prod", "latest"), "tags default to every tag");
        assert!(!immutable(&settings, "dev/app", "v1"));
    }

    #[test]
    fn bad_rules_are_refused_naming_the_var() {
        let cases = [
            ("{", "not a list of rules"),
            (r#"{"repositories": "a"}"#, "not a list of rules"),
            (r#"[{"tags": ["v*"]}]"#, "missing field `repositories`"),
            (r#"[{"repositories": "a b"}]"#, "never has"),
            (r#"[{"repositories": ""}]"#, "may not be empty"),
            (r#"[{"repositories": "a", "tags": ["v[0-9]"]}]"#, "never has"),
            (r#"[{"repositories": "a", "tag": ["v*"]}]"#, "unknown field `tag`"),
            (r#"[{"repositories": "a", "tags": []}]"#, "rule 1 has an empty \"tags\" list"),
        ];
        for (value, says) in cases {
            let e = read(value).unwrap_err();
            assert_eq!(e.var, IMMUTABLE_TAGS, "{value}");
            assert!(e.problem.contains(says), "{value}: {e}");
            assert!(e.problem.contains("release/*"), "says what to set: {e}");
        }
    }
}
